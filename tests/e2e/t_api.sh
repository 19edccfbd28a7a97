#!/bin/bash
# The wire's edges: bad JSON, oversized bodies, bad and wrong-kind tokens,
# unknown routes, resent log chunks, bad artifact names and hashes, the log
# cap and the job timeout. The server keeps serving through all of it.
. "$(dirname "$0")/lib.sh"

start_server --log-cap 4096
AT=$(cat "$T/data/agent.token")
agent_api() {
	local method=$1 path=$2
	shift 2
	curl -s -X "$method" -H "Authorization: Bearer $AT" "$URL$path" "$@"
}
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
expect() { # expect STATUS CURL-ARGS...
	local want=$1
	shift
	local got
	got=$(code "$@")
	[ "$got" = "$want" ] || fail "$* answered $got, want $want: $(cat "$T/body")"
	jq -e '.error | length > 0' "$T/body" >/dev/null || fail "$* gave no JSON error: $(cat "$T/body")"
}
ADM=(-H "Authorization: Bearer $(cat "$T/data/admin.token")")
AGT=(-H "Authorization: Bearer $AT")

expect 400 -X POST "${ADM[@]}" "$URL/api/v1/trigger" -d '{"repo": '
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/trigger" -d '[1,2]'
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/trigger" -d '{"repo":"x"}'
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/trigger" -d '{"repo":"../x","url":"/x","ref":"r"}'
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/trigger" -d '{"repo":"x","url":"/x","ref":"r","commit":"zz"}'
head -c 2000000 /dev/zero | tr '\0' 'a' >"$T/big"
expect 413 -X POST "${ADM[@]}" "$URL/api/v1/trigger" --data-binary @"$T/big"
expect 413 -X POST "${ADM[@]}" -H 'Transfer-Encoding: chunked' "$URL/api/v1/trigger" --data-binary @"$T/big"
expect 401 -X POST "$URL/api/v1/trigger" -d '{}'
expect 401 -X POST -H "Authorization: Bearer nope" "$URL/api/v1/trigger" -d '{}'
expect 403 -X POST "${AGT[@]}" "$URL/api/v1/trigger" -d '{}'
expect 403 -X POST "${ADM[@]}" "$URL/api/v1/agents/register" -d '{"name":"x"}'
expect 404 "$URL/api/v1/nope"
expect 404 "$URL/api/v1/jobs/999"
expect 405 -X DELETE "$URL/api/v1/jobs/1"
expect 400 "$URL/api/v1/pipelines?limit=abc"
curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving"
ok "malformed, oversized and unauthorised requests get JSON 4xx"

