#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "common/units.h"

/* These tests create real cgroups on the machine running them: under the
 * test's own cgroup, as the agent does. Where the hierarchy is not writable
 * (no root, no delegation) they skip, saying why. */

static struct cgroup_job *job_at_or_skip(const char *root, const char *name, const struct cgroup_limits *lim)
{
	struct cgroup_job *job = NULL;
	struct err err;

	err_clear(&err);
	if (cgroup_job_create(root, name, lim, &job, &err) < 0) {
		if (err.code == ERR_UNAVAIL) {
			print_message("skipping: no writable cgroup here: %s\n", err.msg);
			skip();
		}
		fail_msg("cgroup_job_create: %s", err.msg);
	}
	assert_non_null(job);
	return job;
}

static struct cgroup_job *job_or_skip(const char *name, const struct cgroup_limits *lim)
{
	return job_at_or_skip(NULL, name, lim);
}

/* In a forked child: cmocka's handlers would longjmp back into the test
 * runner, and the child would go on running the parent's tests. */
static void child_default_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

/* In a forked child: enter the job the way a spawn does, before exec. */
static void child_enter(const struct cgroup_job *job)
{
	int fds[CGROUP_ENTER_FDS_MAX];
	size_t i, n = cgroup_job_enter_fds(job, fds, CGROUP_ENTER_FDS_MAX);

	child_default_signals();
	for (i = 0; i < n; i++)
		if (write(fds[i], "0", 1) != 1)
			_exit(120);
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return st;
}

/* Frees job and checks its directory went with it. */
static void free_gone(struct cgroup_job *job)
{
	char *path = strdup(cgroup_job_path(job));
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	cgroup_job_free(job);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	free(path);
}

static void test_memory_limit_kills(void **state)
{
	struct cgroup_limits lim = {.memory_bytes = 64 << 20};
	struct cgroup_job *job;
	struct cgroup_events ev;
	struct err err;
	char msg[128];
	pid_t pid;
	int st;

	(void)state;
	job = job_or_skip("t-mem", &lim);
	assert_int_equal(cgroup_job_events(job, &ev, &err), 0);
	assert_int_equal(ev.oom_kills, 0);
	if ((pid = fork()) == 0) {
		size_t i;

		child_enter(job);
		/* 256 MiB, every page touched: far past the limit. */
		for (i = 0; i < 256; i++) {
			char *p = malloc(1 << 20);
			if (p == NULL)
				_exit(2);
			memset(p, 0x5a, 1 << 20);
		}
		_exit(0);
	}
	assert_true(pid > 0);
	st = wait_status(pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(cgroup_job_events(job, &ev, &err), 0);
	assert_true(ev.oom_kills >= 1);
	assert_int_equal(ev.pids_max_hits, 0);
	cgroup_limit_message(msg, sizeof(msg), &lim, &ev);
	assert_string_equal(msg, "memory limit 64 MiB reached");
	free_gone(job);
}

static void test_pids_limit_refuses_fork(void **state)
{
	struct cgroup_limits lim = {.pids = 16};
	struct cgroup_job *job;
	struct cgroup_events ev;
	struct err err;
	char msg[128];
	pid_t pid;
	int st;

	(void)state;
	job = job_or_skip("t-pids", &lim);
	if ((pid = fork()) == 0) {
		int i;

		child_enter(job);
		for (i = 0; i < 64; i++) {
			pid_t c = fork();
			if (c == 0) {
				pause();
				_exit(0);
			}
			if (c < 0)
				_exit(errno == EAGAIN && i == 15 ? 0 : 3); /* 16 = this one + 15 */
		}
		_exit(4);
	}
	assert_true(pid > 0);
	st = wait_status(pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(cgroup_job_events(job, &ev, &err), 0);
	assert_true(ev.pids_max_hits >= 1);
	cgroup_limit_message(msg, sizeof(msg), &lim, &ev);
	assert_string_equal(msg, "process limit 16 reached");
	/* The 15 paused orphans are still in there. */
	assert_int_equal(cgroup_job_kill_all(job, &err), 0);
	free_gone(job);
}

/* A double-forked setsid daemon started in the job is gone after kill_all. */
static void check_kill_all(struct cgroup_job *job)
{
	struct pollfd pfd;
	struct err err;
	pid_t pid, daemon_pid = 0;
	int p[2], st;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		pid_t mid;

		close(p[0]);
		child_enter(job);
		if ((mid = fork()) == 0) {
			setsid();
			if (fork() == 0) {
				pid_t self = getpid();
				if (write(p[1], &self, sizeof(self)) != sizeof(self))
					_exit(5);
				close(p[1]);
				execlp("sleep", "sleep", "60", (char *)NULL);
				_exit(127);
			}
			_exit(0);
		}
		_exit(mid > 0 && waitpid(mid, NULL, 0) == mid ? 0 : 6);
	}
	assert_true(pid > 0);
	close(p[1]);
	assert_int_equal(read(p[0], &daemon_pid, sizeof(daemon_pid)), sizeof(daemon_pid));
	close(p[0]);
	st = wait_status(pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	pfd.fd = pidfd_open(daemon_pid, 0);
	assert_true(pfd.fd >= 0);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 0), 0); /* orphaned, in its own session, alive */
	assert_int_equal(cgroup_job_kill_all(job, &err), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	close(pfd.fd);
	free_gone(job);
}

static void test_kill_all_takes_setsid_daemon(void **state)
{
	struct cgroup_limits lim = {.pids = 64, .cpu_weight = 50};

	(void)state;
	check_kill_all(job_or_skip("t-kill", &lim));
}

/* A v1 host's cgroup2 mount without controllers (systemd's "unified"): the
 * v2 code tracks and kills through it (cgroup.kill), and a limit is refused
 * as not delegated. The only v2 run possible on such a host. */
static void test_v2_without_controllers(void **state)
{
	const char *root = "/sys/fs/cgroup/unified";
	struct cgroup_limits none = {0}, mem = {.memory_bytes = 64 << 20};
	struct cgroup_job *job = NULL;
	struct statfs sf;
	struct err err;

	(void)state;
	if (statfs(root, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		print_message("skipping: no cgroup2 mount at %s\n", root);
		skip();
	}
	check_kill_all(job_at_or_skip(root, "t-v2", &none));
	if (cgroup_job_create(root, "t-v2mem", &mem, &job, &err) == 0) {
		print_message("note: %s has the memory controller\n", root);
		cgroup_job_free(job);
		return;
	}
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "memory"));
}

