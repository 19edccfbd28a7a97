#include "server/sched/jobstate.h"
#include "common/log.h"
#include "server/store/store_be.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const jobstate_names[] = {"queued", "running", "success", "failed", "canceled", "error"};

const char *jobstate_name(enum job_state s)
{
	if ((unsigned)s >= sizeof(jobstate_names) / sizeof(jobstate_names[0]))
		return "error";
	return jobstate_names[s];
}

int jobstate_parse(const char *name, enum job_state *out)
{
	for (unsigned i = 0; i < sizeof(jobstate_names) / sizeof(jobstate_names[0]); i++) {
		if (name != NULL && strcmp(name, jobstate_names[i]) == 0) {
			*out = (enum job_state)i;
			return 0;
		}
	}
	return -1;
}

int jobstate_is_final(enum job_state s)
{
	return s == JOB_SUCCESS || s == JOB_FAILED || s == JOB_CANCELED || s == JOB_ERROR;
}

int jobstate_can_move(enum job_state from, enum job_state to)
{
	switch (from) {
	case JOB_QUEUED:
		return to == JOB_RUNNING || to == JOB_CANCELED;
	case JOB_RUNNING:
		return to == JOB_SUCCESS || to == JOB_FAILED || to == JOB_CANCELED || to == JOB_ERROR ||
		       to == JOB_QUEUED;
	default:
		return 0;
	}
}

enum job_state jobstate_aggregate(const enum job_state *states, int n)
{
	int running = 0, queued = 0, error = 0, failed = 0, canceled = 0;

	for (int i = 0; i < n; i++) {
		switch (states[i]) {
		case JOB_RUNNING:
			running++;
			break;
		case JOB_QUEUED:
			queued++;
			break;
		case JOB_ERROR:
			error++;
			break;
		case JOB_FAILED:
			failed++;
			break;
		case JOB_CANCELED:
			canceled++;
			break;
		case JOB_SUCCESS:
			break;
		}
	}
	if (running)
		return JOB_RUNNING;
	if (queued)
		return JOB_QUEUED;
	if (error)
		return JOB_ERROR;
	if (failed)
		return JOB_FAILED;
	if (canceled)
		return JOB_CANCELED;
	return JOB_SUCCESS;
}

/* ---- transitions: every change of a job's state, on any backend ----
 *
 * Each is one transaction of the store's backend (store_be.h), made from
 * its primitives. The rules that ride on a change are here too, in the same
 * transaction: a pipeline's state follows its current jobs; a commit status
 * is queued for each job created and each state it reaches, when its
 * repository sends statuses; when the last build job of a pipeline
 * succeeds, its automatic deploy entries become deploy jobs; when the last
 * job named "build" of a tag pipeline succeeds, the tag is recorded as a
 * release if it matches the repository's release pattern; when a job ends
 * other than in success, the queued jobs that need it (needs:) end as
 * canceled, saying which job they needed, and so on down the graph. (A job
 * whose needs have not all succeeded is not claimable: tx_jobs_claimable.) */

struct jobstate_tx {
	const struct store_ops *ops;
	struct store_tx *tx;
	struct pipeline_facts facts; /* of facts_pipeline, when non-zero */
	int64_t facts_pipeline;
};

static int jobstate_begin(struct store *st, struct jobstate_tx *t, struct err *err)
{
	memset(t, 0, sizeof(*t));
	t->ops = st->ops;
	return st->ops->tx_begin(st->be, &t->tx, err);
}

static void jobstate_end(struct jobstate_tx *t)
{
	pipeline_facts_release(&t->facts);
}

static void jobstate_rollback(struct jobstate_tx *t)
{
	t->ops->tx_rollback(t->tx);
	jobstate_end(t);
}

/* Tells other server processes that jobs changed, then commits. */
static int jobstate_commit(struct jobstate_tx *t, struct err *err)
{
	int rc;

	if (t->ops->tx_notify(t->tx, "jobs", err) < 0) {
		jobstate_rollback(t);
		return -1;
	}
	rc = t->ops->tx_commit(t->tx, err);
	jobstate_end(t);
	return rc;
}

static int jobstate_facts(struct jobstate_tx *t, int64_t pipeline_id, struct err *err)
{
	if (t->facts_pipeline == pipeline_id)
		return 0;
	pipeline_facts_release(&t->facts);
	t->facts_pipeline = 0;
	if (t->ops->tx_pipeline_facts(t->tx, pipeline_id, &t->facts, err) < 0)
		return -1;
	t->facts_pipeline = pipeline_id;
	return 0;
}

/* The commit status state a job's state reports. */
static const char *jobstate_status_state(enum job_state s)
{
	switch (s) {
	case JOB_QUEUED:
	case JOB_RUNNING:
		return "pending";
	case JOB_SUCCESS:
		return "success";
	case JOB_FAILED:
		return "failure";
	default:
		return "error";
	}
}

static int jobstate_status(struct jobstate_tx *t, int64_t pipeline_id, int64_t job_id, const char *state,
                           const char *description, int64_t now_ms, struct err *err)
{
	if (jobstate_facts(t, pipeline_id, err) < 0)
		return -1;
	if (!t->facts.statuses)
		return 0;
	return t->ops->tx_status_queue(t->tx, job_id, state, description, now_ms, err);
}

/* Inserts a queued job and queues its first status. */
static int jobstate_insert(struct jobstate_tx *t, const struct job_insert *in, int64_t now_ms,
                           int64_t *id_out, struct err *err)
{
	if (t->ops->tx_job_insert(t->tx, in, now_ms, id_out, err) < 0)
		return -1;
	return jobstate_status(t, in->pipeline_id, *id_out, "pending", "queued", now_ms, err);
}

static int jobstate_needers_cancel(struct jobstate_tx *t, const struct job_state_row *r, int64_t now_ms,
                                   struct err *err);
static int jobstate_supersede(struct jobstate_tx *t, const struct pipeline_new *p, int64_t pid,
                              int64_t now_ms, struct err *err);

