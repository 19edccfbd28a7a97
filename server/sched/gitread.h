#ifndef ANVIL_GITREAD_H
#define ANVIL_GITREAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"

/* Reading a repository at a commit, for the server: fetches the remote into a
 * bare mirror (libgit2, never the git command) and reads one file there.
 * Every function here calls libgit2 and so runs in the git helper only
 * (common/gitproc.h); the server calls them through gitops.h. */

struct gitread_result {
	char commit[41]; /* resolved commit */
	int file_found;  /* 0 when the commit has no such file */
	struct buf file; /* its bytes */
	char *message;   /* commit message, owned */
	char *author;    /* "Name <email>", owned */
};
void gitread_result_release(struct gitread_result *r);

/* mirror_path: the bare mirror for this repository (created on first use).
 * commit may be NULL: then ref is resolved after the fetch. File larger than
 * max_file_bytes → ERR_LIMIT. Thread-safe for different mirrors; callers
 * serialise use of one mirror. */
int gitread_file_at(const char *mirror_path, const char *url, const char *ref, const char *commit,
                    const char *file_path, size_t max_file_bytes, struct gitread_result *out,
                    struct err *err);

/* The gitlinks (submodule entries) of a commit's tree and its .gitmodules,
 * for submod.c. */
struct gitread_links {
	struct strv paths;   /* each gitlink's path in the tree */
	struct strv commits; /* and its commit, 40 hex */
	int too_many;        /* more than max_links: paths/commits hold the first ones */
	int has_gitmodules;  /* the tree has a .gitmodules entry */
	int gitmodules_blob; /* ... and it is a file */
	int64_t gitmodules_bytes;
	char gitmodules[41]; /* its blob id, 40 hex */
};
void gitread_links_release(struct gitread_links *l);

/* The gitlinks of commit (40 hex) in the bare mirror; none (and no walk of
 * the tree) when the tree has no .gitmodules. */
int gitread_links_at(const char *mirror_path, const char *commit, size_t max_links, struct gitread_links *out,
                     struct err *err);

/* The commit ref (a name git's rev-parse takes) resolves to in the mirror,
 * as 40 hex into hex_out. */
int gitread_rev(const char *mirror_path, const char *ref, char hex_out[41], struct err *err);

/* The refs a remote advertises (ls-remote): names[i] at oids[i] (40 hex),
 * the peeled "^{}" entries of annotated tags included. */
int gitread_ls_remote(const char *url, struct strv *names, struct strv *oids, struct err *err);

#endif
