#include "common/gitproc.h"
#include "agent/agent.h"
#include "agent/targets.h"
#include "qemu/runner_docker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "agent/checkout.h"
#include "agent/job.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/proc.h"

#define AGENT_BACKOFF_MIN_MS 100
#define AGENT_BACKOFF_MAX_MS 5000
#define AGENT_CLAIM_WAIT_MS  25000
#define AGENT_CLAIM_SLACK_MS 10000
#define AGENT_SLEEP_SLICE_MS 100

uint64_t agent_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

long agent_backoff_next(long delay_ms)
{
	if (delay_ms < AGENT_BACKOFF_MIN_MS)
		return AGENT_BACKOFF_MIN_MS;
	return delay_ms * 2 > AGENT_BACKOFF_MAX_MS ? AGENT_BACKOFF_MAX_MS : delay_ms * 2;
}

int agent_sleep_ms(const struct agent *ag, long ms, int (*should_stop)(void *arg), void *arg)
{
	uint64_t until = agent_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		uint64_t now = agent_now_ns();
		long slice;
		struct timespec ts;

		if (*ag->stop || (should_stop != NULL && should_stop(arg)))
			return -1;
		if (now >= until)
			return 0;
		slice = (long)((until - now) / 1000000ull);
		if (slice > AGENT_SLEEP_SLICE_MS)
			slice = AGENT_SLEEP_SLICE_MS;
		if (slice < 1)
			slice = 1;
		ts.tv_sec = 0;
		ts.tv_nsec = slice * 1000000L;
		nanosleep(&ts, NULL);
	}
}

