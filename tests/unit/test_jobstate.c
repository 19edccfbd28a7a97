/* The job state machine: which transitions exist and how a pipeline's state
 * follows from its jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/sched/jobstate.h"

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int s = JOB_QUEUED; s <= JOB_ERROR; s++) {
		enum job_state back;
		assert_int_equal(jobstate_parse(jobstate_name((enum job_state)s), &back), 0);
		assert_int_equal(back, s);
	}
	enum job_state x;
	assert_int_equal(jobstate_parse("bogus", &x), -1);
	assert_int_equal(jobstate_parse(NULL, &x), -1);
}

static void test_transitions(void **state)
{
	(void)state;
	assert_true(jobstate_can_move(JOB_QUEUED, JOB_RUNNING));
	assert_true(jobstate_can_move(JOB_QUEUED, JOB_CANCELED));
	assert_false(jobstate_can_move(JOB_QUEUED, JOB_SUCCESS));
	assert_false(jobstate_can_move(JOB_QUEUED, JOB_FAILED));
	assert_true(jobstate_can_move(JOB_RUNNING, JOB_SUCCESS));
	assert_true(jobstate_can_move(JOB_RUNNING, JOB_FAILED));
	assert_true(jobstate_can_move(JOB_RUNNING, JOB_CANCELED));
	assert_true(jobstate_can_move(JOB_RUNNING, JOB_ERROR));
	assert_true(jobstate_can_move(JOB_RUNNING, JOB_QUEUED)); /* lease ran out */
	for (int f = JOB_SUCCESS; f <= JOB_ERROR; f++) {
		assert_true(jobstate_is_final((enum job_state)f));
		for (int t = JOB_QUEUED; t <= JOB_ERROR; t++)
			assert_false(jobstate_can_move((enum job_state)f, (enum job_state)t));
	}
	assert_false(jobstate_is_final(JOB_QUEUED));
	assert_false(jobstate_is_final(JOB_RUNNING));
}

static void test_aggregate(void **state)
{
	enum job_state a[] = {JOB_SUCCESS, JOB_FAILED, JOB_RUNNING};
	enum job_state b[] = {JOB_SUCCESS, JOB_QUEUED, JOB_FAILED};
	enum job_state c[] = {JOB_CANCELED, JOB_FAILED, JOB_ERROR};
	enum job_state d[] = {JOB_CANCELED, JOB_FAILED, JOB_SUCCESS};
	enum job_state e[] = {JOB_SUCCESS, JOB_SUCCESS};
	enum job_state f[] = {JOB_CANCELED, JOB_SUCCESS};

	(void)state;
	assert_int_equal(jobstate_aggregate(a, 3), JOB_RUNNING);
	assert_int_equal(jobstate_aggregate(b, 3), JOB_QUEUED);
	assert_int_equal(jobstate_aggregate(c, 3), JOB_ERROR);
	assert_int_equal(jobstate_aggregate(d, 3), JOB_FAILED);
	assert_int_equal(jobstate_aggregate(e, 2), JOB_SUCCESS);
	assert_int_equal(jobstate_aggregate(f, 2), JOB_CANCELED);
	assert_int_equal(jobstate_aggregate(NULL, 0), JOB_SUCCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_round_trip),
	    cmocka_unit_test(test_transitions),
	    cmocka_unit_test(test_aggregate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
