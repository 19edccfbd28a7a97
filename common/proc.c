#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* What the child reports through the status pipe when it cannot exec. */
enum proc_stage {
	PROC_STAGE_SETUP = 1,
	PROC_STAGE_CHDIR,
	PROC_STAGE_EXEC,
};

struct proc_child_status {
	int stage;
	int errnum;
};

/* Everything the child needs, prepared before the clone so that the child only
 * makes async-signal-safe calls. */
struct proc_child_plan {
	const char *path; /* resolved program */
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int in_fd;
	int out_fd; /* write end of the output pipe, -1 when inherited */
	int err_fd; /* stderr when not out_fd (stdout_only), else -1 */
	int status_fd;
	int die_with_parent;
	pid_t parent_pid;
	int max_fd; /* for the close loop when close_range is missing */
	const int *cgroup_fds;
	size_t n_cgroup_fds;
	int cgroup_dir_fd; /* -1: none */
	int in_cgroup;     /* 1: the clone put the child in its cgroup: no writes */
	int drop_ids;
	uid_t uid;
	gid_t gid;
	int no_new_privs;
	struct rlimit fsize; /* rlim_cur 0: not set */
	int fd3;             /* -1: none */
	int netns_fd;        /* -1: none */
};

/* Reading buffer for proc_run; output is appended in slices of this size. */
#define PROC_READ_CHUNK_BYTES 65536
/* Grace between SIGTERM and SIGKILL when proc_run times out. */
#define PROC_RUN_GRACE_MS 1000
/* Reads after the leader's exit: far more than a pipe buffer holds. */
#define PROC_DRAIN_MAX_READS 64
/* Poll interval when the kernel has no pidfd. */
#define PROC_POLL_FALLBACK_MS 10
/* The child's own stack until it execs (it shares the parent's memory):
 * proc_child's frames and the libc calls it makes need a few KiB. */
#define PROC_CHILD_STACK_BYTES (64 * 1024)

static int64_t proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remaining milliseconds until deadline_ms (monotonic); -1 when there is no
 * deadline, 0 once it has passed. */
static int proc_remaining_ms(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms < 0)
		return -1;
	left = deadline_ms - proc_now_ms();
	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void proc_close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void proc_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The PATH that decides where argv[0] is found: the child's own (envp) when
 * it has one, as env(1) does, else ours. */
static const char *proc_search_path(const char *const *envp)
{
	const char *path;

	if (envp != NULL) {
		for (size_t i = 0; envp[i] != NULL; i++)
			if (strncmp(envp[i], "PATH=", 5) == 0)
				return envp[i] + 5;
	}
	path = getenv("PATH");
	return path != NULL ? path : "/usr/local/bin:/usr/bin:/bin";
}

/* Finds name in the search path; returns an owned path or NULL with errno
 * (ENOENT, or EACCES when only non-executable candidates exist). */
static char *proc_locate_dup(const char *name, const char *search)
{
	int saw_eacces = 0;
	const char *p = search;

	if (*name == '\0') {
		errno = ENOENT;
		return NULL;
	}
	for (;;) {
		const char *end = strchr(p, ':');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char *cand;
		struct stat st;

		/* An empty PATH element means the current directory. */
		if (len == 0)
			cand = xasprintf("./%s", name);
		else
			cand = xasprintf("%.*s/%s", (int)len, p, name);
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0)
				return cand;
			saw_eacces = 1;
		}
		free(cand);
		if (end == NULL)
			break;
		p = end + 1;
	}
	errno = saw_eacces ? EACCES : ENOENT;
	return NULL;
}

