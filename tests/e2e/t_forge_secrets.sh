#!/bin/bash
# Repository secrets: set from stdin, listed by name only, given to the job
# as environment variables, and masked as *** in the stored log, also when
# the value is printed in two halves with a flush between.
. "$(dirname "$0")/lib.sh"

VALUE="s3cr3t-$$-Qx7pLm"

start_server
start_agent a1
make_repo demo
anvil repo add demo "$T/git/demo.git" >/dev/null
printf '%s\n' "$VALUE" | anvil secret set demo DEPLOY_KEY >/dev/null || fail "secret set"
printf 'other-value-%s' "$$" | anvil secret set demo OTHER >/dev/null || fail "second secret set"
[ "$(anvil secrets demo | tr '\n' ' ')" = "DEPLOY_KEY OTHER " ] || fail "secrets lists: $(anvil secrets demo)"
admin_api GET /api/v1/repos/demo/secrets | grep -qF "$VALUE" && fail "secret list shows a value"
r=$(admin_api PUT /api/v1/repos/demo/secrets/bad-name -d '{"value":"x"}' -o /dev/null -w '%{http_code}')
[ "$r" = 400 ] || fail "bad secret name answered $r"
r=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$URL/api/v1/repos/demo/secrets/X" -d '{"value":"x"}')
[ "$r" = 401 ] || fail "secret set without the admin token answered $r"
[ "$(stat -c %a "$T/data/anvil.db")" = 600 ] || fail "the database holding secrets is mode $(stat -c %a "$T/data/anvil.db")"
ok "secrets are set from stdin and listed by name only; the database is mode 600"

cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: whole
    run: echo "key is $DEPLOY_KEY and $OTHER"
  - name: split
    run: |
      bash -c 'S=$DEPLOY_KEY; printf "%s" "${S:0:5}"; sleep 0.3; printf "%s\n" "${S:5}"; printf "tail=%s" "${S:0:3}"'
  - name: length
    run: test "${#DEPLOY_KEY}" = REPLACE_LEN
YML
sed -i "s/REPLACE_LEN/${#VALUE}/" "$T/src/demo/.anvil.yml"
commit_push demo "use the secret" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
ok "the job sees the secret in its environment"

log=$(api "/api/v1/jobs/$J/log")
grep -qF "key is *** and ***" <<<"$log" || fail "whole value not masked: $log"
grep -qx '\*\*\*' <<<"$log" || fail "split value not masked as one: $log"
grep -qF "tail=${VALUE:0:3}" <<<"$log" || fail "a partial prefix at the step's end must be released: $log"
grep -qF "$VALUE" <<<"$log" && fail "the secret is in the log"
grep -qF "${VALUE:5}" <<<"$log" && fail "the second half of the secret is in the log"
# Chunks may be stored deflated (raw_len set): inflate before looking.
n=$(python3 -c '
import sqlite3, sys, zlib
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT data, raw_len FROM log_chunks").fetchall()
print(sum(1 for d, z in rows if any(v.encode() in (zlib.decompress(d) if z is not None else d) for v in sys.argv[2:])))
' "$T/data/anvil.db" "$VALUE" "${VALUE:5}")
[ "$n" = 0 ] || fail "the secret is in $n stored log chunks"
for path in "/api/v1/jobs/$J" "/api/v1/pipelines/$P" /api/v1/repos /api/v1/pipelines; do
	api "$path" | grep -qF "$VALUE" && fail "$path shows the secret"
done
ok "the secret is masked in the stored log (also split across reads) and absent from API answers"

anvil secret rm demo OTHER >/dev/null || fail "secret rm"
[ "$(anvil secrets demo)" = DEPLOY_KEY ] || fail "secret rm left: $(anvil secrets demo)"
r=$(admin_api DELETE /api/v1/repos/demo/secrets/OTHER -o /dev/null -w '%{http_code}')
[ "$r" = 404 ] || fail "deleting a missing secret answered $r"
ok "secret rm"
