#ifndef ANVIL_GITREAD_H
#define ANVIL_GITREAD_H

#include "common/err.h"
#include "common/xalloc.h"

/* Reading a repository at a commit, for the server: fetches the remote into a
 * bare mirror (libgit2, never the git command) and reads one file there. */

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

#endif
