#!/bin/bash
# Issue 15: auto_cancel: true in .anvil.yml. A newer push to a branch
# cancels that branch's older queued or running push pipelines (the running
# step is killed); never a tag's pipeline or another branch's; without the
# key nothing is canceled.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
G=$(step_dir a1 demo)
cat >"$T/src/demo/.anvil.yml" <<'YML'
auto_cancel: true
steps:
  - echo started-$(cat README); while [ ! -e /cache/build/gate ]; do sleep 0.1; done; echo done-$(cat README)
YML
echo 1 >"$T/src/demo/README"
commit_push demo "one"
P1=$(latest_pipeline)
J1=$(first_job "$P1")
wait_until 30 log_has "$J1" started-1 || fail "first push's job did not start"
git -C "$T/src/demo" push -q origin HEAD:refs/heads/other
PO=$(latest_pipeline)
git -C "$T/src/demo" tag v1
git -C "$T/src/demo" push -q origin v1
PT=$(latest_pipeline)
[ "$PO" != "$P1" ] && [ "$PT" != "$PO" ] || fail "the branch and tag pushes made no pipelines"

echo 2 >"$T/src/demo/README"
commit_push demo "two"
P2=$(latest_pipeline)
wait_until 30 job_is "$J1" canceled || fail "the superseded running job is $(job_state "$J1")"
wait_until 10 pipeline_is "$P1" canceled || fail "the superseded pipeline is $(pipeline_state "$P1")"
api "/api/v1/pipelines/$P1" | jq -r .message | grep -qx "superseded by pipeline $P2 (auto_cancel)" ||
	fail "superseded pipeline's message: $(api "/api/v1/pipelines/$P1" | jq -r .message)"
for p in "$PO" "$PT" "$P2"; do
	s=$(pipeline_state "$p")
	[ "$s" = queued ] || [ "$s" = running ] || fail "pipeline $p ($(api "/api/v1/pipelines/$p" | jq -r .ref)) is $s"
done
ok "a newer push cancels the branch's older running pipeline, not the tag's or the other branch's"

# Without the key (the newest file decides) nothing is canceled.
printf 'steps:\n  - echo plain-$(cat README)\n' >"$T/src/demo/.anvil.yml"
echo 3 >"$T/src/demo/README"
commit_push demo "three"
P3=$(latest_pipeline)
s=$(pipeline_state "$P2")
[ "$s" = queued ] || [ "$s" = running ] || fail "a push without auto_cancel canceled pipeline $P2 ($s)"
touch "$G/gate"
for p in "$PO" "$PT" "$P2" "$P3"; do
	wait_until 60 pipeline_is "$p" success || fail "pipeline $p is $(pipeline_state "$p")"
done
ok "without auto_cancel the older pipeline runs on"

printf 'auto_cancel: maybe\nsteps:\n  - echo x\n' >"$T/src/demo/.anvil.yml"
commit_push demo "bad"
P=$(latest_pipeline)
api "/api/v1/pipelines/$P" | jq -r .message | grep -q "auto_cancel: expected true or false" ||
	fail "a bad auto_cancel value: $(api "/api/v1/pipelines/$P" | jq -r .message)"
ok "auto_cancel takes a boolean"
