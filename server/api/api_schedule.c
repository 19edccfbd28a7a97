#include "server/api/api_schedule.h"
#include "common/cron.h"
#include "common/log.h"
#include "server/api/apijson.h"
#include "server/sched/cronsched.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API_SCHEDULE_MAX_REF_BYTES 255
#define API_SCHEDULE_MAX_PER_REPO  100

static json_t *api_schedule_json(const struct schedule_row *r)
{
	char next[32] = "", last[32] = "";
	time_t t;
	struct tm tm;

	t = (time_t)r->next_unix_s;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(next, sizeof(next), "%Y-%m-%dT%H:%M:%SZ", &tm);
	t = (time_t)r->last_unix_s;
	if (r->last_unix_s > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:I, s:s, s:I, s:o}", "id", (json_int_t)r->id, "repo",
	                 apijson_text(r->repo), "name", apijson_text(r->name), "ref", apijson_text(r->ref),
	                 "cron", apijson_text(r->cron), "next_unix_s", (json_int_t)r->next_unix_s, "next",
	                 next, "last_unix_s", (json_int_t)r->last_unix_s, "last",
	                 last[0] ? json_string(last) : json_null());
}

/* A branch name or full ref as git allows it (check-ref-format's rules
 * that matter here): "main" → "refs/heads/main". NULL when not. */
static char *api_schedule_ref(const char *s)
{
	char *ref = strncmp(s, "refs/", 5) == 0 ? xstrdup(s) : xasprintf("refs/heads/%s", s);
	size_t n = strlen(ref);

	if (s[0] == '\0' || s[0] == '-' || n > API_SCHEDULE_MAX_REF_BYTES || !pipeline_text_ok(ref) ||
	    strpbrk(ref, " ~^:?*[\\") != NULL || strstr(ref, "..") != NULL || strstr(ref, "//") != NULL ||
	    strstr(ref, "@{") != NULL || ref[n - 1] == '/' || ref[n - 1] == '.' ||
	    strcmp(ref, "refs/heads/") == 0) {
		free(ref);
		return NULL;
	}
	return ref;
}

static int api_schedule_add(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct schedule_row in = {0}, *rows = NULL;
	struct cron cron;
	const char *repo, *ref_in, *expr, *name;
	char *ref = NULL, *def_name = NULL;
	size_t n = 0;
	int64_t id;
	int rc = -1;

	if (apijson_str(req->json, "repo", 1, 100, &repo, err) < 0 ||
	    apijson_str(req->json, "ref", 1, API_SCHEDULE_MAX_REF_BYTES, &ref_in, err) < 0 ||
	    apijson_str(req->json, "cron", 1, 200, &expr, err) < 0 ||
	    apijson_str(req->json, "name", 0, 100, &name, err) < 0)
		return -1;
	if ((ref = api_schedule_ref(ref_in)) == NULL) {
		err_set(err, ERR_INVAL, "ref must be a branch name or a full ref (refs/...) git allows");
		goto out;
	}
	if (cron_parse(&cron, expr, err) < 0)
		goto out;
	if (name == NULL) {
		const char *slash = strrchr(ref, '/');
		name = def_name = xstrdup(slash + 1);
	}
	if (!pipeline_name_ok(name, 100)) {
		err_set(err, ERR_INVAL,
		        "a schedule's name must be [A-Za-z0-9._-]+, not starting with '.' or '-'%s",
		        def_name ? " (give one with name)" : "");
		goto out;
	}
	if (store_schedule_list(srv->store, repo, &rows, &n, err) < 0)
		goto out;
	if (n >= API_SCHEDULE_MAX_PER_REPO) {
		err_set(err, ERR_LIMIT, "a repository has at most %d schedules", API_SCHEDULE_MAX_PER_REPO);
		goto out;
	}
	in.repo = (char *)repo;
	in.name = (char *)name;
	in.ref = ref;
	in.cron = (char *)expr;
	if ((in.next_unix_s = cron_next(&cron, cronsched_now_s(srv))) < 0) {
		err_set(err, ERR_INVAL, "cron: '%s' is never due (no such day within five years)", expr);
		goto out;
	}
	if (store_schedule_add(srv->store, &in, srv_now_ms(), &id, err) < 0) {
		if (err->code == ERR_CONFLICT)
			err_set(err, ERR_CONFLICT, "repository '%s' has a schedule named '%s' already", repo,
			        name);
		goto out;
	}
	in.id = id;
	log_info("event=schedule_added schedule=%lld repo=%s name=%s", (long long)id, repo, name);
	ans->status = 201;
	ans->json = api_schedule_json(&in);
	rc = 0;
out:
	schedule_rows_free(rows, n);
	free(ref);
	free(def_name);
	return rc;
}

static int api_schedule_list(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct schedule_row *rows = NULL;
	const char *repo = http_query(req, "repo");
	json_t *arr;
	size_t n = 0;

	if (store_schedule_list(srv->store, repo, &rows, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_schedule_json(&rows[i]));
	schedule_rows_free(rows, n);
	ans->json = json_pack("{s:o}", "schedules", arr);
	return 0;
}

/* rest = "REPO/NAME" */
static int api_schedule_delete(struct srv *srv, struct http_req *req, struct http_answer *ans,
                               struct err *err)
{
	char *slash = strchr(req->rest, '/');

	if (slash == NULL || slash == req->rest || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
		return err_set(err, ERR_INVAL, "expected /api/v1/schedules/REPO/NAME");
	*slash = '\0';
	if (store_schedule_delete(srv->store, req->rest, slash + 1, err) < 0)
		return -1;
	log_info("event=schedule_deleted repo=%s name=%s", req->rest, slash + 1);
	ans->json = json_pack("{s:s, s:s, s:b}", "repo", req->rest, "name", slash + 1, "deleted", 1);
	return 0;
}

const struct http_route api_schedule_routes[] = {
    {"POST", "/api/v1/schedules", AUTH_ADMIN, BODY_JSON, NULL, api_schedule_add},
    {"GET", "/api/v1/schedules", AUTH_ADMIN, BODY_NONE, NULL, api_schedule_list},
    {"DELETE", "/api/v1/schedules/*", AUTH_ADMIN, BODY_NONE, NULL, api_schedule_delete},
};
const size_t api_schedule_routes_count = sizeof(api_schedule_routes) / sizeof(api_schedule_routes[0]);
