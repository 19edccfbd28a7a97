#!/bin/bash
# The web UI in a real browser (Debian's Chromium via playwright-core):
# escaping of repository text, the live log over SSE (delay figures), ANSI
# colours, line anchors, artifacts, badges, login + CSRF-protected cancel,
# phone and desktop widths, dark scheme, and a self-refreshing dashboard whose
# DOM and heap stay flat. Then read_auth: pages need a login.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/chromium ] || fail "chromium missing: scripts/deps.sh test installs it"
command -v node >/dev/null || fail "node missing: scripts/deps.sh test installs it"
if [ ! -d "$S/tests/browser/node_modules/playwright-core" ]; then
	if [ -f "$S/tests/browser/package-lock.json" ]; then
		npm ci --prefix "$S/tests/browser" --no-audit --no-fund >"$T/npm.log" 2>&1 || fail "npm ci failed"
	else
		npm install --prefix "$S/tests/browser" --no-audit --no-fund >"$T/npm.log" 2>&1 || fail "npm install failed"
	fi
fi

# The static files served are exactly the ones in server/ui (embed.sh ran).
start_server --lease 3
for f in "$S"/server/ui/*.css "$S"/server/ui/*.js "$S"/server/ui/*.svg; do
	curl -sf "$URL/static/$(basename "$f")" | cmp -s - "$f" ||
		fail "served $(basename "$f") differs from $f: run server/ui/embed.sh"
done
etag=$(curl -sfI -X GET "$URL/static/app.css" | tr -d '\r' | sed -n 's/^ETag: //Ip')
[ "$etag" = "\"$(sha256sum "$S/server/ui/app.css" | cut -d' ' -f1)\"" ] || fail "ETag $etag is not the sha256"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/static/app.css")
[ "$code" = 304 ] || fail "conditional GET answered $code"
curl -sfI -X GET "$URL/static/app.css" | grep -qi '^Cache-Control: public, max-age=' || fail "no max-age"
ok "embedded static files with sha256 ETag, 304 and max-age"

start_agent a1
make_repo demo
# 1. A commit whose message is a script, with an artifact: success.
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: build
    run: |
      echo "line one"
      printf '\033[32mgreen\033[0m <b>not bold</b>\n'
      echo hello > hello.txt
artifacts: [hello.txt]
YML
commit_push demo '<script>window.__xss=1</script> fix the build' >/dev/null
PA=$(latest_pipeline)
JA=$(first_job "$PA")
wait_until 60 pipeline_is "$PA" success || fail "pipeline $PA is $(pipeline_state "$PA")"
SHA_A=$(api "/api/v1/jobs/$JA/artifacts" | jq -r '.artifacts[0].sha256')

# 2. A failing pipeline on a branch whose name holds <b>.
BRANCH_B='feat/<b>bold</b>'
printf 'steps:\n  - run: echo failing; exit 1\n' >"$T/src/demo/.anvil.yml"
git -C "$T/src/demo" add -A && git -C "$T/src/demo" commit -q -m "failing on a branch"
git -C "$T/src/demo" push -q origin "HEAD:refs/heads/$BRANCH_B" 2>&1
PB=$(latest_pipeline)
wait_until 60 pipeline_is "$PB" failed || fail "pipeline $PB is $(pipeline_state "$PB")"

# 3. On its own branch (main keeps the script commit), a running job printing a coloured, timestamped line every 200 ms,
# in two steps: the first ticks until the browser test drops .go into the job's workspace, so it
# ends while the page is open (its section's duration fills in live).
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: ticker
    run: |
      i=0
      while [ ! -e .go ]; do
        i=$((i+1))
        printf '\033[31mred\033[0m \033[1mtick\033[0m %s ts=%s\n' "$i" "$(date +%s%3N)"
        sleep 0.2
      done
  - name: ticker2
    run: |
      for i in $(seq 1001 1600); do
        printf '\033[31mred\033[0m \033[1mtick\033[0m %s ts=%s\n' "$i" "$(date +%s%3N)"
        sleep 0.2
      done
YML
git -C "$T/src/demo" add -A && git -C "$T/src/demo" commit -q -m "ticker"
git -C "$T/src/demo" push -q origin HEAD:refs/heads/live 2>&1
PC=$(latest_pipeline)
JC=$(first_job "$PC")
wait_until 30 log_has "$JC" " 3 ts=" || fail "ticker job did not start: $(job_state "$JC")"
ok "pipelines ready: $PA (xss commit), $PB (<b> branch), job $JC running"

SHOTS="$T/shots"
mkdir -p "$SHOTS"
URL="$URL" TOKEN_FILE="$T/data/admin.token" SHOTS="$SHOTS" PA="$PA" JA="$JA" SHA_A="$SHA_A" PB="$PB" \
	BRANCH_B="$BRANCH_B" JC="$JC" GO="$T/agent-a1/jobs/$JC/src/.go" timeout 150 node "$S/tests/browser/ui.test.js" 2>&1 | tee "$T/browser.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "browser test failed"
mkdir -p /tmp/anvil-ui-shots
cp "$SHOTS"/*.png /tmp/anvil-ui-shots/
ok "screenshots in /tmp/anvil-ui-shots"

# read_auth: every page and the event stream need the session cookie.
kill "$SERVER_PID"
wait_until 10 bash -c "! kill -0 $SERVER_PID" || fail "server did not stop"
# (not start_server: its health check reads /healthz without a token)
rm -f "$T/data/port"
"$B/anvil-server" --data "$T/data" --port 0 --read-auth true >>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 60 test -s "$T/data/port" || fail "read_auth server did not start"
URL="http://127.0.0.1:$(cat "$T/data/port")"
wait_until 10 curl -sf -o /dev/null "$URL/login" || fail "read_auth server not answering"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/jobs/$JA")
[ "$code" = "303 $URL/login?next=/jobs/$JA" ] || fail "read_auth page without login answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/jobs/$JA/events")
[ "$code" = 401 ] || fail "read_auth event stream without login answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/badge/demo/main.svg")
[ "$code" = 401 ] || fail "read_auth badge without login answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "token=not-the-token" "$URL/login")
[ "$code" = 403 ] || fail "bad login answered $code"
curl -s -o /dev/null -c "$T/jar" --data-urlencode "token=$(cat "$T/data/admin.token")" --data-urlencode "next=/jobs/$JA" "$URL/login"
grep -q anvil_session "$T/jar" || fail "login set no cookie"
grep -q "$(cat "$T/data/admin.token")" "$T/jar" && fail "the cookie holds the admin token"
curl -sf -b "$T/jar" "$URL/jobs/$JA" | grep "line one" >/dev/null || fail "logged-in page read failed"
curl -sf -b "$T/jar" "$URL/jobs/$JA/events" | grep "^event: end" >/dev/null || fail "logged-in event stream did not end"
ok "read_auth: pages redirect to /login, the stream and badges answer 401, a login cookie reads"
