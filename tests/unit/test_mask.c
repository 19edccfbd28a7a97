#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/mask.h"

/* Feeds text in pieces of the given sizes (0-terminated list), then
 * flushes; returns the masked output (caller frees). */
static char *run(const char *const *secrets, size_t n, const char *text, const size_t *pieces)
{
	struct mask m;
	struct buf out = BUF_INIT;
	size_t off = 0, len = strlen(text);

	mask_init(&m, secrets, n);
	for (; pieces && *pieces && off < len; pieces++) {
		size_t k = *pieces < len - off ? *pieces : len - off;
		mask_feed(&m, text + off, k, &out);
		off += k;
	}
	if (off < len)
		mask_feed(&m, text + off, len - off, &out);
	assert_true(mask_pending(&m) < (m.max_len ? m.max_len : 1));
	mask_flush(&m, &out);
	mask_release(&m);
	return buf_detach(&out, NULL) ?: strdup("");
}

static void expect(const char *const *secrets, size_t n, const char *text, const size_t *pieces,
                   const char *want)
{
	char *got = run(secrets, n, text, pieces);

	if (strcmp(got, want) != 0)
		fail_msg("masking \"%s\": got \"%s\", want \"%s\"", text, got, want);
	free(got);
}

static void test_whole(void **state)
{
	const char *s[] = {"hunter2", "s3cr3t-value"};

	(void)state;
	expect(s, 2, "password=hunter2\n", NULL, "password=***\n");
	expect(s, 2, "hunter2hunter2 s3cr3t-value.", NULL, "****** ***.");
	expect(s, 2, "nothing here\n", NULL, "nothing here\n");
	expect(s, 2, "hunter", NULL, "hunter"); /* a prefix alone is not a secret */
	expect(NULL, 0, "no secrets at all", NULL, "no secrets at all");
}

static void test_split(void **state)
{
	const char *s[] = {"abcdefghij"};
	static const size_t halves[] = {5, 0};
	static const size_t bytes[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
	static const size_t odd[] = {3, 7, 2, 0};

	(void)state;
	/* The e2e case: printf '%s' "${S:0:5}"; sleep; printf '%s\n' "${S:5}". */
	expect(s, 1, "abcdefghij\n", halves, "***\n");
	expect(s, 1, "x abcdefghij y", bytes, "x *** y");
	expect(s, 1, "abcdeabcdefghij", odd, "abcde***");
	/* A tail that never completes is released at the flush. */
	expect(s, 1, "abcdefgh", halves, "abcdefgh");
}

static void test_overlap(void **state)
{
	const char *s[] = {"abc", "abcdef"};
	static const size_t three[] = {3, 0};

	(void)state;
	/* The longer secret wins even when the shorter one completes first. */
	expect(s, 2, "abcdef", three, "***");
	expect(s, 2, "abcxyz", three, "***xyz");
	expect(s, 2, "ab", NULL, "ab");
}

static void test_empty_values_dropped(void **state)
{
	const char *s[] = {"", "k"};

	(void)state;
	expect(s, 2, "kayak", NULL, "***aya***");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_overlap),
	    cmocka_unit_test(test_empty_values_dropped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
