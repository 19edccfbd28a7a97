/* The job page's log in step sections (see ui_steps.h). */

#include "server/ui/ui_steps.h"
#include "server/sched/jobstate.h"
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the page renders of a segment, from its end: the open step more. */
#define UI_STEPS_TAIL_BYTES      (32 * 1024)
#define UI_STEPS_OPEN_TAIL_BYTES (256 * 1024)
#define UI_STEPS_PAGE_BYTES      (512 * 1024)

static int ui_steps_cmp(const void *a, const void *b)
{
	const struct step_row *x = a, *y = b;

	return x->start_off < y->start_off ? -1 : x->start_off > y->start_off ? 1 : x->index - y->index;
}

int ui_steps_load(struct srv *srv, const struct job_row *j, struct ui_steps *out, struct err *err)
{
	struct step_row *rows = NULL;
	size_t n = 0, i, k = 0;

	memset(out, 0, sizeof(*out));
	out->job_final = jobstate_is_final(j->state);
	if (store_job_steps(srv->store, j->id, &rows, &n, err) < 0)
		return -1;
	/* the current attempt's only */
	for (i = 0; i < n; i++) {
		if (rows[i].attempt == j->attempt) {
			struct step_row t = rows[k];
			rows[k] = rows[i];
			rows[i] = t;
			k++;
		}
	}
	for (i = k; i < n; i++) {
		free(rows[i].name);
		free(rows[i].command);
	}
	if (k > 1)
		qsort(rows, k, sizeof(*rows), ui_steps_cmp);
	out->rows = rows;
	out->n = k;
	if (k == 0) {
		free(rows);
		out->rows = NULL;
	}
	return 0;
}

void ui_steps_release(struct ui_steps *s)
{
	step_rows_free(s->rows, s->n);
	memset(s, 0, sizeof(*s));
}

/* The end of step k's own bytes (-1: open). */
static int64_t ui_steps_end(const struct ui_steps *s, size_t k)
{
	if (s->rows[k].end_off >= 0)
		return s->rows[k].end_off;
	return k + 1 < s->n ? s->rows[k + 1].start_off : -1;
}

int64_t ui_steps_seg_start(const struct ui_steps *s, int seg)
{
	size_t k;

	if (seg <= 0 || s->n == 0)
		return 0;
	k = (size_t)(seg - 1) / 2;
	if (k >= s->n)
		return -1;
	if (seg % 2 == 1)
		return s->rows[k].start_off;
	return ui_steps_end(s, k);
}

int64_t ui_steps_seg_end(const struct ui_steps *s, int seg)
{
	size_t k;

	if (s->n == 0)
		return -1;
	if (seg <= 0)
		return s->rows[0].start_off;
	k = (size_t)(seg - 1) / 2;
	if (seg % 2 == 1)
		return ui_steps_end(s, k);
	return k + 1 < s->n ? s->rows[k + 1].start_off : -1;
}

int ui_steps_seg_at(const struct ui_steps *s, int64_t off, int64_t *end_out)
{
	size_t k;

	*end_out = s->n > 0 ? s->rows[0].start_off : -1;
	if (s->n == 0 || off < s->rows[0].start_off)
		return 0;
	for (k = s->n; k-- > 0;) {
		int64_t end = ui_steps_end(s, k);
		if (off < s->rows[k].start_off)
			continue;
		if (end < 0 || off < end) {
			*end_out = end;
			return (int)(2 * k + 1);
		}
		*end_out = k + 1 < s->n ? s->rows[k + 1].start_off : -1;
		return (int)(2 * k + 2);
	}
	return 0;
}

void ui_steps_prefix(char out[16], int seg)
{
	if (seg <= 0)
		out[0] = '\0';
	else
		snprintf(out, 16, "%c%d-", seg % 2 ? 's' : 'a', (seg - 1) / 2);
}

/* The state a step shows: a step still "running" in a finished job was
 * stopped (canceled, timed out, its agent lost). */
static const char *ui_steps_state(const struct ui_steps *s, const struct step_row *r)
{
	if (strcmp(r->state, "running") == 0 && s->job_final)
		return "stopped";
	return r->state;
}

