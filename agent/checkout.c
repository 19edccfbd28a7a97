#include "agent/checkout.h"
#include "common/redact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/gitbind.h"

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

/* 1 when path is a directory (not a link) with nothing in it. */
static int checkout_dir_empty(const char *path)
{
	struct dirent *de;
	struct stat st;
	int empty = 1;
	DIR *d;

	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || (d = opendir(path)) == NULL)
		return 0;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
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

/* Copies one file of the mirror's object store into the workspace's: a
 * copy (copy_file_range, a reflink where the file system has them), never
 * a link, so a step writing to its own .git cannot reach the mirror. */
static int checkout_copy_file(const char *from, const char *to, struct err *err)
{
	char buf[65536];
	struct stat st;
	int in = -1, out = -1, rc = -1;
	off_t left;

	if ((in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		err_errno(err, "open %s", from);
		goto out;
	}
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set(err, ERR_SYS, "%s is not a regular file", from);
		goto out;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444)) < 0) {
		err_errno(err, "create %s", to);
		goto out;
	}
	left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
			break; /* read and write below */
		if (n < 0) {
			err_errno(err, "copy %s", from);
			goto out;
		}
		if (n == 0)
			break;
		left -= n;
	}
	while (left > 0) {
		ssize_t n = read(in, buf, sizeof(buf)), w = 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_errno(err, "read %s", from);
			goto out;
		}
		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				err_errno(err, "write %s", to);
				goto out;
			}
			w += k;
		}
		left -= n;
	}
	rc = 0;
out:
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = err_errno(err, "close %s", to);
	if (in >= 0)
		close(in);
	return rc;
}

static int checkout_is_hex2(const char *name)
{
	return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

/* Copies the mirror's packs (each .pack before its .idx) and any loose
 * objects into the workspace's object store. Caller holds the mirror's
 * lock: no fetch writes there meanwhile. */
static int checkout_copy_objects(const char *mirror, const char *git_dir, struct err *err)
{
	static const char *const kinds[] = {".pack", ".idx"};
	char from[PATH_MAX + 600], to[PATH_MAX + 600], sub[PATH_MAX + 300];
	DIR *d = NULL;
	struct dirent *de;
	size_t k;
	int rc = -1;

	for (k = 0; k < 2; k++) {
		snprintf(from, sizeof(from), "%s/objects/pack", mirror);
		if ((d = opendir(from)) == NULL) {
			err_errno(err, "open %s", from);
			goto out;
		}
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name), kl = strlen(kinds[k]);
			if (strncmp(de->d_name, "pack-", 5) != 0 || n <= kl ||
			    strcmp(de->d_name + n - kl, kinds[k]) != 0)
				continue;
			if ((size_t)snprintf(from, sizeof(from), "%s/objects/pack/%s", mirror, de->d_name) >=
			        sizeof(from) ||
			    (size_t)snprintf(to, sizeof(to), "%s/objects/pack/%s", git_dir, de->d_name) >=
			        sizeof(to)) {
				err_set(err, ERR_LIMIT, "object path too long");
				goto out;
			}
			if (checkout_copy_file(from, to, err) < 0)
				goto out;
		}
		closedir(d);
		d = NULL;
	}
	/* Loose objects: a fetch by libgit2 leaves packs, but a mirror another
	 * git wrote to may hold some. */
	snprintf(from, sizeof(from), "%s/objects", mirror);
	if ((d = opendir(from)) == NULL) {
		err_errno(err, "open %s", from);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		DIR *ld;
		struct dirent *le;
		if (!checkout_is_hex2(de->d_name))
			continue;
		snprintf(sub, sizeof(sub), "%s/objects/%s", mirror, de->d_name);
		snprintf(to, sizeof(to), "%s/objects/%s", git_dir, de->d_name);
		if (mkdir(to, 0755) < 0 && errno != EEXIST) {
			err_errno(err, "mkdir %s", to);
			goto out;
		}
		if ((ld = opendir(sub)) == NULL) {
			err_errno(err, "open %s", sub);
			goto out;
		}
		while ((le = readdir(ld)) != NULL) {
			if (le->d_name[0] == '.' ||
			    strspn(le->d_name, "0123456789abcdef") != strlen(le->d_name))
				continue;
			if ((size_t)snprintf(from, sizeof(from), "%s/%s", sub, le->d_name) >= sizeof(from) ||
			    (size_t)snprintf(to, sizeof(to), "%s/objects/%s/%s", git_dir, de->d_name,
			                     le->d_name) >= sizeof(to) ||
			    checkout_copy_file(from, to, err) < 0) {
				if (err->msg[0] == '\0')
					err_set(err, ERR_LIMIT, "object path too long");
				closedir(ld);
				goto out;
			}
		}
		closedir(ld);
	}
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	return rc;
}

static int checkout_ref_cmp(const void *a, const void *b)
{
	return strcmp(strchr(*(char *const *)a, ' ') + 1, strchr(*(char *const *)b, ' ') + 1);
}

/* The workspace's refs as one packed-refs file: the mirror's tags as
 * tags, its branches as refs/remotes/origin/NAME. */
