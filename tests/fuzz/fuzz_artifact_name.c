#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/artifact.h"

/* fuzz-link: anvil_agent */

/* libFuzzer entry: the bytes are an artifact name as a repository's files
 * (or a hostile agent) could spell it. artifact_name_check (the agent's side
 * of the wire rule, docs/api.md) must accept only names that cannot leave the
 * job's directory: non-empty, at most ARTIFACT_NAME_MAX bytes, relative, no
 * NUL or control byte, no empty and no ".." component. The property is checked
 * here by a second, independent reading of the rule. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_is_safe(const uint8_t *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > ARTIFACT_NAME_MAX || s[0] == '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (i == start)
			return 0;
		if (i - start == 2 && s[start] == '.' && s[start + 1] == '.')
			return 0;
		start = i + 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = malloc(size + 1);
	struct err err;
	int rc;

	memcpy(name, data, size);
	name[size] = '\0';
	err_clear(&err);
	rc = artifact_name_check(name, size, &err);
	if ((rc == 0) != name_is_safe(data, size))
		abort();
	if (rc < 0 && (err.code != ERR_INVAL || err.msg[0] == '\0'))
		abort();
	free(name);
	return 0;
}
