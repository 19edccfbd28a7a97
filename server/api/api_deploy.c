#include "server/api/api_deploy.h"
#include "server/api/apijson.h"
#include "common/log.h"
#include "server/sched/pipeline.h"
#include "server/sched/deployplan.h"
#include "server/release/release.h"
#include "server/srv.h"
#include "deploy/ssh.h"

#include <stdlib.h>
#include <string.h>

#define API_DEPLOY_MAX_KEY_BYTES (16 * 1024)
#define API_DEPLOY_MAX_OUTPUT    (64 * 1024)
/* A host key scan gives up after this (connect and key exchange each). */
#define API_DEPLOY_KEYSCAN_TIMEOUT_MS 10000

/* ---- helpers ---- */

/* "k=v,k=v" → ["k=v", "k=v"]. */
static json_t *api_deploy_labels_json(const char *csv)
{
	json_t *a = json_array();
	const char *p = csv ? csv : "";

	while (*p) {
		size_t n = strcspn(p, ",");
		char *l = xstrndup(p, n);
		if (n > 0)
			json_array_append_new(a, apijson_text(l));
		free(l);
		p += n;
		if (*p == ',')
			p++;
	}
	return a;
}

/* ---- claim ---- */

/* "aarch64" → "aarch64", "armv7l" → "armv7", "x86_64" → "x86_64": the first
 * component of the triples that build for a board of that `uname -m`. */
static int api_deploy_target_fits(const char *triple, const char *arch)
{
	size_t n = strcspn(triple, "-");
	const char *a = strcmp(arch, "armv7l") == 0 || strcmp(arch, "armhf") == 0 ? "armv7" : arch;

	if (strcmp(a, "x86_64") == 0 && strcmp(triple, "host") == 0)
		return 1;
	return strlen(a) == n && strncmp(triple, a, n) == 0;
}

/* The successful build job whose artifacts go to the boards. */
static int api_deploy_pick_build(struct srv *srv, const struct job_row *j, const char *target,
                                 const char *arch, int64_t *job_out, char **target_out, struct err *err)
{
	struct job_row *jobs = NULL;
	size_t n = 0;

	*job_out = 0;
	if (store_pipeline_jobs(srv->store, j->pipeline_id, &jobs, &n, err) < 0)
		return -1;
	for (size_t i = n; i-- > 0 && *job_out == 0;) {
		if (strcmp(jobs[i].kind, "build") != 0 || jobs[i].state != JOB_SUCCESS)
			continue;
		if (target ? strcmp(jobs[i].target, target) == 0
		           : api_deploy_target_fits(jobs[i].target, arch)) {
			*job_out = jobs[i].id;
			*target_out = xstrdup(jobs[i].target);
		}
	}
	job_rows_free(jobs, n);
	if (*job_out == 0)
		return err_set(err, ERR_NOTFOUND, "pipeline %lld has no successful build job for %s %s",
		               (long long)j->pipeline_id, target ? "target" : "arch", target ? target : arch);
	return 0;
}

/* The release the job's own pipeline recorded (a tag pipeline whose builds
 * succeeded): 1 and *out filled (the caller releases it), or 0 when the
 * pipeline records none. Its deploy jobs deploy that signed release. */
static int api_deploy_own_release(struct srv *srv, const struct job_row *j, struct release_row *out,
                                  struct err *err)
{
	struct err gerr = {0};

	if (j->ref == NULL || strncmp(j->ref, "refs/tags/", 10) != 0 || j->ref[10] == '\0')
		return 0;
	if (store_release_get(srv->store, 0, j->repo_name, j->ref + 10, out, &gerr) < 0) {
		if (gerr.code == ERR_NOTFOUND)
			return 0;
		*err = gerr;
		return -1;
	}
	if (out->pipeline_id != j->pipeline_id) {
		release_row_release(out);
		return 0;
	}
	return 1;
}

/* A deploy of a signed release (version of repo): the release id on the
 * boards is the version, and the claim carries the manifest, its signature
 * and the public key of the signature's keynum, for the agent and the board
 * to check before the switch. */
static int api_deploy_signed(struct srv *srv, const char *repo, const char *version, json_t *dep,
                             struct err *err)
{
	struct release_row r = {0};
	struct release_key_row *keys = NULL;
	const char *pub = NULL;
	size_t n = 0;
	int rc = -1;

