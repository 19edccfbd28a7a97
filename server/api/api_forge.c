#include "server/api/api_forge.h"
#include "server/api/apijson.h"
#include "common/log.h"
#include "server/forge/forge.h"
#include "server/sched/pipeline.h"
#include "server/release/release_api.h"
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>

#define API_FORGE_MAX_SECRET_BYTES (16 * 1024)
#define API_FORGE_MAX_SECRETS      100
#define API_FORGE_MIN_POLL_S       5
#define API_FORGE_MAX_POLL_S       (7 * 24 * 3600)

long api_forge_parse_duration(const char *s)
{
	char *end;
	long v, mul = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	if (*end != '\0' || v < 0 || v > API_FORGE_MAX_POLL_S)
		return -1;
	return v * mul;
}

static int api_forge_env_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* An agent pool: "" (any agent) or k=v labels joined by commas, each
 * printable without spaces, quotes or backslashes (as agents' labels). */
static int api_forge_agent_labels_ok(const char *s)
{
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, ","), k;
		const char *eq = memchr(p, '=', n);
		if (eq == NULL || eq == p || (size_t)(eq - p) + 1 >= n)
			return 0;
		for (k = 0; k < n; k++) {
			unsigned char c = (unsigned char)p[k];
			if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\')
				return 0;
		}
		p += n;
		if (*p == ',' && *++p == '\0')
			return 0;
	}
	return 1;
}

/* What the API tells about a repository: never its secret or token. */
static json_t *api_forge_repo_json(struct srv *srv, const struct repo_cfg *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "url", apijson_url(r->url));
	json_object_set_new(o, "forge", r->forge[0] ? json_string(r->forge) : json_null());
	json_object_set_new(o, "api_url", r->api_url[0] ? apijson_url(r->api_url) : json_null());
	json_object_set_new(o, "poll_s", json_integer(r->poll_s));
	json_object_set_new(o, "has_secret", json_boolean(r->hook_secret[0] != '\0'));
	json_object_set_new(o, "has_status_token", json_boolean(r->status_token[0] != '\0'));
	json_object_set_new(o, "agents", json_string(r->agent_labels ? r->agent_labels : ""));
	if (r->forge[0])
		json_object_set_new(o, "webhook_url", json_sprintf("%s/hooks/%s", srv->public_url, r->name));
	return o;
}

