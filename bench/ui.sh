#!/bin/bash
# UI benchmarks (issue 6); prints figures, asserts nothing.
#   1. a failing job page with a 50 MB log: server RSS before and after
#      rendering it, the page's time and bytes (curl; plain and gzip), its
#      first paint in Chromium, while the raw log link streams all 50 MB
#      (the page opens the failing step at its last 256 KiB; the rest stays
#      in the store);
#   2. Chromium following a busy live log (a coloured line every 20 ms) for
#      DURATION_S (default 600 s): V8 heap after GC, DOM nodes and listeners
#      every SAMPLE_S (30 s) — bench/ui_live.js;
#   3. a repository page (/repos/NAME, with its duration trend per branch)
#      over 1,000 finished pipelines on 100 branches: the server's time,
#      bytes sent with and without gzip, and Chromium's first paint
#      (bench/ui_repo.js). The pipelines are written into the store
#      directly (sqlite3) while the server is stopped: running 1,000 jobs
#      would measure the agent, not the page.
# Usage: bench/ui.sh [BUILD_DIR]; env LOG_MB (50), DURATION_S (600), SAMPLE_S (30),
#   PARTS (default "job live repo": which of 1, 2, 3 to run).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
LOG_MB=${LOG_MB:-50}
DURATION_S=${DURATION_S:-600}
SAMPLE_S=${SAMPLE_S:-30}
[ -d "$S/tests/browser/node_modules/playwright-core" ] && [ -d "$S/tests/browser/node_modules/axe-core" ] ||
	npm ci --prefix "$S/tests/browser" --no-audit --no-fund >/dev/null 2>&1 || fail "npm ci (tests/browser) failed"
PARTS=${PARTS:-job live repo}
mem() { awk '/^(Rss|Pss):/ {printf "%s%s_kb=%s", sep, tolower($1), $2; sep=" "} END {print ""}' "/proc/$1/smaps_rollup" | tr -d ':'; }

start_server --log-cap 1G --log-level warn

# 3. The repository page over 1,000 pipelines on 100 branches.
if [[ " $PARTS " == *" repo "* ]]; then
	kill "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	now=$(date +%s%3N)
	sqlite3 "$T/data/anvil.db" "INSERT INTO repos(name, url, created_unix_ms) VALUES('many', '/nonexistent', $now)"
	rid=$(sqlite3 "$T/data/anvil.db" "SELECT id FROM repos WHERE name = 'many'")
	{
		echo "BEGIN;"
		for i in $(seq 1 1000); do
			b=$((i % 100))
			st=success
			[ $((i % 7)) = 0 ] && st=failed
			c=$((now - (1000 - i) * 60000))
			f=$((c + 30000 + (i * 7919 % 60000)))
			echo "INSERT INTO pipelines(repo_id, ref, commit_sha, event, state, commit_message, author, created_unix_ms, finished_unix_ms) VALUES($rid, 'refs/heads/feature-$b', '$(printf '%040x' "$i")', 'push', '$st', 'change $i of branch feature-$b', 'bench', $c, $f);"
			echo "INSERT INTO jobs(pipeline_id, name, target, state, attempt, max_attempts, spec, created_unix_ms, started_unix_ms, finished_unix_ms) VALUES(last_insert_rowid(), 'build', 'host', '$st', 1, 3, '{}', $c, $((c + 1000)), $f);"
		done
		echo "COMMIT;"
	} | sqlite3 "$T/data/anvil.db"
	start_server --log-level warn
	echo "repository page: $(sqlite3 "$T/data/anvil.db" "SELECT count(*), count(DISTINCT ref) FROM pipelines p JOIN repos r ON r.id = p.repo_id WHERE r.name = 'many'" | tr '|' ' ') pipelines and branches"
	for i in 1 2 3; do
		t=$(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}' "$URL/repos/many")
		echo "  plain: time_to_first_byte=${t%% *} s time_total=$(echo "$t" | cut -d' ' -f2) s bytes=${t##* }"
	done
	for i in 1 2 3; do
		t=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_starttransfer} %{time_total} %{size_download}' "$URL/repos/many")
		echo "  gzip:  time_to_first_byte=${t%% *} s time_total=$(echo "$t" | cut -d' ' -f2) s bytes=${t##* }"
	done
	echo "  Chromium, /repos/many: $(NODE_PATH="$S/tests/browser/node_modules" URL="$URL" PAGE=/repos/many node "$S/bench/ui_repo.js")"
	echo "  Chromium, /pipelines:  $(NODE_PATH="$S/tests/browser/node_modules" URL="$URL" PAGE=/pipelines node "$S/bench/ui_repo.js")"
