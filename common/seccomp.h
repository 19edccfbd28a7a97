#ifndef ANVIL_SECCOMP_H
#define ANVIL_SECCOMP_H

#include "common/err.h"

/* The seccomp filter a build step runs under, compiled for bubblewrap's
 * --seccomp FD (a classic BPF program, as libseccomp exports it).
 *
 * Policy: allow by default; fail with EPERM what a build never needs and a
 * sandbox escape or a host-wide change would: mount and the new mount API
 * (mount, umount/umount2, pivot_root, move_mount, open_tree, fsopen,
 * fsconfig, fsmount, fspick, mount_setattr), setns, unshare and clone with
 * CLONE_NEWUSER, ptrace, process_vm_readv/writev, kcmp, the keyring
 * (keyctl, add_key, request_key), bpf, perf_event_open, userfaultfd,
 * modules and kexec, acct, swapon/swapoff, reboot, setting the clock,
 * syslog. clone3 fails with ENOSYS instead: its flags sit in memory a filter
 * cannot read, and glibc falls back to clone, whose flags it can.
 * Sockets, threads, fork, exec, and everything gcc, make, cargo/rustc and
 * qemu-user (aarch64, arm code) use, stay allowed.
 *
 * Architectures: the native one, plus the 32-bit ABIs the kernel also
 * accepts (x86_64: i386 and x32; aarch64: arm), each with the same rules, so
 * a 32-bit syscall cannot get around them; any other ABI kills the process.
 * clone's flags are its first argument on all of these (not on s390). */

/* Returns a new read-only fd (O_CLOEXEC, sealed memfd) positioned at 0,
 * holding the compiled filter; the caller owns and closes it. bwrap reads it
 * to EOF, which moves the offset every dup of the fd shares: one fd per bwrap
 * run (or lseek it back to 0). -1 with ERR_SYS when libseccomp or the kernel
 * fails. Any thread; compiling takes well under a millisecond. */
int seccomp_step_filter_fd(struct err *err);

/* A new read-only fd (O_CLOEXEC) at offset 0 of the same program as
 * filter_fd, an fd seccomp_step_filter_fd returned: a filter compiled once
 * serves every step, each bwrap run reading its own open file description.
 * Reopened through /proc/self/fd; ERR_INVAL unless filter_fd is a memfd
 * sealed against writes (nothing can have changed the program since),
 * ERR_SYS/ERR_NOTFOUND when it cannot be reopened (no /proc). */
int seccomp_filter_reopen(int filter_fd, struct err *err);

#endif
