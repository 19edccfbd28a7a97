#include "common/log.h"
#include "common/redact.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Written once by log_init in main before any thread starts, read-only after. */
static const char *log_progname = "anvil";
static enum log_level log_level_set = LOG_LVL_INFO;

void log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_level_set = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level_set;
}

static void log_vemit(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char line[2048];
	size_t n;
	int saved = errno;
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s level=%s ", ts.tv_nsec / 1000000, log_progname,
	              names[level]);
	if (n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (with_errno && n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (redact_urls_needed(line, n)) {
		/* A credential in a URL never reaches a log line. */
		struct buf b = BUF_INIT;
		redact_urls(&b, line, n);
		fwrite(b.data, 1, b.len, stderr);
		buf_release(&b);
	} else {
		fwrite(line, 1, n, stderr);
	}
	errno = saved;
}

void log_emit(enum log_level level, int with_errno, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vemit(level, with_errno, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

char *log_escape(char *out, size_t n, const char *s)
{
	size_t o = 0;

	if (n == 0)
		return out;
	for (; s != NULL && *s != '\0' && o + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}
