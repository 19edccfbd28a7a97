#include "agent/job.h"
#include "common/units.h"
#include "common/redact.h"
#include "agent/crosstoml.h"
#include "agent/targets.h"
#include "common/recipe.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/checkout_helper.h"
#include "agent/artifact.h"
#include "agent/deployer.h"
#include "agent/verifier.h"
#include "agent/checkout.h"
#include "common/gitsub.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/logframe.h"
#include "common/mask.h"
#include "agent/sandbox.h"
#include "agent/services.h"
#include "common/proc.h"
#include "common/runner.h"

/* A full chunk is sent at once: 512 KiB keeps a 100 MB log at ~200 posts
 * (64 KiB made it 1,500 round trips) and its frame, with at most
 * JOB_FRAME_EVENTS_MAX time marks, under the server's 1 MiB body cap. */
#define JOB_CHUNK_BYTES       (512 * 1024)
#define JOB_READ_BYTES        (64 * 1024) /* one read of a step's output: a whole pipe buffer */
#define JOB_CHUNK_DELAY_NS    (50ull * 1000 * 1000)
#define JOB_TICK_MS           100
#define JOB_BACKLOG_MAX       (1024 * 1024) /* stop reading the step while this much waits to be sent */
#define JOB_GRACE_MS          5000
#define JOB_DRAIN_NS          (1000ull * 1000 * 1000)
#define JOB_UPLOAD_TRIES      8
#define JOB_DEFAULT_TIMEOUT_S 3600
#define JOB_DEFAULT_LEASE_S   30
#define JOB_DEFAULT_LOG_CAP   (64ull * 1024 * 1024)
#define JOB_HB_SLACK_MS       10000 /* a beat's HTTP timeout past its long poll */
#define JOB_HB_END_MS         500   /* a finished job's last beat: its answer waited for this long */
#define JOB_FRAME_EVENTS_MAX  4096  /* events in one framed chunk (the server takes LOGFRAME_EVENTS_MAX) */

/* ---- spec ---- */

static int job_spec_is_old_default(const char *name, size_t n)
{
	char old[32];

	snprintf(old, sizeof(old), "step %zu", n);
	return strcmp(name, old) == 0;
}

static int job_spec_str(const json_t *o, const char *key, int required, char **out, struct err *err)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	if (v == NULL || json_is_null(v)) {
		if (required)
			return err_set(err, ERR_INVAL, "job spec: missing %s", key);
		*out = xstrdup("");
		return 0;
	}
	if (!json_is_string(v))
		return err_set(err, ERR_INVAL, "job spec: %s is not a string", key);
	*out = xstrndup(json_string_value(v), json_string_length(v));
	if (strlen(*out) != json_string_length(v))
		return err_set(err, ERR_INVAL, "job spec: %s holds a NUL byte", key);
	return 0;
}

static int job_spec_int(const json_t *o, const char *key, int required, json_int_t def, json_int_t *out,
                        struct err *err)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	if (v == NULL || json_is_null(v)) {
		if (required)
			return err_set(err, ERR_INVAL, "job spec: missing %s", key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return err_set(err, ERR_INVAL, "job spec: %s is not a non-negative integer", key);
	*out = json_integer_value(v);
	return 0;
}

static int job_spec_strv(const json_t *o, const char *key, struct strv *out, struct err *err)
{
	const json_t *a = json_object_get(o, key); /* borrowed */
	const json_t *v;                           /* borrowed */
	size_t i;

	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return err_set(err, ERR_INVAL, "job spec: %s is not an array", key);
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return err_set(err, ERR_INVAL, "job spec: %s[%zu] is not a string", key, i);
		strv_push(out, json_string_value(v));
	}
	return 0;
}

static int job_spec_is_commit(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 40;
}

/* The claim's "inputs" (absent from older servers). */
static int job_spec_inputs(const json_t *arr, struct job_spec *s, struct err *err)
{
	const json_t *o; /* borrowed */
	size_t i;

	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return err_set(err, ERR_INVAL, "job spec: inputs is not an array");
	s->inputs = xcalloc(json_array_size(arr) + 1, sizeof(*s->inputs));
	json_array_foreach(arr, i, o)
	{
		struct artifact_input *in = &s->inputs[i];
		char *sha = NULL, *mode = NULL;
		json_int_t v;
		int bad;

		s->n_inputs = i + 1;
		if (!json_is_object(o))
			return err_set(err, ERR_INVAL, "job spec: inputs[%zu] is not an object", i);
		if (job_spec_int(o, "job_id", 1, 0, &v, err) < 0)
			return -1;
		in->job_id = v;
		if (job_spec_int(o, "size", 0, 0, &v, err) < 0)
			return -1;
		in->size_bytes = v > 0 ? (uint64_t)v : 0;
		if (job_spec_str(o, "job", 0, &in->job, err) < 0 ||
		    job_spec_str(o, "name", 1, &in->name, err) < 0 ||
		    job_spec_str(o, "sha256", 1, &sha, err) < 0)
			return -1;
		if (json_is_string(json_object_get(o, "mode")))
			mode = xstrdup(json_string_value(json_object_get(o, "mode")));
		in->mode = mode != NULL && strcmp(mode, "0755") == 0 ? 0755 : 0644;
		bad = !crypto_is_sha256_hex(sha);
		snprintf(in->sha256, sizeof(in->sha256), "%s", sha);
		free(sha);
		free(mode);
		if (bad)
			return err_set(err, ERR_INVAL, "job spec: inputs[%zu].sha256 is not 64 hex", i);
		if (artifact_name_check(in->name, strlen(in->name), err) < 0)
			return -1;
	}
	return 0;
}

/* A path on the server (what repo.fetch and a submodule's fetch hold). */
static int job_spec_is_server_path(const char *p)
{
	return p[0] == '/' && p[1] != '/' && strpbrk(p, " \t\r\n") == NULL;
}

static int job_spec_submodules(const json_t *arr, struct job_spec *s, struct err *err)
{
	const json_t *o; /* borrowed */
	size_t i;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return err_set(err, ERR_INVAL, "job spec: submodules is not an array");
	s->submodules = xcalloc(json_array_size(arr) + 1, sizeof(*s->submodules));
	json_array_foreach(arr, i, o)
	{
		struct job_submodule *m = &s->submodules[i];

		if (!json_is_object(o))
			return err_set(err, ERR_INVAL, "job spec: submodules[%zu] is not an object", i);
		s->n_submodules = i + 1;
		if (job_spec_str(o, "path", 1, &m->path, err) < 0 ||
		    job_spec_str(o, "name", 0, &m->name, err) < 0 ||
		    job_spec_str(o, "repo", 1, &m->repo, err) < 0 ||
		    job_spec_str(o, "url", 1, &m->url, err) < 0 ||
		    job_spec_str(o, "fetch", 1, &m->fetch, err) < 0 ||
		    job_spec_str(o, "commit", 1, &m->commit, err) < 0)
			return -1;
		/* The path is the repository's text: checked here again, the
		 * agent writes nowhere a spec could steer it outside the
		 * workspace. */
		if (!gitsub_path_ok(m->path))
			return err_set(err, ERR_INVAL,
			               "job spec: submodules[%zu].path is not inside the workspace", i);
		if (!job_spec_is_commit(m->commit) || !job_spec_is_server_path(m->fetch))
			return err_set(err, ERR_INVAL, "job spec: submodules[%zu] has a bad commit or fetch",
			               i);
	}
	return 0;
}

