#!/bin/bash
# Issue 15, pipeline control: cancel a whole pipeline; retry its failed jobs
# (and the jobs their failure canceled) with one command; retrying one
# failed need re-queues the jobs it canceled.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
G=$(step_dir a1 demo)
# build fails until the test drops a gate file into the step's cache dir;
# test needs build.
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  build:
    steps:
      - test -e /cache/build/gate-$(cat README) && echo built-$(cat README)
  test:
    needs: [build]
    steps:
      - echo tested-$(cat README)
YML
echo one >"$T/src/demo/README"
commit_push demo "dag"
P=$(latest_pipeline)
wait_until 60 pipeline_is "$P" failed || fail "pipeline is $(pipeline_state "$P")"
BJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.name == "build") | .id')
TJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.name == "test") | .id')
job_is "$TJ" canceled || fail "test is $(job_state "$TJ")"
touch "$G/gate-one"
out=$(anvil pipeline retry "$P" --failed) || fail "pipeline retry failed: $out"
echo "$out" | grep -q "2 jobs retried" || fail "pipeline retry said: $out"
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P") after retry"
NT=$(api "/api/v1/pipelines/$P" | jq -r --arg t "$TJ" '.jobs[] | select(.retry_of == ($t | tonumber)) | .id')
[ -n "$NT" ] && log_has "$NT" tested-one || fail "test's retry did not run"
code=$(admin_api POST "/api/v1/pipelines/$P/retry" -o "$T/r.json" -w '%{http_code}')
[ "$code" = 409 ] && jq -e '.error | test("no failed")' "$T/r.json" >/dev/null ||
	fail "retry of a green pipeline answered $code $(cat "$T/r.json")"
ok "pipeline retry --failed re-queues the failed job and the job its failure canceled"

# Retrying only the failed need re-queues what it canceled.
echo two >"$T/src/demo/README"
commit_push demo "two"
P=$(latest_pipeline)
wait_until 60 pipeline_is "$P" failed || fail "pipeline is $(pipeline_state "$P")"
BJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.name == "build") | .id')
touch "$G/gate-two"
anvil retry "$BJ" >/dev/null || fail "retry of build failed"
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P") after retrying build"
[ "$(api "/api/v1/pipelines/$P" | jq '[.jobs[] | select(.name == "test")] | length')" = 2 ] ||
	fail "test was not re-queued with its need"
ok "retrying a failed need re-queues the jobs it canceled"

# Pipeline cancel: a running build (waits on a gate) and its queued needer.
echo three >"$T/src/demo/README"
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  build:
    steps:
      - echo started; sleep 3092
  test:
    needs: [build]
    steps:
      - echo never
YML
commit_push demo "long"
P=$(latest_pipeline)
BJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.name == "build") | .id')
TJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.name == "test") | .id')
wait_until 30 log_has "$BJ" started || fail "build did not start"
out=$(anvil pipeline cancel "$P") || fail "pipeline cancel failed: $out"
echo "$out" | grep -q "2 jobs canceled" || fail "pipeline cancel said: $out"
job_is "$TJ" canceled || fail "queued test is $(job_state "$TJ")"
wait_until 30 job_is "$BJ" canceled || fail "build is $(job_state "$BJ") after cancel"
wait_until 10 pipeline_is "$P" canceled || fail "pipeline is $(pipeline_state "$P")"
wait_until 10 bash -c "! pgrep -f '^sleep 3092$'" || fail "the step survived the cancel"
code=$(admin_api POST "/api/v1/pipelines/$P/cancel" -o /dev/null -w '%{http_code}')
[ "$code" = 409 ] || fail "second cancel answered $code"
code=$(curl -s -X POST "$URL/api/v1/pipelines/$P/retry" -o /dev/null -w '%{http_code}')
[ "$code" = 401 ] || fail "retry without a token answered $code"
code=$(admin_api POST "/api/v1/pipelines/999999/cancel" -o /dev/null -w '%{http_code}')
[ "$code" = 404 ] || fail "cancel of an unknown pipeline answered $code"
ok "pipeline cancel stops the running job and cancels the queued one"

# The pipeline page's buttons (a logged-in browser's forms): Retry failed
# jobs, then Cancel pipeline.
curl -s -o /dev/null -c "$T/jar" --data-urlencode "token=$(cat "$T/data/admin.token")" "$URL/login"
page=$(curl -s -b "$T/jar" "$URL/pipelines/$P")
echo "$page" | grep -q "Retry failed jobs" || fail "no Retry failed jobs button on a canceled pipeline"
if echo "$page" | grep -q "Cancel pipeline"; then fail "a finished pipeline offers Cancel pipeline"; fi
csrf=$(echo "$page" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/')
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" --data-urlencode "csrf=$csrf" "$URL/pipelines/$P/retry")
[ "$code" = 303 ] || fail "UI retry answered $code"
NB=$(api "/api/v1/pipelines/$P" | jq -r --arg b "$BJ" '.jobs[] | select(.retry_of == ($b | tonumber)) | .id')
[ -n "$NB" ] || fail "UI retry made no new build job"
wait_until 30 log_has "$NB" started || fail "retried build did not start"
curl -s -b "$T/jar" "$URL/pipelines/$P" | grep "Cancel pipeline" >/dev/null || fail "no Cancel pipeline button while running"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "csrf=$csrf" "$URL/pipelines/$P/cancel")
[ "$code" = 403 ] || fail "UI cancel without a session answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" --data-urlencode "csrf=$csrf" "$URL/pipelines/$P/cancel")
[ "$code" = 303 ] || fail "UI cancel answered $code"
wait_until 30 pipeline_is "$P" canceled || fail "pipeline is $(pipeline_state "$P") after the UI cancel"
ok "the pipeline page's Retry failed jobs and Cancel pipeline buttons"
