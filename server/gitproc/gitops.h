#ifndef ANVIL_GITOPS_H
#define ANVIL_GITOPS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "common/gitproc.h"
#include "server/release/release_git.h"
#include "server/sched/gitread.h"

/* The git helper's operations (gitproc.h): each gitops_X on the server's
 * side sends its arguments to the helper, which runs the libgit2 function of
 * the same meaning (gitread.h, scratch.h, release_git.h) and sends back its
 * result or err. The server never loads libgit2 itself. Arguments and
 * results as those functions document them. */

int gitops_read(struct gitproc *gp, const char *mirror_path, const char *url, const char *ref,
                const char *commit, const char *file_path, size_t max_file_bytes, struct gitread_result *out,
                struct err *err);
int gitops_links_at(struct gitproc *gp, const char *mirror_path, const char *commit, size_t max_links,
                    struct gitread_links *out, struct err *err);
int gitops_rev(struct gitproc *gp, const char *mirror_path, const char *ref, char hex_out[41],
               struct err *err);
int gitops_ls_remote(struct gitproc *gp, const char *url, struct strv *names, struct strv *oids,
                     struct err *err);
int gitops_tag_push(struct gitproc *gp, const char *mirror_path, const char *url,
                    const struct release_git_creds *creds, const char *tag, const char *commit_hex,
                    const char *message, int *created_out, struct err *err);
int gitops_scratch_index(struct gitproc *gp, const char *dir, const char *pack_path, const char *commit_hex,
                         const char *ref, struct err *err);
int gitops_scratch_old_refs(struct gitproc *gp, const char *repo_path, int64_t before_ms, struct strv *old,
                            size_t *kept_out, int *is_repo_out, struct err *err);
int gitops_ref_drop(struct gitproc *gp, const char *repo_path, const char *refname, struct err *err);

/* The helper's side: runs one request (a gitproc_handler_fn). */
int gitops_handle(const char *op, json_t *args, struct gitproc_emit *emit, json_t **result_out,
                  struct err *err);

#endif
