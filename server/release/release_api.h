#ifndef ANVIL_RELEASE_API_H
#define ANVIL_RELEASE_API_H

#include <stddef.h>

#include "server/http/http.h"

/* The release routes of docs/api.md: listing and reading releases (their
 * manifest, signature, SHA256SUMS, public key and files), the release keys,
 * key rotation, and `anvil release create` (tag + push). */
extern const struct http_route release_api_routes[];
extern const size_t release_api_routes_count;

/* 1 when a /api/v1/repos/<rest> path is "NAME/release-pattern". */
int release_api_is_pattern_path(const char *rest);
/* GET or PUT /api/v1/repos/NAME/release-pattern (admin): the repository's
 * release tag glob, {"pattern": "v*"}. Called by api_forge.c, which owns the
 * /api/v1/repos/ prefix. */
int release_api_pattern(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err);

#endif
