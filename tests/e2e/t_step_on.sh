#!/bin/bash
# Issue 15: a step's own timeout fails the job and names the step; steps
# with `on: failure` run only after a failure, `on: always` either way, and
# default steps after a failure are skipped.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: first
    run: echo first-ran
  - name: slow
    run: echo slow-started; sleep 60; echo SLOW-$((40+2))
    timeout: 2s
  - name: later
    run: echo LATER-$((40+2))
  - name: collect
    run: echo collecting-$((40+2))
    on: failure
  - name: cleanup
    run: echo cleanup-$((40+2)); exit 4
    on: always
YML
commit_push demo "step timeout"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 job_is "$J" failed || fail "job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .message)" = "step slow timed out after 2 s" ] ||
	fail "message: $(api "/api/v1/jobs/$J" | jq -r .message)"
log_has "$J" "slow-started" || fail "slow step did not start"
if log_has "$J" "SLOW-42"; then fail "the slow step was not stopped"; fi
if log_has "$J" "LATER-42"; then fail "a default step ran after the failure"; fi
log_has "$J" "collecting-42" || fail "the on: failure step did not run"
log_has "$J" "cleanup-42" || fail "the on: always step did not run"
s=$(api "/api/v1/jobs/$J" | jq -r '.finished_unix_ms - .started_unix_ms')
[ "$s" -lt 30000 ] || fail "the job took $s ms: the step timeout did not stop it"
ok "a step's timeout fails the job; on: failure and on: always run after it"

cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: echo build-ok
    timeout: 30s
  - run: echo SHOULD-NOT-$((40+2))
    on: failure
  - run: echo always-$((40+2))
    on: always
YML
commit_push demo "all good"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 job_is "$J" success || fail "job is $(job_state "$J")"
if log_has "$J" "SHOULD-NOT-42"; then fail "an on: failure step ran without a failure"; fi
log_has "$J" "always-42" || fail "the on: always step did not run"
ok "without a failure, on: failure steps are skipped and on: always steps run"
