#include "agent/checkout.h"
#include "common/redact.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "common/crypto.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"

#define CHECKOUT_SAFE_NAME_MAX 64
#define CHECKOUT_REFSPEC       "+refs/*:refs/*"

/* Copies libgit2's last message into err right after a failing call. */
static int checkout_git_err(struct err *err, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, ERR_SYS, "%s: %s", what,
	               e != NULL && e->message != NULL ? e->message : "unknown error");
}

int checkout_mkdirs(const char *path, struct err *err)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	char *p;

	if (len == 0 || len >= sizeof(tmp))
		return err_set(err, ERR_INVAL, "bad directory path");
	memcpy(tmp, path, len + 1);
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return err_errno(err, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", tmp);
	return 0;
}

int checkout_remove_tree(const char *path, struct err *err)
{
	return fileio_remove_tree(path, err);
}

int checkout_mirror_path(char *out, size_t n, const char *work_dir, const char *repo_name, const char *url,
                         struct err *err)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	char safe[CHECKOUT_SAFE_NAME_MAX + 1];
	size_t i, o = 0;
	int w;

	for (i = 0; repo_name != NULL && repo_name[i] != '\0' && o < CHECKOUT_SAFE_NAME_MAX; i++) {
		char c = repo_name[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		         c == '-' || c == '_' || (c == '.' && o > 0 && safe[o - 1] != '.');
		safe[o++] = ok ? c : '_';
	}
	if (o == 0)
		safe[o++] = 'r';
	safe[o] = '\0';
	crypto_sha256_hex(url, strlen(url), hex);
	w = snprintf(out, n, "%s/mirrors/%s-%.12s.git", work_dir, safe, hex);
	if (w < 0 || (size_t)w >= n)
		return err_set(err, ERR_LIMIT, "mirror path too long");
	return 0;
}

/* Opens the mirror, creating it (bare, remote "origin" = url) when absent or
 * unusable (an earlier crash during init). Caller holds the lock. */
static int checkout_mirror_open(git_repository **out, const char *path, const char *url, struct err *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_remote_create_options ro;
	int rc = -1;

	if (git_repository_open_bare(&repo, path) == 0) {
		*out = repo;
		return 0;
	}
	if (checkout_remove_tree(path, err) < 0)
		goto out;
	if (git_repository_init(&repo, path, 1) < 0) {
		checkout_git_err(err, "init mirror");
		goto out;
	}
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.name = "origin";
	ro.fetchspec = CHECKOUT_REFSPEC;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if (git_remote_create_with_opts(&remote, url, &ro) < 0) {
		checkout_git_err(err, "add remote");
		goto out;
	}
	*out = repo;
	repo = NULL;
	rc = 0;
out:
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}

static int checkout_fetch(git_repository *repo, const char *url, const char *const *headers, struct err *err)
{
	git_remote *remote = NULL;
	git_fetch_options opts;
	git_remote_create_options ro;
	char *refspec = CHECKOUT_REFSPEC;
	git_strarray specs = {&refspec, 1};
	int rc = -1;

	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	/* Anonymous remote: the URL the job names is the one fetched, even if
	 * the stored "origin" were edited. No url.*.insteadOf rewriting: the
	 * server names the exact URL (and libgit2 1.5's regex lookup of those
	 * keys leaks pcre2 match data). */
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&remote, url, &ro) < 0) {
		char what[160];
		snprintf(what, sizeof(what), "remote %s", url);
		checkout_git_err(err, what);
		goto out;
	}
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspec already takes every tag */
	if (headers != NULL) {
		size_t n = 0;
		while (headers[n] != NULL)
			n++;
		/* libgit2 only reads them: the cast is that of git_strarray. */
		opts.custom_headers.strings = (char **)headers;
		opts.custom_headers.count = n;
	}
	if (git_remote_fetch(remote, &specs, &opts, NULL) < 0) {
		char what[160];
		snprintf(what, sizeof(what), "fetch %s", url);
		checkout_git_err(err, what);
		goto out;
	}
	rc = 0;
out:
	git_remote_free(remote);
	return rc;
}

/* The workspace's own repository at dest_dir: objects and refs copied from
 * the mirror (a local fetch packs them: nothing is shared with the mirror
 * the steps could write through), HEAD detached at oid, the tree checked
 * out with its index. Caller holds the mirror's lock. */
