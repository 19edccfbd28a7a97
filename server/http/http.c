#include "server/http/http.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/redact.h"
#include "server/store/blob.h"
#include "server/srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

struct http_ctx {
	struct srv *srv;
	const struct http_route *routes;
	size_t n_routes;
};

unsigned http_status_from_err(enum err_code code)
{
	switch (code) {
	case ERR_INVAL:
		return MHD_HTTP_BAD_REQUEST;
	case ERR_AUTH:
		return MHD_HTTP_UNAUTHORIZED;
	case ERR_FORBIDDEN:
		return MHD_HTTP_FORBIDDEN;
	case ERR_NOTFOUND:
		return MHD_HTTP_NOT_FOUND;
	case ERR_CONFLICT:
		return MHD_HTTP_CONFLICT;
	case ERR_LIMIT:
		return MHD_HTTP_CONTENT_TOO_LARGE;
	case ERR_UNAVAIL:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case ERR_OK:
	case ERR_SYS:
		break;
	}
	return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

const char *http_query(struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_query_i64(struct http_req *req, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                   struct err *err)
{
	const char *v = http_query(req, key);
	char *end;
	long long n;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end != '\0' || n < min || n > max)
		return err_set(err, ERR_INVAL, "query parameter %s must be an integer in %lld..%lld", key,
		               (long long)min, (long long)max);
	*out = n;
	return 0;
}

int http_peer_gone(struct http_req *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd pfd;
	char c;

	if (ci == NULL)
		return 0;
	pfd.fd = ci->connect_fd;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return 1;
	return (pfd.revents & POLLIN) && recv(pfd.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void http_answer_header(struct http_answer *ans, const char *name, const char *value)
{
	for (int i = 0; i < HTTP_ANSWER_HEADERS; i++) {
		if (ans->hdr_value[i] == NULL) {
			snprintf(ans->hdr_name[i], sizeof(ans->hdr_name[i]), "%s", name);
			ans->hdr_value[i] = xstrdup(value);
			return;
		}
	}
	BUG("too many answer headers");
}

static void http_answer_release(struct http_answer *ans)
{
	json_decref(ans->json);
	free(ans->raw);
	for (int i = 0; i < HTTP_ANSWER_HEADERS; i++)
		free(ans->hdr_value[i]);
	if (ans->fd >= 0)
		close(ans->fd);
	if (ans->stream_free != NULL && ans->stream_cls != NULL)
		ans->stream_free(ans->stream_cls);
}

/* Matches url against pattern; fills id and rest. */
static int http_match(const char *pattern, const char *url, int64_t *id, char **rest)
{
	const char *p = pattern, *u = url;

	while (*p) {
		if (*p == '*') {
			if (*u == '\0')
				return 0;
			*rest = xstrdup(u);
			return 1;
		}
		if (*p == ':') {
			char *end;
			long long v;
			if (*u < '0' || *u > '9')
				return 0;
			errno = 0;
			v = strtoll(u, &end, 10);
			if (errno || v <= 0)
				return 0;
			*id = v;
			u = end;
			while (*p && *p != '/')
				p++;
			continue;
		}
		if (*p != *u)
			return 0;
		p++;
		u++;
	}
	return *u == '\0';
}

int http_auth_check(const struct srv *srv, const char *h, enum http_auth need, int64_t *agent_id_out,
                    struct err *err)
{
	char hash[CRYPTO_SHA256_HEX_LEN + 1];
	int is_admin, is_enroll;
	int64_t agent_id = 0;
	struct err lookup = {0};

	if (need == AUTH_NONE || (need == AUTH_READ && !srv->cfg.read_auth))
		return 0;
	if (h == NULL || strncmp(h, "Bearer ", 7) != 0 || h[7] == '\0')
		return err_set(err, ERR_AUTH, "missing bearer token");
	crypto_sha256_hex(h + 7, strlen(h + 7), hash);
	is_admin = crypto_ct_equal(hash, 64, srv->admin_hash, 64);
	is_enroll = crypto_ct_equal(hash, 64, srv->enroll_hash, 64);
	/* Agents' tokens are looked up by their sha256: the index compares
	 * hashes, which tell nothing about the token. */
	if (!is_admin && !is_enroll && srv->store != NULL &&
	    store_agent_by_token(srv->store, hash, &agent_id, &lookup) < 0) {
		agent_id = 0;
		if (lookup.code != ERR_AUTH)
			return err_set(err, lookup.code, "%s", lookup.msg);
	}
	if (!is_admin && !is_enroll && agent_id == 0)
		return err_set(err, ERR_AUTH, "invalid token");
	switch (need) {
	case AUTH_ADMIN:
		if (!is_admin)
			return err_set(err, ERR_FORBIDDEN, "this route needs the admin token");
		break;
	case AUTH_ENROLL:
		if (!is_enroll)
			return err_set(err, ERR_FORBIDDEN, "this route needs the agent enrollment secret");
		break;
	case AUTH_AGENT:
		/* The enrollment secret only registers: 401 as for any other
		 * token that names no agent. */
		if (is_enroll)
			return err_set(err, ERR_AUTH,
			               "the enrollment secret only registers; use the agent's own token");
		if (agent_id == 0)
			return err_set(err, ERR_FORBIDDEN, "this route needs an agent's own token");
		if (agent_id_out != NULL)
			*agent_id_out = agent_id;
		break;
	case AUTH_READ:
	case AUTH_NONE:
		break;
	}
	return 0;
}

/* 1 when the client's Accept-Encoding takes gzip (and not as "gzip;q=0"). */
static int http_accepts_gzip(struct MHD_Connection *conn)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);

	for (const char *p = ae; p != NULL && (p = strstr(p, "gzip")) != NULL; p += 4) {
		const char *q = p + 4;

		if ((p > ae && p[-1] != ' ' && p[-1] != ',') ||
		    (*q != '\0' && *q != ',' && *q != ' ' && *q != ';'))
			continue; /* part of another token ("x-gzip") */
		q += strspn(q, " ");
		if (*q == ';') {
			q += 1 + strspn(q + 1, " ");
			if (strncmp(q, "q=", 2) == 0 && strtod(q + 2, NULL) <= 0.0)
				return 0;
		}
		return 1;
	}
	return 0;
}

/* Whole answers: compressed in one call. 0, or -1 when zlib failed (the
 * answer then goes out as it is). */
static int http_gzip_buffer(const char *in, size_t n, char **out, size_t *out_len)
{
	z_stream z;
	uLong cap;
	char *o;
	int rc;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper, not zlib's; level 6, zlib's default. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&z, (uLong)n);
	o = xmalloc(cap);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)o;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(o);
		return -1;
	}
	*out = o;
	*out_len = cap - z.avail_out;
	return 0;
}

