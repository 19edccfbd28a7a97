#!/bin/bash
# Issue 15: matrix. Each cell of targets x env axes (with include and
# exclude) is its own job, named by its values, seeing them in its env; a
# job needing a matrix job waits for all of its cells of the same target.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
env: {GREETING: hello}
jobs:
  test:
    matrix:
      MODE: [debug, release]
      CC: [gcc, clang]
      exclude: [{MODE: release, CC: clang}]
      include: [{MODE: asan, CC: clang}]
    steps:
      - echo "cell $GREETING MODE=$MODE CC=$CC" && echo "$MODE-$CC" >cell.txt
    artifacts: [cell.txt]
  summary:
    needs: [test]
    steps:
      - echo summary-runs
YML
commit_push demo "matrix"
P=$(latest_pipeline)
[ -n "$P" ] || fail "no pipeline"
wait_until 90 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P")"
names=$(api "/api/v1/pipelines/$P" | jq -r '[.jobs[].name] | join("|")')
want="test (host, MODE=debug, CC=gcc)|test (host, MODE=release, CC=gcc)|test (host, MODE=debug, CC=clang)|test (host, MODE=asan, CC=clang)|summary"
[ "$names" = "$want" ] || fail "jobs are: $names"
ok "matrix cells are jobs named by their values (exclude and include applied)"

for cell in debug:gcc release:gcc debug:clang asan:clang; do
	m=${cell%%:*} c=${cell##*:}
	J=$(api "/api/v1/pipelines/$P" | jq -r --arg n "test (host, MODE=$m, CC=$c)" '.jobs[] | select(.name == $n) | .id')
	log_has "$J" "cell hello MODE=$m CC=$c" || fail "cell $m/$c did not see its values"
done
S=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[4].id')
n=$(api "/api/v1/pipelines/$P" | jq -r '[.jobs[0:4][].finished_unix_ms] | max')
s=$(api "/api/v1/jobs/$S" | jq -r .started_unix_ms)
[ "$s" -ge "$n" ] || fail "summary started before the last cell finished"
log_has "$S" "summary-runs" || fail "summary did not run"
[ "$(api "/api/v1/jobs/$S" | jq -r .message)" = "" ] || fail "summary message: $(api "/api/v1/jobs/$S" | jq -r .message)"
log_has "$S" "input cell.txt from job test (host, MODE=asan, CC=clang)" || fail "summary lacks a cell's input"
ok "a job needing a matrix job waits for every cell and gets their artifacts"

# A matrix past the cap is refused with a clear message, no job stored.
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  t:
    matrix:
      A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
      B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    steps: [true]
YML
commit_push demo "too big"
P2=$(latest_pipeline)
wait_until 10 pipeline_is "$P2" error || fail "pipeline is $(pipeline_state "$P2")"
api "/api/v1/pipelines/$P2" | jq -r .message | grep -q "more than 128 jobs" ||
	fail "message: $(api "/api/v1/pipelines/$P2" | jq -r .message)"
[ "$(api "/api/v1/pipelines/$P2" | jq '.jobs | length')" = 0 ] || fail "jobs were stored"
ok "a matrix past the cap is refused"
