#include "server/forge/forge.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* GitHub: X-Hub-Signature-256 "sha256=<hex>", X-GitHub-Event, statuses API
 * with a bearer token. */

static enum forge_event forge_github_event(const char *v)
{
	if (v == NULL)
		return FORGE_EV_OTHER;
	if (strcmp(v, "push") == 0)
		return FORGE_EV_PUSH;
	if (strcmp(v, "ping") == 0)
		return FORGE_EV_PING;
	if (strcmp(v, "pull_request") == 0)
		return FORGE_EV_PR;
	return FORGE_EV_OTHER;
}

int forge_github_like_status(const struct forge_status *st, const char *default_api, const char *api_suffix,
                             const char *auth_scheme, struct forge_http *out, struct err *err)
{
	char *project = NULL, *origin = NULL, *api = NULL;
	json_t *body = NULL; /* owned */
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (forge_project_path(st->repo_url, 1, &project, err) < 0)
		goto out;
	if (st->api_url[0] != '\0')
		api = xstrdup(st->api_url);
	else if (default_api != NULL)
		api = xstrdup(default_api);
	else if (forge_url_origin(st->repo_url, &origin, err) < 0)
		goto out;
	else
		api = xasprintf("%s%s", origin, api_suffix);
	while (api[0] != '\0' && api[strlen(api) - 1] == '/')
		api[strlen(api) - 1] = '\0';
	body = json_pack("{s:s, s:s, s:s, s:s}", "state", st->state, "target_url", st->target_url,
	                 "description", st->description, "context", st->context);
	if (body == NULL) {
		err_set(err, ERR_INVAL, "status fields are not UTF-8");
		goto out;
	}
	out->url = xasprintf("%s/repos/%s/statuses/%s", api, project, st->sha);
	out->body = json_dumps(body, JSON_COMPACT);
	strv_pushf(&out->headers, "Authorization: %s %s", auth_scheme, st->token);
	strv_push(&out->headers, "Content-Type: application/json");
	strv_push(&out->headers, "Accept: application/json");
	rc = 0;
out:
	json_decref(body);
	free(project);
	free(origin);
	free(api);
	return rc;
}

static int forge_github_status(const struct forge_status *st, struct forge_http *out, struct err *err)
{
	return forge_github_like_status(st, "https://api.github.com", "", "Bearer", out, err);
}

const struct forge_ops forge_github_ops = {
    .name = "github",
    .sig_header = "X-Hub-Signature-256",
    .sig_prefix = "sha256=",
    .event_header = "X-GitHub-Event",
    .delivery_header = "X-GitHub-Delivery",
    .event = forge_github_event,
    .parse_push = forge_parse_github_like,
    .parse_pr = forge_parse_github_pr,
    .status_request = forge_github_status,
};
