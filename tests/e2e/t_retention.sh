#!/bin/bash
# Retention: an old job's log is replaced by a marker and its artifact's blob
# (row and file) is collected while a newer job keeps both; a blob file with
# no row is removed at start; the periodic pass catches up with the newer
# job once a (shortened) retention day has passed; the database stays intact.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
run_job() {
	local word=$1
	cat >"$T/src/demo/.anvil.yml" <<YML
steps:
  - name: out
    run: echo LOG-$word; echo $word > out.txt
artifacts: [out.txt]
YML
	commit_push demo "$word" >/dev/null
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 60 job_is "$J" success || fail "job $word is $(job_state "$J")"
}
run_job old
OLD=$J
run_job new
NEW=$J
blob_of() { api "/api/v1/jobs/$1/artifacts" | jq -r '.artifacts[0].sha256'; }
OLD_SHA=$(blob_of "$OLD")
NEW_SHA=$(blob_of "$NEW")
blobfile() { echo "$T/data/blobs/${1:0:2}/$1"; }
[ -f "$(blobfile "$OLD_SHA")" ] && [ -f "$(blobfile "$NEW_SHA")" ] || fail "blob files missing"

# Age the old job by three days, plant a blob file without a row, restart
# with two days of retention for logs and artifacts.
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
db "UPDATE jobs SET finished_unix_ms = finished_unix_ms - 3 * 86400000 WHERE id = $OLD"
# Forge statuses the sender gave up on: an old one goes with the old logs; a
# recent one, and an old one still being retried, stay.
db "DELETE FROM status_queue"
db "INSERT INTO status_queue(job_id, state, description, next_attempt_unix_ms, last_error, gave_up, created_unix_ms)
    VALUES($OLD, 'success', 'old-gave-up', 0, '502', 1, (strftime('%s','now') - 3 * 86400) * 1000),
           ($NEW, 'success', 'new-gave-up', 0, '502', 1, strftime('%s','now') * 1000),
           ($OLD, 'success', 'old-retrying', 4102444800000, '502', 0, (strftime('%s','now') - 3 * 86400) * 1000)"
ORPHAN=abababababababababababababababababababababababababababababababab
mkdir -p "$T/data/blobs/ab" && echo orphan >"$(blobfile $ORPHAN)"
start_server --log-retention-days 2 --artifact-retention-days 2
wait_until 20 log_has "$OLD" "[anvil: log removed by retention after 2 days]" || fail "old log not removed"
if log_has "$OLD" LOG-old; then fail "old log still readable"; fi
log_has "$NEW" LOG-new || fail "new log removed"
wait_until 20 test ! -e "$(blobfile "$OLD_SHA")" || fail "old blob file still there"
[ "$(api "/api/v1/jobs/$OLD/artifacts" | jq '.artifacts | length')" = 0 ] || fail "old artifact still listed"
[ "$(db "SELECT count(*) FROM blobs WHERE sha256 = '$OLD_SHA'")" = 0 ] || fail "old blob row still there"
[ -f "$(blobfile "$NEW_SHA")" ] || fail "new blob file removed"
[ "$(api "/api/v1/jobs/$NEW/artifacts/out.txt")" = new ] || fail "new artifact not downloadable"
wait_until 20 test ! -e "$(blobfile $ORPHAN)" || fail "orphan blob file not removed at start"
[ "$(db "SELECT group_concat(description, ',') FROM (SELECT description FROM status_queue ORDER BY id)")" = "new-gave-up,old-retrying" ] ||
	fail "status pruning: $(db "SELECT description FROM status_queue")"
[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
ok "start pass: old log → marker, old blob row and file collected, orphan file removed, old given-up status pruned, new job kept"

# The periodic pass: with a 1 s "day" and a 1 s interval the new job's log
# and blob go too, without a restart.
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server --log-retention-days 2 --artifact-retention-days 2 --retention-day-ms 1000 --housekeeping-interval 1
wait_until 20 log_has "$NEW" "[anvil: log removed by retention after 2 days]" || fail "new log not removed"
wait_until 20 test ! -e "$(blobfile "$NEW_SHA")" || fail "new blob file still there"
# A job that finishes after the start pass: only a periodic pass removes it.
run_job newest
log_has "$J" LOG-newest || fail "newest log missing"
wait_until 20 log_has "$J" "[anvil: log removed by retention after 2 days]" || fail "newest log not removed"
wait_until 20 bash -c "[ \"\$(sqlite3 '$T/data/anvil.db' 'SELECT count(*) FROM blobs')\" = 0 ]" ||
	fail "newest blob not collected"
[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
ok "periodic pass: retention applies while the server runs"
