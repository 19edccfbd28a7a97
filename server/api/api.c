#include "server/sched/affinity.h"
#include "server/api/api.h"
#include "server/api/apijson.h"
#include "server/api/api_deploy.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/logframe.h"
#include "common/pipefile.h"
#include "server/store/blob.h"
#include "server/api/logdl.h"
#include "server/sched/logtail.h"
#include "server/sched/pipeline.h"
#include "server/release/release_git.h"
#include "server/srv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define API_LOG_READ_MAX (1024 * 1024)
/* A follower of a busy job (logtail's busy) answers once it has this much,
 * or this long after its first new byte. */
#define API_LOG_BATCH_BYTES (512 * 1024)
#define API_LOG_LINGER_MS   50

/* ---- helpers ---- */

static json_t *api_job_json(const struct job_row *j)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(j->id));
	json_object_set_new(o, "pipeline_id", json_integer(j->pipeline_id));
	json_object_set_new(o, "name", apijson_text(j->name));
	json_object_set_new(o, "target", apijson_text(j->target));
	json_object_set_new(o, "kind", apijson_text(j->kind && j->kind[0] ? j->kind : "build"));
	json_object_set_new(o, "state", json_string(jobstate_name(j->state)));
	json_object_set_new(o, "attempt", json_integer(j->attempt));
	json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
	json_object_set_new(o, "exit_code", j->has_exit_code ? json_integer(j->exit_code) : json_null());
	json_object_set_new(o, "agent", j->agent_name ? apijson_text(j->agent_name) : json_null());
	json_object_set_new(o, "message", apijson_url(j->message));
	json_object_set_new(o, "retry_of", j->retry_of ? json_integer(j->retry_of) : json_null());
	json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
	json_object_set_new(o, "log_bytes", json_integer(j->log_bytes));
	json_object_set_new(o, "created_unix_ms", apijson_ms(j->created_ms));
	json_object_set_new(o, "started_unix_ms", apijson_ms(j->started_ms));
	json_object_set_new(o, "finished_unix_ms", apijson_ms(j->finished_ms));
	/* approve: true: "waiting" while queued and not approved (no agent
	 * gets it), "approved" with who and when once it is. */
	json_object_set_new(o, "approval",
	                    !j->approve
	                        ? json_null()
	                        : json_pack("{s:s, s:o, s:o}", "state",
	                                    j->approved_ms           ? "approved"
	                                    : j->state == JOB_QUEUED ? "waiting"
	                                                             : "not given",
	                                    "by", j->approved_by ? apijson_text(j->approved_by) : json_null(),
	                                    "at_unix_ms", apijson_ms(j->approved_ms)));
	return o;
}

static json_t *api_pipeline_json(const struct pipeline_row *p)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(p->id));
	json_object_set_new(o, "repo", apijson_text(p->repo_name));
	json_object_set_new(o, "ref", apijson_text(p->ref));
	json_object_set_new(o, "commit", apijson_text(p->commit_sha));
	json_object_set_new(o, "event", apijson_text(p->event));
	json_object_set_new(o, "state", json_string(jobstate_name(p->state)));
	json_object_set_new(o, "message", apijson_url(p->message));
	json_object_set_new(o, "commit_message", apijson_text(p->commit_message));
	json_object_set_new(o, "author", apijson_text(p->author));
	json_object_set_new(o, "created_unix_ms", apijson_ms(p->created_ms));
	json_object_set_new(o, "finished_unix_ms", apijson_ms(p->finished_ms));
	{
		json_t *vars = p->variables && p->variables[0] ? json_loads(p->variables, 0, NULL) : NULL;

		json_object_set_new(o, "variables", json_is_object(vars) ? vars : json_object());
		if (vars != NULL && !json_is_object(vars))
			json_decref(vars);
	}
	return o;
}

/* Pipeline with its jobs, as answered by GET /pipelines/ID and trigger. */
static int api_pipeline_full(struct srv *srv, int64_t id, json_t **out, struct err *err)
{
	struct pipeline_row p = {0};
	struct job_row *jobs = NULL;
	size_t n = 0;
	json_t *o = NULL, *arr;

	if (store_pipeline_get(srv->store, id, &p, err) < 0)
		return -1;
	if (store_pipeline_jobs(srv->store, id, &jobs, &n, err) < 0) {
		pipeline_row_release(&p);
		return -1;
	}
	o = api_pipeline_json(&p);
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_job_json(&jobs[i]));
	json_object_set_new(o, "jobs", arr);
	job_rows_free(jobs, n);
	pipeline_row_release(&p);
	*out = o;
	return 0;
}

/* A required or optional string field of a JSON body, with a length cap. */
/* Artifact names: relative, no "..", no empty or "." component, printable. */
static int api_artifact_name_ok(const char *name)
{
	const char *p = name;
	size_t n = strlen(name);

	if (n == 0 || n > 255 || name[0] == '/' || !pipeline_text_ok(name))
		return 0;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
		if (*p == '/')
			p++;
	}
	return name[n - 1] != '/';
}

/* The upload's optional mode= query parameter: the permission bits in octal
 * ("0755", "644"); never setuid, setgid or sticky. *out is 0 when absent
 * (an agent from before modes were kept). */
static int api_artifact_mode(struct http_req *req, int *out, struct err *err)
{
	const char *v = http_query(req, "mode");
	size_t n = v != NULL ? strlen(v) : 0;
	int mode = 0;

	*out = 0;
	if (v == NULL)
		return 0;
	if (n < 3 || n > 4 || strspn(v, "01234567") != n)
		return err_set(err, ERR_INVAL,
		               "query parameter mode must be octal permission bits (0755, 0644)");
	for (size_t i = 0; i < n; i++)
		mode = mode * 8 + (v[i] - '0');
	if (mode > 0777)
		return err_set(err, ERR_INVAL,
		               "query parameter mode must not set setuid, setgid or sticky bits");
	*out = mode;
	return 0;
}

/* ---- reads ---- */

static int api_healthz(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	(void)srv;
	(void)req;
	(void)err;
	ans->json = json_pack("{s:b}", "ok", 1);
	return 0;
}

