#!/bin/bash
# Deploying a signed release: a tag makes release v1.0.0 (aarch64 hello);
# `anvil deploy --release v1.0.0` puts it on a simulated aarch64 board with
# manifest.json, its signature and the public key, checks it on the board
# before the switch (this board has no signify-openbsd: the agent
# cross-builds anvil-verify for aarch64, installs it on the board, and the
# board runs it), then switches. Refusals, nothing switched: a tampered blob
# in the server's data dir; a board that pins another release key; a byte
# flipped in hello, then in manifest.json, as they land on the board
# (anvil-verify refuses on the board); a board whose glibc (as its getconf
# reports it) is older than the binary needs. Then the board gets
# signify-openbsd and checks the signature itself: a foreign pinned key
# refuses after the upload and before the switch. Needs root, binfmt
# qemu-aarch64, the cached board and target rootfs and signify-openbsd.
. "$(dirname "$0")/lib.sh"

command -v signify-openbsd >/dev/null || fail "signify-openbsd missing (scripts/deps.sh test)"
BOARD_SH="$S/qemu/board.sh"
BOARD_STATES=()

release_cleanup() {
	local rc=$?
	for st in "${BOARD_STATES[@]}"; do
		"$BOARD_SH" stop "$st" >/dev/null 2>&1 || true
	done
	set +e # under errexit, (exit rc) would end the trap before e2e_cleanup
	(exit $rc)
	e2e_cleanup
}
trap release_cleanup EXIT

free_port() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}
benv() { (. "$1/board.env" && eval "echo \$$2"); }

ST="$T/board1"
mkdir -p "$ST"
BOARD_STATES+=("$ST")
"$BOARD_SH" start "tdr$$" 127.0.0.71 "$(free_port 127.0.0.71)" "$ST" >"$ST/start.out" 2>&1 || {
	cat "$ST/start.out" >&2
	fail "board did not start"
}
ROOT=$(benv "$ST" BOARD_ROOT)
current_of() { readlink "$ROOT/opt/app/current" || true; }

start_server
start_agent a1 --targets aarch64-unknown-linux-gnu --labels deploy=true
anvil board add r1 --host 127.0.0.71 --port "$(benv "$ST" BOARD_PORT)" --key "$(benv "$ST" BOARD_KEY)" \
	--arch aarch64 --group rel --trust >/dev/null || fail "board add"

make_repo app
cp -r "$S/tests/fixtures/cproj/." "$T/src/app/"
cat >"$T/src/app/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: make CC="$CC" hello
artifacts: [hello]
YML
release_signed() { [ "$(api "/api/v1/releases/app/$1" | jq -r .signed)" = true ]; }
tag_release() { # tag_release VERSION: tags HEAD (lightweight), pushes, waits for the signed release
	git -C "$T/src/app" tag "$1"
	git -C "$T/src/app" push -q origin "$1"
	wait_until 600 release_signed "$1" || fail "release $1 not signed: $(api "/api/v1/releases/app/$1")"
}
deploy_release() { # deploy_release VERSION: prints the deployment id
	anvil deploy --release "$1" --group rel --install /opt/app --files hello \
		--health './current/hello | grep -q "hello from aarch64"'
}
job_done() { case "$(job_state "$1")" in success | failed | error) return 0 ;; esac; return 1; }

git -C "$T/src/app" add -A
git -C "$T/src/app" commit -q -m first
tag_release v1.0.0
ok "$SECONDS s: tag v1.0.0 → signed release"

# 1. deploy --release: verified on the board, then switched.
# A build of older anvil-verify sources in the agent's cache: replaced by the new build.
STALE="$T/agent-a1/cache/.anvil-verify/aarch64-unknown-linux-gnu-0123456789abcdef"
mkdir -p "$STALE"
touch "$STALE/anvil-verify"
D1=$(deploy_release v1.0.0)
[ -n "$D1" ] || fail "anvil deploy --release queued nothing"
wait_until 120 job_done "$D1"
[ "$(job_state "$D1")" = success ] || fail "deploy $D1 is $(job_state "$D1"): $(api "/api/v1/jobs/$D1/log")"
[ "$(current_of)" = releases/v1.0.0 ] || fail "current is '$(current_of)', want releases/v1.0.0"
for f in hello manifest.json manifest.json.sig anvil-release.pub SHA256SUMS; do
	[ -s "$ROOT/opt/app/releases/v1.0.0/$f" ] || fail "$f missing on the board"
