/* Tests of agent/checkout.c against REAL git repositories: the fixture uses
 * the git command (through proc_run) to make a bare "origin" and push
 * commits to it; the code under test only uses libgit2. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "agent/checkout.h"
#include "common/proc.h"
#include "common/xalloc.h"

#define TEST_GIT_TIMEOUT_MS 30000

struct fixture {
	char dir[PATH_MAX];
	char origin[PATH_MAX + 16]; /* bare repository the agent fetches from */
	char clone[PATH_MAX + 16];  /* working repository the fixture commits in */
	char work[PATH_MAX + 16];   /* the agent's --work */
};

/* Runs git with args in the fixture's clone; stdout (trimmed) into out when
 * given. Fails the test when git fails. */
static void git_in(const char *cwd, char *out, size_t out_n, ...)
{
	const char *argv[32] = {"git",
	                        "-c",
	                        "user.name=anvil test",
	                        "-c",
	                        "user.email=test@anvil.invalid",
	                        "-c",
	                        "init.defaultBranch=main",
	                        "-c",
	                        "commit.gpgsign=false"};
	size_t n = 9;
	struct buf b = BUF_INIT;
	struct err err = {0};
	int code = -1;
	va_list ap;
	const char *a;

	va_start(ap, out_n);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(proc_run(argv, cwd, TEST_GIT_TIMEOUT_MS, &b, &code, &err), 0);
	if (code != 0)
		fail_msg("git %s failed (%d): %s", argv[9], code, b.data != NULL ? b.data : "");
	if (out != NULL) {
		size_t len = b.len;
		while (len > 0 && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r'))
			len--;
		assert_true(len < out_n);
		if (len > 0) /* b.data is NULL when git printed nothing */
			memcpy(out, b.data, len);
		out[len] = '\0';
	}
	buf_release(&b);
}

static void write_file(const char *dir, const char *rel, const char *content)
{
	char path[PATH_MAX * 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *read_file(const char *path)
{
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return NULL;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

/* Every path under root, relative, sorted, joined with ','. */
static struct strv *listing_acc;
static size_t listing_root_len;
static int listing_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = path + listing_root_len + 1;

	(void)st;
	(void)type;
	/* the workspace's own repository is checked apart (test_checkout_is_git) */
	if (ftw->level > 0 && strcmp(rel, ".git") != 0 && strncmp(rel, ".git/", 5) != 0)
		strv_push(listing_acc, rel);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *listing(const char *root)
{
	struct strv sv = STRV_INIT;
	struct buf b = BUF_INIT;
	size_t i;

	listing_acc = &sv;
	listing_root_len = strlen(root);
	assert_int_equal(nftw(root, listing_cb, 16, FTW_PHYS), 0);
	if (sv.n > 0)
		qsort(sv.v, sv.n, sizeof(*sv.v), cmp_str);
	for (i = 0; i < sv.n; i++)
		buf_appendf(&b, "%s%s", i ? "," : "", sv.v[i]);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	strv_release(&sv);
	return buf_detach(&b, NULL);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/anvil-test-checkout-XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
		return -1;
	snprintf(f->origin, sizeof(f->origin), "%s/origin.git", f->dir);
	snprintf(f->clone, sizeof(f->clone), "%s/clone", f->dir);
	snprintf(f->work, sizeof(f->work), "%s/work", f->dir);
	git_in(f->dir, NULL, 0, "init", "-q", "--bare", f->origin, NULL);
	git_in(f->dir, NULL, 0, "init", "-q", f->clone, NULL);
	git_in(f->clone, NULL, 0, "remote", "add", "origin", f->origin, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct err err = {0};
	int rc = checkout_remove_tree(f->dir, &err);

	free(f);
	return rc;
}

/* Commits the clone's current tree and pushes it; the commit id into hex. */
static void commit_push(struct fixture *f, const char *msg, char hex[41])
{
	git_in(f->clone, NULL, 0, "add", "-A", NULL);
	git_in(f->clone, NULL, 0, "commit", "-q", "-m", msg, NULL);
	git_in(f->clone, NULL, 0, "push", "-q", "origin", "HEAD:refs/heads/main", NULL);
	git_in(f->clone, hex, 41, "rev-parse", "HEAD", NULL);
}

static void make_first_commit(struct fixture *f, char hex[41])
{
	char sub[PATH_MAX + 32];

	write_file(f->clone, "a.txt", "alpha\n");
	snprintf(sub, sizeof(sub), "%s/sub", f->clone);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(f->clone, "sub/b.txt", "beta\n");
	commit_push(f, "first", hex);
}

static void test_checkout_exact_tree(void **state)
{
	struct fixture *f = *state;
	char c1[41], dest[PATH_MAX + 32], path[PATH_MAX + 64];
	struct err err = {0};
	char *ls, *s;

	make_first_commit(f, c1);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	/* A stale file in dest must not survive: the workspace is clean. */
	assert_int_equal(checkout_mkdirs(dest, &err), 0);
	write_file(dest, "stale.o", "old");
	if (checkout_prepare(f->work, "demo", f->origin, c1, dest, &err) < 0)
		fail_msg("checkout_prepare: %s", err.msg);
	ls = listing(dest);
	assert_string_equal(ls, "a.txt,sub,sub/b.txt");
	free(ls);
	snprintf(path, sizeof(path), "%s/sub/b.txt", dest);
	s = read_file(path);
	assert_non_null(s);
	assert_string_equal(s, "beta\n");
	free(s);
}

/* The workspace's repository is its own: no alternates into the mirror,
 * its packs copies (other inodes), so a step that rewrites its .git leaves
 * the mirror, and the next job's checkout, as they were. */
static void test_checkout_shares_nothing(void **state)
{
	struct fixture *f = *state;
	char c1[41], dest[PATH_MAX + 32], mirror[PATH_MAX], path[PATH_MAX + 400], out[256];
	struct err err = {0};
	struct dirent *de;
	struct stat ws, ms;
	DIR *d;
	int packs = 0;

	make_first_commit(f, c1);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	if (checkout_prepare(f->work, "demo", f->origin, c1, dest, &err) < 0)
		fail_msg("checkout_prepare: %s", err.msg);
	snprintf(path, sizeof(path), "%s/.git/objects/info/alternates", dest);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(checkout_mirror_path(mirror, sizeof(mirror), f->work, "demo", f->origin, &err), 0);
	snprintf(path, sizeof(path), "%s/.git/objects/pack", dest);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/.git/objects/pack/%s", dest, de->d_name);
		assert_int_equal(stat(path, &ws), 0);
		snprintf(path, sizeof(path), "%s/objects/pack/%s", mirror, de->d_name);
		assert_int_equal(stat(path, &ms), 0);
		assert_true(ws.st_ino != ms.st_ino || ws.st_dev != ms.st_dev);
		packs++;
	}
	closedir(d);
	assert_true(packs >= 2); /* a .pack and its .idx */
	/* A step that wrecks its repository: the next checkout is whole. */
	git_in(dest, NULL, 0, "gc", "-q", "--prune=now", NULL);
	snprintf(path, sizeof(path), "%s/.git/objects", dest);
	assert_int_equal(checkout_remove_tree(path, &err), 0);
	snprintf(dest, sizeof(dest), "%s/jobs/2/src", f->work);
	if (checkout_prepare(f->work, "demo", f->origin, c1, dest, &err) < 0)
		fail_msg("checkout_prepare: %s", err.msg);
	git_in(dest, out, sizeof(out), "rev-parse", "HEAD", NULL);
	assert_string_equal(out, c1);
	git_in(dest, out, sizeof(out), "fsck", "--no-progress", NULL);
}

/* The workspace is a git checkout: HEAD detached at the commit, the tags
 * (git describe --tags), branches as origin/ refs, a clean status, no URL. */
static void test_checkout_is_git(void **state)
{
	struct fixture *f = *state;
	char c1[41], c2[41], dest[PATH_MAX + 32], out[256];
	struct err err = {0};

	make_first_commit(f, c1);
	git_in(f->clone, NULL, 0, "tag", "-a", "v0.9", "-m", "v0.9", NULL);
	git_in(f->clone, NULL, 0, "push", "-q", "origin", "v0.9", NULL);
	write_file(f->clone, "c.txt", "gamma\n");
	commit_push(f, "second", c2);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	if (checkout_prepare(f->work, "demo", f->origin, c2, dest, &err) < 0)
		fail_msg("checkout_prepare: %s", err.msg);
	git_in(dest, out, sizeof(out), "rev-parse", "HEAD", NULL);
	assert_string_equal(out, c2);
	git_in(dest, out, sizeof(out), "describe", "--tags", NULL);
	assert_int_equal(strncmp(out, "v0.9-1-g", 8), 0);
	git_in(dest, out, sizeof(out), "status", "--porcelain", NULL);
	assert_string_equal(out, "");
	git_in(dest, out, sizeof(out), "rev-parse", "origin/main", NULL);
	assert_string_equal(out, c2);
	git_in(dest, out, sizeof(out), "config", "--list", "--local", NULL);
	assert_null(strstr(out, "url"));
	(void)c1;
}

static void test_checkout_second_commit_reuses_mirror(void **state)
{
	struct fixture *f = *state;
	char c1[41], c2[41], dest[PATH_MAX + 32], mirror[PATH_MAX], path[PATH_MAX + 64];
	struct err err = {0};
	char *ls, *s;
	struct stat st;

	make_first_commit(f, c1);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	assert_int_equal(checkout_prepare(f->work, "demo", f->origin, c1, dest, &err), 0);

	/* A new push: the mirror exists and must fetch the new commit. */
	snprintf(path, sizeof(path), "%s/a.txt", f->clone);
	assert_int_equal(unlink(path), 0);
	write_file(f->clone, "c.txt", "gamma\n");
	write_file(f->clone, "sub/b.txt", "beta 2\n");
	commit_push(f, "second", c2);
	snprintf(dest, sizeof(dest), "%s/jobs/2/src", f->work);
	if (checkout_prepare(f->work, "demo", f->origin, c2, dest, &err) < 0)
		fail_msg("checkout_prepare second: %s", err.msg);
	ls = listing(dest);
	assert_string_equal(ls, "c.txt,sub,sub/b.txt");
	free(ls);
	snprintf(path, sizeof(path), "%s/sub/b.txt", dest);
	s = read_file(path);
	assert_string_equal(s, "beta 2\n");
	free(s);

	/* One mirror (plus its lock file), at the documented path. */
	assert_int_equal(checkout_mirror_path(mirror, sizeof(mirror), f->work, "demo", f->origin, &err), 0);
	assert_int_equal(stat(mirror, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/mirrors", f->work);
	{
		DIR *d = opendir(path);
		struct dirent *de;
		int n = 0;
		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
		assert_int_equal(n, 2);
	}
	assert_non_null(strstr(mirror, "/mirrors/demo-"));
	assert_int_equal(strlen(strrchr(mirror, '-')), 1 + 12 + 4);

	/* The old commit again, now that the mirror's refs point past it. */
	snprintf(dest, sizeof(dest), "%s/jobs/3/src", f->work);
	assert_int_equal(checkout_prepare(f->work, "demo", f->origin, c1, dest, &err), 0);
	ls = listing(dest);
	assert_string_equal(ls, "a.txt,sub,sub/b.txt");
	free(ls);
	snprintf(path, sizeof(path), "%s/sub/b.txt", dest);
	s = read_file(path);
	assert_string_equal(s, "beta\n");
	free(s);
}

static void test_checkout_unknown_commit(void **state)
{
	struct fixture *f = *state;
	char c1[41], dest[PATH_MAX + 32];
	const char *missing = "0123456789abcdef0123456789abcdef01234567";
	struct err err = {0};

	make_first_commit(f, c1);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	assert_int_equal(checkout_prepare(f->work, "demo", f->origin, missing, dest, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "commit 0123456789abcdef0123456789abcdef01234567 not found in"));
	assert_non_null(strstr(err.msg, f->origin));

	err.code = ERR_OK;
	assert_int_equal(checkout_prepare(f->work, "demo", f->origin, "HEAD", dest, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
}

static void test_checkout_bad_url(void **state)
{
	struct fixture *f = *state;
	char url[PATH_MAX + 32], dest[PATH_MAX + 32];
	const char *commit = "0123456789abcdef0123456789abcdef01234567";
	struct err err = {0};

	snprintf(url, sizeof(url), "%s/no-such-repo.git", f->dir);
	snprintf(dest, sizeof(dest), "%s/jobs/1/src", f->work);
	assert_int_equal(checkout_prepare(f->work, "demo", url, commit, dest, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	/* "fetch <url>: " then libgit2's own words */
	assert_int_equal(strncmp(err.msg, "fetch ", 6), 0);
	assert_non_null(strstr(err.msg, "no-such-repo.git: "));
	assert_true(strlen(strstr(err.msg, "no-such-repo.git: ")) > strlen("no-such-repo.git: ") + 5);
	if (strstr(err.msg, "no-such-repo.git") == NULL)
		fail_msg("message does not name the URL: %s", err.msg);
}

struct race_arg {
	struct fixture *f;
	const char *commit;
	int n;
	int rc;
	struct err err;
};

static void *race_main(void *p)
{
	struct race_arg *a = p;
	char dest[PATH_MAX + 32];

	snprintf(dest, sizeof(dest), "%s/jobs/race%d/src", a->f->work, a->n);
	a->rc = checkout_prepare(a->f->work, "demo", a->f->origin, a->commit, dest, &a->err);
	return NULL;
}

/* Two agents sharing <work> (threads with their own lock fds here: flock
 * excludes per open file, as it does between processes). */
static void test_checkout_concurrent(void **state)
{
	struct fixture *f = *state;
	char c1[41];
	struct race_arg a[4];
	pthread_t th[4];
	int i;

	make_first_commit(f, c1);
	for (i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].f = f;
		a[i].commit = c1;
		a[i].n = i;
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (a[i].rc != 0)
			fail_msg("racer %d: %s", i, a[i].err.msg);
	}
}

static void test_checkout_mirror_path_safe(void **state)
{
	char out[PATH_MAX];
	struct err err = {0};

	(void)state;
	assert_int_equal(checkout_mirror_path(out, sizeof(out), "/w", "../../etc/x y", "u", &err), 0);
	assert_null(strstr(out, ".."));
	assert_int_equal(strncmp(out, "/w/mirrors/", 11), 0);
	assert_null(strchr(out + 11, '/'));
	assert_int_equal(checkout_mirror_path(out, 20, "/w", "demo", "u", &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_checkout_exact_tree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_is_git, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_shares_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_second_commit_reuses_mirror, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_unknown_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_bad_url, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkout_concurrent, setup, teardown),
	    cmocka_unit_test(test_checkout_mirror_path_safe),
	};
	int rc;

	git_libgit2_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
