#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/pipefile.h"

/* Parses a NUL-terminated text (without its terminator). */
static int parse_str(const char *text, struct pipefile **out, struct err *err)
{
	err_clear(err);
	return pipefile_parse(text, strlen(text), out, err);
}

static struct pipefile *parse_ok(const char *text)
{
	struct pipefile *pf = NULL;
	struct err err;

	if (parse_str(text, &pf, &err) < 0)
		fail_msg("unexpected error: %s", err.msg);
	assert_non_null(pf);
	return pf;
}

/* Expects failure with code and a message containing want. */
static void expect_err_len(const char *text, size_t len, enum err_code code, const char *want)
{
	struct pipefile *pf = NULL;
	struct err err;

	err_clear(&err);
	if (pipefile_parse(text, len, &pf, &err) == 0) {
		pipefile_free(pf);
		fail_msg("parse succeeded, expected \"%s\"", want);
	}
	assert_null(pf);
	if (err.code != code || strstr(err.msg, want) == NULL)
		fail_msg("got %s \"%s\", expected %s \"%s\"", err_code_name(err.code), err.msg,
		         err_code_name(code), want);
}

static void expect_err(const char *text, enum err_code code, const char *want)
{
	expect_err_len(text, strlen(text), code, want);
}

static void test_full_file(void **state)
{
	static const char text[] = "# build for two boards\n"
	                           "targets: [aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu]\n"
	                           "env:\n"
	                           "  RUST_BACKTRACE: \"1\"\n"
	                           "  JOBS: 4\n"
	                           "  VERBOSE: yes\n"
	                           "  EMPTY:\n"
	                           "steps:\n"
	                           "  - name: build\n"
	                           "    run: make\n"
	                           "  - run: |\n"
	                           "      make check\n"
	                           "      echo done\n"
	                           "  - make install DESTDIR=out\n"
	                           "artifacts: [app, \"out/*.bin\"]\n"
	                           "network: true\n"
	                           "timeout: 30m\n"
	                           "deploy: [{group: plant-3, install: /opt/app, files: [app]}]\n"
	                           "when: {event: [push]}\n"
	                           "release: x\n"
	                           "cache: [target]\n"
	                           "services: ~\n";
	struct pipefile *pf = parse_ok(text);

	(void)state;
	assert_int_equal(pf->targets.n, 2);
	assert_string_equal(pf->targets.v[0], "aarch64-unknown-linux-gnu");
	assert_string_equal(pf->targets.v[1], "x86_64-unknown-linux-gnu");
	assert_null(pf->targets.v[2]);
	assert_int_equal(pf->env.n, 4);
	assert_string_equal(pf->env.v[0], "RUST_BACKTRACE=1");
	assert_string_equal(pf->env.v[1], "JOBS=4");
	assert_string_equal(pf->env.v[2], "VERBOSE=yes");
	assert_string_equal(pf->env.v[3], "EMPTY=");
	assert_int_equal(pf->n_steps, 3);
	assert_string_equal(pf->steps[0].name, "build");
	assert_string_equal(pf->steps[0].run, "make");
	assert_string_equal(pf->steps[1].name, "2");
	assert_string_equal(pf->steps[1].run, "make check\necho done\n");
	assert_string_equal(pf->steps[2].name, "3");
	assert_string_equal(pf->steps[2].run, "make install DESTDIR=out");
	assert_int_equal(pf->artifacts.n, 2);
	assert_string_equal(pf->artifacts.v[0], "app");
	assert_string_equal(pf->artifacts.v[1], "out/*.bin");
	assert_int_equal(pf->network, 1);
	assert_int_equal(pf->timeout_s, 1800);
	pipefile_free(pf);
}

static void test_defaults(void **state)
{
	struct pipefile *pf = parse_ok("steps:\n  - run: make\n  - run: make check\n");

	(void)state;
	assert_int_equal(pf->targets.n, 1);
	assert_string_equal(pf->targets.v[0], "host");
	assert_int_equal(pf->n_steps, 2);
	assert_string_equal(pf->steps[0].name, "1");
	assert_string_equal(pf->steps[1].name, "2");
	assert_int_equal(pf->env.n, 0);
	assert_int_equal(pf->artifacts.n, 0);
	assert_int_equal(pf->network, 0);
	assert_int_equal(pf->timeout_s, 0);
	pipefile_free(pf);

	/* Empty values of optional keys mean "absent". */
	pf = parse_ok("targets: []\nenv:\nartifacts: ~\nsteps: [make]\n");
	assert_int_equal(pf->targets.n, 1);
	assert_string_equal(pf->targets.v[0], "host");
	assert_int_equal(pf->env.n, 0);
	assert_int_equal(pf->artifacts.n, 0);
	pipefile_free(pf);

	pf = parse_ok("targets: [host]\nsteps: [make]\nnetwork: No\ntimeout: 90\n");
	assert_string_equal(pf->targets.v[0], "host");
	assert_int_equal(pf->network, 0);
	assert_int_equal(pf->timeout_s, 90);
	pipefile_free(pf);

	pf = parse_ok("steps: [make]\nnetwork: yes\ntimeout: 2h\n");
	assert_int_equal(pf->network, 1);
	assert_int_equal(pf->timeout_s, 7200);
	pipefile_free(pf);

	pf = parse_ok("jobs:\n  a: {steps: [make]}\n  b: {needs: [a], approve: yes, steps: [x]}\n");
	assert_int_equal(pf->jobs[0].approve, 0);
	assert_int_equal(pf->jobs[1].approve, 1);
	pipefile_free(pf);
	expect_err("jobs:\n  a: {steps: [make], approve: soon}\n", ERR_INVAL,
	           "approve: expected true or false");

	pf = parse_ok("steps: [make]\nauto_cancel: true\n");
	assert_int_equal(pf->auto_cancel, 1);
	pipefile_free(pf);
	pf = parse_ok("steps: [make]\n");
	assert_int_equal(pf->auto_cancel, 0);
	pipefile_free(pf);
	expect_err("steps: [make]\nauto_cancel: 2\n", ERR_INVAL,
	           "line 2, column 14: auto_cancel: expected true or false, found '2'");

	pf = parse_ok("steps: [make]\ntimeout: 45s\n");
	assert_int_equal(pf->timeout_s, 45);
	pipefile_free(pf);
}

static void test_plain_string_steps(void **state)
{
	struct pipefile *pf =
	    parse_ok("steps:\n  - make\n  - name: test\n    run: make check\n  - ./run.sh --x=1\n");

	(void)state;
	assert_int_equal(pf->n_steps, 3);
	assert_string_equal(pf->steps[0].name, "1");
	assert_string_equal(pf->steps[0].run, "make");
	assert_string_equal(pf->steps[1].name, "test");
	assert_string_equal(pf->steps[1].run, "make check");
	assert_string_equal(pf->steps[2].name, "3");
	assert_string_equal(pf->steps[2].run, "./run.sh --x=1");
	pipefile_free(pf);
}

