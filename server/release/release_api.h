#ifndef ANVIL_RELEASE_API_H
#define ANVIL_RELEASE_API_H

#include <stddef.h>

#include "server/http/http.h"

/* The release routes of docs/api.md: listing and reading releases (their
 * manifest, signature, SHA256SUMS, public key and files), the release keys,
 * key rotation, and `anvil release create` (tag + push). */
extern const struct http_route release_api_routes[];
extern const size_t release_api_routes_count;

/* GET /api/v1/releases/<rest>, rest = "REPO/VERSION[/SUB]" (split in
 * place): the release as JSON, or its manifest.json, manifest.json.sig,
 * SHA256SUMS, anvil-release.pub or files/TARGET/NAME. Authentication is the
 * caller's (the API's bearer check, or the web UI's session for its
 * /releases/ links). ERR_NOTFOUND, ERR_CONFLICT (not signed yet). */
int release_api_answer(struct srv *srv, char *rest, struct http_answer *ans, struct err *err);

/* 1 when a /api/v1/repos/<rest> path is "NAME/release-pattern". */
int release_api_is_pattern_path(const char *rest);
/* GET or PUT /api/v1/repos/NAME/release-pattern (admin): the repository's
 * release tag glob, {"pattern": "v*"}. Called by api_forge.c, which owns the
 * /api/v1/repos/ prefix. */
int release_api_pattern(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err);

#endif