static int checkout_workspace_repo(const char *mirror, const git_oid *oid, const char *dest_dir,
                                   struct err *err)
{
	static char *specs_main[] = {"+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/remotes/origin/*"};
	/* A commit no branch or tag reaches (a scratch build, a rewritten
	 * branch): every other ref of the mirror, out of the way. */
	static char *specs_rest[] = {"+refs/*:refs/anvil/mirror/*"};
	git_strarray main = {specs_main, 2}, rest = {specs_rest, 1};
	git_repository *wt = NULL;
	git_remote *remote = NULL;
	git_commit *commit = NULL;
	git_repository_init_options io;
	git_remote_create_options ro;
	git_fetch_options fo;
	git_checkout_options co;
	int rc = -1;

	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
	if (git_repository_init_ext(&wt, dest_dir, &io) < 0) {
		checkout_git_err(err, "init workspace repository");
		goto out;
	}
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = wt;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	if (git_remote_create_with_opts(&remote, mirror, &ro) < 0 ||
	    git_remote_fetch(remote, &main, &fo, NULL) < 0) {
		checkout_git_err(err, "fetch the mirror into the workspace");
		goto out;
	}
	if (git_commit_lookup(&commit, wt, oid) < 0) {
		if (git_remote_fetch(remote, &rest, &fo, NULL) < 0) {
			checkout_git_err(err, "fetch the mirror into the workspace");
			goto out;
		}
		if (git_commit_lookup(&commit, wt, oid) < 0) {
			checkout_git_err(err, "commit in the workspace repository");
			goto out;
		}
	}
	if (git_repository_set_head_detached(wt, oid) < 0) {
		checkout_git_err(err, "detach HEAD");
		goto out;
	}
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	if (git_checkout_head(wt, &co) < 0) {
		checkout_git_err(err, "checkout");
		goto out;
	}
	rc = 0;
out:
	git_commit_free(commit);
	git_remote_free(remote);
	git_repository_free(wt);
	return rc;
}

static int checkout_lock(const char *mirror, int *fd_out, struct err *err)
{
	char lock[PATH_MAX];
	int fd;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", mirror) >= sizeof(lock))
		return err_set(err, ERR_LIMIT, "lock path too long");
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return err_errno(err, "open %s", lock);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			err_errno(err, "flock %s", lock);
			close(fd);
			return -1;
		}
	}
	*fd_out = fd;
	return 0;
}

int checkout_prepare(const char *work_dir, const char *repo_name, const char *url, const char *commit_hex,
                     const char *dest_dir, struct err *err)
{
	struct checkout_source src = {repo_name, url, NULL, NULL};

	return checkout_prepare_from(work_dir, &src, commit_hex, dest_dir, err);
}

int checkout_prepare_from(const char *work_dir, const struct checkout_source *src, const char *commit_hex,
                          const char *dest_dir, struct err *err)
{
	const char *repo_name = src->repo_name, *url = src->url;
	const char *fetch_url = src->fetch_url != NULL ? src->fetch_url : src->url;
	char mirror[PATH_MAX], mirrors_dir[PATH_MAX];
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_oid oid;
	int lock_fd = -1;
	int rc = -1;
	size_t i;

	for (i = 0; commit_hex[i] != '\0'; i++)
		if (!((commit_hex[i] >= '0' && commit_hex[i] <= '9') ||
		      (commit_hex[i] >= 'a' && commit_hex[i] <= 'f')))
			break;
	if (i != GIT_OID_HEXSZ || commit_hex[i] != '\0')
		return err_set(err, ERR_INVAL, "bad commit id (want 40 lowercase hex)");
	if (git_oid_fromstr(&oid, commit_hex) < 0)
		return checkout_git_err(err, "commit id");

	if (checkout_mirror_path(mirror, sizeof(mirror), work_dir, repo_name, url, err) < 0)
		goto out;
	if ((size_t)snprintf(mirrors_dir, sizeof(mirrors_dir), "%s/mirrors", work_dir) >=
	    sizeof(mirrors_dir)) {
		err_set(err, ERR_LIMIT, "work path too long");
		goto out;
	}
	if (checkout_mkdirs(mirrors_dir, err) < 0)
		goto out;
	if (checkout_lock(mirror, &lock_fd, err) < 0)
		goto out;
	if (checkout_mirror_open(&repo, mirror, url, err) < 0)
		goto out;

	/* Fetch only when the mirror lacks the commit: a retried job or a
	 * second target of the same pipeline costs no network round trip. */
	if (git_commit_lookup(&commit, repo, &oid) < 0) {
		if (checkout_fetch(repo, fetch_url, src->fetch_url != NULL ? src->headers : NULL, err) < 0)
			goto out;
		if (git_commit_lookup(&commit, repo, &oid) < 0) {
			err_set(err, ERR_NOTFOUND, "commit %s not found in %s", commit_hex, fetch_url);
			goto out;
		}
	}

	if (checkout_remove_tree(dest_dir, err) < 0 || checkout_mkdirs(dest_dir, err) < 0)
		goto out;
	if (checkout_workspace_repo(mirror, &oid, dest_dir, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && redact_urls_needed(err->msg, strlen(err->msg))) {
		/* The error goes to the job's log and message: the URL's
		 * credentials stay with the agent. */
		char *shown = redact_urls_dup(err->msg);
		snprintf(err->msg, sizeof(err->msg), "%s", shown);
		free(shown);
	}
	git_commit_free(commit);
	git_repository_free(repo);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
