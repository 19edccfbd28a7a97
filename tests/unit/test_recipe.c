#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/recipe.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The repository's recipes/ dir, found from this file's own path. */
static char *test_recipes_dir(void)
{
	const char *me = __FILE__;
	const char *cut = strstr(me, "tests/unit/");

	if (getenv("ANVIL_SOURCE_DIR") != NULL)
		return xasprintf("%s/recipes", getenv("ANVIL_SOURCE_DIR"));
	assert_non_null(cut);
	if (cut == me)
		return xstrdup("recipes");
	return xasprintf("%.*srecipes", (int)(cut - me), me);
}

static struct recipe *test_parse_ok(const char *text)
{
	struct recipe *r = NULL;
	struct err err = {0};

	if (recipe_parse(text, strlen(text), &r, &err) < 0)
		fail_msg("parse failed: %s", err.msg);
	return r;
}

static void test_parse_err(const char *text, enum err_code code, const char *want)
{
	struct recipe *r = NULL;
	struct err err = {0};

	assert_int_equal(recipe_parse(text, strlen(text), &r, &err), -1);
	assert_null(r);
	assert_int_equal(err.code, code);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
}

static const char *env_get(const struct strv *sv, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, n) == 0 && sv->v[i][n] == '=')
			return sv->v[i] + n + 1;
	return NULL;
}

static size_t env_count(const struct strv *sv, const char *key)
{
	size_t n = strlen(key), c = 0;

	for (size_t i = 0; i < sv->n; i++)
		if (strncmp(sv->v[i], key, n) == 0 && sv->v[i][n] == '=')
			c++;
	return c;
}

static void test_shipped_recipes(void **state)
{
	static const struct {
		const char *triple, *arch, *gnu, *qemu, *pkgdir;
	} want[] = {
	    {"aarch64-unknown-linux-gnu", "arm64", "aarch64-linux-gnu", "qemu-aarch64-static",
	     "aarch64-linux-gnu"},
	    {"armv7-unknown-linux-gnueabihf", "armhf", "arm-linux-gnueabihf", "qemu-arm-static",
	     "arm-linux-gnueabihf"},
	    {"x86_64-unknown-linux-gnu", "amd64", "x86_64-linux-gnu", NULL, "x86_64-linux-gnu"},
	};
	char *dir = test_recipes_dir();
	(void)state;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct recipe *r = NULL;
		struct strv cross = STRV_INIT, emu = STRV_INIT;
		struct err err = {0};
		char *pc = xasprintf("/sysroot/usr/lib/%s/pkgconfig", want[i].pkgdir);

		if (recipe_load(dir, want[i].triple, &r, &err) < 0)
			fail_msg("%s: %s", want[i].triple, err.msg);
		assert_string_equal(r->triple, want[i].triple);
		assert_string_equal(r->debian_arch, want[i].arch);
		assert_string_equal(r->gnu_triple, want[i].gnu);
		if (want[i].qemu == NULL)
			assert_null(r->qemu);
		else
			assert_string_equal(r->qemu, want[i].qemu);
		assert_string_equal(r->suite, "bookworm");
		assert_string_equal(r->mirror, "http://deb.debian.org/debian");
		assert_int_equal(r->mode, RECIPE_MODE_CROSS);
		assert_true(r->packages.n >= 1);

		recipe_env_for_mode(r, RECIPE_MODE_CROSS, &cross);
		assert_non_null(env_get(&cross, "CC"));
		assert_non_null(strstr(env_get(&cross, "CC"), want[i].gnu));
		assert_non_null(strstr(env_get(&cross, "CC"), "--sysroot=/sysroot"));
		assert_string_equal(env_get(&cross, "PKG_CONFIG_SYSROOT_DIR"), "/sysroot");
		assert_non_null(strstr(env_get(&cross, "PKG_CONFIG_LIBDIR"), pc));
		assert_string_equal(env_get(&cross, "CROSS_DEB_ARCH"), want[i].arch);
		assert_string_equal(env_get(&cross, "CROSS_SYSROOT"), "/sysroot");

		recipe_env_for_mode(r, RECIPE_MODE_EMULATED, &emu);
		assert_string_equal(env_get(&emu, "CC"), "gcc");
		assert_string_equal(env_get(&emu, "CROSS_SYSROOT"), "/");
		assert_string_equal(env_get(&emu, "CROSS_DEB_ARCH"), want[i].arch);
		assert_null(env_get(&emu, "PKG_CONFIG_SYSROOT_DIR"));

		strv_release(&cross);
		strv_release(&emu);
		free(pc);
		recipe_free(r);
	}
	free(dir);
}

