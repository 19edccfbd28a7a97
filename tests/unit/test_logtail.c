/* The live log tail (server/logtail.c) over a real store on :memory:: every
 * byte exactly once and in order across the tail/store boundary, a resent
 * chunk not duplicated, an empty tail after a restart, truncation, the
 * claim's attempt marker written behind the tail's back, the caps, and
 * followers on their own threads while a writer appends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "server/sched/logtail.h"
#include "server/sched/sched.h"
#include "server/srv.h"
#include "server/store/store.h"

#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define BIG    ((int64_t)1 << 30)

struct fx {
	struct store *st;
	int64_t repo_id, agent_id;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct err err = {0};

	assert_int_equal(store_open(":memory:", &fx->st, &err), 0);
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

/* A queued job (delivery d), then claimed at now with a 1 s lease. */
static int64_t mk_running(struct fx *fx, const char *d, int64_t now)
{
	struct pipeline_new p = {.repo_id = fx->repo_id,
	                         .ref = "refs/heads/main",
	                         .commit_sha = COMMIT,
	                         .event = "push",
	                         .delivery = d};
	struct job_new j = {"build", "host", "{\"steps\":[]}", NULL, 3, NULL, 0, 0};
	const char *labels[] = {"target=host"};
	struct job_row row = {0};
	struct err err = {0};
	int64_t pid = 0, id;
	int existed = 0, found = 0;

	assert_int_equal(jobstate_pipeline_create(fx->st, &p, &j, 1, now, &pid, &existed, &err), 0);
	assert_int_equal(jobstate_claim(fx->st, fx->agent_id, labels, 1, now, 1000, &row, &found, &err), 0);
	assert_int_equal(found, 1);
	id = row.id;
	job_row_release(&row);
	return id;
}

/* The log byte at offset o of the pattern every test writes. */
static char pat(int64_t o)
{
	return (o % 61 == 60) ? '\n' : (char)('a' + (o * 7 + o / 13) % 26);
}

/* Appends len pattern bytes starting at pattern offset *o as chunk seq. */
static void put(struct fx *fx, struct logtail *t, int64_t job, int attempt, int64_t seq, int64_t *o,
                size_t len, int expect_accepted)
{
	char *d = malloc(len + 1);
	struct err err = {0};
	int acc = -1, trunc = -1;

	for (size_t i = 0; i < len; i++)
		d[i] = pat(*o + (int64_t)i);
	assert_int_equal(logtail_append(t, fx->st, 0, job, attempt, seq, d, len, BIG, &acc, &trunc, &err), 0);
	assert_int_equal(acc, expect_accepted);
	assert_int_equal(trunc, 0);
	if (acc)
		*o += (int64_t)len;
	free(d);
}

/* Reads the whole log from offset 0 through the tail, max bytes a call;
 * counts reads the store answered. */
static void read_all(struct fx *fx, struct logtail *t, int64_t job, size_t max, struct buf *out,
                     int *store_reads)
{
	struct logtail_read r = {0};
	struct err err = {0};
	int64_t off = 0;

	*store_reads = 0;
	for (int i = 0; i < 100000; i++) {
		size_t before = out->len;
		assert_int_equal(logtail_read(t, fx->st, 0, job, off, max, out, &r, &err), 0);
		assert_int_equal(r.next - off, (int64_t)(out->len - before));
		*store_reads += r.from_store;
		off = r.next;
		if (out->len == before)
			return;
	}
	fail_msg("read_all did not end");
}

static void assert_pattern(const struct buf *b, int64_t len)
{
	assert_int_equal((int64_t)b->len, len);
	for (int64_t o = 0; o < len; o++)
		if (b->data[o] != pat(o))
			fail_msg("byte %lld differs", (long long)o);
}