/* The buffer need not be NUL-terminated: only len bytes are read. */
static void test_unterminated_buffer(void **state)
{
	static const char text[] = "steps: [make]\nbogus: 1\n";
	struct pipefile *pf = NULL;
	struct err err;

	(void)state;
	err_clear(&err);
	assert_int_equal(pipefile_parse(text, strlen("steps: [make]\n"), &pf, &err), 0);
	assert_int_equal(pf->n_steps, 1);
	pipefile_free(pf);
	pipefile_free(NULL);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	/* Unclosed flow sequence. */
	expect_err("steps:\n  - run: make\n  - run: [make\n", ERR_INVAL,
	           "line 4, column 1: did not find expected");
	/* Bad indentation. */
	expect_err("steps:\n  - run: make\n - run: x\n", ERR_INVAL, "line 3, column 2:");
	/* Tab indentation. */
	expect_err("steps:\n\t- run: make\n", ERR_INVAL,
	           "line 2, column 1: found character that cannot start");
	/* Invalid UTF-8: a reader error, still with its line. */
	expect_err("steps:\n  - run: make\n  - run: \xff\xfe\n", ERR_INVAL, "line 3: invalid");
	/* Two documents. */
	expect_err("steps: [make]\n---\nsteps: [x]\n", ERR_INVAL,
	           "line 3, column 1: a pipeline file holds one");
}

static void test_structure_errors(void **state)
{
	(void)state;
	expect_err("", ERR_INVAL, "line 1: empty pipeline file");
	expect_err("# only a comment\n", ERR_INVAL, "line 1: empty pipeline file");
	expect_err("- make\n", ERR_INVAL, "line 1, column 1: the pipeline file must be a mapping");
	expect_err("targets: [x86_64-unknown-linux-gnu]\nnetwork: false\n", ERR_INVAL,
	           "line 1, column 1: missing 'steps'");
	expect_err("targets: [host]\nsteps:\n  - name: a\n    run: x\n  - name: b\n", ERR_INVAL,
	           "line 5, column 5: steps[1]: missing 'run'");
	expect_err("steps: 3\n", ERR_INVAL,
	           "line 1, column 8: steps: expected a non-empty sequence, found a scalar");
	expect_err("steps: []\n", ERR_INVAL, "line 1, column 8: steps: expected a non-empty sequence");
	expect_err("steps:\n", ERR_INVAL,
	           "line 1, column 7: steps: expected a non-empty sequence, found nothing");
	expect_err("steps: {run: make}\n", ERR_INVAL,
	           "line 1, column 8: steps: expected a non-empty sequence");
	expect_err("steps:\n  - [make]\n", ERR_INVAL,
	           "line 2, column 5: steps[0]: expected a mapping or a command");
	expect_err("steps:\n  - run: [make]\n", ERR_INVAL,
	           "line 2, column 10: steps[0].run: expected a scalar");
	expect_err("steps:\n  - run: \"  \"\n", ERR_INVAL, "line 2, column 10: steps[0].run: empty command");
	expect_err("steps:\n  - run:\n", ERR_INVAL, "steps[0].run: empty command");
	expect_err("steps:\n  - run: a\n    rn: b\n", ERR_INVAL,
	           "line 3, column 5: steps[0]: unknown key 'rn'");
	expect_err("steps:\n  - run: a\n    run: b\n", ERR_INVAL,
	           "line 3, column 5: steps[0]: duplicate key 'run'");
	expect_err("steps:\n  - run: a\n    name: \"a\\nb\"\n", ERR_INVAL,
	           "line 3, column 11: steps[0].name: must be");
	expect_err("steps: [make]\ntargets: aarch64-unknown-linux-gnu\n", ERR_INVAL,
	           "line 2, column 10: targets: expected a sequence, found a scalar");
	expect_err("steps: [make]\nenv: [A]\n", ERR_INVAL, "line 2, column 6: env: expected a mapping");
	expect_err("steps: [make]\nenv:\n  A: [1]\n", ERR_INVAL,
	           "line 3, column 6: env.A: expected a scalar");
	expect_err("steps: [make]\nartifacts: app\n", ERR_INVAL,
	           "line 2, column 12: artifacts: expected a sequence");
	expect_err("steps: [make]\nnetwork: [true]\n", ERR_INVAL,
	           "line 2, column 10: network: expected a scalar");
	expect_err("steps: [make]\nnetwork: maybe\n", ERR_INVAL,
	           "line 2, column 10: network: expected true or false");
	expect_err("steps: [make]\nsteps: [x]\n", ERR_INVAL, "line 2, column 1: duplicate key 'steps'");
	expect_err("? [a]\n: b\nsteps: [x]\n", ERR_INVAL,
	           "line 1, column 3: top-level key: expected a scalar");
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_err("steps: [make]\nartefacts: [app]\n", ERR_INVAL,
	           "line 2, column 1: unknown key 'artefacts'");
	expect_err("\n\nsteps: [make]\n\n  \nStep: 1\n", ERR_INVAL, "line 6, column 1: unknown key 'Step'");
	/* Control characters of a key are not echoed as is. */
	expect_err("steps: [make]\n\"a\\tb\": 1\n", ERR_INVAL, "unknown key 'a?b'");
}

/* Whether the parser accepts key at the top level: any answer but "unknown
 * key" (a bad value, a duplicate) means it knows the key. */
static int top_key_accepted(const char *key)
{
	struct pipefile *pf = NULL;
	struct err err;
	char text[128];

	snprintf(text, sizeof(text), "steps: [make]\n%s: ~\n", key);
	if (parse_str(text, &pf, &err) == 0) {
		pipefile_free(pf);
		return 1;
	}
	return strstr(err.msg, "unknown key") == NULL;
}

/* The unknown-key message lists exactly the keys the parser accepts (issue
 * 19 item 3: it left out mode). */
static void test_unknown_key_lists_every_key(void **state)
{
	static const char *const accepted[] = {
	    "targets", "env",  "steps", "artifacts", "network", "timeout",  "when",        "mode",
	    "deploy",  "jobs", "tools", "release",   "cache",   "services", "auto_cancel", "submodules"};
	static const char ignored[] = "ignored for now: ";
	struct pipefile *pf = NULL;
	struct err err;
	char list[256], *open, *close, *tok, *save = NULL;
	const char *listed[32];
	size_t i, j, n_listed = 0;

	(void)state;
	assert_int_equal(parse_str("steps: [make]\nartefacts: [app]\n", &pf, &err), -1);
	open = strstr(err.msg, "(known: ");
	close = strrchr(err.msg, ')');
	if (open == NULL || close == NULL || close < open)
		fail_msg("no list of known keys in \"%s\"", err.msg);
	open += strlen("(known: ");
	snprintf(list, sizeof(list), "%.*s", (int)(close - open), open);
	for (tok = strtok_r(list, ",;", &save); tok != NULL; tok = strtok_r(NULL, ",;", &save)) {
		tok += strspn(tok, " ");
		if (strncmp(tok, ignored, strlen(ignored)) == 0)
			tok += strlen(ignored);
		if (!top_key_accepted(tok))
			fail_msg("key '%s' is listed but not accepted", tok);
		assert_true(n_listed < sizeof(listed) / sizeof(listed[0]));
		listed[n_listed++] = tok;
	}
	for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		assert_true(top_key_accepted(accepted[i]));
		for (j = 0; j < n_listed; j++)
			if (strcmp(listed[j], accepted[i]) == 0)
				break;
		if (j == n_listed)
			fail_msg("key '%s' is accepted but not listed in \"%s\"", accepted[i], err.msg);
	}
	assert_int_equal(n_listed, sizeof(accepted) / sizeof(accepted[0]));
}

