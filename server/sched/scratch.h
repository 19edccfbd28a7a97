#ifndef ANVIL_SCRATCH_H
#define ANVIL_SCRATCH_H

#include <stdint.h>

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

/* The scratch repositories of `anvil build` (server/api/api_scratch.h):
 * <data>/scratch/NAME.git, bare, one ref refs/anvil/build/<commit> per
 * upload, each written with a reflog entry in the server's time. */

struct srv;

#define SCRATCH_REF_PREFIX "refs/anvil/build/"

/* <data>/scratch/NAME.git as an absolute path (the repository's URL in the
 * store, fetched by the server's mirror), the scratch directory made on first
 * use. Caller frees. NULL with err on failure. */
char *scratch_repo_path(const struct srv *srv, const char *name, struct err *err);

/* Removes every scratch ref written before before_ms (by its reflog, else by
 * its commit's time), from the scratch repository and from the server's
 * mirror of it (so agents can no longer fetch it); a scratch repository left
 * without a ref is removed with its mirror. Each repository under
 * srv->git_mu; stop (may be NULL) is polled between repositories. Counts go
 * to *refs_out and *repos_out (added to). */
int scratch_prune(struct srv *srv, int64_t before_ms, const volatile int *stop, int64_t *refs_out,
                  int64_t *repos_out, struct err *err);

/* The git helper's side (libgit2; the server calls these through
 * server/gitproc/gitops.h). */

/* Indexes the pack at pack_path into the bare repository dir (made on first
 * use) and points ref at commit_hex, which must be there with its whole tree.
 * A pack that does not parse or lacks objects is ERR_INVAL. */
int scratch_index(const char *dir, const char *pack_path, const char *commit_hex, const char *ref,
                  struct err *err);
/* The scratch refs of repo_path written before before_ms (pushed to old)
 * and how many others there are; *is_repo_out 0 (and nothing else) when
 * repo_path is not a repository. */
int scratch_old_refs(const char *repo_path, int64_t before_ms, struct strv *old, size_t *kept_out,
                     int *is_repo_out, struct err *err);
/* Removes refname from repo_path (nothing when either is gone). */
int scratch_ref_drop(const char *repo_path, const char *refname, struct err *err);

#endif
