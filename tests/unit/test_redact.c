/* Credentials in URLs: the one helper every URL leaving a process goes
 * through (issue 13). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/redact.h"

static void expect(const char *in, const char *want)
{
	char *got = redact_urls_dup(in);

	if (strcmp(got, want) != 0)
		fail_msg("redact \"%s\": got \"%s\", want \"%s\"", in, got, want);
	assert_int_equal(redact_urls_needed(in, strlen(in)), strcmp(in, want) != 0);
	free(got);
}

static void test_userinfo(void **state)
{
	(void)state;
	expect("https://bot:TOKEN@host/x.git", "https://***@host/x.git");
	expect("https://TOKEN@host/x.git", "https://***@host/x.git");
	expect("https://oauth2:glpat-abc@gitlab.example.com:8443/g/x.git",
	       "https://***@gitlab.example.com:8443/g/x.git");
	expect("ssh://git@host:22/x.git", "ssh://***@host:22/x.git");
	expect("http://u:p@host", "http://***@host");
	expect("https://u:p@host?x=1", "https://***@host?x=1");
	/* an unencoded '@' in the password: everything up to the last one goes */
	expect("https://bot:p@ss@host/x", "https://***@host/x");
}

static void test_no_userinfo(void **state)
{
	(void)state;
	expect("https://host/x.git", "https://host/x.git");
	expect("https://host/user@example.com/x.git", "https://host/user@example.com/x.git");
	expect("https://host/x?mail=a@b", "https://host/x?mail=a@b");
	expect("/srv/git/x.git", "/srv/git/x.git");
	expect("git@github.com:o/x.git", "git@github.com:o/x.git");
	expect("https://@host/x", "https://@host/x");
	expect("://a:b@host", "://a:b@host"); /* no scheme */
	expect("", "");
	assert_null(redact_urls_dup(NULL));
}

static void test_in_text(void **state)
{
	(void)state;
	expect("fetch https://bot:T0K@host/x.git: 401, retry https://bot:T0K@host/x.git",
	       "fetch https://***@host/x.git: 401, retry https://***@host/x.git");
	expect("url=\"https://a:b@h/x\" other=https://h/y mail a@b",
	       "url=\"https://***@h/x\" other=https://h/y mail a@b");
	expect("'https://a:b@h' (https://c:d@i)", "'https://***@h' (https://***@i)");
	expect("ends with https://a:b@h", "ends with https://***@h");
	expect("https://a:b@h\nhttps://c@d", "https://***@h\nhttps://***@d");
}

static void test_bytes(void **state)
{
	struct buf b = BUF_INIT;
	const char text[] = "x https://u:p@h/\0tail https://u:p@h";

	(void)state;
	redact_urls(&b, text, sizeof(text) - 1);
	assert_int_equal(b.len, sizeof("x https://***@h/\0tail https://***@h") - 1);
	assert_memory_equal(b.data, "x https://***@h/\0tail https://***@h", b.len);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_userinfo),
	    cmocka_unit_test(test_no_userinfo),
	    cmocka_unit_test(test_in_text),
	    cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
