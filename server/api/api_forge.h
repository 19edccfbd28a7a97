#ifndef ANVIL_API_FORGE_H
#define ANVIL_API_FORGE_H

#include <stddef.h>

#include "server/http/http.h"

/* The admin API of forge settings and secrets (docs/api.md): registering a
 * repository with its forge, webhook secret, status token and polling, and
 * setting, listing and deleting its secrets. No answer ever holds a secret
 * or a token. */
extern const struct http_route api_forge_routes[];
extern const size_t api_forge_routes_count;

/* "60", "60s", "5m", "1h" → seconds; -1 when malformed. */
long api_forge_parse_duration(const char *s);

#endif
