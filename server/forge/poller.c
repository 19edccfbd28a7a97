#include "server/forge/poller.h"
#include "common/units.h"
#include "common/log.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/gitproc/gitops.h"

#define POLLER_TICK_MS 1000

struct poller_due {
	int64_t repo_id;
	int64_t next_ms; /* wall clock */
};

struct poller {
	struct srv *srv;
	struct gitproc *git; /* the poller's own git helper */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stopping;      /* under mu */
	/* owned by the thread */
	struct poller_due *due;
	size_t n_due;
};

/* Recorded in poll_heads once the poller has listed a repository's tags:
 * not a ref name git allows, so no tag can clash with it. A repository
 * polled before tags were watched has branch heads but no marker; its first
 * poll since then records its tags without starting pipelines for them. */
#define POLLER_TAGS_MARKER     "refs/tags/"
#define POLLER_TAGS_MARKER_SHA "0000000000000000000000000000000000000000"

static int poller_watched(const char *name)
{
	return (strncmp(name, "refs/heads/", 11) == 0 || strncmp(name, "refs/tags/", 10) == 0) &&
	       pipeline_text_ok(name) && strlen(name) <= 255;
}

/* The remote's branch heads and tags: refs/heads/... and refs/tags/... → 40
 * hex. An annotated tag is recorded at the commit it points to (the
 * advertisement's peeled "^{}" entry), which is what a pipeline builds. The
 * ls-remote runs in the poller's own git helper, so a slow remote holds up
 * no pipeline's read of its mirror. */
static int poller_ls(struct poller *p, const char *url, struct strv *refs, struct strv *shas, struct err *err)
{
	struct strv names = STRV_INIT, oids = STRV_INIT;
	int rc = -1;

	if (gitops_ls_remote(p->git, url, &names, &oids, err) < 0)
		goto out;
	for (size_t i = 0; i < names.n; i++) {
		const char *oid = oids.v[i];
		size_t len = strlen(names.v[i]);

		if (!poller_watched(names.v[i]) || strchr(names.v[i], '^') != NULL)
			continue;
		if (strncmp(names.v[i], "refs/tags/", 10) == 0)
			for (size_t j = 0; j < names.n; j++)
				if (strncmp(names.v[j], names.v[i], len) == 0 &&
				    strcmp(names.v[j] + len, "^{}") == 0)
					oid = oids.v[j];
		strv_push(refs, names.v[i]);
		strv_push(shas, oid);
	}
	rc = 0;
out:
	strv_release(&names);
	strv_release(&oids);
	return rc;
}

static const char *poller_lookup(const struct strv *refs, const struct strv *shas, const char *ref)
{
	for (size_t i = 0; i < refs->n; i++)
		if (strcmp(refs->v[i], ref) == 0)
			return shas->v[i];
	return NULL;
}

/* A release made by this server on a local repository started its tag
 * pipeline itself (release_api.c): a tag whose ref already has a tag
 * pipeline at the same commit starts no second one. */
static int poller_tag_started(struct poller *p, const char *repo, const char *ref, const char *sha)
{
	struct pipeline_row row = {0};
	struct err err = {0};
	int started = 0;

	if (store_pipeline_latest_ref(p->srv->store, repo, ref, &row, &err) == 0)
		started = strcmp(row.event, "tag") == 0 && strcmp(row.commit_sha, sha) == 0;
	pipeline_row_release(&row);
	return started;
}