static void test_targets(void **state)
{
	(void)state;
	expect_err("steps: [make]\ntargets: [aarch64-unknown-linux-gnu, Aarch64]\n", ERR_INVAL,
	           "line 2, column 38: targets[1]: 'Aarch64' is not a target triple");
	expect_err("steps: [make]\ntargets: [\"a b\"]\n", ERR_INVAL,
	           "targets[0]: 'a b' is not a target triple");
	expect_err("steps: [make]\ntargets: [\"\"]\n", ERR_INVAL, "targets[0]: '' is not a target triple");
	expect_err(
	    "steps: [make]\ntargets:\n  - armv7-unknown-linux-gnueabihf\n  - armv7-unknown-linux-gnueabihf\n",
	    ERR_INVAL, "line 4, column 5: targets[1]: duplicate target 'armv7-unknown-linux-gnueabihf'");
	expect_err("steps: [make]\ntargets: [[x]]\n", ERR_INVAL,
	           "line 2, column 11: targets[0]: expected a scalar");
}

static void test_too_many_targets(void **state)
{
	struct buf b = BUF_INIT;
	struct pipefile *pf;
	int i;

	(void)state;
	buf_appendf(&b, "steps: [make]\ntargets:\n");
	for (i = 0; i < PIPEFILE_MAX_TARGETS; i++)
		buf_appendf(&b, "  - t%d\n", i);
	pf = parse_ok(b.data);
	assert_int_equal(pf->targets.n, PIPEFILE_MAX_TARGETS);
	pipefile_free(pf);
	buf_appendf(&b, "  - one-more\n");
	expect_err(b.data, ERR_LIMIT, "line 3, column 3: targets: 17 targets, limit 16");
	buf_release(&b);
}

static void test_env_key(void **state)
{
	(void)state;
	expect_err("steps: [make]\nenv:\n  OK_1: a\n  1BAD: b\n", ERR_INVAL,
	           "line 4, column 3: env: '1BAD' is not a variable name");
	expect_err("steps: [make]\nenv:\n  A-B: b\n", ERR_INVAL,
	           "line 3, column 3: env: 'A-B' is not a variable name");
	expect_err("steps: [make]\nenv:\n  \"\": b\n", ERR_INVAL, "env: '' is not a variable name");
	expect_err("steps: [make]\nenv:\n  AB: 1\n  A: 2\n  AB: 3\n", ERR_INVAL,
	           "line 5, column 3: env: duplicate variable 'AB'");
}

static void test_too_many_steps(void **state)
{
	struct buf b = BUF_INIT;
	struct pipefile *pf;
	int i;

	(void)state;
	buf_appendf(&b, "env: {A: b}\nsteps:\n");
	for (i = 0; i < PIPEFILE_MAX_STEPS; i++)
		buf_appendf(&b, "  - echo %d\n", i);
	pf = parse_ok(b.data);
	assert_int_equal(pf->n_steps, PIPEFILE_MAX_STEPS);
	assert_string_equal(pf->steps[PIPEFILE_MAX_STEPS - 1].run, "echo 63");
	pipefile_free(pf);
	buf_appendf(&b, "  - echo more\n");
	expect_err(b.data, ERR_LIMIT, "line 3, column 3: steps: 65 steps, limit 64");
	buf_release(&b);
}

static void test_too_large(void **state)
{
	size_t len = PIPEFILE_MAX_BYTES + 1;
	char *big = malloc(len);
	struct pipefile *pf;

	(void)state;
	assert_non_null(big);
	/* A valid file padded with a comment to exactly the limit parses. */
	memset(big, '#', len);
	memcpy(big, "steps: [make]\n", 14);
	pf = NULL;
	{
		struct err err;

		err_clear(&err);
		assert_int_equal(pipefile_parse(big, PIPEFILE_MAX_BYTES, &pf, &err), 0);
		pipefile_free(pf);
	}
	expect_err_len(big, len, ERR_LIMIT, "262145 bytes, limit 262144");
	free(big);
}

static void test_nul(void **state)
{
	static const char text[] = "steps:\n  - run: make\0 evil\n";

	(void)state;
	expect_err_len(text, sizeof(text) - 1, ERR_INVAL, "line 2: NUL byte");
	/* A NUL written as an escape inside a scalar. */
	expect_err("steps:\n  - run: \"make\\0 evil\"\n", ERR_INVAL,
	           "line 2, column 10: steps[0].run: contains a NUL");
	expect_err("steps: [make]\nenv:\n  A: \"x\\0y\"\n", ERR_INVAL,
	           "line 3, column 6: env.A: contains a NUL");
}

static void test_artifacts(void **state)
{
	struct pipefile *pf;

	(void)state;
	expect_err("steps: [make]\nartifacts:\n  - ok/app\n  - out/../../etc/passwd\n", ERR_INVAL,
	           "line 4, column 5: artifacts[1]: 'out/../../etc/passwd' has a '..' component");
	expect_err("steps: [make]\nartifacts: [..]\n", ERR_INVAL, "artifacts[0]: '..' has a '..' component");
	expect_err("steps: [make]\nartifacts: [a/..]\n", ERR_INVAL, "'a/..' has a '..' component");
	expect_err("steps: [make]\nartifacts: [/etc/passwd]\n", ERR_INVAL,
	           "line 2, column 13: artifacts[0]: '/etc/passwd' is absolute");
	expect_err("steps: [make]\nartifacts: [\"\"]\n", ERR_INVAL, "artifacts[0]: path must be");
	/* Names that merely contain dots are fine. */
	pf = parse_ok("steps: [make]\nartifacts: [..a, a.., ./x, out/...]\n");
	assert_int_equal(pf->artifacts.n, 4);
	assert_string_equal(pf->artifacts.v[3], "out/...");
	pipefile_free(pf);
}

static void test_timeout(void **state)
{
	(void)state;
	expect_err("steps: [make]\ntimeout: 30x\n", ERR_INVAL,
	           "line 2, column 10: timeout: '30x' is not a duration");
	expect_err("steps: [make]\ntimeout: m\n", ERR_INVAL, "timeout: 'm' is not a duration");
	expect_err("steps: [make]\ntimeout: -5\n", ERR_INVAL, "timeout: '-5' is not a duration");
	expect_err("steps: [make]\ntimeout: 1.5h\n", ERR_INVAL, "is not a duration");
	expect_err("steps: [make]\ntimeout: 30 m\n", ERR_INVAL, "is not a duration");
	expect_err("steps: [make]\ntimeout: 0\n", ERR_INVAL, "line 2, column 10: timeout: must be from 1s");
	expect_err("steps: [make]\ntimeout: 169h\n", ERR_INVAL, "timeout: must be from 1s to 168h");
	expect_err("steps: [make]\ntimeout: 99999999999999999999999999999\n", ERR_INVAL,
	           "timeout: must be from");
}

