#ifndef ANVIL_BINFMT_H
#define ANVIL_BINFMT_H

#include "common/err.h"
#include "common/proc.h"
#include "common/xalloc.h"

/* qemu-user through binfmt_misc: make sure a foreign arch's handler is
 * there, and prove it by really running a binary of that arch. Needs root
 * for the repairs (mount, update-binfmts); the checks work without. */

/* The machine name `uname -m` prints for a Debian arch (arm64 -> aarch64,
 * armhf -> armv7l, amd64 -> x86_64); NULL when unknown. */
const char *binfmt_machine(const char *debian_arch);

/* The Debian arch of this machine (x86_64 -> amd64, aarch64 -> arm64,
 * armv7l -> armhf); NULL when unknown. The toolroot's arch. */
const char *binfmt_host_arch(void);

/* 1 when binaries of debian_arch run natively here (no qemu needed). */
int binfmt_is_native(const char *debian_arch);

/* Native arch: 0 at once. Otherwise mounts /proc/sys/fs/binfmt_misc when
 * needed and enables the qemu-<arch> handler with update-binfmts when it is
 * missing or disabled. Errors (ERR_UNAVAIL) name the missing piece:
 * "binfmt_misc not mounted and mount failed: ...", "no binfmt handler for
 * qemu-aarch64: install qemu-user-static and binfmt-support", a handler
 * without the F (fix-binary) flag. ERR_INVAL for an unknown arch. */
int binfmt_ensure(const char *debian_arch, struct err *err);

/* Runs <rootfs_dir>/usr/bin/uname -m inside a bubblewrap sandbox whose / is
 * the rootfs, and checks it prints binfmt_machine(debian_arch). ERR_UNAVAIL
 * "exec format error running aarch64 binary ..." when binfmt does not work. */
int binfmt_probe(const char *rootfs_dir, const char *debian_arch, struct err *err);

/* Appends to out (sorted) the triple of every recipe in recipes_dir whose
 * binaries really run here: recipe loads, rootfs present (built first when
 * build_missing, which can take minutes per target), binfmt_ensure and
 * binfmt_probe pass. Without build_missing the rootfs is looked for before
 * binfmt_ensure, so no handler is registered for a target left out. A target
 * that fails is logged (warn) and left out. -1 when recipes_dir cannot be
 * read, or ERR_UNAVAIL once stop (NULL: never) says stop: a rootfs build is
 * killed then (rootfs_ensure). For the agent's target=<triple> labels.
 * cache_dir NULL: the default rootfs cache. */
int binfmt_runnable_targets(const char *recipes_dir, const char *cache_dir, int build_missing,
                            const struct proc_stop *stop, struct strv *out, struct err *err);

#endif
