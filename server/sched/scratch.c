#include "server/sched/scratch.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/gitbind.h"

/* <data>/scratch, absolute, made on first use. */
static char *scratch_dir(const struct srv *srv, struct err *err)
{
	char data[PATH_MAX], *dir;

	if (realpath(srv->cfg.data_dir, data) == NULL) {
		err_errno(err, "realpath %s", srv->cfg.data_dir);
		return NULL;
	}
	dir = xasprintf("%s/scratch", data);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err_errno(err, "mkdir %s", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

char *scratch_repo_path(const struct srv *srv, const char *name, struct err *err)
{
	char *dir = scratch_dir(srv, err), *path;

	if (dir == NULL)
		return NULL;
	path = xasprintf("%s/%s.git", dir, name);
	free(dir);
	return path;
}

/* When the ref was written, in ms: its newest reflog entry, else (a
 * repository from before reflogs were kept) its commit's time; 0 when
 * neither can be read. */
static int64_t scratch_ref_ms(git_repository *repo, const git_reference *ref)
{
	git_reflog *log = NULL;
	git_commit *c = NULL;
	int64_t ms = 0;

	if (git_reflog_read(&log, repo, git_reference_name(ref)) == 0 && git_reflog_entrycount(log) > 0)
		ms = (int64_t)git_reflog_entry_committer(git_reflog_entry_byindex(log, 0))->when.time * 1000;
	else if (git_reference_target(ref) != NULL &&
	         git_commit_lookup(&c, repo, git_reference_target(ref)) == 0)
		ms = (int64_t)git_commit_time(c) * 1000;
	git_commit_free(c);
	git_reflog_free(log);
	return ms;
}

/* The server's mirror of scratch repository name, when the store names
 * that repository with this scratch path as its URL (never a forge's). */
static char *scratch_mirror_path(struct srv *srv, const char *name, const char *path)
{
	struct repo_cfg rc = {0};
	struct err err = {0};
	char *mirror = NULL;

	if (store_repo_cfg_get(srv->store, name, &rc, &err) == 0 && strcmp(rc.url, path) == 0)
		mirror = xasprintf("%s/%lld.git", srv->mirror_dir, (long long)rc.id);
	repo_cfg_release(&rc);
	return mirror;
}

static void scratch_ref_drop(const char *repo_path, const char *refname)
{
	git_repository *repo = NULL;
	git_reference *ref = NULL;

	if (repo_path == NULL || git_repository_open_bare(&repo, repo_path) < 0)
		return;
	if (git_reference_lookup(&ref, repo, refname) == 0 && git_reference_delete(ref) < 0)
		log_warnx("event=scratch_ref_remove_failed repo=%s ref=%s error=\"%s\"", repo_path, refname,
		          git_error_last() ? git_error_last()->message : "?");
	git_reference_free(ref);
	git_repository_free(repo);
}

/* One scratch repository; caller holds git_mu. */
static int scratch_prune_one(struct srv *srv, const char *name, int64_t before_ms, int64_t *refs_out,
                             int64_t *repos_out, struct err *err)
{
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	struct strv old = STRV_INIT;
	char *path = NULL, *mirror = NULL;
	size_t kept = 0;
	int rc = -1;

	if (gitbind_load(err) < 0) /* before anything the exit path frees with libgit2 */
		return -1;
	if ((path = scratch_repo_path(srv, name, err)) == NULL)
		goto out;
	if (git_repository_open_bare(&repo, path) < 0) {
		rc = 0; /* not a repository (an upload's leftover): not ours to judge */
		goto out;
	}
	mirror = scratch_mirror_path(srv, name, path);
	if (git_reference_iterator_glob_new(&it, repo, SCRATCH_REF_PREFIX "*") < 0) {
		err_set(err, ERR_SYS, "list refs of %s: %s", path,
		        git_error_last() ? git_error_last()->message : "?");
		goto out;
	}
	while (git_reference_next(&ref, it) == 0) {
		int64_t ms = scratch_ref_ms(repo, ref);
		if (ms > 0 && ms < before_ms)
			strv_push(&old, git_reference_name(ref));
		else
			kept++;
		git_reference_free(ref);
		ref = NULL;
	}
	git_reference_iterator_free(it);
	it = NULL;
	git_repository_free(repo);
	repo = NULL;
	for (size_t i = 0; i < old.n; i++) {
		scratch_ref_drop(path, old.v[i]);
		scratch_ref_drop(mirror, old.v[i]);
		log_info("event=scratch_ref_pruned repo=%s ref=%s", name, old.v[i]);
		(*refs_out)++;
	}
	if (kept == 0) {
		if (fileio_remove_tree(path, err) < 0 ||
		    (mirror != NULL && fileio_remove_tree(mirror, err) < 0))
			goto out;
		log_info("event=scratch_repo_pruned repo=%s", name);
		(*repos_out)++;
	}
	rc = 0;
out:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	strv_release(&old);
	free(mirror);
	free(path);
	return rc;
}

int scratch_prune(struct srv *srv, int64_t before_ms, const volatile int *stop, int64_t *refs_out,
                  int64_t *repos_out, struct err *err)
{
	struct strv names = STRV_INIT;
	char *dir;
	DIR *dh;
	struct dirent *de;
	int rc = -1;

	if ((dir = scratch_dir(srv, err)) == NULL)
		return -1;
	if ((dh = opendir(dir)) == NULL) {
		err_errno(err, "opendir %s", dir);
		goto out;
	}
	while ((de = readdir(dh)) != NULL) {
		size_t n = strlen(de->d_name);
		char name[101];
		if (n <= 4 || n - 4 > 100 || strcmp(de->d_name + n - 4, ".git") != 0)
			continue;
		memcpy(name, de->d_name, n - 4);
		name[n - 4] = '\0';
		if (pipeline_name_ok(name, 100))
			strv_push(&names, name);
	}
	closedir(dh);
	for (size_t i = 0; i < names.n && !(stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED)); i++) {
		int prc;
		pthread_mutex_lock(&srv->git_mu);
		prc = scratch_prune_one(srv, names.v[i], before_ms, refs_out, repos_out, err);
		pthread_mutex_unlock(&srv->git_mu);
		if (prc < 0)
			goto out;
	}
	rc = 0;
out:
	strv_release(&names);
	free(dir);
	return rc;
}
