#!/bin/bash
# What each program maps and costs before it does anything: shared
# libraries (ldd: linked; /proc/PID/maps: mapped at idle) and TLS/crypto stacks per binary, the CLI's start
# (`anvil --help`, exec to exit, median and p90 of RUNS), and the idle
# RSS/PSS/RssAnon of a server and of an agent (--targets none). Prints,
# asserts nothing. Usage: bench/footprint.sh [BUILD_DIR]; env RUNS (200),
# COMPARE (another build directory whose CLI start is timed interleaved
# with BUILD_DIR's, for a before/after on a busy box).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
RUNS=${RUNS:-200}

mem() {
	awk '/^(Rss|Pss):/ {printf "%s_kb=%s ", tolower(substr($1, 1, length($1) - 1)), $2}' "/proc/$1/smaps_rollup"
	awk '/^RssAnon:/ {printf "rssanon_kb=%s\n", $2}' "/proc/$1/status"
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for b in anvil anvil-server anvil-agent; do
	libs=$(ldd "$B/$b" | awk '$2 == "=>" {print $1}')
	tls=$(echo "$libs" | grep -oE '^lib(ssl|gnutls|mbedtls|crypto|nettle|mbedcrypto)\.so' | sed 's/\.so//' | tr '\n' ' ')
	echo "$b: $(echo "$libs" | wc -l) shared libraries; crypto/TLS: $tls; ssh: $(echo "$libs" | grep -c '^libssh2' || true)"
done
# cli_start DIR...: `anvil --help` of each DIR in turn, RUNS rounds (so a
# busy box weighs on all alike): wall median and p90, and CPU (user + sys)
# per run from the children's times.
cli_start() {
	local d i
	for i in $(seq 1 "$RUNS"); do
		for d in "$@"; do
			t0=$EPOCHREALTIME
			"$d/anvil" --help >/dev/null 2>&1
			echo "$d $t0 $EPOCHREALTIME" >>"$T/start"
		done
	done
	for d in "$@"; do
		awk -v d="$d" '$1 == d {print ($3 - $2) * 1000}' "$T/start" | sort -g >"$T/one"
		echo "$d/anvil --help (exec to exit, $RUNS runs): median $(awk -v n="$RUNS" 'NR == int(n * 0.5 + 0.5)' "$T/one") ms, p90 $(awk -v n="$RUNS" 'NR == int(n * 0.9 + 0.5)' "$T/one") ms"
	done
	# The dynamic loader's own count (LD_DEBUG=statistics), median of 21.
	for d in "$@"; do
		echo "$d/anvil --help in ld.so: $(for i in $(seq 1 21); do LD_DEBUG=statistics "$d/anvil" --help 2>&1 >/dev/null | awk '/total startup time/ {print $(NF - 1)}'; done | sort -n | sed -n 11p) cycles"
	done
	# CPU, not wall: one loop per binary, after the interleaved one.
	for d in "$@"; do
		local before after
		before=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
		for i in $(seq 1 "$RUNS"); do "$d/anvil" --help >/dev/null 2>&1; done
		after=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
		echo "$d/anvil --help CPU: $(awk -v t=$((after - before)) -v n="$RUNS" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t * 1000 / hz / n}') ms a run"
	done
}
: >"$T/start"
cli_start "$B" ${COMPARE:+"$(cd "$COMPARE" && pwd)"}
start_server --log-level warn
start_agent a1 --targets none --log-level warn
wait_until 20 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents | length == 1'"
sleep 2
# Libraries the process has mapped (ldd shows only what it links: libcurl,
# libgit2, libpq and libssh2 load on first use, common/dynlib.h).
mapped() { awk '$6 ~ /\.so/ {n = split($6, p, "/"); print p[n]}' "/proc/$1/maps" | sort -u | wc -l; }
heavy() { awk '$6 ~ /lib(curl|curl-gnutls|git2|pq|ssh2|crypto|ssl)\.so/ {n = split($6, p, "/"); print p[n]}' "/proc/$1/maps" | sort -u | tr '\n' ' '; }
echo "server idle: $(mem "$SERVER_PID")"
echo "  mapped: $(mapped "$SERVER_PID") libraries; of the heavy ones: $(heavy "$SERVER_PID")"
echo "agent idle: $(mem "$AGENT_PID")"
echo "  mapped: $(mapped "$AGENT_PID") libraries; of the heavy ones: $(heavy "$AGENT_PID")"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
