#ifndef ANVIL_LOG_H
#define ANVIL_LOG_H

#include <stddef.h>

/* Logging to stderr, one line per event, key=value fields. The level is set
 * once in main before threads start. Text from repositories must go through
 * log_escape before it reaches a line. */

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, enum log_level level);
int log_enabled(enum log_level level);

#define log_debug(...)                                                                                       \
	do {                                                                                                 \
		if (log_enabled(LOG_LVL_DEBUG))                                                              \
			log_emit(LOG_LVL_DEBUG, 0, __VA_ARGS__);                                             \
	} while (0)
#define log_info(...)                                                                                        \
	do {                                                                                                 \
		if (log_enabled(LOG_LVL_INFO))                                                               \
			log_emit(LOG_LVL_INFO, 0, __VA_ARGS__);                                              \
	} while (0)
/* log_warn appends strerror(errno); log_warnx does not. */
#define log_warn(...)  log_emit(LOG_LVL_WARN, 1, __VA_ARGS__)
#define log_warnx(...) log_emit(LOG_LVL_WARN, 0, __VA_ARGS__)

void log_emit(enum log_level level, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Start-up failures and broken invariants only; never on a request path. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define BUG(msg) fatalx("BUG %s:%d: %s", __FILE__, __LINE__, msg)

/* Copies s into out (size n) with control characters, quotes and backslashes
 * escaped and the result truncated to fit; returns out. */
char *log_escape(char *out, size_t n, const char *s);

#endif
