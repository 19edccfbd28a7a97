#include "agent/artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/httpc.h"
#include "common/xalloc.h"

int artifact_name_check(const char *name, size_t len, struct err *err)
{
	size_t i, start = 0;

	if (len == 0)
		return err_set(err, ERR_INVAL, "artifact name is empty");
	if (len > ARTIFACT_NAME_MAX)
		return err_set(err, ERR_INVAL, "artifact name is %zu bytes, limit %d", len,
		               ARTIFACT_NAME_MAX);
	if (name[0] == '/')
		return err_set(err, ERR_INVAL, "artifact name must be relative");
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '/';
		if (i < len && c == '\0')
			return err_set(err, ERR_INVAL, "artifact name holds a NUL byte");
		if (c < 0x20 || c == 0x7f)
			return err_set(err, ERR_INVAL, "artifact name holds a control character");
		if (c != '/')
			continue;
		if (i == start)
			return err_set(err, ERR_INVAL, "artifact name has an empty component");
		if (i - start == 2 && name[start] == '.' && name[start + 1] == '.')
			return err_set(err, ERR_INVAL, "artifact name has a '..' component");
		start = i + 1;
	}
	return 0;
}

/* Drops "." and empty components: "./out//a" → "out/a". Caller frees. */
static char *artifact_normalise(const char *rel)
{
	struct buf b = BUF_INIT;
	const char *p = rel;

	while (*p != '\0') {
		const char *e = strchr(p, '/');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (b.len > 0)
				buf_append(&b, "/", 1);
			buf_append(&b, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

/* The workspace path with glob metacharacters escaped, so only the
 * pattern part is expanded. Caller frees. */
static char *artifact_glob_escape(const char *s)
{
	struct buf b = BUF_INIT;

	for (; *s != '\0'; s++) {
		if (strchr("*?[]\\", *s) != NULL)
			buf_append(&b, "\\", 1);
		buf_append(&b, s, 1);
	}
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

static int artifact_pattern_check(const char *pat, struct err *err)
{
	const char *p = pat;

	if (pat[0] == '\0')
		return err_set(err, ERR_INVAL, "empty artifact pattern");
	if (pat[0] == '/')
		return err_set(err, ERR_INVAL, "artifact pattern '%s' is absolute", pat);
	while (*p != '\0') {
		const char *e = strchr(p, '/');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return err_set(err, ERR_INVAL, "artifact pattern '%s' has a '..' component", pat);
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int artifact_seen(const struct artifact_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return 1;
	return 0;
}

/* Adds the match at path when it is a regular file inside ws_real; *added
 * tells whether it was one (listed now or by an earlier pattern). */
static int artifact_add(struct artifact_list *l, const char *ws, const char *ws_real, const char *path,
                        int *added, struct err *err)
{
	char real[PATH_MAX];
	size_t ws_len = strlen(ws), real_len = strlen(ws_real);
	struct stat st;
	char *name = NULL;
	struct artifact *a;
	int rc = -1;

	*added = 0;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT) /* dangling symlink: not a regular file */
			return 0;
		return err_errno(err, "stat %s", path);
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (realpath(path, real) == NULL)
		return err_errno(err, "realpath %s", path);
	if (strncmp(real, ws_real, real_len) != 0 || real[real_len] != '/')
		return err_set(err, ERR_INVAL, "artifact '%s' resolves outside the workspace",
		               strncmp(path, ws, ws_len) == 0 ? path + ws_len + 1 : path);
	if (strncmp(path, ws, ws_len) != 0 || path[ws_len] != '/')
		return err_set(err, ERR_INVAL, "artifact '%s' is outside the workspace", path);
	name = artifact_normalise(path + ws_len + 1);
	if (artifact_name_check(name, strlen(name), err) < 0)
		goto out;
	if (artifact_seen(l, name)) {
		*added = 1; /* matched, already listed by an earlier pattern */
		rc = 0;
		goto out;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	a = &l->v[l->n];
	memset(a, 0, sizeof(*a));
	if (crypto_sha256_file_hex(path, a->sha256, err) < 0)
		goto out;
	a->path = xstrdup(path);
	a->name = name;
	name = NULL;
	a->size_bytes = (uint64_t)st.st_size;
	/* As tar and zip keep it, but only what a deploy may set: the
	 * executable bit, never setuid, setgid or sticky, nor a mode
	 * the sandbox's umask happened to give. */
	a->mode = (st.st_mode & 0111) != 0 ? 0755 : 0644;
	l->n++;
	*added = 1;
	rc = 0;
out:
	free(name);
	return rc;
}

int artifact_collect(struct artifact_list *out, const char *workspace, const char *const *patterns,
                     size_t n_patterns, struct err *err)
{
	char ws_real[PATH_MAX];
	char *ws = NULL, *ws_glob = NULL, *full = NULL;
	glob_t g;
	int have_glob = 0;
	size_t i, j;
	int rc = -1;

	memset(&g, 0, sizeof(g));
	ws = xstrdup(workspace);
	while (strlen(ws) > 1 && ws[strlen(ws) - 1] == '/')
		ws[strlen(ws) - 1] = '\0';
	if (realpath(ws, ws_real) == NULL) {
		err_errno(err, "workspace %s", ws);
		goto out;
	}
	ws_glob = artifact_glob_escape(ws);
	for (i = 0; i < n_patterns; i++) {
		int grc, matched = 0;

		if (artifact_pattern_check(patterns[i], err) < 0)
			goto out;
		free(full);
		full = xasprintf("%s/%s", ws_glob, patterns[i]);
		grc = glob(full, 0, NULL, &g);
		have_glob = 1;
		if (grc == GLOB_NOSPACE) {
			err_set(err, ERR_SYS, "glob '%s': out of memory", patterns[i]);
			goto out;
		}
		if (grc == GLOB_ABORTED) {
			err_set(err, ERR_SYS, "glob '%s': read error", patterns[i]);
			goto out;
		}
		for (j = 0; grc == 0 && j < g.gl_pathc; j++) {
			int added;
			if (artifact_add(out, ws, ws_real, g.gl_pathv[j], &added, err) < 0)
				goto out;
			matched |= added;
		}
		globfree(&g);
		have_glob = 0;
		if (!matched) {
			err_set(err, ERR_NOTFOUND, "artifact pattern '%s' matched nothing", patterns[i]);
			goto out;
		}
	}
	rc = 0;
out:
	if (have_glob)
		globfree(&g);
	if (rc < 0)
		artifact_list_release(out);
	free(full);
	free(ws_glob);
	free(ws);
	return rc;
}

void artifact_list_release(struct artifact_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].name);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int artifact_upload(struct httpc *c, int64_t job_id, int64_t attempt, const struct artifact *a,
                    struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	char *esc = NULL, *path = NULL;
	json_t *body = NULL; /* owned */
	struct stat st;
	int fd = -1;
	int rc = -1;

	if ((fd = open(a->path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open %s", a->name);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		err_errno(err, "stat %s", a->name);
		goto out;
	}
	esc = httpc_escape(a->name);
	path =
	    xasprintf("/api/v1/agents/jobs/%" PRId64 "/artifacts/%s?attempt=%" PRId64 "&sha256=%s&mode=%04o",
	              job_id, esc, attempt, a->sha256, a->mode != 0 ? a->mode : 0644);
	req.method = "PUT";
	req.path = path;
	req.body_fd = fd;
	req.body_fd_len = (uint64_t)st.st_size;
	req.content_type = "application/octet-stream";
	/* A minute plus a second per MiB: generous for a LAN, bounded. */
	req.timeout_ms = 60000 + (long)((uint64_t)st.st_size / (1024 * 1024)) * 1000;
	if (httpc_do(c, &req, &resp, err) < 0) {
		err->code = ERR_UNAVAIL;
		goto out;
	}
	if (resp.status == 200 || resp.status == 201) {
		rc = 0;
		goto out;
	}
	body = json_loadb(resp.body.data != NULL ? resp.body.data : "", resp.body.len, 0, NULL);
	err_set(err, resp.status >= 500 ? ERR_UNAVAIL : httpc_err_code(resp.status),
	        "upload %s: HTTP %ld: %s", a->name, resp.status,
	        json_string_value(json_object_get(body, "error")) != NULL
	            ? json_string_value(json_object_get(body, "error"))
	            : "no message");
out:
	json_decref(body);
	httpc_resp_release(&resp);
	free(path);
	free(esc);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Opens (creating) each directory of rel's parent under the directory fd
 * dfd, O_NOFOLLOW: a symlink in the checkout cannot point the write
 * elsewhere. Returns the parent's fd (the caller closes it) and sets *base. */
static int artifact_open_parent(int dfd, const char *rel, const char **base, struct err *err)
{
	const char *p = rel;
	int fd = dup(dfd);

	if (fd < 0)
		return err_errno(err, "dup");
	for (;;) {
		size_t len = strcspn(p, "/");
		char *comp;
		int next;

		if (p[len] == '\0') {
			*base = p;
			return fd;
		}
		comp = xstrndup(p, len);
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			err_errno(err, "mkdir %s", comp);
			free(comp);
			close(fd);
			return -1;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			err_errno(err, "open directory %s of %s", comp, rel);
			free(comp);
			close(fd);
			return -1;
		}
		free(comp);
		close(fd);
		fd = next;
		p += len + 1;
	}
}

int artifact_download(struct httpc *c, int64_t job_id, const char *workspace, const struct artifact_input *in,
                      struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	char *esc = NULL, *path = NULL, *local = NULL;
	const char *base = NULL;
	int ws = -1, parent = -1, fd = -1, rc = -1;

	if (artifact_name_check(in->name, strlen(in->name), err) < 0)
		return -1;
	if ((ws = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return err_errno(err, "open %s", workspace);
	if ((parent = artifact_open_parent(ws, in->name, &base, err)) < 0)
		goto out;
	fd = openat(parent, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	            in->mode == 0755 ? 0755 : 0644);
	if (fd < 0) {
		err_errno(err, "create %s", in->name);
		goto out;
	}
	esc = httpc_escape(in->name);
	path = xasprintf("/api/v1/agents/jobs/%" PRId64 "/inputs/%" PRId64 "/%s", job_id, in->job_id, esc);
	req.method = "GET";
	req.path = path;
	req.out_fd = fd;
	req.timeout_ms = 600000;
	if (httpc_do(c, &req, &resp, err) < 0)
		goto out;
	if (resp.status != 200) {
		err_set(err, httpc_err_code(resp.status), "HTTP %ld", resp.status);
		goto out;
	}
	if (fsync(fd) < 0 && errno != EINVAL) {
		err_errno(err, "write %s", in->name);
		goto out;
	}
	local = xasprintf("%s/%s", workspace, in->name);
	if (crypto_sha256_file_hex(local, sha, err) < 0)
		goto out;
	if (strcmp(sha, in->sha256) != 0) {
		err_set(err, ERR_INVAL, "sha256 %s, expected %s", sha, in->sha256);
		unlinkat(parent, base, 0);
		goto out;
	}
	rc = 0;
out:
	httpc_resp_release(&resp);
	if (fd >= 0)
		close(fd);
	if (parent >= 0)
		close(parent);
	close(ws);
	free(esc);
	free(path);
	free(local);
	return rc;
}
