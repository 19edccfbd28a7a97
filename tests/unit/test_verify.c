/* The board-side release check behind anvil-verify (deploy/verify.c): the
 * SHA256SUMS and manifest parsers, the manifest lookup, and whole checks of
 * a release directory signed here (tampered file, manifest, other key,
 * missing file, a name not in the manifest). tests/e2e/t_verify.sh runs the
 * binary against releases signed by the real signify-openbsd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sign.h"
#include "common/xalloc.h"
#include "deploy/verify.h"

#define H1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_sums_parse(void **state)
{
	struct verify_list l = {0};
	struct err err = {0};
	const char ok[] = H1 "  app\n" H1 " *bin/tool\n\n";

	(void)state;
	assert_int_equal(verify_sums_parse(ok, strlen(ok), &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "app");
	assert_string_equal(l.v[1].name, "bin/tool");
	assert_string_equal(l.v[1].sha256, H1);
	verify_list_release(&l);

	/* No trailing newline is fine. */
	assert_int_equal(verify_sums_parse(H1 "  app", strlen(H1 "  app"), &l, &err), 0);
	verify_list_release(&l);

	static const char *const bad[] = {
	    "",                                                                        /* nothing listed */
	    "\n\n",                                                                    /* nothing listed */
	    H1 " app\n",                                                               /* one space */
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef  app\n", /* upper */
	    "0123  app\n",                                                             /* short hash */
	    H1 "  /etc/passwd\n",                                                      /* absolute */
	    H1 "  ../x\n",                                                             /* escapes */
	    H1 "  a/../../x\n",                                                        /* escapes */
	    H1 "  a//b\n",                                                             /* empty component */
	    H1 "  ./a\n",                                                              /* dot */
	    H1 "  a\\nb\n", /* sha256sum's escaped names */
	    H1 "  a\tb\n",  /* control char */
	    H1 "  \n",      /* empty name */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&l, 0, sizeof(l));
		err_clear(&err);
		assert_int_equal(verify_sums_parse(bad[i], strlen(bad[i]), &l, &err), -1);
		assert_int_equal(err.code, ERR_INVAL);
		assert_null(l.v);
	}
	assert_int_equal(verify_sums_parse(H1 "  a\n" H1 "  b", 10, &l, &err), -1); /* cut short */
}

