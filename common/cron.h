#ifndef ANVIL_CRON_H
#define ANVIL_CRON_H

#include <stdint.h>
#include <time.h>

#include "common/err.h"

/* Standard 5-field cron expressions ("minute hour day-of-month month
 * day-of-week", UTC): numbers, '*', ranges a-b, lists a,b, steps * / n and
 * a-b/n, month names jan..dec and day names sun..sat (any case), 7 for
 * Sunday, and @hourly @daily @midnight @weekly @monthly @yearly @annually.
 * When both day fields are restricted, a day matching either is due (as
 * Vixie cron). Pure, any thread. */

struct cron {
	uint64_t minute; /* bit m: minute m (0..59) */
	uint32_t hour;   /* 0..23 */
	uint32_t dom;    /* 1..31 */
	uint32_t month;  /* 1..12 */
	uint32_t dow;    /* 0..6, Sunday 0 */
	int dom_star, dow_star;
};

/* ERR_INVAL naming the field and what is wrong in it. */
int cron_parse(struct cron *out, const char *expr, struct err *err);
/* The first due minute strictly after after_unix_s (whole minutes, UTC);
 * -1 when none within five years (e.g. "0 0 30 2 *"). */
int64_t cron_next(const struct cron *c, int64_t after_unix_s);

#endif