static void proc_child_fail(int status_fd, int stage)
{
	struct proc_child_status st = {stage, errno};
	ssize_t n;

	do
		n = write(status_fd, &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	_exit(127);
}

/* Moves fd above 2 so that the dup2 onto 0..2 cannot clobber it. */
static int proc_child_lift_fd(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static void proc_child_close_range(unsigned int lo, unsigned int hi, int max_fd)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	for (unsigned int fd = lo; fd <= hi && fd < (unsigned int)max_fd; fd++)
		close((int)fd);
}

/* Runs in the child, on its own stack but in the parent's memory (see
 * proc_spawn; started into a v2 cgroup, on a copy of both): async-signal-safe
 * calls only, writes to nothing but its own stack and the status pipe, never
 * returns. */
static void proc_child(struct proc_child_plan *plan)
{
	struct sigaction dfl;
	sigset_t none;
	int status_fd = plan->status_fd;
	int in_fd, out_fd, err_fd, fd3 = -1;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	/* Handlers of the parent must not run here, and ignored signals would
	 * stay ignored across exec. Reserved libc signals fail with EINVAL. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (status_fd <= 2) {
		status_fd = fcntl(status_fd, F_DUPFD_CLOEXEC, 3);
		if (status_fd < 0)
			_exit(127);
	}
	if (setpgid(0, 0) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	for (size_t i = 0; !plan->in_cgroup && i < plan->n_cgroup_fds; i++) {
		ssize_t w;
		do
			w = write(plan->cgroup_fds[i], "0", 1);
		while (w < 0 && errno == EINTR);
		if (w != 1)
			proc_child_fail(status_fd, PROC_STAGE_SETUP);
	}
	if (plan->netns_fd >= 0 && syscall(SYS_setns, plan->netns_fd, CLONE_NEWNET) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	/* Raw syscalls: no libc bookkeeping (setxid broadcast to the parent's
	 * threads) in the child. */
	if (plan->drop_ids && (syscall(SYS_setgroups, 0, NULL) < 0 ||
	                       syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) < 0 ||
	                       syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) < 0))
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (plan->fsize.rlim_cur > 0 && setrlimit(RLIMIT_FSIZE, &plan->fsize) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (plan->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (plan->die_with_parent) {
		/* After the id change: a change of credentials clears the death signal. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			proc_child_fail(status_fd, PROC_STAGE_SETUP);
		/* The parent may have died before prctl took effect. */
		if (getppid() != plan->parent_pid)
			_exit(127);
	}

	/* fd 3 may be wanted: keep the status pipe and fd 3's source above it. */
	if (plan->fd3 >= 0 && status_fd <= 3 && (status_fd = fcntl(status_fd, F_DUPFD_CLOEXEC, 4)) < 0)
		_exit(127);
	if (plan->fd3 >= 0 && (fd3 = fcntl(plan->fd3, F_DUPFD_CLOEXEC, 4)) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	in_fd = proc_child_lift_fd(plan->in_fd);
	out_fd = proc_child_lift_fd(plan->out_fd);
	err_fd = plan->err_fd >= 0 ? proc_child_lift_fd(plan->err_fd) : out_fd;
	if (in_fd < 0 || (plan->out_fd >= 0 && out_fd < 0) || (plan->err_fd >= 0 && err_fd < 0))
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (dup2(in_fd, 0) < 0)
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0))
		proc_child_fail(status_fd, PROC_STAGE_SETUP);
	if (fd3 >= 0 && dup2(fd3, 3) < 0) /* dup2 clears close-on-exec on 3 */
		proc_child_fail(status_fd, PROC_STAGE_SETUP);

	/* Keep only 0..2 (and 3 when passed) and the status pipe (close-on-exec) open. */
	proc_child_close_range(fd3 >= 0 ? 4 : 3, (unsigned int)status_fd - 1, plan->max_fd);
	proc_child_close_range((unsigned int)status_fd + 1, ~0U, plan->max_fd);

	if (plan->cwd != NULL && chdir(plan->cwd) < 0)
		proc_child_fail(status_fd, PROC_STAGE_CHDIR);
	execve(plan->path, plan->argv, plan->envp);
	proc_child_fail(status_fd, PROC_STAGE_EXEC);
}

static int proc_child_entry(void *arg)
{
	proc_child(arg);
	return 127; /* not reached */
}

/* Starts proc_child(plan) already in the cgroup v2 directory
 * plan->cgroup_dir_fd: clone3 with CLONE_INTO_CGROUP | CLONE_VFORK, so the
 * child never moves (a write to cgroup.procs takes the kernel's global
 * threadgroup lock and waits for an RCU grace period, 5-20 ms). clone3 takes
 * no function to run on another stack, so this one has no CLONE_VM: the child
 * returns from the syscall as a fork's does, on a copy-on-write copy of this
 * stack, and makes the same async-signal-safe calls; the calling thread waits
 * until it execs. -1 with errno where the kernel refuses (before 5.7, or not
 * a cgroup the caller may enter): proc_spawn then starts it as below. */
