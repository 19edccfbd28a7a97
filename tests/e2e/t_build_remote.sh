#!/bin/bash
# `anvil build` against a farm elsewhere (issue 19 item 8): the agent runs in
# a network namespace of its own whose only way out is a forwarded socket to
# the server's address, and in a mount namespace where the server's data
# directory (scratch repositories, mirrors) and the forge's repositories are
# hidden. It builds a plain directory (no .git) and a forge repository by
# fetching each commit from the server over smart HTTP with its own token.
# A second agent, driven by hand, shows what an agent's token gets: the
# repository of a job it holds (read-only) and nothing else. Old scratch
# commits are pruned by retention, then the emptied scratch repository.
. "$(dirname "$0")/lib.sh"
NSFWD="$(cd "$(dirname "$0")" && pwd)/nsfwd.py"

start_server --lease 300 --scratch-retention-days 2 --housekeeping-interval 1
ENROLL=$(cat "$T/data/agent.token")
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
expect() {
	local want=$1 got
	shift
	got=$(code "$@")
	[ "$got" = "$want" ] || fail "expected $want, got $got for: $* ($(head -c 300 "$T/body"))"
}

# start_agent_ns NAME: the agent in new network and mount namespaces. Inside,
# 127.0.0.1:$PORT is a forwarder to a Unix socket whose other end (outside)
# connects to the server; $T/data and $T/git are covered by empty tmpfs
# mounts. Namespaces end with their last process: the agent (killed by pid
# at exit) and the inner forwarder (killed by the kernel when the agent
# dies, PR_SET_PDEATHSIG).
start_agent_ns() {
	local name=$1
	python3 "$NSFWD" unix "$T/fwd.sock" "$PORT" "$T/fwd-out.ready" >>"$T/fwd.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 test -e "$T/fwd-out.ready" || fail "outer forwarder did not start"
	cp "$T/data/agent.token" "$T/enroll.token"
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --net --mount --propagation private -- bash -c '
		set -e
		ip link set lo up
		mount -t tmpfs -o mode=0700,size=1m anvil-hidden "$1/data"
		mount -t tmpfs -o mode=0700,size=1m anvil-hidden "$1/git"
		setpriv --pdeathsig KILL python3 "$2" tcp "$3" "$1/fwd.sock" "$1/fwd-in.ready" &
		for _ in $(seq 1 200); do [ -e "$1/fwd-in.ready" ] && break; sleep 0.05; done
		exec "$4/anvil-agent" --server "http://127.0.0.1:$3" --token-file "$1/enroll.token" \
			--name "$5" --work "$1/agent-$5" --targets host
	' agent-ns "$T" "$NSFWD" "$PORT" "$B" "$name" >>"$T/agent-$name.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}

# ---- mallory: an agent driven by hand, holding job S of repository "secret"
REG=$(curl -s -X POST -H "Authorization: Bearer $ENROLL" "$URL/api/v1/agents/register" \
	-d '{"name":"mallory","labels":["target=host"]}')
MT=$(jq -r .token <<<"$REG")
[ -n "$MT" ] && [ "$MT" != null ] || fail "mallory did not register: $REG"
MAL=(-H "Authorization: Bearer $MT")
make_repo secret
printf 'steps:\n  - run: echo secret\n' >"$T/src/secret/.anvil.yml"
commit_push secret one >/dev/null
S=$(first_job "$(latest_pipeline)")
SECRET_C=$(git -C "$T/src/secret" rev-parse HEAD)
claim=$(curl -s -X POST "${MAL[@]}" "$URL/api/v1/agents/claim" -d '{"wait_ms":5000}')
[ "$(jq -r .job.id <<<"$claim")" = "$S" ] || fail "mallory did not get job $S: $claim"
[ "$(jq -r .job.repo.fetch <<<"$claim")" = "/api/v1/agents/jobs/$S/git" ] || fail "claim names no fetch path: $claim"
SG="$URL/api/v1/agents/jobs/$S/git"

# git's own client, with the agent token as a header, clones the job's repository.
git -c http.extraHeader="Authorization: Bearer $MT" clone -q --bare "$SG" "$T/mallory.git" ||
	fail "git clone of a held job's repository failed"
[ "$(git --git-dir="$T/mallory.git" rev-parse refs/heads/main)" = "$SECRET_C" ] || fail "clone lacks the commit"
ok "an agent clones the repository of the job it holds from the server (git's own client)"

# No push, by either smart-HTTP route; git push fails.
expect 403 "${MAL[@]}" "$SG/info/refs?service=git-receive-pack"
expect 403 -X POST "${MAL[@]}" -H 'Content-Type: application/x-git-receive-pack-request' \
	--data-binary '0000' "$SG/git-receive-pack"
git -C "$T/mallory.git" update-ref refs/heads/evil "$SECRET_C"
if git -C "$T/mallory.git" -c http.extraHeader="Authorization: Bearer $MT" push -q "$SG" refs/heads/evil \
	>"$T/push.out" 2>&1; then
	fail "git push to the server was accepted"
fi
git --git-dir="$T/data/mirrors/$(db "SELECT id FROM repos WHERE name='secret'").git" \
	rev-parse -q --verify refs/heads/evil >/dev/null && fail "the push reached the mirror"
ok "receive-pack (push) is refused: 403 on both routes, git push fails, the mirror is unchanged"

# Other tokens, other paths, the dumb protocol, compressed and oversized bodies.
expect 401 "$SG/info/refs?service=git-upload-pack"
expect 401 -H "Authorization: Bearer $ENROLL" "$SG/info/refs?service=git-upload-pack"
expect 403 -H "Authorization: Bearer $(cat "$T/data/admin.token")" "$SG/info/refs?service=git-upload-pack"
expect 400 "${MAL[@]}" "$SG/info/refs"
expect 404 "${MAL[@]}" --path-as-is "$SG/../../../../../etc/passwd"
expect 404 "${MAL[@]}" "$SG/%2e%2e%2f%2e%2e%2fconfig"
expect 404 "${MAL[@]}" "$SG/HEAD"
expect 404 "${MAL[@]}" "$SG/objects/info/packs"
expect 404 "${MAL[@]}" "$URL/api/v1/agents/jobs/999/git/info/refs?service=git-upload-pack"
expect 400 -X POST "${MAL[@]}" -H 'Content-Encoding: gzip' --data-binary '0000' "$SG/git-upload-pack"
head -c 2000000 /dev/zero >"$T/big"
expect 413 -X POST "${MAL[@]}" --data-binary @"$T/big" "$SG/git-upload-pack"
curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving"
ok "no token, the enrollment secret, the admin token, other paths, dumb HTTP, gzip and 2 MB bodies are refused"

# ---- the remote agent: its own network and mount namespaces
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: |
      echo "forge repository built: $(cat msg.txt)"
YML
echo "from the forge" >"$T/src/demo/msg.txt"
commit_push demo one >/dev/null
D=$(first_job "$(latest_pipeline)")
start_agent_ns a1
wait_until 20 sh -c "curl -s '$URL/api/v1/agents' | jq -e '.agents[] | select(.name == \"a1\")'" ||
	fail "a1 did not register through the forwarder"
[ "$(nsenter -t "$AGENT_PID" -n ip -o link show | wc -l)" = 1 ] || fail "a1's namespace has more than lo: $(nsenter -t "$AGENT_PID" -n ip -o link show)"
nsenter -t "$AGENT_PID" -m test -e "$T/data/anvil.db" && fail "a1 sees the server's data directory"
nsenter -t "$AGENT_PID" -m test -e "$T/git/demo.git/HEAD" && fail "a1 sees the forge's repositories"
nsenter -t "$AGENT_PID" -n curl -s --max-time 2 "$URL/healthz" >/dev/null || fail "a1's namespace cannot reach the server"
ok "a1 runs with only lo, reaches the server through the forwarder, sees neither the server's data nor the forge"

wait_until 60 job_is "$D" success || fail "forge job $D: $(job_state "$D"): $(api "/api/v1/jobs/$D/log")"
log_has "$D" "forge repository built: from the forge" || fail "forge job log: $(api "/api/v1/jobs/$D/log")"
log_has "$D" "(from the server's copy)" || fail "forge job did not fetch from the server: $(api "/api/v1/jobs/$D/log")"
ok "a forge repository's job is checked out from the server's copy (the forge is out of a1's reach)"

# A plain directory, no .git anywhere above it.
W="$T/plain"
mkdir -p "$W/src"
cat >"$W/.anvil.yml" <<'YML'
artifacts: [report.txt]
steps:
  - name: build
    run: |
      echo "input: $(cat src/input.txt)"
      echo "report of $(cat src/input.txt)" >report.txt
YML
echo "first draft" >"$W/src/input.txt"
out=$(anvil build "$W" 2>"$T/build.err") || fail "anvil build exited $?: $out $(cat "$T/build.err")"
grep -qF "input: first draft" <<<"$out" || fail "log not followed: $out"
P=$(sed -n 's/^job \([0-9]*\) target host$/\1/p' <<<"$out")
A=$(sed -n 's/^pipeline [0-9]* commit \([0-9a-f]*\)$/\1/p' <<<"$out")
[ "$(jq -r .agent <<<"$(api "/api/v1/jobs/$P")")" = a1 ] || fail "job $P did not run on a1: $(api "/api/v1/jobs/$P")"
[ "$(api "/api/v1/jobs/$P/artifacts/report.txt")" = "report of first draft" ] ||
	fail "artifact: $(api "/api/v1/jobs/$P/artifacts/report.txt")"
[ ! -e "$W/.git" ] || fail "anvil build wrote a .git into the directory"
grep -q "event=git_serve job=$P " "$T/server.log" || fail "the server did not serve job $P's fetch"
ok "a plain directory builds on a1 (job $P): its log and artifact are right, fetched from the server"

# ---- what mallory's token gets of job P's repository: nothing
PG="$URL/api/v1/agents/jobs/$P/git"
expect 403 "${MAL[@]}" "$PG/info/refs?service=git-upload-pack"
expect 403 -X POST "${MAL[@]}" --data-binary '0000' "$PG/git-upload-pack"
# Asking for job P's commit through job S's repository: not advertised there.
printf '0032want %s\n00000009done\n' "$A" >"$T/want"
curl -s "${MAL[@]}" -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$T/want" \
	"$SG/git-upload-pack" >"$T/answer" || true
grep -qa "not our ref" "$T/answer" || fail "upload-pack answered: $(head -c 300 "$T/answer")"
grep -qa "PACK" "$T/answer" && fail "objects of another repository were sent"
if git -c http.extraHeader="Authorization: Bearer $MT" fetch -q "$SG" "$A" >"$T/fetch.out" 2>&1; then
	fail "git fetch of another repository's commit succeeded"
fi
ok "another agent's job is 403; another repository's commit is not served through the held job (not our ref)"

# The held job ends: its repository is closed to its agent too.
curl -s -X POST "${MAL[@]}" "$URL/api/v1/agents/jobs/$S/finish" -d '{"attempt":1,"state":"success","exit_code":0}' |
	jq -e '.state == "success"' >/dev/null || fail "mallory's finish refused"
expect 403 "${MAL[@]}" "$SG/info/refs?service=git-upload-pack"
ok "a finished job's repository is 403 to the agent that ran it"

# ---- retention: scratch commits older than --scratch-retention-days go
echo "second draft" >"$W/src/input.txt"
out=$(anvil build "$W" 2>"$T/build.err") || fail "second build exited $?: $out $(cat "$T/build.err")"
C=$(sed -n 's/^pipeline [0-9]* commit \([0-9a-f]*\)$/\1/p' <<<"$out")
SR="$T/data/scratch/plain-scratch.git"
MR="$T/data/mirrors/$(db "SELECT id FROM repos WHERE name='plain-scratch'").git"
for c in "$A" "$C"; do
	git --git-dir="$SR" rev-parse -q --verify "refs/anvil/build/$c" >/dev/null || fail "scratch lacks $c"
	git --git-dir="$MR" rev-parse -q --verify "refs/anvil/build/$c" >/dev/null || fail "mirror lacks $c"
done
# Age A's upload by ten days in its reflog (the server's time of the upload).
old=$(($(date +%s) - 10 * 86400))
sed -i -E "s/> [0-9]+ ([+-][0-9]{4})/> $old \\1/" "$SR/logs/refs/anvil/build/$A"
gone() { ! git --git-dir="$1" rev-parse -q --verify "refs/anvil/build/$2" >/dev/null; }
wait_until 20 gone "$SR" "$A" || fail "old scratch ref $A not pruned: $(grep scratch "$T/server.log" | tail -3)"
gone "$MR" "$A" || fail "old ref $A still in the server's mirror"
! gone "$SR" "$C" && ! gone "$MR" "$C" || fail "the recent ref $C was pruned too"
ok "a scratch commit older than the retention is pruned from the scratch repository and the mirror; a recent one stays"

sed -i -E "s/> [0-9]+ ([+-][0-9]{4})/> $old \\1/" "$SR/logs/refs/anvil/build/$C"
wait_until 20 test ! -e "$SR" || fail "emptied scratch repository not removed"
wait_until 5 test ! -e "$MR" || fail "emptied scratch repository's mirror not removed"
grep -q "event=scratch_repo_pruned repo=plain-scratch" "$T/server.log" || fail "no prune logged"
ok "a scratch repository left without commits is removed with its mirror"

# A new build of the same directory starts over.
out=$(anvil build "$W" 2>"$T/build.err") || fail "build after pruning exited $?: $out $(cat "$T/build.err")"
grep -qF "input: second draft" <<<"$out" || fail "log after pruning: $out"
ok "after pruning, the same directory builds again"