done
signify-openbsd -V -p "$T/data/release.pub" -m "$ROOT/opt/app/releases/v1.0.0/manifest.json" \
	-x "$ROOT/opt/app/releases/v1.0.0/manifest.json.sig" >/dev/null || fail "the board's manifest does not verify"
log_has "$D1" "manifest signature verified on the agent" || fail "no agent-side signature line"
log_has "$D1" "anvil-verify for aarch64-unknown-linux-gnu: cross-built in" ||
	fail "anvil-verify was not built: $(api "/api/v1/jobs/$D1/log")"
log_has "$D1" "board r1: anvil-verify installed at ~/.anvil/bin/anvil-verify" || fail "anvil-verify not installed"
log_has "$D1" "no signify-openbsd: anvil-verify checks the signature of release v1.0.0 (by the uploaded key)" ||
	fail "the log does not say which check ran"
log_has "$D1" "release check exited 0: anvil-verify: manifest.json signed by key" ||
	fail "anvil-verify's verdict is not in the log"
VERIFIER="$ROOT/root/.anvil/bin/anvil-verify"
file "$VERIFIER" | grep -q 'ARM aarch64.*statically linked' || fail "the board's anvil-verify: $(file "$VERIFIER")"
cmp -s "$VERIFIER" "$T"/agent-a1/cache/.anvil-verify/aarch64-unknown-linux-gnu-*/anvil-verify ||
	fail "the board's anvil-verify is not the agent's cached build"
