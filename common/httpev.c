#include "common/httpev.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/eventbind.h"

/* One request's state, on httpev_do's stack; libevent's callbacks get it. */
struct httpev_xfer {
	struct httpc_resp *resp; /* borrowed */
	struct event_base *base; /* borrowed: its loop ends with the request */
	int done;                /* the request's callback ran */
	int answered;            /* ... with an answer */
	int has_error;
	enum evhttp_request_error error;
};

static void httpev_error_cb(enum evhttp_request_error e, void *arg)
{
	struct httpev_xfer *x = arg;

	x->has_error = 1;
	x->error = e;
}

/* libevent frees the request once this returns. */
static void httpev_done_cb(struct evhttp_request *r, void *arg)
{
	struct httpev_xfer *x = arg;
	struct evkeyvalq *h;
	struct evbuffer *b;
	char chunk[16384];
	int n;

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
	b = evhttp_request_get_input_buffer(r);
	while (b != NULL && (n = evbuffer_remove(b, chunk, sizeof(chunk))) > 0)
		buf_append(&x->resp->body, chunk, (size_t)n);
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

int httpev_do(const char *url, const char *auth, const struct httpc_req *req, long timeout_ms,
              struct httpc_resp *resp, int *retry_next, struct err *err)
{
	struct httpev_xfer x = {.resp = resp};
	struct evhttp_uri *uri = NULL;         /* owned */
	struct event_base *base = NULL;        /* owned */
	struct evhttp_connection *conn = NULL; /* owned */
	struct evhttp_request *r;              /* libevent's once made */
	struct evkeyvalq *oh;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	enum evhttp_cmd_type cmd;
	struct err ignored = {0};
	sigset_t pipe_set, old_set;
	const char *authority, *target;
	char *host_hdr = NULL; /* owned */
	char *host = NULL;     /* owned */
	char *ctype = NULL;    /* owned */
	char len_s[32];
	int has_body = req->body != NULL;
	int port;
	int rc = 1;

	*retry_next = 0;
	if (req->body_fd >= 0 || req->out_fd >= 0 || strncmp(url, "http://", 7) != 0 ||
	    httpev_method(req->method, &cmd) < 0)
		goto out;
	authority = url + strlen("http://");
	target = authority + strcspn(authority, "/?#");
	if (*target == '#' || eventbind_load(&ignored) < 0)
		goto out;
	host_hdr = xstrndup(authority, (size_t)(target - authority));
	if ((uri = evhttp_uri_parse_with_flags(url, EVHTTP_URI_NONCONFORMANT)) == NULL ||
	    evhttp_uri_get_host(uri) == NULL)
		goto out; /* libcurl says what is wrong with it */
	host = xstrdup(evhttp_uri_get_host(uri));
	if (host[0] == '[') { /* an IPv6 literal, as getaddrinfo wants it */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
	if ((base = event_base_new()) == NULL ||
	    (conn = evhttp_connection_base_new(base, NULL, host, (unsigned short)port)) == NULL ||
	    (r = evhttp_request_new(httpev_done_cb, &x)) == NULL) {
		err_set(err, ERR_SYS, "libevent: cannot set up a request for %s", url);
		rc = -1;
		goto out;
	}
	x.base = base;
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_request_set_error_cb(r, httpev_error_cb);
	oh = evhttp_request_get_output_headers(r);
	evhttp_add_header(oh, "Host", host_hdr);
	evhttp_add_header(oh, "User-Agent", "anvil/" ANVIL_VERSION);
	evhttp_add_header(oh, "Connection", "close");
	if (auth != NULL)
		evhttp_add_header(oh, "Authorization", auth);
	if (has_body) {
		ctype = xstrdup(req->content_type != NULL ? req->content_type : "application/json");
		evhttp_add_header(oh, "Content-Type", ctype);
		evbuffer_add(evhttp_request_get_output_buffer(r), req->body, req->body_len);
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		snprintf(len_s, sizeof(len_s), "%zu", has_body ? req->body_len : 0);
		evhttp_add_header(oh, "Content-Length", len_s);
	}
	/* A write to a connection the server closed must not kill the
	 * process: SIGPIPE is held while libevent writes, then dropped. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	if (evhttp_make_request(conn, r, cmd, *target ? target : "/") == 0) {
		event_base_loopexit(base, &tv); /* the whole transfer's bound */
		event_base_dispatch(base);
	} else {
		x.done = 1; /* libevent freed the request */
	}
	if (!sigismember(&old_set, SIGPIPE)) {
		struct timespec zero = {0, 0};

		while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
			;
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	}
	rc = -1;
	if (!x.done)
		err_set(err, ERR_UNAVAIL, "%s %s: timed out after %ld ms", req->method, url, timeout_ms);
	else if (!x.answered) {
		err_set(err, ERR_UNAVAIL, "%s %s: %s", req->method, url, httpev_error_name(&x));
		*retry_next = !(x.has_error && x.error == EVREQ_HTTP_TIMEOUT);
	} else
		rc = 0;
out:
	if (conn != NULL)
		evhttp_connection_free(conn); /* and a request still pending */
	if (base != NULL)
		event_base_free(base);
	if (uri != NULL)
		evhttp_uri_free(uri);
	free(host_hdr);
	free(host);
	free(ctype);
	return rc;
}
