#!/bin/bash
# anvil-agent --prepare-targets builds what a target's first job would
# otherwise wait for, the toolroot too (issue 18): an agent serving aarch64
# from a cache holding the target rootfs and only the toolroot's tarball
# has the toolroot in place before it registers, and its first job runs on
# that very tree. Without --prepare-targets the same agent registers with
# the toolroot still unextracted. The cache is this test's own ($T/cache):
# the rootfs is a link to the shared one, the toolroot tarballs links to
# the shared ones (the lean recipe's toolroot, no host_packages, as
# t_toolroot uses: ~140 MB to extract). Needs root, binfmt qemu-aarch64
# and the cached aarch64 rootfs and lean toolroot tarball.
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
ls "$T/cache/rootfs" | grep -q . || fail "no cached $TRIPLE rootfs in $SHARED/rootfs"
toolroots() { find "$T/cache/toolroot" -mindepth 1 -maxdepth 1 -type d -regex '.*-[0-9a-f]*$'; }
registered() { curl -s "$URL/api/v1/agents" | jq -e ".agents[] | select(.name==\"$1\")"; }

start_server
start_agent a0 --targets "$TRIPLE" --recipes "$T/recipes" --cache "$T/cache"
wait_until 60 registered a0 || fail "agent a0 did not register"
[ -z "$(toolroots)" ] || fail "without --prepare-targets a toolroot was made at start: $(toolroots)"
kill "$AGENT_PID"
ok "without --prepare-targets: registered, no toolroot extracted"

start_agent a1 --targets "$TRIPLE" --recipes "$T/recipes" --cache "$T/cache" --prepare-targets
wait_until 600 registered a1 || fail "agent a1 did not register"
TR=$(toolroots)
[ -n "$TR" ] || fail "--prepare-targets registered without a toolroot in $T/cache/toolroot (a toolroot tarball for this recipe: is the lean $TRIPLE toolroot cached in $SHARED/toolroot?)"
[ "$(echo "$TR" | wc -l)" -eq 1 ] || fail "more than one toolroot extracted: $TR"
[ -x "$TR/usr/bin/aarch64-linux-gnu-gcc" ] || fail "$TR has no cross gcc"
grep -q "event=toolroot_ready target=$TRIPLE dir=$TR" "$T/agent-a1.log" || fail "the agent log does not name the toolroot"
ok "--prepare-targets: $TR in place before the agent registered"

make_repo pt
cat >"$T/src/pt/.anvil.yml" <<YML
targets: [$TRIPLE]
steps:
  - run: \$CC -dumpmachine
YML
commit_push pt "first job" >/dev/null
J=$(first_job "$(latest_pipeline)")
wait_until 300 bash -c "s=\$(curl -s $URL/api/v1/jobs/$J | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "job $J did not finish"
job_is "$J" success || fail "job $J is $(job_state "$J"): $(api "/api/v1/jobs/$J/log" | tail -n 20)"
log_has "$J" ", toolroot $TR" || fail "the first job did not run on the prepared toolroot: $(api "/api/v1/jobs/$J/log" | head -n 5)"
log_has "$J" "aarch64-linux-gnu" || fail "no cross gcc answer in the log"
ok "the first job ran on the prepared toolroot"
