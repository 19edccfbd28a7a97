#ifndef ANVIL_RELEASE_GIT_H
#define ANVIL_RELEASE_GIT_H

#include "common/err.h"

/* `anvil release create`: an annotated tag made in the server's mirror of a
 * repository with libgit2 and pushed to the repository's URL.
 *
 * The remote's tag is looked up first (ls-remote): absent → the tag is made
 * and pushed (*created_out = 1); present at the same commit → nothing is
 * done (*created_out = 0, idempotent); present at another commit →
 * ERR_CONFLICT. Local paths and file:// remotes need no credentials; http(s)
 * and ssh remotes need credentials libgit2 can find (none are configured by
 * anvil yet: see docs/releases.md). The caller serialises mirror access
 * (srv->git_mu). */
int release_git_tag_push(const char *mirror_path, const char *url, const char *tag, const char *commit_hex,
                         const char *message, int *created_out, struct err *err);

/* 1 when url is a local path or a file:// URL: libgit2 pushes there without
 * running the receiving repository's hooks. */
int release_git_url_is_local(const char *url);

#endif
