#include "common/units.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int units_parse_bytes(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t mul = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = 1024;
		end++;
		break;
	case 'M':
		mul = INT64_C(1024) * 1024;
		end++;
		break;
	case 'G':
		mul = INT64_C(1024) * 1024 * 1024;
		end++;
		break;
	case 'T':
		mul = INT64_C(1024) * 1024 * 1024 * 1024;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || v > INT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int units_format_bytes(char *buf, size_t size, int64_t bytes)
{
	static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int64_t unit = 1;
	size_t i = 0;

	while (i + 1 < sizeof(names) / sizeof(names[0]) && bytes / 1024 >= unit) {
		unit *= 1024;
		i++;
	}
	if (bytes % unit == 0)
		return snprintf(buf, size, "%lld %s", (long long)(bytes / unit), names[i]);
	return snprintf(buf, size, "%.1f %s", (double)bytes / (double)unit, names[i]);
}

void units_deadline_ts(struct timespec *out, clockid_t clock, int64_t ms)
{
	clock_gettime(clock, out);
	out->tv_sec += ms / 1000;
	out->tv_nsec += (ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}