static pid_t proc_spawn_into_cgroup(struct proc_child_plan *plan)
{
	struct clone_args args;
	long pid;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_VFORK | CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)plan->cgroup_dir_fd;
	plan->in_cgroup = 1;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		proc_child(plan); /* never returns */
	plan->in_cgroup = 0;      /* the child had its own copy */
	return (pid_t)pid;
}

/* Starts proc_child(plan) the way posix_spawn does: clone with CLONE_VM |
 * CLONE_VFORK on a stack of its own. The child shares the parent's memory
 * until it execs (or _exits) and the calling thread waits until then, so
 * nothing of the parent is copied: no page tables, no copy-on-write faults
 * in the parent afterwards, no copied address space for exec to tear down.
 * Without CLONE_SIGHAND the child has its own signal dispositions, which it
 * resets. The caller blocks every signal first: no handler of the parent
 * may run on the child's stack. Returns the pid, or -1 with errno. */
static pid_t proc_spawn(struct proc_child_plan *plan)
{
	long page;
	size_t guard, size;
	char *stack;
	pid_t pid;
	int saved;

	if (plan->cgroup_dir_fd >= 0 && (pid = proc_spawn_into_cgroup(plan)) > 0)
		return pid;
	page = sysconf(_SC_PAGESIZE);
	guard = page > 0 ? (size_t)page : 4096;
	size = PROC_CHILD_STACK_BYTES + guard;
	stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	/* The lowest page stays unmapped for access: an overflow faults
	 * instead of writing into whatever lies below. */
	if (mprotect(stack, guard, PROT_NONE) < 0) {
		saved = errno;
		munmap(stack, size);
		errno = saved;
		return -1;
	}
	/* The stack grows down from its end. */
	pid = clone(proc_child_entry, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, plan);
	saved = errno;
	munmap(stack, size);
	errno = saved;
	return pid;
}

static int proc_child_error(struct err *err, const struct proc_child_status *st, const struct proc_spec *spec)
{
	errno = st->errnum;
	switch (st->stage) {
	case PROC_STAGE_CHDIR:
		err_errno(err, "chdir %s", spec->cwd);
		break;
	case PROC_STAGE_EXEC:
		err_errno(err, "exec %s", spec->argv[0]);
		break;
	default:
		err_errno(err, "child setup for %s", spec->argv[0]);
		break;
	}
	if (err != NULL && st->errnum == ENOENT)
		err->code = ERR_NOTFOUND;
	errno = st->errnum;
	return -1;
}

static int proc_max_fd(void)
{
	long n = sysconf(_SC_OPEN_MAX);

	if (n <= 0 || n > 65536)
		n = 65536;
	return (int)n;
}

