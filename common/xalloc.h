#ifndef ANVIL_XALLOC_H
#define ANVIL_XALLOC_H

#include <stddef.h>

/* Allocation that aborts on out-of-memory (as redis and tmux do): callers
 * never handle a NULL from these. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable NULL-terminated vector of owned strings (argv, envp). */
struct strv {
	char **v; /* v[n] == NULL always once anything was pushed */
	size_t n;
	size_t cap;
};
#define STRV_INIT                                                                                            \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}
void strv_push(struct strv *sv, const char *s); /* copies s */
void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_release(struct strv *sv);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT                                                                                             \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for extra more bytes (len unchanged): a caller filling
 * data + len itself, then adding to len, allocates before taking a lock. */
void buf_reserve(struct buf *b, size_t extra);
void buf_reset(struct buf *b);
/* Hands the data to the caller (free with free()); b is empty after. */
char *buf_detach(struct buf *b, size_t *len_out);
void buf_release(struct buf *b);

#endif
