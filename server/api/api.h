#ifndef ANVIL_API_H
#define ANVIL_API_H

#include <stddef.h>

#include <stdint.h>

#include "server/http/http.h"

struct srv;

/* The JSON API routes of docs/api.md: the table the HTTP edge dispatches. */
extern const struct http_route api_routes[];
extern const size_t api_routes_count;

/* Answers the bytes of job_id's artifact name, streamed from its blob (the
 * sha256 in X-Anvil-Sha256): for the API route and the UI's cookie-checked
 * one. ERR_NOTFOUND for no such artifact; ERR_SYS when its blob is gone.
 * Any thread. */
int api_artifact_answer(struct srv *srv, int64_t job_id, const char *name, struct http_answer *ans,
                        struct err *err);

#endif
