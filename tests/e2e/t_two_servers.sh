#!/bin/bash
# Two anvil-server processes on one store.
# On SQLite (the default) a second server on the same store is turned away
# with a message naming the first one's pid: an SQLite store serves one
# process. On PostgreSQL (ANVIL_TEST_STORE, the e2e-pg run): two servers
# sharing the store and the data directory serve 4 agents that list both
# addresses (--server A,B); TWO_JOBS (500) pipelines are triggered on either
# server; one server is killed -9 mid-run. Every job then finished exactly
# once (attempt 1, one claim, its step ran once), and every log holds exactly
# what its step printed, line for line, once.
. "$(dirname "$0")/lib.sh"

JOBS=${TWO_JOBS:-500}
# An ASan+UBSan build is several times slower: fewer jobs, same meaning.
grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null && JOBS=${TWO_JOBS:-200}
LINES=40

if [ -z "${ANVIL_TEST_STORE:-}" ]; then
	start_server
	rm -f "$T/data/port"
	if "$B/anvil-server" --data "$T/data" --port 0 >"$T/second.log" 2>&1; then
		fail "a second server on the same SQLite store started"
	fi
	grep -q "in use by another anvil-server (pid $SERVER_PID)" "$T/second.log" ||
		fail "second server: $(cat "$T/second.log")"
	curl -sf "$URL/healthz" >/dev/null || fail "the first server stopped"
	ok "sqlite: a second server on the same store is refused, naming the first"
	exit 0
fi

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Short leases: a claim the killed server committed but never answered is
# requeued within seconds.
start_server --lease 4
URL1=$URL
PID1=$SERVER_PID
rm -f "$T/data/port"
"$B/anvil-server" --data "$T/data" --port 0 --store "$ANVIL_TEST_STORE" --lease 4 >>"$T/server2.log" 2>&1 &
PID2=$!
PIDS+=("$PID2")
wait_until 60 test -s "$T/data/port" || fail "second server did not start"
URL2="http://127.0.0.1:$(cat "$T/data/port")"
wait_until 10 curl -sf "$URL2/healthz" || fail "second server not healthy"
ADMIN=$(cat "$T/data/admin.token")

make_repo two
cat >"$T/src/two/.anvil.yml" <<YML
steps:
  - name: print
    run: |
      echo "ran \$ANVIL_JOB_ID \$ANVIL_ATTEMPT" >>/cache/build/ran
      for i in \$(seq 1 $LINES); do echo "job \$ANVIL_JOB_ID line \$i"; done
      sleep 0.2
YML
for a in t1 t2 t3 t4; do step_dir "$a" two >/dev/null; done
commit_push two first >/dev/null
C=$(git -C "$T/src/two" rev-parse HEAD)
wait_until 30 pipeline_is "$(latest_pipeline)" queued || fail "first pipeline not queued"

start_agent t1 --server "$URL1,$URL2"
start_agent t2 --server "$URL1,$URL2"
start_agent t3 --server "$URL2,$URL1"
start_agent t4 --server "$URL2,$URL1"

# Triggers alternate between the servers (one curl process each, 4 at a time).
for s in 1 2; do
	u=$URL1
	[ $s = 2 ] && u=$URL2
	for i in $(seq $((s + 1)) 2 "$JOBS"); do
		[ "$i" -le 3 ] || echo next
		printf 'silent\nurl = "%s/api/v1/trigger"\nheader = "Authorization: Bearer %s"\n' "$u" "$ADMIN"
		printf 'data = "{\\"repo\\":\\"two\\",\\"url\\":\\"%s\\",\\"ref\\":\\"refs/heads/main\\",\\"commit\\":\\"%s\\",\\"delivery\\":\\"two-%d\\"}"\n' "$T/git/two.git" "$C" "$i"
		printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
	done >"$T/trig$s.cfg"
done
t0=$(now_ms)
curl -s --no-progress-meter --parallel --parallel-max 4 -K "$T/trig1.cfg" >"$T/trig1.out" &
c1=$!
curl -s --no-progress-meter --parallel --parallel-max 4 -K "$T/trig2.cfg" >"$T/trig2.out"
wait $c1
n201=$(cat "$T/trig1.out" "$T/trig2.out" | grep -c '^201$' || true)
[ "$n201" = $((JOBS - 1)) ] || fail "$n201 of $((JOBS - 1)) triggers made a pipeline: $(sort "$T/trig1.out" "$T/trig2.out" | uniq -c)"

done_jobs() { db "SELECT count(*) FROM jobs WHERE state IN ('success','failed','canceled','error')"; }
# Mid-run: a third of the jobs done, then server 1 goes, by kill -9.
third_done() { [ "$(done_jobs)" -ge $((JOBS / 3)) ]; }
wait_until 120 third_done || fail "only $(done_jobs) jobs done before the kill"
kill -9 "$PID1"
wait "$PID1" 2>/dev/null || true
killed_at=$(done_jobs)
URL=$URL2
export ANVIL_SERVER=$URL2
all_done() { [ "$(done_jobs)" -ge "$JOBS" ]; }
wait_until 300 all_done || fail "only $(done_jobs) of $JOBS jobs finished after the kill ($killed_at before)"
t1=$(now_ms)
echo "figure: $JOBS jobs on 2 servers and 4 agents in $((t1 - t0)) ms, server 1 killed -9 after $killed_at"

[ "$(db "SELECT count(*) FROM jobs")" = "$JOBS" ] || fail "$(db "SELECT count(*) FROM jobs") jobs, want $JOBS"
bad=$(db "SELECT id || ' ' || state || ' ' || message FROM jobs WHERE state != 'success' LIMIT 5")
[ -z "$bad" ] || fail "jobs not successful: $bad"
# A claim server 1 committed but never answered leaves an attempt that never
# ran (requeued when its lease ran out): allowed, and such a job's step still
# ran once. Every job's step ran exactly once, at its final attempt.
cat "$T"/agent-*/cache/two/host/ran | sort >"$T/ran.all"
[ "$(wc -l <"$T/ran.all")" = "$JOBS" ] || fail "steps ran $(wc -l <"$T/ran.all") times for $JOBS jobs: $(cut -d' ' -f2 "$T/ran.all" | sort | uniq -d | head -3)"
[ -z "$(cut -d' ' -f2 "$T/ran.all" | sort | uniq -d)" ] || fail "a job's step ran twice"
db "SELECT 'ran ' || id || ' ' || attempt FROM jobs ORDER BY 1" >"$T/ran.want"
diff <(sort "$T/ran.want") "$T/ran.all" >/dev/null || fail "steps ran at other attempts than recorded: $(diff <(sort "$T/ran.want") "$T/ran.all" | head -5)"
echo "figure: $(db "SELECT count(*) FROM jobs WHERE attempt > 1") jobs needed a second attempt (claimed by the killed server, never answered)"

# Every log: the step's lines, in order, exactly once.
for j in $(db "SELECT id FROM jobs ORDER BY id"); do
	curl -sf "$URL2/api/v1/jobs/$j/log?download=1" | grep "^job $j line " >"$T/log.got" || true
	seq 1 $LINES | sed "s/^/job $j line /" >"$T/log.want"
	cmp -s "$T/log.got" "$T/log.want" || fail "job $j's log differs: $(diff "$T/log.want" "$T/log.got" | head -5)"
done
ok "postgresql: $JOBS jobs on two servers, one killed -9: each ran once, every log exact"

# The surviving server still serves everything: UI page, API, claims.
curl -sf "$URL2/" >/dev/null || fail "UI on server 2"
