#ifndef ANVIL_PIPEFILE_H
#define ANVIL_PIPEFILE_H

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The pipeline file model: `.anvil.yml` at the root of a repository, parsed
 * with libyaml (docs/anvil-yml.md). Untrusted input: every error names the
 * line (and column) and never crashes; sizes are capped. */

#define PIPEFILE_MAX_BYTES   (256 * 1024)
#define PIPEFILE_MAX_STEPS   64
#define PIPEFILE_MAX_TARGETS 16

/* When a step runs (`on:`): while no step has failed (the default), only
 * once one has, or either way. */
enum pipefile_on { PIPEFILE_ON_SUCCESS = 0, PIPEFILE_ON_FAILURE, PIPEFILE_ON_ALWAYS };

struct pipefile_step {
	char *name;          /* owned; defaults to "N" (from 1) when absent: messages say "step %s" */
	char *run;           /* owned; required, shell text */
	long timeout_s;      /* `timeout:` of the step; 0: only the job's */
	enum pipefile_on on; /* `on: success|failure|always` */
};

/* `when:` rules: each list given must hold (an empty list is not given).
 * branch is checked on branch refs (refs/heads/NAME) only (for a pull
 * request the server passes the branch it targets), tag on tag refs
 * (refs/tags/NAME) only, path only when the changed paths are known (a
 * forge's push). Globs: see pipefile_glob_match. */
struct pipefile_when {
	struct strv branch; /* globs on the branch name (refs/heads/ stripped) */
	struct strv tag;    /* globs on the tag name (refs/tags/ stripped) */
	struct strv event;  /* push, tag, manual, pull_request, cron */
	struct strv path;   /* globs on changed paths: one match is enough */
};

/* One `deploy:` entry (docs/anvil-yml.md): which boards, when, what. */
struct pipefile_deploy {
	char *group;           /* owned; board group, [A-Za-z0-9._-]+ */
	struct strv on_branch; /* `on: {branch: ...}` globs; with on_tag both empty: never automatic */
	struct strv on_tag;    /* `on: {tag: ...}` globs */
	char *install;         /* owned; absolute install dir on the board */
	struct strv files;     /* artifact names of the build job, at least one */
	char *target;  /* owned; which build job's artifacts; NULL: the one matching the boards' arch */
	char *restart; /* owned; shell text run on the board after the switch; NULL: none */
	char *health;  /* owned; shell text, exit 0 = healthy; NULL: none */
	long health_timeout_s; /* 0: 30 */
	int keep;              /* releases kept on the board; 0: all */
	int canary;            /* boards deployed first, alone (default 1) */
	int batch_count;       /* boards per later batch; 0 with batch_pct 0: all the rest at once */
	int batch_pct;         /* batch as a percentage of the group's boards, 1..100; 0: batch_count */
	int approve;           /* `approve: true`: its automatic deploy job waits for anvil approve */
};

#define PIPEFILE_MAX_DEPLOYS 16

/* Caps on the graph a pipeline file may ask for (docs/anvil-yml.md): a push
 * is hostile, so the server never stores more than this per pipeline. */
#define PIPEFILE_MAX_JOBS        32   /* named jobs under `jobs:` */
#define PIPEFILE_MAX_UNITS       128  /* jobs once targets and matrix cells are expanded */
#define PIPEFILE_MAX_NEEDS       16   /* names in one job's `needs:` */
#define PIPEFILE_MAX_DEPTH       8    /* jobs in the longest `needs:` chain */
#define PIPEFILE_MAX_EDGES       1024 /* expanded job → job dependencies */
#define PIPEFILE_MAX_AXES        4    /* env axes of one `matrix:` */
#define PIPEFILE_MAX_AXIS_VALUES 16   /* values of one axis, and include/exclude entries */
#define PIPEFILE_MAX_LABELS      16   /* `labels:` of one job */
#define PIPEFILE_MAX_JOB_NAME    64   /* bytes of a job's name, [A-Za-z0-9._-] */

struct pipefile;

/* `services:` (docs/anvil-yml.md): sidecars started before a job's steps, on
 * loopback of the job's own network namespace, torn down after it. */
#define PIPEFILE_MAX_SERVICES            8
#define PIPEFILE_MAX_SERVICE_NAME        32          /* bytes, [A-Za-z0-9][A-Za-z0-9_-]* */
#define PIPEFILE_MAX_SERVICE_TEXT        (16 * 1024) /* bytes of `command` or `ready` */
#define PIPEFILE_MAX_SERVICE_ENV         64
#define PIPEFILE_SERVICE_READY_DEFAULT_S 60
#define PIPEFILE_SERVICE_READY_MAX_S     (30 * 60)

struct pipefile_service {
	char *name;           /* owned */
	struct strv packages; /* Debian packages of a derived host-arch tree; empty: the job's root */
	char *command;        /* owned; shell text that runs the service in the foreground */
	char *ready;          /* owned; shell text retried until it exits 0 */
	long ready_timeout_s; /* how long ready is retried (default 60) */
	struct strv env;      /* "KEY=VALUE" the service and its ready command see */
};

/* `matrix:` of a job: env axes and their values; include and exclude
 * entries are "KEY=VALUE" lists (KEY an axis or "target"). */
