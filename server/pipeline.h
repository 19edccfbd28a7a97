#ifndef ANVIL_PIPELINE_H
#define ANVIL_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct srv;

/* Starting a pipeline: what a trigger, a forge webhook and the poller share.
 * The commit is fetched into the server's mirror of the repository (libgit2),
 * `.anvil.yml` read and parsed there, and one job per target created. */

struct pipeline_trigger {
	const char *repo;     /* [A-Za-z0-9._-]+ */
	const char *url;      /* clone URL or local path */
	const char *ref;      /* refs/heads/main, refs/tags/v1 */
	const char *commit;   /* 40 hex, or NULL to resolve ref */
	const char *event;    /* push | tag | manual */
	const char *delivery; /* unique id or NULL */
};

/* Validates t (ERR_INVAL naming the field), then creates the pipeline. An
 * unreadable repository or pipeline file is not an error here: the pipeline
 * is created in state error with the reason. A delivery seen before creates
 * nothing: *existed_out = 1 and *id_out is the earlier pipeline. */
int pipeline_start(struct srv *srv, const struct pipeline_trigger *t, int64_t *id_out, int *existed_out,
		   struct err *err);

/* Names of repositories and agents: [A-Za-z0-9._-]+, not starting with '.'
 * or '-', at most max bytes. */
int pipeline_name_ok(const char *s, size_t max);
/* No control characters. */
int pipeline_text_ok(const char *s);

#endif
