/* Tests of common/gitsub.c: what a hostile .gitmodules may name. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/gitsub.h"

static void test_path(void **state)
{
	static const char *const good[] = {"lib", "third_party/zlib", "a b/c", ".github-x", "x.git2", NULL};
	static const char *const bad[] = {"",     "/etc", "../x", "a/../../x",    "a/./b",
	                                  "a//b", "a/",   ".git", "a/.GIT/hooks", ".git. ",
	                                  "..",   "a\\b", "a\nb", "x/.git",       NULL};

	(void)state;
	for (size_t i = 0; good[i] != NULL; i++)
		assert_true(gitsub_path_ok(good[i]));
	for (size_t i = 0; bad[i] != NULL; i++) {
		if (gitsub_path_ok(bad[i]))
			fail_msg("path '%s' accepted", bad[i]);
	}
}

static void test_key(void **state)
{
	static const char *const same[][2] = {
	    {"https://github.com/o/r.git", "git@github.com:o/r"},
	    {"https://bot:TOKEN@GitHub.com/o/r", "ssh://git@github.com/o/r.git"},
	    {"https://h/o/./x/../r.git/", "https://h/o/r"},
	    {"/srv/git/r.git", "file:///srv/git/r"},
	    {"/srv//git/./r.git", "/srv/git/r"},
	};
	static const char *const none[] = {"ext::sh -c cat% /etc/passwd",
	                                   "fd::17",
	                                   "ftp://h/r",
	                                   "r.git",
	                                   "file://host/r",
	                                   "/../..",
	                                   "https://h",
	                                   "https://h/../etc",
	                                   "https://h/a b",
	                                   NULL};
	char *a, *b;

	(void)state;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		a = gitsub_url_key(same[i][0]);
		b = gitsub_url_key(same[i][1]);
		assert_non_null(a);
		assert_non_null(b);
		if (strcmp(a, b) != 0)
			fail_msg("%s → %s but %s → %s", same[i][0], a, same[i][1], b);
		free(a);
		free(b);
	}
	for (size_t i = 0; none[i] != NULL; i++) {
		if ((a = gitsub_url_key(none[i])) != NULL)
			fail_msg("'%s' has key %s", none[i], a);
	}
	/* a local path never matches a network URL of the same path */
	a = gitsub_url_key("/h/o/r");
	b = gitsub_url_key("https://h/o/r");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void test_resolve(void **state)
{
	static const char *const cases[][3] = {
	    {"https://h/o/app.git", "../lib.git", "https://h/o/lib.git"},
	    {"https://h/o/app.git", "./lib", "https://h/o/app.git/lib"},
	    {"https://h/o/app.git/", "../../x/lib", "https://h/x/lib"},
	    {"git@h:o/app.git", "../lib.git", "git@h:o/lib.git"},
	    {"git@h:app.git", "../lib.git", "git@h:lib.git"},
	    {"/srv/git/app.git", "../lib.git", "/srv/git/lib.git"},
	    {"https://h/o/app.git", "https://other/x", "https://other/x"},
	};
	char *r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = gitsub_url_resolve(cases[i][0], cases[i][1]);
		assert_non_null(r);
		if (strcmp(r, cases[i][2]) != 0)
			fail_msg("%s + %s → %s, want %s", cases[i][0], cases[i][1], r, cases[i][2]);
		free(r);
	}
	assert_null(gitsub_url_resolve("https://h/o/app.git", "../../../x"));
	assert_null(gitsub_url_resolve("/app.git", "../../x"));
	assert_null(gitsub_url_resolve("git@h:o/app", "../../../x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_key),
	    cmocka_unit_test(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
