#!/bin/bash
# A deploy job survives its agent: three simulated aarch64 boards, canary b1
# then a batch of b2 and b3 whose restart command waits for a gate file the
# test controls. The agent is killed (-9) while b2 and b3 wait; the lease
# runs out, a second agent claims the requeued job and goes on with b2 and b3
# only (b1 stays as it was: its release dir untouched, its report of the
# first attempt kept), and the deployment ends success. Needs root, binfmt
# qemu-aarch64 and the cached board rootfs.
. "$(dirname "$0")/lib.sh"

BOARD_SH="$S/qemu/board.sh"
BOARD_STATES=()

resume_cleanup() {
	local rc=$?
	for st in "${BOARD_STATES[@]}"; do
		"$BOARD_SH" stop "$st" >/dev/null 2>&1 || true
	done
	set +e # under errexit, (exit rc) would end the trap before e2e_cleanup
	(exit $rc)
	e2e_cleanup
}
trap resume_cleanup EXIT

free_port() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}
benv() { (. "$1/board.env" && eval "echo \$$2"); }
root_of() { benv "$T/board$1" BOARD_ROOT; }

for n in 1 2 3; do
	st="$T/board$n"
	mkdir -p "$st"
	BOARD_STATES+=("$st")
	"$BOARD_SH" start "tdm$$-$n" "127.0.0.8$n" "$(free_port "127.0.0.8$n")" "$st" >"$st/start.out" 2>&1 || {
		cat "$st/start.out" >&2
		fail "board $n did not start"
	}
done

start_server --lease 3
start_agent a1 --targets aarch64-unknown-linux-gnu --labels deploy=true
A1_PID=$AGENT_PID
for n in 1 2 3; do
	st="$T/board$n"
	anvil board add "m$n" --host "127.0.0.8$n" --port "$(benv "$st" BOARD_PORT)" --key "$(benv "$st" BOARD_KEY)" \
		--arch aarch64 --group fleet --trust >/dev/null || fail "board add m$n"
done

make_repo app
cp -r "$S/tests/fixtures/cproj/." "$T/src/app/"
cat >"$T/src/app/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: make CC="$CC" hello
artifacts: [hello]
YML
commit_push app first >/dev/null
P=$(latest_pipeline)
wait_until 600 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
C=$(api "/api/v1/pipelines/$P" | jq -r .commit)
REL="p$P-${C:0:8}"
ok "$SECONDS s: three boards up, pipeline $P built hello for aarch64"

# The restart waits for /gate on the board; b1 has it, b2 and b3 do not yet.
touch "$(root_of 1)/gate"
D=$(anvil deploy "$P" --group fleet --install /opt/app --files hello \
	--restart 'while [ ! -e /gate ]; do sleep 0.1; done; echo restarted' \
	--health './current/hello | grep -q "hello from aarch64"')
[ -n "$D" ] || fail "anvil deploy queued nothing"
board_state() { api "/api/v1/deployments/$D" | jq -r --arg b "$1" '.boards[] | select(.board==$b) | .state'; }
board_is() { [ "$(board_state "$1")" = "$2" ]; }
wait_until 60 board_is m1 healthy || fail "canary m1 is $(board_state m1)"
wait_until 60 board_is m2 switching || fail "m2 is $(board_state m2), want switching"
wait_until 60 board_is m3 switching || fail "m3 is $(board_state m3), want switching"
M1_DIR="$(root_of 1)/opt/app/releases/$REL"
M1_STAMP=$(stat -c '%y %i' "$M1_DIR" "$M1_DIR/hello")
M1_ROW=$(api "/api/v1/deployments/$D" | jq -c '.boards[] | select(.board=="m1") | [.attempt, .bytes_sent, .updated_unix_ms]')
ok "$SECONDS s: deployment $D: m1 healthy, m2 and m3 waiting in their restart"

kill -9 "$A1_PID"
wait "$A1_PID" 2>/dev/null || true
touch "$(root_of 2)/gate" "$(root_of 3)/gate"
start_agent a2 --targets aarch64-unknown-linux-gnu --labels deploy=true
job_done() { case "$(job_state "$D")" in success | failed | error) return 0 ;; esac; return 1; }
wait_until 90 job_done || fail "deployment $D is $(job_state "$D") after the agent was killed"
[ "$(job_state "$D")" = success ] || fail "deployment $D is $(job_state "$D"): $(api "/api/v1/deployments/$D")"
J=$(api "/api/v1/jobs/$D")
[ "$(jq -r .attempt <<<"$J")" -ge 2 ] || fail "the job was not requeued: $J"
[ "$(jq -r .agent <<<"$J")" = a2 ] || fail "the job did not end on a2: $J"
log_has "$D" "board m1: already healthy (earlier attempt)" || fail "m1 was not left alone"
for n in 1 2 3; do
	[ "$(readlink "$(root_of $n)/opt/app/current")" = "releases/$REL" ] || fail "m$n is not on $REL"
done
[ "$(stat -c '%y %i' "$M1_DIR" "$M1_DIR/hello")" = "$M1_STAMP" ] || fail "m1's release dir was touched again"
[ "$(api "/api/v1/deployments/$D" | jq -c '.boards[] | select(.board=="m1") | [.attempt, .bytes_sent, .updated_unix_ms]')" = "$M1_ROW" ] ||
	fail "m1's report changed: $(api "/api/v1/deployments/$D")"
for b in m2 m3; do
	row=$(api "/api/v1/deployments/$D" | jq -c --arg b "$b" '.boards[] | select(.board==$b)')
	[ "$(jq -r .state <<<"$row")" = healthy ] || fail "$b: $row"
	[ "$(jq -r .attempt <<<"$row")" -ge 2 ] || fail "$b was not deployed by the second attempt: $row"
	[ "$(jq -r .files_skipped <<<"$row")" = 1 ] && [ "$(jq -r .bytes_sent <<<"$row")" = 0 ] ||
		fail "$b uploaded again what it had: $row"
done
ok "$SECONDS s: agent killed mid-batch; a2 finished m2 and m3 (0 bytes, files already there), m1 untouched, deployment success"