static long api_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int api_metrics(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct store_stats st;
	struct logtail_stats lt;
	struct buf b = BUF_INIT;

	(void)req;
	if (store_stats(srv->store, &st, err) < 0)
		return -1;
	buf_appendf(&b, "# TYPE anvil_jobs gauge\n");
	for (int s = JOB_QUEUED; s <= JOB_ERROR; s++)
		buf_appendf(&b, "anvil_jobs{state=\"%s\"} %lld\n", jobstate_name((enum job_state)s),
		            (long long)st.jobs_by_state[s]);
	buf_appendf(&b, "# TYPE anvil_pipelines_total counter\nanvil_pipelines_total %lld\n",
	            (long long)st.pipelines);
	buf_appendf(&b, "# TYPE anvil_log_bytes_total counter\nanvil_log_bytes_total %lld\n",
	            (long long)st.log_bytes);
	buf_appendf(&b, "# TYPE anvil_blobs gauge\nanvil_blobs %lld\nanvil_blob_bytes %lld\n",
	            (long long)st.blobs, (long long)st.blob_bytes);
	buf_appendf(
	    &b, "# TYPE anvil_process_resident_memory_bytes gauge\nanvil_process_resident_memory_bytes %ld\n",
	    api_rss_kb() * 1024);
	logtail_stats(srv->logtail, &lt);
	buf_appendf(&b,
	            "# TYPE anvil_log_tail_jobs gauge\nanvil_log_tail_jobs %zu\n"
	            "# TYPE anvil_log_tail_bytes gauge\nanvil_log_tail_bytes %zu\n"
	            "# TYPE anvil_log_reads_total counter\nanvil_log_reads_total{from=\"tail\"} %llu\n"
	            "anvil_log_reads_total{from=\"store\"} %llu\n",
	            lt.jobs, lt.bytes, (unsigned long long)lt.tail_reads, (unsigned long long)lt.store_reads);
	buf_appendf(&b, "# TYPE anvil_store_cache_bytes gauge\nanvil_store_cache_bytes %lld\n",
	            (long long)st.cache_bytes);
	buf_appendf(&b, "anvil_uptime_seconds %lld\n", (long long)((srv_now_ms() - srv->started_ms) / 1000));
	ans->raw = buf_detach(&b, &ans->raw_len);
	ans->content_type = "text/plain; version=0.0.4";
	return 0;
}

static int api_pipelines_list(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct pipeline_row *rows = NULL;
	size_t n = 0;
	int64_t limit;
	json_t *arr;

	struct pipeline_filter f = {0};
	enum job_state st;

	if (http_query_i64(req, "limit", 50, 1, 200, &limit, err) < 0 ||
	    http_query_i64(req, "before", 0, 0, INT64_MAX, &f.before_id, err) < 0)
		return -1;
	f.repo = http_query(req, "repo");
	f.ref = http_query(req, "ref");
	f.state = http_query(req, "state");
	f.event = http_query(req, "event");
	if (f.state != NULL && jobstate_parse(f.state, &st) < 0)
		return err_set(err, ERR_INVAL, "state must be a job state (queued, running, success, ...)");
	if (store_pipeline_page(srv->store, &f, (int)limit, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_pipeline_json(&rows[i]));
	pipeline_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "pipelines", arr);
	return 0;
}

static int api_pipeline_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return api_pipeline_full(srv, req->id, &ans->json, err);
}

static int api_job_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};

	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	ans->json = api_job_json(&j);
	job_row_release(&j);
	return 0;
}

/* GET /api/v1/jobs/ID/steps: every attempt's steps (the current attempt's
 * are those with "attempt" equal to the job's). */
static int api_job_steps(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};
	struct step_row *rows = NULL;
	size_t n = 0;

	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	if (store_job_steps(srv->store, req->id, &rows, &n, err) < 0) {
		job_row_release(&j);
		return -1;
	}
	ans->json = json_pack("{s:I, s:i, s:o}", "job", (json_int_t)j.id, "attempt", j.attempt, "steps",
	                      apijson_steps(rows, n));
	step_rows_free(rows, n);
	job_row_release(&j);
	return 0;
}

/* At most this many time marks in one answer ("more": ask again from the
 * last offset). */
#define API_TIMES_MAX 20000

/* GET /api/v1/jobs/ID/times?from=OFF&to=OFF: the log's time marks, each
 * [offset, unix_ms]: the bytes from offset on arrived at the agent then. */
static int api_job_times(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};
	struct logframe_time *t = NULL;
	int64_t from, to;
	size_t n = 0, i;
	json_t *a;

	if (http_query_i64(req, "from", 0, 0, INT64_MAX, &from, err) < 0 ||
	    http_query_i64(req, "to", INT64_MAX, 0, INT64_MAX, &to, err) < 0)
		return -1;
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	job_row_release(&j);
	if (store_log_times(srv->store, req->id, from, to, &t, &n, err) < 0)
		return -1;
	a = json_array();
	for (i = 0; i < n && i < API_TIMES_MAX; i++)
		json_array_append_new(a,
		                      json_pack("[I, I]", (json_int_t)t[i].rel_off, (json_int_t)t[i].at_ms));
	ans->json = json_pack("{s:o, s:b}", "times", a, "more", n > API_TIMES_MAX);
	free(t);
	return 0;
}

