#include "server/store/blob.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blob_writer {
	char *blob_dir;
	char *tmp_path;
	int fd;
	int64_t size;
	int64_t cap_bytes;
	struct crypto_sha256 *hash;
	int committed;
	struct failpoints *fp; /* borrowed; NULL outside tests */
};

static int blob_mkdir(const char *path, struct err *err)
{
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", path);
	return 0;
}

int blob_dir_init(const char *blob_dir, struct err *err)
{
	char *tmp = xasprintf("%s/tmp", blob_dir);
	DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	if (blob_mkdir(blob_dir, err) < 0 || blob_mkdir(tmp, err) < 0)
		goto out;
	/* Uploads cut short by a crash never became blobs: drop them. */
	if ((d = opendir(tmp)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				log_info("event=blob_tmp_removed file=%s", de->d_name);
		}
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	free(tmp);
	return rc;
}

char *blob_path(const char *blob_dir, const char *sha256_hex)
{
	return xasprintf("%s/%.2s/%s", blob_dir, sha256_hex, sha256_hex);
}

int blob_writer_new(const char *blob_dir, int64_t cap_bytes, struct failpoints *fp, struct blob_writer **out,
                    struct err *err)
{
	struct blob_writer *w = xcalloc(1, sizeof(*w));

	w->fp = fp;
	w->blob_dir = xstrdup(blob_dir);
	w->tmp_path = xasprintf("%s/tmp/upload-XXXXXX", blob_dir);
	w->cap_bytes = cap_bytes;
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		err_errno(err, "create %s", w->tmp_path);
		free(w->tmp_path);
		w->tmp_path = NULL;
		blob_writer_free(w);
		return -1;
	}
	w->hash = crypto_sha256_new();
	*out = w;
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *p, size_t n, struct err *err)
{
	const char *c = p;

	if (w->size + (int64_t)n > w->cap_bytes)
		return err_set(err, ERR_LIMIT, "artifact is larger than the cap of %lld bytes",
		               (long long)w->cap_bytes);
	crypto_sha256_update(w->hash, p, n);
	while (n > 0) {
		ssize_t k;
		if (failpoint_hit(w->fp, FAILPOINT_WRITE))
			return err_set(err, ERR_SYS, "write %s: failed by failpoint write:%lld", w->tmp_path,
			               failpoint_seen(w->fp, FAILPOINT_WRITE));
		if ((k = write(w->fd, c, n)) < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(err, "write %s", w->tmp_path);
		}
		c += k;
		n -= (size_t)k;
		w->size += k;
	}
	return 0;
}

int blob_writer_commit(struct blob_writer *w, const char *expected_hex, int64_t *size_out, struct err *err)
{
	char got[CRYPTO_SHA256_HEX_LEN + 1];
	char *dir = NULL, *path = NULL;
	int rc = -1;

	crypto_sha256_final_hex(w->hash, got);
	if (strcmp(got, expected_hex) != 0) {
		err_set(err, ERR_INVAL, "sha256 mismatch: the upload hashes to %s, not %s", got,
		        expected_hex);
		goto out;
	}
	if (failpoint_hit(w->fp, FAILPOINT_FSYNC)) {
		err_set(err, ERR_SYS, "fsync %s: failed by failpoint fsync:%lld", w->tmp_path,
		        failpoint_seen(w->fp, FAILPOINT_FSYNC));
		goto out;
	}
	if (fsync(w->fd) < 0) {
		err_errno(err, "fsync %s", w->tmp_path);
		goto out;
	}
	dir = xasprintf("%s/%.2s", w->blob_dir, got);
	if (blob_mkdir(dir, err) < 0)
		goto out;
	path = blob_path(w->blob_dir, got);
	if (access(path, F_OK) == 0) {
		unlink(w->tmp_path); /* the same bytes are stored already */
	} else if (failpoint_hit(w->fp, FAILPOINT_RENAME)) {
		err_set(err, ERR_SYS, "rename into %s: failed by failpoint rename:%lld", path,
		        failpoint_seen(w->fp, FAILPOINT_RENAME));
		goto out;
	} else if (rename(w->tmp_path, path) < 0) {
		err_errno(err, "rename into %s", path);
		goto out;
	}
	w->committed = 1;
	*size_out = w->size;
	rc = 0;
out:
	free(dir);
	free(path);
	return rc;
}

void blob_writer_free(struct blob_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (!w->committed && w->tmp_path)
		unlink(w->tmp_path);
	crypto_sha256_free(w->hash);
	free(w->tmp_path);
	free(w->blob_dir);
	free(w);
}
