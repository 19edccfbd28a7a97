/* agent/targets.c: the per repo×target cache cap (least recently used
 * directories go first, never the one kept), size parsing, and the
 * environment a target job's runner gives its steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>

#include "agent/checkout.h"
#include "agent/targets.h"
#include "common/recipe.h"
#include "common/units.h"
#include "common/xalloc.h"
#include "qemu/runner_bwrap.h"

/* <work>/cache/<repo>/<target> holding a file of n bytes in a subdirectory,
 * last used at used_s (its stamp, or the directory's mtime when stamp is 0). */
static void mk_cache(const char *work, const char *repo, const char *target, size_t n, time_t used_s,
                     int stamp)
{
	char path[512], *data = calloc(1, n + 1);
	struct err err = {0};
	struct timespec ts[2] = {{used_s, 0}, {used_s, 0}};
	FILE *f;

	snprintf(path, sizeof(path), "%s/cache/%s/%s/cargo", work, repo, target);
	assert_int_equal(checkout_mkdirs(path, &err), 0);
	snprintf(path, sizeof(path), "%s/cache/%s/%s/cargo/blob", work, repo, target);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
	free(data);
	if (stamp) {
		snprintf(path, sizeof(path), "%s/cache/%s/%s/" TARGETS_CACHE_STAMP, work, repo, target);
		assert_non_null(f = fopen(path, "w"));
		fclose(f);
	} else {
		snprintf(path, sizeof(path), "%s/cache/%s/%s", work, repo, target);
	}
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int exists(const char *work, const char *rel)
{
	char path[512];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/cache/%s", work, rel);
	return stat(path, &sb) == 0;
}

static void test_cache_evict_lru(void **state)
{
	char work[] = "/tmp/anvil-test-cache.XXXXXX";
	struct err err = {0};
	int removed = -1;
	int64_t left = -1;

	(void)state;
	assert_non_null(mkdtemp(work));
	mk_cache(work, "r1", "t1", 1000, 100, 1);
	mk_cache(work, "r1", "t2", 1000, 200, 1);
	mk_cache(work, "r2", "t1", 1000, 300, 1);
	mk_cache(work, "r3", "t1", 1000, 50, 0); /* no stamp: the dir's mtime */

	/* Under the cap: nothing goes. */
	assert_int_equal(targets_cache_evict(work, 4000, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(left, 4000);

	/* The oldest (r3/t1) is the one in use: r1/t1 and r1/t2 go instead. */
	assert_int_equal(targets_cache_evict(work, 2500, "r3", "t1", &removed, &left, &err), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(left, 2000);
	assert_false(exists(work, "r1/t1"));
	assert_false(exists(work, "r1/t2"));
	assert_false(exists(work, "r1")); /* the empty repo dir goes too */
	assert_true(exists(work, "r3/t1"));
	assert_true(exists(work, "r2/t1"));

	/* Nothing kept: least recently used first, only as many as needed. */
	mk_cache(work, "r4", "t1", 1000, 400, 1);
	assert_int_equal(targets_cache_evict(work, 2000, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(left, 2000);
	assert_false(exists(work, "r3"));
	assert_true(exists(work, "r2/t1"));
	assert_true(exists(work, "r4/t1"));

	/* A cap of 0 empties everything but the one kept. */
	assert_int_equal(targets_cache_evict(work, 0, "r4", "t1", &removed, &left, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(left, 1000);
	assert_true(exists(work, "r4/t1/cargo/blob"));

	/* A cache a running job holds (its lock, as targets_cache_take takes
	 * it for another --jobs worker) is passed over, then goes once free. */
	mk_cache(work, "r5", "t1", 1000, 50, 1);
	{
		char lock[512];
		int fd;
		snprintf(lock, sizeof(lock), "%s/cache/r5/.lock-t1", work);
		assert_true((fd = open(lock, O_RDWR | O_CREAT, 0644)) >= 0);
		assert_int_equal(flock(fd, LOCK_EX), 0);
		assert_int_equal(targets_cache_evict(work, 0, "r4", "t1", &removed, &left, &err), 0);
		assert_int_equal(removed, 0);
		assert_true(exists(work, "r5/t1/cargo/blob"));
		close(fd);
		assert_int_equal(targets_cache_evict(work, 0, "r4", "t1", &removed, &left, &err), 0);
		assert_int_equal(removed, 1);
		assert_false(exists(work, "r5/t1"));
	}
	assert_int_equal(checkout_remove_tree(work, &err), 0);

	/* No cache dir at all is fine. */
	assert_int_equal(targets_cache_evict("/nonexistent-anvil", 0, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(removed, 0);
}

/* A directory's size comes from its ledger (.size-<target> beside it) until
 * the directory is used again (its stamp newer than the ledger) or it is the
 * one the job just used: a big cache is not walked after every job. */
static void test_cache_size_ledger(void **state)
{
	char work[] = "/tmp/anvil-test-ledger.XXXXXX", path[512];
	struct err err = {0};
	int removed = -1;
	int64_t left = -1;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(work));
	mk_cache(work, "r1", "t1", 1000, 100, 1);
	mk_cache(work, "r2", "t1", 1000, 200, 1);
	assert_int_equal(targets_cache_evict(work, 1 << 20, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(left, 2000);
	assert_true(exists(work, "r1/.size-t1"));
	assert_true(exists(work, "r2/.size-t1"));

	/* r2/t1 grows behind the ledger's back (no use recorded): still 1000. */
	snprintf(path, sizeof(path), "%s/cache/r2/t1/more", work);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(path, 1, 500, f), 500);
	fclose(f);
	assert_int_equal(targets_cache_evict(work, 1 << 20, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(left, 2000);

	/* The job that just used it: walked again, and its ledger rewritten. */
	assert_int_equal(targets_cache_evict(work, 1 << 20, "r2", "t1", &removed, &left, &err), 0);
	assert_int_equal(left, 2500);
	assert_int_equal(targets_cache_evict(work, 1 << 20, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(left, 2500);

	/* Used since its ledger (stamp now, in the future of the ledger): walked. */
	snprintf(path, sizeof(path), "%s/cache/r1/t1/more", work);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(path, 1, 300, f), 300);
	fclose(f);
	{
		struct timespec ts[2] = {{time(NULL) + 5, 0}, {time(NULL) + 5, 0}};
		snprintf(path, sizeof(path), "%s/cache/r1/t1/" TARGETS_CACHE_STAMP, work);
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	assert_int_equal(targets_cache_evict(work, 1 << 20, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(left, 2800);

	/* A forged or broken ledger is not trusted past a use; an evicted
	 * directory's ledger goes with it. */
	assert_int_equal(targets_cache_evict(work, 1500, NULL, NULL, &removed, &left, &err), 0);
	assert_int_equal(removed, 1);
	assert_false(exists(work, "r2"));
	assert_true(exists(work, "r1/.size-t1"));
	assert_int_equal(checkout_remove_tree(work, &err), 0);
}

static void test_parse_bytes(void **state)
{
	int64_t v = 0;

	(void)state;
	assert_int_equal(units_parse_bytes("10G", &v), 0);
	assert_int_equal(v, INT64_C(10) << 30);
	assert_int_equal(units_parse_bytes("512M", &v), 0);
	assert_int_equal(v, INT64_C(512) << 20);
	assert_int_equal(units_parse_bytes("64KiB", &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(units_parse_bytes("1234", &v), 0);
	assert_int_equal(v, 1234);
	assert_int_equal(units_parse_bytes("", &v), -1);
	assert_int_equal(units_parse_bytes("-1G", &v), -1);
	assert_int_equal(units_parse_bytes("5X", &v), -1);
	assert_int_equal(units_parse_bytes("9999999999999G", &v), -1);
}

/* The value of --setenv NAME in a bwrap argv, or NULL. */
static const char *argv_env(const struct strv *argv, const char *name)
{
	for (size_t i = 0; i + 2 < argv->n; i++)
		if (strcmp(argv->v[i], "--setenv") == 0 && strcmp(argv->v[i + 1], name) == 0)
			return argv->v[i + 2];
	return NULL;
}

/* A native recipe (no binfmt needed) whose cached trees are in place, so
 * targets_runner_new finds them instead of building them. */
#define TEST_TRIPLE "x86_64-unknown-linux-gnu"
static char *mk_native_target(char *dir)
{
	static const char recipe[] = "triple: " TEST_TRIPLE "\n"
	                             "debian_arch: amd64\n"
	                             "gnu_triple: x86_64-linux-gnu\n"
	                             "qemu: none\n"
	                             "env:\n  CROSS_DEB_ARCH: amd64\n";
	struct recipe *r = NULL;
	struct err err = {0};
	char hash[65], *path;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/recipes", dir);
	assert_int_equal(checkout_mkdirs(path, &err), 0);
	free(path);
	path = xasprintf("%s/recipes/" TEST_TRIPLE ".yml", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(recipe, f);
	fclose(f);
	free(path);
	assert_int_equal(recipe_parse(recipe, sizeof(recipe) - 1, &r, &err), 0);
	recipe_hash_hex(r, hash);
	path = xasprintf("%s/cache/rootfs/" TEST_TRIPLE "-%s", dir, hash);
	assert_int_equal(checkout_mkdirs(path, &err), 0);
	free(path);
	recipe_toolroot_hash_hex(r, "amd64", hash);
	path = xasprintf("%s/cache/toolroot/" TEST_TRIPLE "-%s", dir, hash);
	assert_int_equal(checkout_mkdirs(path, &err), 0);
	free(path);
	recipe_free(r);
	return xasprintf("%s/recipes", dir);
}

static void test_gnu_triple_env(void **state)
{
	char dir[] = "/tmp/anvil-test-targets-XXXXXX";
	const char *modes[] = {"cross", "emulated"};
	char *recipes, *cache, *work;
	struct err err = {0};

	(void)state;
	recipes = mk_native_target(dir);
	cache = xasprintf("%s/cache", dir);
	work = xasprintf("%s/work", dir);
	for (size_t i = 0; i < 2; i++) {
		struct targets_opts o = {
		    .recipes_dir = recipes, .cache_dir = cache, .work_dir = work, .select = TEST_TRIPLE};
		struct targets_job job = {.target = TEST_TRIPLE, .repo_name = "repo", .mode = modes[i]};
		struct step_spec step = {.name = "s", .run = "true", .workspace = dir};
		struct strv argv = STRV_INIT;
		char *desc = NULL, *warning = NULL;
		struct runner *r = targets_runner_new(&o, &job, &desc, &warning, &err);

		if (r == NULL)
			fail_msg("%s: %s", modes[i], err.msg);
		assert_int_equal(runner_bwrap_argv(targets_runner_inner(r), &step, &argv, &err), 0);
		assert_non_null(argv_env(&argv, "ANVIL_GNU_TRIPLE"));
		assert_string_equal(argv_env(&argv, "ANVIL_GNU_TRIPLE"), "x86_64-linux-gnu");
		assert_string_equal(argv_env(&argv, "ANVIL_MODE"), modes[i]);
		strv_release(&argv);
		free(desc);
		free(warning);
		runner_free(r);
	}
	assert_int_equal(checkout_remove_tree(dir, &err), 0);
	free(recipes);
	free(cache);
	free(work);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_evict_lru),
	    cmocka_unit_test(test_cache_size_ledger),
	    cmocka_unit_test(test_parse_bytes),
	    cmocka_unit_test(test_gnu_triple_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
