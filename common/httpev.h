#ifndef ANVIL_HTTPEV_H
#define ANVIL_HTTPEV_H

#include "common/err.h"
#include "common/httpc.h"

/* One plain-HTTP request over libevent's client (common/eventbind.h), for
 * httpc's HTTPC_LIGHT clients: a short-lived process (the CLI) then maps one
 * small library instead of libcurl's thirty. url is the whole request URL;
 * auth (may be NULL) the Authorization header's value. Returns 0 when an
 * answer came back (any status) into resp; -1 with ERR_UNAVAIL on a
 * transport failure (*retry_next set when the server was not reached or
 * dropped the connection, not on a timeout); 1 when it does not take the
 * request (libevent missing, not http://, another method, a body from or to
 * a file descriptor): the caller uses libcurl. */
int httpev_do(const char *url, const char *auth, const struct httpc_req *req, long timeout_ms,
              struct httpc_resp *resp, int *retry_next, struct err *err);

#endif
