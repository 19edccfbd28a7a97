#!/bin/bash
# What the CLI prints for a person and for a script (issue 19): `repo add`
# without a forge says how pushes will reach the repository, and the line it
# gives works as a post-receive hook.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive" # the hook is what repo add must explain

# Issue 19 item 6: without --forge or --poll, say how pushes get in.
out=$(anvil repo add demo "$T/git/demo.git") || fail "repo add: $out"
grep -q "^repo demo registered" <<<"$out" || fail "repo add: $out"
line=$(grep -E '^ +ANVIL_SERVER=.* anvil trigger demo --url ' <<<"$out") ||
	fail "repo add without --forge does not give the anvil trigger line: $out"
grep -qF -- "--url $T/git/demo.git --ref \"\$ref\" --commit \"\$new\" --event push" <<<"$line" ||
	fail "the trigger line lacks the URL or the ref: $line"
grep -qE 'anvil repo add demo .* --poll ' <<<"$out" || fail "repo add does not mention --poll: $out"
# The line, pasted into a hook, starts a pipeline on push.
{
	echo '#!/bin/sh'
	echo 'while read old new ref; do'
	echo "$line"
	echo 'done'
} >"$T/git/demo.git/hooks/post-receive"
chmod +x "$T/git/demo.git/hooks/post-receive"
echo 'steps: [{run: "echo hooked"}]' >"$T/src/demo/.anvil.yml"
commit_push demo "through the printed hook line" >/dev/null
P=$(latest_pipeline)
[ -n "$P" ] || fail "a push through the printed hook line started no pipeline"
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
ok "repo add without a forge prints a post-receive line that works"

out=$(anvil repo add demo "$T/git/demo.git" --poll 1h)
grep -q "anvil trigger" <<<"$out" && fail "repo add --poll still explains the hook: $out"
out=$(anvil repo add demo "$T/git/demo.git" --forge generic --secret s3)
grep -q "anvil trigger" <<<"$out" && fail "repo add --forge still explains the hook: $out"
ok "with --poll or --forge, repo add does not"

# Issue 19 item 1: what scripts read. trigger keeps its line; with --json it
# prints the API's answer.
C=$(git -C "$T/src/demo" rev-parse HEAD)
out=$(anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C") || fail "trigger: $out"
grep -qE '^pipeline [0-9]+ [a-z]+$' <<<"$out" || fail "trigger prints: $out"
out=$(anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C" --json) || fail "trigger --json: $out"
P2=$(jq -er .id <<<"$out") || fail "trigger --json is not the pipeline's JSON: $out"
[ "$(jq -r .commit <<<"$out")" = "$C" ] || fail "trigger --json lacks the commit: $out"
[ "$P2" = "$(latest_pipeline)" ] || fail "trigger --json id $P2 is not the latest pipeline $(latest_pipeline)"
J2=$(first_job "$P2")
wait_until 60 pipeline_is "$P2" success || fail "pipeline $P2 is $(pipeline_state "$P2")"
ok "trigger prints its line, and the API's JSON with --json"

# retry: the new job's id alone, or the JSON; anvil logs -f takes the id.
NJ=$(anvil retry "$J2") || fail "retry: $NJ"
[[ "$NJ" =~ ^[0-9]+$ ]] || fail "retry printed more than the id: $NJ"
log=$(anvil logs -f "$NJ") || fail "anvil logs -f \$(anvil retry): $log"
grep -q "step 1: echo hooked" <<<"$log" || fail "anvil logs -f \$(anvil retry) did not follow the job: $log"
out=$(anvil retry "$NJ" --json) || fail "retry --json: $out"
NJ2=$(jq -er .id <<<"$out") || fail "retry --json is not the job's JSON: $out"
[ "$NJ2" -gt "$NJ" ] || fail "retry --json gave job $NJ2 after $NJ"
anvil logs -f "$NJ2" >/dev/null || fail "job $NJ2 from retry --json did not end well"
ok "retry prints the new job's id alone, or its JSON"

# deploy and rollback: the deployment's id alone on stdout (a job id: anvil
# logs takes it), the summary for a person on stderr, or the JSON.
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n' >"$T/board.key"
anvil board add nowhere --host 127.0.0.1 --port 9 --key "$T/board.key" --arch x86_64 --group scripted \
	--host-key SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA >/dev/null || fail "board add"
D=$(anvil deploy "$P2" --group scripted --install /opt/app --files x 2>"$T/deploy.err") ||
	fail "deploy: $D $(cat "$T/deploy.err")"
[[ "$D" =~ ^[0-9]+$ ]] || fail "deploy printed more than the id on stdout: $D"
grep -qE "^deployment $D \(deploy of group scripted, pipeline $P2\): " "$T/deploy.err" ||
	fail "deploy's summary is not on stderr: $(cat "$T/deploy.err")"
[ "$(api "/api/v1/deployments/$D" | jq -r .id)" = "$D" ] || fail "deployment $D unknown to the API"
anvil logs "$D" >/dev/null || fail "anvil logs \$(anvil deploy ...) is refused"
job_final() { case "$(job_state "$1")" in success | failed | error | canceled) return 0 ;; esac; return 1; }
anvil cancel "$D" >/dev/null 2>&1 || true # one deploy job per group at a time
wait_until 30 job_final "$D" || fail "deployment $D is still $(job_state "$D")"
out=$(anvil deploy "$P2" --group scripted --install /opt/app --files x --json 2>"$T/deploy.err") ||
	fail "deploy --json: $out $(cat "$T/deploy.err")"
D2=$(jq -er .id <<<"$out") || fail "deploy --json is not the deployment's JSON: $out"
[ "$(jq -r .group <<<"$out")" = scripted ] || fail "deploy --json lacks the group: $out"
[ ! -s "$T/deploy.err" ] || fail "deploy --json wrote to stderr: $(cat "$T/deploy.err")"
[ "$D2" -gt "$D" ] || fail "deploy --json gave $D2 after $D"
anvil cancel "$D2" >/dev/null 2>&1 || true
wait_until 30 job_final "$D2" || fail "deployment $D2 is still $(job_state "$D2")"
out=$(anvil rollback --group scripted --json 2>&1) && jq -e '.id > 0' <<<"$out" >/dev/null ||
	fail "rollback --json: $out"
ok "deploy and rollback print the id alone (summary on stderr), or the JSON"

# release create takes --json too (a real release needs a signed tag pipeline:
# t_release.sh); here only that the option is known and the server is asked.
rc=0
anvil release create v9.9.9 --pipeline 999999 --json >"$T/rel.out" 2>"$T/rel.err" || rc=$?
[ "$rc" = 1 ] || fail "release create --json exited $rc (want the server's refusal, 1): $(cat "$T/rel.err")"
ok "release create accepts --json"
