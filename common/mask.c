#include "common/mask.h"

#include <stdlib.h>
#include <string.h>

enum mask_result { MASK_NO, MASK_YES, MASK_MORE };

static int mask_cmp_len(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

void mask_init(struct mask *m, const char *const *values, size_t n)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		size_t len = values[i] ? strlen(values[i]) : 0;
		if (len == 0)
			continue;
		strv_push(&m->secrets, values[i]);
		m->first[(unsigned char)values[i][0]] = 1;
		if (len > m->max_len)
			m->max_len = len;
	}
	if (m->secrets.n > 1)
		qsort(m->secrets.v, m->secrets.n, sizeof(char *), mask_cmp_len);
}

void mask_release(struct mask *m)
{
	strv_release(&m->secrets);
	if (m->pending.data != NULL)
		memset(m->pending.data, 0, m->pending.cap);
	buf_release(&m->pending);
	memset(m, 0, sizeof(*m));
}

size_t mask_pending(const struct mask *m)
{
	return m->pending.len;
}

/* The UI's renderer (ui_html_line() in server/ui_html.c) drops what this
 * calls an escape sequence, within a line: '\n' plays the line's end. */
size_t mask_ignorable(const char *data, size_t len, int *more)
{
	unsigned char c = (unsigned char)data[0];
	size_t i;

	*more = 0;
	if (len == 0 || c == '\n')
		return 0;
	if (c != 0x1b)
		return c < 0x20 || c == 0x7f ? 1 : 0;
	if (len < 2) {
		*more = 1;
		return len;
	}
	if (data[1] == '\n')
		return 1;
	if (data[1] == '[') {
		for (i = 2; i < len && data[i] != '\n'; i++) {
			c = (unsigned char)data[i];
			if (c >= 0x40 && c <= 0x7e)
				return i + 1;
		}
		*more = i == len;
		return i;
	}
	if (data[1] == ']' || data[1] == 'P' || data[1] == '_' || data[1] == '^') {
		for (i = 2; i < len && data[i] != '\n'; i++) {
			if (data[i] == '\a')
				return i + 1;
			if (data[i] == 0x1b && i + 1 < len && data[i + 1] == '\\')
				return i + 2;
		}
		*more = i == len;
		return i;
	}
	/* ESC, intermediate bytes (0x20-0x2f: "ESC ( B"), one final byte */
	for (i = 1; i < len && data[i] != '\n'; i++) {
		c = (unsigned char)data[i];
		if (c < 0x20 || c > 0x2f)
			return i + 1;
	}
	*more = i == len;
	return i;
}

/* Whether secret s (sl bytes) starts at data[0], ignorable runs skipped
 * after its first byte; *end is the span's length on MASK_YES. MASK_MORE:
 * the data ends before it can tell (never when final). */
static enum mask_result mask_match(const char *s, size_t sl, const char *data, size_t len, int final,
                                   size_t *end)
{
	size_t j = 0, k = 0;

	while (k < sl) {
		size_t ig;
		int more;

		if (j >= len)
			return final ? MASK_NO : MASK_MORE;
		if (data[j] == s[k]) {
			j++;
			k++;
			continue;
		}
		if (k == 0 || (ig = mask_ignorable(data + j, len - j, &more)) == 0)
			return MASK_NO;
		if (more)
			return final ? MASK_NO : MASK_MORE;
		j += ig;
	}
	*end = j;
	return MASK_YES;
}

/* Masks data[0..len) into out. Unless final, a tail that may be the start
 * of a secret is not emitted: its offset is returned. */
static size_t mask_scan(const struct mask *m, const char *data, size_t len, int final, struct buf *out)
{
	size_t i = 0, run = 0;

	while (i < len) {
		size_t end = 0;
		int hit = 0, hold = 0;

		if (m->first[(unsigned char)data[i]]) {
			/* Longest first: a longer secret that may still be
			 * completing wins over a shorter one matching now. */
			for (size_t k = 0; k < m->secrets.n && !hit && !hold; k++) {
				const char *s = m->secrets.v[k];
				enum mask_result r = mask_match(s, strlen(s), data + i, len - i, final, &end);

				hit = r == MASK_YES;
				hold = r == MASK_MORE;
			}
		}
		if (hit) {
			buf_append(out, data + run, i - run);
			buf_append(out, "***", 3);
			i += end;
			run = i;
			continue;
		}
		if (hold) {
			buf_append(out, data + run, i - run);
			if (len - i > m->max_len + MASK_IGNORABLE_MAX) {
				/* Too long to wait for: hidden rather than risked. */
				buf_append(out, "***", 3);
				return len;
			}
			return i;
		}
		i++;
	}
	buf_append(out, data + run, len - run);
	return len;
}

void mask_feed(struct mask *m, const void *p, size_t n, struct buf *out)
{
	struct buf all = BUF_INIT;
	size_t used;

	if (m->secrets.n == 0) {
		buf_append(out, p, n);
		return;
	}
	buf_append(&all, m->pending.data ? m->pending.data : "", m->pending.len);
	buf_append(&all, p, n);
	used = mask_scan(m, all.data ? all.data : "", all.len, 0, out);
	if (m->pending.data != NULL)
		memset(m->pending.data, 0, m->pending.cap);
	buf_reset(&m->pending);
	if (used < all.len)
		buf_append(&m->pending, all.data + used, all.len - used);
	if (all.data != NULL)
		memset(all.data, 0, all.cap);
	buf_release(&all);
}

void mask_flush(struct mask *m, struct buf *out)
{
	if (m->pending.len == 0)
		return;
	mask_scan(m, m->pending.data, m->pending.len, 1, out);
	memset(m->pending.data, 0, m->pending.cap);
	buf_reset(&m->pending);
}
