#!/bin/bash
# An agent stopped (SIGTERM: an upgrade, systemctl stop) while it runs a
# job gives the job back (POST /api/v1/agents/jobs/ID/requeue): another
# agent runs it at once as attempt 2, not after the lease (60 s here).
# (A stale attempt's give-back is refused: unit/test_store test_give_back.)
. "$(dirname "$0")/lib.sh"

start_server --lease 60
make_repo demo
start_agent a1
A1=$AGENT_PID
gate=$(step_dir a1 demo)
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: |
      echo started
      i=0
      while [ ! -e /cache/build/gate ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
YML
commit_push demo gated >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 log_has "$J" started || fail "job $J did not start: $(job_state "$J")"
t0=$(date +%s)
kill -TERM "$A1"
wait_until 30 sh -c "! kill -0 $A1 2>/dev/null" || fail "agent a1 did not stop"
grep -q "job=$J given back" "$T/agent-a1.log" || fail "a1 did not give job $J back: $(tail -n 5 "$T/agent-a1.log")"
[ "$(job_state "$J")" = queued ] || fail "job $J is $(job_state "$J") after a1 stopped, expected queued"
ok "a1 stopped mid-job and gave job $J back: queued again at once"

touch "$(step_dir a2 demo)/gate"
start_agent a2
wait_until 40 job_is "$J" success || fail "job $J is $(job_state "$J"): $(api "/api/v1/jobs/$J/log")"
t1=$(date +%s)
[ "$(api "/api/v1/jobs/$J" | jq -r '.agent, .attempt' | tr '\n' ' ')" = "a2 2 " ] ||
	fail "job $J: $(api "/api/v1/jobs/$J" | jq -c '{agent, attempt}')"
[ $((t1 - t0)) -lt 60 ] || fail "job $J took $((t1 - t0)) s: the lease, not the give-back"
ok "a2 ran it as attempt 2 after $((t1 - t0)) s (the lease is 60 s)"
grep -q "event=job_given_back job=$J agent=1 attempt=1" "$T/server.log" || fail "server did not log the give-back"
ok "the server logged the give-back"