/* Sleeps until the monotonic deadline_ms (a follower's bounded linger). */
static void api_sleep_until(int64_t deadline_ms)
{
	struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int api_job_log(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int64_t offset, wait_ms, download, deadline, linger_until = -1;
	struct buf b = BUF_INIT;
	struct logtail_read r = {0};
	struct sched_follow *f = NULL; /* owned */
	char num[32];
	int rc = -1;

	if (http_query_i64(req, "offset", 0, 0, INT64_MAX, &offset, err) < 0 ||
	    http_query_i64(req, "wait_ms", 0, 0, 30000, &wait_ms, err) < 0 ||
	    http_query_i64(req, "download", 0, 0, 1, &download, err) < 0)
		return -1;
	if (download)
		return logdl_answer(srv, req->id, ans, err);
	deadline = sched_mono_ms() + wait_ms;
	if (wait_ms > 0) {
		f = sched_follow_new(srv->sched, req->id);
		logtail_follow(srv->logtail, req->id);
	}
	for (;;) {
		/* The job's generation before the epoch: a state change between
		 * the two is seen by the read, one after them ends the wait. */
		uint64_t gen = f ? sched_follow_gen(f) : 0;
		uint64_t epoch = sched_gen(srv->sched, SCHED_LOGS);
		int64_t now;
		if (logtail_read(srv->logtail, srv->store, epoch, req->id, offset, API_LOG_READ_MAX - b.len,
		                 &b, &r, err) < 0)
			goto out;
		if (b.len > API_LOG_READ_MAX) {
			/* The store stops after the chunk that crosses the limit
			 * (an agent's chunk is up to 512 KiB): one answer still
			 * holds at most 1 MiB, the rest is the next read's. */
			r.next -= (int64_t)(b.len - API_LOG_READ_MAX);
			b.len = API_LOG_READ_MAX;
			b.data[b.len] = '\0';
		}
		offset = r.next;
		now = sched_mono_ms();
		if (jobstate_is_final(r.state) || now >= deadline || sched_stopping(srv->sched))
			break;
		if (b.len > 0) {
			/* A job streaming flat out would cost every follower a round
			 * trip per chunk: gather a while, then answer once. */
			if (!r.busy || b.len >= API_LOG_BATCH_BYTES)
				break;
			if (linger_until < 0)
				linger_until =
				    now + API_LOG_LINGER_MS < deadline ? now + API_LOG_LINGER_MS : deadline;
			if (now >= linger_until)
				break;
			/* Asleep, not waiting on the job: a chunk must not wake
			 * every lingering follower again. */
			api_sleep_until(linger_until);
			continue;
		}
		sched_follow_wait(f, gen, deadline);
	}
	snprintf(num, sizeof(num), "%lld", (long long)r.next);
	http_answer_header(ans, "X-Anvil-Log-Next", num);
	http_answer_header(ans, "X-Anvil-Job-State", jobstate_name(r.state));
	ans->raw = buf_detach(&b, &ans->raw_len);
	ans->content_type = "text/plain; charset=utf-8";
	rc = 0;
out:
	if (f != NULL)
		logtail_unfollow(srv->logtail, req->id);
	sched_follow_free(f);
	buf_release(&b);
	return rc;
}

static int api_job_artifacts(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct artifact_row *rows = NULL;
	struct job_row j = {0};
	size_t n = 0;
	json_t *arr;

	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	job_row_release(&j);
	if (store_artifact_list(srv->store, req->id, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", rows[i].mode);
		json_array_append_new(arr,
		                      json_pack("{s:o, s:I, s:s, s:o}", "name", apijson_text(rows[i].name),
		                                "size", (json_int_t)rows[i].size, "sha256", rows[i].sha256,
		                                "mode", rows[i].mode ? json_string(mode) : json_null()));
	}
	artifact_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "artifacts", arr);
	return 0;
}

int api_artifact_answer(struct srv *srv, int64_t job_id, const char *name, struct http_answer *ans,
                        struct err *err)
{
	struct artifact_row a = {0};
	struct stat sb;
	char *path = NULL;
	int fd, rc = -1;

	if (store_artifact_get(srv->store, job_id, name, &a, err) < 0)
		return -1;
	path = blob_path(srv->blob_dir, a.sha256);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		err_errno(err, "blob %s of artifact is missing", a.sha256);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	ans->fd = fd;
	ans->fd_size = (uint64_t)sb.st_size;
	ans->content_type = "application/octet-stream";
	http_answer_header(ans, "X-Anvil-Sha256", a.sha256);
	if (a.mode != 0) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", a.mode);
		http_answer_header(ans, "X-Anvil-Mode", mode);
	}
	rc = 0;
out:
	free(path);
	free(a.name);
	return rc;
}

static int api_job_artifact_get(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                struct err *err)
{
	return api_artifact_answer(srv, req->id, req->rest, ans, err);
}