static int agent_label_ok(const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	size_t i;

	if (eq == NULL || eq == s || (size_t)(eq - s) + 1 >= n)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ',' || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

int agent_labels(struct strv *out, const char *extra_csv, struct err *err)
{
	struct utsname u;
	const char *p;

	if (uname(&u) < 0)
		return err_errno(err, "uname");
	strv_pushf(out, "arch=%s", u.machine);
	/* Targets proven runnable through qemu/binfmt get "target=<triple>"
	 * labels here once the targets work lands. */
	for (p = extra_csv; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			char *l = xstrndup(p, n);
			if (!agent_label_ok(l, n)) {
				err_set(err, ERR_INVAL, "bad label '%.64s' (want key=value)", l);
				free(l);
				return -1;
			}
			strv_push(out, l);
			free(l);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int agent_stop_flag(void *arg)
{
	return *(volatile sig_atomic_t *)arg != 0;
}

int agent_init(struct agent *ag, const struct agent_opts *opts, volatile sig_atomic_t *stop, struct err *err)
{
	memset(ag, 0, sizeof(*ag));
	ag->sandbox.seccomp_fd = -1; /* agent_release before sandbox_init closes nothing */
	ag->opt = *opts;
	ag->stop = stop;
	if (opts->server_url == NULL || opts->server_url[0] == '\0')
		return err_set(err, ERR_INVAL, "no server URL");
	if (opts->token == NULL || opts->token[0] == '\0')
		return err_set(err, ERR_INVAL, "no agent token (--token, --token-file or ANVIL_AGENT_TOKEN)");
	if (opts->name == NULL || opts->name[0] == '\0')
		return err_set(err, ERR_INVAL, "no agent name");
	if (opts->work_dir == NULL || opts->work_dir[0] != '/')
		return err_set(err, ERR_INVAL, "work directory must be an absolute path");
	if (sandbox_init(&ag->sandbox, &opts->sandbox, err) < 0)
		goto fail;
	if (checkout_mkdirs(opts->work_dir, err) < 0)
		goto fail;
	if (sandbox_check_reach(&ag->sandbox, opts->work_dir, err) < 0)
		goto fail;
	if (agent_labels(&ag->labels, opts->extra_labels, err) < 0)
		goto fail;
	{
		/* A --prepare-targets build (minutes) ends at SIGTERM. */
		const struct proc_stop prep_stop = {agent_stop_flag, (void *)stop};
		struct targets_opts to = {.recipes_dir = opts->recipes_dir,
		                          .cache_dir = opts->cache_dir,
		                          .work_dir = opts->work_dir,
		                          .select = opts->targets ? opts->targets : "auto",
		                          .prepare = opts->prepare_targets,
		                          .docker = opts->docker,
		                          .stop = &prep_stop};
		int reaped = 0;
		if (targets_labels(&to, &ag->labels, err) < 0)
			goto fail;
		/* Containers a killed agent left running would hold the workspace. */
		if (opts->docker != NULL) {
			if (runner_docker_reap(opts->docker, opts->work_dir, &reaped, err) < 0) {
				err_wrap(err, "--runner %s", opts->docker);
				goto fail;
			}
			if (reaped > 0)
				log_info("event=containers_reaped count=%d", reaped);
			strv_pushf(&ag->labels, "runner=%s", opts->docker);
		}
	}
	ag->http = httpc_new_flags(opts->server_url, opts->token, HTTPC_LIGHT);
	httpc_set_abort_flag(ag->http, stop);
	ag->git = gitproc_new_self(GITPROC_IDLE_MS);
	return 0;
fail:
	agent_release(ag);
	return -1;
}

void agent_release(struct agent *ag)
{
	job_standby_free(ag->standby);
	ag->standby = NULL;
	sandbox_release(&ag->sandbox);
	strv_release(&ag->labels);
	httpc_free(ag->http);
	ag->http = NULL;
	httpc_free(ag->hb_http);
	ag->hb_http = NULL;
	gitproc_free(ag->git);
	ag->git = NULL;
	if (ag->token != NULL) {
		explicit_bzero(ag->token, strlen(ag->token));
		free(ag->token);
		ag->token = NULL;
	}
}

int agent_register(struct agent *ag, struct err *err)
{
	json_t *body = NULL, *labels = NULL, *ans = NULL;                                       /* owned */
	struct httpc *enroll = httpc_new_flags(ag->opt.server_url, ag->opt.token, HTTPC_LIGHT); /* owned */
	const char *token;
	long delay_ms = 0;
	size_t i;
	int rc = -1;

	httpc_set_abort_flag(enroll, ag->stop);
	labels = json_array();
	for (i = 0; i < ag->labels.n; i++)
		json_array_append_new(labels, json_string(ag->labels.v[i]));
	body = json_pack("{s:s, s:O}", "name", ag->opt.name, "labels", labels);
	for (;;) {
		json_decref(ans);
		ans = NULL;
		if (httpc_json(enroll, "POST", "/api/v1/agents/register", body, 10000, &ans, err) == 0)
			break;
		if (err->code != ERR_UNAVAIL && err->code != ERR_SYS)
			goto out;
		log_warnx("register with %s failed: %s; retrying", ag->opt.server_url, err->msg);
		delay_ms = agent_backoff_next(delay_ms);
		if (agent_sleep_ms(ag, delay_ms, NULL, NULL) < 0) {
			err_set(err, ERR_UNAVAIL, "stopped before registering");
			goto out;
		}
	}
	token = json_string_value(json_object_get(ans, "token"));
	if (!json_is_integer(json_object_get(ans, "agent_id")) || token == NULL || token[0] == '\0') {
		err_set(err, ERR_INVAL, "register answer has no agent_id or token");
		goto out;
	}
	ag->agent_id = json_integer_value(json_object_get(ans, "agent_id"));
	/* From now on every request carries the agent's own token. */
	if (ag->token != NULL) {
		explicit_bzero(ag->token, strlen(ag->token));
		free(ag->token);
	}
	ag->token = xstrdup(token);
	httpc_free(ag->hb_http); /* it sent the old token */
	ag->hb_http = NULL;
	httpc_free(ag->http);
	ag->http = httpc_new_flags(ag->opt.server_url, ag->token, HTTPC_LIGHT);
	httpc_set_abort_flag(ag->http, ag->stop);
	log_info("registered agent=%" PRId64 " name=%s labels=%zu", ag->agent_id, ag->opt.name, ag->labels.n);
	rc = 0;
out:
	json_decref(ans);
	json_decref(body);
	json_decref(labels);
	httpc_free(enroll);
	return rc;
}

/* Keeps the per repo×target caches under --cache-cap: least recently used
 * first, never the one the job just used (the next job of the repo is the
 * likeliest to want it). */
static void agent_cache_evict(struct agent *ag, const struct job_spec *spec)
{
	struct err err = {0};
	int removed = 0;
	int64_t left = 0;

	if (targets_cache_evict(ag->opt.work_dir, ag->opt.cache_cap_bytes, spec->repo_name, spec->target,
	                        &removed, &left, &err) < 0)
		log_warnx("cache eviction: %s", err.msg);
	else if (removed > 0)
		log_info("cache: %d repo×target dir(s) evicted, %lld bytes left (cap %lld)", removed,
		         (long long)left, (long long)ag->opt.cache_cap_bytes);
}

/* As a child subreaper the agent inherits whatever a step left behind;
 * reap those between jobs, when no step's leader is waiting to be reaped. */
static void agent_reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* A claimed spec the agent cannot parse would otherwise sit running until
 * its lease ran out, attempt after attempt: end it as "error" at once when
 * it names its id and attempt. One try; the lease covers a lost answer. */
static void agent_refuse_spec(struct agent *ag, const json_t *job, const char *why)
{
	json_t *body = NULL, *ans = NULL; /* owned */
	const json_t *id = json_object_get(job, "id"),
	             *attempt = json_object_get(job, "attempt"); /* borrowed */
	struct err err = {0};
	char path[96];
	char msg[300];

	if (!json_is_integer(id) || !json_is_integer(attempt))
		return;
	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" JSON_INTEGER_FORMAT "/finish",
	         json_integer_value(id));
	snprintf(msg, sizeof(msg), "agent cannot run it: %s", why);
	body = json_pack("{s:I, s:s, s:n, s:s}", "attempt", json_integer_value(attempt), "state", "error",
	                 "exit_code", "message", msg);
	if (httpc_json(ag->http, "POST", path, body, 30000, &ans, &err) < 0)
		log_warnx("job=%" JSON_INTEGER_FORMAT " refusing bad spec: %s", json_integer_value(id),
		          err.msg);
	json_decref(ans);
	json_decref(body);
}

/* One claim. 0 with *spec_out NULL on 204; -1 with err otherwise. */
static int agent_claim(struct agent *ag, struct job_spec **spec_out, struct err *err)
{
	json_t *body = NULL, *ans = NULL; /* owned */
	int rc = -1;

	*spec_out = NULL;
	body = json_pack("{s:I, s:i}", "agent_id", (json_int_t)ag->agent_id, "wait_ms", AGENT_CLAIM_WAIT_MS);
	if (httpc_json(ag->http, "POST", "/api/v1/agents/claim", body,
	               AGENT_CLAIM_WAIT_MS + AGENT_CLAIM_SLACK_MS, &ans, err) < 0)
		goto out;
	if (ans != NULL && job_spec_parse(json_object_get(ans, "job"), spec_out, err) < 0) {
		agent_refuse_spec(ag, json_object_get(ans, "job"), err->msg);
		goto out;
	}
	rc = 0;
out:
	json_decref(ans);
	json_decref(body);
	return rc;
}

/* Claims and runs jobs one at a time until stopped. A server that forgot
 * the agent (ERR_NOTFOUND) is registered with again when may_register;
 * else (a --jobs worker, whose siblings share the registration) -1 with
 * ERR_NOTFOUND goes back to the caller. -1 with ERR_AUTH/ERR_FORBIDDEN when
 * the server refuses the agent's token. */
static int agent_loop(struct agent *ag, int may_register, struct err *err)
{
	long delay_ms = 0;

	while (!*ag->stop) {
		struct job_spec *spec = NULL;
		enum job_outcome oc;

		if (agent_claim(ag, &spec, err) < 0) {
			/* 401: our token was revoked (anvil agent rm, or the
			 * name registered again elsewhere): stop, do not enroll
			 * again behind the operator's back. */
			if (err->code == ERR_AUTH || err->code == ERR_FORBIDDEN)
				return -1;
			if (err->code == ERR_NOTFOUND) {
				if (!may_register)
					return -1;
				/* The server forgot us (new database): register again. */
				log_warnx("claim: %s; registering again", err->msg);
				if (agent_register(ag, err) < 0)
					return *ag->stop ? 0 : -1;
				continue;
			}
			log_warnx("claim failed: %s; retrying", err->msg);
			delay_ms = agent_backoff_next(delay_ms);
			agent_sleep_ms(ag, delay_ms, NULL, NULL);
			continue;
		}
		delay_ms = 0;
		if (spec == NULL)
			continue; /* 204: the long poll was the wait */
		oc = job_run(ag, spec);
		agent_cache_evict(ag, spec);
		job_spec_free(spec);
		agent_reap_orphans();
		ag->jobs_done++;
		if (oc == JOB_ABANDONED && *ag->stop)
			break;
		if (ag->opt.once)
			break;
	}
	return 0;
}

/* A --jobs worker's exit codes, read by agent_pool. */
enum {
	AGENT_WORKER_STOPPED = 0,
	AGENT_WORKER_FAILED = 1,
	AGENT_WORKER_FORGOTTEN = 3, /* the server forgot the agent: register again */
	AGENT_WORKER_REFUSED = 4,   /* the server refused the token */
};

/* The child side of one --jobs slot: its own HTTP client (never the
 * parent's connection), its own subreaper scope, and death with the
 * parent (a kill -9 of the agent ends the workers; their steps die with
 * them and the server requeues the jobs when their leases run out). */
static void agent_worker(struct agent *ag, int slot, pid_t parent)
{
	struct err err = {0};
	int code = AGENT_WORKER_STOPPED;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(AGENT_WORKER_FAILED);
	if (proc_become_subreaper(&err) < 0 && errno != EINVAL)
		log_warnx("worker %d: %s", slot, err.msg);
	ag->slot = slot;
	ag->http = httpc_new_flags(ag->opt.server_url, ag->token, HTTPC_LIGHT);
	httpc_set_abort_flag(ag->http, ag->stop);
	log_info("event=worker_started slot=%d pid=%d", slot, (int)getpid());
	if (agent_loop(ag, 0, &err) < 0) {
		code = err.code == ERR_NOTFOUND                            ? AGENT_WORKER_FORGOTTEN
		       : err.code == ERR_AUTH || err.code == ERR_FORBIDDEN ? AGENT_WORKER_REFUSED
		                                                           : AGENT_WORKER_FAILED;
		if (code != AGENT_WORKER_FORGOTTEN)
			log_warnx("worker %d: %s", slot, err.msg);
	}
	job_standby_free(ag->standby); /* its bwrap would die with us, not its directory */
	ag->standby = NULL;
	log_info("event=worker_stopped slot=%d jobs=%" PRId64, slot, ag->jobs_done);
	fflush(NULL);
	_exit(code);
}

static pid_t agent_pool_spawn(struct agent *ag, int slot, struct err *err)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return err_errno(err, "fork worker %d", slot);
	if (pid == 0)
		agent_worker(ag, slot, parent);
	return pid;
}

/* Sends sig to every live worker. */
static void agent_pool_signal(const pid_t *pids, int n, int sig)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* --jobs N: one registration, N worker processes each claiming and running
 * one job at a time. The parent only supervises: it forwards a stop,
 * respawns a worker that died on its own, registers again (after stopping
 * them all) when the server forgot the agent, and stops when it refuses
 * the agent. */
static int agent_pool(struct agent *ag, struct err *err)
{
	int n = ag->opt.jobs;
	pid_t *pids = xcalloc((size_t)n, sizeof(*pids));
	int rc = -1;

	for (;;) {
		int live = 0, forgotten = 0, refused = 0, stopping = 0;
		long delay_ms = 0;

		if (agent_register(ag, err) < 0) {
			rc = *ag->stop ? 0 : -1;
			goto out;
		}
		/* The workers make their own clients: a kept-alive connection
		 * shared across fork would interleave their requests. */
		httpc_free(ag->http);
		ag->http = NULL;
		for (int i = 0; i < n; i++) {
			if ((pids[i] = agent_pool_spawn(ag, i, err)) < 0) {
				pids[i] = 0;
				stopping = 1;
				break;
			}
			live++;
		}
		while (live > 0) {
			struct timespec ts = {0, AGENT_SLEEP_SLICE_MS * 1000000L};
			int status, slot = -1;
			pid_t pid;

			if ((*ag->stop || forgotten || refused || stopping) && stopping != 2) {
				agent_pool_signal(pids, n, SIGTERM);
				stopping = 2;
			}
			pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0) {
				nanosleep(&ts, NULL);
				continue;
			}
			for (int i = 0; i < n; i++)
				if (pids[i] == pid)
					slot = i;
			if (slot < 0)
				continue; /* an orphan a worker left to us */
			pids[slot] = 0;
			live--;
			if (WIFEXITED(status) && WEXITSTATUS(status) == AGENT_WORKER_FORGOTTEN)
				forgotten = 1;
			else if (WIFEXITED(status) && WEXITSTATUS(status) == AGENT_WORKER_REFUSED)
				refused = 1;
			if (*ag->stop || forgotten || refused || stopping)
				continue;
			/* Died on its own (a crash): its job's lease runs out and
			 * the server requeues it; the slot takes jobs again. */
			log_warnx("event=worker_died slot=%d status=%#x; restarting", slot, status);
			delay_ms = agent_backoff_next(delay_ms);
			agent_sleep_ms(ag, delay_ms, NULL, NULL);
			if (!*ag->stop && (pids[slot] = agent_pool_spawn(ag, slot, err)) > 0)
				live++;
			else
				pids[slot] = 0;
		}
		if (refused) {
			err_set(err, ERR_AUTH, "the server refused the agent's token");
			goto out;
		}
		if (*ag->stop || !forgotten) {
			rc = *ag->stop ? 0 : -1;
			if (rc < 0 && err->msg[0] == '\0')
				err_set(err, ERR_SYS, "workers stopped");
			goto out;
		}
		log_warnx("event=agent_forgotten: registering again");
	}
out:
	free(pids);
	return rc;
}

int agent_run(struct agent *ag, struct err *err)
{
	int rc;

	if (ag->opt.jobs > 1) {
		rc = agent_pool(ag, err);
		log_info("agent stopping (%d job slots)", ag->opt.jobs);
		return rc;
	}
	if (agent_register(ag, err) < 0)
		return *ag->stop ? 0 : -1;
	rc = agent_loop(ag, 1, err);
	log_info("agent stopping after %" PRId64 " job(s)", ag->jobs_done);
	return rc;
}