static void test_defaults_and_modes(void **state)
{
	struct recipe *r =
	    test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: aarch64-linux-gnu\nqemu: none\n");
	struct err err = {0};
	enum recipe_mode m;
	(void)state;

	assert_string_equal(r->suite, "bookworm");
	assert_string_equal(r->mirror, "http://deb.debian.org/debian");
	assert_int_equal(r->mode, RECIPE_MODE_CROSS);
	assert_null(r->qemu);
	assert_int_equal(r->packages.n, 0);
	recipe_free(r);

	r = test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: g\nqemu: qemu-aarch64-static\n"
	                  "mode: emulated\nsuite: trixie\nmirror: https://mirror.example/debian\n");
	assert_int_equal(r->mode, RECIPE_MODE_EMULATED);
	assert_string_equal(r->suite, "trixie");
	assert_string_equal(r->mirror, "https://mirror.example/debian");
	recipe_free(r);

	assert_int_equal(recipe_mode_parse("emulated", &m, &err), 0);
	assert_int_equal(m, RECIPE_MODE_EMULATED);
	assert_string_equal(recipe_mode_name(m), "emulated");
	assert_int_equal(recipe_mode_parse("native", &m, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	recipe_free(NULL);
}

static void test_env_override(void **state)
{
	struct recipe *r = test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: g\nqemu: none\n"
	                                 "env:\n  CC: common-cc\n  ONLY_COMMON: \"1\"\n"
	                                 "env_cross:\n  CC: cross-cc\n"
	                                 "env_emulated:\n  EMU: yes\n");
	struct strv cross = STRV_INIT, emu = STRV_INIT;
	(void)state;

	recipe_env_for_mode(r, RECIPE_MODE_CROSS, &cross);
	assert_int_equal(env_count(&cross, "CC"), 1);
	assert_string_equal(env_get(&cross, "CC"), "cross-cc");
	assert_string_equal(env_get(&cross, "ONLY_COMMON"), "1");
	assert_null(env_get(&cross, "EMU"));
	recipe_env_for_mode(r, RECIPE_MODE_EMULATED, &emu);
	assert_string_equal(env_get(&emu, "CC"), "common-cc");
	assert_string_equal(env_get(&emu, "EMU"), "yes");
	strv_release(&cross);
	strv_release(&emu);
	recipe_free(r);
}

#define HEAD "triple: t1\ndebian_arch: arm64\ngnu_triple: g\nqemu: none\n"

