#!/bin/bash
# Load, bounded, on loopback: 50 real agents long-polling and 1,000 queued
# jobs (every job runs exactly once); 50 concurrent triggers with distinct
# delivery ids make 50 pipelines and one delivery sent 20 times at once makes
# one; 200 clients following a live log while it ingests (ingest keeps at
# least half its unloaded rate in the normal build, every follower gets the
# whole log, most reads
# are answered from the in-memory log tail). Prints the figures. Env: LOAD_AGENTS (50), LOAD_JOBS (1000), LOAD_FOLLOWERS (200),
# LOAD_MB (16), LOAD_PACED_MB (4), LOAD_PACE_MS (40; 100 in a sanitizer build).
. "$(dirname "$0")/lib.sh"

AGENTS=${LOAD_AGENTS:-50}
JOBS=${LOAD_JOBS:-1000}
FOLLOWERS=${LOAD_FOLLOWERS:-200}
MB=${LOAD_MB:-16}
PMB=${LOAD_PACED_MB:-4}
PACE_MS=${LOAD_PACE_MS:-40}
# An ASan+UBSan build moves bytes several times slower: a smaller saturated
# run and a slower (still chatty) paced job keep the test's meaning and time.
SANITIZED=0
if grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
	SANITIZED=1
	MB=${LOAD_MB:-4}
	PACE_MS=${LOAD_PACE_MS:-100}
fi
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start_server --log-cap 1G
ADMIN=$(cat "$T/data/admin.token")
make_repo load
printf 'steps:\n  - run: "true"\n' >"$T/src/load/.anvil.yml"
commit_push load "load" >/dev/null
C=$(git -C "$T/src/load" rev-parse HEAD)
wait_until 30 pipeline_is "$(latest_pipeline)" queued || fail "first pipeline not queued"

