#include "common/curlbind.h"
#include "common/dynlib.h"
#include "common/gitbind.h"

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* In a child of its own (the bindings are process-wide): loads one binding
 * and reports whether OpenSSL's engines were set up (libssh2's init with
 * crypto does that) and whether OpenSSL still answers for a digest by name
 * (it initialises itself on first use). */
static void child_loads(int (*load)(struct err *), int *engines_out, int *digest_out)
{
	int fds[2], st, got[2] = {-1, -1};
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct err err = {0};
		void *c;
		void *(*engine_first)(void);
		const void *(*digest_by_name)(const char *);
		int r[2] = {-1, -1};

		if (load(&err) == 0 &&
		    (c = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) != NULL) {
			*(void **)&engine_first = dlsym(c, "ENGINE_get_first");
			*(void **)&digest_by_name = dlsym(c, "EVP_get_digestbyname");
			if (engine_first != NULL && digest_by_name != NULL) {
				r[0] = engine_first() != NULL;
				r[1] = digest_by_name("sha256") != NULL;
			}
		}
		_exit(write(fds[1], r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], got, sizeof(got)), (ssize_t)sizeof(got));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	*engines_out = got[0];
	*digest_out = got[1];
}

/* libcurl and libgit2 both bring libssh2, whose init with crypto pages in
 * ~1.5 MB of libcrypto for engines nobody uses: each binding initialises
 * libssh2 without crypto first (dynlib_libssh2_without_crypto). Debian's
 * libcurl and libgit2 link libssh2 over OpenSSL; the check is skipped
 * where they do not (libcrypto not mapped: got -1). */
static void test_libssh2_without_crypto(void **state)
{
	int (*loads[2])(struct err *) = {curlbind_load, gitbind_load};

	(void)state;
	for (int i = 0; i < 2; i++) {
		int engines, digest;

		child_loads(loads[i], &engines, &digest);
		if (engines < 0)
			continue;
		assert_int_equal(engines, 0);
		assert_int_equal(digest, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_library),        cmocka_unit_test(test_alternatives),
	    cmocka_unit_test(test_missing_symbol),         cmocka_unit_test(test_failing_init),
	    cmocka_unit_test(test_load_and_call),          cmocka_unit_test(test_concurrent_first_use),
	    cmocka_unit_test(test_libssh2_without_crypto),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