/* Forge settings are shown, never the webhook secret or the status token. */
static int api_repos(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct repo_cfg *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (store_repo_cfg_list(srv->store, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack(
		             "{s:I, s:o, s:o, s:o, s:o, s:i, s:b, s:b, s:o}", "id", (json_int_t)rows[i].id,
		             "name", apijson_text(rows[i].name), "url", apijson_url(rows[i].url), "forge",
		             rows[i].forge[0] ? apijson_text(rows[i].forge) : json_null(), "api_url",
		             rows[i].api_url[0] ? apijson_url(rows[i].api_url) : json_null(), "poll_s",
		             rows[i].poll_s, "has_secret", rows[i].hook_secret[0] != '\0', "has_status_token",
		             rows[i].status_token[0] != '\0', "agents", apijson_text(rows[i].agent_labels)));
	repo_cfgs_free(rows, n);
	ans->json = json_pack("{s:o}", "repos", arr);
	return 0;
}

static int api_agents(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct agent_row *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (store_agent_list(srv->store, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *labels = json_loads(rows[i].labels, 0, NULL);
		json_t *ids = json_array();
		for (size_t k = 0; k < rows[i].n_jobs; k++)
			json_array_append_new(ids, json_integer(rows[i].job_ids[k]));
		json_array_append_new(
		    arr,
		    json_pack("{s:I, s:o, s:o, s:I, s:o, s:o}", "id", (json_int_t)rows[i].id, "name",
		              apijson_text(rows[i].name), "labels", labels ? labels : json_array(),
		              "last_seen_unix_ms", (json_int_t)rows[i].last_seen_ms, "job_id",
		              rows[i].job_id ? json_integer(rows[i].job_id) : json_null(), "job_ids", ids));
		json_object_set_new(
		    json_array_get(arr, json_array_size(arr) - 1), "waiting",
		    json_boolean(srv->affinity != NULL && affinity_waiting(srv->affinity, rows[i].id)));
	}
	agent_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "agents", arr);
	return 0;
}

/* ---- admin ---- */

static int api_trigger(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct pipeline_trigger t = {0};
	const char *skipped = NULL;
	char *vars = NULL; /* owned */
	int64_t pid;
	int existed = 0, rc;

	if (apijson_str(req->json, "repo", 1, 100, &t.repo, err) < 0 ||
	    apijson_str(req->json, "url", 1, 1024, &t.url, err) < 0 ||
	    apijson_str(req->json, "ref", 1, 255, &t.ref, err) < 0 ||
	    apijson_str(req->json, "commit", 0, 40, &t.commit, err) < 0 ||
	    apijson_str(req->json, "event", 0, 16, &t.event, err) < 0 ||
	    apijson_str(req->json, "delivery", 0, 128, &t.delivery, err) < 0)
		return -1;
	if (t.event == NULL)
		t.event = "push";
	if (pipeline_variables_check(json_object_get(req->json, "variables"), &vars, err) < 0)
		return -1;
	t.variables = vars;
	t.skipped_out = &skipped;
	rc = pipeline_start(srv, &t, &pid, &existed, err);
	free(vars);
	if (rc < 0)
		return -1;
	if (existed == PIPELINE_SKIPPED) {
		ans->status = 202;
		ans->json = json_pack("{s:s}", "ignored", skipped ? skipped : "skipped");
		return 0;
	}
	ans->status = existed ? 200 : 201;
	return api_pipeline_full(srv, pid, &ans->json, err);
}

static int api_job_cancel(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	if (jobstate_cancel(srv->store, req->id, srv_now_ms(), err) < 0)
		return -1;
	log_info("event=job_cancel job=%lld", (long long)req->id);
	sched_notify(srv->sched, SCHED_LOGS);
	return api_job_get(srv, req, ans, err);
}

static int api_job_retry(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int64_t new_id;

	if (jobstate_retry(srv->store, req->id, srv_now_ms(), &new_id, err) < 0)
		return -1;
	log_info("event=job_retry job=%lld new_job=%lld", (long long)req->id, (long long)new_id);
	sched_notify(srv->sched, SCHED_JOBS);
	req->id = new_id;
	ans->status = 201;
	return api_job_get(srv, req, ans, err);
}

static int api_pipeline_cancel(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	int n = 0;

	if (jobstate_pipeline_cancel(srv->store, req->id, srv_now_ms(), &n, err) < 0)
		return -1;
	log_info("event=pipeline_cancel pipeline=%lld jobs=%d", (long long)req->id, n);
	sched_notify(srv->sched, SCHED_LOGS);
	if (api_pipeline_full(srv, req->id, &ans->json, err) < 0)
		return -1;
	json_object_set_new(ans->json, "jobs_canceled", json_integer(n));
	return 0;
}

static int api_pipeline_retry(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int n = 0;

	if (jobstate_pipeline_retry_failed(srv->store, req->id, srv_now_ms(), &n, err) < 0)
		return -1;
	log_info("event=pipeline_retry pipeline=%lld jobs=%d", (long long)req->id, n);
	sched_notify(srv->sched, SCHED_JOBS);
	sched_notify(srv->sched, SCHED_LOGS);
	if (api_pipeline_full(srv, req->id, &ans->json, err) < 0)
		return -1;
	json_object_set_new(ans->json, "jobs_retried", json_integer(n));
	return 0;
}

/* POST /api/v1/pipelines/ID/approve {"job": NAME?, "by": WHO?, "reject": bool?}:
 * the waiting jobs (that one, or all) are approved or rejected; recorded
 * as "WHO (api)" ("admin" when not said). */
static int api_pipeline_approve(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                struct err *err)
{
	const char *job = NULL, *by = NULL;
	json_t *rj = json_object_get(req->json, "reject"); /* borrowed */
	char *who;
	int n = 0, reject = json_is_true(rj), rc;

	if (apijson_str(req->json, "job", 0, 100, &job, err) < 0 ||
	    apijson_str(req->json, "by", 0, 64, &by, err) < 0)
		return -1;
	if (rj != NULL && !json_is_boolean(rj))
		return err_set(err, ERR_INVAL, "reject must be true or false");
	if (by != NULL && (!pipeline_text_ok(by) || by[0] == '\0'))
		return err_set(err, ERR_INVAL, "by must be 1 to 64 printable characters");
	who = xasprintf("%s (api)", by ? by : "admin");
	rc = jobstate_approve(srv->store, req->id, job, who, reject, srv_now_ms(), &n, err);
	if (rc == 0)
		log_info("event=pipeline_%s pipeline=%lld jobs=%d", reject ? "reject" : "approve",
		         (long long)req->id, n);
	free(who);
	if (rc < 0)
		return -1;
	sched_notify(srv->sched, SCHED_JOBS);
	sched_notify(srv->sched, SCHED_LOGS);
	if (api_pipeline_full(srv, req->id, &ans->json, err) < 0)
		return -1;
	json_object_set_new(ans->json, reject ? "jobs_rejected" : "jobs_approved", json_integer(n));
	return 0;
}

/* ---- agents ---- */

static int api_agent_register(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	const char *name;
	json_t *labels = json_object_get(req->json, "labels"); /* borrowed */
	json_t *v;
	size_t i;
	char *labels_text;
	char token[65], hash[CRYPTO_SHA256_HEX_LEN + 1];
	int64_t id;
	int rc, requeued = 0;

	if (apijson_str(req->json, "name", 1, 100, &name, err) < 0)
		return -1;
	if (!pipeline_name_ok(name, 100))
		return err_set(err, ERR_INVAL, "agent name must be [A-Za-z0-9._-]+");
	if (labels != NULL && !json_is_array(labels))
		return err_set(err, ERR_INVAL, "field 'labels' must be an array of strings");
	if (labels != NULL && json_array_size(labels) > 64)
		return err_set(err, ERR_LIMIT, "at most 64 labels");
	json_array_foreach(labels, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) > 128 ||
		    !pipeline_text_ok(json_string_value(v)))
			return err_set(err, ERR_INVAL,
			               "label %zu must be a printable string of at most 128 bytes", i);
	}
	if (crypto_random_hex(token, 32, err) < 0)
		return -1;
	crypto_sha256_hex(token, strlen(token), hash);
	labels_text = labels ? json_dumps(labels, JSON_COMPACT) : xstrdup("[]");
	rc = jobstate_agent_register(srv->store, name, labels_text, hash, srv_now_ms(), &id, &requeued, err);
	free(labels_text);
	if (rc < 0) {
		explicit_bzero(token, sizeof(token));
		return -1;
	}
	log_info("event=agent_registered agent=%s id=%lld requeued=%d", name, (long long)id, requeued);
	if (requeued > 0) {
		sched_notify(srv->sched, SCHED_JOBS);
		sched_notify(srv->sched, SCHED_LOGS);
	}
	/* The token is shown once: the store keeps its sha256 only. */
	ans->json = json_pack("{s:I, s:s}", "agent_id", (json_int_t)id, "token", token);
	explicit_bzero(token, sizeof(token));
	return 0;
}

/* agent rm: the token stops working at once, the running job goes back to
 * the queue (attempt + 1 at its next claim, as after a lost lease). */