static int api_forge_repo_add(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct repo_cfg in = {0}, out = {0};
	const char *name, *url, *forge, *secret, *token, *api, *agents;
	json_t *pv = json_object_get(req->json, "poll_s"); /* borrowed */
	int64_t id;
	long poll_s = 0;

	if (apijson_str(req->json, "name", 1, 100, &name, err) < 0 ||
	    apijson_str(req->json, "url", 1, 1024, &url, err) < 0 ||
	    apijson_str(req->json, "forge", 0, 16, &forge, err) < 0 ||
	    apijson_str(req->json, "secret", 0, 1024, &secret, err) < 0 ||
	    apijson_str(req->json, "status_token", 0, 1024, &token, err) < 0 ||
	    apijson_str(req->json, "api_url", 0, 1024, &api, err) < 0 ||
	    apijson_str(req->json, "agents", 0, 1024, &agents, err) < 0)
		return -1;
	if (agents != NULL && !api_forge_agent_labels_ok(agents))
		return err_set(err, ERR_INVAL, "agents must be labels k=v[,k=v...] (\"\" for any agent)");
	if (!pipeline_name_ok(name, 100))
		return err_set(err, ERR_INVAL,
		               "repo name must be [A-Za-z0-9._-]+, not starting with '.' or '-'");
	if (url[0] == '\0' || !pipeline_text_ok(url) || (api && !pipeline_text_ok(api)) ||
	    (secret && !pipeline_text_ok(secret)) || (token && !pipeline_text_ok(token)))
		return err_set(err, ERR_INVAL, "url, api_url, secret and status_token must be printable");
	if (forge != NULL && forge_find(forge) == NULL)
		return err_set(err, ERR_INVAL, "forge must be github, gitea, gitlab or generic");
	if (forge != NULL && (secret == NULL || secret[0] == '\0'))
		return err_set(err, ERR_INVAL, "a forge needs a webhook secret (field 'secret')");
	if (token != NULL && token[0] != '\0' && (forge == NULL || forge_find(forge)->status_request == NULL))
		return err_set(err, ERR_INVAL, "status_token needs forge github, gitea or gitlab");
	if (json_is_integer(pv)) {
		poll_s = (long)json_integer_value(pv);
	} else if (pv != NULL && !json_is_null(pv)) {
		if (!json_is_string(pv) || (poll_s = api_forge_parse_duration(json_string_value(pv))) < 0)
			return err_set(err, ERR_INVAL,
			               "poll_s must be seconds (60) or a duration (60s, 5m, 1h)");
	}
	if (poll_s != 0 && (poll_s < API_FORGE_MIN_POLL_S || poll_s > API_FORGE_MAX_POLL_S))
		return err_set(err, ERR_INVAL, "poll_s must be 0 (off) or %d..%d seconds",
		               API_FORGE_MIN_POLL_S, API_FORGE_MAX_POLL_S);
	in.name = (char *)name;
	in.url = (char *)url;
	in.forge = (char *)(forge ? forge : "");
	in.hook_secret = (char *)(secret ? secret : "");
	in.status_token = (char *)(token ? token : "");
	in.api_url = (char *)(api ? api : "");
	in.poll_s = (int)poll_s;
	in.agent_labels = (char *)agents; /* absent: the repository keeps its pool */
	if (store_repo_configure(srv->store, &in, srv_now_ms(), &id, err) < 0)
		return -1;
	if (store_repo_cfg_get(srv->store, name, &out, err) < 0)
		return -1;
	log_info("event=repo_configured repo=%s forge=%s poll_s=%ld status=%s", name, forge ? forge : "-",
	         poll_s, token && token[0] ? "on" : "off");
	ans->status = 201;
	ans->json = api_forge_repo_json(srv, &out);
	repo_cfg_release(&out);
	return 0;
}

static int api_forge_repo_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct repo_cfg r = {0};

	if (store_repo_cfg_get(srv->store, req->rest, &r, err) < 0)
		return -1;
	ans->json = api_forge_repo_json(srv, &r);
	repo_cfg_release(&r);
	return 0;
}

/* rest = "NAME/secrets" or "NAME/secrets/KEY": splits in place. */
static int api_forge_secret_path(char *rest, int want_key, char **repo, char **key, struct err *err)
{
	char *slash = strchr(rest, '/');

	*repo = rest;
	*key = NULL;
	if (slash == NULL || strncmp(slash, "/secrets", 8) != 0)
		return err_set(err, ERR_NOTFOUND, "no such route");
	*slash = '\0';
	if (slash[8] == '\0') {
		if (want_key)
			return err_set(err, ERR_INVAL, "the secret's name is missing: .../secrets/NAME");
		return 0;
	}
	if (slash[8] != '/' || !want_key)
		return err_set(err, ERR_NOTFOUND, "no such route");
	*key = slash + 9;
	if (!api_forge_env_name_ok(*key))
		return err_set(err, ERR_INVAL,
		               "a secret's name must be [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes");
	return 0;
}