/* Writes a job back; queues a status when its state changed from was; a
 * job that ended other than in success takes the jobs needing it along. */
static int jobstate_write(struct jobstate_tx *t, const struct job_state_row *r, enum job_state was,
                          int64_t now_ms, struct err *err)
{
	if (t->ops->tx_job_write(t->tx, r, err) < 0)
		return -1;
	if (r->state == was)
		return 0;
	if (jobstate_status(t, r->pipeline_id, r->id, jobstate_status_state(r->state),
	                    jobstate_name(r->state), now_ms, err) < 0)
		return -1;
	if (jobstate_is_final(r->state) && r->state != JOB_SUCCESS)
		return jobstate_needers_cancel(t, r, now_ms, err);
	return 0;
}

/* The queued jobs needing r (which just ended as r->state) are canceled,
 * naming it; each one's own needers follow through jobstate_write. The
 * graph is a DAG no deeper than PIPEFILE_MAX_DEPTH (checked when the
 * pipeline file was read), so the recursion ends. */
static int jobstate_needers_cancel(struct jobstate_tx *t, const struct job_state_row *r, int64_t now_ms,
                                   struct err *err)
{
	const char *how = r->state == JOB_FAILED     ? "failed"
	                  : r->state == JOB_CANCELED ? "was canceled"
	                                             : "ended in error";
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	if (t->ops->tx_jobs_needing(t->tx, r->id, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct job_state_row js = {0};
		int w;

		if (t->ops->tx_job_lock(t->tx, ids[i], &js, err) < 0)
			goto out;
		if (js.state != JOB_QUEUED) {
			job_state_row_release(&js);
			continue;
		}
		js.state = JOB_CANCELED;
		js.finished_ms = now_ms;
		free(js.message);
		js.message = xasprintf("needs %s, which %s", r->name, how);
		w = jobstate_write(t, &js, JOB_QUEUED, now_ms, err);
		job_state_row_release(&js);
		if (w < 0)
			goto out;
	}
	rc = 0;
out:
	free(ids);
	return rc;
}

/* A pipeline's state from its current jobs. */
static int jobstate_refresh(struct jobstate_tx *t, int64_t pipeline_id, int64_t now_ms, struct err *err)
{
	enum job_state *states = NULL, agg;
	size_t n = 0;

	if (t->ops->tx_pipeline_states(t->tx, pipeline_id, &states, &n, err) < 0)
		return -1;
	agg = jobstate_aggregate(states, (int)n);
	free(states);
	return t->ops->tx_pipeline_set_state(t->tx, pipeline_id, agg, jobstate_is_final(agg) ? now_ms : 0,
	                                     err);
}

/* The rules of a build job that just succeeded (r: its row). */
static int jobstate_after_success(struct jobstate_tx *t, const struct job_state_row *r, int64_t now_ms,
                                  struct err *err)
{
	int64_t left = 0;

	if (strcmp(r->kind, "build") == 0) {
		struct deploy_plan_row *plans = NULL;
		size_t n = 0;

		if (t->ops->tx_jobs_unsucceeded(t->tx, r->pipeline_id, "build", NULL, &left, err) < 0)
			return -1;
		if (left == 0) {
			if (t->ops->tx_deploy_plans_pending(t->tx, r->pipeline_id, &plans, &n, err) < 0)
				return -1;
			for (size_t i = 0; i < n; i++) {
				struct job_insert in = {.pipeline_id = r->pipeline_id,
				                        .name = "deploy",
				                        .target = plans[i].group,
				                        .kind = "deploy",
				                        .labels = plans[i].labels,
				                        .spec = plans[i].spec,
				                        .max_attempts = r->max_attempts,
				                        .approve = plans[i].approve};
				int64_t id;

				if (jobstate_insert(t, &in, now_ms, &id, err) < 0) {
					deploy_plan_rows_free(plans, n);
					return -1;
				}
			}
			deploy_plan_rows_free(plans, n);
		}
	}
	if (strcmp(r->name, "build") == 0) {
		const char *version;

		if (t->ops->tx_jobs_unsucceeded(t->tx, r->pipeline_id, NULL, "build", &left, err) < 0)
			return -1;
		if (left > 0 || jobstate_facts(t, r->pipeline_id, err) < 0)
			return left > 0 ? 0 : -1;
		if (strncmp(t->facts.ref, "refs/tags/", 10) != 0 || t->facts.ref[10] == '\0')
			return 0;
		version = t->facts.ref + 10;
		/* fnmatch without flags: '*' also matches '/', as SQLite's GLOB did. */
		if (fnmatch(t->facts.release_pattern, version, 0) != 0)
			return 0;
		return t->ops->tx_release_record(t->tx, t->facts.repo_id, version, r->pipeline_id,
		                                 t->facts.commit_sha, now_ms, err);
	}
	return 0;
}

int jobstate_pipeline_create(struct store *st, const struct pipeline_new *p, const struct job_new *jobs,
                             size_t n_jobs, int64_t now_ms, int64_t *id_out, int *existed_out,
                             struct err *err)
{
	struct jobstate_tx t;
	struct err lookup = {0};
	enum job_state state = p->error_message ? JOB_ERROR : (n_jobs ? JOB_QUEUED : JOB_SUCCESS);
	int64_t pid, jid;

