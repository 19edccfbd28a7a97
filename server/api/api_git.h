#ifndef ANVIL_API_GIT_H
#define ANVIL_API_GIT_H

#include <stddef.h>

#include "server/http/http.h"

/* Git's smart HTTP, read-only, for agents (docs/api.md, docs/security.md):
 * an agent fetches the commit of a job it holds from the server's own bare
 * mirror of that job's repository (forge repositories and scratch builds
 * alike), so it needs to reach only the server. The repository is
 * http://SERVER/api/v1/agents/jobs/ID/git:
 *   GET  .../git/info/refs?service=git-upload-pack
 *   POST .../git/git-upload-pack
 * answered by `git upload-pack --stateless-rpc` (git's own server, spawned
 * through common/proc; its output streamed, never held whole). The agent's
 * own token is required and job ID's current attempt must be running and
 * claimed by that agent; no other repository is reachable. git-receive-pack
 * (a push) is refused with 403. A request body is capped like any raw body
 * (1 MiB); a compressed one (Content-Encoding) is refused. */
extern const struct http_route api_git_routes[];
extern const size_t api_git_routes_count;

#endif
