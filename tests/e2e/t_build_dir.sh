#!/bin/bash
# `anvil build DIR` runs the working tree as it is (uncommitted changes and
# untracked files too) on the farm through libgit2 and the scratch upload,
# follows the job's log, exits with the job's status, and leaves the
# developer's repository exactly as it was. A directory outside git is sent
# as a snapshot of its files.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
W="$T/src/dev"
git init -q -b main "$W"
cat >"$W/.anvil.yml" <<'YML'
steps:
  - name: show
    run: |
      echo "content: $(cat msg.txt)"
      echo "untracked: $(cat new.txt 2>/dev/null || echo none)"
      test ! -e deleted.txt && echo "deleted.txt is gone"
      test ! -e build.o && echo "ignored file not sent"
      ! grep -q FAIL msg.txt
YML
echo committed >"$W/msg.txt"
echo bye >"$W/deleted.txt"
echo '*.o' >"$W/.gitignore"
git -C "$W" add -A
git -C "$W" commit -q -m "first"

# The developer's edits: a modified file, a staged change, an untracked file,
# a deleted file and an ignored one.
echo "edited, not committed" >"$W/msg.txt"
echo "staged line" >"$W/staged.txt"
git -C "$W" add staged.txt
echo "i am untracked" >"$W/new.txt"
rm "$W/deleted.txt"
echo junk >"$W/build.o"

head_before=$(git -C "$W" rev-parse HEAD)
status_before=$(git -C "$W" status --porcelain)
refs_before=$(git -C "$W" for-each-ref)
index_before=$(sha256sum "$W/.git/index")
objects_before=$(find "$W/.git/objects" -type f | sort | sha256sum)

out=$(cd "$W" && anvil build 2>"$T/build.err") || fail "anvil build exited $?: $out $(cat "$T/build.err")"
grep -q "^pipeline [0-9]* commit [0-9a-f]\{40\}$" <<<"$out" || fail "no pipeline line: $out"
grep -q "^job [0-9]* target host$" <<<"$out" || fail "no job line: $out"
grep -qF "content: edited, not committed" <<<"$out" || fail "uncommitted content not seen: $out"
grep -qF "untracked: i am untracked" <<<"$out" || fail "untracked file not seen: $out"
grep -qF "deleted.txt is gone" <<<"$out" || fail "deleted file still there: $out"
grep -qF "ignored file not sent" <<<"$out" || fail "ignored file was sent: $out"
ok "anvil build ran the working tree with its uncommitted changes and exited 0"

P=$(sed -n 's/^pipeline \([0-9]*\) .*/\1/p' <<<"$out")
p=$(api "/api/v1/pipelines/$P")
[ "$(jq -r .repo <<<"$p")" = "dev-scratch" ] || fail "repo is not dev-scratch: $p"
[ "$(jq -r .event <<<"$p")" = "manual" ] || fail "event is not manual: $p"
[ "$(jq -r .state <<<"$p")" = "success" ] || fail "pipeline not success: $p"
c=$(jq -r .commit <<<"$p")
[ "$(jq -r .ref <<<"$p")" = "refs/anvil/build/$c" ] || fail "ref: $p"
git --git-dir="$T/data/scratch/dev-scratch.git" cat-file -e "$c^{tree}" || fail "scratch repo lacks $c"
ok "pipeline $P of dev-scratch, commit $c under refs/anvil/build in the server's scratch repository"

[ "$(git -C "$W" rev-parse HEAD)" = "$head_before" ] || fail "HEAD moved"
[ "$(git -C "$W" status --porcelain)" = "$status_before" ] || fail "git status changed"
[ "$(git -C "$W" for-each-ref)" = "$refs_before" ] || fail "refs changed"
[ "$(sha256sum "$W/.git/index")" = "$index_before" ] || fail "index file changed"
[ "$(find "$W/.git/objects" -type f | sort | sha256sum)" = "$objects_before" ] || fail "objects written to .git"
ok "the developer's repository is unchanged (HEAD, refs, index, status, objects)"

# A failing uncommitted change: exit 1 with the job's log followed.
echo "FAIL here" >"$W/msg.txt"
rc=0
out=$(cd "$W" && anvil build . 2>"$T/build.err") || rc=$?
[ "$rc" = 1 ] || fail "failing build exited $rc: $out"
grep -qF "content: FAIL here" <<<"$out" || fail "log not followed: $out"
grep -q "ended failed" "$T/build.err" || fail "no failure reason: $(cat "$T/build.err")"
ok "a failing uncommitted change exits 1"

# --target restricts to the file's targets; an unknown one starts no job.
rc=0
out=$(anvil build "$W" --target aarch64-unknown-linux-gnu 2>"$T/build.err") || rc=$?
[ "$rc" = 1 ] || fail "unknown target exited $rc: $out"
grep -q "has no job" "$T/build.err" || fail "no reason for the missing job: $(cat "$T/build.err")"
ok "--target outside the pipeline file's targets starts no job"

# A scratch build never takes over a registered repository of another URL.
admin_api POST /api/v1/trigger -d "{\"repo\":\"taken\",\"url\":\"$T/git/none.git\",\"ref\":\"refs/heads/main\"}" >/dev/null
rc=0
anvil build "$W" --repo taken >/dev/null 2>"$T/build.err" || rc=$?
[ "$rc" = 1 ] || fail "build over a registered repo exited $rc"
grep -q "registered with another URL" "$T/build.err" || fail "conflict not explained: $(cat "$T/build.err")"
ok "a registered repository's name is refused"

# Outside a git repository: a snapshot of the directory's files (a
# .gitignore there honoured), and nothing written into the directory.
mkdir -p "$T/plain/sub"
cat >"$T/plain/.anvil.yml" <<'YML'
steps:
  - name: show
    run: |
      echo "plain: $(cat sub/file.txt)"
      ./tool.sh
      test ! -e junk.o && echo "ignored file not sent"
YML
echo "a plain file" >"$T/plain/sub/file.txt"
printf '#!/bin/sh\necho "executable bit kept"\n' >"$T/plain/tool.sh"
chmod +x "$T/plain/tool.sh"
echo '*.o' >"$T/plain/.gitignore"
echo junk >"$T/plain/junk.o"
listing_before=$(cd "$T/plain" && find . | sort)
out=$(anvil build "$T/plain" 2>"$T/build.err") || fail "plain directory build exited $?: $out $(cat "$T/build.err")"
grep -qF "plain: a plain file" <<<"$out" || fail "plain directory's file not seen: $out"
grep -qF "executable bit kept" <<<"$out" || fail "executable bit lost: $out"
grep -qF "ignored file not sent" <<<"$out" || fail ".gitignore not honoured: $out"
grep -qF "as repository plain-scratch" "$T/build.err" || fail "default repo name: $(cat "$T/build.err")"
[ "$(cd "$T/plain" && find . | sort)" = "$listing_before" ] || fail "the plain directory was changed"
ok "a directory outside git is built from a snapshot of its files and left unchanged"

rc=0
anvil build "$T/plain/sub/file.txt" >/dev/null 2>"$T/build.err" || rc=$?
[ "$rc" = 1 ] || fail "build of a file exited $rc"
grep -q "not a directory" "$T/build.err" || fail "unclear error: $(cat "$T/build.err")"
ok "a file that is not a directory is refused"
