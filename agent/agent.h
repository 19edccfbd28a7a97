#ifndef ANVIL_AGENT_AGENT_H
#define ANVIL_AGENT_AGENT_H

#include <signal.h>
#include <stdint.h>

#include "agent/sandbox.h"
#include "common/err.h"
#include "common/xalloc.h"

struct httpc;

/* The agent: registration, the claim loop, and the state one agent process
 * carries. Everything lives here (no globals); main.c fills the options,
 * calls agent_init, then agent_run. One thread owns it (the main thread);
 * a job's heartbeat thread only reads the immutable option fields. With
 * --jobs N (N > 1) agent_run forks N workers after registering, each with
 * its own copy of this struct and its own HTTP client. */

struct agent_opts {
	const char *server_url;      /* borrowed; "http://127.0.0.1:8080" */
	const char *token;           /* borrowed; the enrollment secret (agent.token), for register */
	const char *name;            /* borrowed */
	const char *extra_labels;    /* borrowed; "k=v,k=v" or NULL */
	const char *work_dir;        /* borrowed; created by agent_init */
	int once;                    /* exit after one job */
	int jobs;                    /* jobs run at once (--jobs): above 1, one worker process each */
	const char *recipes_dir;     /* borrowed; recipes/<triple>.yml */
	const char *cache_dir;       /* borrowed; rootfs cache, NULL: /var/cache/anvil */
	const char *targets;         /* borrowed; "auto", "none" or "t1,t2" (see agent/targets.h) */
	int prepare_targets;         /* build missing rootfs and toolroots at start */
	int tools_keep;              /* tools: derived trees kept, most recently used first; 0: all */
	int64_t cache_cap_bytes;     /* per repo×target caches, together; LRU eviction after each job */
	const char *docker;          /* borrowed; NULL: bubblewrap runs target steps; else the docker or
	                                podman CLI (--runner docker|podman) */
	struct sandbox_opts sandbox; /* the steps' build user and per-job limits */
};

/* tools: derived trees kept in the cache (--tools-keep): each is a full copy
 * of a toolroot (~0.8 GB for the shipped recipes) plus the tools. */
#define AGENT_DEFAULT_TOOLS_KEEP 8

/* --jobs: at most this many at once (each a worker process). */
#define AGENT_JOBS_MAX 64

struct agent {
	struct agent_opts opt;
	struct strv labels;          /* owned; from agent_labels */
	struct httpc *http;          /* owned; main thread's client, with token once registered */
	struct gitproc *git;         /* owned; the git helper its checkouts run in (checkout_helper.h) */
	struct httpc *hb_http;       /* owned; the heartbeat thread's, kept across jobs (one kept-alive
	                                connection, not one per job); NULL until a job, and after register */
	int64_t agent_id;            /* from register; 0 before */
	char *token;                 /* owned; this agent's own token from register, NULL before */
	volatile sig_atomic_t *stop; /* borrowed; set by SIGTERM/SIGINT in main.c */
	int64_t jobs_done;
	int slot;                    /* the --jobs worker this process is (0..jobs-1); 0 with one job */
	struct sandbox sandbox;      /* resolved from opt.sandbox by agent_init */
	struct job_standby *standby; /* owned; the next job's sandbox, started as a job ended (job.c) */
};

/* Computes the labels this agent advertises into out (appended): always
 * "arch=<uname -m>", then each "k=v" of extra_csv (NULL
 * or "" for none). The one place labels are decided: target detection
 * (qemu/binfmt) adds "target=<triple>" here. ERR_INVAL for a malformed
 * extra label. */
int agent_labels(struct strv *out, const char *extra_csv, struct err *err);

/* Validates opts, creates work_dir, computes labels, makes the HTTP client.
 * stop must outlive ag. On failure ag is released. */
int agent_init(struct agent *ag, const struct agent_opts *opts, volatile sig_atomic_t *stop, struct err *err);
void agent_release(struct agent *ag);

/* POST /api/v1/agents/register with the enrollment secret until it answers,
 * backing off 100 ms doubling to 5 s while the server is unreachable (or
 * answers 5xx); then ag->token is the agent's own token (the previous one,
 * and the name's running job, are given up) and ag->http sends it. -1 with
 * ERR_AUTH/ERR_FORBIDDEN on a refused secret, ERR_INVAL on a refused request,
 * ERR_UNAVAIL when stopped by the signal flag. */
int agent_register(struct agent *ag, struct err *err);

/* Registers, then claims and runs jobs until stopped (or one job with
 * opts.once). Returns 0 on a clean stop, -1 with err when the server refuses
 * the agent (401/403). */
int agent_run(struct agent *ag, struct err *err);

/* Monotonic clock in nanoseconds. */
uint64_t agent_now_ns(void);

/* Sleeps ms in slices of at most 100 ms; returns -1 early once *ag->stop is
 * set or should_stop(arg) (may be NULL) returns non-zero, else 0. */
int agent_sleep_ms(const struct agent *ag, long ms, int (*should_stop)(void *arg), void *arg);

/* Next backoff delay: 100 ms doubling to 5 s. */
long agent_backoff_next(long delay_ms);

#endif
