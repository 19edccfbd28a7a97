#include "server/ui/ui_sse.h"
#include "common/log.h"
#include "server/sched/logtail.h"
#include "server/sched/sched.h"
#include "server/srv.h"
#include "server/ui/ui_html.h"
#include "server/ui/ui_steps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UI_SSE_READ_BYTES (256 * 1024)
/* While a job runs its page's durations move: re-rendered this often. */
#define UI_SSE_TICK_MS 1000

struct ui_sse {
	struct srv *srv; /* borrowed */
	int64_t job_id;
	int64_t offset; /* next log byte to render */
	int64_t line;   /* lines rendered so far in the segment */
	int seg;        /* the log segment being rendered (ui_steps.h) */
	struct ui_ansi ansi;
	char sent_state[UI_SSE_STATE_MAX]; /* "" before the first state event */
	int done;                          /* the end event is queued */
	int ticking;                       /* the job is not final: wake every UI_SSE_TICK_MS */
	ui_sse_meta_fn meta;               /* may be NULL */
	struct buf meta_sent;              /* the last meta fragment sent */
	struct buf meta_now;
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
	buf_release(&s->meta_sent);
	buf_release(&s->meta_now);
	if (s->follow != NULL)
		logtail_unfollow(s->srv->logtail, s->job_id);
	sched_follow_free(s->follow);
	free(s);
}

void ui_sse_data(struct buf *out, const char *event, const char *data, size_t n)
{
	const char *p = data, *end = data + n;

	if (event != NULL)
		buf_appendf(out, "event: %s\n", event);
	/* One data line per line: the browser joins them back with '\n'. */
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;

		buf_appendf(out, "data: ");
		buf_append(out, p, (size_t)(stop - p));
		buf_appendf(out, "\n");
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	buf_appendf(out, "\n");
}

/* Renders the first cut bytes of s->raw (at s->offset), split at the
 * steps' boundaries: entering another segment sends
 *   event: seg      data: its (empty) container, which the page appends
 * and its lines go into it, numbered from its start (ui_steps.h). */
static void ui_sse_lines(struct ui_sse *s, size_t cut)
{
	struct job_row j = {0};
	struct ui_steps st = {0};
	struct err err = {0};
	size_t p = 0;

	if (store_job_get(s->srv->store, s->job_id, &j, &err) < 0 || ui_steps_load(s->srv, &j, &st, &err) < 0)
		log_warnx("event=ui_sse_steps_failed job=%lld error=\"%s\"", (long long)s->job_id, err.msg);
	while (p < cut) {
		int64_t pos = s->offset + (int64_t)p, end;
		int seg = ui_steps_seg_at(&st, pos, &end);
		size_t lim = cut;
		struct logframe_time *t = NULL;
		size_t n_t = 0;
		char prefix[16];
		struct ui_log_opts o;

		if (seg != s->seg) {
			struct buf c = BUF_INIT;
			ui_steps_seg_open(&c, &st, seg, 1);
			ui_steps_seg_close(&c, seg);
			ui_sse_data(&s->out, "seg", c.data ? c.data : "", c.len);
			buf_release(&c);
			s->seg = seg;
			s->line = 0;
			s->ansi = (struct ui_ansi)UI_ANSI_INIT;
			if (pos == ui_steps_seg_start(&st, seg)) {
				int64_t l = 0; /* the hidden line is not counted */
				p += ui_steps_echo_skip(&st, seg, s->raw.data + p, cut - p, &l);
				continue;
			}
		}
		if (end >= 0 && end - pos < (int64_t)(cut - p))
			lim = p + (size_t)(end - pos);
		ui_steps_prefix(prefix, seg);
		(void)store_log_times(s->srv->store, s->job_id, pos, s->offset + (int64_t)lim, &t, &n_t,
		                      &err);
		o = (struct ui_log_opts){prefix, t, n_t, pos};
		buf_appendf(&s->out, "data: ");
		ui_html_log_ex(&s->out, s->raw.data + p, lim - p, &s->ansi, &s->line, &o);
		free(t);
		p = lim;
		buf_appendf(&s->out, "\nid: %lld.%lld.%d.%d\n\n", (long long)(s->offset + (int64_t)p),
		            (long long)s->line, ui_ansi_pack(&s->ansi), s->seg);
	}
	s->offset += (int64_t)p;
	ui_steps_release(&st);
	job_row_release(&j);
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
		if (cut > 0)
			ui_sse_lines(s, cut);
	}
	{
		/* The page's facts (attempt, agent, times) and its state as a
		 * person reads it: "cancelling" once a cancel was asked. */
		char shown[UI_SSE_STATE_MAX];

		snprintf(shown, sizeof(shown), "%s", jobstate_name(r.state));
		if (s->meta != NULL) {
			char st[UI_SSE_STATE_MAX] = "";
			buf_reset(&s->meta_now);
			if (s->meta(s->srv, s->job_id, &s->meta_now, st, &err) < 0) {
				log_warnx("event=ui_sse_meta_failed job=%lld error=\"%s\"",
				          (long long)s->job_id, err.msg);
			} else {
				if (!final && st[0])
					snprintf(shown, sizeof(shown), "%s", st);
				if (s->meta_now.len != s->meta_sent.len ||
				    memcmp(s->meta_now.data, s->meta_sent.data, s->meta_now.len) != 0) {
					ui_sse_data(&s->out, "meta", s->meta_now.data ? s->meta_now.data : "",
					            s->meta_now.len);
					buf_reset(&s->meta_sent);
					buf_append(&s->meta_sent, s->meta_now.data ? s->meta_now.data : "",
					           s->meta_now.len);
				}
			}
		}
		if (strcmp(shown, s->sent_state) != 0) {
			buf_appendf(&s->out, "event: state\ndata: %s\n\n", shown);
			snprintf(s->sent_state, sizeof(s->sent_state), "%s", shown);
		}
	}
	s->ticking = !final;
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
		{
			int64_t due = s->keepalive_due_ms;
			if (s->ticking && s->meta != NULL && now + UI_SSE_TICK_MS < due)
				due = now + UI_SSE_TICK_MS;
			sched_follow_wait(s->follow, gen, due);
		}
	}
	s->keepalive_due_ms = sched_mono_ms() + UI_SSE_KEEPALIVE_MS;
	n = s->out.len - s->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, s->out.data + s->out_pos, n);
	s->out_pos += n;
	return (ssize_t)n;
}