	if (store_release_get(srv->store, 0, repo, version, &r, err) < 0)
		goto out;
	if (r.signature == NULL || r.manifest == NULL || r.keynum == NULL) {
		err_set(err, ERR_CONFLICT, "release %s of %s is not signed yet", r.version, r.repo_name);
		goto out;
	}
	if (store_release_key_list(srv->store, &keys, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n && pub == NULL; i++)
		if (strcmp(keys[i].keynum, r.keynum) == 0)
			pub = keys[i].pubkey;
	if (pub == NULL) {
		err_set(err, ERR_NOTFOUND, "release key %s is not known", r.keynum);
		goto out;
	}
	json_object_set_new(dep, "release", json_string(r.version));
	json_object_set_new(dep, "manifest", json_string(r.manifest));
	json_object_set_new(dep, "signature", json_string(r.signature));
	json_object_set_new(dep, "pubkey", json_string(pub));
	rc = 0;
out:
	release_key_rows_free(keys, n);
	release_row_release(&r);
	return rc;
}

static int api_deploy_fill(struct srv *srv, const struct job_row *j, json_t *dep, struct err *err)
{
	const char *action = json_string_value(json_object_get(dep, "action"));
	const char *group = j->target;
	const char *target = json_string_value(json_object_get(dep, "target"));
	json_t *files = json_object_get(dep, "files");       /* borrowed */
	json_t *sr = json_object_get(dep, "signed_release"); /* borrowed */
	json_t *boards = json_array(), *arts = json_array(), *done = json_array(), *v;
	struct release_row own = {0};
	struct board_row *b = NULL;
	struct deploy_board_row *rows = NULL;
	size_t nb = 0, nr = 0, i;
	int64_t build_id = 0;
	char *build_target = NULL, release[64];
	int rc = -1;

	json_object_set_new(dep, "boards", boards);
	json_object_set_new(dep, "artifacts", arts);
	json_object_set_new(dep, "done", done);
	if (store_board_list(srv->store, group, 1, &b, &nb, err) < 0)
		goto out;
	if (nb == 0) {
		err_set(err, ERR_NOTFOUND, "group %s has no boards", group);
		goto out;
	}
	for (i = 0; i < nb; i++) {
		char *prev = NULL;
		struct err perr = {0};
		json_array_append_new(
		    boards,
		    json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:o}", "name", b[i].name, "host",
		              b[i].host, "port", b[i].port, "user", b[i].user, "arch", b[i].arch, "host_key",
		              b[i].host_key, "private_key", b[i].private_key ? b[i].private_key : "",
		              "current",
		              b[i].current_release ? json_string(b[i].current_release) : json_null()));
		/* A rollback goes back to the last release the board was healthy on. */
		if (action != NULL && strcmp(action, "rollback") == 0 &&
		    store_board_previous_release(srv->store, b[i].name, b[i].current_release, &prev, &perr) ==
		        0)
			json_object_set_new(json_array_get(boards, i), "rollback_to", json_string(prev));
		free(prev);
	}
	if (store_deploy_boards(srv->store, j->id, &rows, &nr, err) < 0)
		goto out;
	for (i = 0; i < nr; i++)
		json_array_append_new(done, json_pack("{s:s, s:s, s:s}", "board", rows[i].board, "state",
		                                      rows[i].state, "current", rows[i].current));
	if (action != NULL && strcmp(action, "rollback") == 0) {
		rc = 0;
		goto out;
	}
	snprintf(release, sizeof(release), "p%lld-%.8s", (long long)j->pipeline_id, j->commit_sha);
	json_object_set_new(dep, "release", json_string(release));
	if (json_is_object(sr)) {
		if (api_deploy_signed(srv, json_string_value(json_object_get(sr, "repo")),
		                      json_string_value(json_object_get(sr, "version")), dep, err) < 0)
			goto out;
	} else if (strcmp(j->name, "deploy") == 0) {
		/* A tag pipeline's own deploy entry (or `anvil deploy PIPELINE`
		 * of it) deploys its signed release, checked like --release:
		 * jobstate_claim held the job back until the signature was
		 * there. */
		int has = api_deploy_own_release(srv, j, &own, err);
		if (has < 0 || (has == 1 && api_deploy_signed(srv, own.repo_name, own.version, dep, err) < 0))
			goto out;
	}
	if (api_deploy_pick_build(srv, j, target, b[0].arch, &build_id, &build_target, err) < 0)
		goto out;
	json_object_set_new(dep, "build_job", json_integer(build_id));
	json_object_set_new(dep, "build_target", json_string(build_target));
	json_array_foreach(files, i, v)
	{
		struct artifact_row a = {0};
		char msha[65];
		int64_t msize;
		char *mpath = NULL;
		if (store_artifact_get(srv->store, build_id, json_string_value(v), &a, err) < 0) {
			err_set(err, ERR_NOTFOUND, "build job %lld (%s) has no artifact '%s'",
			        (long long)build_id, build_target, json_string_value(v));
			goto out;
		}
		/* A signed release's files must be the ones its manifest lists
		 * (the agent checks again, against the signature). */
		mpath = xasprintf("%s/%s", build_target, a.name);
		if (json_is_string(json_object_get(dep, "manifest")) &&
		    (release_manifest_file(json_string_value(json_object_get(dep, "manifest")), mpath, msha,
		                           &msize, err) < 0 ||
		     strcmp(msha, a.sha256) != 0)) {
			err_set(err, ERR_CONFLICT,
			        "artifact %s of build job %lld is not in the signed manifest", mpath,
			        (long long)build_id);
			free(mpath);
			free(a.name);
			goto out;
		}
		free(mpath);
		json_array_append_new(arts, json_pack("{s:s, s:s, s:I, s:I, s:i}", "name", a.name, "sha256",
		                                      a.sha256, "size", (json_int_t)a.size, "job_id",
		                                      (json_int_t)build_id, "mode", a.mode));
		free(a.name);
	}
	rc = 0;
