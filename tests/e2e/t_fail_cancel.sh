#!/bin/bash
# A failing step fails the job with its exit code and skips the rest; cancel
# of a running job kills its whole process tree; retry runs it again.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: compile
    run: echo compiling
  - name: broken
    run: echo about to fail; exit 3
  - name: never
    run: echo SHOULD-NOT-RUN
YML
commit_push demo "failing"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" failed || fail "pipeline is $(pipeline_state "$P")"
[ "$(api "/api/v1/jobs/$J" | jq -r .exit_code)" = 3 ] || fail "exit code not 3"
log_has "$J" "about to fail" || fail "failing step output missing"
if log_has "$J" "SHOULD-NOT-RUN"; then fail "a step after the failure ran"; fi
if anvil logs -f "$J" >/dev/null 2>"$T/logs-f.err"; then fail "logs -f of a failed job must exit non-zero"; fi
grep -q failed "$T/logs-f.err" || fail "logs -f did not name the final state"
ok "failing step → failed, exit code 3, later steps skipped"

# Retry: a new job in the same pipeline.
NJ=$(anvil retry "$J" | grep -o '[0-9]\+' | tail -n 1)
[ -n "$NJ" ] && [ "$NJ" != "$J" ] || fail "retry gave no new job"
wait_until 60 job_is "$NJ" failed || fail "retried job is $(job_state "$NJ")"
[ "$(api "/api/v1/jobs/$NJ" | jq -r .retry_of)" = "$J" ] || fail "retry_of not set"
out=$(admin_api POST "/api/v1/jobs/$J/retry" -o /dev/null -w '%{http_code}')
[ "$out" = 409 ] || fail "second retry of the same job answered $out"
ok "retry runs the job again, once"

# Cancel: a step that forks a grandchild and waits.
cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - name: long
    run: |
      sleep 3091 &
      echo started
      wait
YML
commit_push demo "long"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 30 log_has "$J" started || fail "long job did not start"
# The step's pids are its sandbox's own: find the grandchild on the host.
wait_until 10 pgrep -f '^sleep 3091$' || fail "grandchild not running"
gpid=$(pgrep -f '^sleep 3091$' | head -n 1)
anvil cancel "$J" >/dev/null || fail "anvil cancel failed"
wait_until 30 job_is "$J" canceled || fail "job is $(job_state "$J") after cancel"
wait_until 10 bash -c "! kill -0 $gpid" || fail "grandchild $gpid survived the cancel"
pipeline_is "$P" canceled || fail "pipeline is $(pipeline_state "$P")"
out=$(admin_api POST "/api/v1/jobs/$J/cancel" -o /dev/null -w '%{http_code}')
[ "$out" = 409 ] || fail "cancel of a finished job answered $out"
ok "cancel kills the job's process tree"

# A dead agent's pending long poll does not swallow the next job: a second
# agent gets it at once, not after a lease.
kill -9 "$AGENT_PID"
echo "x" >>"$T/src/demo/README"
printf 'steps:\n  - run: echo after-crash\n' >"$T/src/demo/.anvil.yml"
commit_push demo "after the agent died"
P=$(latest_pipeline)
J=$(first_job "$P")
job_is "$J" queued || fail "job should be queued, is $(job_state "$J")"
start_agent a2
wait_until 20 job_is "$J" success || fail "job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] || fail "the dead agent's poll claimed the job"
ok "a dead agent's long poll does not claim jobs"

# Cancel of a queued job (a target no agent serves): immediate.
printf 'targets: [riscv64gc-unknown-linux-gnu]\nsteps:\n  - run: echo never\n' >"$T/src/demo/.anvil.yml"
commit_push demo "queued"
P=$(latest_pipeline)
J=$(first_job "$P")
job_is "$J" queued || fail "job should be queued, is $(job_state "$J")"
anvil cancel "$J" >/dev/null
job_is "$J" canceled || fail "queued job not canceled at once"
pipeline_is "$P" canceled || fail "pipeline of the canceled job is $(pipeline_state "$P")"
ok "cancel of a queued job"
