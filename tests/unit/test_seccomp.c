#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/runner.h"
#include "common/seccomp.h"
#include "qemu/runner_bwrap.h"

/* The checks a filtered child runs, in order; it exits with the number of
 * the first that failed (0: all passed). */
static const char *const checks[] = {
    "",
    "read the filter",
    "load the filter",
    "mount is EPERM",
    "unshare(CLONE_NEWUSER) is EPERM",
    "clone(CLONE_NEWUSER) is EPERM",
    "clone3 is ENOSYS",
    "ptrace(PTRACE_ATTACH, parent) is EPERM",
    "keyctl is EPERM",
    "i386 mount (int 0x80) is EPERM",
    "fork works",
    "a thread starts (clone3 falls back to clone)",
    "open/write/read work",
    "socket works",
    "unshare(CLONE_NEWNS) is not refused by the filter",
};

/* In a forked child: cmocka's handlers would longjmp back into the test
 * runner, and the child would go on running the parent's tests. */
static void child_default_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return st;
}

static void *thread_main(void *arg)
{
	return arg;
}

/* Loads the program from fd as bwrap does: no_new_privs, then seccomp(2). */
static int load_filter(int fd)
{
	static struct sock_filter prog[4096];
	struct sock_fprog fprog;
	ssize_t n;

	if ((n = read(fd, prog, sizeof(prog))) <= 0 || n % sizeof(prog[0]) != 0)
		return 1;
	fprog.len = (unsigned short)(n / sizeof(prog[0]));
	fprog.filter = prog;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		return 2;
	return 0;
}

/* i386's mount (21) through the 32-bit entry, NULL arguments: EFAULT
 * unfiltered. Returns -errno. */
static long i386_mount(void)
{
#if defined(__x86_64__)
	long ret;

	__asm__ volatile("int $0x80"
	                 : "=a"(ret)
	                 : "a"(21L), "b"(0L), "c"(0L), "d"(0L), "S"(0L), "D"(0L)
	                 : "memory");
	return ret;
#else
	return -EPERM;
#endif
}

static int filtered_child(int fd, const char *dir)
{
	char path[4096], got[4];
	pthread_t t;
	pid_t pid;
	long r;
	int st, f, s;

	if ((r = load_filter(fd)) != 0)
		return (int)r;
	if (mount("none", dir, "tmpfs", 0, NULL) == 0 || errno != EPERM)
		return 3;
	if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM)
		return 4;
	if ((r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0)) == 0)
		_exit(0); /* unfiltered: the clone itself leaves quietly */
	if (r > 0 || errno != EPERM)
		return 5;
	if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
		return 6;
	if (ptrace(PTRACE_ATTACH, getppid(), 0, 0) == 0) {
		ptrace(PTRACE_DETACH, getppid(), 0, 0);
		return 7;
	}
	if (errno != EPERM)
		return 7;
	if (syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) >= 0 || errno != EPERM)
		return 8;
	/* In a child: without IA32 emulation int 0x80 is a SIGSEGV, not a
	 * hole; only a non-EPERM answer fails. */
	if ((pid = fork()) == 0)
		_exit((int)-i386_mount());
	if (pid < 0 || waitpid(pid, &st, 0) != pid || (WIFEXITED(st) && WEXITSTATUS(st) != EPERM))
		return 9;
	if ((pid = fork()) == 0)
		_exit(42);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
		return 10;
	if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0)
		return 11;
	snprintf(path, sizeof(path), "%s/f", dir);
	if ((f = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || write(f, "abc", 3) != 3 ||
	    pread(f, got, 3, 0) != 3 || memcmp(got, "abc", 3) != 0)
		return 12;
	close(f);
	unlink(path);
	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 13;
	close(s);
	/* Root here: allowed by the filter, so it succeeds (a private mount
	 * namespace of this child only). */
	if (unshare(CLONE_NEWNS) < 0)
		return 14;
	return 0;
}

