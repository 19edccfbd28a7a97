#!/bin/bash
# Dispatch without network round trips (issue 17): a trigger for a commit
# already in the server's mirror starts its pipeline without fetching (its
# repository has gone away meanwhile), and an agent whose mirror holds the
# commit checks it out without asking the server for it (no upload-pack).
. "$(dirname "$0")/lib.sh"

start_server --log-level info
make_repo demo
printf 'steps:\n  - run: echo built\n' >"$T/src/demo/.anvil.yml"
commit_push demo first >/dev/null
C=$(git -C "$T/src/demo" rev-parse HEAD)
start_agent a1
P1=$(latest_pipeline)
J1=$(first_job "$P1")
wait_until 60 job_is "$J1" success || fail "first job is $(job_state "$J1")"
serves() { grep -c "event=git_serve" "$T/server.log" || true; }
n1=$(serves)
[ "$n1" -ge 1 ] || fail "the first job's checkout did not fetch from the server"
ok "the first job fetched its commit from the server ($n1 upload-pack requests)"

# The forge's repository is gone: only a fetch-free trigger can start.
mv "$T/git/demo.git" "$T/git/demo.git.gone"
anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C" --delivery again >/dev/null ||
	fail "trigger of a mirrored commit failed"
P2=$(latest_pipeline)
[ "$P2" != "$P1" ] || fail "no second pipeline"
J2=$(first_job "$P2")
[ "$J2" != null ] || fail "second pipeline has no job: $(api "/api/v1/pipelines/$P2")"
ok "a trigger for a commit in the server's mirror needs no fetch"
wait_until 60 job_is "$J2" success || fail "second job is $(job_state "$J2"): $(api "/api/v1/jobs/$J2/log")"
log_has "$J2" "built" || fail "second job's log: $(api "/api/v1/jobs/$J2/log")"
[ "$(serves)" = "$n1" ] || fail "the second checkout fetched again ($(serves) upload-pack requests, was $n1)"
ok "an agent whose mirror holds the commit checks it out without a round trip to the server"
