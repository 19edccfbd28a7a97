#!/bin/bash
# tools: trees are pruned (issue 18): each distinct tools: set makes a full
# copy of the toolroot; anvil-agent --tools-keep N keeps the N most recently
# used. An agent with --tools-keep 1 builds a job asking for tools: [hello],
# then one asking for tools: [tree]: the first tree is removed once the
# second is in use (event=derived_pruned), the second stays, and each job's
# step ran its tool. The cache is this test's own ($T/cache: the shared
# aarch64 rootfs linked, the lean toolroot extracted from the shared
# tarball), so nothing shared is pruned. Needs root, binfmt qemu-aarch64,
# the cached aarch64 rootfs and lean toolroot tarball, and the Debian mirror
# (apt installs the tools).
. "$(dirname "$0")/lib.sh"

TRIPLE=aarch64-unknown-linux-gnu
SHARED=/var/cache/anvil
mkdir -p "$T/recipes" "$T/cache/rootfs" "$T/cache/toolroot"
sed '/^host_packages:/d' "$S/recipes/$TRIPLE.yml" >"$T/recipes/$TRIPLE.yml"
for d in $(ls -d "$SHARED/rootfs/$TRIPLE"-* | grep -E -- '-[0-9a-f]{64}$'); do
	ln -s "$d" "$T/cache/rootfs/"
done
for f in "$SHARED/toolroot/$TRIPLE"-*.tar.zst; do
	[[ $f =~ -[0-9a-f]{64}\.tar\.zst$ ]] && ln -s "$f" "$T/cache/toolroot/"
done
trees() { find "$T/cache/toolroot" -mindepth 1 -maxdepth 1 -type d -regex '.*-tools-[0-9a-f]*$' | sort; }
job_done() { local s; s=$(job_state "$1"); [ "$s" != queued ] && [ "$s" != running ]; }

start_server
start_agent a1 --targets "$TRIPLE" --recipes "$T/recipes" --cache "$T/cache" --tools-keep 1
make_repo tp

# run_tools TOOL CMD: a job with tools: [TOOL] whose step runs CMD; prints its id.
run_tools() {
	cat >"$T/src/tp/.anvil.yml" <<YML
targets: [$TRIPLE]
tools: [$1]
steps:
  - run: $2
YML
	commit_push tp "tools: $1" >/dev/null
	local j
	j=$(first_job "$(latest_pipeline)")
	wait_until 900 job_done "$j" || fail "job $j (tools: $1) did not finish"
	job_is "$j" success || fail "job $j (tools: $1) is $(job_state "$j"): $(api "/api/v1/jobs/$j/log" | tail -n 20)"
	echo "$j"
}

J1=$(run_tools hello "hello")
log_has "$J1" "Hello, world!" || fail "hello did not run in job $J1"
T1=$(trees)
[ "$(echo "$T1" | grep -c .)" -eq 1 ] || fail "one tools: tree expected after job $J1: $T1"
ok "$SECONDS s: job $J1 ran on $T1"

J2=$(run_tools tree "tree --version")
log_has "$J2" "tree v" || fail "tree did not run in job $J2"
T2=$(trees)
[ "$(echo "$T2" | grep -c .)" -eq 1 ] || fail "--tools-keep 1 left $(echo "$T2" | grep -c .) tools: trees: $T2"
[ "$T2" != "$T1" ] || fail "the tree kept is the first job's, not the one in use"
[ ! -e "$T1" ] && [ ! -e "$T1.log" ] || fail "$T1 (or its log) was not pruned"
grep -q "event=derived_pruned dir=$T1" "$T/agent-a1.log" || fail "the agent log does not name the pruned tree"
ok "$SECONDS s: job $J2 ran on $T2; $T1 pruned (--tools-keep 1)"
