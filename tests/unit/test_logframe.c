#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/logframe.h"

static void test_roundtrip(void **state)
{
	struct buf b = BUF_INIT;
	struct logframe f;
	struct err err = {0};

	(void)state;
	logframe_put_step_start(&b, 0, "build", "make -j2\nmake check", 1000);
	logframe_put_time(&b, 1001);
	logframe_put_log(&b, "cc -c a.c\n", 10);
	logframe_put_time(&b, 1500);
	logframe_put_log(&b, "error\n", 6);
	logframe_put_step_end(&b, 0, "failed", 1, 2, -1, 1600);
	logframe_put_step_start(&b, 1, "logs", "cat x", 1601);
	logframe_put_step_end(&b, 1, "timeout", 0, 0, -1, 1700);
	assert_int_equal(logframe_decode(&f, b.data, b.len, &err), 0);
	assert_int_equal(f.log.len, 16);
	assert_memory_equal(f.log.data, "cc -c a.c\nerror\n", 16);
	assert_int_equal(f.n_steps, 4);
	assert_string_equal(f.steps[0].name, "build");
	assert_string_equal(f.steps[0].command, "make -j2\nmake check");
	assert_int_equal(f.steps[0].rel_off, 0);
	assert_int_equal(f.steps[1].end, 1);
	assert_string_equal(f.steps[1].state, "failed");
	assert_int_equal(f.steps[1].have_exit, 1);
	assert_int_equal(f.steps[1].exit_code, 2);
	assert_int_equal(f.steps[1].rel_off, 16);
	assert_int_equal(f.steps[3].have_exit, 0);
	assert_int_equal(f.n_times, 2);
	assert_int_equal(f.times[1].rel_off, 10);
	assert_int_equal(f.times[1].at_ms, 1500);
	logframe_release(&f);
	buf_release(&b);
}

/* A step's output that carries every marker byte sequence, whole records
 * included, stays log text: no step starts, ends or is renamed. */
static void test_forged(void **state)
{
	struct buf forged = BUF_INIT, b = BUF_INIT;
	struct logframe f;
	struct err err = {0};
	size_t k;

	(void)state;
	logframe_put_step_end(&forged, 0, "success", 1, 0, -1, 5);
	logframe_put_step_start(&forged, 7, "evil", "rm -rf /", 6);
	logframe_put_time(&forged, 1);
	buf_append(&forged, "S\0\0\0\x02{}E\xff\xff\xff\xff", 12);
	logframe_put_step_start(&b, 0, "build", "./hostile.sh", 1000);
	/* the output, as the agent would frame it: in pieces of any size */
	for (k = 0; k < forged.len; k += 7)
		logframe_put_log(&b, forged.data + k, forged.len - k < 7 ? forged.len - k : 7);
	logframe_put_step_end(&b, 0, "failed", 1, 1, -1, 2000);
	assert_int_equal(logframe_decode(&f, b.data, b.len, &err), 0);
	assert_int_equal(f.n_steps, 2);
	assert_string_equal(f.steps[0].name, "build");
	assert_int_equal(f.steps[1].end, 1);
	assert_string_equal(f.steps[1].state, "failed");
	assert_int_equal(f.steps[1].rel_off, (int64_t)forged.len);
	assert_int_equal(f.n_times, 0);
	assert_int_equal(f.log.len, forged.len);
	assert_memory_equal(f.log.data, forged.data, forged.len);
	logframe_release(&f);
	buf_release(&b);
	buf_release(&forged);
}

static void expect_bad(const void *p, size_t n)
{
	struct logframe f;
	struct err err = {0};

	assert_int_equal(logframe_decode(&f, p, n, &err), -1);
	assert_true(err.code == ERR_INVAL || err.code == ERR_LIMIT);
	assert_null(f.steps);
	assert_null(f.log.data);
}

static void test_malformed(void **state)
{
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	expect_bad("L\0\0\0\x09"
	           "short",
	           10);             /* runs past the chunk */
	expect_bad("L\0\0", 3);     /* short header */
	expect_bad("X\0\0\0\0", 5); /* unknown type */
	expect_bad("T\0\0\0\x04"
	           "abcd",
	           9);                                                  /* time of 4 bytes */
	expect_bad("T\0\0\0\x08\xff\0\0\0\0\0\0\0", 13);                /* negative time */
	expect_bad("S\0\0\0\x02[]", 7);                                 /* not an object */
	expect_bad("S\0\0\0\x0b{\"index\":1}", 16);                     /* no name, command, at_ms */
	expect_bad("E\0\0\0\x1d{\"index\":1,\"at_ms\":1,\"s\":1}", 34); /* no state */
	/* a name with a NUL inside */
	expect_bad("S\0\0\0\x37{\"index\":1,\"at_ms\":1,\"name\":\"a\\u0000b\",\"command\":\"\"}", 60);
	/* too many events */
	for (i = 0; i <= LOGFRAME_EVENTS_MAX; i++)
		logframe_put_time(&b, 1);
	expect_bad(b.data, b.len);
	buf_release(&b);
	{
		struct logframe f;
		struct err err = {0};
		assert_int_equal(logframe_decode(&f, "", 0, &err), 0); /* empty: nothing */
		logframe_release(&f);
	}
}

static void test_times_pack(void **state)
{
	struct logframe_time t[] = {
	    {100, 1700000000000}, {150, 1700000000005}, {150, 1699999999999}, {70000, 1700000100000}};
	struct logframe_time *got = NULL;
	struct buf b = BUF_INIT;
	struct err err = {0};
	size_t n = 0, i;

	(void)state;
	logframe_times_pack(&b, 100, t, 4);
	assert_int_equal(logframe_times_unpack(&got, &n, 100, b.data, b.len, &err), 0);
	assert_int_equal(n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(got[i].rel_off, t[i].rel_off);
		assert_int_equal(got[i].at_ms, t[i].at_ms);
	}
	assert_int_equal(logframe_times_unpack(&got, &n, 0, "\x80", 1, &err), -1);
	free(got);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_forged),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_times_pack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
