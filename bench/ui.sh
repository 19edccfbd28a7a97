#!/bin/bash
# UI benchmarks (issue 6); prints figures, asserts nothing.
#   1. a failing job page with a 50 MB log: server RSS before and after
#      rendering it, the page's time and bytes (curl; plain and gzip), its
#      first paint in Chromium, while the raw log link streams all 50 MB
#      (the page opens the failing step at its last 256 KiB; the rest stays
#      in the store);
#   2. Chromium following a busy live log (a coloured line every 20 ms) for
#      DURATION_S (default 600 s): V8 heap after GC, DOM nodes and listeners
#      every SAMPLE_S (30 s) — bench/ui_live.js.
# Usage: bench/ui.sh [BUILD_DIR]; env LOG_MB (50), DURATION_S (600), SAMPLE_S (30).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
LOG_MB=${LOG_MB:-50}
DURATION_S=${DURATION_S:-600}
SAMPLE_S=${SAMPLE_S:-30}
[ -d "$S/tests/browser/node_modules/playwright-core" ] && [ -d "$S/tests/browser/node_modules/axe-core" ] ||
	npm ci --prefix "$S/tests/browser" --no-audit --no-fund >/dev/null 2>&1 || fail "npm ci (tests/browser) failed"
mem() { awk '/^(Rss|Pss):/ {printf "%s%s_kb=%s", sep, tolower($1), $2; sep=" "} END {print ""}' "/proc/$1/smaps_rollup" | tr -d ':'; }

start_server --log-cap 1G --log-level warn
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
