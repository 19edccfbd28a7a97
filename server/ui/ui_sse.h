#ifndef ANVIL_UI_SSE_H
#define ANVIL_UI_SSE_H

#include <stdint.h>

#include "common/err.h"
#include "server/http/http.h"

struct srv;

/* The live log of a job as Server-Sent Events (GET /jobs/ID/events):
 *   (default event) data: rendered HTML lines (ui_html_log), id: OFF.LINE.SGR.SEG
 *   event: seg      data: the container of the log segment (a step,
 *                   ui_steps.h) the lines that follow belong to
 *   event: state    data: the job's state when it changes
 *   event: end      data: the final state; the stream then ends
 *   ": keep-alive" comments every UI_SSE_KEEPALIVE_MS while nothing happens.
 * Resumes from offset (bytes), line (lines already shown in segment seg)
 * and sgr (the packed colour state), or from a Last-Event-ID header holding
 * the same.
 * The answer's callback runs on the connection's thread, reads through the
 * job's log tail (logtail.c) and blocks on the job's own generation
 * (sched_follow), so a chunk reaching the server is sent at once; it
 * ends with an error when the server stops. ERR_NOTFOUND for no such job. */
#define UI_SSE_KEEPALIVE_MS 15000
#define UI_SSE_STATE_MAX    24

/* Renders the job page's live facts (attempt, agent, times, ...) into out
 * and the state a person should read into state ("cancelling" while a
 * cancel is pending, "" for the job's own state). Called on the stream's
 * thread. */
typedef int (*ui_sse_meta_fn)(struct srv *srv, int64_t job_id, struct buf *out, char state[UI_SSE_STATE_MAX],
                              struct err *err);

/* With meta (may be NULL), the stream also sends
 *   event: meta     data: meta's fragment, when it changed
 * re-rendered at each wake-up and every second while the job is not final
 * (its durations move), and the state event carries meta's state. */
int ui_sse_answer(struct srv *srv, int64_t job_id, int64_t offset, int64_t line, int sgr, int seg,
                  const char *last_event_id, ui_sse_meta_fn meta, struct http_answer *ans, struct err *err);

/* Appends one SSE event: "event: NAME" (when event is not NULL) and data
 * (n bytes) as one "data:" line per line of it. */
void ui_sse_data(struct buf *out, const char *event, const char *data, size_t n);

/* A part of a page that re-renders itself (the pipeline page's jobs):
 * render fills out and state (the page's state badge) and clears *active
 * once nothing on it can change. The stream sends
 *   event: page     data: the fragment, when it changed
 *   event: state    data: state, when it changed
 *   event: end      once !active; the stream then ends
 * re-rendering on every job or log notification and every second. cls is
 * the caller's, freed with cls_free(cls) when the answer is done. */
typedef int (*ui_sse_render_fn)(void *cls, struct buf *out, char state[UI_SSE_STATE_MAX], int *active,
                                struct err *err);
int ui_sse_page_answer(struct srv *srv, ui_sse_render_fn render, void *cls, void (*cls_free)(void *),
                       struct http_answer *ans, struct err *err);

#endif
