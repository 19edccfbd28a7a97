#include "server/gitread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

static int gitread_fail(struct err *err, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, ERR_SYS, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

void gitread_result_release(struct gitread_result *r)
{
	if (r == NULL)
		return;
	buf_release(&r->file);
	free(r->message);
	free(r->author);
	memset(r, 0, sizeof(*r));
}

static int gitread_open_mirror(const char *path, const char *url, git_repository **repo_out, git_remote **remote_out,
			       struct err *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;

	if (git_repository_open_bare(&repo, path) < 0 && git_repository_init(&repo, path, 1) < 0)
		return gitread_fail(err, "open mirror");
	if (git_remote_lookup(&remote, repo, "origin") < 0) {
		if (git_remote_create_with_fetchspec(&remote, repo, "origin", url, "+refs/*:refs/*") < 0) {
			gitread_fail(err, "create remote");
			git_repository_free(repo);
			return -1;
		}
	} else if (strcmp(git_remote_url(remote), url) != 0) {
		git_remote_free(remote);
		remote = NULL;
		if (git_remote_set_url(repo, "origin", url) < 0 || git_remote_lookup(&remote, repo, "origin") < 0) {
			gitread_fail(err, "set remote url");
			git_repository_free(repo);
			return -1;
		}
	}
	*repo_out = repo;
	*remote_out = remote;
	return 0;
}

int gitread_file_at(const char *mirror_path, const char *url, const char *ref, const char *commit,
		    const char *file_path, size_t max_file_bytes, struct gitread_result *out, struct err *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_commit *c = NULL;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	git_oid oid;
	git_fetch_options fopts;
	const git_signature *sig;
	int rc = -1, have = 0;

	memset(out, 0, sizeof(*out));
	git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
	if (gitread_open_mirror(mirror_path, url, &repo, &remote, err) < 0)
		goto out;
	if (commit != NULL) {
		if (git_oid_fromstr(&oid, commit) < 0 || strlen(commit) != 40) {
			err_set(err, ERR_INVAL, "commit '%.64s' is not a 40-hex object id", commit);
			goto out;
		}
		have = git_commit_lookup(&c, repo, &oid) == 0;
	}
	if (!have) {
		if (git_remote_fetch(remote, NULL, &fopts, "anvil mirror") < 0) {
			gitread_fail(err, "fetch");
			err->code = ERR_UNAVAIL;
			goto out;
		}
		if (commit != NULL) {
			if (git_commit_lookup(&c, repo, &oid) < 0) {
				err_set(err, ERR_NOTFOUND, "commit %s not found in %s", commit, url);
				goto out;
			}
		} else {
			if (git_revparse_single(&obj, repo, ref) < 0) {
				err_set(err, ERR_NOTFOUND, "ref '%s' not found in %s", ref, url);
				goto out;
			}
			if (git_object_peel((git_object **)&c, obj, GIT_OBJECT_COMMIT) < 0) {
				gitread_fail(err, "peel ref to commit");
				goto out;
			}
		}
	}
	git_oid_tostr(out->commit, sizeof(out->commit), git_commit_id(c));
	out->message = strdup(git_commit_message(c) ? git_commit_message(c) : "");
	sig = git_commit_author(c);
	out->author = sig ? NULL : strdup("");
	if (sig) {
		size_t n = strlen(sig->name) + strlen(sig->email) + 4;
		out->author = malloc(n);
		if (out->author)
			snprintf(out->author, n, "%s <%s>", sig->name, sig->email);
	}
	if (out->message == NULL || out->author == NULL) {
		err_set(err, ERR_SYS, "out of memory");
		goto out;
	}
	if (git_commit_tree(&tree, c) < 0) {
		gitread_fail(err, "commit tree");
		goto out;
	}
	if (git_tree_entry_bypath(&entry, tree, file_path) < 0) {
		out->file_found = 0;
		rc = 0;
		goto out;
	}
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		err_set(err, ERR_INVAL, "%s is not a file", file_path);
		goto out;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) < 0) {
		gitread_fail(err, "read blob");
		goto out;
	}
	if ((size_t)git_blob_rawsize(blob) > max_file_bytes) {
		err_set(err, ERR_LIMIT, "%s is %lld bytes, limit %zu", file_path, (long long)git_blob_rawsize(blob),
			max_file_bytes);
		goto out;
	}
	buf_append(&out->file, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	out->file_found = 1;
	rc = 0;
out:
	if (rc < 0)
		gitread_result_release(out);
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	git_object_free(obj);
	git_commit_free(c);
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}
