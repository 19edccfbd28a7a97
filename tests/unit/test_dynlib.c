#include "common/dynlib.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* libm stands in for the bound libraries: always present, and its
 * functions' results are easy to check. */
static const char *const names_ok[] = {"cos", "sqrt"};
static const char *const names_bad[] = {"cos", "anvil_no_such_function"};

static atomic_int init_calls;
static int count_init(struct err *err)
{
	(void)err;
	atomic_fetch_add(&init_calls, 1);
	return 0;
}

static int failing_init(struct err *err)
{
	return err_set(err, ERR_SYS, "init said no");
}

static void test_missing_library(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libanvil-no-such-library.so.0", names_ok, slots, NULL);
	struct err err = {0};

	(void)state;
	assert_int_equal(dynlib_load(&l, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "cannot load libanvil-no-such-library.so.0"));
	assert_int_equal(dynlib_is_loaded(&l), 0);
	err_clear(&err);
	assert_int_equal(dynlib_load(&l, &err), -1); /* tried again, fails again */
	assert_int_equal(err.code, ERR_SYS);
}

/* Alternatives: the first that loads wins; none: all are named. */
static void test_alternatives(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libanvil-no-such-library.so.0 libm.so.6", names_ok, slots, NULL);
	struct dynlib none = DYNLIB_INIT("libanvil-nope.so.1  libanvil-nope.so.2", names_ok, slots, NULL);
	struct err err = {0};
	double (*fcos)(double);

	(void)state;
	assert_int_equal(dynlib_load(&l, &err), 0);
	*(void **)&fcos = dynlib_slot(&l, 0);
	assert_true(fcos(0.0) == 1.0);
	assert_int_equal(dynlib_load(&none, &err), -1);
	assert_non_null(
	    strstr(err.msg, "cannot load libanvil-nope.so.1  libanvil-nope.so.2: libanvil-nope.so.2"));
}

static void test_missing_symbol(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libm.so.6", names_bad, slots, NULL);
	struct err err = {0};

	(void)state;
	assert_int_equal(dynlib_load(&l, &err), -1);
	assert_non_null(strstr(err.msg, "libm.so.6 has no anvil_no_such_function"));
	assert_int_equal(dynlib_is_loaded(&l), 0);
}

static void test_failing_init(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libm.so.6", names_ok, slots, failing_init);
	struct err err = {0};

	(void)state;
	assert_int_equal(dynlib_load(&l, &err), -1);
	assert_non_null(strstr(err.msg, "libm.so.6: init said no"));
	assert_int_equal(dynlib_is_loaded(&l), 0);
}

static void test_load_and_call(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libm.so.6", names_ok, slots, count_init);
	struct err err = {0};
	double (*fsqrt)(double);

	(void)state;
	atomic_store(&init_calls, 0);
	assert_int_equal(dynlib_is_loaded(&l), 0);
	assert_int_equal(dynlib_load(&l, &err), 0);
	assert_int_equal(dynlib_load(&l, &err), 0);
	assert_int_equal(atomic_load(&init_calls), 1);
	assert_int_equal(dynlib_is_loaded(&l), 1);
	*(void **)&fsqrt = dynlib_slot(&l, 1);
	assert_true(fsqrt(81.0) == 9.0);
}

struct race {
	struct dynlib *l;
	int rc;
};

static void *race_load(void *arg)
{
	struct race *r = arg;
	struct err err = {0};

	r->rc = dynlib_load(r->l, &err);
	return NULL;
}

/* Many threads' first use at once: one load, one init, every caller sees
 * the filled table. */
static void test_concurrent_first_use(void **state)
{
	void *slots[2];
	struct dynlib l = DYNLIB_INIT("libm.so.6", names_ok, slots, count_init);
	pthread_t th[8];
	struct race r[8];

	(void)state;
	atomic_store(&init_calls, 0);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct race){&l, -2};
		assert_int_equal(pthread_create(&th[i], NULL, race_load, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].rc, 0);
	}
	assert_int_equal(atomic_load(&init_calls), 1);
	assert_non_null(dynlib_slot(&l, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_library), cmocka_unit_test(test_alternatives),
	    cmocka_unit_test(test_missing_symbol),  cmocka_unit_test(test_failing_init),
	    cmocka_unit_test(test_load_and_call),   cmocka_unit_test(test_concurrent_first_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
