#!/bin/bash
# Per-agent identity (DESIGN "The wire"): agent.token is an enrollment
# secret that only registers; each agent gets its own token, and every agent
# route checks that the job's current attempt is the calling agent's.
# - the enrollment secret alone gets 401 on claim (and on every job route);
# - a second agent gets 403 and stores nothing for heartbeat, log, artifact
#   and finish on the first agent's job;
# - `anvil agent rm` revokes the token at once (401) and requeues the running
#   job, which another agent then finishes at attempt 2;
# - registering a name again revokes its previous token and requeues its job;
# - a claim carries no ANVIL_GIT_* value, in its env or in its mask list;
# - a repository bound with `repo add --agents site=x` is claimed only by an
#   agent with that label, a real agent included.
. "$(dirname "$0")/lib.sh"

start_server
ENR=$(cat "$T/data/agent.token")
ADM=(-H "Authorization: Bearer $(cat "$T/data/admin.token")")
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
expect() { # expect STATUS CURL-ARGS...
	local want=$1
	shift
	local got
	got=$(code "$@")
	[ "$got" = "$want" ] || fail "$* answered $got, want $want: $(cat "$T/body")"
	jq -e '.error | length > 0' "$T/body" >/dev/null || fail "$* gave no JSON error: $(cat "$T/body")"
}
register() { # register NAME LABELS-JSON: prints the answer
	curl -s -X POST -H "Authorization: Bearer $ENR" "$URL/api/v1/agents/register" \
		-d "{\"name\":\"$1\",\"labels\":$2}"
}
as() { # as TOKEN METHOD PATH [curl args]
	local tok=$1 method=$2 path=$3
	shift 3
	curl -s -X "$method" -H "Authorization: Bearer $tok" "$URL$path" "$@"
}

