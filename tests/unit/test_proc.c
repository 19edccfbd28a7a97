/* Tests of common/proc.c against real processes (git's t0061 spirit). The
 * test process makes itself a child subreaper so that grandchildren killed
 * with their group are reparented here and can be reaped: otherwise they
 * would stay zombies under an init that does not reap, and kill(pid, 0)
 * would still find them. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"

#define TEST_DEADLINE_MS 10000

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

/* A temp dir per test, removed with its files afterwards. */
struct fixture {
	char dir[PATH_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-test-proc-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = {"rm", "-rf", f->dir, NULL};
	int code = -1;
	struct err err = {0};

	proc_run(argv, NULL, TEST_DEADLINE_MS, NULL, &code, &err);
	free(f);
	return code == 0 ? 0 : -1;
}

/* Reads out_fd to EOF. */
static void read_all(int fd, struct buf *out)
{
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			assert_int_equal(errno, EINTR);
			continue;
		}
		buf_append(out, chunk, (size_t)n);
	}
}

/* Polls until path holds a pid (written with a trailing newline). */
static pid_t wait_pidfile(const char *path)
{
	int64_t deadline = now_ms() + TEST_DEADLINE_MS;

	while (now_ms() < deadline) {
		FILE *fp = fopen(path, "r");
		long pid = 0;
		char nl = 0;

		if (fp != NULL) {
			int n = fscanf(fp, "%ld%c", &pid, &nl);

			fclose(fp);
			if (n == 2 && nl == '\n' && pid > 0)
				return (pid_t)pid;
		}
		pause_ms(5);
	}
	fail_msg("no pid in %s before the deadline", path);
	return -1;
}

/* Polls until pid no longer exists, reaping it if it was reparented to us. */
static void assert_gone(pid_t pid)
{
	int64_t deadline = now_ms() + TEST_DEADLINE_MS;

	while (now_ms() < deadline) {
		waitpid(pid, NULL, WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return;
		pause_ms(5);
	}
	fail_msg("pid %d still exists", (int)pid);
}

/* Zombies whose parent is this process. */
static int count_zombie_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int count = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[300], line[512];
		FILE *fp;
		char *rp;
		char state;
		int ppid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(line, sizeof(line), fp) != NULL && (rp = strrchr(line, ')')) != NULL &&
		    sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' && ppid == getpid())
			count++;
		fclose(fp);
	}
	closedir(d);
	return count;
}

static void run_sh(const char *script, int timeout_ms, struct buf *out, int *code)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct err err = {0};

	if (proc_run(argv, NULL, timeout_ms, out, code, &err) < 0)
		fail_msg("proc_run %s: %s", script, err.msg);
}

static void test_subreaper(void **state)
{
	int on = 0;

	(void)state;
	assert_int_equal(prctl(PR_GET_CHILD_SUBREAPER, &on), 0);
	assert_int_equal(on, 1);
}

static void test_exit_codes(void **state)
{
	int code = -1;

	(void)state;
	run_sh("exit 0", TEST_DEADLINE_MS, NULL, &code);
	assert_int_equal(code, 0);
	run_sh("exit 3", TEST_DEADLINE_MS, NULL, &code);
	assert_int_equal(code, 3);
	run_sh("kill -9 $$", TEST_DEADLINE_MS, NULL, &code);
	assert_int_equal(code, 128 + 9);
	run_sh("kill -TERM $$", TEST_DEADLINE_MS, NULL, &code);
	assert_int_equal(code, 128 + 15);
}

static void test_output_merged(void **state)
{
	struct buf out = BUF_INIT;
	int code = -1;

	(void)state;
	run_sh("echo one; echo two >&2; printf three", TEST_DEADLINE_MS, &out, &code);
	assert_int_equal(code, 0);
	assert_string_equal(out.data, "one\ntwo\nthree");
	buf_release(&out);
}

/* stdout_only: a protocol stream (git upload-pack's) must not get the
 * child's messages mixed in; they go to /dev/null. */
