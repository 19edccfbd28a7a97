#ifndef ANVIL_PROC_H
#define ANVIL_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The only place that forks. Modelled on git's run-command: argv and env are
 * built before the child is made (clone with CLONE_VM | CLONE_VFORK, as
 * posix_spawn does: the parent's memory is shared until exec, never
 * copied); the child gets its own process group, a reset signal
 * mask and dispositions, fds above 2 closed; exec failure is reported back
 * through a close-on-exec status pipe (proc_start fails with the errno). */

/* A caller's "stop now?" for a long run (a job canceled while its target is
 * prepared): fn(arg) non-zero means stop. Called on the running thread. */
struct proc_stop {
	int (*fn)(void *arg);
	void *arg;
};

struct proc_spec {
	const char *const *argv; /* argv[0] is looked up in PATH when it has no '/' */
	const char *const *envp; /* NULL: inherit the parent's environment */
	const char *cwd;         /* NULL: inherit */
	int stdin_fd;            /* -1: /dev/null */
	int capture_output;      /* 1: stdout+stderr merged into a pipe, read end in proc.out_fd;
	                            0: stdout/stderr inherited */
	int stdout_only;         /* with capture_output: only stdout goes to the pipe, stderr to
	                            /dev/null (a protocol stream a message must not corrupt) */
	int die_with_parent;     /* 1: PR_SET_PDEATHSIG(SIGKILL) in the child */
	/* What a sandboxed step's child does before exec (all zero: nothing), in
	 * this order: enters the cgroups, drops ids, sets the limits. */
	const int *cgroup_fds; /* cgroup.procs files (opened O_WRONLY) the child writes "0" to */
	size_t n_cgroup_fds;
	int has_cgroup_dir; /* 1: the child starts in the cgroup v2 directory cgroup_dir_fd
	                       (clone3 CLONE_INTO_CGROUP) and writes none of cgroup_fds; where
	                       the kernel refuses that clone, it is started and writes them
	                       as without */
	int cgroup_dir_fd;
	int drop_ids; /* 1: setgroups(none), setresgid(gid), setresuid(uid): a non-root host uid */
	uid_t uid;
	gid_t gid;
	int no_new_privs;     /* 1: PR_SET_NO_NEW_PRIVS */
	int64_t rlimit_fsize; /* > 0: RLIMIT_FSIZE in bytes (no single file written larger) */
	int has_fd3;          /* 1: fd3 becomes the child's fd 3, kept across exec (bwrap --seccomp 3) */
	int fd3;
	int has_netns; /* 1: the child joins the network namespace netns_fd (setns) after the
	                  cgroups and before the ids are dropped (needs a root parent) */
	int netns_fd;
	int has_log_fd; /* 1 (capture_output 0): stdout and stderr go to log_fd, e.g. a file */
	int log_fd;
	/* proc_run_spec only; NULL: never. Asked about every PROC_STOP_POLL_MS
	 * while the child runs; once it says stop, the child's process group is
	 * killed (SIGTERM, PROC_STOP_GRACE_MS, SIGKILL) and proc_run_spec fails
	 * with ERR_UNAVAIL ("<argv[0]> interrupted"). */
	const struct proc_stop *stop;
};

#define PROC_STOP_POLL_MS  100
#define PROC_STOP_GRACE_MS 1000

struct proc {
	pid_t pid;     /* also the process group id */
	int pidfd;     /* pidfd_open of pid, -1 when unsupported */
	int out_fd;    /* read end of merged output when capture_output, else -1; O_CLOEXEC */
	int exited;    /* set once reaped */
	int exit_code; /* 0..255 when exited normally, 128+signal when killed */
};

/* Starts the child. On success *out is filled and owns pidfd/out_fd. */
int proc_start(struct proc *out, const struct proc_spec *spec, struct err *err);

/* Waits up to timeout_ms (-1: forever) for the child to exit and reaps it.
 * Returns 0 with p->exited/p->exit_code set, 1 when it is still running after
 * the timeout, -1 with err on failure. */
int proc_wait(struct proc *p, int timeout_ms, struct err *err);

/* Kills the whole process group: SIGTERM, up to grace_ms for the leader to
 * exit, then SIGKILL to the group; reaps the leader. Safe on an exited proc. */
int proc_kill_tree(struct proc *p, int grace_ms, struct err *err);

/* Closes fds; does not kill. Safe on a zeroed or already released proc. */
void proc_release(struct proc *p);

/* Convenience: runs argv to completion (timeout_ms, -1 forever), merged
 * output appended to out (may be NULL to discard), exit code in *exit_code_out. */
int proc_run(const char *const *argv, const char *cwd, int timeout_ms, struct buf *out, int *exit_code_out,
             struct err *err);

/* proc_run with a whole spec (its capture_output is forced on; spec->stop
 * may end it early). */
int proc_run_spec(const struct proc_spec *spec, int timeout_ms, struct buf *out, int *exit_code_out,
                  struct err *err);

/* 1 when stop (may be NULL) says stop now. */
int proc_stop_now(const struct proc_stop *stop);

/* Makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER). */
int proc_become_subreaper(struct err *err);

#endif
