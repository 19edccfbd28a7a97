#!/bin/bash
# Polling a repository that sends no webhooks: the first poll records the
# branch heads and tags, later changed heads start push pipelines (one per
# branch), a new tag a tag pipeline, and a restart never starts one twice
# (delivery poll:<repo>:<ref>:<sha>).
. "$(dirname "$0")/lib.sh"

npipes() { db 'SELECT count(*) FROM pipelines'; }
has_pipes() { [ "$(npipes)" -ge "$1" ]; }
head_is() { [ "$(db "SELECT sha FROM poll_heads WHERE ref = '$1'")" = "$2" ]; }

start_server
start_agent a1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive" # only the poller notices pushes
echo 'steps: [{run: "echo polled"}]' >"$T/src/demo/.anvil.yml"
commit_push demo "before polling" >/dev/null
OLD=$(git -C "$T/src/demo" rev-parse HEAD)
git -C "$T/src/demo" tag -a -m "before polling" v0.1
git -C "$T/src/demo" push -q origin v0.1 2>&1

out=$(anvil repo add demo "$T/git/demo.git" --poll 5s)
grep -q "polled every 5 s" <<<"$out" || fail "repo add --poll: $out"
anvil repos | grep -E '^1 +demo +- +5s' >/dev/null || fail "anvil repos lacks the poll: $(anvil repos)"
wait_until 10 head_is refs/heads/main "$OLD" || fail "first poll did not record main"
head_is refs/tags/v0.1 "$OLD" || fail "first poll recorded v0.1 as $(db "SELECT sha FROM poll_heads WHERE ref = 'refs/tags/v0.1'")"
[ "$(npipes)" = 0 ] || fail "the first poll started a pipeline"
ok "the first poll records the heads and tags (annotated: at their commit) and starts nothing"

echo change >"$T/src/demo/file.txt"
commit_push demo "after polling" >/dev/null
NEW=$(git -C "$T/src/demo" rev-parse HEAD)
git -C "$T/src/demo" push -q origin HEAD:refs/heads/feature 2>&1
wait_until 20 has_pipes 2 || fail "changed heads started $(npipes) pipelines"
[ "$(db "SELECT group_concat(ref || ' ' || event || ' ' || delivery, ',') FROM (SELECT * FROM pipelines ORDER BY ref)")" = \
	"refs/heads/feature push poll:demo:refs/heads/feature:$NEW,refs/heads/main push poll:demo:refs/heads/main:$NEW" ] ||
	fail "pipelines: $(db 'SELECT ref, event, delivery FROM pipelines')"
P=$(latest_pipeline)
wait_until 60 pipeline_is "$P" success || fail "polled pipeline $P is $(pipeline_state "$P")"
ok "a changed head starts a push pipeline per branch"

# The server dies before it recorded main's new head: after the restart the
# poller sees the change again, and the delivery id keeps it from running twice.
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
db "UPDATE poll_heads SET sha = '$OLD' WHERE ref = 'refs/heads/main'"
start_server
wait_until 20 head_is refs/heads/main "$NEW" || fail "poll after the restart did not run"
[ "$(npipes)" = 2 ] || fail "a restart doubled a polled pipeline: $(npipes)"
ok "a restart does not start a polled pipeline twice"

git -C "$T/src/demo" push -q origin :refs/heads/feature 2>&1
wait_until 20 head_is refs/heads/feature "" || fail "a deleted branch stays recorded"
[ "$(npipes)" = 2 ] || fail "a branch deletion started a pipeline"
ok "a deleted branch is forgotten and starts nothing"

# A pushed tag (annotated: the pipeline builds the commit it points to).
git -C "$T/src/demo" tag -a -m "release" v0.2 "$NEW"
git -C "$T/src/demo" push -q origin v0.2 2>&1
wait_until 20 has_pipes 3 || fail "a pushed tag started no pipeline"
[ "$(db "SELECT ref || ' ' || event || ' ' || commit_sha || ' ' || delivery FROM pipelines WHERE id = (SELECT max(id) FROM pipelines)")" = \
	"refs/tags/v0.2 tag $NEW poll:demo:refs/tags/v0.2:$NEW" ] ||
	fail "tag pipeline: $(db 'SELECT ref, event, commit_sha, delivery FROM pipelines ORDER BY id DESC LIMIT 1')"
P=$(latest_pipeline)
wait_until 60 pipeline_is "$P" success || fail "tag pipeline $P is $(pipeline_state "$P")"
ok "a pushed tag starts a tag pipeline at refs/tags/NAME"

# A repository polled before tags were watched has heads but no tags
# recorded: its next poll records the tags already there and starts nothing.
db "DELETE FROM poll_heads WHERE ref LIKE 'refs/tags/%'"
wait_until 20 head_is refs/tags/v0.2 "$NEW" || fail "tags were not recorded again"
head_is refs/tags/v0.1 "$OLD" || fail "v0.1 was not recorded again"
[ "$(npipes)" = 3 ] || fail "tags already there started pipelines: $(npipes)"
ok "tags already there when tags are first polled start nothing"
