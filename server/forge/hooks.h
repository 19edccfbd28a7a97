#ifndef ANVIL_HOOKS_H
#define ANVIL_HOOKS_H

#include <stddef.h>

#include "server/http/http.h"

/* Forge webhooks: POST /hooks/NAME. The signature is checked against the
 * repository's secret before anything of the body is read or logged; a
 * push or tag starts a pipeline through pipeline_start (docs/forges.md). */

extern const struct http_route hooks_routes[];
extern const size_t hooks_routes_count;

#endif
