#!/bin/bash
# OTA fleet benchmark (issue 17): anvil deploys a 10 MB release to 1, 20 and
# 50 simulated aarch64 boards (qemu/board.sh: the host's sshd chrooted into
# an arm64 rootfs overlay, each on its own 127.0.3.x address), then, side by
# side, the same bytes go to the same boards with plain parallel
# `ssh board 'cat > f'`; then the same commit is deployed again (a new
# release id, unchanged files: 0 file bytes). Prints per board time and
# bytes, the deploy job's wall time and the aggregate throughput of both.
# Prints figures, asserts nothing. Needs root, binfmt qemu-aarch64 and the
# cached board rootfs (built on first use).
# Usage: bench/deploy.sh [BUILD_DIR] (default build); env SIZES ("1 20 50"),
# MB (10), PER_BOARD=0 to print only each run's summary.
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
SIZES=${SIZES:-"1 20 50"}
MB=${MB:-10}
PER_BOARD=${PER_BOARD:-1}
BOARD_SH="$S/qemu/board.sh"
TAG="bd$$"
MAXB=0
for n in $SIZES; do [ "$n" -gt "$MAXB" ] && MAXB=$n; done

bench_cleanup() {
	local rc=$?
	for k in $(seq 1 "$MAXB"); do
		[ -d "$T/board$k" ] && "$BOARD_SH" stop "$T/board$k" >/dev/null 2>&1 || true
	done
	set +e
	(exit $rc)
	e2e_cleanup
}
trap bench_cleanup EXIT

benv() { (. "$1/board.env" && eval "echo \$$2"); }
free_port() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

echo "== $(date -u '+%F %T') UTC, $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
t=$(now_ms)
spids=()
for k in $(seq 1 "$MAXB"); do
	(
		mkdir -p "$T/board$k"
		"$BOARD_SH" start "$TAG-$k" "127.0.3.$k" "$(free_port "127.0.3.$k")" "$T/board$k" \
			>"$T/board$k/start.out" 2>&1 || { cat "$T/board$k/start.out" >&2; exit 1; }
	) &
	spids+=($!)
	# A few at a time: each makes three keys and an overlay.
	if [ $((k % 6)) = 0 ]; then
		wait "${spids[@]}" || true
		spids=()
	fi
