#!/bin/bash
# OTA deploy wired into anvil: three simulated aarch64 boards (qemu/board.sh)
# added with `anvil board add --trust`; a push builds a C program for aarch64
# and its deploy entry rolls it out (canary, then a batch of two); a push
# whose health check fails rolls the canary back and skips the rest; an
# x86_64 artifact is refused before anything is sent; a board whose host key
# changed is refused. Needs root, binfmt qemu-aarch64 and the cached rootfs.
. "$(dirname "$0")/lib.sh"

BOARD_SH="$S/qemu/board.sh"
TAG="td$$"
BOARD_STATES=()

deploy_cleanup() {
	local rc=$?
	for st in "${BOARD_STATES[@]}"; do
		"$BOARD_SH" stop "$st" >/dev/null 2>&1 || true
	done
	set +e # under errexit, (exit rc) would end the trap before e2e_cleanup
	(exit $rc)
	e2e_cleanup
}
trap deploy_cleanup EXIT

free_port() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# start_board N ADDR STATE [PORT]: starts board $TAG-N; its facts in $STATE/board.env.
start_board() {
	local n=$1 addr=$2 st=$3 port=${4:-}
	[ -n "$port" ] || port=$(free_port "$addr")
	mkdir -p "$st"
	BOARD_STATES+=("$st")
	"$BOARD_SH" start "$TAG-$n" "$addr" "$port" "$st" >"$st/start.out" 2>&1 || {
		cat "$st/start.out" >&2
		fail "board $n did not start"
	}
}

benv() { (. "$1/board.env" && eval "echo \$$2"); }

on_board() { # on_board STATE CMD...
	local st=$1
	shift
	ssh -q -i "$(benv "$st" BOARD_KEY)" -p "$(benv "$st" BOARD_PORT)" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o BatchMode=yes "root@$(benv "$st" BOARD_ADDR)" "$@"
}

current_of() { readlink "$(benv "$1" BOARD_ROOT)/opt/ems/current" || true; }

for n in 1 2 3; do
	start_board "$n" "127.0.0.6$n" "$T/board$n"
done
ok "$SECONDS s: three simulated aarch64 boards up"

start_server
start_agent a1 --targets host,aarch64-unknown-linux-gnu --labels deploy=true
for n in 1 2 3; do
	st="$T/board$n"
	out=$(anvil board add "b$n" --host "$(benv "$st" BOARD_ADDR)" --port "$(benv "$st" BOARD_PORT)" \
		--key "$(benv "$st" BOARD_KEY)" --arch aarch64 --group lab --label room=lab --trust) ||
		fail "board add b$n"
	echo "$out" | grep -qF "$(benv "$st" BOARD_HOSTKEY_FP)" || fail "board add did not show b$n's fingerprint: $out"
done
anvil boards | grep -q "b3 .*aarch64 .*lab" || fail "anvil boards does not list b3"
api /api/v1/boards | grep -q "PRIVATE" && fail "a private key leaked into GET /api/v1/boards"
ok "$SECONDS s: boards added with --trust, fingerprints pinned, keys never answered"

make_repo app
cp -r "$S/tests/fixtures/cproj/." "$T/src/app/"
write_yml() { # write_yml HEALTH_WORD
	cat >"$T/src/app/.anvil.yml" <<YML
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: make CC="\$CC" hello
  - run: printf '#!/bin/sh\\n./current/hello\\n' >health.sh && chmod +x health.sh
artifacts: [hello, health.sh]
deploy:
  - group: lab
    on: {branch: main}
    install: /opt/ems
    files: [hello, health.sh]
    restart: echo restarted
    health: ./current/health.sh | grep '$1'
    health_timeout: 3s
    keep: 3
    strategy: {canary: 1, batch: 2}
YML
}
write_yml "hello from aarch64"
commit_push app "first release" >/dev/null
P1=$(latest_pipeline)
wait_until 600 pipeline_is "$P1" success || fail "pipeline $P1 is $(pipeline_state "$P1"): $(api /api/v1/pipelines/$P1)"
D1=$(api "/api/v1/pipelines/$P1" | jq -r '.jobs[] | select(.kind=="deploy") | .id')
[ -n "$D1" ] || fail "no deploy job in pipeline $P1"
C1=$(api "/api/v1/pipelines/$P1" | jq -r .commit)
R1="releases/p$P1-${C1:0:8}"
for n in 1 2 3; do
	[ "$(current_of "$T/board$n")" = "$R1" ] || fail "b$n current is '$(current_of "$T/board$n")', want $R1"
	[ "$(on_board "$T/board$n" /opt/ems/current/hello)" = "hello from aarch64" ] || fail "hello does not run on b$n"
	# A script keeps its executable bit on the board (issue 19 item 10).
	[ "$(on_board "$T/board$n" stat -c %a /opt/ems/current/health.sh)" = 755 ] ||
		fail "health.sh on b$n is $(on_board "$T/board$n" stat -c %a /opt/ems/current/health.sh)"
