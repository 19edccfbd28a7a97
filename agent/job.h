#ifndef ANVIL_AGENT_JOB_H
#define ANVIL_AGENT_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"

struct agent;
struct deployer_spec;
struct artifact_input;
struct job_service;

/* Running one claimed job: checkout, steps through the runner, live log
 * chunks, heartbeats, artifacts, finish (docs/api.md, agent routes). */

/* When a step runs: while no step has failed, once one has, or either way. */
enum job_step_on { JOB_STEP_ON_SUCCESS = 0, JOB_STEP_ON_FAILURE, JOB_STEP_ON_ALWAYS };

struct job_step {
	char *name;          /* owned */
	char *run;           /* owned; shell text, handed to the runner as one argument */
	long timeout_s;      /* > 0: the step's own limit (the job's still holds) */
	enum job_step_on on; /* "on" of the spec; absent: success */
};

/* A submodule to check out after the parent (server/sched/submod.h): the
 * server resolved and allowed it; the agent checks the path again. */
struct job_submodule {
	char *path;   /* owned; workspace-relative, gitsub_path_ok */
	char *name;   /* owned; shown only */
	char *repo;   /* owned; the anvil repository (its mirror cache name) */
	char *url;    /* owned; that repository's URL (mirror cache key, credentials ***) */
	char *fetch;  /* owned; the server's path to fetch it from */
	char *commit; /* owned; 40 lowercase hex */
};

/* The claim answer's spec, parsed once; the JSON is not kept. */
struct job_spec {
	int64_t id;
	int64_t attempt;
	int64_t pipeline_id;
	char *repo_name;        /* owned */
	char *repo_url;         /* owned */
	char *repo_fetch;       /* owned; "" or the server's path to fetch the commit from (api_git.h) */
	char *ref;              /* owned; may be "" */
	char *commit;           /* owned; 40 lowercase hex */
	char *target;           /* owned; "host" or a triple */
	struct job_step *steps; /* owned, n_steps entries */
	size_t n_steps;
	struct strv env;       /* "KEY=VALUE" */
	struct strv artifacts; /* glob patterns relative to the workspace */
	struct strv secrets;   /* "KEY=VALUE" of the repository's secrets, added to the step env */
	struct strv mask;      /* secret values, replaced with *** in the log */
	struct strv tools;     /* `tools:` Debian package names (checked), for the job's toolroot */
	int network;
	char *mode;                    /* owned; "cross", "emulated" or NULL for the recipe's default */
	long timeout_s;                /* > 0 (3600 when the spec says 0 or nothing) */
	long lease_s;                  /* > 0 (30 when absent) */
	uint64_t log_cap_bytes;        /* > 0 (64 MiB when absent) */
	struct deployer_spec *deploy;  /* owned; a deploy job's spec (kind "deploy"), else NULL */
	struct artifact_input *inputs; /* owned, n_inputs: artifacts of the jobs it needs */
	size_t n_inputs;
	struct job_service *services;     /* owned, n_services: `services:` (agent/services.h) */
	struct job_submodule *submodules; /* owned, n_submodules, parents first */
	size_t n_submodules;
	char *submodule_error; /* owned; "" or why the server refused a submodule: the job fails */
	size_t n_services;
};

/* Parses spec (borrowed, the claim answer's "job" object) into *out (the
 * caller's, free with job_spec_free). ERR_INVAL naming the bad field. */
int job_spec_parse(const json_t *spec, struct job_spec **out, struct err *err);
void job_spec_free(struct job_spec *spec);

enum job_outcome {
	JOB_FINISHED,  /* a state was reported to the server (or refused with 409) */
	JOB_ABANDONED, /* lease lost or agent stopping: nothing reported, the server requeues */
};

/* Runs spec to the end on ag's behalf: workspace <work>/jobs/<id>/src,
 * heartbeat thread, steps, artifacts, finish (retried), workspace removed.
 * Never fails: every problem becomes the job's state and message. Main
 * thread only. */
enum job_outcome job_run(struct agent *ag, const struct job_spec *spec);

/* The sandbox job_run starts for the agent's next job (struct agent's
 * standby): kills it, removes its workspace. NULL is a no-op. */
struct job_standby;
void job_standby_free(struct job_standby *s);

#endif
