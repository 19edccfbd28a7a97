#include "common/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_write(const char *path, const void *data, size_t n, mode_t mode, struct err *err)
{
	const char *p = data;
	size_t off = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return err_errno(err, "create %s", path);
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_errno(err, "write %s", path);
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0)
		return err_errno(err, "close %s", path);
	return 0;
}

/* Deeper trees are refused: each level holds a directory fd open. */
#define FILEIO_TREE_MAX_DEPTH 256

struct fileio_walk {
	int (*visit)(struct fileio_walk *w, int at, const char *name, const struct stat *st);
	const char *root;
	dev_t dev;
	struct err *err;
	/* fileio_chown_tree */
	uid_t from_uid, to_uid;
	gid_t from_gid, to_gid;
	/* fileio_tree_bytes */
	int64_t bytes, stop_at;
};

/* Visits name in dirfd, then, for a directory on the same file system,
 * everything under it. Links are never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW). */
static int fileio_walk_at(struct fileio_walk *w, int at, const char *name, int depth)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_errno(w->err, "stat %s/.../%s", w->root, name);
	if (w->visit(w, at, name, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode) || st.st_dev != w->dev)
		return 0;
	if (depth >= FILEIO_TREE_MAX_DEPTH)
		return err_set(w->err, ERR_INVAL, "%s: more than %d levels of directories", w->root,
		               FILEIO_TREE_MAX_DEPTH);
	if ((fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : err_errno(w->err, "open %s/.../%s", w->root, name);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return err_errno(w->err, "opendir %s/.../%s", w->root, name);
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = fileio_walk_at(w, dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	return rc;
}

static int fileio_walk_tree(struct fileio_walk *w, const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return err_errno(w->err, "stat %s", path);
	w->root = path;
	w->dev = st.st_dev;
	return fileio_walk_at(w, AT_FDCWD, path, 0);
}

static int fileio_chown_visit(struct fileio_walk *w, int at, const char *name, const struct stat *st)
{
	uid_t uid = w->from_uid == (uid_t)-1 || st->st_uid == w->from_uid ? w->to_uid : st->st_uid;
	gid_t gid = w->from_gid == (gid_t)-1 || st->st_gid == w->from_gid ? w->to_gid : st->st_gid;

	if (uid == st->st_uid && gid == st->st_gid)
		return 0;
	if (fchownat(at, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_errno(w->err, "chown %s/.../%s", w->root, name);
	/* chown clears set-id bits; a directory's setgid bit is put back. */
	if (S_ISDIR(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) != 0 &&
	    fchmodat(at, name, st->st_mode & 07777, 0) < 0)
		return err_errno(w->err, "chmod %s/.../%s", w->root, name);
	return 0;
}

int fileio_chown_tree(const char *path, uid_t from_uid, uid_t to_uid, gid_t from_gid, gid_t to_gid,
                      struct err *err)
{
	struct fileio_walk w = {.visit = fileio_chown_visit, .err = err};

	w.from_uid = from_uid;
	w.to_uid = to_uid;
	w.from_gid = from_gid;
	w.to_gid = to_gid;
	return fileio_walk_tree(&w, path);
}

static int fileio_bytes_visit(struct fileio_walk *w, int at, const char *name, const struct stat *st)
{
	(void)at;
	(void)name;
	w->bytes += (int64_t)st->st_blocks * 512;
	if (w->stop_at > 0 && w->bytes > w->stop_at)
		return err_set(w->err, ERR_LIMIT, "over"); /* not an error: stop counting */
	return 0;
}

int64_t fileio_tree_bytes(const char *path, int64_t stop_at, struct err *err)
{
	struct fileio_walk w = {.visit = fileio_bytes_visit, .stop_at = stop_at};
	struct err e = {0};

	w.err = &e;
	if (fileio_walk_tree(&w, path) < 0 && e.code != ERR_LIMIT) {
		if (err != NULL)
			*err = e;
		return -1;
	}
	return w.bytes;
}

static int fileio_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fileio_remove_tree(const char *path, struct err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_errno(err, "stat %s", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return err_errno(err, "unlink %s", path);
		return 0;
	}
	if (nftw(path, fileio_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return err_errno(err, "remove %s", path);
	return 0;
}
