#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/crypto.h"
#include "common/fileio.h"
#include "common/log.h"
#include "server/gitproc/gitops.h"
#include "server/api/api.h"
#include "server/store/blob.h"
#include "server/sched/logtail.h"
#include "server/srv.h"

/* fuzz-link: anvil_server */

/* libFuzzer entry for the server's request handling: the real HTTP edge
 * (libmicrohttpd, routing, authentication, percent-decoding, body caps, JSON
 * parsing) and the API handlers of server/api.c, started once in-process on a
 * loopback port over a scratch data directory holding one running job (id 1,
 * attempt 1). Each input is one request:
 *   byte 0: method (GET, POST, PUT, DELETE) and token (none, admin, the job's
 *           agent's own token, bad; registration is left to t_api.sh)
 *   up to the first '\n': the request target (path and query)
 *   the rest: the body.
 * Targets that may wait (claim, trigger, log long polls) are skipped: they
 * block by design and trigger fetches a repository. The property: every
 * request gets an HTTP answer, never a 5xx (a 500 is a server fault), and an
 * error answer from anvil is a JSON object with "error" and "code". */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct srv fz_srv;
static int fz_port;

static const char fz_admin[] = "fuzz-admin-token";
static const char fz_agent[] = "fuzz-agent-token"; /* the "fz" agent's own token */
static const char fz_enroll[] = "fuzz-enrollment-secret";

static void fz_setup_job(void)
{
	struct err err = {0};
	struct pipeline_new p = {0};
	struct job_new j = {.name = "build",
	                    .target = "host",
	                    .spec = "{\"steps\":[{\"name\":\"s\",\"run\":\"true\"}]}",
	                    .max_attempts = 3};
	struct job_row row = {0};
	const char *labels[] = {"target=host"};
	int64_t repo_id, pid, agent_id;
	int existed, found;
	char agent_hash[65];

	p.ref = "refs/heads/main";
	p.commit_sha = "0123456789abcdef0123456789abcdef01234567";
	p.event = "push";
	p.commit_message = "m";
	p.author = "a";
	if (store_repo_upsert(fz_srv.store, "demo", "/nonexistent/demo.git", srv_now_ms(), &repo_id, &err) <
	    0)
		goto fail;
	p.repo_id = repo_id;
	crypto_sha256_hex(fz_agent, strlen(fz_agent), agent_hash);
	if (jobstate_pipeline_create(fz_srv.store, &p, &j, 1, srv_now_ms(), &pid, &existed, &err) < 0 ||
	    jobstate_agent_register(fz_srv.store, "fz", "[\"target=host\"]", agent_hash, srv_now_ms(),
	                            &agent_id, &(int){0}, &err) < 0 ||
	    jobstate_claim(fz_srv.store, agent_id, labels, 1, srv_now_ms(), 3600 * 1000, &row, &found, &err) <
	        0 ||
	    !found)
		goto fail;
	job_row_release(&row);
	return;
fail:
	fprintf(stderr, "fuzz_api: setup: %s\n", err.msg);
	abort();
}

/* The server's data directory, removed when the fuzzer exits (libFuzzer
 * leaves through exit()). */
static char fz_dir[] = "/tmp/anvil-fuzz-api.XXXXXX";