static void test_output_stdout_only(void **state)
{
	const char *argv[] = {"/bin/sh", "-c", "echo one; echo two >&2; printf three", NULL};
	struct proc_spec spec = {.argv = argv, .stdin_fd = -1, .capture_output = 1, .stdout_only = 1};
	struct proc p;
	struct buf out = BUF_INIT;
	struct err err = {0};

	(void)state;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	read_all(p.out_fd, &out);
	assert_int_equal(proc_wait(&p, TEST_DEADLINE_MS, &err), 0);
	assert_int_equal(p.exit_code, 0);
	assert_string_equal(out.data, "one\nthree");
	proc_release(&p);
	buf_release(&out);
}

static void test_large_output_no_deadlock(void **state)
{
	const char *argv[] = {"head", "-c", "5242880", "/dev/zero", NULL};
	struct buf out = BUF_INIT;
	struct err err = {0};
	int code = -1;

	(void)state;
	assert_int_equal(proc_run(argv, NULL, 60000, &out, &code, &err), 0);
	assert_int_equal(code, 0);
	assert_int_equal(out.len, 5242880);
	buf_release(&out);
}

static void test_stdin_is_dev_null(void **state)
{
	const char *argv[] = {"cat", NULL};
	struct buf out = BUF_INIT;
	struct err err = {0};
	int code = -1;

	(void)state;
	assert_int_equal(proc_run(argv, NULL, TEST_DEADLINE_MS, &out, &code, &err), 0);
	assert_int_equal(code, 0);
	assert_int_equal(out.len, 0);
	buf_release(&out);
}

