#include "server/sched/sched.h"
#include "common/units.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/srv.h"

#include "server/sched/jobstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

/* Followers of one job's log; shared by all follows of that job, freed with
 * the last one. Guarded by sched.mu. */
struct sched_logq {
	int64_t job_id;
	uint64_t gen;
	int refs;
	pthread_cond_t cond;
	struct sched_logq *next; /* bucket chain */
};

#define SCHED_LOGQ_BUCKETS 64

struct sched_follow {
	struct sched *s;      /* borrowed */
	struct sched_logq *q; /* one reference */
};

struct sched {
	struct store *store; /* borrowed */
	pthread_mutex_t mu;
	pthread_cond_t cond[2];
	uint64_t gen[2];
	struct sched_logq *logq[SCHED_LOGQ_BUCKETS];
	int stopping;
	int reap_interval_ms;
	int64_t reap_from_ms; /* sched_mono_ms() before which the reaper waits */
	pthread_t reaper;
	int reaper_started;
};

int64_t sched_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sched_gen(struct sched *s, enum sched_topic t)
{
	uint64_t g;

	pthread_mutex_lock(&s->mu);
	g = s->gen[t];
	pthread_mutex_unlock(&s->mu);
	return g;
}

/* Wakes every job's followers; sched.mu held. */
static void sched_logq_wake_all(struct sched *s)
{
	for (size_t b = 0; b < SCHED_LOGQ_BUCKETS; b++)
		for (struct sched_logq *q = s->logq[b]; q != NULL; q = q->next) {
			q->gen++;
			pthread_cond_broadcast(&q->cond);
		}
}

void sched_notify(struct sched *s, enum sched_topic t)
{
	pthread_mutex_lock(&s->mu);
	s->gen[t]++;
	pthread_cond_broadcast(&s->cond[t]);
	if (t == SCHED_LOGS)
		sched_logq_wake_all(s);
	pthread_mutex_unlock(&s->mu);
}

