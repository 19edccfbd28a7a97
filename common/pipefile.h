#ifndef ANVIL_PIPEFILE_H
#define ANVIL_PIPEFILE_H

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The pipeline file model: `.anvil.yml` at the root of a repository, parsed
 * with libyaml (docs/anvil-yml.md). Untrusted input: every error names the
 * line (and column) and never crashes; sizes are capped. */

#define PIPEFILE_MAX_BYTES (256 * 1024)
#define PIPEFILE_MAX_STEPS 64
#define PIPEFILE_MAX_TARGETS 16

struct pipefile_step {
	char *name; /* owned; defaults to "step N" when absent */
	char *run;  /* owned; required, shell text */
};

struct pipefile {
	struct strv targets;          /* target triples; empty → one job for "host" */
	struct pipefile_step *steps;  /* n_steps entries, owned */
	size_t n_steps;
	struct strv artifacts;        /* paths or globs relative to the workspace */
	struct strv env;              /* "KEY=VALUE", keys validated [A-Za-z_][A-Za-z0-9_]* */
	int network;                  /* `network: true` lets steps reach the network (default 0) */
	long timeout_s;               /* `timeout: 30m` / `90s` / integer seconds; 0 = server default */
};

/* Parses buf (len bytes, need not be NUL-terminated). On success *out is the
 * caller's (free with pipefile_free). Errors are ERR_INVAL ("line 4: steps[1]:
 * missing run") or ERR_LIMIT (too big / too many). */
int pipefile_parse(const char *buf, size_t len, struct pipefile **out, struct err *err);
void pipefile_free(struct pipefile *pf);

#endif
