#ifndef ANVIL_OTA_H
#define ANVIL_OTA_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "deploy/ssh.h"

/* OTA of one release to one board over an authenticated struct ssh_conn
 * (docs/deploy.md). Board layout under the install dir:
 *   <install>/releases/<id>/...   one directory per release, never modified once live
 *   <install>/releases/<id>/.anvil-sums   its files' sha256, size and mtime
 *   <install>/current             symlink -> releases/<id>, replaced atomically (rename)
 * Steps: check the board's arch against every ELF file (before anything is
 * sent) → mkdir releases/<id> → per file: skip when the board already has
 * the same sha256 (in this release, or copied on the board from the
 * previous one; known from .anvil-sums while lstat shows the recorded size
 * and mtime, else from sha256sum there), else SFTP to <name>.part,
 * sha256sum -c on the board, rename → record .anvil-sums →
 * switch current → restart → health until the deadline → on failure switch
 * back to the previous release and restart again → prune old releases.
 * Needs a POSIX shell with coreutils' sha256sum, mv -T, cp, rm on the board. */

struct ota_file {
	const char *local_path;  /* file on this machine */
	const char *remote_name; /* relative to releases/<id>/, may hold '/'; no "..", no leading '/' */
	const char *sha256;      /* expected lowercase hex; NULL: computed here */
	int mode;                /* 0: 0755 for ELF files, 0644 otherwise */
};

struct ota_plan {
	const char *install_dir; /* absolute on the board, e.g. "/opt/app" */
	const char *release_id;  /* [A-Za-z0-9._-]+, e.g. "r42" or a commit */
	const struct ota_file *files;
	size_t n_files;
	const char *restart_cmd; /* shell text run in install_dir after a switch; NULL: none */
	const char *health_cmd;  /* shell text run in install_dir; exit 0 = healthy; NULL: none */
	int health_deadline_ms;  /* retry health until then; 0: 30000 */
	int health_interval_ms;  /* pause between tries; 0: 500 */
	int cmd_timeout_ms;      /* one restart / health / helper command; 0: 60000 */
	int keep_releases;       /* keep this many newest releases (current and previous
	                            always kept); 0: keep all */
	const char *board_arch;  /* expected `uname -m` ("aarch64", "armv7l", "x86_64");
	                            NULL: whatever the board reports */
	/* Shell text run in releases/<id> on the board once every file is
	 * uploaded and verified, before the switch (the signed-manifest check,
	 * docs/releases.md); a non-zero exit refuses the switch: OTA_FAILED,
	 * current untouched. NULL: none. */
	const char *verify_cmd;
	/* Optional probe of the board, run in the first command (after `uname
	 * -m`, no process start of its own) before anything is sent: its output
	 * goes to probe_check, whose -1 (err set) refuses the deploy. NULL:
	 * none. */
	const char *probe_cmd;
	int (*probe_check)(void *cls, const char *output, struct err *err);
	void *probe_cls;
	/* Optional progress: called on the deploying thread with "uploading"
	 * once the checks passed and "switching" once every file is on the
	 * board (the check of what landed runs in the switch's command). */
	void (*on_step)(void *cls, const char *step);
	void *step_cls;
};

enum ota_state {
	OTA_REFUSED = 0, /* nothing sent: arch mismatch, bad plan, sha256 mismatch of a local file */
	OTA_FAILED,      /* an error before or during the switch (upload, verify); current untouched,
	                    or restored when the switch itself failed */
	OTA_DEPLOYED,    /* current -> releases/<id>, health passed */
	OTA_ROLLED_BACK, /* health or restart failed; current is back where it was */
};

struct ota_result {
	enum ota_state state;
	char board_arch[32]; /* `uname -m` of the board */
	char *previous;      /* owned; current's target before the deploy, NULL if none */
	char *current;       /* owned; current's target after, NULL if none */
	uint64_t bytes_sent; /* file bytes uploaded over SFTP; ota_deploy adds to what the
	                        caller put here (its own uploads to the board first) */
	unsigned files_uploaded;
	unsigned files_skipped; /* already on the board with the right sha256 */
	unsigned releases_pruned;
	int health_attempts;
	int restart_exit;           /* last restart's exit status, -1 if not run */
	int health_exit;            /* last health try's exit status, -1 if not run */
	struct buf restart_output;  /* last restart's output (bounded, see ssh_exec) */
	struct buf health_output;   /* last health try's output */
	struct buf rollback_output; /* restart output after a rollback */
	struct buf verify_output;   /* output of the plan's verify_cmd */
	int verify_exit;            /* its exit status, -1 if not run */
	/* per-step wall time */
	int64_t check_ms, upload_ms, switch_ms, restart_ms, health_ms, rollback_ms, prune_ms, total_ms;
};

void ota_result_init(struct ota_result *r);
void ota_result_release(struct ota_result *r);
const char *ota_state_name(enum ota_state s);

/* Deploys plan on the board behind c. Returns 0 only when out->state is
 * OTA_DEPLOYED. Otherwise -1 with err (ERR_INVAL bad plan or arch mismatch,
 * ERR_CONFLICT sha256 mismatch or failed health → rolled back, ERR_UNAVAIL
 * connection, ...) and out->state telling how far it got; out is filled in
 * both cases (timings, outputs) and must be released by the caller. */
int ota_deploy(struct ssh_conn *c, const struct ota_plan *plan, struct ota_result *out, struct err *err);

/* ELF e_machine of a local file: 0 when it is not an ELF file, else the
 * EM_* value; -1 with err when it cannot be read. */
int ota_elf_machine(const char *path, int *machine_out, struct err *err);

/* EM_* a board with this `uname -m` runs natively (aarch64 → EM_AARCH64,
 * armv7l/armv6l/armhf → EM_ARM, x86_64 → EM_X86_64, i686 → EM_386); 0 unknown. */
int ota_arch_machine(const char *uname_m);

#endif
