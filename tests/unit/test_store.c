/* The store's contract, on SQLite (:memory:) and, when ANVIL_PG_URL names a
 * PostgreSQL database (ctest pg/test_store, tests/pg/run.sh), on PostgreSQL
 * with the schema dropped before each test: migrations, delivery idempotence, claims by target,
 * leases, the transitions through the store, logs and artifacts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include "server/store/store.h"
#include "server/store/store_be.h"

#define SHA_A  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

struct fx {
	struct store *st;
	int64_t repo_id;
	int64_t agent_id;
};

/* The store a test runs on: a fresh SQLite :memory:, or the PostgreSQL
 * database of ANVIL_PG_URL emptied (its schema dropped and made again). */
static const char *test_store_path(void)
{
	const char *url = getenv("ANVIL_PG_URL");
	PGconn *c;
	PGresult *r;

	if (url == NULL || *url == '\0')
		return ":memory:";
	c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
	return url;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct err err = {0};

	assert_int_equal(store_open(test_store_path(), &fx->st, &err), 0);
	assert_int_equal(store_repo_upsert(fx->st, "demo", "/srv/demo.git", 1, &fx->repo_id, &err), 0);
	assert_int_equal(jobstate_agent_register(fx->st, "a1", "[\"target=host\"]", "a1-token-sha256", 1,
	                                         &fx->agent_id, &(int){0}, &err),
	                 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	store_free(fx->st);
	free(fx);
	return 0;
}

/* A pipeline with one job per target; returns its id. */
static int64_t mk_pipeline(struct fx *fx, const char *delivery, const char **targets, size_t n,
                           int max_attempts)
{
	struct pipeline_new p = {.repo_id = fx->repo_id,
	                         .ref = "refs/heads/main",
	                         .commit_sha = COMMIT,
	                         .event = "push",
	                         .delivery = delivery};
	struct job_new jobs[8] = {0};
	struct err err = {0};
	int64_t id = 0;
	int existed = 0;

	for (size_t i = 0; i < n; i++) {
		jobs[i].name = "build";
		jobs[i].target = targets[i];
		jobs[i].spec = "{\"steps\":[]}";
		jobs[i].max_attempts = max_attempts;
	}
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, jobs, n, 10, &id, &existed, &err), 0);
	assert_int_equal(existed, 0);
	return id;
}

static int64_t claim(struct fx *fx, const char *target, int64_t now, int expect_found)
{
	char *label = xasprintf("target=%s", target);
	const char *t[] = {label};
	struct job_row j = {0};
	struct err err = {0};
	int found = -1;
	int64_t id;

	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, t, 1, now, 1000, &j, &found, &err), 0);
	assert_int_equal(found, expect_found);
	free(label);
	id = j.id;
	job_row_release(&j);
	return id;
}

static void test_delivery_is_idempotent(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	struct pipeline_new p = {
	    .repo_id = fx->repo_id, .ref = "r", .commit_sha = COMMIT, .event = "push", .delivery = "d-1"};
	struct job_new j = {"build", "host", "{}", NULL, 3, NULL, 0, 0};
	struct err err = {0};
	int64_t first = mk_pipeline(fx, "d-1", t, 1, 3), again = 0;
	int existed = 0;
	struct pipeline_row *rows = NULL;
	size_t n = 0;

	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &j, 1, 20, &again, &existed, &err), 0);
	assert_int_equal(existed, 1);
	assert_int_equal(again, first);
	assert_int_equal(store_pipeline_list(fx->st, NULL, 50, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].state, JOB_QUEUED);
	pipeline_rows_free(rows, n);
	assert_int_equal(store_integrity_check(fx->st, &err), 0);
}

/* Issue 13: a delivery id seen on one repository creates a pipeline on
 * another; a replay on the same repository is still a no-op. */
static void test_delivery_per_repository(void **state)
{
	struct fx *fx = *state;
	struct job_new j = {"build", "host", "{}", NULL, 3, NULL, 0, 0};
	struct pipeline_new p = {.ref = "r", .commit_sha = COMMIT, .event = "push", .delivery = "d-same"};
	struct err err = {0};
	int64_t other = 0, a = 0, b = 0, again = 0, found = 0;
	int existed = 0;

	assert_int_equal(store_repo_upsert(fx->st, "other", "/srv/other.git", 1, &other, &err), 0);
	p.repo_id = fx->repo_id;
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &j, 1, 20, &a, &existed, &err), 0);
	assert_int_equal(existed, 0);
	p.repo_id = other;
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &j, 1, 20, &b, &existed, &err), 0);
	assert_int_equal(existed, 0);
	assert_true(a != b);
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &j, 1, 30, &again, &existed, &err), 0);
	assert_int_equal(existed, 1);
	assert_int_equal(again, b);
	assert_int_equal(store_pipeline_by_delivery(fx->st, "demo", "d-same", &found, &err), 0);
	assert_int_equal(found, a);
	assert_int_equal(store_pipeline_by_delivery(fx->st, "other", "d-same", &found, &err), 0);
	assert_int_equal(found, b);
	assert_int_equal(store_pipeline_by_delivery(fx->st, "nosuch", "d-same", &found, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(store_integrity_check(fx->st, &err), 0);
}

static void test_claim_matches_target(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"aarch64-unknown-linux-gnu", "host"};
	int64_t p = mk_pipeline(fx, NULL, t, 2, 3), a, h;
	struct pipeline_row row = {0};
	struct err err = {0};

	claim(fx, "armv7-unknown-linux-gnueabihf", 100, 0);
	h = claim(fx, "host", 100, 1);
	a = claim(fx, "aarch64-unknown-linux-gnu", 100, 1);
	assert_true(h != a);
	claim(fx, "host", 100, 0); /* nothing left */
	assert_int_equal(store_pipeline_get(fx->st, p, &row, &err), 0);
	assert_int_equal(row.state, JOB_RUNNING);
	pipeline_row_release(&row);
}

