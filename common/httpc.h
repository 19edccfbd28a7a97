#ifndef ANVIL_HTTPC_H
#define ANVIL_HTTPC_H

#include <signal.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"

/* HTTP client over libcurl (and libevent for HTTPC_LIGHT), used by the agent and the CLI to speak the JSON
 * API (docs/api.md). One struct httpc per thread (it owns one easy handle,
 * reused for keep-alive). Timeouts are always set. */

struct httpc;

/* base_url like "http://127.0.0.1:8080" (no trailing slash needed), or
 * several separated by commas (servers sharing one store): requests go to
 * one until it cannot be reached (connect refused, connection dropped), then
 * to the next. token is sent as "Authorization: Bearer <token>" when
 * non-NULL. Both copied. */
struct httpc *httpc_new(const char *base_url, const char *token);
/* Plain-HTTP requests go over libevent (common/httpev.h: one library
 * mapped, about 0.2 ms, kept-alive connections)
 * rather than libcurl (some 30 libraries, 5-9 ms to load and ~5 MB
 * resident); https and a body from a file still use libcurl, loaded on the
 * first such request. The CLI and the agent. */
#define HTTPC_LIGHT 1u
struct httpc *httpc_new_flags(const char *base_url, const char *token, unsigned flags);
/* The base URL requests go to now (borrowed until the next request). */
const char *httpc_base_url(const struct httpc *c);
void httpc_free(struct httpc *c);
/* Transfers of c end early (ERR_UNAVAIL) once *flag is non-zero, e.g. a
 * SIGTERM flag: an idle agent's long poll does not hold up its exit. */
void httpc_set_abort_flag(struct httpc *c, volatile sig_atomic_t *flag);

struct httpc_req {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *path;   /* "/api/v1/..." incl. query string, already escaped */
	const void *body;   /* request body bytes, or NULL */
	size_t body_len;
	int body_fd; /* >= 0: stream the body from this fd (body_fd_len bytes) instead */
	uint64_t body_fd_len;
	const char *content_type; /* NULL: application/json when a body is sent */
	int out_fd;               /* >= 0: write the response body to this fd instead of resp.body */
	long timeout_ms;          /* whole transfer; 0: 30000 */
};
#define HTTPC_REQ_INIT                                                                                       \
	{                                                                                                    \
		NULL, NULL, NULL, 0, -1, 0, NULL, -1, 0                                                      \
	}

struct httpc_resp {
	long status;
	struct buf body;     /* unless out_fd was given */
	struct strv headers; /* "name: value" lines as received, name lowercased */
};
#define HTTPC_RESP_INIT                                                                                      \
	{                                                                                                    \
		0, BUF_INIT, STRV_INIT                                                                       \
	}

/* Performs one request. Returns 0 whenever an HTTP answer came back (any
 * status); -1 with ERR_UNAVAIL on transport failure (connect refused, timeout). */
int httpc_do(struct httpc *c, const struct httpc_req *req, struct httpc_resp *resp, struct err *err);
/* Borrowed value of a response header (case-insensitive name), or NULL. */
const char *httpc_resp_header(const struct httpc_resp *resp, const char *name);
void httpc_resp_release(struct httpc_resp *resp);

/* JSON round trip: body (borrowed, may be NULL) is dumped and sent. On 2xx,
 * 0 and *out owns the parsed answer (NULL for an empty body). On any other
 * status, -1 with err->code from httpc_err_code(status) and err->msg from the
 * answer's "error" field. Transport failure: -1, ERR_UNAVAIL. */
int httpc_json(struct httpc *c, const char *method, const char *path, json_t *body, long timeout_ms,
               json_t **out, struct err *err);

/* 400→ERR_INVAL 401→ERR_AUTH 403→ERR_FORBIDDEN 404→ERR_NOTFOUND 409→ERR_CONFLICT
 * 413→ERR_LIMIT 503→ERR_UNAVAIL others→ERR_SYS. */
enum err_code httpc_err_code(long status);

/* Percent-escapes s for a path segment or query value; caller frees. */
char *httpc_escape(const char *s);

/* Added: parses an answer httpc_do already received, with httpc_json's rules
 * (2xx: 0 and *out owns the parsed body, NULL when empty; otherwise -1 with
 * httpc_err_code(status) and the "error" field). Lets a caller that needs
 * headers too (or to tell a transport failure from an error status) share
 * the mapping. */
int httpc_resp_json(const struct httpc_resp *resp, json_t **out, struct err *err);

#endif
