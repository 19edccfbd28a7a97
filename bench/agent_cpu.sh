#!/bin/bash
# CPU per sandboxed host job, from /proc/PID/stat (robust to a loaded box,
# unlike wall times): one agent runs N one-line `date` jobs one after the
# other; prints the agent's own user+system time per job, that of the
# processes it reaped (bubblewrap and everything inside: sh, date), and the
# server's. Figures only; nothing is asserted.
# Usage: bench/agent_cpu.sh [BUILD_DIR] (default build); env N (100),
# AGENT_OPTS (extra anvil-agent options).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
N=${N:-100}
TCK=$(getconf CLK_TCK)

# cpu_ms PID: "self children" user+system milliseconds so far.
cpu_ms() {
	awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%d %d\n", ($12 + $13) * 1000 / t, ($14 + $15) * 1000 / t }' "/proc/$1/stat"
}

start_server --log-level warn
make_repo bench
printf 'steps:\n  - run: date +%%s%%N\n' >"$T/src/bench/.anvil.yml"
commit_push bench "bench" >/dev/null 2>&1
C=$(git -C "$T/src/bench" rev-parse HEAD)
ADMIN=$(cat "$T/data/admin.token")
# shellcheck disable=SC2086
start_agent a1 --targets host --log-level warn ${AGENT_OPTS:-}
wait_until 60 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents | length == 1'" ||
	fail "the agent did not register"

trigger() {
	curl -s -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/trigger" \
		-d "{\"repo\":\"bench\",\"url\":\"$T/git/bench.git\",\"ref\":\"refs/heads/main\",\"commit\":\"$C\",\"delivery\":\"$1\"}" |
		jq -r '.jobs[0].id'
}
# A warm-up job: the agent's mirror and first connections are not per job.
J=$(trigger warm)
wait_until 60 job_is "$J" success || fail "warm-up job $J: $(job_state "$J")"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
read -r a0 c0 <<<"$(cpu_ms "$AGENT_PID")"
read -r s0 _ <<<"$(cpu_ms "$SERVER_PID")"
t0=$(date +%s%N)
for i in $(seq 1 "$N"); do
	J=$(trigger "d-$i")
	wait_until 60 job_is "$J" success || fail "job $J: $(job_state "$J")"
done
t1=$(date +%s%N)
read -r a1 c1 <<<"$(cpu_ms "$AGENT_PID")"
read -r s1 _ <<<"$(cpu_ms "$SERVER_PID")"
awk -v n="$N" -v a=$((a1 - a0)) -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v w=$(((t1 - t0) / 1000000)) \
	'BEGIN { printf "jobs=%d agent_ms_per_job=%.1f sandbox_ms_per_job=%.1f server_ms_per_job=%.1f wall_ms_per_job=%.1f", n, a / n, c / n, s / n, w / n }'
echo " loadavg $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