# ---- enrollment
R1=$(register h1 '["target=host"]')
R2=$(register h2 '["target=host"]')
T1=$(jq -r .token <<<"$R1")
T2=$(jq -r .token <<<"$R2")
[ ${#T1} -ge 32 ] && [ ${#T2} -ge 32 ] && [ "$T1" != "$T2" ] && [ "$T1" != "$ENR" ] ||
	fail "register did not give each agent its own token: $R1 $R2"
for f in "$T"/data/anvil.db*; do
	grep -qaF "$T1" "$f" && fail "agent token text in $f"
done
[ "$(db "SELECT token_sha256 FROM agents WHERE name='h1'")" = "$(printf '%s' "$T1" | sha256sum | cut -d' ' -f1)" ] ||
	fail "agents table does not hold h1's token sha256"
expect 401 -X POST -H "Authorization: Bearer $ENR" "$URL/api/v1/agents/claim" -d '{"wait_ms":0}'
expect 403 -X POST "${ADM[@]}" "$URL/api/v1/agents/claim" -d '{"wait_ms":0}'
expect 403 -X POST -H "Authorization: Bearer $T1" "$URL/api/v1/agents/register" -d '{"name":"x"}'
expect 401 -X POST -H "Authorization: Bearer $ENR" "$URL/api/v1/agents/jobs/1/finish" -d '{"attempt":1,"state":"success"}'
ok "register gives each agent its own token (stored hashed); the enrollment secret alone gets 401 on claim"

# ---- a repository with a secret and a push credential, one job
make_repo demo
anvil repo add demo "$T/git/demo.git" >/dev/null
printf 'plain-secret-%s' "$$" | anvil secret set demo FOO >/dev/null || fail "secret set FOO"
GIT_TOKEN="git-push-token-$$-Zq9"
printf '%s' "$GIT_TOKEN" | anvil secret set demo ANVIL_GIT_TOKEN >/dev/null || fail "secret set ANVIL_GIT_TOKEN"
printf 'steps:\n  - run: echo hi\n' >"$T/src/demo/.anvil.yml"
commit_push demo "one" >/dev/null
J=$(first_job "$(latest_pipeline)")
CLAIM=$(as "$T1" POST /api/v1/agents/claim -d '{"wait_ms":5000}')
[ "$(jq -r .job.id <<<"$CLAIM")" = "$J" ] || fail "h1 did not claim job $J: $CLAIM"
grep -qF "$GIT_TOKEN" <<<"$CLAIM" && fail "the claim carries ANVIL_GIT_TOKEN's value: $CLAIM"
jq -e '.job.secrets | any(startswith("FOO=plain-secret-"))' <<<"$CLAIM" >/dev/null || fail "FOO not in the claim's env"
jq -e '.job.secrets as $env | .job.mask | all(. as $v | $env | any(endswith("=" + $v)))' <<<"$CLAIM" >/dev/null ||
	fail "the mask list holds a value that is not in the job's env: $CLAIM"
ok "a claim carries no ANVIL_GIT_* value; its mask list holds only values of its env"

# ---- another agent on h1's job: 403, nothing stored
echo injected >"$T/evil"
esha=$(sha256sum "$T/evil" | cut -d' ' -f1)
expect 403 -X POST -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/heartbeat" -d '{"attempt":1}'
expect 403 -X POST -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/log?attempt=1&seq=0" --data-binary 'evil line'
expect 403 -X PUT -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/artifacts/app.bin?attempt=1&sha256=$esha" --data-binary @"$T/evil"
expect 403 -X POST -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/finish" -d '{"attempt":1,"state":"success","exit_code":0}'
expect 403 -X POST -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/deploy" -d '{"attempt":1,"board":"b","state":"uploading"}'
[ "$(db "SELECT count(*) FROM log_chunks WHERE job_id=$J")" = 0 ] || fail "another agent's log chunk was stored"
[ "$(db "SELECT count(*) FROM artifacts WHERE job_id=$J")" = 0 ] || fail "another agent's artifact was stored"
[ "$(db "SELECT count(*) FROM blobs WHERE sha256='$esha'")" = 0 ] || fail "another agent's blob was stored"
[ -z "$(ls "$T/data/blobs/tmp")" ] || fail "a refused upload left a temp file"
[ "$(job_state "$J")" = running ] || fail "job $J is $(job_state "$J") after another agent's finish"
# h1 itself is served.
as "$T1" POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=0" --data-binary $'h1 line\n' | jq -e '.accepted == true' >/dev/null ||
	fail "h1's own log chunk refused"
echo real >"$T/real"
[ "$(code -X PUT -H "Authorization: Bearer $T1" "$URL/api/v1/agents/jobs/$J/artifacts/app.bin?attempt=1&sha256=$(sha256sum "$T/real" | cut -d' ' -f1)" --data-binary @"$T/real")" = 201 ] ||
	fail "h1's own artifact refused: $(cat "$T/body")"
expect 403 -X PUT -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/artifacts/app.bin?attempt=1&sha256=$esha" --data-binary @"$T/evil"
[ "$(curl -s "$URL/api/v1/jobs/$J/artifacts/app.bin")" = real ] || fail "the artifact was overwritten"
ok "a second agent gets 403 on the first agent's job and stores nothing (log, artifact, finish, heartbeat, deploy report)"

# ---- anvil agent rm: 401 at once, the job requeued, another agent finishes it
out=$(anvil agent rm h1) || fail "agent rm: $out"
grep -q "requeued" <<<"$out" || fail "agent rm did not say the job was requeued: $out"
expect 401 -X POST -H "Authorization: Bearer $T1" "$URL/api/v1/agents/jobs/$J/heartbeat" -d '{"attempt":1}'
expect 401 -X POST -H "Authorization: Bearer $T1" "$URL/api/v1/agents/claim" -d '{"wait_ms":0}'
[ "$(job_state "$J")" = queued ] || fail "job $J is $(job_state "$J") after agent rm"
api /api/v1/agents | jq -e '.agents | map(.name) | index("h1") == null' >/dev/null || fail "h1 still listed"
[ "$(as "$T2" POST /api/v1/agents/claim -d '{"wait_ms":5000}' | jq -r '.job.id, .job.attempt' | tr '\n' ' ')" = "$J 2 " ] ||
	fail "h2 did not claim job $J at attempt 2"
as "$T2" POST "/api/v1/agents/jobs/$J/finish" -d '{"attempt":2,"state":"success","exit_code":0}' | jq -e '.state == "success"' >/dev/null ||
	fail "h2 could not finish job $J"
expect 404 -X DELETE "${ADM[@]}" "$URL/api/v1/agents/nope"
expect 403 -X DELETE -H "Authorization: Bearer $T2" "$URL/api/v1/agents/h2"
ok "agent rm: the old token gets 401 at once, the job is requeued and finished by another agent"

# ---- registering a name again: the old token stops, its job is requeued
echo two >"$T/src/demo/two"
commit_push demo "two" >/dev/null
J=$(first_job "$(latest_pipeline)")
[ "$(as "$T2" POST /api/v1/agents/claim -d '{"wait_ms":5000}' | jq -r .job.id)" = "$J" ] || fail "h2 did not claim $J"
T2B=$(register h2 '["target=host"]' | jq -r .token)
expect 401 -X POST -H "Authorization: Bearer $T2" "$URL/api/v1/agents/jobs/$J/heartbeat" -d '{"attempt":1}'
[ "$(job_state "$J")" = queued ] || fail "job $J is $(job_state "$J") after h2 registered again"
[ "$(as "$T2B" POST /api/v1/agents/claim -d '{"wait_ms":5000}' | jq -r .job.attempt)" = 2 ] || fail "requeued job not at attempt 2"
as "$T2B" POST "/api/v1/agents/jobs/$J/finish" -d '{"attempt":2,"state":"success","exit_code":0}' >/dev/null
ok "registering a name again revokes its previous token and requeues its running job"

# ---- a repository bound to an agent pool
make_repo pooled
anvil repo add pooled "$T/git/pooled.git" --agents site=x >/dev/null || fail "repo add --agents"
api /api/v1/repos | jq -e '.repos[] | select(.name == "pooled") | .agents == "site=x"' >/dev/null ||
	fail "GET /api/v1/repos does not show the pool: $(api /api/v1/repos)"
anvil repos | grep -E '^[0-9]+ +pooled .*site=x' >/dev/null || fail "anvil repos does not show the pool: $(anvil repos)"
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/repos" -d "{\"name\":\"pooled\",\"url\":\"$T/git/pooled.git\",\"agents\":\"site\"}"
# an upsert without --agents keeps the pool
anvil repo add pooled "$T/git/pooled.git" >/dev/null
api /api/v1/repos | jq -e '.repos[] | select(.name == "pooled") | .agents == "site=x"' >/dev/null ||
	fail "repo add without --agents dropped the pool"
printf 'steps:\n  - run: echo pooled-ran\n' >"$T/src/pooled/.anvil.yml"
commit_push pooled "pooled" >/dev/null
J=$(first_job "$(latest_pipeline)")
[ "$(code -X POST -H "Authorization: Bearer $T2B" "$URL/api/v1/agents/claim" -d '{"wait_ms":1000}')" = 204 ] ||
	fail "an agent without site=x was handed the pooled job: $(cat "$T/body")"
start_agent plain
wait_until 10 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents | any(.name == \"plain\")'" || fail "agent plain did not register"
! wait_until 3 bash -c "[ \"\$(curl -s $URL/api/v1/jobs/$J | jq -r .state)\" != queued ]" ||
	fail "agent plain (no site=x) took the pooled job: $(api "/api/v1/jobs/$J")"
start_agent sited --labels site=x
wait_until 60 job_is "$J" success || fail "pooled job $J is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .agent)" = sited ] || fail "pooled job ran on $(api "/api/v1/jobs/$J" | jq -r .agent)"
log_has "$J" pooled-ran || fail "pooled job log: $(api "/api/v1/jobs/$J/log")"
ok "a repo bound with --agents site=x is not claimed by an agent without that label, and is by a real agent with it"
curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving"
