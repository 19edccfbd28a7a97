/* The git helper (server/gitproc): this test binary is its own helper
 * (`test_gitproc --git-helper IDLE_MS`, as anvil-server is). A round trip,
 * an error passed through with its code, a helper killed mid-call (an error,
 * then a new helper), one that exits when idle (the next call starts a new
 * one and is answered), a malformed answer, events before an answer (and
 * a helper that sends them without end), a helper that never answers (killed
 * at the call's timeout), and gitops' real libgit2
 * operations on a repository made with git: a pipeline file with a NUL and
 * non-UTF-8 bytes read exactly, a commit message that is not UTF-8, the
 * size cap, a missing file, gitlinks. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "server/gitproc/gitops.h"

static int test_handler(const char *op, json_t *args, struct gitproc_emit *emit, json_t **result_out,
                        struct err *err)
{
	if (strcmp(op, "echo") == 0) {
		*result_out = json_pack("{s:O, s:i}", "args", args, "pid", (int)getpid());
		return 0;
	}
	if (strcmp(op, "fail") == 0)
		return err_set(err, ERR_CONFLICT, "refused: %s",
		               json_string_value(json_object_get(args, "why")));
	if (strcmp(op, "die") == 0)
		raise(SIGKILL);
	if (strcmp(op, "garbage") == 0) { /* a length past the cap */
		static const unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
		if (write(0, huge, 4) != 4)
			return err_set(err, ERR_SYS, "write");
		pause();
	}
	if (strcmp(op, "bad_error") == 0) { /* an answer that is neither ok nor an error */
		static const char msg[] = "\0\0\0\x0b{\"what\": 1}";
		if (write(0, msg, sizeof(msg) - 1) != (ssize_t)sizeof(msg) - 1)
			return err_set(err, ERR_SYS, "write");
		pause();
	}
	if (strcmp(op, "hang") == 0)
		pause();
	if (strcmp(op, "events") == 0) { /* two events, then the answer */
		if (gitproc_emit_event(emit, "one") < 0 || gitproc_emit_event(emit, "two") < 0)
			return err_set(err, ERR_SYS, "emit");
		*result_out = json_object();
		return 0;
	}
	if (strcmp(op, "flood") == 0) { /* events without end */
		for (;;)
			if (gitproc_emit_event(emit, "x") < 0)
				return err_set(err, ERR_SYS, "emit");
	}
	return gitops_handle(op, args, emit, result_out, err);
}

static int echo_pid(struct gitproc *gp)
{
	struct err err = {0};
	json_t *args = json_pack("{s:s}", "x", "hello"), *res = NULL;
	int pid;

	assert_int_equal(gitproc_call(gp, "echo", args, &res, &err), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(res, "args"), "x")), "hello");
	pid = (int)json_integer_value(json_object_get(res, "pid"));
	assert_true(pid > 0);
	assert_int_equal(pid, gitproc_pid(gp));
	json_decref(res);
	json_decref(args);
	return pid;
}

