/* The UI's pure pieces: the one escaping function, ANSI → HTML, URL
 * escaping, badge SVG, session cookie and CSRF sign/verify, form parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "server/ui/ui_auth.h"
#include "server/ui/ui_html.h"

static char *esc(const char *s)
{
	struct buf b = BUF_INIT;

	ui_html_esc(&b, s);
	buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

static void test_escape(void **state)
{
	char *s;

	(void)state;
	s = esc("<script>alert(1)</script> & \"q\" 'a'");
	assert_string_equal(s, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;");
	free(s);
	s = esc("tab\tok\x1b[31m\x7f");
	assert_string_equal(s, "tab\tok\xef\xbf\xbd[31m\xef\xbf\xbd");
	free(s);
	s = esc("héllo ✓");
	assert_string_equal(s, "héllo ✓");
	free(s);
	s = esc(NULL);
	assert_true(s == NULL || s[0] == '\0');
	free(s);
}

static char *render(const char *log, struct ui_ansi *st, int64_t *line)
{
	struct buf b = BUF_INIT;

	ui_html_log(&b, log, strlen(log), st, line);
	buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

static void test_ansi(void **state)
{
	struct ui_ansi st = UI_ANSI_INIT;
	int64_t line = 0;
	char *s;

	(void)state;
	s = render("plain <b>\n\x1b[31mred\x1b[0m back\n", &st, &line);
	assert_string_equal(s, "<div class=\"l\" id=\"L1\"><a class=\"n\" href=\"#L1\" "
	                       "tabindex=\"-1\">1</a><span class=\"t\">plain "
	                       "&lt;b&gt;</span></div>"
	                       "<div class=\"l\" id=\"L2\"><a class=\"n\" href=\"#L2\" "
	                       "tabindex=\"-1\">2</a><span class=\"t\"><span "
	                       "class=\"c1\">red</span> back</span></div>");
	assert_int_equal(line, 2);
	assert_null(strchr(s, '\x1b'));
	assert_null(strchr(s, '\n'));
	free(s);

	/* Bold bright green carries over to the next line; 0 resets. */
	s = render("\x1b[1;92mgo\nstill\x1b[m x\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"c10 b\">go</span>"));
	assert_non_null(strstr(s, "<span class=\"c10 b\">still</span> x"));
	assert_int_equal(line, 4);
	free(s);

	/* Other escapes are stripped: cursor moves, OSC titles; a CRLF's \r
	 * erases nothing. */
	s = render("a\x1b[2Kb\x1b]0;title\x07"
	           "c\x1b[38;5;200md\x1b[0m\r\n",
	           &st, &line);
	assert_non_null(strstr(s, "<span class=\"t\">abc<span class=\"c200\">d</span></span>"));
	assert_null(strchr(s, '\x1b'));
	assert_null(strstr(s, "title"));
	free(s);

	/* 39 and 22 undo colour and bold; state packs and unpacks. */
	st.fg = 4;
	st.bold = 1;
	{
		struct ui_ansi back;
		ui_ansi_unpack(ui_ansi_pack(&st), &back);
		assert_int_equal(back.fg, 4);
		assert_int_equal(back.bold, 1);
		ui_ansi_unpack(-1, &back);
		assert_int_equal(back.fg, -1);
	}
	s = render("\x1b[39;22mz\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"t\">z</span>"));
	free(s);
}

/* 256-colour and truecolor SGR, foreground and background (issue 16). */
static void test_ansi_256(void **state)
{
	struct ui_ansi st = UI_ANSI_INIT, back;
	int64_t line = 0;
	char *s;

	(void)state;
	s = render("\x1b[38;5;208morange\x1b[48;5;21mon blue\x1b[49;39m plain\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"c208\">orange</span><span class=\"c208 g21\">on "
	                          "blue</span> plain</span>"));
	free(s);
	/* Truecolor: the nearest palette entry (255,135,0 is 208 exactly; a
	 * near-grey lands on the grey ramp); bold and colour combine. */
	s = render("\x1b[1;38;2;255;135;0mT\x1b[0m\x1b[38;2;128;129;127mG\x1b[0m\x1b[48;2;0;0;0mK\x1b[m\n",
	           &st, &line);
	assert_non_null(strstr(s, "<span class=\"c208 b\">T</span>"));
	assert_non_null(strstr(s, "<span class=\"c244\">G</span>"));
	assert_non_null(strstr(s, "<span class=\"g16\">K</span>"));
	free(s);
	/* Malformed forms change nothing and are not shown. */
	s = render("\x1b[38;5;300mx\x1b[38;2;1;2mY\x1b[38;9;1mz\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"t\">xYz</span>"));
	free(s);
	/* The full state survives pack/unpack (a resumed stream). */
	st.fg = 208;
	st.bg = 255;
	st.bold = 1;
	assert_true(ui_ansi_pack(&st) <= UI_ANSI_PACK_MAX);
	ui_ansi_unpack(ui_ansi_pack(&st), &back);
	assert_int_equal(back.fg, 208);
	assert_int_equal(back.bg, 255);
	assert_int_equal(back.bold, 1);
	ui_ansi_unpack(UI_ANSI_PACK_MAX + 1, &back);
	assert_int_equal(back.fg, -1);
	assert_int_equal(back.bg, -1);
}

