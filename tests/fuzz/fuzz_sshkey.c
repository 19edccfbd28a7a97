#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/ssh.h"

/* fuzz-link: anvil_deploy */

/* libFuzzer entry: the bytes are a board's pinned host key as an operator
 * (or a stored board row) gives it: an OpenSSH public key line or a
 * known_hosts line. ssh_pubkey_fingerprint either fills a "SHA256:" + 43
 * base64 characters fingerprint or fails with ERR_INVAL; never reads past the
 * string. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	char fp[SSH_FP_MAX];
	struct err err;

	memcpy(line, data, size);
	line[size] = '\0';
	memset(fp, 'x', sizeof(fp));
	err_clear(&err);
	if (ssh_pubkey_fingerprint(line, fp, &err) == 0) {
		if (memchr(fp, '\0', sizeof(fp)) == NULL || strncmp(fp, "SHA256:", 7) != 0 ||
		    strlen(fp) != 7 + 43)
			abort();
	} else if (err.code != ERR_INVAL || memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
		abort();
	}
	free(line);
	return 0;
}
