#ifndef ANVIL_UI_SSE_H
#define ANVIL_UI_SSE_H

#include <stdint.h>

#include "common/err.h"
#include "server/http/http.h"

struct srv;

/* The live log of a job as Server-Sent Events (GET /jobs/ID/events):
 *   (default event) data: rendered HTML lines (ui_html_log), id: OFF.LINE.SGR
 *   event: state    data: the job's state when it changes
 *   event: end      data: the final state; the stream then ends
 *   ": keep-alive" comments every UI_SSE_KEEPALIVE_MS while nothing happens.
 * Resumes from offset (bytes), line (lines already shown) and sgr (the packed
 * colour state), or from a Last-Event-ID header holding the same triple.
 * The answer's callback runs on the connection's thread, reads through the
 * job's log tail (logtail.c) and blocks on the job's own generation
 * (sched_follow), so a chunk reaching the server is sent at once; it
 * ends with an error when the server stops. ERR_NOTFOUND for no such job. */
#define UI_SSE_KEEPALIVE_MS 15000
int ui_sse_answer(struct srv *srv, int64_t job_id, int64_t offset, int64_t line, int sgr,
                  const char *last_event_id, struct http_answer *ans, struct err *err);

#endif
