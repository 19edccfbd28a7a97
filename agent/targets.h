#ifndef ANVIL_AGENT_TARGETS_H
#define ANVIL_AGENT_TARGETS_H

#include "common/err.h"
#include "common/proc.h"
#include "common/runner.h"
#include "common/xalloc.h"

/* Which targets this agent serves and the runner each job gets: the glue
 * between the agent and the emulation layer (recipes, binfmt, cached rootfs,
 * bubblewrap). */

struct targets_opts {
	const char *recipes_dir; /* recipes/<triple>.yml */
	const char *cache_dir;   /* rootfs cache, NULL: /var/cache/anvil */
	const char *work_dir;    /* the agent's work dir: per repo×target caches live under it */
	const char *select;      /* "auto" (cached rootfs that run), "none", or "t1,t2" (checked now;
	                            rootfs and toolroot built on first use unless prepare) */
	int prepare;             /* targets_labels builds what a served target needs at start: its
	                            rootfs (auto: also one not cached yet) and, for a cross-mode
	                            recipe under bubblewrap, its toolroot */
	const char *docker;      /* NULL: bubblewrap; else the docker (or podman) CLI that runs each
	                            step in a container (qemu/runner_docker.h) */
	const struct runner_sandbox *sandbox; /* the job's containment; NULL: none (tests) */
	const struct proc_stop *stop;         /* ends a prepare early (the agent stopping); NULL: never */
	size_t tools_keep; /* after a job's tools: tree is ready, the derived tools: trees of the cache
	                      past this many most recently used are removed (rootfs_prune_derived);
	                      0: never */
};

/* Appends "target=<triple>" labels for the targets that really run here.
 * Explicit targets are checked (recipe loads, binfmt registered) and an
 * error names the first that cannot run; auto leaves failing ones out.
 * With o->prepare, each target's rootfs and toolroot are built (minutes
 * each when not cached) before it is labelled: an explicit target whose
 * preparation fails is an error, auto leaves it out with a warning. */
int targets_labels(const struct targets_opts *o, struct strv *labels_out, struct err *err);

struct targets_job {
	const char *target;    /* "host" or a triple */
	const char *repo_name; /* for the cache directory */
	int network;
	const char *mode;             /* "cross", "emulated" or NULL for the recipe's default */
	const char *const *pre_build; /* Cross.toml pre-build commands (n_pre_build), run once into a
	                                 derived, cached rootfs */
	size_t n_pre_build;
	const char *image;        /* Cross.toml's target image: the Docker runner runs it (must exist
	                             locally) instead of the rootfs's; NULL: none */
	const char *const *tools; /* `tools:` Debian packages (n_tools, names already checked):
	                             installed once into a derived, cached toolroot (cross) or
	                             rootfs (emulated) */
	size_t n_tools;
	const struct proc_stop *stop; /* the job canceled (or the agent stopping) while its target is
	                                 prepared: toolroot or rootfs build, pre-build or tools install
	                                 killed, nothing half-built kept, ERR_UNAVAIL; NULL: never */
	int netns_fd; /* > 0: the job's own network namespace (agent/services.h, borrowed) that every
	                 step joins, bubblewrap only (network must be 0); 0: none */
};

/* The runner for a job: for "host" bubblewrap over the host's /usr, else bubblewrap (or,
 * with o->docker, a container) over the target's rootfs (built now when
 * missing: minutes the first time) in the recipe's mode, with the per
 * repo×target cache bound at /cache. In cross mode under bubblewrap the
 * step's / is the recipe's toolroot (qemu/rootfs.h; built now when missing),
 * not the host's /usr and /etc. *desc_out (owned) describes it for the
 * job log; *warning_out (owned, may be NULL) is a line for the job log too. */
struct runner *targets_runner_new(const struct targets_opts *o, const struct targets_job *job,
                                  char **desc_out, char **warning_out, struct err *err);

/* The runner of a `services:` entry with packages: bubblewrap over a
 * host-architecture tree derived from the toolroot of the job's recipe
 * (the host's own recipe for the `host` target) with the packages
 * installed by its apt, cached as <toolroot>-svc-<hash> (kept like tools:
 * trees, o->tools_keep) and held while the runner lives; no /sysroot, the
 * job's network namespace (job->netns_fd), o->sandbox. ERR_UNAVAIL under
 * the Docker runner. *desc_out (owned) names the tree. */
struct runner *targets_service_runner_new(const struct targets_opts *o, const struct targets_job *job,
                                          const char *const *packages, size_t n_packages,
                                          const char *const *env, char **desc_out, struct err *err);

/* The backend runner (bubblewrap's or the container's) under the wrapper
 * that holds a job's cache and tools: tree in use: for tests that read
 * the backend's argv. */
const struct runner *targets_runner_inner(const struct runner *r);

/* Per repo×target cache directories <work_dir>/cache/<repo>/<target>: a job
 * that uses one touches its stamp file (TARGETS_CACHE_STAMP inside it; the
 * directory's own mtime stands in when a build removed it). */
#define TARGETS_CACHE_STAMP ".anvil-last-used"

/* Removes least-recently-used cache directories (whole, then their empty
 * repo directory) until their total apparent size is at most cap_bytes,
 * never <keep_repo>/<keep_target> (may be NULL: none kept), the one walked
 * for its size; the others' sizes come from their ledgers (.size-<target>
 * beside them) unless used since. *removed_out
 * and *total_out (bytes left) may be NULL. */
int targets_cache_evict(const char *work_dir, int64_t cap_bytes, const char *keep_repo,
                        const char *keep_target, int *removed_out, int64_t *total_out, struct err *err);

/* The default recipes directory: $ANVIL_RECIPES_DIR, else the installed
 * share/anvil/recipes next to the binary, else the source tree's. */
const char *targets_default_recipes_dir(void);

#endif