done
[ ${#spids[@]} = 0 ] || wait "${spids[@]}" || true
for k in $(seq 1 "$MAXB"); do [ -f "$T/board$k/board.env" ] || fail "board $k did not start"; done
echo "boards: $MAXB up in $(($(now_ms) - t)) ms"

start_server --log-level warn
start_agent a1 --targets host --labels deploy=true --log-level warn
make_repo rel
# The release: MB of incompressible bytes, the same for the same seed.
write_yml() {
	cat >"$T/src/rel/.anvil.yml" <<YML
steps:
  - run: openssl enc -aes-128-ctr -nosalt -K $1 -iv 0 </dev/zero 2>/dev/null | head -c $((MB << 20)) >release.bin
artifacts: [release.bin]
deploy:
  - group: fleet
    on: {branch: main}
    target: host
    install: /opt/bench
    files: [release.bin]
    health: test -s current/release.bin
    keep: 2
    strategy: {canary: 1, batch: "100%"}
YML
}

# group SIZE: boards 1..SIZE form the group "fleet", the rest are not boards.
group() {
	local n=$1
	for k in $(seq 1 "$MAXB"); do
		anvil board rm "b$k" >/dev/null 2>&1 || true
	done
	for k in $(seq 1 "$n"); do
		anvil board add "b$k" --host "127.0.3.$k" --port "$(benv "$T/board$k" BOARD_PORT)" \
			--key "$(benv "$T/board$k" BOARD_KEY)" --arch aarch64 --group fleet --trust >/dev/null ||
			fail "board add b$k"
	done
}

# report PIPELINE LABEL SIZE: waits for its deploy job, prints its figures.
report() {
	local p=$1 label=$2 n=$3 d
	wait_until 900 pipeline_is "$p" success ||
		fail "pipeline $p is $(pipeline_state "$p"): $(api "/api/v1/pipelines/$p")"
	d=$(api "/api/v1/pipelines/$p" | jq -r '.jobs[] | select(.kind=="deploy") | .id')
	api "/api/v1/deployments/$d" >"$T/dep.json"
	api "/api/v1/jobs/$d" >"$T/job.json"
	if [ "$PER_BOARD" = 1 ]; then
		jq -r '.boards[] | "  \(.board) \(.state) \(.duration_ms) ms \(.bytes_sent) bytes sent, \(.files_uploaded) uploaded \(.files_skipped) unchanged"' "$T/dep.json"
		# Where the first boards' time went (the deploy log's result lines).
		api "/api/v1/jobs/$d/log" | { grep -o 'board b[0-9]*: [a-z_]* (.*connect [0-9].*' || true; } |
			awk 'NR <= 3 { print "    " $0 }'
	fi
	jq -r --arg lbl "$label" --argjson n "$n" --slurpfile job "$T/job.json" '
		($job[0].finished_unix_ms - $job[0].started_unix_ms) as $wall |
		[.boards[].bytes_sent] as $b | [.boards[].duration_ms] | sort as $d |
		"anvil \($lbl) boards=\($n) job_wall_ms=\($wall) board_ms min/median/max=\($d[0])/\($d[($d|length)/2|floor])/\($d[-1]) bytes_per_board=\($b|add/($b|length)|floor) bytes_total=\($b|add) aggregate_MBps=\(if $wall > 0 then ($b|add)/1048576/($wall/1000)*100|round/100 else 0 end)"' "$T/dep.json"
}

# plain SIZE: the same bytes with N parallel `ssh board 'cat > f'`.
plain() {
	local n=$1 t0 t1 k pids=()
	t0=$(now_ms)
	for k in $(seq 1 "$n"); do
		ssh -q -i "$(benv "$T/board$k" BOARD_KEY)" -p "$(benv "$T/board$k" BOARD_PORT)" -o BatchMode=yes \
			-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "root@127.0.3.$k" \
			'cat > /opt/plain.bin' <"$T/release.bin" || echo "plain ssh to b$k failed" >&2 &
		pids+=($!)
	done
	wait "${pids[@]}"
	t1=$(now_ms)
	echo "plain ssh boards=$n wall_ms=$((t1 - t0)) bytes_per_board=$(stat -c %s "$T/release.bin") aggregate_MBps=$(awk -v n="$n" -v mb="$MB" -v ms=$((t1 - t0)) 'BEGIN {printf "%.2f", n * mb / (ms / 1000)}')"
}

seed=1
for n in $SIZES; do
	group "$n"
	seed=$((seed + 1))
	write_yml "$(printf '%032x' "$seed")"
	commit_push rel "release $seed" >/dev/null
	P=$(latest_pipeline)
	report "$P" "first" "$n"
	C=$(git -C "$T/src/rel" rev-parse HEAD)
	# The step's bytes (openssl ends on SIGPIPE when head has enough).
	(set +o pipefail; openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$seed")" -iv 0 </dev/zero 2>/dev/null |
		head -c $((MB << 20)) >"$T/release.bin")
	api "/api/v1/jobs/$(first_job "$P")/artifacts" | jq -r '.artifacts[0].sha256' >"$T/want.sha"
	[ "$(sha256sum <"$T/release.bin" | cut -d' ' -f1)" = "$(cat "$T/want.sha")" ] ||
		echo "(note: the plain ssh bytes differ from the artifact's: $(cat "$T/want.sha"))"
	plain "$n"
	# The same commit again: a new release id, every file unchanged.
	anvil trigger rel --url "$T/git/rel.git" --ref refs/heads/main --commit "$C" --delivery "again-$n" >/dev/null
	P2=$(latest_pipeline)
	report "$P2" "unchanged" "$n"
done
echo "== loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