static void test_aliases(void **state)
{
	(void)state;
	expect_err("env: &e\n  A: b\nsteps: [make]\ncache: *e\n", ERR_INVAL,
	           "line 1, column 6: anchors and aliases");
	expect_err("steps: &s [make, *s]\n", ERR_INVAL, "anchors and aliases");
	/* Billion laughs stays small and is refused. */
	expect_err("a: &a [x, x, x, x, x, x, x, x, x]\n"
	           "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	           "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	           "steps: [*d]\n",
	           ERR_INVAL, "anchors and aliases");
}

/* A tiny PRNG with its state on the caller's stack (xorshift64). */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void test_deploy(void **state)
{
	static const char text[] = "targets: [aarch64-unknown-linux-gnu]\n"
	                           "steps: [make]\n"
	                           "deploy:\n"
	                           "  - group: lab\n"
	                           "    on: {branch: [main, \"release/*\"]}\n"
	                           "    install: /opt/ems\n"
	                           "    files: [hello, bin/tool]\n"
	                           "    restart: systemctl restart ems\n"
	                           "    health: ./current/hello | grep -q hello\n"
	                           "    health_timeout: 45s\n"
	                           "    keep: 3\n"
	                           "    strategy: {canary: 2, batch: \"25%\"}\n"
	                           "  - group: field\n"
	                           "    on: {tag: \"v*\"}\n"
	                           "    install: /opt/ems\n"
	                           "    files: [hello]\n"
	                           "    target: aarch64-unknown-linux-gnu\n"
	                           "    strategy: {batch: 4}\n";
	struct pipefile *pf = parse_ok(text);
	const struct pipefile_deploy *d;

	(void)state;
	assert_int_equal(pf->n_deploys, 2);
	d = &pf->deploys[0];
	assert_string_equal(d->group, "lab");
	assert_string_equal(d->install, "/opt/ems");
	assert_int_equal(d->files.n, 2);
	assert_string_equal(d->files.v[1], "bin/tool");
	assert_null(d->target);
	assert_string_equal(d->restart, "systemctl restart ems");
	assert_string_equal(d->health, "./current/hello | grep -q hello");
	assert_int_equal(d->health_timeout_s, 45);
	assert_int_equal(d->keep, 3);
	assert_int_equal(d->canary, 2);
	assert_int_equal(d->batch_pct, 25);
	assert_int_equal(d->batch_count, 0);
	assert_true(pipefile_deploy_on_match(d, "refs/heads/main"));
	assert_true(pipefile_deploy_on_match(d, "refs/heads/release/2"));
	assert_false(pipefile_deploy_on_match(d, "refs/heads/dev"));
	assert_false(pipefile_deploy_on_match(d, "refs/tags/main"));
	d = &pf->deploys[1];
	assert_string_equal(d->target, "aarch64-unknown-linux-gnu");
	assert_null(d->restart);
	assert_int_equal(d->canary, 1);
	assert_int_equal(d->batch_count, 4);
	assert_true(pipefile_deploy_on_match(d, "refs/tags/v1.2"));
	assert_false(pipefile_deploy_on_match(d, "refs/heads/v1"));
	pipefile_free(pf);

	/* no on: never automatic */
	pf = parse_ok("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a]}]\n");
	assert_false(pipefile_deploy_on_match(&pf->deploys[0], "refs/heads/main"));
	pipefile_free(pf);
}

static void test_deploy_errors(void **state)
{
	(void)state;
	expect_err("steps: [make]\ndeploy: {group: g}\n", ERR_INVAL,
	           "line 2, column 9: deploy: expected a sequence");
	expect_err("steps: [make]\ndeploy:\n  - install: /opt/a\n    files: [a]\n", ERR_INVAL,
	           "line 3, column 5: deploy[0]: missing 'group'");
	expect_err("steps: [make]\ndeploy: [{group: g, files: [a]}]\n", ERR_INVAL,
	           "deploy[0]: missing 'install'");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a}]\n", ERR_INVAL,
	           "deploy[0]: missing 'files'");
	expect_err("steps: [make]\ndeploy: [{group: g, install: opt, files: [a]}]\n", ERR_INVAL,
	           "deploy[0].install: 'opt' must be an absolute directory");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [../a]}]\n", ERR_INVAL,
	           "deploy[0].files[0]: '../a' has a '..' component");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [\"*.bin\"]}]\n", ERR_INVAL,
	           "not a glob");
	expect_err("steps: [make]\ndeploy: [{group: \"a b\", install: /opt/a, files: [a]}]\n", ERR_INVAL,
	           "deploy[0].group: 'a b' is not a group name");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], colour: red}]\n",
	           ERR_INVAL, "line 2, column 50: deploy[0]: unknown key 'colour'");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], on: {event: push}}]\n",
	           ERR_INVAL, "deploy[0].on: unknown key 'event'");
	expect_err(
	    "steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], strategy: {batch: \"0%\"}}]\n",
	    ERR_INVAL, "deploy[0].strategy.batch: percentage from 1% to 100%");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], strategy: {batch: 0}}]\n",
	           ERR_INVAL, "at least 1 board per batch");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], keep: many}]\n",
	           ERR_INVAL, "deploy[0].keep: 'many' is not an integer from 0 to 100");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], health_timeout: soon}]\n",
	           ERR_INVAL, "(deploy[0].health_timeout)");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a]},"
	           " {group: g, install: /opt/b, files: [b]}]\n",
	           ERR_INVAL, "deploy[1]: group 'g' already has an entry");
	expect_err("steps: [make]\ndeploy: [{group: g, install: /opt/a, files: [a], restart: \"\"}]\n",
	           ERR_INVAL, "deploy[0].restart: must be 1 to 4096 bytes");
}

