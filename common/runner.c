#include "common/runner.h"

#include <string.h>

int runner_env_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq != NULL && eq != kv;
}

int runner_cache_path_ok(const char *p)
{
	size_t n = strlen(p);

	if (strncmp(p, "/cache/", 7) != 0 || p[7] == '\0' || n > 256)
		return 0;
	if (strstr(p, "/../") != NULL || strstr(p, "/./") != NULL || strstr(p, "//") != NULL)
		return 0;
	if (strcmp(p + n - 3, "/..") == 0 || strcmp(p + n - 2, "/.") == 0)
		return 0;
	return 1;
}