done
log_has "$D1" "canary: boards 1..1 of 3" || fail "deploy log has no canary line"
log_has "$D1" "glibc" || fail "deploy log has no glibc check"
[ "$(api /api/v1/deployments/$D1 | jq '[.boards[] | select(.state=="healthy")] | length')" = 3 ] ||
	fail "deployment $D1 does not show 3 healthy boards"
anvil boards | grep -q "b1 .*p$P1-" || fail "anvil boards does not show b1's current release"
ok "$SECONDS s: push → build → deploy job $D1: every board's current is $R1 and the binary runs there"
page=$(curl -s "$URL/boards")
grep -q "b3" <<<"$page" && grep -q "p$P1-" <<<"$page" || fail "the /boards page lacks b3 or its release"
grep -q "PRIVATE" <<<"$page" && fail "a private key leaked into the /boards page"
curl -s "$URL/deployments" | grep "3 healthy, 0 failed, 0 refused, 0 rolled back, 0 skipped of 3" >/dev/null ||
	fail "the /deployments page lacks the deployment's board counts"
# Board by board (issue 16): the deployment's page and each board's history.
page=$(curl -s "$URL/deployments/$D1")
[ "$(grep -o '<span class="st st-success">healthy</span>' <<<"$page" | wc -l)" = 3 ] ||
	fail "/deployments/$D1 does not show 3 healthy boards"
grep -q 'href="/boards/b3"' <<<"$page" && grep -q "href=\"/pipelines/$P1\"" <<<"$page" ||
	fail "/deployments/$D1 does not link its boards and pipeline"
page=$(curl -s "$URL/boards/b1")
grep -q "href=\"/deployments/$D1\"" <<<"$page" && grep -q "p$P1-" <<<"$page" ||
	fail "/boards/b1 does not list deployment $D1"
grep -q "PRIVATE" <<<"$page" && fail "a private key leaked into the board page"
ok "$SECONDS s: the UI's boards and deployments pages show them, board by board"

write_yml "hello from mars"
commit_push app "bad health" >/dev/null
P2=$(latest_pipeline)
wait_until 600 pipeline_is "$P2" failed || fail "pipeline $P2 is $(pipeline_state "$P2")"
D2=$(api "/api/v1/pipelines/$P2" | jq -r '.jobs[] | select(.kind=="deploy") | .id')
[ "$(job_state "$D2")" = failed ] || fail "deploy job $D2 is $(job_state "$D2")"
show=$(anvil deployment show "$D2")
grep -q "b1 *rolled_back" <<<"$show" || fail "b1 not rolled back: $show"
grep -q "b2 *skipped" <<<"$show" || fail "b2 not skipped: $show"
grep -q "b3 *skipped" <<<"$show" || fail "b3 not skipped: $show"
grep -q "health exited 1" <<<"$show" || fail "deployment show lacks the health result: $show"
for n in 1 2 3; do
	[ "$(current_of "$T/board$n")" = "$R1" ] || fail "b$n left $R1: $(current_of "$T/board$n")"
done
ok "$SECONDS s: failed health on the canary: rolled back, the batch skipped, every board still on $R1"

# An x86_64 artifact for the aarch64 boards: refused before anything is sent.
# The record says refused (docs/deploy.md), with the release b1 keeps.
cat >"$T/src/app/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu, host]
steps:
  - run: make CC="${CC:-cc}" hello
artifacts: [hello]
deploy:
  - group: lab
    install: /opt/ems
    files: [hello]
YML
commit_push app "two targets, manual deploy" >/dev/null
P3=$(latest_pipeline)
wait_until 600 pipeline_is "$P3" success || fail "pipeline $P3 is $(pipeline_state "$P3")"
D3=$(anvil deploy "$P3" --group lab --install /opt/ems --files hello --target host)
[ -n "$D3" ] || fail "anvil deploy did not queue a deployment"
wait_until 120 job_is "$D3" failed || fail "x86_64 deploy job $D3 is $(job_state "$D3")"
api "/api/v1/deployments/$D3" | jq -r '.boards[] | select(.board=="b1") | .message' | grep -q "x86_64" ||
	fail "b1's refusal does not name x86_64: $(api /api/v1/deployments/$D3)"