static void test_manifest_parse(void **state)
{
	const char m[] =
	    "{\"version\":\"v1\",\"files\":[{\"target\":\"t\",\"path\":\"t/app\",\"sha256\":\"" H1 "\"}]}";
	struct verify_list l = {0};
	struct err err = {0};
	char *version = NULL;

	(void)state;
	assert_int_equal(verify_manifest_parse(m, strlen(m), &version, &l, &err), 0);
	assert_string_equal(version, "v1");
	assert_int_equal(l.n, 1);
	assert_true(verify_manifest_has(&l, "app", H1));
	assert_true(verify_manifest_has(&l, "t/app", H1));
	assert_false(verify_manifest_has(&l, "pp", H1));
	assert_false(verify_manifest_has(&l, "/app", H1));
	assert_false(verify_manifest_has(&l, "app",
	                                 "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	verify_list_release(&l);
	free(version);

	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"files\":[]}",
	    "{\"version\":1,\"files\":[]}",
	    "{\"version\":\"v\",\"files\":{}}",
	    "{\"version\":\"v\",\"files\":[{\"path\":\"a\"}]}",
	    "{\"version\":\"v\",\"files\":[{\"path\":\"a\",\"sha256\":\"00\"}]}",
	    "{\"version\":\"v\",\"version\":\"w\",\"files\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		version = NULL;
		err_clear(&err);
		assert_int_equal(verify_manifest_parse(bad[i], strlen(bad[i]), &version, &l, &err), -1);
		assert_int_equal(err.code, ERR_INVAL);
		assert_null(version);
	}
}

struct rel {
	char dir[64];
	struct sign_key key, other;
};

static void put(const struct rel *r, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", r->dir, name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	free(path);
}

/* A signed release of one file "app" (content), its manifest listing
 * path_in_manifest, and SHA256SUMS. */
static void make_release(struct rel *r, const char *content, const char *path_in_manifest)
{
	char sha[CRYPTO_SHA256_HEX_LEN + 1], *m, *sums, *sig_text, *pub_text;
	struct sign_sig sig;
	struct sign_pub pub;
	struct err err = {0};

	crypto_sha256_hex(content, strlen(content), sha);
	put(r, "app", content);
	m = xasprintf("{\"version\":\"v9\",\"files\":[{\"path\":\"%s\",\"sha256\":\"%s\"}]}\n",
	              path_in_manifest, sha);
	put(r, "manifest.json", m);
	assert_int_equal(sign_message(&r->key, m, strlen(m), &sig, &err), 0);
	sig_text = sign_sig_format(&sig, "verify with anvil-release.pub");
	put(r, "manifest.json.sig", sig_text);
	sign_key_pub(&r->key, &pub);
	pub_text = sign_pub_format(&pub, "anvil release key");
	put(r, "anvil-release.pub", pub_text);
	sign_key_pub(&r->other, &pub);
	free(pub_text);
	pub_text = sign_pub_format(&pub, "another key");
	put(r, "other.pub", pub_text);
	sums = xasprintf("%s  app\n", sha);
	put(r, "SHA256SUMS", sums);
	free(m);
	free(sums);
	free(sig_text);
	free(pub_text);
}

static int check(const char *pubkey, struct err *err)
{
	struct verify_paths p = {pubkey, "manifest.json", "manifest.json.sig", "SHA256SUMS"};
	struct verify_report rep;
	int rc;

	err_clear(err);
	rc = verify_release(&p, &rep, err);
	if (rc == 0) {
		assert_int_equal(rep.n_files, 1);
		assert_string_equal(rep.version, "v9");
	}
	verify_report_release(&rep);
	return rc;
}

static void test_release(void **state)
{
	struct rel r;
	struct err err = {0};
	char cwd[4096];
	char *cmd;

	(void)state;
	snprintf(r.dir, sizeof(r.dir), "/tmp/anvil-test-verify.XXXXXX");
	assert_non_null(mkdtemp(r.dir));
	assert_int_equal(sign_keygen(&r.key, &err), 0);
	assert_int_equal(sign_keygen(&r.other, &err), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(r.dir), 0);

	make_release(&r, "hello\n", "aarch64-unknown-linux-gnu/app");
	assert_int_equal(check("anvil-release.pub", &err), 0);

	assert_int_equal(check("other.pub", &err), -1);
	assert_non_null(strstr(err.msg, "not by key"));

	put(&r, "app", "hellO\n");
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_non_null(strstr(err.msg, "app: sha256 "));

	make_release(&r, "hello\n", "t/app");
	put(&r, "manifest.json", "{\"version\":\"v9\",\"files\":[]} \n");
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_non_null(strstr(err.msg, "signature verification failed"));

	/* Signed, but the file it lists is another one. */
	make_release(&r, "hello\n", "t/other");
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_non_null(strstr(err.msg, "is not in manifest.json"));

	make_release(&r, "hello\n", "app");
	assert_int_equal(unlink("app"), 0);
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_string_equal(err.msg, "app: missing");

	make_release(&r, "hello\n", "app");
	assert_int_equal(unlink("manifest.json.sig"), 0);
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_non_null(strstr(err.msg, "manifest.json.sig: missing"));

	put(&r, "manifest.json.sig", "untrusted comment: x\nnot base64!\n");
	assert_int_equal(check("anvil-release.pub", &err), -1);
	assert_non_null(strstr(err.msg, "manifest.json.sig"));

	assert_int_equal(chdir(cwd), 0);
	cmd = xasprintf("rm -rf %s", r.dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	sign_key_clear(&r.key);
	sign_key_clear(&r.other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sums_parse),
	    cmocka_unit_test(test_manifest_parse),
	    cmocka_unit_test(test_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