out:
	free(build_target);
	release_row_release(&own);
	deploy_board_rows_free(rows, nr);
	board_rows_free(b, nb);
	return rc;
}

void api_deploy_claim_spec(struct srv *srv, const struct job_row *j, json_t *spec)
{
	json_t *dep = json_object_get(spec, "deploy"); /* borrowed */
	struct err err = {0};

	json_object_set_new(spec, "kind", json_string("deploy"));
	if (!json_is_object(dep)) {
		dep = json_object();
		json_object_set_new(spec, "deploy", dep);
		json_object_set_new(dep, "error", json_string("the deploy job has no deploy spec"));
		return;
	}
	if (api_deploy_fill(srv, j, dep, &err) < 0) {
		log_warnx("event=deploy_spec job=%lld error=\"%s\"", (long long)j->id, err.msg);
		json_object_set_new(dep, "error", apijson_text(err.msg));
	}
}

/* ---- reads ---- */

static json_t *api_deploy_board_json(const struct board_row *b)
{
	return json_pack("{s:I, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)b->id,
	                 "name", apijson_text(b->name), "host", apijson_text(b->host), "port", b->port,
	                 "user", apijson_text(b->user), "arch", apijson_text(b->arch), "group",
	                 apijson_text(b->group), "labels", api_deploy_labels_json(b->labels), "host_key",
	                 apijson_text(b->host_key), "current_release",
	                 b->current_release ? apijson_text(b->current_release) : json_null(),
	                 "created_unix_ms", apijson_ms(b->created_ms));
}

static int api_deploy_boards_list(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                  struct err *err)
{
	struct board_row *b = NULL;
	size_t n = 0;
	json_t *arr;

	if (store_board_list(srv->store, http_query(req, "group"), 0, &b, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_deploy_board_json(&b[i]));
	board_rows_free(b, n);
	ans->json = json_pack("{s:o}", "boards", arr);
	return 0;
}

static json_t *api_deploy_job_json(struct srv *srv, const struct deployment_row *d)
{
	const struct job_row *j = &d->job;
	json_t *spec = json_loads(j->spec, 0, NULL);   /* owned */
	json_t *dep = json_object_get(spec, "deploy"); /* borrowed */
	json_t *o;
	struct release_row own = {0};
	struct err err = {0};
	char release[128];
	int is_signed = json_is_object(json_object_get(dep, "signed_release"));

	snprintf(release, sizeof(release), "p%lld-%.8s", (long long)j->pipeline_id, j->commit_sha);
	if (json_is_string(json_object_get(json_object_get(dep, "signed_release"), "version")))
		snprintf(
		    release, sizeof(release), "%s",
		    json_string_value(json_object_get(json_object_get(dep, "signed_release"), "version")));
	else if (strcmp(j->name, "deploy") == 0 && api_deploy_own_release(srv, j, &own, &err) == 1) {
		snprintf(release, sizeof(release), "%s", own.version);
		is_signed = 1;
	}
	release_row_release(&own);
	o = json_pack(
	    "{s:I, s:I, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "id",
	    (json_int_t)j->id, "pipeline_id", (json_int_t)j->pipeline_id, "action", apijson_text(j->name),
	    "group", apijson_text(j->target), "state", jobstate_name(j->state), "repo",
	    apijson_text(j->repo_name), "ref", apijson_text(j->ref), "commit", apijson_text(j->commit_sha),
	    "release", strcmp(j->name, "deploy") == 0 ? json_string(release) : json_null(), "attempt",
	    j->attempt, "agent", j->agent_name ? apijson_text(j->agent_name) : json_null(), "message",
	    apijson_text(j->message), "created_unix_ms", apijson_ms(j->created_ms), "started_unix_ms",
	    apijson_ms(j->started_ms), "finished_unix_ms", apijson_ms(j->finished_ms));
	json_object_set_new(o, "install",
	                    json_is_string(json_object_get(dep, "install"))
	                        ? json_incref(json_object_get(dep, "install"))
	                        : json_null());
	json_object_set_new(o, "signed", json_boolean(is_signed));
	json_object_set_new(o, "counts",
	                    json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "boards", d->n_boards, "healthy",
	                              d->n_healthy, "failed", d->n_failed, "refused", d->n_refused,
	                              "rolled_back", d->n_rolled_back, "skipped", d->n_skipped));
	json_decref(spec);
	return o;
}

