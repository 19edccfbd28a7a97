#!/bin/bash
# Crash matrix: kill -9 of the server, then of the agent, at each phase of a
# job (queued, claimed, mid-log, mid-artifact upload of 50 MB, finishing),
# each followed by a restart on the same port or a second agent. Every phase
# is reached deterministically: a step prints a marker, then waits on a gate
# file the test creates. After recovery: every job ends in a defined state,
# each numbered log line appears once per attempt, log offsets in the db are
# contiguous, every blob's bytes hash to its name, no upload temp file is
# left, PRAGMA integrity_check is ok and each pipeline's state is right.
. "$(dirname "$0")/lib.sh"

# Steps are sandboxed: the gates, markers and hashes they share with the
# test live in their /cache/build, which every agent of this test binds from
# one host directory ($SH: each agent's cache dir links to it). A step dies
# with its agent (bubblewrap --die-with-parent, its own pid namespace).
SHARED=$T/shared
SH=$SHARED/demo/host
mkdir -p "$SH"
chown -R "$(id -u anvil-build):$(id -g anvil-build)" "$SHARED"
start_agent() {
	mkdir -p "$T/agent-$1"
	ln -sfn "$SHARED" "$T/agent-$1/cache"
	start_agent_plain "$@"
}

# phase NAME LINES_BEFORE LINES_AFTER [ARTIFACT_MB]: writes a pipeline file
# whose step prints "NAME-pre-i" lines, waits for $SH/gate-NAME (bounded), prints
# "NAME-post-i" lines, optionally makes a random artifact, touches
# $SH/exited-NAME and exits 0. Pushes it; sets P and J.
phase() {
	local name=$1 pre=$2 post=$3 mb=${4:-0} art=""
	[ "$mb" -gt 0 ] && art=$'artifacts:\n  - big.bin\n'
	cat >"$T/src/demo/.anvil.yml" <<YML
${art}steps:
  - name: $name
    run: |
      i=1; while [ \$i -le $pre ]; do echo $name-pre-\$i; i=\$((i+1)); done
      n=0; while [ ! -e /cache/build/gate-$name ] && [ \$n -lt 1200 ]; do sleep 0.05; n=\$((n+1)); done
      i=1; while [ \$i -le $post ]; do echo $name-post-\$i; i=\$((i+1)); done
      if [ $mb -gt 0 ]; then head -c ${mb}M /dev/urandom >big.bin; sha256sum big.bin >/cache/build/sha-$name; fi
      touch /cache/build/exited-$name
YML
	commit_push demo "phase $name" >/dev/null
	P=$(latest_pipeline)
	J=$(first_job "$P")
	[ -n "$J" ] && [ "$J" != null ] || fail "phase $name: no job"
}

# The log of attempt A of job J (the part after its "attempt A of" marker,
# before the next attempt's).
attempt_log() {
	api "/api/v1/jobs/$1/log" | awk -v a="$2" '
		/attempt [0-9]+ of [0-9]+/ { match($0, /attempt [0-9]+ of/); cur = substr($0, RSTART + 8, RLENGTH - 11) + 0 }
		cur == a || (a == 1 && cur == 0) { print }'
}

# check_lines J A NAME PRE POST: in attempt A's log, each numbered line once.
check_lines() {
	local j=$1 a=$2 name=$3 pre=$4 post=$5 log i n
	log=$(attempt_log "$j" "$a")
	for i in $(seq 1 "$pre"); do
		n=$(grep -c "^$name-pre-$i\$" <<<"$log" || true)
		[ "$n" = 1 ] || fail "job $j attempt $a: $name-pre-$i appears $n times"
	done
	for i in $(seq 1 "$post"); do
		n=$(grep -c "^$name-post-$i\$" <<<"$log" || true)
		[ "$n" = 1 ] || fail "job $j attempt $a: $name-post-$i appears $n times"
	done
}

# The whole store: final states, contiguous offsets, blobs, integrity.
check_store() {
	local what=$1 bad f sha
	bad=$(db "SELECT count(*) FROM jobs WHERE state NOT IN ('success','failed','canceled','error')")
	[ "$bad" = 0 ] || fail "$what: $bad jobs not in a final state"
	bad=$(db "SELECT count(*) FROM (SELECT off, coalesce(raw_len, length(data)) AS n, lead(off) OVER (PARTITION BY job_id ORDER BY off) AS nx FROM log_chunks) AS g WHERE nx IS NOT NULL AND nx != off + n")
	[ "$bad" = 0 ] || fail "$what: log chunks have $bad gaps or overlaps"
	bad=$(db "SELECT count(*) FROM (SELECT job_id, min(off) AS m FROM log_chunks GROUP BY job_id) AS g WHERE m != 0")
	[ "$bad" = 0 ] || fail "$what: $bad logs do not start at offset 0"
	bad=$(db "SELECT count(*) FROM jobs j WHERE log_bytes != (SELECT coalesce(sum(coalesce(raw_len, length(data))),0) FROM log_chunks WHERE job_id=j.id)")
	[ "$bad" = 0 ] || fail "$what: $bad jobs whose log_bytes differ from their chunks"
	while read -r f; do
		sha=$(sha256sum "$f" | cut -d' ' -f1)
		[ "$sha" = "$(basename "$f")" ] || fail "$what: blob $f hashes to $sha"
	done < <(find "$T/data/blobs" -path "$T/data/blobs/tmp" -prune -o -type f -print)
	bad=$(db "SELECT count(*) FROM artifacts a LEFT JOIN blobs b ON b.sha256=a.sha256 WHERE b.sha256 IS NULL OR b.size != a.size")
	[ "$bad" = 0 ] || fail "$what: $bad artifacts without a matching blob row"
	[ "$(db 'PRAGMA integrity_check')" = ok ] || fail "$what: integrity_check"
}

