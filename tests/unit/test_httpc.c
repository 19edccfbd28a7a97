/* httpc against a real HTTP server: a small libmicrohttpd daemon on
 * 127.0.0.1, port chosen by the kernel, started once for the whole group. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/crypto.h"
#include "common/curlbind.h"
#include "common/eventbind.h"
#include "common/httpc.h"
#include "common/xalloc.h"

#define KEEP_BODY_BYTES (64 * 1024)
/* The test server closes a connection idle this long (anvil-server: 120). */
#define TSRV_IDLE_S 1

struct tsrv {
	struct MHD_Daemon *d;
	uint16_t port;
	atomic_int connections; /* connections the daemon accepted so far */
	int wake[2];            /* /slow waits on wake[0]; teardown writes wake[1] */
	unsigned flags;         /* the clients': 0 (libcurl) or HTTPC_LIGHT (libevent) */
};

/* Per-request state, in MHD's *req_cls, freed on completion. */
struct treq {
	struct crypto_sha256 *h;
	uint64_t len;
	struct buf body; /* the first KEEP_BODY_BYTES bytes */
};

static unsigned char big_byte(uint64_t i)
{
	return (unsigned char)((i * 31u) ^ (i >> 9));
}

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	uint64_t total = *(uint64_t *)cls;
	size_t n = 0;

	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (n < max && pos + n < total) {
		buf[n] = (char)big_byte(pos + n);
		n++;
	}
	return (ssize_t)n;
}

static enum MHD_Result tsrv_reply_json(struct MHD_Connection *conn, unsigned int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT); /* owned, then MHD's */
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(j);
	r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "X-Test-Header", "Value");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static json_t *jstr_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static enum MHD_Result tsrv_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls)
{
	struct tsrv *srv = cls;
	struct treq *rq = *req_cls;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)version;
	if (rq == NULL) {
		rq = xcalloc(1, sizeof(*rq));
		rq->h = crypto_sha256_new();
		*req_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		crypto_sha256_update(rq->h, upload_data, *upload_data_size);
		rq->len += *upload_data_size;
		if (rq->body.len < KEEP_BODY_BYTES)
			buf_append(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/json") == 0)
		return tsrv_reply_json(conn, 200, json_pack("{s:s, s:i}", "hello", "world", "n", 42));
	if (strcmp(url, "/echo") == 0) {
		char hex[CRYPTO_SHA256_HEX_LEN + 1];

		crypto_sha256_final_hex(rq->h, hex);
		return tsrv_reply_json(
		    conn, 200,
		    json_pack(
		        "{s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o}", "method", method, "len",
		        (json_int_t)rq->len, "sha256", hex, "body",
		        rq->len <= KEEP_BODY_BYTES
		            ? json_stringn(rq->body.data ? rq->body.data : "", rq->body.len)
		            : json_null(),
		        "content_type",
		        jstr_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type")),
		        "authorization",
		        jstr_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization")),
		        "expect", jstr_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect")),
		        "x", jstr_or_null(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "x"))));
	}
	if (strcmp(url, "/conflict") == 0)
		return tsrv_reply_json(
		    conn, 409,
		    json_pack("{s:s, s:s}", "error", "job 42 already finished", "code", "conflict"));
	if (strcmp(url, "/empty") == 0) {
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(conn, 204, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/plain502") == 0) {
		static const char page[] = "Bad Gateway\n";

		r = MHD_create_response_from_buffer(sizeof(page) - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(conn, 502, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/big") == 0) {
		const char *n = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "n");
		uint64_t *total = xmalloc(sizeof(*total));

		*total = n != NULL ? strtoull(n, NULL, 10) : 0;
		r = MHD_create_response_from_callback(*total, 64 * 1024, big_reader, total, free);
		ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/slow") == 0) {
		/* Answers only when the test ends (or after 10 s): a peer that hangs. */
		struct pollfd pfd = {.fd = srv->wake[0], .events = POLLIN};

		poll(&pfd, 1, 10000);
		return tsrv_reply_json(conn, 200, json_object());
	}
	return tsrv_reply_json(conn, 404,
	                       json_pack("{s:s, s:s}", "error", "no such route", "code", "not_found"));
}

static void tsrv_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
	struct treq *rq = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rq == NULL)
		return;
	crypto_sha256_free(rq->h);
	buf_release(&rq->body);
	free(rq);
	*req_cls = NULL;
}