static int api_deploy_list(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct deployment_row *rows = NULL;
	size_t n = 0;
	int64_t limit;
	json_t *arr;

	if (http_query_i64(req, "limit", 50, 1, 200, &limit, err) < 0)
		return -1;
	if (store_deployment_list(srv->store, http_query(req, "group"), (int)limit, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_deploy_job_json(srv, &rows[i]));
	deployment_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "deployments", arr);
	return 0;
}

/* One deployment with its boards. */
static int api_deploy_full(struct srv *srv, int64_t id, json_t **out, struct err *err)
{
	struct deployment_row d = {0};
	struct deploy_board_row *rows = NULL;
	size_t n = 0;
	json_t *o, *arr;

	if (store_job_get(srv->store, id, &d.job, err) < 0)
		return -1;
	if (strcmp(d.job.kind, "deploy") != 0) {
		job_row_release(&d.job);
		return err_set(err, ERR_NOTFOUND, "job %lld is not a deploy job", (long long)id);
	}
	if (store_deploy_boards(srv->store, id, &rows, &n, err) < 0) {
		job_row_release(&d.job);
		return -1;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct deploy_board_row *r = &rows[i];
		d.n_boards++;
		d.n_healthy += strcmp(r->state, "healthy") == 0;
		d.n_failed += strcmp(r->state, "failed") == 0;
		d.n_refused += strcmp(r->state, "refused") == 0;
		d.n_rolled_back += strcmp(r->state, "rolled_back") == 0;
		d.n_skipped += strcmp(r->state, "skipped") == 0;
		json_array_append_new(
		    arr, json_pack("{s:o, s:i, s:o, s:o, s:o, s:s, s:o, s:I, s:i, s:i, s:o, s:o, s:o, s:o, "
		                   "s:o, s:o, s:I}",
		                   "board", apijson_text(r->board), "attempt", r->attempt, "release",
		                   apijson_text(r->release), "previous",
		                   r->previous[0] ? apijson_text(r->previous) : json_null(), "current",
		                   r->current[0] ? apijson_text(r->current) : json_null(), "state", r->state,
		                   "message", apijson_text(r->message), "bytes_sent",
		                   (json_int_t)r->bytes_sent, "files_uploaded", r->files_uploaded,
		                   "files_skipped", r->files_skipped, "restart_exit",
		                   r->restart_exit >= 0 ? json_integer(r->restart_exit) : json_null(),
		                   "restart_output", apijson_text(r->restart_output), "health_exit",
		                   r->health_exit >= 0 ? json_integer(r->health_exit) : json_null(),
		                   "health_output", apijson_text(r->health_output), "started_unix_ms",
		                   apijson_ms(r->started_ms), "updated_unix_ms", apijson_ms(r->updated_ms),
		                   "duration_ms", (json_int_t)r->duration_ms));
	}
	o = api_deploy_job_json(srv, &d);
	json_object_set_new(o, "boards", arr);
	deploy_board_rows_free(rows, n);
	job_row_release(&d.job);
	*out = o;
	return 0;
}

static int api_deploy_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return api_deploy_full(srv, req->id, &ans->json, err);
}

/* ---- admin ---- */

static int api_deploy_host_ok(const char *s)
{
	if (s[0] == '\0' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '-' || *s == ':' || *s == '_'))
			return 0;
	return 1;
}

/* The host key a board's sshd offers, as `board add --trust` pins it: the
 * scan runs here so the CLI need not link an SSH library. Admin only (it
 * connects wherever it is told); blocks only its own connection's thread. */
