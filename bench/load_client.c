/* Load client for tests/e2e/t_load.sh: log ingest while many clients follow
 * the same job's live log.
 *   load_client follow URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT MB FOLLOWERS [PACE_MS]
 * triggers one pipeline (one job), starts FOLLOWERS threads that long-poll
 * GET /api/v1/jobs/ID/log?offset=..&wait_ms=5000 until the job is final and
 * the body is empty, waits until each has asked once, then claims the job as
 * an agent, streams MB MiB of log in 64 KiB chunks (timed; with PACE_MS, chunk
 * i is not sent before i * PACE_MS ms, a job printing at a steady rate, else
 * as fast as the server takes them), finishes it and
 * joins the followers. Prints one line:
 *   followers=N ingest_mb=MB seconds=S mb_per_s=R followers_complete=K
 * Exits 1 when a follower did not receive exactly the job's log, byte for
 * byte in length. Needs no other agent claiming host jobs meanwhile. */
#include "common/httpc.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct follower {
	pthread_t thread;
	const char *url;
	int64_t job;
	uint64_t bytes; /* log bytes received */
	int ok;         /* reached a final state with an empty body */
};

static atomic_int asked; /* followers that sent their first request */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *must(struct httpc *c, const char *method, const char *path, json_t *body)
{
	struct err err = {0};
	json_t *out = NULL;

	if (httpc_json(c, method, path, body, 70000, &out, &err) < 0)
		fatalx("%s %s: %s", method, path, err.msg);
	json_decref(body);
	return out;
}

static int state_final(const char *s)
{
	return s && (!strcmp(s, "success") || !strcmp(s, "failed") || !strcmp(s, "canceled") ||
	             !strcmp(s, "error"));
}

