#ifndef ANVIL_RETENTION_H
#define ANVIL_RETENTION_H

#include <stdint.h>

#include "common/err.h"

/* Housekeeping: a thread that runs a retention pass at start and every
 * cfg.housekeeping_s seconds. A pass removes the logs of jobs finished more
 * than cfg.log_retention_days ago (a one-line marker chunk takes their
 * place), the artifact rows of jobs finished more than
 * cfg.artifact_retention_days ago, expired web UI sessions, the scratch
 * builds uploaded more than cfg.scratch_retention_days ago (scratch.h), then
 * every blob
 * no artifact references:
 * the row in a transaction first, the file after, under srv->blob_mu (the
 * lock an upload holds from moving its file into place to recording its
 * row). The first pass also removes blob files that have no row (a crash
 * between the two). Every step works in bounded batches, each its own
 * transaction, so requests are served in between. */

struct srv;
struct retention;

struct retention_counts {
	int64_t logs, artifacts, blobs, orphans; /* jobs, jobs, blobs, files */
	int64_t statuses;                        /* given-up forge statuses, with the logs' age */
	int64_t sessions;                        /* expired web UI sessions */
	int64_t scratch_refs, scratch_repos;     /* `anvil build` commits and emptied repositories */
};

#define RETENTION_MARKER_FMT "[anvil: log removed by retention after %d days]\n"

int retention_start(struct srv *srv, struct retention **out, struct err *err);
/* Stops and joins the thread at the end of its current batch; NULL-safe. */
void retention_stop(struct retention *r);

/* One pass (what the thread runs), with stop polled between batches (may be
 * NULL). sweep: also remove blob files without a row. */
int retention_pass(struct srv *srv, int sweep, int64_t now_ms, const volatile int *stop,
                   struct retention_counts *out, struct err *err);

#endif