static void ui_steps_badge(struct buf *out, const char *state)
{
	const char *cls =
	    strcmp(state, "success") == 0   ? "success"
	    : strcmp(state, "running") == 0 ? "running"
	    : strcmp(state, "failed") == 0 || strcmp(state, "timeout") == 0 || strcmp(state, "error") == 0
	        ? "failed"
	        : "canceled";
	buf_appendf(out, "<span class=\"st st-%s\">%s</span>", cls, state);
}

static void ui_steps_dur(struct buf *out, const struct step_row *r, int64_t now_ms)
{
	if (r->finished_unix_ms > 0)
		ui_html_duration(out, r->finished_unix_ms - r->started_unix_ms);
	else if (now_ms > 0)
		ui_html_duration(out, now_ms - r->started_unix_ms);
}

void ui_steps_seg_open(struct buf *out, const struct ui_steps *s, int seg, int open)
{
	const struct step_row *r;

	if (seg <= 0)
		return;
	if (seg % 2 == 0) {
		buf_appendf(out, "<div class=\"lines after\" id=\"seg-%d\">", seg);
		return;
	}
	r = &s->rows[(seg - 1) / 2];
	buf_appendf(out, "<details class=\"step\" id=\"step-%d\"%s><summary>", (seg - 1) / 2,
	            open ? " open" : "");
	ui_steps_badge(out, ui_steps_state(s, r));
	buf_appendf(out, " <span class=\"sname\">");
	ui_html_esc(out, r->name);
	buf_appendf(out, "</span>");
	if (r->have_exit && r->exit_code != 0)
		buf_appendf(out, " <span class=\"muted\">exit %d</span>", r->exit_code);
	/* Empty until the step ends; a live page fills it from the step list. */
	buf_appendf(out, " <span class=\"dur muted\">");
	ui_steps_dur(out, r, 0);
	buf_appendf(
	    out, "</span></summary><pre class=\"cmd\"><span class=\"prompt\" aria-hidden=\"true\">$ </span>");
	ui_html_esc(out, r->command);
	buf_appendf(out, "</pre><div class=\"lines\" id=\"seg-%d\">", seg);
}

void ui_steps_seg_close(struct buf *out, int seg)
{
	if (seg <= 0)
		return;
	buf_appendf(out, seg % 2 ? "</div></details>" : "</div>");
}

size_t ui_steps_echo_skip(const struct ui_steps *s, int seg, const char *data, size_t n, int64_t *lines_out)
{
	const struct step_row *r;
	struct buf want = BUF_INIT;
	size_t skip = 0, i;

	*lines_out = 0;
	if (seg <= 0 || seg % 2 == 0)
		return 0;
	r = &s->rows[(seg - 1) / 2];
	buf_appendf(&want, "[anvil] step %s: %s\n", r->name, r->command);
	if (want.len <= n && memcmp(data, want.data, want.len) == 0) {
		skip = want.len;
		for (i = 0; i < skip; i++)
			*lines_out += data[i] == '\n';
	}
	buf_release(&want);
	return skip;
}

void ui_steps_list(struct buf *out, const struct ui_steps *s, int64_t now_ms)
{
	size_t k;

	if (s->n == 0)
		return;
	buf_appendf(out, "<ol class=\"steps\" aria-label=\"Steps\">");
	for (k = 0; k < s->n; k++) {
		const struct step_row *r = &s->rows[k];
		buf_appendf(out, "<li>");
		ui_steps_badge(out, ui_steps_state(s, r));
		buf_appendf(out, " <a href=\"#step-%zu\">", k);
		ui_html_esc(out, r->name);
		buf_appendf(out, "</a> <span class=\"dur muted\">");
		ui_steps_dur(out, r, s->job_final ? 0 : now_ms);
		buf_appendf(out, "</span></li>");
	}
	buf_appendf(out, "</ol>");
}

/* The step that opens: the failing one, else the running one. */
static int ui_steps_open_seg(const struct ui_steps *s)
{
	size_t k;

	for (k = 0; k < s->n; k++) {
		const char *st = s->rows[k].state;
		if (strcmp(st, "failed") == 0 || strcmp(st, "timeout") == 0 || strcmp(st, "error") == 0)
			return (int)(2 * k + 1);
	}
	for (k = s->n; k-- > 0;)
		if (strcmp(s->rows[k].state, "running") == 0 || strcmp(s->rows[k].state, "canceled") == 0)
			return (int)(2 * k + 1);
	return -1;
}

