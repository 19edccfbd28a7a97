/* Tests of agent/runner_host.c: real /bin/sh steps in a temp workspace. The
 * test process is a child subreaper so that killed grandchildren come back
 * here to be reaped (see test_proc.c). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/runner.h"

#define TEST_DEADLINE_MS 10000

struct fixture {
	char dir[PATH_MAX];
	struct runner *runner;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/anvil-test-runner-XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
		return -1;
	f->runner = runner_host_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = {"rm", "-rf", f->dir, NULL};
	struct err err = {0};
	int code = -1;

	runner_free(f->runner);
	proc_run(argv, NULL, TEST_DEADLINE_MS, NULL, &code, &err);
	free(f);
	return code == 0 ? 0 : -1;
}

/* Runs a step to completion; returns its exit code, output in out. */
static int run_step(struct fixture *f, const char *run, const char *const *env, struct buf *out)
{
	struct step_spec step = {.name = "test", .run = run, .workspace = f->dir, .env = env};
	struct proc p;
	struct err err = {0};
	char chunk[4096];
	ssize_t n;
	int code;

	if (f->runner->ops->start(f->runner, &step, &p, &err) < 0)
		fail_msg("start: %s", err.msg);
	assert_true(p.out_fd >= 0);
	while ((n = read(p.out_fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			assert_int_equal(errno, EINTR);
			continue;
		}
		buf_append(out, chunk, (size_t)n);
	}
	assert_int_equal(proc_wait(&p, TEST_DEADLINE_MS, &err), 0);
	code = p.exit_code;
	proc_release(&p);
	return code;
}

static void test_name(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->runner->ops->name, "host");
}

static void test_output_and_exit_code(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;

	assert_int_equal(run_step(f, "echo hello; echo oops >&2; exit 7", NULL, &out), 7);
	assert_string_equal(out.data, "hello\noops\n");
	buf_release(&out);
}

static void test_workspace_and_base_env(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;
	char want[3 * PATH_MAX + 128];

	setenv("ANVIL_TEST_AGENT_SECRET", "must-not-leak", 1);
	assert_int_equal(run_step(f, "pwd -P; echo \"$HOME\"; env | grep -v '^PWD=' | sort", NULL, &out), 0);
	unsetenv("ANVIL_TEST_AGENT_SECRET");
	snprintf(want, sizeof(want),
	         "%s\n%s\nHOME=%s\nLANG=C.UTF-8\n"
	         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
	         f->dir, f->dir, f->dir);
	assert_string_equal(out.data, want);
	buf_release(&out);
}

static void test_env_override(void **state)
{
	struct fixture *f = *state;
	const char *env[] = {"FOO=first",  "LANG=de_DE.UTF-8",   "BAR=x=y",
	                     "FOO=second", "PATH=/usr/bin:/bin", NULL};
	struct buf out = BUF_INIT;

	assert_int_equal(run_step(f, "echo \"$FOO|$LANG|$BAR|$PATH\"", env, &out), 0);
	assert_string_equal(out.data, "second|de_DE.UTF-8|x=y|/usr/bin:/bin\n");
	buf_release(&out);
}

static void test_bad_env_entry(void **state)
{
	struct fixture *f = *state;
	const char *env[] = {"NOEQUALS", NULL};
	struct step_spec step = {.name = "bad", .run = "true", .workspace = f->dir, .env = env};
	struct proc p;
	struct err err = {0};

	assert_int_equal(f->runner->ops->start(f->runner, &step, &p, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
}

/* Text from a branch name reaches the step as data, never as shell code. */
static void test_branch_name_is_data(void **state)
{
	struct fixture *f = *state;
	char pwned[PATH_MAX + 16], branch[3 * PATH_MAX + 128], want[3 * PATH_MAX + 128];
	const char *env[] = {branch, NULL};
	struct buf out = BUF_INIT;
	struct stat st;

	snprintf(pwned, sizeof(pwned), "%s/pwned", f->dir);
	snprintf(branch, sizeof(branch), "BRANCH=$(touch %s)`touch %s`;touch %s", pwned, pwned, pwned);
	snprintf(want, sizeof(want), "$(touch %s)`touch %s`;touch %s\n", pwned, pwned, pwned);
	assert_int_equal(run_step(f, "echo \"$BRANCH\"", env, &out), 0);
	assert_string_equal(out.data, want);
	assert_int_equal(stat(pwned, &st), -1);
	assert_int_equal(errno, ENOENT);
	buf_release(&out);
}

/* Run text starting with a dash is a command, not an option of sh. */
static void test_run_text_not_an_option(void **state)
{
	struct fixture *f = *state;
	struct buf out = BUF_INIT;

	assert_int_equal(run_step(f, "-x", NULL, &out), 127);
	assert_non_null(strstr(out.data, "not found"));
	buf_release(&out);
}

static void test_cancel_kills_tree(void **state)
{
	struct fixture *f = *state;
	struct step_spec step = {
	    .name = "long",
	    .run = "sleep 300 & echo $! > pidfile.tmp; mv pidfile.tmp pidfile; wait",
	    .workspace = f->dir,
	};
	struct proc p;
	struct err err = {0};
	char pidfile[PATH_MAX + 16];
	int64_t deadline = now_ms() + TEST_DEADLINE_MS;
	long grandchild = 0;

	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", f->dir);
	assert_int_equal(f->runner->ops->start(f->runner, &step, &p, &err), 0);
	while (grandchild <= 0 && now_ms() < deadline) {
		FILE *fp = fopen(pidfile, "r");

		if (fp != NULL) {
			if (fscanf(fp, "%ld", &grandchild) != 1)
				grandchild = 0;
			fclose(fp);
		}
		if (grandchild <= 0)
			pause_ms(5);
	}
	assert_true(grandchild > 0);
	assert_int_equal(kill((pid_t)grandchild, 0), 0);

	assert_int_equal(f->runner->ops->cancel(f->runner, &p, 2000, &err), 0);
	assert_int_equal(p.exited, 1);
	assert_int_equal(p.exit_code, 128 + 15);
	proc_release(&p);

	while (now_ms() < deadline) {
		waitpid((pid_t)grandchild, NULL, WNOHANG);
		if (kill((pid_t)grandchild, 0) < 0 && errno == ESRCH)
			break;
		pause_ms(5);
	}
	assert_int_equal(kill((pid_t)grandchild, 0), -1);
	assert_int_equal(errno, ESRCH);
}

int main(void)
{
	struct err err = {0};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_and_exit_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workspace_and_base_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_override, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_env_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_branch_name_is_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_text_not_an_option, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_kills_tree, setup, teardown),
	};

	if (proc_become_subreaper(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