restart_server() { # kill -9, then start again on the same port
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	start_server "$@"
}

# A connection to the server holds bytes the server has not read (it is
# stopped): the agent's finishing traffic is in flight.
unread_request() {
	ss -Htn state established "( sport = :$PORT )" | awk '$1 > 0 { f = 1 } END { exit !f }'
}

agent_registered() {
	api /api/v1/agents | jq -e --arg n "$1" '.agents[] | select(.name == $n)'
}

blob_tmp_busy() {
	[ -n "$(find "$T/data/blobs/tmp" -type f -size +1M 2>/dev/null)" ]
}

# ---------------------------------------------------------------- server
start_server --lease 20
make_repo demo

# queued: the server dies before any agent exists.
phase queued 3 3
job_is "$J" queued || fail "queued: job is $(job_state "$J")"
restart_server --lease 20
job_is "$J" queued || fail "queued: after restart job is $(job_state "$J")"
start_agent a1
touch "$SH/gate-queued"
wait_until 30 job_is "$J" success || fail "queued: job is $(job_state "$J")"
check_lines "$J" 1 queued 3 3
ok "server killed with a job queued: it survives the restart and runs once"

# claimed: the job is running, its step has printed nothing yet.
phase claimed 0 5
wait_until 30 job_is "$J" running || fail "claimed: job is $(job_state "$J")"
restart_server --lease 20
touch "$SH/gate-claimed"
wait_until 30 job_is "$J" success || fail "claimed: job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] || fail "claimed: attempt is not 1"
check_lines "$J" 1 claimed 0 5
ok "server killed right after the claim: the agent carries on, attempt 1 finishes"

# mid-log: killed while the step streams 3000 lines.
phase midlog 100 3000
wait_until 30 log_has "$J" midlog-pre-100 || fail "midlog: no output"
touch "$SH/gate-midlog"
wait_until 30 log_has "$J" midlog-post-1 || fail "midlog: post lines did not start"
restart_server --lease 20
wait_until 60 job_is "$J" success || fail "midlog: job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] || fail "midlog: attempt is not 1"
check_lines "$J" 1 midlog 100 3000
ok "server killed mid-log: 3100 lines, each once"

# mid-artifact: killed while 50 MB stream into blobs/tmp.
phase artifact 1 1 50
touch "$SH/gate-artifact"
# busy-poll (no sleep): the upload lasts well under a second
deadline=$(($(date +%s) + 60))
until blob_tmp_busy; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "artifact: upload never started"
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
[ -n "$(ls "$T/data/blobs/tmp")" ] || fail "artifact: no partial upload left by the kill"
[ "$(db "SELECT count(*) FROM artifacts WHERE job_id=$J")" = 0 ] || fail "artifact: stored before the kill"
start_server --lease 20
grep -q "event=blob_tmp_removed" "$T/server.log" || fail "artifact: temp file not removed at start"
wait_until 90 job_is "$J" success || fail "artifact: job is $(job_state "$J")"
want=$(cut -d' ' -f1 "$SH/sha-artifact")
[ "$(api "/api/v1/jobs/$J/artifacts" | jq -r '.artifacts[0].sha256')" = "$want" ] || fail "artifact: sha256 differs"
[ "$(curl -s "$URL/api/v1/jobs/$J/artifacts/big.bin" | sha256sum | cut -d' ' -f1)" = "$want" ] ||
	fail "artifact: downloaded bytes differ"
[ -z "$(ls "$T/data/blobs/tmp")" ] || fail "artifact: temp file left"
ok "server killed mid-upload of 50 MB: temp cleaned at start, upload retried, bytes match"