[ "$(api "/api/v1/deployments/$D3" | jq '[.boards[].bytes_sent] | add')" = 0 ] || fail "bytes were sent"
[ "$(current_of "$T/board1")" = "$R1" ] || fail "b1 left $R1"
b1=$(api "/api/v1/deployments/$D3" | jq -c '.boards[] | select(.board=="b1") | [.state, .previous, .current]')
[ "$b1" = "[\"refused\",\"$R1\",\"$R1\"]" ] || fail "b1's record after the x86_64 refusal: $b1, want refused on $R1"
ok "$SECONDS s: x86_64 artifact refused on the aarch64 canary, 0 bytes sent"

# The same pipeline's aarch64 build by hand (its entry has no `on:`), then
# a rollback: every board back on the release it was healthy on before.
D6=$(anvil deploy "$P3" --group lab)
wait_until 120 job_is "$D6" success || fail "manual deploy $D6 is $(job_state "$D6")"
C3=$(api "/api/v1/pipelines/$P3" | jq -r .commit)
R3="releases/p$P3-${C3:0:8}"
[ "$(current_of "$T/board3")" = "$R3" ] || fail "b3 is not on $R3 after the manual deploy"
D7=$(anvil rollback --group lab)
wait_until 120 job_is "$D7" success || fail "rollback $D7 is $(job_state "$D7"): $(api /api/v1/deployments/$D7)"
for n in 1 2 3; do
	[ "$(current_of "$T/board$n")" = "$R1" ] || fail "b$n is on $(current_of "$T/board$n") after the rollback, want $R1"
done
anvil deployments | grep -q "^$D7 *rollback *lab" || fail "anvil deployments does not list the rollback"
ok "$SECONDS s: manual deploy of $R3, then anvil rollback: every board back on $R1"

# b2 comes back on its address and port with a new host key: refused,
# nothing uploaded there.
"$BOARD_SH" stop "$T/board2" >/dev/null
start_board 2 127.0.0.62 "$T/board2b" "$(benv "$T/board2" BOARD_PORT)"
[ "$(benv "$T/board2b" BOARD_HOSTKEY_FP)" != "$(benv "$T/board2" BOARD_HOSTKEY_FP)" ] || fail "b2 kept its host key"
D5=$(anvil deploy "$P1" --group lab)
wait_until 120 job_is "$D5" failed || fail "deploy $D5 to a board with a changed host key is $(job_state "$D5")"
api "/api/v1/deployments/$D5" | jq -r '.boards[] | select(.board=="b2") | .message' | grep -q "host key mismatch" ||
	fail "b2's refusal is not a host key mismatch: $(api /api/v1/deployments/$D5)"
[ ! -e "$(benv "$T/board2b" BOARD_ROOT)/opt/ems" ] || fail "something was uploaded to b2"
[ "$(api "/api/v1/deployments/$D5" | jq -r '.boards[] | select(.board=="b1") | .state')" = healthy ] ||
	fail "the canary b1 did not stay healthy"
# The record agrees (issue 19 item 2): refused, not failed, in the store, API,
# CLI and UI, and the release the server last saw on b2 (R1, from the
# rollback) as both previous and current, not "-".
[ "$(db "SELECT state FROM deployment_boards WHERE job_id = $D5 AND board = 'b2'")" = refused ] ||
	fail "the store has b2 as $(db "SELECT state FROM deployment_boards WHERE job_id = $D5 AND board = 'b2'")"
b2=$(api "/api/v1/deployments/$D5" | jq -c '.boards[] | select(.board=="b2") | [.state, .previous, .current, .bytes_sent]')
[ "$b2" = "[\"refused\",\"$R1\",\"$R1\",0]" ] || fail "b2's record: $b2, want refused on $R1 with 0 bytes"
[ "$(api "/api/v1/deployments/$D5" | jq -c '.counts | [.refused, .failed]')" = "[1,0]" ] ||
	fail "deployment counts: $(api "/api/v1/deployments/$D5" | jq -c .counts)"
show=$(anvil deployment show "$D5")
grep -q "b2 *refused *release .*(was $R1, now $R1)" <<<"$show" || fail "deployment show: $show"
anvil deployments | grep -q "^$D5 .*(some failed/refused/skipped)" || fail "anvil deployments: $(anvil deployments)"
curl -s "$URL/deployments" | grep "2 healthy, 0 failed, 1 refused, 0 rolled back, 0 skipped of 3" >/dev/null ||
	fail "the /deployments page lacks the refused board: $(curl -s "$URL/deployments" | grep -o '[0-9]* healthy[^<]*')"
ok "$SECONDS s: changed host key refused with a clear error, nothing uploaded, recorded as refused on $R1"
