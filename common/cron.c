#include "common/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CRON_MAX_EXPR_BYTES 200

struct cron_field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] stands for lo + i; NULL: numbers only */
};

static const char *const cron_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const cron_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct cron_field cron_fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},    {"month", 1, 12, cron_months},
    {"day of week", 0, 7, cron_days},
};

/* A number or a name of f at *p; advances *p. -1 when neither. */
static int cron_value(const struct cron_field *f, const char **p)
{
	const char *s = *p;

	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*p = s;
		return v > 1000 ? 1000 : (int)v;
	}
	for (int i = 0; f->names && f->names[i]; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*p = s + 3;
			return f->lo + i;
		}
	return -1;
}

/* One field's text (len bytes at s) into bits. */
static int cron_field_parse(const struct cron_field *f, const char *s, size_t len, uint64_t *bits, int *star,
                            struct err *err)
{
	char buf[CRON_MAX_EXPR_BYTES + 1];
	char *item, *save = NULL;

	memcpy(buf, s, len);
	buf[len] = '\0';
	*bits = 0;
	*star = strcmp(buf, "*") == 0;
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int a, b, step = 1;

		if (*p == '*') {
			a = f->lo, b = f->hi, p++;
		} else {
			if ((a = cron_value(f, &p)) < 0)
				return err_set(err, ERR_INVAL, "cron %s: '%s' is not a number%s", f->name,
				               item, f->names ? " or name" : "");
			b = a;
			if (*p == '-') {
				p++;
				if ((b = cron_value(f, &p)) < 0)
					return err_set(err, ERR_INVAL, "cron %s: bad range '%s'", f->name,
					               item);
			}
		}
		if (*p == '/') {
			const char *q = ++p;
			step = 0;
			while (isdigit((unsigned char)*p) && step <= 1000)
				step = step * 10 + (*p++ - '0');
			if (p == q || step < 1 || step > f->hi)
				return err_set(err, ERR_INVAL, "cron %s: bad step in '%s'", f->name, item);
			if (item[0] != '*' && strchr(item, '-') == NULL)
				b = f->hi; /* "5/15": from 5 to the end */
		}
		if (*p != '\0')
			return err_set(err, ERR_INVAL, "cron %s: unexpected '%s' in '%s'", f->name, p, item);
		if (a < f->lo || b > f->hi || a > b)
			return err_set(err, ERR_INVAL, "cron %s: '%s' is outside %d-%d", f->name, item, f->lo,
			               f->hi);
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << v;
	}
	if (*bits == 0)
		return err_set(err, ERR_INVAL, "cron %s: empty", f->name);
	return 0;
}

int cron_parse(struct cron *out, const char *expr, struct err *err)
{
	static const struct {
		const char *name, *expr;
	} macros[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
	              {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
	              {"@annually", "0 0 1 1 *"}};
	const char *p = expr;
	uint64_t bits[5];
	int star[5], n = 0;

	memset(out, 0, sizeof(*out));
	if (expr == NULL || strlen(expr) > CRON_MAX_EXPR_BYTES)
		return err_set(err, ERR_INVAL, "cron: an expression is at most %d bytes",
		               CRON_MAX_EXPR_BYTES);
	if (expr[0] == '@') {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (strcasecmp(expr, macros[i].name) == 0)
				return cron_parse(out, macros[i].expr, err);
		return err_set(
		    err, ERR_INVAL,
		    "cron: unknown '%s' (known: @hourly @daily @midnight @weekly @monthly @yearly)", expr);
	}
	for (;;) {
		size_t len;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, " \t");
		if (n == 5)
			return err_set(
			    err, ERR_INVAL,
			    "cron: more than 5 fields (minute hour day-of-month month day-of-week)");
		if (cron_field_parse(&cron_fields[n], p, len, &bits[n], &star[n], err) < 0)
			return -1;
		n++;
		p += len;
	}
	if (n != 5)
		return err_set(
		    err, ERR_INVAL,
		    "cron: expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint32_t)bits[3];
	out->dow = (uint32_t)(bits[4] & 0x7f) | ((bits[4] >> 7) & 1); /* 7 is Sunday */
	out->dom_star = star[2];
	out->dow_star = star[4];
	return 0;
}

static int cron_day_ok(const struct cron *c, const struct tm *t)
{
	int dom = (c->dom >> t->tm_mday) & 1, dow = (c->dow >> t->tm_wday) & 1;

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

int64_t cron_next(const struct cron *c, int64_t after_unix_s)
{
	time_t t = (time_t)(after_unix_s - after_unix_s % 60 + 60);
	time_t limit = t + (time_t)5 * 366 * 24 * 3600;
	struct tm tm;

	while (t < limit) {
		gmtime_r(&t, &tm);
		if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
			/* first minute of the next month */
			tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 0;
			tm.tm_mon++;
			t = timegm(&tm);
			continue;
		}
		if (!cron_day_ok(c, &tm)) {
			t += (time_t)(24 * 3600 - tm.tm_hour * 3600 - tm.tm_min * 60);
			continue;
		}
		if (!((c->hour >> tm.tm_hour) & 1)) {
			t += (time_t)(3600 - tm.tm_min * 60);
			continue;
		}
		if (!((c->minute >> tm.tm_min) & 1)) {
			t += 60;
			continue;
		}
		return (int64_t)t;
	}
	return -1;
}