/* A streamed answer compressed as it goes: wraps the handler's callback. */
struct http_gz {
	ssize_t (*inner)(void *cls, uint64_t pos, char *buf, size_t max);
	void *inner_cls; /* owned through inner_free */
	void (*inner_free)(void *cls);
	z_stream z;
	char in[16 * 1024];
	int ended; /* the inner stream ended; Z_FINISH is being flushed */
	int done;  /* deflate returned Z_STREAM_END */
};

static void http_gz_free(void *cls)
{
	struct http_gz *g = cls;

	if (g == NULL)
		return;
	deflateEnd(&g->z);
	if (g->inner_free != NULL && g->inner_cls != NULL)
		g->inner_free(g->inner_cls);
	free(g);
}

static ssize_t http_gz_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_gz *g = cls;

	(void)pos;
	g->z.next_out = (Bytef *)buf;
	g->z.avail_out = (uInt)max;
	while (g->z.avail_out == max) {
		int rc;

		if (g->done)
			return HTTP_STREAM_END;
		if (g->z.avail_in == 0 && !g->ended) {
			ssize_t n = g->inner(g->inner_cls, 0, g->in, sizeof(g->in));
			if (n == HTTP_STREAM_ERROR)
				return HTTP_STREAM_ERROR;
			if (n == HTTP_STREAM_END) {
				g->ended = 1;
			} else {
				g->z.next_in = (Bytef *)g->in;
				g->z.avail_in = (uInt)n;
			}
		}
		rc = deflate(&g->z, g->ended ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			g->done = 1;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			return HTTP_STREAM_ERROR;
	}
	return (ssize_t)(max - g->z.avail_out);
}

