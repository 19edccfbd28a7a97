#ifndef ANVIL_LOGFRAME_H
#define ANVIL_LOGFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The framed log chunk an agent sends (POST /api/v1/agents/jobs/ID/log
 * ?frame=1): a sequence of records, each one type byte, a 4-byte big-endian
 * payload length and the payload:
 *
 *   'L' log bytes (a step's output, masked), never looked into
 *   'T' 8-byte big-endian Unix time in ms: the log bytes that follow arrived then
 *   'S' a step starts: JSON {"index", "name", "command", "at_ms"}
 *   'E' a step ends:   JSON {"index", "state", "exit_code" (or null), "at_ms", "lines"}
 *       (lines: the '\n' in the step's log bytes, the page's line numbers)
 *
 * A step's output only ever travels inside 'L' payloads whose length the
 * agent sets, so whatever bytes a step prints (marker look-alikes too) stay
 * log text: they cannot start, end or rename a step. Events sit between the
 * log bytes where they happened; rel_off counts the chunk's log bytes before
 * them. */

#define LOGFRAME_NAME_MAX    256
#define LOGFRAME_COMMAND_MAX 16384
#define LOGFRAME_EVENTS_MAX  8192 /* steps and time marks in one chunk */

struct logframe_step {
	int index;      /* the step's place in the job spec, from 0 */
	int end;        /* 0: the step starts; 1: it ends */
	char *name;     /* owned; start only */
	char *command;  /* owned; start only */
	char state[12]; /* end: success, failed, timeout, canceled, error */
	int have_exit;  /* end: exit_code is set */
	int exit_code;
	int64_t lines;   /* end: newlines in the step's log bytes; -1: not given */
	int64_t at_ms;   /* Unix time */
	int64_t rel_off; /* the chunk's log bytes before the event */
};

struct logframe_time {
	int64_t rel_off; /* log offset (chunk-relative in a frame, absolute from the store) */
	int64_t at_ms;
};

struct logframe {
	struct buf log; /* the 'L' payloads, joined */
	struct logframe_step *steps;
	size_t n_steps;
	struct logframe_time *times;
	size_t n_times;
};

void logframe_init(struct logframe *f);
void logframe_release(struct logframe *f);
/* Parses a framed chunk. ERR_INVAL for anything malformed: an unknown
 * type, a short record, a bad event, too many events. */
int logframe_decode(struct logframe *out, const void *p, size_t n, struct err *err);

/* Encoders (the agent): append one record to out. */
void logframe_put_log(struct buf *out, const void *p, size_t n);
void logframe_put_time(struct buf *out, int64_t at_ms);
void logframe_put_step_start(struct buf *out, int index, const char *name, const char *command,
                             int64_t at_ms);
void logframe_put_step_end(struct buf *out, int index, const char *state, int have_exit, int exit_code,
                           int64_t lines, int64_t at_ms);

/* Time marks stored beside a log chunk (the store's log_times.data): per
 * mark, the offset after the previous one (first: after base_off) and the
 * time after the previous one (first: after 0) as LEB128 varints, the time
 * zigzagged. */
void logframe_times_pack(struct buf *out, int64_t base_off, const struct logframe_time *t, size_t n);
/* Appends the marks of data (absolute offsets) to *v (n_out grows). */
int logframe_times_unpack(struct logframe_time **v, size_t *n_out, int64_t base_off, const void *data,
                          size_t len, struct err *err);

#endif
