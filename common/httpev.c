#include "common/httpev.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/eventbind.h"

/* How often a transfer looks at its abort flag. */
#define HTTPEV_TICK_MS 200
/* The most one socket read or write moves. */
#define HTTPEV_IO_BYTES (256 * 1024)

struct httpev {
	struct event_base *base;        /* owned; NULL until the first request */
	struct evhttp_connection *conn; /* owned; NULL when none is kept */
	char *authority;                /* owned, "host:port" conn goes to */
};

/* One request's state, on httpev_do's stack; libevent's callbacks get it. */
struct httpev_xfer {
	struct httpc_resp *resp;           /* borrowed */
	struct event_base *base;           /* borrowed: its loop ends with the request */
	volatile sig_atomic_t *abort_flag; /* borrowed, may be NULL */
	int done;                          /* the request's callback ran */
	int answered;                      /* ... with an answer */
	int timed_out;                     /* the whole transfer's deadline passed */
	int aborted;                       /* *abort_flag was set */
	int has_error;
	enum evhttp_request_error error;
	int out_fd;      /* >= 0: a 2xx answer's body goes here */
	int write_errno; /* writing it failed */
};

struct httpev *httpev_new(void)
{
	return xcalloc(1, sizeof(struct httpev));
}

/* Drops the kept connection (and a request still pending on it). */
static void httpev_drop(struct httpev *e)
{
	if (e->conn != NULL)
		evhttp_connection_free(e->conn);
	e->conn = NULL;
	free(e->authority);
	e->authority = NULL;
}

void httpev_free(struct httpev *e)
{
	if (e == NULL)
		return;
	httpev_drop(e);
	if (e->base != NULL)
		event_base_free(e->base);
	free(e);
}

static void httpev_error_cb(enum evhttp_request_error err, void *arg)
{
	struct httpev_xfer *x = arg;

	x->has_error = 1;
	x->error = err;
}

/* Moves what arrived of the answer's body to out_fd (a 2xx answer of a
 * request that gave one) or to resp.body (an error answer stays readable
 * there, and the caller's file gets no error text). */
static void httpev_take_body(struct httpev_xfer *x, struct evhttp_request *r)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(r);
	int code = evhttp_request_get_response_code(r);
	int to_fd = x->out_fd >= 0 && code >= 200 && code < 300;
	char chunk[16384];
	int n;

	while (b != NULL && (n = evbuffer_remove(b, chunk, sizeof(chunk))) > 0) {
		if (!to_fd) {
			buf_append(&x->resp->body, chunk, (size_t)n);
			continue;
		}
		for (int off = 0; off < n && x->write_errno == 0;) {
			ssize_t w = write(x->out_fd, chunk + off, (size_t)(n - off));

			if (w < 0 && errno != EINTR)
				x->write_errno = errno;
			else if (w > 0)
				off += (int)w;
		}
	}
}

/* Called as the body arrives, when the request has out_fd. */
static void httpev_chunk_cb(struct evhttp_request *r, void *arg)
{
	httpev_take_body(arg, r);
}

/* libevent frees the request once this returns. */
static void httpev_done_cb(struct evhttp_request *r, void *arg)
{
	struct httpev_xfer *x = arg;
	struct evkeyvalq *h;

	x->done = 1;
	event_base_loopbreak(x->base);
	if (r == NULL || evhttp_request_get_response_code(r) == 0)
		return;
	x->answered = 1;
	x->resp->status = evhttp_request_get_response_code(r);
	h = evhttp_request_get_input_headers(r);
	for (struct evkeyval *kv = h ? h->tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next) {
		char *line = xasprintf("%s: %s", kv->key, kv->value);

		for (char *q = line; *q != ':'; q++)
			*q = (char)tolower((unsigned char)*q);
		strv_push(&x->resp->headers, line);
		free(line);
	}
	httpev_take_body(x, r);
}

static void httpev_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpev_xfer *x = arg;

	(void)fd;
	(void)what;
	x->timed_out = 1;
	event_base_loopbreak(x->base);
}

static void httpev_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpev_xfer *x = arg;

	(void)fd;
	(void)what;
	if (*x->abort_flag != 0) {
		x->aborted = 1;
		event_base_loopbreak(x->base);
	}
}

static const char *httpev_error_name(const struct httpev_xfer *x)
{
	if (!x->has_error)
		return "could not connect, or the connection closed before an answer";
	switch (x->error) {
	case EVREQ_HTTP_TIMEOUT:
		return "timed out";
	case EVREQ_HTTP_EOF:
		return "connection refused or closed";
	case EVREQ_HTTP_INVALID_HEADER:
		return "bad answer header";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection error";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "answer too long";
	default:
		return "request failed";
	}
}

