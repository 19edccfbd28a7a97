#ifndef ANVIL_RUNNER_DOCKER_H
#define ANVIL_RUNNER_DOCKER_H

#include <stddef.h>

#include "common/err.h"
#include "common/recipe.h"
#include "common/runner.h"
#include "common/xalloc.h"

/* The optional Docker (or Podman) runner, the same contract as the
 * bubblewrap one (qemu/runner_bwrap.h) with a container per step:
 *   docker run --rm --pull never --name anvil-<hex> --label anvil.work=<dir>
 *     --network none|host --read-only --tmpfs /tmp --cap-drop ALL
 *     --security-opt no-new-privileges --user UID:GID
 *     -v <workspace>:/work -w /work -v <cache>:/cache/build -e K=V...
 *     [--platform P] IMAGE /bin/sh -c RUN
 * (RUN one argv element, never spliced into shell text).
 *   emulated: IMAGE is the target rootfs imported with `docker import`
 *             (runner_docker_image), run under --platform through the host's
 *             qemu-user binfmt.
 *   cross:    IMAGE is a tiny root of mount points and the /bin, /lib...
 *             symlinks (runner_docker_cross_image); the host's /usr and /etc
 *             are bound read-only, the target rootfs read-only at /sysroot,
 *             and the Rust standard libraries at /rust-sysroot, as in bwrap.
 * No registry is ever asked (--pull never; images are made locally). */

struct docker_bind {
	const char *host_path;    /* existing host directory, bound read-write */
	const char *sandbox_path; /* absolute, under /cache/ */
};

struct docker_config {
	enum recipe_mode mode;
	const char *docker_path; /* "docker" or "podman" (its CLI is docker's) */
	const char *image;       /* from runner_docker_image / runner_docker_cross_image */
	const char *platform;    /* emulated: "linux/arm64"...; NULL: the engine's own */
	const char *rootfs_dir;  /* cross: bound at /sysroot (and its rustlib) */
	const char *work_label;  /* the agent's work dir: label of its containers */
	const struct docker_bind *binds;
	size_t n_binds;
	int network;                          /* 1: --network host, else none */
	const char *const *env;               /* NULL-terminated "KEY=VALUE"; may be NULL */
	const struct runner_sandbox *sandbox; /* the step's uid and limits; NULL: the agent's own uid,
	                                         no limits (tests). Copied. */
};

/* Everything in cfg is copied. One runner may start many steps, one at a
 * time (the job's steps run in order); cancel kills the step's container
 * (docker kill), then the CLI's process tree. Free with runner_free. */
struct runner *runner_docker_new(const struct docker_config *cfg, struct err *err);

/* The argv start would run (appended to out), with the container name it
 * would get; for tests and benchmarks. */
int runner_docker_argv(const struct runner *r, const struct step_spec *step, const char *name,
                       struct strv *out, struct err *err);

/* "linux/arm64" for Debian's arm64, "linux/arm/v7" for armhf, "linux/amd64"
 * for amd64...; NULL for an arch Docker has no platform for. */
const char *runner_docker_platform(const char *debian_arch);

/* The image of a rootfs: anvil-rootfs:<basename of rootfs_dir>, imported
 * once with `docker import --platform P` from the cached <rootfs_dir>.tar.zst
 * (else from a tar of the directory) and reused while it exists. Minutes
 * the first time for a rootfs with a toolchain. *image_out is owned.
 * *platform_recorded_out (may be NULL): 1 when the engine recorded P for
 * the image, so `run --platform P` accepts it (Docker 20.10 records its own
 * architecture whatever import was told; qemu's binfmt runs it anyway). */
int runner_docker_image(const char *docker_path, const char *rootfs_dir, const char *platform,
                        char **image_out, int *platform_recorded_out, struct err *err);

/* The cross-mode root image (anvil-cross-root:1): empty directories for the
 * mount points and the merged-/usr symlinks, imported once. */
int runner_docker_cross_image(const char *docker_path, char **image_out, struct err *err);

/* Removes containers labelled with work_label that an earlier agent left
 * running (killed with SIGKILL mid-step); *removed_out may be NULL. */
int runner_docker_reap(const char *docker_path, const char *work_label, int *removed_out, struct err *err);

#endif
