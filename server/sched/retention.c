#include "server/sched/retention.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/store/blob.h"
#include "server/sched/logtail.h"
#include "server/sched/scratch.h"
#include "server/srv.h"
#include "server/store/store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETENTION_BATCH 32 /* jobs or blobs per transaction */

struct retention {
	struct srv *srv; /* borrowed */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	volatile int stopping; /* written under mu; read between batches */
	pthread_t th;
};

static int retention_stopped(const volatile int *stop)
{
	return stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

static int retention_is_sha(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

/* Blob files without a row: a crash between a collected row and its file,
 * or an upload whose row never came. One <aa> directory per lock hold. */
static int retention_sweep(struct srv *srv, const volatile int *stop, int64_t *n_out, struct err *err)
{
	for (int d = 0; d < 256 && !retention_stopped(stop); d++) {
		char *dir = xasprintf("%s/%02x", srv->blob_dir, d);
		DIR *dh;
		struct dirent *de;
		int rc = 0;

		pthread_mutex_lock(&srv->blob_mu);
		if ((dh = opendir(dir)) != NULL) {
			while (rc == 0 && (de = readdir(dh)) != NULL) {
				int exists = 1;
				if (!retention_is_sha(de->d_name) ||
				    strncmp(de->d_name, dir + strlen(dir) - 2, 2) != 0)
					continue;
				if ((rc = store_blob_exists(srv->store, de->d_name, &exists, err)) < 0)
					break;
				if (!exists && unlinkat(dirfd(dh), de->d_name, 0) == 0) {
					log_info("event=blob_orphan_removed sha256=%s", de->d_name);
					(*n_out)++;
				}
			}
			closedir(dh);
		}
		pthread_mutex_unlock(&srv->blob_mu);
		free(dir);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int retention_blobs(struct srv *srv, const volatile int *stop, int64_t *n_out, struct err *err)
{
	size_t n;

	do {
		struct strv shas = STRV_INIT;
		int rc;

		pthread_mutex_lock(&srv->blob_mu);
		rc = store_blob_collect(srv->store, RETENTION_BATCH, &shas, err);
		for (size_t i = 0; rc == 0 && i < shas.n; i++) {
			char *path = blob_path(srv->blob_dir, shas.v[i]);
			if (unlink(path) < 0 && errno != ENOENT)
				log_warn("event=blob_unlink_failed path=%s", path);
			free(path);
		}
		pthread_mutex_unlock(&srv->blob_mu);
		n = shas.n;
		*n_out += (int64_t)n;
		strv_release(&shas);
		if (rc < 0)
			return -1;
	} while (n == RETENTION_BATCH && !retention_stopped(stop));
	return 0;
}

int retention_pass(struct srv *srv, int sweep, int64_t now_ms, const volatile int *stop,
                   struct retention_counts *out, struct err *err)
{
	const struct config *c = &srv->cfg;
	int n;

	memset(out, 0, sizeof(*out));
	if (c->log_retention_days > 0) {
		char marker[96];
		int64_t before = now_ms - (int64_t)c->log_retention_days * c->retention_day_ms;
		snprintf(marker, sizeof(marker), RETENTION_MARKER_FMT, c->log_retention_days);
		do {
			if (store_log_expire(srv->store, before, marker, RETENTION_BATCH, now_ms, &n, err) <
			    0)
				return -1;
			out->logs += n;
			if (n > 0)
				logtail_forget_finished(srv->logtail);
		} while (n == RETENTION_BATCH && !retention_stopped(stop));
		/* Given-up commit statuses are kept, with their last error, as long
		 * as the logs that would explain them. */
		do {
			if (store_status_prune(srv->store, before, RETENTION_BATCH, &n, err) < 0)
				return -1;
			out->statuses += n;
		} while (n == RETENTION_BATCH && !retention_stopped(stop));
	}
	if (c->artifact_retention_days > 0) {
		int64_t before = now_ms - (int64_t)c->artifact_retention_days * c->retention_day_ms;
		do {
			if (store_artifact_expire(srv->store, before, RETENTION_BATCH, now_ms, &n, err) < 0)
				return -1;
			out->artifacts += n;
		} while (n == RETENTION_BATCH && !retention_stopped(stop));
	}
	if (c->scratch_retention_days > 0 &&
	    scratch_prune(srv, now_ms - (int64_t)c->scratch_retention_days * c->retention_day_ms, stop,
	                  &out->scratch_refs, &out->scratch_repos, err) < 0)
		return -1;
	/* Expired web UI sessions (their lookup refuses them already). */
	do {
		if (store_session_expire(srv->store, now_ms, RETENTION_BATCH, &n, err) < 0)
			return -1;
		out->sessions += n;
	} while (n == RETENTION_BATCH && !retention_stopped(stop));
	if (retention_blobs(srv, stop, &out->blobs, err) < 0)
		return -1;
	if (sweep && retention_sweep(srv, stop, &out->orphans, err) < 0)
		return -1;
	return 0;
}

static void *retention_main(void *arg)
{
	struct retention *r = arg;
	int first = 1;

	for (;;) {
		struct retention_counts cnt;
		struct err err = {0};
		struct timespec ts;

		if (retention_pass(r->srv, first, srv_now_ms(), &r->stopping, &cnt, &err) < 0)
			log_warnx("event=retention_failed error=\"%s\"", err.msg);
		else if (cnt.logs || cnt.artifacts || cnt.blobs || cnt.orphans || cnt.statuses ||
		         cnt.sessions || cnt.scratch_refs || cnt.scratch_repos)
			log_info("event=retention_pass logs=%lld artifacts=%lld blobs=%lld orphans=%lld "
			         "statuses=%lld sessions=%lld scratch_refs=%lld scratch_repos=%lld",
			         (long long)cnt.logs, (long long)cnt.artifacts, (long long)cnt.blobs,
			         (long long)cnt.orphans, (long long)cnt.statuses, (long long)cnt.sessions,
			         (long long)cnt.scratch_refs, (long long)cnt.scratch_repos);
		first = 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += r->srv->cfg.housekeeping_s;
		pthread_mutex_lock(&r->mu);
		while (!r->stopping && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
			;
		if (r->stopping) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

int retention_start(struct srv *srv, struct retention **out, struct err *err)
{
	struct retention *r = xcalloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int rc;

	r->srv = srv;
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&r->th, NULL, retention_main, r)) != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r);
		errno = rc;
		return err_errno(err, "start retention thread");
	}
	*out = r;
	return 0;
}

void retention_stop(struct retention *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	__atomic_store_n(&r->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
