#!/bin/bash
# A big live log, end to end: a step prints ~4.6 MB (more than the 1 MiB a
# log read answers, more than a job's 4 MiB in-memory tail) in two halves.
# A follower (`anvil logs -f`) reads it live while the server is killed -9
# between the halves and restarted (tail empty → store), and still gets every
# byte exactly once, in order. The whole log then downloads in one streamed
# answer through the API (?download=1), the CLI (`anvil logs JOB > file`) and
# the UI's "raw log" link (session cookie, also with --read-auth), each equal
# to the offset-paged log and holding exactly what the step printed.
. "$(dirname "$0")/lib.sh"

N=640000 # lines of `seq`: 4.6 MB
start_server
make_repo big
cat >"$T/src/big/.anvil.yml" <<YML
artifacts: [out/the report.txt]
steps:
  - name: print
    run: |
      echo BEGIN; seq 1 $((N / 2))
      n=0; while [ ! -e /cache/build/gate ] && [ \$n -lt 1200 ]; do sleep 0.05; n=\$((n+1)); done
      seq $((N / 2 + 1)) $N; echo END
      mkdir -p out; seq 1 1000 >"out/the report.txt"
YML
commit_push big "big log" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
[ -n "$J" ] && [ "$J" != null ] || fail "no job"
want=$(seq 1 "$N" | sha256sum | cut -d' ' -f1)

# The follower starts before the job does: everything it gets is live.
anvil logs -f "$J" >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW_PID=$!
PIDS+=("$FOLLOW_PID")
start_agent a1
half_logged() { [ "$(api "/api/v1/jobs/$J" | jq -r .log_bytes)" -gt 2000000 ] && grep -q "^$((N / 2))\$" "$T/follow.out"; }
wait_until 60 half_logged || fail "first half not logged and followed: $(api "/api/v1/jobs/$J" | jq -r .log_bytes) bytes"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
touch "$(step_dir a1 big)/gate"
wait_until 60 job_is "$J" success || fail "job is $(job_state "$J")"
wait_until 60 bash -c "! kill -0 $FOLLOW_PID" || fail "follower did not end"
wait "$FOLLOW_PID" || fail "follower exited $?: $(cat "$T/follow.err")"

bytes=$(api "/api/v1/jobs/$J" | jq -r .log_bytes)
[ "$bytes" -gt $((4 * 1024 * 1024)) ] || fail "log is only $bytes bytes"
# The reference: the log paged by offset, 1 MiB an answer.
off=0
: >"$T/paged.out"
while [ "$off" -lt "$bytes" ]; do
	curl -s -D "$T/h" "$URL/api/v1/jobs/$J/log?offset=$off" >>"$T/paged.out"
	next=$(tr -d '\r' <"$T/h" | sed -n 's/^X-Anvil-Log-Next: //Ip')
	[ "$next" -gt "$off" ] || fail "paging stuck at $off"
	[ $((next - off)) -le $((1024 * 1024)) ] || fail "one read answered $((next - off)) bytes"
	off=$next
done
ref=$(sha256sum <"$T/paged.out" | cut -d' ' -f1)
[ "$(stat -c %s "$T/paged.out")" = "$bytes" ] || fail "paged log is $(stat -c %s "$T/paged.out") bytes, want $bytes"
printed() { sed -n '/^BEGIN$/,/^END$/p' "$1" | sed '1d;$d' | sha256sum | cut -d' ' -f1; }
[ "$(printed "$T/paged.out")" = "$want" ] || fail "the paged log does not hold what the step printed"
[ "$(sha256sum <"$T/follow.out" | cut -d' ' -f1)" = "$ref" ] ||
	fail "the follower across the restart got $(stat -c %s "$T/follow.out") bytes, not the log's $bytes"
ok "a $bytes-byte log followed live across a server kill -9: every byte once, in order"

