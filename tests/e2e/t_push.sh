#!/bin/bash
# A git push to a bare repository with anvil's post-receive hook runs a
# pipeline on a real agent: compiler output in the log, an artifact whose
# sha256 matches, and the CLI reading all of it back.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
env:
  GREETING: hello from anvil
steps:
  - name: build
    run: |
      cc --version | head -n 1
      cc -O2 -o hello hello.c
  - name: test
    run: ./hello && test "$(./hello)" = "$GREETING"
  - test -x hello
  - name: scripts
    run: |
      printf '#!/bin/sh\necho healthy\n' >health.sh
      chmod +x health.sh
      echo notes >notes.txt
artifacts: [hello, health.sh, notes.txt]
YML
cat >"$T/src/demo/hello.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello from anvil"); return 0; }
C
commit_push demo "first commit"

# The hook ran inside the push: the pipeline exists when push returns.
P=$(latest_pipeline)
[ -n "$P" ] || fail "no pipeline right after git push"
ok "push created pipeline $P"
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
ok "pipeline $P succeeded"

log=$(anvil logs "$J")
grep -q "cc (Debian" <<<"$log" || fail "compiler output missing from log: $log"
grep -q "step test exited 0" <<<"$log" || fail "test step not logged"
# A named step is "step NAME", an unnamed one "step N" (issue 19 item 4).
grep -q '^\[anvil\] step build: cc --version' <<<"$log" || fail "named step not logged: $log"
grep -q '^\[anvil\] step 3: test -x hello$' <<<"$log" || fail "unnamed step not logged as step 3: $log"
grep -q '^\[anvil\] step 3 exited 0$' <<<"$log" || fail "unnamed step's exit not logged: $log"
! grep -q 'step step' <<<"$log" || fail "a step is logged as 'step step': $log"
ok "log holds compiler output"

anvil logs -f "$J" >/dev/null || fail "logs -f of a successful job must exit 0"
anvil status | grep -q "success" || fail "anvil status does not show the success"
anvil show "$P" | grep -q "host" || fail "anvil show lacks the job"
anvil artifacts "$J" | grep -q hello || fail "anvil artifacts lacks hello"
anvil artifact get "$J" hello -o "$T/hello.out" || fail "artifact get failed"
want=$(api "/api/v1/jobs/$J/artifacts" | jq -r '.artifacts[] | select(.name=="hello") | .sha256')
got=$(sha256sum "$T/hello.out" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "artifact sha256 $got != listed $want"
chmod +x "$T/hello.out"
[ "$("$T/hello.out")" = "hello from anvil" ] || fail "downloaded artifact does not run"
# Stored once, content-addressed, under its own hash.
[ -f "$T/data/blobs/${want:0:2}/$want" ] || fail "blob file missing"
ok "artifact downloads with matching sha256"

# Each artifact keeps its permission bits from the workspace (issue 19 item
# 10): a script made executable is 0755 like the ELF file, other files 0644.
modes=$(api "/api/v1/jobs/$J/artifacts" | jq -r '[.artifacts[] | .name + "=" + .mode] | join(",")')
[ "$modes" = "health.sh=0755,hello=0755,notes.txt=0644" ] || fail "artifact modes: $modes"
curl -sf -D "$T/headers" -o "$T/health.out" "$URL/api/v1/jobs/$J/artifacts/health.sh" || fail "health.sh download failed"
grep -qi '^X-Anvil-Mode: 0755' "$T/headers" || fail "health.sh download lacks X-Anvil-Mode: 0755: $(cat "$T/headers")"
curl -sf -D "$T/headers" -o /dev/null "$URL/api/v1/jobs/$J/artifacts/notes.txt" || fail "notes.txt download failed"
grep -qi '^X-Anvil-Mode: 0644' "$T/headers" || fail "notes.txt download lacks X-Anvil-Mode: 0644: $(cat "$T/headers")"
ok "a non-ELF executable artifact keeps its mode through the API"

# A second push with the same binary: a new blob is not stored twice.
echo "// comment" >>"$T/src/demo/hello.c"
commit_push demo "second commit"
P2=$(latest_pipeline)
[ "$P2" != "$P" ] || fail "second push made no pipeline"
wait_until 60 pipeline_is "$P2" success || fail "second pipeline is $(pipeline_state "$P2")"
[ "$(db 'SELECT count(*) FROM pipelines')" = 2 ] || fail "expected 2 pipelines"
[ "$(db "SELECT state FROM pipelines WHERE id=$P2")" = success ] || fail "db state wrong"
ok "second push ran too"

# A branch deletion starts nothing.
git -C "$T/src/demo" push -q origin HEAD:refs/heads/tmp 2>&1
n=$(db 'SELECT count(*) FROM pipelines')
git -C "$T/src/demo" push -q origin :refs/heads/tmp 2>&1
[ "$(db 'SELECT count(*) FROM pipelines')" = "$n" ] || fail "branch deletion started a pipeline"
ok "branch deletion starts nothing"

# A commit without .anvil.yml: the pipeline errors with the reason.
git -C "$T/src/demo" rm -q .anvil.yml
commit_push demo "no pipeline file"
P3=$(latest_pipeline)
wait_until 10 pipeline_is "$P3" error || fail "pipeline without .anvil.yml is $(pipeline_state "$P3")"
api "/api/v1/pipelines/$P3" | jq -r .message | grep -q "no .anvil.yml" || fail "missing reason"
ok "missing .anvil.yml is reported"
