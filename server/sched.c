#include "server/sched.h"
#include "common/units.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/srv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct sched {
	struct store *store; /* borrowed */
	pthread_mutex_t mu;
	pthread_cond_t cond[2];
	uint64_t gen[2];
	int stopping;
	int reap_interval_ms;
	pthread_t reaper;
	int reaper_started;
};

int64_t sched_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t srv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
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

void sched_notify(struct sched *s, enum sched_topic t)
{
	pthread_mutex_lock(&s->mu);
	s->gen[t]++;
	pthread_cond_broadcast(&s->cond[t]);
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

static void *sched_reaper_main(void *arg)
{
	struct sched *s = arg;

	for (;;) {
		struct err err = {0};
		int n = 0, stop;
		int64_t deadline = sched_mono_ms() + s->reap_interval_ms;

		pthread_mutex_lock(&s->mu);
		stop = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		if (store_requeue_expired(s->store, srv_now_ms(), &n, &err) < 0)
			log_warnx("event=reaper_failed error=\"%s\"", err.msg);
		if (n > 0) {
			sched_notify(s, SCHED_JOBS);
			sched_notify(s, SCHED_LOGS);
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

int sched_new(struct store *st, int reap_interval_ms, struct sched **out, struct err *err)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	int rc;

	s->store = st;
	s->reap_interval_ms = reap_interval_ms;
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
	pthread_mutex_unlock(&s->mu);
	if (s->reaper_started)
		pthread_join(s->reaper, NULL);
	pthread_cond_destroy(&s->cond[0]);
	pthread_cond_destroy(&s->cond[1]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
