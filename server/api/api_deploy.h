#ifndef ANVIL_API_DEPLOY_H
#define ANVIL_API_DEPLOY_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"
#include "common/pipefile.h"
#include "server/http/http.h"
#include "server/store/store.h"

struct srv;

/* Boards and deployments (docs/api.md, docs/deploy.md): the board admin
 * routes, manual deploy and rollback, the reads, and the agent's per-board
 * report. A board's private key goes out only inside the claim spec of a
 * deploy job for its group; no other answer holds it. */
extern const struct http_route api_deploy_routes[];
extern const size_t api_deploy_routes_count;

/* Completes a claimed deploy job's spec (borrowed j; spec owned by the
 * caller, changed in place): the release id, the group's boards with their
 * keys, the artifacts (name, sha256, size, job) and the boards already done
 * in earlier attempts. A problem (no boards, missing artifact) is put in
 * spec.deploy.error for the agent to fail the job with. */
void api_deploy_claim_spec(struct srv *srv, const struct job_row *j, json_t *spec);

#endif
