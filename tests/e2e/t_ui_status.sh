#!/bin/bash
# Build status people can read (issue 16), over HTTP and in Chromium
# (tests/browser/status.test.js): gzip-compressed pages and logs (sizes
# printed), HEAD, an HTML 404 outside /api/, '\r' progress and 256-colour /
# truecolor SGR in a 3,025-line failing log, table cells that never break
# inside a word, dark-mode badge contrast, no tab stop per log line, live
# regions, release links under --read-auth, the history pages, live pipeline
# and job pages after Retry and Cancel, and times on the job page.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/chromium ] || fail "chromium missing: scripts/deps.sh test installs it"
command -v node >/dev/null || fail "node missing: scripts/deps.sh test installs it"
[ -d "$S/tests/browser/node_modules/playwright-core" ] && [ -d "$S/tests/browser/node_modules/axe-core" ] ||
	npm ci --prefix "$S/tests/browser" --no-audit --no-fund >"$T/npm.log" 2>&1 || fail "npm ci failed"

start_server --lease 3
start_agent a1
make_repo demo

# 0. A passing pipeline on main, then its tag: a signed release.
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: build
    run: echo hello > hello.txt
artifacts: [hello.txt]
YML
commit_push demo "a passing build" >/dev/null
PS=$(latest_pipeline)
wait_until 60 pipeline_is "$PS" success || fail "pipeline $PS is $(pipeline_state "$PS")"
git -C "$T/src/demo" tag -a v1.0.0 -m v1.0.0
git -C "$T/src/demo" push -q origin v1.0.0
PT=$(latest_pipeline)
wait_until 60 pipeline_is "$PT" success || fail "tag pipeline $PT is $(pipeline_state "$PT")"
wait_until 20 bash -c "curl -s '$URL/api/v1/releases/demo/v1.0.0' | jq -e '.signed == true' >/dev/null" ||
	fail "release v1.0.0 not signed"
ok "passing pipeline $PS, tag pipeline $PT, release v1.0.0"

# 1. A failing job with 3,025 log lines: progress bars redrawn with '\r',
#    256-colour and truecolor SGR.
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: build
    run: |
      printf 'fetch  10%%\rfetch  55%%\rfetch 100%%\n'
      printf '\033[38;5;208morange\033[0m \033[48;2;0;0;135mon navy\033[0m\n'
      i=0; while [ $i -lt 3020 ]; do echo "compiling unit $i of 3020: src/module_$i.c -> obj/module_$i.o"; i=$((i+1)); done
      echo hello > hello.txt
      echo "error: the failing line"
      exit 1
artifacts: [hello.txt]
YML
commit_push demo "a failing build" >/dev/null
PF=$(latest_pipeline)
JF=$(first_job "$PF")
wait_until 90 pipeline_is "$PF" failed || fail "pipeline $PF is $(pipeline_state "$PF")"
lines=$(api "/api/v1/jobs/$JF/log" | wc -l)
ok "failing pipeline $PF, job $JF with $lines log lines"

# Compression: the job page and the raw log, gzip when asked, same bytes.
curl -sf -o "$T/job.html" "$URL/jobs/$JF"
curl -sf -H 'Accept-Encoding: gzip' -D "$T/job.h" -o "$T/job.html.gz" "$URL/jobs/$JF"
grep -qi '^Content-Encoding: gzip' "$T/job.h" || fail "job page not gzip-encoded: $(cat "$T/job.h")"
grep -qi '^Vary: Accept-Encoding' "$T/job.h" || fail "job page without Vary: Accept-Encoding"
# (the "ago" of the times' titles moves between the two requests)
notitle() { sed 's/ title="[^"]*"//g'; }
gunzip -c "$T/job.html.gz" | notitle | cmp -s - <(notitle <"$T/job.html") ||
	fail "gunzipped job page differs from the plain one"
