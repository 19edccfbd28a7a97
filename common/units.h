#ifndef ANVIL_UNITS_H
#define ANVIL_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Units shared by the daemons: sizes given by people, and deadlines for
 * condition-variable waits. */

/* "1234", "64K", "512M", "10G", "1T" (an optional "i" and "B" after the
 * suffix: "64KiB"), powers of 1024. -1 for anything else, a negative number
 * or an overflow. */
int units_parse_bytes(const char *s, int64_t *out);

/* Writes a size for people into buf: "4 GiB", "64 MiB", "1.5 GiB",
 * "512 B" (the largest power-of-1024 unit it reaches, one decimal when not
 * whole). Returns what snprintf returns. */
int units_format_bytes(char *buf, size_t size, int64_t bytes);

/* *out = now on clock + ms, normalised: the absolute time
 * pthread_cond_timedwait takes (the condvar must use the same clock). */
void units_deadline_ts(struct timespec *out, clockid_t clock, int64_t ms);

#endif