static int api_forge_secret_put(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                struct err *err)
{
	struct strv names = STRV_INIT;
	const char *value;
	char *repo, *key;
	int rc = -1, exists = 0, pull_requests = 0;
	json_t *prv; /* borrowed */

	if (release_api_is_pattern_path(req->rest))
		return release_api_pattern(srv, req, ans, err);
	if (api_forge_secret_path(req->rest, 1, &repo, &key, err) < 0 ||
	    apijson_str(req->json, "value", 1, API_FORGE_MAX_SECRET_BYTES, &value, err) < 0)
		return -1;
	if (value[0] == '\0')
		return err_set(err, ERR_INVAL, "a secret's value must not be empty");
	prv = json_object_get(req->json, "pull_requests");
	if (prv != NULL && !json_is_boolean(prv) && !json_is_null(prv)) {
		err_set(err, ERR_INVAL, "pull_requests must be true or false");
		goto out;
	}
	pull_requests = json_is_true(prv);
	if (store_secret_list(srv->store, repo, 0, &names, NULL, err) < 0)
		goto out;
	for (size_t i = 0; i < names.n; i++)
		exists |= strcmp(names.v[i], key) == 0;
	if (!exists && names.n >= API_FORGE_MAX_SECRETS) {
		err_set(err, ERR_LIMIT, "a repository has at most %d secrets", API_FORGE_MAX_SECRETS);
		goto out;
	}
	if (store_secret_set(srv->store, repo, key, value, pull_requests, srv_now_ms(), err) < 0)
		goto out;
	log_info("event=secret_set repo=%s name=%s pull_requests=%d", repo, key, pull_requests);
	ans->status = exists ? 200 : 201;
	ans->json = json_pack("{s:s, s:s}", "repo", repo, "name", key);
	rc = 0;
out:
	strv_release(&names);
	return rc;
}

static int api_forge_secret_delete(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                   struct err *err)
{
	char *repo, *key;

	if (api_forge_secret_path(req->rest, 1, &repo, &key, err) < 0)
		return -1;
	if (store_secret_delete(srv->store, repo, key, err) < 0)
		return -1;
	log_info("event=secret_deleted repo=%s name=%s", repo, key);
	ans->json = json_pack("{s:s, s:s, s:b}", "repo", repo, "name", key, "deleted", 1);
	return 0;
}

static int api_forge_repo_or_secrets(struct srv *srv, struct http_req *req, struct http_answer *ans,
                                     struct err *err)
{
	struct strv names = STRV_INIT;
	struct repo_cfg r = {0};
	char *repo, *key;
	json_t *arr, *pr;

	if (strchr(req->rest, '/') == NULL)
		return api_forge_repo_get(srv, req, ans, err);
	if (release_api_is_pattern_path(req->rest))
		return release_api_pattern(srv, req, ans, err);
	if (api_forge_secret_path(req->rest, 0, &repo, &key, err) < 0)
		return -1;
	if (store_repo_cfg_get(srv->store, repo, &r, err) < 0)
		return -1;
	repo_cfg_release(&r);
	if (store_secret_list(srv->store, repo, 0, &names, NULL, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < names.n; i++)
		json_array_append_new(arr, json_string(names.v[i]));
	strv_release(&names);
	if (store_secret_list(srv->store, repo, 1, &names, NULL, err) < 0) {
		json_decref(arr);
		return -1;
	}
	pr = json_array();
	for (size_t i = 0; i < names.n; i++)
		json_array_append_new(pr, json_string(names.v[i]));
	strv_release(&names);
	ans->json = json_pack("{s:s, s:o, s:o}", "repo", repo, "secrets", arr, "pull_requests", pr);
	return 0;
}

const struct http_route api_forge_routes[] = {
    {"POST", "/api/v1/repos", AUTH_ADMIN, BODY_JSON, NULL, api_forge_repo_add},
    {"GET", "/api/v1/repos/*", AUTH_ADMIN, BODY_NONE, NULL, api_forge_repo_or_secrets},
    {"PUT", "/api/v1/repos/*", AUTH_ADMIN, BODY_JSON, NULL, api_forge_secret_put},
    {"DELETE", "/api/v1/repos/*", AUTH_ADMIN, BODY_NONE, NULL, api_forge_secret_delete},
};
const size_t api_forge_routes_count = sizeof(api_forge_routes) / sizeof(api_forge_routes[0]);
