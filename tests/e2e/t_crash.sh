#!/bin/bash
# Crashes: kill -9 of the agent mid-job → the lease runs out and a second
# agent finishes the job; kill -9 of the server mid-job → restarted, nothing
# lost or duplicated, the job completes.
. "$(dirname "$0")/lib.sh"

start_server --lease 3
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - name: count
    run: |
      if [ "\$ANVIL_ATTEMPT" = 1 ]; then
        echo first-attempt; sleep 300
      fi
      for i in \$(seq 1 5); do echo line-\$i; done
YML
commit_push demo "crash test"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 30 log_has "$J" first-attempt || fail "job did not start"
kill -9 "$AGENT_PID"
start_agent a2
wait_until 60 job_is "$J" success || fail "job is $(job_state "$J") after agent crash"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 2 ] || fail "expected attempt 2"
[ "$(api "/api/v1/jobs/$J" | jq -r .agent)" = a2 ] || fail "second agent did not finish it"
log_has "$J" "attempt 2 of 3" || fail "attempt marker missing"
log_has "$J" "line-5" || fail "second attempt output missing"
ok "agent killed mid-job: lease expired, second agent finished it"

# Server crash mid-job: the agent keeps its lines until the server is back.
cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - name: stream
    run: |
      for i in \$(seq 1 40); do echo stream-\$i; sleep 0.1; done
YML
commit_push demo "server crash"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 30 log_has "$J" stream-5 || fail "stream job did not start"
kill -9 "$SERVER_PID"
# Down longer than the 3 s lease (an upgrade, a slow start): the agent's
# heartbeats fail meanwhile, yet its job must not be requeued the moment the
# server is back (the reaper gives the agents one lease first).
sleep 4
start_server --lease 3
wait_until 60 job_is "$J" success || fail "job is $(job_state "$J") after server restart"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] ||
	fail "the running job was requeued after a server restart longer than its lease (attempt $(api "/api/v1/jobs/$J" | jq -r .attempt))"
log=$(api "/api/v1/jobs/$J/log")
for i in $(seq 1 40); do
	n=$(grep -c "^stream-$i\$" <<<"$log" || true)
	[ "$n" = 1 ] || fail "stream-$i appears $n times after server restart"
done
[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
# offsets are contiguous: no gap, no overlap
gaps=$(db "SELECT count(*) FROM (SELECT off, coalesce(raw_len, length(data)) AS n, lead(off) OVER (ORDER BY off) AS nx FROM log_chunks WHERE job_id=$J) AS g WHERE nx IS NOT NULL AND nx != off + n")
[ "$gaps" = 0 ] || fail "log chunks have $gaps gaps"
ok "server killed mid-job for longer than a lease: the job stays attempt 1, every line once, in order, database intact"