static int checkout_write_refs(git_repository *mirror_repo, const char *git_dir, struct err *err)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	struct strv lines = STRV_INIT;
	struct buf out = BUF_INIT;
	char path[PATH_MAX + 16], hex[GIT_OID_HEXSZ + 1];
	int rc = -1, e;

	if (git_reference_iterator_new(&it, mirror_repo) < 0) {
		checkout_git_err(err, "list the mirror's refs");
		goto out;
	}
	while ((e = git_reference_next(&ref, it)) == 0) {
		const char *name = git_reference_name(ref);
		const git_oid *oid = git_reference_target(ref);
		if (oid != NULL && git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
			git_oid_tostr(hex, sizeof(hex), oid);
			if (strncmp(name, "refs/tags/", 10) == 0)
				strv_pushf(&lines, "%s %s", hex, name);
			else if (strncmp(name, "refs/heads/", 11) == 0)
				strv_pushf(&lines, "%s refs/remotes/origin/%s", hex, name + 11);
		}
		git_reference_free(ref);
		ref = NULL;
	}
	if (e != GIT_ITEROVER) {
		checkout_git_err(err, "list the mirror's refs");
		goto out;
	}
	if (lines.n > 1)
		qsort(lines.v, lines.n, sizeof(char *), checkout_ref_cmp);
	buf_append(&out, "# pack-refs with: sorted \n", 26);
	for (size_t i = 0; i < lines.n; i++) {
		buf_append(&out, lines.v[i], strlen(lines.v[i]));
		buf_append(&out, "\n", 1);
	}
	snprintf(path, sizeof(path), "%s/packed-refs", git_dir);
	rc = fileio_write(path, out.data, out.len, 0644, err);
out:
	buf_release(&out);
	strv_release(&lines);
	git_reference_iterator_free(it);
	return rc;
}

/* The workspace's own repository at dest_dir, written directly (a
 * `git init` and a local fetch made 30 files and a pack per job): the
 * mirror's objects copied (nothing is shared with the mirror the steps
 * could write through), its branches and tags as packed refs, HEAD
 * detached at oid, the tree checked out with its index. Caller holds the
 * mirror's lock. */
static int checkout_workspace_repo(git_repository *mirror_repo, const char *mirror, const git_oid *oid,
                                   const char *dest_dir, struct err *err)
{
	static const char config[] = "[core]\n"
	                             "\trepositoryformatversion = 0\n"
	                             "\tfilemode = true\n"
	                             "\tbare = false\n"
	                             "\tlogallrefupdates = true\n";
	/* What git needs to see a repository (refs/heads, refs/tags and
	 * objects/info it makes when it writes there): each inode is paid for
	 * by every job. */
	static const char *const dirs[] = {"", "/objects", "/objects/pack", "/refs"};
	char git_dir[PATH_MAX], path[PATH_MAX + 32], head[GIT_OID_HEXSZ + 2];
	git_repository *wt = NULL;
	git_commit *commit = NULL;
	git_checkout_options co;
	size_t i;
	int rc = -1;

	if ((size_t)snprintf(git_dir, sizeof(git_dir), "%s/.git", dest_dir) >= sizeof(git_dir) - 32) {
		err_set(err, ERR_LIMIT, "workspace path too long");
		goto out;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", git_dir, dirs[i]);
		if (mkdir(path, 0755) < 0) {
			err_errno(err, "mkdir %s", path);
			goto out;
		}
	}
	git_oid_tostr(head, GIT_OID_HEXSZ + 1, oid);
	head[GIT_OID_HEXSZ] = '\n';
	snprintf(path, sizeof(path), "%s/config", git_dir);
	if (fileio_write(path, config, sizeof(config) - 1, 0644, err) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/HEAD", git_dir);
	if (fileio_write(path, head, GIT_OID_HEXSZ + 1, 0644, err) < 0)
		goto out;
	if (checkout_write_refs(mirror_repo, git_dir, err) < 0 ||
	    checkout_copy_objects(mirror, git_dir, err) < 0)
		goto out;
	if (git_repository_open(&wt, dest_dir) < 0) {
		checkout_git_err(err, "open the workspace repository");
		goto out;
	}
	if (git_commit_lookup(&commit, wt, oid) < 0) {
		checkout_git_err(err, "commit in the workspace repository");
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
	struct checkout_source src = {repo_name, url, NULL, NULL, NULL, NULL};

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
	if (gitbind_load(err) < 0)
		return -1;
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
		if (src->before_fetch != NULL)
			src->before_fetch(src->cls);
		if (checkout_fetch(repo, fetch_url, src->fetch_url != NULL ? src->headers : NULL, err) < 0)
			goto out;
		if (git_commit_lookup(&commit, repo, &oid) < 0) {
			err_set(err, ERR_NOTFOUND, "commit %s not found in %s", commit_hex, fetch_url);
			goto out;
		}
	}

	/* An empty directory is kept as it is: a standby sandbox has it bound
	 * at /work already (agent/job.c). */
	if (!checkout_dir_empty(dest_dir) &&
	    (checkout_remove_tree(dest_dir, err) < 0 || checkout_mkdirs(dest_dir, err) < 0))
		goto out;
	if (checkout_workspace_repo(repo, mirror, &oid, dest_dir, err) < 0)
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