plain=$(stat -c %s "$T/job.html")
gz=$(stat -c %s "$T/job.html.gz")
echo "# job page of $lines lines: $plain B plain, $gz B gzip"
[ "$gz" -lt $((plain / 5)) ] || fail "gzip page $gz B is not under a fifth of $plain B"
curl -sf -o "$T/raw.log" "$URL/jobs/$JF/log"
curl -sf -H 'Accept-Encoding: gzip' -D "$T/raw.h" -o "$T/raw.log.gz" "$URL/jobs/$JF/log"
grep -qi '^Content-Encoding: gzip' "$T/raw.h" || fail "raw log not gzip-encoded"
gunzip -c "$T/raw.log.gz" | cmp -s - "$T/raw.log" || fail "gunzipped raw log differs"
echo "# raw log: $(stat -c %s "$T/raw.log") B plain, $(stat -c %s "$T/raw.log.gz") B gzip"
curl -sf -H 'Accept-Encoding: gzip;q=0' -D "$T/q0.h" -o /dev/null "$URL/jobs/$JF"
grep -qi '^Content-Encoding' "$T/q0.h" && fail "gzip;q=0 still got gzip"
curl -sf -H 'Accept-Encoding: gzip' -D "$T/ev.h" -o /dev/null "$URL/jobs/$JF/events"
grep -qi '^Content-Encoding' "$T/ev.h" && fail "the event stream was compressed"
ok "job page and raw log gzip-compressed on request (not with q=0, never the event stream)"

# HEAD and 404s.
code=$(curl -s -I -o "$T/head.h" -w '%{http_code} %{size_download}' "$URL/")
[ "$code" = "200 0" ] || fail "HEAD / answered $code"
grep -qi '^Content-Type: text/html' "$T/head.h" || fail "HEAD / without the page's Content-Type"
code=$(curl -s -o "$T/404.html" -w '%{http_code} %{content_type}' "$URL/no/such/page")
[ "$code" = "404 text/html; charset=utf-8" ] && grep -q '<h1>404</h1>' "$T/404.html" ||
	fail "unknown UI path answered $code: $(head -c 200 "$T/404.html")"
code=$(curl -s -o "$T/404.json" -w '%{http_code} %{content_type}' "$URL/api/v1/no-such-route")
[ "$code" = "404 application/json" ] && jq -e .error "$T/404.json" >/dev/null ||
	fail "unknown API path answered $code"
ok "HEAD / is 200 without a body; unknown pages get an HTML 404, unknown API paths JSON"

# '\r' frames and extended colours, as the server renders them.
grep -q '<span class="t">fetch 100%</span>' "$T/job.html" || fail "progress line's last frame missing"
grep -q '55%fetch' "$T/job.html" && fail "overwritten progress frames shown"
grep -q '<span class="c208">orange</span>' "$T/job.html" || fail "38;5;208 not rendered"
grep -q '<span class="g18">on navy</span>' "$T/job.html" || fail "48;2;0;0;135 not rendered"
ok "progress bars show their last frame; 256-colour and truecolor render"

# History: the API's filters, /pipelines and /repos/NAME, tags as tags.
ids() { api "/api/v1/pipelines?$1" | jq -r '[.pipelines[].id] | join(" ")'; }
[ "$(ids 'ref=main')" = "$PF $PS" ] || fail "ref=main listed $(ids 'ref=main')"
[ "$(ids 'ref=refs/heads/main')" = "$PF $PS" ] || fail "ref=refs/heads/main listed $(ids 'ref=refs/heads/main')"
[ "$(ids 'ref=v1.0.0')" = "$PT" ] || fail "ref=v1.0.0 listed $(ids 'ref=v1.0.0')"
[ "$(ids 'repo=demo&state=failed')" = "$PF" ] || fail "state=failed listed $(ids 'state=failed')"
[ "$(ids 'event=tag')" = "$PT" ] || fail "event=tag listed $(ids 'event=tag')"
[ "$(ids "before=$PF&limit=1")" = "$PT" ] || fail "before=$PF&limit=1 listed $(ids "before=$PF&limit=1")"
[ "$(ids 'ref=nope')" = "" ] || fail "ref=nope listed $(ids 'ref=nope')"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/pipelines?state=bogus")
[ "$code" = 400 ] || fail "state=bogus answered $code"
ok "the API's pipeline list honours ref= (name or full ref), state=, event=, before="

