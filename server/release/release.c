#include "server/release/release.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/sign.h"
#include "server/sched/sched.h"
#include "server/srv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define RELEASE_WAIT_MS 500
#define RELEASE_KEY_MAX 4096

struct release {
	struct srv *srv;
	pthread_t th;
	int started;
	pthread_mutex_t mu; /* guards key and the key files */
	struct sign_key key;
	volatile int stopping;
};

int release_version_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 100 || v[0] == '-' || v[0] == '.' || strstr(v, "..") != NULL || v[n - 1] == '.' ||
	    (n >= 5 && strcmp(v + n - 5, ".lock") == 0) || strstr(v, "@{") != NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c >= 0x7f || strchr("/~^:?*[\\", c) != NULL)
			return 0;
	}
	return 1;
}

int release_pattern_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 100)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

/* Writes text to path atomically (temp file, fsync, rename) with mode. */
static int release_write_file(const char *path, const char *text, mode_t mode, struct err *err)
{
	char *tmp = xasprintf("%s.tmp", path);
	size_t n = strlen(text);
	int fd = -1, rc = -1;

	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0) {
		err_errno(err, "create %s", tmp);
		goto out;
	}
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0) {
		err_errno(err, "write %s", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_errno(err, "close %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		err_errno(err, "rename %s", tmp);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

static int release_read_file(const char *path, struct buf *out, struct err *err)
{
	char tmp[1024];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(err, "open %s", path);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		buf_append(out, tmp, (size_t)n);
		if (out->len > RELEASE_KEY_MAX) {
			close(fd);
			return err_set(err, ERR_LIMIT, "%s is larger than %d bytes", path, RELEASE_KEY_MAX);
		}
	}
	close(fd);
	if (n < 0)
		return err_errno(err, "read %s", path);
	return 0;
}

static char *release_pub_text(const struct sign_key *k)
{
	struct sign_pub p;
	char hex[SIGN_KEYNUM_HEX + 1], comment[80];

	sign_key_pub(k, &p);
	sign_keynum_hex(k->keynum, hex);
	snprintf(comment, sizeof(comment), "anvil release public key %s", hex);
	return sign_pub_format(&p, comment);
}

/* Writes key to <data>/release.key and release.pub, records the public key
 * as current. Called with r->mu held (or before the thread starts). */
static int release_key_install(struct release *r, const struct sign_key *k, struct err *err)
{
	const char *dir = r->srv->cfg.data_dir;
	char *key_path = xasprintf("%s/release.key", dir), *pub_path = xasprintf("%s/release.pub", dir);
	char *key_text = sign_key_format(k, "anvil release secret key (signify format, no passphrase)");
	char *pub_text = release_pub_text(k), hex[SIGN_KEYNUM_HEX + 1];
	int rc = -1;

	sign_keynum_hex(k->keynum, hex);
	if (key_text == NULL) {
		err_set(err, ERR_SYS, "cannot encode the release key");
		goto out;
	}
	if (release_write_file(key_path, key_text, 0600, err) < 0 ||
	    release_write_file(pub_path, pub_text, 0644, err) < 0)
		goto out;
	if (store_release_key_add(r->srv->store, hex, pub_text, srv_now_ms(), err) < 0)
		goto out;
	rc = 0;
out:
	if (key_text != NULL)
		explicit_bzero(key_text, strlen(key_text));
	free(key_text);
	free(pub_text);
	free(key_path);
	free(pub_path);
	return rc;
}

/* Loads <data>/release.key, or makes one. Before the thread starts. */
static int release_key_setup(struct release *r, struct err *err)
{
	char *path = xasprintf("%s/release.key", r->srv->cfg.data_dir), *pub_path = NULL, *pub_text = NULL;
	char hex[SIGN_KEYNUM_HEX + 1];
	struct release_key_row *keys = NULL;
	struct buf text = BUF_INIT;
	size_t n = 0;
	int rc = -1, known = 0;

	if (access(path, F_OK) != 0 && errno == ENOENT) {
		if (sign_keygen(&r->key, err) < 0 || release_key_install(r, &r->key, err) < 0)
			goto out;
		sign_keynum_hex(r->key.keynum, hex);
		log_info("event=release_key_generated keynum=%s path=%s", hex, path);
		rc = 0;
		goto out;
	}
	if (release_read_file(path, &text, err) < 0 ||
	    sign_key_parse(text.data, text.len, &r->key, err) < 0) {
		err_wrap(err, "release key %s", path);
		goto out;
	}
	sign_keynum_hex(r->key.keynum, hex);
	if (store_release_key_list(r->srv->store, &keys, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		known |= strcmp(keys[i].keynum, hex) == 0;
	pub_text = release_pub_text(&r->key);
	pub_path = xasprintf("%s/release.pub", r->srv->cfg.data_dir);
	if (release_write_file(pub_path, pub_text, 0644, err) < 0)
		goto out;
	if (!known && store_release_key_add(r->srv->store, hex, pub_text, srv_now_ms(), err) < 0)
		goto out;
	rc = 0;
out:
	if (text.data != NULL)
		explicit_bzero(text.data, text.len);
	buf_release(&text);
	release_key_rows_free(keys, n);
	free(pub_text);
	free(pub_path);
	free(path);
	return rc;
}

int release_rotate_key(struct release *r, char keynum_out[17], struct err *err)
{
	struct sign_key k;
	char old_hex[SIGN_KEYNUM_HEX + 1], new_hex[SIGN_KEYNUM_HEX + 1], *old_path = NULL, *old_pub = NULL;
	int rc = -1;

	if (sign_keygen(&k, err) < 0)
		return -1;
	pthread_mutex_lock(&r->mu);
	sign_keynum_hex(r->key.keynum, old_hex);
	sign_keynum_hex(k.keynum, new_hex);
	/* The retired public key stays on disk too, named by its keynum. */
	old_path = xasprintf("%s/release-%s.pub", r->srv->cfg.data_dir, old_hex);
	old_pub = release_pub_text(&r->key);
	if (release_write_file(old_path, old_pub, 0644, err) < 0 || release_key_install(r, &k, err) < 0)
		goto out;
	r->key = k;
	if (keynum_out != NULL)
		memcpy(keynum_out, new_hex, SIGN_KEYNUM_HEX + 1);
	log_info("event=release_key_rotated old=%s new=%s", old_hex, new_hex);
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
	sign_key_clear(&k);
	free(old_path);
	free(old_pub);
	return rc;
}

/* The manifest text of a release (owned), keys in a fixed order. */
static char *release_manifest(const struct release_row *rel, const struct release_file_row *files, size_t n,
                              const char *keynum_hex)
{
	json_t *o = json_object(), *arr = json_array(); /* owned */
	char created[32], *text, *out;
	time_t t = (time_t)(rel->created_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "version", json_string(rel->version));
	json_object_set_new(o, "commit", json_string(rel->commit_sha));
	json_object_set_new(o, "repository", json_string(rel->repo_name));
	json_object_set_new(o, "created", json_string(created));
	json_object_set_new(o, "created_unix_ms", json_integer(rel->created_ms));
	json_object_set_new(o, "pipeline", json_integer(rel->pipeline_id));
	json_object_set_new(o, "key", json_string(keynum_hex));
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_object(); /* owned until appended */
		json_object_set_new(f, "target", json_string(files[i].target));
		json_object_set_new(f, "path", json_sprintf("%s/%s", files[i].target, files[i].name));
		json_object_set_new(f, "size", json_integer(files[i].size));
		json_object_set_new(f, "sha256", json_string(files[i].sha256));
		json_array_append_new(arr, f);
	}
	json_object_set_new(o, "files", arr);
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		return NULL;
	out = xasprintf("%s\n", text);
	free(text);
	return out;
}

static int release_sign_one(struct release *r, int64_t id, struct err *err)
{
	struct release_row rel = {0};
	struct release_file_row *files = NULL;
	struct sign_sig sig;
	size_t n = 0;
	char hex[SIGN_KEYNUM_HEX + 1], comment[80], *manifest = NULL, *sig_text = NULL;
	int rc = -1, signed_ok;

	if (store_release_get(r->srv->store, id, NULL, NULL, &rel, err) < 0 ||
	    store_release_files(r->srv->store, rel.pipeline_id, &files, &n, err) < 0)
		goto out;
	pthread_mutex_lock(&r->mu);
	sign_keynum_hex(r->key.keynum, hex);
	manifest = release_manifest(&rel, files, n, hex);
	signed_ok = manifest != NULL && sign_message(&r->key, manifest, strlen(manifest), &sig, err) == 0;
	pthread_mutex_unlock(&r->mu);
	if (manifest == NULL) {
		char *why = xasprintf(
		    "release %s cannot be signed: its manifest holds text that is not UTF-8", rel.version);
		int ended = 0;
		struct err cerr = {0};
		/* It never will be: its pipeline's deploy jobs must not wait for it. */
		if (jobstate_release_deploys_cancel(r->srv->store, rel.pipeline_id, why, srv_now_ms(), &ended,
		                                    &cerr) == 0 &&
		    ended > 0)
			sched_notify(r->srv->sched, SCHED_LOGS);
		free(why);
		err_set(err, ERR_INVAL, "release %lld: the manifest holds text that is not UTF-8",
		        (long long)id);
		goto out;
	}
	if (!signed_ok)
		goto out;
	snprintf(comment, sizeof(comment), "verify with anvil-release.pub (key %s)", hex);
	sig_text = sign_sig_format(&sig, comment);
	if (store_release_sign(r->srv->store, id, manifest, sig_text, hex, err) < 0)
		goto out;
	log_info("event=release_signed release=%lld repo=%s version=%s files=%zu key=%s", (long long)id,
	         rel.repo_name, rel.version, n, hex);
	/* The tag pipeline's deploy jobs were waiting for this signature. */
	sched_notify(r->srv->sched, SCHED_JOBS);
	rc = 0;
out:
	release_file_rows_free(files, n);
	release_row_release(&rel);
	free(manifest);
	free(sig_text);
	return rc;
}

int release_sign_pending(struct release *r, struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = 0;

	if (store_release_unsigned(r->srv->store, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct err e = {0};
		if (release_sign_one(r, ids[i], &e) < 0 && e.code != ERR_CONFLICT) {
			log_warnx("event=release_sign_failed release=%lld error=\"%s\"", (long long)ids[i],
			          e.msg);
			*err = e;
			rc = -1;
		}
	}
	free(ids);
	return rc;
}

static void *release_main(void *arg)
{
	struct release *r = arg;
	struct sched *s = r->srv->sched;

	while (!r->stopping && !sched_stopping(s)) {
		uint64_t gen = sched_gen(s, SCHED_LOGS);
		struct err err = {0}, oerr = {0};
		int ended = 0;

		release_sign_pending(r, &err);
		if (jobstate_release_deploys_end_orphans(r->srv->store, srv_now_ms(), &ended, &oerr) < 0)
			log_warnx("event=release_deploys_end_failed error=\"%s\"", oerr.msg);
		else if (ended > 0) {
			log_info("event=release_deploys_ended count=%d reason=\"version released by another "
			         "pipeline\"",
			         ended);
			sched_notify(s, SCHED_LOGS);
		}
		sched_wait(s, SCHED_LOGS, gen, sched_mono_ms() + RELEASE_WAIT_MS);
	}
	return NULL;
}

int release_start(struct srv *srv, struct release **out, struct err *err)
{
	struct release *r = xcalloc(1, sizeof(*r));

	r->srv = srv;
	pthread_mutex_init(&r->mu, NULL);
	if (release_key_setup(r, err) < 0)
		goto fail;
	if (pthread_create(&r->th, NULL, release_main, r) != 0) {
		err_set(err, ERR_SYS, "cannot start the release signer thread");
		goto fail;
	}
	r->started = 1;
	*out = r;
	return 0;
fail:
	release_stop(r);
	return -1;
}

void release_stop(struct release *r)
{
	if (r == NULL)
		return;
	r->stopping = 1;
	if (r->started)
		pthread_join(r->th, NULL);
	sign_key_clear(&r->key);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int release_sha256sums(const char *manifest, char **out, struct err *err)
{
	json_t *m = json_loads(manifest, 0, NULL), *files, *f; /* m owned, others borrowed */
	struct buf b = BUF_INIT;
	size_t i;
	int rc = -1;

	if (m == NULL || !json_is_array(files = json_object_get(m, "files"))) {
		err_set(err, ERR_INVAL, "release manifest is malformed");
		goto out;
	}
	buf_append(&b, "", 0);
	json_array_foreach(files, i, f)
	{
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		const char *path = json_string_value(json_object_get(f, "path"));
		if (sha == NULL || path == NULL) {
			err_set(err, ERR_INVAL, "release manifest is malformed");
			goto out;
		}
		buf_appendf(&b, "%s  %s\n", sha, path);
	}
	*out = buf_detach(&b, NULL);
	rc = 0;
out:
	buf_release(&b);
	json_decref(m);
	return rc;
}

int release_manifest_file(const char *manifest, const char *path, char sha256_out[65], int64_t *size_out,
                          struct err *err)
{
	json_t *m = json_loads(manifest, 0, NULL), *files, *f; /* m owned, others borrowed */
	size_t i;
	int rc = -1;

	if (m == NULL || !json_is_array(files = json_object_get(m, "files"))) {
		err_set(err, ERR_INVAL, "release manifest is malformed");
		goto out;
	}
	json_array_foreach(files, i, f)
	{
		const char *p = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		if (p == NULL || sha == NULL || strcmp(p, path) != 0 || !crypto_is_sha256_hex(sha))
			continue;
		snprintf(sha256_out, 65, "%s", sha);
		*size_out = (int64_t)json_integer_value(json_object_get(f, "size"));
		rc = 0;
		goto out;
	}
	err_set(err, ERR_NOTFOUND, "no file %s in this release", path);
out:
	json_decref(m);
	return rc;
}