static void test_random_mutations(void **state)
{
	static const char seed_text[] =
	    "targets: [aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu]\n"
	    "env:\n  RUST_BACKTRACE: \"1\"\n  N: 4\n"
	    "steps:\n  - name: build\n    run: make\n"
	    "  - run: |\n      make check\n      echo ok\n"
	    "  - make install\n"
	    "artifacts: [app, \"out/*.bin\"]\n"
	    "network: false\ntimeout: 30m\n"
	    "deploy: [{group: lab, install: /opt/a, files: [app], on: {branch: main},"
	    " strategy: {canary: 1, batch: \"50%\"}}]\n";
	static const char interesting[] = "-:[]{}|>&*!?#'\"\\\n\t ,.%@`0aZ";
	uint64_t rng = 0x5eed0fa7f11eULL;
	char buf[sizeof(seed_text) * 2];
	size_t ok = 0, failed = 0;
	int round;

	(void)state;
	for (round = 0; round < 10000; round++) {
		size_t len = sizeof(seed_text) - 1;
		int m, nmut = 1 + (int)(rng_next(&rng) % 4);
		struct pipefile *pf = NULL;
		struct err err;

		memcpy(buf, seed_text, len);
		for (m = 0; m < nmut; m++) {
			size_t pos = (size_t)(rng_next(&rng) % len);
			uint64_t r = rng_next(&rng);

			switch (r % 4) {
			case 0: /* overwrite */
				buf[pos] = (r >> 8) % 3 == 0
				               ? (char)(r >> 16)
				               : interesting[(r >> 16) % (sizeof(interesting) - 1)];
				break;
			case 1: /* insert */
				if (len + 1 < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = interesting[(r >> 16) % (sizeof(interesting) - 1)];
					len++;
				}
				break;
			case 2: /* delete */
				if (len > 1) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			default: /* truncate */
				len = pos + 1;
				break;
			}
		}
		err_clear(&err);
		if (pipefile_parse(buf, len, &pf, &err) == 0) {
			assert_non_null(pf);
			assert_true(pf->n_steps >= 1 && pf->n_steps <= PIPEFILE_MAX_STEPS);
			assert_true(pf->targets.n >= 1 && pf->targets.n <= PIPEFILE_MAX_TARGETS);
			assert_non_null(pf->steps[0].run);
			assert_non_null(pf->steps[0].name);
			pipefile_free(pf);
			ok++;
		} else {
			assert_null(pf);
			assert_true(err.code == ERR_INVAL || err.code == ERR_LIMIT);
			/* Every content error points at its line. */
			if (strncmp(err.msg, "line ", 5) != 0)
				fail_msg("round %d: message without a line: %s", round, err.msg);
			failed++;
		}
	}
	/* The mutations must exercise both outcomes to be worth anything. */
	print_message("mutations: %zu parsed, %zu refused\n", ok, failed);
	assert_true(ok > 100);
	assert_true(failed > 1000);
}

static void test_when_rules(void **state)
{
	static const char text[] = "steps: [make]\n"
	                           "when:\n"
	                           "  branch: [main, \"release/*\"]\n"
	                           "  tag: [\"v*\"]\n"
	                           "  event: [push, tag, manual]\n"
	                           "  path: [\"src/**\", Cargo.toml]\n";
	const char *src[] = {"README.md", "src/net/tcp.c"};
	const char *doc[] = {"README.md", "docs/x.md"};
	const char *cargo[] = {"Cargo.toml"};
	struct pipefile *pf = parse_ok(text);
	const struct pipefile_when *w = &pf->when;

	(void)state;
	assert_int_equal(w->branch.n, 2);
	assert_int_equal(w->tag.n, 1);
	assert_int_equal(w->event.n, 3);
	assert_int_equal(w->path.n, 2);
	assert_true(pipefile_when_match(w, "refs/heads/main", "push", src, 2));
	assert_true(pipefile_when_match(w, "refs/heads/release/1.2", "push", cargo, 1));
	/* '*' stays inside a segment. */
	assert_false(pipefile_when_match(w, "refs/heads/release/1/x", "push", src, 2));
	assert_false(pipefile_when_match(w, "refs/heads/feature", "push", src, 2));
	/* No changed path matches. */
	assert_false(pipefile_when_match(w, "refs/heads/main", "push", doc, 2));
	/* Paths unknown (the trigger API) or none sent: path rules are ignored. */
	assert_true(pipefile_when_match(w, "refs/heads/main", "manual", NULL, 0));
	assert_true(pipefile_when_match(w, "refs/heads/main", "push", doc, 0));
	/* Tags: the tag rule, not the branch rule. */
	assert_true(pipefile_when_match(w, "refs/tags/v1.0", "tag", NULL, 0));
	assert_false(pipefile_when_match(w, "refs/tags/nightly", "tag", NULL, 0));
	pipefile_free(pf);

	/* A single scalar is a one-entry list; event alone. */
	pf = parse_ok("steps: [make]\nwhen: {event: tag}\n");
	assert_int_equal(pf->when.event.n, 1);
	assert_false(pipefile_when_match(&pf->when, "refs/heads/main", "push", NULL, 0));
	assert_true(pipefile_when_match(&pf->when, "refs/tags/v2", "tag", NULL, 0));
	pipefile_free(pf);

	/* No when: always. */
	pf = parse_ok("steps: [make]\n");
	assert_true(pipefile_when_match(&pf->when, "refs/heads/x", "push", doc, 2));
	pipefile_free(pf);
}