uint64_t sched_wait(struct sched *s, enum sched_topic t, uint64_t seen, int64_t deadline_ms)
{
	uint64_t g;

	pthread_mutex_lock(&s->mu);
	while (s->gen[t] == seen && !s->stopping) {
		int64_t left = deadline_ms - sched_mono_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		units_deadline_ts(&ts, CLOCK_MONOTONIC, left);
		if (pthread_cond_timedwait(&s->cond[t], &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	g = s->gen[t];
	pthread_mutex_unlock(&s->mu);
	return g;
}

static void sched_cond_init(pthread_cond_t *c);

static size_t sched_logq_bucket(int64_t job_id)
{
	return (size_t)((uint64_t)job_id % SCHED_LOGQ_BUCKETS);
}

/* sched.mu held. */
static struct sched_logq *sched_logq_find(struct sched *s, int64_t job_id)
{
	struct sched_logq *q = s->logq[sched_logq_bucket(job_id)];

	while (q != NULL && q->job_id != job_id)
		q = q->next;
	return q;
}

struct sched_follow *sched_follow_new(struct sched *s, int64_t job_id)
{
	struct sched_follow *f = xcalloc(1, sizeof(*f));
	struct sched_logq *q;

	pthread_mutex_lock(&s->mu);
	if ((q = sched_logq_find(s, job_id)) == NULL) {
		size_t b = sched_logq_bucket(job_id);
		q = xcalloc(1, sizeof(*q));
		q->job_id = job_id;
		sched_cond_init(&q->cond);
		q->next = s->logq[b];
		s->logq[b] = q;
	}
	q->refs++;
	pthread_mutex_unlock(&s->mu);
	f->s = s;
	f->q = q;
	return f;
}

void sched_follow_free(struct sched_follow *f)
{
	struct sched *s;
	struct sched_logq **pp;

	if (f == NULL)
		return;
	s = f->s;
	pthread_mutex_lock(&s->mu);
	if (--f->q->refs == 0) {
		for (pp = &s->logq[sched_logq_bucket(f->q->job_id)]; *pp != f->q; pp = &(*pp)->next)
			;
		*pp = f->q->next;
		pthread_cond_destroy(&f->q->cond);
		free(f->q);
	}
	pthread_mutex_unlock(&s->mu);
	free(f);
}

uint64_t sched_follow_gen(struct sched_follow *f)
{
	uint64_t g;

	pthread_mutex_lock(&f->s->mu);
	g = f->q->gen;
	pthread_mutex_unlock(&f->s->mu);
	return g;
}

uint64_t sched_follow_wait(struct sched_follow *f, uint64_t seen, int64_t deadline_ms)
{
	struct sched *s = f->s;
	uint64_t g;

	pthread_mutex_lock(&s->mu);
	while (f->q->gen == seen && !s->stopping) {
		int64_t left = deadline_ms - sched_mono_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		units_deadline_ts(&ts, CLOCK_MONOTONIC, left);
		if (pthread_cond_timedwait(&f->q->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	g = f->q->gen;
	pthread_mutex_unlock(&s->mu);
	return g;
}

void sched_log_notify(struct sched *s, int64_t job_id)
{
	struct sched_logq *q;

	pthread_mutex_lock(&s->mu);
	if ((q = sched_logq_find(s, job_id)) != NULL) {
		q->gen++;
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&s->mu);
}

/* How often queued jobs are checked against the registered agents. */
#define SCHED_UNRUNNABLE_MS 2000

/* Jobs no registered agent can run say so (jobstate_unrunnable_scan). */
static void sched_unrunnable(struct sched *s)
{
	struct agent_row *agents = NULL;
	struct strv *labels = NULL;
	struct err err = {0};
	size_t n = 0;
	int changed = 0;

	if (store_agent_list(s->store, &agents, &n, &err) < 0) {
		log_warnx("event=unrunnable_scan_failed error=\"%s\"", err.msg);
		return;
	}
	labels = xcalloc(n + 1, sizeof(*labels));
	for (size_t i = 0; i < n; i++) {
		json_t *arr = json_loads(agents[i].labels, 0, NULL), *v; /* owned, borrowed */
		size_t k;

		json_array_foreach(arr, k, v)
		{
			if (json_is_string(v))
				strv_push(&labels[i], json_string_value(v));
		}
		json_decref(arr);
	}
	if (jobstate_unrunnable_scan(s->store, labels, n, srv_now_ms(), &changed, &err) < 0)
		log_warnx("event=unrunnable_scan_failed error=\"%s\"", err.msg);
	else if (changed > 0)
		log_info("event=unrunnable_scan jobs_changed=%d", changed);
	for (size_t i = 0; i < n; i++)
		strv_release(&labels[i]);
	free(labels);
	agent_rows_free(agents, n);
}

static void *sched_reaper_main(void *arg)
{
	struct sched *s = arg;
	int64_t next_scan_ms = 0;

	for (;;) {
		struct err err = {0};
		int n = 0, stop;
		int64_t deadline = sched_mono_ms() + s->reap_interval_ms;

		pthread_mutex_lock(&s->mu);
		stop = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		if (sched_mono_ms() >= s->reap_from_ms &&
		    jobstate_requeue_expired(s->store, srv_now_ms(), &n, &err) < 0)
			log_warnx("event=reaper_failed error=\"%s\"", err.msg);
		if (n > 0) {
			sched_notify(s, SCHED_JOBS);
			sched_notify(s, SCHED_LOGS);
		}
		if (sched_mono_ms() >= next_scan_ms) {
			sched_unrunnable(s);
			next_scan_ms = sched_mono_ms() + SCHED_UNRUNNABLE_MS;
		}
		/* Sleep on a topic nobody else notifies for long: SCHED_LOGS wakes us
		 * often under load, so wait on a private generation instead. */
		pthread_mutex_lock(&s->mu);
		while (!s->stopping && sched_mono_ms() < deadline) {
			struct timespec ts;
			int64_t left = deadline - sched_mono_ms();
			units_deadline_ts(&ts, CLOCK_MONOTONIC, left);
			pthread_cond_timedwait(&s->cond[SCHED_JOBS], &s->mu, &ts);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static void sched_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int sched_new(struct store *st, int reap_interval_ms, int start_grace_ms, struct sched **out, struct err *err)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	int rc;

	s->store = st;
	s->reap_interval_ms = reap_interval_ms;
	s->reap_from_ms = sched_mono_ms() + start_grace_ms;
	pthread_mutex_init(&s->mu, NULL);
	sched_cond_init(&s->cond[0]);
	sched_cond_init(&s->cond[1]);
	if ((rc = pthread_create(&s->reaper, NULL, sched_reaper_main, s)) != 0) {
		errno = rc;
		sched_free(s);
		return err_errno(err, "start lease reaper");
	}
	s->reaper_started = 1;
	*out = s;
	return 0;
}

void sched_stop(struct sched *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond[0]);
	pthread_cond_broadcast(&s->cond[1]);
	sched_logq_wake_all(s);
	pthread_mutex_unlock(&s->mu);
}

int sched_stopping(struct sched *s)
{
	int v;

	pthread_mutex_lock(&s->mu);
	v = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return v;
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond[0]);
	pthread_cond_broadcast(&s->cond[1]);
	sched_logq_wake_all(s);
	pthread_mutex_unlock(&s->mu);
	if (s->reaper_started)
		pthread_join(s->reaper, NULL);
	pthread_cond_destroy(&s->cond[0]);
	pthread_cond_destroy(&s->cond[1]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
