#include "server/release_git.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

static int release_git_fail(struct err *err, enum err_code code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

int release_git_url_is_local(const char *url)
{
	return strncmp(url, "file://", 7) == 0 || (strstr(url, "://") == NULL && strchr(url, '@') == NULL);
}

/* An in-memory remote with no url.*.insteadOf lookup (as gitread.c does). */
static int release_git_remote(git_repository *repo, const char *url, git_remote **out, struct err *err)
{
	git_remote_create_options ro;

	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(out, url, &ro) < 0)
		return release_git_fail(err, ERR_SYS, "remote");
	return 0;
}

/* The commit the remote's refs/tags/<tag> points at (peeled), hex into
 * commit_out; *found_out = 0 when the remote has no such tag. */
static int release_git_remote_tag(git_remote *remote, const char *tag, char commit_out[GIT_OID_HEXSZ + 1],
                                  int *found_out, struct err *err)
{
	const git_remote_head **heads = NULL;
	size_t n = 0;
	char *ref = xasprintf("refs/tags/%s", tag), *peeled = xasprintf("refs/tags/%s^{}", tag);
	int rc = -1, have_peeled = 0;

	*found_out = 0;
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, NULL, NULL, NULL) < 0) {
		release_git_fail(err, ERR_UNAVAIL, "connect to the repository");
		goto out;
	}
	if (git_remote_ls(&heads, &n, remote) < 0) {
		release_git_fail(err, ERR_UNAVAIL, "list the repository's refs");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(heads[i]->name, peeled) == 0) {
			git_oid_tostr(commit_out, GIT_OID_HEXSZ + 1, &heads[i]->oid);
			have_peeled = 1;
			*found_out = 1;
		} else if (!have_peeled && strcmp(heads[i]->name, ref) == 0) {
			/* A lightweight tag names the commit itself (an annotated
			 * one is followed by its peeled ^{} entry). */
			git_oid_tostr(commit_out, GIT_OID_HEXSZ + 1, &heads[i]->oid);
			*found_out = 1;
		}
	}
	rc = 0;
out:
	git_remote_disconnect(remote);
	free(ref);
	free(peeled);
	return rc;
}

struct release_git_push_state {
	char status[200]; /* the remote's refusal, "" when accepted */
};

static int release_git_push_update(const char *refname, const char *status, void *data)
{
	struct release_git_push_state *ps = data;

	if (status != NULL)
		snprintf(ps->status, sizeof(ps->status), "%s: %s", refname, status);
	return 0;
}

int release_git_tag_push(const char *mirror_path, const char *url, const char *tag, const char *commit_hex,
                         const char *message, int *created_out, struct err *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_object *target = NULL;
	git_signature *sig = NULL;
	git_oid oid, tag_oid;
	git_push_options po;
	struct release_git_push_state ps = {{0}};
	char remote_commit[GIT_OID_HEXSZ + 1] = {0}, *spec = xasprintf("refs/tags/%s:refs/tags/%s", tag, tag);
	char *specs_v[] = {spec};
	git_strarray specs = {specs_v, 1};
	int rc = -1, found = 0;

	*created_out = 0;
	if (git_repository_open_bare(&repo, mirror_path) < 0) {
		release_git_fail(err, ERR_SYS, "open the mirror");
		goto out;
	}
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_object_lookup(&target, repo, &oid, GIT_OBJECT_COMMIT) < 0) {
		release_git_fail(err, ERR_NOTFOUND, "the pipeline's commit is not in the mirror");
		goto out;
	}
	if (release_git_remote(repo, url, &remote, err) < 0 ||
	    release_git_remote_tag(remote, tag, remote_commit, &found, err) < 0)
		goto out;
	if (found) {
		if (strcmp(remote_commit, commit_hex) != 0) {
			err_set(err, ERR_CONFLICT,
			        "tag %s exists at commit %s, not at the pipeline's commit %s", tag,
			        remote_commit, commit_hex);
			goto out;
		}
		rc = 0; /* already there: idempotent */
		goto out;
	}
	if (git_signature_now(&sig, "anvil", "anvil@localhost") < 0) {
		release_git_fail(err, ERR_SYS, "signature");
		goto out;
	}
	/* force: a stale local tag in the mirror (the remote's was deleted) is
	 * replaced; the remote is the authority, checked above. */
	if (git_tag_create(&tag_oid, repo, tag, target, sig, message, 1) < 0) {
		release_git_fail(err, ERR_INVAL, "create the tag");
		goto out;
	}
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	po.callbacks.push_update_reference = release_git_push_update;
	po.callbacks.payload = &ps;
	if (git_remote_push(remote, &specs, &po) < 0) {
		release_git_fail(err, ERR_UNAVAIL, "push the tag");
		goto out;
	}
	if (ps.status[0] != '\0') {
		err_set(err, ERR_CONFLICT, "the repository refused the tag: %s", ps.status);
		goto out;
	}
	*created_out = 1;
	rc = 0;
out:
	git_signature_free(sig);
	git_object_free(target);
	git_remote_free(remote);
	git_repository_free(repo);
	free(spec);
	return rc;
}
