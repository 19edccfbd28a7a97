#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/mask.h"
#include "server/ui/ui_html.h"

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
	assert_true(mask_pending(&m) < (m.max_len ? m.max_len : 1) + MASK_IGNORABLE_MAX);
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

#define SECRET "Sup3rS3cretValue"

static void test_split_by_escapes(void **state)
{
	const char *s[] = {SECRET};

	(void)state;
	expect(s, 1, "x Sup3r\033[0mS3cretValue y\n", NULL, "x *** y\n");
	expect(s, 1, "Sup3r\033[1;31mS3cr\033[0metValue", NULL, "***");
	/* OSC (window title) ended by BEL, and by ESC \ */
	expect(s, 1, "Sup3r\033]0;title\aS3cretValue", NULL, "***");
	expect(s, 1, "Sup3r\033]8;;http://x/\033\\S3cretValue", NULL, "***");
	/* DCS, and a two-byte escape (charset selection) */
	expect(s, 1, "Sup3r\033PqXYZ\033\\S3cretValue", NULL, "***");
	expect(s, 1, "Sup3r\033(BS3cretValue", NULL, "***");
	expect(s, 1, "Sup3r\033(BBS3cretValue", NULL, "Sup3r\033(BBS3cretValue");
	/* The escape right after the secret stays */
	expect(s, 1, "Sup3rS3cretValue\033[0m.", NULL, "***\033[0m.");
}

static void test_split_by_controls(void **state)
{
	const char *s[] = {SECRET};

	(void)state;
	expect(s, 1, "Sup3r\rS3cretValue\n", NULL, "***\n");
	expect(s, 1, "Sup3r\bS3cretValue", NULL, "***");
	expect(s, 1, "S\tu\001p\0373\177rS3cretValue", NULL, "***");
	expect(s, 1, "Sup3r\r\r\033[K\rS3cretValue", NULL, "***");
	/* A newline is seen: the halves are on two lines */
	expect(s, 1, "Sup3r\nS3cretValue", NULL, "Sup3r\nS3cretValue");
	/* An unterminated CSI ends at the line's end, as in the renderer */
	expect(s, 1, "Sup3r\033[12\nS3cretValue", NULL, "Sup3r\033[12\nS3cretValue");
}

static void test_split_across_feeds(void **state)
{
	const char *s[] = {SECRET};
	static const size_t bytes[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	                               1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
	static const size_t mid_escape[] = {7, 0}; /* cuts "\033[" from "0m" */
	static const size_t after_escape[] = {9, 0};
	struct mask m;
	struct buf out = BUF_INIT;

	(void)state;
	expect(s, 1, "a Sup3r\033[0mS3cretValue b", bytes, "a *** b");
	expect(s, 1, "Sup3r\033[0mS3cretValue", mid_escape, "***");
	expect(s, 1, "Sup3r\033[0mS3cretValue", after_escape, "***");
	expect(s, 1, "Sup3r\033]0;t\033\\S3cretValue", bytes, "***");
	expect(s, 1, "Sup3r\rS3cretValue", bytes, "***");

	/* The held tail covers the escape: nothing of it is emitted yet */
	mask_init(&m, s, 1);
	mask_feed(&m, "ok Sup3r\033[0", 11, &out);
	assert_int_equal(out.len, 3);
	assert_int_equal(mask_pending(&m), 8);
	mask_feed(&m, "mS3cretValue\n", 13, &out);
	assert_int_equal(mask_pending(&m), 0);
	buf_append(&out, "", 1);
	assert_string_equal(out.data, "ok ***\n");
	mask_release(&m);
	buf_release(&out);

	/* A secret's start followed by endless escape bytes is not held
	 * forever: past the bound it is masked as it stands */
	mask_init(&m, s, 1);
	out = (struct buf)BUF_INIT;
	mask_feed(&m, "Sup3r\033]", 7, &out);
	for (int i = 0; i < 100; i++) {
		char junk[100];
		memset(junk, 'x', sizeof(junk));
		mask_feed(&m, junk, sizeof(junk), &out);
		assert_true(mask_pending(&m) <= m.max_len + MASK_IGNORABLE_MAX);
	}
	mask_flush(&m, &out);
	assert_true(out.len >= 3 && memcmp(out.data, "***", 3) == 0);
	mask_release(&m);
	buf_release(&out);
}

static void test_prefix_secrets_split(void **state)
{
	const char *s[] = {"abc", "abcdef"};
	static const size_t four[] = {4, 0};

	(void)state;
	expect(s, 2, "ab\033[0mcdef", NULL, "***");
	expect(s, 2, "ab\033[0mcdef", four, "***");
	expect(s, 2, "ab\rc\033[1mxyz", NULL, "***\033[1mxyz");
	expect(s, 2, "a\bbc\rd\033[0me\bf!", NULL, "***!");
	expect(s, 2, "ab\033[0m", four, "ab\033[0m"); /* released at the flush */
}

/* Visible text of rendered HTML: tags dropped, the line-number links too. */
static char *visible(const char *html)
{
	struct buf b = BUF_INIT;

	for (const char *p = html; *p;) {
		if (strncmp(p, "<a class=\"n\"", 12) == 0) {
			p = strstr(p, "</a>") + 4;
			continue;
		}
		if (*p == '<') {
			p = strchr(p, '>') + 1;
			continue;
		}
		buf_append(&b, p++, 1);
	}
	return buf_detach(&b, NULL) ?: strdup("");
}

/* A carriage return starts a new frame of the line and the renderer shows
 * only the last one, as a terminal would: text split by \r is never shown
 * joined (the mask still treats \r as invisible, which only hides more). */
static void test_renderer_cr_shows_last_frame(void **state)
{
	static const char *const texts[][2] = {
	    {"Sup3r\rS3cretValue\n", "S3cretValue"},
	    {"Sup3r\033[?25l\033[2K\rS3cretValue\n", "S3cretValue"},
	    {"S\ru\rp\r3\rr\rS\r3\rc\rr\re\rt\rV\ra\rl\ru\re\n", "e"},
	};

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		struct buf html = BUF_INIT;
		struct ui_ansi st = UI_ANSI_INIT;
		int64_t line = 0;
		char *vis;

		ui_html_log(&html, texts[t][0], strlen(texts[t][0]), &st, &line);
		buf_append(&html, "", 1);
		vis = visible(html.data);
		vis[strcspn(vis, "\n")] = '\0';
		assert_string_equal(vis, texts[t][1]);
		assert_null(strstr(vis, SECRET));
		free(vis);
		buf_release(&html);
	}
}

