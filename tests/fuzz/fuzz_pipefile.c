#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pipefile.h"

/* libFuzzer entry: any bytes go through pipefile_parse and, on success,
 * pipefile_free. Besides the sanitizers, the parser's contract is checked:
 * success gives at least one step and one target (per job), complete services
 * within their caps, an expansion
 * within the caps (or ERR_LIMIT) whose needs point at other jobs, failure leaves *out alone
 * and gives ERR_INVAL (whose message names a line) or ERR_LIMIT. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pipefile *pf = NULL;
	struct err err;
	size_t i;

	err_clear(&err);
	if (pipefile_parse((const char *)data, size, &pf, &err) == 0) {
		struct pipefile_unit *u = NULL;
		size_t n_u = 0, n_bodies = pf != NULL && pf->n_jobs > 0 ? pf->n_jobs : 1;

		if (pf == NULL || pf->n_jobs > PIPEFILE_MAX_JOBS)
			abort();
		for (size_t j = 0; j < n_bodies; j++) {
			const struct pipefile *b = pf->n_jobs > 0 ? pf->jobs[j].body : pf;

			if (b->n_steps == 0 || b->n_steps > PIPEFILE_MAX_STEPS || b->targets.n == 0 ||
			    b->targets.n > PIPEFILE_MAX_TARGETS)
				abort();
			for (i = 0; i < b->n_steps; i++)
				if (b->steps[i].name == NULL || b->steps[i].run == NULL ||
				    b->steps[i].run[0] == '\0')
					abort();
			/* services: within the caps, complete, never with the host's network */
			if (b->n_services > PIPEFILE_MAX_SERVICES || (b->n_services > 0 && b->network))
				abort();
			for (i = 0; i < b->n_services; i++)
				if (b->services[i].name == NULL || b->services[i].command == NULL ||
				    b->services[i].ready == NULL ||
				    strlen(b->services[i].command) > PIPEFILE_MAX_SERVICE_TEXT ||
				    b->services[i].ready_timeout_s <= 0 ||
				    b->services[i].ready_timeout_s > PIPEFILE_SERVICE_READY_MAX_S)
					abort();
		}
		/* The expansion: within its caps, or refused as over them. */
		err_clear(&err);
		if (pipefile_expand(pf, NULL, NULL, &u, &n_u, &err) == 0) {
			if (n_u == 0 || n_u > PIPEFILE_MAX_UNITS)
				abort();
			for (i = 0; i < n_u; i++)
				for (size_t k = 0; k < u[i].n_needs; k++)
					if (u[i].needs[k] >= n_u || u[i].needs[k] == i)
						abort();
			pipefile_units_free(u, n_u);
		} else if (err.code != ERR_LIMIT || u != NULL) {
			abort();
		}
		pipefile_free(pf);
		return 0;
	}
	if (pf != NULL || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
		abort();
	if (err.code != ERR_INVAL && err.code != ERR_LIMIT)
		abort();
	if (err.code == ERR_INVAL && strncmp(err.msg, "line ", 5) != 0)
		abort();
	return 0;
}
