/* common/crypto.c over nettle and getrandom(2): known answers for sha256,
 * HMAC-SHA256, base64 (RFC 4648) and OpenSSH fingerprints, the strictness
 * of the base64 decoder, and random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/xalloc.h"

static void test_sha256(void **state)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1], hex2[CRYPTO_SHA256_HEX_LEN + 1];
	char path[] = "/tmp/anvil-test-crypto.XXXXXX";
	struct crypto_sha256 *h;
	struct err err = {0};
	char *big = xmalloc(70000);
	int fd;

	(void)state;
	/* FIPS 180-2 "abc" and the empty string. */
	crypto_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Streaming in pieces, and the state reused after final. */
	h = crypto_sha256_new();
	crypto_sha256_update(h, "a", 1);
	crypto_sha256_update(h, "bc", 2);
	crypto_sha256_final_hex(h, hex2);
	assert_string_equal(hex2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_sha256_final_hex(h, hex2);
	assert_string_equal(hex2, hex); /* nothing since: the empty string's */
	crypto_sha256_free(h);
	crypto_sha256_free(NULL);
	assert_true(crypto_is_sha256_hex(hex));
	assert_false(crypto_is_sha256_hex("ABC"));

	/* A file bigger than the read buffer (sha256sum's answer). */
	memset(big, 'a', 70000);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, big, 70000), 70000);
	close(fd);
	assert_int_equal(crypto_sha256_file_hex(path, hex, &err), 0);
	assert_string_equal(hex, "66915c0872933db504e7578828dd85b7e74a4e0a061f9756793b89c4151bd4b5");
	unlink(path);
	assert_int_equal(crypto_sha256_file_hex(path, hex, &err), -1);
	free(big);
}

static void test_hmac(void **state)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	char key[131];

	(void)state;
	/* RFC 4231 test cases 2 and 6 (a key longer than the block). */
	crypto_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, sizeof(key));
	crypto_hmac_sha256_hex(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First", 54,
	                       hex);
	assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(crypto_ct_equal("abc", 3, "abc", 3));
	assert_false(crypto_ct_equal("abc", 3, "abd", 3));
	assert_false(crypto_ct_equal("abc", 3, "abcd", 4));
	assert_true(crypto_ct_equal("", 0, "", 0));
}

static void test_random(void **state)
{
	unsigned char a[4096], b[4096], zero[4096] = {0};
	char hex[65], hex2[65];
	struct err err = {0};

	(void)state;
	/* Longer than one getrandom() read is promised to be whole. */
	assert_int_equal(crypto_random_bytes(a, sizeof(a), &err), 0);
	assert_int_equal(crypto_random_bytes(b, sizeof(b), &err), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(crypto_random_hex(hex, 32, &err), 0);
	assert_int_equal(crypto_random_hex(hex2, 32, &err), 0);
	assert_int_equal(strlen(hex), 64);
	assert_true(crypto_is_sha256_hex(hex));
	assert_string_not_equal(hex, hex2);
	assert_int_equal(crypto_random_hex(hex, 129, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
}

static void test_base64(void **state)
{
	/* RFC 4648 section 10. */
	static const char *const vec[][2] = {{"", ""},
	                                     {"f", "Zg=="},
	                                     {"fo", "Zm8="},
	                                     {"foo", "Zm9v"},
	                                     {"foob", "Zm9vYg=="},
	                                     {"fooba", "Zm9vYmE="},
	                                     {"foobar", "Zm9vYmFy"}};
	/* Each refused: wrong length, '=' inside or too many, stray bits,
	 * whitespace, characters outside the alphabet (URL-safe too). */
	static const char *const bad[] = {"Zg=",   "Zg",   "Z===",     "====",     "Zg=a",
	                                  "Z=g=",  "Zh==", "Zm9=",     "Zm8 ",     " Zm8",
	                                  "Zm\n8", "Zm-_", "Zm8=Zm8=", "Zg==Zg==", "Zm.v"};
	char out[64];
	unsigned char raw[64], all[256];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		crypto_base64_encode(vec[i][0], strlen(vec[i][0]), out);
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(strlen(out), CRYPTO_BASE64_LEN(strlen(vec[i][0])));
		n = 99;
		assert_int_equal(crypto_base64_decode(vec[i][1], strlen(vec[i][1]), raw, sizeof(raw), &n), 0);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(raw, vec[i][0], n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (crypto_base64_decode(bad[i], strlen(bad[i]), raw, sizeof(raw), &n) == 0)
			fail_msg("\"%s\" decoded", bad[i]);
	/* Does not write past out_cap. */
	assert_int_equal(crypto_base64_decode("Zm9vYmFy", 8, raw, 5, &n), -1);
	assert_int_equal(crypto_base64_decode("Zm9vYmFy", 8, raw, 6, &n), 0);
	{
		/* Exactly the bytes' room on the heap (ASan sees any write past it). */
		unsigned char *exact = xmalloc(5);
		assert_int_equal(crypto_base64_decode("Zm9vYmE=", 8, exact, 5, &n), 0);
		assert_int_equal(n, 5);
		assert_memory_equal(exact, "fooba", 5);
		free(exact);
	}
	/* Every byte value and the whole alphabet survive a round trip. */
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	{
		char text[CRYPTO_BASE64_LEN(256) + 1];
		unsigned char back[256];
		crypto_base64_encode(all, sizeof(all), text);
		assert_int_equal(crypto_base64_decode(text, strlen(text), back, sizeof(back), &n), 0);
		assert_int_equal(n, 256);
		assert_memory_equal(back, all, 256);
	}
}

/* ssh-keygen -lf's answer for this key. */
static void test_fingerprint(void **state)
{
	static const char b64[] = "AAAAC3NzaC1lZDI1NTE5AAAAIMv9H65D1L+GH7ZWK26aNUvIu9ubq5UJkFKqs3+BSrsX";
	unsigned char blob[64], sha[CRYPTO_SHA256_BYTES];
	char fp[CRYPTO_FINGERPRINT_LEN + 1];
	size_t n = 0;

	(void)state;
	assert_int_equal(crypto_base64_decode(b64, strlen(b64), blob, sizeof(blob), &n), 0);
	assert_int_equal(n, 51);
	crypto_sha256(blob, n, sha);
	crypto_fingerprint(sha, fp);
	assert_string_equal(fp, "SHA256:Wxr8OCwwrJqAfBPvx1ForCN4Jk3fUkMmkCxL5EaorTU");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256), cmocka_unit_test(test_hmac),   cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_random), cmocka_unit_test(test_base64), cmocka_unit_test(test_fingerprint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