	*existed_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (p->delivery != NULL &&
	    t.ops->tx_pipeline_by_delivery(t.tx, p->repo_id, p->delivery, id_out, &lookup) == 0) {
		*existed_out = 1;
		jobstate_rollback(&t);
		return 0;
	}
	/* A failed lookup is not "unknown": after an out-of-memory SQLite may
	 * have rolled the transaction back (found by test_torture). */
	if (p->delivery != NULL && lookup.code != ERR_NOTFOUND) {
		err_set(err, lookup.code, "%s", lookup.msg);
		goto fail;
	}
	if (t.ops->tx_pipeline_insert(t.tx, p, state, now_ms, jobstate_is_final(state) ? now_ms : 0, &pid,
	                              err) < 0)
		goto fail;
	for (size_t i = 0; p->error_message == NULL && i < n_jobs; i++) {
		struct job_insert in = {.pipeline_id = pid,
		                        .name = jobs[i].name,
		                        .target = jobs[i].target,
		                        .kind = "build",
		                        .labels = jobs[i].labels ? jobs[i].labels : "",
		                        .spec = jobs[i].spec,
		                        .max_attempts = jobs[i].max_attempts,
		                        .approve = jobs[i].approve};

		if (jobstate_insert(&t, &in, now_ms, &jid, err) < 0)
			goto fail;
		for (size_t k = 0; k < jobs[i].n_needs; k++) {
			const struct job_new *d;

			if (jobs[i].needs[k] >= n_jobs) {
				err_set(err, ERR_INVAL, "job %zu needs job %zu of %zu", i, jobs[i].needs[k],
				        n_jobs);
				goto fail;
			}
			d = &jobs[jobs[i].needs[k]];
			if (t.ops->tx_job_need_insert(t.tx, jid, d->name, d->target, err) < 0)
				goto fail;
		}
	}
	for (size_t i = 0; p->error_message == NULL && i < p->n_plans; i++)
		if (t.ops->tx_deploy_plan_insert(t.tx, pid, &p->plans[i], err) < 0)
			goto fail;
	if (p->error_message == NULL && jobstate_supersede(&t, p, pid, now_ms, err) < 0)
		goto fail;
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*id_out = pid;
	return 0;
fail:
	jobstate_rollback(&t);
	return -1;
}

int jobstate_labels_have(const char *required, const char *const *labels, size_t n_labels)
{
	const char *p = required ? required : "";
	int found;

	while (*p) {
		size_t len = strcspn(p, ",");
		found = len == 0;
		for (size_t i = 0; i < n_labels && !found; i++)
			found = strlen(labels[i]) == len && strncmp(labels[i], p, len) == 0;
		if (!found)
			return 0;
		p += len;
		if (*p == ',')
			p++;
	}
	return 1;
}

int jobstate_labels_match(const char *kind, const char *target, const char *required,
                          const char *const *labels, size_t n_labels)
{
	int found;

	if (kind == NULL || strcmp(kind, "build") == 0) {
		found = 0;
		for (size_t i = 0; i < n_labels && !found; i++)
			found = strncmp(labels[i], "target=", 7) == 0 && target &&
			        strcmp(labels[i] + 7, target) == 0;
		if (!found)
			return 0;
	}
	return jobstate_labels_have(required, labels, n_labels);
}

int jobstate_claim(struct store *st, int64_t agent_id, const char *const *labels, size_t n_labels,
                   int64_t now_ms, int64_t lease_ms, struct job_row *out, int *found_out, struct err *err)
{
	return jobstate_claim_pref(st, agent_id, labels, n_labels, now_ms, lease_ms, NULL, out, found_out,
	                           err);
}

/* FNV-1a over what makes two jobs want the same warm agent. */
static uint64_t jobstate_key_add(uint64_t h, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull; /* a separator no string holds */
}

static uint64_t jobstate_pref_key(const struct job_claimable *r)
{
	char id[24];
	uint64_t h = 14695981039346656037ull;

	snprintf(id, sizeof(id), "%lld", (long long)r->repo_id);
	h = jobstate_key_add(h, id);
	h = jobstate_key_add(h, r->kind);
	h = jobstate_key_add(h, r->target);
	h = jobstate_key_add(h, r->labels);
	return jobstate_key_add(h, r->pool);
}

int jobstate_claim_pref(struct store *st, int64_t agent_id, const char *const *labels, size_t n_labels,
                        int64_t now_ms, int64_t lease_ms, struct jobstate_pref *pref, struct job_row *out,
                        int *found_out, struct err *err)
{
	struct jobstate_tx t;
	struct job_claimable *rows = NULL;
	struct job_state_row js = {0};
	size_t n = 0;
	int64_t pick = 0;

	*found_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_jobs_claimable(t.tx, 500, &rows, &n, err) < 0)
		goto fail;
	/* A repository bound to a pool: only its agents get its jobs (and so
	 * its secrets), builds and deploys alike. The first match this
	 * transaction can lock is taken; one another server's claim holds is
	 * passed over, not waited for. */
	for (size_t i = 0; i < n && pick == 0; i++) {
		struct err busy = {0};

		if (!jobstate_labels_match(rows[i].kind, rows[i].target, rows[i].labels, labels, n_labels) ||
		    !jobstate_labels_have(rows[i].pool, labels, n_labels))
			continue;
		if (pref != NULL && pref->leave != NULL &&
		    pref->leave(pref->cls, jobstate_pref_key(&rows[i]))) {
			pref->left++;
			continue;
		}
		if (t.ops->tx_job_claim_lock(t.tx, rows[i].id, &js, &busy) == 0) {
			pick = rows[i].id;
			if (pref != NULL)
				pref->picked_key = jobstate_pref_key(&rows[i]);
		} else if (busy.code != ERR_CONFLICT) {
			err_set(err, busy.code, "%s", busy.msg);
			job_claimables_free(rows, n);
			goto fail;
		}
	}
	job_claimables_free(rows, n);
	if (pick == 0) {
		jobstate_rollback(&t);
		return 0;
	}
	js.state = JOB_RUNNING;
	js.attempt++;
	if (js.message != NULL && strncmp(js.message, JOBSTATE_NO_AGENT, strlen(JOBSTATE_NO_AGENT)) == 0) {
		free(js.message);
		js.message = xstrdup("");
		if (t.ops->tx_pipeline_set_message(t.tx, js.pipeline_id, "", err) < 0)
			goto fail;
	}
	js.agent_id = agent_id;
	js.lease_until_ms = now_ms + lease_ms;
	js.started_ms = now_ms;
	if (jobstate_write(&t, &js, JOB_QUEUED, now_ms, err) < 0)
		goto fail;
	if (js.attempt > 1) {
		/* Mark the retry in the log, so a reader sees where the lost attempt stopped. */
		char *line = xasprintf("\n[anvil] attempt %d of %d (the previous agent stopped answering)\n",
		                       js.attempt, js.max_attempts);
		int r = t.ops->tx_log_mark(t.tx, pick, js.attempt, line, err);

		free(line);
		if (r < 0)
			goto fail;
	}
	if (jobstate_refresh(&t, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	/* Read before the commit: a claim that fails must leave the job
	 * queued, not running for an agent that was told it failed (found by
	 * test_torture). */
	if (t.ops->tx_job_get(t.tx, pick, out, err) < 0)
		goto fail;
	job_state_row_release(&js);
	if (jobstate_commit(&t, err) < 0) {
		job_row_release(out);
		return -1;
	}
	*found_out = 1;
	return 0;
fail:
	job_state_row_release(&js);
	jobstate_rollback(&t);
	return -1;
}

/* Locks job id, which must be running at attempt: ERR_CONFLICT when stale. */
static int jobstate_lock_running(struct jobstate_tx *t, int64_t id, int attempt, struct job_state_row *js,
                                 struct err *err)
{
	if (t->ops->tx_job_lock(t->tx, id, js, err) < 0)
		return -1;
	if (js->state != JOB_RUNNING || js->attempt != attempt)
		return err_set(err, ERR_CONFLICT, "job %lld is %s at attempt %d, not running at attempt %d",
		               (long long)id, jobstate_name(js->state), js->attempt, attempt);
	return 0;
}

int jobstate_finish(struct store *st, int64_t id, int attempt, enum job_state state, int has_exit_code,
                    int exit_code, const char *message, int64_t now_ms, struct err *err)
{
	struct jobstate_tx t;
	struct job_state_row js = {0};
	enum job_state was;

	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_lock_running(&t, id, attempt, &js, err) < 0)
		goto fail;
	if (!jobstate_is_final(state) || !jobstate_can_move(js.state, state)) {
		err_set(err, ERR_INVAL, "cannot finish job as %s", jobstate_name(state));
		goto fail;
	}
	was = js.state;
	js.state = state;
	js.has_exit_code = has_exit_code;
	js.exit_code = exit_code;
	free(js.message);
	js.message = xstrdup(message ? message : "");
	js.finished_ms = now_ms;
	js.lease_until_ms = 0;
	if (jobstate_write(&t, &js, was, now_ms, err) < 0)
		goto fail;
	if (state == JOB_SUCCESS && jobstate_after_success(&t, &js, now_ms, err) < 0)
		goto fail;
	if (jobstate_refresh(&t, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	job_state_row_release(&js);
	return jobstate_commit(&t, err);
fail:
	job_state_row_release(&js);
	jobstate_rollback(&t);
	return -1;
}

int jobstate_cancel(struct store *st, int64_t id, int64_t now_ms, struct err *err)
{
	struct jobstate_tx t;
	struct job_state_row js = {0};
	enum job_state was;

	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_job_lock(t.tx, id, &js, err) < 0)
		goto fail;
	was = js.state;
	if (js.state == JOB_QUEUED) {
		js.state = JOB_CANCELED;
		js.finished_ms = now_ms;
		free(js.message);
		js.message = xstrdup("canceled before it started");
	} else if (js.state == JOB_RUNNING) {
		js.cancel_requested = 1;
	} else {
		err_set(err, ERR_CONFLICT, "job %lld has already finished (%s)", (long long)id,
		        jobstate_name(js.state));
		goto fail;
	}
	if (jobstate_write(&t, &js, was, now_ms, err) < 0)
		goto fail;
	if (jobstate_refresh(&t, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	job_state_row_release(&js);
	return jobstate_commit(&t, err);
fail:
	job_state_row_release(&js);
	jobstate_rollback(&t);
	return -1;
}

/* The old job ids one transaction already retried (so a job reached twice
 * down the graph is retried once). */
struct jobstate_done {
	int64_t *ids;
	size_t n;
};

static int jobstate_done_has(const struct jobstate_done *d, int64_t id)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->ids[i] == id)
			return 1;
	return 0;
}

static int jobstate_retry_in(struct jobstate_tx *t, int64_t id, int64_t now_ms, int64_t *new_id_out,
                             struct jobstate_done *done, struct err *err);

/* The canceled jobs that never started and need old (just retried): they
 * were canceled because of it (or before they could start), so they go back
 * to the queue with it and wait for its retry. */
static int jobstate_retry_needers(struct jobstate_tx *t, const struct job_row *old, int64_t now_ms,
                                  struct jobstate_done *done, struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	if (t->ops->tx_pipeline_current_jobs(t->tx, old->pipeline_id, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct job_state_row js = {0};
		struct strv names = STRV_INIT, targets = STRV_INIT;
		int needs = 0, r;
		int64_t new_id;

		if (jobstate_done_has(done, ids[i]))
			continue;
		if (t->ops->tx_job_lock(t->tx, ids[i], &js, err) < 0)
			goto out;
		r = js.state == JOB_CANCELED && js.started_ms == 0 ? 1 : 0;
		job_state_row_release(&js);
		if (r == 0)
			continue;
		if (t->ops->tx_job_needs(t->tx, ids[i], &names, &targets, err) < 0) {
			strv_release(&names);
			strv_release(&targets);
			goto out;
		}
		for (size_t k = 0; k < names.n && !needs; k++)
			needs = strcmp(names.v[k], old->name) == 0 && strcmp(targets.v[k], old->target) == 0;
		strv_release(&names);
		strv_release(&targets);
		if (needs && jobstate_retry_in(t, ids[i], now_ms, &new_id, done, err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(ids);
	return rc;
}

/* A new queued job copying final job id (and its needs), then the same for
 * the canceled jobs that needed it. */
static int jobstate_retry_in(struct jobstate_tx *t, int64_t id, int64_t now_ms, int64_t *new_id_out,
                             struct jobstate_done *done, struct err *err)
{
	struct job_row old = {0};
	struct strv names = STRV_INIT, targets = STRV_INIT;
	int rc = -1;

	if (t->ops->tx_job_get(t->tx, id, &old, err) < 0)
		goto out;
	if (!jobstate_is_final(old.state)) {
		err_set(err, ERR_CONFLICT, "job %lld is still %s", (long long)id, jobstate_name(old.state));
		goto out;
	}
	{
		struct job_insert in = {.pipeline_id = old.pipeline_id,
		                        .name = old.name,
		                        .target = old.target,
		                        .kind = old.kind,
		                        .labels = old.labels,
		                        .spec = old.spec,
		                        .max_attempts = old.max_attempts,
		                        .retry_of = id,
		                        .approve = old.approve};

		if (jobstate_insert(t, &in, now_ms, new_id_out, err) < 0) {
			if (err && err->code == ERR_CONFLICT)
				err_set(err, ERR_CONFLICT, "job %lld was already retried", (long long)id);
			goto out;
		}
	}
	done->ids = xrealloc(done->ids, (done->n + 1) * sizeof(*done->ids));
	done->ids[done->n++] = id;
	/* The retry waits for what the job waited for. */
	if (t->ops->tx_job_needs(t->tx, id, &names, &targets, err) < 0)
		goto out;
	for (size_t i = 0; i < names.n; i++)
		if (t->ops->tx_job_need_insert(t->tx, *new_id_out, names.v[i], targets.v[i], err) < 0)
			goto out;
	if (jobstate_retry_needers(t, &old, now_ms, done, err) < 0)
		goto out;
	rc = 0;
out:
	strv_release(&names);
	strv_release(&targets);
	job_row_release(&old);
	return rc;
}

int jobstate_retry(struct store *st, int64_t id, int64_t now_ms, int64_t *new_id_out, struct err *err)
{
	struct jobstate_tx t;
	struct jobstate_done done = {0};
	struct job_state_row js = {0};

	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_job_lock(t.tx, id, &js, err) < 0 ||
	    jobstate_retry_in(&t, id, now_ms, new_id_out, &done, err) < 0 ||
	    jobstate_refresh(&t, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	job_state_row_release(&js);
	free(done.ids);
	return jobstate_commit(&t, err);
fail:
	job_state_row_release(&js);
	free(done.ids);
	jobstate_rollback(&t);
	return -1;
}

/* Stops a pipeline's current jobs: queued ones end canceled with message,
 * running ones are asked to stop (running deploy jobs left alone when
 * spare_deploys: a roll-out is not cut off halfway). *moved_out: how many. */
static int jobstate_pipeline_stop(struct jobstate_tx *t, int64_t pipeline_id, const char *message,
                                  int spare_deploys, int64_t now_ms, int *moved_out, struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	*moved_out = 0;
	if (t->ops->tx_pipeline_current_jobs(t->tx, pipeline_id, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct job_state_row js = {0};
		enum job_state was;
		int w = 0;

		if (t->ops->tx_job_lock(t->tx, ids[i], &js, err) < 0)
			goto out;
		was = js.state;
		if (js.state == JOB_QUEUED) {
			js.state = JOB_CANCELED;
			js.finished_ms = now_ms;
			free(js.message);
			js.message = xstrdup(message);
			(*moved_out)++;
			w = jobstate_write(t, &js, was, now_ms, err);
		} else if (js.state == JOB_RUNNING && !js.cancel_requested &&
		           !(spare_deploys && strcmp(js.kind, "deploy") == 0)) {
			js.cancel_requested = 1;
			(*moved_out)++;
			w = jobstate_write(t, &js, was, now_ms, err);
		}
		job_state_row_release(&js);
		if (w < 0)
			goto out;
	}
	rc = jobstate_refresh(t, pipeline_id, now_ms, err);
out:
	free(ids);
	return rc;
}

int jobstate_pipeline_cancel(struct store *st, int64_t pipeline_id, int64_t now_ms, int *n_out,
                             struct err *err)
{
	struct jobstate_tx t;
	int moved = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_facts(&t, pipeline_id, err) < 0 ||
	    jobstate_pipeline_stop(&t, pipeline_id, "canceled with its pipeline", 0, now_ms, &moved, err) < 0)
		goto fail;
	if (moved == 0) {
		err_set(err, ERR_CONFLICT, "pipeline %lld has no queued or running job",
		        (long long)pipeline_id);
		goto fail;
	}
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*n_out = moved;
	return 0;
fail:
	jobstate_rollback(&t);
	return -1;
}

/* auto_cancel: the older queued or running push pipelines of the new
 * pipeline's branch stop (never a tag's, another branch's, or a running
 * deploy job). */
static int jobstate_supersede(struct jobstate_tx *t, const struct pipeline_new *p, int64_t pid,
                              int64_t now_ms, struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;
	char *msg;

	if (!p->auto_cancel || strncmp(p->ref, "refs/heads/", 11) != 0 || strcmp(p->event, "push") != 0)
		return 0;
	if (t->ops->tx_pipelines_superseded(t->tx, p->repo_id, p->ref, pid, &ids, &n, err) < 0)
		return -1;
	msg = xasprintf("superseded by pipeline %lld (auto_cancel)", (long long)pid);
	for (size_t i = 0; i < n; i++) {
		int moved = 0;

		if (jobstate_pipeline_stop(t, ids[i], msg, 1, now_ms, &moved, err) < 0 ||
		    t->ops->tx_pipeline_set_message(t->tx, ids[i], msg, err) < 0)
			goto out;
		log_info("event=pipeline_superseded pipeline=%lld by=%lld jobs=%d", (long long)ids[i],
		         (long long)pid, moved);
	}
	rc = 0;
out:
	free(msg);
	free(ids);
	return rc;
}

int jobstate_pipeline_retry_failed(struct store *st, int64_t pipeline_id, int64_t now_ms, int *n_out,
                                   struct err *err)
{
	struct jobstate_tx t;
	struct jobstate_done done = {0};
	int64_t *ids = NULL;
	size_t n = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_facts(&t, pipeline_id, err) < 0 ||
	    t.ops->tx_pipeline_current_jobs(t.tx, pipeline_id, &ids, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct job_state_row js = {0};
		int64_t new_id;
		int again;

		if (jobstate_done_has(&done, ids[i]))
			continue;
		if (t.ops->tx_job_lock(t.tx, ids[i], &js, err) < 0)
			goto fail;
		again = js.state == JOB_FAILED || js.state == JOB_CANCELED || js.state == JOB_ERROR;
		job_state_row_release(&js);
		if (again && jobstate_retry_in(&t, ids[i], now_ms, &new_id, &done, err) < 0)
			goto fail;
	}
	if (done.n == 0) {
		err_set(err, ERR_CONFLICT, "pipeline %lld has no failed, canceled or error job to retry",
		        (long long)pipeline_id);
		goto fail;
	}
	if (jobstate_refresh(&t, pipeline_id, now_ms, err) < 0)
		goto fail;
	free(ids);
	*n_out = (int)done.n;
	free(done.ids);
	if (jobstate_commit(&t, err) < 0) {
		*n_out = 0;
		return -1;
	}
	return 0;
fail:
	free(ids);
	free(done.ids);
	jobstate_rollback(&t);
	return -1;
}

int jobstate_approve(struct store *st, int64_t pipeline_id, const char *name, const char *by, int reject,
                     int64_t now_ms, int *n_out, struct err *err)
{
	struct jobstate_tx t;
	int64_t *ids = NULL;
	size_t n = 0;
	int done = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_facts(&t, pipeline_id, err) < 0 ||
	    t.ops->tx_pipeline_current_jobs(t.tx, pipeline_id, &ids, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct job_row j = {0};
		struct job_state_row js = {0};
		int waiting, w = 0;

		if (t.ops->tx_job_get(t.tx, ids[i], &j, err) < 0)
			goto fail;
		waiting = j.state == JOB_QUEUED && j.approve && j.approved_ms == 0 &&
		          (name == NULL || strcmp(j.name, name) == 0);
		job_row_release(&j);
		if (!waiting)
			continue;
		done++;
		if (!reject) {
			if (t.ops->tx_job_approve(t.tx, ids[i], by, now_ms, err) < 0)
				goto fail;
			continue;
		}
		if (t.ops->tx_job_lock(t.tx, ids[i], &js, err) < 0)
			goto fail;
		js.state = JOB_CANCELED;
		js.finished_ms = now_ms;
		free(js.message);
		js.message = xasprintf("rejected by %s", by);
		w = jobstate_write(&t, &js, JOB_QUEUED, now_ms, err);
		job_state_row_release(&js);
		if (w < 0)
			goto fail;
	}
	if (done == 0) {
		err_set(err, ERR_CONFLICT, "no job%s%s of pipeline %lld waits for an approval",
		        name ? " named " : "", name ? name : "", (long long)pipeline_id);
		goto fail;
	}
	if (jobstate_refresh(&t, pipeline_id, now_ms, err) < 0)
		goto fail;
	free(ids);
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*n_out = done;
	return 0;
fail:
	free(ids);
	jobstate_rollback(&t);
	return -1;
}

/* A running job whose agent is gone (lease expired, agent removed or
 * registered again): back to the queue, so the next claim makes attempt + 1;
 * canceled when a cancel was pending, error after max_attempts. */
static int jobstate_requeue(struct jobstate_tx *t, int64_t id, const char *why, int64_t now_ms,
                            struct err *err)
{
	struct job_state_row js = {0};
	int rc = -1;

	if (t->ops->tx_job_lock(t->tx, id, &js, err) < 0)
		goto out;
	if (js.state != JOB_RUNNING) {
		rc = 0; /* another server moved it meanwhile */
		goto out;
	}
	if (js.cancel_requested || js.attempt >= js.max_attempts) {
		free(js.message);
		if (js.cancel_requested)
			js.message = xasprintf("canceled (%s)", why);
		else
			js.message = xasprintf("%s on attempt %d of %d", why, js.attempt, js.max_attempts);
		js.state = js.cancel_requested ? JOB_CANCELED : JOB_ERROR;
		js.finished_ms = now_ms;
	} else {
		js.state = JOB_QUEUED;
		js.agent_id = 0;
	}
	js.lease_until_ms = 0;
	if (jobstate_write(t, &js, JOB_RUNNING, now_ms, err) < 0)
		goto out;
	if (jobstate_refresh(t, js.pipeline_id, now_ms, err) < 0)
		goto out;
	log_info("event=job_requeued job=%lld attempt=%d why=\"%s\"", (long long)id, js.attempt, why);
	rc = 0;
out:
	job_state_row_release(&js);
	return rc;
}

static int jobstate_requeue_ids(struct jobstate_tx *t, const int64_t *ids, size_t n, const char *why,
                                int64_t now_ms, struct err *err)
{
	for (size_t i = 0; i < n; i++)
		if (jobstate_requeue(t, ids[i], why, now_ms, err) < 0)
			return -1;
	return 0;
}

int jobstate_give_back(struct store *st, int64_t id, int attempt, int64_t now_ms, struct err *err)
{
	struct jobstate_tx t;
	struct job_state_row js = {0};

	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_lock_running(&t, id, attempt, &js, err) < 0)
		goto fail;
	if (jobstate_requeue(&t, id, "agent stopping", now_ms, err) < 0)
		goto fail;
	job_state_row_release(&js);
	return jobstate_commit(&t, err);
fail:
	job_state_row_release(&js);
	jobstate_rollback(&t);
	return -1;
}

int jobstate_requeue_expired(struct store *st, int64_t now_ms, int *n_out, struct err *err)
{
	struct jobstate_tx t;
	int64_t *ids = NULL;
	size_t n = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_jobs_expired(t.tx, now_ms, &ids, &n, err) < 0 ||
	    jobstate_requeue_ids(&t, ids, n, "lease expired", now_ms, err) < 0) {
		free(ids);
		jobstate_rollback(&t);
		return -1;
	}
	free(ids);
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*n_out = (int)n;
	return 0;
}

/* The agent's running jobs go back to the queue (why says why). */
static int jobstate_agent_requeue(struct jobstate_tx *t, int64_t agent_id, const char *why, int64_t now_ms,
                                  int *n_out, struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;

	if (t->ops->tx_jobs_of_agent(t->tx, agent_id, &ids, &n, err) < 0)
		return -1;
	rc = jobstate_requeue_ids(t, ids, n, why, now_ms, err);
	free(ids);
	if (rc == 0)
		*n_out = (int)n;
	return rc;
}

int jobstate_agent_register(struct store *st, const char *name, const char *labels_json,
                            const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, int *requeued_out,
                            struct err *err)
{
	struct jobstate_tx t;

	*requeued_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	/* The name's previous process (restarted, or an impostor the operator
	 * will notice) holds no job any more: its token is gone with the row's
	 * old hash, so its attempt can never finish. */
	if (t.ops->tx_agent_upsert(t.tx, name, labels_json, token_sha256_hex, now_ms, id_out, err) < 0 ||
	    jobstate_agent_requeue(&t, *id_out, "agent registered again", now_ms, requeued_out, err) < 0) {
		jobstate_rollback(&t);
		return -1;
	}
	return jobstate_commit(&t, err);
}

int jobstate_agent_remove(struct store *st, const char *name, int64_t now_ms, int64_t *id_out,
                          int *requeued_out, struct err *err)
{
	struct jobstate_tx t;

	*requeued_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_agent_remove(t.tx, name, now_ms, id_out, err) < 0 ||
	    jobstate_agent_requeue(&t, *id_out, "agent removed", now_ms, requeued_out, err) < 0) {
		jobstate_rollback(&t);
		return -1;
	}
	return jobstate_commit(&t, err);
}

int jobstate_deploy_create(struct store *st, int64_t pipeline_id, const char *name, const char *group,
                           const char *spec, const char *labels, int max_attempts, int64_t now_ms,
                           int64_t *job_id_out, struct err *err)
{
	struct jobstate_tx t;
	int64_t n = 0;

	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (jobstate_facts(&t, pipeline_id, err) < 0)
		goto fail;
	if (strcmp(name, "deploy") == 0) {
		if (t.ops->tx_jobs_unsucceeded(t.tx, pipeline_id, "build", NULL, &n, err) < 0)
			goto fail;
		if (n > 0) {
			err_set(err, ERR_CONFLICT,
			        "pipeline %lld has %lld build job(s) that have not succeeded",
			        (long long)pipeline_id, (long long)n);
			goto fail;
		}
	}
	if (t.ops->tx_deploys_active(t.tx, group, &n, err) < 0)
		goto fail;
	if (n > 0) {
		err_set(err, ERR_CONFLICT, "a deploy job for group %s is still queued or running", group);
		goto fail;
	}
	{
		struct job_insert in = {.pipeline_id = pipeline_id,
		                        .name = name,
		                        .target = group,
		                        .kind = "deploy",
		                        .labels = labels ? labels : "",
		                        .spec = spec,
		                        .max_attempts = max_attempts};

		if (jobstate_insert(&t, &in, now_ms, job_id_out, err) < 0)
			goto fail;
	}
	if (jobstate_refresh(&t, pipeline_id, now_ms, err) < 0)
		goto fail;
	return jobstate_commit(&t, err);
fail:
	jobstate_rollback(&t);
	return -1;
}

/* Cancels a queued release deploy job (only if still queued). */
static int jobstate_deploy_cancel(struct jobstate_tx *t, int64_t job_id, const char *message, int64_t now_ms,
                                  struct err *err)
{
	struct job_state_row js = {0};
	int rc = -1;

	if (t->ops->tx_job_lock(t->tx, job_id, &js, err) < 0)
		goto out;
	if (js.state == JOB_QUEUED) {
		js.state = JOB_CANCELED;
		js.finished_ms = now_ms;
		free(js.message);
		js.message = xstrdup(message);
		if (jobstate_write(t, &js, JOB_QUEUED, now_ms, err) < 0)
			goto out;
	}
	rc = jobstate_refresh(t, js.pipeline_id, now_ms, err);
out:
	job_state_row_release(&js);
	return rc;
}

int jobstate_release_deploys_end_orphans(struct store *st, int64_t now_ms, int *n_out, struct err *err)
{
	struct jobstate_tx t;
	struct orphan_deploy_row *rows = NULL;
	size_t n = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_release_orphan_deploys(t.tx, &rows, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char *m = xasprintf("release %s of %s was recorded from pipeline %lld, not this one: this "
		                    "deploy would not carry its signed manifest (deploy it with anvil deploy "
		                    "--release %s)",
		                    rows[i].version, rows[i].repo_name,
		                    (long long)rows[i].release_pipeline_id, rows[i].version);
		int r = jobstate_deploy_cancel(&t, rows[i].job_id, m, now_ms, err);

		free(m);
		if (r < 0)
			goto fail;
	}
	orphan_deploy_rows_free(rows, n);
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*n_out = (int)n;
	return 0;
fail:
	orphan_deploy_rows_free(rows, n);
	jobstate_rollback(&t);
	return -1;
}

int jobstate_release_deploys_cancel(struct store *st, int64_t pipeline_id, const char *message,
                                    int64_t now_ms, int *n_out, struct err *err)
{
	struct jobstate_tx t;
	int64_t *ids = NULL;
	size_t n = 0;

	*n_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_release_waiting_deploys(t.tx, pipeline_id, &ids, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (jobstate_deploy_cancel(&t, ids[i], message, now_ms, err) < 0)
			goto fail;
	free(ids);
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*n_out = (int)n;
	return 0;
fail:
	free(ids);
	jobstate_rollback(&t);
	return -1;
}

/* ---- jobs nobody can run ---- */

/* Why no agent of agents could claim row, into out ("" when one could). */
static void jobstate_unrunnable_why(const struct job_claimable *row, const struct strv *agents,
                                    size_t n_agents, struct buf *out)
{
	int build = row->kind == NULL || strcmp(row->kind, "build") == 0;
	struct strv required = STRV_INIT;
	size_t with_target = 0;

	buf_reset(out);
	for (size_t a = 0; a < n_agents; a++) {
		const char *const *l = (const char *const *)agents[a].v;

		if (jobstate_labels_match(row->kind, row->target, row->labels, l, agents[a].n) &&
		    jobstate_labels_have(row->pool, l, agents[a].n))
			return;
		with_target += !build || jobstate_labels_match(row->kind, row->target, "", l, agents[a].n);
	}
	if (build && with_target == 0) {
		buf_appendf(out, JOBSTATE_NO_AGENT "offers target %s", row->target);
		return;
	}
	/* Name the labels (the job's, then its repository pool's) that no
	 * agent with the target carries; when each is carried by some agent
	 * but none carries all, name them all. */
	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass == 0 ? row->labels : row->pool;

		while (p != NULL && *p) {
			size_t len = strcspn(p, ",");

			if (len > 0) {
				char *one = xstrndup(p, len);
				size_t have = 0;

				for (size_t a = 0; a < n_agents && have == 0; a++) {
					const char *const *l = (const char *const *)agents[a].v;

					if (!build ||
					    jobstate_labels_match(row->kind, row->target, "", l, agents[a].n))
						have = jobstate_labels_have(one, l, agents[a].n);
				}
				strv_pushf(&required, "%s%s", have ? "+" : "-", one);
				free(one);
			}
			p += len;
			if (*p == ',')
				p++;
		}
	}
	if (build)
		buf_appendf(out, JOBSTATE_NO_AGENT "offers target %s with label", row->target);
	else
		buf_appendf(out, JOBSTATE_NO_AGENT "has label");
	{
		size_t missing = 0, shown = 0;

		for (size_t i = 0; i < required.n; i++)
			missing += required.v[i][0] == '-';
		buf_appendf(out, "%s ", (missing ? missing : required.n) > 1 ? "s" : "");
		for (size_t i = 0; i < required.n; i++)
			if (missing == 0 || required.v[i][0] == '-')
				buf_appendf(out, "%s%s", shown++ ? "," : "", required.v[i] + 1);
		if (missing == 0)
			buf_appendf(out, " together");
	}
	strv_release(&required);
}

static int jobstate_is_no_agent(const char *m)
{
	return m != NULL && strncmp(m, JOBSTATE_NO_AGENT, strlen(JOBSTATE_NO_AGENT)) == 0;
}

/* A queued or running pipeline's message is only ever this scan's: a
 * pipeline that could not start is created in state error with its own. */
static int jobstate_pipeline_msg_ours(const char *m)
{
	return m == NULL || m[0] == '\0' || strncmp(m, "job ", 4) == 0;
}

int jobstate_unrunnable_scan(struct store *st, const struct strv *agents, size_t n_agents, int64_t now_ms,
                             int *changed_out, struct err *err)
{
	struct jobstate_tx t;
	struct job_claimable *rows = NULL;
	struct buf why = BUF_INIT;
	char **want = NULL; /* per row: its message as it should be, owned */
	size_t n = 0;
	int changed = 0, written = 0;

	(void)now_ms;
	*changed_out = 0;
	if (jobstate_begin(st, &t, err) < 0)
		return -1;
	if (t.ops->tx_jobs_claimable(t.tx, 500, &rows, &n, err) < 0)
		goto fail;
	want = xcalloc(n + 1, sizeof(*want));
	for (size_t i = 0; i < n; i++) {
		jobstate_unrunnable_why(&rows[i], agents, n_agents, &why);
		want[i] = xstrdup(why.len ? why.data : "");
		if (strcmp(want[i], rows[i].message) == 0 ||
		    (want[i][0] == '\0' && !jobstate_is_no_agent(rows[i].message)))
			continue;
		if (want[i][0] != '\0' && rows[i].message[0] != '\0' &&
		    !jobstate_is_no_agent(rows[i].message))
			continue; /* a message of its own (none today): left alone */
		{
			struct job_state_row js = {0};
			int r = t.ops->tx_job_lock(t.tx, rows[i].id, &js, err);

			if (r == 0 && js.state == JOB_QUEUED) {
				free(js.message);
				js.message = xstrdup(want[i]);
				r = t.ops->tx_job_write(t.tx, &js, err);
				changed++;
			}
			job_state_row_release(&js);
			if (r < 0)
				goto fail;
		}
	}
	/* Each pipeline once: its first unrunnable job's message, or none. */
	for (size_t i = 0; i < n; i++) {
		char *pm = NULL;
		int seen = 0;

		for (size_t k = 0; k < i && !seen; k++)
			seen = rows[k].pipeline_id == rows[i].pipeline_id;
		if (seen || !jobstate_pipeline_msg_ours(rows[i].pipeline_message))
			continue;
		for (size_t k = i; k < n && pm == NULL; k++)
			if (rows[k].pipeline_id == rows[i].pipeline_id && want[k][0] != '\0')
				pm = xasprintf("job %s (%s): %s", rows[k].name, rows[k].target, want[k]);
		if (strcmp(pm ? pm : "", rows[i].pipeline_message) != 0) {
			written++;
			if (t.ops->tx_pipeline_set_message(t.tx, rows[i].pipeline_id, pm ? pm : "", err) <
			    0) {
				free(pm);
				goto fail;
			}
		}
		free(pm);
	}
	for (size_t i = 0; i < n; i++)
		free(want[i]);
	free(want);
	job_claimables_free(rows, n);
	buf_release(&why);
	/* Nothing changed (the usual pass): no commit, so no wake-up of every
	 * server's long polls. */
	if (changed == 0 && written == 0) {
		jobstate_rollback(&t);
		return 0;
	}
	if (jobstate_commit(&t, err) < 0)
		return -1;
	*changed_out = changed;
	return 0;
fail:
	for (size_t i = 0; want != NULL && i < n; i++)
		free(want[i]);
	free(want);
	job_claimables_free(rows, n);
	buf_release(&why);
	jobstate_rollback(&t);
	return -1;
}