static int64_t ui_steps_newlines(const char *p, size_t n)
{
	int64_t k = 0;
	size_t i;

	for (i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

int ui_steps_log(struct srv *srv, const struct job_row *j, const struct ui_steps *s, int64_t shown,
                 struct buf *out, int *seg_out, int64_t *line_out, struct ui_ansi *ansi, char scroll_to[40],
                 struct err *err)
{
	struct buf raw = BUF_INIT;
	int64_t budget = UI_STEPS_PAGE_BYTES, line = 0;
	int open_seg = ui_steps_open_seg(s), seg = 0, last = 0, rc = -1;

	scroll_to[0] = '\0';
	for (seg = 0;; seg++) {
		int64_t from = ui_steps_seg_start(s, seg), to, end, tail, next = 0, lines_total = -1;
		struct logframe_time *t = NULL;
		size_t n_t = 0, skip = 0;
		int cut = 0;
		char prefix[16];

		if (from < 0 || (seg > 0 && from > shown))
			break;
		if (seg > 0 && (size_t)(seg - 1) / 2 >= s->n)
			break;
		end = ui_steps_seg_end(s, seg);
		to = end < 0 || end > shown ? shown : end;
		if (seg % 2 == 0 && seg > 0 && from >= to && end >= 0)
			continue; /* nothing between two steps */
		last = seg;
		line = 0;
		*ansi = (struct ui_ansi)UI_ANSI_INIT;
		ui_steps_prefix(prefix, seg);
		ui_steps_seg_open(out, s, seg, seg == open_seg);
		tail = seg == open_seg ? UI_STEPS_OPEN_TAIL_BYTES : UI_STEPS_TAIL_BYTES;
		if (tail > budget)
			tail = budget;
		buf_reset(&raw);
		if (to - from > tail) {
			cut = 1;
			if (store_log_read(srv->store, j->id, to - tail, (size_t)tail, &raw, &next, err) < 0)
				goto out;
			/* from the first whole line */
			{
				const char *nl = memchr(raw.data ? raw.data : "", '\n', raw.len);
				skip = nl ? (size_t)(nl - raw.data) + 1 : raw.len;
			}
			if (seg % 2 == 1 && s->rows[(seg - 1) / 2].lines >= 0 && end >= 0 && to == end) {
				/* the step's own lines: its opening "[anvil] step" line
				 * (not shown) is not counted */
				const struct step_row *r = &s->rows[(seg - 1) / 2];
				lines_total =
				    r->lines - 1 - ui_steps_newlines(r->command, strlen(r->command));
			}
			buf_appendf(out,
			            "<p class=\"cut muted\">%lld earlier bytes of this part are in the "
			            "<a href=\"/jobs/%lld/log\">raw log</a>.</p>",
			            (long long)(to - tail + (int64_t)skip - from), (long long)j->id);
		} else if (to > from) {
			if (store_log_read(srv->store, j->id, from, (size_t)(to - from), &raw, &next, err) <
			    0)
				goto out;
			int64_t echo_lines = 0;
			skip = ui_steps_echo_skip(s, seg, raw.data, raw.len, &echo_lines);
		}
		if (raw.len > (size_t)(to - (cut ? to - tail : from)))
			raw.len = (size_t)(to - (cut ? to - tail : from)); /* a read may pass the end */
		if (skip > raw.len)
			skip = raw.len;
		if (lines_total >= 0)
			line = lines_total - ui_steps_newlines(raw.data + skip, raw.len - skip);
		if (raw.len > skip) {
			int64_t base = (cut ? to - tail : from) + (int64_t)skip;
			struct ui_log_opts o = {prefix, NULL, 0, base};
			if (store_log_times(srv->store, j->id, base, to, &t, &n_t, err) < 0)
				goto out;
			o.times = t;
			o.n_times = n_t;
			ui_html_log_ex(out, raw.data + skip, raw.len - skip, ansi, &line, &o);
			free(t);
			budget -= (int64_t)(raw.len - skip);
			if (seg == open_seg && line > 0)
				snprintf(scroll_to, 40, "%sL%lld", prefix, (long long)line);
		}
		ui_steps_seg_close(out, seg);
		if (end < 0 || to >= shown)
			break; /* the live stream goes on in this segment */
	}
	*seg_out = last;
	*line_out = line;
	rc = 0;
out:
	buf_release(&raw);
	return rc;
}