page_ids() { curl -sf "$URL$1" | grep -o 'href="/pipelines/[0-9]*"' | grep -o '[0-9]*' | tr '\n' ' ' | sed 's/ $//'; }
[ "$(page_ids /pipelines)" = "$PF $PT $PS" ] || fail "/pipelines listed $(page_ids /pipelines)"
[ "$(page_ids '/pipelines?state=failed&ref=')" = "$PF" ] || fail "/pipelines?state=failed listed $(page_ids '/pipelines?state=failed')"
[ "$(page_ids '/pipelines?repo=demo&ref=main')" = "$PF $PS" ] || fail "/pipelines ref=main listed $(page_ids '/pipelines?ref=main')"
curl -sf "$URL/pipelines?limit=1" >"$T/p1.html"
older=$(grep -o 'rel="next" href="[^"]*"' "$T/p1.html" | sed 's/.*href="//; s/"$//; s/&amp;/\&/g')
[ "$older" = "/pipelines?limit=1&before=$PF" ] || fail "page 1 of 1 links to '$older'"
[ "$(page_ids "$older")" = "$PT" ] || fail "page 2 listed $(page_ids "$older")"
[ "$(page_ids /repos/demo)" = "$PF $PT $PS" ] || fail "/repos/demo listed $(page_ids /repos/demo)"
[ "$(page_ids '/repos/demo?event=tag')" = "$PT" ] || fail "/repos/demo?event=tag listed $(page_ids '/repos/demo?event=tag')"
code=$(curl -s -o "$T/r404.html" -w '%{http_code}' "$URL/repos/nope")
[ "$code" = 404 ] && grep -q '<h1>404</h1>' "$T/r404.html" || fail "/repos/nope answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/pipelines?state=bogus")
[ "$code" = 400 ] || fail "/pipelines?state=bogus answered $code"
curl -sf "$URL/" >"$T/dash.html"
grep -q '<span class="kind kind-tag">tag</span> <span class="mono">v1.0.0</span>' "$T/dash.html" ||
	fail "the dashboard does not show v1.0.0 as a tag"
grep -q '<span class="kind kind-branch">branch</span> <span class="mono">main</span>' "$T/dash.html" ||
	fail "the dashboard does not show main as a branch"
grep -q 'href="/pipelines?repo=demo&amp;ref=refs/heads/main"' "$T/dash.html" || fail "no history link for main"
grep -q 'href="/repos/demo"' "$T/dash.html" || fail "the dashboard does not link /repos/demo"
curl -sf "$URL/pipelines/$PT" | grep '<span class="kind kind-tag">tag</span>' >/dev/null || fail "pipeline page hides the tag"
ok "history: /pipelines (newest first, paged, filtered), /repos/demo, tags shown as tags, older pipelines reachable"

# A board and a deployment, for their tables.
ssh-keygen -q -t ed25519 -N '' -f "$T/boardkey"
fp=$(ssh-keygen -lf "$T/boardkey.pub" | awk '{print $2}')
anvil board add bench-board-01 --host 127.0.0.1 --port 1 --user root --key "$T/boardkey" --arch aarch64 \
	--group field-lab --label site=plant-3 --host-key "$fp" >"$T/board.out" 2>&1 || fail "board add: $(cat "$T/board.out")"

anvil deploy "$PS" --group field-lab --install /opt/demo --files hello.txt >"$T/deploy.out" 2>&1 ||
	fail "deploy: $(cat "$T/deploy.out")"
ok "board and deployment added"

# Cross-links (issue 16): agent, board and deployment pages, and what links to them.
DJ=$(api /api/v1/deployments | jq -r '.deployments[0].id')
AID=$(api /api/v1/agents | jq -r '.agents[] | select(.name == "a1") | .id')
curl -sf "$URL/agents/a1" >"$T/agent.html" || fail "/agents/a1 failed"
grep -q '<h1>Agent a1</h1>' "$T/agent.html" && grep -q "href=\"/jobs/$JF\"" "$T/agent.html" &&
	grep -q "href=\"/pipelines/$PF\"" "$T/agent.html" || fail "/agents/a1 does not list job $JF"
curl -sf "$URL/agents/$AID" | grep '<h1>Agent a1</h1>' >/dev/null || fail "/agents/$AID is not a1's page"
first=$(grep -o 'href="/jobs/[0-9]*"' "$T/agent.html" | head -1 | grep -o '[0-9]*')
curl -sf "$URL/agents/a1?before=$first" | grep "href=\"/jobs/$first\"" >/dev/null && fail "before=$first still lists job $first"
for u in /agents/nope /boards/nope "/deployments/$JF" /deployments/999999; do
	code=$(curl -s -o "$T/nf.html" -w '%{http_code}' "$URL$u")
	[ "$code" = 404 ] && grep -q '<h1>404</h1>' "$T/nf.html" || fail "$u answered $code"
