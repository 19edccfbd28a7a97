#ifndef ANVIL_SUBMOD_H
#define ANVIL_SUBMOD_H

#include <jansson.h>

#include "common/err.h"
#include "common/gitsub.h"
#include "common/xalloc.h"

struct srv;

/* Submodules of a pipeline's commit, resolved by the server (docs/security.md
 * "Submodules"). .gitmodules comes from an untrusted push: its URL is only a
 * name to look up among the repositories the server knows (relative URLs
 * resolved against the parent's registered URL; scheme and user ignored,
 * host and path compared; a local path only matches a registered local
 * path). What is fetched is always the registered repository's own mirror
 * on the server, which agents read through /api/v1/agents/jobs/ID/sub/REPO
 * like the parent. A URL that names no known repository, a transport
 * ("ext::"), a repository bound to agents the parent's are not, a bad path
 * or a nesting past SUBMOD_MAX_DEPTH refuses the submodule. */

#define SUBMOD_MAX_DEPTH 4
#define SUBMOD_MAX_COUNT 64

struct submod {
	char *path; /* owned; workspace-relative, checked (no "..", ".git", absolute) */
	char *name; /* owned; its name in .gitmodules, printable ASCII (non-ASCII as '?') */
	char *repo; /* owned; the anvil repository it is */
	char *url;  /* owned; that repository's URL, credentials shown as *** */
	char commit[41];
};

struct submod_list {
	struct submod *v; /* owned, n entries, parents before their submodules */
	size_t n;
};
void submod_list_release(struct submod_list *l);

/* Resolves the submodules of commit in the server's mirror of repository
 * repo_name (url: its registered URL; allowed: NULL, or the only
 * repositories a submodule may be),
 * recursively, fetching each submodule's commit into that repository's
 * mirror when it is missing. Caller holds srv->git_mu.
 * Errors: ERR_INVAL with a message naming the refused submodule and why
 * (shown to the user as is, URLs redacted); other codes for store or git
 * failures. */
int submod_resolve(struct srv *srv, const char *repo_name, const char *url, const char *commit,
                   const struct strv *allowed, struct submod_list *out, struct err *err);

/* The repositories ref's commit (in the server's mirror of repo_name) has
 * as submodules, pushed to out; none when it has none or they do not
 * resolve. What a fork's pull request may use (allowed above): its
 * .gitmodules is the fork author's, who may move a submodule's commit but
 * not point it at another repository the server knows. Caller holds
 * srv->git_mu. */
void submod_repos_at_ref(struct srv *srv, const char *repo_name, const char *url, const char *ref,
                         struct strv *out);

/* The list as the job spec's "submodules" array (a new reference). */
json_t *submod_list_json(const struct submod_list *l);

#endif
