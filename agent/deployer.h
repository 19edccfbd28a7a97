#ifndef ANVIL_AGENT_DEPLOYER_H
#define ANVIL_AGENT_DEPLOYER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"

struct verifier;

/* A deploy job on the agent (docs/deploy.md): artifacts fetched from the
 * server by sha256, the glibc check, then a fleet rollout with
 * deploy/ota.c — canary boards first, then batches, boards of a batch in
 * parallel (one thread and one SSH connection each, at most
 * DEPLOYER_MAX_PARALLEL at once), the first failed batch stopping the rest
 * (skipped). Every per-board state change is reported to the server
 * (POST /api/v1/agents/jobs/ID/deploy), so a requeued job continues with the
 * boards not yet done. A rollback job switches every board of the group
 * back to its previous release. */

/* 8 made a 20-board batch three waves (issue 17: a third of plain parallel ssh
 * throughput); each board costs a thread, an SSH connection and a 128 KiB
 * buffer. */
#define DEPLOYER_MAX_PARALLEL 32

struct deployer_board {
	char *name, *host, *user, *arch, *host_key, *private_key; /* owned */
	int port;
	char *done_state;    /* owned; state reached in an earlier attempt, or NULL */
	char *rollback_to;   /* owned; "releases/<id>" a rollback goes to (the last healthy one), or NULL */
	char *known_current; /* owned; the release the server last saw live on the board
	                        ("releases/<id>"), or NULL: what a report says when the
	                        board was never asked (refused, unreachable) */
};

struct deployer_artifact {
	char *name, *sha256; /* owned */
	uint64_t size_bytes;
	int64_t job_id; /* the build job it belongs to */
	int mode;       /* permission bits on the board (≤ 0777); 0: 0755 for ELF files, else 0644 */
};

/* The claim spec's "deploy" object, parsed once. */
struct deployer_spec {
	char *action;           /* owned; "deploy" or "rollback" */
	char *group;            /* owned */
	char *release;          /* owned; release id (deploy) */
	char *install;          /* owned */
	char *restart, *health; /* owned, NULL when none */
	char *error;            /* owned; set by the server when it could not prepare the job */
	/* A signed release (docs/releases.md), else all NULL: the manifest's
	 * exact bytes, its signify signature and the public key of its keynum
	 * as the server sent them; build_target names the manifest's paths
	 * (<build_target>/<artifact name>). */
	char *manifest, *signature, *pubkey, *build_target; /* owned */
	long health_timeout_s;
	int keep, canary, batch_count, batch_pct;
	struct deployer_board *boards; /* owned, n_boards, in rollout order */
	size_t n_boards;
	struct deployer_artifact *artifacts; /* owned, n_artifacts */
	size_t n_artifacts;
};

/* ERR_INVAL naming the bad field. *out is the caller's (deployer_spec_free). */
int deployer_spec_parse(const json_t *deploy, struct deployer_spec **out, struct err *err);
void deployer_spec_free(struct deployer_spec *s);

/* What the deployer needs from the job runner; all called on the calling
 * (main) thread only. */
struct deployer_io {
	void (*say)(void *cls, const char *line); /* a line for the job's log */
	void (*tick)(void *cls);                  /* lets the log stream flush */
	int (*interrupted)(void *cls);            /* != 0: cancel, lease lost or agent stopping */
	void *cls;
};

struct deployer_job {
	const char *server_url, *token; /* borrowed; each board thread makes its own client */
	int64_t job_id, attempt;
	const char *work_dir; /* borrowed; a private directory for artifacts and keys, created here */
	const struct deployer_spec *spec;
	const struct deployer_io *io;
	/* Borrowed, may be NULL: builds anvil-verify for boards without
	 * signify-openbsd (agent/verifier.h); NULL keeps the older check (the
	 * signature on the agent, sha256sum -c on the board). */
	struct verifier *verifier;
};

/* Runs the deploy or rollback. Returns the job state to report: "success",
 * "failed" (a board failed, was refused or rolled back; message says which)
 * or "error" (anvil could not run it: artifacts, spec). message (msg_len) is
 * filled for the job's finish. Removes what it wrote in work_dir. */
const char *deployer_run(const struct deployer_job *job, char *message, size_t msg_len);

#endif