/* Compresses ans in place when it asked for it (ans->compress), the client
 * accepts gzip and it is worth it; adds Content-Encoding and Vary. */
static void http_maybe_gzip(struct MHD_Connection *conn, struct http_answer *ans)
{
	if (!ans->compress)
		return;
	if (!http_accepts_gzip(conn))
		return;
	if (ans->stream != NULL) {
		struct http_gz *g = xcalloc(1, sizeof(*g));
		if (deflateInit2(&g->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			free(g);
			return;
		}
		g->inner = ans->stream;
		g->inner_cls = ans->stream_cls;
		g->inner_free = ans->stream_free;
		ans->stream = http_gz_read;
		ans->stream_cls = g;
		ans->stream_free = http_gz_free;
	} else if (ans->fd < 0 && ans->json == NULL && ans->raw != NULL &&
	           ans->raw_len >= HTTP_GZIP_MIN_BYTES) {
		char *z;
		size_t zn;
		if (http_gzip_buffer(ans->raw, ans->raw_len, &z, &zn) < 0)
			return;
		free(ans->raw);
		ans->raw = z;
		ans->raw_len = zn;
	} else {
		return;
	}
	ans->gzipped = 1;
}

static enum MHD_Result http_send(struct MHD_Connection *conn, struct http_answer *ans)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	const char *ctype = ans->content_type;

	http_maybe_gzip(conn, ans);
	if (ans->stream != NULL) {
		/* MHD's reader codes are the same -1 / -2 as HTTP_STREAM_*. */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, ans->stream,
		                                         ans->stream_cls, ans->stream_free);
		if (resp != NULL)
			ans->stream_cls = NULL; /* MHD frees it now */
	} else if (ans->fd >= 0) {
		resp = MHD_create_response_from_fd64(ans->fd_size, ans->fd);
		ans->fd = -1; /* MHD owns it now */
	} else if (ans->json != NULL) {
		char *s = json_dumps(ans->json, JSON_COMPACT);
		size_t n;
		if (s == NULL)
			fatalx("json_dumps failed");
		n = strlen(s);
		s = xrealloc(s, n + 2);
		s[n++] = '\n';
		s[n] = '\0';
		resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
		ctype = "application/json";
	} else {
		resp = MHD_create_response_from_buffer(ans->raw_len, ans->raw ? ans->raw : (char *)"",
		                                       ans->raw ? MHD_RESPMEM_MUST_FREE
		                                                : MHD_RESPMEM_PERSISTENT);
		ans->raw = NULL;
	}
	if (resp == NULL)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (int i = 0; i < HTTP_ANSWER_HEADERS; i++)
		if (ans->hdr_value[i])
			MHD_add_response_header(resp, ans->hdr_name[i], ans->hdr_value[i]);
	if (ans->compress) /* caches keep both forms apart */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (ans->gzipped)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	r = MHD_queue_response(conn, ans->status ? ans->status : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const struct err *err)
{
	struct http_answer ans = {.fd = -1};
	enum MHD_Result r;
	char *shown;

	ans.status = status;
	/* An error may quote a repository's URL: never its credentials. */
	shown = redact_urls_dup(err->msg[0] ? err->msg : "error");
	ans.json = json_pack("{s:s, s:s}", "error", shown, "code",
	                     status == MHD_HTTP_METHOD_NOT_ALLOWED ? "invalid" : err_code_name(err->code));
	free(shown);
	if (ans.json == NULL) /* a message that is not UTF-8 */
		ans.json = json_pack("{s:s, s:s}", "error", "error", "code", err_code_name(err->code));
	r = http_send(conn, &ans);
	http_answer_release(&ans);
	return r;
}

static void http_req_free(struct http_req *req)
{
	if (req == NULL)
		return;
	free(req->rest);
	buf_release(&req->body);
	json_decref(req->json);
	blob_writer_free(req->blob);
	free(req);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	http_req_free(*req_cls);
	*req_cls = NULL;
}

