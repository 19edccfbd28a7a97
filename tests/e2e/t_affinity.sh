#!/bin/bash
# Warm agents (issue 17; docs/architecture.md "Warm agents"): with two idle
# agents, each next job of a repository goes to the agent that ran the last
# one (its mirror and libgit2 are warm there), not to whichever agent asked
# first; while that agent is busy, the other takes the next job at once.
# GET /api/v1/agents says which agents wait for work.
. "$(dirname "$0")/lib.sh"

start_server
make_repo demo
start_agent a1
start_agent a2
# agent_waiting NAME: the agent has a claim open on the server.
agent_waiting() {
	[ "$(api /api/v1/agents | jq -r --arg n "$1" '.agents[] | select(.name == $n) | .waiting')" = true ]
}
both_waiting() { agent_waiting a1 && agent_waiting a2; }
wait_until 60 both_waiting || fail "agents not waiting: $(api /api/v1/agents)"
ok "both agents show waiting: true"

printf 'steps:\n  - run: echo built\n' >"$T/src/demo/.anvil.yml"
ran=()
for i in 1 2 3 4 5 6; do
	echo "$i" >"$T/src/demo/n"
	# Both idle before each push: the choice is the server's, not a race
	# with an agent still busy with the last job.
	wait_until 60 both_waiting || fail "agents not waiting before push $i: $(api /api/v1/agents)"
	commit_push demo "c$i" >/dev/null
	wait_until 30 test "$(latest_pipeline)" != "${P:-}" || fail "push $i made no pipeline"
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 60 job_is "$J" success || fail "job $J is $(job_state "$J")"
	ran+=("$(api "/api/v1/jobs/$J" | jq -r .agent)")
done
warm=${ran[0]}
for a in "${ran[@]}"; do
	[ "$a" = "$warm" ] || fail "jobs of one repository went to ${ran[*]}, not all to the warm agent $warm"
done
ok "six jobs in a row, both agents idle each time: all ran on $warm (${ran[*]})"

# The warm agent busy: the other one takes the next job without waiting.
other=a1
[ "$warm" = a1 ] && other=a2
gate=$(step_dir "$warm" demo)
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: |
      i=0
      while [ ! -e /cache/build/gate ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
YML
wait_until 60 both_waiting || fail "agents not waiting before the gated push"
commit_push demo gated >/dev/null
wait_until 30 test "$(latest_pipeline)" != "$P" || fail "the gated push made no pipeline"
PG=$(latest_pipeline)
JG=$(first_job "$PG")
wait_until 60 job_is "$JG" running || fail "gated job is $(job_state "$JG")"
[ "$(api "/api/v1/jobs/$JG" | jq -r .agent)" = "$warm" ] || fail "the gated job did not go to $warm"
printf 'steps:\n  - run: echo quick\n' >"$T/src/demo/.anvil.yml"
git -C "$T/src/demo" add -A
git -C "$T/src/demo" commit -q -m quick
git -C "$T/src/demo" push -q origin HEAD:refs/heads/side 2>&1
wait_until 30 test "$(latest_pipeline)" != "$PG" || fail "the side push made no pipeline"
PQ=$(latest_pipeline)
JQ=$(first_job "$PQ")
wait_until 60 job_is "$JQ" success || fail "job $JQ is $(job_state "$JQ") while $warm is busy"
[ "$(api "/api/v1/jobs/$JQ" | jq -r .agent)" = "$other" ] || fail "job $JQ did not go to $other"
job_is "$JG" running || fail "the gated job is $(job_state "$JG"), expected still running"
touch "$gate/gate"
wait_until 60 job_is "$JG" success || fail "gated job is $(job_state "$JG")"
ok "with $warm busy, $other took the next job while $warm still ran its own"