/* '\r' progress: only the last frame of a line shows, colour from earlier
 * frames carries (issue 16). */
static void test_ansi_cr(void **state)
{
	struct ui_ansi st = UI_ANSI_INIT;
	int64_t line = 0;
	char *s;

	(void)state;
	s = render("fetch  10%\rfetch  55%\rfetch 100%\nnext\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"t\">fetch 100%</span>"));
	assert_null(strstr(s, "10%"));
	assert_null(strstr(s, "55%"));
	assert_int_equal(line, 2);
	free(s);
	s = render("\x1b[32mold\rnew\r\r\n", &st, &line);
	assert_non_null(strstr(s, "<span class=\"t\"><span class=\"c2\">new</span></span>"));
	assert_null(strstr(s, "old"));
	free(s);
}

static void test_cut_and_url(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(ui_html_log_cut("ab\ncd", 5, 0, 100), 3);
	assert_int_equal(ui_html_log_cut("ab\ncd", 5, 1, 100), 5);
	assert_int_equal(ui_html_log_cut("abcd", 4, 0, 100), 0);
	assert_int_equal(ui_html_log_cut("abcd", 4, 0, 4), 4);
	ui_html_url(&b, "bin/a b\"<x>&.tar");
	assert_string_equal(b.data, "bin/a%20b%22%3Cx%3E%26.tar");
	buf_release(&b);
	assert_string_equal(ui_html_ref_short("refs/heads/feat/x"), "feat/x");
	assert_string_equal(ui_html_ref_short("refs/tags/v1"), "v1");
	ui_html_badge_svg(&b, "build", "<passing>", "#2e9e44");
	assert_non_null(strstr(b.data, "&lt;passing&gt;"));
	assert_null(strstr(b.data, "<passing>"));
	buf_release(&b);
	ui_html_duration(&b, 5600);
	assert_string_equal(b.data, "5.6s");
	buf_reset(&b);
	ui_html_duration(&b, 125000);
	assert_string_equal(b.data, "2m 5s");
	buf_release(&b);
}