static void fz_remove_dir(void)
{
	struct err err = {0};

	if (fileio_remove_tree(fz_dir, &err) < 0)
		fprintf(stderr, "fuzz_api: %s\n", err.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *dir = fz_dir;
	char *args[] = {"--data",         dir,    "--port",     "0",   "--listen",  "127.0.0.1",
	                "--artifact-cap", "64K",  "--json-cap", "64K", "--log-cap", "64K",
	                "--log-level",    "error"};
	struct err err = {0};
	char *db;
	int check, version, help, helper_idle_ms;

	signal(SIGPIPE, SIG_IGN);
	/* The server's git helper is this binary again (server/gitproc). */
	if (gitproc_helper_argv(*argc, *argv, &helper_idle_ms))
		exit(gitproc_helper_main(0, helper_idle_ms, gitops_handle));
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(fz_remove_dir);
	if (config_load((int)(sizeof(args) / sizeof(args[0])), args, &fz_srv.cfg, &check, &version, &help,
	                &err) < 0) {
		fprintf(stderr, "fuzz_api: config: %s\n", err.msg);
		abort();
	}
	log_init("fuzz_api", LOG_LVL_ERROR);
	pthread_mutex_init(&fz_srv.git_mu, NULL);
	fz_srv.git = gitproc_new_self(GITPROC_IDLE_MS);
	snprintf(fz_srv.blob_dir, sizeof(fz_srv.blob_dir), "%s/blobs", dir);
	snprintf(fz_srv.mirror_dir, sizeof(fz_srv.mirror_dir), "%s/mirrors", dir);
	db = xasprintf("%s/anvil.db", dir);
	if (blob_dir_init(fz_srv.blob_dir, &err) < 0 || store_open(db, &fz_srv.store, &err) < 0 ||
	    sched_new(fz_srv.store, 500, 0, &fz_srv.sched, &err) < 0) {
		fprintf(stderr, "fuzz_api: %s\n", err.msg);
		abort();
	}
	fz_srv.logtail = logtail_new(LOGTAIL_JOB_CAP_BYTES, LOGTAIL_TOTAL_CAP_BYTES);
	free(db);
	crypto_sha256_hex(fz_admin, strlen(fz_admin), fz_srv.admin_hash);
	crypto_sha256_hex(fz_enroll, strlen(fz_enroll), fz_srv.enroll_hash);
	fz_setup_job();
	if (http_start(&fz_srv, api_routes, api_routes_count, &fz_port, &err) < 0) {
		fprintf(stderr, "fuzz_api: %s\n", err.msg);
		abort();
	}
	return 0;
}

static int fz_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	static const char *const tokens[] = {NULL, fz_admin, fz_agent, "nope"};
	const char *nl, *target, *body;
	size_t target_len, body_len, got = 0;
	struct sockaddr_in sa;
	struct timeval tv = {10, 0};
	char head[4096], *ans = NULL, *hdr_end;
	int fd = -1, n;
	unsigned status;

	if (size < 2)
		return 0;
	target = (const char *)data + 1;
	nl = memchr(target, '\n', size - 1);
	target_len = nl ? (size_t)(nl - target) : size - 1;
	body = nl ? nl + 1 : target + target_len;
	body_len = (size_t)((const char *)data + size - body);
	/* A request line MHD can read: a path, no spaces or control bytes. */
	if (target_len == 0 || target_len > 2000 || target[0] != '/')
		return 0;
	for (size_t i = 0; i < target_len; i++)
		if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] == 0x7f)
			return 0;
	if (memmem(target, target_len, "claim", 5) || memmem(target, target_len, "trigger", 7) ||
	    memmem(target, target_len, "wait", 4))
		return 0;
	/* agent rm would revoke the one agent every later input speaks as. */
	if ((data[0] & 3) == 3 && target_len >= 15 && memcmp(target, "/api/v1/agents/", 15) == 0)
		return 0;
	n = snprintf(head, sizeof(head),
	             "%s %.*s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
	             "Content-Length: %zu\r\n\r\n",
	             methods[data[0] & 3], (int)target_len, target,
	             tokens[(data[0] >> 2) & 3] ? "Authorization: Bearer " : "",
	             tokens[(data[0] >> 2) & 3] ? tokens[(data[0] >> 2) & 3] : "",
	             tokens[(data[0] >> 2) & 3] ? "\r\n" : "", body_len);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)fz_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A new connection per input at thousands per second: closed by us
	 * first, each would sit in TIME_WAIT and the ephemeral ports run out
	 * (connect: EADDRNOTAVAIL, issue 19 item 9). Linger 0 closes with a
	 * reset instead; a connect that still fails for want of a port or of
	 * room in the server's backlog is retried, and anything else is the
	 * harness's failure, said with its errno, never a finding. */
	for (int tries = 0;; tries++) {
		struct linger lg = {1, 0};
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
			fprintf(stderr, "fuzz_api: socket: %s\n", strerror(errno));
			abort();
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if ((errno != EADDRNOTAVAIL && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR &&
		     errno != ETIMEDOUT) ||
		    tries >= 200) {
			fprintf(stderr,
			        "fuzz_api: connect to the in-process server failed after %d tries: %s\n",
			        tries + 1, strerror(errno));
			abort();
		}
		close(fd);
		usleep(10000);
	}
	/* The server may answer (413, 401) before the body is sent and close. */
	if (fz_send_all(fd, head, (size_t)n) == 0)
		(void)fz_send_all(fd, body, body_len);
	ans = malloc(1 << 20);
	for (;;) {
		ssize_t r = recv(fd, ans + got, (1 << 20) - 1 - got, 0);
		if (r <= 0 || (got += (size_t)r) >= (1 << 20) - 1)
			break;
	}
	ans[got] = '\0';
	close(fd);
	if (got == 0) {
		/* A reset after an early answer is allowed; silence is not. */
		free(ans);
		return 0;
	}
	if (sscanf(ans, "HTTP/1.1 %u", &status) != 1) {
		fprintf(stderr, "fuzz_api: no HTTP answer: %.200s\n", ans);
		abort();
	}
	if (status >= 500) {
		fprintf(stderr, "fuzz_api: %u for %s %.*s: %.500s\n", status, methods[data[0] & 3],
		        (int)target_len, target, ans);
		abort();
	}
	hdr_end = strstr(ans, "\r\n\r\n");
	if (status >= 400 && hdr_end != NULL && strstr(ans, "application/json") != NULL) {
		json_t *e = json_loads(hdr_end + 4, 0, NULL);
		if (!json_is_string(json_object_get(e, "error")) ||
		    !json_is_string(json_object_get(e, "code"))) {
			fprintf(stderr, "fuzz_api: error answer without error/code: %.300s\n", ans);
			abort();
		}
		json_decref(e);
	}
	free(ans);
	return 0;
}
