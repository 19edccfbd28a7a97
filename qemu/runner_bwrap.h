#ifndef ANVIL_RUNNER_BWRAP_H
#define ANVIL_RUNNER_BWRAP_H

#include <stddef.h>

#include "common/err.h"
#include "common/recipe.h"
#include "common/runner.h"
#include "common/xalloc.h"

/* The bubblewrap runner: each step is
 *   bwrap <sandbox options> -- /bin/sh -c RUN
 * (RUN one argv element, never spliced into shell text) with its merged
 * output on proc.out_fd. The sandbox: every namespace unshared (network
 * only shared when cfg->network), a new session, dies with the agent,
 * fresh /proc, /dev, /tmp and /cache tmpfs, the workspace read-write at
 * /work (the cwd), a cleared environment.
 *   emulated: the target rootfs read-only as /, commands under qemu-user.
 *   cross:    a tmpfs / (read-only once set up), the toolroot's /usr (with /bin, /lib, /lib64,
 *             /sbin symlinks) and /etc read-only (the host's when there is no toolroot), the
 *             target rootfs read-only at /sysroot.
 *   host:     cross without a rootfs: the host's /usr and /etc only.
 * With a sandbox (cfg->sandbox), see docs/security.md. */

struct bwrap_bind {
	const char *host_path;    /* existing host directory, bound read-write */
	const char *sandbox_path; /* absolute, under /cache/ (e.g. /cache/cargo), no ".." */
};

struct bwrap_config {
	enum recipe_mode mode;
	const char *rootfs_dir;    /* from rootfs_ensure; NULL with mode cross: the `host` target
	                              (the host's /usr, no /sysroot) */
	const char *toolroot_dir;  /* cross mode: the tree whose /usr and /etc the step sees
	                              (rootfs_toolroot_ensure); NULL: the host's own */
	const char *qemu;          /* with toolroot_dir: the recipe's qemu binary name; the host's
	                              /usr/bin/<qemu> is bound over the toolroot's placeholder so
	                              CARGO_TARGET_*_RUNNER finds it. NULL: none */
	const char *workspace_dir; /* host dir bound at /work; NULL: each step's step->workspace */
	const struct bwrap_bind *binds;
	size_t n_binds;
	int network;   /* 1: share the host's network (and resolv.conf) */
	int has_netns; /* 1 (network 0): every step joins the network namespace netns_fd
	                  (borrowed, open while the runner starts steps): the job's own,
	                  shared with its services (agent/services.h); root agents only */
	int netns_fd;
	const char *const *env; /* NULL-terminated "KEY=VALUE" (recipe_env_for_mode); may be NULL */
	const char *bwrap_path; /* NULL: "bwrap" from PATH */
	/* NULL: an unconfined sandbox (tests of the layout only). Else the step
	 * runs as the sandbox's uid in its own user namespace, with no
	 * capabilities, no further user namespaces, no_new_privs, the seccomp
	 * filter of common/seccomp.h, in the job's cgroup, /tmp capped. Copied. */
	const struct runner_sandbox *sandbox;
};

/* Everything in cfg is copied; the caller may free it after. The step's env
 * (step->env) is applied after cfg->env, so it wins. Start: ERR_INVAL for a
 * malformed env entry or no workspace. cancel is proc_kill_tree: bwrap's
 * --die-with-parent and pid namespace take the whole sandbox down with it.
 * One runner may start many steps; free with runner_free. */
struct runner *runner_bwrap_new(const struct bwrap_config *cfg, struct err *err);

/* The argv that start would run for step (appended to out); for tests,
 * benchmarks and logging. */
int runner_bwrap_argv(const struct runner *r, const struct step_spec *step, struct strv *out,
                      struct err *err);

/* The Rust standard libraries a cross sandbox gets at /rust-sysroot: each
 * lib/rustlib/<triple> of the build userland's /usr (tool_root's, or the
 * host's when tool_root is NULL) and of the rootfs (the build side's first,
 * one per triple), as host paths, paths inside a bwrap sandbox (rootfs at
 * /sysroot) and triples, appended in step. */
void runner_bwrap_rustlib(const char *tool_root, const char *rootfs_dir, struct strv *host_paths,
                          struct strv *sandbox_paths, struct strv *triples);

#endif
