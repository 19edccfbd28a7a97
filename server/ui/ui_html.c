#include "server/ui/ui_html.h"
#include "common/mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ui_html_escn(struct buf *b, const char *s, size_t n)
{
	size_t run = 0; /* start of the pending plain run */

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep = NULL;

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				rep = "\xef\xbf\xbd";
			break;
		}
		if (rep == NULL)
			continue;
		buf_append(b, s + run, i - run);
		buf_append(b, rep, strlen(rep));
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
}

void ui_html_esc(struct buf *b, const char *s)
{
	if (s != NULL)
		ui_html_escn(b, s, strlen(s));
}

int ui_ansi_pack(const struct ui_ansi *st)
{
	return ((st->fg + 1) * 257 + (st->bg + 1)) * 2 + (st->bold ? 1 : 0);
}

void ui_ansi_unpack(int v, struct ui_ansi *st)
{
	if (v < 0 || v > UI_ANSI_PACK_MAX)
		v = 0;
	st->bold = v % 2;
	v /= 2;
	st->fg = v / 257 - 1;
	st->bg = v % 257 - 1;
}

/* xterm's palette index nearest to an RGB colour: the 6x6x6 cube (levels
 * 0, 95, 135, ..., 255) or the 24 greys (8, 18, ..., 238), whichever is
 * closer. */
static int ui_ansi_rgb_index(int r, int g, int b)
{
	static const int lv[6] = {0, 95, 135, 175, 215, 255};
	int c[3] = {r, g, b}, q[3], best, grey, gi, d_cube = 0, d_grey = 0;

	for (int k = 0; k < 3; k++) {
		int bi = 0;
		for (int i = 1; i < 6; i++)
			if (abs(c[k] - lv[i]) < abs(c[k] - lv[bi]))
				bi = i;
		q[k] = bi;
		d_cube += (c[k] - lv[bi]) * (c[k] - lv[bi]);
	}
	best = 16 + 36 * q[0] + 6 * q[1] + q[2];
	gi = ((r + g + b) / 3 - 8 + 5) / 10;
	gi = gi < 0 ? 0 : gi > 23 ? 23 : gi;
	grey = 8 + 10 * gi;
	for (int k = 0; k < 3; k++)
		d_grey += (c[k] - grey) * (c[k] - grey);
	return d_grey < d_cube ? 232 + gi : best;
}

/* The next numeric parameter of an SGR list at *i (-1 when empty), and
 * whether a ';' followed it; stops at anything else. */
static int ui_ansi_param(const char *params, size_t n, size_t *i, int *ok)
{
	int v = 0, have = 0;

	while (*i < n && params[*i] >= '0' && params[*i] <= '9') {
		if (v < 100000)
			v = v * 10 + (params[*i] - '0');
		have = 1;
		(*i)++;
	}
	*ok = *i >= n || params[*i] == ';';
	if (*i < n && params[*i] == ';')
		(*i)++;
	return have ? v : -1;
}

/* 38;5;N / 38;2;R;G;B (and 48;...): the colour as a palette index, or -1
 * when the form is malformed (the rest of the list is then ignored). */
static int ui_ansi_extended(const char *params, size_t n, size_t *i)
{
	int ok, mode = ui_ansi_param(params, n, i, &ok);

	if (!ok)
		return -1;
	if (mode == 5) {
		int v = ui_ansi_param(params, n, i, &ok);
		return ok && v >= 0 && v <= 255 ? v : -1;
	}
	if (mode == 2) {
		int r = ui_ansi_param(params, n, i, &ok), g = 0, b = 0;
		if (ok)
			g = ui_ansi_param(params, n, i, &ok);
		if (ok)
			b = ui_ansi_param(params, n, i, &ok);
		if (!ok || r < 0 || r > 255 || g < 0 || g > 255 || b < 0 || b > 255)
			return -1;
		return ui_ansi_rgb_index(r, g, b);
	}
	return -1;
}