int proc_start(struct proc *out, const struct proc_spec *spec, struct err *err)
{
	struct proc_child_plan plan = {0};
	struct proc_child_status st;
	sigset_t all, old;
	char *path = NULL; /* owned */
	int null_fd = -1, null_out_fd = -1, out_pipe[2] = {-1, -1}, status_pipe[2] = {-1, -1};
	pid_t pid = -1;
	ssize_t n;
	int saved, rc = -1;

	out->pid = 0;
	out->pidfd = -1;
	out->out_fd = -1;
	out->exited = 0;
	out->exit_code = 0;

	if (spec == NULL || spec->argv == NULL || spec->argv[0] == NULL)
		return err_set(err, ERR_INVAL, "proc_start: empty argv");

	if (strchr(spec->argv[0], '/') != NULL) {
		path = xstrdup(spec->argv[0]);
	} else if ((path = proc_locate_dup(spec->argv[0], proc_search_path(spec->envp))) == NULL) {
		saved = errno;
		err_errno(err, "exec %s", spec->argv[0]);
		if (err != NULL && saved == ENOENT)
			err->code = ERR_NOTFOUND;
		errno = saved;
		goto out;
	}

	if (spec->stdin_fd < 0 && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open /dev/null");
		goto out;
	}
	if (spec->capture_output && pipe2(out_pipe, O_CLOEXEC) < 0) {
		err_errno(err, "pipe");
		goto out;
	}
	if (spec->capture_output && spec->stdout_only &&
	    (null_out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open /dev/null");
		goto out;
	}
	if (pipe2(status_pipe, O_CLOEXEC) < 0) {
		err_errno(err, "pipe");
		goto out;
	}

	/* The const casts are those of execve's own prototype: it does not
	 * modify argv or envp. */
	plan.path = path;
	plan.argv = (char *const *)spec->argv;
	plan.envp = spec->envp != NULL ? (char *const *)spec->envp : environ;
	plan.cwd = spec->cwd;
	plan.in_fd = spec->stdin_fd < 0 ? null_fd : spec->stdin_fd;
	plan.out_fd = out_pipe[1];
	if (!spec->capture_output && spec->has_log_fd)
		plan.out_fd = spec->log_fd;
	plan.err_fd = null_out_fd;
	plan.status_fd = status_pipe[1];
	plan.die_with_parent = spec->die_with_parent;
	plan.parent_pid = getpid();
	plan.max_fd = proc_max_fd();
	plan.cgroup_fds = spec->cgroup_fds;
	plan.n_cgroup_fds = spec->n_cgroup_fds;
	plan.cgroup_dir_fd = spec->has_cgroup_dir ? spec->cgroup_dir_fd : -1;
	plan.drop_ids = spec->drop_ids;
	plan.uid = spec->uid;
	plan.gid = spec->gid;
	plan.no_new_privs = spec->no_new_privs;
	plan.fsize.rlim_cur = plan.fsize.rlim_max = spec->rlimit_fsize > 0 ? (rlim_t)spec->rlimit_fsize : 0;
	plan.fd3 = spec->has_fd3 ? spec->fd3 : -1;
	plan.netns_fd = spec->has_netns ? spec->netns_fd : -1;

	/* No signal handler may run in the child before it resets them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = proc_spawn(&plan);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		errno = saved;
		err_errno(err, "clone for %s", spec->argv[0]);
		goto out;
	}
	/* Both sides set the group so that a kill right after start reaches
	 * it; EACCES here only means the child has already exec'd. */
	setpgid(pid, pid);

	proc_close_fd(&status_pipe[1]);
	proc_close_fd(&out_pipe[1]);
	proc_close_fd(&null_fd);
	proc_close_fd(&null_out_fd);

	do
		n = read(status_pipe[0], &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	if (n != 0) {
		int wst;

		while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
			;
		if (n == (ssize_t)sizeof(st)) {
			proc_child_error(err, &st, spec);
		} else {
			if (n > 0)
				errno = EIO;
			err_errno(err, "read exec status of %s", spec->argv[0]);
		}
		goto out;
	}

	out->pid = pid;
	out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	out->out_fd = out_pipe[0];
	out_pipe[0] = -1;
	rc = 0;
out:
	saved = errno;
	free(path);
	proc_close_fd(&null_fd);
	proc_close_fd(&null_out_fd);
	proc_close_fd(&out_pipe[0]);
	proc_close_fd(&out_pipe[1]);
	proc_close_fd(&status_pipe[0]);
	proc_close_fd(&status_pipe[1]);
	errno = saved;
	return rc;
}

static void proc_set_status(struct proc *p, int wst)
{
	p->exited = 1;
	if (WIFEXITED(wst))
		p->exit_code = WEXITSTATUS(wst);
	else if (WIFSIGNALED(wst))
		p->exit_code = 128 + WTERMSIG(wst);
	else
		p->exit_code = 255;
}

/* One non-blocking reap attempt: 1 reaped, 0 still running, -1 error. */
static int proc_try_reap(struct proc *p, struct err *err)
{
	int wst;
	pid_t r;

	do
		r = waitpid(p->pid, &wst, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return err_errno(err, "waitpid %d", (int)p->pid);
	if (r == 0)
		return 0;
	proc_set_status(p, wst);
	return 1;
}

int proc_wait(struct proc *p, int timeout_ms, struct err *err)
{
	int64_t deadline_ms = timeout_ms < 0 ? -1 : proc_now_ms() + timeout_ms;

	if (p->exited)
		return 0;
	if (p->pid <= 0)
		return err_set(err, ERR_INVAL, "proc_wait: no process");

	if (p->pidfd < 0 && timeout_ms < 0) {
		int wst;

		while (waitpid(p->pid, &wst, 0) < 0) {
			if (errno != EINTR)
				return err_errno(err, "waitpid %d", (int)p->pid);
		}
		proc_set_status(p, wst);
		return 0;
	}

	for (;;) {
		int left = proc_remaining_ms(deadline_ms);
		int r;

		if (p->pidfd >= 0) {
			struct pollfd pfd = {p->pidfd, POLLIN, 0};

			r = poll(&pfd, 1, left);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return err_errno(err, "poll pidfd of %d", (int)p->pid);
			}
			if (r == 0)
				return 1;
		}
		r = proc_try_reap(p, err);
		if (r < 0)
			return -1;
		if (r == 1)
			return 0;
		if (p->pidfd < 0) {
			if (left == 0)
				return 1;
			proc_sleep_ms(left < PROC_POLL_FALLBACK_MS ? left : PROC_POLL_FALLBACK_MS);
		}
	}
}

/* Signals the group; falls back to the leader alone if the group is gone
 * while the leader is not (it cannot be once setpgid succeeded, but a
 * failed signal must never be silent). */
static int proc_signal_tree(struct proc *p, int sig, struct err *err)
{
	if (kill(-p->pid, sig) == 0)
		return 0;
	if (errno == ESRCH) {
		if (p->exited || kill(p->pid, sig) == 0 || errno == ESRCH)
			return 0;
	}
	return err_errno(err, "kill -%d -%d", sig, (int)p->pid);
}

int proc_kill_tree(struct proc *p, int grace_ms, struct err *err)
{
	int rc = 0;

	if (p->pid <= 0)
		return 0;
	/* Whatever fails before, the SIGKILL below is still sent. */
	if (!p->exited) {
		if (proc_signal_tree(p, SIGTERM, err) < 0)
			rc = -1;
		/* A stopped leader would never see the SIGTERM. */
		kill(-p->pid, SIGCONT);
		if (rc == 0 && proc_wait(p, grace_ms < 0 ? 0 : grace_ms, err) < 0)
			rc = -1;
	}
	/* Also after the leader is gone: members that ignored SIGTERM or were
	 * left behind must not outlive the job. The group id cannot be handed
	 * out again while any member lives. */
	if (proc_signal_tree(p, SIGKILL, rc == 0 ? err : NULL) < 0)
		rc = -1;
	if (rc == 0 && !p->exited && proc_wait(p, -1, err) < 0)
		rc = -1;
	return rc;
}

void proc_release(struct proc *p)
{
	if (p == NULL || p->pid <= 0)
		return;
	proc_close_fd(&p->pidfd);
	proc_close_fd(&p->out_fd);
}

/* Reads whatever is ready on p->out_fd into out (NULL: discard); closes the
 * fd at EOF. wait_ms is the poll timeout. Returns 0, or -1 with err. */
static int proc_read_some(struct proc *p, struct buf *out, int wait_ms, int *got_out, struct err *err)
{
	char chunk[PROC_READ_CHUNK_BYTES];
	struct pollfd pfd = {p->out_fd, POLLIN, 0};
	ssize_t n;
	int r;

	*got_out = 0;
	r = poll(&pfd, 1, wait_ms);
	if (r < 0)
		return errno == EINTR ? 0 : err_errno(err, "poll output of %d", (int)p->pid);
	if (r == 0)
		return 0;
	n = read(p->out_fd, chunk, sizeof(chunk));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0
		                                         : err_errno(err, "read output of %d", (int)p->pid);
	if (n == 0) {
		proc_close_fd(&p->out_fd);
		return 0;
	}
	*got_out = 1;
	if (out != NULL)
		buf_append(out, chunk, (size_t)n);
	return 0;
}

int proc_stop_now(const struct proc_stop *stop)
{
	return stop != NULL && stop->fn != NULL && stop->fn(stop->arg) != 0;
}

/* Pumps output until the leader has exited (0), the deadline passed (1) or
 * stop said stop (2). After the leader exits, what it wrote is drained;
 * output of descendants still holding the pipe open afterwards is not
 * waited for. */
static int proc_pump(struct proc *p, struct buf *out, int64_t deadline_ms, const struct proc_stop *stop,
                     struct err *err)
{
	int got;

	for (;;) {
		int left = proc_remaining_ms(deadline_ms);
		int r;

		if (left == 0)
			return 1;
		if (stop != NULL) {
			if (proc_stop_now(stop))
				return 2;
			if (left < 0 || left > PROC_STOP_POLL_MS)
				left = PROC_STOP_POLL_MS;
		}
		if (p->out_fd >= 0 && p->pidfd >= 0) {
			struct pollfd pfd[2] = {{p->out_fd, POLLIN, 0}, {p->pidfd, POLLIN, 0}};

			r = poll(pfd, 2, left);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return err_errno(err, "poll %d", (int)p->pid);
			}
			if (pfd[0].revents != 0 && proc_read_some(p, out, 0, &got, err) < 0)
				return -1;
			if (pfd[1].revents == 0)
				continue;
		} else if (p->out_fd >= 0) {
			int wait_ms = left < 0 || left > PROC_POLL_FALLBACK_MS ? PROC_POLL_FALLBACK_MS : left;

			if (proc_read_some(p, out, wait_ms, &got, err) < 0)
				return -1;
			if ((r = proc_try_reap(p, err)) < 0)
				return -1;
			if (r == 0)
				continue;
		} else {
			r = proc_wait(p, left, err);
			if (r < 0)
				return -1;
			if (r == 0)
				return 0;
			continue; /* the deadline or stop, checked above */
		}
		/* The leader has exited: drain what it left in the pipe, bounded
		 * so that a descendant that keeps writing cannot hold us here. */
		for (int i = 0; i < PROC_DRAIN_MAX_READS && p->out_fd >= 0; i++) {
			if (proc_read_some(p, out, 0, &got, err) < 0)
				return -1;
			if (!got)
				break;
		}
		return 0;
	}
}

int proc_run(const char *const *argv, const char *cwd, int timeout_ms, struct buf *out, int *exit_code_out,
             struct err *err)
{
	struct proc_spec spec = {
	    .argv = argv,
	    .envp = NULL,
	    .cwd = cwd,
	    .stdin_fd = -1,
	    .capture_output = 1,
	    .die_with_parent = 1,
	};

	return proc_run_spec(&spec, timeout_ms, out, exit_code_out, err);
}

int proc_run_spec(const struct proc_spec *spec_in, int timeout_ms, struct buf *out, int *exit_code_out,
                  struct err *err)
{
	struct proc_spec spec = *spec_in;
	const char *const *argv = spec.argv;
	struct proc p = {0};
	int64_t deadline_ms = timeout_ms < 0 ? -1 : proc_now_ms() + timeout_ms;
	int r, rc = -1;

	spec.capture_output = 1;
	if (proc_start(&p, &spec, err) < 0)
		goto out;
	r = proc_pump(&p, out, deadline_ms, spec.stop, err);
	if (r < 0)
		goto out;
	if (r == 2) {
		proc_kill_tree(&p, PROC_STOP_GRACE_MS, NULL);
		err_set(err, ERR_UNAVAIL, "%s interrupted", argv[0]);
		goto out;
	}
	if (r == 1) {
		proc_kill_tree(&p, PROC_RUN_GRACE_MS, NULL);
		err_set(err, ERR_LIMIT, "%s timed out after %d ms", argv[0], timeout_ms);
		goto out;
	}
	if (proc_wait(&p, -1, err) < 0)
		goto out;
	if (exit_code_out != NULL)
		*exit_code_out = p.exit_code;
	rc = 0;
out:
	if (p.pid > 0 && !p.exited)
		proc_kill_tree(&p, 0, NULL);
	proc_release(&p);
	return rc;
}

int proc_become_subreaper(struct err *err)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return err_errno(err, "prctl PR_SET_CHILD_SUBREAPER");
	return 0;
}
