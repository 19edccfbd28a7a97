#!/bin/bash
# anvil-agent --jobs N (issue 17): one agent process runs three host jobs at
# once, each with its own cache directory; the server lists all three as the
# agent's; cancel of one leaves the others running; kill -9 of the agent
# ends its workers and the server requeues every one of its jobs.
. "$(dirname "$0")/lib.sh"

for bad in 0 65 x -1; do
	if anvil-agent --jobs "$bad" --token t --work "$T/never" >"$T/bad.out" 2>&1; then fail "--jobs $bad accepted"; fi
	grep -q "is not a count 1..64" "$T/bad.out" || fail "--jobs $bad: $(cat "$T/bad.out")"
done
if anvil-agent --jobs 2 --once --token t --work "$T/never" >"$T/bad.out" 2>&1; then fail "--once --jobs 2 accepted"; fi
grep -q "not with --jobs" "$T/bad.out" || fail "--once --jobs 2: $(cat "$T/bad.out")"
ok "--jobs takes 1..64, and not with --once"

start_server --lease 3
make_repo demo
# Each step prints when it started, waits for the test's gate file in its
# cache (/cache/build, a different host directory per concurrent job), then
# prints when it ended.
gate_yml() {
	cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - run: |
      echo "start \$(date +%s%N)"
      i=0
      while [ ! -e /cache/build/$1 ] && [ \$i -lt 900 ]; do sleep 0.1; i=\$((i+1)); done
      echo "end \$(date +%s%N)"
YML
}
gate_yml go1
commit_push demo first >/dev/null
C=$(git -C "$T/src/demo" rev-parse HEAD)
for d in 2 3; do
	anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C" --delivery "d$d" >/dev/null ||
		fail "trigger $d failed"
done
JOBS=$(api "/api/v1/pipelines?limit=3" | jq -r '.pipelines[].id' | while read -r p; do first_job "$p"; done | sort -n)
set -- $JOBS
[ $# = 3 ] || fail "want 3 jobs, have: $JOBS"
J1=$1 J2=$2 J3=$3

start_agent a1 --jobs 3
A1=$AGENT_PID
agent_jobs() {
	api /api/v1/agents | jq -r '.agents[] | select(.name == "a1") | .job_ids | map(tostring) | join(",")'
}
all_started() {
	for j in $J1 $J2 $J3; do log_has "$j" "start " || return 1; done
}
wait_until 60 all_started || fail "not all three jobs started: $J1 $(job_state "$J1"), $J2 $(job_state "$J2"), $J3 $(job_state "$J3")"
[ "$(agent_jobs)" = "$J1,$J2,$J3" ] || fail "agent list shows a1 running '$(agent_jobs)', want $J1,$J2,$J3"
anvil agents | grep -E "a1 .*$J1,$J2,$J3" >/dev/null || fail "anvil agents: $(anvil agents)"
[ "$(pgrep -c -P "$A1" anvil-agent)" = 3 ] || fail "want 3 worker processes under the agent, have $(pgrep -P "$A1" | wc -l)"
ok "one agent with --jobs 3 holds three running jobs (agent list: $(agent_jobs))"

caches=$(cd "$T/agent-a1/cache/demo" && ls -d host*)
[ "$(echo $caches)" = "host host+2 host+3" ] || fail "caches: $caches"
ok "each concurrent job has its own cache directory ($(echo $caches))"

anvil cancel "$J2" >/dev/null || fail "cancel failed"
wait_until 30 job_is "$J2" canceled || fail "canceled job is $(job_state "$J2")"
job_is "$J1" running || fail "job $J1 is $(job_state "$J1") after the cancel of $J2"
job_is "$J3" running || fail "job $J3 is $(job_state "$J3") after the cancel of $J2"
ok "cancel of one job leaves the other two running"

for d in "$T/agent-a1/cache/demo"/host*; do touch "$d/go1"; done
wait_until 60 job_is "$J1" success || fail "job $J1 is $(job_state "$J1")"
wait_until 60 job_is "$J3" success || fail "job $J3 is $(job_state "$J3")"
stamp() { api "/api/v1/jobs/$1/log" | sed -n "s/^$2 \([0-9]*\)$/\1/p" | head -n 1; }
s1=$(stamp "$J1" start) s2=$(stamp "$J2" start) s3=$(stamp "$J3" start)
e1=$(stamp "$J1" end) e3=$(stamp "$J3" end)
[ -n "$s1" ] && [ -n "$s2" ] && [ -n "$s3" ] && [ -n "$e1" ] && [ -n "$e3" ] || fail "missing stamps: $s1 $s2 $s3 $e1 $e3"
smax=$(printf '%s\n' "$s1" "$s2" "$s3" | sort -n | tail -n 1)
emin=$(printf '%s\n' "$e1" "$e3" | sort -n | head -n 1)
[ "$smax" -lt "$emin" ] || fail "steps did not overlap: last start $smax, first end $emin"
ok "the three steps ran at once (last start $(((emin - smax) / 1000000)) ms before the first end)"
# The end of a job stops its heartbeat: not a failure worth a warning.
if grep -E "job=($J1|$J2|$J3) heartbeat failed" "$T/agent-a1.log"; then fail "an ended job's heartbeat was logged as failed"; fi
ok "finished and canceled jobs log no failed heartbeat"

# kill -9 of the agent: its workers die with it, and every job it held
# goes back to the queue when its lease runs out.
gate_yml go2
commit_push demo second >/dev/null
C2=$(git -C "$T/src/demo" rev-parse HEAD)
for d in 5 6; do
	anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C2" --delivery "d$d" >/dev/null ||
		fail "trigger $d failed"
done
K=$(api "/api/v1/pipelines?limit=3" | jq -r '.pipelines[].id' | while read -r p; do first_job "$p"; done | sort -n)
three_running() {
	[ "$(agent_jobs | tr ',' ' ')" = "$(echo $K)" ]
}
wait_until 60 three_running || fail "a1 holds '$(agent_jobs)', want $(echo $K)"
kill -9 "$A1"
no_a1_process() { ! pgrep -f -- "--work $T/agent-a1" >/dev/null; }
wait_until 20 no_a1_process || fail "workers outlived the agent: $(pgrep -a -f -- "--work $T/agent-a1")"
all_queued() {
	for j in $K; do job_is "$j" queued || return 1; done
}
wait_until 30 all_queued || fail "after kill -9: $(for j in $K; do echo "$j $(job_state "$j")"; done)"
[ -z "$(agent_jobs)" ] || fail "a1 still holds $(agent_jobs)"
ok "kill -9 of the agent: its workers died with it and all three jobs were requeued"

start_agent a2 --jobs 3
a2_three() { [ "$(ls -d "$T/agent-a2/cache/demo"/host* 2>/dev/null | wc -l)" = 3 ]; }
wait_until 60 a2_three ||
	fail "a2 did not take all three jobs"
for d in "$T/agent-a2/cache/demo"/host*; do touch "$d/go2"; done
for j in $K; do
	wait_until 60 job_is "$j" success || fail "job $j is $(job_state "$j") on a2"
	[ "$(api "/api/v1/jobs/$j" | jq -r .attempt)" = 2 ] || fail "job $j attempt is not 2"
done
ok "another agent ran the three requeued jobs (attempt 2)"