static void test_errors_name_the_line(void **state)
{
	(void)state;
	test_parse_err(HEAD "colour: blue\n", ERR_INVAL, "line 5: unknown field");
	test_parse_err(HEAD "packages: gcc\n", ERR_INVAL, "line 5: packages: expected a list");
	test_parse_err(HEAD "packages:\n  - gcc\n  - \"bad,name\"\n", ERR_INVAL,
	               "line 7: packages: bad Debian");
	test_parse_err(HEAD "packages:\n  - [nested]\n", ERR_INVAL, "line 6: packages: expected a list");
	test_parse_err(HEAD "env:\n  1BAD: x\n", ERR_INVAL, "line 6: env: bad variable name");
	test_parse_err(HEAD "env:\n  A: x\n  A: y\n", ERR_INVAL, "line 7: env: A given twice");
	test_parse_err(HEAD "env_cross:\n  A: [1]\n", ERR_INVAL, "line 6: env_cross: A: expected a string");
	test_parse_err(HEAD "env: [a]\n", ERR_INVAL, "line 5: env: expected a map");
	test_parse_err(HEAD "mode: native\n", ERR_INVAL, "line 5: mode");
	test_parse_err(HEAD "mirror: ftp://x\n", ERR_INVAL, "line 5: mirror");
	test_parse_err(HEAD "suite: \"-rf\"\n", ERR_INVAL, "line 5: suite");
	test_parse_err(HEAD "triple: t2\n", ERR_INVAL, "line 5: triple given twice");
	test_parse_err("triple: ../x\n", ERR_INVAL, "line 1: triple");
	test_parse_err("triple: t1\ndebian_arch: arm64\n", ERR_INVAL, "needs triple, debian_arch");
	test_parse_err("triple: t1\n  bad: [\n", ERR_INVAL, "line 2");
	test_parse_err("- a\n- b\n", ERR_INVAL, "line 1: a recipe is a map");
	test_parse_err("", ERR_INVAL, "empty recipe");
}

