#include "server/sched/jobstate.h"

#include <string.h>

static const char *const jobstate_names[] = {"queued", "running", "success", "failed", "canceled", "error"};

const char *jobstate_name(enum job_state s)
{
	if ((unsigned)s >= sizeof(jobstate_names) / sizeof(jobstate_names[0]))
		return "error";
	return jobstate_names[s];
}

int jobstate_parse(const char *name, enum job_state *out)
{
	for (unsigned i = 0; i < sizeof(jobstate_names) / sizeof(jobstate_names[0]); i++) {
		if (name != NULL && strcmp(name, jobstate_names[i]) == 0) {
			*out = (enum job_state)i;
			return 0;
		}
	}
	return -1;
}

int jobstate_is_final(enum job_state s)
{
	return s == JOB_SUCCESS || s == JOB_FAILED || s == JOB_CANCELED || s == JOB_ERROR;
}

int jobstate_can_move(enum job_state from, enum job_state to)
{
	switch (from) {
	case JOB_QUEUED:
		return to == JOB_RUNNING || to == JOB_CANCELED;
	case JOB_RUNNING:
		return to == JOB_SUCCESS || to == JOB_FAILED || to == JOB_CANCELED || to == JOB_ERROR ||
		       to == JOB_QUEUED;
	default:
		return 0;
	}
}

enum job_state jobstate_aggregate(const enum job_state *states, int n)
{
	int running = 0, queued = 0, error = 0, failed = 0, canceled = 0;

	for (int i = 0; i < n; i++) {
		switch (states[i]) {
		case JOB_RUNNING:
			running++;
			break;
		case JOB_QUEUED:
			queued++;
			break;
		case JOB_ERROR:
			error++;
			break;
		case JOB_FAILED:
			failed++;
			break;
		case JOB_CANCELED:
			canceled++;
			break;
		case JOB_SUCCESS:
			break;
		}
	}
	if (running)
		return JOB_RUNNING;
	if (queued)
		return JOB_QUEUED;
	if (error)
		return JOB_ERROR;
	if (failed)
		return JOB_FAILED;
	if (canceled)
		return JOB_CANCELED;
	return JOB_SUCCESS;
}