int job_spec_parse(const json_t *spec, struct job_spec **out, struct err *err)
{
	struct job_spec *s = xcalloc(1, sizeof(*s));
	const json_t *repo, *steps, *st; /* borrowed */
	json_int_t v;
	size_t i;
	int rc = -1;

	if (!json_is_object(spec)) {
		err_set(err, ERR_INVAL, "job spec is not an object");
		goto out;
	}
	if (job_spec_int(spec, "id", 1, 0, &v, err) < 0)
		goto out;
	s->id = v;
	if (job_spec_int(spec, "attempt", 1, 0, &v, err) < 0)
		goto out;
	s->attempt = v;
	if (job_spec_int(spec, "pipeline_id", 0, 0, &v, err) < 0)
		goto out;
	s->pipeline_id = v;
	repo = json_object_get(spec, "repo");
	if (!json_is_object(repo)) {
		err_set(err, ERR_INVAL, "job spec: missing repo");
		goto out;
	}
	if (job_spec_str(repo, "name", 1, &s->repo_name, err) < 0 ||
	    job_spec_str(repo, "url", 1, &s->repo_url, err) < 0 ||
	    job_spec_str(repo, "fetch", 0, &s->repo_fetch, err) < 0 ||
	    job_spec_str(spec, "ref", 0, &s->ref, err) < 0 ||
	    job_spec_str(spec, "commit", 1, &s->commit, err) < 0 ||
	    job_spec_str(spec, "target", 0, &s->target, err) < 0)
		goto out;
	if (s->repo_fetch[0] != '\0' && (s->repo_fetch[0] != '/' || s->repo_fetch[1] == '/' ||
	                                 strpbrk(s->repo_fetch, " \t\r\n") != NULL)) {
		err_set(err, ERR_INVAL, "job spec: repo.fetch is not a path on the server");
		goto out;
	}
	if (!job_spec_is_commit(s->commit)) {
		err_set(err, ERR_INVAL, "job spec: commit is not 40 lowercase hex");
		goto out;
	}
	if (s->target[0] == '\0') {
		free(s->target);
		s->target = xstrdup("host");
	}
	steps = json_object_get(spec, "steps");
	if (steps != NULL && !json_is_array(steps)) {
		err_set(err, ERR_INVAL, "job spec: steps is not an array");
		goto out;
	}
	s->steps = xcalloc(json_array_size(steps) + 1, sizeof(*s->steps));
	json_array_foreach(steps, i, st)
	{
		struct job_step *js = &s->steps[i];
		if (!json_is_object(st)) {
			err_set(err, ERR_INVAL, "job spec: steps[%zu] is not an object", i);
			goto out;
		}
		s->n_steps = i + 1;
		if (job_spec_str(st, "name", 0, &js->name, err) < 0 ||
		    job_spec_str(st, "run", 1, &js->run, err) < 0 ||
		    job_spec_int(st, "timeout_s", 0, 0, &v, err) < 0)
			goto out;
		js->timeout_s = v > 0 ? (long)v : 0;
		if (json_is_string(json_object_get(st, "on"))) {
			const char *on = json_string_value(json_object_get(st, "on"));

			if (strcmp(on, "failure") == 0)
				js->on = JOB_STEP_ON_FAILURE;
			else if (strcmp(on, "always") == 0)
				js->on = JOB_STEP_ON_ALWAYS;
			else if (strcmp(on, "success") != 0) {
				err_set(err, ERR_INVAL,
				        "job spec: steps[%zu].on is not success, failure or always", i);
				goto out;
			}
		}
		/* Messages say "step %s": an unnamed step is its number. A server
		 * older than that convention names it "step N"; drop the prefix. */
		if (js->name[0] == '\0' || job_spec_is_old_default(js->name, i + 1)) {
			free(js->name);
			js->name = xasprintf("%zu", i + 1);
		}
	}
	if (job_spec_strv(spec, "env", &s->env, err) < 0 ||
	    job_spec_strv(spec, "artifacts", &s->artifacts, err) < 0 ||
	    job_spec_strv(spec, "secrets", &s->secrets, err) < 0 ||
	    job_spec_strv(spec, "mask", &s->mask, err) < 0 ||
	    job_spec_strv(spec, "tools", &s->tools, err) < 0)
		goto out;
	for (i = 0; i < s->tools.n; i++) {
		if (!recipe_package_name_ok(s->tools.v[i])) {
			err_set(err, ERR_INVAL, "job spec: tools[%zu] is not a Debian package name", i);
			goto out;
		}
	}
	for (i = 0; i < s->secrets.n; i++) {
		if (strchr(s->secrets.v[i], '=') == NULL || s->secrets.v[i][0] == '=') {
			err_set(err, ERR_INVAL, "job spec: secrets[%zu] is not KEY=VALUE", i);
			goto out;
		}
	}
	for (i = 0; i < s->env.n; i++) {
		if (strchr(s->env.v[i], '=') == NULL || s->env.v[i][0] == '=') {
			err_set(err, ERR_INVAL, "job spec: env[%zu] is not KEY=VALUE", i);
			goto out;
		}
	}
	s->network = json_is_true(json_object_get(spec, "network"));
	if (json_is_string(json_object_get(spec, "mode")))
		s->mode = xstrdup(json_string_value(json_object_get(spec, "mode")));
	if (job_spec_int(spec, "timeout_s", 0, 0, &v, err) < 0)
		goto out;
	s->timeout_s = v > 0 ? (long)v : JOB_DEFAULT_TIMEOUT_S;
	if (job_spec_int(spec, "lease_s", 0, 0, &v, err) < 0)
		goto out;
	s->lease_s = v > 0 ? (long)v : JOB_DEFAULT_LEASE_S;
	if (job_spec_int(spec, "log_cap_bytes", 0, 0, &v, err) < 0)
		goto out;
	s->log_cap_bytes = v > 0 ? (uint64_t)v : JOB_DEFAULT_LOG_CAP;
	if (job_spec_inputs(json_object_get(spec, "inputs"), s, err) < 0)
		goto out;
	if (services_spec_parse(json_object_get(spec, "services"), &s->services, &s->n_services, err) < 0)
		goto out;
	if (job_spec_submodules(json_object_get(spec, "submodules"), s, err) < 0 ||
	    job_spec_str(spec, "submodule_error", 0, &s->submodule_error, err) < 0)
		goto out;
	if (json_is_string(json_object_get(spec, "kind")) &&
	    strcmp(json_string_value(json_object_get(spec, "kind")), "deploy") == 0 &&
	    deployer_spec_parse(json_object_get(spec, "deploy"), &s->deploy, err) < 0)
		goto out;
	*out = s;
	s = NULL;
	rc = 0;
out:
	job_spec_free(s);
	return rc;
}

void job_spec_free(struct job_spec *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_steps; i++) {
		free(s->steps[i].name);
		free(s->steps[i].run);
	}
	free(s->steps);
	free(s->repo_name);
	free(s->repo_url);
	free(s->repo_fetch);
	free(s->ref);
	free(s->commit);
	free(s->target);
	free(s->mode);
	strv_release(&s->env);
	strv_release(&s->tools);
	strv_release(&s->artifacts);
	strv_release(&s->secrets);
	strv_release(&s->mask);
	deployer_spec_free(s->deploy);
	services_spec_free(s->services, s->n_services);
	for (i = 0; i < s->n_inputs; i++) {
		free(s->inputs[i].job);
		free(s->inputs[i].name);
	}
	free(s->inputs);
	for (i = 0; i < s->n_submodules; i++) {
		free(s->submodules[i].path);
		free(s->submodules[i].name);
		free(s->submodules[i].repo);
		free(s->submodules[i].url);
		free(s->submodules[i].fetch);
		free(s->submodules[i].commit);
	}
	free(s->submodules);
	free(s->submodule_error);
	free(s);
}

/* ---- heartbeat thread ---- */

/* The server no longer counts this attempt as ours: 409 (requeued, or
 * finished), 403 (requeued and claimed by another agent), 401 (our token
 * revoked by `anvil agent rm`, or by a registration under our name). */
static int job_attempt_gone(enum err_code code)
{
	return code == ERR_CONFLICT || code == ERR_FORBIDDEN || code == ERR_AUTH;
}

struct job_hb {
	pthread_t th;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int quit;  /* under mu */
	int ended; /* under mu: the thread is about to return */
	atomic_int cancel;
	atomic_int lost;
	volatile sig_atomic_t abort_http; /* set by job_hb_stop: ends a beat's long poll */
	struct httpc *http;               /* borrowed (agent's hb_http); used by the heartbeat thread only */
	int64_t job_id;
	int64_t attempt;
	long interval_ms;
};

/* One heartbeat, which is also a long poll for a cancel: the server answers
 * the moment a cancel is asked for, else after wait_ms (a server that does
 * not wait answers at once). Returns 0 when answered. */
static int job_hb_beat(struct job_hb *hb, long wait_ms)
{
	json_t *body = NULL, *ans = NULL; /* owned */
	char path[128];
	struct err err = {0};
	int rc = -1;

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/heartbeat", hb->job_id);
	body = json_pack("{s:I, s:I}", "attempt", (json_int_t)hb->attempt, "wait_ms", (json_int_t)wait_ms);
	if (httpc_json(hb->http, "POST", path, body, wait_ms + JOB_HB_SLACK_MS, &ans, &err) < 0) {
		if (job_attempt_gone(err.code)) {
			log_warnx("job=%" PRId64 " lease lost: %s", hb->job_id, err.msg);
			atomic_store(&hb->lost, 1);
			rc = 0;
		} else if (hb->abort_http) {
			/* job_hb_stop ended the long poll: the job is over, not the beat failed. */
			log_debug("job=%" PRId64 " heartbeat stopped", hb->job_id);
		} else {
			log_warnx("job=%" PRId64 " heartbeat failed: %s", hb->job_id, err.msg);
		}
		goto out;
	}
	if (json_is_true(json_object_get(ans, "cancel")))
		atomic_store(&hb->cancel, 1);
	rc = 0;
out:
	json_decref(ans);
	json_decref(body);
	return rc;
}

static void *job_hb_main(void *arg)
{
	struct job_hb *hb = arg;
	long wait_ms = 0; /* the first beat at once: its long poll is what hears a cancel */
	struct timespec ts;

	pthread_mutex_lock(&hb->mu);
	while (!hb->quit && !atomic_load(&hb->lost)) {
		uint64_t t0;
		long took_ms;

		units_deadline_ts(&ts, CLOCK_MONOTONIC, wait_ms);
		while (!hb->quit && pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) != ETIMEDOUT)
			;
		if (hb->quit)
			break;
		pthread_mutex_unlock(&hb->mu);
		t0 = agent_now_ns();
		if (job_hb_beat(hb, hb->interval_ms) == 0) {
			/* The server held the beat until a cancel or wait_ms: beat
			 * again at once. Answered early (a cancel, or a server that
			 * does not wait): the rest of the interval first. */
			took_ms = (long)((agent_now_ns() - t0) / 1000000ull);
			wait_ms = atomic_load(&hb->cancel)     ? hb->interval_ms
			          : took_ms >= hb->interval_ms ? 0
			                                       : hb->interval_ms - took_ms;
		} else {
			/* A failed beat is retried sooner: the lease allows about two misses. */
			wait_ms = hb->interval_ms < 1000 ? hb->interval_ms : 1000;
		}
		pthread_mutex_lock(&hb->mu);
	}
	hb->ended = 1;
	pthread_cond_broadcast(&hb->cv);
	pthread_mutex_unlock(&hb->mu);
	return NULL;
}