/* A cgroup2 root to run v2 code on: /sys/fs/cgroup/unified when it is one,
 * else a mount of this test's own, in a mount namespace of its own so that
 * it goes with the process even when an assertion ends the test early
 * (*mounted_out set: umount and rmdir it), else NULL (skip). */
static const char *v2_root(char *tmp, size_t n, int *mounted_out)
{
	struct statfs sf;

	*mounted_out = 0;
	if (statfs("/sys/fs/cgroup/unified", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
		return "/sys/fs/cgroup/unified";
	snprintf(tmp, n, "/tmp/anvil-test-cg2-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return NULL;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("none", tmp, "cgroup2", 0, NULL) < 0) {
		rmdir(tmp);
		return NULL;
	}
	*mounted_out = 1;
	return tmp;
}

/* Runs `cat /proc/self/cgroup` through proc with spec's cgroup fields and
 * says whether its cgroup2 line names the job. */
static int child_in_job(const struct proc_spec *base, const char *name)
{
	const char *argv[] = {"/bin/cat", "/proc/self/cgroup", NULL};
	struct proc_spec spec = *base;
	struct buf out = BUF_INIT;
	struct err err;
	char *want = xasprintf("/%s", name);
	const char *line;
	size_t len;
	int code = -1, in;

	spec.argv = argv;
	if (proc_run_spec(&spec, 10000, &out, &code, &err) < 0)
		fail_msg("proc_run_spec: %s", err.msg);
	assert_int_equal(code, 0);
	line = strstr(out.data, "0::");
	assert_non_null(line);
	len = strcspn(line, "\n"); /* the line ends in the job's name */
	in = len >= strlen(want) && strncmp(line + len - strlen(want), want, strlen(want)) == 0;
	free(want);
	buf_release(&out);
	return in;
}

/* v2: a spawned child starts in the job (clone3 CLONE_INTO_CGROUP), with no
 * cgroup.procs write to make; where that clone is refused (here: a
 * directory that is no cgroup), it is started and writes cgroup.procs. */
static void test_v2_child_starts_in_job(void **state)
{
	struct cgroup_limits none = {0};
	struct proc_spec spec = {0};
	struct cgroup_job *job;
	char tmp[64];
	int fds[CGROUP_ENTER_FDS_MAX], mounted, not_cg;
	const char *root = v2_root(tmp, sizeof(tmp), &mounted);

	(void)state;
	if (root == NULL) {
		print_message("skipping: no cgroup2 to mount\n");
		skip();
	}
	job = job_at_or_skip(root, "t-v2into", &none);
	assert_true(cgroup_job_dir_fd(job) >= 0);
	spec.stdin_fd = -1;
	spec.has_cgroup_dir = 1;
	spec.cgroup_dir_fd = cgroup_job_dir_fd(job);
	assert_true(child_in_job(&spec, "t-v2into"));
	/* A refused clone3 falls back to the writes. */
	not_cg = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(not_cg >= 0);
	spec.cgroup_dir_fd = not_cg;
	assert_false(child_in_job(&spec, "t-v2into"));
	spec.n_cgroup_fds = cgroup_job_enter_fds(job, fds, CGROUP_ENTER_FDS_MAX);
	spec.cgroup_fds = fds;
	assert_true(child_in_job(&spec, "t-v2into"));
	close(not_cg);
	free_gone(job);
	if (mounted) {
		assert_int_equal(umount(root), 0);
		rmdir(root);
	}
}

/* v1: a job joins the cpu hierarchy only when a weight is asked. In a cpu
 * group of its own it would compete as one task against every process of
 * the root group (issue 18: a make -j2 got one process's share). */
static void test_v1_cpu_group_only_with_weight(void **state)
{
	struct cgroup_limits plain = {.pids = 64}, weighted = {.pids = 64, .cpu_weight = 100};
	struct cgroup_job *a, *b;
	struct statfs sf;
	int fds[CGROUP_ENTER_FDS_MAX];
	size_t na, nb;

	(void)state;
	if (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
		print_message("skipping: a cgroup v2 host\n");
		skip();
	}
	if (statfs("/sys/fs/cgroup/cpu", &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC) {
		print_message("skipping: no v1 cpu hierarchy\n");
		skip();
	}
	a = job_or_skip("t-nocpu", &plain);
	b = job_or_skip("t-cpu", &weighted);
	na = cgroup_job_enter_fds(a, fds, CGROUP_ENTER_FDS_MAX);
	nb = cgroup_job_enter_fds(b, fds, CGROUP_ENTER_FDS_MAX);
	assert_true(na >= 1);
	assert_int_equal(nb, na + 1);
	free_gone(a);
	free_gone(b);
}

static void test_two_jobs_side_by_side(void **state)
{
	struct cgroup_limits lim = {.pids = 8};
	struct cgroup_job *a, *b, *dup = NULL;
	struct err err;

	(void)state;
	a = job_or_skip("t-a", &lim);
	b = job_or_skip("t-b", &lim);
	{
		/* Under anvil-<pid>-<start time>: not where a killed process of
		 * the same pid left its jobs' directories. */
		char *want = xasprintf("/anvil-%ld-", (long)getpid());
		const char *p = strstr(cgroup_job_path(a), want), *q;
		assert_non_null(p);
		q = p + strlen(want);
		assert_true(*q >= '0' && *q <= '9');
		while (*q >= '0' && *q <= '9')
			q++;
		assert_string_equal(q, "/t-a");
		free(want);
	}
	assert_int_equal(cgroup_job_create(NULL, "t-a", &lim, &dup, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_null(dup);
	free_gone(a);
	free_gone(b);
}

static void test_bad_input(void **state)
{
	struct cgroup_limits ok = {0}, bad = {.cpu_weight = 10001};
	struct cgroup_job *job = NULL;
	struct err err;

	(void)state;
	assert_int_equal(cgroup_job_create(NULL, "../x", &ok, &job, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(cgroup_job_create(NULL, "agent", &ok, &job, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(cgroup_job_create(NULL, "", &ok, &job, &err), -1);
	assert_int_equal(cgroup_job_create(NULL, "x", &bad, &job, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_null(job);
	cgroup_job_free(NULL);
}

static void test_messages(void **state)
{
	struct cgroup_limits lim = {.memory_bytes = INT64_C(4) << 30, .pids = 512};
	struct cgroup_events none = {0}, both = {.oom_kills = 1, .pids_max_hits = 3};
	char msg[128], small[8];

	(void)state;
	assert_int_equal(cgroup_limit_message(msg, sizeof(msg), &lim, &none), 0);
	assert_string_equal(msg, "");
	cgroup_limit_message(msg, sizeof(msg), &lim, &both);
	assert_string_equal(msg, "memory limit 4 GiB reached; process limit 512 reached");
	assert_int_equal(cgroup_limit_message(small, sizeof(small), &lim, &both), (int)strlen(msg));
	assert_string_equal(small, "memory ");
	units_format_bytes(msg, sizeof(msg), 1536 << 20);
	assert_string_equal(msg, "1.5 GiB");
	units_format_bytes(msg, sizeof(msg), 512);
	assert_string_equal(msg, "512 B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_memory_limit_kills),
	    cmocka_unit_test(test_pids_limit_refuses_fork),
	    cmocka_unit_test(test_kill_all_takes_setsid_daemon),
	    cmocka_unit_test(test_v2_without_controllers),
	    cmocka_unit_test(test_v2_child_starts_in_job),
	    cmocka_unit_test(test_two_jobs_side_by_side),
	    cmocka_unit_test(test_v1_cpu_group_only_with_weight),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
