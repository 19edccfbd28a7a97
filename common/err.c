#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *err, enum err_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int err_errno(struct err *err, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = ERR_SYS;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

int err_wrap(struct err *err, const char *fmt, ...)
{
	char joined[3 * sizeof(err->msg)];
	size_t n;
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(joined, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(joined);
	memcpy(joined + n, ": ", 2);
	memcpy(joined + n + 2, err->msg, sizeof(err->msg));
	joined[sizeof(joined) - 1] = '\0';
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return -1;
}

void err_clear(struct err *err)
{
	err->code = ERR_OK;
	err->msg[0] = '\0';
}

const char *err_code_name(enum err_code code)
{
	switch (code) {
	case ERR_OK:
		return "ok";
	case ERR_INVAL:
		return "invalid";
	case ERR_AUTH:
		return "unauthorized";
	case ERR_FORBIDDEN:
		return "forbidden";
	case ERR_NOTFOUND:
		return "not_found";
	case ERR_CONFLICT:
		return "conflict";
	case ERR_LIMIT:
		return "too_large";
	case ERR_UNAVAIL:
		return "unavailable";
	case ERR_SYS:
		return "internal";
	}
	return "internal";
}