static void test_when_errors(void **state)
{
	(void)state;
	expect_err("steps: [make]\nwhen: [main]\n", ERR_INVAL, "line 2, column 7: when: expected a mapping");
	expect_err("steps: [make]\nwhen:\n  branches: [main]\n", ERR_INVAL,
	           "line 3, column 3: when: unknown key 'branches' (known: branch, tag, event, path)");
	expect_err("steps: [make]\nwhen:\n  event: [push, pull-request]\n", ERR_INVAL,
	           "line 3, column 17: when.event[1]: unknown event 'pull-request'");
	expect_err("steps: [make]\nwhen:\n  branch: [main]\n  branch: [dev]\n", ERR_INVAL,
	           "line 4, column 3: when: duplicate key 'branch'");
	expect_err("steps: [make]\nwhen:\n  path: [{a: b}]\n", ERR_INVAL,
	           "line 3, column 10: when.path[0]: expected a scalar");
	expect_err("steps: [make]\nwhen:\n  tag: [\"\"]\n", ERR_INVAL,
	           "line 3, column 9: when.tag[0]: must be 1 to");
	expect_err("steps: [make]\nwhen:\n  branch: {a: b}\n", ERR_INVAL,
	           "line 3, column 11: when.branch: expected a sequence, found a mapping");
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(pipefile_glob_match("src/**", "src/a/b/c.c"));
	assert_true(pipefile_glob_match("src/**", "src/x"));
	assert_false(pipefile_glob_match("src/**", "lib/src/x"));
	assert_true(pipefile_glob_match("**/*.c", "a/b/c.c"));
	assert_true(pipefile_glob_match("**.c", "main.c"));
	assert_true(pipefile_glob_match("a/**/b", "a/b"));
	assert_true(pipefile_glob_match("a/**/b", "a/x/y/b"));
	assert_false(pipefile_glob_match("a/**/b", "a/x/c"));
	assert_true(pipefile_glob_match("*.md", "README.md"));
	assert_false(pipefile_glob_match("*.md", "docs/README.md"));
	assert_true(pipefile_glob_match("release/*", "release/1.0"));
	assert_false(pipefile_glob_match("release/*", "release/1/0"));
	assert_true(pipefile_glob_match("Cargo.toml", "Cargo.toml"));
	/* Many double stars stay bounded. */
	assert_false(
	    pipefile_glob_match("**a**b**c**d**e**", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
}

static int find_unit(const struct pipefile_unit *u, size_t n, const char *name, const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(u[i].name, name) == 0 && strcmp(u[i].target, target) == 0)
			return (int)i;
	fail_msg("no unit %s for %s", name, target);
	return -1;
}

static void test_jobs_needs(void **state)
{
	static const char text[] = "env: {A: top, B: top}\n"
	                           "network: true\n"
	                           "jobs:\n"
	                           "  build:\n"
	                           "    targets: [aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu]\n"
	                           "    steps: [make]\n"
	                           "    artifacts: [app]\n"
	                           "    env: {B: job}\n"
	                           "  test:\n"
	                           "    targets: [aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu]\n"
	                           "    needs: [build]\n"
	                           "    labels: [site=lab, gpu=yes]\n"
	                           "    network: false\n"
	                           "    steps: [./app --test]\n"
	                           "  package:\n"
	                           "    needs: test\n"
	                           "    steps: [tar cf all.tar .]\n";
	struct pipefile *pf = parse_ok(text);
	struct pipefile_unit *u = NULL;
	size_t n = 0;
	struct err err;
	int b0, b1, t0, t1, p;

	(void)state;
	assert_int_equal(pf->n_jobs, 3);
	assert_string_equal(pf->jobs[0].name, "build");
	assert_int_equal(pf->jobs[0].line, 4);
	/* top-level env and network are defaults a job may override */
	assert_int_equal(pf->jobs[0].body->env.n, 2);
	assert_string_equal(pf->jobs[0].body->env.v[0], "A=top");
	assert_string_equal(pf->jobs[0].body->env.v[1], "B=job");
	assert_int_equal(pf->jobs[0].body->network, 1);
	assert_int_equal(pf->jobs[1].body->network, 0);
	assert_int_equal(pf->jobs[1].labels.n, 2);
	assert_string_equal(pf->jobs[1].labels.v[1], "gpu=yes");
	assert_string_equal(pf->jobs[2].body->targets.v[0], "host");
	if (pipefile_expand(pf, NULL, NULL, &u, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 5);
	b0 = find_unit(u, n, "build", "aarch64-unknown-linux-gnu");
	b1 = find_unit(u, n, "build", "x86_64-unknown-linux-gnu");
	t0 = find_unit(u, n, "test", "aarch64-unknown-linux-gnu");
	t1 = find_unit(u, n, "test", "x86_64-unknown-linux-gnu");
	p = find_unit(u, n, "package", "host");
	/* same target when the needed job has it, else all of its instances */
	assert_int_equal(u[t0].n_needs, 1);
	assert_int_equal(u[t0].needs[0], b0);
	assert_int_equal(u[t1].n_needs, 1);
	assert_int_equal(u[t1].needs[0], b1);
	assert_int_equal(u[p].n_needs, 2);
	assert_int_equal(u[p].needs[0], t0);
	assert_int_equal(u[p].needs[1], t1);
	assert_int_equal(u[b0].n_needs, 0);
	pipefile_units_free(u, n);
	pipefile_free(pf);
}

static void test_single_form_unit(void **state)
{
	struct pipefile *pf = parse_ok("targets: [a-b-c, d-e-f]\nenv: {X: 1}\nsteps: [make]\n");
	struct pipefile_unit *u = NULL;
	size_t n = 0;
	struct err err;

	(void)state;
	assert_int_equal(pf->n_jobs, 0);
	if (pipefile_expand(pf, NULL, NULL, &u, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 2);
	assert_string_equal(u[0].name, "build");
	assert_string_equal(u[1].target, "d-e-f");
	assert_string_equal(u[1].env.v[0], "X=1");
	assert_ptr_equal(pipefile_unit_body(pf, &u[0]), pf);
	pipefile_units_free(u, n);
	pipefile_free(pf);
}

static void test_jobs_errors(void **state)
{
	(void)state;
	expect_err("jobs:\n  a:\n    steps: [x]\n    needs: [b]\n", ERR_INVAL,
	           "line 4, column 13: jobs.a: needs: no job named 'b'");
	expect_err("jobs:\n  a:\n    steps: [x]\n    needs: [b]\n  b:\n    steps: [x]\n    needs: [a]\n",
	           ERR_INVAL, "needs: cycle");
	expect_err("jobs:\n  a:\n    steps: [x]\n    needs: [a]\n", ERR_INVAL,
	           "line 4, column 13: jobs.a: needs: cycle a->a");
	expect_err("steps: [x]\njobs:\n  a:\n    steps: [x]\n", ERR_INVAL,
	           "line 1, column 1: 'steps' goes under a job");
	expect_err("jobs:\n  a:\n    run: x\n", ERR_INVAL, "jobs.a: unknown key 'run'");
	expect_err("jobs:\n  a:\n    targets: [x]\n", ERR_INVAL, "jobs.a: missing 'steps'");
	expect_err("jobs:\n  a b:\n    steps: [x]\n", ERR_INVAL, "'a b' is not a job name");
	expect_err("jobs:\n  a:\n    steps: [x]\n  a:\n    steps: [y]\n", ERR_INVAL, "duplicate job 'a'");
	expect_err("jobs:\n  a:\n    steps: [x]\n    labels: [site]\n", ERR_INVAL, "'site' is not key=value");
	expect_err("jobs:\n  a:\n    steps: [x]\n    labels: [\"a=b,c=d\"]\n", ERR_INVAL, "is not key=value");
	expect_err("jobs: {}\n", ERR_INVAL, "jobs: expected a non-empty mapping");
}

static void test_jobs_caps(void **state)
{
	struct buf b = BUF_INIT;
	struct pipefile *pf = NULL;
	struct pipefile_unit *u = NULL;
	size_t n = 0;
	struct err err;

	(void)state;
	/* too many jobs */
	buf_appendf(&b, "jobs:\n");
	for (int i = 0; i <= PIPEFILE_MAX_JOBS; i++)
		buf_appendf(&b, "  j%d: {steps: [x]}\n", i);
	expect_err(b.data, ERR_LIMIT, "jobs: 33 jobs, limit 32");
	buf_reset(&b);
	/* a needs chain one job deeper than the cap */
	buf_appendf(&b, "jobs:\n  j0: {steps: [x]}\n");
	for (int i = 1; i <= PIPEFILE_MAX_DEPTH; i++)
		buf_appendf(&b, "  j%d: {steps: [x], needs: [j%d]}\n", i, i - 1);
	expect_err(b.data, ERR_LIMIT, "needs: a chain of 9 jobs, limit 8");
	buf_reset(&b);
	/* a matrix past the cap of expanded jobs: refused by the expansion */
	buf_appendf(&b, "jobs:\n  t:\n    steps: [x]\n    targets: [a, b, c]\n    matrix:\n"
	                "      A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n"
	                "      B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n");
	if (parse_str(b.data, &pf, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(pipefile_expand(pf, NULL, NULL, &u, &n, &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
	assert_non_null(strstr(err.msg, "more than 128 jobs"));
	assert_null(u);
	pipefile_free(pf);
	buf_release(&b);
}

static int only_a(void *arg, const char *target)
{
	(void)arg;
	return strcmp(target, "a") == 0;
}

static void test_matrix(void **state)
{
	static const char text[] =
	    "jobs:\n"
	    "  build:\n"
	    "    targets: [a, b]\n"
	    "    steps: [make]\n"
	    "  test:\n"
	    "    targets: [a, b]\n"
	    "    needs: [build]\n"
	    "    env: {MODE: none, KEEP: 1}\n"
	    "    steps: [make check]\n"
	    "    matrix:\n"
	    "      MODE: [debug, release]\n"
	    "      CC: [gcc, clang]\n"
	    "      exclude: [{target: b, CC: clang}, {MODE: release, CC: clang}]\n"
	    "      include: [{target: b, MODE: asan, CC: clang}, {MODE: debug, CC: gcc}]\n";
	struct pipefile *pf = parse_ok(text);
	struct pipefile_unit *u = NULL;
	size_t n = 0;
	struct err err;
	int c;

	(void)state;
	if (pipefile_expand(pf, NULL, NULL, &u, &n, &err) < 0)
		fail_msg("%s", err.msg);
	/* build a, build b; a: debug/gcc, release/gcc, debug/clang; b: debug/gcc,
	 * release/gcc, asan/clang (the second include is a cell already) */
	assert_int_equal(n, 8);
	find_unit(u, n, "test (a, MODE=debug, CC=gcc)", "a");
	find_unit(u, n, "test (a, MODE=debug, CC=clang)", "a");
	find_unit(u, n, "test (a, MODE=release, CC=gcc)", "a");
	find_unit(u, n, "test (b, MODE=release, CC=gcc)", "b");
	c = find_unit(u, n, "test (b, MODE=asan, CC=clang)", "b");
	assert_int_equal(u[c].env.n, 3);
	assert_string_equal(u[c].env.v[0], "KEEP=1");
	assert_string_equal(u[c].env.v[1], "MODE=asan");
	assert_string_equal(u[c].env.v[2], "CC=clang");
	assert_int_equal(u[c].n_needs, 1);
	assert_string_equal(u[u[c].needs[0]].target, "b");
	pipefile_units_free(u, n);
	/* a target filter (anvil trigger --target) drops the other cells */
	if (pipefile_expand(pf, only_a, NULL, &u, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 4);
	pipefile_units_free(u, n);
	pipefile_free(pf);
	expect_err("jobs:\n  t:\n    steps: [x]\n    matrix: {OS: [a], include: [{ARCH: x}]}\n", ERR_INVAL,
	           "'ARCH' is neither an axis nor 'target'");
	expect_err("jobs:\n  t:\n    steps: [x]\n    matrix: {target: [a]}\n", ERR_INVAL,
	           "the target axis is the job's 'targets:'");
	expect_err("jobs:\n  t:\n    steps: [x]\n    matrix: {include: [{target: z}]}\n", ERR_INVAL,
	           "matrix.include names target 'z'");
}

static void test_step_timeout_on(void **state)
{
	struct pipefile *pf = parse_ok("steps:\n"
	                               "  - make\n"
	                               "  - {run: make check, timeout: 90s}\n"
	                               "  - {run: cat log, on: failure}\n"
	                               "  - {run: rm -rf tmp, on: always, timeout: 2m}\n"
	                               "  - {run: deploy, on: success}\n");

	(void)state;
	assert_int_equal(pf->n_steps, 5);
	assert_int_equal(pf->steps[0].timeout_s, 0);
	assert_int_equal(pf->steps[0].on, PIPEFILE_ON_SUCCESS);
	assert_int_equal(pf->steps[1].timeout_s, 90);
	assert_int_equal(pf->steps[2].on, PIPEFILE_ON_FAILURE);
	assert_int_equal(pf->steps[3].on, PIPEFILE_ON_ALWAYS);
	assert_int_equal(pf->steps[3].timeout_s, 120);
	assert_int_equal(pf->steps[4].on, PIPEFILE_ON_SUCCESS);
	pipefile_free(pf);
	expect_err("steps:\n  - {run: x, on: sometimes}\n", ERR_INVAL,
	           "line 2, column 18: steps[0].on: expected success, failure or always, found 'sometimes'");
	expect_err("steps:\n  - {run: x, timeout: 5x}\n", ERR_INVAL, "(steps[0].timeout)");
	expect_err("steps:\n  - {run: x, on: always, on: failure}\n", ERR_INVAL, "duplicate key 'on'");
}

/* `services:` (issue 15): named sidecars with packages, command, ready,
 * ready_timeout and env, at the top level (every job's default) or per
 * job; errors name their line. */
static void test_services(void **state)
{
	struct pipefile *pf;
	char big[PIPEFILE_MAX_SERVICE_TEXT + 64];
	struct buf b = BUF_INIT;

	(void)state;
	pf = parse_ok("services:\n"
	              "  db:\n"
	              "    packages: [mariadb-server]\n"
	              "    command: exec mariadbd --datadir=/tmp/db\n"
	              "    ready: mariadb-admin -h 127.0.0.1 ping\n"
	              "    ready_timeout: 2m\n"
	              "    env: {TZ: UTC}\n"
	              "  mqtt:\n"
	              "    command: mosquitto\n"
	              "    ready: mosquitto_pub -h 127.0.0.1 -t t -n\n"
	              "steps: [make]\n");
	assert_int_equal(pf->n_services, 2);
	assert_string_equal(pf->services[0].name, "db");
	assert_int_equal(pf->services[0].packages.n, 1);
	assert_string_equal(pf->services[0].packages.v[0], "mariadb-server");
	assert_string_equal(pf->services[0].command, "exec mariadbd --datadir=/tmp/db");
	assert_string_equal(pf->services[0].ready, "mariadb-admin -h 127.0.0.1 ping");
	assert_int_equal(pf->services[0].ready_timeout_s, 120);
	assert_int_equal(pf->services[0].env.n, 1);
	assert_string_equal(pf->services[0].env.v[0], "TZ=UTC");
	assert_string_equal(pf->services[1].name, "mqtt");
	assert_int_equal(pf->services[1].packages.n, 0);
	assert_int_equal(pf->services[1].ready_timeout_s, PIPEFILE_SERVICE_READY_DEFAULT_S);
	pipefile_free(pf);
	pf = parse_ok("services:\nsteps: [make]\n");
	assert_int_equal(pf->n_services, 0);
	pipefile_free(pf);

	/* jobs: the top level's services are each job's default; a job's own replace them */
	pf = parse_ok("services: {db: {command: a, ready: b}}\n"
	              "jobs:\n"
	              "  a: {steps: [make]}\n"
	              "  b:\n"
	              "    steps: [make]\n"
	              "    services: {mq: {command: c, ready: d}, mq2: {command: e, ready: f}}\n"
	              "  c: {steps: [make], services: {}}\n");
	assert_int_equal(pf->jobs[0].body->n_services, 1);
	assert_string_equal(pf->jobs[0].body->services[0].name, "db");
	assert_string_equal(pf->jobs[0].body->services[0].ready, "b");
	assert_int_equal(pf->jobs[1].body->n_services, 2);
	assert_string_equal(pf->jobs[1].body->services[1].command, "e");
	assert_int_equal(pf->jobs[2].body->n_services, 0);
	pipefile_free(pf);

	expect_err("steps: [make]\nservices: [db]\n", ERR_INVAL,
	           "line 2, column 11: services: expected a mapping of services, found a sequence");
	expect_err("steps: [make]\nservices:\n  db: mariadbd\n", ERR_INVAL,
	           "line 3, column 7: services.db: expected a mapping, found a scalar");
	expect_err("steps: [make]\nservices:\n  db:\n    ready: x\n", ERR_INVAL,
	           "line 4, column 5: services.db: missing 'command'");
	expect_err("steps: [make]\nservices:\n  db:\n    command: x\n", ERR_INVAL,
	           "line 4, column 5: services.db: missing 'ready'");
	expect_err("steps: [make]\nservices:\n  db:\n    command: x\n    ready: y\n    image: mysql\n",
	           ERR_INVAL,
	           "line 6, column 5: services.db: unknown key 'image' (known: packages, command, ready, "
	           "ready_timeout, env)");
	expect_err("steps: [make]\nservices:\n  db:\n    command: x\n    command: y\n    ready: y\n",
	           ERR_INVAL, "line 5, column 5: services.db: duplicate key 'command'");
	expect_err("steps: [make]\nservices:\n  db: {command: \"  \", ready: y}\n", ERR_INVAL,
	           "line 3, column 17: services.db.command: empty command");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: [y]}\n", ERR_INVAL,
	           "line 3, column 27: services.db.ready: expected a scalar");
	expect_err("steps: [make]\nservices:\n  -db: {command: x, ready: y}\n", ERR_INVAL,
	           "line 3, column 3: services: '-db' is not a service name");
	expect_err("steps: [make]\nservices:\n  a.b: {command: x, ready: y}\n", ERR_INVAL,
	           "services: 'a.b' is not a service name");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y}\n  db: {command: x, ready: y}\n",
	           ERR_INVAL, "line 4, column 3: services: duplicate service 'db'");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, packages: ['rm -rf /']}\n",
	           ERR_INVAL,
	           "line 3, column 41: services.db.packages[0]: 'rm -rf /' is not a Debian package name");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, packages: [a, a]}\n", ERR_INVAL,
	           "services.db.packages[1]: duplicate package 'a'");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, packages: a}\n", ERR_INVAL,
	           "services.db.packages: expected a sequence, found a scalar");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, ready_timeout: 5x}\n", ERR_INVAL,
	           "line 3, column 45: timeout: '5x' is not a duration");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, ready_timeout: 2h}\n", ERR_INVAL,
	           "services.db.ready_timeout: at most 1800s");
	expect_err("steps: [make]\nservices:\n  db: {command: x, ready: y, env: {1A: b}}\n", ERR_INVAL,
	           "env: '1A' is not a variable name");
	expect_err("steps: [make]\nnetwork: true\nservices:\n  db: {command: x, ready: y}\n", ERR_INVAL,
	           "line 1, column 1: services need the job's own network namespace");
	expect_err("services: {db: {command: x, ready: y}}\njobs:\n  a: {steps: [make], network: true}\n",
	           ERR_INVAL, "line 3, column 3: jobs.a: services need the job's own network namespace");
	expect_err("steps: [make]\nservices: {db: {command: x, ready: y}}\nservices: {}\n", ERR_INVAL,
	           "line 3, column 1: duplicate key 'services'");
	expect_err("jobs:\n  a: {steps: [make], services: 3}\n", ERR_INVAL,
	           "line 2, column 32: services: expected a mapping of services, found a scalar");

	/* caps */
	buf_appendf(&b, "steps: [make]\nservices:\n");
	for (int i = 0; i <= PIPEFILE_MAX_SERVICES; i++)
		buf_appendf(&b, "  s%d: {command: x, ready: y}\n", i);
	expect_err(b.data, ERR_LIMIT, "line 3, column 3: services: 9 services, limit 8");
	buf_release(&b);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_appendf(&b, "steps: [make]\nservices:\n  db:\n    ready: y\n    command: %s\n", big);
	expect_err(b.data, ERR_LIMIT, "line 5, column 14: services.db.command: 16447 bytes, limit 16384");
	buf_release(&b);
	buf_appendf(&b, "steps: [make]\nservices:\n  %s: {command: x, ready: y}\n",
	            "a234567890123456789012345678901234");
	expect_err(b.data, ERR_INVAL, "is not a service name");
	buf_release(&b);
}