/* Finds the route; 404 / 405 in err when none. */
static const struct http_route *http_route_find(struct http_ctx *ctx, const char *method, const char *url,
                                                struct http_req *req, unsigned *status, struct err *err)
{
	int path_known = 0;
	const struct http_route *fallback = NULL;

	/* HEAD is GET without the body: MHD sends the headers only. */
	if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		method = MHD_HTTP_METHOD_GET;
	for (size_t i = 0; i < ctx->n_routes; i++) {
		int64_t id = 0;
		char *rest = NULL;
		if (strcmp(ctx->routes[i].method, HTTP_FALLBACK) == 0) {
			fallback = &ctx->routes[i];
			continue;
		}
		if (!http_match(ctx->routes[i].pattern, url, &id, &rest))
			continue;
		if (strcmp(ctx->routes[i].method, method) != 0) {
			path_known = 1;
			free(rest);
			continue;
		}
		req->id = id;
		req->rest = rest;
		return &ctx->routes[i];
	}
	if (path_known) {
		*status = MHD_HTTP_METHOD_NOT_ALLOWED;
		err_set(err, ERR_INVAL, "method %s not allowed on %s", method, url);
	} else {
		/* Paths under /api/, and what is not a GET (a webhook to a wrong
		 * path), keep their JSON 404 for scripts. */
		if (fallback != NULL && strcmp(method, MHD_HTTP_METHOD_GET) == 0 &&
		    strncmp(url, "/api/", 5) != 0) {
			req->rest = xstrdup(url);
			return fallback;
		}
		*status = MHD_HTTP_NOT_FOUND;
		err_set(err, ERR_NOTFOUND, "no route for %s %s", method, url);
	}
	return NULL;
}

static int64_t http_body_cap(struct srv *srv, enum http_body kind)
{
	switch (kind) {
	case BODY_NONE:
		return 64 * 1024; /* tolerated and ignored, e.g. "{}" on a cancel */
	case BODY_JSON:
		return srv->cfg.json_cap_bytes;
	case BODY_RAW:
		return 1024 * 1024;
	case BODY_BLOB:
		return srv->cfg.artifact_cap_bytes;
	}
	return 0;
}

