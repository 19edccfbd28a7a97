#!/bin/bash
# Cron schedules: `anvil schedule add/list/rm`, bad expressions refused with
# a clear message, and a schedule really fired by the server's scheduler
# (--cron-minute-ms 1000: a cron minute lasts a second), each due time once:
# on PostgreSQL (the e2e-pg run) with two servers on the store, both
# checking the same schedule.
. "$(dirname "$0")/lib.sh"

start_server --cron-minute-ms 1000
start_agent a1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive" # only the schedule starts pipelines
cat >"$T/src/demo/.anvil.yml" <<'YML'
when: {event: [cron, manual]}
steps:
  - run: 'echo "event=$ANVIL_EVENT ref=$ANVIL_REF"'
YML
commit_push demo first >/dev/null
anvil repo add demo "$T/git/demo.git" >/dev/null
if [ -n "${ANVIL_TEST_STORE:-}" ]; then
	rm -f "$T/data/port"
	"$B/anvil-server" --data "$T/data" --port 0 --store "$ANVIL_TEST_STORE" --cron-minute-ms 1000 \
		>>"$T/server2.log" 2>&1 &
	PIDS+=("$!")
	wait_until 60 test -s "$T/data/port" || fail "second server did not start"
fi

# Bad input: a clear CLI error and a 400 naming the field.
if out=$(anvil schedule add demo --ref main --cron '61 * * * *' 2>&1); then fail "cron minute 61 was taken"; fi
grep -qF "cron minute: '61' is outside 0-59" <<<"$out" || fail "bad cron: $out"
if out=$(anvil schedule add demo --ref main --cron '* * * *' 2>&1); then fail "4 fields were taken"; fi
grep -qF "expected 5 fields" <<<"$out" || fail "4 fields: $out"
r=$(admin_api POST /api/v1/schedules -d '{"repo":"demo","ref":"../x","cron":"@daily"}' -w ' %{http_code}')
[[ $r == *'"error"'*"ref must be"*" 400" ]] || fail "a bad ref answered $r"
if anvil schedule add nope --ref main --cron '@daily' 2>/dev/null; then fail "an unknown repo was taken"; fi
ok "bad cron expressions, refs and repositories are refused with a clear message"

anvil schedule add demo --ref main --cron '0 3 * * mon-fri' --name nightly >/dev/null
out=$(anvil schedule add demo --ref main --cron '*/1 * * * *' --name often)
grep -q "next at" <<<"$out" || fail "schedule add printed: $out"
if anvil schedule add demo --ref main --cron '@daily' --name often 2>/dev/null; then fail "a duplicate name was taken"; fi
anvil schedule list | grep -E '^demo +nightly +refs/heads/main +0 3 \* \* mon-fri' >/dev/null ||
	fail "schedule list: $(anvil schedule list)"
ok "schedule add and list"

cron_pipes() { db "SELECT count(*) FROM pipelines WHERE event = 'cron'"; }
ge() { [ "$(cron_pipes)" -ge "$1" ]; }
wait_until 60 ge 3 || fail "the schedule fired $(cron_pipes) times"
P=$(api "/api/v1/pipelines?event=cron&limit=1" | jq -r '.pipelines[0].id')
J=$(first_job "$P")
wait_until 60 job_is "$J" success || fail "cron job $J is $(job_state "$J")"
log_has "$J" "event=cron ref=refs/heads/main" || fail "cron job log: $(api "/api/v1/jobs/$J/log")"
anvil schedule rm demo often >/dev/null
n=$(cron_pipes)
[ "$(db "SELECT count(DISTINCT delivery) FROM pipelines WHERE event = 'cron'")" = "$n" ] ||
	fail "a due time fired twice"
fired=$(cat "$T"/server*.log | grep -c 'event=schedule_fired .*name=often')
[ "$fired" = "$n" ] || fail "$fired firings logged for $n pipelines"
if [ -n "${ANVIL_TEST_STORE:-}" ]; then
	grep -q 'event=schedule_fired' "$T/server.log" && grep -q 'event=schedule_fired' "$T/server2.log" ||
		echo "  (one server claimed every due time)"
fi
sleep 3 # three cron minutes: nothing more may fire once removed
[ "$(cron_pipes)" = "$n" ] || fail "the removed schedule fired again"
anvil schedule list demo | grep -q often && fail "schedule rm left it listed"
ok "fired $n times through the scheduler, each due time once, built event cron; stopped after rm"
