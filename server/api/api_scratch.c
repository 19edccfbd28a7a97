#include "server/api/api_scratch.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/store/blob.h"
#include "server/sched/pipeline.h"
#include "server/sched/scratch.h"
#include "server/srv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/gitproc/gitops.h"

#define API_SCRATCH_MAX_TARGETS 32

static int api_scratch_name(struct http_req *req, char name[101], struct err *err)
{
	const char *slash = req->rest ? strchr(req->rest, '/') : NULL;
	size_t n = slash ? (size_t)(slash - req->rest) : 0;

	if (slash == NULL || strcmp(slash, "/scratch") != 0 || n == 0 || n > 100)
		return err_set(err, ERR_NOTFOUND, "no such route (POST /api/v1/repos/NAME/scratch)");
	memcpy(name, req->rest, n);
	name[n] = '\0';
	if (!pipeline_name_ok(name, 100))
		return err_set(err, ERR_INVAL,
		               "repo name must be [A-Za-z0-9._-]+, not starting with '.' or '-'");
	return 0;
}

/* A repository NAME registered with another URL (a forge's) is not taken
 * over by a scratch build. */
static int api_scratch_check_repo(struct srv *srv, const char *name, const char *dir, struct err *err)
{
	struct repo_cfg rc = {0};
	struct err nerr = {0};
	int ok;

	if (store_repo_cfg_get(srv->store, name, &rc, &nerr) < 0) {
		if (nerr.code == ERR_NOTFOUND)
			return 0;
		*err = nerr;
		return -1;
	}
	ok = strcmp(rc.url, dir) == 0;
	repo_cfg_release(&rc);
	if (!ok)
		return err_set(
		    err, ERR_CONFLICT,
		    "repository %s is registered with another URL; scratch builds need a name of their own "
		    "(anvil build --repo NAME)",
		    name);
	return 0;
}

static int api_scratch_query(struct http_req *req, const char **sha_out, const char **commit_out,
                             struct err *err)
{
	const char *sha = http_query(req, "sha256"), *commit = http_query(req, "commit");
	const char *targets = http_query(req, "targets");

	if (!crypto_is_sha256_hex(sha))
		return err_set(err, ERR_INVAL, "query parameter sha256 must be 64 lowercase hex characters");
	if (commit == NULL || strlen(commit) != 40 || strspn(commit, "0123456789abcdef") != 40)
		return err_set(err, ERR_INVAL, "query parameter commit must be 40 lowercase hex characters");
	if (targets != NULL && (strlen(targets) > 1000 || !pipeline_text_ok(targets)))
		return err_set(err, ERR_INVAL,
		               "query parameter targets must be a short comma-separated list");
	*sha_out = sha;
	*commit_out = commit;
	return 0;
}

static int api_scratch_begin(struct srv *srv, struct http_req *req, struct err *err)
{
	const char *sha, *commit;
	char name[101], *dir = NULL;
	int rc = -1;

	if (api_scratch_name(req, name, err) < 0 || api_scratch_query(req, &sha, &commit, err) < 0)
		goto out;
	if ((dir = scratch_repo_path(srv, name, err)) == NULL)
		goto out;
	rc = api_scratch_check_repo(srv, name, dir, err);
out:
	free(dir);
	return rc;
}

static int api_scratch_post(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct pipeline_trigger t = {0};
	const char *sha, *commit, *targets_q, *skipped = NULL;
	const char *targets[API_SCRATCH_MAX_TARGETS];
	char name[101], ref[64], *dir = NULL, *blob = NULL, *tlist = NULL, *save = NULL;
	int64_t size = 0, pid = 0;
	int rc = -1, blob_existed, grc, existed = 0;

	if (api_scratch_name(req, name, err) < 0 || api_scratch_query(req, &sha, &commit, err) < 0)
		goto out;
	if ((dir = scratch_repo_path(srv, name, err)) == NULL ||
	    api_scratch_check_repo(srv, name, dir, err) < 0)
		goto out;
	/* The pack is kept only while it is indexed, unless the same bytes were
	 * already stored (as an artifact). */
	blob = blob_path(srv->blob_dir, sha);
	blob_existed = access(blob, F_OK) == 0;
	if (blob_writer_commit(req->blob, sha, &size, err) < 0)
		goto out;
	snprintf(ref, sizeof(ref), SCRATCH_REF_PREFIX "%s", commit);
	pthread_mutex_lock(&srv->git_mu);
	grc = gitops_scratch_index(srv->git, dir, blob, commit, ref, err);
	pthread_mutex_unlock(&srv->git_mu);
	if (!blob_existed)
		unlink(blob);
	if (grc < 0)
		goto out;
	t.repo = name;
	t.url = dir;
	t.ref = ref;
	t.commit = commit;
	t.event = "manual";
	t.skipped_out = &skipped;
	if ((targets_q = http_query(req, "targets")) != NULL && targets_q[0] != '\0') {
		tlist = xstrdup(targets_q);
		for (char *tok = strtok_r(tlist, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
			if (t.n_targets == API_SCRATCH_MAX_TARGETS) {
				err_set(err, ERR_INVAL, "at most %d targets", API_SCRATCH_MAX_TARGETS);
				goto out;
			}
			targets[t.n_targets++] = tok;
		}
		t.targets = targets;
	}
	if (pipeline_start(srv, &t, &pid, &existed, err) < 0)
		goto out;
	log_info("event=scratch_build repo=%s commit=%s pack_bytes=%lld pipeline=%lld", name, commit,
	         (long long)size, (long long)pid);
	ans->status = 201;
	if (existed == PIPELINE_SKIPPED)
		ans->json = json_pack("{s:n, s:s, s:s, s:s}", "pipeline", "commit", commit, "ref", ref,
		                      "ignored", skipped ? skipped : "skipped");
	else
		ans->json =
		    json_pack("{s:I, s:s, s:s}", "pipeline", (json_int_t)pid, "commit", commit, "ref", ref);
	rc = 0;
out:
	free(tlist);
	free(blob);
	free(dir);
	return rc;
}

const struct http_route api_scratch_routes[] = {
    {"POST", "/api/v1/repos/*", AUTH_ADMIN, BODY_BLOB, api_scratch_begin, api_scratch_post},
};
const size_t api_scratch_routes_count = sizeof(api_scratch_routes) / sizeof(api_scratch_routes[0]);