trigger() { # trigger DELIVERY: prints "<http status> <pipeline id>" in one write
	local code
	local out=$T/trig-$1-$BASHPID
	code=$(curl -s -o "$out" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/trigger" \
		-d "{\"repo\":\"load\",\"url\":\"$T/git/load.git\",\"ref\":\"refs/heads/main\",\"commit\":\"$C\",\"delivery\":\"$1\"}")
	printf '%s %s\n' "$code" "$(jq -r .id "$out" 2>/dev/null)"
}

# ---- 50 agents, 1000 jobs
t0=$(now_ms)
for i in $(seq 1 "$AGENTS"); do
	start_agent "l$i" --targets host
done
agents_up() { [ "$(api /api/v1/agents | jq '.agents | length')" -ge "$AGENTS" ]; }
wait_until 60 agents_up || fail "agents did not all register"
echo "figure: $AGENTS agents registered in $(($(now_ms) - t0)) ms"

t0=$(now_ms)
# One curl process sends them all, 8 at a time (a process per trigger
# would measure fork+exec, not the server).
mkdir -p "$T/trig"
for i in $(seq 2 "$JOBS"); do
	[ "$i" = 2 ] || echo next
	printf 'silent\nurl = "%s/api/v1/trigger"\nheader = "Authorization: Bearer %s"\noutput = "%s/trig/%d"\n' "$URL" "$ADMIN" "$T" "$i"
	printf 'data = "{\\"repo\\":\\"load\\",\\"url\\":\\"%s\\",\\"ref\\":\\"refs/heads/main\\",\\"commit\\":\\"%s\\",\\"delivery\\":\\"job-%d\\"}"\n' "$T/git/load.git" "$C" "$i"
	printf 'write-out = "%%{http_code} \\n"\n'
done >"$T/trig.cfg"
curl -s --parallel --parallel-max 8 -K "$T/trig.cfg" >"$T/trig.out" 2>"$T/trig.err"
t1=$(now_ms)
n201=$(grep -c '^201 ' "$T/trig.out" || true)
[ "$n201" = $((JOBS - 1)) ] || fail "$n201 of $((JOBS - 1)) triggers made a pipeline"
echo "figure: $((JOBS - 1)) triggers in $((t1 - t0)) ms ($(((JOBS - 1) * 1000 / (t1 - t0 + 1))) /s)"
all_done() { [ "$(db "SELECT count(*) FROM jobs WHERE state IN ('success','failed','canceled','error')")" -ge "$JOBS" ]; }
wait_until 120 all_done || fail "only $(db "SELECT count(*) FROM jobs WHERE state='success'") of $JOBS jobs finished"
t2=$(now_ms)
echo "figure: $JOBS jobs finished by $AGENTS agents $((t2 - t0)) ms after the first trigger ($((JOBS * 1000 / (t2 - t0 + 1))) jobs/s)"
[ "$(db "SELECT count(*) FROM jobs")" = "$JOBS" ] || fail "$(db "SELECT count(*) FROM jobs") jobs, want $JOBS"
[ "$(db "SELECT count(*) FROM jobs WHERE state='success'")" = "$JOBS" ] || fail "not every job succeeded"
[ "$(db "SELECT count(*) FROM jobs WHERE attempt != 1")" = 0 ] || fail "a job ran more than once: $(db "SELECT id, attempt FROM jobs WHERE attempt != 1 LIMIT 5")"
claims=$(grep -o 'event=job_claimed job=[0-9]*' "$T/server.log" | sort)
[ "$(wc -l <<<"$claims")" = "$JOBS" ] || fail "$(wc -l <<<"$claims") claims for $JOBS jobs"
[ -z "$(uniq -d <<<"$claims")" ] || fail "jobs claimed twice: $(uniq -d <<<"$claims" | head -3)"
used=$(db "SELECT count(DISTINCT agent_id) FROM jobs" 2>/dev/null || echo "?")
ok "$JOBS jobs over $AGENTS agents: each claimed once, attempt 1, success ($used agents used)"

# ---- delivery ids under concurrency
for i in $(seq 1 50); do trigger "burst-$i" >"$T/burst-$i.out" & done
burst_done() { [ "$(cat "$T"/burst-*.out 2>/dev/null | grep -c '^201 ')" = 50 ]; }
wait_until 60 burst_done ||
	fail "50 distinct deliveries: $(cat "$T"/burst-*.out | grep -c '^201 ') pipelines"
[ "$(db "SELECT count(*) FROM pipelines WHERE delivery LIKE 'burst-%'")" = 50 ] || fail "burst pipelines in db"
for i in $(seq 1 20); do trigger same-delivery >"$T/same-$i.out" & done
same_done() { [ "$(cat "$T"/same-*.out 2>/dev/null | grep -c '^20[01] [0-9]')" = 20 ]; }
wait_until 60 same_done || fail "20 same deliveries: $(cat "$T"/same-*.out)"
[ "$(cat "$T"/same-*.out | grep -c '^201 ')" = 1 ] || fail "same delivery created $(cat "$T"/same-*.out | grep -c '^201 ') pipelines"
[ "$(cat "$T"/same-*.out | cut -d' ' -f2 | sort -u | wc -l)" = 1 ] || fail "same delivery answered different pipelines"
[ "$(db "SELECT count(*) FROM pipelines WHERE delivery='same-delivery'")" = 1 ] || fail "same delivery: db count"
ok "50 concurrent distinct deliveries → 50 pipelines; one delivery 20× at once → 1 pipeline"
total=$((JOBS + 51))
finished() { [ "$(db "SELECT count(*) FROM jobs WHERE state='success'")" = "$total" ]; }
wait_until 60 finished || fail "burst jobs did not all finish"

# ---- log followers during ingest (no real agent may claim the ingest job)
for p in "${PIDS[@]}"; do
	[ "$p" = "$SERVER_PID" ] || kill -TERM "$p" 2>/dev/null || true
done
for p in "${PIDS[@]}"; do
	[ "$p" = "$SERVER_PID" ] || wait "$p" 2>/dev/null || true
done
AT=$(cat "$T/data/agent.token")
follow() { "$B/load_client" follow "$URL" "$ADMIN" "$AT" "$T/git/load.git" "$C" "$@"; }
rate() { sed -n 's/.*mb_per_s=\([0-9.]*\).*/\1/p' <<<"$1"; }
# Saturation, for the record: the producer sends as fast as the server
# takes chunks. With F followers the server must send F times every byte,
# so this rate is bounded by fan-out bandwidth, not asserted.
base=$(follow "$MB" 0) || fail "unloaded ingest failed"
echo "figure: saturated, unloaded      $base"
loaded=$(follow "$MB" "$FOLLOWERS") || fail "saturated ingest with followers failed: $loaded"
echo "figure: saturated, $FOLLOWERS followers $loaded"
# A job printing at a steady pace (64 KiB every PACE_MS: 1.6 MB/s at 40 ms,
# a very chatty build) must keep at least half its unloaded rate.
base=$(follow "$PMB" 0 "$PACE_MS") || fail "paced unloaded ingest failed"
echo "figure: paced, unloaded          $base"
loaded=$(follow "$PMB" "$FOLLOWERS" "$PACE_MS") || fail "paced ingest with followers failed: $loaded"
echo "figure: paced, $FOLLOWERS followers    $loaded"
r0=$(rate "$base")
r1=$(rate "$loaded")
# The ratio is the normal build's check. Under ASan+UBSan every fan-out to
# 200 followers costs several times more CPU on a box also running the
# other tests, so there it is a figure (0.2–0.3 vs 0.6 MB/s), not a verdict
# on anvil; every byte still has to reach every follower (below).
if [ "$SANITIZED" = 0 ]; then
	awk -v a="$r0" -v b="$r1" 'BEGIN { exit !(b * 2 >= a) }' ||
		fail "ingest with $FOLLOWERS followers $r1 MB/s is under half the unloaded $r0 MB/s"
else
	echo "figure: sanitizer build: paced ingest with $FOLLOWERS followers $r1 vs $r0 MB/s unloaded (not asserted)"
fi
grep -q "followers_complete=$FOLLOWERS " <<<"$loaded" || fail "not every follower got the whole log"
# Followers near the end are answered from the in-memory tail, not SQLite.
reads() { curl -sf "$URL/metrics" | sed -n "s/^anvil_log_reads_total{from=\"$1\"} //p"; }
rt=$(reads tail)
rs=$(reads store)
echo "figure: follower reads answered from memory $rt, from the store $rs"
# Most reads come from memory: over three in four (a follower between two
# long polls when its job finishes reads from the store since tails go with
# their last follower).
[ "$rt" -gt $((3 * rs)) ] || fail "only $rt of $((rt + rs)) follower reads came from the log tail"
curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving"
[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
ok "ingest of a job printing 64 KiB per $PACE_MS ms with $FOLLOWERS followers: $r1 MB/s vs $r0 MB/s unloaded; every follower got every byte"
