#!/bin/bash
# Credentials in repository URLs (issue 13): a repository added as
# http://bot:TOKEN@host/x.git builds (the server fetches with them from a git
# smart-HTTP server that answers 401 without them; the agent clones from the
# server's copy, never seeing them), yet the token appears in no API answer, no page,
# no CLI output, no job log and no server or agent log line: the URL is shown
# as http://***@host/x.git everywhere, the agent's claim included.
. "$(dirname "$0")/lib.sh"

TOKEN="tok-$$-Zq81WvRt"
AUTH="Basic $(printf 'bot:%s' "$TOKEN" | base64 -w0)"

start_server
start_agent a1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive"
printf 'steps:\n  - run: echo built\n' >"$T/src/demo/.anvil.yml"
commit_push demo first >/dev/null
python3 "$S/tests/e2e/git_http.py" "$T/git" "$T/git_http.port" "$AUTH" >>"$T/git_http.log" 2>&1 &
PIDS+=($!)
wait_until 60 test -s "$T/git_http.port" || fail "the git HTTP server did not start"
HP="127.0.0.1:$(cat "$T/git_http.port")"
GURL="http://bot:$TOKEN@$HP/demo.git"
git ls-remote "http://$HP/demo.git" >/dev/null 2>&1 && fail "the git server answers without credentials"
git ls-remote "$GURL" >/dev/null || fail "the git server refuses the credentials"

out=$(anvil repo add demo "$GURL" 2>&1) || fail "repo add: $out"
grep -qF "$TOKEN" <<<"$out" && fail "repo add prints the token: $out"
r=$(curl -s "$URL/api/v1/repos")
grep -qF "$TOKEN" <<<"$r" && fail "unauthenticated GET /api/v1/repos shows the token: $r"
grep -qF "\"http://***@$HP/demo.git\"" <<<"$r" || fail "GET /api/v1/repos does not show the redacted URL: $r"
out=$(anvil repos)
grep -qF "$TOKEN" <<<"$out" && fail "anvil repos shows the token: $out"
grep -qF "http://***@$HP/demo.git" <<<"$out" || fail "anvil repos lacks the redacted URL: $out"
ok "repo add, GET /api/v1/repos and anvil repos show http://***@host/demo.git"

out=$(anvil trigger demo --url "$GURL" --ref refs/heads/main 2>&1) || fail "trigger: $out"
grep -qF "$TOKEN" <<<"$out" && fail "trigger prints the token: $out"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P"): $(api "/api/v1/pipelines/$P")"
log=$(api "/api/v1/jobs/$J/log")
grep -qF "checkout http://***@$HP/demo.git" <<<"$log" || fail "the job log does not name the redacted URL: $log"
grep -qF "(from the server's copy)" <<<"$log" || fail "the agent did not fetch from the server: $log"
grep -rqaF "$TOKEN" "$T/agent-a1" && fail "the agent's work directory holds the token"
ok "the pipeline builds: the server fetched with the credentials, the agent from the server without them"

# A wrong password: the fetch fails and its error quotes the URL.
BAD="http://bot:wrong-$TOKEN@$HP/demo.git"
out=$(anvil trigger demo --url "$BAD" --ref refs/heads/main 2>&1) || true
grep -qF "$TOKEN" <<<"$out" && fail "a failed trigger prints the token: $out"
P2=$(latest_pipeline)
[ "$P2" != "$P" ] || fail "no pipeline for the failed fetch: $out"
msg=$(api "/api/v1/pipelines/$P2" | jq -r .message)
[ -n "$msg" ] && [ "$msg" != null ] || fail "pipeline $P2 has no error message"
out=$(curl -s -X POST -H "Authorization: Bearer $(cat "$T/data/admin.token")" "$URL/api/v1/repos" \
	-d "{\"name\":\"bad\",\"url\":\"http://bot:$TOKEN@$HP/x\",\"forge\":\"nosuch\"}")
grep -qF "$TOKEN" <<<"$out" && fail "an API error shows the token: $out"
ok "failed fetches and API errors do not quote the token (pipeline message: $msg)"

anvil repo add demo "$GURL" >/dev/null # the last trigger stored the bad URL
# A message stored before the redaction (or an agent's own words) is shown
# without the credentials too.
db "UPDATE jobs SET message = 'old agent: fetch $GURL failed' WHERE id = $J" >/dev/null
api "/api/v1/jobs/$J" | jq -r .message | grep -qF "fetch http://***@$HP/demo.git failed" ||
	fail "a stored job message is not redacted: $(api "/api/v1/jobs/$J" | jq -r .message)"
curl -s "$URL/jobs/$J" | grep -qF "fetch http://***@$HP/demo.git failed" || fail "the job page does not redact its message"
out=$(anvil repo add demo-gitea "$GURL" --forge gitea --secret s --status-token st \
	--api-url "http://bot:$TOKEN@$HP/api/v1" 2>&1) || fail "repo add with an API URL: $out"
grep -qF "$TOKEN" <<<"$out" && fail "repo add prints the API URL's token: $out"
grep -qF "\"api_url\":\"http://***@$HP/api/v1\"" <<<"$(curl -s "$URL/api/v1/repos")" ||
	fail "GET /api/v1/repos does not show the redacted API URL: $(curl -s "$URL/api/v1/repos")"
for path in /api/v1/repos /api/v1/repos/demo /api/v1/repos/demo-gitea /api/v1/pipelines "/api/v1/pipelines/$P" "/api/v1/pipelines/$P2" \
	"/api/v1/jobs/$J" "/api/v1/jobs/$J/log" /api/v1/agents /metrics; do
	r=$(admin_api GET "$path")
	[ -n "$r" ] || fail "$path answered nothing"
	grep -qF "$TOKEN" <<<"$r" && fail "$path shows the token: $r"
done
for path in / "/pipelines/$P" "/pipelines/$P2" "/jobs/$J" "/jobs/$J/log" "/jobs/$J/events" /agents /releases; do
	r=$(curl -s -m 10 "$URL$path")
	[ -n "$r" ] || fail "$path answered nothing"
	grep -qF "$TOKEN" <<<"$r" && fail "page $path shows the token"
done
grep -qF "$TOKEN" "$T/server.log" && fail "the server log holds the token: $(grep -F "$TOKEN" "$T/server.log")"
grep -qF "$TOKEN" "$T/agent-a1.log" && fail "the agent log holds the token: $(grep -F "$TOKEN" "$T/agent-a1.log")"
n=$(db "SELECT count(*) FROM pipelines WHERE message LIKE '%$TOKEN%'")
[ "$n" = 0 ] || fail "$n pipeline messages hold the token"
n=$(db "SELECT count(*) FROM jobs WHERE message LIKE '%$TOKEN%' AND id <> $J")
[ "$n" = 0 ] || fail "$n job messages hold the token"
ok "the token is in no API answer, page, job or pipeline message, server or agent log"