static int api_agent_rm(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int64_t id;
	int requeued = 0;

	if (jobstate_agent_remove(srv->store, req->rest, srv_now_ms(), &id, &requeued, err) < 0)
		return -1;
	log_info("event=agent_removed agent=%lld requeued=%d", (long long)id, requeued);
	if (requeued > 0) {
		sched_notify(srv->sched, SCHED_JOBS);
		sched_notify(srv->sched, SCHED_LOGS);
	}
	ans->json = json_pack("{s:I, s:i}", "agent_id", (json_int_t)id, "requeued", requeued);
	return 0;
}

/* The repository's secrets: "secrets" as KEY=VALUE for the step
 * environment and "mask", the values the agent replaces with *** in the log:
 * only values that are in this environment. Push credentials (ANVIL_GIT_*,
 * release_git.h) are the server's and never leave it, not even as a mask.
 * A store failure leaves them out (logged): the job runs without. */
static void api_claim_secrets(struct srv *srv, const struct job_row *j, json_t *spec)
{
	struct strv names = STRV_INIT, values = STRV_INIT;
	json_t *env = json_array(), *mask = json_array();
	struct strv all = STRV_INIT;
	struct err err = {0};
	/* A pull request from a fork runs code its author wrote: only the
	 * secrets set with pull requests allowed (pipeline.c marks it). */
	int fork_pr = json_is_true(json_object_get(spec, "fork_pr"));
	size_t withheld = 0;

	if (store_secret_list(srv->store, j->repo_name, fork_pr, &names, &values, &err) < 0)
		log_warnx("event=secrets_unreadable job=%lld error=\"%s\"", (long long)j->id, err.msg);
	if (fork_pr && store_secret_list(srv->store, j->repo_name, 0, &all, NULL, &err) == 0)
		withheld = all.n - names.n;
	strv_release(&all);
	for (size_t i = 0; i < names.n; i++) {
		char *kv;
		if (release_git_secret_is_push(names.v[i]))
			continue;
		kv = xasprintf("%s=%s", names.v[i], values.v[i]);
		json_array_append_new(env, apijson_text(kv));
		json_array_append_new(mask, apijson_text(values.v[i]));
		free(kv);
	}
	if (withheld > 0)
		log_info("event=secrets_withheld job=%lld n=%zu reason=fork_pull_request", (long long)j->id,
		         withheld);
	json_object_set_new(spec, "secrets", env);
	json_object_set_new(spec, "mask", mask);
	strv_release(&names);
	strv_release(&values);
}

/* inputs: the artifacts of the jobs this one needs (needs:), for the agent
 * to download from /api/v1/agents/jobs/ID/inputs/FROM/NAME before the
 * steps. A store failure leaves them out (logged): the steps that want
 * them fail. */
static void api_claim_inputs(struct srv *srv, const struct job_row *j, json_t *spec)
{
	struct job_input *in = NULL;
	json_t *arr = json_array(); /* owned until set */
	struct err err = {0};
	size_t n = 0;

	if (store_job_inputs(srv->store, j->id, &in, &n, &err) < 0)
		log_warnx("event=inputs_unreadable job=%lld error=\"%s\"", (long long)j->id, err.msg);
	for (size_t i = 0; i < n; i++) {
		char mode[8];

		snprintf(mode, sizeof(mode), "%04o", in[i].a.mode);
		json_array_append_new(
		    arr, json_pack("{s:I, s:o, s:o, s:o, s:s, s:I, s:o}", "job_id", (json_int_t)in[i].job_id,
		                   "job", apijson_text(in[i].job_name), "target",
		                   apijson_text(in[i].job_target), "name", apijson_text(in[i].a.name),
		                   "sha256", in[i].a.sha256, "size", (json_int_t)in[i].a.size, "mode",
		                   in[i].a.mode ? json_string(mode) : json_null()));
	}
	job_inputs_free(in, n);
	json_object_set_new(spec, "inputs", arr);
}

/* GET /api/v1/agents/jobs/:id/inputs/FROM/NAME: an artifact of job FROM,
 * only when the agent holds job :id and FROM is a job :id needs (so of its
 * own pipeline): an agent never reads another pipeline's artifacts here. */
static int api_agent_input(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct job_input *in = NULL;
	const char *slash = strchr(req->rest, '/');
	char *end = NULL;
	long long from;
	size_t n = 0, i;
	int rc = -1;

	if (slash == NULL || slash == req->rest || (from = strtoll(req->rest, &end, 10), end != slash) ||
	    from <= 0)
		return err_set(err, ERR_INVAL, "expected inputs/JOB_ID/NAME");
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0 ||
	    store_job_inputs(srv->store, req->id, &in, &n, err) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (in[i].job_id == from && strcmp(in[i].a.name, slash + 1) == 0)
			break;
	if (i == n)
		err_set(err, ERR_NOTFOUND, "job %lld has no input %lld/%s", (long long)req->id, from,
		        slash + 1);
	else
		rc = api_artifact_answer(srv, from, slash + 1, ans, err);
	job_inputs_free(in, n);
	return rc;
}

/* A manual trigger's variables (the pipeline's) go first into the job's
 * env, so they win over the pipeline file's; the agent puts anvil's own
 * variables and the repository's secrets before env, so neither can be
 * replaced by one. A store failure leaves them out (logged). */
static void api_claim_variables(struct srv *srv, const struct job_row *j, json_t *spec)
{
	struct pipeline_row p = {0};
	struct err err = {0};
	json_t *vars = NULL, *env = json_array(), *old; /* vars, env owned; old borrowed */
	const char *k;
	json_t *v;

	if (store_pipeline_get(srv->store, j->pipeline_id, &p, &err) < 0)
		log_warnx("event=variables_unreadable job=%lld error=\"%s\"", (long long)j->id, err.msg);
	else if (p.variables != NULL && p.variables[0] != '\0')
		vars = json_loads(p.variables, 0, NULL);
	pipeline_row_release(&p);
	if (!json_is_object(vars) || json_object_size(vars) == 0) {
		json_decref(vars);
		json_decref(env);
		return;
	}
	json_object_foreach(vars, k, v)
	{
		char *kv = xasprintf("%s=%s", k, json_string_value(v) ? json_string_value(v) : "");

		json_array_append_new(env, json_string(kv));
		free(kv);
	}
	old = json_object_get(spec, "env");
	if (json_is_array(old))
		json_array_extend(env, old);
	json_object_set_new(spec, "env", env);
	json_decref(vars);
}

