#!/bin/bash
# Scheduling overhead of a 3-stage DAG (issue 15): build -> test -> package
# over two targets (host jobs: the figure is anvil's, not QEMU's), each job
# handing an artifact to the next. Per run: the pipeline's wall time
# (created → finished), the sum of its steps' own times (the agent's step
# records, /api/v1/jobs/ID/steps) and the difference, which is what anvil
# spends between the steps: claims, checkouts, sandbox starts, artifact
# uploads and downloads, the wake-ups of the waiting jobs. Prints figures,
# asserts nothing. Usage: bench/dag.sh [BUILD_DIR]; env RUNS (5).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
RUNS=${RUNS:-5}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
start_server --log-level warn
# two agents, one per "target" of the matrix, so both cells of a stage run together
start_agent a1 --targets host
start_agent a2 --targets host
make_repo dag
cat >"$T/src/dag/.anvil.yml" <<'YML'
jobs:
  build:
    matrix: {profile: [debug, release]}
    steps:
      - sleep 0.2 && echo "$profile" >out.txt
    artifacts: [out.txt]
  test:
    needs: [build]
    steps:
      - sleep 0.2 && cat out.txt >report.txt
    artifacts: [report.txt]
  package:
    needs: [test]
    steps:
      - sleep 0.2 && tar cf pkg.tar report.txt
    artifacts: [pkg.tar]
YML
C=""
for i in $(seq 1 "$RUNS"); do
	echo "$i" >"$T/src/dag/run.txt"
	commit_push dag "run $i" >/dev/null 2>&1
	P=$(latest_pipeline)
	wait_until 300 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
	pj=$(api "/api/v1/pipelines/$P")
	wall=$(jq '.finished_unix_ms - .created_unix_ms' <<<"$pj")
	steps=0
	for j in $(jq -r '.jobs[].id' <<<"$pj"); do
		s=$(api "/api/v1/jobs/$j/steps" | jq '[.steps[] | .duration_ms // 0] | add // 0')
		steps=$((steps + s))
	done
	# the critical path is one job per stage: three steps' times, not all of them
	crit=$(for j in $(jq -r '.jobs[].id' <<<"$pj"); do
		echo "$(api "/api/v1/jobs/$j/steps" | jq '[.steps[] | .duration_ms // 0] | add // 0') $(jq -r ".jobs[] | select(.id == $j) | .name" <<<"$pj")"
	done | awk '{ if ($1 > m[$2]) m[$2] = $1 } END { for (k in m) s += m[k]; print s }')
	echo "run=$i pipeline=$P jobs=$(jq '.jobs | length' <<<"$pj") wall_ms=$wall steps_sum_ms=$steps critical_path_steps_ms=$crit overhead_ms=$((wall - crit))"
	C="$C $((wall - crit))"
done
echo "overhead_ms (wall minus the critical path's step times), per run:$C"
echo "overhead_median_ms=$(tr ' ' '\n' <<<"$C" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
