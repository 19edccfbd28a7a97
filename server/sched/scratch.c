#include "server/sched/scratch.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/gitbind.h"
#include "server/gitproc/gitops.h"

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

static int scratch_git_fail(struct err *err, enum err_code code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* The route's tail is "NAME/scratch"; the repository name goes to name. */
static int scratch_tree_cb(const char *root, const git_tree_entry *entry, void *payload)
{
	git_odb *odb = payload;

	(void)root;
	if (git_tree_entry_type(entry) == GIT_OBJECT_COMMIT) /* a submodule: not ours to carry */
		return 0;
	return git_odb_exists(odb, git_tree_entry_id(entry)) ? 0 : -1;
}

/* A new scratch repository whose every ref update is logged: the reflog's
 * time, the server's own, is what retention reads (scratch.h). */
static int scratch_init(git_repository **out, const char *dir, struct err *err)
{
	git_repository *repo = NULL;
	git_config *cfg = NULL;

	if (git_repository_init(&repo, dir, 1) < 0 || git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_string(cfg, "core.logAllRefUpdates", "always") < 0) {
		scratch_git_fail(err, ERR_SYS, "create scratch repository");
		git_config_free(cfg);
		git_repository_free(repo);
		return -1;
	}
	git_config_free(cfg);
	*out = repo;
	return 0;
}

int scratch_index(const char *dir, const char *pack_path, const char *commit_hex, const char *ref,
                  struct err *err)
{
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	git_odb_writepack *wp = NULL;
	git_indexer_progress stats = {0};
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_reference *r = NULL;
	git_oid oid;
	char *chunk = NULL;
	ssize_t n;
	int fd = -1, rc = -1;

	if (gitbind_load(err) < 0) /* before anything the exit path frees with libgit2 */
		return -1;
	chunk = xmalloc(64 * 1024);
	if (git_repository_open_bare(&repo, dir) < 0 && scratch_init(&repo, dir, err) < 0)
		goto out;
	if (git_repository_odb(&odb, repo) < 0 || git_odb_write_pack(&wp, odb, NULL, NULL) < 0) {
		scratch_git_fail(err, ERR_SYS, "open scratch object database");
		goto out;
	}
	if ((fd = open(pack_path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open %s", pack_path);
		goto out;
	}
	while ((n = read(fd, chunk, 64 * 1024)) > 0) {
		if (wp->append(wp, chunk, (size_t)n, &stats) < 0) {
			scratch_git_fail(err, ERR_INVAL, "pack");
			goto out;
		}
	}
	if (n < 0) {
		err_errno(err, "read %s", pack_path);
		goto out;
	}
	if (wp->commit(wp, &stats) < 0) {
		scratch_git_fail(err, ERR_INVAL, "pack");
		goto out;
	}
	if (git_oid_fromstr(&oid, commit_hex) < 0 || git_commit_lookup(&c, repo, &oid) < 0) {
		err_set(err, ERR_INVAL, "the pack does not hold commit %s", commit_hex);
		goto out;
	}
	if (git_commit_tree(&tree, c) < 0 ||
	    git_tree_walk(tree, GIT_TREEWALK_PRE, scratch_tree_cb, odb) != 0) {
		err_set(err, ERR_INVAL, "the pack does not hold the whole tree of commit %s", commit_hex);
		goto out;
	}
	if (git_reference_create(&r, repo, ref, &oid, 1, "anvil build") < 0) {
		scratch_git_fail(err, ERR_SYS, "create ref");
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (wp != NULL)
		wp->free(wp);
	free(chunk);
	git_reference_free(r);
	git_tree_free(tree);
	git_commit_free(c);
	git_odb_free(odb);
	git_repository_free(repo);
	return rc;
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

int scratch_ref_drop(const char *repo_path, const char *refname, struct err *err)
{
	git_repository *repo = NULL;
	git_reference *ref = NULL;
	int rc = 0;

	if (gitbind_load(err) < 0)
		return -1;
	if (git_repository_open_bare(&repo, repo_path) < 0)
		return 0; /* gone already */
	if (git_reference_lookup(&ref, repo, refname) == 0 && git_reference_delete(ref) < 0)
		rc = scratch_git_fail(err, ERR_SYS, "remove ref");
	git_reference_free(ref);
	git_repository_free(repo);
	return rc;
}

int scratch_old_refs(const char *repo_path, int64_t before_ms, struct strv *old, size_t *kept_out,
                     int *is_repo_out, struct err *err)
{
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	int rc = -1;

	*kept_out = 0;
	*is_repo_out = 0;
	if (gitbind_load(err) < 0)
		return -1;
	if (git_repository_open_bare(&repo, repo_path) < 0)
		return 0; /* not a repository (an upload's leftover): not ours to judge */
	*is_repo_out = 1;
	if (git_reference_iterator_glob_new(&it, repo, SCRATCH_REF_PREFIX "*") < 0) {
		scratch_git_fail(err, ERR_SYS, "list refs");
		goto out;
	}
	while (git_reference_next(&ref, it) == 0) {
		int64_t ms = scratch_ref_ms(repo, ref);
		if (ms > 0 && ms < before_ms)
			strv_push(old, git_reference_name(ref));
		else
			(*kept_out)++;
		git_reference_free(ref);
		ref = NULL;
	}
	rc = 0;
out:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	return rc;
}

/* One scratch repository, its git work in the helper; caller holds git_mu. */
static int scratch_prune_one(struct srv *srv, const char *name, int64_t before_ms, int64_t *refs_out,
                             int64_t *repos_out, struct err *err)
{
	struct strv old = STRV_INIT;
	char *path = NULL, *mirror = NULL;
	size_t kept = 0;
	int rc = -1, is_repo = 0;

	if ((path = scratch_repo_path(srv, name, err)) == NULL)
		goto out;
	if (gitops_scratch_old_refs(srv->git, path, before_ms, &old, &kept, &is_repo, err) < 0)
		goto out;
	if (!is_repo) {
		rc = 0;
		goto out;
	}
	mirror = scratch_mirror_path(srv, name, path);
	for (size_t i = 0; i < old.n; i++) {
		struct err derr = {0};

		if (gitops_ref_drop(srv->git, path, old.v[i], &derr) < 0 ||
		    (mirror != NULL && gitops_ref_drop(srv->git, mirror, old.v[i], &derr) < 0))
			log_warnx("event=scratch_ref_remove_failed repo=%s ref=%s error=\"%s\"", name,
			          old.v[i], derr.msg);
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
