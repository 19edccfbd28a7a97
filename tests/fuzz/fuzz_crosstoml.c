#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/crosstoml.h"

/* fuzz-link: anvil_agent */

/* libFuzzer entry: a repository's Cross.toml (untrusted: it comes with the
 * pushed commit) through crosstoml_parse for two targets. On success every
 * list entry is a string and the image, when there is one, is non-empty
 * text; on failure *out is NULL and the error is ERR_INVAL or ERR_LIMIT. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const triples[] = {"aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"};

	for (size_t t = 0; t < sizeof(triples) / sizeof(triples[0]); t++) {
		struct crosstoml *c = NULL;
		struct err err;

		err_clear(&err);
		if (crosstoml_parse((const char *)data, size, triples[t], &c, &err) == 0) {
			if (c == NULL)
				abort();
			for (size_t i = 0; i < c->pre_build.n; i++)
				if (c->pre_build.v[i] == NULL)
					abort();
			for (size_t i = 0; i < c->passthrough.n; i++)
				if (c->passthrough.v[i] == NULL)
					abort();
			for (size_t i = 0; i < c->warnings.n; i++)
				if (c->warnings.v[i] == NULL || strlen(c->warnings.v[i]) == 0)
					abort();
			crosstoml_free(c);
		} else if (c != NULL || (err.code != ERR_INVAL && err.code != ERR_LIMIT)) {
			abort();
		}
	}
	return 0;
}
