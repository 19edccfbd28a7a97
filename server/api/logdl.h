#ifndef ANVIL_LOGDL_H
#define ANVIL_LOGDL_H

#include <stdint.h>

#include "common/err.h"
#include "server/http/http.h"

struct srv;

/* A job's whole log as one download (GET /api/v1/jobs/ID/log?download=1,
 * the UI's GET /jobs/ID/log): text/plain with Content-Disposition
 * attachment (job-ID.log), streamed from the store LOGDL_READ_BYTES at a
 * time on the connection's thread, never whole in memory. It holds the
 * bytes stored when the request came in (X-Anvil-Log-Bytes; a running job's
 * later bytes are for the next download or a follower). A store failure
 * mid-way ends the answer early (the connection closes without the last
 * chunk of the chunked encoding), so a client never takes a cut log for a
 * whole one. ERR_NOTFOUND for no such job. */
#define LOGDL_READ_BYTES (256 * 1024)
int logdl_answer(struct srv *srv, int64_t job_id, struct http_answer *ans, struct err *err);

#endif