static int http_body_take(struct srv *srv, struct http_req *req, const char *data, size_t n)
{
	if (req->failed)
		return 0;
	if ((int64_t)(req->body.len + n) > req->body_cap && req->route->body != BODY_BLOB) {
		req->failed = 1;
		err_set(&req->body_err, ERR_LIMIT, "body is over the limit of %lld bytes",
		        (long long)req->body_cap);
		return 0;
	}
	(void)srv;
	if (req->route->body == BODY_NONE) {
		req->body.len += n; /* counted against the cap, not kept */
		return 0;
	}
	if (req->route->body == BODY_BLOB) {
		if (blob_writer_write(req->blob, data, n, &req->body_err) < 0)
			req->failed = 1;
		return 0;
	}
	buf_append(&req->body, data, n);
	return 0;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls)
{
	struct http_ctx *ctx = cls;
	struct srv *srv = ctx->srv;
	struct http_req *req = *req_cls;
	struct http_answer ans = {.fd = -1};
	struct err err = {0};
	enum MHD_Result r;
	unsigned status = 0;

	(void)version;
	if (req == NULL) {
		const char *cl;
		req = xcalloc(1, sizeof(*req));
		req->conn = conn;
		*req_cls = req;
		if ((req->route = http_route_find(ctx, method, url, req, &status, &err)) == NULL)
			return http_send_error(conn, status, &err);
		if (http_auth_check(srv, http_header(req, MHD_HTTP_HEADER_AUTHORIZATION), req->route->auth,
		                    &req->agent_id, &err) < 0)
			return http_send_error(conn, http_status_from_err(err.code), &err);
		req->body_cap = http_body_cap(srv, req->route->body);
		cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoll(cl, NULL, 10) > req->body_cap) {
			err_set(&err, ERR_LIMIT, "body of %s bytes is over the limit of %lld bytes", cl,
			        (long long)req->body_cap);
			return http_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, &err);
		}
		/* A body kept in memory gets its announced size at once: a 512 KiB
		 * log chunk is not copied again on each doubling. */
		if (cl != NULL && (req->route->body == BODY_RAW || req->route->body == BODY_JSON) &&
		    strtoll(cl, NULL, 10) > 0)
			buf_reserve(&req->body, (size_t)strtoll(cl, NULL, 10));
		if (req->route->begin && req->route->begin(srv, req, &err) < 0)
			return http_send_error(conn, http_status_from_err(err.code), &err);
		if (req->route->body == BODY_BLOB && req->blob == NULL &&
		    blob_writer_new(srv->blob_dir, req->body_cap, srv->fp, &req->blob, &err) < 0) {
			log_warnx("event=http_error status=500 error=\"%s\"", err.msg);
			return http_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		http_body_take(srv, req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->failed) {
		status = http_status_from_err(req->body_err.code);
		/* A body that could not be stored (disk full, I/O error) is the
		 * operator's business, unlike one over its cap. */
		if (status >= 500)
			log_warnx("event=http_error method=%s status=%u error=\"%s\"", method, status,
			          req->body_err.msg);
		return http_send_error(conn, status, &req->body_err);
	}
	if (req->route->body == BODY_JSON) {
		json_error_t jerr;
		if (req->body.len == 0) {
			err_set(&err, ERR_INVAL, "a JSON body is required");
			return http_send_error(conn, MHD_HTTP_BAD_REQUEST, &err);
		}
		req->json = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
		if (req->json == NULL || !json_is_object(req->json)) {
			err_set(&err, ERR_INVAL, "malformed JSON at line %d column %d: %s", jerr.line,
			        jerr.column, req->json ? "expected an object" : jerr.text);
			return http_send_error(conn, MHD_HTTP_BAD_REQUEST, &err);
		}
	}
	if (req->route->handle(srv, req, &ans, &err) < 0) {
		status = http_status_from_err(err.code);
		if (status >= 500)
			log_warnx("event=http_error method=%s status=%u error=\"%s\"", method, status,
			          err.msg);
		http_answer_release(&ans);
		return http_send_error(conn, status, &err);
	}
	r = http_send(conn, &ans);
	http_answer_release(&ans);
	return r;
}

/* MHD's own unescaping, but a decoded NUL (%00) becomes \x01 so that the
 * C strings handlers see are never silently cut short: names and values
 * holding it fail validation instead. */
static size_t http_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	size_t n = MHD_http_unescape(s);

	(void)cls;
	(void)conn;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = '\x01';
	return n;
}

int http_start(struct srv *srv, const struct http_route *routes, size_t n_routes, int *port_out,
               struct err *err)
{
	struct sockaddr_in sa;
	struct http_ctx *ctx = xcalloc(1, sizeof(*ctx));
	const union MHD_DaemonInfo *info;

	ctx->srv = srv;
	ctx->routes = routes;
	ctx->n_routes = n_routes;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)srv->cfg.port);
	inet_pton(AF_INET, srv->cfg.listen_addr, &sa.sin_addr);
	srv->httpd = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
	        MHD_USE_ERROR_LOG,
	    0, NULL, NULL, http_access, ctx, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2000, MHD_OPTION_THREAD_STACK_SIZE,
	    (size_t)(256 * 1024), MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL, MHD_OPTION_END);
	if (srv->httpd == NULL) {
		free(ctx);
		return err_set(err, ERR_SYS, "cannot listen on %s:%d (port in use or address not local?)",
		               srv->cfg.listen_addr, srv->cfg.port);
	}
	info = MHD_get_daemon_info(srv->httpd, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info ? info->port : srv->cfg.port;
	srv->http_ctx = ctx;
	return 0;
}

void http_stop(struct srv *srv)
{
	if (srv->httpd == NULL)
		return;
	MHD_stop_daemon(srv->httpd);
	srv->httpd = NULL;
	free(srv->http_ctx);
	srv->http_ctx = NULL;
}
