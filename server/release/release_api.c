#include "server/release/release_api.h"
#include "server/api/apijson.h"
#include "common/log.h"
#include "server/store/blob.h"
#include "server/sched/pipeline.h"
#include "server/release/release.h"
#include "server/gitproc/gitops.h"
#include "server/srv.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#define RELEASE_API_PATTERN_SUFFIX "/release-pattern"

/* The boards where the release is live: [{board, group, since_unix_ms}].
 * A store failure leaves the list empty (logged): the release still shows. */
static json_t *release_api_deployed_to(struct srv *srv, const struct release_row *r)
{
	struct release_board_row *rows = NULL;
	struct err err = {0};
	json_t *arr = json_array(); /* owned */
	size_t n = 0;

	if (store_release_boards(srv->store, r->repo_id, r->version, &rows, &n, &err) < 0)
		log_warnx("event=release_boards_unreadable release=%lld error=\"%s\"", (long long)r->id,
		          err.msg);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:o, s:I}", "board", apijson_text(rows[i].board),
		                                     "group", apijson_text(rows[i].group), "since_unix_ms",
		                                     (json_int_t)rows[i].since_ms));
	release_board_rows_free(rows, n);
	return arr;
}

static json_t *release_api_json(struct srv *srv, const struct release_row *r, int with_files)
{
	json_t *o = json_object(), *m = NULL; /* owned */

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "repo", json_string(r->repo_name));
	json_object_set_new(o, "version", json_string(r->version));
	json_object_set_new(o, "commit", json_string(r->commit_sha));
	json_object_set_new(o, "pipeline_id", json_integer(r->pipeline_id));
	json_object_set_new(o, "created_unix_ms", json_integer(r->created_ms));
	json_object_set_new(o, "signed", json_boolean(r->signature != NULL));
	json_object_set_new(o, "key", r->keynum ? json_string(r->keynum) : json_null());
	json_object_set_new(o, "deployed_to", release_api_deployed_to(srv, r));
	if (with_files) {
		json_t *files = NULL; /* borrowed from m */
		if (r->manifest != NULL && (m = json_loads(r->manifest, 0, NULL)) != NULL)
			files = json_object_get(m, "files");
		json_object_set_new(o, "files", files ? json_incref(files) : json_array());
	}
	json_decref(m);
	return o;
}

static int release_api_list(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct release_row *rows = NULL;
	size_t n = 0;
	int64_t limit;
	json_t *arr;

	if (http_query_i64(req, "limit", 50, 1, 200, &limit, err) < 0)
		return -1;
	if (store_release_list(srv->store, http_query(req, "repo"), (int)limit, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, release_api_json(srv, &rows[i], 1));
	release_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "releases", arr);
	return 0;
}

/* rest = "REPO/VERSION[/SUB]": split in place. */
static int release_api_split(char *rest, char **repo, char **version, char **sub, struct err *err)
{
	char *a = strchr(rest, '/'), *b;

	if (a == NULL)
		return err_set(err, ERR_NOTFOUND, "a release is /api/v1/releases/REPO/VERSION");
	*a = '\0';
	*repo = rest;
	*version = a + 1;
	b = strchr(a + 1, '/');
	*sub = NULL;
	if (b != NULL) {
		*b = '\0';
		*sub = b + 1;
	}
	if (**version == '\0')
		return err_set(err, ERR_NOTFOUND, "a release is /api/v1/releases/REPO/VERSION");
	return 0;
}

static int release_api_key_text(struct srv *srv, const char *keynum, char **out, struct err *err)
{
	struct release_key_row *keys = NULL;
	size_t n = 0;

	if (store_release_key_list(srv->store, &keys, &n, err) < 0)
		return -1;
	*out = NULL;
	for (size_t i = 0; i < n && *out == NULL; i++)
		if (strcmp(keys[i].keynum, keynum) == 0)
			*out = xstrdup(keys[i].pubkey);
	release_key_rows_free(keys, n);
	if (*out == NULL)
		return err_set(err, ERR_NOTFOUND, "release key %s is not known", keynum);
	return 0;
}

static void release_api_text(struct http_answer *ans, char *text, const char *type)
{
	ans->raw = text;
	ans->raw_len = strlen(text);
	ans->content_type = type;
}

static int release_api_file(struct srv *srv, const struct release_row *r, const char *path,
                            struct http_answer *ans, struct err *err)
{
	char sha[65], *blob = NULL;
	int64_t size;
	struct stat sb;
	int fd;