static int httpev_method(const char *m, enum evhttp_cmd_type *out)
{
	static const struct {
		const char *name;
		enum evhttp_cmd_type cmd;
	} map[] = {{"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST},   {"PUT", EVHTTP_REQ_PUT},
	           {"DELETE", EVHTTP_REQ_DELETE}, {"PATCH", EVHTTP_REQ_PATCH}, {"HEAD", EVHTTP_REQ_HEAD}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(m, map[i].name) == 0) {
			*out = map[i].cmd;
			return 0;
		}
	return -1;
}

/* 1 when a kept connection's socket is open at both ends: nothing to read
 * yet. A server closes idle connections (after 120 s for anvil-server);
 * sending on one it closed would fail the request. */
static int httpev_alive(struct evhttp_connection *conn)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	char c;

	return fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	       (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The connection to authority (host[:port]), kept or made; NULL when
 * libevent cannot make one. */
static struct evhttp_connection *httpev_conn(struct httpev *e, const char *url, const char *authority,
                                             int *reused)
{
	struct evhttp_uri *uri;
	char *host;
	int port;

	*reused = e->conn != NULL && strcmp(e->authority, authority) == 0 && httpev_alive(e->conn);
	if (*reused)
		return e->conn;
	httpev_drop(e);
	if ((uri = evhttp_uri_parse_with_flags(url, EVHTTP_URI_NONCONFORMANT)) == NULL)
		return NULL;
	if (evhttp_uri_get_host(uri) == NULL) {
		evhttp_uri_free(uri);
		return NULL;
	}
	host = xstrdup(evhttp_uri_get_host(uri));
	if (host[0] == '[') { /* an IPv6 literal, as getaddrinfo wants it */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
	evhttp_uri_free(uri);
	e->conn = evhttp_connection_base_new(e->base, NULL, host, (unsigned short)port);
	free(host);
	if (e->conn != NULL)
		e->authority = xstrdup(authority);
	return e->conn;
}

/* One try: 0 answered, -1 no answer (x says why), -2 libevent refused. */
static int httpev_try(struct httpev *e, struct evhttp_connection *conn, struct httpev_xfer *x,
                      const char *authority, const char *target, enum evhttp_cmd_type cmd, const char *auth,
                      const struct httpc_req *req, long timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct timeval tick = {0, HTTPEV_TICK_MS * 1000};
	struct event *deadline = NULL, *ticker = NULL; /* owned */
	struct evhttp_request *r;                      /* libevent's once made */
	struct evkeyvalq *oh;
	sigset_t pipe_set, old_set;
	char len_s[32];
	int rc = -2;

	if ((r = evhttp_request_new(httpev_done_cb, x)) == NULL)
		return -2;
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_request_set_error_cb(r, httpev_error_cb);
	oh = evhttp_request_get_output_headers(r);
	evhttp_add_header(oh, "Host", authority);
	evhttp_add_header(oh, "User-Agent", "anvil/" ANVIL_VERSION);
	if (auth != NULL)
		evhttp_add_header(oh, "Authorization", auth);
	if (req->body != NULL)
		evhttp_add_header(oh, "Content-Type",
		                  req->content_type != NULL ? req->content_type : "application/json");
	if (req->body != NULL) {
		evbuffer_add(evhttp_request_get_output_buffer(r), req->body, req->body_len);
	}
	if (req->out_fd >= 0)
		evhttp_request_set_chunked_cb(r, httpev_chunk_cb);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		snprintf(len_s, sizeof(len_s), "%llu",
		         (unsigned long long)(req->body != NULL ? req->body_len : 0));
		evhttp_add_header(oh, "Content-Length", len_s);
	}
	/* The whole transfer's bound, and the abort flag's ticker: events of
	 * this request only (a loopexit would outlive it in the kept base). */
	if ((deadline = event_new(e->base, -1, 0, httpev_deadline_cb, x)) == NULL ||
	    event_add(deadline, &tv) < 0 ||
	    (x->abort_flag != NULL &&
	     ((ticker = event_new(e->base, -1, EV_PERSIST, httpev_tick_cb, x)) == NULL ||
	      event_add(ticker, &tick) < 0))) {
		/* The request was never handed over: libevent did not take it. */
		evhttp_request_free(r);
		goto out;
	}
	/* A write to a connection the server closed must not kill the
	 * process: SIGPIPE is held while libevent writes, then dropped. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	if (evhttp_make_request(conn, r, cmd, target) == 0) {
		/* As libcurl does: a request's last segment must not wait for the
		 * ACK of the one before (Nagle) — 64 KiB log chunks did, ~1 ms
		 * each; and one write or read call per 256 KiB, not libevent's
		 * default 16 KiB. */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
		evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
		int one = 1;

		if (fd >= 0)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (bev != NULL) {
			bufferevent_set_max_single_write(bev, HTTPEV_IO_BYTES);
			bufferevent_set_max_single_read(bev, HTTPEV_IO_BYTES);
		}
		if (!x->done)
			event_base_dispatch(e->base);
	} else {
		x->done = 1; /* libevent failed it */
	}
	if (!sigismember(&old_set, SIGPIPE)) {
		struct timespec zero = {0, 0};

		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	}
	rc = x->answered ? 0 : -1;
out:
	if (ticker != NULL)
		event_free(ticker);
	if (deadline != NULL)
		event_free(deadline);
	return rc;
}

int httpev_do(struct httpev *e, const char *url, const char *auth, const struct httpc_req *req,
              long timeout_ms, volatile sig_atomic_t *abort_flag, struct httpc_resp *resp, int *retry_next,
              struct err *err)
{
	enum evhttp_cmd_type cmd;
	struct err ignored = {0};
	const char *authority, *target;
	char *host_hdr = NULL; /* owned */
	int rc = 1;

	*retry_next = 0;
	if (strncmp(url, "http://", 7) != 0 || httpev_method(req->method, &cmd) < 0)
		return 1;
	/* A body from a file goes to libcurl: libevent's evhttp maps the file
	 * (its request buffer does not drain to the socket, so no sendfile),
	 * and ASan then reports reads of a mapping at a dead thread stack's
	 * address (t_release, about one run in eight). */
	if (req->body_fd >= 0)
		return 1;
	authority = url + strlen("http://");
	target = authority + strcspn(authority, "/?#");
	if (*target == '#' || target == authority || eventbind_load(&ignored) < 0)
		return 1;
	host_hdr = xstrndup(authority, (size_t)(target - authority));
	if (e->base == NULL && (e->base = event_base_new()) == NULL) {
		rc = err_set(err, ERR_SYS, "libevent: event_base_new failed");
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		struct httpev_xfer x = {
		    .resp = resp, .base = e->base, .abort_flag = abort_flag, .out_fd = req->out_fd};
		struct evhttp_connection *conn;
		int reused, trc;

		if ((conn = httpev_conn(e, url, host_hdr, &reused)) == NULL)
			goto out; /* libcurl says what is wrong with the URL */
		trc = httpev_try(e, conn, &x, host_hdr, *target ? target : "/", cmd, auth, req, timeout_ms);
		if (trc == -2) {
			httpev_drop(e);
			rc = err_set(err, ERR_SYS, "libevent: cannot send %s %s", req->method, url);
			goto out;
		}
		if (trc == 0 && x.write_errno != 0) {
			errno = x.write_errno;
			rc = err_errno(err, "write answer of %s %s", req->method, req->path);
			goto out;
		}
		if (trc == 0) {
			rc = 0;
			goto out;
		}
		/* No answer: whatever is pending goes with the connection. */
		httpev_drop(e);
		strv_release(&resp->headers);
		buf_reset(&resp->body);
		if (x.aborted) {
			rc = err_set(err, ERR_UNAVAIL, "%s %s: aborted", req->method, url);
			goto out;
		}
		if (x.timed_out || !x.done) {
			rc = err_set(err, ERR_UNAVAIL, "%s %s: timed out after %ld ms", req->method, url,
			             timeout_ms);
			goto out;
		}
		/* A kept connection the server had closed: an idempotent
		 * request goes once more, on a new one (a download only when
		 * nothing of it reached the caller's file). */
		if (attempt == 0 && reused && cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PATCH &&
		    !(x.has_error && x.error == EVREQ_HTTP_TIMEOUT) && req->out_fd < 0)
			continue;
		rc = err_set(err, ERR_UNAVAIL, "%s %s: %s", req->method, url, httpev_error_name(&x));
		*retry_next = !(x.has_error && x.error == EVREQ_HTTP_TIMEOUT);
		goto out;
	}
out:
	free(host_hdr);
	return rc;
}
