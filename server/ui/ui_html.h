#ifndef ANVIL_UI_HTML_H
#define ANVIL_UI_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "common/logframe.h"
#include "common/xalloc.h"

/* HTML building blocks of the web UI: the one escaping function every piece
 * of repository text goes through, the ANSI log renderer, time formatting
 * and the SVG badge. Pure functions over a struct buf: no I/O, any thread. */

/* Appends s with & < > " ' escaped; NULL appends nothing. Control
 * characters other than tab and newline become U+FFFD so that no raw escape
 * byte reaches a page. */
void ui_html_esc(struct buf *b, const char *s);
void ui_html_escn(struct buf *b, const char *s, size_t n);

/* SGR state carried from one log line to the next: foreground and
 * background colour as an xterm palette index (-1 default, 0..7 normal,
 * 8..15 bright, 16..255 the 256-colour palette; a truecolor RGB becomes the
 * nearest palette entry, since the page's CSP allows no inline style) and
 * bold. Encoded as one small integer, 0..UI_ANSI_PACK_MAX (ui_ansi_pack), to
 * resume a live stream after a page render. */
struct ui_ansi {
	int fg;
	int bg;
	int bold;
};
#define UI_ANSI_INIT                                                                                         \
	{                                                                                                    \
		-1, -1, 0                                                                                    \
	}
#define UI_ANSI_PACK_MAX ((256 * 257 + 256) * 2 + 1)
int ui_ansi_pack(const struct ui_ansi *st);
/* Out-of-range values unpack as the default state. */
void ui_ansi_unpack(int v, struct ui_ansi *st);

/* Renders log bytes as HTML lines, one <div class="l" id="L<n>"> each with a
 * line-number link (#L<n>, not a tab stop) and the text escaped; SGR 30-37,
 * 90-97, 39 (foreground), 40-47, 100-107, 49 (background), 38;5;N, 48;5;N,
 * 38;2;R;G;B, 48;2;R;G;B, 1, 22 and 0 become spans with classes (cN
 * foreground, gN background, b bold); every other escape sequence (as
 * common/mask.c's mask_ignorable() delimits it, so that what is dropped
 * between two halves of a secret was skipped by the mask too) is dropped.
 * A line holding '\r' shows only its last frame, as a terminal would (a
 * progress bar's final state; a trailing '\r' erases nothing); other control
 * bytes are shown as U+FFFD. A last line without '\n' is rendered as a line
 * too (callers pass complete lines unless the log is final). *line_no is the
 * number of the previous line (0 at the start) and is advanced; *st carries
 * the colour across lines. Emits no '\n' (safe as one SSE data line). */
void ui_html_log(struct buf *out, const char *data, size_t n, struct ui_ansi *st, int64_t *line_no);

/* ui_html_log with options: line ids (and links) "<id_prefix>L<n>" (a
 * step's lines: "s2-L7"), and with times (absolute offsets, by offset; see
 * common/logframe.h) each line gets <span class="ts">HH:MM:SS.mmm</span>
 * (UTC) of the last mark at or before its first byte, base_off being the
 * log offset of data[0]. */
struct ui_log_opts {
	const char *id_prefix; /* NULL: "" */
	const struct logframe_time *times;
	size_t n_times;
	int64_t base_off;
};
void ui_html_log_ex(struct buf *out, const char *data, size_t n, struct ui_ansi *st, int64_t *line_no,
                    const struct ui_log_opts *o);

/* How many of n log bytes to render now: up to the last '\n', or all when
 * final or when n >= force_bytes without any newline (one huge line). */
size_t ui_html_log_cut(const char *data, size_t n, int final, size_t force_bytes);

/* "1h 2m", "3m 4s", "5.6s": a duration for people. */
void ui_html_duration(struct buf *b, int64_t ms);

/* Appends s percent-escaped for a URL path: unreserved characters and '/'
 * stay, every other byte becomes %XX (so the result is also HTML-safe). */
void ui_html_url(struct buf *b, const char *s);

/* The branch or tag name of a ref (refs/heads/x → x, refs/tags/v1 → v1),
 * borrowed from ref. */
const char *ui_html_ref_short(const char *ref);

/* A shields-style SVG badge "label | message" in colour (a #rrggbb
 * literal). label and message are escaped. */
void ui_html_badge_svg(struct buf *b, const char *label, const char *message, const char *colour);

/* The forge's web page of a commit, from a repository's forge kind
 * (github, gitea, gitlab) and clone URL (https://[user@]host/path[.git],
 * ssh://[user@]host[:port]/path[.git] or user@host:path[.git]): appended to
 * out as https://host/path/commit/SHA (GitLab: /-/commit/; http:// for
 * an http:// clone URL, https:// for SSH ones). 0 when made;
 * -1 (out untouched) for another forge, a clone URL of another shape, a
 * host or path with characters a URL should not hold, or a sha that is not
 * hex. The credentials of a clone URL never reach out. */
int ui_html_forge_commit_url(struct buf *out, const char *forge, const char *clone_url, const char *sha);

/* A duration trend, oldest point first: an inline SVG (no style, no
 * script) of width_px, one point per run, its height the run's duration;
 * failed[i] non-zero marks a failed run (class "bad"), else "ok". label is
 * the image's accessible name (escaped). n may be 0 (an empty frame). */
void ui_html_trend_svg(struct buf *b, const char *label, const int64_t *ms, const int *failed, size_t n,
                       int width_px, int height_px);

/* The median of n durations (n > 0; ms is reordered). */
int64_t ui_html_median_ms(int64_t *ms, size_t n);

#endif