static int api_deploy_keyscan(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	const char *host;
	json_int_t port;
	char fp[SSH_FP_MAX];
	char *line = NULL;

	(void)srv;
	if (apijson_str(req->json, "host", 1, 255, &host, err) < 0 ||
	    apijson_int(req->json, "port", 0, 22, 1, 65535, &port, err) < 0)
		return -1;
	if (!api_deploy_host_ok(host))
		return err_set(err, ERR_INVAL, "host must be an address or a host name");
	if (ssh_keyscan(host, (int)port, API_DEPLOY_KEYSCAN_TIMEOUT_MS, fp, &line, err) < 0)
		return -1;
	ans->json = json_pack("{s:s, s:s}", "host_key", fp, "key", line);
	free(line);
	return 0;
}

static int api_deploy_board_add(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                struct err *err)
{
	struct board_row b = {0};
	struct buf labels = BUF_INIT;
	json_t *jl = json_object_get(req->json, "labels"), *v; /* borrowed */
	const char *name, *host, *user, *arch, *group, *host_key, *key;
	json_int_t port;
	int64_t id;
	size_t i;
	int rc = -1;

	if (apijson_str(req->json, "name", 1, 100, &name, err) < 0 ||
	    apijson_str(req->json, "host", 1, 255, &host, err) < 0 ||
	    apijson_int(req->json, "port", 0, 22, 1, 65535, &port, err) < 0 ||
	    apijson_str(req->json, "user", 0, 64, &user, err) < 0 ||
	    apijson_str(req->json, "arch", 1, 32, &arch, err) < 0 ||
	    apijson_str(req->json, "group", 1, 100, &group, err) < 0 ||
	    apijson_str(req->json, "host_key", 1, 8192, &host_key, err) < 0 ||
	    apijson_str(req->json, "private_key", 1, API_DEPLOY_MAX_KEY_BYTES, &key, err) < 0)
		return -1;
	if (!pipeline_name_ok(name, 100) || !pipeline_name_ok(group, 100))
		return err_set(err, ERR_INVAL, "board and group names must be [A-Za-z0-9._-]+");
	if (!api_deploy_host_ok(host))
		return err_set(err, ERR_INVAL, "host must be an address or a host name");
	if (user && !pipeline_name_ok(user, 64))
		return err_set(err, ERR_INVAL, "user must be [A-Za-z0-9._-]+");
	if (!pipeline_name_ok(arch, 32))
		return err_set(err, ERR_INVAL,
		               "arch must be what `uname -m` prints (aarch64, armv7l, x86_64)");
	if (!pipeline_text_ok(host_key) ||
	    (strncmp(host_key, "SHA256:", 7) != 0 && strstr(host_key, "ssh-") == NULL &&
	     strstr(host_key, "ecdsa-") == NULL))
		return err_set(err, ERR_INVAL,
		               "host_key must be a SHA256: fingerprint or an OpenSSH public key line");
	if (strstr(key, "PRIVATE KEY-----") == NULL)
		return err_set(err, ERR_INVAL, "private_key must be a PEM or OpenSSH private key");
	if (jl != NULL && !json_is_array(jl))
		return err_set(err, ERR_INVAL, "field 'labels' must be an array of k=v strings");
	json_array_foreach(jl, i, v)
	{
		const char *l = json_string_value(v);
		if (l == NULL || strchr(l, '=') == NULL || strchr(l, ',') || l[0] == '=' || strlen(l) > 128 ||
		    !pipeline_text_ok(l)) {
			buf_release(&labels);
			return err_set(err, ERR_INVAL, "label %zu must be k=v without commas", i);
		}
		buf_appendf(&labels, "%s%s", labels.len ? "," : "", l);
	}
	b.name = (char *)name;
	b.host = (char *)host;
	b.port = (int)port;
	b.user = (char *)(user ? user : "root");
	b.arch = (char *)arch;
	b.group = (char *)group;
	b.labels = labels.data ? labels.data : "";
	b.host_key = (char *)host_key;
	b.private_key = (char *)key;
	if (store_board_add(srv->store, &b, srv_now_ms(), &id, err) < 0)
		goto out;
	log_info("event=board_added board=%s group=%s host=%s:%d", name, group, host, (int)port);
	b.id = id;
	b.private_key = NULL;
	b.created_ms = srv_now_ms();
	ans->status = 201;
	ans->json = api_deploy_board_json(&b);
	rc = 0;
out:
	buf_release(&labels);
	return rc;
}

static int api_deploy_board_rm(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	if (store_board_delete(srv->store, req->rest, err) < 0)
		return -1;
	log_info("event=board_removed board=%s", req->rest);
	ans->json = json_pack("{s:s}", "deleted", req->rest);
	return 0;
}