static void ui_ansi_sgr(struct ui_ansi *st, const char *params, size_t n)
{
	size_t i = 0;

	if (n == 0) {
		st->fg = st->bg = -1;
		st->bold = 0;
		return;
	}
	while (i < n) {
		int ok, v = ui_ansi_param(params, n, &i, &ok);

		if (!ok)
			return; /* not a plain SGR list (e.g. ':' sub-parameters) */
		if (v <= 0) {
			st->fg = st->bg = -1;
			st->bold = 0;
		} else if (v == 1) {
			st->bold = 1;
		} else if (v == 22) {
			st->bold = 0;
		} else if (v >= 30 && v <= 37) {
			st->fg = v - 30;
		} else if (v >= 90 && v <= 97) {
			st->fg = v - 90 + 8;
		} else if (v == 39) {
			st->fg = -1;
		} else if (v >= 40 && v <= 47) {
			st->bg = v - 40;
		} else if (v >= 100 && v <= 107) {
			st->bg = v - 100 + 8;
		} else if (v == 49) {
			st->bg = -1;
		} else if (v == 38 || v == 48) {
			int c = ui_ansi_extended(params, n, &i);
			if (c < 0)
				return;
			if (v == 38)
				st->fg = c;
			else
				st->bg = c;
		}
	}
	if (n > 0 && params[n - 1] == ';') {
		/* "1;" ends with an empty parameter, which is 0 */
		st->fg = st->bg = -1;
		st->bold = 0;
	}
}

static int ui_ansi_plain(const struct ui_ansi *st)
{
	return st->fg < 0 && st->bg < 0 && !st->bold;
}

static void ui_ansi_open(struct buf *b, const struct ui_ansi *st)
{
	const char *sep = "";

	if (ui_ansi_plain(st))
		return;
	buf_appendf(b, "<span class=\"");
	if (st->fg >= 0) {
		buf_appendf(b, "c%d", st->fg);
		sep = " ";
	}
	if (st->bg >= 0) {
		buf_appendf(b, "%sg%d", sep, st->bg);
		sep = " ";
	}
	if (st->bold)
		buf_appendf(b, "%sb", sep);
	buf_appendf(b, "\">");
}

/* A run of plain text, inside a span of the current colour opened lazily
 * (no empty spans when colours change twice in a row). */
static void ui_html_run(struct buf *out, const char *s, size_t n, const struct ui_ansi *st, int *open)
{
	if (n == 0)
		return;
	if (!*open && !ui_ansi_plain(st)) {
		ui_ansi_open(out, st);
		*open = 1;
	}
	ui_html_escn(out, s, n);
}

/* Where the line's last state starts, as a terminal would show it: after
 * the last '\r' that more text follows (a progress bar's final frame). A
 * trailing '\r' (CRLF) rewrites nothing. */
static size_t ui_html_last_frame(const char *s, size_t n)
{
	size_t end = n;

	while (end > 0 && s[end - 1] == '\r')
		end--;
	for (size_t i = end; i > 0; i--)
		if (s[i - 1] == '\r')
			return i;
	return 0;
}

