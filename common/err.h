#ifndef ANVIL_ERR_H
#define ANVIL_ERR_H

/* The one error convention: functions return 0 or -1 and fill a caller's
 * struct err. Only the edges (HTTP layer, agent job loop, CLI main) turn an
 * err into words for a person. */

enum err_code {
	ERR_OK = 0,
	ERR_INVAL,     /* bad input from the caller: 400 */
	ERR_AUTH,      /* missing or wrong credentials: 401 */
	ERR_FORBIDDEN, /* authenticated but not allowed: 403 */
	ERR_NOTFOUND,  /* 404 */
	ERR_CONFLICT,  /* state or uniqueness conflict: 409 */
	ERR_LIMIT,     /* a size or count cap was crossed: 413 */
	ERR_UNAVAIL,   /* peer down, try again: 503 */
	ERR_SYS,       /* system or library failure: 500 */
};

struct err {
	enum err_code code;
	char msg[256];
};

/* Sets code and message; always returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *err, enum err_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like err_set, appending ": strerror(errno)". */
int err_errno(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message with context ("open db: <old msg>"); returns -1. */
int err_wrap(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *err);
const char *err_code_name(enum err_code code);

#endif