static void test_filter_in_child(void **state)
{
	char dir[] = "/tmp/anvil-seccomp-XXXXXX";
	struct err err;
	pid_t pid;
	int fd, st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	err_clear(&err);
	fd = seccomp_step_filter_fd(&err);
	if (fd < 0)
		fail_msg("seccomp_step_filter_fd: %s", err.msg);
	/* Read-only, close-on-exec, sealed. */
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(fd, "x", 1), -1);
	if ((pid = fork()) == 0) {
		child_default_signals();
		_exit(filtered_child(fd, dir));
	}
	assert_true(pid > 0);
	st = wait_status(pid);
	close(fd);
	rmdir(dir);
	if (!WIFEXITED(st))
		fail_msg("filtered child died of signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("filtered child: check failed: %s",
		         WEXITSTATUS(st) < (int)(sizeof(checks) / sizeof(checks[0])) ? checks[WEXITSTATUS(st)]
		                                                                     : "?");
}

static void test_fd_per_call(void **state)
{
	struct err err;
	struct stat a, b;
	int fd1, fd2;

	(void)state;
	assert_true((fd1 = seccomp_step_filter_fd(&err)) >= 0);
	assert_true((fd2 = seccomp_step_filter_fd(&err)) >= 0);
	assert_int_equal(fstat(fd1, &a), 0);
	assert_int_equal(fstat(fd2, &b), 0);
	assert_true(a.st_size > 0 && a.st_size % 8 == 0);
	assert_int_equal(a.st_size, b.st_size);
	assert_int_equal(lseek(fd1, 0, SEEK_CUR), 0);
	close(fd1);
	close(fd2);
}