static void test_round_trip_and_error(void **state)
{
	struct gitproc *gp = gitproc_new_self(60000);
	struct err err = {0};
	json_t *args = json_pack("{s:s}", "why", "taken"), *res = NULL;
	int pid;

	(void)state;
	assert_int_equal(gitproc_pid(gp), 0); /* nothing started before the first call */
	pid = echo_pid(gp);
	assert_int_not_equal(pid, getpid());
	assert_int_equal(gitproc_call(gp, "fail", args, &res, &err), -1);
	assert_null(res);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_string_equal(err.msg, "refused: taken");
	assert_int_equal(echo_pid(gp), pid); /* an error is an answer: the same helper goes on */
	assert_int_equal(gitproc_call(gp, "no_such_op", args, &res, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	json_decref(args);
	gitproc_free(gp);
	assert_int_equal(kill(pid, 0), -1); /* reaped */
}

static void test_helper_dies(void **state)
{
	struct gitproc *gp = gitproc_new_self(60000);
	struct err err = {0};
	json_t *args = json_object(), *res = NULL;
	int pid, pid2;

	(void)state;
	pid = echo_pid(gp);
	assert_int_equal(gitproc_call(gp, "die", args, &res, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "killed by signal 9 during die"));
	assert_int_equal(gitproc_pid(gp), 0);
	pid2 = echo_pid(gp); /* the next call starts a new one */
	assert_int_not_equal(pid2, pid);

	assert_int_equal(gitproc_call(gp, "garbage", args, &res, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "limit"));
	assert_int_equal(gitproc_pid(gp), 0); /* a helper that sends that is not trusted again */
	assert_int_equal(kill(pid2, 0), -1);
	assert_int_equal(gitproc_call(gp, "bad_error", args, &res, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "without a result or an error"));
	echo_pid(gp);
	json_decref(args);
	gitproc_free(gp);
}

static void test_timeout(void **state)
{
	struct gitproc *gp = gitproc_new_self(60000);
	struct err err = {0};
	json_t *args = json_object(), *res = NULL;
	int pid;

	(void)state;
	pid = echo_pid(gp);
	gitproc_set_timeout(gp, 300);
	assert_int_equal(gitproc_call(gp, "hang", args, &res, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_string_equal(err.msg, "git helper gave no answer to hang within 300 ms");
	assert_int_equal(gitproc_pid(gp), 0);
	assert_int_equal(kill(pid, 0), -1); /* killed and reaped */
	gitproc_set_timeout(gp, 60000);
	assert_int_not_equal(echo_pid(gp), pid);
	json_decref(args);
	gitproc_free(gp);
}

static void on_event(void *cls, const char *name)
{
	strv_push(cls, name);
}

static void test_events(void **state)
{
	struct gitproc *gp = gitproc_new_self(60000);
	struct strv seen = STRV_INIT;
	struct err err = {0};
	json_t *args = json_object(), *res = NULL;

	(void)state;
	assert_int_equal(gitproc_call_events(gp, "events", args, on_event, &seen, &res, &err), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.v[0], "one");
	assert_string_equal(seen.v[1], "two");
	json_decref(res);
	assert_int_equal(gitproc_call(gp, "events", args, &res, &err), 0); /* events without a callback */
	json_decref(res);
	assert_int_equal(gitproc_call_events(gp, "flood", args, on_event, &seen, &res, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "more than 64 events"));
	assert_int_equal(gitproc_pid(gp), 0);
	echo_pid(gp);
	strv_release(&seen);
	json_decref(args);
	gitproc_free(gp);
}

static void test_idle_exit(void **state)
{
	struct gitproc *gp = gitproc_new_self(100);
	char path[64];
	int pid, pid2;
	struct stat st;

	(void)state;
	pid = echo_pid(gp);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	/* It exits by itself (a zombie until the next call reaps it): wait for
	 * that, however busy the machine. */
	for (int i = 0; i < 600; i++) {
		char state_line[256] = "";
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if ((f = fopen(path, "r")) == NULL)
			break;
		if (fgets(state_line, sizeof(state_line), f) == NULL)
			state_line[0] = '\0';
		fclose(f);
		if (strstr(state_line, ") Z ") != NULL)
			break;
		usleep(50 * 1000);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	assert_int_equal(stat(path, &st), 0);
	{
		char line[256] = "";
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		assert_non_null(strstr(line, ") Z ")); /* exited while idle */
	}
	/* Reaped by someone else, as the agent's orphan reaper does: the call
	 * goes by the helper's "bye", not by its exit status. */
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	pid2 = echo_pid(gp); /* sent again to a new helper, answered */
	assert_int_not_equal(pid2, pid);
	gitproc_free(gp);
}

/* ---- gitops on a real repository ---- */

struct fx {
	char dir[64];
	struct gitproc *gp;
};

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static int setup_repo(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *g = "git -c user.name=t -c user.email=t@e -c init.defaultBranch=main";

	strcpy(fx->dir, "/tmp/test_gitproc.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	sh("cd %s && %s init -q src && printf 'steps:\\000\\377 x\\n' > src/.anvil.yml && head -c 5000 "
	   "/dev/zero > src/big && %s -C src add -A && %s -C src commit -q -m \"$(printf 'caf\\351 ok')\"",
	   fx->dir, g, g, g);
	/* A second commit with a gitlink (a submodule) and a .gitmodules. */
	sh("cd %s && printf '[submodule \"lib\"]\\n\\tpath = lib\\n\\turl = ../lib\\n' > src/.gitmodules && "
	   "%s -C src update-index --add --cacheinfo 160000,0123456789abcdef0123456789abcdef01234567,lib && "
	   "%s -C src add .gitmodules && %s -C src commit -q -m sub",
	   fx->dir, g, g, g);
	/* git itself re-encodes a message that is not UTF-8 (as Latin-1): a
	 * commit object written by hand keeps the byte. */
	sh("cd %s/src && c=$(printf 'tree %%s\\nauthor t <t@e> 1 +0000\\ncommitter t <t@e> 1 "
	   "+0000\\n\\ncaf\\351 "
	   "ok\\n' $(git rev-parse HEAD~1^{tree}) | git hash-object -t commit -w --stdin --literally) && git "
	   "update-ref refs/heads/latin1 $c",
	   fx->dir);
	fx->gp = gitproc_new_self(60000);
	*state = fx;
	return 0;
}

static int teardown_repo(void **state)
{
	struct fx *fx = *state;
	struct err err = {0};

	gitproc_free(fx->gp);
	fileio_remove_tree(fx->dir, &err);
	free(fx);
	return 0;
}

static void test_ops_read(void **state)
{
	struct fx *fx = *state;
	struct gitread_result r = {0};
	struct err err = {0};
	char mirror[128], url[128], head[41];
	static const char want[] = "steps:\0\377 x\n";

	snprintf(mirror, sizeof(mirror), "%s/m.git", fx->dir);
	snprintf(url, sizeof(url), "%s/src", fx->dir);
	assert_int_equal(
	    gitops_read(fx->gp, mirror, url, "refs/heads/main~1", NULL, ".anvil.yml", 1000, &r, &err), 0);
	assert_int_equal(r.file_found, 1);
	assert_int_equal(r.file.len, sizeof(want) - 1);
	assert_memory_equal(r.file.data, want, sizeof(want) - 1);
	assert_string_equal(r.message, "caf\xc3\xa9 ok\n");
	assert_string_equal(r.author, "t <t@e>");
	assert_int_equal(strlen(r.commit), 40);
	gitread_result_release(&r);
	assert_int_equal(
	    gitops_read(fx->gp, mirror, url, "refs/heads/latin1", NULL, ".anvil.yml", 1000, &r, &err), 0);
	assert_string_equal(r.message, "caf? ok\n"); /* not UTF-8: made printable */
	assert_int_equal(r.file_found, 1);
	gitread_result_release(&r);

	assert_int_equal(gitops_rev(fx->gp, mirror, "refs/heads/main", head, &err), 0);
	assert_int_equal(gitops_read(fx->gp, mirror, url, NULL, head, "nope.yml", 1000, &r, &err), 0);
	assert_int_equal(r.file_found, 0);
	assert_string_equal(r.commit, head);
	gitread_result_release(&r);

	assert_int_equal(gitops_read(fx->gp, mirror, url, NULL, head, "big", 4096, &r, &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
	assert_non_null(strstr(err.msg, "big is 5000 bytes, limit 4096"));
	assert_int_equal(gitops_read(fx->gp, mirror, url, NULL, "0123", ".anvil.yml", 4096, &r, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(gitops_rev(fx->gp, mirror, "refs/heads/nope", head, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
}

static void test_ops_links(void **state)
{
	struct fx *fx = *state;
	struct gitread_links l = {0};
	struct err err = {0};
	char mirror[128], url[128], head[41];
	struct gitread_result r = {0};

	snprintf(mirror, sizeof(mirror), "%s/m2.git", fx->dir);
	snprintf(url, sizeof(url), "%s/src", fx->dir);
	assert_int_equal(
	    gitops_read(fx->gp, mirror, url, "refs/heads/main", NULL, ".gitmodules", 1000, &r, &err), 0);
	memcpy(head, r.commit, 41);
	gitread_result_release(&r);
	assert_int_equal(gitops_links_at(fx->gp, mirror, head, 8, &l, &err), 0);
	assert_int_equal(l.has_gitmodules, 1);
	assert_int_equal(l.gitmodules_blob, 1);
	assert_true(l.gitmodules_bytes > 20);
	assert_int_equal(l.paths.n, 1);
	assert_string_equal(l.paths.v[0], "lib");
	assert_string_equal(l.commits.v[0], "0123456789abcdef0123456789abcdef01234567");
	assert_int_equal(l.too_many, 0);
	gitread_links_release(&l);

	assert_int_equal(gitops_rev(fx->gp, mirror, "refs/heads/main~1", head, &err), 0);
	assert_int_equal(gitops_links_at(fx->gp, mirror, head, 8, &l, &err), 0);
	assert_int_equal(l.has_gitmodules, 0);
	assert_int_equal(l.paths.n, 0);
	gitread_links_release(&l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_and_error),
	    cmocka_unit_test(test_helper_dies),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_idle_exit),
	    cmocka_unit_test_setup_teardown(test_ops_read, setup_repo, teardown_repo),
	    cmocka_unit_test_setup_teardown(test_ops_links, setup_repo, teardown_repo),
	};
	int idle_ms;

	if (gitproc_helper_argv(argc, argv, &idle_ms))
		return gitproc_helper_main(0, idle_ms, test_handler);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
