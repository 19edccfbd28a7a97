#ifndef ANVIL_AGENT_ARTIFACT_H
#define ANVIL_AGENT_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/err.h"

struct httpc;

/* Artifacts: a job's `artifacts:` globs expanded in its workspace, checked,
 * hashed and uploaded streamed (docs/api.md, PUT .../artifacts/NAME). */

#define ARTIFACT_NAME_MAX 255

struct artifact {
	char *path; /* owned; absolute path of the matched file (as matched, not resolved) */
	char *name; /* owned; path relative to the workspace, normalised ("out/app.bin") */
	uint64_t size_bytes;
	int mode; /* 0755 when the file has an executable bit in the workspace, else 0644 */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
};

struct artifact_list {
	struct artifact *v; /* owned, n entries */
	size_t n;
};
#define ARTIFACT_LIST_INIT                                                                                   \
	{                                                                                                    \
		NULL, 0                                                                                      \
	}

/* The wire rule for a name: non-empty, relative (no leading '/'), no ".."
 * component, no empty component, ≤ ARTIFACT_NAME_MAX bytes, no control
 * characters. len is the name's length in bytes (a NUL inside fails).
 * ERR_INVAL with the reason. */
int artifact_name_check(const char *name, size_t len, struct err *err);

/* Expands each pattern (glob(3), relative to workspace) into out, in pattern
 * order, sorted within a pattern, each file once. Keeps regular files only
 * (a symlink counts when its target is a regular file inside the workspace)
 * and computes size and sha256.
 * Errors (out is released on failure):
 *  ERR_NOTFOUND "artifact pattern 'P' matched nothing" (no regular file);
 *  ERR_INVAL    a bad pattern (absolute, "..") or a match whose real path
 *               lies outside the workspace, or whose name is invalid;
 *  ERR_SYS      I/O failure. */
int artifact_collect(struct artifact_list *out, const char *workspace, const char *const *patterns,
                     size_t n_patterns, struct err *err);

void artifact_list_release(struct artifact_list *l);

/* An artifact of a job this one needs (the claim's "inputs", docs/api.md). */
struct artifact_input {
	int64_t job_id; /* the job that made it */
	char *job;      /* owned; its name, for messages */
	char *name;     /* owned; relative path, artifact_name_check holds */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	uint64_t size_bytes;
	int mode; /* 0755, 0644, or 0 (unknown: 0644) */
};

/* Downloads in into workspace/<name> for job job_id (GET
 * /api/v1/agents/jobs/JOB/inputs/FROM/NAME), creating its directories,
 * never through a symlink the checkout holds (every component is opened
 * O_NOFOLLOW), and checks its sha256: ERR_INVAL "sha256 X, expected Y" on a
 * mismatch (the file is removed), ERR_UNAVAIL on transport failure, a code
 * from the status otherwise. */
int artifact_download(struct httpc *c, int64_t job_id, const char *workspace, const struct artifact_input *in,
                      struct err *err);

/* One upload attempt of a, streamed from its file (never read whole):
 * PUT /api/v1/agents/jobs/JOB/artifacts/<escaped name>?attempt=A&sha256=HEX&mode=0755.
 * 0 on 201. -1 with ERR_UNAVAIL on transport failure or a 5xx (worth a
 * retry), ERR_CONFLICT on 409 (attempt no longer ours), another code from
 * the status otherwise. Uses c from the calling thread. */
int artifact_upload(struct httpc *c, int64_t job_id, int64_t attempt, const struct artifact *a,
                    struct err *err);

#endif
