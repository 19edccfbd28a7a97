/* fuzz-link: anvil_server */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pipefile.h"
#include "server/forge/forge.h"

/* libFuzzer entry: any bytes go through every forge's push parser (GitHub,
 * Gitea, GitLab, generic), its pull request parser and the signature check. The parsers' contract is
 * checked besides the sanitizers: success gives a ref under refs/, 40 hex
 * before/after/commit, non-NULL text and sorted unique paths; failure
 * leaves nothing allocated (ASan's leak check) and says ERR_INVAL. The
 * first byte picks a forge so the corpus steers all of them. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_forges[] = {"github", "gitea", "gitlab", "generic"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct forge_ops *ops;
	struct forge_push p;
	struct err err;

	if (size == 0)
		return 0;
	ops = forge_find(fuzz_forges[data[0] % 4]);
	data++;
	size--;
	err_clear(&err);
	if (ops->parse_push((const char *)data, size, &p, &err) == 0) {
		if (p.ref == NULL || strncmp(p.ref, "refs/", 5) != 0 || !forge_is_sha(p.before) ||
		    !forge_is_sha(p.after) || !forge_is_sha(p.commit) || p.repo == NULL || p.pusher == NULL ||
		    p.message == NULL)
			abort();
		for (size_t i = 1; i < p.paths.n; i++)
			if (strcmp(p.paths.v[i - 1], p.paths.v[i]) >= 0)
				abort();
		/* The when: rules take the parsed paths as they are. */
		{
			struct pipefile_when w = {STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT};
			strv_push(&w.path, "src/**");
			strv_push(&w.branch, "release/*");
			pipefile_when_match(&w, p.ref, "push", (const char *const *)p.paths.v, p.paths.n);
			strv_release(&w.path);
			strv_release(&w.branch);
		}
		forge_push_release(&p);
	} else if (err.code != ERR_INVAL) {
		abort();
	}
	/* The pull/merge request parser of the same forge, where it has one:
	 * success gives 40 hex, a positive number, its head ref and printable
	 * text. */
	if (ops->parse_pr != NULL) {
		struct forge_pr pr;

		err_clear(&err);
		if (ops->parse_pr((const char *)data, size, &pr, &err) == 0) {
			if (!forge_is_sha(pr.head) || pr.number < 1 || pr.ref == NULL ||
			    strncmp(pr.ref, "refs/", 5) != 0 || pr.action == NULL || pr.action[0] == '\0' ||
			    pr.base_branch == NULL || pr.base_branch[0] == '\0' || pr.title == NULL ||
			    pr.repo == NULL)
				abort();
			for (const char *c = pr.title; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					abort();
			forge_pr_release(&pr);
		} else if (err.code != ERR_INVAL) {
			abort();
		}
	}
	/* A header value is a C string (MHD's): the same bytes as one. */
	{
		char *hdr = strndup((const char *)data, size);
		err_clear(&err);
		if (hdr != NULL && forge_verify(ops, hdr, "secret", data, size, &err) < 0 &&
		    err.code != ERR_AUTH)
			abort();
		free(hdr);
	}
	return 0;
}
