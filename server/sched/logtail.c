#include "server/sched/logtail.h"
#include "server/sched/sched.h"
#include "server/store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LOGTAIL_BUCKETS 64
/* Ingest locks are striped by job id: no allocation, no lifetime to track,
 * and two jobs rarely share one. */
#define LOGTAIL_STRIPES 64
/* A tail starts at what its first chunk needs (at least this) and grows
 * geometrically up to the job cap: a one-line log costs bytes, not 64 KiB. */
#define LOGTAIL_MIN_RING 256
/* Expired tails are looked for at most this often. */
#define LOGTAIL_SWEEP_MS 1000

/* One job's tail: log bytes [start, end), the byte at offset o in
 * ring[o % cap]. Guarded by logtail.rw. */
struct logtail_job {
	int64_t job_id;
	int attempt;          /* of the last append */
	enum job_state state; /* JOB_RUNNING, or final after logtail_finish */
	uint64_t epoch;       /* end was the store's end, running, at this epoch */
	int64_t start, end;
	char *ring; /* owned */
	size_t cap;
	int64_t used_ms;     /* last append or finish, monotonic */
	int64_t appended_ms; /* last append, monotonic */
	int busy;            /* that append came LOGTAIL_BUSY_MS or less after the one before */
	int64_t finished_ms; /* logtail_finish, monotonic; 0 while running */
	struct logtail_job *next;
};

/* Followers attached to one job's log (logtail_follow), with or without a
 * tail. Guarded by logtail.rw. */
struct logtail_fol {
	int64_t job_id;
	int n;
	struct logtail_fol *next;
};

struct logtail {
	/* The table and the tails' bytes. Followers copy under the read lock,
	 * side by side; an append waits for the copies in progress only (the
	 * writer goes first), never behind a queue of followers. */
	pthread_rwlock_t rw;
	pthread_mutex_t ingest_mu[LOGTAIL_STRIPES];
	struct logtail_job *jobs[LOGTAIL_BUCKETS];
	/* Follower counts, under their own lock (taken inside rw, never
	 * around it): a long poll registering and leaving per chunk must not
	 * queue for the write lock ahead of the ingest. */
	pthread_mutex_t fol_mu;
	struct logtail_fol *fols[LOGTAIL_BUCKETS];
	size_t job_cap, total_cap;
	size_t n_jobs, bytes;
	_Atomic uint64_t tail_reads, store_reads;
	int64_t swept_ms;
};

struct logtail *logtail_new(size_t job_cap_bytes, size_t total_cap_bytes)
{
	struct logtail *t = xcalloc(1, sizeof(*t));
	pthread_rwlockattr_t a;

	if (job_cap_bytes < 1)
		job_cap_bytes = 1;
	if (total_cap_bytes < job_cap_bytes)
		total_cap_bytes = job_cap_bytes;
	t->job_cap = job_cap_bytes;
	t->total_cap = total_cap_bytes;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->rw, &a);
	pthread_mutex_init(&t->fol_mu, NULL);
	pthread_rwlockattr_destroy(&a);
	for (size_t i = 0; i < LOGTAIL_STRIPES; i++)
		pthread_mutex_init(&t->ingest_mu[i], NULL);
	return t;
}

static void logtail_job_free(struct logtail_job *e)
{
	if (e == NULL)
		return;
	free(e->ring);
	free(e);
}

void logtail_free(struct logtail *t)
{
	if (t == NULL)
		return;
	for (size_t b = 0; b < LOGTAIL_BUCKETS; b++) {
		while (t->jobs[b] != NULL) {
			struct logtail_job *e = t->jobs[b];
			t->jobs[b] = e->next;
			logtail_job_free(e);
		}
		while (t->fols[b] != NULL) {
			struct logtail_fol *f = t->fols[b];
			t->fols[b] = f->next;
			free(f);
		}
	}
	for (size_t i = 0; i < LOGTAIL_STRIPES; i++)
		pthread_mutex_destroy(&t->ingest_mu[i]);
	pthread_rwlock_destroy(&t->rw);
	pthread_mutex_destroy(&t->fol_mu);
	free(t);
}