static void test_cookie_csrf(void **state)
{
	char key[65], cookie[UI_AUTH_COOKIE_MAX], again[UI_AUTH_COOKIE_MAX], csrf[65], id[65];
	struct err err = {0};

	(void)state;
	crypto_sha256_hex("admin-token", 11, key);
	/* Session values are random (server-side sessions: test_auth.c) */
	assert_int_equal(ui_auth_session_new(cookie, &err), 0);
	assert_int_equal(ui_auth_session_new(again, &err), 0);
	assert_int_equal(strlen(cookie), UI_AUTH_SESSION_HEX);
	assert_string_not_equal(cookie, again);
	assert_true(ui_auth_session_well_formed(cookie));
	assert_false(ui_auth_session_well_formed(NULL));
	assert_false(ui_auth_session_well_formed(""));
	assert_false(ui_auth_session_well_formed("2000.abc"));
	again[10] = 'G';
	assert_false(ui_auth_session_well_formed(again));
	ui_auth_session_hash(cookie, id);
	assert_int_equal(strlen(id), 64);
	assert_string_not_equal(id, cookie);

	ui_auth_csrf(key, cookie, csrf);
	assert_true(ui_auth_csrf_ok(key, cookie, csrf));
	assert_false(ui_auth_csrf_ok(key, cookie, NULL));
	assert_false(ui_auth_csrf_ok(key, cookie, ""));
	csrf[0] = csrf[0] == 'a' ? 'b' : 'a';
	assert_false(ui_auth_csrf_ok(key, cookie, csrf));

	/* The Origin of a form: this server's, or none at all */
	assert_true(ui_auth_origin_ok(NULL, "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_true(ui_auth_origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_true(ui_auth_origin_ok("https://ci.example.com", "10.0.0.1:8080", "https://ci.example.com/"));
	assert_true(ui_auth_origin_ok("https://CI.example.com", NULL, "https://ci.example.com/anvil"));
	assert_true(ui_auth_origin_ok("https://ci.example.com", "ci.example.com", "http://x:1"));
	assert_false(ui_auth_origin_ok("https://evil.example", "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_false(ui_auth_origin_ok("null", "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_false(
	    ui_auth_origin_ok("http://127.0.0.1:8080.evil", "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_false(ui_auth_origin_ok("http://127.0.0.1:80", "127.0.0.1:8080", "http://127.0.0.1:8080"));
	assert_false(ui_auth_origin_ok("http://127.0.0.1:8080", NULL, NULL));
	assert_false(ui_auth_origin_ok("ftp://127.0.0.1:8080", "127.0.0.1:8080", NULL));
}

static void test_cookie_header_and_form(void **state)
{
	char v[UI_AUTH_COOKIE_MAX], small[4];
	const char *body = "csrf=ab%2Bc&next=%2Fjobs%2F7&token=a+b&empty=&bad=%00x";
	char *s;

	(void)state;
	assert_int_equal(
	    ui_auth_cookie_find("a=1; anvil_session=123.abc; b=2", "anvil_session", v, sizeof(v)), 0);
	assert_string_equal(v, "123.abc");
	assert_int_equal(ui_auth_cookie_find("xanvil_session=1", "anvil_session", v, sizeof(v)), -1);
	assert_int_equal(ui_auth_cookie_find(NULL, "anvil_session", v, sizeof(v)), -1);
	assert_int_equal(ui_auth_cookie_find("anvil_session=toolong", "anvil_session", small, sizeof(small)),
	                 -1);

	s = ui_auth_form_get(body, strlen(body), "csrf");
	assert_string_equal(s, "ab+c");
	free(s);
	s = ui_auth_form_get(body, strlen(body), "next");
	assert_string_equal(s, "/jobs/7");
	free(s);
	s = ui_auth_form_get(body, strlen(body), "token");
	assert_string_equal(s, "a b");
	free(s);
	s = ui_auth_form_get(body, strlen(body), "empty");
	assert_string_equal(s, "");
	free(s);
	assert_null(ui_auth_form_get(body, strlen(body), "bad"));
	assert_null(ui_auth_form_get(body, strlen(body), "missing"));
	/* Not NUL-terminated at len: only len bytes are read. */
	assert_null(ui_auth_form_get("csrf=1", 3, "csrf"));
}

/* The forge link of a commit: credentials, other schemes and hostile
 * clone URLs never make a link. */
static void test_forge_commit_url(void **state)
{
	static const char *sha = "0123456789abcdef0123456789abcdef01234567";
	static const struct {
		const char *forge, *url, *want; /* want NULL: no link */
	} cases[] = {
	    {"github", "https://github.com/acme/demo.git", "https://github.com/acme/demo/commit/"},
	    {"github", "https://bot:s3cret@github.com/acme/demo", "https://github.com/acme/demo/commit/"},
	    {"gitea", "http://git.example.com:3000/acme/demo.git",
	     "http://git.example.com:3000/acme/demo/commit/"},
	    {"gitlab", "git@gitlab.example.com:grp/sub/demo.git",
	     "https://gitlab.example.com/grp/sub/demo/-/commit/"},
	    {"gitlab", "ssh://git@gitlab.example.com:2222/grp/demo.git",
	     "https://gitlab.example.com/grp/demo/-/commit/"},
	    {"generic", "https://example.com/acme/demo.git", NULL},
	    {"", "https://github.com/acme/demo.git", NULL},
	    {"github", "/srv/git/demo.git", NULL},
	    {"github", "file:///srv/git/demo.git", NULL},
	    {"github", "javascript:alert(1)//x/y", NULL},
	    {"github", "https://github.com/acme/\"><script>", NULL},
	    {"github", "https://github.com/acme/de mo", NULL},
	    {"github", "https://github.com/acme/../../evil", NULL},
	    {"github", "https://github.com/acme/demo?x=1", NULL},
	};
	struct buf b = BUF_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = ui_html_forge_commit_url(&b, cases[i].forge, cases[i].url, sha);
		if (cases[i].want == NULL) {
			assert_int_equal(rc, -1);
			assert_int_equal(b.len, 0);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(strncmp(b.data, cases[i].want, strlen(cases[i].want)), 0);
		assert_string_equal(b.data + strlen(cases[i].want), sha);
		buf_reset(&b);
	}
	assert_int_equal(ui_html_forge_commit_url(&b, "github", "https://github.com/a/b", "not-hex"), -1);
	assert_int_equal(ui_html_forge_commit_url(&b, "github", "https://github.com/a/b", "\"><x"), -1);
	buf_release(&b);
}

static void test_trend_and_median(void **state)
{
	int64_t ms[] = {3000, 1000, 2000, 10000};
	int failed[] = {0, 1, 0, 0};
	struct buf b = BUF_INIT;

	(void)state;
	ui_html_trend_svg(&b, "main <&>", ms, failed, 4, 200, 40);
	assert_non_null(strstr(b.data, "aria-label=\"main &lt;&amp;&gt;\""));
	assert_non_null(strstr(b.data, "<polyline"));
	assert_null(strstr(b.data, "style"));
	assert_int_equal(strstr(strstr(b.data, "circle class=\"bad\""), "</svg>") != NULL, 1);
	buf_reset(&b);
	ui_html_trend_svg(&b, "none", NULL, NULL, 0, 200, 40);
	assert_null(strstr(b.data, "<circle"));
	buf_release(&b);
	assert_int_equal(ui_html_median_ms(ms, 4), 2500);
	assert_int_equal(ui_html_median_ms(ms, 3), 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_ansi),
	    cmocka_unit_test(test_ansi_256),
	    cmocka_unit_test(test_ansi_cr),
	    cmocka_unit_test(test_cut_and_url),
	    cmocka_unit_test(test_cookie_csrf),
	    cmocka_unit_test(test_cookie_header_and_form),
	    cmocka_unit_test(test_forge_commit_url),
	    cmocka_unit_test(test_trend_and_median),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