# A repository with a job, driven by hand as an agent would.
make_repo demo
printf 'steps:\n  - run: echo hi\n' >"$T/src/demo/.anvil.yml"
commit_push demo "one"
P=$(latest_pipeline)
J=$(first_job "$P")
REG=$(agent_api POST /api/v1/agents/register -d '{"name":"hand","labels":["target=host"]}')
AID=$(jq -r .agent_id <<<"$REG")
# From here on the agent speaks with its own token (the enrollment secret only registers).
AT=$(jq -r .token <<<"$REG")
AGT=(-H "Authorization: Bearer $AT")
[ "$(agent_api POST /api/v1/agents/claim -d "{\"agent_id\":$AID,\"wait_ms\":1000}" | jq -r .job.id)" = "$J" ] ||
	fail "claim did not hand out job $J"
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=0" --data-binary $'line one\n' | jq -e '.accepted == true' >/dev/null ||
	fail "first chunk not accepted"
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=0" --data-binary $'line one\n' | jq -e '.accepted == false' >/dev/null ||
	fail "resent chunk was accepted again"
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=1" --data-binary $'line two\n' >/dev/null
[ "$(api "/api/v1/jobs/$J/log")" = $'line one\nline two' ] || fail "log is $(api "/api/v1/jobs/$J/log")"
expect 409 -X POST "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/log?attempt=7&seq=2" -d 'x'
expect 400 -X POST "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/log?attempt=1" -d 'x'
ok "a resent log chunk is not duplicated; a stale attempt is refused"

echo data >"$T/art"
sha=$(sha256sum "$T/art" | cut -d' ' -f1)
expect 400 -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/..%2F..%2Fetc%2Fpasswd?attempt=1&sha256=$sha" --data-binary @"$T/art"
expect 400 -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/a%00b?attempt=1&sha256=$sha" --data-binary @"$T/art"
expect 400 -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/ok.txt?attempt=1&sha256=$(printf '0%.0s' {1..64})" --data-binary @"$T/art"
expect 400 -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/ok.txt?attempt=1&sha256=$sha&mode=4755" --data-binary @"$T/art"
expect 400 -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/ok.txt?attempt=1&sha256=$sha&mode=rwx" --data-binary @"$T/art"
[ "$(ls "$T/data/blobs/tmp" | wc -l)" = 0 ] || fail "a refused upload left a temp file"
[ "$(code -X PUT "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/artifacts/dir%2Fok.txt?attempt=1&sha256=$sha" --data-binary @"$T/art")" = 201 ] ||
	fail "good artifact refused: $(cat "$T/body")"
[ "$(curl -s "$URL/api/v1/jobs/$J/artifacts/dir%2Fok.txt")" = data ] || fail "artifact bytes differ"
# An upload without mode= (an older agent) lists its mode as null.
[ "$(api "/api/v1/jobs/$J/artifacts" | jq -c '[.artifacts[] | .mode]')" = '[null]' ] ||
	fail "mode of an upload without one: $(api "/api/v1/jobs/$J/artifacts")"
ok "artifact names with .. or NUL, a wrong sha256 and a setuid or non-octal mode are refused"

# The log cap: past 4096 bytes one marker, the rest dropped, the job goes on.
head -c 3000 /dev/zero | tr '\0' 'x' >"$T/chunk"
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=2" --data-binary @"$T/chunk" >/dev/null
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=3" --data-binary @"$T/chunk" | jq -e '.truncated == true' >/dev/null ||
	fail "chunk past the cap not reported truncated"
agent_api POST "/api/v1/agents/jobs/$J/log?attempt=1&seq=4" --data-binary @"$T/chunk" | jq -e '.accepted == false' >/dev/null ||
	fail "chunk after truncation accepted"
log_has "$J" "[anvil: log truncated at 4096 bytes]" || fail "truncation marker missing"
n=$(api "/api/v1/jobs/$J/log" | wc -c)
[ "$n" -lt 4200 ] || fail "log is $n bytes, over the cap"
agent_api POST "/api/v1/agents/jobs/$J/finish" -d '{"attempt":1,"state":"success","exit_code":0}' | jq -e '.state == "success"' >/dev/null ||
	fail "finish refused"
expect 409 -X POST "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/finish" -d '{"attempt":1,"state":"failed"}'
ok "the log cap truncates with a marker; a finished job cannot be finished again"

# The boards' host key scan (anvil board add --trust) runs on the server: admin
# only, the host checked, a refused connection a JSON error (t_deploy scans a
# real sshd).
expect 401 -X POST "$URL/api/v1/boards/keyscan" -d '{"host":"127.0.0.1","port":22}'
expect 403 -X POST "${AGT[@]}" "$URL/api/v1/boards/keyscan" -d '{"host":"127.0.0.1","port":22}'
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/boards/keyscan" -d '{"host":"-oProxyCommand=x","port":22}'
expect 400 -X POST "${ADM[@]}" "$URL/api/v1/boards/keyscan" -d '{"host":"127.0.0.1","port":0}'
got=$(code -X POST "${ADM[@]}" "$URL/api/v1/boards/keyscan" -d '{"host":"127.0.0.1","port":1}')
case $got in 2*) fail "a scan of a closed port answered $got" ;; esac
jq -e '.error | test("127.0.0.1")' "$T/body" >/dev/null || fail "closed port: $(cat "$T/body")"
ok "the host key scan is admin only, checks its host and reports a refused connection"

# The job timeout, with a real agent.
start_agent a1
printf 'timeout: 2s\nsteps:\n  - run: echo sleeping; sleep 120\n' >"$T/src/demo/.anvil.yml"
commit_push demo "slow"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 job_is "$J" failed || fail "timed-out job is $(job_state "$J")"
log_has "$J" "timed out" || fail "timeout not logged"
ok "a job past its timeout is killed and failed"
curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving"