[ ! -e "$STALE" ] || fail "the stale build is still in the cache"
# The record counts every byte sent to the board, anvil-verify's too (issue
# 19 item 2): the release's files, all new here, plus the verifier.
sent=$(api "/api/v1/deployments/$D1" | jq -r '.boards[0].bytes_sent')
want=$(($(cat "$ROOT"/opt/app/releases/v1.0.0/* | wc -c) + $(stat -c %s "$VERIFIER")))
[ "$sent" = "$want" ] || fail "deployment $D1 records $sent bytes sent, the board got $want (anvil-verify $(stat -c %s "$VERIFIER"))"
ok "$SECONDS s: anvil-verify $(api "/api/v1/jobs/$D1/log" | grep -o 'cross-built in [0-9]* ms, [0-9]* bytes'), installed; the board's check: $(api "/api/v1/jobs/$D1/log" | grep -o '[0-9]* file(s), [0-9]* bytes match SHA256SUMS and the manifest ([0-9]* ms)')"
[ "$(api "/api/v1/deployments/$D1" | jq -r '.release + " " + (.signed|tostring)')" = "v1.0.0 true" ] ||
	fail "deployment does not show the signed release: $(api "/api/v1/deployments/$D1")"
ok "$SECONDS s: deploy --release v1.0.0: manifest, signature, key and SHA256SUMS on the board, checked, current switched"

# 2. A tampered blob in the server's data dir: refused, nothing switched.
echo 'int puts(const char *); int main(void) { puts("hello from aarch64 v2"); return 0; }' >"$T/src/app/main.c"
git -C "$T/src/app" commit -q -am second
tag_release v1.1.0
SHA=$(api /api/v1/releases/app/v1.1.0 | jq -r '.files[] | select(.path | endswith("/hello")) | .sha256')
BLOB="$T/data/blobs/${SHA:0:2}/$SHA"
[ -f "$BLOB" ] || fail "blob $BLOB missing"
cp "$BLOB" "$T/blob.orig"
chmod u+w "$BLOB"
printf 'X' | dd of="$BLOB" bs=1 seek=200 conv=notrunc 2>/dev/null
D2=$(deploy_release v1.1.0)
wait_until 120 job_done "$D2"
[ "$(job_state "$D2")" != success ] || fail "a tampered release was deployed"
log_has "$D2" "sha256" || fail "the refusal does not name the sha256: $(api "/api/v1/jobs/$D2/log")"
[ "$(current_of)" = releases/v1.0.0 ] || fail "current moved to $(current_of)"
[ ! -e "$ROOT/opt/app/releases/v1.1.0/hello" ] || fail "the tampered file reached the board"
cp "$T/blob.orig" "$BLOB"
ok "$SECONDS s: tampered blob: deploy $D2 refused before the board, current still v1.0.0"

# 3. The board pins another key: the signature check refuses, nothing sent.
mkdir -p "$ROOT/etc/anvil"
signify-openbsd -G -n -p "$T/other.pub" -s "$T/other.sec" >/dev/null
cp "$T/other.pub" "$ROOT/etc/anvil/anvil-release.pub"
D3=$(deploy_release v1.1.0)
wait_until 120 job_done "$D3"
[ "$(job_state "$D3")" = failed ] || fail "deploy $D3 with a foreign pinned key is $(job_state "$D3")"
api "/api/v1/deployments/$D3" | jq -r '.boards[0].message' | grep -q "pinned on the board" ||
	fail "refusal does not name the pinned key: $(api "/api/v1/deployments/$D3")"
[ "$(api "/api/v1/deployments/$D3" | jq -r '.boards[0].bytes_sent')" = 0 ] || fail "bytes were sent"
[ "$(current_of)" = releases/v1.0.0 ] || fail "current moved to $(current_of)"
r1=$(api "/api/v1/deployments/$D3" | jq -c '.boards[0] | [.state, .previous, .current]')
[ "$r1" = '["refused","releases/v1.0.0","releases/v1.0.0"]' ] || fail "r1's record after the pinned-key refusal: $r1"
ok "$SECONDS s: board pinning another key: deploy $D3 refused, 0 bytes sent, current still v1.0.0"

# 4. The right key pinned: verified with it, switched.
cp "$T/data/release.pub" "$ROOT/etc/anvil/anvil-release.pub"
D4=$(deploy_release v1.1.0)
wait_until 120 job_done "$D4"
[ "$(job_state "$D4")" = success ] || fail "deploy $D4 is $(job_state "$D4"): $(api "/api/v1/jobs/$D4/log")"
log_has "$D4" "anvil-verify checks the signature of release v1.1.0 (by the pinned key)" ||
	fail "pinned-key check not logged"
log_has "$D4" "release check exited 0: anvil-verify: manifest.json signed by key $(jq -r .key "$ROOT/opt/app/releases/v1.1.0/manifest.json") (/etc/anvil/anvil-release.pub)" ||
	fail "the board did not verify with the pinned key: $(api "/api/v1/jobs/$D4/log")"
log_has "$D4" "already installed" || fail "the installed anvil-verify was not reused"
! log_has "$D4" "anvil-verify for aarch64" || fail "anvil-verify was built or sent again"
[ "$(current_of)" = releases/v1.1.0 ] || fail "current is '$(current_of)', want releases/v1.1.0"
ok "$SECONDS s: board pinning the release key: v1.1.0 verified with it by the installed anvil-verify and switched"

# 4b. A byte flipped as the files land on the board (an `mv` in the board's
# PATH that corrupts the file named in /tmp/tamper once ota has checked the
# .part and renamed it): anvil-verify on the board refuses, current stays.
# The board's anvil-verify is removed first: the agent's cached build is sent.
mkdir -p "$ROOT/usr/local/bin"
cat >"$ROOT/usr/local/bin/mv" <<'SH'
#!/bin/sh
/bin/mv "$@" || exit $?
t=$(cat /tmp/tamper 2>/dev/null) || exit 0
for a; do last=$a; done
case "$last" in */releases/*/"$t") printf X | dd of="$last" bs=1 seek=10 conv=notrunc 2>/dev/null ;; esac
exit 0
SH
chmod 755 "$ROOT/usr/local/bin/mv"
rm -f "$VERIFIER"
git -C "$T/src/app" commit -q --allow-empty -m tamper
tag_release v1.1.1
for victim in hello manifest.json; do
	rm -rf "$ROOT/opt/app/releases/v1.1.1"
	echo "$victim" >"$ROOT/tmp/tamper"
	D=$(deploy_release v1.1.1)
	wait_until 120 job_done "$D"
	[ "$(job_state "$D")" = failed ] || fail "deploy $D with $victim flipped on the board is $(job_state "$D")"
	msg=$(api "/api/v1/deployments/$D" | jq -r '.boards[0].message')
	case $victim in
	hello) want="anvil-verify: refused: hello: sha256 " ;;
	*) want="anvil-verify: refused: manifest.json.sig by /etc/anvil/anvil-release.pub: signature verification failed" ;;
	esac
	grep -qF "$want" <<<"$msg" || fail "the record does not say why ($want): $msg"
	log_has "$D" "release check exited 1: $want" || fail "the job log does not say why: $(api "/api/v1/jobs/$D/log")"
	[ "$(current_of)" = releases/v1.1.0 ] || fail "current moved to $(current_of)"
	# Failed after the upload: the record still says where current is.
	r1=$(api "/api/v1/deployments/$D" | jq -c '.boards[0] | [.state, .previous, .current]')
	[ "$r1" = '["failed","releases/v1.1.0","releases/v1.1.0"]' ] || fail "r1's record after the board's check failed: $r1"
	ok "$SECONDS s: $victim flipped on the board: deploy $D refused by anvil-verify, current still v1.1.0"
	[ "$victim" = hello ] || continue
	# The cached anvil-verify sent again is in the record's bytes.
	sent=$(api "/api/v1/deployments/$D" | jq -r '.boards[0].bytes_sent')
	[ "$sent" -gt "$(stat -c %s "$VERIFIER")" ] || fail "deployment $D records $sent bytes sent, less than anvil-verify alone"
	log_has "$D" "anvil-verify for aarch64-unknown-linux-gnu: cached build" ||
		fail "the cached anvil-verify was not sent: $(api "/api/v1/jobs/$D/log")"
	! log_has "$D" "cross-built" || fail "anvil-verify was built again"
done
rm -f "$ROOT/usr/local/bin/mv" "$ROOT/tmp/tamper"

# 4c. A deploy agent with no runner for the board's target cannot build
# anvil-verify: the older check runs (signature on the agent, sha256sum -c
# on the board) and the log says why. Then v1.1.0 again, and the agent back.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent a2 --targets none --labels deploy=true
rm -f "$VERIFIER"
for v in v1.1.1 v1.1.0; do
	D=$(deploy_release "$v")
	wait_until 120 job_done "$D"
	[ "$(job_state "$D")" = success ] || fail "deploy $D of $v is $(job_state "$D"): $(api "/api/v1/jobs/$D/log")"
	log_has "$D" "no signify-openbsd and no anvil-verify (this agent has no runner for aarch64-unknown-linux-gnu to build anvil-verify): signature verified on the agent with the key pinned on the board" ||
		fail "the fallback does not say why: $(api "/api/v1/jobs/$D/log")"
	log_has "$D" "hello: OK" || fail "sha256sum -c did not run"
	[ "$(current_of)" = "releases/$v" ] || fail "current is '$(current_of)', want releases/$v"
done
[ ! -e "$VERIFIER" ] || fail "anvil-verify was installed by an agent without the target"
ok "$SECONDS s: agent without the aarch64 target: older check, reason logged, v1.1.1 then v1.1.0 switched"
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent a1 --targets aarch64-unknown-linux-gnu --labels deploy=true

# 5. A board with an older glibc: `getconf` on the board (in its overlay's
# upper layer) reports glibc 2.17, older than the GLIBC_2.34 that hello
# (built against Debian 12's glibc) needs: refused with both versions named,
# nothing uploaded.
cp "$ROOT/usr/bin/getconf" "$T/getconf.orig"
printf '#!/bin/sh\necho "glibc 2.17"\n' >"$ROOT/usr/bin/getconf"
chmod 755 "$ROOT/usr/bin/getconf"
git -C "$T/src/app" commit -q --allow-empty -m third
tag_release v1.2.0
D5=$(deploy_release v1.2.0)
wait_until 120 job_done "$D5"
[ "$(job_state "$D5")" = failed ] || fail "deploy $D5 to an old-glibc board is $(job_state "$D5")"
msg=$(api "/api/v1/deployments/$D5" | jq -r '.boards[0].message')
grep -Eq "hello needs GLIBC_2\.[0-9]+, board r1 has glibc 2\.17" <<<"$msg" || fail "refusal does not name both versions: $msg"
r1=$(api "/api/v1/deployments/$D5" | jq -c '.boards[0] | [.state, .previous, .current]')
[ "$r1" = '["refused","releases/v1.1.0","releases/v1.1.0"]' ] || fail "r1's record after the glibc refusal: $r1"
[ "$(api "/api/v1/deployments/$D5" | jq -r '.boards[0].bytes_sent')" = 0 ] || fail "bytes were sent"
[ ! -e "$ROOT/opt/app/releases/v1.2.0" ] || fail "something was uploaded for v1.2.0"
[ "$(current_of)" = releases/v1.1.0 ] || fail "current moved to $(current_of)"
cp "$T/getconf.orig" "$ROOT/usr/bin/getconf"
ok "$SECONDS s: old glibc on the board: deploy $D5 refused ($msg), nothing uploaded"

# 6. A board with signify-openbsd verifies the signature itself, before the
# switch. (The host's x86_64 signify-openbsd and its libraries, copied into
# the board's overlay: the board's chroot runs x86_64 binaries natively.)
mkdir -p "$ROOT/lib64" "$ROOT/lib/x86_64-linux-gnu"
for l in $(ldd /usr/bin/signify-openbsd | grep -o '/[^ ]*'); do
	cp -L "$l" "$ROOT$l"
done
cp /usr/bin/signify-openbsd "$ROOT/usr/bin/signify-openbsd"
cp "$T/other.pub" "$ROOT/etc/anvil/anvil-release.pub"
D6=$(deploy_release v1.2.0)
wait_until 120 job_done "$D6"
[ "$(job_state "$D6")" = failed ] || fail "deploy $D6 with a foreign key pinned on a signify board is $(job_state "$D6")"
log_has "$D6" "signify-openbsd found" || fail "the log does not say the board verifies"
log_has "$D6" "release check exited 1" || fail "the board-side check did not refuse: $(api "/api/v1/jobs/$D6/log")"
[ -s "$ROOT/opt/app/releases/v1.2.0/manifest.json" ] || fail "the release was not uploaded before the check"
[ "$(current_of)" = releases/v1.1.0 ] || fail "current moved to $(current_of) despite the failed check"
[ "$(api "/api/v1/deployments/$D6" | jq -r '.boards[0].state + " " + .boards[0].current')" = "failed releases/v1.1.0" ] ||
	fail "r1's record after signify refused: $(api "/api/v1/deployments/$D6" | jq -c '.boards[0]')"
ok "$SECONDS s: signify board pinning another key: signify-openbsd -V on the board refused v1.2.0 after the upload, current still v1.1.0"
cp "$T/data/release.pub" "$ROOT/etc/anvil/anvil-release.pub"
D7=$(deploy_release v1.2.0)
wait_until 120 job_done "$D7"
[ "$(job_state "$D7")" = success ] || fail "deploy $D7 is $(job_state "$D7"): $(api "/api/v1/jobs/$D7/log")"
log_has "$D7" "Signature Verified" || fail "signify's verdict is not in the log"
log_has "$D7" "hello: OK" || fail "sha256sum -c did not run after signify"
[ "$(current_of)" = releases/v1.2.0 ] || fail "current is '$(current_of)', want releases/v1.2.0"
ok "$SECONDS s: signify board pinning the release key: verified on the board, v1.2.0 switched"

# 7. A tag pipeline's own deploy: entry deploys its signed release. The
# agent (a deploy agent too) claims again the moment the last build job
# finishes; the deploy job is held back until the signer has signed the
# release, so its claim carries the manifest and both the agent and the board
# (signify, release key pinned) verify it. A failing build leaves no deploy job.
cat >"$T/src/app/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: make CC="$CC" hello
artifacts: [hello]
deploy:
  - group: rel
    on: {tag: "v2*"}
    install: /opt/app
    files: [hello]
    health: ./current/hello | grep -q "hello from aarch64"
YML
cp "$T/src/app/main.c" "$T/main.c.good"
echo 'int broken(' >"$T/src/app/main.c"
git -C "$T/src/app" add -A
git -C "$T/src/app" commit -q -m "broken, with a deploy entry"
git -C "$T/src/app" tag v2.0.0-rc1
git -C "$T/src/app" push -q origin v2.0.0-rc1
PB=$(latest_pipeline)
wait_until 120 pipeline_is "$PB" failed || fail "broken tag pipeline $PB is $(pipeline_state "$PB")"
[ "$(api "/api/v1/pipelines/$PB" | jq '[.jobs[] | select(.kind == "deploy")] | length')" = 0 ] ||
	fail "a failed tag pipeline has a deploy job: $(api "/api/v1/pipelines/$PB")"
[ "$(db "SELECT count(*) FROM jobs WHERE kind = 'deploy' AND state IN ('queued', 'running')")" = 0 ] ||
	fail "a deploy job is left queued"
ok "$SECONDS s: tag pipeline $PB whose build failed: no release, no deploy job queued"

deploy_job_of() { api "/api/v1/pipelines/$1" | jq -r '.jobs[] | select(.kind == "deploy") | .id'; }
has_deploy_job() { [ -n "$(deploy_job_of "$1")" ]; }
cp "$T/main.c.good" "$T/src/app/main.c"
git -C "$T/src/app" commit -q -am "fixed"
git -C "$T/src/app" tag v2.0.0
git -C "$T/src/app" push -q origin v2.0.0
PT=$(latest_pipeline)
wait_until 600 has_deploy_job "$PT" || fail "tag pipeline $PT queued no deploy job: $(api "/api/v1/pipelines/$PT")"
DT=$(deploy_job_of "$PT")
wait_until 120 job_done "$DT"
[ "$(job_state "$DT")" = success ] || fail "deploy job $DT is $(job_state "$DT"): $(api "/api/v1/jobs/$DT/log")"
log_has "$DT" "manifest signature verified on the agent" || fail "the tag pipeline's deploy was not verified: $(api "/api/v1/jobs/$DT/log")"
[ "$(current_of)" = releases/v2.0.0 ] || fail "current is '$(current_of)', want releases/v2.0.0"
[ "$(api "/api/v1/deployments/$DT" | jq -r '.release + " " + (.signed|tostring)')" = "v2.0.0 true" ] ||
	fail "deployment does not show the signed release: $(api "/api/v1/deployments/$DT")"
signed_at=$(grep -n "event=release_signed .*version=v2.0.0 " "$T/server.log" | head -1 | cut -d: -f1)
claimed_at=$(grep -n "event=job_claimed job=$DT " "$T/server.log" | head -1 | cut -d: -f1)
[ -n "$signed_at" ] && [ -n "$claimed_at" ] && [ "$signed_at" -lt "$claimed_at" ] ||
	fail "deploy job $DT was claimed (line $claimed_at) before v2.0.0 was signed (line $signed_at)"
ok "$SECONDS s: tag v2.0.0's own deploy job $DT: handed out after the signature, verified on agent and board, switched"

# 8. Where each release is deployed: API, CLI, /releases.
[ "$(api /api/v1/releases/app/v2.0.0 | jq -c '[.deployed_to[] | [.board, .group]]')" = '[["r1","rel"]]' ] ||
	fail "v2.0.0 deployed_to: $(api /api/v1/releases/app/v2.0.0)"
[ "$(api /api/v1/releases/app/v1.0.0 | jq -c .deployed_to)" = '[]' ] || fail "v1.0.0 shown deployed"
[ "$(api '/api/v1/releases?repo=app' | jq -c '[.releases[] | select(.version == "v2.0.0") | .deployed_to[].board]')" = '["r1"]' ] ||
	fail "the release list lacks deployed_to"
anvil release show v2.0.0 | grep -Eq "deployed to +r1 \(group rel" || fail "anvil release show: $(anvil release show v2.0.0)"
curl -s "$URL/releases" | grep '<a href="/boards/r1">r1</a> (rel)' >/dev/null || fail "/releases does not show board r1"
ok "$SECONDS s: v2.0.0 deployed to r1 (group rel): API, list, anvil release show, /releases"

# 9. After a server restart the waiting deploy job is handed out once the
# release is signed. No deploy agent while v2.1.0 builds; the release's
# signature is then removed (a crash between recording and signing), the
# server restarted and a deploy agent started.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent b1 --targets aarch64-unknown-linux-gnu
git -C "$T/src/app" commit -q --allow-empty -m "v2.1.0"
git -C "$T/src/app" tag v2.1.0
git -C "$T/src/app" push -q origin v2.1.0
P21=$(latest_pipeline)
wait_until 600 has_deploy_job "$P21" || fail "tag pipeline $P21 queued no deploy job"
D21=$(deploy_job_of "$P21")
wait_until 30 release_signed v2.1.0 || fail "v2.1.0 not signed"
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
[ "$(db "SELECT state FROM jobs WHERE id = $D21")" = queued ] || fail "deploy job $D21 is not queued"
db "UPDATE releases SET manifest = NULL, signature = NULL, keynum = NULL WHERE version = 'v2.1.0'"
start_server
start_agent a1 --targets aarch64-unknown-linux-gnu --labels deploy=true
wait_until 120 job_done "$D21"
[ "$(job_state "$D21")" = success ] || fail "deploy job $D21 is $(job_state "$D21"): $(api "/api/v1/jobs/$D21/log")"
log_has "$D21" "manifest signature verified on the agent" || fail "deploy job $D21 was not verified"
[ "$(current_of)" = releases/v2.1.0 ] || fail "current is '$(current_of)', want releases/v2.1.0"
[ "$(api /api/v1/releases/app/v2.0.0 | jq -c .deployed_to)" = '[]' ] || fail "v2.0.0 still shown deployed"
ok "$SECONDS s: restart with v2.1.0 unsigned: signed at start, then deploy job $D21 handed out, verified, switched"

# 10. A second pipeline of tag v2.1.0 records no release (the first one
# did): its deploy job is ended, never run, with a message saying why.
anvil trigger app --url "$T/git/app.git" --ref refs/tags/v2.1.0 --commit "$(git -C "$T/src/app" rev-parse HEAD)" \
	--event tag >/dev/null || fail "trigger"
P22=$(latest_pipeline)
wait_until 600 has_deploy_job "$P22" || fail "second tag pipeline $P22 queued no deploy job"
D22=$(deploy_job_of "$P22")
job_canceled() { [ "$(job_state "$1")" = canceled ]; }
wait_until 30 job_canceled "$D22" || fail "deploy job $D22 of a second v2.1.0 pipeline is $(job_state "$D22")"
api "/api/v1/jobs/$D22" | jq -r .message | grep -q "release v2.1.0 of app was recorded from pipeline $P21" ||
	fail "unclear message: $(api "/api/v1/jobs/$D22" | jq -r .message)"
[ "$(db "SELECT count(*) FROM deployment_boards WHERE job_id = $D22")" = 0 ] || fail "deploy job $D22 touched a board"
ok "$SECONDS s: second v2.1.0 pipeline $P22: its deploy job $D22 canceled ($(api "/api/v1/jobs/$D22" | jq -r .message | cut -c1-60)...)"