static size_t logtail_bucket(int64_t job_id)
{
	return (size_t)((uint64_t)job_id % LOGTAIL_BUCKETS);
}

/* logtail.rw held. */
static struct logtail_job *logtail_find(struct logtail *t, int64_t job_id)
{
	struct logtail_job *e = t->jobs[logtail_bucket(job_id)];

	while (e != NULL && e->job_id != job_id)
		e = e->next;
	return e;
}

/* The link to job_id's follower count, or NULL when none follows; fol_mu held. */
static struct logtail_fol **logtail_fol_find(struct logtail *t, int64_t job_id)
{
	struct logtail_fol **pp = &t->fols[logtail_bucket(job_id)];

	while (*pp != NULL && (*pp)->job_id != job_id)
		pp = &(*pp)->next;
	return *pp != NULL ? pp : NULL;
}

/* logtail.rw held (fol_mu is taken inside it). */
static int logtail_followed(struct logtail *t, int64_t job_id)
{
	int followed;

	pthread_mutex_lock(&t->fol_mu);
	followed = logtail_fol_find(t, job_id) != NULL;
	pthread_mutex_unlock(&t->fol_mu);
	return followed;
}

/* Unlinks and frees e; logtail.rw held for writing. */
static void logtail_drop(struct logtail *t, struct logtail_job *e)
{
	struct logtail_job **pp = &t->jobs[logtail_bucket(e->job_id)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	t->bytes -= e->cap;
	t->n_jobs--;
	logtail_job_free(e);
}

/* Drops tails of jobs final for LOGTAIL_FINAL_KEEP_MS or idle for
 * LOGTAIL_IDLE_MS; logtail.rw held for writing. */
static void logtail_sweep(struct logtail *t, int64_t now_ms)
{
	if (now_ms - t->swept_ms < LOGTAIL_SWEEP_MS)
		return;
	t->swept_ms = now_ms;
	for (size_t b = 0; b < LOGTAIL_BUCKETS; b++) {
		struct logtail_job *e = t->jobs[b], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			if ((e->finished_ms > 0 && now_ms - e->finished_ms >= LOGTAIL_FINAL_KEEP_MS) ||
			    now_ms - e->used_ms >= LOGTAIL_IDLE_MS)
				logtail_drop(t, e);
		}
	}
}

/* Frees the least recently used tails but keep until under the total cap;
 * logtail.rw held for writing. */
static void logtail_evict(struct logtail *t, const struct logtail_job *keep)
{
	while (t->bytes > t->total_cap) {
		struct logtail_job *lru = NULL;
		for (size_t b = 0; b < LOGTAIL_BUCKETS; b++)
			for (struct logtail_job *e = t->jobs[b]; e != NULL; e = e->next)
				if (e != keep && (lru == NULL || e->used_ms < lru->used_ms))
					lru = e;
		if (lru == NULL)
			return;
		logtail_drop(t, lru);
	}
}

/* Copies n held bytes from offset off into dst. */
static void logtail_copy_out(const struct logtail_job *e, int64_t off, size_t n, char *dst)
{
	size_t pos = (size_t)((uint64_t)off % e->cap), first = e->cap - pos;

	if (first > n)
		first = n;
	memcpy(dst, e->ring + pos, first);
	memcpy(dst + first, e->ring, n - first);
}

static void logtail_copy_in(struct logtail_job *e, int64_t off, const char *src, size_t n)
{
	size_t pos = (size_t)((uint64_t)off % e->cap), first = e->cap - pos;

	if (first > n)
		first = n;
	memcpy(e->ring + pos, src, first);
	memcpy(e->ring, src + first, n - first);
}

