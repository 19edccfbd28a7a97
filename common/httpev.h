#ifndef ANVIL_HTTPEV_H
#define ANVIL_HTTPEV_H

#include <signal.h>

#include "common/err.h"
#include "common/httpc.h"

/* Plain-HTTP requests over libevent's client (common/eventbind.h), for
 * httpc's HTTPC_LIGHT clients: a process then maps one small library
 * instead of libcurl's thirty. A struct httpev is one client's event base
 * and its connection, kept alive between requests to the same server; one
 * per thread, like struct httpc. */
struct httpev;

struct httpev *httpev_new(void);
void httpev_free(struct httpev *e);

/* One request. url is the whole request URL; auth (may be NULL) the
 * Authorization header's value; a non-zero *abort_flag (may be NULL) ends
 * the transfer within 200 ms. Returns 0 when an answer came back (any
 * status) into resp (a 2xx body into req->out_fd when it is one); -1 with
 * ERR_UNAVAIL on a transport failure (*retry_next set when the server was
 * not reached or dropped the connection, not on a timeout or an abort), or
 * the errno of a failed write to out_fd; 1 when it does not take the
 * request (libevent missing, not http://, another method, a body_fd): the
 * caller uses libcurl. A GET, HEAD, PUT or DELETE whose kept-alive connection turns out
 * closed is sent once more on a new one; a POST is not (it may have been
 * acted on). */
int httpev_do(struct httpev *e, const char *url, const char *auth, const struct httpc_req *req,
              long timeout_ms, volatile sig_atomic_t *abort_flag, struct httpc_resp *resp, int *retry_next,
              struct err *err);

#endif
