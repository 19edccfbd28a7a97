/* anvil-verify for boards (agent/verifier.c): the arch → triple mapping,
 * the embedded sources (what an installed agent compiles), the version line
 * with their source id, the cache (a cached build is used as is, nothing
 * built) and a target the agent does not serve. The cross build itself runs
 * in tests/e2e/t_deploy_release.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/verifier.h"
#include "common/xalloc.h"

static void test_triples(void **state)
{
	(void)state;
	assert_string_equal(verifier_triple_for_arch("aarch64"), "aarch64-unknown-linux-gnu");
	assert_string_equal(verifier_triple_for_arch("arm64"), "aarch64-unknown-linux-gnu");
	assert_string_equal(verifier_triple_for_arch("armv7l"), "armv7-unknown-linux-gnueabihf");
	assert_string_equal(verifier_triple_for_arch("armv7"), "armv7-unknown-linux-gnueabihf");
	assert_string_equal(verifier_triple_for_arch("armhf"), "armv7-unknown-linux-gnueabihf");
	assert_string_equal(verifier_triple_for_arch("x86_64"), "x86_64-unknown-linux-gnu");
	assert_null(verifier_triple_for_arch("riscv64"));
	assert_null(verifier_triple_for_arch(""));
	assert_null(verifier_triple_for_arch(NULL));
}

/* The source tree: CMake compiles this file by its absolute path. */
static char *source_dir(void)
{
	const char *me = __FILE__, *cut = strstr(me, "/tests/unit/");

	return cut != NULL ? xstrndup(me, (size_t)(cut - me)) : xstrdup(".");
}

/* Every embedded file is the source tree's, byte for byte, and the .c
 * files include deploy/verify_main.c. */
static void test_sources(void **state)
{
	char *src = source_dir();
	int has_main = 0;

	(void)state;
	assert_true(verifier_srcs_count >= 10);
	for (size_t i = 0; i < verifier_srcs_count; i++) {
		const struct verifier_src *s = &verifier_srcs[i];
		char *path = xasprintf("%s/%s", src, s->path);
		FILE *f = fopen(path, "rb");
		char *data = xmalloc(s->len + 1);

		assert_non_null(f);
		assert_int_equal(fread(data, 1, s->len + 1, f), s->len);
		assert_memory_equal(data, s->text, s->len);
		fclose(f);
		free(data);
		free(path);
		has_main |= strcmp(s->path, "deploy/verify_main.c") == 0;
	}
	assert_true(has_main);
	free(src);
}

static void test_cache(void **state)
{
	char dir[] = "/tmp/anvil-test-verifier.XXXXXX";
	struct strv labels = STRV_INIT;
	struct targets_opts to = {0};
	struct verifier *v;
	struct err err = {0};
	char *path = NULL, *cached, *cmd;
	const char *line;
	int64_t built_ms = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	strv_push(&labels, "arch=x86_64");
	strv_push(&labels, "target=host");
	strv_push(&labels, "target=aarch64-unknown-linux-gnu");
	to.work_dir = dir;
	to.recipes_dir = "/nonexistent";
	v = verifier_new(&to, &labels);
	line = verifier_version_line(v);
	assert_int_equal(strncmp(line, "anvil-verify " ANVIL_VERSION " src ",
	                         strlen("anvil-verify " ANVIL_VERSION " src ")),
	                 0);
	assert_int_equal(strlen(line), strlen("anvil-verify " ANVIL_VERSION " src ") + VERIFIER_SRC_ID_LEN);
	assert_true(verifier_serves(v, "aarch64-unknown-linux-gnu"));
	assert_false(verifier_serves(v, "host"));
	assert_false(verifier_serves(v, "armv7-unknown-linux-gnueabihf"));

	assert_int_equal(verifier_binary(v, "armv7-unknown-linux-gnueabihf", &path, &built_ms, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_null(path);

	/* A build in the cache (keyed by triple and source id) is used as is:
	 * no recipe is loaded, nothing is compiled. */
	cached = xasprintf("%s/cache/" VERIFIER_CACHE "/aarch64-unknown-linux-gnu-%s", dir,
	                   line + strlen(line) - VERIFIER_SRC_ID_LEN);
	cmd = xasprintf("mkdir -p %s", cached);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	cmd = xasprintf("%s/anvil-verify", cached);
	assert_non_null(f = fopen(cmd, "w"));
	fclose(f);
	assert_int_equal(verifier_binary(v, "aarch64-unknown-linux-gnu", &path, &built_ms, &err), 0);
	assert_string_equal(path, cmd);
	assert_int_equal(built_ms, -1);
	free(path);
	free(cmd);
	free(cached);

	/* Not cached and no recipe: the build fails, saying so. */
	unlink(path = xasprintf("%s/cache/" VERIFIER_CACHE "/aarch64-unknown-linux-gnu-%s/anvil-verify", dir,
	                        line + strlen(line) - VERIFIER_SRC_ID_LEN));
	free(path);
	path = NULL;
	assert_int_equal(verifier_binary(v, "aarch64-unknown-linux-gnu", &path, &built_ms, &err), -1);
	assert_null(path);

	verifier_free(v);
	strv_release(&labels);
	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_triples),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