static void tsrv_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
	struct tsrv *srv = cls;

	(void)conn;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&srv->connections, 1);
}

static int group_setup_flags(void **state, unsigned flags)
{
	struct tsrv *srv = xcalloc(1, sizeof(*srv));
	struct sockaddr_in sa = {0};
	const union MHD_DaemonInfo *info;

	if (pipe2(srv->wake, O_CLOEXEC) < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
	                          NULL, tsrv_handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                          MHD_OPTION_NOTIFY_COMPLETED, tsrv_completed, srv,
	                          MHD_OPTION_NOTIFY_CONNECTION, tsrv_notify_conn, srv,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)TSRV_IDLE_S, MHD_OPTION_END);
	if (srv->d == NULL)
		return -1;
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0)
		return -1;
	srv->port = info->port;
	srv->flags = flags;
	*state = srv;
	return 0;
}

static int group_setup_light(void **state)
{
	return group_setup_flags(state, HTTPC_LIGHT);
}

static int group_setup_curl(void **state)
{
	return group_setup_flags(state, 0);
}

static int group_teardown(void **state)
{
	struct tsrv *srv = *state;

	if (write(srv->wake[1], "x", 1) < 0)
		return -1;
	MHD_stop_daemon(srv->d);
	close(srv->wake[0]);
	close(srv->wake[1]);
	free(srv);
	return 0;
}

static struct httpc *client(void **state, const char *token)
{
	struct tsrv *srv = *state;
	char url[64];

	/* The trailing slash must not double with the path's leading one. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)srv->port);
	return httpc_new_flags(url, token, srv->flags);
}

static int tmpfile_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char *path = xasprintf("%s/anvil-test-httpc-XXXXXX", dir != NULL ? dir : "/tmp");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	free(path);
	return fd;
}

/* Fills fd with n pseudo-random bytes; returns their sha256 in hex. */
static void fill_random(int fd, size_t n, char hex[CRYPTO_SHA256_HEX_LEN + 1])
{
	struct crypto_sha256 *h = crypto_sha256_new();
	unsigned char chunk[8192];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);

		for (size_t i = 0; i < k; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			chunk[i] = (unsigned char)x;
		}
		assert_int_equal(write(fd, chunk, k), (ssize_t)k);
		crypto_sha256_update(h, chunk, k);
		done += k;
	}
	crypto_sha256_final_hex(h, hex);
	crypto_sha256_free(h);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

static void fd_sha256(int fd, char hex[CRYPTO_SHA256_HEX_LEN + 1], uint64_t *len_out)
{
	struct crypto_sha256 *h = crypto_sha256_new();
	char chunk[8192];
	ssize_t n;

	*len_out = 0;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		crypto_sha256_update(h, chunk, (size_t)n);
		*len_out += (uint64_t)n;
	}
	assert_int_equal(n, 0);
	crypto_sha256_final_hex(h, hex);
	crypto_sha256_free(h);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_get_json(void **state)
{
	struct tsrv *srv = *state;
	struct httpc *c = client(state, NULL);
	struct err err = {0};
	json_t *out = NULL;

	/* The light group runs first: until a request libevent does not
	 * take, the process has not mapped libcurl. */
	if (srv->flags & HTTPC_LIGHT)
		assert_int_equal(curlbind_loaded(), 0);
	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 0, &out, &err), 0);
	assert_non_null(out);
	if (srv->flags & HTTPC_LIGHT) {
		assert_int_equal(curlbind_loaded(), 0);
		assert_int_equal(eventbind_loaded(), 1);
	}
	assert_string_equal(json_string_value(json_object_get(out, "hello")), "world");
	assert_int_equal(json_integer_value(json_object_get(out, "n")), 42);
	json_decref(out);
	httpc_free(c);
}

