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

# Issue 13 part 5: a secret split by escape sequences or control bytes is
# masked too, so the job page and its live stream (which drop those bytes)
# cannot show it joined again.
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: split-by-escapes
    run: |
      sleep 1
      bash -c 'S=$DEPLOY_KEY; a=${S:0:5}; b=${S:5}
      printf "csi:%s\033[0m%s\n" "$a" "$b"
      printf "cr:%s\r%s\n" "$a" "$b"
      printf "bs:%s\b%s\n" "$a" "$b"
      printf "osc:%s\033]0;title\a%s\n" "$a" "$b"
      printf "st:%s\033]8;;http://x/\033\\%s\n" "$a" "$b"
      printf "feeds:%s\033[1" "$a"; sleep 0.3; printf ";31m%s\033[0m\n" "$b"'
YML
commit_push demo "split secrets" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
# The live stream, attached while the step sleeps; it ends with the job.
wait_until 20 job_is "$J" running || fail "job $J is $(job_state "$J")"
curl -s -N -m 60 "$URL/jobs/$J/events?offset=0" >"$T/sse.txt" &
SSE_PID=$!
PIDS+=("$SSE_PID")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
wait "$SSE_PID" || true
grep -q '^event: end' "$T/sse.txt" || fail "the live stream did not end: $(cat "$T/sse.txt")"
api "/api/v1/jobs/$J/log" >"$T/split.log"
curl -s "$URL/jobs/$J" >"$T/page.html"
curl -s "$URL/jobs/$J/log" >"$T/raw.log"
# What a reader sees: escape sequences and control bytes dropped, as the
# renderer does, HTML tags dropped.
python3 - "$VALUE" "$T/split.log" "$T/raw.log" "$T/page.html" "$T/sse.txt" <<'PY' || fail "a split secret is visible"
import re, sys
value = sys.argv[1]
seq = re.compile(rb'\x1b(\[[^\x40-\x7e\n]*[\x40-\x7e]?|[\]P_^][^\n]*?(\x07|\x1b\\)|[\x20-\x2f]*[^\x20-\x2f\n]?)|[\x00-\x09\x0b-\x1f\x7f]')
bad = 0
for path in sys.argv[2:]:
    data = open(path, 'rb').read()
    seen = seq.sub(b'', re.sub(rb'<[^>]*>', b'', data))
    for piece in (value.encode(), value[5:].encode()):
        if piece in seen or piece in data:
            print(f"{path}: shows {piece!r}", file=sys.stderr)
            bad = 1
    if path.endswith('.log') and data.count(b'***') < 6:
        print(f"{path}: {data.count(b'***')} masks, want 6: {data!r}", file=sys.stderr)
        bad = 1
sys.exit(bad)
PY
grep -q 'feeds:\*\*\*' "$T/page.html" || fail "the job page does not show the masked line: $(cat "$T/page.html")"
grep -q 'csi:\*\*\*' "$T/sse.txt" || fail "the live stream does not show the masked line: $(cat "$T/sse.txt")"
ok "a secret split by ESC[0m, OSC, \\r, \\b or across reads is masked in the stored log, the raw log, the job page and its live stream"
