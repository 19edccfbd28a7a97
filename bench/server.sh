#!/bin/bash
# Server benchmarks of the walking skeleton; prints figures, asserts nothing.
#   dispatch latency: trigger → the agent's first step running (p50, p99)
#   server RSS idle and after N finished jobs
#   log ingest MB/s over the HTTP API into SQLite (a compiler-style log),
#   then the log's bytes against what its chunks hold (deflate) and db_bytes
# Usage: bench/server.sh [BUILD_DIR] (default build); env JOBS (10000),
# DISPATCH (200), INGEST_MB (256); DISPATCH_ONLY=1 stops after the dispatch
# figures, LOGS=DIR keeps the server's and agent's logs there. With ANVIL_TEST_STORE=postgresql://... the
# server keeps its store there; bench/store.sh runs both backends side by side.
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
JOBS=${JOBS:-10000}
DISPATCH=${DISPATCH:-200}
INGEST_MB=${INGEST_MB:-256}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# RSS counts shared library pages too: also print PSS and private dirty.
mem() { awk '/^(Rss|Pss|Private_Dirty|Shared_Clean):/ {printf "%s%s_kb=%s", sep, tolower($1), $2; sep=" "} END {print ""}' "/proc/$1/smaps_rollup" | tr -d ':'; }

start_server --log-cap 2G --log-level warn
sleep 1 # settle before reading the idle figure (nothing to wait for)
echo "server idle: $(mem "$SERVER_PID")"

make_repo bench
printf 'steps:\n  - run: date +%%s%%N\n' >"$T/src/bench/.anvil.yml"
commit_push bench "bench" >/dev/null 2>&1
C=$(git -C "$T/src/bench" rev-parse HEAD)
ADMIN=$(cat "$T/data/admin.token")
AGENT=$(cat "$T/data/agent.token")

# Dispatch latency with a real agent: trigger, then read the first step's clock.
start_agent a1 --targets host
wait_until 10 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents | length == 1'"
lat=()
for i in $(seq 1 "$DISPATCH"); do
	t0=$(date +%s%N)
	J=$(curl -s -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/trigger" \
		-d "{\"repo\":\"bench\",\"url\":\"$T/git/bench.git\",\"ref\":\"refs/heads/main\",\"commit\":\"$C\",\"delivery\":\"d-$i-$t0\"}" |
		jq -r '.jobs[0].id')
	wait_until 30 job_is "$J" success
	t1=$(api "/api/v1/jobs/$J/log" | grep -E '^[0-9]{19}$' | head -n 1)
	lat+=($(((t1 - t0) / 1000)))
done
printf '%s\n' "${lat[@]}" | sort -n >"$T/lat"
p50=$(awk -v n="$DISPATCH" 'NR == int(n * 0.50 + 0.5) {print}' "$T/lat")
p99=$(awk -v n="$DISPATCH" 'NR == int(n * 0.99 + 0.5) {print}' "$T/lat")
echo "dispatch_jobs=$DISPATCH dispatch_p50_ms=$(awk "BEGIN {print $p50/1000}") dispatch_p99_ms=$(awk "BEGIN {print $p99/1000}") (trigger → first step's clock, includes checkout) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
kill "$AGENT_PID"

# Throughput: QUEUE pipelines queued by one client (no process spawned per
# trigger), run by AGENTS real agents (host target, sandboxed), until all end.
QUEUE=${QUEUE:-500}
AGENTS=${AGENTS:-4}
apids=()
for i in $(seq 1 "$AGENTS"); do
	start_agent "q$i" --targets host
	apids+=("$AGENT_PID")
done
wait_until 30 bash -c "curl -s $URL/api/v1/agents | jq -e '[.agents[] | select(.waiting)] | length == $AGENTS'"
t0=$(date +%s%N)
"$B/bench_client" queue "$URL" "$ADMIN" "$AGENT" "$T/git/bench.git" "$C" "$QUEUE"
busy() { curl -s "$URL/metrics" | awk '/^anvil_jobs\{state="(queued|running)"\}/ {s += $2} END {print s + 0}'; }
jobs_idle() { [ "$(busy)" = 0 ]; }
wait_until 600 jobs_idle || echo "throughput: jobs still queued or running after 600 s"
t1=$(date +%s%N)
echo "throughput: $QUEUE pipelines queued by one client, run by $AGENTS agents: $(((t1 - t0) / 1000000)) ms =" \
	"$(awk -v n="$QUEUE" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", n / (ns / 1e9)}') jobs/s; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
kill "${apids[@]}"
if [ -n "${LOGS:-}" ]; then
	mkdir -p "$LOGS"
	cp "$T"/*.log "$LOGS/"
fi
[ "${DISPATCH_ONLY:-0}" = 1 ] && exit 0

# Many finished jobs through the API (no agent process: the client claims them).
"$B/bench_client" jobs "$URL" "$ADMIN" "$AGENT" "$T/git/bench.git" "$C" "$JOBS"
echo "server after $JOBS jobs: $(mem "$SERVER_PID")"
"$B/bench_client" ingest "$URL" "$ADMIN" "$AGENT" "$T/git/bench.git" "$C" "$INGEST_MB"
echo "server after ingest: $(mem "$SERVER_PID")"
if [ -n "${ANVIL_TEST_STORE:-}" ]; then
	echo "db_bytes=$(db "SELECT pg_database_size(current_database())") (postgresql)"
else
	echo "db_bytes=$(stat -c %s "$T/data/anvil.db") wal_bytes=$(stat -c %s "$T/data/anvil.db-wal" 2>/dev/null || echo 0)"
fi
# Log compression: the bytes the log chunks hold against the log's own bytes.
echo "log_raw_bytes=$(db 'SELECT coalesce(sum(coalesce(raw_len, length(data))), 0) FROM log_chunks')" \
	"log_stored_bytes=$(db 'SELECT coalesce(sum(length(data)), 0) FROM log_chunks')" \
	"compressed_chunks=$(db 'SELECT count(*) FROM log_chunks WHERE raw_len IS NOT NULL')" \
	"plain_chunks=$(db 'SELECT count(*) FROM log_chunks WHERE raw_len IS NULL')"