/* The signed release a deploy names: repo when given, else the one
 * repository with a release of that version. Its pipeline goes to
 * *pipeline_out, its repository's name to *repo_out (caller frees). */
static int api_deploy_find_release(struct srv *srv, const char *repo, const char *version,
                                   json_int_t *pipeline_out, char **repo_out, struct err *err)
{
	struct release_row *rows = NULL, r = {0};
	size_t n = 0, found = 0;
	int rc = -1;

	if (strspn(version, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	    strlen(version))
		return err_set(err, ERR_INVAL,
		               "release %s cannot name a directory on the boards ([A-Za-z0-9._-]+)", version);
	if (repo == NULL) {
		if (store_release_list(srv->store, NULL, 1000, &rows, &n, err) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (strcmp(rows[i].version, version) == 0) {
				found++;
				repo = rows[i].repo_name;
			}
		if (found > 1) {
			err_set(err, ERR_CONFLICT, "several repositories have a release %s: give 'repo'",
			        version);
			goto out;
		}
		if (found == 0) {
			err_set(err, ERR_NOTFOUND, "no release %s", version);
			goto out;
		}
	}
	if (store_release_get(srv->store, 0, repo, version, &r, err) < 0) {
		if (err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "no release %s of %s", version, repo);
		goto out;
	}
	if (r.signature == NULL) {
		err_set(err, ERR_CONFLICT, "release %s of %s is not signed yet", version, r.repo_name);
		goto out;
	}
	*pipeline_out = r.pipeline_id;
	*repo_out = xstrdup(r.repo_name);
	rc = 0;
out:
	release_row_release(&r);
	release_rows_free(rows, n);
	return rc;
}

/* spec's deploy object gets "signed_release": {repo, version}; *spec is
 * replaced. */
static int api_deploy_mark_signed(char **spec, const char *repo, const char *version, struct err *err)
{
	json_t *o = json_loads(*spec, 0, NULL); /* owned */
	char *text;

	if (!json_is_object(json_object_get(o, "deploy"))) {
		json_decref(o);
		return err_set(err, ERR_SYS, "deploy spec is not an object");
	}
	json_object_set_new(json_object_get(o, "deploy"), "signed_release",
	                    json_pack("{s:s, s:s}", "repo", repo, "version", version));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return err_set(err, ERR_SYS, "deploy spec: json_dumps failed");
	free(*spec);
	*spec = text;
	return 0;
}

/* A manual deploy: the pipeline's deploy entry for the group, or one made
 * of the body's install/files/restart/health. With "release" (a signed
 * release's version, "repo" optional) the pipeline is the release's tag
 * pipeline and the boards check the signed manifest before switching. */
static int api_deploy_create(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	const char *group, *install, *restart, *health, *target, *release, *repo;
	json_t *files = json_object_get(req->json, "files"); /* borrowed */
	json_int_t pipeline;
	char *spec = NULL, *labels = NULL, *rel_repo = NULL;
	int64_t job_id;
	int rc = -1;

	if (apijson_int(req->json, "pipeline", 0, 0, 1, INT64_MAX, &pipeline, err) < 0 ||
	    apijson_str(req->json, "group", 1, 100, &group, err) < 0 ||
	    apijson_str(req->json, "install", 0, 4096, &install, err) < 0 ||
	    apijson_str(req->json, "restart", 0, 4096, &restart, err) < 0 ||
	    apijson_str(req->json, "health", 0, 4096, &health, err) < 0 ||
	    apijson_str(req->json, "target", 0, 64, &target, err) < 0 ||
	    apijson_str(req->json, "release", 0, 100, &release, err) < 0 ||
	    apijson_str(req->json, "repo", 0, 200, &repo, err) < 0)
		return -1;
	if (release != NULL && pipeline != 0)
		return err_set(err, ERR_INVAL, "give 'pipeline' or 'release', not both");
	if (release != NULL && api_deploy_find_release(srv, repo, release, &pipeline, &rel_repo, err) < 0)
		goto out;
	if (pipeline == 0) {
		err_set(err, ERR_INVAL, "field 'pipeline' or 'release' is required");
		goto out;
	}
	if (!pipeline_name_ok(group, 100)) {
		err_set(err, ERR_INVAL, "group must be [A-Za-z0-9._-]+");
		goto out;
	}
	if (install == NULL) {
		if (store_deploy_plan_get(srv->store, pipeline, group, &spec, &labels, err) < 0)
			goto out;
		free(labels);
		labels = NULL;
	} else {
		struct pipefile_deploy d = {0};
		size_t i;
		json_t *v;
		if (install[0] != '/' || strstr(install, "..") || strchr(install, '\'') ||
		    !pipeline_text_ok(install)) {
			err_set(err, ERR_INVAL, "install must be an absolute directory without '..'");
			goto out;
		}
		if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > 256) {
			err_set(err, ERR_INVAL, "field 'files' must be a non-empty array of artifact names");
			goto out;
		}
		json_array_foreach(files, i, v)
		{
			if (!json_is_string(v) || !pipeline_text_ok(json_string_value(v)) ||
			    json_string_value(v)[0] == '/' || strstr(json_string_value(v), "..")) {
				err_set(err, ERR_INVAL, "files[%zu] must be a relative artifact name", i);
				goto out;
			}
		}
		d.group = (char *)group;
		d.install = (char *)install;
		json_array_foreach(files, i, v) strv_push(&d.files, json_string_value(v));
		d.target = (char *)target;
		d.restart = (char *)restart;
		d.health = (char *)health;
		d.canary = 1;
		spec = deployplan_spec(&d, srv->cfg.job_timeout_s);
		strv_release(&d.files);
		if (spec == NULL) {
			err_set(err, ERR_INVAL, "the deploy fields are not UTF-8");
			goto out;
		}
	}
	if (rel_repo != NULL && api_deploy_mark_signed(&spec, rel_repo, release, err) < 0)
		goto out;
	labels = deployplan_job_labels(srv, group);
	if (jobstate_deploy_create(srv->store, pipeline, "deploy", group, spec, labels,
	                            srv->cfg.max_attempts, srv_now_ms(), &job_id, err) < 0)
		goto out;
	log_info("event=deploy_queued job=%lld pipeline=%lld group=%s release=%s", (long long)job_id,
	         (long long)pipeline, group, release ? release : "-");
	sched_notify(srv->sched, SCHED_JOBS);
	ans->status = 201;
	rc = api_deploy_full(srv, job_id, &ans->json, err);
out:
	free(rel_repo);
	free(spec);
	free(labels);
	return rc;
}

/* Every board of the group back to its previous release: a deploy job named
 * "rollback" in the pipeline of the group's last deploy. */
static int api_deploy_rollback(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	const char *group;
	struct job_row last = {0};
	json_t *spec = NULL, *dep, *ldep; /* spec owned; dep, ldep borrowed */
	char *text = NULL, *labels = NULL;
	int64_t last_id, job_id;
	int rc = -1;

	if (apijson_str(req->json, "group", 1, 100, &group, err) < 0)
		return -1;
	if (!pipeline_name_ok(group, 100))
		return err_set(err, ERR_INVAL, "group must be [A-Za-z0-9._-]+");
	if (store_deploy_last(srv->store, group, &last_id, err) < 0 ||
	    store_job_get(srv->store, last_id, &last, err) < 0)
		goto out;
	spec = json_loads(last.spec, 0, NULL);
	ldep = json_object_get(spec, "deploy");
	if (!json_is_object(ldep)) {
		err_set(err, ERR_SYS, "deploy job %lld has no deploy spec", (long long)last_id);
		goto out;
	}
	dep = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O}", "action", "rollback", "group", group, "install",
	                json_object_get(ldep, "install"), "restart",
	                json_object_get(ldep, "restart") ? json_object_get(ldep, "restart") : json_null(),
	                "health",
	                json_object_get(ldep, "health") ? json_object_get(ldep, "health") : json_null(),
	                "health_timeout_s",
	                json_object_get(ldep, "health_timeout_s") ? json_object_get(ldep, "health_timeout_s")
	                                                          : json_integer(30));
	json_object_set_new(spec, "deploy", dep);
	text = json_dumps(spec, JSON_COMPACT);
	labels = deployplan_job_labels(srv, group);
	if (jobstate_deploy_create(srv->store, last.pipeline_id, "rollback", group, text, labels,
	                            srv->cfg.max_attempts, srv_now_ms(), &job_id, err) < 0)
		goto out;
	log_info("event=rollback_queued job=%lld group=%s", (long long)job_id, group);
	sched_notify(srv->sched, SCHED_JOBS);
	ans->status = 201;
	rc = api_deploy_full(srv, job_id, &ans->json, err);
