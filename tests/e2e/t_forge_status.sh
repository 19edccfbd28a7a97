#!/bin/bash
# Commit statuses back to the forge: a local receiver stands in for Gitea's
# statuses API and records every POST. pending → success for a passing job,
# → failure for a failing one, with context anvil/<target> and a link to
# the job; a forge answering 500 twice is retried until delivered; a status
# queued while the forge is down survives a server kill and restart.
. "$(dirname "$0")/lib.sh"

RECV="$S/tests/e2e/forge_receiver.py"
TOKEN="status-token-$$"

# start_receiver FAIL_FIRST [PORT]: sets RPORT, RECV_PID; records into $T/statuses.jsonl
start_receiver() {
	rm -f "$T/recv.port"
	python3 "$RECV" "$T/recv.port" "$T/statuses.jsonl" "$1" "${2:-0}" >>"$T/receiver.log" 2>&1 &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	wait_until 60 test -s "$T/recv.port" || fail "receiver did not start"
	RPORT=$(cat "$T/recv.port")
}

# statuses JOB: "state description status" per POST for the job's link
statuses() {
	[ -f "$T/statuses.jsonl" ] || return 0
	jq -r --arg u "$URL/jobs/$1" 'select(.body.target_url == $u) | "\(.body.state) \(.body.description) \(.status)"' \
		"$T/statuses.jsonl"
}

delivered() { # JOB STATE
	statuses "$1" | grep -q "^$2 .* 201$"
}

run_pipeline() { # MESSAGE → sets P, J (waits for the job to end)
	echo "$1" >"$T/src/demo/note.txt"
	commit_push demo "$1" >/dev/null
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 60 job_final "$J" || fail "job $J is $(job_state "$J")"
}

attempted() { # JOB: a status of the job failed at least once
	[ "$(db "SELECT count(*) FROM status_queue WHERE job_id = $1 AND attempts > 0")" -gt 0 ]
}

queue_empty() {
	[ "$(db 'SELECT count(*) FROM status_queue')" = 0 ]
}

job_final() {
	case "$(job_state "$1")" in success | failed | error | canceled) return 0 ;; esac
	return 1
}

start_receiver 0
start_server
start_agent a1
make_repo demo
anvil repo add demo "$T/git/demo.git" --forge gitea --secret hook-secret --status-token "$TOKEN" \
	--api-url "http://127.0.0.1:$RPORT/api/v1" >/dev/null
anvil repos | grep -E ' gitea .* on ' >/dev/null || fail "anvil repos does not show the status token as on"
admin_api GET /api/v1/repos/demo | grep -qF "$TOKEN" && fail "the API shows the status token"

echo 'steps: [{name: ok, run: "true"}]' >"$T/src/demo/.anvil.yml"
run_pipeline "passing"
SHA=$(git -C "$T/src/demo" rev-parse HEAD)
wait_until 20 delivered "$J" success || fail "no success status for job $J: $(cat "$T/statuses.jsonl")"
[ "$(statuses "$J" | cut -d' ' -f1,2 | tr '\n' ',')" = "pending queued,pending running,success success," ] ||
	fail "statuses for job $J: $(statuses "$J")"
rec=$(jq -c --arg u "$URL/jobs/$J" 'select(.body.target_url == $u)' "$T/statuses.jsonl" | tail -n 1)
[ "$(jq -r .path <<<"$rec")" = "/api/v1/repos/git/demo/statuses/$SHA" ] || fail "status path: $rec"
[ "$(jq -r .body.context <<<"$rec")" = "anvil/host" ] || fail "status context: $rec"
[ "$(jq -r .authorization <<<"$rec")" = "token $TOKEN" ] || fail "status auth: $rec"
grep -qF "$TOKEN" "$T/server.log" && fail "the status token reached the server log"
ok "passing job: pending → success, context anvil/host, target_url $URL/jobs/$J"

echo 'steps: [{name: bad, run: "exit 3"}]' >"$T/src/demo/.anvil.yml"
run_pipeline "failing"
wait_until 20 delivered "$J" failure || fail "no failure status for job $J: $(statuses "$J")"
ok "failing job: → failure"

# The forge answers 500 twice: retried with backoff, then delivered.
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null || true
: >"$T/statuses.jsonl"
start_receiver 2 "$RPORT"
echo 'steps: [{name: ok, run: "true"}]' >"$T/src/demo/.anvil.yml"
run_pipeline "retried"
wait_until 30 delivered "$J" success || fail "statuses not delivered after retries: $(statuses "$J")"
[ "$(statuses "$J" | head -n 3 | cut -d' ' -f1,3 | tr '\n' ',')" = "pending 500,pending 500,pending 201," ] ||
	fail "expected two 500s then 201: $(statuses "$J")"
grep -q "event=status_retry job=$J .*attempt=2" "$T/server.log" || fail "no retry logged"
ok "500 twice then 201: delivered after retries"

# The forge is down while a job finishes; the server is killed and
# restarted; the queued statuses go out once the forge is back.
kill "$RECV_PID"
wait "$RECV_PID" 2>/dev/null || true
: >"$T/statuses.jsonl"
run_pipeline "while the forge is down"
wait_until 20 attempted "$J" || fail "no failed attempt recorded"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
[ "$(db "SELECT count(*) FROM status_queue WHERE job_id = $J AND gave_up = 0")" -ge 1 ] || fail "queue lost"
start_receiver 0 "$RPORT"
start_server
wait_until 40 delivered "$J" success || fail "status not sent after the restart: $(statuses "$J")"
[ "$(statuses "$J" | cut -d' ' -f1 | tr '\n' ',')" = "pending,pending,success," ] ||
	fail "statuses after restart out of order: $(statuses "$J")"
wait_until 10 queue_empty || fail "queue not drained"
ok "a status queued before a server kill is sent after the restart"
