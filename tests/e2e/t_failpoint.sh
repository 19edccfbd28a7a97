#!/bin/bash
# Fault injection in the real server (--failpoints, testing only): an
# upload whose temp-file write or fsync fails answers a JSON 500 naming the
# failure and leaves no temp file; the server keeps serving; a real agent
# whose upload gets that 500 retries, and the artifact ends stored once,
# with the sha256 of the bytes the step made. tests/unit/test_torture.c
# tries every N; this checks the server binary's wiring of the failpoints.
. "$(dirname "$0")/lib.sh"

# write:1 fails the first upload write (the hand upload below), fsync:2 the
# fsync of the second upload that gets that far (the agent's first try).
start_server --failpoints write:1,fsync:2
grep -q 'event=failpoints_armed spec=write:1,fsync:2' "$T/server.log" || fail "armed failpoints not logged"
AT=$(cat "$T/data/agent.token")
AGT=(-H "Authorization: Bearer $AT")
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
# The temp file goes when libmicrohttpd completes the request, just after
# the answer is sent.
tmp_empty() { [ -z "$(ls "$T/data/blobs/tmp")" ]; }

make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: seq 1 300000 > app.bin
artifacts: [app.bin]
YML
commit_push demo "artifact" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")

# By hand first, as an agent would: claim, upload; the first write fails.
REG=$(curl -s -X POST "${AGT[@]}" "$URL/api/v1/agents/register" -d '{"name":"hand","labels":["target=host"]}')
AID=$(jq -r .agent_id <<<"$REG")
AGT=(-H "Authorization: Bearer $(jq -r .token <<<"$REG")")
[ "$(curl -s -X POST "${AGT[@]}" "$URL/api/v1/agents/claim" -d "{\"agent_id\":$AID,\"wait_ms\":1000}" |
	jq -r .job.id)" = "$J" ] || fail "hand claim did not get job $J"
head -c 300000 /dev/urandom >"$T/hand.bin"
hsha=$(sha256sum "$T/hand.bin" | cut -d' ' -f1)
put="$URL/api/v1/agents/jobs/$J/artifacts/hand.bin?attempt=1&sha256=$hsha"
st=$(code -X PUT "${AGT[@]}" "$put" --data-binary @"$T/hand.bin")
[ "$st" = 500 ] || fail "upload with write:1 armed answered $st: $(cat "$T/body")"
jq -e '.code == "internal" and (.error | test("failpoint write:1"))' "$T/body" >/dev/null ||
	fail "500 without a JSON error naming the failure: $(cat "$T/body")"
grep -q 'event=http_error method=PUT status=500 error="write .*failpoint write:1' "$T/server.log" ||
	fail "server did not log the failed write"
wait_until 5 tmp_empty || fail "the failed upload left a temp file: $(ls "$T/data/blobs/tmp")"
[ "$(api "/api/v1/jobs/$J/artifacts" | jq '.artifacts | length')" = 0 ] || fail "failed upload listed"
st=$(code -X PUT "${AGT[@]}" "$put" --data-binary @"$T/hand.bin")
[ "$st" = 201 ] || fail "resent upload answered $st: $(cat "$T/body")"
[ "$(curl -s "$URL/api/v1/jobs/$J/artifacts/hand.bin" | sha256sum | cut -d' ' -f1)" = "$hsha" ] ||
	fail "resent upload's bytes differ"
ok "failed upload write: JSON 500 naming it, no temp file, no row; the resend is stored"

# Give the job back (failed, then retried) to a real agent.
curl -s -X POST "${AGT[@]}" "$URL/api/v1/agents/jobs/$J/finish" -d '{"attempt":1,"state":"failed","message":"hand"}' >/dev/null
J2=$(admin_api POST "/api/v1/jobs/$J/retry" | jq -r '.id // empty')
[ -n "$J2" ] && [ "$J2" != null ] || fail "retry gave no job id"
start_agent a1
wait_until 60 job_is "$J2" success || fail "job $J2 is $(job_state "$J2")"
grep -q "HTTP 500: fsync .*failed by failpoint fsync:2.*retrying" "$T/agent-a1.log" ||
	fail "the agent did not get (and retry after) the failed fsync"
grep -q "event=http_error method=PUT status=500 error=\"fsync .*failpoint fsync:2" "$T/server.log" ||
	fail "server did not log the 500"
want=$(seq 1 300000 | sha256sum | cut -d' ' -f1)
[ "$(api "/api/v1/jobs/$J2/artifacts" | jq -r '.artifacts[] | select(.name == "app.bin") | .sha256')" = "$want" ] ||
	fail "artifact row: $(api "/api/v1/jobs/$J2/artifacts")"
[ "$(curl -s "$URL/api/v1/jobs/$J2/artifacts/app.bin" | sha256sum | cut -d' ' -f1)" = "$want" ] ||
	fail "downloaded artifact differs"
[ "$(sha256sum "$T/data/blobs/${want:0:2}/$want" | cut -d' ' -f1)" = "$want" ] || fail "blob file differs"
wait_until 5 tmp_empty || fail "temp file left: $(ls "$T/data/blobs/tmp")"
[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
kill -0 "$SERVER_PID" || fail "server died"
ok "agent upload with a failed fsync: 500, the agent retried, stored with the step's sha256"
