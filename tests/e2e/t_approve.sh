#!/bin/bash
# Issue 15: approval gates. A job with approve: true waits ("waiting for
# approval") after its needs succeed, no agent gets it, until anvil approve
# (or the job page's Approve button, in Chromium) lets it run; who and when
# are recorded and shown; reject cancels it and the jobs that need it.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/chromium ] || fail "chromium missing: scripts/deps.sh test installs it"
command -v node >/dev/null || fail "node missing: scripts/deps.sh test installs it"
if [ ! -d "$S/tests/browser/node_modules/playwright-core" ]; then
	npm ci --prefix "$S/tests/browser" --no-audit --no-fund >"$T/npm.log" 2>&1 || fail "npm ci failed"
fi

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
jobs:
  build:
    steps:
      - echo built
  release:
    needs: [build]
    approve: true
    steps:
      - echo released-$(cat README)
  announce:
    needs: [release]
    steps:
      - echo announced
YML
echo one >"$T/src/demo/README"
commit_push demo "gated"
P=$(latest_pipeline)
jid() { api "/api/v1/pipelines/$1" | jq -r --arg n "$2" '.jobs[] | select(.name == $n) | .id' | tail -n 1; }
BJ=$(jid "$P" build)
RJ=$(jid "$P" release)
wait_until 60 job_is "$BJ" success || fail "build is $(job_state "$BJ")"
[ "$(api "/api/v1/jobs/$RJ" | jq -r .approval.state)" = waiting ] || fail "release's approval: $(api "/api/v1/jobs/$RJ" | jq -c .approval)"
# The agent is idle and long-polling: a claimable job would be taken at once.
if wait_until 3 job_is "$RJ" running; then fail "a job waiting for an approval ran"; fi
job_is "$RJ" queued || fail "release is $(job_state "$RJ")"
pipeline_is "$P" queued || fail "pipeline is $(pipeline_state "$P")"
anvil show "$P" | grep -q "waiting for approval" || fail "anvil show does not say it waits"
code=$(admin_api POST "/api/v1/pipelines/$P/approve" -o "$T/r.json" -w '%{http_code}' -d '{"job": "build"}')
[ "$code" = 409 ] || fail "approving a job that does not wait answered $code"
code=$(curl -s -X POST "$URL/api/v1/pipelines/$P/approve" -o /dev/null -w '%{http_code}' -d '{}')
[ "$code" = 401 ] || fail "approving without a token answered $code"
out=$(anvil approve "$P" release --as alice) || fail "anvil approve failed: $out"
echo "$out" | grep -q "1 job approved" || fail "anvil approve said: $out"
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P") after the approval"
log_has "$RJ" released-one || fail "release did not run"
a=$(api "/api/v1/jobs/$RJ" | jq -c .approval)
[ "$(echo "$a" | jq -r .state)" = approved ] && [ "$(echo "$a" | jq -r .by)" = "alice via cli (api)" ] &&
	[ "$(echo "$a" | jq -r .at_unix_ms)" -gt 0 ] || fail "approval recorded as $a"
anvil show "$P" | grep -q "approved by alice via cli" || fail "anvil show does not say who approved"
curl -s "$URL/jobs/$RJ" | grep "approved by alice via cli (api)" >/dev/null || fail "the job page does not say who approved"
ok "approve: true waits until anvil approve; who and when recorded and shown"

# Reject: the job and what needs it end canceled.
echo two >"$T/src/demo/README"
commit_push demo "rejected"
P=$(latest_pipeline)
RJ=$(jid "$P" release)
AJ=$(jid "$P" announce)
wait_until 60 bash -c "curl -s $URL/api/v1/jobs/$RJ | jq -e '.approval.state == \"waiting\"' && curl -s $URL/api/v1/jobs/$(jid "$P" build) | jq -e '.state == \"success\"'" ||
	fail "release does not wait"
anvil approve "$P" --reject --as bob >/dev/null || fail "anvil approve --reject failed"
job_is "$RJ" canceled || fail "rejected release is $(job_state "$RJ")"
[ "$(api "/api/v1/jobs/$RJ" | jq -r .message)" = "rejected by bob via cli (api)" ] || fail "reject message: $(api "/api/v1/jobs/$RJ" | jq -r .message)"
job_is "$AJ" canceled || fail "announce is $(job_state "$AJ") after the reject"
pipeline_is "$P" canceled || fail "pipeline is $(pipeline_state "$P") after the reject"
ok "reject cancels the gated job and what needs it"

# The job page's Approve button, in Chromium.
echo three >"$T/src/demo/README"
commit_push demo "by the UI"
P=$(latest_pipeline)
RJ=$(jid "$P" release)
wait_until 60 bash -c "curl -s $URL/api/v1/jobs/$RJ | jq -e '.approval.state == \"waiting\"' && curl -s $URL/api/v1/jobs/$(jid "$P" build) | jq -e '.state == \"success\"'" ||
	fail "release does not wait"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/jobs/$RJ/approve")
[ "$code" = 403 ] || fail "the UI's approve without a session answered $code"
URL="$URL" TOKEN_FILE="$T/data/admin.token" JW="$RJ" timeout 120 node "$S/tests/browser/approve.test.js" 2>&1 | tee "$T/browser.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "browser approval failed"
api "/api/v1/jobs/$RJ" | jq -r .approval.by | grep -q "^web UI session [0-9a-f]\{8\}$" || fail "UI approval recorded as $(api "/api/v1/jobs/$RJ" | jq -c .approval)"
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P") after the UI approval"
ok "an approval by the job page's button"

# A deploy group with approve: true: its automatic deploy job waits too
# (no board is needed to see it wait, be approved, and ask for its agent).
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - echo hi >app
artifacts: [app]
deploy:
  - group: lab
    on: {branch: main}
    install: /opt/app
    files: [app]
    approve: true
YML
commit_push demo "gated deploy"
P=$(latest_pipeline)
wait_until 60 bash -c "curl -s $URL/api/v1/pipelines/$P | jq -e '[.jobs[] | select(.kind == \"deploy\")] | length == 1'" ||
	fail "no deploy job in pipeline $P: $(api "/api/v1/pipelines/$P" | jq -c '[.jobs[] | {name, kind, state}]')"
DJ=$(api "/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.kind == "deploy") | .id')
[ "$(api "/api/v1/jobs/$DJ" | jq -r .approval.state)" = waiting ] || fail "the deploy job does not wait: $(api "/api/v1/jobs/$DJ" | jq -c .approval)"
# While it waits nobody is asked for it: no "no agent" message.
if wait_until 4 bash -c "curl -s $URL/api/v1/jobs/$DJ | jq -r .message | grep -q 'no agent'"; then
	fail "a waiting deploy job was offered to agents"
fi
anvil approve "$P" deploy --as carol >/dev/null || fail "approving the deploy failed"
wait_until 10 bash -c "curl -s $URL/api/v1/jobs/$DJ | jq -r .message | grep -q 'no agent has label'" ||
	fail "the approved deploy job is not offered: $(api "/api/v1/jobs/$DJ" | jq -r .message)"
[ "$(api "/api/v1/jobs/$DJ" | jq -r .approval.by)" = "carol via cli (api)" ] || fail "deploy approval not recorded"
anvil cancel "$DJ" >/dev/null
ok "a deploy group's approve: true gates its deploy job"
