#include "server/sched/cronsched.h"
#include "common/cron.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "common/units.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRONSCHED_TICK_MS 1000
/* A schedule whose expression has no due time within five years (or no
 * longer parses) is parked this far ahead. */
#define CRONSCHED_PARK_S (5LL * 366 * 24 * 3600)

struct cronsched {
	struct srv *srv;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stopping;      /* under mu */
};

int64_t cronsched_now_s(const struct srv *srv)
{
	int64_t minute_ms = srv->cfg.cron_minute_ms > 0 ? srv->cfg.cron_minute_ms : 60000,
	        now_ms = srv_now_ms();

	return now_ms / minute_ms * 60 + now_ms % minute_ms * 60 / minute_ms;
}

static int cronsched_sleep(struct cronsched *c, long ms)
{
	struct timespec ts;
	int stop;

	units_deadline_ts(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&c->mu);
	while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
		;
	stop = c->stopping;
	pthread_mutex_unlock(&c->mu);
	return stop;
}

static void cronsched_fire(struct cronsched *c, const struct schedule_row *s, int64_t now_s)
{
	struct pipeline_trigger t = {0};
	struct repo_cfg cfg = {0};
	struct cron cron;
	struct err err = {0};
	const char *skipped = NULL;
	char delivery[200], esc[300];
	int64_t next, id = 0;
	int claimed = 0, existed = 0;

	if (cron_parse(&cron, s->cron, &err) < 0 || (next = cron_next(&cron, now_s)) < 0) {
		log_warnx("event=schedule_parked schedule=%lld error=\"%s\"", (long long)s->id,
		          err.msg[0] ? err.msg : "no due time within five years");
		next = now_s + CRONSCHED_PARK_S;
	}
	/* The pipeline first, then the claim: a server that dies between the
	 * two leaves the schedule due, and the next check (this server
	 * restarted, or another on a shared store) starts it again with the
	 * same delivery id, which finds the pipeline made (pipelines are
	 * unique per repository and delivery). So a due time fires exactly
	 * once, crash or not; servers racing for it both ask, one makes it. */
	snprintf(delivery, sizeof(delivery), "cron:%s:%lld", s->name, (long long)s->next_unix_s);
	if (store_repo_cfg_get(c->srv->store, s->repo, &cfg, &err) < 0) {
		log_warnx("event=schedule_failed schedule=%lld repo=%s error=\"%s\"", (long long)s->id,
		          s->repo, err.msg);
	} else {
		t.repo = s->repo;
		t.url = cfg.url;
		t.ref = s->ref;
		t.event = "cron";
		t.delivery = delivery;
		t.skipped_out = &skipped;
		if (pipeline_start(c->srv, &t, &id, &existed, &err) < 0)
			log_warnx("event=schedule_failed schedule=%lld repo=%s error=\"%s\"",
			          (long long)s->id, s->repo, err.msg);
		else if (existed != PIPELINE_EXISTED)
			log_info("event=schedule_fired schedule=%lld repo=%s name=%s ref=\"%s\" due=%lld "
			         "pipeline=%lld%s",
			         (long long)s->id, s->repo, s->name, log_escape(esc, sizeof(esc), s->ref),
			         (long long)s->next_unix_s, (long long)id,
			         existed == PIPELINE_SKIPPED ? " skipped=1" : "");
	}
	if (failpoint_hit(c->srv->fp, FAILPOINT_CRONFIRE)) {
		log_warnx(
		    "event=failpoint_exit schedule=%lld due=%lld (testing only: a crash before the claim)",
		    (long long)s->id, (long long)s->next_unix_s);
		_exit(86);
	}
	/* Whatever came of the start (a store failure is not retried every
	 * tick): the due time is done. */
	if (store_schedule_claim(c->srv->store, s->id, s->next_unix_s, next, &claimed, &err) < 0)
		log_warnx("event=schedule_claim_failed schedule=%lld error=\"%s\"", (long long)s->id,
		          err.msg);
	repo_cfg_release(&cfg);
}

static void *cronsched_main(void *arg)
{
	struct cronsched *c = arg;
	long tick_ms = c->srv->cfg.cron_minute_ms / 4 < CRONSCHED_TICK_MS ? c->srv->cfg.cron_minute_ms / 4
	                                                                  : CRONSCHED_TICK_MS;

	do {
		struct schedule_row *rows = NULL;
		struct err err = {0};
		size_t n = 0;
		int64_t now_s = cronsched_now_s(c->srv);

		if (store_schedule_list(c->srv->store, NULL, &rows, &n, &err) < 0)
			log_warnx("event=schedule_list_failed error=\"%s\"", err.msg);
		for (size_t i = 0; i < n; i++)
			if (rows[i].next_unix_s <= now_s)
				cronsched_fire(c, &rows[i], now_s);
		schedule_rows_free(rows, n);
	} while (!cronsched_sleep(c, tick_ms));
	return NULL;
}

int cronsched_start(struct srv *srv, struct cronsched **out, struct err *err)
{
	struct cronsched *c = xcalloc(1, sizeof(*c));
	pthread_condattr_t ca;

	c->srv = srv;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->th, NULL, cronsched_main, c) != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return err_set(err, ERR_SYS, "cannot start the cron schedules thread");
	}
	*out = c;
	return 0;
}

void cronsched_stop(struct cronsched *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
