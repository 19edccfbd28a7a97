#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pipefile.h"

/* libFuzzer entry: any bytes go through pipefile_parse and, on success,
 * pipefile_free. Besides the sanitizers, the parser's contract is checked:
 * success gives at least one step and one target, failure leaves *out alone
 * and gives ERR_INVAL (whose message names a line) or ERR_LIMIT. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pipefile *pf = NULL;
	struct err err;
	size_t i;

	err_clear(&err);
	if (pipefile_parse((const char *)data, size, &pf, &err) == 0) {
		if (pf == NULL || pf->n_steps == 0 || pf->n_steps > PIPEFILE_MAX_STEPS ||
		    pf->targets.n == 0 || pf->targets.n > PIPEFILE_MAX_TARGETS)
			abort();
		for (i = 0; i < pf->n_steps; i++)
			if (pf->steps[i].name == NULL || pf->steps[i].run == NULL ||
			    pf->steps[i].run[0] == '\0')
				abort();
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
