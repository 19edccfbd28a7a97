#ifndef ANVIL_API_SCRATCH_H
#define ANVIL_API_SCRATCH_H

#include <stddef.h>

#include "server/http/http.h"

/* Scratch builds (`anvil build DIR`, docs/api.md): an admin uploads a git
 * packfile holding one commit of a working tree (the commit, its tree and
 * every blob, no history) to POST /api/v1/repos/NAME/scratch. The server
 * indexes it into a bare repository it owns, <data>/scratch/NAME.git, under
 * refs/anvil/build/<commit>, and starts a `manual` pipeline of repository
 * NAME whose URL is that repository's path, so the server's mirror and the
 * agents fetch the commit like any other. A repository NAME registered with
 * another URL is refused (ERR_CONFLICT): a scratch build never takes over a
 * forge's repository. */
extern const struct http_route api_scratch_routes[];
extern const size_t api_scratch_routes_count;

#endif
