#ifndef ANVIL_UI_H
#define ANVIL_UI_H

#include <stddef.h>

#include "server/http/http.h"

/* The web UI: server-rendered HTML pages (dashboard, pipeline, job with a
 * live log, agents, boards, deployments, releases), the login session, form
 * actions (cancel, retry) with CSRF tokens, SVG status badges and the
 * embedded static files. All routes are AUTH_NONE: the UI checks its own
 * session cookie (ui_auth.h); reads need it only with read_auth. See
 * docs/ui.md. */

extern const struct http_route ui_routes[];
extern const size_t ui_routes_count;

#endif
