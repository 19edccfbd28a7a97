#!/bin/bash
# Cancel while the toolroot is being prepared (issues 18 and 19 item 5): a
# job whose .anvil.yml asks for `tools:` copies the recipe's toolroot (cp -a
# of some hundred MB, then apt inside it) into a derived tree before its
# first step. A cancel during that copy must end the job within seconds,
# kill the copy, and put no half-made derived toolroot in place; its lock is
# free afterwards. The tools: name is unique to this run, so the derived
# tree is this test's own (removed at the end). The server's lease is 120 s:
# a cancel heard only at the next heartbeat would take up to 40 s. Needs
# root, binfmt qemu-aarch64 and the cached aarch64 rootfs (the toolroot is
# built first when it is not cached).
. "$(dirname "$0")/lib.sh"

CACHE=/var/cache/anvil/toolroot
TRIPLE=aarch64-unknown-linux-gnu
TOOL="anvil-gate-$$" # a valid Debian package name no archive has
DERIVED=
PAT= # $DERIVED as a pgrep pattern that does not match the pgrep command itself

cancel_cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	if [ -n "$DERIVED" ]; then
		wait_until 10 bash -c "! pgrep -f -- '$PAT'" || true
		rm -rf "$DERIVED" "$DERIVED.tmp" "$DERIVED.lock" "$DERIVED.log"
	fi
	set +e # under errexit, (exit rc) would end the trap before e2e_cleanup
	(exit $rc)
	e2e_cleanup
}
trap cancel_cleanup EXIT

start_server --lease 120
start_agent a1 --targets "$TRIPLE"
make_repo tc
cat >"$T/src/tc/.anvil.yml" <<YML
targets: [$TRIPLE]
tools: [$TOOL]
steps:
  - run: echo never-reached
YML
commit_push tc "tools: behind a copy" >/dev/null
J=$(first_job "$(latest_pipeline)")

# The derived toolroot's name (rootfs_derive: keyed by the base and the
# commands targets_tools_derive gives it), for each cached toolroot of the
# triple; the one whose .tmp appears is this job's.
INSTALL="apt-get install -y -q --no-install-recommends $TOOL"
find_derived() {
	local base d
	for base in $(ls -d "$CACHE/$TRIPLE"-* 2>/dev/null | grep -E -- '-[0-9a-f]{64}$'); do
		d="$base-tools-$(printf '%s\0%s\0%s\0' "$base" "apt-get update -q" "$INSTALL" | sha256sum | cut -c1-16)"
		if [ -d "$d.tmp" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}
wait_until 900 find_derived ||
	fail "no derived toolroot copy (<toolroot>-tools-<hash>.tmp) in $CACHE: job $J is $(job_state "$J"): $(api "/api/v1/jobs/$J/log" | tail -n 5)"
DERIVED=$(find_derived)
PAT="${DERIVED%?}[${DERIVED: -1}]"
job_is "$J" running || fail "job $J is $(job_state "$J") while its toolroot is copied"
pgrep -f -- "$PAT" >/dev/null || fail "no process works on $DERIVED.tmp"
ok "$SECONDS s: job $J copies its toolroot into $DERIVED.tmp"

t0=$(date +%s%N)
anvil cancel "$J" >/dev/null || fail "anvil cancel failed"
wait_until 60 job_is "$J" canceled || fail "job $J is $(job_state "$J") 60 s after the cancel"
took_ms=$((($(date +%s%N) - t0) / 1000000))
# As in t_prepare_cancel: ~2 s expected, 10 s for a loaded machine.
[ "$took_ms" -lt 10000 ] || fail "the cancel took $took_ms ms"
wait_until 10 bash -c "! pgrep -f -- '$PAT'" || fail "copy or apt survived the cancel: $(pgrep -af -- "$PAT")"
[ ! -e "$DERIVED" ] || fail "a half-made derived toolroot was put in place at $DERIVED"
flock -n "$DERIVED.lock" true || fail "$DERIVED.lock is still held after the cancel"
log_has "$J" "preparation stopped" || fail "the log does not say the preparation stopped: $(api "/api/v1/jobs/$J/log")"
log_has "$J" "job canceled" || fail "the log does not say canceled"
ok "$SECONDS s: canceled in $took_ms ms during the tools: copy; the copy killed, nothing put in place"
