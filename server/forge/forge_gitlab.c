#include "server/forge/forge.h"
#include "common/httpc.h"

#include <stdlib.h>
#include <string.h>

/* GitLab: X-Gitlab-Token holds the secret itself, X-Gitlab-Event "Push Hook"
 * or "Tag Push Hook"; commit statuses go as query parameters with a
 * PRIVATE-TOKEN header. */

static enum forge_event forge_gitlab_event(const char *v)
{
	if (v == NULL)
		return FORGE_EV_OTHER;
	if (strcmp(v, "Push Hook") == 0)
		return FORGE_EV_PUSH;
	if (strcmp(v, "Tag Push Hook") == 0)
		return FORGE_EV_TAG;
	if (strcmp(v, "Merge Request Hook") == 0)
		return FORGE_EV_PR;
	/* What GitLab's "Test" button sent as the event name for some
	 * versions (gitlab-foss#37288): a test, never a real push. */
	if (strcmp(v, "Push Event") == 0 || strcmp(v, "Tag Push Event") == 0 || strcmp(v, "Test Hook") == 0)
		return FORGE_EV_PING;
	return FORGE_EV_OTHER;
}

static const char *forge_gitlab_state(const char *state, const char *description)
{
	if (strcmp(state, "pending") == 0)
		return strcmp(description, "running") == 0 ? "running" : "pending";
	if (strcmp(state, "success") == 0)
		return "success";
	if (strcmp(description, "canceled") == 0)
		return "canceled";
	return "failed";
}

static int forge_gitlab_status(const struct forge_status *st, struct forge_http *out, struct err *err)
{
	char *project = NULL, *origin = NULL, *api = NULL, *p_esc = NULL, *n_esc = NULL, *u_esc = NULL,
	     *d_esc = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (forge_project_path(st->repo_url, 0, &project, err) < 0)
		goto out;
	if (st->api_url[0] != '\0')
		api = xstrdup(st->api_url);
	else if (forge_url_origin(st->repo_url, &origin, err) < 0)
		goto out;
	else
		api = xasprintf("%s/api/v4", origin);
	while (api[0] != '\0' && api[strlen(api) - 1] == '/')
		api[strlen(api) - 1] = '\0';
	p_esc = httpc_escape(project);
	n_esc = httpc_escape(st->context);
	u_esc = httpc_escape(st->target_url);
	d_esc = httpc_escape(st->description);
	out->url =
	    xasprintf("%s/projects/%s/statuses/%s?state=%s&name=%s&target_url=%s&description=%s", api, p_esc,
	              st->sha, forge_gitlab_state(st->state, st->description), n_esc, u_esc, d_esc);
	strv_pushf(&out->headers, "PRIVATE-TOKEN: %s", st->token);
	out->body = NULL;
	rc = 0;
out:
	free(project);
	free(origin);
	free(api);
	free(p_esc);
	free(n_esc);
	free(u_esc);
	free(d_esc);
	return rc;
}

const struct forge_ops forge_gitlab_ops = {
    .name = "gitlab",
    .sig_header = "X-Gitlab-Token",
    .sig_prefix = NULL,
    .event_header = "X-Gitlab-Event",
    .delivery_header = "X-Gitlab-Event-UUID",
    .event = forge_gitlab_event,
    .parse_push = forge_parse_gitlab,
    .parse_pr = forge_parse_gitlab_mr,
    .status_request = forge_gitlab_status,
};