static void test_heartbeat_finish_and_stale_attempts(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t p = mk_pipeline(fx, NULL, t, 1, 3), j = claim(fx, "host", 100, 1);
	struct err err = {0};
	struct job_row row = {0};
	struct pipeline_row prow = {0};
	int cancel = -1;

	assert_int_equal(store_job_heartbeat(fx->st, j, 1, 200, 1000, &cancel, &err), 0);
	assert_int_equal(cancel, 0);
	assert_int_equal(store_job_heartbeat(fx->st, j, 2, 200, 1000, &cancel, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(jobstate_finish(fx->st, j, 1, JOB_RUNNING, 0, 0, "", 300, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(jobstate_finish(fx->st, j, 1, JOB_FAILED, 1, 3, "step failed", 300, &err), 0);
	assert_int_equal(jobstate_finish(fx->st, j, 1, JOB_SUCCESS, 1, 0, "", 301, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_FAILED);
	assert_int_equal(row.exit_code, 3);
	assert_string_equal(row.agent_name, "a1");
	assert_string_equal(row.repo_url, "/srv/demo.git");
	job_row_release(&row);
	assert_int_equal(store_pipeline_get(fx->st, p, &prow, &err), 0);
	assert_int_equal(prow.state, JOB_FAILED);
	assert_int_equal(prow.finished_ms, 300);
	pipeline_row_release(&prow);
}

static void test_lease_expiry_requeues_then_errors(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t j, j2;
	int n = 0;
	struct err err = {0};
	struct job_row row = {0};
	struct buf b = BUF_INIT;
	int64_t next = 0;

	mk_pipeline(fx, NULL, t, 1, 2);
	j = claim(fx, "host", 100, 1); /* lease until 1100 */
	assert_int_equal(jobstate_requeue_expired(fx->st, 1000, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(jobstate_requeue_expired(fx->st, 1200, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_QUEUED);
	assert_int_equal(row.attempt, 1);
	job_row_release(&row);
	j2 = claim(fx, "host", 1300, 1);
	assert_int_equal(j2, j);
	/* The new attempt's log starts with a marker. */
	assert_int_equal(store_log_read(fx->st, j, 0, 1 << 20, &b, &next, &err), 0);
	assert_non_null(strstr(b.data, "attempt 2 of 2"));
	buf_release(&b);
	assert_int_equal(jobstate_requeue_expired(fx->st, 5000, &n, &err), 0);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_ERROR);
	assert_non_null(strstr(row.message, "lease expired"));
	job_row_release(&row);
}

/* An agent that stops gives its job back: queued at once (attempt + 1 at
 * the next claim), a stale attempt refused; past max_attempts an error. */
static void test_give_back(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	struct err err = {0};
	struct job_row row = {0};
	int64_t j;

	mk_pipeline(fx, NULL, t, 1, 2);
	j = claim(fx, "host", 100, 1);
	assert_int_equal(jobstate_give_back(fx->st, j, 2, 150, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(jobstate_give_back(fx->st, j, 1, 150, &err), 0);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_QUEUED);
	job_row_release(&row);
	assert_int_equal(jobstate_give_back(fx->st, j, 1, 160, &err), -1); /* not running now */
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(claim(fx, "host", 200, 1), j);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.attempt, 2);
	job_row_release(&row);
	assert_int_equal(jobstate_give_back(fx->st, j, 2, 250, &err), 0);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_ERROR); /* attempt 2 of 2 */
	assert_non_null(strstr(row.message, "agent stopping"));
	job_row_release(&row);
}

static void test_cancel_and_retry(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t p = mk_pipeline(fx, NULL, t, 1, 3), j, nj = 0;
	struct job_row row = {0};
	struct pipeline_row prow = {0};
	struct err err = {0};
	int cancel = 0, n;
	struct job_row *jobs = NULL;
	size_t nn = 0;

	j = claim(fx, "host", 100, 1);
	assert_int_equal(jobstate_retry(fx->st, j, 100, &nj, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(jobstate_cancel(fx->st, j, 150, &err), 0);
	assert_int_equal(store_job_heartbeat(fx->st, j, 1, 160, 1000, &cancel, &err), 0);
	assert_int_equal(cancel, 1);
	assert_int_equal(jobstate_finish(fx->st, j, 1, JOB_CANCELED, 0, 0, "canceled", 170, &err), 0);
	assert_int_equal(jobstate_cancel(fx->st, j, 180, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(jobstate_retry(fx->st, j, 200, &nj, &err), 0);
	assert_true(nj > j);
	assert_int_equal(jobstate_retry(fx->st, j, 200, &nj, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	/* The pipeline follows the retry, not the canceled original. */
	assert_int_equal(store_pipeline_get(fx->st, p, &prow, &err), 0);
	assert_int_equal(prow.state, JOB_QUEUED);
	pipeline_row_release(&prow);
	assert_int_equal(store_job_get(fx->st, nj, &row, &err), 0);
	assert_int_equal(row.retry_of, j);
	assert_int_equal(row.attempt, 0);
	job_row_release(&row);
	/* A queued job cancels at once. */
	assert_int_equal(jobstate_cancel(fx->st, nj, 300, &err), 0);
	assert_int_equal(store_job_get(fx->st, nj, &row, &err), 0);
	assert_int_equal(row.state, JOB_CANCELED);
	job_row_release(&row);
	assert_int_equal(store_pipeline_jobs(fx->st, p, &jobs, &nn, &err), 0);
	assert_int_equal(nn, 2);
	job_rows_free(jobs, nn);
	/* A running job whose agent vanished after a cancel request ends canceled. */
	mk_pipeline(fx, NULL, t, 1, 3);
	j = claim(fx, "host", 400, 1);
	assert_int_equal(jobstate_cancel(fx->st, j, 401, &err), 0);
	assert_int_equal(jobstate_requeue_expired(fx->st, 5000, &n, &err), 0);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.state, JOB_CANCELED);
	job_row_release(&row);
}

static void test_log_dedupe_offsets_and_cap(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t j, next = 0;
	int acc = 0, trunc = 0;
	struct err err = {0};
	struct buf b = BUF_INIT;
	struct job_row row = {0};

	mk_pipeline(fx, NULL, t, 1, 3);
	j = claim(fx, "host", 100, 1);
	assert_int_equal(store_log_append(fx->st, j, 1, 0, "hello ", 6, 20, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 1);
	assert_int_equal(store_log_append(fx->st, j, 1, 0, "hello ", 6, 20, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 0); /* resent: ignored */
	assert_int_equal(store_log_append(fx->st, j, 1, 1, "world\n", 6, 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_log_read(fx->st, j, 0, 1 << 20, &b, &next, &err), 0);
	assert_string_equal(b.data, "hello world\n");
	assert_int_equal(next, 12);
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, 8, 1 << 20, &b, &next, &err), 0);
	assert_string_equal(b.data, "rld\n");
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, 12, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(next, 12);
	/* 12 + 10 > 20: 8 bytes kept, then the marker; later chunks dropped. */
	assert_int_equal(store_log_append(fx->st, j, 1, 2, "0123456789", 10, 20, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 1);
	assert_int_equal(trunc, 1);
	assert_int_equal(store_log_append(fx->st, j, 1, 3, "more", 4, 20, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 0);
	assert_int_equal(trunc, 1);
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, 0, 1 << 20, &b, &next, &err), 0);
	assert_non_null(strstr(b.data, "hello world\n01234567\n[anvil: log truncated at 20 bytes]"));
	assert_null(strstr(b.data, "more"));
	buf_release(&b);
	assert_int_equal(store_job_get(fx->st, j, &row, &err), 0);
	assert_int_equal(row.log_truncated, 1);
	job_row_release(&row);
	/* A stale attempt cannot write. */
	assert_int_equal(store_log_append(fx->st, j, 2, 9, "x", 1, 20, &acc, &trunc, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
}

static void test_artifacts(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t j, j2;
	struct err err = {0};
	struct artifact_row *rows = NULL, one = {0};
	size_t n = 0;
	struct store_stats stats;

	mk_pipeline(fx, NULL, t, 1, 3);
	j = claim(fx, "host", 100, 1);
	assert_int_equal(store_artifact_add(fx->st, j, 1, "bin/app", SHA_A, 5, 0644, 100, &err), 0);
	assert_int_equal(store_artifact_add(fx->st, j, 2, "bin/app", SHA_A, 5, 0644, 100, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	mk_pipeline(fx, NULL, t, 1, 3);
	j2 = claim(fx, "host", 100, 1);
	assert_int_equal(store_artifact_add(fx->st, j2, 1, "app", SHA_A, 5, 0755, 100, &err), 0);
	assert_int_equal(store_artifact_add(fx->st, j2, 1, "old", SHA_A, 5, 0, 100, &err), 0);
	assert_int_equal(store_artifact_list(fx->st, j, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].name, "bin/app");
	assert_string_equal(rows[0].sha256, SHA_A);
	assert_int_equal(rows[0].mode, 0644);
	artifact_rows_free(rows, n);
	/* the mode is kept (issue 19 item 10); 0: stored without one */
	assert_int_equal(store_artifact_get(fx->st, j2, "app", &one, &err), 0);
	assert_int_equal(one.mode, 0755);
	free(one.name);
	assert_int_equal(store_artifact_get(fx->st, j2, "old", &one, &err), 0);
	assert_int_equal(one.mode, 0);
	free(one.name);
	/* a re-upload replaces it */
	assert_int_equal(store_artifact_add(fx->st, j2, 1, "app", SHA_A, 5, 0644, 100, &err), 0);
	assert_int_equal(store_artifact_get(fx->st, j2, "app", &one, &err), 0);
	assert_int_equal(one.mode, 0644);
	free(one.name);
	assert_int_equal(store_artifact_get(fx->st, j2, "nope", &one, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(store_stats(fx->st, &stats, &err), 0);
	assert_int_equal(stats.blobs, 1); /* same bytes stored once */
}

/* Compressed log chunks: a repetitive chunk round-trips, plain (short or
 * incompressible) and compressed chunks mix, a read may start in the middle
 * of a compressed chunk and stop after it; offsets count uncompressed bytes. */
/* Steps and time marks of framed chunks: stored with their chunk (a resent
 * chunk adds nothing), offsets absolute, an end closing its start once,
 * and an event past the cap landing at the cut. */
static void test_log_steps(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	struct buf b = BUF_INIT;
	struct logframe f;
	struct step_row *rows = NULL;
	struct logframe_time *times = NULL;
	size_t n = 0;
	int64_t j;
	int acc = 0, trunc = 0;
	struct err err = {0};

	mk_pipeline(fx, NULL, t, 1, 3);
	j = claim(fx, "host", 100, 1);
	assert_int_equal(store_log_append(fx->st, j, 1, 0, "pre\n", 4, 64, &acc, &trunc, &err), 0);
	logframe_put_step_start(&b, 0, "build", "make", 1000);
	logframe_put_time(&b, 1001);
	logframe_put_log(&b, "a\nb\n", 4);
	logframe_put_step_end(&b, 0, "failed", 1, 2, 2, 1500);
	logframe_put_step_start(&b, 1, "logs", "cat log", 1501);
	logframe_put_time(&b, 1600);
	logframe_put_log(&b, "c\n", 2);
	assert_int_equal(logframe_decode(&f, b.data, b.len, &err), 0);
	assert_int_equal(store_log_append_frame(fx->st, j, 1, 1, &f, 64, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 1);
	/* resent: nothing twice */
	assert_int_equal(store_log_append_frame(fx->st, j, 1, 1, &f, 64, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 0);
	logframe_release(&f);
	buf_reset(&b);
	/* a second start of step 0 changes nothing; step 1 ends past the cap */
	logframe_put_step_start(&b, 0, "forged", "x", 1);
	logframe_put_log(&b, "0123456789012345678901234567890123456789012345678901234567890123456789", 70);
	logframe_put_step_end(&b, 1, "success", 1, 0, -1, 1700);
	logframe_put_step_end(&b, 0, "success", 1, 0, -1, 1700);
	assert_int_equal(logframe_decode(&f, b.data, b.len, &err), 0);
	assert_int_equal(store_log_append_frame(fx->st, j, 1, 2, &f, 64, &acc, &trunc, &err), 0);
	assert_int_equal(trunc, 1);
	logframe_release(&f);

	assert_int_equal(store_job_steps(fx->st, j, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].name, "build");
	assert_string_equal(rows[0].command, "make");
	assert_string_equal(rows[0].state, "failed");
	assert_int_equal(rows[0].have_exit, 1);
	assert_int_equal(rows[0].exit_code, 2);
	assert_int_equal(rows[0].start_off, 4);
	assert_int_equal(rows[0].end_off, 8);
	assert_int_equal(rows[0].lines, 2);
	assert_int_equal(rows[1].lines, -1);
	assert_int_equal(rows[0].started_unix_ms, 1000);
	assert_int_equal(rows[0].finished_unix_ms, 1500);
	assert_int_equal(rows[1].attempt, 1);
	assert_string_equal(rows[1].state, "success");
	assert_int_equal(rows[1].start_off, 8);
	assert_int_equal(rows[1].end_off, 64); /* at the cut */
	step_rows_free(rows, n);

	assert_int_equal(store_log_times(fx->st, j, 0, 1000, &times, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(times[0].rel_off, 4);
	assert_int_equal(times[0].at_ms, 1001);
	assert_int_equal(times[1].rel_off, 8);
	assert_int_equal(times[1].at_ms, 1600);
	free(times);
	/* from an offset inside: the mark before it comes too */
	assert_int_equal(store_log_times(fx->st, j, 9, 10, &times, &n, &err), 0);
	assert_int_equal(n, 2);
	free(times);
	buf_release(&b);
}

static void test_log_compression(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	struct buf big = BUF_INIT, noise = BUF_INIT, all = BUF_INIT, b = BUF_INIT;
	int64_t j, next = 0, off;
	int acc = 0, trunc = 0;
	struct err err = {0};
	struct store_stats stats;
	uint32_t x = 12345;

	for (int i = 0; i < 200; i++)
		buf_appendf(&big, "cc -O2 -Wall -c src/file%03d.c -o build/file%03d.o\n", i % 7, i % 7);
	for (int i = 0; i < 300; i++) { /* incompressible: stored plain */
		char c;
		x = x * 1103515245u + 12345u;
		c = (char)(33 + (x >> 16) % 90);
		buf_append(&noise, &c, 1);
	}
	mk_pipeline(fx, NULL, t, 1, 3);
	j = claim(fx, "host", 100, 1);
	assert_int_equal(store_log_append(fx->st, j, 1, 0, "short\n", 6, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_log_append(fx->st, j, 1, 1, big.data, big.len, 1 << 20, &acc, &trunc, &err),
	                 0);
	assert_int_equal(
	    store_log_append(fx->st, j, 1, 2, noise.data, noise.len, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_log_append(fx->st, j, 1, 3, big.data, big.len, 1 << 20, &acc, &trunc, &err),
	                 0);
	buf_append(&all, "short\n", 6);
	buf_append(&all, big.data, big.len);
	buf_append(&all, noise.data, noise.len);
	buf_append(&all, big.data, big.len);

	assert_int_equal(store_log_read(fx->st, j, 0, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(b.len, all.len);
	assert_memory_equal(b.data, all.data, all.len);
	assert_int_equal(next, (int64_t)all.len);
	/* From the middle of the first compressed chunk. */
	off = 6 + 1000;
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, off, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(b.len, all.len - (size_t)off);
	assert_memory_equal(b.data, all.data + off, b.len);
	/* A small max_bytes stops after the chunk that crosses it. */
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, 3, 10, &b, &next, &err), 0);
	assert_int_equal(next, 6 + (int64_t)big.len);
	assert_memory_equal(b.data, all.data + 3, b.len);
	/* From the middle of the second compressed chunk (after the plain one). */
	off = 6 + (int64_t)big.len + (int64_t)noise.len + 17;
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, off, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(b.len, all.len - (size_t)off);
	assert_memory_equal(b.data, all.data + off, b.len);
	/* Truncation at the cap cuts the uncompressed bytes. */
	assert_int_equal(
	    store_log_append(fx->st, j, 1, 4, big.data, big.len, (int64_t)all.len + 500, &acc, &trunc, &err),
	    0);
	assert_int_equal(trunc, 1);
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, j, (int64_t)all.len, 1 << 20, &b, &next, &err), 0);
	assert_true(b.len > 500);
	assert_memory_equal(b.data, big.data, 500);
	assert_non_null(strstr(b.data + 500, "[anvil: log truncated at"));
	assert_int_equal(store_stats(fx->st, &stats, &err), 0);
	assert_int_equal(stats.log_bytes, next);
	assert_int_equal(store_integrity_check(fx->st, &err), 0);
	buf_release(&big);
	buf_release(&noise);
	buf_release(&all);
	buf_release(&b);
}

#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Retention: old finished jobs lose their log (a marker stays) and their
 * artifacts, then the blob no artifact references goes; newer and running
 * jobs keep theirs; each job is handled once; batches are bounded. */
static void test_retention(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	int64_t old, young, run, next = 0;
	int acc, trunc, n = -1, exists = -1;
	struct err err = {0};
	struct buf b = BUF_INIT;
	struct job_row row = {0};
	struct artifact_row *rows = NULL;
	size_t na = 0;
	struct strv shas = STRV_INIT;
	const char *marker = "[anvil: log removed by retention after 1 days]\n";

	mk_pipeline(fx, NULL, t, 1, 3);
	old = claim(fx, "host", 100, 1);
	mk_pipeline(fx, NULL, t, 1, 3);
	young = claim(fx, "host", 100, 1);
	mk_pipeline(fx, NULL, t, 1, 3);
	run = claim(fx, "host", 100, 1);
	assert_int_equal(store_log_append(fx->st, old, 1, 0, "old log\n", 8, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_log_append(fx->st, old, 1, 1, "more\n", 5, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(
	    store_log_append(fx->st, young, 1, 0, "young log\n", 10, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_log_append(fx->st, run, 1, 0, "running\n", 8, 1 << 20, &acc, &trunc, &err), 0);
	assert_int_equal(store_artifact_add(fx->st, old, 1, "a", SHA_A, 5, 0644, 100, &err), 0);
	assert_int_equal(store_artifact_add(fx->st, young, 1, "b", SHA_B, 5, 0644, 100, &err), 0);
	assert_int_equal(jobstate_finish(fx->st, old, 1, JOB_SUCCESS, 1, 0, "", 1000, &err), 0);
	assert_int_equal(jobstate_finish(fx->st, young, 1, JOB_SUCCESS, 1, 0, "", 5000, &err), 0);

	/* Nothing is old enough yet; a blob still referenced is not collected. */
	assert_int_equal(store_log_expire(fx->st, 500, marker, 8, 6000, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_blob_collect(fx->st, 8, &shas, &err), 0);
	assert_int_equal(shas.n, 0);

	/* Bounded: a batch of 1 handles the old job only (the young one and the
	 * running one are not before 2000). */
	assert_int_equal(store_log_expire(fx->st, 2000, marker, 1, 6000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_log_expire(fx->st, 2000, marker, 1, 6000, &n, &err), 0);
	assert_int_equal(n, 0); /* once per job */
	assert_int_equal(store_log_read(fx->st, old, 0, 1 << 20, &b, &next, &err), 0);
	assert_string_equal(b.data, marker);
	assert_int_equal(next, (int64_t)strlen(marker));
	assert_int_equal(store_job_get(fx->st, old, &row, &err), 0);
	assert_int_equal(row.log_bytes, (int64_t)strlen(marker));
	job_row_release(&row);
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, young, 0, 1 << 20, &b, &next, &err), 0);
	assert_string_equal(b.data, "young log\n");
	buf_reset(&b);
	assert_int_equal(store_log_read(fx->st, run, 0, 1 << 20, &b, &next, &err), 0);
	assert_string_equal(b.data, "running\n");
	buf_release(&b);

	assert_int_equal(store_artifact_expire(fx->st, 2000, 8, 6000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_artifact_list(fx->st, old, &rows, &na, &err), 0);
	assert_int_equal(na, 0);
	artifact_rows_free(rows, na);
	assert_int_equal(store_artifact_list(fx->st, young, &rows, &na, &err), 0);
	assert_int_equal(na, 1);
	artifact_rows_free(rows, na);
	assert_int_equal(store_blob_collect(fx->st, 8, &shas, &err), 0);
	assert_int_equal(shas.n, 1);
	assert_string_equal(shas.v[0], SHA_A);
	assert_int_equal(store_blob_exists(fx->st, SHA_A, &exists, &err), 0);
	assert_int_equal(exists, 0);
	assert_int_equal(store_blob_exists(fx->st, SHA_B, &exists, &err), 0);
	assert_int_equal(exists, 1);
	strv_release(&shas);
	assert_int_equal(store_integrity_check(fx->st, &err), 0);
}

/* Ownership: only the agent that claimed the current attempt passes
 * store_job_owner_check; registering the name again or agent rm requeues
 * that agent's running job (attempt + 1 at the next claim). */
static void test_agent_ownership(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	const char *l[] = {"target=host"};
	struct job_row j = {0};
	struct err err = {0};
	int64_t a2 = 0, id = 0, job;
	int requeued = -1, found = 0;

	mk_pipeline(fx, "own-1", t, 1, 5);
	job = claim(fx, "host", 10, 1);
	assert_int_equal(
	    jobstate_agent_register(fx->st, "a2", "[\"target=host\"]", "a2-hash", 11, &a2, &requeued, &err),
	    0);
	assert_int_equal(requeued, 0);
	assert_int_equal(store_job_owner_check(fx->st, job, fx->agent_id, &err), 0);
	assert_int_equal(store_job_owner_check(fx->st, job, a2, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(store_job_owner_check(fx->st, 999, a2, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(store_agent_by_token(fx->st, "a2-hash", &id, &err), 0);
	assert_int_equal(id, a2);

	/* a1 restarts: new token, its job goes back to the queue */
	assert_int_equal(
	    jobstate_agent_register(fx->st, "a1", "[\"target=host\"]", "a1-hash-2", 12, &id, &requeued, &err),
	    0);
	assert_int_equal(id, fx->agent_id);
	assert_int_equal(requeued, 1);
	assert_int_equal(store_agent_by_token(fx->st, "a1-token-sha256", &id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(store_job_get(fx->st, job, &j, &err), 0);
	assert_int_equal(j.state, JOB_QUEUED);
	job_row_release(&j);
	assert_int_equal(store_job_owner_check(fx->st, job, fx->agent_id, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);

	/* a2 claims attempt 2; agent rm a2 requeues it; a1 finishes attempt 3 */
	assert_int_equal(jobstate_claim(fx->st, a2, l, 1, 13, 1000, &j, &found, &err), 0);
	assert_true(found);
	assert_int_equal(j.attempt, 2);
	job_row_release(&j);
	assert_int_equal(store_job_owner_check(fx->st, job, a2, &err), 0);
	assert_int_equal(jobstate_agent_remove(fx->st, "a2", 14, &id, &requeued, &err), 0);
	assert_int_equal(id, a2);
	assert_int_equal(requeued, 1);
	assert_int_equal(store_agent_by_token(fx->st, "a2-hash", &id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(jobstate_finish(fx->st, job, 2, JOB_SUCCESS, 1, 0, "", 15, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(claim(fx, "host", 16, 1), job);
	assert_int_equal(store_job_get(fx->st, job, &j, &err), 0);
	assert_int_equal(j.attempt, 3);
	assert_string_equal(j.agent_name, "a1");
	job_row_release(&j);
	assert_int_equal(jobstate_finish(fx->st, job, 3, JOB_SUCCESS, 1, 0, "", 17, &err), 0);
	{
		struct agent_row *rows = NULL;
		size_t n = 0;
		assert_int_equal(store_agent_list(fx->st, &rows, &n, &err), 0);
		assert_int_equal(n, 1); /* a2 is removed */
		assert_string_equal(rows[0].name, "a1");
		agent_rows_free(rows, n);
	}
	assert_int_equal(jobstate_agent_remove(fx->st, "nope", 18, &id, &requeued, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
}

/* One agent holding several claims (anvil-agent --jobs N): the agents list
 * names every running job of it, in order. */
static void test_agent_holds_several_jobs(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host", "host", "host"};
	struct agent_row *rows = NULL;
	struct err err = {0};
	size_t n = 0;
	int64_t a, b, c;

	mk_pipeline(fx, "several", t, 3, 1);
	a = claim(fx, "host", 20, 1);
	b = claim(fx, "host", 21, 1);
	c = claim(fx, "host", 22, 1);
	assert_true(a < b && b < c);
	assert_int_equal(store_agent_list(fx->st, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].n_jobs, 3);
	assert_int_equal(rows[0].job_id, a);
	assert_int_equal(rows[0].job_ids[0], a);
	assert_int_equal(rows[0].job_ids[1], b);
	assert_int_equal(rows[0].job_ids[2], c);
	agent_rows_free(rows, n);
	assert_int_equal(jobstate_finish(fx->st, b, 1, JOB_SUCCESS, 1, 0, "", 23, &err), 0);
	assert_int_equal(store_agent_list(fx->st, &rows, &n, &err), 0);
	assert_int_equal(rows[0].n_jobs, 2);
	assert_int_equal(rows[0].job_ids[0], a);
	assert_int_equal(rows[0].job_ids[1], c);
	agent_rows_free(rows, n);
	assert_int_equal(jobstate_finish(fx->st, a, 1, JOB_SUCCESS, 1, 0, "", 24, &err), 0);
	assert_int_equal(jobstate_finish(fx->st, c, 1, JOB_SUCCESS, 1, 0, "", 25, &err), 0);
	assert_int_equal(store_agent_list(fx->st, &rows, &n, &err), 0);
	assert_int_equal(rows[0].n_jobs, 0);
	assert_int_equal(rows[0].job_id, 0);
	agent_rows_free(rows, n);
}

/* A repository bound to an agent pool: only agents with all its labels
 * claim its jobs; an upsert without agent_labels keeps the pool, "" frees it. */
static void test_repo_agent_pool(void **state)
{
	struct fx *fx = *state;
	const char *t[] = {"host"};
	const char *plain[] = {"target=host", "site=plant-1"};
	const char *pool[] = {"target=host", "site=plant-3", "k=v"};
	struct repo_cfg in = {0}, out = {0};
	struct job_row j = {0};
	struct err err = {0};
	int64_t rid = 0, job;
	int found = -1;

	in.name = "demo";
	in.url = "/srv/demo.git";
	in.agent_labels = "site=plant-3,k=v";
	assert_int_equal(store_repo_configure(fx->st, &in, 2, &rid, &err), 0);
	assert_int_equal(rid, fx->repo_id);
	in.agent_labels = NULL;
	assert_int_equal(store_repo_configure(fx->st, &in, 3, &rid, &err), 0);
	assert_int_equal(store_repo_cfg_get(fx->st, "demo", &out, &err), 0);
	assert_string_equal(out.agent_labels, "site=plant-3,k=v");
	repo_cfg_release(&out);

	mk_pipeline(fx, "pool-1", t, 1, 3);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, plain, 2, 10, 1000, &j, &found, &err), 0);
	assert_false(found);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, pool, 2, 10, 1000, &j, &found, &err), 0);
	assert_false(found); /* k=v missing */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, pool, 3, 10, 1000, &j, &found, &err), 0);
	assert_true(found);
	job = j.id;
	job_row_release(&j);
	assert_int_equal(jobstate_finish(fx->st, job, 1, JOB_SUCCESS, 1, 0, "", 11, &err), 0);

	in.agent_labels = "";
	assert_int_equal(store_repo_configure(fx->st, &in, 4, &rid, &err), 0);
	mk_pipeline(fx, "pool-2", t, 1, 3);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, plain, 2, 12, 1000, &j, &found, &err), 0);
	assert_true(found);
	job_row_release(&j);
	assert_true(jobstate_labels_have("", plain, 2));
	assert_true(jobstate_labels_have(NULL, plain, 2));
	assert_false(jobstate_labels_have("site=plant", plain, 2));
}

/* Cron schedules: add, the claim of a due time (only once), list, delete. */
static void test_schedules(void **state)
{
	struct fx *fx = *state;
	struct schedule_row in = {.repo = "demo",
	                          .name = "nightly",
	                          .ref = "refs/heads/main",
	                          .cron = "0 3 * * *",
	                          .next_unix_s = 1000};
	struct schedule_row *rows = NULL;
	struct err err = {0};
	size_t n = 0;
	int64_t id = 0, id2;
	int claimed = -1;

	assert_int_equal(store_schedule_add(fx->st, &in, 5, &id, &err), 0);
	assert_int_equal(store_schedule_add(fx->st, &in, 5, &id2, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	in.repo = "nope";
	assert_int_equal(store_schedule_add(fx->st, &in, 5, &id2, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	/* Two claims of due time 1000: one wins; a stale due time claims nothing. */
	assert_int_equal(store_schedule_claim(fx->st, id, 1000, 2000, &claimed, &err), 0);
	assert_int_equal(claimed, 1);
	assert_int_equal(store_schedule_claim(fx->st, id, 1000, 2000, &claimed, &err), 0);
	assert_int_equal(claimed, 0);
	assert_int_equal(store_schedule_list(fx->st, "demo", &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].name, "nightly");
	assert_string_equal(rows[0].cron, "0 3 * * *");
	assert_int_equal(rows[0].next_unix_s, 2000);
	assert_int_equal(rows[0].last_unix_s, 1000);
	schedule_rows_free(rows, n);
	assert_int_equal(store_schedule_delete(fx->st, "demo", "nightly", &err), 0);
	assert_int_equal(store_schedule_delete(fx->st, "demo", "nightly", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(store_schedule_claim(fx->st, id, 2000, 3000, &claimed, &err), 0);
	assert_int_equal(claimed, 0);
	assert_int_equal(store_schedule_list(fx->st, NULL, &rows, &n, &err), 0);
	assert_int_equal(n, 0);
	schedule_rows_free(rows, n);
}

static void test_tokens(void **state)
{
	struct fx *fx = *state;
	struct err err = {0};
	char out[65];

	assert_int_equal(store_token_get(fx->st, "admin", out, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(store_token_set(fx->st, "admin", SHA_A, &err), 0);
	assert_int_equal(store_token_get(fx->st, "admin", out, &err), 0);
	assert_string_equal(out, SHA_A);
}

/* Deploy jobs: the label rule, the trigger after the last build, board
 * reports and the rollback hint. */
static void test_deploy_jobs(void **state)
{
	struct fx *fx = *state;
	const char *deploy_labels[] = {"target=host", "deploy=true", "site=p3"};
	const char *build_only[] = {"target=aarch64"};
	const char *l2[] = {"target=aarch64", "target=host"};
	struct pipeline_new p = {
	    .repo_id = fx->repo_id, .ref = "refs/heads/main", .commit_sha = COMMIT, .event = "push"};
	struct deploy_plan_new plan = {"lab", "{\"deploy\":{\"action\":\"deploy\"}}", "deploy=true,site=p3",
	                               1, 0};
	struct job_new jobs[2] = {{"build", "aarch64", "{}", NULL, 3, NULL, 0, 0},
	                          {"build", "host", "{}", NULL, 3, NULL, 0, 0}};
	struct board_row b = {0}, *boards = NULL;
	struct deploy_board_row r = {0}, *rows = NULL;
	struct job_row j = {0}, *pj = NULL;
	struct err err = {0};
	int64_t pid, bid, a2, dj = 0;
	int existed, found;
	size_t n;
	char *prev = NULL, *spec = NULL, *labels = NULL;

	assert_true(jobstate_labels_match("build", "host", "", deploy_labels, 3));
	assert_false(jobstate_labels_match("build", "aarch64", "", deploy_labels, 3));
	assert_true(jobstate_labels_match("deploy", "lab", "deploy=true,site=p3", deploy_labels, 3));
	assert_false(jobstate_labels_match("deploy", "lab", "deploy=true,site=p4", deploy_labels, 3));
	assert_false(jobstate_labels_match("deploy", "lab", "deploy=true", build_only, 1));

	b.name = "b1", b.host = "127.0.0.1", b.port = 22, b.user = "root", b.arch = "aarch64",
	b.group = "lab";
	b.labels = "site=p3", b.host_key = "SHA256:x", b.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----";
	assert_int_equal(store_board_add(fx->st, &b, 1, &bid, &err), 0);
	assert_int_equal(store_board_add(fx->st, &b, 1, &bid, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(store_board_list(fx->st, "lab", 0, &boards, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_null(boards[0].private_key);
	board_rows_free(boards, n);

	p.plans = &plan;
	p.n_plans = 1;
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, jobs, 2, 10, &pid, &existed, &err), 0);
	assert_int_equal(store_deploy_plan_get(fx->st, pid, "lab", &spec, &labels, &err), 0);
	assert_string_equal(labels, "deploy=true,site=p3");
	free(spec);
	free(labels);
	/* a manual deploy before the builds succeeded is refused */
	assert_int_equal(jobstate_deploy_create(fx->st, pid, "deploy", "lab", "{}", "", 3, 11, &dj, &err),
	                 -1);
	assert_int_equal(err.code, ERR_CONFLICT);

	assert_int_equal(
	    jobstate_agent_register(fx->st, "a2", "[]", "a2-token-sha256", 1, &a2, &(int){0}, &err), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(jobstate_claim(fx->st, a2, l2, 2, 20, 1000, &j, &found, &err), 0);
		assert_true(found);
		assert_int_equal(jobstate_finish(fx->st, j.id, 1, JOB_SUCCESS, 1, 0, "", 30 + i, &err), 0);
		job_row_release(&j);
	}
	/* the trigger queued the deploy job with the last build's finish */
	assert_int_equal(store_pipeline_jobs(fx->st, pid, &pj, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(pj[2].kind, "deploy");
	assert_string_equal(pj[2].target, "lab");
	assert_string_equal(pj[2].labels, "deploy=true,site=p3");
	assert_int_equal(pj[2].state, JOB_QUEUED);
	dj = pj[2].id;
	job_rows_free(pj, n);

	/* only an agent with deploy=true and site=p3 gets it */
	assert_int_equal(jobstate_claim(fx->st, a2, l2, 2, 40, 1000, &j, &found, &err), 0);
	assert_false(found);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, deploy_labels, 3, 40, 1000, &j, &found, &err),
	                 0);
	assert_true(found);
	assert_int_equal(j.id, dj);
	job_row_release(&j);

	r.board = "b1", r.attempt = 1, r.release = "p1-x", r.previous = "releases/p0-y",
	r.current = "releases/p1-x";
	r.state = "healthy", r.restart_exit = 0, r.health_exit = 0, r.health_output = "ok";
	assert_int_equal(store_deploy_report(fx->st, dj, &r, 50, &err), 0);
	r.attempt = 2;
	assert_int_equal(store_deploy_report(fx->st, dj, &r, 51, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(store_deploy_boards(fx->st, dj, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].state, "healthy");
	assert_string_equal(rows[0].health_output, "ok");
	deploy_board_rows_free(rows, n);
	/* a board's history and an agent's jobs (issue 16's cross-links) */
	{
		struct board_deploy_row *bd = NULL;
		struct job_filter jf = {.agent = "a2"};
		struct job_row *aj = NULL;
		int64_t first;

		assert_int_equal(store_board_deploys(fx->st, "b1", 10, &bd, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(bd[0].job.id, dj);
		assert_string_equal(bd[0].job.kind, "deploy");
		assert_string_equal(bd[0].job.target, "lab");
		assert_int_equal(bd[0].job.pipeline_id, pid);
		assert_string_equal(bd[0].b.state, "healthy");
		assert_string_equal(bd[0].b.release, "p1-x");
		board_deploy_rows_free(bd, n);
		assert_int_equal(store_board_deploys(fx->st, "nope", 10, &bd, &n, &err), 0);
		assert_int_equal(n, 0);
		board_deploy_rows_free(bd, n);

		assert_int_equal(store_job_page(fx->st, &jf, 10, &aj, &n, &err), 0);
		assert_int_equal(n, 2);
		assert_true(aj[0].id > aj[1].id);
		assert_string_equal(aj[0].agent_name, "a2");
		first = aj[0].id;
		job_rows_free(aj, n);
		jf.before_id = first;
		assert_int_equal(store_job_page(fx->st, &jf, 10, &aj, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_true(aj[0].id < first);
		job_rows_free(aj, n);
		jf = (struct job_filter){.state = "success", .target = "lab"};
		assert_int_equal(store_job_page(fx->st, &jf, 10, &aj, &n, &err), 0);
		assert_int_equal(n, 0);
		job_rows_free(aj, n);
		jf = (struct job_filter){.state = "running", .name = "deploy", .target = "lab"};
		assert_int_equal(store_job_page(fx->st, &jf, 10, &aj, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(aj[0].id, dj);
		job_rows_free(aj, n);
	}
	assert_int_equal(store_board_list(fx->st, NULL, 1, &boards, &n, &err), 0);
	assert_string_equal(boards[0].current_release, "releases/p1-x");
	assert_non_null(boards[0].private_key);
	board_rows_free(boards, n);
	assert_int_equal(store_board_previous_release(fx->st, "b1", "releases/p2-z", &prev, &err), 0);
	assert_string_equal(prev, "releases/p1-x");
	free(prev);
	assert_int_equal(store_board_previous_release(fx->st, "b1", "releases/p1-x", &prev, &err), -1);
	assert_int_equal(store_board_delete(fx->st, "b1", &err), 0);
	assert_int_equal(store_board_delete(fx->st, "b1", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
}

/* A tag pipeline of the release pattern: its deploy job waits, queued, until
 * the release is signed; the deploy job of a second pipeline of the same tag
 * (its version recorded already) and of a release that cannot be signed are
 * ended with a message; a failed build leaves no deploy job; a board whose
 * current release is the version is where the release is deployed. */
static int64_t tag_pipeline_built(struct fx *fx, const char *ref, const char *deploy_labels[], size_t nl,
                                  enum job_state build_state)
{
	struct pipeline_new p = {.repo_id = fx->repo_id, .ref = ref, .commit_sha = COMMIT, .event = "tag"};
	struct deploy_plan_new plan = {"lab", "{\"deploy\":{\"action\":\"deploy\"}}", "deploy=true", 1, 0};
	struct job_new jobs[1] = {{"build", "host", "{}", NULL, 3, NULL, 0, 0}};
	struct job_row j = {0};
	struct err err = {0};
	int64_t pid;
	int existed, found;

	p.plans = &plan;
	p.n_plans = 1;
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, jobs, 1, 10, &pid, &existed, &err), 0);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, deploy_labels, nl, 20, 1000, &j, &found, &err),
	                 0);
	assert_true(found);
	assert_string_equal(j.kind, "build");
	assert_int_equal(jobstate_finish(fx->st, j.id, 1, build_state, 1, 0, "", 30, &err), 0);
	job_row_release(&j);
	return pid;
}

static int64_t deploy_job_of(struct fx *fx, int64_t pid, enum job_state *state_out, char **message_out)
{
	struct job_row *pj = NULL;
	struct err err = {0};
	size_t n;
	int64_t id = 0;

	assert_int_equal(store_pipeline_jobs(fx->st, pid, &pj, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(pj[i].kind, "deploy") == 0) {
			id = pj[i].id;
			*state_out = pj[i].state;
			if (message_out)
				*message_out = xstrdup(pj[i].message);
		}
	job_rows_free(pj, n);
	return id;
}

static void test_release_deploys(void **state)
{
	struct fx *fx = *state;
	const char *labels[] = {"target=host", "deploy=true"};
	struct board_row b = {0};
	struct deploy_board_row r = {0};
	struct release_board_row *where = NULL;
	struct job_row j = {0};
	struct err err = {0};
	enum job_state st;
	int64_t bid, p1, p2, p3, p4, dj, *ids = NULL;
	size_t n;
	int found, ended;
	char *msg = NULL;

	b.name = "b1", b.host = "127.0.0.1", b.port = 22, b.user = "root", b.arch = "x86_64", b.group = "lab";
	b.labels = "", b.host_key = "SHA256:x", b.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----";
	assert_int_equal(store_board_add(fx->st, &b, 1, &bid, &err), 0);

	p1 = tag_pipeline_built(fx, "refs/tags/v1.0", labels, 2, JOB_SUCCESS);
	dj = deploy_job_of(fx, p1, &st, NULL);
	assert_true(dj > 0);
	assert_int_equal(st, JOB_QUEUED);
	/* recorded, not signed: not handed out */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 40, 1000, &j, &found, &err), 0);
	assert_false(found);
	assert_int_equal(store_release_unsigned(fx->st, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_release_sign(fx->st, ids[0], "{}", "sig", "0011223344556677", &err), 0);
	free(ids);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 41, 1000, &j, &found, &err), 0);
	assert_true(found);
	assert_int_equal(j.id, dj);
	job_row_release(&j);

	/* where v1.0 is deployed: b1, once it reported the switch */
	assert_int_equal(store_release_boards(fx->st, fx->repo_id, "v1.0", &where, &n, &err), 0);
	assert_int_equal(n, 0);
	r.board = "b1", r.attempt = 1, r.release = "v1.0", r.previous = "", r.current = "releases/v1.0";
	r.state = "healthy", r.restart_exit = -1, r.health_exit = 0;
	assert_int_equal(store_deploy_report(fx->st, dj, &r, 50, &err), 0);
	assert_int_equal(store_release_boards(fx->st, fx->repo_id, "v1.0", &where, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(where[0].board, "b1");
	assert_string_equal(where[0].group, "lab");
	assert_int_equal(where[0].since_ms, 50);
	release_board_rows_free(where, n);
	assert_int_equal(store_release_boards(fx->st, fx->repo_id + 1, "v1.0", &where, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(jobstate_finish(fx->st, dj, 1, JOB_SUCCESS, 1, 0, "", 60, &err), 0);

	/* a second pipeline of tag v1.0 records nothing: its deploy never runs */
	p2 = tag_pipeline_built(fx, "refs/tags/v1.0", labels, 2, JOB_SUCCESS);
	dj = deploy_job_of(fx, p2, &st, NULL);
	assert_int_equal(st, JOB_QUEUED);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 70, 1000, &j, &found, &err), 0);
	assert_false(found);
	assert_int_equal(jobstate_release_deploys_end_orphans(fx->st, 71, &ended, &err), 0);
	assert_int_equal(ended, 1);
	assert_int_equal(deploy_job_of(fx, p2, &st, &msg), dj);
	assert_int_equal(st, JOB_CANCELED);
	assert_non_null(strstr(msg, "release v1.0 of demo was recorded from pipeline"));
	free(msg);
	assert_int_equal(jobstate_release_deploys_end_orphans(fx->st, 72, &ended, &err), 0);
	assert_int_equal(ended, 0);

	/* a failed build: no release, no deploy job */
	p3 = tag_pipeline_built(fx, "refs/tags/v2.0", labels, 2, JOB_FAILED);
	assert_int_equal(deploy_job_of(fx, p3, &st, NULL), 0);

	/* a release that cannot be signed: its waiting deploy is ended */
	p4 = tag_pipeline_built(fx, "refs/tags/v3.0", labels, 2, JOB_SUCCESS);
	assert_int_equal(jobstate_release_deploys_cancel(fx->st, p4, "cannot be signed", 80, &ended, &err),
	                 0);
	assert_int_equal(ended, 1);
	deploy_job_of(fx, p4, &st, &msg);
	assert_int_equal(st, JOB_CANCELED);
	assert_string_equal(msg, "cannot be signed");
	free(msg);
}

/* Migration 11: the rules are C (server/sched/jobstate.c), so an SQLite
 * store holds no trigger that would make them twice. */
/* Removes a file store's database and what SQLite and the store's lock
 * made beside it. */
static void unlink_store_files(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", ".lock"};
	char name[128];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
		unlink(name);
	}
}

static void test_schema_has_no_triggers(void **state)
{
	char path[] = "/tmp/anvil-test-store-XXXXXX";
	int fd = mkstemp(path);
	struct store *st = NULL;
	struct err err = {0};
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	(void)state;
	if (getenv("ANVIL_PG_URL") != NULL) {
		close(fd);
		unlink(path);
		skip(); /* PostgreSQL's schema: test_store_pg */
	}
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(path, &st, &err), 0);
	store_free(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'trigger'),"
	                       " (SELECT user_version FROM pragma_user_version)",
	                       -1, &s, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 0);
	assert_int_equal(sqlite3_column_int(s, 1), STORE_SCHEMA_VERSION);
	sqlite3_finalize(s);
	/* every table is one --migrate-to copies (a table a migration adds
	 * and store_tables lacks would be left behind) */
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT name FROM sqlite_master WHERE type = 'table'"
	                                    " AND name NOT LIKE 'sqlite_%' AND name <> 'schema_version'",
	                                    -1, &s, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(s, 0);
		if (!store_table_known(table))
			fail_msg("table %s is not in store_tables (server/store/store.c)", table);
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	unlink_store_files(path);
}

/* Issue 17: statements are prepared when first used, not at open (all of
 * them held 640 KB), and a statement whose prepare fails then is an error
 * from the operation, not a crash: here its table went away under the
 * store (another connection dropped it). */
static void test_sqlite_statements_on_first_use(void **state)
{
	char path[] = "/tmp/anvil-test-store-XXXXXX";
	int fd = mkstemp(path);
	struct store *st = NULL;
	struct store_stats stats;
	struct schedule_row *rows = NULL;
	struct err err = {0};
	sqlite3 *db = NULL;
	size_t n = 0;

	(void)state;
	if (getenv("ANVIL_PG_URL") != NULL) {
		close(fd);
		unlink(path);
		skip(); /* PostgreSQL prepares nothing ahead */
	}
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(path, &st, &err), 0);
	assert_int_equal(store_stats(st, &stats, &err), 0);
	if (stats.cache_bytes > 700 * 1024)
		fail_msg("SQLite holds %lld bytes after open: statements prepared ahead?",
		         (long long)stats.cache_bytes);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA foreign_keys = OFF; DROP TABLE schedules", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_schedule_list(st, NULL, &rows, &n, &err), -1);
	if (strstr(err.msg, "no such table") == NULL)
		fail_msg("unexpected error: %s", err.msg);
	/* The store goes on serving what does not need the table. */
	assert_int_equal(store_stats(st, &stats, &err), 0);
	store_free(st);
	unlink_store_files(path);
}

/* Issue 17: SQLite's page cache is capped (PRAGMA cache_size in
 * server/store/sqlite.c), so a server's memory does not grow with its
 * database: 4 MB of incompressible log written and read back through a
 * file store leave the library holding well under its default 2 MB cache
 * plus statements (anvil_store_cache_bytes). */
static void test_sqlite_cache_bounded(void **state)
{
	char path[] = "/tmp/anvil-test-store-XXXXXX";
	int fd = mkstemp(path);
	struct fx fx = {0};
	struct err err = {0};
	const char *t[] = {"host"};
	struct store_stats stats;
	struct buf chunk = BUF_INIT, b = BUF_INIT;
	int64_t j, off = 0, next = 0;
	int acc = 0, trunc = 0;
	uint32_t x = 777;

	(void)state;
	if (getenv("ANVIL_PG_URL") != NULL) {
		close(fd);
		unlink(path);
		skip(); /* PostgreSQL caches in its own server processes */
	}
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(path, &fx.st, &err), 0);
	assert_int_equal(store_repo_upsert(fx.st, "demo", "/srv/demo.git", 1, &fx.repo_id, &err), 0);
	assert_int_equal(jobstate_agent_register(fx.st, "a1", "[\"target=host\"]", "a1-token-sha256", 1,
	                                         &fx.agent_id, &(int){0}, &err),
	                 0);
	mk_pipeline(&fx, NULL, t, 1, 3);
	j = claim(&fx, "host", 100, 1);
	for (int i = 0; i < 64 * 1024; i++) {
		char c;
		x = x * 1103515245u + 12345u;
		c = (char)(33 + (x >> 16) % 90);
		buf_append(&chunk, &c, 1);
	}
	for (int seq = 0; seq < 64; seq++) {
		chunk.data[0] = (char)('A' + seq % 26); /* no two chunks alike */
		assert_int_equal(
		    store_log_append(fx.st, j, 1, seq, chunk.data, chunk.len, 1 << 23, &acc, &trunc, &err),
		    0);
	}
	do {
		buf_reset(&b);
		assert_int_equal(store_log_read(fx.st, j, off, 1 << 20, &b, &next, &err), 0);
		off = next;
	} while (b.len > 0);
	assert_int_equal(off, 64 * 64 * 1024);
	assert_int_equal(store_stats(fx.st, &stats, &err), 0);
	assert_true(stats.cache_bytes > 0);
	if (stats.cache_bytes >= 2000000)
		fail_msg("SQLite holds %lld bytes after 4 MB of log", (long long)stats.cache_bytes);
	store_free(fx.st);
	buf_release(&chunk);
	buf_release(&b);
	unlink_store_files(path);
}

/* Issue 15: needs. A job waits for the jobs it needs, gets their
 * artifacts (and only theirs), and is canceled naming the one that failed;
 * a retry waits for the same jobs. */
static void test_needs(void **state)
{
	struct fx *fx = *state;
	struct pipeline_new p = {
	    .repo_id = fx->repo_id, .ref = "refs/heads/main", .commit_sha = COMMIT, .event = "push"};
	static const size_t need0[] = {0}, need1[] = {1};
	struct job_new jobs[3] = {{"build", "host", "{}", NULL, 3, NULL, 0, 0},
	                          {"test", "host", "{}", "site=lab", 3, need0, 1, 0},
	                          {"package", "host", "{}", NULL, 3, need1, 1, 0}};
	struct job_new other = {"build", "host", "{}", NULL, 3, NULL, 0, 0};
	const char *labels[] = {"target=host", "site=lab"};
	struct job_input *in = NULL;
	struct job_row j = {0}, pkg = {0};
	struct pipeline_row pr = {0};
	struct err err = {0};
	int64_t pid, pid2, build, test, retry, other_build;
	size_t n = 0;
	int existed = 0, found = 0;

	assert_int_equal(jobstate_pipeline_create(fx->st, &p, jobs, 3, 10, &pid, &existed, &err), 0);
	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &other, 1, 11, &pid2, &existed, &err), 0);
	/* the build first; the test waits for it */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 20, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 1);
	build = j.id;
	assert_string_equal(j.name, "build");
	assert_int_equal(j.pipeline_id, pid);
	job_row_release(&j);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 21, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 1);
	other_build = j.id;
	assert_int_equal(j.pipeline_id, pid2);
	job_row_release(&j);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 22, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 0);
	assert_int_equal(store_artifact_add(fx->st, build, 1, "bin/app", SHA_A, 5, 0755, 30, &err), 0);
	assert_int_equal(store_artifact_add(fx->st, other_build, 1, "secret", SHA_A, 5, 0644, 30, &err), 0);
	assert_int_equal(jobstate_finish(fx->st, other_build, 1, JOB_SUCCESS, 1, 0, "", 31, &err), 0);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 32, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 0);
	assert_int_equal(jobstate_finish(fx->st, build, 1, JOB_SUCCESS, 1, 0, "", 40, &err), 0);
	/* now the test, with the build's artifact and nothing of the other pipeline */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 1, 41, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 0); /* it needs site=lab too */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 42, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 1);
	test = j.id;
	assert_string_equal(j.name, "test");
	assert_string_equal(j.labels, "site=lab");
	job_row_release(&j);
	assert_int_equal(store_job_inputs(fx->st, test, &in, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(in[0].job_id, build);
	assert_string_equal(in[0].job_name, "build");
	assert_string_equal(in[0].job_target, "host");
	assert_string_equal(in[0].a.name, "bin/app");
	assert_string_equal(in[0].a.sha256, SHA_A);
	assert_int_equal(in[0].a.size, 5);
	assert_int_equal(in[0].a.mode, 0755);
	job_inputs_free(in, n);
	/* the test fails: the package that needs it ends canceled, naming it */
	assert_int_equal(jobstate_finish(fx->st, test, 1, JOB_FAILED, 1, 2, "step 1 exited 2", 50, &err), 0);
	assert_int_equal(store_job_get(fx->st, test + 1, &pkg, &err), 0);
	assert_string_equal(pkg.name, "package");
	assert_int_equal(pkg.state, JOB_CANCELED);
	assert_string_equal(pkg.message, "needs test, which failed");
	job_row_release(&pkg);
	assert_int_equal(store_pipeline_get(fx->st, pid, &pr, &err), 0);
	assert_int_equal(pr.state, JOB_FAILED);
	pipeline_row_release(&pr);
	/* a retry of the test waits for the build again (succeeded: claimable) */
	assert_int_equal(jobstate_retry(fx->st, test, 60, &retry, &err), 0);
	assert_int_equal(store_job_inputs(fx->st, retry, &in, &n, &err), 0);
	assert_int_equal(n, 1);
	job_inputs_free(in, n);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 2, 61, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 1);
	assert_int_equal(j.id, retry);
	job_row_release(&j);
	assert_int_equal(store_integrity_check(fx->st, &err), 0);
}

/* Issue 15: a job no registered agent can run says so, and so does its
 * pipeline, until an agent that can registers. */
static void test_unrunnable(void **state)
{
	struct fx *fx = *state;
	struct pipeline_new p = {
	    .repo_id = fx->repo_id, .ref = "refs/heads/main", .commit_sha = COMMIT, .event = "push"};
	struct job_new jobs[2] = {{"build", "x86_64-unknown-linux-gnu", "{}", NULL, 3, NULL, 0, 0},
	                          {"test", "host", "{}", "gpu=yes,site=lab", 3, NULL, 0, 0}};
	struct strv agents[2] = {STRV_INIT, STRV_INIT};
	struct job_row j = {0};
	struct pipeline_row pr = {0};
	struct err err = {0};
	int64_t pid;
	int existed = 0, changed = 0, found = 0;
	const char *labels[] = {"target=x86_64-unknown-linux-gnu"};

	assert_int_equal(jobstate_pipeline_create(fx->st, &p, jobs, 2, 10, &pid, &existed, &err), 0);
	strv_push(&agents[0], "target=host");
	strv_push(&agents[0], "site=lab");
	strv_push(&agents[1], "target=aarch64-unknown-linux-gnu");
	strv_push(&agents[1], "gpu=yes");
	assert_int_equal(jobstate_unrunnable_scan(fx->st, agents, 2, 20, &changed, &err), 0);
	assert_int_equal(changed, 2);
	assert_int_equal(store_job_get(fx->st, 1, &j, &err), 0);
	assert_string_equal(j.message, "no agent offers target x86_64-unknown-linux-gnu");
	job_row_release(&j);
	assert_int_equal(store_job_get(fx->st, 2, &j, &err), 0);
	assert_string_equal(j.message, "no agent offers target host with label gpu=yes");
	job_row_release(&j);
	assert_int_equal(store_pipeline_get(fx->st, pid, &pr, &err), 0);
	assert_string_equal(
	    pr.message,
	    "job build (x86_64-unknown-linux-gnu): no agent offers target x86_64-unknown-linux-gnu");
	pipeline_row_release(&pr);
	/* a second scan changes nothing */
	assert_int_equal(jobstate_unrunnable_scan(fx->st, agents, 2, 21, &changed, &err), 0);
	assert_int_equal(changed, 0);
	/* gpu=yes joins the host agent: the test can run, the pipeline names the build */
	strv_push(&agents[0], "gpu=yes");
	assert_int_equal(jobstate_unrunnable_scan(fx->st, agents, 2, 22, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_job_get(fx->st, 2, &j, &err), 0);
	assert_string_equal(j.message, "");
	job_row_release(&j);
	/* an agent for the target claims the build: its message goes, and the pipeline's */
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 1, 30, 1000, &j, &found, &err), 0);
	assert_int_equal(found, 1);
	assert_string_equal(j.message, "");
	job_row_release(&j);
	assert_int_equal(store_pipeline_get(fx->st, pid, &pr, &err), 0);
	assert_string_equal(pr.message, "");
	pipeline_row_release(&pr);
	strv_release(&agents[0]);
	strv_release(&agents[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_delivery_is_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_holds_several_jobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delivery_per_repository, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_claim_matches_target, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_finish_and_stale_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_expiry_requeues_then_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_give_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_and_retry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_dedupe_offsets_and_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifacts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_compression, setup, teardown),
	    cmocka_unit_test(test_sqlite_cache_bounded),
	    cmocka_unit_test(test_sqlite_statements_on_first_use),
	    cmocka_unit_test_setup_teardown(test_log_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_ownership, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repo_agent_pool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deploy_jobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_deploys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_needs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unrunnable, setup, teardown),
	    cmocka_unit_test(test_schema_has_no_triggers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
