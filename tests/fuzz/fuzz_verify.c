#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sign.h"
#include "deploy/verify.h"

/* fuzz-link: anvil_deploy */

/* libFuzzer entry: anvil-verify's parsers of what arrives on a board (the
 * first byte picks one, the rest is the file): 's' SHA256SUMS, 'm'
 * manifest.json, 'x' a signify signature file, 'p' a signify public key.
 * Each either fills its output with sane values or fails with ERR_INVAL or
 * ERR_LIMIT and a NUL-terminated message; every name SHA256SUMS yields is
 * relative and cannot leave the release directory. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct err *err)
{
	if ((err->code != ERR_INVAL && err->code != ERR_LIMIT) ||
	    memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_list l = {0};
	struct err err = {0};
	const char *text;
	char *version = NULL, *copy;
	size_t n;

	if (size < 1)
		return 0;
	/* An exact-size copy, so reading past the end is caught. */
	n = size - 1;
	copy = malloc(n ? n : 1);
	memcpy(copy, data + 1, n);
	text = copy;
	switch (data[0]) {
	case 's':
		if (verify_sums_parse(text, n, &l, &err) < 0) {
			check_err(&err);
			break;
		}
		for (size_t i = 0; i < l.n; i++) {
			const char *name = l.v[i].name;
			size_t len = strlen(name);
			if (len == 0 || name[0] == '/' || strcmp(name, "..") == 0 ||
			    strncmp(name, "../", 3) == 0 || strstr(name, "/../") != NULL ||
			    (len >= 3 && strcmp(name + len - 3, "/..") == 0) || strlen(l.v[i].sha256) != 64)
				abort();
			(void)verify_manifest_has(&l, name, l.v[i].sha256);
		}
		break;
	case 'm':
		if (verify_manifest_parse(text, n, &version, &l, &err) < 0) {
			check_err(&err);
			break;
		}
		if (version == NULL)
			abort();
		for (size_t i = 0; i < l.n; i++)
			if (!verify_manifest_has(&l, l.v[i].name, l.v[i].sha256) &&
			    strchr(l.v[i].name, '/') == NULL)
				abort();
		break;
	case 'x': {
		struct sign_sig sig;
		if (sign_sig_parse(text, n, &sig, &err) < 0)
			check_err(&err);
		break;
	}
	case 'p': {
		struct sign_pub pub;
		if (sign_pub_parse(text, n, &pub, &err) < 0)
			check_err(&err);
		break;
	}
	default:
		break;
	}
	verify_list_release(&l);
	free(version);
	free(copy);
	return 0;
}
