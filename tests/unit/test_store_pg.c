/* The store's PostgreSQL backend, through store_pg_ops, against a real
 * cluster (tests/pg/run.sh starts one and passes its URL in ANVIL_PG_URL):
 * migrations (idempotent, refused when newer, two servers at once), the
 * transaction primitives, SKIP LOCKED claims from two transactions, logs
 * (dedup, compression, offsets, cap), artifacts and retention, forges and
 * the status queue, boards and deploys, releases, agents and tokens,
 * sessions, LISTEN/NOTIFY wake-ups and a lost connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <time.h>

#include "server/store/store_be.h"

#define SHA_A  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

static const struct store_ops *ops = &store_pg_ops;
static struct store_be *be;

static const char *url(void)
{
	const char *u = getenv("ANVIL_PG_URL");

	if (u == NULL)
		fail_msg("ANVIL_PG_URL is not set: run this test through tests/pg/run.sh");
	return u;
}

/* A connection of the test's own, to look at rows the API does not show. */
static PGconn *raw_open(void)
{
	PGconn *c = PQconnectdb(url());

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static int64_t raw_i64(const char *sql)
{
	PGconn *c = raw_open();
	PGresult *r = PQexec(c, sql);
	int64_t v;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

static void raw_exec(const char *sql)
{
	PGconn *c = raw_open();
	PGresult *r = PQexec(c, sql);

	assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
}

static int setup(void **state)
{
	struct err err = {0};

	(void)state;
	if (store_pg_open(url(), &be, &err) < 0)
		fail_msg("store_pg_open: %s", err.msg);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ops->free(be);
	be = NULL;
	return 0;
}

/* ---- helpers built from the primitives, as jobstate will ---- */

static int64_t mk_repo(const char *name)
{
	struct err err = {0};
	int64_t id = 0;

	assert_int_equal(ops->repo_upsert(be, name, "/srv/x.git", 1, &id, &err), 0);
	return id;
}

static int64_t mk_pipeline(int64_t repo_id, const char *ref, const char *delivery)
{
	struct pipeline_new p = {.repo_id = repo_id,
	                         .ref = ref,
	                         .commit_sha = COMMIT,
	                         .event = "push",
	                         .delivery = delivery,
	                         .commit_message = "msg",
	                         .author = "me"};
	struct store_tx *tx = NULL;
	struct err err = {0};
	int64_t id = 0;

	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_pipeline_insert(tx, &p, JOB_QUEUED, 10, 0, &id, &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	return id;
}

static int64_t mk_job(int64_t pipeline_id, const char *name, const char *target, const char *kind,
                      const char *labels)
{
	struct job_insert in = {.pipeline_id = pipeline_id,
	                        .name = name,
	                        .target = target,
	                        .kind = kind,
	                        .labels = labels,
	                        .spec = "{}",
	                        .max_attempts = 2};
	struct store_tx *tx = NULL;
	struct err err = {0};
	int64_t id = 0;

	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_job_insert(tx, &in, 20, &id, &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	return id;
}

/* The job's mutable columns moved to state (a claim, a finish). */
static void set_job(int64_t id, enum job_state state, int attempt, int64_t agent_id, int64_t lease_until_ms,
                    int64_t finished_ms)
{
	struct store_tx *tx = NULL;
	struct job_state_row js = {0};
	struct err err = {0};

	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_job_lock(tx, id, &js, &err), 0);
	js.state = state;
	js.attempt = attempt;
	js.agent_id = agent_id;
	js.lease_until_ms = lease_until_ms;
	if (js.started_ms == 0 && state == JOB_RUNNING)
		js.started_ms = 30;
	js.finished_ms = finished_ms;
	if (jobstate_is_final(state)) {
		js.has_exit_code = 1;
		js.exit_code = state == JOB_SUCCESS ? 0 : 1;
	}
	assert_int_equal(ops->tx_job_write(tx, &js, &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	job_state_row_release(&js);
}

static int64_t mk_agent(const char *name, const char *token)
{
	struct store_tx *tx = NULL;
	struct err err = {0};
	int64_t id = 0;

	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_agent_upsert(tx, name, "[\"target=host\"]", token, 5, &id, &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	return id;
}

/* ---- migrations ---- */

struct opener {
	const char *url;
	struct store_be *be;
	int rc;
	struct err err;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	o->rc = store_pg_open(o->url, &o->be, &o->err);
	return NULL;
}

static void test_migrations(void **state)
{
	struct store_be *again = NULL;
	struct err err = {0};
	struct opener o[2];
	pthread_t th[2];
	char *race_url;
	const char *q;

	(void)state;
	assert_int_equal(raw_i64("SELECT version FROM schema_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_i64("SELECT count(*) FROM schema_version"), 1);
	/* no trigger of SQLite's survives on PostgreSQL */
	assert_int_equal(raw_i64("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"), 0);
	/* reopening runs nothing and changes nothing */
	assert_int_equal(store_pg_open(url(), &again, &err), 0);
	assert_int_equal(ops->integrity_check(again, &err), 0);
	ops->free(again);
	assert_int_equal(raw_i64("SELECT version FROM schema_version"), STORE_SCHEMA_VERSION);
	/* a newer schema than this binary knows is refused */
	raw_exec("UPDATE schema_version SET version = 99");
	again = NULL;
	assert_int_equal(store_pg_open(url(), &again, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "newer"));
	assert_null(again);
	{
		char sql[64];

		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", STORE_SCHEMA_VERSION);
		raw_exec(sql);
	}
	/* not a PostgreSQL URL */
	assert_int_equal(store_pg_open("/var/lib/anvil/anvil.db", &again, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);

	/* two servers starting together on an empty database: the advisory
	 * lock lets one migrate, the other finds the schema done */
	raw_exec("DROP DATABASE IF EXISTS anvil_race");
	raw_exec("CREATE DATABASE anvil_race");
	q = strstr(url(), "/anvil?");
	assert_non_null(q);
	race_url = calloc(1, strlen(url()) + 16);
	memcpy(race_url, url(), (size_t)(q - url()));
	strcat(race_url, "/anvil_race");
	strcat(race_url, q + strlen("/anvil"));
	memset(o, 0, sizeof(o));
	for (int i = 0; i < 2; i++) {
		o[i].url = race_url;
		assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (o[i].rc != 0)
			fail_msg("open %d: %s", i, o[i].err.msg);
		assert_int_equal(ops->integrity_check(o[i].be, &err), 0);
		ops->free(o[i].be);
	}
	free(race_url);
	raw_exec("DROP DATABASE anvil_race");
}

/* ---- pipelines and jobs through the primitives ---- */

static void test_jobs(void **state)
{
	struct store_tx *tx = NULL;
	struct err err = {0};
	struct pipeline_facts facts = {0};
	struct pipeline_row prow = {0}, *prows = NULL;
	struct job_row job = {0}, *jobs = NULL;
	struct job_state_row js = {0};
	enum job_state *states = NULL;
	int64_t repo, pid, j1, j2, j3, retry = 0, id = 0, n = 0, *ids = NULL, agent;
	size_t np = 0, nj = 0, nids = 0;
	int cancel = -1;

	(void)state;
	repo = mk_repo("jobs-repo");
	assert_int_equal(ops->repo_upsert(be, "jobs-repo", "/srv/y.git", 2, &id, &err), 0);
	assert_int_equal(id, repo); /* upsert keeps the id */
	agent = mk_agent("jobs-agent", "jobs-token");
	pid = mk_pipeline(repo, "refs/heads/main", "d-1");
	j1 = mk_job(pid, "build", "aarch64", "build", NULL);
	j2 = mk_job(pid, "build", "armv7", "build", "site=a");
	j3 = mk_job(pid, "test", "host", NULL, NULL);

	/* delivery: per repository */
	assert_int_equal(ops->pipeline_by_delivery(be, "jobs-repo", "d-1", &id, &err), 0);
	assert_int_equal(id, pid);
	assert_int_equal(ops->pipeline_by_delivery(be, "jobs-repo", "d-2", &id, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_pipeline_by_delivery(tx, repo, "d-1", &id, &err), 0);
	assert_int_equal(id, pid);
	{
		/* a second pipeline with the same delivery: ERR_CONFLICT */
		struct pipeline_new p = {
		    .repo_id = repo, .ref = "r", .commit_sha = COMMIT, .event = "push", .delivery = "d-1"};
		assert_int_equal(ops->tx_pipeline_insert(tx, &p, JOB_QUEUED, 1, 0, &id, &err), -1);
		assert_int_equal(err.code, ERR_CONFLICT);
	}
	ops->tx_rollback(tx);
	tx = NULL;

	assert_int_equal(ops->pipeline_get(be, pid, &prow, &err), 0);
	assert_int_equal(prow.repo_id, repo);
	assert_string_equal(prow.repo_name, "jobs-repo");
	assert_string_equal(prow.delivery, "d-1");
	assert_string_equal(prow.author, "me");
	assert_int_equal(prow.state, JOB_QUEUED);
	assert_int_equal(prow.finished_ms, 0);
	pipeline_row_release(&prow);
	assert_int_equal(ops->pipeline_get(be, 999999, &prow, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	assert_int_equal(ops->pipeline_jobs(be, pid, &jobs, &nj, &err), 0);
	assert_int_equal(nj, 3);
	assert_int_equal(jobs[0].id, j1);
	assert_int_equal(jobs[2].id, j3);
	assert_string_equal(jobs[1].labels, "site=a");
	assert_string_equal(jobs[2].kind, "build");
	assert_null(jobs[0].agent_name);
	assert_int_equal(jobs[0].has_exit_code, 0);
	job_rows_free(jobs, nj);

	/* claimable, locked, written back */
	{
		struct job_claimable *c = NULL;
		size_t nc = 0;
		assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
		assert_int_equal(ops->tx_jobs_claimable(tx, 100, &c, &nc, &err), 0);
		assert_true(nc >= 3);
		assert_int_equal(c[nc - 3].id, j1); /* id order; earlier tests' jobs first */
		assert_string_equal(c[nc - 2].labels, "site=a");
		assert_string_equal(c[nc - 2].pool, "");
		job_claimables_free(c, nc);
		assert_int_equal(ops->tx_job_lock(tx, j1, &js, &err), 0);
		assert_int_equal(js.state, JOB_QUEUED);
		assert_string_equal(js.kind, "build");
		js.state = JOB_RUNNING;
		js.attempt = 1;
		js.agent_id = agent;
		js.lease_until_ms = 1000;
		js.started_ms = 40;
		assert_int_equal(ops->tx_job_write(tx, &js, &err), 0);
		job_state_row_release(&js);
		assert_int_equal(ops->tx_job_get(tx, j1, &job, &err), 0);
		assert_int_equal(job.state, JOB_RUNNING);
		assert_string_equal(job.agent_name, "jobs-agent");
		job_row_release(&job);
		assert_int_equal(ops->tx_notify(tx, "jobs", &err), 0);
		assert_int_equal(ops->tx_commit(tx, &err), 0);
		tx = NULL;
	}
	assert_int_equal(ops->job_get(be, j1, &job, &err), 0);
	assert_int_equal(job.state, JOB_RUNNING);
	assert_int_equal(job.attempt, 1);
	assert_int_equal(job.lease_until_ms, 1000);
	assert_string_equal(job.repo_url, "/srv/y.git");
	assert_string_equal(job.commit_sha, COMMIT);
	job_row_release(&job);
	assert_int_equal(ops->job_get(be, 999999, &job, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	/* heartbeat: only at the running attempt */
	assert_int_equal(ops->job_heartbeat(be, j1, 1, 500, 1000, &cancel, &err), 0);
	assert_int_equal(cancel, 0);
	assert_int_equal(ops->job_heartbeat(be, j1, 2, 500, 1000, &cancel, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(ops->job_heartbeat(be, j2, 0, 500, 1000, &cancel, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(ops->job_heartbeat(be, 999999, 1, 500, 1000, &cancel, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	/* expired leases, an agent's jobs */
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_jobs_expired(tx, 1500, &ids, &nids, &err), 0);
	assert_int_equal(nids, 0); /* the heartbeat moved it to 1500 */
	free(ids);
	assert_int_equal(ops->tx_jobs_expired(tx, 1501, &ids, &nids, &err), 0);
	assert_int_equal(nids, 1);
	assert_int_equal(ids[0], j1);
	free(ids);
	assert_int_equal(ops->tx_jobs_of_agent(tx, agent, &ids, &nids, &err), 0);
	assert_int_equal(nids, 1);
	assert_int_equal(ids[0], j1);
	free(ids);
	ids = NULL;

	/* states and counts of the current jobs */
	assert_int_equal(ops->tx_pipeline_states(tx, pid, &states, &nids, &err), 0);
	assert_int_equal(nids, 3);
	assert_int_equal(states[0], JOB_RUNNING);
	assert_int_equal(states[1], JOB_QUEUED);
	free(states);
	assert_int_equal(ops->tx_jobs_unsucceeded(tx, pid, NULL, NULL, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ops->tx_jobs_unsucceeded(tx, pid, "build", "build", &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ops->tx_jobs_unsucceeded(tx, pid, NULL, "test", &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops->tx_pipeline_set_state(tx, pid, JOB_RUNNING, 0, &err), 0);
	assert_int_equal(ops->tx_pipeline_set_state(tx, 999999, JOB_RUNNING, 0, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	ops->tx_rollback(tx); /* the failed statement aborted it */
	tx = NULL;

	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_pipeline_facts(tx, pid, &facts, &err), 0);
	assert_int_equal(facts.repo_id, repo);
	assert_string_equal(facts.ref, "refs/heads/main");
	assert_string_equal(facts.release_pattern, "v*");
	assert_int_equal(facts.statuses, 0);
	pipeline_facts_release(&facts);
	assert_int_equal(ops->tx_pipeline_facts(tx, 999999, &facts, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	ops->tx_rollback(tx);
	tx = NULL;

	/* a final job retried once; the second retry conflicts */
	set_job(j3, JOB_FAILED, 1, agent, 0, 60);
	{
		struct job_insert in = {.pipeline_id = pid,
		                        .name = "test",
		                        .target = "host",
		                        .kind = "build",
		                        .labels = "",
		                        .spec = "{}",
		                        .max_attempts = 2,
		                        .retry_of = j3};
		assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
		assert_int_equal(ops->tx_job_insert(tx, &in, 70, &retry, &err), 0);
		assert_int_equal(ops->tx_commit(tx, &err), 0);
		assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
		assert_int_equal(ops->tx_job_insert(tx, &in, 71, &id, &err), -1);
		assert_int_equal(err.code, ERR_CONFLICT);
		/* commit after a failure rolls back and says so */
		assert_int_equal(ops->tx_commit(tx, &err), -1);
		tx = NULL;
	}
	assert_int_equal(ops->job_get(be, j3, &job, &err), 0);
	assert_int_equal(job.state, JOB_FAILED);
	assert_int_equal(job.has_exit_code, 1);
	assert_int_equal(job.exit_code, 1);
	assert_int_equal(job.finished_ms, 60);
	job_row_release(&job);
	assert_int_equal(ops->job_get(be, retry, &job, &err), 0);
	assert_int_equal(job.retry_of, j3);
	job_row_release(&job);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_pipeline_states(tx, pid, &states, &nids, &err), 0);
	assert_int_equal(nids, 3); /* the retried one no longer counts */
	free(states);
	ops->tx_rollback(tx);
	tx = NULL;

	/* lists: newest first, by repository */
	mk_pipeline(repo, "refs/heads/dev", NULL);
	assert_int_equal(ops->pipeline_list(be, "jobs-repo", 10, &prows, &np, &err), 0);
	assert_int_equal(np, 2);
	assert_string_equal(prows[0].ref, "refs/heads/dev");
	assert_null(prows[0].delivery);
	pipeline_rows_free(prows, np);
	assert_int_equal(ops->pipeline_list(be, NULL, 1, &prows, &np, &err), 0);
	assert_int_equal(np, 1);
	pipeline_rows_free(prows, np);
	assert_int_equal(ops->pipeline_latest_ref(be, "jobs-repo", "refs/heads/main", &prow, &err), 0);
	assert_int_equal(prow.id, pid);
	pipeline_row_release(&prow);
	assert_int_equal(ops->pipeline_latest_ref(be, "jobs-repo", "refs/heads/none", &prow, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->pipeline_latest_refs(be, 100, &prows, &np, &err), 0);
	assert_true(np >= 2);
	for (size_t i = 1; i < np; i++) /* by repository name, then ref, bytewise */
		assert_true(strcmp(prows[i - 1].repo_name, prows[i].repo_name) < 0 ||
		            (strcmp(prows[i - 1].repo_name, prows[i].repo_name) == 0 &&
		             strcmp(prows[i - 1].ref, prows[i].ref) < 0));
	pipeline_rows_free(prows, np);
	{
		struct repo_row *repos = NULL;
		size_t nr = 0;
		mk_repo("Zed");
		assert_int_equal(ops->repo_list(be, &repos, &nr, &err), 0);
		assert_true(nr >= 2);
		assert_string_equal(repos[0].name, "Zed"); /* bytewise, as SQLite: 'Z' < 'j' */
		for (size_t i = 0; i < nr; i++)
			repo_row_release(&repos[i]);
		free(repos);
	}
}

/* ---- two transactions claiming at once ---- */

static void test_skip_locked(void **state)
{
	struct store_tx *a = NULL, *b = NULL;
	struct job_claimable *ca = NULL, *cb = NULL;
	size_t na = 0, nb = 0;
	struct err err = {0};
	struct job_state_row js = {0};
	int64_t repo, pid, j[2];

	(void)state;
	/* the queue holds just these two */
	raw_exec("UPDATE jobs SET state = 'canceled' WHERE state = 'queued'");
	repo = mk_repo("skip-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	j[0] = mk_job(pid, "build", "host", "build", NULL);
	j[1] = mk_job(pid, "build", "host2", "build", NULL);

	assert_int_equal(ops->tx_begin(be, &a, &err), 0);
	assert_int_equal(ops->tx_begin(be, &b, &err), 0);
	/* both see both (claimable does not lock); a takes the first; b's
	 * claim lock on it is refused at once (SKIP LOCKED), not waited for,
	 * and b takes the second */
	assert_int_equal(ops->tx_jobs_claimable(a, 10, &ca, &na, &err), 0);
	assert_int_equal(ops->tx_jobs_claimable(b, 10, &cb, &nb, &err), 0);
	assert_int_equal(na, 2);
	assert_int_equal(nb, 2);
	assert_int_equal(ca[0].id, j[0]);
	assert_int_equal(cb[0].id, j[0]);
	assert_int_equal(ops->tx_job_claim_lock(a, j[0], &js, &err), 0);
	js.state = JOB_RUNNING;
	js.attempt = 1;
	assert_int_equal(ops->tx_job_write(a, &js, &err), 0);
	job_state_row_release(&js);
	assert_int_equal(ops->tx_job_claim_lock(b, j[0], &js, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(ops->tx_job_claim_lock(b, j[1], &js, &err), 0);
	js.state = JOB_RUNNING;
	js.attempt = 1;
	assert_int_equal(ops->tx_job_write(b, &js, &err), 0);
	job_state_row_release(&js);
	assert_int_equal(ops->tx_commit(a, &err), 0);
	assert_int_equal(ops->tx_commit(b, &err), 0);
	job_claimables_free(ca, na);
	job_claimables_free(cb, nb);

	/* nothing left to claim */
	assert_int_equal(ops->tx_begin(be, &a, &err), 0);
	assert_int_equal(ops->tx_jobs_claimable(a, 10, &ca, &na, &err), 0);
	assert_int_equal(na, 0);
	assert_null(ca);
	ops->tx_rollback(a);
	ops->tx_rollback(NULL);
}

/* ---- logs ---- */

static void test_logs(void **state)
{
	struct err err = {0};
	struct buf b = BUF_INIT;
	struct job_row job = {0};
	struct store_tx *tx = NULL;
	char big[4000], line[128];
	int64_t repo, pid, jid, next = -1;
	int acc = -1, tr = -1, n = -1;

	(void)state;
	repo = mk_repo("logs-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	jid = mk_job(pid, "build", "host", "build", NULL);

	/* not running: conflict */
	assert_int_equal(ops->log_append(be, jid, 1, 0, "x", 1, NULL, 1 << 20, &acc, &tr, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	set_job(jid, JOB_RUNNING, 1, 0, 100000, 0);
	assert_int_equal(ops->log_append(be, jid, 1, -1, "x", 1, NULL, 1 << 20, &acc, &tr, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);

	assert_int_equal(ops->log_append(be, jid, 1, 0, "hello ", 6, NULL, 1 << 20, &acc, &tr, &err), 0);
	assert_int_equal(acc, 1);
	assert_int_equal(tr, 0);
	/* the same seq again: ignored */
	assert_int_equal(ops->log_append(be, jid, 1, 0, "hello ", 6, NULL, 1 << 20, &acc, &tr, &err), 0);
	assert_int_equal(acc, 0);
	/* a big compressible chunk is stored deflated */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = "abcdefgh\n"[i % 9];
	assert_int_equal(ops->log_append(be, jid, 1, 1, big, sizeof(big), NULL, 1 << 20, &acc, &tr, &err), 0);
	assert_int_equal(acc, 1);
	snprintf(line, sizeof(line), "SELECT raw_len FROM log_chunks WHERE job_id = %lld AND seq = 1",
	         (long long)jid);
	assert_int_equal(raw_i64(line), (int64_t)sizeof(big));
	snprintf(line, sizeof(line), "SELECT length(data) FROM log_chunks WHERE job_id = %lld AND seq = 1",
	         (long long)jid);
	assert_true(raw_i64(line) < (int64_t)sizeof(big) / 4);
	assert_int_equal(ops->log_append(be, jid, 1, 2, "bye", 3, NULL, 1 << 20, &acc, &tr, &err), 0);

	/* whole, then from inside the compressed chunk, then past the end */
	assert_int_equal(ops->log_read(be, jid, 0, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(b.len, 6 + sizeof(big) + 3);
	assert_int_equal(next, (int64_t)b.len);
	assert_memory_equal(b.data, "hello ", 6);
	assert_memory_equal(b.data + 6, big, sizeof(big));
	assert_memory_equal(b.data + 6 + sizeof(big), "bye", 3);
	buf_reset(&b);
	assert_int_equal(ops->log_read(be, jid, 100, 10, &b, &next, &err), 0);
	assert_int_equal(b.len, 6 + sizeof(big) - 100); /* the rest of the chunk, then stop */
	assert_memory_equal(b.data, big + 94, b.len);
	assert_int_equal(next, 6 + (int64_t)sizeof(big));
	buf_reset(&b);
	assert_int_equal(ops->log_read(be, jid, 6 + sizeof(big) + 3, 100, &b, &next, &err), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(next, 6 + (int64_t)sizeof(big) + 3);

	/* past the cap: cut, one marker, later chunks dropped */
	assert_int_equal(
	    ops->log_append(be, jid, 1, 3, "0123456789", 10, NULL, 6 + sizeof(big) + 3 + 4, &acc, &tr, &err),
	    0);
	assert_int_equal(acc, 1);
	assert_int_equal(tr, 1);
	assert_int_equal(ops->log_append(be, jid, 1, 4, "more", 4, NULL, 1 << 20, &acc, &tr, &err), 0);
	assert_int_equal(acc, 0);
	assert_int_equal(tr, 1);
	assert_int_equal(ops->job_get(be, jid, &job, &err), 0);
	assert_int_equal(job.log_truncated, 1);
	buf_reset(&b);
	assert_int_equal(ops->log_read(be, jid, 6 + sizeof(big) + 3, 1 << 20, &b, &next, &err), 0);
	assert_int_equal(job.log_bytes, next);
	job_row_release(&job);
	buf_append(&b, "", 1);
	assert_string_equal(b.data, "0123\n[anvil: log truncated at 4013 bytes]\n");

	/* a mark: once per attempt */
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_log_mark(tx, jid, 2, "[anvil] attempt 2\n", &err), 0);
	assert_int_equal(ops->tx_log_mark(tx, jid, 2, "[anvil] attempt 2\n", &err), 0);
	assert_int_equal(ops->tx_log_mark(tx, 999999, 2, "x", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	ops->tx_rollback(tx);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_log_mark(tx, jid, 2, "[anvil] attempt 2\n", &err), 0);
	assert_int_equal(ops->tx_log_mark(tx, jid, 2, "[anvil] attempt 2\n", &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	buf_reset(&b);
	assert_int_equal(ops->log_read(be, jid, next, 1 << 20, &b, &next, &err), 0);
	buf_append(&b, "", 1);
	assert_string_equal(b.data, "[anvil] attempt 2\n");

	/* retention: finished jobs' chunks become one marker */
	set_job(jid, JOB_SUCCESS, 1, 0, 0, 500);
	assert_int_equal(ops->log_expire(be, 400, "[expired]\n", 10, 900, &n, &err),
	                 0); /* finished too late */
	assert_int_equal(ops->job_get(be, jid, &job, &err), 0);
	assert_true(job.log_bytes > 1000);
	job_row_release(&job);
	assert_int_equal(ops->log_expire(be, 600, "[expired]\n", 100, 900, &n, &err), 0);
	assert_true(n >= 1);
	buf_reset(&b);
	assert_int_equal(ops->log_read(be, jid, 0, 1 << 20, &b, &next, &err), 0);
	buf_append(&b, "", 1);
	assert_string_equal(b.data, "[expired]\n");
	assert_int_equal(ops->job_get(be, jid, &job, &err), 0);
	assert_int_equal(job.log_bytes, 10);
	job_row_release(&job);
	assert_int_equal(ops->log_expire(be, 600, "[expired]\n", 100, 900, &n, &err), 0);
	assert_int_equal(n, 0); /* once */
	buf_release(&b);
}

/* ---- artifacts, blobs, retention ---- */

static void test_artifacts(void **state)
{
	struct err err = {0};
	struct artifact_row *rows = NULL, one = {0};
	struct strv shas = STRV_INIT;
	size_t n = 0;
	int64_t repo, pid, jid;
	int exists = -1, k = -1;

	(void)state;
	repo = mk_repo("art-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	jid = mk_job(pid, "build", "host", "build", NULL);
	assert_int_equal(ops->artifact_add(be, jid, 1, "bin/app", SHA_A, 10, 0755, 5, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	set_job(jid, JOB_RUNNING, 1, 0, 100000, 0);
	assert_int_equal(ops->artifact_add(be, jid, 1, "bin/app", SHA_A, 10, 0755, 5, &err), 0);
	assert_int_equal(ops->artifact_add(be, jid, 1, "README", SHA_A, 10, 0644, 5, &err), 0);
	/* the same name again replaces it */
	assert_int_equal(ops->artifact_add(be, jid, 1, "bin/app", SHA_B, 20, 0700, 6, &err), 0);
	assert_int_equal(ops->artifact_list(be, jid, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].name, "README");
	assert_string_equal(rows[1].name, "bin/app");
	assert_string_equal(rows[1].sha256, SHA_B);
	assert_int_equal(rows[1].size, 20);
	assert_int_equal(rows[1].mode, 0700);
	artifact_rows_free(rows, n);
	assert_int_equal(ops->artifact_get(be, jid, "README", &one, &err), 0);
	assert_string_equal(one.sha256, SHA_A);
	assert_int_equal(one.mode, 0644);
	free(one.name);
	assert_int_equal(ops->artifact_get(be, jid, "nope", &one, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->blob_exists(be, SHA_A, &exists, &err), 0);
	assert_int_equal(exists, 1);

	/* both blobs are referenced: nothing to collect */
	assert_int_equal(ops->blob_collect(be, 100, &shas, &err), 0);
	assert_int_equal(shas.n, 0);
	set_job(jid, JOB_SUCCESS, 1, 0, 0, 500);
	assert_int_equal(ops->artifact_expire(be, 600, 100, 900, &k, &err), 0);
	assert_true(k >= 1);
	assert_int_equal(ops->artifact_list(be, jid, &rows, &n, &err), 0);
	assert_int_equal(n, 0);
	free(rows);
	assert_int_equal(ops->artifact_expire(be, 600, 100, 900, &k, &err), 0);
	assert_int_equal(k, 0);
	assert_int_equal(ops->blob_collect(be, 100, &shas, &err), 0);
	assert_int_equal(shas.n, 2);
	assert_int_equal(ops->blob_exists(be, SHA_B, &exists, &err), 0);
	assert_int_equal(exists, 0);
	strv_release(&shas);
}

/* ---- forges: settings, secrets, heads, statuses ---- */

static void test_forges(void **state)
{
	struct err err = {0};
	struct repo_cfg in = {.name = "forge-repo",
	                      .url = "https://git/x.git",
	                      .forge = "gitea",
	                      .hook_secret = "hs",
	                      .status_token = "tok",
	                      .api_url = "https://git/api",
	                      .poll_s = 60,
	                      .agent_labels = "site=a"};
	struct repo_cfg out = {0}, *list = NULL;
	struct strv names = STRV_INIT, values = STRV_INIT, refs = STRV_INIT, shas = STRV_INIT;
	struct status_row *due = NULL;
	struct store_tx *tx = NULL;
	struct pipeline_facts facts = {0};
	size_t n = 0;
	int64_t id = 0, id2 = 0, pid, j1, j2, pending = 0;
	int k = 0;

	(void)state;
	assert_int_equal(ops->repo_configure(be, &in, 1, &id, &err), 0);
	in.agent_labels = NULL; /* keeps the pool */
	in.poll_s = 30;
	assert_int_equal(ops->repo_configure(be, &in, 2, &id2, &err), 0);
	assert_int_equal(id, id2);
	assert_int_equal(ops->repo_cfg_get(be, "forge-repo", &out, &err), 0);
	assert_string_equal(out.agent_labels, "site=a");
	assert_int_equal(out.poll_s, 30);
	assert_string_equal(out.status_token, "tok");
	repo_cfg_release(&out);
	assert_int_equal(ops->repo_cfg_get(be, "nope", &out, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->repo_cfg_list(be, &list, &n, &err), 0);
	assert_true(n >= 1);
	repo_cfgs_free(list, n);

	assert_int_equal(ops->secret_set(be, "forge-repo", "B", "2", 1, 1, &err), 0);
	assert_int_equal(ops->secret_set(be, "forge-repo", "A", "1", 0, 1, &err), 0);
	assert_int_equal(ops->secret_set(be, "forge-repo", "A", "one", 0, 2, &err), 0);
	assert_int_equal(ops->secret_set(be, "nope", "A", "1", 0, 1, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->secret_list(be, "forge-repo", 0, &names, &values, &err), 0);
	assert_int_equal(names.n, 2);
	assert_string_equal(names.v[0], "A");
	assert_string_equal(values.v[0], "one");
	strv_release(&names);
	assert_int_equal(ops->secret_list(be, "forge-repo", 1, &names, NULL, &err), 0);
	assert_int_equal(names.n, 1);
	assert_string_equal(names.v[0], "B"); /* the one pull requests from forks get */
	assert_int_equal(ops->secret_delete(be, "forge-repo", "B", &err), 0);
	assert_int_equal(ops->secret_delete(be, "forge-repo", "B", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	strv_release(&names);
	strv_release(&values);

	assert_int_equal(ops->poll_head_set(be, id, "refs/heads/main", "s1", &err), 0);
	assert_int_equal(ops->poll_head_set(be, id, "refs/heads/main", "s2", &err), 0);
	assert_int_equal(ops->poll_head_set(be, id, "refs/heads/dev", "s3", &err), 0);
	assert_int_equal(ops->poll_head_set(be, id, "refs/heads/gone", NULL, &err), 0);
	assert_int_equal(ops->poll_heads(be, id, &refs, &shas, &err), 0);
	assert_int_equal(refs.n, 2);
	assert_string_equal(refs.v[0], "refs/heads/dev");
	assert_string_equal(shas.v[1], "s2");
	assert_int_equal(ops->poll_head_set(be, id, "refs/heads/dev", NULL, &err), 0);
	strv_release(&refs);
	strv_release(&shas);
	assert_int_equal(ops->poll_heads(be, id, &refs, &shas, &err), 0);
	assert_int_equal(refs.n, 1);
	strv_release(&refs);
	strv_release(&shas);

	/* statuses: due in order, a job's next waits for its older one */
	pid = mk_pipeline(id, "refs/heads/main", NULL);
	j1 = mk_job(pid, "build", "aarch64", "build", NULL);
	j2 = mk_job(pid, "build", "armv7", "build", NULL);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_pipeline_facts(tx, pid, &facts, &err), 0);
	assert_int_equal(facts.statuses, 1);
	pipeline_facts_release(&facts);
	assert_int_equal(ops->tx_status_queue(tx, j1, "pending", "queued", 100, &err), 0);
	assert_int_equal(ops->tx_status_queue(tx, j2, "pending", "queued", 100, &err), 0);
	assert_int_equal(ops->tx_status_queue(tx, j1, "success", "success", 200, &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(ops->status_pending(be, &pending, &err), 0);
	assert_int_equal(pending, 3);
	assert_int_equal(ops->status_due(be, 50, 10, &due, &n, &err), 0);
	assert_int_equal(n, 0);
	free(due);
	assert_int_equal(ops->status_due(be, 1000, 10, &due, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(due[0].job_id, j1);
	assert_string_equal(due[0].state, "pending");
	assert_string_equal(due[0].token, "tok");
	assert_string_equal(due[0].commit_sha, COMMIT);
	assert_string_equal(due[0].target, "aarch64");
	assert_int_equal(due[1].job_id, j2);
	id = due[0].id;
	id2 = due[1].id;
	status_rows_free(due, n);
	/* j1's first is retried later, j2's given up on */
	assert_int_equal(ops->status_retry(be, id, 1, 5000, "503", 0, &err), 0);
	assert_int_equal(ops->status_retry(be, id2, 5, 5000, "gone", 1, &err), 0);
	assert_int_equal(ops->status_due(be, 1000, 10, &due, &n, &err), 0);
	assert_int_equal(n, 0); /* j1's success waits behind its pending */
	free(due);
	assert_int_equal(ops->status_sent(be, id, &err), 0);
	assert_int_equal(ops->status_due(be, 1000, 10, &due, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].state, "success");
	status_rows_free(due, n);
	assert_int_equal(ops->status_pending(be, &pending, &err), 0);
	assert_int_equal(pending, 1);
	assert_int_equal(ops->status_prune(be, 50, 10, &k, &err), 0);
	assert_int_equal(k, 0);
	assert_int_equal(ops->status_prune(be, 150, 10, &k, &err), 0);
	assert_int_equal(k, 1);
}

/* ---- boards and deploys ---- */

static void report(int64_t job, const char *board, int attempt, const char *state, const char *current,
                   int expect_rc)
{
	struct deploy_board_row r = {.board = (char *)board,
	                             .attempt = attempt,
	                             .release = "releases/v1",
	                             .previous = "",
	                             .current = (char *)current,
	                             .state = (char *)state,
	                             .restart_exit = -1,
	                             .health_exit = 0,
	                             .started_ms = 1,
	                             .duration_ms = 5};
	struct err err = {0};

	assert_int_equal(ops->deploy_report(be, job, &r, 100 + attempt, &err), expect_rc);
}

static void test_deploys(void **state)
{
	struct err err = {0};
	struct board_row b = {.name = "b1",
	                      .host = "10.0.0.1",
	                      .port = 22,
	                      .user = "root",
	                      .arch = "aarch64",
	                      .group = "plant",
	                      .labels = "",
	                      .host_key = "SHA256:x",
	                      .private_key = "KEY"};
	struct board_row *boards = NULL;
	struct deploy_board_row *db = NULL;
	struct deployment_row *deps = NULL;
	struct deploy_plan_row *plans = NULL;
	struct deploy_plan_new plan = {
	    .group = "plant", .spec = "{\"d\":1}", .labels = "site=p", .auto_deploy = 1};
	struct deploy_plan_new plan2 = {.group = "lab", .spec = "{}", .labels = NULL, .auto_deploy = 0};
	struct store_tx *tx = NULL;
	char *spec = NULL, *labels = NULL, *prev = NULL;
	size_t n = 0;
	int64_t id = 0, repo, pid, dj, active = -1;

	(void)state;
	assert_int_equal(ops->board_add(be, &b, 1, &id, &err), 0);
	assert_true(id > 0);
	assert_int_equal(ops->board_add(be, &b, 1, &id, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	b.name = "b0";
	b.group = "lab";
	assert_int_equal(ops->board_add(be, &b, 1, NULL, &err), 0);
	assert_int_equal(ops->board_list(be, NULL, 0, &boards, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(boards[0].name, "b0");
	assert_null(boards[0].private_key);
	assert_string_equal(boards[1].user, "root");
	board_rows_free(boards, n);
	assert_int_equal(ops->board_list(be, "plant", 1, &boards, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(boards[0].private_key, "KEY");
	assert_null(boards[0].current_release);
	board_rows_free(boards, n);
	assert_int_equal(ops->board_delete(be, "b0", &err), 0);
	assert_int_equal(ops->board_delete(be, "b0", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	repo = mk_repo("dep-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_deploy_plan_insert(tx, pid, &plan, &err), 0);
	assert_int_equal(ops->tx_deploy_plan_insert(tx, pid, &plan2, &err), 0);
	assert_int_equal(ops->tx_deploy_plans_pending(tx, pid, &plans, &n, &err), 0);
	assert_int_equal(n, 1); /* the automatic one */
	assert_string_equal(plans[0].group, "plant");
	assert_string_equal(plans[0].labels, "site=p");
	deploy_plan_rows_free(plans, n);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(ops->deploy_plan_get(be, pid, "lab", &spec, &labels, &err), 0);
	assert_string_equal(labels, "");
	free(spec);
	free(labels);
	assert_int_equal(ops->deploy_plan_get(be, pid, "nope", &spec, &labels, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->deploy_last(be, "plant", &dj, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	dj = mk_job(pid, "deploy", "plant", "deploy", "site=p");
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_deploy_plans_pending(tx, pid, &plans, &n, &err), 0);
	assert_int_equal(n, 0);
	free(plans);
	assert_int_equal(ops->tx_deploys_active(tx, "plant", &active, &err), 0);
	assert_int_equal(active, 1);
	ops->tx_rollback(tx);
	assert_int_equal(ops->deploy_last(be, "plant", &id, &err), 0);
	assert_int_equal(id, dj);

	report(dj, "b1", 1, "uploading", "", -1); /* not running yet */
	set_job(dj, JOB_RUNNING, 1, 0, 100000, 0);
	report(dj, "b1", 1, "uploading", "", 0);
	report(dj, "b1", 1, "healthy", "releases/v1", 0);
	report(dj, "b2", 1, "failed", "", 0);
	assert_int_equal(ops->deploy_boards(be, dj, &db, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(db[0].board, "b1");
	assert_string_equal(db[0].state, "healthy");
	assert_int_equal(db[0].restart_exit, -1);
	assert_int_equal(db[0].updated_ms, 101);
	deploy_board_rows_free(db, n);
	assert_int_equal(ops->board_list(be, "plant", 0, &boards, &n, &err), 0);
	assert_string_equal(boards[0].current_release, "releases/v1");
	board_rows_free(boards, n);
	assert_int_equal(ops->deployment_list(be, "plant", 10, &deps, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(deps[0].job.id, dj);
	assert_int_equal(deps[0].n_boards, 2);
	assert_int_equal(deps[0].n_healthy, 1);
	assert_int_equal(deps[0].n_failed, 1);
	assert_int_equal(deps[0].n_rolled_back, 0);
	assert_string_equal(deps[0].job.repo_name, "dep-repo");
	deployment_rows_free(deps, n);
	assert_int_equal(ops->deployment_list(be, "none", 10, &deps, &n, &err), 0);
	assert_int_equal(n, 0);
	free(deps);

	/* previous release: the last healthy one other than current */
	assert_int_equal(ops->board_previous_release(be, "b1", "releases/v2", &prev, &err), 0);
	assert_string_equal(prev, "releases/v1");
	free(prev);
	assert_int_equal(ops->board_previous_release(be, "b1", "releases/v1", &prev, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
}

/* ---- releases ---- */

static void test_releases(void **state)
{
	struct err err = {0};
	struct store_tx *tx = NULL;
	struct release_key_row *keys = NULL;
	struct release_row rel = {0}, *rels = NULL;
	struct release_file_row *files = NULL;
	struct release_board_row *rb = NULL;
	struct orphan_deploy_row *orph = NULL;
	struct job_claimable *c = NULL;
	char *pat = NULL;
	size_t n = 0;
	int64_t repo, p1, p2, b1, d1, d2, *ids = NULL, rid;
	struct board_row b = {.name = "rb1",
	                      .host = "h",
	                      .port = 22,
	                      .user = "u",
	                      .arch = "a",
	                      .group = "rg",
	                      .host_key = "k",
	                      .private_key = "p"};

	(void)state;
	repo = mk_repo("rel-repo");
	assert_int_equal(ops->release_pattern_get(be, "rel-repo", &pat, &err), 0);
	assert_string_equal(pat, "v*");
	free(pat);
	assert_int_equal(ops->release_pattern_set(be, "rel-repo", "r-*", &err), 0);
	assert_int_equal(ops->release_pattern_get(be, "rel-repo", &pat, &err), 0);
	assert_string_equal(pat, "r-*");
	free(pat);
	assert_int_equal(ops->release_pattern_set(be, "nope", "x", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->release_pattern_get(be, "nope", &pat, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	assert_int_equal(ops->release_key_add(be, "00000000000000a1", "pub1", 10, &err), 0);
	assert_int_equal(ops->release_key_add(be, "00000000000000a2", "pub2", 10, &err), 0);
	assert_int_equal(ops->release_key_list(be, &keys, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0].keynum, "00000000000000a2"); /* same time: the later added first */
	assert_int_equal(keys[0].retired_ms, 0);
	assert_int_equal(keys[1].retired_ms, 10);
	release_key_rows_free(keys, n);

	/* a tag pipeline with a build and a deploy waiting for its release */
	p1 = mk_pipeline(repo, "refs/tags/r-1", NULL);
	b1 = mk_job(p1, "build", "host", "build", NULL);
	d1 = mk_job(p1, "deploy", "rg", "deploy", NULL);
	set_job(b1, JOB_RUNNING, 1, 0, 100000, 0);
	assert_int_equal(ops->artifact_add(be, b1, 1, "app", SHA_A, 10, 0755, 5, &err), 0);
	set_job(b1, JOB_SUCCESS, 1, 0, 0, 50);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_release_record(tx, repo, "r-1", p1, COMMIT, 60, &err), 0);
	assert_int_equal(ops->tx_release_record(tx, repo, "r-1", 999, "other", 61, &err), 0); /* no-op */
	assert_int_equal(ops->tx_release_waiting_deploys(tx, p1, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], d1);
	free(ids);
	assert_int_equal(ops->tx_commit(tx, &err), 0);

	/* not claimable until signed */
	raw_exec("UPDATE jobs SET state = 'canceled' WHERE state = 'queued' AND kind = 'build'");
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_jobs_claimable(tx, 100, &c, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(c[i].id != d1);
	job_claimables_free(c, n);
	ops->tx_rollback(tx);

	assert_int_equal(ops->release_unsigned(be, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	rid = ids[0];
	free(ids);
	assert_int_equal(ops->release_get(be, rid, NULL, NULL, &rel, &err), 0);
	assert_int_equal(rel.pipeline_id, p1);
	assert_string_equal(rel.version, "r-1");
	assert_null(rel.signature);
	release_row_release(&rel);
	assert_int_equal(ops->release_files(be, p1, &files, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(files[0].target, "host");
	assert_string_equal(files[0].sha256, SHA_A);
	release_file_rows_free(files, n);
	assert_int_equal(ops->release_sign(be, rid, "manifest", "sig", "00000000000000a2", &err), 0);
	assert_int_equal(ops->release_sign(be, rid, "manifest", "sig", "00000000000000a2", &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(ops->release_get(be, 0, "rel-repo", "r-1", &rel, &err), 0);
	assert_string_equal(rel.signature, "sig");
	assert_string_equal(rel.repo_name, "rel-repo");
	release_row_release(&rel);
	assert_int_equal(ops->release_get(be, 0, "rel-repo", "r-9", &rel, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_jobs_claimable(tx, 100, &c, &n, &err), 0);
	assert_true(n >= 1);
	assert_int_equal(c[n - 1].id, d1); /* signed: claimable */
	job_claimables_free(c, n);
	ops->tx_rollback(tx);

	/* a second pipeline of the same tag: its deploy is an orphan */
	p2 = mk_pipeline(repo, "refs/tags/r-1", NULL);
	d2 = mk_job(p2, "deploy", "rg", "deploy", NULL);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_release_orphan_deploys(tx, &orph, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(orph[0].job_id, d2);
	assert_int_equal(orph[0].release_pipeline_id, p1);
	assert_string_equal(orph[0].repo_name, "rel-repo");
	orphan_deploy_rows_free(orph, n);
	ops->tx_rollback(tx);

	assert_int_equal(ops->release_list(be, "rel-repo", 10, &rels, &n, &err), 0);
	assert_int_equal(n, 1);
	release_rows_free(rels, n);
	assert_int_equal(ops->release_list(be, NULL, 10, &rels, &n, &err), 0);
	assert_true(n >= 1);
	release_rows_free(rels, n);

	/* where it is live */
	assert_int_equal(ops->board_add(be, &b, 1, NULL, &err), 0);
	set_job(d1, JOB_RUNNING, 1, 0, 100000, 0);
	report(d1, "rb1", 1, "healthy", "releases/r-1", 0);
	assert_int_equal(ops->release_boards(be, repo, "r-1", &rb, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rb[0].board, "rb1");
	assert_string_equal(rb[0].group, "rg");
	assert_int_equal(rb[0].since_ms, 101);
	release_board_rows_free(rb, n);
	assert_int_equal(ops->release_boards(be, repo, "r-2", &rb, &n, &err), 0);
	assert_int_equal(n, 0);
	free(rb);
}

/* ---- agents, tokens, stats ---- */

static void test_agents(void **state)
{
	struct err err = {0};
	struct store_tx *tx = NULL;
	struct agent_row *list = NULL;
	struct store_stats st = {0};
	char hex[65], *labels = NULL;
	size_t n = 0;
	int64_t a1, id = 0, repo, pid, jid;

	(void)state;
	assert_int_equal(ops->token_get(be, "admin", hex, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->token_set(be, "admin", SHA_A, &err), 0);
	assert_int_equal(ops->token_set(be, "admin", SHA_B, &err), 0);
	assert_int_equal(ops->token_get(be, "admin", hex, &err), 0);
	assert_string_equal(hex, SHA_B);

	a1 = mk_agent("ag-1", "tok-1");
	assert_int_equal(mk_agent("ag-1", "tok-2"), a1); /* registered again: same row, new token */
	assert_int_equal(ops->agent_by_token(be, "tok-1", &id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(ops->agent_by_token(be, "tok-2", &id, &err), 0);
	assert_int_equal(id, a1);
	assert_int_equal(ops->agent_labels(be, a1, &labels, &err), 0);
	assert_string_equal(labels, "[\"target=host\"]");
	free(labels);
	assert_int_equal(ops->agent_labels(be, 999999, &labels, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ops->agent_touch(be, a1, 77, &err), 0);
	assert_int_equal(ops->agent_touch(be, 999999, 77, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	repo = mk_repo("ag-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	jid = mk_job(pid, "build", "host", "build", NULL);
	assert_int_equal(ops->job_owner_check(be, jid, a1, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	set_job(jid, JOB_RUNNING, 1, a1, 100000, 0);
	assert_int_equal(ops->job_owner_check(be, jid, a1, &err), 0);
	assert_int_equal(ops->job_owner_check(be, jid, a1 + 1000, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(ops->job_owner_check(be, 999999, a1, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);

	assert_int_equal(ops->agent_list(be, &list, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (list[i].id == a1) {
			assert_int_equal(list[i].job_id, jid);
			assert_int_equal(list[i].last_seen_ms, 77);
		}
	agent_rows_free(list, n);

	assert_int_equal(ops->stats(be, &st, &err), 0);
	assert_true(st.pipelines >= 1);
	assert_true(st.jobs_by_state[JOB_RUNNING] >= 1);
	assert_int_equal(st.pipelines, raw_i64("SELECT count(*) FROM pipelines"));
	assert_int_equal(st.jobs_by_state[JOB_CANCELED],
	                 raw_i64("SELECT count(*) FROM jobs WHERE state = 'canceled'"));
	assert_int_equal(st.log_bytes, raw_i64("SELECT sum(log_bytes) FROM jobs"));
	assert_int_equal(st.blobs, raw_i64("SELECT count(*) FROM blobs"));

	/* removed: token revoked, hidden from the list */
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_agent_remove(tx, "ag-1", 90, &id, &err), 0);
	assert_int_equal(id, a1);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_agent_remove(tx, "nobody", 90, &id, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "no agent named"));
	ops->tx_rollback(tx);
	assert_int_equal(ops->agent_by_token(be, "tok-2", &id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(ops->agent_list(be, &list, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(list[i].id != a1);
	agent_rows_free(list, n);
}

/* ---- sessions ---- */

static void test_sessions(void **state)
{
	struct err err = {0};
	int n = -1;

	(void)state;
	assert_int_equal(ops->session_add(be, "s1", SHA_A, 10, 100, &err), 0);
	assert_int_equal(ops->session_add(be, "s2", SHA_A, 10, 200, &err), 0);
	assert_int_equal(ops->session_add(be, "s3", SHA_A, 10, 300, &err), 0);
	assert_int_equal(ops->session_add(be, "s1", SHA_A, 10, 100, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_int_equal(ops->session_check(be, "s1", SHA_A, 50, &err), 0);
	assert_int_equal(ops->session_check(be, "s1", SHA_A, 100, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(ops->session_check(be, "s1", SHA_B, 50, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(ops->session_delete(be, "s1", &err), 0);
	assert_int_equal(ops->session_delete(be, "s1", &err), 0); /* unknown: not an error */
	assert_int_equal(ops->session_expire(be, 250, 10, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops->session_delete_all(be, &n, &err), 0);
	assert_int_equal(n, 1);
}

/* ---- two servers appending to one log, and a deadlock ---- */

struct appender {
	struct store_be *be;
	int64_t job_id;
	int first_seq, n;
	int rc;
	struct err err;
};

static void *append_thread(void *arg)
{
	struct appender *ap = arg;
	char chunk[64];
	int acc, tr;

	for (int i = 0; i < ap->n && ap->rc == 0; i++) {
		snprintf(chunk, sizeof(chunk), "line %06d\n", ap->first_seq + i);
		ap->rc = ops->log_append(ap->be, ap->job_id, 1, ap->first_seq + i, chunk, strlen(chunk), NULL,
		                         1 << 30, &acc, &tr, &ap->err);
	}
	return NULL;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_two_servers_append(void **state)
{
	struct store_be *other = NULL;
	struct appender ap[4];
	pthread_t th[4];
	struct err err = {0};
	struct buf b = BUF_INIT;
	struct job_row job = {0};
	int64_t repo, pid, jid, next = 0, t0;
	int per = 250, lines = 0;

	(void)state;
	assert_int_equal(store_pg_open(url(), &other, &err), 0);
	repo = mk_repo("append-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	jid = mk_job(pid, "build", "host", "build", NULL);
	set_job(jid, JOB_RUNNING, 1, 0, 100000, 0);
	t0 = now_ns();
	for (int i = 0; i < 4; i++) {
		ap[i] = (struct appender){
		    .be = i % 2 ? other : be, .job_id = jid, .first_seq = i * per, .n = per};
		assert_int_equal(pthread_create(&th[i], NULL, append_thread, &ap[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (ap[i].rc != 0)
			fail_msg("appender %d: %s", i, ap[i].err.msg);
	}
	print_message("measured: %d log_append from 4 threads on 2 stores in %.0f ms\n", 4 * per,
	              (double)(now_ns() - t0) / 1e6);
	/* every chunk once, contiguous: the log is exactly the lines */
	assert_int_equal(ops->job_get(be, jid, &job, &err), 0);
	while (next < job.log_bytes)
		assert_int_equal(ops->log_read(be, jid, next, 1 << 20, &b, &next, &err), 0);
	assert_int_equal((int64_t)b.len, job.log_bytes);
	assert_int_equal(b.len, (size_t)(4 * per) * strlen("line 000000\n"));
	for (size_t off = 0; off < b.len; off += strlen("line 000000\n"), lines++)
		assert_memory_equal(b.data + off, "line ", 5);
	assert_int_equal(lines, 4 * per);
	job_row_release(&job);
	buf_release(&b);
	ops->free(other);
}

struct locker {
	struct store_tx *tx;
	int64_t id;
	int rc;
	struct err err;
};

static void *lock_thread(void *arg)
{
	struct locker *l = arg;
	struct job_state_row js = {0};

	l->rc = ops->tx_job_lock(l->tx, l->id, &js, &l->err);
	job_state_row_release(&js);
	return NULL;
}

static void test_deadlock(void **state)
{
	struct store_tx *a = NULL, *b = NULL;
	struct job_state_row js = {0};
	struct locker la = {0};
	struct err err = {0};
	pthread_t th;
	int64_t repo, pid, j1, j2;
	int rb;

	(void)state;
	repo = mk_repo("deadlock-repo");
	pid = mk_pipeline(repo, "refs/heads/main", NULL);
	j1 = mk_job(pid, "build", "host", "build", NULL);
	j2 = mk_job(pid, "build", "host", "build", NULL);
	assert_int_equal(ops->tx_begin(be, &a, &err), 0);
	assert_int_equal(ops->tx_begin(be, &b, &err), 0);
	assert_int_equal(ops->tx_job_lock(a, j1, &js, &err), 0);
	job_state_row_release(&js);
	assert_int_equal(ops->tx_job_lock(b, j2, &js, &err), 0);
	job_state_row_release(&js);
	/* a waits for j2 while b asks for j1: PostgreSQL ends one of them
	 * with 40P01 (after deadlock_timeout), which is ERR_UNAVAIL */
	la.tx = a;
	la.id = j2;
	assert_int_equal(pthread_create(&th, NULL, lock_thread, &la), 0);
	while (raw_i64("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") < 1)
		;
	rb = ops->tx_job_lock(b, j1, &js, &err);
	job_state_row_release(&js);
	if (rb < 0) {
		assert_int_equal(err.code, ERR_UNAVAIL);
		ops->tx_rollback(b); /* lets a go on */
		pthread_join(th, NULL);
		assert_int_equal(la.rc, 0);
		ops->tx_rollback(a);
	} else {
		pthread_join(th, NULL);
		assert_int_equal(la.rc, -1);
		assert_int_equal(la.err.code, ERR_UNAVAIL);
		ops->tx_rollback(a);
		ops->tx_rollback(b);
	}
}

/* ---- wake-ups ---- */

struct wake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	char topic[32];
};

static void on_wake(void *arg, const char *topic)
{
	struct wake *w = arg;

	pthread_mutex_lock(&w->mu);
	w->n++;
	snprintf(w->topic, sizeof(w->topic), "%s", topic);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Waits until w->n reaches n or 5 s pass; the count seen. */
static int wake_wait(struct wake *w, int n, int timeout_ms)
{
	struct timespec until;
	int got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (w->n < n && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
	got = w->n;
	pthread_mutex_unlock(&w->mu);
	return got;
}

static void test_watch(void **state)
{
	struct wake w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct store_be *other = NULL; /* a second server process's store */
	struct store_tx *tx = NULL;
	struct err err = {0};

	(void)state;
	assert_int_equal(store_pg_open(url(), &other, &err), 0);
	assert_int_equal(ops->watch(be, on_wake, &w, &err), 0);
	assert_int_equal(ops->watch(be, on_wake, &w, &err), -1);

	/* rolled back: nothing */
	assert_int_equal(ops->tx_begin(other, &tx, &err), 0);
	assert_int_equal(ops->tx_notify(tx, "jobs", &err), 0);
	ops->tx_rollback(tx);
	assert_int_equal(wake_wait(&w, 1, 300), 0);

	/* committed from the other store: delivered after the commit */
	assert_int_equal(ops->tx_begin(other, &tx, &err), 0);
	assert_int_equal(ops->tx_notify(tx, "jobs", &err), 0);
	assert_int_equal(wake_wait(&w, 1, 300), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(wake_wait(&w, 1, 5000), 1);
	assert_string_equal(w.topic, "jobs");

	/* the LISTEN connection killed: the thread reconnects and wakes once
	 * (notifications may have been lost), then gets new ones */
	raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN anvil'");
	assert_int_equal(wake_wait(&w, 2, 5000), 2);
	/* its own process's notifications are not news to it */
	assert_int_equal(ops->tx_begin(be, &tx, &err), 0);
	assert_int_equal(ops->tx_notify(tx, "logs", &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(wake_wait(&w, 3, 500), 2);
	assert_int_equal(ops->tx_begin(other, &tx, &err), 0);
	assert_int_equal(ops->tx_notify(tx, "logs", &err), 0);
	assert_int_equal(ops->tx_commit(tx, &err), 0);
	assert_int_equal(wake_wait(&w, 3, 5000), 3);
	assert_string_equal(w.topic, "logs");
	ops->free(other);
	/* teardown's free stops the thread */
}

/* ---- a lost connection ---- */

static void test_lost_connection(void **state)
{
	struct err err = {0};
	char hex[65];
	int failed = 0;

	(void)state;
	assert_int_equal(ops->token_set(be, "lost", SHA_A, &err), 0);
	/* the server ends every backend of ours (PostgreSQL restarting, a
	 * failover): each pooled connection fails once, as ERR_UNAVAIL ... */
	raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	         " WHERE datname = current_database() AND pid <> pg_backend_pid()"
	         " AND application_name = 'anvil-server' AND query <> 'LISTEN anvil'");
	for (int i = 0; i < 20; i++) {
		if (ops->token_get(be, "lost", hex, &err) == 0)
			break;
		assert_int_equal(err.code, ERR_UNAVAIL);
		failed++;
	}
	assert_true(failed >= 1);
	/* ... and is replaced on the next use */
	assert_int_equal(ops->token_get(be, "lost", hex, &err), 0);
	assert_string_equal(hex, SHA_A);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations),
	    cmocka_unit_test(test_jobs),
	    cmocka_unit_test(test_skip_locked),
	    cmocka_unit_test(test_logs),
	    cmocka_unit_test(test_artifacts),
	    cmocka_unit_test(test_forges),
	    cmocka_unit_test(test_deploys),
	    cmocka_unit_test(test_releases),
	    cmocka_unit_test(test_agents),
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_two_servers_append),
	    cmocka_unit_test(test_deadlock),
	    cmocka_unit_test(test_lost_connection),
	    cmocka_unit_test(test_watch),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