static void test_headers_case_insensitive(void **state)
{
	struct httpc *c = client(state, NULL);
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};

	req.method = "GET";
	req.path = "/json";
	assert_int_equal(httpc_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(httpc_resp_header(&resp, "x-test-header"));
	assert_string_equal(httpc_resp_header(&resp, "x-test-header"), "Value");
	assert_string_equal(httpc_resp_header(&resp, "X-TEST-HEADER"), "Value");
	assert_string_equal(httpc_resp_header(&resp, "Content-Type"), "application/json");
	assert_null(httpc_resp_header(&resp, "x-test"));
	assert_null(httpc_resp_header(&resp, "x-missing"));
	assert_true(resp.headers.n >= 2);
	for (size_t i = 0; i < resp.headers.n; i++) {
		const char *line = resp.headers.v[i];

		assert_null(strpbrk(line, "\r\n"));
		for (const char *p = line; *p != ':'; p++) {
			assert_true(*p != '\0');
			assert_false(*p >= 'A' && *p <= 'Z');
		}
	}
	httpc_resp_release(&resp);
	httpc_free(c);
}

static void test_post_json_intact(void **state)
{
	struct httpc *c = client(state, "tok-123");
	struct err err = {0};
	json_t *body = json_pack("{s:s, s:s, s:i, s:{s:[i,i,i]}}", "repo", "demo", "text",
	                         "h\xc3\xa9llo \"q\" \\ \n", "n", 7, "nested", "a", 1, 2, 3);
	json_t *out = NULL;
	char *sent = json_dumps(body, JSON_COMPACT);
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	assert_int_equal(httpc_json(c, "POST", "/echo", body, 0, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(out, "body")), sent);
	assert_int_equal(json_integer_value(json_object_get(out, "len")), strlen(sent));
	crypto_sha256_hex(sent, strlen(sent), hex);
	assert_string_equal(json_string_value(json_object_get(out, "sha256")), hex);
	assert_string_equal(json_string_value(json_object_get(out, "content_type")), "application/json");
	assert_string_equal(json_string_value(json_object_get(out, "authorization")), "Bearer tok-123");
	assert_true(json_is_null(json_object_get(out, "expect")));
	json_decref(out);

	/* POST without a body (cancel, retry) arrives as an empty POST. */
	assert_int_equal(httpc_json(c, "POST", "/echo", NULL, 0, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "method")), "POST");
	assert_int_equal(json_integer_value(json_object_get(out, "len")), 0);
	json_decref(out);

	free(sent);
	json_decref(body);
	httpc_free(c);
}

static void upload_fd(void **state, const char *method, size_t n)
{
	struct httpc *c = client(state, "agent-tok");
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	json_t *out = NULL;
	int fd = tmpfile_fd();

	fill_random(fd, n, hex);
	req.method = method;
	req.path = "/echo?x=a%2Fb";
	req.body_fd = fd;
	req.body_fd_len = n;
	req.content_type = "application/octet-stream";
	assert_int_equal(httpc_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(httpc_resp_json(&resp, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "method")), method);
	assert_int_equal(json_integer_value(json_object_get(out, "len")), n);
	assert_string_equal(json_string_value(json_object_get(out, "sha256")), hex);
	assert_string_equal(json_string_value(json_object_get(out, "content_type")),
	                    "application/octet-stream");
	assert_string_equal(json_string_value(json_object_get(out, "x")), "a/b");
	assert_true(json_is_null(json_object_get(out, "expect")));
	/* Both leave the file where reading the body would have. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)n);
	json_decref(out);
	httpc_resp_release(&resp);
	close(fd);
	httpc_free(c);
}

static void test_put_stream_5mb(void **state)
{
	upload_fd(state, "PUT", 5 * 1024 * 1024);
}

static void test_post_stream_fd(void **state)
{
	upload_fd(state, "POST", 1024 * 1024 + 17);
}

static void test_put_memory_body(void **state)
{
	struct httpc *c = client(state, NULL);
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};
	json_t *out = NULL;
	static const char body[] = "raw bytes { not JSON";

	req.method = "PUT";
	req.path = "/echo";
	req.body = body;
	req.body_len = sizeof(body) - 1;
	req.content_type = "application/octet-stream";
	assert_int_equal(httpc_do(c, &req, &resp, &err), 0);
	assert_int_equal(httpc_resp_json(&resp, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "method")), "PUT");
	assert_int_equal(json_integer_value(json_object_get(out, "len")), sizeof(body) - 1);
	assert_int_equal(json_string_length(json_object_get(out, "body")), sizeof(body) - 1);
	assert_memory_equal(json_string_value(json_object_get(out, "body")), body, sizeof(body) - 1);
	json_decref(out);
	httpc_resp_release(&resp);
	httpc_free(c);
}

static void test_out_fd_download(void **state)
{
	struct httpc *c = client(state, NULL);
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};
	struct crypto_sha256 *h = crypto_sha256_new();
	char want[CRYPTO_SHA256_HEX_LEN + 1], got[CRYPTO_SHA256_HEX_LEN + 1];
	const uint64_t n = 3 * 1000 * 1000 + 3;
	uint64_t len = 0;
	int fd = tmpfile_fd();

	for (uint64_t i = 0; i < n; i++) {
		unsigned char b = big_byte(i);

		crypto_sha256_update(h, &b, 1);
	}
	crypto_sha256_final_hex(h, want);
	crypto_sha256_free(h);

	req.method = "GET";
	req.path = "/big?n=3000003";
	req.out_fd = fd;
	assert_int_equal(httpc_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body.len, 0);
	fd_sha256(fd, got, &len);
	assert_int_equal(len, n);
	assert_string_equal(got, want);
	httpc_resp_release(&resp);

	/* An error answer is not written to the caller's file: it stays readable in resp.body. */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	req.path = "/conflict";
	assert_int_equal(httpc_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 409);
	assert_non_null(strstr(resp.body.data, "already finished"));
	fd_sha256(fd, got, &len);
	assert_int_equal(len, 0);
	httpc_resp_release(&resp);
	/* A light client streamed it through libevent: libcurl never came. */
	if (((struct tsrv *)*state)->flags & HTTPC_LIGHT)
		assert_int_equal(curlbind_loaded(), 0);

	close(fd);
	httpc_free(c);
}

