#include "common/mask.h"

#include <stdlib.h>
#include <string.h>

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

/* Masks data[0..len) into out. Unless final, a tail that is a proper
 * prefix of a secret is not emitted: its offset is returned. */
static size_t mask_scan(const struct mask *m, const char *data, size_t len, int final, struct buf *out)
{
	size_t i = 0, run = 0;

	while (i < len) {
		int hit = 0, hold = 0;

		if (m->first[(unsigned char)data[i]]) {
			/* Longest first: a longer secret that may still be
			 * completing wins over a shorter one matching now. */
			for (size_t k = 0; k < m->secrets.n && !hit && !hold; k++) {
				const char *s = m->secrets.v[k];
				size_t sl = strlen(s);

				if (len - i >= sl)
					hit = memcmp(data + i, s, sl) == 0 ? (int)k + 1 : 0;
				else
					hold = !final && memcmp(data + i, s, len - i) == 0;
			}
		}
		if (hit) {
			buf_append(out, data + run, i - run);
			buf_append(out, "***", 3);
			i += strlen(m->secrets.v[hit - 1]);
			run = i;
			continue;
		}
		if (hold) {
			buf_append(out, data + run, i - run);
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
