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

struct pipefile_step {
	char *name; /* owned; defaults to "N" (from 1) when absent: messages say "step %s" */
	char *run;  /* owned; required, shell text */
};

/* `when:` rules: each list given must hold (an empty list is not given).
 * branch is checked on branch refs (refs/heads/NAME) only, tag on tag refs
 * (refs/tags/NAME) only, path only when the changed paths are known (a
 * forge's push). Globs: see pipefile_glob_match. */
struct pipefile_when {
	struct strv branch; /* globs on the branch name (refs/heads/ stripped) */
	struct strv tag;    /* globs on the tag name (refs/tags/ stripped) */
	struct strv event;  /* push, tag, manual */
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
};

#define PIPEFILE_MAX_DEPLOYS 16

struct pipefile {
	struct strv targets; /* target triples; empty → one job for "host" */
	struct strv
	    tools; /* `tools:` Debian packages added to target jobs' toolroot (recipe_package_name_ok) */
	struct pipefile_step *steps; /* n_steps entries, owned */
	size_t n_steps;
	struct strv artifacts; /* paths or globs relative to the workspace */
	struct strv env;       /* "KEY=VALUE", keys validated [A-Za-z_][A-Za-z0-9_]* */
	int network;           /* `network: true` lets steps reach the network (default 0) */
	long timeout_s;        /* `timeout: 30m` / `90s` / integer seconds; 0 = server default */
	char *mode; /* `mode: cross|emulated`: how target jobs build; NULL = each recipe's default */
	struct pipefile_when when;       /* `when:` rules; all empty = always */
	struct pipefile_deploy *deploys; /* `deploy:` entries, n_deploys, owned */
	size_t n_deploys;
};

/* Parses buf (len bytes, need not be NUL-terminated). On success *out is the
 * caller's (free with pipefile_free). Errors are ERR_INVAL ("line 4: steps[1]:
 * missing run") or ERR_LIMIT (too big / too many). */
int pipefile_parse(const char *buf, size_t len, struct pipefile **out, struct err *err);
void pipefile_free(struct pipefile *pf);

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