/* What the mask lets through, the UI renderer cannot reassemble: each text
 * shows the secret once rendered unmasked, and never once masked. */
static void test_renderer_cannot_reassemble(void **state)
{
	const char *s[] = {SECRET};
	static const char *const texts[] = {
	    "Sup3r\033[0mS3cretValue\n",
	    "Sup3r\033]0;title\aS3cretValue\n",
	    "Sup3r\033]0;title\033\\S3cretValue\n",
	    "Sup3r\033PpayloadX\033\\S3cretValue\n",
	    "Sup3r\033_apc\033\\S3cretValue\n",
	    "Sup3r\033^pm\aS3cretValue\n",
	    "Sup3r\033(BS3cretValue\n",
	    "\033[31mSup3r\033[1mS3cret\033[22mValue\033[0m\n",
	};
	static const size_t pieces[] = {3, 5, 2, 4, 1, 6, 0};

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		struct buf html = BUF_INIT;
		struct ui_ansi st = UI_ANSI_INIT;
		int64_t line = 0;
		char *masked, *vis;

		ui_html_log(&html, texts[t], strlen(texts[t]), &st, &line);
		buf_append(&html, "", 1);
		vis = visible(html.data);
		if (strstr(vis, SECRET) == NULL)
			fail_msg("text %zu: the renderer does not join it (\"%s\"): not a useful case", t,
			         vis);
		free(vis);
		buf_release(&html);

		for (int split = 0; split < 2; split++) {
			masked = run(s, 1, texts[t], split ? pieces : NULL);
			st = (struct ui_ansi)UI_ANSI_INIT;
			line = 0;
			html = (struct buf)BUF_INIT;
			ui_html_log(&html, masked, strlen(masked), &st, &line);
			buf_append(&html, "", 1);
			vis = visible(html.data);
			if (strstr(vis, SECRET) != NULL || strstr(masked, "S3cretValue") != NULL)
				fail_msg("text %zu: masked \"%s\" renders as \"%s\"", t, masked, vis);
			free(vis);
			free(masked);
			buf_release(&html);
		}
	}
}

/* Many random texts: the secret cut into pieces with ignorable sequences
 * between them, fed in random pieces; masked then rendered, the secret is
 * never visible (fixed seed: the same texts every run). */
static void test_renderer_random(void **state)
{
	static const char *const glue[] = {"\033[0m",         "\r",         "\b",   "\033]0;t\a",
	                                   "\033]8;;u\033\\", "\033(B",     "\t",   "\177",
	                                   "\033[?25l",       "\033[1;31m", "\001", "\033P1\033\\"};
	static const char *const around[] = {"", "x", "Sup3r", "S", "\033[32m", "\n", "ab\r"};
	const char *s[] = {SECRET, "Sup3r"};
	uint32_t seed = 12345;

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		struct buf text = BUF_INIT, html = BUF_INIT;
		struct ui_ansi st = UI_ANSI_INIT;
		size_t pieces[8] = {0};
		int64_t line = 0;
		char *masked, *vis;

#define RND(n) ((seed = seed * 1103515245u + 12345u) >> 16) % (n)
		buf_appendf(&text, "%s", around[RND(7)]);
		for (size_t i = 0; i < strlen(SECRET); i++) {
			buf_append(&text, SECRET + i, 1);
			if (i + 1 < strlen(SECRET) && RND(3) == 0)
				buf_appendf(&text, "%s", glue[RND(12)]);
		}
		buf_appendf(&text, "%s", around[RND(7)]);
		for (int k = 0; k < 7; k++)
			pieces[k] = 1 + RND(9);
#undef RND
		masked = run(s, 2, text.data, pieces);
		ui_html_log(&html, masked, strlen(masked), &st, &line);
		vis = visible(html.data ? html.data : "");
		if (strstr(vis, SECRET) != NULL)
			fail_msg("iteration %d: masked \"%s\" renders as \"%s\"", iter, masked, vis);
		free(vis);
		free(masked);
		buf_release(&html);
		buf_release(&text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_overlap),
	    cmocka_unit_test(test_empty_values_dropped),
	    cmocka_unit_test(test_split_by_escapes),
	    cmocka_unit_test(test_split_by_controls),
	    cmocka_unit_test(test_split_across_feeds),
	    cmocka_unit_test(test_prefix_secrets_split),
	    cmocka_unit_test(test_renderer_cannot_reassemble),
	    cmocka_unit_test(test_renderer_cr_shows_last_frame),
	    cmocka_unit_test(test_renderer_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
