#include "server/forge/forge.h"

#include <string.h>

/* Gitea (and Forgejo): X-Gitea-Signature "<hex>", X-Gitea-Event, the
 * GitHub-shaped push payload, statuses API with "token" auth. */

static enum forge_event forge_gitea_event(const char *v)
{
	if (v == NULL)
		return FORGE_EV_OTHER;
	if (strcmp(v, "push") == 0)
		return FORGE_EV_PUSH;
	if (strcmp(v, "ping") == 0)
		return FORGE_EV_PING;
	if (strcmp(v, "pull_request") == 0 || strcmp(v, "pull_request_sync") == 0)
		return FORGE_EV_PR;
	return FORGE_EV_OTHER;
}

static int forge_gitea_status(const struct forge_status *st, struct forge_http *out, struct err *err)
{
	return forge_github_like_status(st, NULL, "/api/v1", "token", out, err);
}

const struct forge_ops forge_gitea_ops = {
    .name = "gitea",
    .sig_header = "X-Gitea-Signature",
    .sig_prefix = "",
    .event_header = "X-Gitea-Event",
    .delivery_header = "X-Gitea-Delivery",
    .event = forge_gitea_event,
    .parse_push = forge_parse_github_like,
    .parse_pr = forge_parse_github_pr,
    .status_request = forge_gitea_status,
};