out:
	free(text);
	free(labels);
	json_decref(spec);
	job_row_release(&last);
	return rc;
}

/* ---- agents ---- */

static const char *const api_deploy_states[] = {"pending",     "uploading", "switching", "healthy", "refused",
                                                "rolled_back", "failed",    "skipped",   NULL};

static int api_deploy_report(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct deploy_board_row r = {0};
	const char *board, *state, *release, *previous, *current, *message, *ro, *ho;
	json_int_t attempt, bytes, up, skip, rexit, hexit, started, dur;
	size_t i;

	if (apijson_int(req->json, "attempt", 0, 0, 1, INT32_MAX, &attempt, err) < 0 ||
	    apijson_str(req->json, "board", 1, 100, &board, err) < 0 ||
	    apijson_str(req->json, "state", 1, 16, &state, err) < 0 ||
	    apijson_str(req->json, "release", 0, 128, &release, err) < 0 ||
	    apijson_str(req->json, "previous", 0, 256, &previous, err) < 0 ||
	    apijson_str(req->json, "current", 0, 256, &current, err) < 0 ||
	    apijson_str(req->json, "message", 0, 1000, &message, err) < 0 ||
	    apijson_str(req->json, "restart_output", 0, API_DEPLOY_MAX_OUTPUT, &ro, err) < 0 ||
	    apijson_str(req->json, "health_output", 0, API_DEPLOY_MAX_OUTPUT, &ho, err) < 0 ||
	    apijson_int(req->json, "bytes_sent", 0, 0, 0, INT64_MAX, &bytes, err) < 0 ||
	    apijson_int(req->json, "files_uploaded", 0, 0, 0, INT32_MAX, &up, err) < 0 ||
	    apijson_int(req->json, "files_skipped", 0, 0, 0, INT32_MAX, &skip, err) < 0 ||
	    apijson_int(req->json, "restart_exit", 0, -1, -1, 255, &rexit, err) < 0 ||
	    apijson_int(req->json, "health_exit", 0, -1, -1, 255, &hexit, err) < 0 ||
	    apijson_int(req->json, "started_unix_ms", 0, 0, 0, INT64_MAX, &started, err) < 0 ||
	    apijson_int(req->json, "duration_ms", 0, 0, 0, INT64_MAX, &dur, err) < 0)
		return -1;
	if (attempt == 0)
		return err_set(err, ERR_INVAL, "field 'attempt' is required");
	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0)
		return -1;
	for (i = 0; api_deploy_states[i] != NULL; i++)
		if (strcmp(state, api_deploy_states[i]) == 0)
			break;
	if (api_deploy_states[i] == NULL)
		return err_set(
		    err, ERR_INVAL,
		    "state must be pending, uploading, switching, healthy, refused, rolled_back, failed or "
		    "skipped");
	r.board = (char *)board;
	r.attempt = (int)attempt;
	r.release = (char *)release;
	r.previous = (char *)previous;
	r.current = (char *)current;
	r.state = (char *)state;
	r.message = (char *)message;
	r.bytes_sent = bytes;
	r.files_uploaded = (int)up;
	r.files_skipped = (int)skip;
	r.restart_exit = (int)rexit;
	r.health_exit = (int)hexit;
	r.restart_output = (char *)ro;
	r.health_output = (char *)ho;
	r.started_ms = started;
	r.duration_ms = dur;
	if (store_deploy_report(srv->store, req->id, &r, srv_now_ms(), err) < 0)
		return -1;
	log_info("event=deploy_board job=%lld board=%s state=%s", (long long)req->id, board, state);
	ans->json = json_pack("{s:b}", "ok", 1);
	return 0;
}