/* Makes room for `want` bytes (<= job cap) in e's ring; logtail.rw held for writing. */
static void logtail_grow(struct logtail *t, struct logtail_job *e, size_t want, size_t job_cap)
{
	size_t cap = e->cap * 2;
	size_t held = (size_t)(e->end - e->start);
	char *ring;

	if (want <= e->cap)
		return;
	if (cap < want)
		cap = want;
	if (cap < LOGTAIL_MIN_RING)
		cap = LOGTAIL_MIN_RING;
	if (cap > job_cap)
		cap = job_cap;
	ring = xmalloc(cap);
	if (held > 0) {
		/* Straight from the old ring into the new one: its (at most two)
		 * contiguous runs, each placed where the new size puts it. */
		struct logtail_job to = {.ring = ring, .cap = cap};
		size_t pos = (size_t)((uint64_t)e->start % e->cap), first = e->cap - pos;

		if (first > held)
			first = held;
		logtail_copy_in(&to, e->start, e->ring + pos, first);
		logtail_copy_in(&to, e->start + (int64_t)first, e->ring, held - first);
	}
	free(e->ring);
	t->bytes += cap - e->cap;
	e->ring = ring;
	e->cap = cap;
}

/* Bytes [off, off + len) were committed for job_id at attempt, with the
 * store's end at off + len; logtail.rw held for writing. */
static void logtail_put(struct logtail *t, int64_t job_id, int attempt, uint64_t epoch, int64_t off,
                        const char *data, size_t len, int64_t now_ms)
{
	struct logtail_job *e = logtail_find(t, job_id);
	int64_t new_end = off + (int64_t)len;
	size_t job_cap = t->job_cap;

	if (!logtail_followed(t, job_id) && job_cap > LOGTAIL_UNFOLLOWED_CAP_BYTES)
		job_cap = LOGTAIL_UNFOLLOWED_CAP_BYTES;
	if (e == NULL) {
		size_t b = logtail_bucket(job_id);
		e = xcalloc(1, sizeof(*e));
		e->job_id = job_id;
		e->start = e->end = off;
		e->next = t->jobs[b];
		t->jobs[b] = e;
		t->n_jobs++;
	}
	/* Not contiguous with what is held: what is held is still true, but
	 * a tail has no holes, so it starts again here. */
	if (off != e->end)
		e->start = e->end = off;
	if (len > job_cap) {
		data += len - job_cap;
		off += (int64_t)(len - job_cap);
		len = job_cap;
		e->start = e->end = off;
	}
	if (new_end - e->start > (int64_t)job_cap)
		e->start = new_end - (int64_t)job_cap;
	logtail_grow(t, e, (size_t)(new_end - e->start), job_cap);
	logtail_copy_in(e, off, data, len);
	e->end = new_end;
	e->attempt = attempt;
	e->state = JOB_RUNNING;
	e->finished_ms = 0;
	e->epoch = epoch;
	e->used_ms = now_ms;
	e->busy = e->appended_ms > 0 && now_ms - e->appended_ms <= LOGTAIL_BUSY_MS;
	e->appended_ms = now_ms;
	logtail_sweep(t, now_ms);
	logtail_evict(t, e);
}

void logtail_forget(struct logtail *t, int64_t job_id)
{
	struct logtail_job *e;

	pthread_rwlock_wrlock(&t->rw);
	if ((e = logtail_find(t, job_id)) != NULL)
		logtail_drop(t, e);
	pthread_rwlock_unlock(&t->rw);
}

static int logtail_append_meta(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id,
                               int attempt, int64_t seq, const void *data, size_t len,
                               const struct logframe *meta, int64_t cap_bytes, int *accepted_out,
                               int *truncated_out, struct err *err)
{
	pthread_mutex_t *ingest = &t->ingest_mu[(uint64_t)job_id % LOGTAIL_STRIPES];
	struct logtail_job *e;
	struct job_row j = {0};
	struct err ignored = {0};
	int64_t off = -1;
	int rc = -1;

	pthread_mutex_lock(ingest);
	/* Under the ingest lock nobody else appends for this job, and a tail
	 * updated at the same attempt ends where the store does (a new attempt
	 * starts with the claim's marker, written behind the tail's back). */
	pthread_rwlock_rdlock(&t->rw);
	if ((e = logtail_find(t, job_id)) != NULL && e->attempt == attempt && e->state == JOB_RUNNING)
		off = e->end;
	pthread_rwlock_unlock(&t->rw);
	if ((meta != NULL ? store_log_append_frame(st, job_id, attempt, seq, meta, cap_bytes, accepted_out,
	                                           truncated_out, err)
	                  : store_log_append(st, job_id, attempt, seq, data, len, cap_bytes, accepted_out,
	                                     truncated_out, err)) < 0)
		goto out;
	rc = 0;
	if (!*accepted_out)
		goto out;
	if (*truncated_out) {
		/* Cut and marked by the store: followers read the rest there. */
		logtail_forget(t, job_id);
		goto out;
	}
	if (off < 0) {
		if (store_job_get(st, job_id, &j, &ignored) < 0 || j.state != JOB_RUNNING ||
		    j.attempt != attempt || j.log_bytes < (int64_t)len) {
			logtail_forget(t, job_id);
			goto out;
		}
		off = j.log_bytes - (int64_t)len;
	}
	pthread_rwlock_wrlock(&t->rw);
	logtail_put(t, job_id, attempt, epoch, off, data, len, sched_mono_ms());
	pthread_rwlock_unlock(&t->rw);
out:
	pthread_mutex_unlock(ingest);
	job_row_release(&j);
	return rc;
}

