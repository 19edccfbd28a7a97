#!/bin/bash
# Standby sandboxes (issue 17; docs/agent.md "Standby sandbox"): when a job
# ends, the agent starts the sandbox the next job's first step would get,
# and the next job's first step runs in it when it is still exactly that
# sandbox. What the test holds it to:
#  - the next job gets it (the agent logs event=standby_used), and nothing
#    of the job before reaches it: not its /tmp, its workspace files, its
#    processes; the repository's cache is shared as it always is;
#  - the job's secrets reach the step's environment but never a process's
#    argv, which every user of the host reads (/proc/PID/cmdline);
#  - a job whose sandbox differs (network: true) gets a new one, and so
#    does the job after it, whose standby was made for the other kind.
. "$(dirname "$0")/lib.sh"

start_server
make_repo demo
start_agent a1 --log-level debug
cache=$(step_dir a1 demo)
used() { grep -c 'event=standby_used' "$T/agent-a1.log" || true; }
run_job() { # run_job MSG: commits, pushes, waits for success; sets J
	commit_push demo "$1" >/dev/null
	wait_until 30 test "$(latest_pipeline)" != "${P:-}" || fail "push '$1' made no pipeline"
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 120 job_is "$J" success || fail "job $J ($1) is $(job_state "$J"): $(api "/api/v1/jobs/$J/log")"
}

echo one >"$T/src/demo/file"
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: |
      echo leaked >/tmp/leak
      echo leaked >leak-ws
      echo shared >/cache/build/shared
      (sleep 300 &)
YML
run_job first
[ "$(used)" = 0 ] || fail "the agent's first job had a standby"
VALUE="standby-secret-$$-$RANDOM"
printf '%s' "$VALUE" | anvil secret set demo TOKEN >/dev/null || fail "secret set"

cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: |
      test ! -e /tmp/leak || { echo "/tmp of the last job is here"; exit 1; }
      test ! -e leak-ws || { echo "the last job's workspace file is here"; exit 1; }
      test "$(ls -A | sort | tr '\n' ' ')" = ".anvil.yml .git file " || { ls -A; exit 1; }
      test "$(cat /cache/build/shared)" = shared || { echo "the cache is not shared"; exit 1; }
      for c in /proc/[0-9]*/cmdline; do tr '\0' ' ' <"$c"; echo; done >/tmp/ps
      pat="sleep 3""00" # not this step's own text
      ! grep -q "$pat" /tmp/ps || { echo "the last job's process is here"; cat /tmp/ps; exit 1; }
      test -n "$TOKEN" && test "${#TOKEN}" -gt 10 || { echo "no secret in the environment"; exit 1; }
      ! grep -qF "$TOKEN" /tmp/ps || { echo "the secret is in an argv"; exit 1; }
      echo "checked $(wc -l </tmp/ps) processes"
      i=0
      while [ ! -e /cache/build/gate ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
YML
git -C "$T/src/demo" add -A
git -C "$T/src/demo" commit -q -m second
git -C "$T/src/demo" push -q origin HEAD:refs/heads/main 2>&1
wait_until 30 test "$(latest_pipeline)" != "$P" || fail "the second push made no pipeline"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 job_is "$J" running || fail "job $J is $(job_state "$J")"
wait_until 60 log_has "$J" "checked" || fail "job $J: $(api "/api/v1/jobs/$J/log")"
# From the host, while the step runs: no process's argv holds the secret.
# (The pattern from a file: grep's own argv would hold it.)
printf '%s\n' "$VALUE" >"$T/secret.pat"
for c in /proc/[0-9]*/cmdline; do tr '\0' ' ' 2>/dev/null <"$c"; echo; done | grep -qFf "$T/secret.pat" &&
	fail "the secret is in a process's argv on the host"
touch "$cache/gate"
wait_until 60 job_is "$J" success || fail "job $J is $(job_state "$J"): $(api "/api/v1/jobs/$J/log")"
rm -f "$cache/gate"
[ "$(used)" = 1 ] || fail "the second job did not run in the standby ($(used) used)"
ok "the next job ran in the standby: nothing of the last job but the cache, the secret in no argv"

cat >"$T/src/demo/.anvil.yml" <<'YML'
network: true
steps:
  - run: echo with-network
YML
run_job network
[ "$(used)" = 1 ] || fail "a job with network ran in a standby made without"
printf 'steps:\n  - run: echo no-network\n' >"$T/src/demo/.anvil.yml"
run_job back
[ "$(used)" = 1 ] || fail "a job without network ran in the standby a network job left"
run_job_again() { echo "$1" >>"$T/src/demo/file"; run_job "$1"; }
run_job_again again
[ "$(used)" = 2 ] || fail "the job after two alike did not run in the standby ($(used) used)"
ok "a job whose sandbox differs gets a new one; the next alike job runs in the standby"

# The agent stopping removes the standby: its workspace and process.
kill -TERM "$AGENT_PID"
wait_until 30 sh -c "! kill -0 $AGENT_PID 2>/dev/null" || fail "agent did not stop"
left=$(ls "$T/agent-a1/jobs" 2>/dev/null || true)
[ -z "$left" ] || fail "the stopped agent left $left in its jobs directory"
ok "the stopped agent leaves no standby behind"

# Likewise an agent of --jobs workers: each worker removes its own standby.
start_agent a3 --jobs 2
step_dir a3 demo >/dev/null
run_job_again workers
[ "$(api "/api/v1/jobs/$J" | jq -r .agent)" = a3 ] || fail "job $J did not run on a3"
wait_until 10 sh -c "ls '$T/agent-a3/jobs' | grep -q '^next-'" || fail "a3 made no standby after job $J"
kill -TERM "$AGENT_PID"
wait_until 30 sh -c "! kill -0 $AGENT_PID 2>/dev/null" || fail "agent a3 did not stop"
left=$(ls "$T/agent-a3/jobs" 2>/dev/null || true)
[ -z "$left" ] || fail "the stopped --jobs agent left $left in its jobs directory"
ok "a stopped --jobs agent leaves no standby behind either"
