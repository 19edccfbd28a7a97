#include "server/ui/ui_sse.h"
#include "common/log.h"
#include "server/sched/logtail.h"
#include "server/sched/sched.h"
#include "server/srv.h"
#include "server/ui/ui_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UI_SSE_READ_BYTES (256 * 1024)

struct ui_sse {
	struct srv *srv; /* borrowed */
	int64_t job_id;
	int64_t offset; /* next log byte to render */
	int64_t line;   /* lines rendered so far */
	struct ui_ansi ansi;
	int sent_state; /* -1 before the first state event */
	int done;       /* the end event is queued */
	struct buf out; /* bytes not yet handed to MHD */
	size_t out_pos;
	struct buf raw;
	int64_t keepalive_due_ms;
	struct sched_follow *follow; /* owned: wakes on this job's log only */
};

static void ui_sse_free(void *cls)
{
	struct ui_sse *s = cls;

	if (s == NULL)
		return;
	buf_release(&s->out);
	buf_release(&s->raw);
	sched_follow_free(s->follow);
	free(s);
}

/* One pass: reads what is new and queues events into s->out. */
static void ui_sse_poll(struct ui_sse *s, uint64_t epoch)
{
	struct logtail_read r = {0};
	struct err err = {0};
	int final;

	buf_reset(&s->raw);
	/* The state comes with the bytes: once final, every byte is stored. */
	if (logtail_read(s->srv->logtail, s->srv->store, epoch, s->job_id, s->offset, UI_SSE_READ_BYTES,
	                 &s->raw, &r, &err) < 0) {
		log_warnx("event=ui_sse_failed job=%lld error=\"%s\"", (long long)s->job_id, err.msg);
		buf_appendf(&s->out, "event: end\ndata: error\n\n");
		s->done = 1;
		return;
	}
	final = jobstate_is_final(r.state);
	if (s->raw.len > 0) {
		int all = final && r.next >= r.log_bytes;
		size_t cut = ui_html_log_cut(s->raw.data, s->raw.len, all, UI_SSE_READ_BYTES);
		if (cut > 0) {
			buf_appendf(&s->out, "data: ");
			ui_html_log(&s->out, s->raw.data, cut, &s->ansi, &s->line);
			s->offset += (int64_t)cut;
			buf_appendf(&s->out, "\nid: %lld.%lld.%d\n\n", (long long)s->offset,
			            (long long)s->line, ui_ansi_pack(&s->ansi));
		}
	}
	if ((int)r.state != s->sent_state) {
		buf_appendf(&s->out, "event: state\ndata: %s\n\n", jobstate_name(r.state));
		s->sent_state = (int)r.state;
	}
	if (final && s->offset >= r.log_bytes) {
		buf_appendf(&s->out, "event: end\ndata: %s\n\n", jobstate_name(r.state));
		s->done = 1;
	}
}

static ssize_t ui_sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ui_sse *s = cls;
	size_t n;

	(void)pos;
	while (s->out_pos >= s->out.len) {
		uint64_t gen;
		int64_t now;

		if (s->done)
			return HTTP_STREAM_END;
		if (sched_stopping(s->srv->sched))
			return HTTP_STREAM_ERROR;
		buf_reset(&s->out);
		s->out_pos = 0;
		gen = sched_follow_gen(s->follow);
		ui_sse_poll(s, sched_gen(s->srv->sched, SCHED_LOGS));
		if (s->out.len > 0)
			break;
		now = sched_mono_ms();
		if (now >= s->keepalive_due_ms) {
			/* Also how a closed tab is noticed: this write fails. */
			buf_appendf(&s->out, ": keep-alive\n\n");
			break;
		}
		sched_follow_wait(s->follow, gen, s->keepalive_due_ms);
	}
	s->keepalive_due_ms = sched_mono_ms() + UI_SSE_KEEPALIVE_MS;
	n = s->out.len - s->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, s->out.data + s->out_pos, n);
	s->out_pos += n;
	return (ssize_t)n;
}

int ui_sse_answer(struct srv *srv, int64_t job_id, int64_t offset, int64_t line, int sgr,
                  const char *last_event_id, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};
	struct ui_sse *s;

	if (store_job_get(srv->store, job_id, &j, err) < 0)
		return -1;
	job_row_release(&j);
	if (last_event_id != NULL) {
		long long o, l;
		int g;
		if (sscanf(last_event_id, "%lld.%lld.%d", &o, &l, &g) == 3 && o >= 0 && l >= 0) {
			offset = o;
			line = l;
			sgr = g;
		}
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->job_id = job_id;
	s->offset = offset;
	s->line = line;
	ui_ansi_unpack(sgr, &s->ansi);
	s->sent_state = -1;
	s->follow = sched_follow_new(srv->sched, job_id);
	/* The first pass answers at once: the browser sees the stream open. */
	s->keepalive_due_ms = sched_mono_ms();
	ans->stream = ui_sse_read;
	ans->stream_cls = s;
	ans->stream_free = ui_sse_free;
	ans->content_type = "text/event-stream; charset=utf-8";
	http_answer_header(ans, "Cache-Control", "no-cache");
	http_answer_header(ans, "X-Accel-Buffering", "no");
	return 0;
}
