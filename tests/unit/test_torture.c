/* Torture (curl's torture mode, libgit2's failalloc) for the store and the
 * upload path. A scenario (create a pipeline, claim its job, append a raw
 * and a deflated log chunk, upload an artifact blob, finish the job) runs
 * once clean to count the calls K at each failpoint site per step; then, for
 * each step and site and every N in 1..K+1, a new pipeline reaches the step,
 * runs it with the Nth call failing, and checks: a failed step returned -1
 * with err set; nothing half-done is visible (no pipeline, job still queued,
 * log bytes, artifact rows each with their blob, no temp file,
 * integrity_check); the same step rerun without the failpoint succeeds; the
 * rest of the scenario ends with the right bytes. The store stays open
 * across iterations, as a server's does after a failed request. Opening the
 * store (an existing and a new database) is tortured on its own, strided:
 * it makes ~15,000 allocations. Sites: SQLite allocations (the Nth and every
 * later one, curl's way, and the Nth alone), database writes and syncs (a
 * VFS over the real one), the blob's temp writes, fsync, rename.
 * ANVIL_TORTURE_STRIDE=S tries every Sth N only (default 1: all). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "server/store/blob.h"
#include "server/store/store.h"
#include "server/store/store_failpoint.h"

#define COMMIT    "0123456789abcdef0123456789abcdef01234567"
#define ART_BYTES (40 * 1024)
#define ART_PIECE (16 * 1024)
#define LOG_CAP   (1024 * 1024)
/* Opening makes ~15,000 allocations: at most about this many N are tried. */
#define OPEN_ITERS 150

enum step { ST_PIPELINE, ST_CLAIM, ST_LOG_RAW, ST_LOG_DEFLATED, ST_ARTIFACT, ST_FINISH, ST_COUNT };

static const char *const step_names[ST_COUNT] = {"pipeline",     "claim",    "log raw",
                                                 "log deflated", "artifact", "finish"};

/* One torture mode: a site, and whether every call after the Nth fails too. */
struct mode {
	enum failpoint_site site;
	int sticky;
	const char *name;
};

static const struct mode modes[] = {
    {FAILPOINT_ALLOC, 1, "alloc:N+"},  {FAILPOINT_ALLOC, 0, "alloc:N"}, {FAILPOINT_DBWRITE, 0, "dbwrite:N"},
    {FAILPOINT_DBSYNC, 0, "dbsync:N"}, {FAILPOINT_WRITE, 0, "write:N"}, {FAILPOINT_FSYNC, 0, "fsync:N"},
    {FAILPOINT_RENAME, 0, "rename:N"},
};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))

/* The test's state: the failpoints are main's, the rest built per test. */
struct torture {
	struct failpoints *fp;
	char root[128]; /* temp dir */
	char db[200], blobs[200], tmp[210];
	struct store *st;
	int64_t repo_id;
	int run; /* scenario runs so far: each gets its own pipeline */
	unsigned char log_raw[40];
	unsigned char log_deflated[8192];
	int stride;
};