static void test_error_mapping(void **state)
{
	struct httpc *c = client(state, NULL);
	struct err err = {0};
	json_t *out = NULL;
	json_t *body = json_pack("{s:i}", "attempt", 1);
	json_t *sentinel;

	assert_int_equal(httpc_json(c, "GET", "/conflict", NULL, 0, &out, &err), -1);
	assert_null(out);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_string_equal(err.msg, "job 42 already finished");

	assert_int_equal(httpc_json(c, "POST", "/conflict", body, 0, &out, &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);

	assert_int_equal(httpc_json(c, "GET", "/nope", NULL, 0, &out, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_string_equal(err.msg, "no such route");

	/* Not our JSON: the status and the start of the page. */
	assert_int_equal(httpc_json(c, "GET", "/plain502", NULL, 0, &out, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	assert_non_null(strstr(err.msg, "502"));
	assert_non_null(strstr(err.msg, "Bad Gateway"));

	/* 204: success with no document. */
	sentinel = json_object();
	out = sentinel;
	assert_int_equal(httpc_json(c, "GET", "/empty", NULL, 0, &out, &err), 0);
	assert_null(out);
	json_decref(sentinel);

	json_decref(body);
	httpc_free(c);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	struct httpc *c;
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	struct err err = {0};
	json_t *out = NULL;
	char url[64];
	/* Bound but never listening: the port is ours, and connecting to it is refused. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	struct tsrv *srv = *state;

	assert_true(s >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	c = httpc_new_flags(url, NULL, srv->flags);

	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 2000, &out, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_true(strlen(err.msg) > 0);

	req.method = "GET";
	req.path = "/json";
	err.code = ERR_OK;
	assert_int_equal(httpc_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	httpc_resp_release(&resp);

	httpc_free(c);

	/* Servers sharing a store: the refused one is left for the next. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u,http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port),
	         (unsigned)srv->port);
	c = httpc_new_flags(url, NULL, srv->flags);
	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 2000, &out, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 2000, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "hello")), "world");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)srv->port);
	assert_string_equal(httpc_base_url(c), url);
	json_decref(out);
	httpc_free(c);
	close(s);
}

static void test_timeout(void **state)
{
	struct httpc *c = client(state, NULL);
	struct err err = {0};
	json_t *out = NULL;
	int64_t t0 = now_ms(), took;

	assert_int_equal(httpc_json(c, "GET", "/slow", NULL, 300, &out, &err), -1);
	took = now_ms() - t0;
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_true(took >= 250);
	assert_true(took < 5000);

	/* The same client works again after the aborted transfer. */
	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 0, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "hello")), "world");
	json_decref(out);
	httpc_free(c);
}

static void test_keepalive(void **state)
{
	struct tsrv *srv = *state;
	struct httpc *c = client(state, NULL);
	struct err err = {0};
	json_t *out = NULL;
	int before = atomic_load(&srv->connections);

	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    httpc_json(c, i == 1 ? "POST" : "GET", i == 1 ? "/echo" : "/json", NULL, 0, &out, &err),
		    0);
		json_decref(out);
	}
	assert_int_equal(atomic_load(&srv->connections) - before, 1);
	httpc_free(c);
}

