#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cron.h"

/* 2026-12-07 00:10:30 UTC, a Monday. */
#define T0 1796602230

static int64_t next_of(const char *expr, int64_t after)
{
	struct cron c;
	struct err err = {0};

	if (cron_parse(&c, expr, &err) < 0)
		fail_msg("%s: %s", expr, err.msg);
	return cron_next(&c, after);
}

static void test_next(void **state)
{
	(void)state;
	assert_int_equal(next_of("* * * * *", T0), T0 - 30 + 60);
	assert_int_equal(next_of("*/15 * * * *", T0), T0 - 630 + 900);
	assert_int_equal(next_of("0 3 * * *", T0), T0 - 630 + 3 * 3600);
	assert_int_equal(next_of("@daily", T0), T0 - 630 + 24 * 3600);
	assert_int_equal(next_of("0 0 * * sun", T0), T0 - 630 + 6 * 24 * 3600);
	assert_int_equal(next_of("0 0 * * 7", T0), T0 - 630 + 6 * 24 * 3600);
	assert_int_equal(next_of("30 1-2,5 * * MON-fri", T0), T0 - 630 + 3600 + 1800);
	assert_int_equal(next_of("0 0 1 jan *", T0), 1798761600); /* 2027-01-01 */
	/* Both day fields restricted: either day is due (the 8th, a Tuesday). */
	assert_int_equal(next_of("0 0 13 * tue", T0), T0 - 630 + 24 * 3600);
	assert_int_equal(next_of("0 0 30 2 *", T0), -1);
}

static void test_errors(void **state)
{
	static const struct {
		const char *expr, *msg;
	} bad[] = {
	    {"* * * *", "expected 5 fields"},
	    {"* * * * * *", "more than 5 fields"},
	    {"60 * * * *", "cron minute: '60' is outside 0-59"},
	    {"* 5-2 * * *", "cron hour: '5-2' is outside 0-23"},
	    {"*/0 * * * *", "cron minute: bad step"},
	    {"* * * foo *", "cron month: 'foo' is not a number or name"},
	    {"* * 0 * *", "outside 1-31"},
	    {"@often", "unknown '@often'"},
	    {"1,,2 * * * *", NULL},
	    {"x * * * *", "cron minute: 'x' is not a number"},
	};
	struct cron c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err err = {0};
		if (cron_parse(&c, bad[i].expr, &err) == 0 && bad[i].msg != NULL)
			fail_msg("'%s' parsed", bad[i].expr);
		if (bad[i].msg && strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("'%s': %s", bad[i].expr, err.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_next), cmocka_unit_test(test_errors)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