int logtail_append(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int attempt,
                   int64_t seq, const void *data, size_t len, int64_t cap_bytes, int *accepted_out,
                   int *truncated_out, struct err *err)
{
	return logtail_append_meta(t, st, epoch, job_id, attempt, seq, data, len, NULL, cap_bytes,
	                           accepted_out, truncated_out, err);
}

int logtail_append_frame(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int attempt,
                         int64_t seq, const struct logframe *f, int64_t cap_bytes, int *accepted_out,
                         int *truncated_out, struct err *err)
{
	return logtail_append_meta(t, st, epoch, job_id, attempt, seq, f->log.len ? f->log.data : "",
	                           f->log.len, f, cap_bytes, accepted_out, truncated_out, err);
}

void logtail_finish(struct logtail *t, int64_t job_id, enum job_state state, int64_t log_bytes)
{
	struct logtail_job *e;
	int64_t now = sched_mono_ms();

	pthread_rwlock_wrlock(&t->rw);
	if ((e = logtail_find(t, job_id)) != NULL) {
		/* Nobody to serve at the end: the store answers latecomers. */
		if (e->end != log_bytes || !jobstate_is_final(state) || !logtail_followed(t, job_id)) {
			logtail_drop(t, e);
		} else {
			e->state = state;
			e->finished_ms = now;
			e->used_ms = now;
		}
	}
	logtail_sweep(t, now);
	pthread_rwlock_unlock(&t->rw);
}

void logtail_follow(struct logtail *t, int64_t job_id)
{
	struct logtail_fol **pp, *f;

	pthread_mutex_lock(&t->fol_mu);
	if ((pp = logtail_fol_find(t, job_id)) != NULL) {
		(*pp)->n++;
	} else {
		size_t b = logtail_bucket(job_id);
		f = xcalloc(1, sizeof(*f));
		f->job_id = job_id;
		f->n = 1;
		f->next = t->fols[b];
		t->fols[b] = f;
	}
	pthread_mutex_unlock(&t->fol_mu);
}

void logtail_unfollow(struct logtail *t, int64_t job_id)
{
	struct logtail_fol **pp, *f;
	struct logtail_job *e;
	int last = 0;

	pthread_mutex_lock(&t->fol_mu);
	if ((pp = logtail_fol_find(t, job_id)) != NULL && --(*pp)->n == 0) {
		f = *pp;
		*pp = f->next;
		free(f);
		last = 1;
	}
	pthread_mutex_unlock(&t->fol_mu);
	if (!last)
		return;
	/* The last follower left: a finished job's tail goes, unless one came
	 * back meanwhile. */
	pthread_rwlock_wrlock(&t->rw);
	if ((e = logtail_find(t, job_id)) != NULL && e->finished_ms > 0 && !logtail_followed(t, job_id))
		logtail_drop(t, e);
	logtail_sweep(t, sched_mono_ms());
	pthread_rwlock_unlock(&t->rw);
}

void logtail_forget_finished(struct logtail *t)
{
	pthread_rwlock_wrlock(&t->rw);
	for (size_t b = 0; b < LOGTAIL_BUCKETS; b++) {
		struct logtail_job *e = t->jobs[b], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			if (e->finished_ms > 0)
				logtail_drop(t, e);
		}
	}
	pthread_rwlock_unlock(&t->rw);
}