static void poller_repo(struct poller *p, const struct repo_cfg *r)
{
	struct strv old_refs = STRV_INIT, old_shas = STRV_INIT, refs = STRV_INIT, shas = STRV_INIT;
	struct err err = {0};
	int first, tags_first;
	size_t n_tags = 0;

	if (store_poll_heads(p->srv->store, r->id, &old_refs, &old_shas, &err) < 0 ||
	    poller_ls(p, r->url, &refs, &shas, &err) < 0) {
		log_warnx("event=poll_failed repo=%s error=\"%s\"", r->name, err.msg);
		goto out;
	}
	first = old_refs.n == 0;
	tags_first = poller_lookup(&old_refs, &old_shas, POLLER_TAGS_MARKER) == NULL;
	for (size_t i = 0; i < refs.n; i++) {
		const char *was = poller_lookup(&old_refs, &old_shas, refs.v[i]);
		struct pipeline_trigger t = {0};
		char *delivery = NULL;
		int64_t id = 0;
		int existed = 0, started, is_tag = strncmp(refs.v[i], "refs/tags/", 10) == 0;

		n_tags += is_tag;
		if (was != NULL && strcmp(was, shas.v[i]) == 0)
			continue;
		if (!first && !(is_tag && tags_first) &&
		    !(is_tag && poller_tag_started(p, r->name, refs.v[i], shas.v[i]))) {
			delivery = xasprintf("poll:%s:%s:%s", r->name, refs.v[i], shas.v[i]);
			t.repo = r->name;
			t.url = r->url;
			t.ref = refs.v[i];
			t.commit = shas.v[i];
			t.event = is_tag ? "tag" : "push";
			t.delivery = delivery;
			started = pipeline_start(p->srv, &t, &id, &existed, &err);
			free(delivery);
			if (started < 0) {
				/* The head stays unrecorded: the next poll tries again. */
				log_warnx("event=poll_start_failed repo=%s ref=%s error=\"%s\"", r->name,
				          refs.v[i], err.msg);
				continue;
			}
			log_info("event=poll_changed repo=%s ref=%s sha=%s pipeline=%lld", r->name, refs.v[i],
			         shas.v[i], (long long)id);
		}
		if (store_poll_head_set(p->srv->store, r->id, refs.v[i], shas.v[i], &err) < 0)
			log_warnx("event=poll_store_failed repo=%s error=\"%s\"", r->name, err.msg);
	}
	for (size_t i = 0; i < old_refs.n; i++)
		if (strcmp(old_refs.v[i], POLLER_TAGS_MARKER) != 0 &&
		    poller_lookup(&refs, &shas, old_refs.v[i]) == NULL &&
		    store_poll_head_set(p->srv->store, r->id, old_refs.v[i], NULL, &err) < 0)
			log_warnx("event=poll_store_failed repo=%s error=\"%s\"", r->name, err.msg);
	if (tags_first) {
		if (store_poll_head_set(p->srv->store, r->id, POLLER_TAGS_MARKER, POLLER_TAGS_MARKER_SHA,
		                        &err) < 0)
			log_warnx("event=poll_store_failed repo=%s error=\"%s\"", r->name, err.msg);
		log_info("event=poll_recorded repo=%s branches=%zu tags=%zu", r->name,
		         first ? refs.n - n_tags : (size_t)0, n_tags);
	}
out:
	strv_release(&old_refs);
	strv_release(&old_shas);
	strv_release(&refs);
	strv_release(&shas);
}

static struct poller_due *poller_due_get(struct poller *p, int64_t repo_id)
{
	for (size_t i = 0; i < p->n_due; i++)
		if (p->due[i].repo_id == repo_id)
			return &p->due[i];
	p->due = xrealloc(p->due, (p->n_due + 1) * sizeof(*p->due));
	p->due[p->n_due].repo_id = repo_id;
	p->due[p->n_due].next_ms = 0;
	return &p->due[p->n_due++];
}

static int poller_sleep(struct poller *p, long ms)
{
	struct timespec ts;
	int stop;

	units_deadline_ts(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&p->mu);
	while (!p->stopping && pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
		;
	stop = p->stopping;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

static void *poller_main(void *arg)
{
	struct poller *p = arg;

	do {
		struct repo_cfg *rows = NULL;
		size_t n = 0;
		struct err err = {0};

		if (store_repo_cfg_list(p->srv->store, &rows, &n, &err) < 0)
			log_warnx("event=poll_list_failed error=\"%s\"", err.msg);
		for (size_t i = 0; i < n; i++) {
			struct poller_due *d;
			if (rows[i].poll_s <= 0)
				continue;
			d = poller_due_get(p, rows[i].id);
			if (srv_now_ms() < d->next_ms)
				continue;
			poller_repo(p, &rows[i]);
			d->next_ms = srv_now_ms() + (int64_t)rows[i].poll_s * 1000;
		}
		repo_cfgs_free(rows, n);
	} while (!poller_sleep(p, POLLER_TICK_MS));
	return NULL;
}

int poller_start(struct srv *srv, struct poller **out, struct err *err)
{
	struct poller *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;

	p->srv = srv;
	p->git = gitproc_new_self(GITPROC_IDLE_MS);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&p->th, NULL, poller_main, p) != 0) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		gitproc_free(p->git);
		free(p);
		return err_set(err, ERR_SYS, "cannot start the poller thread");
	}
	*out = p;
	return 0;
}

void poller_stop(struct poller *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	free(p->due);
	gitproc_free(p->git);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