static void test_exec_missing_in_path(void **state)
{
	const char *argv[] = {"anvil-nosuchcmd", NULL};
	struct proc_spec spec = {.argv = argv, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct err err = {0};
	int zombies = count_zombie_children();

	(void)state;
	errno = 0;
	assert_int_equal(proc_start(&p, &spec, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_string_equal(err.msg, "exec anvil-nosuchcmd: No such file or directory");
	assert_int_equal(p.pidfd, -1);
	assert_int_equal(p.out_fd, -1);
	proc_release(&p);
	assert_int_equal(count_zombie_children(), zombies);
}

/* A path with a slash goes to execve in the child: the errno comes back
 * through the status pipe and the failed child is reaped. */
static void test_exec_failure_in_child(void **state)
{
	struct fixture *f = *state;
	char noexec[PATH_MAX + 16];
	const char *missing[] = {"/nonexistent/anvil-nosuchcmd", NULL};
	const char *argv[] = {noexec, NULL};
	struct proc_spec spec = {.argv = missing, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct err err = {0};
	int zombies = count_zombie_children();
	int fd;

	errno = 0;
	assert_int_equal(proc_start(&p, &spec, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(err.msg, "exec /nonexistent/anvil-nosuchcmd: No such file or directory");
	assert_int_equal(count_zombie_children(), zombies);

	snprintf(noexec, sizeof(noexec), "%s/noexec", f->dir);
	fd = open(noexec, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	spec.argv = argv;
	errno = 0;
	assert_int_equal(proc_start(&p, &spec, &err), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "Permission denied"));
	assert_int_equal(count_zombie_children(), zombies);
}

static void test_chdir_failure(void **state)
{
	const char *argv[] = {"true", NULL};
	struct proc_spec spec = {.argv = argv, .cwd = "/nonexistent-anvil-dir", .stdin_fd = -1};
	struct proc p;
	struct err err = {0};
	int zombies = count_zombie_children();

	(void)state;
	assert_int_equal(proc_start(&p, &spec, &err), -1);
	assert_string_equal(err.msg, "chdir /nonexistent-anvil-dir: No such file or directory");
	assert_int_equal(count_zombie_children(), zombies);
}

static void test_env_exact(void **state)
{
	const char *argv[] = {"/usr/bin/env", NULL};
	const char *envp[] = {"FOO=bar baz", "X=1", "EMPTY=", NULL};
	struct proc_spec spec = {.argv = argv, .envp = envp, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct buf out = BUF_INIT;
	struct err err = {0};

	(void)state;
	setenv("ANVIL_TEST_PARENT_ONLY", "leak", 1);
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	read_all(p.out_fd, &out);
	assert_int_equal(proc_wait(&p, TEST_DEADLINE_MS, &err), 0);
	assert_int_equal(p.exit_code, 0);
	assert_string_equal(out.data, "FOO=bar baz\nX=1\nEMPTY=\n");
	proc_release(&p);
	buf_release(&out);
	unsetenv("ANVIL_TEST_PARENT_ONLY");
}

/* A bare argv[0] is found in the child's PATH when envp has one. */
static void test_path_from_envp(void **state)
{
	struct fixture *f = *state;
	char tool[PATH_MAX + 16], path_env[PATH_MAX + 32];
	const char *argv[] = {"anvil-test-tool", NULL};
	const char *envp[] = {path_env, NULL};
	struct proc_spec spec = {.argv = argv, .envp = envp, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct buf out = BUF_INIT;
	struct err err = {0};
	FILE *fp;

	snprintf(tool, sizeof(tool), "%s/anvil-test-tool", f->dir);
	snprintf(path_env, sizeof(path_env), "PATH=/nonexistent:%s", f->dir);
	fp = fopen(tool, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\necho tool ran\n", fp);
	fclose(fp);
	assert_int_equal(chmod(tool, 0755), 0);

	assert_int_equal(proc_start(&p, &spec, &err), 0);
	read_all(p.out_fd, &out);
	assert_int_equal(proc_wait(&p, TEST_DEADLINE_MS, &err), 0);
	assert_int_equal(p.exit_code, 0);
	assert_string_equal(out.data, "tool ran\n");
	proc_release(&p);
	buf_release(&out);
}

static void test_cwd(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = {"pwd", "-P", NULL};
	char real[PATH_MAX], want[PATH_MAX + 2];
	struct buf out = BUF_INIT;
	struct err err = {0};
	int code = -1;

	assert_non_null(realpath(f->dir, real));
	snprintf(want, sizeof(want), "%s\n", real);
	assert_int_equal(proc_run(argv, f->dir, TEST_DEADLINE_MS, &out, &code, &err), 0);
	assert_int_equal(code, 0);
	assert_string_equal(out.data, want);
	buf_release(&out);
}

/* fds the parent has open without O_CLOEXEC must not reach the child. */
static void test_no_fd_leak(void **state)
{
	struct buf out = BUF_INIT;
	char script[256];
	int low, high, code = -1;

	(void)state;
	low = open("/dev/null", O_RDONLY);
	assert_true(low > 2);
	high = dup2(low, 200);
	assert_int_equal(high, 200);
	snprintf(
	    script, sizeof(script),
	    "for fd in %d %d; do test -e /proc/self/fd/$fd && echo leak $fd; done; ls /proc/self/fd | wc -l",
	    low, high);
	run_sh(script, TEST_DEADLINE_MS, &out, &code);
	close(low);
	close(high);
	assert_int_equal(code, 0);
	/* ls sees 0, 1, 2 and its own directory fd: nothing else. */
	assert_string_equal(out.data, "4\n");
	buf_release(&out);
}

/* Blocked and ignored signals of the parent are reset in the child. */
static void test_signals_reset(void **state)
{
	sigset_t block, old;
	struct sigaction ign = {0}, old_int;
	struct buf out = BUF_INIT;
	int code = -1;

	(void)state;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	ign.sa_handler = SIG_IGN;
	assert_int_equal(sigaction(SIGINT, &ign, &old_int), 0);
	run_sh("grep -E '^Sig(Blk|Ign):' /proc/self/status", TEST_DEADLINE_MS, &out, &code);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGINT, &old_int, NULL);
	assert_int_equal(code, 0);
	assert_string_equal(out.data, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	buf_release(&out);
}

/* The child shares the parent's memory until exec but has its own signal
 * dispositions and mask: resetting them there leaves the parent's as they
 * were (a shared handler table, CLONE_SIGHAND, would not). */
static void on_usr1(int sig)
{
	(void)sig;
}

static void test_parent_dispositions_kept(void **state)
{
	sigset_t block, old, now;
	struct sigaction h = {0}, old_usr1, old_int, got;
	struct buf out = BUF_INIT;
	int code = -1;

	(void)state;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	h.sa_handler = on_usr1;
	assert_int_equal(sigaction(SIGUSR1, &h, &old_usr1), 0);
	h.sa_handler = SIG_IGN;
	assert_int_equal(sigaction(SIGINT, &h, &old_int), 0);
	run_sh("grep -E '^Sig(Blk|Ign):' /proc/self/status", TEST_DEADLINE_MS, &out, &code);
	assert_int_equal(sigaction(SIGUSR1, NULL, &got), 0);
	assert_ptr_equal(got.sa_handler, on_usr1);
	assert_int_equal(sigaction(SIGINT, NULL, &got), 0);
	assert_ptr_equal(got.sa_handler, SIG_IGN);
	assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &now), 0);
	assert_true(sigismember(&now, SIGUSR2));
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGUSR1, &old_usr1, NULL);
	sigaction(SIGINT, &old_int, NULL);
	assert_int_equal(code, 0);
	/* and the child had none of them */
	assert_string_equal(out.data, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	buf_release(&out);
}

/* Nothing of the parent is copied to start a child (no fork): after a
 * start, rewriting 32 MiB of the parent's heap takes no copy-on-write
 * faults. With fork every one of its 8192 pages would fault once. */
static void test_start_copies_nothing(void **state)
{
	const size_t size = (size_t)32 << 20;
	struct rusage r0, r1;
	struct buf out = BUF_INIT;
	char *mem;
	int code = -1;
	long faults;

	(void)state;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	madvise(mem, size, MADV_NOHUGEPAGE); /* one fault per 4 KiB page, not per 2 MiB */
	memset(mem, 1, size);
	run_sh("exit 0", TEST_DEADLINE_MS, &out, &code);
	assert_int_equal(code, 0);
	getrusage(RUSAGE_SELF, &r0);
	memset(mem, 2, size);
	getrusage(RUSAGE_SELF, &r1);
	faults = r1.ru_minflt - r0.ru_minflt;
	munmap(mem, size);
	buf_release(&out);
	if (faults > 1000)
		fail_msg("%ld page faults rewriting 8192 pages after a child start: its memory was copied",
		         faults);
}

/* Children started from several threads at once each run their own
 * command and report their own exit (each start has a stack of its own). */
#define SPAWN_THREADS 4
#define SPAWN_EACH    25

static void *spawn_many(void *arg)
{
	long id = (long)arg, bad = 0;

	for (int i = 0; i < SPAWN_EACH; i++) {
		char script[64], want[32];
		const char *argv[] = {"sh", "-c", script, NULL};
		struct buf out = BUF_INIT;
		struct err err = {0};
		int code = -1;

		snprintf(script, sizeof(script), "echo %ld-%d; exit %d", id, i, (int)(id + i) % 7);
		snprintf(want, sizeof(want), "%ld-%d\n", id, i);
		if (proc_run(argv, NULL, TEST_DEADLINE_MS, &out, &code, &err) < 0 ||
		    code != (int)(id + i) % 7 || out.data == NULL || strcmp(out.data, want) != 0)
			bad++;
		buf_release(&out);
	}
	return (void *)bad;
}

static void test_start_from_threads(void **state)
{
	pthread_t th[SPAWN_THREADS];
	long bad = 0;

	(void)state;
	for (long i = 0; i < SPAWN_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, spawn_many, (void *)i), 0);
	for (int i = 0; i < SPAWN_THREADS; i++) {
		void *r = NULL;
		pthread_join(th[i], &r);
		bad += (long)r;
	}
	assert_int_equal(bad, 0);
}

static void test_wait_timeout_then_kill(void **state)
{
	const char *argv[] = {"sleep", "300", NULL};
	struct proc_spec spec = {.argv = argv, .stdin_fd = -1};
	struct proc p;
	struct err err = {0};

	(void)state;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	assert_true(p.pid > 0);
	assert_int_equal(p.out_fd, -1);
	assert_int_equal(proc_wait(&p, 100, &err), 1);
	assert_int_equal(p.exited, 0);
	assert_int_equal(proc_kill_tree(&p, 5000, &err), 0);
	assert_int_equal(p.exited, 1);
	assert_int_equal(p.exit_code, 128 + 15);
	/* Safe again on an exited proc, and release twice is harmless. */
	assert_int_equal(proc_kill_tree(&p, 5000, &err), 0);
	proc_release(&p);
	proc_release(&p);
	assert_gone(p.pid);
}

/* Kernels without pidfd: waiting falls back to polling waitpid. */
static void test_wait_without_pidfd(void **state)
{
	const char *argv[] = {"sh", "-c", "exit 5", NULL};
	const char *sleeper[] = {"sleep", "300", NULL};
	struct proc_spec spec = {.argv = argv, .stdin_fd = -1};
	struct proc p;
	struct err err = {0};

	(void)state;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	if (p.pidfd >= 0)
		close(p.pidfd);
	p.pidfd = -1;
	assert_int_equal(proc_wait(&p, TEST_DEADLINE_MS, &err), 0);
	assert_int_equal(p.exit_code, 5);
	proc_release(&p);

	spec.argv = sleeper;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	if (p.pidfd >= 0)
		close(p.pidfd);
	p.pidfd = -1;
	assert_int_equal(proc_wait(&p, 50, &err), 1);
	assert_int_equal(proc_kill_tree(&p, 5000, &err), 0);
	assert_int_equal(p.exit_code, 128 + 15);
	proc_release(&p);
}

static void test_kill_tree_grandchild(void **state)
{
	struct fixture *f = *state;
	char pidfile[PATH_MAX + 16];
	const char *argv[] = {"sh", "-c", "sleep 300 & echo $! > pidfile.tmp; mv pidfile.tmp pidfile; wait",
	                      NULL};
	struct proc_spec spec = {.argv = argv, .cwd = f->dir, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct err err = {0};
	pid_t grandchild;

	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", f->dir);
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	grandchild = wait_pidfile(pidfile);
	assert_int_equal(getpgid(grandchild), p.pid);
	assert_int_equal(proc_kill_tree(&p, 5000, &err), 0);
	assert_int_equal(p.exited, 1);
	assert_int_equal(p.exit_code, 128 + 15);
	assert_gone(grandchild);
	assert_gone(p.pid);
	proc_release(&p);
}

/* A leader that ignores SIGTERM is killed once the grace period is over. */
static void test_kill_tree_term_ignored(void **state)
{
	const char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; exec sleep 300", NULL};
	struct proc_spec spec = {.argv = argv, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct err err = {0};
	char line[6] = {0};
	int64_t t0;

	(void)state;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	assert_int_equal(read(p.out_fd, line, 6), 6);
	assert_memory_equal(line, "ready\n", 6);
	t0 = now_ms();
	assert_int_equal(proc_kill_tree(&p, 300, &err), 0);
	assert_true(now_ms() - t0 >= 300);
	assert_int_equal(p.exit_code, 128 + 9);
	proc_release(&p);
}

/* The leader dies of SIGTERM within the grace period, but a grandchild
 * ignoring it must still not survive. */
static void test_kill_tree_grandchild_ignores_term(void **state)
{
	struct fixture *f = *state;
	char pidfile[PATH_MAX + 16];
	const char *argv[] = {"sh", "-c",
	                      "(trap '' TERM; exec sh -c 'echo $$ > pidfile.tmp; mv pidfile.tmp pidfile; "
	                      "exec sleep 300') & wait",
	                      NULL};
	struct proc_spec spec = {.argv = argv, .cwd = f->dir, .stdin_fd = -1, .capture_output = 1};
	struct proc p;
	struct err err = {0};
	pid_t grandchild;

	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", f->dir);
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	grandchild = wait_pidfile(pidfile);
	assert_int_equal(proc_kill_tree(&p, 5000, &err), 0);
	assert_int_equal(p.exit_code, 128 + 15);
	assert_gone(grandchild);
	proc_release(&p);
}

static void test_run_timeout(void **state)
{
	const char *argv[] = {"sh", "-c", "echo started; exec sleep 300", NULL};
	struct buf out = BUF_INIT;
	struct err err = {0};
	int code = -1;
	int zombies = count_zombie_children();
	int64_t t0 = now_ms();

	(void)state;
	assert_int_equal(proc_run(argv, NULL, 300, &out, &code, &err), -1);
	assert_true(now_ms() - t0 >= 300);
	assert_true(now_ms() - t0 < TEST_DEADLINE_MS);
	assert_int_equal(err.code, ERR_LIMIT);
	assert_string_equal(err.msg, "sh timed out after 300 ms");
	assert_string_equal(out.data, "started\n");
	assert_int_equal(count_zombie_children(), zombies);
	buf_release(&out);
}

/* spec.stop: a job canceled while its target is prepared. Once the caller
 * says stop (here once the grandchild runs), the run ends within a poll and
 * a grace period, with the whole tree killed, and the pump never waited for
 * its 300 s timeout. */
struct stop_after_file {
	const char *path;
	int asked;
};

static int stop_once_file(void *arg)
{
	struct stop_after_file *s = arg;

	s->asked++;
	return access(s->path, F_OK) == 0;
}

static void test_run_stop(void **state)
{
	struct fixture *f = *state;
	char pidfile[PATH_MAX + 16], stopfile[PATH_MAX + 16];
	/* The stop is asked for by a file the shell makes itself (`: >`), once
	 * mv has exited and been reaped: a stop on the pidfile could kill the
	 * shell while mv was still exiting, and mv then became an orphan zombie
	 * of this subreaper, counted below (a flake seen in CI). */
	const char *argv[] = {
	    "sh", "-c", "sleep 300 & echo $! > pidfile.tmp; mv pidfile.tmp pidfile; : > stopnow; wait", NULL};
	struct stop_after_file sa = {stopfile, 0};
	struct proc_stop stop = {stop_once_file, &sa};
	struct proc_spec spec = {.argv = argv, .cwd = f->dir, .stdin_fd = -1, .stop = &stop};
	struct buf out = BUF_INIT;
	struct err err = {0};
	int code = -1;
	int zombies = count_zombie_children();
	int64_t t0 = now_ms(), took;
	pid_t grandchild;

	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", f->dir);
	snprintf(stopfile, sizeof(stopfile), "%s/stopnow", f->dir);
	assert_int_equal(proc_run_spec(&spec, 300000, &out, &code, &err), -1);
	took = now_ms() - t0;
	assert_true(took < TEST_DEADLINE_MS);
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_string_equal(err.msg, "sh interrupted");
	assert_true(sa.asked >= 1);
	grandchild = wait_pidfile(pidfile);
	assert_gone(grandchild);
	assert_int_equal(count_zombie_children(), zombies);
	buf_release(&out);

	/* A stop that never says stop changes nothing. */
	sa.path = "/nonexistent/anvil-never";
	sa.asked = 0;
	{
		const char *ok_argv[] = {"sh", "-c", "sleep 0.3; echo done", NULL};
		spec.argv = ok_argv;
		assert_int_equal(proc_run_spec(&spec, TEST_DEADLINE_MS, &out, &code, &err), 0);
		assert_int_equal(code, 0);
		assert_string_equal(out.data, "done\n");
		assert_true(sa.asked >= 2); /* asked while it ran, about every PROC_STOP_POLL_MS */
	}
	buf_release(&out);
}

/* proc_run returns once the leader exits even if a background process still
 * holds the output pipe open. */
static void test_run_background_holder(void **state)
{
	struct fixture *f = *state;
	char script[PATH_MAX + 128], pidfile[PATH_MAX + 16];
	struct buf out = BUF_INIT;
	int code = -1;
	int64_t t0 = now_ms();
	pid_t bg;

	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", f->dir);
	snprintf(script, sizeof(script), "sleep 300 & echo $! > %s; echo done", pidfile);
	run_sh(script, TEST_DEADLINE_MS, &out, &code);
	assert_true(now_ms() - t0 < TEST_DEADLINE_MS);
	assert_int_equal(code, 0);
	assert_string_equal(out.data, "done\n");
	bg = wait_pidfile(pidfile);
	kill(bg, SIGKILL);
	assert_gone(bg);
	buf_release(&out);
}

/* die_with_parent: when the process that started the child dies, so does
 * the child. The parent here is a forked helper. */
static void test_die_with_parent(void **state)
{
	int fds[2];
	pid_t helper, child = 0;
	int st;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		const char *argv[] = {"sleep", "300", NULL};
		struct proc_spec spec = {.argv = argv, .stdin_fd = -1, .die_with_parent = 1};
		struct proc p;
		struct err err = {0};

		if (proc_start(&p, &spec, &err) < 0)
			_exit(1);
		if (write(fds[1], &p.pid, sizeof(p.pid)) != (ssize_t)sizeof(p.pid))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(helper, &st, 0), helper);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(child > 0);
	assert_gone(child);
}

static void test_release_zeroed(void **state)
{
	struct proc p = {0};
	struct err err = {0};

	(void)state;
	if (fcntl(0, F_GETFD) < 0)
		assert_int_equal(open("/dev/null", O_RDONLY), 0);
	proc_release(&p);
	proc_release(NULL);
	assert_int_equal(proc_kill_tree(&p, 0, &err), 0);
	/* Releasing a zeroed proc must not close fd 0. */
	assert_true(fcntl(0, F_GETFD) >= 0);
}

int main(void)
{
	struct err err = {0};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subreaper),
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_output_merged),
	    cmocka_unit_test(test_output_stdout_only),
	    cmocka_unit_test(test_large_output_no_deadlock),
	    cmocka_unit_test(test_stdin_is_dev_null),
	    cmocka_unit_test(test_exec_missing_in_path),
	    cmocka_unit_test_setup_teardown(test_exec_failure_in_child, setup, teardown),
	    cmocka_unit_test(test_chdir_failure),
	    cmocka_unit_test(test_env_exact),
	    cmocka_unit_test_setup_teardown(test_path_from_envp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cwd, setup, teardown),
	    cmocka_unit_test(test_no_fd_leak),
	    cmocka_unit_test(test_signals_reset),
	    cmocka_unit_test(test_parent_dispositions_kept),
	    cmocka_unit_test(test_start_copies_nothing),
	    cmocka_unit_test(test_start_from_threads),
	    cmocka_unit_test(test_wait_timeout_then_kill),
	    cmocka_unit_test(test_wait_without_pidfd),
	    cmocka_unit_test_setup_teardown(test_kill_tree_grandchild, setup, teardown),
	    cmocka_unit_test(test_kill_tree_term_ignored),
	    cmocka_unit_test_setup_teardown(test_kill_tree_grandchild_ignores_term, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_stop, setup, teardown),
	    cmocka_unit_test(test_run_timeout),
	    cmocka_unit_test_setup_teardown(test_run_background_holder, setup, teardown),
	    cmocka_unit_test(test_die_with_parent),
	    cmocka_unit_test(test_release_zeroed),
	};

	if (proc_become_subreaper(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
