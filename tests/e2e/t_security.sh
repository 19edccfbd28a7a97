#!/bin/bash
# Security and limits, with a real server and agent:
# - tokens are stored hashed: no token text anywhere in the database files;
# - caps not covered by t_api.sh: an oversized request header (4xx from
#   libmicrohttpd), the artifact cap (refused from Content-Length and while
#   streaming a chunked upload; a real agent's job fails with the reason),
#   a pipeline file over 256 KiB (pipeline in state error with the reason);
#   after each the server keeps serving;
# - a branch name and a commit message full of shell metacharacters never
#   reach a shell: not in the server, the agent, the post-receive hook or the
#   CLI showing them.
# Covered elsewhere (docs/reliability.md): constant-time token compare
# (tests/unit/test_auth.c), `..` and NUL artifact names and agent tokens on
# admin routes (t_api.sh), the bubblewrap sandbox (t_targets.sh), secrets
# masking (t_forge_secrets.sh), SSH host key pins (tests/unit/test_deploy.c).
. "$(dirname "$0")/lib.sh"

start_server --artifact-cap 1M
AT=$(cat "$T/data/agent.token")
ADM_T=$(cat "$T/data/admin.token")
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
serving() { curl -sf "$URL/healthz" >/dev/null || fail "server stopped serving after: $*"; }

# ---- tokens hashed
for f in "$T"/data/anvil.db*; do
	grep -qaF "$ADM_T" "$f" && fail "admin token text in $f"
	grep -qaF "$AT" "$f" && fail "agent token text in $f"
done
[ "$(db "SELECT sha256 FROM tokens WHERE kind='admin'")" = "$(printf '%s' "$ADM_T" | sha256sum | cut -d' ' -f1)" ] ||
	fail "tokens table does not hold the admin token's sha256"
[ "$(stat -c %a "$T/data/admin.token")" = 600 ] || fail "admin.token is not mode 600"
ok "tokens: only their sha256 in the database; token files 0600"

# ---- header size: libmicrohttpd's own limit
big=$(head -c 70000 /dev/zero | tr '\0' 'h')
c=$(code -H "X-Big: $big" "$URL/healthz")
case $c in 4??) ;; *) fail "a 70 KB header answered $c" ;; esac
c=$(code "$URL/api/v1/pipelines?x=$big")
case $c in 4??) ;; *) fail "a 70 KB URL answered $c" ;; esac
serving "oversized header"
ok "an oversized header or URL gets $c; the server keeps serving"

# ---- a job to upload to, by hand as an agent
make_repo demo
printf 'steps:\n  - run: echo hi\n' >"$T/src/demo/.anvil.yml"
commit_push demo "one" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
REG=$(curl -s -X POST -H "Authorization: Bearer $AT" "$URL/api/v1/agents/register" -d '{"name":"hand","labels":["target=host"]}')
AID=$(jq -r .agent_id <<<"$REG")
# The agent's own token is stored hashed too.
for f in "$T"/data/anvil.db*; do
	grep -qaF "$(jq -r .token <<<"$REG")" "$f" && fail "an agent's token text in $f"
done
AT=$(jq -r .token <<<"$REG")
[ "$(curl -s -X POST -H "Authorization: Bearer $AT" "$URL/api/v1/agents/claim" -d "{\"agent_id\":$AID,\"wait_ms\":5000}" | jq -r .job.id)" = "$J" ] ||
	fail "hand claim"
head -c 2000000 /dev/urandom >"$T/big.bin"
sha=$(sha256sum "$T/big.bin" | cut -d' ' -f1)
c=$(code -X PUT -H "Authorization: Bearer $AT" "$URL/api/v1/agents/jobs/$J/artifacts/big.bin?attempt=1&sha256=$sha" --data-binary @"$T/big.bin")
[ "$c" = 413 ] || fail "2 MB artifact over a 1 MiB cap answered $c"
jq -e '.code == "too_large" and (.error | length > 0)' "$T/body" >/dev/null || fail "413 without a JSON reason: $(cat "$T/body")"
c=$(code -X PUT -H "Authorization: Bearer $AT" -H 'Transfer-Encoding: chunked' "$URL/api/v1/agents/jobs/$J/artifacts/big.bin?attempt=1&sha256=$sha" --data-binary @"$T/big.bin")
[ "$c" = 413 ] || fail "chunked 2 MB artifact answered $c"
wait_until 10 dir_empty "$T/data/blobs/tmp" || fail "a refused upload left $(ls "$T/data/blobs/tmp")"
[ "$(db "SELECT count(*) FROM artifacts")" = 0 ] || fail "an over-cap artifact was recorded"
head -c 1000 /dev/urandom >"$T/small.bin"
c=$(code -X PUT -H "Authorization: Bearer $AT" "$URL/api/v1/agents/jobs/$J/artifacts/small.bin?attempt=1&sha256=$(sha256sum "$T/small.bin" | cut -d' ' -f1)" --data-binary @"$T/small.bin")
[ "$c" = 201 ] || fail "a small artifact after the refusals answered $c"
curl -s -X POST -H "Authorization: Bearer $AT" "$URL/api/v1/agents/jobs/$J/finish" -d '{"attempt":1,"state":"success","exit_code":0}' >/dev/null
serving "artifact cap"
ok "artifact over --artifact-cap: 413 with a reason (sized or chunked), no temp file left, next upload fine"

# The same cap met by a real agent: the job ends with the reason.
start_agent a1
cat >"$T/src/demo/.anvil.yml" <<'YML'
artifacts:
  - big.bin
steps:
  - run: head -c 2000000 /dev/zero >big.bin
YML
commit_push demo "big artifact" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
final() { case $(job_state "$1") in success | failed | error | canceled) return 0 ;; esac; return 1; }
wait_until 60 final "$J" || fail "big-artifact job is $(job_state "$J")"
st=$(job_state "$J")
[ "$st" != success ] || fail "a job whose artifact is over the cap succeeded"
msg=$(api "/api/v1/jobs/$J" | jq -r .message)$(api "/api/v1/jobs/$J/log")
grep -qiE "too large|limit|cap" <<<"$msg" || fail "the job ($st) does not say why: $msg"
ok "a real job's artifact over the cap: job $st, reason in its message or log"

