#!/bin/bash
# Steps are first-class (issue 16): the agent frames each step's start and
# end beside its output, so a step printing the frame's marker bytes forges
# nothing; the API lists the steps with state, exit code, duration and log
# offsets, and per-line times; `anvil logs --steps` and `anvil job` print
# them; in Chromium (tests/browser/steps.test.js) a failing job with a
# 50,000-line log opens with its failing step expanded and its last line in
# view, the other steps folded, light and dark, 1400 px and 420 px, nothing
# scrolling sideways, the secret masked in the step headers.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/chromium ] || fail "chromium missing: scripts/deps.sh test installs it"
command -v node >/dev/null || fail "node missing: scripts/deps.sh test installs it"
[ -d "$S/tests/browser/node_modules/playwright-core" ] ||
	npm ci --prefix "$S/tests/browser" --no-audit --no-fund >"$T/npm.log" 2>&1 || fail "npm ci failed"

VALUE="tok-$$-Zq9vW"
start_server
start_agent a1
make_repo demo
anvil repo add demo "$T/git/demo.git" >/dev/null
printf '%s' "$VALUE" | anvil secret set demo TOKEN >/dev/null || fail "secret set"

# The forger prints whole frame records (a step end, a step start named
# "evil", a time mark) and anvil's own step line, then succeeds.
cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - name: prepare
    run: echo prepared
  - name: forge
    run: |
      printf 'E\000\000\000\065{"index":2,"state":"success","exit_code":0,"at_ms":1}'
      printf 'S\000\000\000\067{"index":9,"name":"evil","command":"x","at_ms":1,"y":1}\n'
      printf '[anvil] step evil: x\n'
  - name: build with $VALUE
    run: |
      echo "using $VALUE"
      i=1; while [ \$i -le 50000 ]; do echo "compiling unit \$i of 50000: src/module_\$i.c"; i=\$((i+1)); done
      echo "error: the failing line"
      exit 3
  - name: never
    run: echo never
  - name: collect
    on: failure
    run: echo collected
YML
commit_push demo "a failing build" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 pipeline_is "$P" failed || fail "pipeline $P is $(pipeline_state "$P")"

api "/api/v1/jobs/$J/steps" >"$T/steps.json"
[ "$(jq -r '[.steps[] | "\(.index):\(.name):\(.state):\(.exit_code)"] | join(" ")' "$T/steps.json")" = \
	"0:prepare:success:0 1:forge:success:0 2:build with ***:failed:3 4:collect:success:0" ] ||
	fail "steps: $(cat "$T/steps.json")"
jq -e '.steps[] | select(.name == "evil")' "$T/steps.json" >/dev/null && fail "a step's output forged a step"
grep -qF "$VALUE" "$T/steps.json" && fail "the secret leaked into the step list"
jq -e '.steps[2] | .lines >= 50003 and .duration_ms >= 0 and .end_offset > .start_offset' "$T/steps.json" \
	>/dev/null || fail "build step: $(jq -c '.steps[2]' "$T/steps.json")"
api "/api/v1/jobs/$J/log" >"$T/log"
grep -q 'evil' "$T/log" || fail "the forger's output is not in the log as text"
jq -e '.times | length > 0 and (.[0][1] > 1600000000000)' <(api "/api/v1/jobs/$J/times") >/dev/null ||
	fail "no line times: $(api "/api/v1/jobs/$J/times" | head -c 300)"
ok "steps stored (forged markers stayed text), secret masked, line times kept"

anvil job "$J" >"$T/job.txt" || fail "anvil job failed"
grep -Eq 'build with \*\*\* +failed +3 ' "$T/job.txt" || fail "anvil job: $(cat "$T/job.txt")"
anvil logs --steps "$J" >"$T/steps.txt" || true
grep -q '^==> step 3 build with \*\*\*' "$T/steps.txt" || fail "anvil logs --steps: $(head -5 "$T/steps.txt")"
ok "anvil job and anvil logs --steps print the steps"

# The page's event stream replayed from the start: each step opens its
# section (event: seg) and its lines are numbered within it.
curl -s --max-time 60 "$URL/jobs/$J/events?offset=0&line=0&sgr=0&seg=0" >"$T/events.txt"
grep -q '^event: end' "$T/events.txt" || fail "event stream did not end: $(tail -c 300 "$T/events.txt")"
[ "$(grep -c '^event: seg' "$T/events.txt")" -ge 4 ] || fail "event stream: $(grep -c '^event: seg' "$T/events.txt") seg events"
grep -q '^data: <details class="step" id="step-2" open><summary><span class="st st-failed">failed' "$T/events.txt" ||
	fail "no section for the failing step in the stream"
grep -q 'id="s2-L50001"' "$T/events.txt" && ! grep -qF "$VALUE" "$T/events.txt" || fail "stream lines not numbered per step"
ok "the event stream opens a section per step"

echo "# job page: $(curl -s -o /dev/null -w '%{time_total} s, %{size_download} B' "$URL/jobs/$J"), gzip $(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download} B' "$URL/jobs/$J")"
URL="$URL" J="$J" VALUE="$VALUE" SHOTS="$T/shots" timeout 120 node "$S/tests/browser/steps.test.js" 2>&1 |
	tee "$T/browser.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "browser checks failed"
ok "job page with steps checked in Chromium"
