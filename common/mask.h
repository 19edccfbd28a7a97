#ifndef ANVIL_MASK_H
#define ANVIL_MASK_H

#include <stddef.h>

#include "common/xalloc.h"

/* Masking secret values in a stream of log bytes: every occurrence becomes
 * "***", also when a value arrives split across two reads. A tail that may
 * be the start of a secret is held back (at most the longest secret's length
 * minus one bytes) until the next feed or the flush at the step's end. */

struct mask {
	struct strv secrets; /* longest first; empty values are dropped */
	size_t max_len;
	unsigned char first[256]; /* first[c]: some secret starts with byte c */
	struct buf pending;       /* the held-back tail */
};

/* values: n strings (borrowed, copied). */
void mask_init(struct mask *m, const char *const *values, size_t n);
void mask_release(struct mask *m);
/* Appends p (n bytes) to out with secrets replaced, minus the held tail. */
void mask_feed(struct mask *m, const void *p, size_t n, struct buf *out);
/* Appends the held tail (masked where whole secrets are) and empties it. */
void mask_flush(struct mask *m, struct buf *out);
/* Bytes held back now. */
size_t mask_pending(const struct mask *m);

#endif
