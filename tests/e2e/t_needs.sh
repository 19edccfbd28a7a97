#!/bin/bash
# Issue 15: named jobs and needs. A 3-stage DAG (build -> test -> package)
# hands each job's artifacts to the jobs that need it; a job waits for its
# needs; labels choose agents and a job nobody can run says so; a tampered
# artifact fails the job that downloads it; a failed job cancels the jobs
# that need it, down the graph.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  build:
    steps:
      - mkdir -p out && printf '#!/bin/sh\necho app-runs-$1\n' >out/app && chmod 755 out/app
      - echo payload-1 >out/data.txt
    artifacts: [out/app, out/data.txt]
  test:
    needs: [build]
    labels: [stage=two]
    steps:
      - name: check
        run: |
          test -x out/app && ./out/app test | tee report.txt
          grep -q payload-1 out/data.txt
          echo tested >>report.txt
    artifacts: [report.txt]
  package:
    needs: [build, test]
    steps:
      - name: pack
        run: ls -l out/app out/data.txt report.txt && tar cf pkg.tar out report.txt && echo packed
    artifacts: [pkg.tar]
YML
echo one >"$T/src/demo/README"
commit_push demo "dag"
P=$(latest_pipeline)
[ -n "$P" ] || fail "no pipeline"
jobs_json=$(api "/api/v1/pipelines/$P")
[ "$(echo "$jobs_json" | jq -r '[.jobs[].name] | join(",")')" = build,test,package ] ||
	fail "jobs are $(echo "$jobs_json" | jq -c '[.jobs[].name]')"
BJ=$(echo "$jobs_json" | jq -r '.jobs[0].id')
TJ=$(echo "$jobs_json" | jq -r '.jobs[1].id')
PK=$(echo "$jobs_json" | jq -r '.jobs[2].id')
[ "$(echo "$jobs_json" | jq -r '.jobs[1].labels // empty')" = "" ] || true
wait_until 60 job_is "$BJ" success || fail "build is $(job_state "$BJ")"
ok "build ran first"

# test needs stage=two, which no agent has: it says so, and so does the pipeline
wait_until 10 bash -c "curl -s $URL/api/v1/jobs/$TJ | jq -r .message | grep -qx 'no agent offers target host with label stage=two'" ||
	fail "test's message is '$(api "/api/v1/jobs/$TJ" | jq -r .message)'"
api "/api/v1/pipelines/$P" | jq -r .message | grep -qF "job test (host): no agent offers target host with label stage=two" ||
	fail "pipeline message is '$(api "/api/v1/pipelines/$P" | jq -r .message)'"
job_is "$PK" queued || fail "package is $(job_state "$PK") while test has not run"
ok "a job nobody can run says so, and its pipeline too"

start_agent a2 --labels stage=two
A2=$AGENT_PID
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P")"
log_has "$TJ" "app-runs-test" || fail "test did not run the build's app"
log_has "$TJ" "input out/app from job build" || fail "test's log does not name its inputs"
log_has "$PK" "packed" || fail "package did not run"
log_has "$PK" "input report.txt from job test" || fail "package did not get test's artifact"
[ "$(api "/api/v1/jobs/$TJ" | jq -r .message)" = "" ] || fail "test's message stayed: $(api "/api/v1/jobs/$TJ" | jq -r .message)"
[ "$(api "/api/v1/pipelines/$P" | jq -r .message)" = "" ] || fail "pipeline message stayed"
[ "$(api "/api/v1/jobs/$TJ" | jq -r .agent)" = a2 ] || fail "test ran on $(api "/api/v1/jobs/$TJ" | jq -r .agent), not a2"
tb=$(api "/api/v1/jobs/$BJ" | jq -r .finished_unix_ms)
ts=$(api "/api/v1/jobs/$TJ" | jq -r .started_unix_ms)
[ "$ts" -ge "$tb" ] || fail "test started ($ts) before build finished ($tb)"
api "/api/v1/jobs/$PK/artifacts" | jq -e '.artifacts[] | select(.name == "pkg.tar")' >/dev/null ||
	fail "package has no pkg.tar"
ok "3-stage DAG: artifacts handed along, labels choose the agent"

# A tampered blob: the job that downloads it fails on the sha256.
kill "$A2"
wait "$A2" 2>/dev/null || true
echo two >"$T/src/demo/README"
commit_push demo "dag again"
P2=$(latest_pipeline)
[ "$P2" != "$P" ] || fail "no second pipeline"
B2=$(api "/api/v1/pipelines/$P2" | jq -r '.jobs[0].id')
T2=$(api "/api/v1/pipelines/$P2" | jq -r '.jobs[1].id')
wait_until 60 job_is "$B2" success || fail "build is $(job_state "$B2")"
sha=$(api "/api/v1/jobs/$B2/artifacts" | jq -r '.artifacts[] | select(.name == "out/data.txt") | .sha256')
blob="$T/data/blobs/${sha:0:2}/$sha"
[ -f "$blob" ] || fail "no blob file at $blob"
chmod u+w "$blob"
echo tampered >"$blob"
start_agent a2 --labels stage=two
wait_until 60 job_is "$T2" failed || fail "test with a tampered input is $(job_state "$T2")"
api "/api/v1/jobs/$T2" | jq -r .message | grep -q "input out/data.txt from job build: sha256 .*, expected $sha" ||
	fail "message is '$(api "/api/v1/jobs/$T2" | jq -r .message)'"
