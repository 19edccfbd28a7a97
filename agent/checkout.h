#ifndef ANVIL_AGENT_CHECKOUT_H
#define ANVIL_AGENT_CHECKOUT_H

#include <stddef.h>

#include "common/err.h"

/* Source checkout with libgit2 (never the git command). Each repository has a
 * bare mirror cache at <work_dir>/mirrors/<safe-name>-<12 hex of sha256(url)>.git
 * fetched with the refspec "+refs/ * :refs/ *" (every ref, forced); a job gets a clean directory holding
 * exactly one commit's tree. Mirror access is serialised with flock(2) on
 * "<mirror>.lock", so agents sharing work_dir on one machine are safe.
 * git_libgit2_init must have been called once (main). Any thread, but one
 * call per thread at a time. */

/* Writes the mirror path for (repo_name, url) to out (size n). Returns -1 with
 * ERR_LIMIT when it does not fit. */
int checkout_mirror_path(char *out, size_t n, const char *work_dir, const char *repo_name, const char *url,
                         struct err *err);

/* Makes dest_dir a fresh directory (removed first when present, parents
 * created) holding exactly commit_hex's tree, fetched into the mirror when
 * the mirror does not have it yet. dest_dir is a git checkout of its own:
 * dest_dir/.git holds the mirror's branches (as origin/ remote branches), its
 * tags (so `git describe --tags` works) and HEAD detached at the commit,
 * copied from the mirror (no hard links, no alternates: the steps may write
 * it), with no remote URL and no credentials in its config.
 * Errors: ERR_INVAL (bad commit hex), ERR_NOTFOUND ("commit X not found in
 * URL"), ERR_SYS with libgit2's message (bad URL, fetch failure), ERR_SYS for
 * file system failures. */
int checkout_prepare(const char *work_dir, const char *repo_name, const char *url, const char *commit_hex,
                     const char *dest_dir, struct err *err);

/* Where a checkout comes from. url is the repository's identity: it names
 * the mirror, and is fetched when fetch_url is NULL. fetch_url, when set, is
 * fetched instead (the server's copy of the repository over smart HTTP,
 * docs/api.md), with headers (NULL-terminated "Name: value" lines, e.g. the
 * agent's "Authorization: Bearer ..."; NULL for none) sent with every
 * request. All borrowed. */
struct checkout_source {
	const char *repo_name;
	const char *url;
	const char *fetch_url;
	const char *const *headers;
	/* Called (when not NULL) just before a fetch, i.e. only when the
	 * mirror lacks the commit: the agent sends the log's "checkout" line
	 * then, so a slow fetch shows, and a checkout from the mirror alone
	 * costs no extra round trip. */
	void (*before_fetch)(void *cls);
	void *cls;
};

/* checkout_prepare from src (see checkout_source); same errors. */
int checkout_prepare_from(const char *work_dir, const struct checkout_source *src, const char *commit_hex,
                          const char *dest_dir, struct err *err);

/* Removes path and everything under it (nftw, no shell, symlinks not
 * followed). A missing path is success. */
int checkout_remove_tree(const char *path, struct err *err);

/* mkdir -p with mode 0755 for every missing component. */
int checkout_mkdirs(const char *path, struct err *err);

#endif
