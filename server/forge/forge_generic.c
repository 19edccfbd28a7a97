#include "server/forge/forge.h"

#include <string.h>

/* anvil's own webhook, for a forge or a script anvil has no backend for
 * (docs/forges.md): X-Anvil-Signature "sha256=<hex of HMAC-SHA256 of the
 * body>", X-Anvil-Event push|ping, X-Anvil-Delivery, and the GitHub push
 * payload shape. No commit status API. */

static enum forge_event forge_generic_event(const char *v)
{
	if (v == NULL || strcmp(v, "push") == 0)
		return FORGE_EV_PUSH;
	if (strcmp(v, "ping") == 0)
		return FORGE_EV_PING;
	return FORGE_EV_OTHER;
}

const struct forge_ops forge_generic_ops = {
    .name = "generic",
    .sig_header = "X-Anvil-Signature",
    .sig_prefix = "sha256=",
    .event_header = "X-Anvil-Event",
    .delivery_header = "X-Anvil-Delivery",
    .event = forge_generic_event,
    .parse_push = forge_parse_github_like,
    .status_request = NULL,
};
