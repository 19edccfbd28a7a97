#include "common/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Denied with EPERM whatever their arguments. Names unknown to this
 * libseccomp, or to an architecture (umount, stime, clock_settime64 exist
 * on 32-bit ABIs only), are skipped there. */
static const char *const denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "setns",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    "syslog",
};

/* The other ABIs the native kernel runs: without them in the filter a
 * 32-bit int 0x80 mount would be judged by the bad-arch action alone. */
static void add_compat_arches(scmp_filter_ctx ctx)
{
	uint32_t native = seccomp_arch_native();

	/* Failing here only narrows what runs (bad-arch kills), never what is
	 * allowed, so it is not an error. */
	if (native == SCMP_ARCH_X86_64) {
		seccomp_arch_add(ctx, SCMP_ARCH_X86);
		seccomp_arch_add(ctx, SCMP_ARCH_X32);
	} else if (native == SCMP_ARCH_AARCH64) {
		seccomp_arch_add(ctx, SCMP_ARCH_ARM);
	}
}

static int add_rules(scmp_filter_ctx ctx, struct err *err)
{
	size_t i;
	int nr, r;

	for (i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		if ((nr = seccomp_syscall_resolve_name(denied[i])) == __NR_SCMP_ERROR)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
			return err_set(err, ERR_SYS, "seccomp rule for %s: %s", denied[i], strerror(-r));
	}
	/* A new user namespace gives back every capability the sandbox took. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
	                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))) < 0)
		return err_set(err, ERR_SYS, "seccomp rule for unshare: %s", strerror(-r));
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
	                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))) < 0)
		return err_set(err, ERR_SYS, "seccomp rule for clone: %s", strerror(-r));
	if ((nr = seccomp_syscall_resolve_name("clone3")) != __NR_SCMP_ERROR &&
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0)
		return err_set(err, ERR_SYS, "seccomp rule for clone3: %s", strerror(-r));
	return 0;
}

/* The memfd is writable; bwrap gets a read-only open of it, sealed so no
 * writable descriptor left anywhere could change the program either. */
static int reopen_read_only(int fd, struct err *err)
{
	char path[64];
	int ro;

	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return err_errno(err, "seal the seccomp memfd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((ro = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
		return ro;
	/* No /proc: the sealed memfd itself is as immutable. */
	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_errno(err, "lseek the seccomp memfd");
	if ((ro = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return err_errno(err, "dup the seccomp memfd");
	return ro;
}

int seccomp_step_filter_fd(struct err *err)
{
	scmp_filter_ctx ctx;
	int fd = -1, ro = -1, r;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return err_set(err, ERR_SYS, "seccomp_init failed");
	/* KILL_PROCESS needs libseccomp to see API level 3 (the seccomp(2)
	 * syscall); under valgrind it does not: kill the thread instead. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
	if (r < 0) {
		err_set(err, ERR_SYS, "seccomp bad-arch action: %s", strerror(-r));
		goto out;
	}
	add_compat_arches(ctx);
	if (add_rules(ctx, err) < 0)
		goto out;
	if ((fd = memfd_create("anvil-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) {
		err_errno(err, "memfd_create");
		goto out;
	}
	if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
		err_set(err, ERR_SYS, "seccomp_export_bpf: %s", strerror(-r));
		goto out;
	}
	ro = reopen_read_only(fd, err);
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ro;
}

int seccomp_filter_reopen(int filter_fd, struct err *err)
{
	char path[64];
	int seals, fd;

	seals = fcntl(filter_fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) !=
	                     (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW))
		return err_set(err, ERR_INVAL, "seccomp filter fd %d is not a sealed memfd", filter_fd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", filter_fd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_errno(err, "reopen the seccomp filter (%s)", path);
	return fd;
}
