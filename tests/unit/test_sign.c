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
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_signify_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
