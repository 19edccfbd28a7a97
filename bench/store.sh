#!/bin/bash
# The store's two backends side by side in one run: bench/server.sh on SQLite,
# then on PostgreSQL (a throw-away cluster from Debian's postgresql 15,
# tests/pg/run.sh), each printing dispatch p50/p99, jobs/s of finished jobs,
# log ingest MB/s and the server's memory. Prints figures, asserts nothing.
# Usage: bench/store.sh [BUILD_DIR]; env JOBS (1000), DISPATCH (100),
# INGEST_MB (100) are passed on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
export JOBS=${JOBS:-1000} DISPATCH=${DISPATCH:-100} INGEST_MB=${INGEST_MB:-100}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "=== sqlite"
bash "$here/server.sh" "$build" 2>&1 | grep -v '^ok - ' | sed 's/^/sqlite: /'
echo "=== postgresql"
dir=$(mktemp -d /tmp/anvil-bench-pg.XXXXXX)
rmdir "$dir"
sh "$here/../tests/pg/run.sh" "$dir" sh -c 'ANVIL_TEST_STORE=$ANVIL_PG_URL exec bash "$0" "$1"' \
	"$here/server.sh" "$build" 2>&1 | grep -v '^ok - ' | sed 's/^/postgresql: /'