static void ui_html_line(struct buf *out, const char *s, size_t n, struct ui_ansi *st, int64_t line,
                         const char *prefix, int64_t at_ms)
{
	size_t i = 0, run = 0, shown = ui_html_last_frame(s, n);
	int open = 0;

	/* The number links the line but is no tab stop: a keyboard user does
	 * not tab through thousands of them. */
	buf_appendf(out,
	            "<div class=\"l\" id=\"%sL%lld\"><a class=\"n\" href=\"#%sL%lld\" "
	            "tabindex=\"-1\">%lld</a>",
	            prefix, (long long)line, prefix, (long long)line, (long long)line);
	if (at_ms > 0) {
		time_t t = (time_t)(at_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		buf_appendf(out, "<span class=\"ts\">%02d:%02d:%02d.%03d</span>", tm.tm_hour, tm.tm_min,
		            tm.tm_sec, (int)(at_ms % 1000));
	}
	buf_appendf(out, "<span class=\"t\">");
	while (i < n) {
		int is_sgr, more;
		const char *params;
		size_t plen, len;

		if (s[i] != '\x1b' && s[i] != '\r') {
			i++;
			continue;
		}
		/* Frames overwritten by a later one only change the colour. */
		if (run >= shown)
			ui_html_run(out, s + run, i - run, st, &open);
		if (s[i] == '\r') {
			i++;
			run = i;
			continue;
		}
		/* The mask's own notion of an escape sequence: what this drops
		 * between two halves of a secret, the mask skipped too. */
		len = mask_ignorable(s + i, n - i, &more);
		is_sgr = !more && len >= 3 && s[i + 1] == '[' && s[i + len - 1] == 'm';
		params = s + i + 2;
		plen = is_sgr ? len - 3 : 0;
		if (is_sgr) {
			if (open)
				buf_appendf(out, "</span>");
			open = 0;
			ui_ansi_sgr(st, params, plen);
		}
		i += len;
		run = i;
	}
	if (run >= shown)
		ui_html_run(out, s + run, n - run, st, &open);
	if (open)
		buf_appendf(out, "</span>");
	buf_appendf(out, "</span></div>");
}

void ui_html_log(struct buf *out, const char *data, size_t n, struct ui_ansi *st, int64_t *line_no)
{
	ui_html_log_ex(out, data, n, st, line_no, NULL);
}

void ui_html_log_ex(struct buf *out, const char *data, size_t n, struct ui_ansi *st, int64_t *line_no,
                    const struct ui_log_opts *o)
{
	size_t start = 0, k = 0;
	const char *prefix = o != NULL && o->id_prefix != NULL ? o->id_prefix : "";

	while (start < n) {
		const char *nl = memchr(data + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - data) : n;
		int64_t at_ms = 0;

		if (o != NULL && o->n_times > 0) {
			int64_t off = o->base_off + (int64_t)start;
			while (k + 1 < o->n_times && o->times[k + 1].rel_off <= off)
				k++;
			if (o->times[k].rel_off <= off)
				at_ms = o->times[k].at_ms;
		}
		ui_html_line(out, data + start, end - start, st, ++*line_no, prefix, at_ms);
		start = nl ? end + 1 : n;
	}
}

size_t ui_html_log_cut(const char *data, size_t n, int final, size_t force_bytes)
{
	const char *nl;

	if (final || n == 0)
		return n; /* n == 0: data may be NULL (a job with no log yet), which memrchr must not get */
	nl = memrchr(data, '\n', n);
	if (nl != NULL)
		return (size_t)(nl - data) + 1;
	return n >= force_bytes ? n : 0;
}

void ui_html_duration(struct buf *b, int64_t ms)
{
	int64_t s;

	if (ms < 0)
		ms = 0;
	s = ms / 1000;
	if (ms < 60000)
		buf_appendf(b, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
	else if (s < 3600)
		buf_appendf(b, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
	else
		buf_appendf(b, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

void ui_html_url(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~' || c == '/') {
			buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			buf_append(b, e, 3);
		}
	}
}

const char *ui_html_ref_short(const char *ref)
{
	if (strncmp(ref, "refs/heads/", 11) == 0)
		return ref + 11;
	if (strncmp(ref, "refs/tags/", 10) == 0)
		return ref + 10;
	return ref;
}

void ui_html_badge_svg(struct buf *b, const char *label, const char *message, const char *colour)
{
	/* Verdana 11px averages about 7 px per character: wide enough, never exact. */
	int lw = 10 + 7 * (int)strlen(label), mw = 10 + 7 * (int)strlen(message);

	buf_appendf(
	    b,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"20\" role=\"img\" aria-label=\"",
	    lw + mw);
	ui_html_esc(b, label);
	buf_appendf(b, ": ");
	ui_html_esc(b, message);
	buf_appendf(b, "\"><title>");
	ui_html_esc(b, label);
	buf_appendf(b, ": ");
	ui_html_esc(b, message);
	buf_appendf(b,
	            "</title><rect width=\"%d\" height=\"20\" rx=\"3\" fill=\"#555\"/>"
	            "<rect x=\"%d\" width=\"%d\" height=\"20\" rx=\"3\" fill=\"%s\"/>"
	            "<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" "
	            "font-size=\"11\"><text x=\"%d\" y=\"14\">",
	            lw + mw, lw, mw, colour, lw / 2);
	ui_html_esc(b, label);
	buf_appendf(b, "</text><text x=\"%d\" y=\"14\">", lw + mw / 2);
	ui_html_esc(b, message);
	buf_appendf(b, "</text></g></svg>\n");
}

/* A host[:port] or a path: the bytes a URL may carry unescaped, without
 * '@' (credentials), '?', '#' or '%' (no query, fragment or escapes). */
static int ui_html_url_part_ok(const char *s, size_t n, int path)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~' || (path ? c == '/' : c == ':'))
			continue;
		return 0;
	}
	return 1;
}

int ui_html_forge_commit_url(struct buf *out, const char *forge, const char *clone_url, const char *sha)
{
	const char *commit, *host, *path, *end, *at;
	size_t host_len, path_len, sha_len = sha ? strlen(sha) : 0;
	const char *scheme = "https";
	int keep_port = 1;

	if (forge == NULL || clone_url == NULL || sha_len < 7 || sha_len > 64 ||
	    strspn(sha, "0123456789abcdef") != sha_len)
		return -1;
	if (strcmp(forge, "github") == 0 || strcmp(forge, "gitea") == 0)
		commit = "/commit/";
	else if (strcmp(forge, "gitlab") == 0)
		commit = "/-/commit/";
	else
		return -1;
	if (strncmp(clone_url, "https://", 8) == 0 || strncmp(clone_url, "http://", 7) == 0 ||
	    strncmp(clone_url, "ssh://", 6) == 0) {
		int ssh = clone_url[0] == 's';
		if (strncmp(clone_url, "http://", 7) == 0)
			scheme = "http"; /* a forge served over plain HTTP (a lab's Gitea) */
		host = strstr(clone_url, "://") + 3;
		if ((path = strchr(host, '/')) == NULL)
			return -1;
		/* user[:password]@ goes: the page never shows credentials */
		at = memchr(host, '@', (size_t)(path - host));
		if (at != NULL)
			host = at + 1;
		host_len = (size_t)(path - host);
		keep_port = !ssh; /* an SSH port is not the web server's */
		path++;
	} else if ((at = strchr(clone_url, '@')) != NULL && (end = strchr(at, ':')) != NULL &&
	           strchr(clone_url, '/') > end) {
		host = at + 1;
		host_len = (size_t)(end - host);
		path = end + 1;
	} else {
		return -1;
	}
	if (!keep_port) {
		const char *colon = memchr(host, ':', host_len);
		if (colon != NULL)
			host_len = (size_t)(colon - host);
	}
	path_len = strlen(path);
	while (path_len > 0 && path[path_len - 1] == '/')
		path_len--;
	if (path_len > 4 && strncmp(path + path_len - 4, ".git", 4) == 0)
		path_len -= 4;
	if (!ui_html_url_part_ok(host, host_len, 0) || !ui_html_url_part_ok(path, path_len, 1) ||
	    strstr(path, "..") != NULL || path[0] == '/')
		return -1;
	buf_appendf(out, "%s://%.*s/%.*s%s%s", scheme, (int)host_len, host, (int)path_len, path, commit, sha);
	return 0;
}

void ui_html_trend_svg(struct buf *b, const char *label, const int64_t *ms, const int *failed, size_t n,
                       int width_px, int height_px)
{
	int64_t max = 1;
	const int pad = 4;
	double dx, h = height_px - 2 * pad;

	for (size_t i = 0; i < n; i++)
		if (ms[i] > max)
			max = ms[i];
	dx = n > 1 ? (double)(width_px - 2 * pad) / (double)(n - 1) : 0;
	buf_appendf(b,
	            "<svg class=\"trend\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	            "aria-label=\"",
	            width_px, height_px, width_px, height_px);
	ui_html_esc(b, label);
	buf_appendf(b, "\"><line class=\"axis\" x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", height_px - 1,
	            width_px, height_px - 1);
	if (n > 1) {
		buf_appendf(b, "<polyline class=\"line\" points=\"");
		for (size_t i = 0; i < n; i++)
			buf_appendf(b, "%s%.1f,%.1f", i ? " " : "", pad + dx * (double)i,
			            pad + h - h * (double)(ms[i] < 0 ? 0 : ms[i]) / (double)max);
		buf_appendf(b, "\"/>");
	}
	for (size_t i = 0; i < n; i++)
		buf_appendf(b, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>",
		            failed[i] ? "bad" : "ok", n > 1 ? pad + dx * (double)i : width_px / 2.0,
		            pad + h - h * (double)(ms[i] < 0 ? 0 : ms[i]) / (double)max);
	buf_appendf(b, "</svg>");
}

static int ui_html_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t ui_html_median_ms(int64_t *ms, size_t n)
{
	qsort(ms, n, sizeof(*ms), ui_html_cmp_i64);
	return n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
}
