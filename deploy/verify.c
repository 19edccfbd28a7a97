#include "deploy/verify.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

void verify_list_release(struct verify_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void verify_report_release(struct verify_report *r)
{
	if (r == NULL)
		return;
	free(r->version);
	r->version = NULL;
}

static int verify_is_hex64(const char *s, size_t n)
{
	if (n != CRYPTO_SHA256_HEX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* A name the verifier may open: relative, plain components only, so a
 * SHA256SUMS cannot make it read outside the release directory. */
static int verify_name_ok(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > 1024 || s[0] == '/')
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\'))
			return 0;
		if (i == n || s[i] == '/') {
			size_t len = i - start;
			if (len == 0 || (len == 1 && s[start] == '.') ||
			    (len == 2 && s[start] == '.' && s[start + 1] == '.'))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

static void verify_list_push(struct verify_list *l, const char *name, size_t name_len, const char *sha256)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n].name = xstrndup(name, name_len);
	memcpy(l->v[l->n].sha256, sha256, CRYPTO_SHA256_HEX_LEN);
	l->v[l->n].sha256[CRYPTO_SHA256_HEX_LEN] = '\0';
	l->n++;
}

int verify_sums_parse(const char *text, size_t len, struct verify_list *out, struct err *err)
{
	struct verify_list l = {0};
	size_t pos = 0, line_no = 0;

	if (len > VERIFY_TEXT_MAX_BYTES)
		return err_set(err, ERR_LIMIT, "SHA256SUMS is %zu bytes, limit %d", len,
		               VERIFY_TEXT_MAX_BYTES);
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL);
		line_no++;
		if (n == 0)
			continue;
		/* "<hex>  name" or "<hex> *name": the hash, a space, a mode char. */
		if (n < CRYPTO_SHA256_HEX_LEN + 3 || !verify_is_hex64(line, CRYPTO_SHA256_HEX_LEN) ||
		    line[CRYPTO_SHA256_HEX_LEN] != ' ' ||
		    (line[CRYPTO_SHA256_HEX_LEN + 1] != ' ' && line[CRYPTO_SHA256_HEX_LEN + 1] != '*')) {
			err_set(err, ERR_INVAL, "SHA256SUMS line %zu: not \"<sha256>  <name>\"", line_no);
			goto fail;
		}
		if (!verify_name_ok(line + CRYPTO_SHA256_HEX_LEN + 2, n - CRYPTO_SHA256_HEX_LEN - 2)) {
			err_set(err, ERR_INVAL, "SHA256SUMS line %zu: the name is not a plain relative path",
			        line_no);
			goto fail;
		}
		if (l.n >= VERIFY_FILES_MAX) {
			err_set(err, ERR_LIMIT, "SHA256SUMS lists more than %d files", VERIFY_FILES_MAX);
			goto fail;
		}
		verify_list_push(&l, line + CRYPTO_SHA256_HEX_LEN + 2, n - CRYPTO_SHA256_HEX_LEN - 2, line);
	}
	if (l.n == 0) {
		err_set(err, ERR_INVAL, "SHA256SUMS lists no file");
		goto fail;
	}
	*out = l;
	return 0;
fail:
	verify_list_release(&l);
	return -1;
}

int verify_manifest_parse(const char *text, size_t len, char **version_out, struct verify_list *out,
                          struct err *err)
{
	struct verify_list l = {0};
	json_t *m = NULL;            /* owned */
	json_t *files, *f, *version; /* borrowed */
	json_error_t jerr;
	size_t i;
	int rc = -1;

	if (len > VERIFY_TEXT_MAX_BYTES)
		return err_set(err, ERR_LIMIT, "manifest.json is %zu bytes, limit %d", len,
		               VERIFY_TEXT_MAX_BYTES);
	if ((m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		err_set(err, ERR_INVAL, "manifest.json: not JSON (line %d: %s)", jerr.line, jerr.text);
		goto out;
	}
	version = json_object_get(m, "version");
	files = json_object_get(m, "files");
	if (!json_is_object(m) || !json_is_string(version) || !json_is_array(files)) {
		err_set(err, ERR_INVAL,
		        "manifest.json: want an object with a string \"version\" and an "
		        "array \"files\"");
		goto out;
	}
	if (json_array_size(files) > VERIFY_FILES_MAX) {
		err_set(err, ERR_LIMIT, "manifest.json lists more than %d files", VERIFY_FILES_MAX);
		goto out;
	}
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		if (path == NULL || sha == NULL || !verify_is_hex64(sha, strlen(sha))) {
			err_set(err, ERR_INVAL,
			        "manifest.json: files[%zu] needs a string path and a hex sha256", i);
			goto out;
		}
		verify_list_push(&l, path, strlen(path), sha);
	}
	*version_out = xstrdup(json_string_value(version));
	*out = l;
	memset(&l, 0, sizeof(l));
	rc = 0;
out:
	verify_list_release(&l);
	json_decref(m);
	return rc;
}