static int job_hb_start(struct job_hb *hb, struct agent *ag, const struct job_spec *spec, struct err *err)
{
	pthread_condattr_t ca;
	int e;

	if (ag->hb_http == NULL)
		ag->hb_http = httpc_new_flags(ag->opt.server_url, ag->token, HTTPC_LIGHT);
	hb->http = ag->hb_http;
	hb->abort_http = 0;
	httpc_set_abort_flag(hb->http, &hb->abort_http);
	hb->job_id = spec->id;
	hb->attempt = spec->attempt;
	hb->interval_ms = spec->lease_s * 1000 / 3;
	if (hb->interval_ms < 100)
		hb->interval_ms = 100;
	atomic_init(&hb->cancel, 0);
	atomic_init(&hb->lost, 0);
	pthread_mutex_init(&hb->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hb->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((e = pthread_create(&hb->th, NULL, job_hb_main, hb)) != 0) {
		errno = e;
		return err_errno(err, "heartbeat thread");
	}
	hb->started = 1;
	return 0;
}

/* Ends the heartbeat thread. After a finish the server has taken, the beat
 * in flight is answered at once (the job is no longer running): waited for
 * up to JOB_HB_END_MS, so its connection stays open for the next job's
 * beats; else (or past that) the long poll is aborted. */
static void job_hb_stop(struct job_hb *hb, int finished)
{
	if (hb->started) {
		struct timespec ts;

		units_deadline_ts(&ts, CLOCK_MONOTONIC, finished ? JOB_HB_END_MS : 0);
		pthread_mutex_lock(&hb->mu);
		hb->quit = 1;
		pthread_cond_broadcast(&hb->cv);
		while (finished && !hb->ended && pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) != ETIMEDOUT)
			;
		if (!hb->ended)
			hb->abort_http = 1; /* a beat's long poll ends within about a second */
		pthread_mutex_unlock(&hb->mu);
		pthread_join(hb->th, NULL);
		hb->started = 0;
		pthread_cond_destroy(&hb->cv);
		pthread_mutex_destroy(&hb->mu);
	}
	if (hb->http != NULL)
		httpc_set_abort_flag(hb->http, NULL); /* the flag lives in this job's context */
	hb->http = NULL;
}

/* ---- one job ---- */

enum job_intr {
	JOB_INTR_NONE = 0,
	JOB_INTR_CANCEL,
	JOB_INTR_TIMEOUT,
	JOB_INTR_LOST,
	JOB_INTR_STOP,
	JOB_INTR_LIMIT,        /* a sandbox limit: limit_msg says which */
	JOB_INTR_STEP_TIMEOUT, /* the step's own timeout: the step failed, the job goes on */
};

struct job_ctx {
	struct agent *ag;
	const struct job_spec *spec;
	struct job_hb hb;
	uint64_t deadline_ns;
	uint64_t step_deadline_ns; /* the running step's own timeout; 0: none */
	char *job_dir;             /* owned; <work>/jobs/<id>, or a standby's (job_link names it) */
	char *job_link;            /* owned; <work>/jobs/<id> when it is a link to job_dir; or NULL */
	char *src_dir;             /* owned; <job_dir>/src */
	/* the log stream */
	struct buf chunk;        /* bytes not yet accepted by the server */
	size_t inflight_bytes;   /* > 0: the head of chunk was sent as seq and must be resent as is */
	uint64_t chunk_first_ns; /* when the oldest unsent byte arrived */
	int64_t seq;
	uint64_t sent_bytes;
	int log_off;      /* server truncated, cap passed, or refused: drain and drop */
	struct mask mask; /* secret values → ***, before anything is queued for sending */
	/* Step boundaries and time marks (common/logframe.h): each an encoded
	 * record that goes into the frame at pos, a place in chunk. */
	struct job_ev {
		size_t pos;
		struct buf rec;
	} * ev;
	size_t n_ev, cap_ev;
	struct buf frame;           /* the framed chunk in flight (resent as is) */
	size_t inflight_ev;         /* events in it */
	int64_t last_mark_ms;       /* the last time mark's; 0: none */
	int mark_due;               /* a line ended since the last time mark */
	int64_t step_lines;         /* newlines queued since the running step started */
	struct sandbox_job *sb;     /* owned; NULL for a deploy job */
	char limit_msg[160];        /* the limit a step ran into; "" none */
	int netns_fd;               /* owned; > 0: the job's own network namespace (services:) */
	struct sandbox_job *svc_sb; /* owned; the services' cgroup, NULL: none */
	struct services *svcs;      /* owned; the running services, NULL: none */
};

static enum job_intr job_interrupted(struct job_ctx *jc)
{
	if (*jc->ag->stop)
		return JOB_INTR_STOP;
	if (atomic_load(&jc->hb.lost))
		return JOB_INTR_LOST;
	if (atomic_load(&jc->hb.cancel))
		return JOB_INTR_CANCEL;
	if (agent_now_ns() >= jc->deadline_ns)
		return JOB_INTR_TIMEOUT;
	if (jc->step_deadline_ns != 0 && agent_now_ns() >= jc->step_deadline_ns)
		return JOB_INTR_STEP_TIMEOUT;
	if (jc->limit_msg[0] == '\0' && jc->sb != NULL)
		sandbox_job_disk_over(jc->sb, jc->src_dir, 0, jc->limit_msg, sizeof(jc->limit_msg));
	if (jc->limit_msg[0] != '\0')
		return JOB_INTR_LIMIT;
	return JOB_INTR_NONE;
}

static int job_should_interrupt(void *arg)
{
	return job_interrupted(arg) != JOB_INTR_NONE;
}

static int job_should_abandon(void *arg)
{
	enum job_intr i = job_interrupted(arg);

	return i == JOB_INTR_STOP || i == JOB_INTR_LOST;
}

/* Sends the chunk's first n bytes as the current seq until the server has
 * them; the same seq and bytes on every try, so a lost answer never
 * duplicates a line. -1 when interrupted first (bytes kept for a resend). */
static int job_log_send(struct job_ctx *jc, size_t n, int final)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	long delay_ms = 0;
	char path[160];

	snprintf(path, sizeof(path),
	         "/api/v1/agents/jobs/%" PRId64 "/log?frame=1&attempt=%" PRId64 "&seq=%" PRId64, jc->spec->id,
	         jc->spec->attempt, jc->seq);
	req.method = "POST";
	req.path = path;
	(void)n;
	req.body = jc->frame.data != NULL ? jc->frame.data : "";
	req.body_len = jc->frame.len;
	req.content_type = "application/octet-stream";
	req.timeout_ms = 30000;
	for (;;) {
		struct httpc_resp resp = HTTPC_RESP_INIT;
		struct err err = {0};
		json_t *ans = NULL; /* owned */
		long status = 0;

		if (httpc_do(jc->ag->http, &req, &resp, &err) == 0) {
			status = resp.status;
			if (status >= 200 && status < 300) {
				ans = json_loadb(resp.body.data != NULL ? resp.body.data : "", resp.body.len,
				                 0, NULL);
				if (json_is_true(json_object_get(ans, "truncated")))
					jc->log_off = 1;
				json_decref(ans);
			}
		} else {
			log_debug("job=%" PRId64 " log seq=%" PRId64 " not sent: %s", jc->spec->id, jc->seq,
			          err.msg);
		}
		httpc_resp_release(&resp);
		if (status >= 200 && status < 300) {
			jc->seq++;
			jc->sent_bytes += n;
			if (jc->sent_bytes > jc->spec->log_cap_bytes)
				jc->log_off = 1;
			return 0;
		}
		if (job_attempt_gone(httpc_err_code(status))) {
			atomic_store(&jc->hb.lost, 1);
			return -1;
		}
		if (status != 0 && status < 500) {
			log_warnx("job=%" PRId64
			          " log chunk refused with HTTP %ld; dropping the rest of the log",
			          jc->spec->id, status);
			jc->log_off = 1;
			return 0;
		}
		delay_ms = agent_backoff_next(delay_ms);
		if (agent_sleep_ms(jc->ag, delay_ms, final ? job_should_abandon : job_should_interrupt, jc) <
		    0)
			return -1;
	}
}

/* Sends what is due (everything when force): full 64 KiB chunks at once, a
 * partial one 50 ms after its first byte. -1 when interrupted. */
/* Frames the chunk's first n log bytes (fewer when too many events fall
 * inside) with the events among them into jc->frame; returns the bytes
 * taken. */
