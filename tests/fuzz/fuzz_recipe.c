#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/recipe.h"

/* libFuzzer entry: any bytes go through recipe_parse. On success the
 * recipe's invariants hold (valid triple, defaults filled, no package name
 * that could split debootstrap's --include list) and hashing and the mode
 * envs work; on failure *out is untouched and the error is ERR_INVAL naming
 * a line, or ERR_LIMIT. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recipe *r = NULL;
	struct strv env = STRV_INIT;
	struct err err;
	char hash[65];

	err_clear(&err);
	if (recipe_parse((const char *)data, size, &r, &err) == 0) {
		if (r == NULL || !recipe_triple_valid(r->triple) || r->debian_arch == NULL ||
		    r->gnu_triple == NULL || r->suite == NULL || r->mirror == NULL)
			abort();
		if (r->packages.n > RECIPE_MAX_ENTRIES)
			abort();
		for (size_t i = 0; i < r->packages.n; i++)
			if (strchr(r->packages.v[i], ',') != NULL || r->packages.v[i][0] == '-')
				abort();
		recipe_hash_hex(r, hash);
		if (strlen(hash) != 64)
			abort();
		recipe_env_for_mode(r, RECIPE_MODE_CROSS, &env);
		recipe_env_for_mode(r, RECIPE_MODE_EMULATED, &env);
		for (size_t i = 0; i < env.n; i++)
			if (strchr(env.v[i], '=') == NULL || env.v[i][0] == '=')
				abort();
		strv_release(&env);
		recipe_free(r);
		return 0;
	}
	if (r != NULL || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
		abort();
	if (err.code != ERR_INVAL && err.code != ERR_LIMIT)
		abort();
	if (err.code == ERR_INVAL && strncmp(err.msg, "line ", 5) != 0)
		abort();
	return 0;
}
