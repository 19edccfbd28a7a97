#ifndef ANVIL_MASK_H
#define ANVIL_MASK_H

#include <stddef.h>

#include "common/xalloc.h"

/* Masking secret values in a stream of log bytes: every occurrence becomes
 * "***", also when a value arrives split across two reads.
 *
 * A secret also matches when bytes a viewer never sees sit inside it:
 * escape sequences (CSI "ESC [ ... final", OSC/DCS/APC/PM "ESC ] ... BEL or
 * ESC \", other escapes "ESC, bytes 0x20-0x2f, one final byte"), C0 control
 * bytes other than '\n' ('\r', '\b', '\t', ...) and DEL. The web UI's
 * renderer (server/ui_html.c) drops or replaces exactly these, so it cannot
 * join the pieces of a secret that the mask let through; the whole span,
 * ignorable bytes included, becomes "***".
 * A '\n' ends an unterminated sequence, as a line ends it in the renderer.
 *
 * A tail that may be the start of a secret is held back until the next feed
 * or the flush at the step's end: at most the longest secret's length minus
 * one bytes plus the ignorable bytes inside it, and never more than
 * max_len + MASK_IGNORABLE_MAX bytes: a candidate longer than that (a secret's
 * start followed by kilobytes of escape sequences) is masked as it stands. */

#define MASK_IGNORABLE_MAX 4096

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

/* Length of the ignorable run (see above) starting at data[0], 0 when
 * data[0] is shown. *more is set when the run may go on past len (an
 * escape sequence not yet terminated); then the length returned is len. */
size_t mask_ignorable(const char *data, size_t len, int *more);

#endif