static void test_boundary(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(1000, 100000);
	struct logtail_read r = {0};
	struct logtail_stats s;
	struct buf b = BUF_INIT;
	struct err err = {0};
	int64_t job = mk_running(fx, "d1", 100), o = 0;
	int from_store = 0;

	/* Chunk sizes that do not divide the 1000-byte window. */
	for (int64_t seq = 0; seq < 40; seq++)
		put(fx, t, job, 1, seq, &o, (size_t)(37 + seq * 11), 1);
	/* A resent chunk is not stored again, nor put in the tail again. */
	{
		int64_t again = o;
		put(fx, t, job, 1, 39, &again, 100, 0);
	}
	read_all(fx, t, job, 300, &b, &from_store);
	assert_pattern(&b, o);
	assert_true(from_store > 0); /* the start is older than the window */

	/* Inside the window: memory only, the same bytes as the store. */
	for (int64_t off = o - 1000; off <= o; off += 7) {
		struct buf m = BUF_INIT, s2 = BUF_INIT;
		int64_t next = 0;
		assert_int_equal(logtail_read(t, fx->st, 0, job, off, 1 << 20, &m, &r, &err), 0);
		assert_int_equal(r.from_store, 0);
		assert_int_equal(r.state, JOB_RUNNING);
		assert_int_equal(r.next, o);
		assert_int_equal(store_log_read(fx->st, job, off, 1 << 20, &s2, &next, &err), 0);
		assert_int_equal(m.len, s2.len);
		assert_memory_equal(m.data ? m.data : "", s2.data ? s2.data : "", m.len);
		buf_release(&m);
		buf_release(&s2);
	}
	/* Just before the window: the store. */
	buf_reset(&b);
	assert_int_equal(logtail_read(t, fx->st, 0, job, o - 1001, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	logtail_stats(t, &s);
	assert_int_equal(s.jobs, 1);
	assert_true(s.bytes <= 1000);
	buf_release(&b);
	logtail_free(t);
}

static void test_restart_and_finish(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(1 << 20, 1 << 20);
	struct logtail_read r = {0};
	struct buf b = BUF_INIT;
	struct err err = {0};
	struct job_row j = {0};
	int64_t job = mk_running(fx, "d2", 100), o = 0;
	int from_store = 0;

	for (int64_t seq = 0; seq < 5; seq++)
		put(fx, t, job, 1, seq, &o, 500, 1);
	/* A restart: the tail starts empty, the next chunk starts it at the
	 * store's end (found in the store), older bytes come from there. */
	logtail_free(t);
	t = logtail_new(1 << 20, 1 << 20);
	assert_int_equal(logtail_read(t, fx->st, 0, job, 0, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	assert_int_equal(r.next, o);
	for (int64_t seq = 5; seq < 9; seq++)
		put(fx, t, job, 1, seq, &o, 300, 1);
	buf_reset(&b);
	read_all(fx, t, job, 1 << 20, &b, &from_store);
	assert_pattern(&b, o);
	/* The end, running, at the epoch of the last append: no store. */
	buf_reset(&b);
	assert_int_equal(logtail_read(t, fx->st, 0, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 0);
	assert_int_equal(b.len, 0);
	/* Another epoch (a state changed somewhere): the store says, once. */
	assert_int_equal(logtail_read(t, fx->st, 1, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	assert_int_equal(logtail_read(t, fx->st, 1, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 0);

	/* Finished: followers at the end learn it from the tail. */
	logtail_follow(t, job);
	assert_int_equal(jobstate_finish(fx->st, job, 1, JOB_SUCCESS, 1, 0, "", 200, &err), 0);
	assert_int_equal(store_job_get(fx->st, job, &j, &err), 0);
	logtail_finish(t, job, j.state, j.log_bytes);
	job_row_release(&j);
	assert_int_equal(logtail_read(t, fx->st, 7, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 0);
	assert_int_equal(r.state, JOB_SUCCESS);
	assert_int_equal(r.log_bytes, o);
	assert_int_equal(b.len, 0);
	/* Retention replaced finished logs in the store: their tails go. */
	logtail_forget_finished(t);
	logtail_unfollow(t, job);
	assert_int_equal(logtail_read(t, fx->st, 7, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	/* A finish whose length the tail does not end at drops the tail. */
	logtail_finish(t, job, JOB_SUCCESS, o + 1);
	assert_int_equal(logtail_read(t, fx->st, 7, job, o, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	assert_int_equal(r.state, JOB_SUCCESS);
	buf_release(&b);
	logtail_free(t);
}

static void test_truncation_and_attempts(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(1 << 20, 1 << 20);
	struct logtail_read r = {0};
	struct buf b = BUF_INIT;
	struct err err = {0};
	int64_t job = mk_running(fx, "d3", 100), o = 0, off = 0;
	int acc = 0, trunc = 0, n = 0;
	const char *marker;

	put(fx, t, job, 1, 0, &o, 400, 1);
	/* The lease runs out: requeued; the next claim writes its marker in
	 * the store only. Attempt 2's chunks land after it, and readers see
	 * every byte once, in order. */
	assert_int_equal(jobstate_requeue_expired(fx->st, 5000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(mk_running(fx, "d3-other", 5000) > 0, 1); /* claims the requeued job first */
	assert_int_equal(
	    logtail_append(t, fx->st, 1, job, 2, 0, "second attempt\n", 15, 600, &acc, &trunc, &err), 0);
	assert_int_equal(acc, 1);
	for (;;) {
		size_t before = b.len;
		assert_int_equal(logtail_read(t, fx->st, 1, job, off, 64, &b, &r, &err), 0);
		off = r.next;
		if (b.len == before)
			break;
	}
	for (int64_t i = 0; i < 400; i++)
		assert_int_equal(b.data[i], pat(i));
	marker = strstr(b.data + 400, "[anvil] attempt 2 of 3");
	assert_non_null(marker);
	assert_non_null(strstr(marker, "second attempt\n"));
	assert_int_equal(strstr(marker, "second attempt\n") + 15, b.data + b.len);

	/* Past the job's cap (500): cut, marked, the tail dropped; readers get
	 * the marker from the store. */
	assert_int_equal(logtail_append(t, fx->st, 1, job, 2, 1,
	                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	                                124, 500, &acc, &trunc, &err),
	                 0);
	assert_int_equal(trunc, 1);
	assert_int_equal(logtail_read(t, fx->st, 1, job, off, 1 << 20, &b, &r, &err), 0);
	assert_int_equal(r.from_store, 1);
	assert_non_null(strstr(b.data, "[anvil: log truncated at 500 bytes]"));
	buf_release(&b);
	logtail_free(t);
}

static void test_total_cap(void **state)
{
	struct fx *fx = *state;
	/* Room for one job's tail only: the other job is evicted, its readers
	 * use the store. */
	struct logtail *t = logtail_new(64 * 1024, 64 * 1024);
	struct logtail_stats s;
	struct buf b = BUF_INIT;
	int64_t j1 = mk_running(fx, "c1", 100), j2, o1 = 0, o2 = 0;
	int from_store = 0;

	put(fx, t, j1, 1, 0, &o1, 40000, 1);
	j2 = mk_running(fx, "c2", 100);
	put(fx, t, j2, 1, 0, &o2, 40000, 1);
	logtail_stats(t, &s);
	assert_int_equal(s.jobs, 1);
	assert_true(s.bytes <= 64 * 1024);
	read_all(fx, t, j1, 1 << 20, &b, &from_store);
	assert_pattern(&b, o1);
	assert_true(from_store > 0);
	buf_reset(&b);
	put(fx, t, j1, 1, 1, &o1, 500, 1);
	read_all(fx, t, j1, 100, &b, &from_store);
	assert_pattern(&b, o1);
	buf_release(&b);
	logtail_free(t);
}

/* Finishes job with the store's own final length, as the API does. */
static void finish(struct fx *fx, struct logtail *t, int64_t job)
{
	struct job_row j = {0};
	struct err err = {0};

	assert_int_equal(jobstate_finish(fx->st, job, 1, JOB_SUCCESS, 1, 0, "", 200, &err), 0);
	assert_int_equal(store_job_get(fx->st, job, &j, &err), 0);
	logtail_finish(t, job, j.state, j.log_bytes);
	job_row_release(&j);
}

/* A tail holds what its log has, not a fixed ring: a one-line log costs
 * bytes; a growing one doubles up to the job cap and no further. */
/* A job nobody follows keeps only LOGTAIL_UNFOLLOWED_CAP_BYTES of tail
 * (a 100 MB log cost 16 MiB of server memory); followed, it holds up to the
 * job cap again, and every byte still reads back (older ones from the store). */
static void test_unfollowed_cap(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(4 << 20, 64 << 20);
	struct logtail_stats s;
	struct buf b = BUF_INIT;
	int64_t job = mk_running(fx, "u1", 100), o = 0;
	int from_store = 0;

	for (int64_t seq = 0; seq < 12; seq++)
		put(fx, t, job, 1, seq, &o, 256 * 1024, 1);
	logtail_stats(t, &s);
	assert_true(s.bytes <= LOGTAIL_UNFOLLOWED_CAP_BYTES);
	logtail_follow(t, job);
	for (int64_t seq = 12; seq < 24; seq++)
		put(fx, t, job, 1, seq, &o, 256 * 1024, 1);
	logtail_stats(t, &s);
	assert_true(s.bytes > LOGTAIL_UNFOLLOWED_CAP_BYTES);
	assert_true(s.bytes <= 4 << 20);
	read_all(fx, t, job, 1 << 20, &b, &from_store);
	assert_pattern(&b, o);
	logtail_unfollow(t, job);
	buf_release(&b);
	logtail_free(t);
}

static void test_sized(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(100000, 1 << 20);
	struct logtail_stats s;
	struct buf b = BUF_INIT;
	int64_t job = mk_running(fx, "s1", 100), o = 0, big = mk_running(fx, "s2", 100), ob = 0;
	int from_store = 0;

	put(fx, t, job, 1, 0, &o, 20, 1);
	logtail_stats(t, &s);
	assert_int_equal(s.jobs, 1);
	assert_true(s.bytes <= 256);
	for (int64_t seq = 0; seq < 50; seq++) {
		size_t before;
		logtail_stats(t, &s);
		before = s.bytes;
		put(fx, t, big, 1, seq, &ob, 3000, 1);
		logtail_stats(t, &s);
		/* Held bytes of big, at most twice that, plus job's small ring. */
		assert_true(s.bytes - 256 >= (size_t)(ob < 100000 ? ob : 100000));
		assert_true(s.bytes - 256 <= 2 * (size_t)ob || s.bytes == before);
		assert_true(s.bytes <= 100000 + 256);
	}
	read_all(fx, t, big, 7000, &b, &from_store);
	assert_pattern(&b, ob);
	buf_reset(&b);
	read_all(fx, t, job, 7000, &b, &from_store);
	assert_pattern(&b, o);
	assert_int_equal(from_store, 0);
	buf_release(&b);
	logtail_free(t);
}

/* A finished job's tail is released at once when nobody follows it, and
 * when its last follower leaves otherwise: finished jobs hold no memory. */
static void test_release(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(1 << 20, 1 << 20);
	struct logtail_read r = {0};
	struct logtail_stats s;
	struct buf b = BUF_INIT;
	struct err err = {0};
	int64_t o = 0;
	int from_store = 0;

	for (int i = 0; i < 100; i++) {
		char d[16];
		int64_t job, oj = 0;
		snprintf(d, sizeof(d), "r%d", i);
		job = mk_running(fx, d, 100);
		put(fx, t, job, 1, 0, &oj, 20, 1);
		finish(fx, t, job);
		buf_reset(&b);
		read_all(fx, t, job, 1 << 20, &b, &from_store);
		assert_pattern(&b, oj);
	}
	logtail_stats(t, &s);
	assert_int_equal(s.jobs, 0);
	assert_int_equal(s.bytes, 0);

	/* Two followers: the tail stays for them past the finish and goes
	 * with the second. */
	{
		int64_t job = mk_running(fx, "rf", 100);
		logtail_follow(t, job);
		logtail_follow(t, job);
		put(fx, t, job, 1, 0, &o, 500, 1);
		finish(fx, t, job);
		buf_reset(&b);
		assert_int_equal(logtail_read(t, fx->st, 3, job, 0, 1 << 20, &b, &r, &err), 0);
		assert_int_equal(r.from_store, 0);
		assert_int_equal(r.state, JOB_SUCCESS);
		assert_pattern(&b, o);
		logtail_unfollow(t, job);
		logtail_stats(t, &s);
		assert_int_equal(s.jobs, 1);
		assert_int_equal(logtail_read(t, fx->st, 3, job, o, 1 << 20, &b, &r, &err), 0);
		assert_int_equal(r.from_store, 0);
		logtail_unfollow(t, job);
		logtail_stats(t, &s);
		assert_int_equal(s.jobs, 0);
		assert_int_equal(s.bytes, 0);
		/* A latecomer reads it all from the store. */
		buf_reset(&b);
		assert_int_equal(logtail_read(t, fx->st, 3, job, 0, 1 << 20, &b, &r, &err), 0);
		assert_int_equal(r.from_store, 1);
		assert_int_equal(r.state, JOB_SUCCESS);
		assert_pattern(&b, o);
	}
	buf_release(&b);
	logtail_free(t);
}

/* ---- followers on their own threads while a writer appends ---- */

struct follower {
	struct fx *fx;
	struct logtail *t;
	struct sched *s;
	int64_t job, total;
	struct buf got;
};

static void *follow(void *arg)
{
	struct follower *f = arg;
	struct sched_follow *sf = sched_follow_new(f->s, f->job);
	int64_t off = 0;

	logtail_follow(f->t, f->job);

	for (;;) {
		struct logtail_read r = {0};
		struct err err = {0};
		uint64_t gen = sched_follow_gen(sf);
		size_t before = f->got.len;
		if (logtail_read(f->t, f->fx->st, sched_gen(f->s, SCHED_LOGS), f->job, off, 4096, &f->got, &r,
		                 &err) < 0)
			break;
		off = r.next;
		if (f->got.len == before && jobstate_is_final(r.state))
			break;
		if (f->got.len == before)
			sched_follow_wait(sf, gen, sched_mono_ms() + 5000);
	}
	logtail_unfollow(f->t, f->job);
	sched_follow_free(sf);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *fx = *state;
	struct logtail *t = logtail_new(8192, 1 << 20);
	struct sched *s = NULL;
	struct follower fl[4];
	pthread_t th[4];
	struct err err = {0};
	struct job_row j = {0};
	int64_t job = mk_running(fx, "th", srv_now_ms()), o = 0;

	assert_int_equal(sched_new(fx->st, 60000, 0, &s, &err), 0);
	for (int i = 0; i < 4; i++) {
		fl[i] = (struct follower){.fx = fx, .t = t, .s = s, .job = job};
		assert_int_equal(pthread_create(&th[i], NULL, follow, &fl[i]), 0);
	}
	for (int64_t seq = 0; seq < 300; seq++) {
		uint64_t epoch = sched_gen(s, SCHED_LOGS);
		char d[700];
		size_t len = (size_t)(1 + (seq * 131) % 700);
		int acc = 0, trunc = 0;
		for (size_t i = 0; i < len; i++)
			d[i] = pat(o + (int64_t)i);
		assert_int_equal(
		    logtail_append(t, fx->st, epoch, job, 1, seq, d, len, BIG, &acc, &trunc, &err), 0);
		assert_int_equal(acc, 1);
		o += (int64_t)len;
		sched_log_notify(s, job);
		if (seq == 150) /* a state change elsewhere mid-way */
			sched_notify(s, SCHED_LOGS);
	}
	assert_int_equal(jobstate_finish(fx->st, job, 1, JOB_SUCCESS, 1, 0, "", srv_now_ms(), &err), 0);
	assert_int_equal(store_job_get(fx->st, job, &j, &err), 0);
	logtail_finish(t, job, j.state, j.log_bytes);
	job_row_release(&j);
	sched_notify(s, SCHED_LOGS);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_pattern(&fl[i].got, o);
		buf_release(&fl[i].got);
	}
	sched_free(s);
	logtail_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_boundary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_and_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncation_and_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_total_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unfollowed_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
