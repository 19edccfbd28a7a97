#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/job.h"

/* fuzz-link: anvil_agent */

/* libFuzzer entry: the bytes are a claim answer's "job" object as the agent
 * receives it from the server (docs/api.md, claim). They go through jansson
 * and job_spec_parse. On success the spec's invariants hold (commit is 40
 * lowercase hex, a target, every step has a name and a run line, env and
 * secrets are KEY=VALUE, positive timeout, lease and log cap); on failure
 * *out is untouched and the error is ERR_INVAL. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL); /* owned */
	struct job_spec *s = NULL;
	struct err err;
	size_t i;

	if (j == NULL)
		return 0;
	err_clear(&err);
	if (job_spec_parse(j, &s, &err) == 0) {
		if (s == NULL || s->commit == NULL || strlen(s->commit) != 40 ||
		    strspn(s->commit, "0123456789abcdef") != 40)
			abort();
		if (s->target == NULL || s->target[0] == '\0' || s->repo_name == NULL ||
		    s->repo_url == NULL || s->ref == NULL)
			abort();
		if (s->timeout_s <= 0 || s->lease_s <= 0 || s->log_cap_bytes == 0)
			abort();
		for (i = 0; i < s->n_steps; i++)
			if (s->steps[i].name == NULL || s->steps[i].name[0] == '\0' ||
			    s->steps[i].run == NULL)
				abort();
		for (i = 0; i < s->env.n; i++)
			if (strchr(s->env.v[i], '=') == NULL || s->env.v[i][0] == '=')
				abort();
		for (i = 0; i < s->secrets.n; i++)
			if (strchr(s->secrets.v[i], '=') == NULL || s->secrets.v[i][0] == '=')
				abort();
		job_spec_free(s);
	} else {
		if (s != NULL || err.code != ERR_INVAL || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
			abort();
	}
	json_decref(j);
	return 0;
}
