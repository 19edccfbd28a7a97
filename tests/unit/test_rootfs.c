/* The cache of derived trees (qemu/rootfs.c) without building one: plain
 * directories named as rootfs_derive names them stand for tools: trees.
 * rootfs_prune_derived keeps the most recently used (mtime) and never
 * removes one in use (rootfs_hold) or being built (its lock held
 * exclusively); rootfs_hold marks the use and reports a pruned tree. The
 * derive itself (debootstrap, apt) runs in test_bwrap and the e2e tests. */
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

#include "qemu/rootfs.h"
#include "common/xalloc.h"

#define BASE "aarch64-unknown-linux-gnu-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fx {
	char *cache;
	char *tr; /* <cache>/toolroot */
	char *rf; /* <cache>/rootfs */
};

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/anvil-test-rootfs.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	f->cache = xstrdup(tmpl);
	f->tr = xasprintf("%s/toolroot", f->cache);
	f->rf = xasprintf("%s/rootfs", f->cache);
	assert_int_equal(mkdir(f->tr, 0755), 0);
	assert_int_equal(mkdir(f->rf, 0755), 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->cache);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->cache);
	free(f->tr);
	free(f->rf);
	free(f);
	return 0;
}

/* A derived tree dir/<BASE>-<tag>-<hex16> with a file, its .lock and .log,
 * last used age_s seconds ago. Returns its path (caller frees). */
static char *mk_tree(const char *dir, const char *tag, const char *hex16, int age_s)
{
	char *p = xasprintf("%s/%s-%s-%s", dir, BASE, tag, hex16);
	char *f = xasprintf("%s/file", p), *lock = xasprintf("%s.lock", p), *logp = xasprintf("%s.log", p);
	struct timespec ts[2];
	FILE *fp;

	assert_int_equal(mkdir(p, 0755), 0);
	assert_non_null(fp = fopen(f, "w"));
	fputs("x\n", fp);
	fclose(fp);
	assert_non_null(fp = fopen(lock, "w"));
	fclose(fp);
	assert_non_null(fp = fopen(logp, "w"));
	fclose(fp);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age_s;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(f);
	free(lock);
	free(logp);
	return p;
}

static int exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static int exists_sfx(const char *p, const char *sfx)
{
	char *q = xasprintf("%s%s", p, sfx);
	int e = exists(q);

	free(q);
	return e;
}

/* The most recently used are kept, across rootfs/ and toolroot/; the rest
 * go with their logs (lock files stay); bases, .tmp copies and trees of
 * another tag are not touched; keep 0 removes every unused one. */
static void test_prune_keeps_recent(void **state)
{
	struct fx *f = *state;
	char *t1 = mk_tree(f->tr, "tools", "1111111111111111", 400);
	char *t2 = mk_tree(f->rf, "tools", "2222222222222222", 300);
	char *t3 = mk_tree(f->tr, "tools", "3333333333333333", 200);
	char *t4 = mk_tree(f->rf, "tools", "4444444444444444", 100);
	char *pre = mk_tree(f->rf, "pre", "5555555555555555", 1000);
	char *base = xasprintf("%s/%s", f->tr, BASE),
	     *tmp = xasprintf("%s/%s-tools-6666666666666666.tmp", f->tr, BASE);
	struct err err = {0};
	size_t removed = 99;

	assert_int_equal(mkdir(base, 0755), 0);
	assert_int_equal(mkdir(tmp, 0755), 0);
	assert_int_equal(rootfs_prune_derived(f->cache, "tools", 2, &removed, &err), 0);
	assert_int_equal(removed, 2);
	assert_false(exists(t1));
	assert_false(exists(t2));
	assert_true(exists(t3));
	assert_true(exists(t4));
	assert_false(exists_sfx(t1, ".log"));
	assert_true(exists_sfx(t1, ".lock"));
	assert_true(exists(pre));
	assert_true(exists(base));
	assert_true(exists(tmp));
	assert_int_equal(rootfs_prune_derived(f->cache, "tools", 2, &removed, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(rootfs_prune_derived(f->cache, "tools", 0, &removed, &err), 0);
	assert_int_equal(removed, 2);
	assert_false(exists(t3));
	assert_false(exists(t4));
	assert_true(exists(pre));
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	free(pre);
	free(base);
	free(tmp);
}

/* A held tree survives a prune that would take it by age; once released it
 * goes. One whose lock a builder holds is skipped too. */
static void test_prune_skips_held(void **state)
{
	struct fx *f = *state;
	char *old = mk_tree(f->tr, "tools", "aaaaaaaaaaaaaaaa", 500);
	char *building = mk_tree(f->tr, "tools", "bbbbbbbbbbbbbbbb", 400);
	char *recent = mk_tree(f->tr, "tools", "cccccccccccccccc", 10);
	char *block = xasprintf("%s.lock", building);
	struct timespec back[2];
	struct err err = {0};
	size_t removed = 0;
	int hold = -1, bfd;

	assert_int_equal(rootfs_hold(old, NULL, &hold, &err), 0);
	assert_true(hold >= 0);
	/* Age it again: only the hold may save it now. */
	clock_gettime(CLOCK_REALTIME, &back[0]);
	back[0].tv_sec -= 500;
	back[1] = back[0];
	assert_int_equal(utimensat(AT_FDCWD, old, back, 0), 0);
	assert_true((bfd = open(block, O_RDWR | O_CLOEXEC)) >= 0);
	assert_int_equal(flock(bfd, LOCK_EX), 0);

	assert_int_equal(rootfs_prune_derived(f->cache, "tools", 1, &removed, &err), 0);
	assert_int_equal(removed, 0);
	assert_true(exists(old));
	assert_true(exists(building));
	assert_true(exists(recent));

	close(hold);
	close(bfd);
	assert_int_equal(rootfs_prune_derived(f->cache, "tools", 1, &removed, &err), 0);
	assert_int_equal(removed, 2);
	assert_false(exists(old));
	assert_false(exists(building));
	assert_true(exists(recent));
	free(old);
	free(building);
	free(recent);
	free(block);
}

/* rootfs_hold marks the use (mtime now, so a used tree is the last to go)
 * and says ERR_NOTFOUND for a tree pruned meanwhile. */
static void test_hold(void **state)
{
	struct fx *f = *state;
	char *t = mk_tree(f->tr, "tools", "dddddddddddddddd", 1000);
	char *gone = xasprintf("%s/%s-tools-eeeeeeeeeeeeeeee", f->tr, BASE);
	struct err err = {0};
	struct stat st;
	int fd = -1;

	assert_int_equal(rootfs_hold(t, NULL, &fd, &err), 0);
	assert_int_equal(stat(t, &st), 0);
	assert_true(st.st_mtime > time(NULL) - 60);
	close(fd);
	fd = -1;
	assert_int_equal(rootfs_hold(gone, NULL, &fd, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(fd, -1);
	free(t);
	free(gone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_prune_keeps_recent, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_prune_skips_held, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_hold, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