/* `tools:` holds Debian package names, each checked like a recipe's, with
 * the line of a bad one; it reaches the job spec as a list. */
static void test_tools(void **state)
{
	struct pipefile *pf;

	(void)state;
	pf = parse_ok("targets: [aarch64-unknown-linux-gnu]\n"
	              "tools: [autoconf, automake, libtool, texinfo, g++-12]\n"
	              "steps: [make]\n");
	assert_int_equal(pf->tools.n, 5);
	assert_string_equal(pf->tools.v[0], "autoconf");
	assert_string_equal(pf->tools.v[4], "g++-12");
	pipefile_free(pf);
	pf = parse_ok("tools:\nsteps: [make]\n");
	assert_int_equal(pf->tools.n, 0);
	pipefile_free(pf);
	expect_err("steps: [make]\ntools:\n  - autoconf\n  - 'rm -rf /'\n", ERR_INVAL,
	           "line 4, column 5: tools[1]: 'rm -rf /' is not a Debian package name");
	expect_err("steps: [make]\ntools: [Autoconf]\n", ERR_INVAL,
	           "line 2, column 9: tools[0]: 'Autoconf' is not a Debian package name");
	expect_err("steps: [make]\ntools: [libssl-dev:arm64]\n", ERR_INVAL, "is not a Debian package name");
	expect_err("steps: [make]\ntools: autoconf\n", ERR_INVAL,
	           "line 2, column 8: tools: expected a sequence, found a scalar");
	expect_err("steps: [make]\ntools: [make, make]\n", ERR_INVAL, "tools[1]: duplicate tool 'make'");
	expect_err("steps: [make]\ntools: [a]\ntools: [b]\n", ERR_INVAL, "duplicate key 'tools'");
	/* with jobs:, every job gets the top-level tools */
	pf = parse_ok("tools: [autoconf]\njobs:\n  a: {steps: [make]}\n  b: {steps: [make], needs: [a]}\n");
	assert_int_equal(pf->n_jobs, 2);
	assert_int_equal(pf->jobs[1].body->tools.n, 1);
	assert_string_equal(pf->jobs[1].body->tools.v[0], "autoconf");
	pipefile_free(pf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_file),
	    cmocka_unit_test(test_unknown_key_lists_every_key),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_plain_string_steps),
	    cmocka_unit_test(test_unterminated_buffer),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_structure_errors),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_too_many_targets),
	    cmocka_unit_test(test_env_key),
	    cmocka_unit_test(test_too_many_steps),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_artifacts),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_random_mutations),
	    cmocka_unit_test(test_when_rules),
	    cmocka_unit_test(test_when_errors),
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_deploy),
	    cmocka_unit_test(test_deploy_errors),
	    cmocka_unit_test(test_jobs_needs),
	    cmocka_unit_test(test_single_form_unit),
	    cmocka_unit_test(test_jobs_errors),
	    cmocka_unit_test(test_jobs_caps),
	    cmocka_unit_test(test_matrix),
	    cmocka_unit_test(test_step_timeout_on),
	    cmocka_unit_test(test_tools),
	    cmocka_unit_test(test_services),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