static void *follow(void *arg)
{
	struct follower *f = arg;
	struct httpc *c = httpc_new(f->url, NULL);
	uint64_t off = 0;
	char path[128];
	int first = 1;

	for (int rounds = 0; rounds < 100000; rounds++) {
		struct httpc_req req = HTTPC_REQ_INIT;
		struct httpc_resp resp = HTTPC_RESP_INIT;
		struct err err = {0};
		const char *next, *state;
		int final;

		snprintf(path, sizeof(path), "/api/v1/jobs/%" PRId64 "/log?offset=%" PRIu64 "&wait_ms=5000",
		         f->job, off);
		req.method = "GET";
		req.path = path;
		req.timeout_ms = 20000;
		if (first) {
			atomic_fetch_add(&asked, 1);
			first = 0;
		}
		if (httpc_do(c, &req, &resp, &err) < 0 || resp.status != 200) {
			log_warnx("follower: %s (status %ld)", err.msg, resp.status);
			httpc_resp_release(&resp);
			break;
		}
		next = httpc_resp_header(&resp, "x-anvil-log-next");
		state = httpc_resp_header(&resp, "x-anvil-job-state");
		f->bytes += resp.body.len;
		off = next ? strtoull(next, NULL, 10) : off + resp.body.len;
		final = state_final(state) && resp.body.len == 0;
		httpc_resp_release(&resp);
		if (final) {
			f->ok = 1;
			break;
		}
	}
	httpc_free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct httpc *admin, *agent;
	struct follower *fs;
	json_t *ans;
	int64_t job, agent_id, got, log_bytes;
	int mb, n, pace_ms, complete = 0;
	size_t chunk = 64 * 1024, total;
	char *data, path[128], delivery[64];
	double t0, dt;

	if ((argc != 9 && argc != 10) || strcmp(argv[1], "follow") != 0)
		fatalx("usage: load_client follow URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT MB FOLLOWERS "
		       "[PACE_MS]");
	log_init("load_client", LOG_LVL_WARN);
	mb = atoi(argv[7]);
	n = atoi(argv[8]);
	pace_ms = argc == 10 ? atoi(argv[9]) : 0;
	total = (size_t)mb * 1024 * 1024;
	admin = httpc_new(argv[2], argv[3]);
	agent = httpc_new(argv[2], argv[4]);
	snprintf(delivery, sizeof(delivery), "load-follow-%d-%ld-%ld", n, (long)time(NULL), (long)getpid());
	ans = must(admin, "POST", "/api/v1/trigger",
	           json_pack("{s:s, s:s, s:s, s:s, s:s}", "repo", "load", "url", argv[5], "ref",
	                     "refs/heads/main", "commit", argv[6], "delivery", delivery));
	job = json_integer_value(json_object_get(json_array_get(json_object_get(ans, "jobs"), 0), "id"));
	json_decref(ans);

	fs = xcalloc((size_t)n + 1, sizeof(*fs));
	for (int i = 0; i < n; i++) {
		fs[i].url = argv[2];
		fs[i].job = job;
		if (pthread_create(&fs[i].thread, NULL, follow, &fs[i]) != 0)
			fatalx("pthread_create failed");
	}
	while (atomic_load(&asked) < n)
		nanosleep(&(struct timespec){0, 1000000}, NULL);

	ans = must(agent, "POST", "/api/v1/agents/register",
	           json_pack("{s:s, s:[s]}", "name", "load-ingest", "labels", "target=host"));
	agent_id = json_integer_value(json_object_get(ans, "agent_id"));
	/* The enrollment secret only registers: the rest uses the agent's token. */
	httpc_free(agent);
	agent = httpc_new(argv[2], json_string_value(json_object_get(ans, "token")));
	json_decref(ans);
	ans = must(agent, "POST", "/api/v1/agents/claim",
	           json_pack("{s:I, s:i}", "agent_id", (json_int_t)agent_id, "wait_ms", 5000));
	got = ans ? json_integer_value(json_object_get(json_object_get(ans, "job"), "id")) : 0;
	json_decref(ans);
	if (got != job)
		fatalx("claimed job %" PRId64 ", expected %" PRId64, got, job);

	data = xmalloc(chunk);
	for (size_t i = 0; i < chunk; i++)
		data[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
	t0 = now_s();
	for (size_t seq = 0; seq * chunk < total; seq++) {
		struct httpc_req req = HTTPC_REQ_INIT;
		struct httpc_resp resp = HTTPC_RESP_INIT;
		struct err err = {0};
		double due = t0 + (double)seq * pace_ms / 1000.0, wait_s;
		while (pace_ms > 0 && (wait_s = due - now_s()) > 0)
			nanosleep(&(struct timespec){0, (long)(wait_s > 0.5 ? 5e8 : wait_s * 1e9)}, NULL);
		snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/log?attempt=1&seq=%zu", job,
		         seq);
		req.method = "POST";
		req.path = path;
		req.body = data;
		req.body_len = chunk;
		req.content_type = "application/octet-stream";
		if (httpc_do(agent, &req, &resp, &err) < 0 || resp.status != 200)
			fatalx("log chunk %zu: %s (status %ld)", seq, err.msg, resp.status);
		httpc_resp_release(&resp);
	}
	dt = now_s() - t0;
	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/finish", job);
	json_decref(must(agent, "POST", path,
	                 json_pack("{s:i, s:s, s:i}", "attempt", 1, "state", "success", "exit_code", 0)));
	snprintf(path, sizeof(path), "/api/v1/jobs/%" PRId64, job);
	ans = must(admin, "GET", path, NULL);
	log_bytes = json_integer_value(json_object_get(ans, "log_bytes"));
	json_decref(ans);

	for (int i = 0; i < n; i++) {
		pthread_join(fs[i].thread, NULL);
		if (fs[i].ok && fs[i].bytes == (uint64_t)log_bytes)
			complete++;
		else
			log_warnx("follower %d: ok=%d bytes=%" PRIu64 " of %" PRId64, i, fs[i].ok,
			          fs[i].bytes, log_bytes);
	}
	printf("followers=%d pace_ms=%d ingest_mb=%d seconds=%.2f mb_per_s=%.1f followers_complete=%d "
	       "log_bytes=%" PRId64 "\n",
	       n, pace_ms, mb, dt, mb / dt, complete, log_bytes);
	free(data);
	free(fs);
	httpc_free(admin);
	httpc_free(agent);
	return complete == n ? 0 : 1;
}
