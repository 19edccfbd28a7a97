#!/bin/bash
# A server that dies while it fires a schedule loses nothing and doubles
# nothing: --failpoints cronfire:1 makes it _exit between making a due
# time's pipeline and claiming the due time (the crash window; before the
# fix the claim came first and such a crash lost that firing). The restarted
# server finds the due time still due, starts it again with the same
# delivery id (the pipeline exists: no second one), and claims it.
. "$(dirname "$0")/lib.sh"

start_server --cron-minute-ms 1000 --failpoints cronfire:1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive"
printf 'when: {event: [cron]}\nsteps:\n  - "true"\n' >"$T/src/demo/.anvil.yml"
commit_push demo first >/dev/null
anvil repo add demo "$T/git/demo.git" >/dev/null
anvil schedule add demo --ref main --cron '*/1 * * * *' --name often >/dev/null

gone() { ! kill -0 "$SERVER_PID" 2>/dev/null; }
wait_until 60 gone || fail "the server did not reach the failpoint"
wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
[ "$rc" = 86 ] || fail "the server exited $rc, not at the failpoint: $(tail -n 5 "$T/server.log")"
D=$(sed -n 's/.*event=failpoint_exit schedule=[0-9]* due=\([0-9]*\).*/\1/p' "$T/server.log")
[ -n "$D" ] || fail "no failpoint_exit logged"
per_due() { db "SELECT count(*) FROM pipelines WHERE delivery = 'cron:often:$D'"; }
[ "$(per_due)" = 1 ] || fail "$(per_due) pipelines for due time $D at the crash"
[ "$(db "SELECT next_unix_s FROM schedules WHERE name = 'often'")" = "$D" ] || fail "the due time was claimed before the crash"
ok "crashed between the pipeline of due time $D and its claim"

start_server --cron-minute-ms 1000
moved() { [ "$(db "SELECT next_unix_s FROM schedules WHERE name = 'often'")" -gt "$D" ]; }
wait_until 60 moved || fail "the restarted server did not claim due time $D"
[ "$(per_due)" = 1 ] || fail "due time $D has $(per_due) pipelines after the restart"
dups=$(db "SELECT count(*) - count(DISTINCT delivery) FROM pipelines WHERE event = 'cron'")
[ "$dups" = 0 ] || fail "$dups due times fired twice"
ok "the restarted server claimed due time $D without a second pipeline"