	if (release_manifest_file(r->manifest, path, sha, &size, err) < 0)
		return -1;
	blob = blob_path(srv->blob_dir, sha);
	if ((fd = open(blob, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		err_errno(err, "blob %s of %s is missing", sha, path);
		if (fd >= 0)
			close(fd);
		free(blob);
		return -1;
	}
	free(blob);
	ans->fd = fd;
	ans->fd_size = (uint64_t)sb.st_size;
	ans->content_type = "application/octet-stream";
	http_answer_header(ans, "X-Anvil-Sha256", sha);
	return 0;
}

static int release_api_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return release_api_answer(srv, req->rest, ans, err);
}

int release_api_answer(struct srv *srv, char *rest, struct http_answer *ans, struct err *err)
{
	struct release_row r = {0};
	char *repo = NULL, *version = NULL, *sub = NULL, *text = NULL;
	int rc = -1;

	if (release_api_split(rest, &repo, &version, &sub, err) < 0)
		return -1;
	if (store_release_get(srv->store, 0, repo, version, &r, err) < 0) {
		if (err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "no release %s of %s", version, repo);
		return -1;
	}
	if (sub == NULL) {
		ans->json = release_api_json(srv, &r, 1);
		rc = 0;
		goto out;
	}
	if (r.signature == NULL) {
		err_set(err, ERR_CONFLICT, "release %s of %s is not signed yet", version, repo);
		goto out;
	}
	if (strcmp(sub, "manifest.json") == 0) {
		release_api_text(ans, xstrdup(r.manifest), "application/json");
	} else if (strcmp(sub, "manifest.json.sig") == 0) {
		release_api_text(ans, xstrdup(r.signature), "text/plain; charset=utf-8");
	} else if (strcmp(sub, "SHA256SUMS") == 0) {
		if (release_sha256sums(r.manifest, &text, err) < 0)
			goto out;
		release_api_text(ans, text, "text/plain; charset=utf-8");
	} else if (strcmp(sub, "anvil-release.pub") == 0) {
		if (release_api_key_text(srv, r.keynum, &text, err) < 0)
			goto out;
		release_api_text(ans, text, "text/plain; charset=utf-8");
	} else if (strncmp(sub, "files/", 6) == 0) {
		if (release_api_file(srv, &r, sub + 6, ans, err) < 0)
			goto out;
	} else {
		err_set(err, ERR_NOTFOUND,
		        "a release has manifest.json, manifest.json.sig, SHA256SUMS, "
		        "anvil-release.pub and files/TARGET/NAME");
		goto out;
	}
	rc = 0;
out:
	release_row_release(&r);
	return rc;
}

static int release_api_keys(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct release_key_row *keys = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (store_release_key_list(srv->store, &keys, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:I, s:o, s:b}", "keynum", keys[i].keynum, "public_key",
		                   keys[i].pubkey, "created_unix_ms", (json_int_t)keys[i].created_ms,
		                   "retired_unix_ms",
		                   keys[i].retired_ms ? json_integer(keys[i].retired_ms) : json_null(),
		                   "current", keys[i].retired_ms == 0));
	release_key_rows_free(keys, n);
	ans->json = json_pack("{s:o}", "keys", arr);
	return 0;
}

static int release_api_rotate(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	char hex[17];

	(void)req;
	if (release_rotate_key(srv->release, hex, err) < 0)
		return -1;
	ans->status = 201;
	ans->json = json_pack("{s:s}", "keynum", hex);
	return 0;
}

/* POST /api/v1/releases {"version", "pipeline", "message"}: tags the
 * pipeline's commit and pushes the tag; the tag pipeline then makes the
 * release. */
