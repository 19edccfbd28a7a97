/* A load client for the server benchmarks (bench/server.sh): drives the
 * JSON API as many pipelines and an agent would, and prints figures.
 *   bench_client jobs URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT N
 *       triggers N pipelines (one job each), claims them, sends each a
 *       one-line log and finishes them; prints jobs/s.
 *   bench_client ingest URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT MB
 *       one job, MB megabytes of log in 64 KiB chunks; prints MB/s.
 *   bench_client queue URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT N
 *       triggers N pipelines back to back over one kept-alive connection
 *       (real agents run them); prints the triggering time. */
#include "common/httpc.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int64_t trigger(struct httpc *admin, const char *repo_url, const char *commit, int i)
{
	char delivery[64];
	json_t *ans;
	int64_t id;

	snprintf(delivery, sizeof(delivery), "bench-%d-%ld", i, (long)time(NULL));
	ans = must(admin, "POST", "/api/v1/trigger",
	           json_pack("{s:s, s:s, s:s, s:s, s:s}", "repo", "bench", "url", repo_url, "ref",
	                     "refs/heads/main", "commit", commit, "delivery", delivery));
	id = json_integer_value(json_object_get(json_array_get(json_object_get(ans, "jobs"), 0), "id"));
	json_decref(ans);
	return id;
}

static int64_t claim(struct httpc *agent, int64_t agent_id)
{
	json_t *ans = must(agent, "POST", "/api/v1/agents/claim",
	                   json_pack("{s:I, s:i}", "agent_id", (json_int_t)agent_id, "wait_ms", 5000));
	int64_t id = ans ? json_integer_value(json_object_get(json_object_get(ans, "job"), "id")) : 0;

	json_decref(ans);
	return id;
}

/* Sends job's log chunk seq (attempt 1). */
static void log_chunk(struct httpc *agent, int64_t job, size_t seq, const void *data, size_t len)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/log?attempt=1&seq=%zu", job, seq);
	req.method = "POST";
	req.path = path;
	req.body = data;
	req.body_len = len;
	req.content_type = "application/octet-stream";
	if (httpc_do(agent, &req, &resp, &err) < 0 || resp.status != 200)
		fatalx("log chunk %zu: %s (status %ld)", seq, err.msg, resp.status);
	httpc_resp_release(&resp);
}

static void finish(struct httpc *agent, int64_t job)
{
	char path[96];

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/finish", job);
	json_decref(must(agent, "POST", path,
	                 json_pack("{s:i, s:s, s:i}", "attempt", 1, "state", "success", "exit_code", 0)));
}

int main(int argc, char **argv)
{
	struct httpc *admin, *agent;
	json_t *reg;
	int64_t agent_id;
	double t0, dt;

	if (argc != 8)
		fatalx("usage: bench_client jobs|ingest|queue URL ADMIN_TOKEN AGENT_TOKEN REPO_URL COMMIT N");
	log_init("bench", LOG_LVL_WARN);
	admin = httpc_new(argv[2], argv[3]);
	if (strcmp(argv[1], "queue") == 0) {
		int n = atoi(argv[7]);
		t0 = now_s();
		for (int i = 0; i < n; i++)
			trigger(admin, argv[5], argv[6], i);
		dt = now_s() - t0;
		printf("queued=%d trigger_seconds=%.3f trigger_ms_each=%.2f\n", n, dt, 1000 * dt / n);
		httpc_free(admin);
		return 0;
	}
	agent = httpc_new(argv[2], argv[4]);
	reg = must(agent, "POST", "/api/v1/agents/register",
	           json_pack("{s:s, s:[s]}", "name", "bench-agent", "labels", "target=host"));
	agent_id = json_integer_value(json_object_get(reg, "agent_id"));
	/* The enrollment secret only registers: the rest uses the agent's token. */
	httpc_free(agent);
	agent = httpc_new(argv[2], json_string_value(json_object_get(reg, "token")));
	json_decref(reg);

	if (strcmp(argv[1], "jobs") == 0) {
		int n = atoi(argv[7]);
		t0 = now_s();
		/* Seconds spent in each call, to tell where a job's time goes. */
		double t_trigger = 0, t_claim = 0, t_log = 0, t_finish = 0, t;
		for (int i = 0; i < n; i++) {
			t = now_s();
			int64_t want = trigger(admin, argv[5], argv[6], i);
			t_trigger += now_s() - t;
			t = now_s();
			int64_t got = claim(agent, agent_id);
			t_claim += now_s() - t;
			if (got != want)
				fatalx("claimed job %" PRId64 ", expected %" PRId64, got, want);
			t = now_s();
			log_chunk(agent, got, 0, "one line\n", 9);
			t_log += now_s() - t;
			t = now_s();
			finish(agent, got);
			t_finish += now_s() - t;
		}
		dt = now_s() - t0;
		printf("jobs=%d seconds=%.2f jobs_per_s=%.0f per_job_ms: trigger=%.2f claim=%.2f log=%.2f "
		       "finish=%.2f\n",
		       n, dt, n / dt, 1000 * t_trigger / n, 1000 * t_claim / n, 1000 * t_log / n,
		       1000 * t_finish / n);
	} else if (strcmp(argv[1], "ingest") == 0) {
		int mb = atoi(argv[7]);
		size_t chunk = 64 * 1024, total = (size_t)mb * 1024 * 1024;
		char *data = xmalloc(chunk);
		int64_t job = trigger(admin, argv[5], argv[6], -1);

		/* A typical build log: cmake progress, compiler command lines and
		 * warnings, numbers varying (each chunk is compressed on its own). */
		{
			struct buf b = BUF_INIT;
			uint32_t x = 1;
			for (int i = 0; b.len < chunk; i++) {
				x = x * 1103515245u + 12345u;
				buf_appendf(&b,
				            "[ %2d%%] Building C object "
				            "server/CMakeFiles/anvil_server.dir/mod%03u.c.o\n",
				            (i / 3) % 100, (x >> 8) % 512);
				buf_appendf(&b,
				            "/usr/bin/cc -DANVIL_VERSION=\\\"0.1.0\\\" -D_GNU_SOURCE "
				            "-I/work/src -O2 -g"
				            " -DNDEBUG -Wall -Wextra -std=gnu11 -o "
				            "CMakeFiles/anvil_server.dir/mod%03u.c.o"
				            " -c /work/src/server/mod%03u.c\n",
				            (x >> 8) % 512, (x >> 8) % 512);
				if (x % 4 == 0)
					buf_appendf(&b,
					            "/work/src/server/mod%03u.c:%u:%u: warning: unused "
					            "variable 'tmp%u'"
					            " [-Wunused-variable]\n",
					            (x >> 8) % 512, (x >> 4) % 2000, (x >> 3) % 40, x % 97);
			}
			memcpy(data, b.data, chunk);
			buf_release(&b);
		}
		if (claim(agent, agent_id) != job)
			fatalx("claim mismatch");
		t0 = now_s();
		for (size_t seq = 0; seq * chunk < total; seq++)
			log_chunk(agent, job, seq, data, chunk);
		dt = now_s() - t0;
		finish(agent, job);
		printf("ingest_mb=%d seconds=%.2f mb_per_s=%.1f\n", mb, dt, mb / dt);
		free(data);
	} else {
		fatalx("unknown mode %s", argv[1]);
	}
	httpc_free(admin);
	httpc_free(agent);
	return 0;
}