ok "an input whose sha256 does not match fails the job"

# A failed build: the jobs that need it end canceled, naming it.
sed -i 's/echo payload-1 >out\/data.txt/exit 7/' "$T/src/demo/.anvil.yml"
commit_push demo "broken build"
P3=$(latest_pipeline)
wait_until 60 pipeline_is "$P3" failed || fail "pipeline is $(pipeline_state "$P3")"
j=$(api "/api/v1/pipelines/$P3")
[ "$(echo "$j" | jq -r '.jobs[1].state')" = canceled ] || fail "test is $(echo "$j" | jq -r '.jobs[1].state')"
[ "$(echo "$j" | jq -r '.jobs[1].message')" = "needs build, which failed" ] ||
	fail "test's message: $(echo "$j" | jq -r '.jobs[1].message')"
[ "$(echo "$j" | jq -r '.jobs[2].state')" = canceled ] || fail "package is $(echo "$j" | jq -r '.jobs[2].state')"
echo "$j" | jq -r '.jobs[2].message' | grep -q "^needs \(build, which failed\|test, which was canceled\)$" ||
	fail "package's message: $(echo "$j" | jq -r '.jobs[2].message')"
ok "a failed job cancels the jobs that need it"

# The agent route hands out only the inputs of the agent's own job: an
# agent (here spoken by hand) holding a job of one pipeline reads its
# needed jobs' artifacts and nothing of another pipeline's.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
sed -i 's/exit 7/echo payload-4 >out\/data.txt/; s/stage=two/stage=hand/' "$T/src/demo/.anvil.yml"
commit_push demo "by hand"
P5=$(latest_pipeline)
B5=$(api "/api/v1/pipelines/$P5" | jq -r '.jobs[0].id')
wait_until 60 job_is "$B5" success || fail "build is $(job_state "$B5")"
tok=$(curl -s -X POST -H "Authorization: Bearer $(cat "$T/data/agent.token")" \
	-d '{"name": "hand", "labels": ["target=host", "stage=hand"]}' "$URL/api/v1/agents/register" | jq -r .token)
[ -n "$tok" ] && [ "$tok" != null ] || fail "no agent token"
claim=$(curl -s -X POST -H "Authorization: Bearer $tok" -d '{"wait_ms": 10000}' "$URL/api/v1/agents/claim")
HJ=$(echo "$claim" | jq -r .job.id)
[ "$(echo "$claim" | jq -r .job.name)" = test ] || fail "claimed $(echo "$claim" | jq -c .job.name)"
[ "$(echo "$claim" | jq -r '[.job.inputs[] | "\(.job_id) \(.job) \(.name) \(.mode)"] | join(",")')" = \
	"$B5 build out/app 0755,$B5 build out/data.txt 0644" ] || fail "inputs: $(echo "$claim" | jq -c .job.inputs)"
got=$(curl -s -H "Authorization: Bearer $tok" "$URL/api/v1/agents/jobs/$HJ/inputs/$B5/out/data.txt")
[ "$got" = payload-4 ] || fail "own input: '$got'"
out=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$URL/api/v1/agents/jobs/$HJ/inputs/$BJ/out/data.txt")
[ "$out" = 404 ] || fail "another pipeline's artifact through an own job answered $out"
out=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$URL/api/v1/agents/jobs/$TJ/inputs/$BJ/out/app")
[ "$out" = 403 ] || fail "inputs of a job this agent does not hold answered $out"
out=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$URL/api/v1/agents/jobs/$HJ/inputs/$B5/../$BJ/out/app")
[ "$out" = 404 ] || [ "$out" = 400 ] || fail "a dotted input path answered $out"
ok "an agent reads only its own job's inputs, never another pipeline's"

# A pipeline file with a cycle is refused, naming the line.
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  a:
    steps: [true]
    needs: [b]
  b:
    steps: [true]
    needs: [a]
YML
commit_push demo "cycle"
P4=$(latest_pipeline)
wait_until 10 pipeline_is "$P4" error || fail "cycle pipeline is $(pipeline_state "$P4")"
api "/api/v1/pipelines/$P4" | jq -r .message | grep -q "line 7, column 13: jobs.b: needs: cycle a->b->a" ||
	fail "message: $(api "/api/v1/pipelines/$P4" | jq -r .message)"
ok "a needs cycle is refused with its line"