fi
[[ " $PARTS " == *" job "* || " $PARTS " == *" live "* ]] || exit 0

start_agent a1 --targets host --log-level warn
make_repo ui
# A compiler-like log of LOG_MB, then a ticker for the live part.
cat >"$T/src/ui/.anvil.yml" <<YML
steps:
  - run: |
      i=0; while [ \$i -lt $((LOG_MB * 1024 * 1024 / 100)) ]; do
        printf 'src/module_%05d.c:%d:%d: warning: unused variable \\033[1mtmp_%d\\033[0m [-Wunused-variable] .......\\n' \$((i % 9999)) \$i 7 \$i
        i=\$((i + 1))
      done | head -c $((LOG_MB * 1024 * 1024))
      exit 1
YML
commit_push ui "big log" >/dev/null
JB=$(first_job "$(latest_pipeline)")
wait_until 600 job_is "$JB" failed || fail "big-log job is $(job_state "$JB")"
echo "log: $(api "/api/v1/jobs/$JB" | jq -r .log_bytes) bytes"
echo "server before the page: $(mem "$SERVER_PID")"
t=$(curl -s -o "$T/page.html" -w '%{time_total} %{size_download}' "$URL/jobs/$JB")
echo "job page with the ${LOG_MB} MB log: time_total=${t% *} s html_bytes=${t#* }"
echo "server after the page: $(mem "$SERVER_PID")"
t=$(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{time_total} %{size_download}' "$URL/jobs/$JB")
echo "job page with the ${LOG_MB} MB log, gzip: time_total=${t% *} s html_bytes=${t#* }"
# Time to first paint in Chromium (first-contentful-paint), three loads.
NODE_PATH="$S/tests/browser/node_modules" URL="$URL/jobs/$JB" node -e '
const { chromium } = require("playwright-core");
(async () => {
	const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
	const p = await (await b.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
	for (let i = 0; i < 3; i++) {
		await p.goto(process.env.URL + "?r=" + i);
		const t = await p.evaluate(() => {
			const f = performance.getEntriesByName("first-contentful-paint")[0];
			const n = performance.getEntriesByType("navigation")[0];
			return { fcp: f ? Math.round(f.startTime) : -1, load: Math.round(n.loadEventEnd), bytes: n.transferSize };
		});
		console.log(`job page in Chromium: first_contentful_paint_ms=${t.fcp} load_ms=${t.load} transfer_bytes=${t.bytes}`);
	}
	await b.close();
})();'

t=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' "$URL/jobs/$JB/log")
echo "raw log download: time_total=${t% *} s bytes=${t#* }"
echo "server after the download: $(mem "$SERVER_PID")"
[[ " $PARTS " == *" live "* ]] || exit 0

cat >"$T/src/ui/.anvil.yml" <<YML
steps:
  - run: |
      end=\$((\$(date +%s) + $DURATION_S + 60))
      i=0; while [ \$(date +%s) -lt \$end ]; do
        i=\$((i + 1)); printf '\\033[32mok\\033[0m line %d ts=%s\\n' \$i "\$(date +%s%3N)"; sleep 0.02
      done
YML
commit_push ui "ticker" >/dev/null
JL=$(first_job "$(latest_pipeline)")
wait_until 60 log_has "$JL" "line 10 " || fail "ticker did not start"
echo "following job $JL for $DURATION_S s (a line every ~20 ms):"
NODE_PATH="$S/tests/browser/node_modules" URL="$URL" JOB="$JL" DURATION_S="$DURATION_S" SAMPLE_S="$SAMPLE_S" \
	node "$S/bench/ui_live.js"
echo "server after following: $(mem "$SERVER_PID")"