static const char *find_bwrap(void)
{
	static const char *const where[] = {"/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"};
	size_t i;

	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* Runs bwrap ... /bin/sh -c script, with a fresh filter as fd 3 when
 * filtered; returns the wait status. */
static int run_bwrap(const char *bwrap, int filtered, const char *script)
{
	struct err err;
	int fd = -1, st;
	pid_t pid;

	if (filtered) {
		fd = seccomp_step_filter_fd(&err);
		if (fd < 0)
			fail_msg("seccomp_step_filter_fd: %s", err.msg);
	}
	if ((pid = fork()) == 0) {
		if (filtered) {
			if (fd == 3)
				fcntl(3, F_SETFD, 0);
			else if (dup2(fd, 3) != 3)
				_exit(126);
			execl(bwrap, "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
			      "--seccomp", "3", "/bin/sh", "-c", script, (char *)NULL);
		} else {
			execl(bwrap, "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
			      "/bin/sh", "-c", script, (char *)NULL);
		}
		_exit(127);
	}
	assert_true(pid > 0);
	if (fd >= 0)
		close(fd);
	st = wait_status(pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_bwrap_takes_the_filter(void **state)
{
	const char *bwrap = find_bwrap();
	const char *work = "echo hi | cat >/dev/null && sh -c 'sleep 0 & wait' && ls / >/dev/null";

	(void)state;
	if (bwrap == NULL) {
		print_message("skipping: bwrap is not installed\n");
		skip();
	}
	if (run_bwrap(bwrap, 0, "unshare -U true") != 0) {
		print_message("skipping: unshare -U fails in bwrap even without the filter\n");
		skip();
	}
	assert_int_not_equal(run_bwrap(bwrap, 1, "unshare -U true"), 0);
	assert_int_equal(run_bwrap(bwrap, 1, work), 0);
	assert_int_equal(run_bwrap(bwrap, 0, work), 0);
}

/* All of fd's bytes from its current offset. */
static void read_all(int fd, struct buf *out)
{
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	assert_int_equal(n, 0);
}

/* A filter compiled once serves any number of steps: each reopening is a
 * read-only description of its own at offset 0 holding the same program as
 * a fresh compile; reading one moves no other. Only a sealed memfd is
 * reopened. */
static void test_reopen(void **state)
{
	struct buf once = BUF_INIT, fresh = BUF_INIT, again = BUF_INIT;
	struct err err = {0};
	int fd, a, b, c, unsealed, p[2];

	(void)state;
	assert_true((fd = seccomp_step_filter_fd(&err)) >= 0);
	assert_true((a = seccomp_filter_reopen(fd, &err)) >= 0);
	assert_true((b = seccomp_filter_reopen(fd, &err)) >= 0);
	assert_true(a != fd && b != fd && a != b);
	assert_int_equal(fcntl(a, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(a, "x", 1), -1);
	read_all(a, &once);
	assert_int_equal(lseek(b, 0, SEEK_CUR), 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	read_all(b, &again);
	assert_true((c = seccomp_step_filter_fd(&err)) >= 0);
	read_all(c, &fresh);
	assert_true(once.len > 0 && once.len % 8 == 0);
	assert_int_equal(once.len, fresh.len);
	assert_memory_equal(once.data, fresh.data, once.len);
	assert_int_equal(again.len, once.len);
	assert_memory_equal(again.data, once.data, once.len);
	close(a);
	close(b);
	close(c);

	/* Not sealed: anything with a writable fd could change the program. */
	assert_true((unsealed = memfd_create("t", MFD_CLOEXEC)) >= 0);
	assert_int_equal(seccomp_filter_reopen(unsealed, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	close(unsealed);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(seccomp_filter_reopen(p[0], &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	close(p[0]);
	close(p[1]);
	close(fd);
	buf_release(&once);
	buf_release(&fresh);
	buf_release(&again);
}

/* Runs run through r in ws; returns its exit code, output in out. */
static int runner_step(struct runner *r, const char *ws, const char *run, struct buf *out)
{
	struct step_spec step = {.name = "t", .run = run, .workspace = ws};
	struct proc p = {0};
	struct err err = {0};

	if (r->ops->start(r, &step, &p, &err) < 0)
		fail_msg("start: %s", err.msg);
	read_all(p.out_fd, out);
	if (proc_wait(&p, 30000, &err) != 0)
		fail_msg("step did not end: %s", err.msg);
	proc_release(&p);
	return p.exit_code;
}

/* The host target's sandboxed runner given the agent's filter, compiled
 * once: two consecutive steps both run under it (Seccomp: 2, a new user
 * namespace refused), and the agent's own fd is left at offset 0. */
static void test_filter_once_two_steps(void **state)
{
	struct passwd *pw = getpwnam("anvil-build");
	struct runner_sandbox sb = {0};
	struct bwrap_config cfg = {.mode = RECIPE_MODE_CROSS, .rootfs_dir = NULL};
	struct err err = {0};
	struct runner *r;
	char ws[] = "/tmp/anvil-seccomp-ws-XXXXXX";
	int fd;

	(void)state;
	if (find_bwrap() == NULL || geteuid() != 0 || pw == NULL) {
		print_message("skip: needs bwrap, root and the anvil-build user (scripts/deps.sh)\n");
		skip();
	}
	assert_non_null(mkdtemp(ws));
	assert_int_equal(chown(ws, pw->pw_uid, pw->pw_gid), 0);
	assert_true((fd = seccomp_step_filter_fd(&err)) >= 0);
	sb.drop_ids = 1;
	sb.uid = pw->pw_uid;
	sb.gid = pw->pw_gid;
	sb.has_seccomp_fd = 1;
	sb.seccomp_fd = fd;
	cfg.sandbox = &sb;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	for (int i = 0; i < 2; i++) {
		struct buf out = BUF_INIT;
		int code = runner_step(r, ws,
		                       "grep '^Seccomp:' /proc/self/status | tr -s '\\t ' ' ';"
		                       "unshare -U true 2>/dev/null || echo userns-refused",
		                       &out);
		assert_int_equal(code, 0);
		if (out.data == NULL || strcmp(out.data, "Seccomp: 2\nuserns-refused\n") != 0)
			fail_msg("step %d printed:\n%s", i + 1, out.data != NULL ? out.data : "");
		buf_release(&out);
	}
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	runner_free(r);
	close(fd);
	rmdir(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_filter_in_child),        cmocka_unit_test(test_fd_per_call),
	    cmocka_unit_test(test_bwrap_takes_the_filter), cmocka_unit_test(test_reopen),
	    cmocka_unit_test(test_filter_once_two_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