/* How many bytes the tail can give from offset (into *n, at most
 * max_bytes), with the job's state: 1 when it can answer, 0 when the store
 * must; logtail.rw held. */
static int logtail_peek(struct logtail *t, uint64_t epoch, int64_t job_id, int64_t offset, size_t max_bytes,
                        size_t *n, struct logtail_read *r)
{
	struct logtail_job *e = logtail_find(t, job_id);

	if (e == NULL || offset < e->start || offset > e->end)
		return 0;
	/* At the end, "nothing new" holds only for a final job or while no state
	 * change could have added bytes behind the tail. */
	if (offset == e->end && e->finished_ms == 0 && e->epoch != epoch)
		return 0;
	*n = (size_t)(e->end - offset);
	if (*n > max_bytes)
		*n = max_bytes;
	r->state = e->state;
	r->log_bytes = e->end;
	r->next = offset + (int64_t)*n;
	r->from_store = 0;
	r->busy = e->busy && e->finished_ms == 0;
	return 1;
}

/* From the tail: 1 when it answered. The follower's buffer grows outside
 * the lock (page faults of a fresh MiB must not hold up an append), then
 * the bytes are copied under the read lock if they are still held. */
static int logtail_read_tail(struct logtail *t, uint64_t epoch, int64_t job_id, int64_t offset,
                             size_t max_bytes, struct buf *out, struct logtail_read *r)
{
	size_t n = 0, again = 0;
	int hit;

	pthread_rwlock_rdlock(&t->rw);
	hit = logtail_peek(t, epoch, job_id, offset, max_bytes, &n, r);
	pthread_rwlock_unlock(&t->rw);
	if (!hit)
		return 0;
	if (n == 0)
		return 1;
	buf_reserve(out, n);
	pthread_rwlock_rdlock(&t->rw);
	/* An append may have moved the window meanwhile: take what is held
	 * now, never more than was reserved. */
	if ((hit = logtail_peek(t, epoch, job_id, offset, n, &again, r)) && again > 0) {
		logtail_copy_out(logtail_find(t, job_id), offset, again, out->data + out->len);
		out->len += again;
		out->data[out->len] = '\0';
	}
	pthread_rwlock_unlock(&t->rw);
	return hit;
}

int logtail_read(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int64_t offset,
                 size_t max_bytes, struct buf *out, struct logtail_read *r, struct err *err)
{
	struct job_row j = {0};
	struct logtail_job *e;
	int64_t next = offset;

	if (logtail_read_tail(t, epoch, job_id, offset, max_bytes, out, r)) {
		t->tail_reads++;
		return 0;
	}
	t->store_reads++;
	/* The state before the bytes: once final, every byte is stored. */
	if (store_job_get(st, job_id, &j, err) < 0)
		return -1;
	if (offset < j.log_bytes && store_log_read(st, job_id, offset, max_bytes, out, &next, err) < 0) {
		job_row_release(&j);
		return -1;
	}
	r->state = j.state;
	r->log_bytes = j.log_bytes;
	r->next = next;
	r->from_store = 1;
	r->busy = 0;
	/* What the store said vouches for the tail's end again, until the next
	 * state change: the other followers of this job stop asking it. */
	pthread_rwlock_wrlock(&t->rw);
	if ((e = logtail_find(t, job_id)) != NULL && e->end == j.log_bytes) {
		if (j.state == JOB_RUNNING && e->finished_ms == 0 && e->attempt == j.attempt) {
			e->epoch = epoch;
		} else if (jobstate_is_final(j.state) && e->finished_ms == 0) {
			e->state = j.state;
			e->finished_ms = sched_mono_ms();
			if (!logtail_followed(t, job_id))
				logtail_drop(t, e);
		}
	}
	pthread_rwlock_unlock(&t->rw);
	job_row_release(&j);
	return 0;
}

void logtail_stats(struct logtail *t, struct logtail_stats *out)
{
	pthread_rwlock_rdlock(&t->rw);
	out->jobs = t->n_jobs;
	out->bytes = t->bytes;
	pthread_rwlock_unlock(&t->rw);
	out->tail_reads = t->tail_reads;
	out->store_reads = t->store_reads;
}