struct pipefile_matrix {
	struct strv axes;     /* variable names, in file order */
	struct strv *values;  /* n = axes.n, each the axis' values */
	struct strv *include; /* n_include entries */
	size_t n_include;
	struct strv *exclude; /* n_exclude entries */
	size_t n_exclude;
};

/* One named job of `jobs:`. */
struct pipefile_job {
	char *name;            /* owned; [A-Za-z0-9._-]+ */
	size_t line, column;   /* where its name is, 1-based */
	struct pipefile *body; /* owned; targets, steps, env, artifacts, network, timeout, mode
	                          (top-level env, network, timeout and mode applied as defaults) */
	struct strv labels;    /* "k=v": labels an agent must carry */
	struct strv needs;     /* names of other jobs */
	struct pipefile_matrix matrix;
	int approve;      /* `approve: true`: each of its jobs waits for anvil approve */
	size_t *needs_at; /* owned; line and column of needs.v[i] at [2i], [2i+1] */
	unsigned given;   /* the parser's: which keys the job set itself */
};

/* A job as the server stores it: one per target and matrix cell. */
struct pipefile_unit {
	char *name;         /* owned; the job's name, or "test (TARGET, K=V, ...)" for a matrix cell */
	const char *target; /* borrowed from the pipefile */
	size_t job;         /* index into jobs (or 0 for the single-job form) */
	struct strv env;    /* the job's env and the cell's values, "KEY=VALUE" */
	size_t *needs;      /* owned; indexes of units this one waits for, n_needs */
	size_t n_needs;
};

struct pipefile {
	struct strv targets; /* target triples; empty → one job for "host" */
	struct strv
	    tools; /* `tools:` Debian packages added to target jobs' toolroot (recipe_package_name_ok) */
	struct pipefile_step *steps; /* n_steps entries, owned */
	size_t n_steps;
	struct strv artifacts; /* paths or globs relative to the workspace */
	struct strv env;       /* "KEY=VALUE", keys validated [A-Za-z_][A-Za-z0-9_]* */
	int network;           /* `network: true` lets steps reach the network (default 0) */
	int auto_cancel;       /* `auto_cancel: true`: a push to a branch cancels its older push pipelines */
	int no_submodules;     /* `submodules: false`: the workspace's submodules are not checked out */
	long timeout_s;        /* `timeout: 30m` / `90s` / integer seconds; 0 = server default */
	char *mode; /* `mode: cross|emulated`: how target jobs build; NULL = each recipe's default */
	struct pipefile_when when;       /* `when:` rules; all empty = always */
	struct pipefile_deploy *deploys; /* `deploy:` entries, n_deploys, owned */
	size_t n_deploys;
	/* `jobs:` (n_jobs, owned); 0: the single-job form, whose job is named
	 * "build" and made of the top-level targets/steps/env/artifacts. */
	struct pipefile_job *jobs;
	size_t n_jobs;
	struct pipefile_service *services; /* `services:`, n_services, owned; a job's own or the
	                                      top level's copied */
	size_t n_services;
};

/* Parses buf (len bytes, need not be NUL-terminated). On success *out is the
 * caller's (free with pipefile_free). Errors are ERR_INVAL ("line 4: steps[1]:
 * missing run") or ERR_LIMIT (too big / too many). */
int pipefile_parse(const char *buf, size_t len, struct pipefile **out, struct err *err);
void pipefile_free(struct pipefile *pf);

/* Expands the jobs into units: one per target (and matrix cell), in file
 * order, with needs resolved: `needs: [X]` means X's units of the same
 * target when it has any, else all of X's units. wanted(arg, target) may
 * drop targets (NULL: keep all); a need on a job left with no unit is
 * dropped. ERR_LIMIT past PIPEFILE_MAX_UNITS or PIPEFILE_MAX_EDGES. *out is
 * the caller's (pipefile_units_free). */
int pipefile_expand(const struct pipefile *pf, int (*wanted)(void *arg, const char *target), void *arg,
                    struct pipefile_unit **out, size_t *n_out, struct err *err);
void pipefile_units_free(struct pipefile_unit *u, size_t n);
/* The job a unit was made from (the file itself in the single-job form). */
const struct pipefile *pipefile_unit_body(const struct pipefile *pf, const struct pipefile_unit *u);

/* 1 when the rules let a pipeline start for ref and event; paths (n_paths)
 * are the changed files, or NULL when unknown (then path rules are ignored,
 * as they are when the list is empty). */
int pipefile_when_match(const struct pipefile_when *w, const char *ref, const char *event,
                        const char *const *paths, size_t n_paths);
/* fnmatch(3) glob where a double star also matches '/' (so "src" + "/" + two
 * stars holds "src/a/b.c", and "a/", two stars, "/b" also holds "a/b");
 * other wildcards stop at '/'. Four double stars at most. */
int pipefile_glob_match(const char *pattern, const char *s);

/* 1 when a deploy entry's `on:` matches ref (refs/heads/B against on.branch,
 * refs/tags/T against on.tag); an entry without `on:` never matches. */
int pipefile_deploy_on_match(const struct pipefile_deploy *d, const char *ref);

#endif