static void test_limits(void **state)
{
	struct buf b = BUF_INIT;
	struct recipe *r = NULL;
	struct err err = {0};
	(void)state;

	buf_appendf(&b, HEAD "packages:\n");
	for (int i = 0; i <= RECIPE_MAX_ENTRIES; i++)
		buf_appendf(&b, "  - p%d\n", i);
	assert_int_equal(recipe_parse(b.data, b.len, &r, &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
	buf_reset(&b);
	while (b.len <= RECIPE_MAX_BYTES)
		buf_appendf(&b, "# padding padding padding padding padding padding\n");
	assert_int_equal(recipe_parse(b.data, b.len, &r, &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
	/* An embedded NUL is not silently cut off. */
	assert_int_equal(recipe_parse("triple: a\0b\n", 12, &r, &err), -1);
	assert_null(r);
	buf_release(&b);
}

static void test_load_validates_triple(void **state)
{
	char *dir = test_recipes_dir();
	char tmpl[] = "/tmp/test_recipe.XXXXXX";
	struct recipe *r = NULL;
	struct err err = {0};
	char *path;
	FILE *f;
	(void)state;

	assert_int_equal(recipe_load(dir, "../../etc/passwd", &r, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(recipe_load(dir, "", &r, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(recipe_load(dir, "Aarch64", &r, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(recipe_load(dir, "mips-unknown-linux-gnu", &r, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_null(r);

	assert_non_null(mkdtemp(tmpl));
	path = xasprintf("%s/foo.yml", tmpl);
	assert_non_null(f = fopen(path, "w"));
	fputs("triple: bar\ndebian_arch: arm64\ngnu_triple: g\nqemu: none\n", f);
	fclose(f);
	assert_int_equal(recipe_load(tmpl, "foo", &r, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "says triple bar"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(tmpl), 0);
	free(path);
	free(dir);
}

static void test_hash(void **state)
{
	struct recipe *a = test_parse_ok(HEAD "packages: [gcc, make, libc6-dev]\nenv:\n  CC: x\n");
	struct recipe *b = test_parse_ok(HEAD "packages: [libc6-dev, make, gcc, make]\nmode: emulated\n");
	struct recipe *c = test_parse_ok(HEAD "packages: [gcc, make, libc6-dev, libssl-dev]\n");
	struct recipe *d = test_parse_ok("triple: t1\ndebian_arch: armhf\ngnu_triple: g\nqemu: none\n"
	                                 "packages: [gcc, make, libc6-dev]\n");
	struct recipe *e = test_parse_ok(HEAD "packages: [gcc, make, libc6-dev]\nsuite: trixie\n");
	char ha[65], hb[65], hc[65], hd[65], he[65];
	(void)state;

	recipe_hash_hex(a, ha);
	recipe_hash_hex(b, hb);
	recipe_hash_hex(c, hc);
	recipe_hash_hex(d, hd);
	recipe_hash_hex(e, he);
	assert_int_equal(strlen(ha), 64);
	assert_string_equal(ha, hb); /* order, duplicates, env and mode do not shape the rootfs */
	assert_string_not_equal(ha, hc);
	assert_string_not_equal(ha, hd);
	assert_string_not_equal(ha, he);
	recipe_free(a);
	recipe_free(b);
	recipe_free(c);
	recipe_free(d);
	recipe_free(e);
}

/* The toolroot: the cross toolchain named after gnu_triple (native names
 * for the host's own arch), make, pkg-config, then host_packages; its hash
 * follows what shapes the tree (host arch, gnu_triple, qemu, packages) and
 * not the target rootfs's packages. */
static void test_toolroot(void **state)
{
	struct recipe *a = test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: aarch64-linux-gnu\n"
	                                 "qemu: qemu-aarch64-static\npackages: [libssl-dev]\n"
	                                 "host_packages: [autoconf, texinfo]\n");
	struct recipe *b = test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: aarch64-linux-gnu\n"
	                                 "qemu: qemu-aarch64-static\npackages: [libc6-dev]\n"
	                                 "host_packages: [texinfo, autoconf, texinfo]\n");
	struct recipe *c = test_parse_ok("triple: t1\ndebian_arch: arm64\ngnu_triple: aarch64-linux-gnu\n"
	                                 "qemu: qemu-aarch64-static\n");
	struct recipe *x = test_parse_ok("triple: t2\ndebian_arch: amd64\ngnu_triple: x86_64-linux-gnu\n"
	                                 "qemu: none\n");
	struct strv p = STRV_INIT;
	char ha[65], hb[65], hc[65], hd[65];
	(void)state;

	recipe_toolroot_packages(a, "amd64", &p);
	assert_int_equal(p.n, 7);
	assert_string_equal(p.v[0], "gcc-aarch64-linux-gnu");
	assert_string_equal(p.v[1], "g++-aarch64-linux-gnu");
	assert_string_equal(p.v[2], "binutils-aarch64-linux-gnu");
	assert_string_equal(p.v[3], "make");
	assert_string_equal(p.v[4], "pkg-config");
	assert_string_equal(p.v[5], "autoconf");
	strv_release(&p);
	recipe_toolroot_packages(x, "arm64", &p); /* Debian spells the triple's '_' as '-' */
	assert_string_equal(p.v[0], "gcc-x86-64-linux-gnu");
	strv_release(&p);
	recipe_toolroot_packages(x, "amd64", &p); /* the host's own arch: the native compiler */
	assert_string_equal(p.v[0], "gcc");
	assert_string_equal(p.v[1], "g++");
	strv_release(&p);
	recipe_toolroot_hash_hex(a, "amd64", ha);
	recipe_toolroot_hash_hex(b, "amd64", hb);
	recipe_toolroot_hash_hex(c, "amd64", hc);
	recipe_toolroot_hash_hex(a, "arm64", hd);
	assert_string_equal(ha, hb); /* order, duplicates, the target's packages: same tree */
	assert_string_not_equal(ha, hc);
	assert_string_not_equal(ha, hd);
	test_parse_err("triple: t1\ndebian_arch: arm64\ngnu_triple: g\nqemu: none\nhost_packages:\n  - ok\n  "
	               "- 'no way'\n",
	               ERR_INVAL, "line 7: host_packages: bad Debian package name");
	recipe_free(a);
	recipe_free(b);
	recipe_free(c);
	recipe_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped_recipes),       cmocka_unit_test(test_toolroot),
	    cmocka_unit_test(test_defaults_and_modes),    cmocka_unit_test(test_env_override),
	    cmocka_unit_test(test_errors_name_the_line),  cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_load_validates_triple), cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