const struct http_route api_deploy_routes[] = {
    {"GET", "/api/v1/boards", AUTH_READ, BODY_NONE, NULL, api_deploy_boards_list},
    {"POST", "/api/v1/boards", AUTH_ADMIN, BODY_JSON, NULL, api_deploy_board_add},
    {"POST", "/api/v1/boards/keyscan", AUTH_ADMIN, BODY_JSON, NULL, api_deploy_keyscan},
    {"DELETE", "/api/v1/boards/*", AUTH_ADMIN, BODY_NONE, NULL, api_deploy_board_rm},
    {"GET", "/api/v1/deployments", AUTH_READ, BODY_NONE, NULL, api_deploy_list},
    {"GET", "/api/v1/deployments/:id", AUTH_READ, BODY_NONE, NULL, api_deploy_get},
    {"POST", "/api/v1/deployments", AUTH_ADMIN, BODY_JSON, NULL, api_deploy_create},
    {"POST", "/api/v1/rollback", AUTH_ADMIN, BODY_JSON, NULL, api_deploy_rollback},
    {"POST", "/api/v1/agents/jobs/:id/deploy", AUTH_AGENT, BODY_JSON, NULL, api_deploy_report},
};
const size_t api_deploy_routes_count = sizeof(api_deploy_routes) / sizeof(api_deploy_routes[0]);
