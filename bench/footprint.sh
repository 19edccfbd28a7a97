#!/bin/bash
# What each program maps and costs before it does anything: shared
# libraries (ldd) and TLS/crypto stacks per binary, the CLI's start
# (`anvil --help`, exec to exit, median and p90 of RUNS), and the idle
# RSS/PSS/RssAnon of a server and of an agent (--targets none). Prints,
# asserts nothing. Usage: bench/footprint.sh [BUILD_DIR]; env RUNS (200).
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
for i in $(seq 1 "$RUNS"); do
	t0=$EPOCHREALTIME
	"$B/anvil" --help >/dev/null 2>&1
	t1=$EPOCHREALTIME
	echo "$t0 $t1"
done | awk '{print ($2 - $1) * 1000}' | sort -g >"$T/start"
echo "anvil --help (exec to exit, $RUNS runs): median $(awk -v n="$RUNS" 'NR == int(n * 0.5 + 0.5)' "$T/start") ms, p90 $(awk -v n="$RUNS" 'NR == int(n * 0.9 + 0.5)' "$T/start") ms"
start_server --log-level warn
start_agent a1 --targets none --log-level warn
wait_until 20 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents | length == 1'"
sleep 2
echo "server idle: $(mem "$SERVER_PID")"
echo "agent idle: $(mem "$AGENT_PID")"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