static int release_api_create(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct pipeline_row p = {0};
	struct repo_cfg repo = {0};
	struct release_git_creds creds = {0};
	struct strv names = STRV_INIT, values = STRV_INIT;
	const char *version, *message;
	json_t *pv = json_object_get(req->json, "pipeline"); /* borrowed */
	char *mirror = NULL, *pattern = NULL, *ref = NULL, *delivery = NULL, *msg = NULL;
	int64_t tag_pid = 0;
	int created = 0, existed = 0, rc = -1, git_rc;
	struct err perr = {0};

	if (apijson_str(req->json, "version", 1, 100, &version, err) < 0 ||
	    apijson_str(req->json, "message", 0, 4000, &message, err) < 0)
		return -1;
	if (!json_is_integer(pv) || json_integer_value(pv) <= 0)
		return err_set(err, ERR_INVAL, "field 'pipeline' must be a pipeline id");
	if (!release_version_ok(version))
		return err_set(err, ERR_INVAL,
		               "'%s' cannot be a tag name (printable, no '/', spaces, '..', ~^:?*[\\)",
		               version);
	if (store_pipeline_get(srv->store, (int64_t)json_integer_value(pv), &p, err) < 0)
		return -1;
	if (p.state != JOB_SUCCESS) {
		err_set(err, ERR_CONFLICT,
		        "pipeline %lld is %s: only a pipeline that succeeded can be released",
		        (long long)p.id, jobstate_name(p.state));
		goto out;
	}
	if (store_repo_cfg_get(srv->store, p.repo_name, &repo, err) < 0 ||
	    store_release_pattern_get(srv->store, p.repo_name, &pattern, err) < 0 ||
	    store_secret_list(srv->store, p.repo_name, 0, &names, &values, err) < 0)
		goto out;
	release_git_creds_pick(&creds, &names, &values);
	if (creds.password == NULL && repo.status_token[0] != '\0')
		creds.password = repo.status_token;
	creds.forge = repo.forge;
	if (fnmatch(pattern, version, 0) != 0) {
		err_set(err, ERR_INVAL, "tag %s does not match the release pattern '%s' of %s", version,
		        pattern, p.repo_name);
		goto out;
	}
	mirror = xasprintf("%s/%lld.git", srv->mirror_dir, (long long)p.repo_id);
	msg = message && message[0] ? xasprintf("%s\n", message) : xasprintf("Release %s\n", version);
	pthread_mutex_lock(&srv->git_mu);
	git_rc =
	    gitops_tag_push(srv->git, mirror, repo.url, &creds, version, p.commit_sha, msg, &created, err);
	pthread_mutex_unlock(&srv->git_mu);
	if (git_rc < 0)
		goto out;
	log_info("event=release_tag repo=%s tag=%s commit=%s created=%d", p.repo_name, version, p.commit_sha,
	         created);
	ref = xasprintf("refs/tags/%s", version);
	/* libgit2 pushes to a local repository without running its hooks, so
	 * the push hook cannot start the tag pipeline: start it here, once
	 * (the delivery id makes a repeated create a no-op). Remote forges
	 * send their webhook as for any pushed tag. */
	if (release_git_url_is_local(repo.url)) {
		struct pipeline_trigger t = {0};
		delivery = xasprintf("release:%s:%s:%s", p.repo_name, version, p.commit_sha);
		t.repo = p.repo_name;
		t.url = repo.url;
		t.ref = ref;
		t.commit = p.commit_sha;
		t.event = "tag";
		t.delivery = delivery;
		if (pipeline_start(srv, &t, &tag_pid, &existed, &perr) < 0)
			log_warnx("event=release_tag_pipeline_failed repo=%s tag=%s error=\"%s\"",
			          p.repo_name, version, perr.msg);
	}
	ans->status = created ? 201 : 200;
	ans->json = json_pack("{s:s, s:s, s:s, s:b, s:o}", "repo", p.repo_name, "version", version, "commit",
	                      p.commit_sha, "created", created, "tag_pipeline_id",
	                      tag_pid > 0 ? json_integer(tag_pid) : json_null());
	rc = 0;
out:
	pipeline_row_release(&p);
	repo_cfg_release(&repo);
	strv_release(&names);
	strv_release(&values);
	free(mirror);
	free(pattern);
	free(ref);
	free(delivery);
	free(msg);
	return rc;
}

int release_api_is_pattern_path(const char *rest)
{
	size_t n = strlen(rest), k = strlen(RELEASE_API_PATTERN_SUFFIX);

	return n > k && strcmp(rest + n - k, RELEASE_API_PATTERN_SUFFIX) == 0 &&
	       memchr(rest, '/', n - k) == NULL;
}

int release_api_pattern(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	char *repo = xstrndup(req->rest, strlen(req->rest) - strlen(RELEASE_API_PATTERN_SUFFIX)),
	     *pattern = NULL;
	const char *in = NULL;
	int rc = -1;

	if (req->json != NULL) {
		if (apijson_str(req->json, "pattern", 1, 100, &in, err) < 0)
			goto out;
		if (!release_pattern_ok(in)) {
			err_set(err, ERR_INVAL,
			        "a release pattern is a glob of 1..100 printable characters, no spaces");
			goto out;
		}
		if (store_release_pattern_set(srv->store, repo, in, err) < 0)
			goto out;
		log_info("event=release_pattern_set repo=%s pattern=\"%s\"", repo, in);
	}
	if (store_release_pattern_get(srv->store, repo, &pattern, err) < 0)
		goto out;
	ans->json = json_pack("{s:s, s:s}", "repo", repo, "pattern", pattern);
	rc = 0;
out:
	free(repo);
	free(pattern);
	return rc;
}

const struct http_route release_api_routes[] = {
    {"GET", "/api/v1/releases", AUTH_READ, BODY_NONE, NULL, release_api_list},
    {"POST", "/api/v1/releases", AUTH_ADMIN, BODY_JSON, NULL, release_api_create},
    {"GET", "/api/v1/releases/*", AUTH_READ, BODY_NONE, NULL, release_api_get},
    {"GET", "/api/v1/release-keys", AUTH_READ, BODY_NONE, NULL, release_api_keys},
    {"POST", "/api/v1/release-keys/rotate", AUTH_ADMIN, BODY_NONE, NULL, release_api_rotate},
};
const size_t release_api_routes_count = sizeof(release_api_routes) / sizeof(release_api_routes[0]);