# finishing: the step has exited; the server freezes holding the agent's
# last log chunk or finish unread, then dies.
phase finishing 2 2
wait_until 30 log_has "$J" finishing-pre-2 || fail "finishing: no output"
kill -STOP "$SERVER_PID"
touch "$SH/gate-finishing"
wait_until 30 test -e "$SH/exited-finishing" || fail "finishing: step did not exit"
wait_until 30 unread_request || fail "finishing: no request in flight"
restart_server --lease 20
wait_until 60 job_is "$J" success || fail "finishing: job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] || fail "finishing: attempt is not 1"
check_lines "$J" 1 finishing 2 2
check_store "after server crashes"
ok "server killed while the job was finishing: finish retried, attempt 1 succeeds"

# ---------------------------------------------------------------- agent
# A short lease, so a dead agent's job comes back quickly.
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
restart_server --lease 2
n=1
next_agent() {
	n=$((n + 1))
	start_agent "a$n"
}

# queued: the agent dies in its long poll; the job queued after must not be
# handed to the dead connection.
next_agent
wait_until 30 agent_registered "a$n" || fail "agent a$n did not register"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
phase aqueued 2 2
touch "$SH/gate-aqueued"
next_agent
wait_until 30 job_is "$J" success || fail "agent queued: job is $(job_state "$J")"
[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 1 ] || fail "agent queued: handed to the dead agent's poll"
[ "$(api "/api/v1/jobs/$J" | jq -r .agent)" = "a$n" ] || fail "agent queued: wrong agent"
ok "agent killed in its long poll: the next job goes to a live agent, attempt 1"

# agent_phase NAME PRE POST MB: claimed/mid-log/mid-artifact kills.
agent_kill_and_recover() {
	local name=$1 pre=$2 post=$3
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	# Opened only now, after the kill: opened before it, the first attempt
	# could finish in the window before the kill lands. The second attempt
	# runs straight through.
	touch "$SH/gate-$name"
	next_agent
	wait_until 60 job_is "$J" success || fail "agent $name: job is $(job_state "$J")"
	[ "$(api "/api/v1/jobs/$J" | jq -r .attempt)" = 2 ] || fail "agent $name: attempt is not 2"
	[ "$(api "/api/v1/jobs/$J" | jq -r .agent)" = "a$n" ] || fail "agent $name: second agent did not finish it"
	check_lines "$J" 2 "$name" "$pre" "$post"
}

# claimed
phase aclaimed 0 3
wait_until 30 job_is "$J" running || fail "agent claimed: job is $(job_state "$J")"
agent_kill_and_recover aclaimed 0 3
ok "agent killed right after the claim: lease ran out, second agent finished attempt 2"

# mid-log
phase amidlog 200 0
wait_until 30 log_has "$J" amidlog-pre-50 || fail "agent midlog: no output"
agent_kill_and_recover amidlog 200 0
ok "agent killed mid-log: attempt 2's 200 lines each once"

# mid-artifact: the agent dies during its 50 MB upload; the server drops the
# partial temp file at once (no restart needed).
phase aartifact 1 1 50
touch "$SH/gate-aartifact"
deadline=$(($(date +%s) + 60))
until blob_tmp_busy; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "agent artifact: upload never started"
done
rm -f "$SH/exited-aartifact" "$SH/sha-aartifact"
agent_kill_and_recover aartifact 1 1
want=$(cut -d' ' -f1 "$SH/sha-aartifact")
[ "$(api "/api/v1/jobs/$J/artifacts" | jq -r '.artifacts[0].sha256')" = "$want" ] || fail "agent artifact: sha256 differs"
[ "$(curl -s "$URL/api/v1/jobs/$J/artifacts/big.bin" | sha256sum | cut -d' ' -f1)" = "$want" ] ||
	fail "agent artifact: downloaded bytes differ"
wait_until 10 dir_empty "$T/data/blobs/tmp" || fail "agent artifact: partial upload left in blobs/tmp"
ok "agent killed mid-upload: temp file dropped, second agent's artifact bytes match"

# finishing: the step has exited; the agent dies before or while reporting.
phase afinishing 2 2
touch "$SH/gate-afinishing"
wait_until 30 test -e "$SH/exited-afinishing" || fail "agent finishing: step did not exit"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
next_agent
wait_until 60 job_is "$J" success || fail "agent finishing: job is $(job_state "$J")"
a=$(api "/api/v1/jobs/$J" | jq -r .attempt)
check_lines "$J" "$a" afinishing 2 2
ok "agent killed while finishing: the job succeeds (attempt $a)"

check_store "after agent crashes"
bad=$(db "SELECT count(*) FROM pipelines WHERE state != 'success'")
[ "$bad" = 0 ] || fail "$bad pipelines not successful: $(db "SELECT id, state, message FROM pipelines WHERE state != 'success'")"
bad=$(api "/api/v1/pipelines?limit=200" | jq '[.pipelines[] | select(.state != "success")] | length')
[ "$bad" = 0 ] || fail "the API shows $bad pipelines not successful"
ok "every pipeline succeeded; store consistent after the whole matrix"
