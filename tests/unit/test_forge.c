#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "server/forge/forge.h"
#include "server/forge/status.h"
#include "server/store/store.h"

#define FIXTURES "tests/fixtures/webhooks"

/* Reads a file of the source tree, found from this file's own path. */
static char *slurp(const char *name, size_t *len)
{
	char path[1024];
	const char *self = __FILE__, *cut = strstr(self, "tests/unit/");
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%.*s%s", cut ? (int)(cut - self) : 0, self, name);
	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void parse_fixture(const char *forge, const char *file, struct forge_push *p)
{
	struct err err = {0};
	size_t len;
	char *body = slurp(file, &len);

	if (forge_find(forge)->parse_push(body, len, p, &err) < 0)
		fail_msg("%s: %s", file, err.msg);
	free(body);
}

static void test_github_push(void **state)
{
	struct forge_push p;

	(void)state;
	parse_fixture("github", FIXTURES "/github_push.json", &p);
	assert_string_equal(p.ref, "refs/heads/main");
	assert_string_equal(p.after, "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
	assert_string_equal(p.commit, p.after);
	assert_string_equal(p.before, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
	assert_string_equal(p.repo, "acme/demo");
	assert_string_equal(p.pusher, "octocat");
	assert_string_equal(p.message, "src: faster checksum");
	assert_true(p.paths_known);
	assert_int_equal(p.paths.n, 3);
	assert_string_equal(p.paths.v[0], "Makefile");
	assert_string_equal(p.paths.v[1], "src/crc.c");
	assert_string_equal(p.paths.v[2], "src/main.c");
	assert_false(p.deleted);
	forge_push_release(&p);

	parse_fixture("github", FIXTURES "/github_delete.json", &p);
	assert_true(p.deleted);
	assert_false(p.paths_known);
	forge_push_release(&p);
}

static void test_other_forges(void **state)
{
	struct forge_push p;

	(void)state;
	parse_fixture("gitea", FIXTURES "/gitea_push.json", &p);
	assert_string_equal(p.pusher, "jane");
	assert_string_equal(p.message, "docs: usage\n");
	assert_int_equal(p.paths.n, 2);
	forge_push_release(&p);

	parse_fixture("gitlab", FIXTURES "/gitlab_push.json", &p);
	assert_string_equal(p.repo, "acme/firmware/demo");
	assert_string_equal(p.pusher, "jsmith");
	assert_string_equal(p.message, "Cargo: bump serde\n");
	assert_int_equal(p.paths.n, 1);
	forge_push_release(&p);

	/* An annotated tag: after is the tag object, the commit is checkout_sha. */
	parse_fixture("gitlab", FIXTURES "/gitlab_tag.json", &p);
	assert_string_equal(p.ref, "refs/tags/v1.0.0");
	assert_string_equal(p.after, "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7");
	assert_string_equal(p.commit, "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
	forge_push_release(&p);

	assert_int_equal(forge_gitlab_ops.event("Tag Push Hook"), FORGE_EV_TAG);
	assert_int_equal(forge_gitlab_ops.event("Push Event"), FORGE_EV_PING);
	assert_int_equal(forge_gitlab_ops.event("Merge Request Hook"), FORGE_EV_PR);
	assert_int_equal(forge_gitlab_ops.event("Note Hook"), FORGE_EV_OTHER);
	assert_int_equal(forge_github_ops.event("pull_request"), FORGE_EV_PR);
	assert_int_equal(forge_gitea_ops.event("pull_request_sync"), FORGE_EV_PR);
	assert_int_equal(forge_github_ops.event("ping"), FORGE_EV_PING);
	assert_int_equal(forge_github_ops.event(NULL), FORGE_EV_OTHER);
}

static void test_bad_payloads(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"ref\": 1}",
	    "{\"ref\": \"main\", \"before\": \"x\"}",
	    "{\"ref\": \"refs/heads/a\", \"before\": \"0000000000000000000000000000000000000000\", "
	    "\"after\": "
	    "\"ABCDEF0000000000000000000000000000000000\"}",
	    "{\"ref\": \"refs/heads/a\\nb\", \"before\": \"0000000000000000000000000000000000000000\", "
	    "\"after\": "
	    "\"0000000000000000000000000000000000000000\"}",
	};
	struct forge_push p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err err = {0};
		if (forge_parse_github_like(bad[i], strlen(bad[i]), &p, &err) == 0)
			fail_msg("accepted bad payload %zu", i);
		assert_int_equal(err.code, ERR_INVAL);
		assert_null(p.ref);
	}
}

static void test_verify(void **state)
{
	const char body[] = "{\"zen\": \"x\"}";
	char hex[65], hdr[80];
	struct err err = {0};

	(void)state;
	crypto_hmac_sha256_hex("k", 1, body, strlen(body), hex);
	snprintf(hdr, sizeof(hdr), "sha256=%s", hex);
	assert_int_equal(forge_verify(&forge_github_ops, hdr, "k", body, strlen(body), &err), 0);
	assert_int_equal(forge_verify(&forge_gitea_ops, hex, "k", body, strlen(body), &err), 0);
	assert_int_equal(forge_verify(&forge_gitea_ops, hdr, "k", body, strlen(body), &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(forge_verify(&forge_github_ops, hdr, "other", body, strlen(body), &err), -1);
	assert_int_equal(forge_verify(&forge_github_ops, NULL, "k", body, strlen(body), &err), -1);
	assert_int_equal(forge_verify(&forge_github_ops, hdr, "", body, strlen(body), &err), -1);
	assert_int_equal(forge_verify(&forge_gitlab_ops, "k", "k", body, strlen(body), &err), 0);
	assert_int_equal(forge_verify(&forge_gitlab_ops, "k2", "k", body, strlen(body), &err), -1);
	assert_null(strstr(err.msg, "zen"));
}

static void test_status_requests(void **state)
{
	struct forge_status st = {"",
	                          "T0K",
	                          "https://github.com/acme/demo.git",
	                          "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5",
	                          "success",
	                          "success",
	                          "anvil/aarch64-unknown-linux-gnu",
	                          "http://ci/jobs/7"};
	struct forge_http h = {0};
	struct err err = {0};

	(void)state;
	assert_int_equal(forge_github_ops.status_request(&st, &h, &err), 0);
	assert_string_equal(h.url, "https://api.github.com/repos/acme/demo/statuses/"
	                           "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
	assert_string_equal(h.headers.v[0], "Authorization: Bearer T0K");
	assert_non_null(strstr(h.body, "\"context\":\"anvil/aarch64-unknown-linux-gnu\""));
	assert_non_null(strstr(h.body, "\"target_url\":\"http://ci/jobs/7\""));
	forge_http_release(&h);

	st.repo_url = "https://git.example.com/acme/demo.git";
	assert_int_equal(forge_gitea_ops.status_request(&st, &h, &err), 0);
	assert_string_equal(h.url, "https://git.example.com/api/v1/repos/acme/demo/statuses/"
	                           "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
	assert_string_equal(h.headers.v[0], "Authorization: token T0K");
	forge_http_release(&h);
	/* A clone URL's credentials do not reach the derived API URL. */
	st.repo_url = "https://bot:SECRET@git.example.com:3000/acme/demo.git";
	assert_int_equal(forge_gitea_ops.status_request(&st, &h, &err), 0);
	assert_string_equal(h.url, "https://git.example.com:3000/api/v1/repos/acme/demo/statuses/"
	                           "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5");
	forge_http_release(&h);

	st.repo_url = "git@gitlab.example.com:acme/firmware/demo.git";
	st.api_url = "https://gitlab.example.com/api/v4/";
	st.state = "failure";
	st.description = "failed";
	assert_int_equal(forge_gitlab_ops.status_request(&st, &h, &err), 0);
	assert_string_equal(h.url,
	                    "https://gitlab.example.com/api/v4/projects/acme%2Ffirmware%2Fdemo/statuses/"
	                    "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5?state=failed&name=anvil%2Faarch64-"
	                    "unknown-linux-gnu&target_url=http%3A%2F%2Fci%2Fjobs%2F7&description=failed");
	assert_string_equal(h.headers.v[0], "PRIVATE-TOKEN: T0K");
	assert_null(h.body);
	forge_http_release(&h);

	/* Gitea and GitLab need an API URL they can derive or are given. */
	st.api_url = "";
	st.repo_url = "/srv/git/demo.git";
	assert_int_equal(forge_gitea_ops.status_request(&st, &h, &err), -1);
	assert_null(forge_generic_ops.status_request);

	assert_int_equal(status_backoff_ms(1), 1000);
	assert_int_equal(status_backoff_ms(3), 4000);
	assert_int_equal(status_backoff_ms(40), 300000);
}

/* The queue is filled by the store's triggers in the job's transaction. */
static void test_status_queue(void **state)
{
	struct store *st = NULL;
	struct err err = {0};
	struct repo_cfg rc = {0};
	struct pipeline_new pn = {0};
	struct job_new jn = {"build", "host", "{}", NULL, 1, NULL, 0, 0};
	struct status_row *rows = NULL;
	struct job_row j = {0};
	const char *host = "target=host"; /* an agent label */
	int64_t rid, pid, aid, n = 0;
	size_t nrows = 0;
	int existed = 0, found = 0;

	(void)state;
	assert_int_equal(store_open(":memory:", &st, &err), 0);
	rc.name = "demo";
	rc.url = "https://git.example.com/acme/demo.git";
	rc.forge = "gitea";
	rc.hook_secret = "s";
	rc.status_token = "t";
	rc.api_url = "";
	assert_int_equal(store_repo_configure(st, &rc, 1, &rid, &err), 0);
	pn.repo_id = rid;
	pn.ref = "refs/heads/main";
	pn.commit_sha = "59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5";
	pn.event = "push";
	assert_int_equal(jobstate_pipeline_create(st, &pn, &jn, 1, 1, &pid, &existed, &err), 0);
	assert_int_equal(store_status_pending(st, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobstate_agent_register(st, "a1", "[]", "a1-token-sha256", 1, &aid, &(int){0}, &err),
	                 0);
	assert_int_equal(jobstate_claim(st, aid, &host, 1, 2, 10000, &j, &found, &err), 0);
	assert_true(found);
	assert_int_equal(jobstate_finish(st, j.id, 1, JOB_FAILED, 1, 2, "x", 3, &err), 0);
	job_row_release(&j);
	assert_int_equal(store_status_pending(st, &n, &err), 0);
	assert_int_equal(n, 3);
	/* Only the oldest of a job is due; each is sent in turn. */
	assert_int_equal(store_status_due(st, INT64_MAX / 2, 16, &rows, &nrows, &err), 0);
	assert_int_equal(nrows, 1);
	assert_string_equal(rows[0].state, "pending");
	assert_string_equal(rows[0].description, "queued");
	assert_string_equal(rows[0].token, "t");
	assert_int_equal(store_status_retry(st, rows[0].id, 1, INT64_MAX / 4, "HTTP 500", 0, &err), 0);
	status_rows_free(rows, nrows);
	assert_int_equal(store_status_due(st, INT64_MAX / 8, 16, &rows, &nrows, &err), 0);
	assert_int_equal(nrows, 0); /* the retried one blocks its job's later statuses */
	status_rows_free(rows, nrows);
	assert_int_equal(store_status_due(st, INT64_MAX / 2, 16, &rows, &nrows, &err), 0);
	assert_int_equal(nrows, 1);
	assert_int_equal(store_status_sent(st, rows[0].id, &err), 0);
	status_rows_free(rows, nrows);
	assert_int_equal(store_status_due(st, INT64_MAX / 2, 16, &rows, &nrows, &err), 0);
	assert_string_equal(rows[0].description, "running");
	assert_int_equal(store_status_sent(st, rows[0].id, &err), 0);
	status_rows_free(rows, nrows);
	assert_int_equal(store_status_due(st, INT64_MAX / 2, 16, &rows, &nrows, &err), 0);
	assert_string_equal(rows[0].state, "failure");
	status_rows_free(rows, nrows);

	/* Without a status token nothing is queued. */
	rc.name = "quiet";
	rc.status_token = "";
	assert_int_equal(store_repo_configure(st, &rc, 1, &rid, &err), 0);
	pn.repo_id = rid;
	assert_int_equal(jobstate_pipeline_create(st, &pn, &jn, 1, 1, &pid, &existed, &err), 0);
	assert_int_equal(store_status_pending(st, &n, &err), 0);
	assert_int_equal(n, 1);
	store_free(st);
}

/* Overwrites from (found in s) with to, of the same length. */
static void patch(char *s, const char *from, const char *to)
{
	char *at = strstr(s, from);

	assert_non_null(at);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(at, to, strlen(to));
}

/* Pull and merge requests: the fixtures as sent, then hostile variants. */
static void test_pull_requests(void **state)
{
	struct forge_pr pr;
	struct err err = {0};
	size_t len;
	char *body = slurp(FIXTURES "/github_pull_request.json", &len);
	char *bad;

	(void)state;
	/* The fixture's head SHA is zeros: a valid SHA shape. */
	assert_int_equal(forge_parse_github_pr(body, len, &pr, &err), 0);
	assert_string_equal(pr.action, "opened");
	assert_int_equal(pr.build, 1);
	assert_int_equal(pr.number, 7);
	assert_string_equal(pr.ref, "refs/pull/7/head");
	assert_string_equal(pr.base_branch, "main");
	assert_string_equal(pr.repo, "octo-org/demo");
	assert_int_equal(pr.fork, 0);
	forge_pr_release(&pr);
	/* A fork (another head repository) and a deleted fork (null repo). */
	bad = strdup(body);
	patch(bad, "\"full_name\": \"octo-org/demo\"", "\"full_name\": \"mallory1/demo\"");
	assert_int_equal(forge_parse_github_pr(bad, len, &pr, &err), 0);
	assert_int_equal(pr.fork, 1);
	forge_pr_release(&pr);
	patch(bad, "\"action\": \"opened\"", "\"action\": \"closed\"");
	assert_int_equal(forge_parse_github_pr(bad, len, &pr, &err), 0);
	assert_int_equal(pr.build, 0);
	forge_pr_release(&pr);
	free(bad);
	free(body);
	assert_int_equal(
	    forge_parse_github_pr("{\"action\":\"opened\",\"number\":1,\"pull_request\":{\"head\":"
	                          "{\"sha\":\"xyz\"},\"base\":{\"ref\":\"main\"}}}",
	                          90, &pr, &err),
	    -1);
	assert_non_null(strstr(err.msg, "head commit"));
	assert_int_equal(forge_parse_github_pr("[]", 2, &pr, &err), -1);

	body = slurp(FIXTURES "/gitlab_merge_request.json", &len);
	assert_int_equal(forge_parse_gitlab_mr(body, len, &pr, &err), 0);
	assert_string_equal(pr.action, "open");
	assert_int_equal(pr.build, 1);
	assert_string_equal(pr.ref, "refs/merge-requests/3/head");
	assert_string_equal(pr.repo, "plant/demo");
	assert_int_equal(pr.fork, 0);
	forge_pr_release(&pr);
	bad = strdup(body);
	patch(bad, "\"action\": \"open\"", "\"action\": \"upd8\"");
	assert_int_equal(forge_parse_gitlab_mr(bad, len, &pr, &err), 0);
	assert_int_equal(pr.build, 0);
	forge_pr_release(&pr);
	patch(bad, "\"source_project_id\": 231", "\"source_project_id\": 666");
	assert_int_equal(forge_parse_gitlab_mr(bad, len, &pr, &err), 0);
	assert_int_equal(pr.fork, 1);
	forge_pr_release(&pr);
	patch(bad, "\"target_branch\": \"main\"", "\"target_branch\": \"..ma\"");
	assert_int_equal(forge_parse_gitlab_mr(bad, len, &pr, &err), -1);
	assert_non_null(strstr(err.msg, "base branch"));
	free(bad);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_github_push),   cmocka_unit_test(test_other_forges),
	    cmocka_unit_test(test_pull_requests), cmocka_unit_test(test_bad_payloads),
	    cmocka_unit_test(test_verify),        cmocka_unit_test(test_status_requests),
	    cmocka_unit_test(test_status_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