/* One run of the scenario: its own pipeline, job and artifact bytes. */
struct scen {
	int run;
	int64_t pipeline_id, job_id;
	unsigned char art[ART_BYTES];
	char art_sha[65];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *p;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", path, de->d_name);
		rm_rf(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Artifact bytes unique to the run, so that each upload makes a new blob
 * (and reaches the rename). */
static void scen_init(struct torture *t, struct scen *s)
{
	unsigned x = 12345u;

	memset(s, 0, sizeof(*s));
	s->run = ++t->run;
	for (size_t i = 0; i < ART_BYTES; i++) {
		x = x * 1103515245u + 12345u;
		s->art[i] = (unsigned char)(x >> 16);
	}
	memcpy(s->art, &s->run, sizeof(s->run));
	crypto_sha256_hex(s->art, ART_BYTES, s->art_sha);
}

static int step_run(struct torture *t, struct scen *s, enum step step, struct err *err)
{
	struct blob_writer *w = NULL;
	struct job_row j = {0};
	const char *labels[] = {"target=host"};
	int found = 0, accepted = 0, truncated = 0, rc = -1;
	int64_t size = 0, agent_id = 0;

	switch (step) {
	case ST_PIPELINE: {
		char delivery[32];
		struct pipeline_new p = {.repo_id = t->repo_id,
		                         .ref = "refs/heads/main",
		                         .commit_sha = COMMIT,
		                         .event = "push",
		                         .delivery = delivery,
		                         .commit_message = "torture",
		                         .author = "anvil"};
		struct job_new job = {"build", "host", "{\"steps\":[]}", NULL, 3, NULL, 0, 0};
		int existed = 0;
		snprintf(delivery, sizeof(delivery), "torture-%d", s->run);
		if (jobstate_pipeline_create(t->st, &p, &job, 1, 10, &s->pipeline_id, &existed, err) < 0)
			return -1;
		if (existed) /* only on a rerun after a create that failed but stayed */
			return err_set(err, ERR_CONFLICT, "the failed create left pipeline %lld",
			               (long long)s->pipeline_id);
		return 0;
	}
	case ST_CLAIM:
		if (jobstate_agent_register(t->st, "a1", "[\"target=host\"]", "a1-token-sha256", 20,
		                            &agent_id, &(int){0}, err) < 0 ||
		    jobstate_claim(t->st, agent_id, labels, 1, 30, 60000, &j, &found, err) < 0)
			return -1;
		s->job_id = j.id;
		job_row_release(&j);
		return found ? 0 : err_set(err, ERR_NOTFOUND, "no job to claim");
	case ST_LOG_RAW:
	case ST_LOG_DEFLATED:
		if (store_log_append(t->st, s->job_id, 1, step == ST_LOG_RAW ? 0 : 1,
		                     step == ST_LOG_RAW ? t->log_raw : t->log_deflated,
		                     step == ST_LOG_RAW ? sizeof(t->log_raw) : sizeof(t->log_deflated),
		                     LOG_CAP, &accepted, &truncated, err) < 0)
			return -1;
		return accepted && !truncated ? 0 : err_set(err, ERR_CONFLICT, "chunk not accepted");
	case ST_ARTIFACT:
		if (blob_writer_new(t->blobs, 1 << 20, t->fp, &w, err) < 0)
			goto out;
		for (size_t off = 0; off < ART_BYTES; off += ART_PIECE) {
			size_t n = ART_BYTES - off < ART_PIECE ? ART_BYTES - off : ART_PIECE;
			if (blob_writer_write(w, s->art + off, n, err) < 0)
				goto out;
		}
		if (blob_writer_commit(w, s->art_sha, &size, err) < 0 ||
		    store_artifact_add(t->st, s->job_id, 1, "out/app.bin", s->art_sha, size, 0755, 40, err) <
		        0)
			goto out;
		rc = 0;
	out:
		blob_writer_free(w);
		return rc;
	case ST_FINISH:
		return jobstate_finish(t->st, s->job_id, 1, JOB_SUCCESS, 1, 0, "", 50, err);
	case ST_COUNT:
		break;
	}
	return err_set(err, ERR_INVAL, "no such step");
}

/* What must be visible once steps 0..done-1 of s have completed and nothing
 * else: its pipeline, its job's state, log bytes, artifacts each with a
 * blob of their size and hash; no upload temp file; a sound database. */
static void scen_check(struct torture *t, struct scen *s, int done)
{
	struct err err = {0};
	struct job_row j = {0};
	struct buf log = BUF_INIT;
	struct artifact_row *arts = NULL;
	size_t n_arts = 0, want_len = 0;
	int64_t next = -1, pid = 0;
	char delivery[32];
	struct stat sb;

	assert_int_equal(dir_entries(t->tmp), 0);
	if (store_integrity_check(t->st, &err) < 0)
		fail_msg("integrity: %s", err.msg);
	snprintf(delivery, sizeof(delivery), "torture-%d", s->run);
	if (done == ST_PIPELINE) {
		assert_int_equal(store_pipeline_by_delivery(t->st, "demo", delivery, &pid, &err), -1);
		assert_int_equal(err.code, ERR_NOTFOUND);
		return;
	}
	/* Every bound value arrived: a bind that failed would leave NULL. */
	{
		struct pipeline_row p = {0};
		assert_int_equal(store_pipeline_get(t->st, s->pipeline_id, &p, &err), 0);
		assert_string_equal(p.ref, "refs/heads/main");
		assert_string_equal(p.commit_sha, COMMIT);
		assert_string_equal(p.event, "push");
		assert_non_null(p.delivery);
		assert_string_equal(p.delivery, delivery);
		assert_string_equal(p.commit_message, "torture");
		assert_string_equal(p.author, "anvil");
		assert_int_equal(p.state, done > ST_FINISH  ? JOB_SUCCESS
		                          : done > ST_CLAIM ? JOB_RUNNING
		                                            : JOB_QUEUED);
		pipeline_row_release(&p);
	}
	if (done == ST_CLAIM) {
		struct job_row *jobs = NULL;
		size_t n_jobs = 0;
		assert_int_equal(store_pipeline_jobs(t->st, s->pipeline_id, &jobs, &n_jobs, &err), 0);
		assert_int_equal(n_jobs, 1);
		assert_int_equal(jobs[0].state, JOB_QUEUED);
		assert_int_equal(jobs[0].attempt, 0);
		job_rows_free(jobs, n_jobs);
		return;
	}
	assert_int_equal(store_job_get(t->st, s->job_id, &j, &err), 0);
	assert_int_equal(j.pipeline_id, s->pipeline_id);
	assert_int_equal(j.state, done > ST_FINISH ? JOB_SUCCESS : JOB_RUNNING);
	assert_int_equal(j.attempt, 1);
	assert_string_equal(j.name, "build");
	assert_string_equal(j.target, "host");
	assert_string_equal(j.spec, "{\"steps\":[]}");
	assert_non_null(j.agent_name);
	assert_string_equal(j.agent_name, "a1");
	if (done > ST_FINISH)
		assert_true(j.has_exit_code && j.exit_code == 0);
	if (done > ST_LOG_RAW)
		want_len += sizeof(t->log_raw);
	if (done > ST_LOG_DEFLATED)
		want_len += sizeof(t->log_deflated);
	assert_int_equal(store_log_read(t->st, s->job_id, 0, 1 << 20, &log, &next, &err), 0);
	assert_int_equal(log.len, want_len);
	assert_int_equal(j.log_bytes, (int64_t)want_len);
	if (want_len > 0)
		assert_memory_equal(log.data, t->log_raw, sizeof(t->log_raw));
	if (want_len > sizeof(t->log_raw))
		assert_memory_equal(log.data + sizeof(t->log_raw), t->log_deflated, sizeof(t->log_deflated));
	assert_int_equal(store_artifact_list(t->st, s->job_id, &arts, &n_arts, &err), 0);
	assert_int_equal(n_arts, done > ST_ARTIFACT ? 1 : 0);
	for (size_t i = 0; i < n_arts; i++) {
		char *path = blob_path(t->blobs, arts[i].sha256);
		char got[65];
		assert_string_equal(arts[i].name, "out/app.bin");
		assert_string_equal(arts[i].sha256, s->art_sha);
		assert_int_equal(arts[i].size, ART_BYTES);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size, ART_BYTES);
		assert_int_equal(crypto_sha256_file_hex(path, got, &err), 0);
		assert_string_equal(got, s->art_sha);
		free(path);
	}
	artifact_rows_free(arts, n_arts);
	buf_release(&log);
	job_row_release(&j);
}

/* Runs steps [from, to) clean, asserting each succeeds. */
static void scen_steps(struct torture *t, struct scen *s, int from, int to)
{
	struct err err = {0};

	for (int i = from; i < to; i++)
		if (step_run(t, s, (enum step)i, &err) < 0)
			fail_msg("run %d: clean step %s: %s", s->run, step_names[i], err.msg);
}

/* A new scenario reaches step, runs it with mode failing its nth call,
 * checks, reruns the step clean and completes. */
static void torture_one(struct torture *t, enum step step, const struct mode *m, long long nth,
                        int *failed_out, int *fired_out)
{
	struct scen *s = xcalloc(1, sizeof(*s));
	struct err err = {0};
	int rc;

	scen_init(t, s);
	scen_steps(t, s, 0, (int)step);
	failpoint_arm(t->fp, m->site, nth, m->sticky);
	rc = step_run(t, s, step, &err);
	*fired_out = failpoint_fired(t->fp, m->site) > 0;
	failpoint_reset(t->fp);
	*failed_out = rc < 0;
	if (rc < 0) {
		if (err.code == ERR_OK || err.msg[0] == '\0')
			fail_msg("step %s, %s with N=%lld: -1 without err", step_names[step], m->name, nth);
		if (getenv("ANVIL_TORTURE_VERBOSE"))
			print_message("step %s, %s with N=%lld: %s\n", step_names[step], m->name, nth,
			              err.msg);
		scen_check(t, s, (int)step);
		err_clear(&err);
		if (step_run(t, s, step, &err) < 0)
			fail_msg("step %s, %s with N=%lld failed, then its rerun failed: %s (%s)",
			         step_names[step], m->name, nth, err.msg, err_code_name(err.code));
	}
	scen_steps(t, s, (int)step + 1, ST_COUNT);
	scen_check(t, s, ST_COUNT);
	free(s);
}

/* Calls each site sees during one clean run of step. */
static void count_calls(struct torture *t, enum step step, long long k_out[FAILPOINT_COUNT])
{
	struct scen *s = xcalloc(1, sizeof(*s));
	struct err err = {0};

	scen_init(t, s);
	scen_steps(t, s, 0, (int)step);
	failpoint_reset(t->fp);
	if (step_run(t, s, step, &err) < 0)
		fail_msg("clean step %s: %s", step_names[step], err.msg);
	for (int i = 0; i < FAILPOINT_COUNT; i++)
		k_out[i] = failpoint_seen(t->fp, (enum failpoint_site)i);
	scen_steps(t, s, (int)step + 1, ST_COUNT);
	scen_check(t, s, ST_COUNT);
	free(s);
}

/* The next N after n (1, 1 + stride, ..., K, K + 1). */
static long long next_n(long long n, long long k, long long stride)
{
	if (n < k && n + stride > k)
		return k;
	return n + (n < k ? stride : 1);
}

static void torture_step(void **state, enum step step)
{
	struct torture *t = *state;
	long long k[FAILPOINT_COUNT];
	int64_t t0 = now_ns();

	count_calls(t, step, k);
	for (size_t mi = 0; mi < N_MODES; mi++) {
		const struct mode *m = &modes[mi];
		long long failed = 0, iters = 0;
		int64_t m0 = now_ns();
		if (k[m->site] == 0)
			continue;
		/* N = K + 1 too: a failpoint that never fires changes nothing. */
		for (long long n = 1; n <= k[m->site] + 1; n = next_n(n, k[m->site], t->stride)) {
			int f = 0, fired = 0;
			torture_one(t, step, m, n, &f, &fired);
			failed += f;
			iters++;
			/* Database writes vary with the WAL's checkpoints: past K
			 * only the blob's sites are exact. */
			if (m->site == FAILPOINT_WRITE || m->site == FAILPOINT_FSYNC ||
			    m->site == FAILPOINT_RENAME)
				assert_int_equal(fired, n <= k[m->site]);
		}
		print_message(
		    "torture step=%-12s mode=%-9s K=%-5lld iterations=%-5lld failed=%-5lld ms=%lld\n",
		    step_names[step], m->name, k[m->site], iters, failed,
		    (long long)((now_ns() - m0) / 1000000));
	}
	print_message("torture step=%-12s total ms=%lld\n", step_names[step],
	              (long long)((now_ns() - t0) / 1000000));
}

static void test_pipeline(void **state)
{
	torture_step(state, ST_PIPELINE);
}

static void test_claim(void **state)
{
	torture_step(state, ST_CLAIM);
}

static void test_log_raw(void **state)
{
	torture_step(state, ST_LOG_RAW);
}

static void test_log_deflated(void **state)
{
	torture_step(state, ST_LOG_DEFLATED);
}

static void test_artifact(void **state)
{
	torture_step(state, ST_ARTIFACT);
}

static void test_finish(void **state)
{
	torture_step(state, ST_FINISH);
}

/* store_open of db with the allocations failing from the Nth on, every
 * stride-th N; fresh: the database is removed first (open migrates it).
 * A failed open leaves no handle, and the next clean open works. */
static void torture_open(struct torture *t, const char *db, int fresh)
{
	struct err err = {0};
	struct store *st = NULL;
	long long k, iters = 0, failed = 0, stride;
	int64_t t0 = now_ns();
	char *wal = xasprintf("%s-wal", db), *shm = xasprintf("%s-shm", db);

	if (fresh) {
		unlink(db);
		unlink(wal);
		unlink(shm);
	}
	failpoint_reset(t->fp);
	assert_int_equal(store_open_failpoints(db, t->fp, &st, &err), 0);
	k = failpoint_seen(t->fp, FAILPOINT_ALLOC);
	store_free(st);
	stride = k / OPEN_ITERS > t->stride ? k / OPEN_ITERS : t->stride;
	for (long long n = 1; n <= k + 1; n = next_n(n, k, stride)) {
		if (fresh) {
			unlink(db);
			unlink(wal);
			unlink(shm);
		}
		st = NULL;
		failpoint_arm(t->fp, FAILPOINT_ALLOC, n, 1);
		if (store_open_failpoints(db, t->fp, &st, &err) < 0) {
			assert_true(err.code != ERR_OK && err.msg[0] != '\0');
			assert_null(st);
			failed++;
		}
		failpoint_reset(t->fp);
		store_free(st);
		st = NULL;
		/* Whatever a failed open left, the next one gets to the end. */
		if (store_open_failpoints(db, t->fp, &st, &err) < 0)
			fail_msg("open after a failed open (alloc:%lld+): %s", n, err.msg);
		assert_int_equal(store_integrity_check(st, &err), 0);
		store_free(st);
		iters++;
	}
	print_message("torture step=%-12s mode=alloc:N+  K=%-5lld iterations=%-5lld failed=%-5lld ms=%lld\n",
	              fresh ? "open new" : "open", k, iters, failed, (long long)((now_ns() - t0) / 1000000));
	free(wal);
	free(shm);
}

static void test_open(void **state)
{
	struct torture *t = *state;

	torture_open(t, t->db, 0);
}

static void test_open_new_database(void **state)
{
	struct torture *t = *state;
	char *db = xasprintf("%s/new.db", t->root);

	torture_open(t, db, 1);
	free(db);
}

/* A store with the repository, an agent and the blob dir; the store is
 * opened clean, then used with the failpoints lent to it. */
static int setup(void **state)
{
	struct torture *t = *state;
	struct err err = {0};

	snprintf(t->root, sizeof(t->root), "/tmp/anvil-torture.XXXXXX");
	if (mkdtemp(t->root) == NULL)
		return -1;
	snprintf(t->db, sizeof(t->db), "%.100s/anvil.db", t->root);
	snprintf(t->blobs, sizeof(t->blobs), "%.100s/blobs", t->root);
	snprintf(t->tmp, sizeof(t->tmp), "%.180s/tmp", t->blobs);
	failpoint_reset(t->fp);
	if (blob_dir_init(t->blobs, &err) < 0 || store_open_failpoints(t->db, t->fp, &t->st, &err) < 0 ||
	    store_repo_upsert(t->st, "demo", "/srv/demo.git", 1, &t->repo_id, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct torture *t = *state;

	failpoint_reset(t->fp);
	store_free(t->st);
	t->st = NULL;
	rm_rf(t->root);
	return 0;
}

int main(void)
{
	struct failpoints fp;
	struct torture t = {.fp = &fp};
	struct err err = {0};
	const char *stride = getenv("ANVIL_TORTURE_STRIDE");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate_setup_teardown(test_pipeline, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_claim, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_log_raw, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_log_deflated, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_artifact, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_finish, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_open, setup, teardown, &t),
	    cmocka_unit_test_prestate_setup_teardown(test_open_new_database, setup, teardown, &t),
	};

	failpoint_init(&fp);
	/* Before any SQLite use: its allocator is swapped only before
	 * sqlite3_initialize. */
	if (store_failpoint_alloc_install(&fp, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	log_init("test_torture", LOG_LVL_ERROR);
	memcpy(t.log_raw, "step 1: cc -c main.c\nok all tests pass\n", sizeof(t.log_raw));
	for (size_t i = 0; i < sizeof(t.log_deflated); i++)
		t.log_deflated[i] = (unsigned char)("cc -O2 -c src/file.c -o obj/file.o\n"[i % 35]);
	t.stride = stride && atoi(stride) > 0 ? atoi(stride) : 1;
	return cmocka_run_group_tests_name("torture", tests, NULL, NULL);
}
