/* signify-format Ed25519 (common/sign.c): round trips, tampering, and the
 * real signify-openbsd binary checking what we sign (and signing with a key
 * file we wrote). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "common/sign.h"
#include "common/xalloc.h"

static const char msg[] = "{\"version\":\"v1.4.0\",\"files\":[]}\n";

static void write_file(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path, size_t *n_out)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;

	assert_non_null(f);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	return buf_detach(&b, n_out);
}

/* Known answers, so that a change of library or format fails here. The
 * key is RFC 8032's test 1 (section 7.1) with keynum 0123456789abcdef; the
 * three files were written by the OpenSSL-based sign.c before it moved to
 * nettle (issue 17), the signature over msg. Ed25519 is deterministic: the
 * same key signs msg to the same bytes. */
static const char kat_key[] =
    "untrusted comment: anvil test secret key\n"
    "RWRCSwAAAAB/3s+MEUuqC7s4AoejoqxoSulvySzYtIABI0VniavN751hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g11qY"
    "AYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n";
static const char kat_pub[] = "untrusted comment: anvil test key\n"
                              "RWQBI0VniavN79damAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea\n";
static const char kat_sig[] =
    "untrusted comment: verify with anvil-test.pub\n"
    "RWQBI0VniavN78MwIku1ETlVtUhVWy6t7MWw83K8RjvqvWrWBXViDeoLzLCe1McAJVnD5oS1EfTKMmL9l0CkwCxj2Q4Xlx/P2Q0=\n";
/* RFC 8032 7.1 test 1: secret seed, public key, signature of the empty message. */
static const unsigned char rfc_seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                           0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                           0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const unsigned char rfc_pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                          0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                          0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
static const unsigned char rfc_sig[64] = {
    0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a,
    0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55,
    0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b,
    0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};

