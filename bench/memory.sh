#!/bin/bash
# Server memory per finished job: RSS, PSS and RssAnon of anvil-server idle,
# after N1 and after N2 finished one-line host jobs, and the live log tail's
# own figures. The jobs are driven over the agent API by bench_client (the
# requests an agent makes: claim, one log chunk, finish; no sandbox, so a
# loaded box still runs 10,000 in minutes), or with AGENTS=N by N real
# agents (sandboxed host target; triggers sent by one curl). Prints,
# asserts nothing.
# Usage: bench/memory.sh [BUILD_DIR] (default build); env N1 (1000), N2
# (10000), AGENTS (0).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
N1=${N1:-1000}
N2=${N2:-10000}
AGENTS=${AGENTS:-0}

mem() {
	awk '/^(Rss|Pss):/ {printf "%s_kb=%s ", tolower(substr($1, 1, length($1) - 1)), $2}' "/proc/$1/smaps_rollup"
	awk '/^RssAnon:/ {printf "rssanon_kb=%s", $2}' "/proc/$1/status"
	echo " threads=$(awk '/^Threads:/ {print $2}' "/proc/$1/status")"
}
# SQLite's own heap (page cache, statements): a bounded cache, told apart
# from per-job growth. Needs gdb (and ptrace); skipped without it.
sqlite_heap() {
	command -v gdb >/dev/null || return 0
	gdb -p "$SERVER_PID" -batch -ex 'print (long long)sqlite3_memory_used()' 2>/dev/null |
		awk '/^\$1 = / {printf "sqlite_heap_kb=%d", $3 / 1024}'
}
tails() { curl -s "$URL/metrics" | awk '/^anvil_log_tail_(jobs|bytes) / {printf "%s=%s ", $1, $2}'; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
start_server --log-cap 2G --log-level warn
sleep 1
echo "server idle: $(mem "$SERVER_PID")"
make_repo mem
printf 'steps:\n  - run: echo one line\n' >"$T/src/mem/.anvil.yml"
# Pushed before any agent: its pipeline stays queued and out of the way.
commit_push mem "mem" >/dev/null 2>&1
C=$(git -C "$T/src/mem" rev-parse HEAD)
ADMIN=$(cat "$T/data/admin.token")
AGENT=$(cat "$T/data/agent.token")
curl -s -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/jobs/1/cancel" >/dev/null
busy() { curl -s "$URL/metrics" | awk '/^anvil_jobs\{state="(queued|running)"\}/ {s += $2} END {print s + 0}'; }
# jobs TAG N: N more one-line jobs, finished.
jobs() {
	local cfg="$T/trigger-$1" i
	if [ "$AGENTS" = 0 ]; then
		"$B/bench_client" jobs "$URL" "$ADMIN" "$AGENT" "$T/git/mem.git" "$C" "$2"
		return
	fi
	: >"$cfg"
	for i in $(seq 1 "$2"); do
		[ "$i" = 1 ] || echo next >>"$cfg"
		printf 'url = "%s/api/v1/trigger"\nrequest = "POST"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\ndata = "{\\"repo\\":\\"mem\\",\\"url\\":\\"%s\\",\\"ref\\":\\"refs/heads/main\\",\\"commit\\":\\"%s\\",\\"delivery\\":\\"%s-%s\\"}"\n' \
			"$URL" "$ADMIN" "$T/git/mem.git" "$C" "$1" "$i" >>"$cfg"
	done
	curl -s -K "$cfg"
	while [ "$(busy)" != 0 ]; do sleep 0.2; done
}
for i in $(seq 1 "$AGENTS"); do
	start_agent "a$i" --log-level warn
done
jobs one "$N1"
sleep 2
echo "after $N1 jobs: $(mem "$SERVER_PID") $(tails)$(sqlite_heap)"
jobs two "$((N2 - N1))"
sleep 2
echo "after $N2 jobs: $(mem "$SERVER_PID") $(tails)$(sqlite_heap)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