static json_t *api_claim_spec(struct srv *srv, const struct job_row *j)
{
	json_t *spec = json_loads(j->spec, 0, NULL); /* owned */
	char *fetch;

	if (spec == NULL)
		spec = json_object();
	json_object_set_new(spec, "id", json_integer(j->id));
	json_object_set_new(spec, "attempt", json_integer(j->attempt));
	json_object_set_new(spec, "pipeline_id", json_integer(j->pipeline_id));
	/* fetch: where the agent gets the commit, the server's own copy of the
	 * repository (api_git.h), so it needs no access to the forge and no
	 * credentials: url, the repository's identity (the agent's mirror cache
	 * key), is shown with them as *** like everywhere else. */
	fetch = xasprintf("/api/v1/agents/jobs/%lld/git", (long long)j->id);
	json_object_set_new(spec, "repo",
	                    json_pack("{s:o, s:o, s:s}", "name", apijson_text(j->repo_name), "url",
	                              apijson_url(j->repo_url), "fetch", fetch));
	free(fetch);
	{
		json_t *subs = json_object_get(spec, "submodules"), *sm; /* borrowed */
		size_t k;

		json_array_foreach(subs, k, sm)
		{
			const char *r = json_string_value(json_object_get(sm, "repo"));
			if (r != NULL && json_is_object(sm))
				json_object_set_new(
				    sm, "fetch",
				    json_sprintf("/api/v1/agents/jobs/%lld/sub/%s", (long long)j->id, r));
		}
	}
	json_object_set_new(spec, "ref", apijson_text(j->ref));
	json_object_set_new(spec, "commit", apijson_text(j->commit_sha));
	json_object_set_new(spec, "target", apijson_text(j->target));
	json_object_set_new(spec, "lease_s", json_integer(srv->cfg.lease_s));
	json_object_set_new(spec, "log_cap_bytes", json_integer(srv->cfg.log_cap_bytes));
	api_claim_secrets(srv, j, spec);
	api_claim_variables(srv, j, spec);
	json_object_set_new(spec, "name", apijson_text(j->name));
	if (j->kind != NULL && strcmp(j->kind, "deploy") == 0)
		api_deploy_claim_spec(srv, j, spec);
	else
		api_claim_inputs(srv, j, spec);
	return spec;
}

struct api_claim_cls {
	struct srv *srv;
	int64_t agent_id;
};

/* jobstate_pref's leave: the job's warm agent is another, idle one. */
static int api_claim_leave(void *cls, uint64_t key)
{
	const struct api_claim_cls *c = cls;

	return affinity_leave(c->srv->affinity, key, c->agent_id);
}

static int api_agent_claim(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	json_int_t agent_id = req->agent_id, body_id, wait_ms;
	char *labels_text = NULL;
	json_t *labels = NULL, *v;
	struct strv agent_labels = STRV_INIT;
	struct job_row j = {0};
	int64_t deadline = 0, grace_until = 0;
	size_t i;
	int found = 0, rc = -1, prefer = srv->affinity != NULL;

	if (apijson_int(req->json, "agent_id", 0, 0, 1, INT64_MAX, &body_id, err) < 0 ||
	    apijson_int(req->json, "wait_ms", 0, 0, 0, 60000, &wait_ms, err) < 0)
		return -1;
	/* The token names the agent; an agent_id in the body (older agents
	 * send it) must agree. */
	if (body_id != 0 && body_id != agent_id)
		return err_set(err, ERR_FORBIDDEN, "agent_id %lld is not this token's agent",
		               (long long)body_id);
	if (store_agent_labels(srv->store, agent_id, &labels_text, err) < 0)
		return -1;
	labels = json_loads(labels_text, 0, NULL);
	json_array_foreach(labels, i, v)
	{
		const char *l = json_string_value(v);
		if (l)
			strv_push(&agent_labels, l);
	}
	deadline = sched_mono_ms() + wait_ms;
	if (srv->affinity != NULL)
		affinity_idle_enter(srv->affinity, agent_id);
	for (;;) {
		uint64_t gen = sched_gen(srv->sched, SCHED_JOBS);
		struct api_claim_cls lc = {srv, agent_id};
		struct jobstate_pref pref = {prefer ? api_claim_leave : NULL, &lc, 0, 0};
		int64_t now, until;

		if (http_peer_gone(req)) {
			err_set(err, ERR_UNAVAIL, "agent %lld hung up", (long long)agent_id);
			goto out;
		}
		if (store_agent_touch(srv->store, agent_id, srv_now_ms(), err) < 0)
			goto out;
		if (jobstate_claim_pref(srv->store, agent_id, (const char *const *)agent_labels.v,
		                        agent_labels.n, srv_now_ms(), (int64_t)srv->cfg.lease_s * 1000, &pref,
		                        &j, &found, err) < 0)
			goto out;
		if (found) {
			if (srv->affinity != NULL)
				affinity_claimed(srv->affinity, pref.picked_key, agent_id);
			break;
		}
		now = sched_mono_ms();
		if (now >= deadline || sched_stopping(srv->sched))
			break;
		until = deadline;
		if (pref.left > 0) { /* a job waits for its warm agent: for a while */
			if (grace_until == 0) {
				grace_until = now + AFFINITY_GRACE_MS;
				affinity_graced(srv->affinity, 1);
			}
			if (now >= grace_until) {
				prefer = 0; /* one pass that takes it */
				continue;
			}
			if (grace_until < until)
				until = grace_until;
		} else if (grace_until != 0) { /* nothing left for another now: over */
			grace_until = 0;
			affinity_graced(srv->affinity, -1);
			prefer = 1;
		}
		sched_wait(srv->sched, SCHED_JOBS, gen, until);
	}
	if (!found) {
		ans->status = 204;
		rc = 0;
		goto out;
	}
	log_info("event=job_claimed job=%lld agent=%lld attempt=%d target=%s", (long long)j.id,
	         (long long)agent_id, j.attempt, j.target);
	sched_notify(srv->sched, SCHED_LOGS);
	ans->json = json_pack("{s:o}", "job", api_claim_spec(srv, &j));
	rc = 0;
out:
	if (deadline != 0 && srv->affinity != NULL) {
		if (grace_until != 0)
			affinity_graced(srv->affinity, -1);
		if (affinity_idle_leave(srv->affinity, agent_id))
			sched_notify(srv->sched,
			             SCHED_JOBS); /* claims leaving a job for this agent look again */
	}
	job_row_release(&j);
	strv_release(&agent_labels);
	json_decref(labels);
	free(labels_text);
	return rc;
}

