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