/* A set abort flag (a SIGTERM, in the agent) ends a long request early,
 * and the client works again once it is cleared. */
static void test_abort_flag(void **state)
{
	struct httpc *c = client(state, NULL);
	volatile sig_atomic_t stop = 1;
	struct err err = {0};
	json_t *out = NULL;
	int64_t t0 = now_ms(), took;

	httpc_set_abort_flag(c, &stop);
	assert_int_equal(httpc_json(c, "GET", "/slow", NULL, 20000, &out, &err), -1);
	took = now_ms() - t0;
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_true(took < 5000);
	stop = 0;
	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 0, &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(out, "hello")), "world");
	json_decref(out);
	httpc_free(c);
}

/* A kept connection the server closed while idle: a POST (never resent
 * blindly) still goes through, on a new connection. */
static void test_stale_keepalive(void **state)
{
	struct httpc *c = client(state, NULL);
	struct err err = {0};
	json_t *out = NULL, *body = json_pack("{s:i}", "n", 1);
	struct timespec idle = {TSRV_IDLE_S + 1, 0};

	assert_int_equal(httpc_json(c, "GET", "/json", NULL, 0, &out, &err), 0);
	json_decref(out);
	/* The server closes it meanwhile (on a very busy box perhaps not yet:
	 * then the POST simply reuses it). */
	nanosleep(&idle, NULL);
	if (httpc_json(c, "POST", "/echo", body, 0, &out, &err) != 0)
		fail_msg("POST after the server closed the idle connection: %s", err.msg);
	assert_string_equal(json_string_value(json_object_get(out, "method")), "POST");
	json_decref(out);
	json_decref(body);
	httpc_free(c);
}

static void test_err_code_and_escape(void **state)
{
	char *s;

	(void)state;
	assert_int_equal(httpc_err_code(400), ERR_INVAL);
	assert_int_equal(httpc_err_code(401), ERR_AUTH);
	assert_int_equal(httpc_err_code(403), ERR_FORBIDDEN);
	assert_int_equal(httpc_err_code(404), ERR_NOTFOUND);
	assert_int_equal(httpc_err_code(409), ERR_CONFLICT);
	assert_int_equal(httpc_err_code(413), ERR_LIMIT);
	assert_int_equal(httpc_err_code(503), ERR_UNAVAIL);
	assert_int_equal(httpc_err_code(500), ERR_SYS);
	assert_int_equal(httpc_err_code(418), ERR_SYS);

	s = httpc_escape("bin/app v1.tar.gz");
	assert_string_equal(s, "bin%2Fapp%20v1.tar.gz");
	free(s);
	s = httpc_escape("A-z_0.9~");
	assert_string_equal(s, "A-z_0.9~");
	free(s);
	s = httpc_escape("\xc3\xa9?&=%");
	assert_string_equal(s, "%C3%A9%3F%26%3D%25");
	free(s);
	s = httpc_escape("");
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    /* Downloads before uploads: a light client's uploads from a file
	     * load libcurl, its downloads must not. */
	    cmocka_unit_test(test_get_json),           cmocka_unit_test(test_headers_case_insensitive),
	    cmocka_unit_test(test_out_fd_download),    cmocka_unit_test(test_post_json_intact),
	    cmocka_unit_test(test_put_stream_5mb),     cmocka_unit_test(test_post_stream_fd),
	    cmocka_unit_test(test_put_memory_body),    cmocka_unit_test(test_error_mapping),
	    cmocka_unit_test(test_connection_refused), cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_keepalive),          cmocka_unit_test(test_err_code_and_escape),
	    cmocka_unit_test(test_abort_flag),         cmocka_unit_test(test_stale_keepalive),
	};

	int failed;

	/* libevent first: its group checks that nothing mapped libcurl yet. */
	failed = cmocka_run_group_tests_name("light (libevent)", tests, group_setup_light, group_teardown);
	return failed + cmocka_run_group_tests_name("libcurl", tests, group_setup_curl, group_teardown);
}
