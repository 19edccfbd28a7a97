#ifndef ANVIL_HTTP_H
#define ANVIL_HTTP_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The HTTP edge over libmicrohttpd: routing, authentication, body caps,
 * turning errors into JSON answers. Handlers (api.c) never see MHD. One
 * thread per connection, so a long poll blocks only its own client. */

struct srv;
struct blob_writer;

/* AUTH_NONE: the edge checks nothing; the handler authenticates itself
 * (the web UI's session cookie, a forge's webhook signature). AUTH_ENROLL:
 * the enrollment secret (agent registration only). AUTH_AGENT: an agent's
 * own token (from registration); the edge sets http_req.agent_id. */
enum http_auth { AUTH_READ = 0, AUTH_ADMIN, AUTH_AGENT, AUTH_NONE, AUTH_ENROLL };
enum http_body { BODY_NONE = 0, BODY_JSON, BODY_RAW, BODY_BLOB };

struct http_req {
	struct MHD_Connection *conn; /* borrowed */
	const struct http_route *route;
	int64_t id;               /* the :id segment, when the route has one */
	int64_t agent_id;         /* AUTH_AGENT: the agent whose token was presented */
	char *rest;               /* the * tail (already percent-decoded), owned */
	struct buf body;          /* BODY_JSON / BODY_RAW */
	json_t *json;             /* BODY_JSON parsed once the body is complete, owned */
	struct blob_writer *blob; /* BODY_BLOB, owned */
	int64_t body_cap;
	int failed; /* body_err holds why */
	struct err body_err;
};

#define HTTP_ANSWER_HEADERS 6

struct http_answer {
	unsigned status;
	json_t *json; /* owned; sent as application/json */
	char *raw;    /* owned; sent as content_type */
	size_t raw_len;
	const char *content_type; /* static string */
	int fd;                   /* >= 0: send this file (size fd_size); MHD closes it */
	uint64_t fd_size;
	char hdr_name[HTTP_ANSWER_HEADERS][32];
	char *hdr_value[HTTP_ANSWER_HEADERS]; /* owned */
	/* Streamed answer of unknown length (Server-Sent Events) when stream is
	 * set: called on the connection's own thread, may block (a wait on
	 * sched), returns bytes written into buf (> 0), HTTP_STREAM_END or
	 * HTTP_STREAM_ERROR. stream_free(stream_cls) runs once the answer is done
	 * or abandoned (also when it was never sent). */
	ssize_t (*stream)(void *cls, uint64_t pos, char *buf, size_t max);
	void *stream_cls;
	void (*stream_free)(void *cls);
	/* Set by a handler whose answer (raw text of at least
	 * HTTP_GZIP_MIN_BYTES, or a stream) may be sent gzip-compressed when the
	 * client's Accept-Encoding takes gzip; never for an event stream, whose
	 * events must not wait in a compressor. gzipped is the edge's own. */
	int compress;
	int gzipped;
};

#define HTTP_GZIP_MIN_BYTES 1024

#define HTTP_STREAM_END   ((ssize_t)-1)
#define HTTP_STREAM_ERROR ((ssize_t)-2)

/* A route whose method is HTTP_FALLBACK answers every GET that no other
 * route's path matches, outside /api/ (which keeps its JSON 404): the
 * web UI's HTML 404 page. Its handler gets the path in req->rest. A HEAD
 * request is routed as GET; MHD sends the headers without the body. */
#define HTTP_FALLBACK "*"

struct http_route {
	const char *method;
	const char *pattern; /* "/api/v1/jobs/:id/log", a trailing "*" matches the rest */
	enum http_auth auth;
	enum http_body body;
	/* Called once headers are in, before the body (may be NULL): validate
	 * early so a bad upload is refused before it is sent. */
	int (*begin)(struct srv *srv, struct http_req *req, struct err *err);
	int (*handle)(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err);
};

/* Starts the daemon on cfg's address; *port_out gets the bound port. */
int http_start(struct srv *srv, const struct http_route *routes, size_t n_routes, int *port_out,
               struct err *err);
void http_stop(struct srv *srv);

/* A query-string value (borrowed) or NULL. */
const char *http_query(struct http_req *req, const char *key);
/* A query value as int64 with bounds; def when absent; ERR_INVAL when bad. */
int http_query_i64(struct http_req *req, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                   struct err *err);
/* A request header (borrowed) or NULL. */
const char *http_header(struct http_req *req, const char *name);

/* True when the client has hung up (a long poll's agent died): checked
 * before handing it a job. */
int http_peer_gone(struct http_req *req);

/* Sets an extra response header (copies value). */
void http_answer_header(struct http_answer *ans, const char *name, const char *value);

unsigned http_status_from_err(enum err_code code);

/* Checks an Authorization header value (may be NULL) against the admin and
 * enrollment hashes in constant time and the agents' token hashes in the
 * store (srv->store may be NULL: no agent tokens): 0 when it grants `need`,
 * else ERR_AUTH (missing, unknown or revoked token; the enrollment secret on
 * an agent route) or ERR_FORBIDDEN (a token of the wrong kind). For
 * AUTH_AGENT, *agent_id_out gets the token's agent (agent_id_out may be NULL
 * otherwise). */
int http_auth_check(const struct srv *srv, const char *authorization, enum http_auth need,
                    int64_t *agent_id_out, struct err *err);

#endif