static int api_agent_heartbeat(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	json_int_t attempt, wait_ms;
	int64_t deadline;
	int cancel = 0;

	if (apijson_int(req->json, "attempt", 1, 0, 1, INT32_MAX, &attempt, err) < 0 ||
	    apijson_int(req->json, "wait_ms", 0, 0, 0, 60000, &wait_ms, err) < 0 ||
	    store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	if (store_job_heartbeat(srv->store, req->id, (int)attempt, srv_now_ms(),
	                        (int64_t)srv->cfg.lease_s * 1000, &cancel, err) < 0)
		return -1;
	/* With wait_ms the beat is also a long poll for a cancel, so a cancel
	 * reaches the agent at once, not a beat later; never past half the
	 * lease it has just extended. */
	if (wait_ms > (json_int_t)srv->cfg.lease_s * 500)
		wait_ms = (json_int_t)srv->cfg.lease_s * 500;
	deadline = sched_mono_ms() + wait_ms;
	while (!cancel && sched_mono_ms() < deadline && !sched_stopping(srv->sched) && !http_peer_gone(req)) {
		uint64_t gen =
		    sched_gen(srv->sched, SCHED_LOGS); /* moves on a cancel and every state change */
		struct job_row j = {0};
		int ours;

		if (store_job_get(srv->store, req->id, &j, err) < 0)
			return -1;
		ours = j.state == JOB_RUNNING && j.attempt == (int)attempt;
		cancel = ours && j.cancel_requested;
		job_row_release(&j);
		if (!ours || cancel)
			break;
		sched_wait(srv->sched, SCHED_LOGS, gen, deadline);
	}
	ans->json = json_pack("{s:b}", "cancel", cancel);
	return 0;
}

static int api_agent_log(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int64_t attempt, seq;
	uint64_t epoch = sched_gen(srv->sched, SCHED_LOGS);
	int accepted = 0, truncated = 0;

	if (http_query_i64(req, "attempt", -1, 1, INT32_MAX, &attempt, err) < 0 ||
	    http_query_i64(req, "seq", -1, 0, INT64_MAX, &seq, err) < 0)
		return -1;
	if (attempt < 0 || seq < 0)
		return err_set(err, ERR_INVAL, "query parameters attempt and seq are required");
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	if (http_query(req, "frame") != NULL && strcmp(http_query(req, "frame"), "1") == 0) {
		/* steps and time marks beside the log bytes (common/logframe.h) */
		struct logframe f;
		int rc;
		if (logframe_decode(&f, req->body.data != NULL ? req->body.data : "", req->body.len, err) < 0)
			return -1;
		rc = logtail_append_frame(srv->logtail, srv->store, epoch, req->id, (int)attempt, seq, &f,
		                          srv->cfg.log_cap_bytes, &accepted, &truncated, err);
		logframe_release(&f);
		if (rc < 0)
			return -1;
	} else if (logtail_append(srv->logtail, srv->store, epoch, req->id, (int)attempt, seq, req->body.data,
	                          req->body.len, srv->cfg.log_cap_bytes, &accepted, &truncated, err) < 0) {
		return -1;
	}
	/* Only this job's followers: one chunk must not wake every log reader. */
	if (accepted)
		sched_log_notify(srv->sched, req->id);
	ans->json = json_pack("{s:b, s:b}", "accepted", accepted, "truncated", truncated);
	return 0;
}

static int api_agent_artifact_begin(struct srv *srv, struct http_req *req, struct err *err)
{
	int64_t attempt;
	const char *sha = http_query(req, "sha256");
	struct job_row j = {0};
	int ok, mode;

	(void)srv;
	if (api_artifact_mode(req, &mode, err) < 0)
		return -1;
	if (!api_artifact_name_ok(req->rest))
		return err_set(err, ERR_INVAL,
		               "artifact name must be a relative path without '..' or control characters");
	if (!crypto_is_sha256_hex(sha))
		return err_set(err, ERR_INVAL, "query parameter sha256 must be 64 lowercase hex characters");
	if (http_query_i64(req, "attempt", 0, 1, INT32_MAX, &attempt, err) < 0)
		return -1;
	/* Before the body: another agent's upload is refused unread. */
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	ok = j.state == JOB_RUNNING && j.attempt == attempt;
	job_row_release(&j);
	if (!ok)
		return err_set(err, ERR_CONFLICT, "job %lld is not running at attempt %lld",
		               (long long)req->id, (long long)attempt);
	return 0;
}

static int api_agent_artifact(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int64_t attempt, size = 0;
	const char *sha = http_query(req, "sha256");
	int mode;
	char mode_text[8];

	if (http_query_i64(req, "attempt", 0, 1, INT32_MAX, &attempt, err) < 0 ||
	    api_artifact_mode(req, &mode, err) < 0)
		return -1;
	/* The file and its row appear together for the blob collector. */
	pthread_mutex_lock(&srv->blob_mu);
	if (blob_writer_commit(req->blob, sha, &size, err) < 0 ||
	    store_artifact_add(srv->store, req->id, (int)attempt, req->rest, sha, size, mode, srv_now_ms(),
	                       err) < 0) {
		pthread_mutex_unlock(&srv->blob_mu);
		return -1;
	}
	pthread_mutex_unlock(&srv->blob_mu);
	snprintf(mode_text, sizeof(mode_text), "%04o", mode);
	log_info("event=artifact_stored job=%lld size=%lld sha256=%s mode=%s", (long long)req->id,
	         (long long)size, sha, mode ? mode_text : "-");
	ans->status = 201;
	ans->json =
	    json_pack("{s:o, s:I, s:s, s:o}", "name", apijson_text(req->rest), "size", (json_int_t)size,
	              "sha256", sha, "mode", mode ? json_string(mode_text) : json_null());
	return 0;
}

static int api_agent_finish(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	json_int_t attempt, exit_code;
	const char *state_name, *message;
	json_t *ec = json_object_get(req->json, "exit_code"); /* borrowed */
	enum job_state state;
	struct job_row j = {0};

	if (apijson_int(req->json, "attempt", 1, 0, 1, INT32_MAX, &attempt, err) < 0 ||
	    apijson_str(req->json, "state", 1, 16, &state_name, err) < 0 ||
	    apijson_int(req->json, "exit_code", 0, 0, -1, 255, &exit_code, err) < 0 ||
	    apijson_str(req->json, "message", 0, 1000, &message, err) < 0)
		return -1;
	if (jobstate_parse(state_name, &state) < 0 || !jobstate_is_final(state))
		return err_set(err, ERR_INVAL, "state must be success, failed, canceled or error");
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	if (jobstate_finish(srv->store, req->id, (int)attempt, state, ec != NULL && !json_is_null(ec),
	                    (int)exit_code, message, srv_now_ms(), err) < 0)
		return -1;
	log_info("event=job_finished job=%lld state=%s exit_code=%lld", (long long)req->id, state_name,
	         (long long)exit_code);
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return -1;
	/* Before the wake-up: followers at the end stop without the store. */
	logtail_finish(srv->logtail, j.id, j.state, j.log_bytes);
	sched_notify(srv->sched, SCHED_LOGS);
	/* A pipeline's last build success queues its deploy jobs (a trigger in
	 * the finish's transaction): wake the agents' long polls for them now,
	 * not at their next 25 s poll. */
	sched_notify(srv->sched, SCHED_JOBS);
	ans->json = api_job_json(&j);
	job_row_release(&j);
	return 0;
}

/* The agent is stopping before it could finish the job: back to the queue
 * now, not when the lease runs out. */
static int api_agent_give_back(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	json_int_t attempt;

	if (apijson_int(req->json, "attempt", 1, 0, 1, INT32_MAX, &attempt, err) < 0)
		return -1;
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	if (jobstate_give_back(srv->store, req->id, (int)attempt, srv_now_ms(), err) < 0)
		return -1;
	log_info("event=job_given_back job=%lld agent=%lld attempt=%lld", (long long)req->id,
	         (long long)req->agent_id, (long long)attempt);
	sched_notify(srv->sched, SCHED_JOBS);
	sched_notify(srv->sched, SCHED_LOGS);
	ans->json = json_pack("{s:b}", "requeued", 1);
	return 0;
}

/* Ends every web UI session at once (a leaked cookie, a lost laptop). */
static int api_sessions_revoke(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	int n = 0;

	(void)req;
	if (store_session_delete_all(srv->store, &n, err) < 0)
		return -1;
	log_info("event=ui_sessions_revoked sessions=%d", n);
	ans->json = json_pack("{s:i}", "revoked", n);
	return 0;
}

const struct http_route api_routes[] = {
    {"GET", "/healthz", AUTH_READ, BODY_NONE, NULL, api_healthz},
    {"GET", "/metrics", AUTH_READ, BODY_NONE, NULL, api_metrics},
    {"GET", "/api/v1/pipelines", AUTH_READ, BODY_NONE, NULL, api_pipelines_list},
    {"GET", "/api/v1/pipelines/:id", AUTH_READ, BODY_NONE, NULL, api_pipeline_get},
    {"GET", "/api/v1/jobs/:id", AUTH_READ, BODY_NONE, NULL, api_job_get},
    {"GET", "/api/v1/jobs/:id/log", AUTH_READ, BODY_NONE, NULL, api_job_log},
    {"GET", "/api/v1/jobs/:id/steps", AUTH_READ, BODY_NONE, NULL, api_job_steps},
    {"GET", "/api/v1/jobs/:id/times", AUTH_READ, BODY_NONE, NULL, api_job_times},
    {"GET", "/api/v1/jobs/:id/artifacts", AUTH_READ, BODY_NONE, NULL, api_job_artifacts},
    {"GET", "/api/v1/jobs/:id/artifacts/*", AUTH_READ, BODY_NONE, NULL, api_job_artifact_get},
    {"GET", "/api/v1/repos", AUTH_READ, BODY_NONE, NULL, api_repos},
    {"GET", "/api/v1/agents", AUTH_READ, BODY_NONE, NULL, api_agents},
    {"DELETE", "/api/v1/sessions", AUTH_ADMIN, BODY_NONE, NULL, api_sessions_revoke},
    {"POST", "/api/v1/trigger", AUTH_ADMIN, BODY_JSON, NULL, api_trigger},
    {"POST", "/api/v1/jobs/:id/cancel", AUTH_ADMIN, BODY_NONE, NULL, api_job_cancel},
    {"POST", "/api/v1/jobs/:id/retry", AUTH_ADMIN, BODY_NONE, NULL, api_job_retry},
    {"POST", "/api/v1/pipelines/:id/cancel", AUTH_ADMIN, BODY_NONE, NULL, api_pipeline_cancel},
    {"POST", "/api/v1/pipelines/:id/retry", AUTH_ADMIN, BODY_NONE, NULL, api_pipeline_retry},
    {"POST", "/api/v1/pipelines/:id/approve", AUTH_ADMIN, BODY_JSON, NULL, api_pipeline_approve},
    {"POST", "/api/v1/agents/register", AUTH_ENROLL, BODY_JSON, NULL, api_agent_register},
    {"DELETE", "/api/v1/agents/*", AUTH_ADMIN, BODY_NONE, NULL, api_agent_rm},
    {"POST", "/api/v1/agents/claim", AUTH_AGENT, BODY_JSON, NULL, api_agent_claim},
    {"POST", "/api/v1/agents/jobs/:id/heartbeat", AUTH_AGENT, BODY_JSON, NULL, api_agent_heartbeat},
    {"POST", "/api/v1/agents/jobs/:id/log", AUTH_AGENT, BODY_RAW, NULL, api_agent_log},
    {"PUT", "/api/v1/agents/jobs/:id/artifacts/*", AUTH_AGENT, BODY_BLOB, api_agent_artifact_begin,
     api_agent_artifact},
    {"GET", "/api/v1/agents/jobs/:id/inputs/*", AUTH_AGENT, BODY_NONE, NULL, api_agent_input},
    {"POST", "/api/v1/agents/jobs/:id/finish", AUTH_AGENT, BODY_JSON, NULL, api_agent_finish},
    {"POST", "/api/v1/agents/jobs/:id/requeue", AUTH_AGENT, BODY_JSON, NULL, api_agent_give_back},
};
const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