# ---- pipeline file over 256 KiB
{
	printf 'steps:\n  - run: echo big\n'
	for i in $(seq 1 9000); do printf '# padding line %05d ..........\n' "$i"; done
} >"$T/src/demo/.anvil.yml"
[ "$(stat -c %s "$T/src/demo/.anvil.yml")" -gt 262144 ] || fail "test file not over 256 KiB"
commit_push demo "huge pipeline file" >/dev/null
P=$(latest_pipeline)
wait_until 30 pipeline_is "$P" error || fail "pipeline with a 300 KB .anvil.yml is $(pipeline_state "$P")"
msg=$(api "/api/v1/pipelines/$P" | jq -r .message)
grep -qiE "262144|256|limit|large" <<<"$msg" || fail "pipeline error does not name the cap: $msg"
[ "$(api "/api/v1/pipelines/$P" | jq '.jobs | length')" = 0 ] || fail "an oversized pipeline file made jobs"
serving "big pipeline file"
ok "a .anvil.yml over 256 KiB: pipeline error '$msg'"

# ---- shell metacharacters in a branch name and a commit message
PW=$T/pwned
mkdir -p "$PW"
branch="x\$(touch\${IFS}$PW/branch-subst)\`touch\${IFS}$PW/branch-tick\`;touch\${IFS}$PW/branch-semi;|&"
git check-ref-format "refs/heads/$branch" || fail "test branch name is not a valid ref: $branch"
msg="meta \$(touch $PW/msg-subst) \`touch $PW/msg-tick\` ; touch $PW/msg-semi | touch $PW/msg-pipe && touch $PW/msg-and"
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: show
    run: |
      printf 'ref=%s\n' "$ANVIL_REF"
      echo metachar-job-done
YML
git -C "$T/src/demo" add -A
git -C "$T/src/demo" commit -q -m "$msg"
git -C "$T/src/demo" push -q origin "HEAD:refs/heads/$branch" 2>"$T/push.err" || fail "push: $(cat "$T/push.err")"
P=$(latest_pipeline)
[ "$(api "/api/v1/pipelines/$P" | jq -r .ref)" = "refs/heads/$branch" ] || fail "ref not stored as given: $(api "/api/v1/pipelines/$P" | jq -r .ref)"
J=$(first_job "$P")
wait_until 60 job_is "$J" success || fail "metachar job is $(job_state "$J")"
log_has "$J" "ref=refs/heads/$branch" || fail "ANVIL_REF not passed verbatim"
[ "$(api "/api/v1/pipelines/$P" | jq -r .commit_message | head -n 1)" = "$msg" ] || fail "commit message not stored verbatim"
anvil status --limit 5 >"$T/cli.out" 2>&1 || fail "anvil status"
anvil show "$P" >>"$T/cli.out" 2>&1 || fail "anvil show"
anvil logs "$J" >>"$T/cli.out" 2>&1 || fail "anvil logs"
grep -qF "touch" "$T/cli.out" || fail "the CLI did not show the ref or message: $(cat "$T/cli.out")"
[ -z "$(ls -A "$PW")" ] || fail "shell metacharacters were executed: $(ls "$PW")"
[ -z "$(find / -maxdepth 1 -name '*branch-*' -o -maxdepth 1 -name '*msg-*' 2>/dev/null)" ] || fail "files created at /"
ok "branch and commit message with \$(), backticks, ; | && reach no shell (server, agent, hook, CLI)"