done
code=$(curl -s -o "$T/x.html" -w '%{http_code}' "$URL/agents/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
[ "$code" = 404 ] && ! grep -q '<script>alert' "$T/x.html" || fail "a hostile agent name answered $code unescaped"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/agents/a1?before=x")
[ "$code" = 400 ] || fail "/agents/a1?before=x answered $code"
curl -sf "$URL/agents" | grep 'href="/agents/a1"' >/dev/null || fail "/agents does not link a1's page"
curl -sf "$URL/" | grep 'href="/agents/a1"' >/dev/null || fail "the dashboard does not link a1's page"
# (read whole before grep -q: with pipefail, curl into a pipe grep closed early fails)
curl -sf -o "$T/jf.html" "$URL/jobs/$JF"
grep -q 'href="/agents/a1"' "$T/jf.html" || fail "the job page does not link its agent"
curl -sf "$URL/boards" | grep 'href="/boards/bench-board-01"' >/dev/null || fail "/boards does not link the board page"
curl -sf "$URL/boards/bench-board-01" >"$T/board.html" || fail "/boards/bench-board-01 failed"
grep -q 'Deploy history' "$T/board.html" && grep -q 'field-lab' "$T/board.html" || fail "board page lacks its facts"
grep -qi 'PRIVATE KEY' "$T/board.html" && fail "the board page shows the private key"
curl -sf "$URL/deployments" | grep "href=\"/deployments/$DJ\"" >/dev/null || fail "/deployments does not link deployment $DJ"
curl -sf "$URL/deployments/$DJ" >"$T/dep.html" || fail "/deployments/$DJ failed"
grep -q "href=\"/pipelines/$PS\"" "$T/dep.html" && grep -q "href=\"/jobs/$DJ\"" "$T/dep.html" &&
	grep -q 'field-lab' "$T/dep.html" || fail "deployment page lacks its pipeline, log or group"
curl -sf "$URL/pipelines/$PS" >"$T/ps.html"
grep -q "href=\"/deployments/$DJ\"" "$T/ps.html" || fail "pipeline $PS does not link its deployment"
grep -q 'href="/jobs/[0-9]*/artifacts/hello.txt"' "$T/ps.html" || fail "pipeline $PS does not list its artifacts"
# The page's live part (its event stream's "page" events) carries the links too, so they appear
# while the page is open.
curl -sN --max-time 60 "$URL/pipelines/$PS/events" >"$T/ps.events" &
EV_PID=$!
wait_until 30 grep -q 'href="/jobs/[0-9]*/artifacts/hello.txt"' "$T/ps.events" &&
	grep -q "href=\"/deployments/$DJ\"" "$T/ps.events" || fail "pipeline $PS's event stream lacks its artifacts or deployment"
kill "$EV_PID" 2>/dev/null
wait "$EV_PID" 2>/dev/null || true
curl -sf "$URL/pipelines/$PT" >"$T/pt.html"
for w in '<dt>Created</dt><dd><time' '<dt>Started</dt><dd><time' '<dt>Finished</dt><dd><time' '<dt>Queue wait</dt><dd>[0-9]' '<dt>Duration</dt><dd>[0-9]'; do
	grep -q "$w" "$T/pt.html" || fail "pipeline $PT lacks $w"
done
grep -q '<dt>Expected</dt>' "$T/pt.html" && fail "a finished pipeline shows an expected duration"
grep -q 'href="/releases?repo=demo&amp;version=v1.0.0"' "$T/pt.html" || fail "tag pipeline does not link its release"
curl -sf "$URL/releases?repo=demo&version=v1.0.0" | grep "href=\"/pipelines/$PT\"" >/dev/null || fail "the release's page does not link its pipeline"
curl -sf "$URL/releases?version=v9.9.9" | grep 'No release matches' >/dev/null || fail "an unknown version shows releases"
curl -sf "$URL/repos/demo" >"$T/repo.html"
# (main's passing pipeline waits for its deployment: only the failed run is finished)
grep -q '<svg class="trend"[^>]*aria-label="Durations of the last 1 finished runs of main"><line[^>]*/><circle class="bad"' "$T/repo.html" ||
	fail "/repos/demo lacks main's duration trend"
ok "cross-links: agent $AID, board and deployment $DJ pages; pipeline -> deployments, artifacts, release; trend on /repos/demo"

# 3. A running job on its own branch: for live pages, Cancel and Retry.
#    First a quick passing run on that branch: what its expected duration
#    comes from.
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: ticker
    run: echo quick
YML
git -C "$T/src/demo" add -A && git -C "$T/src/demo" commit -q -m "quick"
git -C "$T/src/demo" push -q origin HEAD:refs/heads/live 2>&1
PQ=$(latest_pipeline)
wait_until 60 pipeline_is "$PQ" success || fail "quick pipeline $PQ is $(pipeline_state "$PQ")"
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: ticker
    run: |
      i=0; while [ $i -lt 250 ] && [ ! -e .go ]; do echo "tick $i"; sleep 0.2; i=$((i+1)); done
YML
git -C "$T/src/demo" add -A && git -C "$T/src/demo" commit -q -m "ticker"
git -C "$T/src/demo" push -q origin HEAD:refs/heads/live 2>&1
PL=$(latest_pipeline)
JL=$(first_job "$PL")
wait_until 30 log_has "$JL" "tick 3" || fail "ticker job did not start: $(job_state "$JL")"
ok "running pipeline $PL, job $JL"
# While it runs: an expected duration from the branch's successful run ($PQ).
curl -sf "$URL/pipelines/$PL" | grep '<dt>Expected</dt><dd>about [0-9.hms ]*<span class="muted">(median of 1 successful run of this branch)</span>' >/dev/null ||
	fail "running pipeline $PL shows no expected duration"
curl -sf -o "$T/jl.html" "$URL/jobs/$JL"
grep -q '<dt>Expected</dt><dd>about' "$T/jl.html" || fail "running job $JL shows no expected duration"
ok "a running pipeline and job show their expected duration"

# The browser part: live pages, tables, contrast, keyboard, live regions.
SHOTS="$T/shots"
mkdir -p "$SHOTS"
URL="$URL" TOKEN_FILE="$T/data/admin.token" SHOTS="$SHOTS" PF="$PF" JF="$JF" PS="$PS" PT="$PT" PL="$PL" JL="$JL" DJ="$DJ" AGENT_PID="$AGENT_PID" AGENT_WORK="$T/agent-a1" \
	timeout 610 node "$S/tests/browser/status.test.js" 2>&1 | tee "$T/browser.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "browser test failed"
mkdir -p /tmp/anvil-ui-shots
cp "$SHOTS"/*.png /tmp/anvil-ui-shots/ 2>/dev/null || true

# Release links of /releases under --read-auth, with a browser's session.
kill "$SERVER_PID"
wait_until 10 bash -c "! kill -0 $SERVER_PID" || fail "server did not stop"
rm -f "$T/data/port"
"$B/anvil-server" --data "$T/data" --port 0 --read-auth true >>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 60 test -s "$T/data/port" || fail "read_auth server did not start"
URL="http://127.0.0.1:$(cat "$T/data/port")"
wait_until 10 curl -sf -o /dev/null "$URL/login" || fail "read_auth server not answering"
for p in /pipelines /repos/demo "/pipelines/$PL"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$URL$p")
	[ "$code" = 303 ] || fail "read_auth $p without login answered $code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/pipelines/$PL/events")
[ "$code" = 401 ] || fail "read_auth pipeline event stream without login answered $code"
curl -s -o /dev/null -c "$T/jar" --data-urlencode "token=$(cat "$T/data/admin.token")" "$URL/login"
curl -sf -b "$T/jar" "$URL/pipelines/$PL/events" | grep '^event: end' >/dev/null ||
	fail "logged-in pipeline event stream did not end"
curl -sf -b "$T/jar" "$URL/repos/demo" | grep "href=\"/pipelines/$PL\"" >/dev/null || fail "logged-in /repos/demo failed"
curl -sf -b "$T/jar" "$URL/releases" >"$T/releases.html" || fail "logged-in /releases failed"
links=$(grep -o 'href="/[^"]*v1.0.0[^"]*"' "$T/releases.html" | sed 's/^href="//; s/"$//' | sort -u)
[ "$(echo "$links" | wc -l)" -ge 5 ] || fail "too few release links: $links"
for l in $links; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" "$URL$l")
	[ "$code" = 200 ] || fail "release link $l answered $code to a logged-in browser"
	code=$(curl -s -o /dev/null -w '%{http_code}' "$URL$l")
	[ "$code" = 303 ] || fail "release link $l answered $code without a login"
done
curl -sf -b "$T/jar" "$URL$(echo "$links" | grep /files/ | head -1)" | grep hello >/dev/null ||
	fail "release file link did not serve the file"
ok "read_auth: history pages and the pipeline stream need the login; release links on /releases work for a logged-in browser ($(echo "$links" | wc -l) links)"
