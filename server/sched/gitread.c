#include "server/sched/gitread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gitbind.h"

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

static int gitread_open_mirror(const char *path, git_repository **repo_out, struct err *err)
{
	if (git_repository_open_bare(repo_out, path) < 0 && git_repository_init(repo_out, path, 1) < 0)
		return gitread_fail(err, "open mirror");
	return 0;
}

/* Fetches every ref of url into the mirror. The remote lives in memory only,
 * with no url.*.insteadOf rewriting: the stored URL is used exactly (and
 * libgit2 1.5's regex lookup of those keys leaks pcre2 match data on every
 * call, which a long-running server cannot afford). */
static int gitread_fetch(git_repository *repo, const char *url, struct err *err)
{
	static char refspec[] = "+refs/*:refs/*";
	char *specs_v[] = {refspec};
	git_strarray specs = {specs_v, 1};
	git_remote_create_options ro;
	git_fetch_options fopts;
	git_remote *remote = NULL;
	int rc = -1;

	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
	fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	if (git_remote_create_with_opts(&remote, url, &ro) < 0) {
		gitread_fail(err, "remote");
		goto out;
	}
	if (git_remote_fetch(remote, &specs, &fopts, NULL) < 0) {
		gitread_fail(err, "fetch");
		err->code = ERR_UNAVAIL;
		goto out;
	}
	rc = 0;
out:
	git_remote_free(remote);
	return rc;
}

/* The commit an object id names: a commit, or an annotated tag peeled to its
 * commit (a post-receive hook hands a tag push's tag object id). */
static int gitread_commit(git_repository *repo, const git_oid *oid, git_commit **out)
{
	git_object *obj = NULL;
	int rc;

	if (git_object_lookup(&obj, repo, oid, GIT_OBJECT_ANY) < 0)
		return -1;
	rc = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	return rc;
}

int gitread_file_at(const char *mirror_path, const char *url, const char *ref, const char *commit,
                    const char *file_path, size_t max_file_bytes, struct gitread_result *out, struct err *err)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	git_oid oid;
	const git_signature *sig;
	int rc = -1, have = 0;

	memset(out, 0, sizeof(*out));
	if (gitbind_load(err) < 0) /* before anything the exit path frees with libgit2 */
		return -1;
	if (gitread_open_mirror(mirror_path, &repo, err) < 0)
		goto out;
	if (commit != NULL) {
		if (git_oid_fromstr(&oid, commit) < 0 || strlen(commit) != 40) {
			err_set(err, ERR_INVAL, "commit '%.64s' is not a 40-hex object id", commit);
			goto out;
		}
		have = gitread_commit(repo, &oid, &c) == 0;
	}
	if (!have) {
		if (gitread_fetch(repo, url, err) < 0)
			goto out;
		if (commit != NULL) {
			if (gitread_commit(repo, &oid, &c) < 0) {
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
		err_set(err, ERR_LIMIT, "%s is %lld bytes, limit %zu", file_path,
		        (long long)git_blob_rawsize(blob), max_file_bytes);
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
	git_repository_free(repo);
	return rc;
}

void gitread_links_release(struct gitread_links *l)
{
	if (l == NULL)
		return;
	strv_release(&l->paths);
	strv_release(&l->commits);
	memset(l, 0, sizeof(*l));
}

struct gitread_walk {
	struct gitread_links *out;
	size_t max;
};

static int gitread_walk_cb(const char *root, const git_tree_entry *e, void *arg)
{
	struct gitread_walk *w = arg;
	char hex[GIT_OID_HEXSZ + 1];

	if (git_tree_entry_filemode(e) != GIT_FILEMODE_COMMIT)
		return 0;
	if (w->out->paths.n >= w->max) {
		w->out->too_many = 1;
		return -1;
	}
	git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
	strv_pushf(&w->out->paths, "%s%s", root, git_tree_entry_name(e));
	strv_push(&w->out->commits, hex);
	return 0;
}

int gitread_links_at(const char *mirror_path, const char *commit, size_t max_links, struct gitread_links *out,
                     struct err *err)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *gm = NULL;
	git_blob *b = NULL;
	struct gitread_walk w = {out, max_links};
	git_oid oid;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (gitbind_load(err) < 0)
		return -1;
	if (git_repository_open_bare(&repo, mirror_path) < 0 || git_oid_fromstr(&oid, commit) < 0 ||
	    git_commit_lookup(&c, repo, &oid) < 0 || git_commit_tree(&tree, c) < 0) {
		gitread_fail(err, "open commit");
		goto out;
	}
	/* No .gitmodules, no submodules (as for git: a gitlink without one
	 * is a nested repository added by mistake, not a submodule), and no
	 * walk over a large tree for the many repositories without any. */
	if (git_tree_entry_bypath(&gm, tree, ".gitmodules") < 0) {
		rc = 0;
		goto out;
	}
	out->has_gitmodules = 1;
	git_oid_tostr(out->gitmodules, sizeof(out->gitmodules), git_tree_entry_id(gm));
	if (git_tree_entry_type(gm) == GIT_OBJECT_BLOB) {
		out->gitmodules_blob = 1;
		if (git_blob_lookup(&b, repo, git_tree_entry_id(gm)) == 0)
			out->gitmodules_bytes = (int64_t)git_blob_rawsize(b);
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, gitread_walk_cb, &w) < 0 && !out->too_many) {
		err_set(err, ERR_SYS, "walk the tree of %.12s", commit);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		gitread_links_release(out);
	git_blob_free(b);
	git_tree_entry_free(gm);
	git_tree_free(tree);
	git_commit_free(c);
	git_repository_free(repo);
	return rc;
}

int gitread_rev(const char *mirror_path, const char *ref, char hex_out[41], struct err *err)
{
	git_repository *repo = NULL;
	git_object *obj = NULL;
	git_commit *c = NULL;
	int rc = -1;

	if (gitbind_load(err) < 0)
		return -1;
	if (git_repository_open_bare(&repo, mirror_path) < 0 || git_revparse_single(&obj, repo, ref) < 0 ||
	    git_object_peel((git_object **)&c, obj, GIT_OBJECT_COMMIT) < 0) {
		gitread_fail(err, "resolve ref");
		err->code = ERR_NOTFOUND;
		goto out;
	}
	git_oid_tostr(hex_out, 41, git_commit_id(c));
	rc = 0;
out:
	git_commit_free(c);
	git_object_free(obj);
	git_repository_free(repo);
	return rc;
}

int gitread_ls_remote(const char *url, struct strv *names, struct strv *oids, struct err *err)
{
	git_remote *remote = NULL;
	const git_remote_head **heads = NULL;
	git_remote_callbacks cb;
	size_t n = 0;
	int rc = -1;

	if (gitbind_load(err) < 0)
		return -1;
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	if (git_remote_create_detached(&remote, url) < 0 ||
	    git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0 ||
	    git_remote_ls(&heads, &n, remote) < 0) {
		const git_error *e = git_error_last();
		err_set(err, ERR_UNAVAIL, "ls-remote: %s", e && e->message ? e->message : "failed");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &heads[i]->oid);
		strv_push(names, heads[i]->name);
		strv_push(oids, hex);
	}
	rc = 0;
out:
	if (remote != NULL)
		git_remote_disconnect(remote);
	git_remote_free(remote);
	return rc;
}