int ui_sse_answer(struct srv *srv, int64_t job_id, int64_t offset, int64_t line, int sgr, int seg,
                  const char *last_event_id, ui_sse_meta_fn meta, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};
	struct ui_sse *s;

	if (store_job_get(srv->store, job_id, &j, err) < 0)
		return -1;
	job_row_release(&j);
	if (last_event_id != NULL) {
		long long o, l;
		int g, sg = 0, k = sscanf(last_event_id, "%lld.%lld.%d.%d", &o, &l, &g, &sg);
		if (k >= 3 && o >= 0 && l >= 0 && sg >= 0) {
			offset = o;
			line = l;
			sgr = g;
			seg = sg;
		}
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->job_id = job_id;
	s->offset = offset;
	s->line = line;
	s->seg = seg;
	ui_ansi_unpack(sgr, &s->ansi);
	s->meta = meta;
	s->follow = sched_follow_new(srv->sched, job_id);
	logtail_follow(srv->logtail, job_id);
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

/* ---- a self-rendering page part ---- */

struct ui_sse_page {
	struct srv *srv; /* borrowed */
	ui_sse_render_fn render;
	void *cls; /* owned, freed by cls_free */
	void (*cls_free)(void *);
	char sent_state[UI_SSE_STATE_MAX];
	struct buf sent; /* the last fragment sent */
	struct buf now;
	struct buf out; /* bytes not yet handed to MHD */
	size_t out_pos;
	int done;
	int64_t keepalive_due_ms;
};

static void ui_sse_page_free(void *cls)
{
	struct ui_sse_page *p = cls;

	if (p == NULL)
		return;
	if (p->cls_free != NULL)
		p->cls_free(p->cls);
	buf_release(&p->sent);
	buf_release(&p->now);
	buf_release(&p->out);
	free(p);
}

static void ui_sse_page_poll(struct ui_sse_page *p)
{
	struct err err = {0};
	char state[UI_SSE_STATE_MAX] = "";
	int active = 1;

	buf_reset(&p->now);
	if (p->render(p->cls, &p->now, state, &active, &err) < 0) {
		log_warnx("event=ui_sse_page_failed error=\"%s\"", err.msg);
		buf_appendf(&p->out, "event: end\ndata: error\n\n");
		p->done = 1;
		return;
	}
	if (p->now.len != p->sent.len || memcmp(p->now.data, p->sent.data, p->now.len) != 0) {
		ui_sse_data(&p->out, "page", p->now.data ? p->now.data : "", p->now.len);
		buf_reset(&p->sent);
		buf_append(&p->sent, p->now.data ? p->now.data : "", p->now.len);
	}
	if (strcmp(state, p->sent_state) != 0) {
		buf_appendf(&p->out, "event: state\ndata: %s\n\n", state);
		snprintf(p->sent_state, sizeof(p->sent_state), "%s", state);
	}
	if (!active) {
		buf_appendf(&p->out, "event: end\ndata: %s\n\n", state);
		p->done = 1;
	}
}

static ssize_t ui_sse_page_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ui_sse_page *p = cls;
	size_t n;

	(void)pos;
	while (p->out_pos >= p->out.len) {
		uint64_t gen;
		int64_t now, due;

		if (p->done)
			return HTTP_STREAM_END;
		if (sched_stopping(p->srv->sched))
			return HTTP_STREAM_ERROR;
		buf_reset(&p->out);
		p->out_pos = 0;
		gen = sched_gen(p->srv->sched, SCHED_LOGS);
		ui_sse_page_poll(p);
		if (p->out.len > 0)
			break;
		now = sched_mono_ms();
		if (now >= p->keepalive_due_ms) {
			buf_appendf(&p->out, ": keep-alive\n\n");
			break;
		}
		/* Job states move SCHED_LOGS; the tick moves durations. */
		due = now + UI_SSE_TICK_MS < p->keepalive_due_ms ? now + UI_SSE_TICK_MS : p->keepalive_due_ms;
		sched_wait(p->srv->sched, SCHED_LOGS, gen, due);
	}
	p->keepalive_due_ms = sched_mono_ms() + UI_SSE_KEEPALIVE_MS;
	n = p->out.len - p->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, p->out.data + p->out_pos, n);
	p->out_pos += n;
	return (ssize_t)n;
}

int ui_sse_page_answer(struct srv *srv, ui_sse_render_fn render, void *cls, void (*cls_free)(void *),
                       struct http_answer *ans, struct err *err)
{
	struct ui_sse_page *p = xcalloc(1, sizeof(*p));

	(void)err;
	p->srv = srv;
	p->render = render;
	p->cls = cls;
	p->cls_free = cls_free;
	p->keepalive_due_ms = sched_mono_ms();
	ans->stream = ui_sse_page_read;
	ans->stream_cls = p;
	ans->stream_free = ui_sse_page_free;
	ans->content_type = "text/event-stream; charset=utf-8";
	http_answer_header(ans, "Cache-Control", "no-cache");
	http_answer_header(ans, "X-Accel-Buffering", "no");
	return 0;
}