# API download: one streamed answer, the whole log.
curl -sf -D "$T/h" -o "$T/api.out" "$URL/api/v1/jobs/$J/log?download=1" || fail "API download failed"
tr -d '\r' <"$T/h" | grep -qi "^Content-Disposition: attachment; filename=\"job-$J.log\"" || fail "no attachment header: $(cat "$T/h")"
tr -d '\r' <"$T/h" | grep -qi "^Transfer-Encoding: chunked" || fail "download not streamed: $(cat "$T/h")"
[ "$(sha256sum <"$T/api.out" | cut -d' ' -f1)" = "$ref" ] || fail "API download: $(stat -c %s "$T/api.out") bytes differ"
anvil logs "$J" >"$T/cli.out" || fail "anvil logs failed"
[ "$(sha256sum <"$T/cli.out" | cut -d' ' -f1)" = "$ref" ] || fail "anvil logs: $(stat -c %s "$T/cli.out") bytes differ"
[ "$(printed "$T/cli.out")" = "$want" ] || fail "anvil logs does not hold what the step printed"
anvil logs 999999 >"$T/none.out" 2>"$T/none.err" && fail "anvil logs of no job succeeded"
[ ! -s "$T/none.out" ] || fail "an error answer reached stdout: $(cat "$T/none.out")"
ok "download: API ?download=1 and anvil logs give the whole $bytes bytes"

# The UI's raw log link, with and without --read-auth.
curl -sf "$URL/jobs/$J" >"$T/jobpage.html" && grep -q "href=\"/jobs/$J/log\"" "$T/jobpage.html" || fail "job page has no raw log link to /jobs/$J/log"
curl -sf -o "$T/ui.out" "$URL/jobs/$J/log" || fail "UI download failed"
[ "$(sha256sum <"$T/ui.out" | cut -d' ' -f1)" = "$ref" ] || fail "UI download differs"
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
# (not start_server: its health check reads /healthz without a token)
rm -f "$T/data/port"
"$B/anvil-server" --data "$T/data" --port "$PORT" ${ANVIL_TEST_STORE:+--store "$ANVIL_TEST_STORE"} --read-auth true \
	>>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 10 curl -sf -o /dev/null "$URL/login" || fail "read_auth server not answering"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/jobs/$J/log")
[ "$code" = "303 $URL/login?next=/jobs/$J/log" ] || fail "raw log without login answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/jobs/$J/log?download=1")
[ "$code" = 401 ] || fail "API download without a token answered $code"
curl -s -o /dev/null -c "$T/jar" --data-urlencode "token=$(cat "$T/data/admin.token")" "$URL/login"
curl -sf -b "$T/jar" -o "$T/ui2.out" "$URL/jobs/$J/log" || fail "logged-in UI download failed"
[ "$(sha256sum <"$T/ui2.out" | cut -d' ' -f1)" = "$ref" ] || fail "logged-in UI download differs"
anvil logs "$J" >"$T/cli2.out" || fail "anvil logs with the admin token failed under read_auth"
[ "$(sha256sum <"$T/cli2.out" | cut -d' ' -f1)" = "$ref" ] || fail "anvil logs under read_auth differs"
# The job page's artifact links: cookie-checked like the raw log.
art_want=$(seq 1 1000 | sha256sum | cut -d' ' -f1)
art_path="/jobs/$J/artifacts/out/the%20report.txt"
curl -sf -b "$T/jar" "$URL/jobs/$J" >"$T/jobpage2.html" && grep -q "href=\"$art_path\"" "$T/jobpage2.html" ||
	fail "job page has no artifact link to $art_path: $(curl -sf -b "$T/jar" "$URL/jobs/$J" | grep -o 'href="[^"]*artifacts[^"]*"')"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL$art_path")
[ "${code%% *}" = 303 ] && [[ "$code" == *"/login?next="* ]] || fail "artifact without login answered $code"
curl -sf -b "$T/jar" -o "$T/art.out" "$URL$art_path" || fail "logged-in artifact download failed"
[ "$(sha256sum <"$T/art.out" | cut -d' ' -f1)" = "$art_want" ] || fail "artifact bytes differ"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" "$URL/jobs/$J/artifacts/nope.txt")
[ "$code" = 404 ] || fail "a missing artifact answered $code"
ok "the UI's raw log link downloads the whole log with the session cookie (read_auth: login first); so do its artifact links"
