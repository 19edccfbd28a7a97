#!/bin/bash
# anvil-server --migrate-to: a store with pipelines, jobs, logs, artifacts,
# secrets and sessions is copied (server stopped) into another store; every
# table's row count and checksum match when read back; a server started on
# the copy answers the same pipeline, log and artifact; a copy into a store
# that is not empty is refused with a message and a non-zero exit, and a
# broken destination too. Run against SQLite, and PostgreSQL when
# ANVIL_TEST_PG_URL names an empty database (tests/pg/cluster.sh).
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: out
    run: for i in $(seq 1 500); do echo "line $i of the migrated log"; done; echo migrated > out.txt
artifacts: [out.txt]
YML
commit_push demo first >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 job_is "$J" success || fail "job is $(job_state "$J")"
echo s3cret | anvil secret set demo API_KEY >/dev/null
LOG_BEFORE=$(api "/api/v1/jobs/$J/log?download=1")
grep -q "line 500 of the migrated log" <<<"$LOG_BEFORE" || fail "log before: $LOG_BEFORE"
kill "$SERVER_PID" "$AGENT_PID"
wait "$SERVER_PID" "$AGENT_PID" 2>/dev/null || true

migrate() { # DEST: copies $T/data's store into DEST
	"$B/anvil-server" --data "$T/data" --migrate-to "$1" >"$T/migrate.out" 2>"$T/migrate.err"
}
check_copy() { # DEST STORE-OPTION-VALUE
	migrate "$1" || fail "migrate-to $1: $(cat "$T/migrate.err")"
	grep -q "counts and checksums match" "$T/migrate.out" || fail "no match line: $(cat "$T/migrate.out")"
	for t in pipelines jobs log_chunks artifacts repo_secrets; do
		n=$(awk -v t="$t" '$1 == t {print $2}' "$T/migrate.out")
		[ "${n:-0}" -gt 0 ] || fail "$t: ${n:-no} rows copied"
	done
	# A second copy into the now full store is refused.
	if migrate "$1"; then fail "copy into a full store succeeded"; fi
	grep -q "not empty" "$T/migrate.err" || fail "full store: $(cat "$T/migrate.err")"
	# The copy serves what the original held.
	start_server --store "$2"
	[ "$(api "/api/v1/pipelines/$P" | jq -r .state)" = success ] || fail "pipeline on the copy"
	[ "$(api "/api/v1/jobs/$J/log?download=1")" = "$LOG_BEFORE" ] || fail "log differs on the copy"
	[ "$(api "/api/v1/jobs/$J/artifacts/out.txt")" = migrated ] || fail "artifact on the copy"
	# New rows get new ids after the copied ones.
	start_agent a1
	echo "$1" >"$T/src/demo/marker"
	commit_push demo second >/dev/null
	P2=$(latest_pipeline)
	[ "$P2" -gt "$P" ] || fail "new pipeline id $P2 after $P"
	J2=$(first_job "$P2")
	wait_until 60 job_is "$J2" success || fail "new job on the copy is $(job_state "$J2")"
	kill "$SERVER_PID" "$AGENT_PID"
	wait "$SERVER_PID" "$AGENT_PID" 2>/dev/null || true
}

check_copy "$T/copy.db" "$T/copy.db"
ok "sqlite copy: counts and checksums match, the copy serves the same pipeline, log and artifact"

if migrate "$T/no/such/dir/x.db"; then fail "copy into an unopenable store succeeded"; fi
grep -q "migrate-to" "$T/migrate.err" || fail "bad destination: $(cat "$T/migrate.err")"
ok "an unopenable destination is an error"

if [ -n "${ANVIL_TEST_PG_URL:-}" ]; then
	check_copy "$ANVIL_TEST_PG_URL" "$ANVIL_TEST_PG_URL"
	ok "postgresql copy: counts and checksums match, the copy serves the same pipeline, log and artifact"
fi