int verify_manifest_has(const struct verify_list *manifest, const char *name, const char *sha256)
{
	for (size_t i = 0; i < manifest->n; i++) {
		const char *p = manifest->v[i].name, *slash = strchr(p, '/');
		if (strcmp(manifest->v[i].sha256, sha256) != 0)
			continue;
		if (strcmp(p, name) == 0 || (slash != NULL && slash != p && strcmp(slash + 1, name) == 0))
			return 1;
	}
	return 0;
}

int verify_read_text(const char *path, char **out, size_t *len_out, struct err *err)
{
	struct stat st;
	char *data = NULL;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? err_set(err, ERR_NOTFOUND, "%s: missing", path)
		                       : err_errno(err, "%s: cannot open", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, ERR_INVAL, "%s: not a regular file", path);
	}
	if (st.st_size > VERIFY_TEXT_MAX_BYTES) {
		close(fd);
		return err_set(err, ERR_LIMIT, "%s: %lld bytes, limit %d", path, (long long)st.st_size,
		               VERIFY_TEXT_MAX_BYTES);
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, data + off, (size_t)st.st_size - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (off != (size_t)st.st_size) {
		free(data);
		return err_set(err, ERR_SYS, "%s: short read", path);
	}
	data[off] = '\0';
	*out = data;
	*len_out = off;
	return 0;
}

static int64_t verify_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The signature of the manifest's exact bytes by the key. */
static int verify_signature(const struct verify_paths *p, const char *manifest, size_t manifest_len,
                            char keynum_out[SIGN_KEYNUM_HEX + 1], struct err *err)
{
	struct sign_pub pub;
	struct sign_sig sig;
	char *pub_text = NULL, *sig_text = NULL;
	size_t pub_len = 0, sig_len = 0;
	int rc = -1;

	if (verify_read_text(p->pubkey, &pub_text, &pub_len, err) < 0)
		goto out;
	if (sign_pub_parse(pub_text, pub_len, &pub, err) < 0) {
		err_wrap(err, "%s", p->pubkey);
		goto out;
	}
	if (verify_read_text(p->signature, &sig_text, &sig_len, err) < 0)
		goto out;
	if (sign_sig_parse(sig_text, sig_len, &sig, err) < 0) {
		err_wrap(err, "%s", p->signature);
		goto out;
	}
	if (sign_verify(&pub, manifest, manifest_len, &sig, err) < 0) {
		err_wrap(err, "%s by %s", p->signature, p->pubkey);
		goto out;
	}
	sign_keynum_hex(pub.keynum, keynum_out);
	rc = 0;
out:
	free(pub_text);
	free(sig_text);
	return rc;
}

int verify_release(const struct verify_paths *p, struct verify_report *out, struct err *err)
{
	struct verify_list sums = {0}, files = {0};
	char *manifest = NULL, *sums_text = NULL, *version = NULL;
	size_t manifest_len = 0, sums_len = 0;
	int64_t start_ms = verify_now_ms();
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (verify_read_text(p->manifest, &manifest, &manifest_len, err) < 0)
		goto out;
	/* The signature first: nothing of an unsigned manifest is believed. */
	if (verify_signature(p, manifest, manifest_len, out->keynum, err) < 0)
		goto out;
	if (verify_manifest_parse(manifest, manifest_len, &version, &files, err) < 0)
		goto out;
	if (verify_read_text(p->sums, &sums_text, &sums_len, err) < 0)
		goto out;
	if (verify_sums_parse(sums_text, sums_len, &sums, err) < 0)
		goto out;
	for (size_t i = 0; i < sums.n; i++) {
		const struct verify_entry *e = &sums.v[i];
		char have[CRYPTO_SHA256_HEX_LEN + 1];
		struct stat st;

		if (lstat(e->name, &st) < 0) {
			if (errno == ENOENT)
				err_set(err, ERR_INVAL, "%s: missing", e->name);
			else
				err_errno(err, "%s", e->name);
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			err_set(err, ERR_INVAL, "%s: not a regular file", e->name);
			goto out;
		}
		if (crypto_sha256_file_hex(e->name, have, err) < 0)
			goto out;
		if (strcmp(have, e->sha256) != 0) {
			err_set(err, ERR_INVAL, "%s: sha256 %s, %s says %s", e->name, have, p->sums,
			        e->sha256);
			goto out;
		}
		if (!verify_manifest_has(&files, e->name, e->sha256)) {
			err_set(err, ERR_INVAL, "%s: sha256 %s is not in %s", e->name, e->sha256,
			        p->manifest);
			goto out;
		}
		out->bytes += (uint64_t)st.st_size;
	}
	out->n_files = sums.n;
	out->version = version;
	version = NULL;
	out->elapsed_ms = verify_now_ms() - start_ms;
	rc = 0;
out:
	verify_list_release(&sums);
	verify_list_release(&files);
	free(manifest);
	free(sums_text);
	free(version);
	return rc;
}
