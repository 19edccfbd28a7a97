#!/bin/sh
# The agent image's entry point: settings from the environment (as in
# /etc/default/anvil-agent), the token from ANVIL_AGENT_TOKEN (read by
# anvil-agent itself, so it is never on a command line).
set -eu
exec anvil-agent --server "${ANVIL_SERVER:-http://127.0.0.1:8080}" --targets "${ANVIL_TARGETS:-auto}" \
	--name "${ANVIL_AGENT_NAME:-$(hostname)}" --work /var/lib/anvil-agent --cache /var/cache/anvil \
	${ANVIL_AGENT_OPTS:-} "$@"
