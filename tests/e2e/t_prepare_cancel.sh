#!/bin/bash
# Cancel while the target is being prepared (issue 19 item 5): a Cross.toml
# pre-build that waits on a gate (a TCP listener of this test on loopback:
# the pre-build loops while it answers) is canceled; the job must be
# canceled within seconds, not when the preparation ends, its processes
# killed, and no half-made derived rootfs put in place. Then the gate
# closes and a second job of the same target, with the same pre-build,
# prepares the rootfs afresh and builds. The server's lease is 120 s, so a
# cancel heard only at the next heartbeat (every lease/3) would take up to
# 40 s. Needs root, binfmt qemu-aarch64 and the cached aarch64 rootfs.
. "$(dirname "$0")/lib.sh"

TAG="anvil-gate-$$"
CACHE=/var/cache/anvil/rootfs
DERIVED=

# The derived rootfs this test makes is its own (its commands name $TAG):
# removed at the end, pass or fail, once the agent is gone.
prepare_cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	if [ -n "$DERIVED" ]; then
		wait_until 10 bash -c "! pgrep -f 'anvil-gat[e]-$$'" || true
		rm -rf "$DERIVED" "$DERIVED.tmp" "$DERIVED.lock" "$DERIVED.log"
	fi
	set +e # under errexit, (exit rc) would end the trap before e2e_cleanup
	(exit $rc)
	e2e_cleanup
}
trap prepare_cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
GATE_PORT=$(free_port)
# The gate: accepts and closes, counting connections in $T/gate.count.
python3 - "$GATE_PORT" "$T/gate.count" >"$T/gate.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
n = 0
while True:
    c, _ = s.accept()
    c.close()
    n += 1
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(n))
    import os
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
GATE_PID=$!
PIDS+=("$GATE_PID")

start_server --lease 120
start_agent a1 --targets aarch64-unknown-linux-gnu
make_repo pc
PRE="true $TAG; while bash -c 'exec 3<>/dev/tcp/127.0.0.1/$GATE_PORT' 2>/dev/null; do sleep 1; done; touch /anvil-prebuild-done"
cat >"$T/src/pc/Cross.toml" <<TOML
[target.aarch64-unknown-linux-gnu]
pre-build = ["$PRE"]
TOML
cat >"$T/src/pc/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: test -e /sysroot/anvil-prebuild-done || test -e /anvil-prebuild-done; echo "prebuilt=$?"
YML
commit_push pc "pre-build behind a gate" >/dev/null
P1=$(latest_pipeline)
J1=$(first_job "$P1")

# Where the derived rootfs goes (rootfs_derive: keyed by the base and the commands).
gate_count() { cat "$T/gate.count" 2>/dev/null || echo 0; }
wait_until 600 bash -c "[ \$(cat $T/gate.count 2>/dev/null || echo 0) -ge 1 ]" ||
	fail "the pre-build never reached the gate: job $J1 is $(job_state "$J1"): $(api "/api/v1/jobs/$J1/log" | tail -n 5)"
for base in $(ls -d "$CACHE"/aarch64-unknown-linux-gnu-* | grep -E -- '-[0-9a-f]{64}$'); do
	d="$base-pre-$(printf '%s\0%s\0' "$base" "$PRE" | sha256sum | cut -c1-16)"
	[ -d "$d.tmp" ] && DERIVED=$d
done
[ -n "$DERIVED" ] || fail "the pre-build's copy (<base>-pre-<hash>.tmp) is not in $CACHE"
pgrep -f "anvil-gat[e]-$$" >/dev/null || fail "no pre-build process found"
job_is "$J1" running || fail "job $J1 is $(job_state "$J1") during its pre-build"
ok "$SECONDS s: job $J1's pre-build waits at the gate ($(gate_count) connection(s)), in $DERIVED.tmp"

t0=$(date +%s%N)
anvil cancel "$J1" >/dev/null || fail "anvil cancel failed"
wait_until 60 job_is "$J1" canceled || fail "job $J1 is $(job_state "$J1") 60 s after the cancel"
took_ms=$((($(date +%s%N) - t0) / 1000000))
# ~2 s expected here (one heartbeat long poll answered at once, a 100 ms
# poll, a 1 s grace); 10 s leaves room for a loaded machine and stays far
# below a 40 s heartbeat interval and the never-ending pre-build.
[ "$took_ms" -lt 10000 ] || fail "the cancel took $took_ms ms"
wait_until 10 bash -c "! pgrep -f 'anvil-gat[e]-$$'" || fail "pre-build processes survived the cancel: $(pgrep -af "anvil-gat[e]-$$")"
[ ! -e "$DERIVED" ] || fail "a half-made derived rootfs was put in place at $DERIVED"
log_has "$J1" "preparation stopped" || fail "the log does not say the preparation stopped: $(api "/api/v1/jobs/$J1/log")"
log_has "$J1" "job canceled" || fail "the log does not say canceled"
ok "$SECONDS s: canceled in $took_ms ms during the pre-build; its processes killed, nothing put in place"

# The gate closes: the same pre-build now finishes. A second job of the
# target prepares the derived rootfs afresh (the canceled copy is never
# used) and its step sees what the pre-build made.
kill "$GATE_PID"
wait "$GATE_PID" 2>/dev/null || true
echo "again" >"$T/src/pc/README"
commit_push pc "gate open" >/dev/null
P2=$(latest_pipeline)
J2=$(first_job "$P2")
wait_until 600 bash -c "s=\$(curl -s $URL/api/v1/jobs/$J2 | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "job $J2 did not finish"
job_is "$J2" success || fail "job $J2 is $(job_state "$J2"): $(api "/api/v1/jobs/$J2/log" | tail -n 20)"
log_has "$J2" "prebuilt=0" || fail "the step did not see the pre-build's file: $(api "/api/v1/jobs/$J2/log" | tail -n 10)"
[ -d "$DERIVED" ] || fail "the derived rootfs $DERIVED is not in place"
[ -e "$DERIVED/anvil-prebuild-done" ] || fail "the derived rootfs lacks the pre-build's file"
[ ! -e "$DERIVED.tmp" ] || fail "$DERIVED.tmp was left behind"
ok "$SECONDS s: job $J2 of the same target prepared the rootfs afresh and built"
