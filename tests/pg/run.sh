#!/bin/sh
# Runs COMMAND against a fresh PostgreSQL cluster in DIR (cluster.sh), with
# its URL in ANVIL_PG_URL, and stops the cluster afterwards whatever the
# command did. Usage: run.sh DIR COMMAND [ARGS...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
shift
sh "$here/cluster.sh" stop "$dir" # what a killed run left
trap 'sh "$here/cluster.sh" stop "$dir"' EXIT
trap 'exit 130' INT TERM
url=$(sh "$here/cluster.sh" start "$dir") || exit 1
ANVIL_PG_URL=$url "$@"
rc=$?
exit $rc
