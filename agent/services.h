#ifndef ANVIL_AGENT_SERVICES_H
#define ANVIL_AGENT_SERVICES_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"
#include "common/runner.h"
#include "common/xalloc.h"

/* A job's `services:` sidecars (docs/anvil-yml.md): each is a long-running
 * command started, before the job's steps, through a runner of its own (the
 * same sandbox as a step: the job's network namespace, unprivileged, cgroup
 * limits), then its `ready` command is retried until it exits 0 or its
 * timeout passes. Every service is killed when the job ends. Their output
 * goes to a file per service, shown in the job log when the job fails.
 * Main thread only. */

/* One `services:` entry of a job spec. */
struct job_service {
	char *name;           /* owned; [A-Za-z0-9][A-Za-z0-9_-]*, at most 32 bytes */
	struct strv packages; /* Debian package names (checked); empty: the job's own root */
	char *command;        /* owned; shell text, the service in the foreground */
	char *ready;          /* owned; shell text, exit 0 once the service answers */
	long ready_timeout_s; /* > 0 */
	struct strv env;      /* "KEY=VALUE" */
};

/* Parses the spec's "services" array (borrowed, may be NULL: none) into
 * *out (n_out entries, the caller's: services_spec_free). ERR_INVAL naming
 * the bad field. */
int services_spec_parse(const json_t *arr, struct job_service **out, size_t *n_out, struct err *err);
void services_spec_free(struct job_service *s, size_t n);

/* A new network namespace with only its loopback, up: *fd_out (owned,
 * O_CLOEXEC) keeps it alive; steps and services join it (proc_spec
 * has_netns). Needs CAP_SYS_ADMIN (a root agent): ERR_UNAVAIL otherwise.
 * The calling thread's own namespace is left as it was. */
int services_netns_new(int *fd_out, struct err *err);

/* What services tell the job: raw log bytes (untrusted, as a step's
 * output) and whether to stop waiting (the job canceled, timed out...). */
struct services_io {
	void (*write)(void *arg, const void *p, size_t n);
	int (*interrupted)(void *arg);
	void *arg;
};

struct services;

/* log_dir (copied): where <name>.log files go. io borrowed. */
struct services *services_new(const char *log_dir, const struct services_io *io);

/* Starts svc with runner r (owned from now on, even on failure) in
 * workspace, env (NULL-terminated, borrowed) added to svc->env, and waits
 * until its ready command succeeds. ERR_INVAL when it exits first or is not
 * ready in time (its log tail has then been written through io);
 * ERR_UNAVAIL when io->interrupted said stop; other codes when it cannot
 * be started. */
int services_start(struct services *s, const struct job_service *svc, struct runner *r, const char *workspace,
                   struct err *err);

/* Writes the last tail_bytes of every service's log through io. */
void services_show_logs(struct services *s, size_t tail_bytes);

/* Kills every service's process tree (SIGTERM, grace_ms, SIGKILL), frees
 * their runners and s. NULL is a no-op. */
void services_free(struct services *s, int grace_ms);

#endif