static size_t job_frame_build(struct job_ctx *jc, size_t n)
{
	size_t i, at = 0;

	buf_reset(&jc->frame);
	for (i = 0; i < jc->n_ev && jc->ev[i].pos <= n; i++) {
		if (i == JOB_FRAME_EVENTS_MAX) {
			n = jc->ev[i].pos;
			break;
		}
		logframe_put_log(&jc->frame, jc->chunk.data + at, jc->ev[i].pos - at);
		buf_append(&jc->frame, jc->ev[i].rec.data, jc->ev[i].rec.len);
		at = jc->ev[i].pos;
	}
	jc->inflight_ev = i;
	logframe_put_log(&jc->frame, jc->chunk.data + at, n - at);
	return n;
}

/* Drops the sent frame's bytes and events from the queue. */
static void job_frame_sent(struct job_ctx *jc, size_t n)
{
	size_t i;

	for (i = 0; i < jc->inflight_ev; i++)
		buf_release(&jc->ev[i].rec);
	memmove(jc->ev, jc->ev + jc->inflight_ev, (jc->n_ev - jc->inflight_ev) * sizeof(*jc->ev));
	jc->n_ev -= jc->inflight_ev;
	for (i = 0; i < jc->n_ev; i++)
		jc->ev[i].pos -= n;
	jc->inflight_ev = 0;
	if (n > 0)
		memmove(jc->chunk.data, jc->chunk.data + n, jc->chunk.len - n);
	jc->chunk.len -= n;
	if (jc->chunk.data != NULL)
		jc->chunk.data[jc->chunk.len] = '\0';
}

static int job_log_flush(struct job_ctx *jc, int force, int final)
{
	while (!jc->log_off && (jc->chunk.len > 0 || jc->n_ev > 0)) {
		size_t n;
		if (!force && jc->inflight_bytes == 0 && jc->frame.len == 0 &&
		    jc->chunk.len < JOB_CHUNK_BYTES &&
		    agent_now_ns() < jc->chunk_first_ns + JOB_CHUNK_DELAY_NS)
			break;
		if (jc->frame.len == 0) /* a new chunk; else the one in flight again */
			jc->inflight_bytes = job_frame_build(
			    jc, jc->chunk.len < JOB_CHUNK_BYTES ? jc->chunk.len : JOB_CHUNK_BYTES);
		n = jc->inflight_bytes;
		if (job_log_send(jc, n, final) < 0)
			return -1;
		job_frame_sent(jc, n);
		jc->inflight_bytes = 0;
		buf_reset(&jc->frame);
		jc->chunk_first_ns = agent_now_ns();
	}
	if (jc->log_off) {
		jc->chunk.len = 0;
		if (jc->chunk.data != NULL)
			jc->chunk.data[0] = '\0';
		jc->inflight_bytes = 0;
		jc->inflight_ev = jc->n_ev;
		job_frame_sent(jc, 0);
		buf_reset(&jc->frame);
	}
	return 0;
}

static int64_t job_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queues an encoded event record at the chunk's current end. */
static void job_event(struct job_ctx *jc, struct buf *rec)
{
	if (jc->log_off) {
		buf_release(rec);
		return;
	}
	if (jc->chunk.len == 0 && jc->n_ev == 0)
		jc->chunk_first_ns = agent_now_ns();
	if (jc->n_ev == jc->cap_ev) {
		jc->cap_ev = jc->cap_ev ? jc->cap_ev * 2 : 16;
		jc->ev = xrealloc(jc->ev, jc->cap_ev * sizeof(*jc->ev));
	}
	jc->ev[jc->n_ev].pos = jc->chunk.len;
	jc->ev[jc->n_ev].rec = *rec;
	jc->n_ev++;
	*rec = (struct buf)BUF_INIT;
}

/* A time mark before the bytes that arrive now: once per ms and only when
 * a line ended since the last one (a mark per line at most). */
static void job_time_mark(struct job_ctx *jc)
{
	struct buf rec = BUF_INIT;
	int64_t now = job_unix_ms();

	if (jc->last_mark_ms != 0 && (!jc->mark_due || now == jc->last_mark_ms))
		return;
	logframe_put_time(&rec, now);
	job_event(jc, &rec);
	jc->last_mark_ms = now;
	jc->mark_due = 0;
}

/* A step's name or command as the log shows it: secrets masked. */
static char *job_masked(struct job_ctx *jc, const char *s)
{
	struct mask m;
	struct buf out = BUF_INIT;

	mask_init(&m, (const char *const *)jc->mask.secrets.v, jc->mask.secrets.n);
	mask_feed(&m, s, strlen(s), &out);
	mask_flush(&m, &out);
	mask_release(&m);
	return out.data != NULL ? buf_detach(&out, NULL) : xstrdup("");
}

static void job_step_start(struct job_ctx *jc, size_t index, const struct job_step *st)
{
	struct buf rec = BUF_INIT;
	char *name = job_masked(jc, st->name), *cmd = job_masked(jc, st->run);

	logframe_put_step_start(&rec, (int)index, name, cmd, job_unix_ms());
	job_event(jc, &rec);
	jc->last_mark_ms = 0; /* each step's first line gets its time */
	jc->step_lines = 0;
	free(name);
	free(cmd);
}

static void job_log_unmask_tail(struct job_ctx *jc);

static void job_step_end(struct job_ctx *jc, size_t index, const char *state, int have_exit, int code)
{
	struct buf rec = BUF_INIT;

	job_log_unmask_tail(jc);
	logframe_put_step_end(&rec, (int)index, state, have_exit, code, jc->step_lines, job_unix_ms());
	job_event(jc, &rec);
}

static void job_time_mark(struct job_ctx *jc);

/* A plain counting loop, not a memchr per line: `yes` prints a line every
 * two bytes, and one call per line cost more than the rest of the path. */
