#!/bin/bash
# Issue 15: the workspace is a git checkout of the commit: .git present,
# HEAD at the commit, the repository's tags fetched so `git describe --tags`
# versions the build, branches as origin/*, a clean status, and no URL or
# credentials in its config.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || fail "git missing"
start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - test -d .git && echo has-git
  - echo "describe=$(git describe --tags)"
  - echo "head=$(git rev-parse HEAD)"
  - git status --porcelain | wc -l | sed 's/^/dirty=/'
  - git branch -r | sed 's/^ */branch=/'
  - echo "config-urls=$(git config --get-regexp 'url' | wc -l)"
YML
echo one >"$T/src/demo/README"
git -C "$T/src/demo" add -A
git -C "$T/src/demo" commit -q -m "first"
git -C "$T/src/demo" tag -a v1.2.0 -m "release 1.2.0"
git -C "$T/src/demo" push -q origin v1.2.0 2>&1
echo two >"$T/src/demo/README"
commit_push demo "second"
P=$(latest_pipeline)
J=$(first_job "$P")
SHA=$(git -C "$T/src/demo" rev-parse HEAD)
want=$(git -C "$T/src/demo" describe --tags)
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
log_has "$J" has-git || fail "no .git in the workspace"
log_has "$J" "describe=$want" || fail "git describe in the step is not $want: $(api "/api/v1/jobs/$J/log" | grep describe=)"
log_has "$J" "head=$SHA" || fail "HEAD is not the commit"
log_has "$J" "dirty=0" || fail "the checkout is not clean: $(api "/api/v1/jobs/$J/log" | grep dirty=)"
log_has "$J" "branch=origin/main" || fail "no origin/main"
log_has "$J" "config-urls=0" || fail "the workspace's git config names a URL"
ok "git describe --tags in a step gives $want"