static void test_known_answer(void **state)
{
	static const unsigned char keynum[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
	struct sign_key k, k2;
	struct sign_pub p, p2;
	struct sign_sig s, s2;
	struct err err = {0};
	char *text;

	(void)state;
	/* The files of the old code load, and are what this key is. */
	assert_int_equal(sign_key_parse(kat_key, strlen(kat_key), &k, &err), 0);
	assert_memory_equal(k.seed, rfc_seed, 32);
	assert_memory_equal(k.pub, rfc_pub, 32);
	assert_memory_equal(k.keynum, keynum, 8);
	assert_int_equal(sign_pub_parse(kat_pub, strlen(kat_pub), &p, &err), 0);
	assert_memory_equal(p.pub, rfc_pub, 32);
	assert_memory_equal(p.keynum, keynum, 8);
	assert_int_equal(sign_sig_parse(kat_sig, strlen(kat_sig), &s, &err), 0);
	assert_int_equal(sign_verify(&p, msg, strlen(msg), &s, &err), 0);
	/* Signing again gives the same bytes and the same file text. */
	assert_int_equal(sign_message(&k, msg, strlen(msg), &s2, &err), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
	text = sign_sig_format(&s2, "verify with anvil-test.pub");
	assert_string_equal(text, kat_sig);
	free(text);
	text = sign_pub_format(&p, "anvil test key");
	assert_string_equal(text, kat_pub);
	free(text);
	/* The secret key file has a random salt: compare what it holds. */
	text = sign_key_format(&k, "anvil test secret key");
	assert_int_equal(strlen(text), strlen(kat_key));
	assert_int_equal(sign_key_parse(text, strlen(text), &k2, &err), 0);
	assert_memory_equal(&k, &k2, sizeof(k));
	free(text);

	/* RFC 8032 test 1 itself: the seed derives the public key and signs
	 * the empty message to the published signature. */
	memset(&k2, 0, sizeof(k2));
	memcpy(k2.seed, rfc_seed, 32);
	memcpy(k2.pub, rfc_pub, 32);
	assert_int_equal(sign_message(&k2, "", 0, &s2, &err), 0);
	assert_memory_equal(s2.sig, rfc_sig, 64);
	sign_key_pub(&k2, &p2);
	assert_int_equal(sign_verify(&p2, "", 0, &s2, &err), 0);
	/* S + group order: the same point equation, refused as non-canonical
	 * (RFC 8032 5.1.7 step 1). L = 2^252 + 27742317777372353535851937790883648493. */
	{
		static const unsigned char order[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
		                                        0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		                                        0,    0,    0,    0,    0,    0,    0,    0,
		                                        0,    0,    0,    0,    0,    0,    0,    0x10};
		unsigned carry = 0;
		for (int i = 0; i < 32; i++) {
			unsigned v = s2.sig[32 + i] + order[i] + carry;
			s2.sig[32 + i] = (unsigned char)v;
			carry = v >> 8;
		}
		assert_int_equal(sign_verify(&p2, "", 0, &s2, &err), -1);
		assert_string_equal(err.msg, "signature verification failed");
	}
	sign_key_clear(&k);
	sign_key_clear(&k2);
}

/* The base64 line must be the canonical text: the old code's checks (length,
 * alphabet, '=' only at the end) and no stray bits or '=' inside. */
static void test_parse_strict(void **state)
{
	struct sign_pub p;
	struct sign_sig s;
	struct sign_key k;
	struct err err = {0};
	char buf[512];
	size_t nl = strchr(kat_sig, '\n') - kat_sig + 1, n = strlen(kat_sig);

	(void)state;
	/* Without the trailing newline, and with a CRLF-free tail: fine. */
	assert_int_equal(sign_sig_parse(kat_sig, n - 1, &s, &err), 0);
	/* '=' moved inside the last group ("xx=x"): refused. */
	memcpy(buf, kat_sig, n + 1);
	buf[n - 3] = '=';
	buf[n - 2] = 'Q';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	assert_string_equal(err.msg, "signify file: invalid base64");
	/* Stray bits before the padding ("...0=" -> "...1="): refused. */
	memcpy(buf, kat_sig, n + 1);
	assert_int_equal(buf[n - 3], '0');
	buf[n - 3] = '1';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	/* Whitespace, '-', NUL inside the line: refused. */
	memcpy(buf, kat_sig, n + 1);
	buf[nl + 10] = ' ';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	buf[nl + 10] = '-';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	buf[nl + 10] = '\0';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	/* Too short, too long, no padding where one is due. */
	assert_int_equal(sign_sig_parse(kat_sig, n - 5, &s, &err), -1);
	snprintf(buf, sizeof(buf), "%.*sAAAA\n", (int)(n - 1), kat_sig);
	assert_int_equal(sign_sig_parse(buf, strlen(buf), &s, &err), -1);
	assert_string_equal(err.msg, "signify file: the base64 line has the wrong length");
	memcpy(buf, kat_sig, n + 1);
	buf[n - 2] = 'A';
	assert_int_equal(sign_sig_parse(buf, n, &s, &err), -1);
	assert_string_equal(err.msg, "signify file: 75 bytes where 74 were expected");
	/* A key's text is not a public key's (lengths differ), padding only
	 * where due: the public key has none. */
	assert_int_equal(sign_pub_parse(kat_key, strlen(kat_key), &p, &err), -1);
	snprintf(buf, sizeof(buf), "untrusted comment: x\n%.52s====\n", strchr(kat_pub, '\n') + 1);
	assert_int_equal(sign_pub_parse(buf, strlen(buf), &p, &err), -1);
	/* Not "Ed". */
	assert_int_equal(
	    sign_pub_parse("untrusted comment: x\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	                   21 + 57, &p, &err),
	    -1);
	assert_string_equal(err.msg, "signify file: unsupported algorithm (not Ed)");
	/* The secret key's checksum. */
	memcpy(buf, kat_key, strlen(kat_key) + 1);
	buf[strchr(kat_key, '\n') - kat_key + 1 + 40] ^= 1;
	assert_int_equal(sign_key_parse(buf, strlen(buf), &k, &err), -1);
}

static void test_roundtrip(void **state)
{
	struct sign_key k, k2;
	struct sign_pub p, p2;
	struct sign_sig s, s2;
	struct err err = {0};
	char *pt, *st, *kt;

	(void)state;
	assert_int_equal(sign_keygen(&k, &err), 0);
	sign_key_pub(&k, &p);
	assert_int_equal(sign_message(&k, msg, strlen(msg), &s, &err), 0);
	assert_int_equal(sign_verify(&p, msg, strlen(msg), &s, &err), 0);

	pt = sign_pub_format(&p, "anvil release key");
	st = sign_sig_format(&s, "verify with anvil-release.pub");
	kt = sign_key_format(&k, "anvil release secret key");
	assert_non_null(kt);
	assert_true(strncmp(pt, "untrusted comment: anvil release key\n", 37) == 0);
	assert_int_equal(sign_pub_parse(pt, strlen(pt), &p2, &err), 0);
	assert_int_equal(sign_sig_parse(st, strlen(st), &s2, &err), 0);
	assert_int_equal(sign_key_parse(kt, strlen(kt), &k2, &err), 0);
	assert_memory_equal(&p, &p2, sizeof(p));
	assert_memory_equal(&s, &s2, sizeof(s));
	assert_memory_equal(&k, &k2, sizeof(k));
	assert_int_equal(sign_verify(&p2, msg, strlen(msg), &s2, &err), 0);

	/* A tampered message, a flipped signature bit, another key. */
	assert_int_equal(sign_verify(&p, "{\"version\":\"v1.4.1\"}", 20, &s, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	s2.sig[5] ^= 1;
	assert_int_equal(sign_verify(&p, msg, strlen(msg), &s2, &err), -1);
	assert_int_equal(sign_keygen(&k2, &err), 0);
	sign_key_pub(&k2, &p2);
	assert_int_equal(sign_verify(&p2, msg, strlen(msg), &s, &err), -1);
	assert_non_null(strstr(err.msg, "signed by key"));
	/* Same keynum, wrong public key. */
	memcpy(p2.keynum, p.keynum, sizeof(p.keynum));
	assert_int_equal(sign_verify(&p2, msg, strlen(msg), &s, &err), -1);
	assert_string_equal(err.msg, "signature verification failed");

	/* Malformed files. */
	assert_int_equal(sign_pub_parse("hello\n", 6, &p2, &err), -1);
	assert_int_equal(sign_pub_parse(st, strlen(st), &p2, &err), -1); /* a signature is not a key */
	assert_int_equal(sign_sig_parse("untrusted comment: x\n!!!!\n", 26, &s2, &err), -1);
	kt[strlen(kt) - 5] ^= 2; /* corrupt the secret key: checksum */
	assert_int_equal(sign_key_parse(kt, strlen(kt), &k2, &err), -1);
	free(pt);
	free(st);
	free(kt);
	sign_key_clear(&k);
	sign_key_clear(&k2);
}

static int run(const char *const *argv, struct buf *out)
{
	struct err err = {0};
	int code = -1;

	buf_reset(out);
	assert_int_equal(proc_run(argv, NULL, 30000, out, &code, &err), 0);
	return code;
}

/* The real signify-openbsd checks our signature, refuses a tampered
 * message, and signs with our secret key file. */
static void test_signify_binary(void **state)
{
	char dir[] = "/tmp/anvil-test-sign.XXXXXX", path_pub[300], path_msg[300], path_sig[300],
	     path_key[300];
	char path_sig2[300];
	struct sign_key k;
	struct sign_pub p;
	struct sign_sig s, s2;
	struct err err = {0};
	struct buf out = BUF_INIT;
	char *pt, *st, *kt, *sig2;
	size_t n;

	(void)state;
	if (access("/usr/bin/signify-openbsd", X_OK) != 0) {
		fprintf(stderr, "signify-openbsd missing (scripts/deps.sh test installs it)\n");
		fail();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(path_pub, sizeof(path_pub), "%s/anvil-release.pub", dir);
	snprintf(path_msg, sizeof(path_msg), "%s/manifest.json", dir);
	snprintf(path_sig, sizeof(path_sig), "%s/manifest.json.sig", dir);
	snprintf(path_key, sizeof(path_key), "%s/release.sec", dir); /* signify wants .sec */
	snprintf(path_sig2, sizeof(path_sig2), "%s/other.sig", dir);
	assert_int_equal(sign_keygen(&k, &err), 0);
	sign_key_pub(&k, &p);
	assert_int_equal(sign_message(&k, msg, strlen(msg), &s, &err), 0);
	pt = sign_pub_format(&p, "anvil release key");
	st = sign_sig_format(&s, "verify with anvil-release.pub");
	kt = sign_key_format(&k, "anvil release secret key");
	write_file(path_pub, pt, strlen(pt));
	write_file(path_msg, msg, strlen(msg));
	write_file(path_sig, st, strlen(st));
	write_file(path_key, kt, strlen(kt));
	{
		const char *argv[] = {"signify-openbsd", "-V", "-p",     path_pub, "-m",
		                      path_msg,          "-x", path_sig, NULL};
		assert_int_equal(run(argv, &out), 0);
		assert_non_null(strstr(out.data, "Signature Verified"));
		/* Tampered message: one byte changed. */
		write_file(path_msg, "{\"version\":\"v1.4.1\",\"files\":[]}\n", strlen(msg));
		assert_int_not_equal(run(argv, &out), 0);
		assert_non_null(strstr(out.data, "verification failed"));
		write_file(path_msg, msg, strlen(msg));
	}
	{
		/* signify signs with the key file we wrote; we verify its signature. */
		const char *argv[] = {"signify-openbsd", "-S", "-s",      path_key, "-m",
		                      path_msg,          "-x", path_sig2, NULL};
		assert_int_equal(run(argv, &out), 0);
		sig2 = read_file(path_sig2, &n);
		assert_int_equal(sign_sig_parse(sig2, n, &s2, &err), 0);
		assert_int_equal(sign_verify(&p, msg, strlen(msg), &s2, &err), 0);
		/* Ed25519 is deterministic: the same bytes as ours. */
		assert_memory_equal(&s, &s2, sizeof(s));
		free(sig2);
	}
	{
		const char *argv[] = {"rm", "-rf", dir, NULL};
		run(argv, &out);
	}
	buf_release(&out);
	free(pt);
	free(st);
	free(kt);
	sign_key_clear(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answer),
	    cmocka_unit_test(test_parse_strict),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_signify_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