static int64_t job_newlines(const char *p, size_t n)
{
	int64_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

static void job_log_write(struct job_ctx *jc, const void *p, size_t n)
{
	size_t before;

	if (jc->log_off || n == 0)
		return;
	job_time_mark(jc);
	if (jc->chunk.len == 0)
		jc->chunk_first_ns = agent_now_ns();
	before = jc->chunk.len;
	mask_feed(&jc->mask, p, n, &jc->chunk);
	jc->step_lines += job_newlines(jc->chunk.data + before, jc->chunk.len - before);
	if (memchr(p, '\n', n) != NULL)
		jc->mark_due = 1;
}

/* The tail the mask held back (a secret may have been split across two
 * reads): released at a step's end. */
static void job_log_unmask_tail(struct job_ctx *jc)
{
	size_t before;

	if (jc->log_off || mask_pending(&jc->mask) == 0)
		return;
	if (jc->chunk.len == 0)
		jc->chunk_first_ns = agent_now_ns();
	before = jc->chunk.len;
	mask_flush(&jc->mask, &jc->chunk);
	jc->step_lines += job_newlines(jc->chunk.data + before, jc->chunk.len - before);
}

/* A line anvil itself writes into the job's log ("[anvil] ..."), echoed
 * (escaped) to the agent's own log. */
static void job_say(struct job_ctx *jc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_say(struct job_ctx *jc, const char *fmt, ...)
{
	char line[1024], esc[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	log_info("job=%" PRId64 " %s", jc->spec->id, log_escape(esc, sizeof(esc), line));
	job_log_write(jc, "[anvil] ", 8);
	job_log_write(jc, line, strlen(line));
	job_log_write(jc, "\n", 1);
}

static int job_tick_ms(const struct job_ctx *jc)
{
	uint64_t now, due;

	if (jc->log_off || jc->chunk.len == 0)
		return JOB_TICK_MS;
	if (jc->chunk.len >= JOB_CHUNK_BYTES)
		return 0;
	now = agent_now_ns();
	due = jc->chunk_first_ns + JOB_CHUNK_DELAY_NS;
	if (now >= due)
		return 0;
	return (int)((due - now) / 1000000) + 1 < JOB_TICK_MS ? (int)((due - now) / 1000000) + 1
	                                                      : JOB_TICK_MS;
}

/* The one place a job's target picks its runner: "host" runs plain
 * processes, a triple runs in bubblewrap over its rootfs (agent/targets.c).
 * Preparing the target (a rootfs or toolroot build, a Cross.toml pre-build,
 * a tools: install) stops as soon as the job is interrupted (canceled, timed
 * out, lost, agent stopping). */
static struct runner *job_runner_for(struct job_ctx *jc, const struct sandbox_job *sb,
                                     const struct job_service *svc, const struct crosstoml *ct,
                                     char **desc_out, char **warning_out, struct err *err)
{
	const struct agent *ag = jc->ag;
	const struct job_spec *spec = jc->spec;
	const struct proc_stop stop = {job_should_interrupt, jc};
	struct targets_opts to = {.recipes_dir = ag->opt.recipes_dir,
	                          .cache_dir = ag->opt.cache_dir,
	                          .work_dir = ag->opt.work_dir,
	                          .select = ag->opt.targets,
	                          .prepare = ag->opt.prepare_targets,
	                          .docker = ag->opt.docker,
	                          .sandbox = sandbox_job_runner(sb),
	                          .tools_keep = ag->opt.tools_keep > 0 ? (size_t)ag->opt.tools_keep : 0};
	struct targets_job tj = {
	    .target = spec->target,
	    .repo_name = spec->repo_name,
	    .network = spec->network,
	    .mode = spec->mode,
	    .tools = (const char *const *)spec->tools.v,
	    .n_tools = spec->tools.n,
	    .stop = &stop,
	    .netns_fd = jc->netns_fd,
	};

	if (ct != NULL) {
		tj.pre_build = (const char *const *)ct->pre_build.v;
		tj.n_pre_build = ct->pre_build.n;
		tj.image = ct->image;
	}
	if (svc != NULL && svc->packages.n > 0)
		return targets_service_runner_new(&to, &tj, (const char *const *)svc->packages.v,
		                                  svc->packages.n, NULL, desc_out, err);
	return targets_runner_new(&to, &tj, desc_out, warning_out, err);
}

/* The job's own network namespace, which its steps and services share. */
static int job_services_netns(struct job_ctx *jc, struct err *err)
{
	if (jc->ag->opt.docker != NULL && strcmp(jc->spec->target, "host") != 0)
		return err_set(err, ERR_UNAVAIL, "services need the bubblewrap runner, not --runner docker");
	return services_netns_new(&jc->netns_fd, err);
}

static void job_services_write(void *arg, const void *p, size_t n)
{
	job_log_write(arg, p, n);
}

/* Starts the spec's services, in file order, each ready before the next. */
static int job_services_start(struct job_ctx *jc, const struct crosstoml *ct, struct err *err)
{
	const struct job_spec *spec = jc->spec;
	const struct services_io io = {job_services_write, job_should_interrupt, jc};
	char *warning = NULL;

	sandbox_job_begin(&jc->ag->sandbox, spec->id, "svc", &jc->svc_sb, &warning, err);
	free(warning); /* the steps' own cgroup said it already */
	jc->svcs = services_new(jc->job_dir, &io);
	for (size_t i = 0; i < spec->n_services; i++) {
		const struct job_service *svc = &spec->services[i];
		char *desc = NULL, *warn = NULL;
		struct runner *r;

		if (svc->packages.n > 0)
			job_say(jc,
			        "service %s: %zu package(s) installed once into a derived host-arch tree, "
			        "then cached",
			        svc->name, svc->packages.n);
		job_log_flush(jc, 1, 0);
		r = job_runner_for(jc, jc->svc_sb, svc, ct, &desc, &warn, err);
		free(warn);
		if (r == NULL) {
			free(desc);
			return err_wrap(err, "service %s", svc->name);
		}
		job_say(jc, "service %s: %s (%s)", svc->name, svc->command, desc);
		free(desc);
		job_log_flush(jc, 1, 0);
		if (services_start(jc->svcs, svc, r, jc->src_dir, err) < 0)
			return -1;
		job_log_flush(jc, 1, 0);
	}
	return 0;
}

/* Every service's process tree killed (then its cgroup), before the job
 * reports its end; show_logs: their logs' tails into the job log first. */
static void job_services_stop(struct job_ctx *jc, int show_logs)
{
	if (jc->svcs != NULL && show_logs)
		services_show_logs(jc->svcs, 2048);
	if (jc->svcs != NULL)
		job_say(jc, "stopping the services");
	services_free(jc->svcs, JOB_GRACE_MS);
	jc->svcs = NULL;
	if (jc->svc_sb != NULL)
		sandbox_job_kill_all(jc->svc_sb);
	sandbox_job_end(jc->svc_sb);
	jc->svc_sb = NULL;
	if (jc->netns_fd > 0)
		close(jc->netns_fd);
	jc->netns_fd = 0;
}

/* Cross.toml at the root of the checkout, for a target job: NULL in *out
 * when there is none (or the job is for the host). */
static int job_crosstoml(const char *src_dir, const char *target, struct crosstoml **out, struct err *err)
{
	char *path = xasprintf("%s/Cross.toml", src_dir);
	struct buf b = BUF_INIT;
	char chunk[4096];
	FILE *f = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	if (strcmp(target, "host") == 0 || (f = fopen(path, "re")) == NULL) {
		rc = 0;
		goto out;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(&b, chunk, n);
		if (b.len > CROSSTOML_MAX_BYTES)
			break;
	}
	rc = crosstoml_parse(b.data ? b.data : "", b.len, target, out, err);
out:
	if (f != NULL)
		fclose(f);
	buf_release(&b);
	free(path);
	return rc;
}

/* Cross.toml's env.passthrough: "VAR" takes the agent's own value (when it
 * has one), "VAR=value" is given as is. */
static void job_env_passthrough(struct strv *env, const struct crosstoml *ct)
{
	for (size_t i = 0; ct != NULL && i < ct->passthrough.n; i++) {
		const char *p = ct->passthrough.v[i];
		const char *v;
		if (strchr(p, '=') != NULL)
			strv_push(env, p);
		else if ((v = getenv(p)) != NULL)
			strv_pushf(env, "%s=%s", p, v);
	}
}

static int job_env_has(const struct strv *env, const char *kv)
{
	size_t klen = strcspn(kv, "="), i;

	for (i = 0; i < env->n; i++)
		if (strncmp(env->v[i], kv, klen) == 0 && env->v[i][klen] == '=')
			return 1;
	return 0;
}

/* anvil's own variables first and winning over the spec's. */
static void job_env_build(struct strv *out, const struct job_spec *spec)
{
	size_t i;

	strv_push(out, "CI=true");
	strv_push(out, "ANVIL=true");
	strv_pushf(out, "ANVIL_JOB_ID=%" PRId64, spec->id);
	strv_pushf(out, "ANVIL_ATTEMPT=%" PRId64, spec->attempt);
	strv_pushf(out, "ANVIL_PIPELINE_ID=%" PRId64, spec->pipeline_id);
	strv_pushf(out, "ANVIL_COMMIT=%s", spec->commit);
	strv_pushf(out, "ANVIL_REF=%s", spec->ref);
	strv_pushf(out, "ANVIL_TARGET=%s", spec->target);
	strv_pushf(out, "ANVIL_REPO=%s", spec->repo_name);
	/* The repository's secrets win over the pipeline file's env. */
	for (i = 0; i < spec->secrets.n; i++)
		if (!job_env_has(out, spec->secrets.v[i]))
			strv_push(out, spec->secrets.v[i]);
	for (i = 0; i < spec->env.n; i++)
		if (!job_env_has(out, spec->env.v[i]))
			strv_push(out, spec->env.v[i]);
}

/* Reads what the step still writes until EOF or a second has passed. */
static void job_drain(struct job_ctx *jc, int fd)
{
	uint64_t until = agent_now_ns() + JOB_DRAIN_NS;
	char rbuf[JOB_READ_BYTES];

	while (fd >= 0 && agent_now_ns() < until) {
		struct pollfd pf = {fd, POLLIN, 0};
		ssize_t got;
		if (poll(&pf, 1, JOB_TICK_MS) <= 0)
			continue;
		got = read(fd, rbuf, sizeof(rbuf));
		if (got > 0)
			job_log_write(jc, rbuf, (size_t)got);
		else if (got == 0 || (errno != EINTR && errno != EAGAIN))
			return;
	}
}

/* Runs one step, streaming its output. On return 0, either *intr_out says
 * why it was stopped (its tree killed) or *exit_code_out holds its exit
 * code. -1 with err when it could not be run. */
static int job_run_step(struct job_ctx *jc, struct runner *r, const struct job_step *st,
                        const char *const *env, struct runner_standby *standby, int *exit_code_out,
                        enum job_intr *intr_out, struct err *err)
{
	struct step_spec ss = {
	    .name = st->name, .run = st->run, .workspace = jc->src_dir, .env = env, .standby = standby};
	struct proc p;
	char rbuf[JOB_READ_BYTES];
	int eof = 0, killed = 0, rc = -1;
	uint64_t exited_ns = 0, killed_ns = 0;

	memset(&p, 0, sizeof(p));
	p.pidfd = -1;
	p.out_fd = -1;
	*intr_out = JOB_INTR_NONE;
	*exit_code_out = -1;
	job_say(jc, "step %s: %s", st->name, st->run);
	if (r->ops->start(r, &ss, &p, err) < 0)
		return -1;
	eof = p.out_fd < 0;
	for (;;) {
		struct pollfd pf[2];
		nfds_t nfds = 0;
		int out_i = -1, pid_i = -1;
		enum job_intr intr;
		uint64_t now;

		if (!eof && jc->chunk.len < JOB_BACKLOG_MAX) {
			pf[nfds] = (struct pollfd){p.out_fd, POLLIN, 0};
			out_i = (int)nfds++;
		}
		if (!p.exited && p.pidfd >= 0) {
			pf[nfds] = (struct pollfd){p.pidfd, POLLIN, 0};
			pid_i = (int)nfds++;
		}
		if (poll(pf, nfds, job_tick_ms(jc)) < 0 && errno != EINTR) {
			err_errno(err, "poll");
			goto kill;
		}
		(void)pid_i;
		if (out_i >= 0 && (pf[out_i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			ssize_t got = read(p.out_fd, rbuf, sizeof(rbuf));
			if (got > 0)
				job_log_write(jc, rbuf, (size_t)got);
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				eof = 1;
		}
		now = agent_now_ns();
		if (!p.exited) {
			if (proc_wait(&p, 0, err) < 0)
				goto kill;
			if (p.exited)
				exited_ns = now;
		}
		if (p.exited && eof)
			break;
		if (p.exited && !killed && now - exited_ns > JOB_DRAIN_NS) {
			/* The step is over but something it started still holds
			 * its output open: nothing outlives its step. */
			struct err e2 = {0};
			if (r->ops->cancel(r, &p, 0, &e2) < 0)
				log_warnx("job=%" PRId64 " kill leftovers: %s", jc->spec->id, e2.msg);
			kill(-p.pid, SIGKILL);
			killed = 1;
			killed_ns = now;
		} else if (killed && now - killed_ns > JOB_DRAIN_NS) {
			break;
		}
		job_log_flush(jc, 0, 0);
		intr = job_interrupted(jc);
		if (intr != JOB_INTR_NONE) {
			struct err e2 = {0};
			if (!p.exited && r->ops->cancel(r, &p, JOB_GRACE_MS, &e2) < 0)
				log_warnx("job=%" PRId64 " kill step: %s", jc->spec->id, e2.msg);
			if (!eof)
				job_drain(jc, p.out_fd);
			*intr_out = intr;
			rc = 0;
			goto out;
		}
	}
	*exit_code_out = p.exit_code;
	/* A step quicker than the periodic disk check is measured at its end. */
	if (jc->sb != NULL && jc->limit_msg[0] == '\0' &&
	    sandbox_job_disk_over(jc->sb, jc->src_dir, 1, jc->limit_msg, sizeof(jc->limit_msg)))
		*intr_out = JOB_INTR_LIMIT;
	rc = 0;
	goto out;
kill:
	if (!p.exited) {
		struct err e2 = {0};
		r->ops->cancel(r, &p, JOB_GRACE_MS, &e2);
	}
out:
	if (jc->sb != NULL)
		sandbox_job_kill_all(jc->sb);
	job_log_unmask_tail(jc);
	proc_release(&p);
	return rc;
}

/* Posts finish until the server takes it (or answers 409). */
static void job_finish(struct job_ctx *jc, const char *state, int have_exit, int exit_code,
                       const char *message)
{
	json_t *body = NULL, *ans = NULL; /* owned */
	char path[128];
	long delay_ms = 0;

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/finish", jc->spec->id);
	body = json_pack("{s:I, s:s, s:o, s:s}", "attempt", (json_int_t)jc->spec->attempt, "state", state,
	                 "exit_code", have_exit ? json_integer(exit_code) : json_null(), "message", message);
	for (;;) {
		struct err err = {0};
		if (httpc_json(jc->ag->http, "POST", path, body, 30000, &ans, &err) == 0) {
			log_info("job=%" PRId64 " finished state=%s", jc->spec->id, state);
			break;
		}
		if (job_attempt_gone(err.code)) {
			log_warnx("job=%" PRId64 " finish refused (attempt no longer ours): %s", jc->spec->id,
			          err.msg);
			break;
		}
		if (err.code != ERR_UNAVAIL && err.code != ERR_SYS) {
			log_warnx("job=%" PRId64 " finish refused: %s", jc->spec->id, err.msg);
			break;
		}
		log_warnx("job=%" PRId64 " finish not delivered, retrying: %s", jc->spec->id, err.msg);
		delay_ms = agent_backoff_next(delay_ms);
		if (agent_sleep_ms(jc->ag, delay_ms, job_should_abandon, jc) < 0)
			break;
	}
	json_decref(ans);
	json_decref(body);
}

/* The agent is stopping: gives the job back so another agent takes it now,
 * not once the lease runs out. One try of at most 2 s (the stop flag would
 * abort the request: not for this one); a lease still ends it otherwise. */
static void job_give_back(struct job_ctx *jc)
{
	json_t *body = json_pack("{s:I}", "attempt", (json_int_t)jc->spec->attempt), *ans = NULL;
	struct err err = {0};
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/requeue", jc->spec->id);
	httpc_set_abort_flag(jc->ag->http, NULL);
	if (httpc_json(jc->ag->http, "POST", path, body, 2000, &ans, &err) == 0)
		log_info("job=%" PRId64 " given back to the server's queue", jc->spec->id);
	else
		log_warnx("job=%" PRId64 " not given back (%s): the server requeues it when its lease ends",
		          jc->spec->id, err.msg);
	httpc_set_abort_flag(jc->ag->http, jc->ag->stop);
	json_decref(ans);
	json_decref(body);
}

/* ---- deploy jobs (agent/deployer.c), on the main thread ---- */

static void job_deploy_say(void *cls, const char *line)
{
	job_say(cls, "%s", line);
}

static void job_deploy_tick(void *cls)
{
	job_log_flush(cls, 0, 0);
}

static int job_deploy_interrupted(void *cls)
{
	return job_interrupted(cls) != JOB_INTR_NONE;
}

/* Uploads every artifact, each retried on transport failure. -1 with err
 * (ERR_CONFLICT when the attempt was lost). */
static int job_upload_all(struct job_ctx *jc, const struct artifact_list *al, struct err *err)
{
	size_t i;

	for (i = 0; i < al->n; i++) {
		long delay_ms = 0;
		int tries;
		char esc[300];

		job_say(jc, "artifact %s (%" PRIu64 " bytes, sha256 %s)", al->v[i].name, al->v[i].size_bytes,
		        al->v[i].sha256);
		for (tries = 1;; tries++) {
			if (artifact_upload(jc->ag->http, jc->spec->id, jc->spec->attempt, &al->v[i], err) ==
			    0)
				break;
			if (err->code != ERR_UNAVAIL || tries >= JOB_UPLOAD_TRIES)
				return -1;
			log_warnx("job=%" PRId64 " upload %s: %s; retrying", jc->spec->id,
			          log_escape(esc, sizeof(esc), al->v[i].name), err->msg);
			delay_ms = agent_backoff_next(delay_ms);
			if (agent_sleep_ms(jc->ag, delay_ms, job_should_interrupt, jc) < 0)
				return err_set(err, ERR_UNAVAIL, "upload interrupted");
		}
	}
	return 0;
}

/* The job's commit into dest: from the server's copy when the job names one
 * (then the agent needs to reach only the server, with its own token), else
 * from the repository's URL. */
static void job_checkout_fetching(void *cls)
{
	job_log_flush(cls, 1, 0);
}

static int job_checkout(struct job_ctx *jc, const char *dest, struct err *err)
{
	struct agent *ag = jc->ag;
	const struct job_spec *spec = jc->spec;
	const char *headers[2] = {NULL, NULL};
	struct checkout_source src = {spec->repo_name, spec->repo_url,        NULL,
	                              headers,         job_checkout_fetching, jc};
	char *fetch_url = NULL, *auth = NULL;
	int rc;

	if (spec->repo_fetch[0] != '\0') {
		/* the server that answers now (--server may list several) */
		fetch_url = xasprintf("%s%s", httpc_base_url(ag->http), spec->repo_fetch);
		auth = xasprintf("Authorization: Bearer %s", ag->token);
		headers[0] = auth;
		src.fetch_url = fetch_url;
	}
	rc = checkout_helper_prepare(ag->git, ag->opt.work_dir, &src, spec->commit, dest, err);
	free(fetch_url);
	free(auth);
	return rc;
}

/* Every directory from dest down to dest/path's parent exists as a real
 * directory (no symlink: the parent's checkout made them from its tree) or
 * not at all. */
static int job_submodule_dirs_ok(const char *dest, const char *path, struct err *err)
{
	char *p = xasprintf("%s/%s", dest, path), *q;
	struct stat st;
	int rc = 0;

	for (q = p + strlen(dest) + 1; (q = strchr(q, '/')) != NULL; q++) {
		*q = '\0';
		if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
			rc = err_set(err, ERR_INVAL, "%s is not a directory", p + strlen(dest) + 1);
		*q = '/';
		if (rc < 0)
			break;
	}
	if (rc == 0 && lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
		rc = err_set(err, ERR_INVAL, "%s is not a directory", path);
	free(p);
	return rc;
}

/* The spec's submodules into dest, parents first, each from the server's
 * copy of its own repository (never from the URL .gitmodules names). */
static int job_submodules(struct job_ctx *jc, const char *dest, struct err *err)
{
	const struct job_spec *spec = jc->spec;
	struct agent *ag = jc->ag;
	char *auth = xasprintf("Authorization: Bearer %s", ag->token);
	const char *headers[2] = {auth, NULL};
	int rc = 0;

	for (size_t i = 0; i < spec->n_submodules && rc == 0; i++) {
		const struct job_submodule *m = &spec->submodules[i];
		char *fetch_url = xasprintf("%s%s", httpc_base_url(ag->http), m->fetch);
		char *sub_dest = xasprintf("%s/%s", dest, m->path);
		struct checkout_source src = {m->repo, m->url, fetch_url, headers, NULL, NULL};

		job_say(jc, "submodule %s at %s: %s %s", m->name, m->path, m->repo, m->commit);
		if (job_submodule_dirs_ok(dest, m->path, err) < 0 ||
		    checkout_helper_prepare(ag->git, ag->opt.work_dir, &src, m->commit, sub_dest, err) < 0) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			err_set(err, err->code, "submodule %s (%s): %s", m->name, m->path, msg);
			rc = -1;
		}
		free(fetch_url);
		free(sub_dest);
	}
	free(auth);
	return rc;
}

/* The next job's sandbox, started as a job ends (docs/agent.md "Standby
 * sandbox"): its workspace directory, bound at /work while still empty, its
 * cgroup, and bubblewrap waiting in it for the first step. */
struct job_standby {
	char *job_dir;             /* owned; <work>/jobs/next-<pid>-<n>; the job's own once taken */
	struct sandbox_job *sb;    /* owned; the job's cgroup if taken */
	char *warning;             /* owned; what sandbox_job_begin said, for the job's log; or NULL */
	struct runner_standby *rs; /* owned */
};

void job_standby_free(struct job_standby *s)
{
	struct err err = {0};

	if (s == NULL)
		return;
	runner_standby_free(s->rs);
	sandbox_job_end(s->sb);
	if (s->job_dir != NULL && checkout_remove_tree(s->job_dir, &err) < 0)
		log_warnx("event=standby_remove error=\"%s\"", err.msg);
	free(s->job_dir);
	free(s->warning);
	free(s);
}

/* Starts the sandbox the job that ran on runner would get next, for the
 * agent's next job: only used when that job's runner would start exactly
 * it. NULL when the runner has none to give. */
static struct job_standby *job_standby_new(struct agent *ag, struct runner *runner)
{
	struct job_standby *s;
	struct err err = {0};
	char name[64], *src;

	if (runner->ops->standby == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	snprintf(name, sizeof(name), "next-%d-%" PRId64, (int)getpid(), ag->jobs_done);
	s->job_dir = xasprintf("%s/jobs/%s", ag->opt.work_dir, name);
	src = xasprintf("%s/src", s->job_dir);
	if (checkout_remove_tree(s->job_dir, &err) < 0 || checkout_mkdirs(src, &err) < 0 ||
	    sandbox_job_begin_named(&ag->sandbox, name, &s->sb, &s->warning, &err) < 0 ||
	    (s->rs = runner->ops->standby(runner, src, sandbox_job_runner(s->sb), &err)) == NULL) {
		log_info("event=standby_skipped reason=\"%s\"", err.msg);
		job_standby_free(s);
		s = NULL;
	}
	free(src);
	return s;
}

enum job_outcome job_run(struct agent *ag, const struct job_spec *spec)
{
	struct job_ctx jc;
	struct strv env = STRV_INIT;
	struct artifact_list al = ARTIFACT_LIST_INIT;
	struct runner *runner = NULL;
	char *runner_desc = NULL, *runner_warning = NULL;
	struct crosstoml *ct = NULL;
	struct err err = {0};
	enum job_intr intr = JOB_INTR_NONE;
	const char *state = "error";
	char message[512] = "";
	int have_exit = 0, exit_code = 0;
	enum job_outcome outcome = JOB_FINISHED;
	struct job_standby *standby = NULL;
	size_t i;

	memset(&jc, 0, sizeof(jc));
	jc.ag = ag;
	jc.spec = spec;
	mask_init(&jc.mask, (const char *const *)spec->mask.v, spec->mask.n);
	jc.deadline_ns = agent_now_ns() + (uint64_t)spec->timeout_s * 1000000000ull;
	if (spec->deploy == NULL) {
		/* A deploy job leaves the standby to the next job. */
		standby = ag->standby;
		ag->standby = NULL;
	}
	if (standby != NULL && spec->n_services > 0) {
		/* Its steps join the job's own network namespace instead. */
		job_standby_free(standby);
		standby = NULL;
	}
	if (standby != NULL) {
		/* Its directory is the job's, where bwrap bound it: jobs/<id>
		 * only names it (a link, for whoever looks). */
		char *link = xasprintf("%s/jobs/%" PRId64, ag->opt.work_dir, spec->id);
		if (checkout_remove_tree(link, &err) < 0 ||
		    symlink(strrchr(standby->job_dir, '/') + 1, link) < 0) {
			log_warnx("job=%" PRId64 " %s: %s", spec->id, link,
			          err.msg[0] != '\0' ? err.msg : strerror(errno));
			free(link);
		} else {
			jc.job_link = link;
		}
		jc.job_dir = standby->job_dir;
		standby->job_dir = NULL;
		jc.sb = standby->sb;
		standby->sb = NULL;
	} else {
		jc.job_dir = xasprintf("%s/jobs/%" PRId64, ag->opt.work_dir, spec->id);
	}
	jc.src_dir = xasprintf("%s/src", jc.job_dir);
	log_info("job=%" PRId64 " attempt=%" PRId64 " target=%s steps=%zu", spec->id, spec->attempt,
	         spec->target, spec->n_steps);

	if (job_hb_start(&jc.hb, ag, spec, &err) < 0) {
		snprintf(message, sizeof(message), "%s", err.msg);
		goto report;
	}

	if (spec->deploy != NULL) {
		struct deployer_io io = {job_deploy_say, job_deploy_tick, job_deploy_interrupted, &jc};
		char *dir = xasprintf("%s/deploy-%" PRId64, ag->opt.work_dir, spec->id);
		/* anvil-verify is built in bubblewrap even under --runner docker:
		 * a one-file cross build, where a container start would cost more. */
		struct runner_sandbox vsb = {.drop_ids = ag->sandbox.drop_ids,
		                             .uid = ag->sandbox.uid,
		                             .gid = ag->sandbox.gid,
		                             .has_seccomp_fd = ag->sandbox.seccomp_fd >= 0,
		                             .seccomp_fd = ag->sandbox.seccomp_fd};
		struct targets_opts to = {.recipes_dir = ag->opt.recipes_dir,
		                          .cache_dir = ag->opt.cache_dir,
		                          .work_dir = ag->opt.work_dir,
		                          .select = ag->opt.targets,
		                          .prepare = ag->opt.prepare_targets,
		                          .sandbox = &vsb};
		struct verifier *verifier = verifier_new(&to, &ag->labels);
		struct deployer_job dj = {ag->opt.server_url, ag->token, spec->id, spec->attempt, dir,
		                          spec->deploy,       &io,       verifier};
		state = deployer_run(&dj, message, sizeof(message));
		verifier_free(verifier);
		free(dir);
		intr = job_interrupted(&jc);
		if (intr == JOB_INTR_TIMEOUT)
			intr = JOB_INTR_NONE; /* the rollout ran to its end; its state stands */
		goto report;
	}
	{
		char *shown = redact_urls_dup(spec->repo_url); /* the log never holds its credentials */
		job_say(&jc, "checkout %s %s%s", shown, spec->commit,
		        spec->repo_fetch[0] ? " (from the server's copy)" : "");
		free(shown);
	}
	/* The "checkout" line leaves before a fetch (job_checkout_fetching),
	 * else with the step's first lines. */
	if (job_checkout(&jc, jc.src_dir, &err) < 0) {
		job_say(&jc, "checkout failed: %s", err.msg);
		snprintf(message, sizeof(message), "checkout: %s", err.msg);
		goto report;
	}
	if (spec->submodule_error[0] != '\0') {
		/* the server refused a submodule (the repository's doing) */
		job_say(&jc, "checkout failed: %s", spec->submodule_error);
		snprintf(message, sizeof(message), "checkout: %s", spec->submodule_error);
		state = "failed";
		goto report;
	}
	if (job_submodules(&jc, jc.src_dir, &err) < 0) {
		job_say(&jc, "checkout failed: %s", err.msg);
		snprintf(message, sizeof(message), "checkout: %s", err.msg);
		goto report;
	}
	if ((intr = job_interrupted(&jc)) != JOB_INTR_NONE)
		goto report;
	for (i = 0; i < spec->n_inputs; i++) {
		const struct artifact_input *in = &spec->inputs[i];

		job_say(&jc, "input %s from job %s (%" PRId64 "), %" PRIu64 " bytes, sha256 %s", in->name,
		        in->job, in->job_id, in->size_bytes, in->sha256);
		if (artifact_download(ag->http, spec->id, jc.src_dir, in, &err) < 0) {
			if (job_attempt_gone(err.code)) {
				intr = JOB_INTR_LOST;
				goto report;
			}
			job_say(&jc, "input %s: %s", in->name, err.msg);
			state = err.code == ERR_INVAL ? "failed" : "error";
			snprintf(message, sizeof(message), "input %s from job %s: %s", in->name, in->job,
			         err.msg);
			goto report;
		}
	}
	if (spec->n_inputs > 0)
		job_log_flush(&jc, 1, 0);
	if ((intr = job_interrupted(&jc)) != JOB_INTR_NONE)
		goto report;
	if (jc.sb == NULL) {
		char *warning = NULL;
		sandbox_job_begin(&ag->sandbox, spec->id, NULL, &jc.sb, &warning, &err);
		if (warning != NULL)
			job_say(&jc, "warning: %s", warning);
		free(warning);
	} else if (standby->warning != NULL) {
		job_say(&jc, "warning: %s", standby->warning);
	}
	if (sandbox_job_own(jc.sb, jc.src_dir, &err) < 0) {
		job_say(&jc, "workspace: %s", err.msg);
		snprintf(message, sizeof(message), "workspace: %s", err.msg);
		goto report;
	}
	if (strcmp(spec->target, "host") != 0) {
		job_say(&jc, "preparing target %s (a rootfs is built once per recipe, then cached)",
		        spec->target);
		job_log_flush(&jc, 1, 0);
	}
	if (job_crosstoml(jc.src_dir, spec->target, &ct, &err) < 0) {
		job_say(&jc, "%s", err.msg);
		snprintf(message, sizeof(message), "%s", err.msg);
		goto report;
	}
	for (i = 0; ct != NULL && i < ct->warnings.n; i++)
		job_say(&jc, "warning: %s", ct->warnings.v[i]);
	if (ct != NULL && ct->pre_build.n > 0) {
		job_say(&jc,
		        "Cross.toml pre-build: %zu command(s) run once into a derived rootfs, then cached",
		        ct->pre_build.n);
		job_log_flush(&jc, 1, 0);
	}
	if (spec->tools.n > 0 && strcmp(spec->target, "host") != 0) {
		job_say(&jc, "tools: %zu package(s) installed once into a derived toolroot, then cached",
		        spec->tools.n);
		job_log_flush(&jc, 1, 0);
	}
	if (spec->n_services > 0 && job_services_netns(&jc, &err) < 0) {
		job_say(&jc, "services: %s", err.msg);
		snprintf(message, sizeof(message), "services: %s", err.msg);
		goto report;
	}
	if ((runner = job_runner_for(&jc, jc.sb, NULL, ct, &runner_desc, &runner_warning, &err)) == NULL) {
		if ((intr = job_interrupted(&jc)) != JOB_INTR_NONE) {
			job_say(&jc, "target %s: preparation stopped (%s)", spec->target, err.msg);
			goto report;
		}
		job_say(&jc, "target %s: %s", spec->target, err.msg);
		snprintf(message, sizeof(message), "target %s: %s", spec->target, err.msg);
		goto report;
	}
	if (runner_warning != NULL)
		job_say(&jc, "warning: %s", runner_warning);
	job_say(&jc, "runner: %s", runner_desc);
	job_env_build(&env, spec);
	job_env_passthrough(&env, ct);
	if (spec->n_services > 0 && job_services_start(&jc, ct, &err) < 0) {
		if ((intr = job_interrupted(&jc)) != JOB_INTR_NONE)
			goto report;
		state = err.code == ERR_INVAL ? "failed" : "error";
		snprintf(message, sizeof(message), "%s", err.msg);
		goto report;
	}
	/* The first failure (a non-zero exit or the step's own timeout) fails
	 * the job and names the step; later steps run only when they are
	 * `on: failure` or `on: always` (collect logs, core dumps), and their
	 * outcome changes nothing. */
	for (i = 0; i < spec->n_steps; i++) {
		const struct job_step *st = &spec->steps[i];
		int code, rc_step, failed = state[0] == 'f';

		if (failed ? st->on == JOB_STEP_ON_SUCCESS : st->on == JOB_STEP_ON_FAILURE)
			continue;
		jc.step_deadline_ns =
		    st->timeout_s > 0 ? agent_now_ns() + (uint64_t)st->timeout_s * 1000000000ull : 0;
		job_step_start(&jc, i, st);
		rc_step = job_run_step(&jc, runner, st, (const char *const *)env.v,
		                       standby != NULL ? standby->rs : NULL, &code, &intr, &err);
		if (standby != NULL) {
			/* The first step had it, or a new sandbox when it no longer fit. */
			runner_standby_free(standby->rs);
			standby->rs = NULL;
		}
		if (rc_step < 0) {
			jc.step_deadline_ns = 0;
			job_say(&jc, "step %s could not run: %s", st->name, err.msg);
			job_step_end(&jc, i, "error", 0, 0);
			if (!failed) {
				state = "error";
				snprintf(message, sizeof(message), "step %s: %s", st->name, err.msg);
			}
			goto report;
		}
		jc.step_deadline_ns = 0;
		if (intr == JOB_INTR_STEP_TIMEOUT) {
			intr = JOB_INTR_NONE;
			job_say(&jc, "step %s timed out after %ld s", st->name, st->timeout_s);
			job_step_end(&jc, i, "timeout", 0, 0);
			if (!failed) {
				state = "failed";
				have_exit = 0;
				snprintf(message, sizeof(message), "step %s timed out after %ld s", st->name,
				         st->timeout_s);
			}
		} else if (intr != JOB_INTR_NONE) {
			job_step_end(&jc, i, intr == JOB_INTR_CANCEL ? "canceled" : "failed", 0, 0);
			goto report;
		} else {
			job_say(&jc, "step %s exited %d", st->name, code);
			job_step_end(&jc, i, code == 0 ? "success" : "failed", 1, code);
			if (code != 0 && !failed) {
				char limit[160];
				state = "failed";
				have_exit = 1;
				exit_code = code;
				if (sandbox_job_limit_hit(jc.sb, limit, sizeof(limit))) {
					job_say(&jc, "%s", limit);
					snprintf(message, sizeof(message), "step %s exited %d: %s", st->name,
					         code, limit);
				} else {
					snprintf(message, sizeof(message), "step %s exited %d", st->name,
					         code);
				}
			}
		}
		if (!failed && state[0] == 'f') {
			size_t skipped = 0;

			for (size_t k = i + 1; k < spec->n_steps; k++)
				skipped += spec->steps[k].on == JOB_STEP_ON_SUCCESS;
			if (skipped > 0)
				job_say(&jc, "skipping %zu later step(s)", skipped);
		}
	}
	if (state[0] == 'f')
		goto report;
	job_log_flush(&jc, 0, 0);

	if (spec->artifacts.n > 0) {
		if (artifact_collect(&al, jc.src_dir, (const char *const *)spec->artifacts.v,
		                     spec->artifacts.n, &err) < 0) {
			job_say(&jc, "%s", err.msg);
			state = err.code == ERR_SYS ? "error" : "failed";
			snprintf(message, sizeof(message), "%s", err.msg);
			goto report;
		}
		if (job_upload_all(&jc, &al, &err) < 0) {
			if ((intr = job_interrupted(&jc)) != JOB_INTR_NONE)
				goto report;
			if (job_attempt_gone(err.code)) {
				intr = JOB_INTR_LOST;
				goto report;
			}
			job_say(&jc, "artifact upload failed: %s", err.msg);
			state = "error";
			snprintf(message, sizeof(message), "artifact upload: %s", err.msg);
			goto report;
		}
	}
	state = "success";
	have_exit = 1;
	exit_code = 0;

report:
	switch (intr) {
	case JOB_INTR_STOP:
		log_info("job=%" PRId64 " agent stopping: the job goes back to the queue", spec->id);
		outcome = JOB_ABANDONED;
		break;
	case JOB_INTR_LOST:
		log_warnx("job=%" PRId64 " no longer ours: abandoned", spec->id);
		outcome = JOB_ABANDONED;
		break;
	case JOB_INTR_CANCEL:
		job_say(&jc, "job canceled");
		state = "canceled";
		have_exit = 0;
		snprintf(message, sizeof(message), "canceled");
		break;
	case JOB_INTR_TIMEOUT:
		job_say(&jc, "job timed out after %ld s", spec->timeout_s);
		state = "failed";
		have_exit = 0;
		snprintf(message, sizeof(message), "timed out");
		break;
	case JOB_INTR_LIMIT:
		job_say(&jc, "%s: the step was stopped", jc.limit_msg);
		state = "failed";
		have_exit = 0;
		snprintf(message, sizeof(message), "%s", jc.limit_msg);
		break;
	case JOB_INTR_STEP_TIMEOUT: /* handled in the step loop; never reaches here */
	case JOB_INTR_NONE:
		break;
	}
	job_services_stop(&jc, state[0] == 'f' && strncmp(message, "service ", 8) != 0);
	job_log_unmask_tail(&jc);
	if (outcome == JOB_FINISHED) {
		if (job_log_flush(&jc, 1, 1) < 0 || job_should_abandon(&jc)) {
			outcome = JOB_ABANDONED;
		} else {
			/* it may name a step, whose name may hold a secret */
			char *shown = job_masked(&jc, message);
			job_finish(&jc, state, have_exit, exit_code, shown);
			free(shown);
		}
	}
	job_hb_stop(&jc.hb, outcome == JOB_FINISHED);
	if (intr == JOB_INTR_STOP)
		job_give_back(&jc);
	/* Nothing a step started outlives its job. */
	sandbox_job_end(jc.sb);
	if (checkout_remove_tree(jc.job_dir, &err) < 0)
		log_warnx("job=%" PRId64 " workspace not removed: %s", spec->id, err.msg);
	if (jc.job_link != NULL && unlink(jc.job_link) < 0)
		log_warnx("job=%" PRId64 " %s not removed: %s", spec->id, jc.job_link, strerror(errno));
	free(jc.job_link);
	job_standby_free(standby);
	/* Started once this job's processes are all gone (its cgroup ended
	 * above): nothing of it reaches the next job's sandbox. */
	if (runner != NULL && outcome == JOB_FINISHED && !*ag->stop && spec->n_services == 0 &&
	    ag->standby == NULL)
		ag->standby = job_standby_new(ag, runner);
	artifact_list_release(&al);
	runner_free(runner);
	free(runner_desc);
	free(runner_warning);
	crosstoml_free(ct);
	strv_release(&env);
	buf_release(&jc.chunk);
	jc.inflight_ev = jc.n_ev;
	job_frame_sent(&jc, 0);
	free(jc.ev);
	buf_release(&jc.frame);
	mask_release(&jc.mask);
	free(jc.src_dir);
	free(jc.job_dir);
	return outcome;
}
