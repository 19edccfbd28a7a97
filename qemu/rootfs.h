#ifndef ANVIL_ROOTFS_H
#define ANVIL_ROOTFS_H

#include "common/err.h"
#include "common/proc.h"
#include "common/recipe.h"
#include "common/runner.h"

/* The cached target rootfs of a recipe, keyed by recipe_hash_hex:
 *   <cache>/rootfs/<triple>-<hash>.tar.zst  the built tree, kept across runs
 *   <cache>/rootfs/<triple>-<hash>/         its extracted copy that bwrap uses
 *   <cache>/rootfs/<triple>-<hash>.lock     flock: one builder, others wait
 *   <cache>/rootfs/<triple>-<hash>.log      debootstrap's output
 * The tree is Debian's minbase (debootstrap) of the recipe's arch and suite
 * with its packages, plus empty /work, /sysroot and /cache directories (a
 * read-only root cannot get new mount points). Never modified once built. */

#define ROOTFS_DEFAULT_CACHE_DIR "/var/cache/anvil"

/* Makes sure the rootfs of r exists and returns its directory in
 * *rootfs_dir_out (the caller frees it). cache_dir NULL means
 * ROOTFS_DEFAULT_CACHE_DIR. Reuses the directory when present, re-extracts
 * the tarball when only that is there, else builds with debootstrap (minutes;
 * needs root, network to the mirror, and binfmt for a foreign arch). Blocks
 * while another process builds the same rootfs, then reuses its result.
 * stop (NULL: never) ends the wait or the build early: its processes are
 * killed, the error is ERR_UNAVAIL, and the half-built <dir>.tmp is left
 * for the next call, which removes it under the lock before it starts (only
 * a finished tree is ever renamed into place). Errors: ERR_SYS naming the failing tool and the
 * log file. Any thread; it runs child processes through proc_run_spec. */
int rootfs_ensure(const struct recipe *r, const char *cache_dir, const struct proc_stop *stop,
                  char **rootfs_dir_out, struct err *err);

/* Like rootfs_ensure but never builds nor extracts: 0 with the directory in
 * *rootfs_dir_out (caller frees) when it is ready, -1 with ERR_NOTFOUND when
 * it is not. */
int rootfs_find(const struct recipe *r, const char *cache_dir, char **rootfs_dir_out, struct err *err);

/* The toolroot of a recipe: the step's / in cross mode, so a build does
 * not depend on what the agent host has installed. A debootstrap minbase
 * tree of the host's Debian arch (host_arch, e.g. amd64) and the recipe's
 * suite and mirror holding recipe_toolroot_packages (the cross gcc, g++ and
 * binutils for gnu_triple, make, pkg-config, the recipe's host_packages), an
 * empty usr/bin/<qemu> the sandbox binds the host's qemu-user binary over,
 * and empty /work, /sysroot, /cache. Cached and locked exactly like the
 * target rootfs, under <cache>/toolroot/<triple>-<hash>{,.tar.zst,.lock,.log},
 * keyed by recipe_toolroot_hash_hex. stop and errors as for rootfs_ensure. */
int rootfs_toolroot_ensure(const struct recipe *r, const char *host_arch, const char *cache_dir,
                           const struct proc_stop *stop, char **dir_out, struct err *err);

/* A tree derived from base_dir (a rootfs or a toolroot) by commands: a copy
 * of it in which the commands ran as root, in its own userland (qemu-user
 * through binfmt for a foreign arch), with the network (for apt) and
 * CROSS_DEB_ARCH set. Cached next to the base as <base>-<tag>-<hash>, keyed
 * by the base and the commands; flock-safe like rootfs_ensure. tag is "pre"
 * for Cross.toml pre-build, "tools" for a pipeline's tools:. A failing
 * command is ERR_INVAL with the end of its output.
 * With sb (drop_ids), "root" is root of a user namespace only: the copy's
 * root-owned files are given to the build user for the run (uid 0 inside),
 * the commands run as that user on the host with no_new_privs and the
 * step's seccomp filter, and the finished copy is given back to root.
 * stop as for rootfs_ensure: the commands' processes are killed and the
 * half-made copy is never used (the next call removes it first). */
int rootfs_derive(const struct recipe *r, const char *base_dir, const char *tag, const char *const *cmds,
                  size_t n_cmds, const struct runner_sandbox *sb, const struct proc_stop *stop,
                  char **rootfs_dir_out, struct err *err);

/* Marks dir (a tree from rootfs_derive) in use: a shared flock on
 * <dir>.lock, held until the caller closes *fd_out, under which
 * rootfs_prune_derived never removes it; its mtime becomes now (the last
 * use). Waits while stop allows when a pruner or builder holds the lock.
 * ERR_NOTFOUND when dir was pruned meanwhile: derive it again. */
int rootfs_hold(const char *dir, const struct proc_stop *stop, int *fd_out, struct err *err);

/* Removes derived trees (<cache>/rootfs/ and <cache>/toolroot/, named
 * <base>-<tag>-<16 hex>) past the keep most recently used (mtime, as
 * rootfs_hold sets it), with their logs. One in use (rootfs_hold) or being
 * built is skipped; its lock file is kept. *removed_out (may be NULL): how
 * many went. -1 when a removal fails. cache_dir NULL: the default. */
int rootfs_prune_derived(const char *cache_dir, const char *tag, size_t keep, size_t *removed_out,
                         struct err *err);

#endif
