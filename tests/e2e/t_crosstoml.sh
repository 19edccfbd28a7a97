#!/bin/bash
# Cross.toml as cross-rs users write it: its pre-build installs the target's
# libmodbus-dev with the target's own apt, as root in a derived copy of the
# rootfs (once, then cached); the Modbus client then cross-builds against it
# with pkg-config and runs under QEMU; Docker-only keys are named in a
# warning at the top of the job log; env.passthrough reaches the steps.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1 --targets aarch64-unknown-linux-gnu
make_repo modbus
cp -r "$S/tests/fixtures/modbus/." "$T/src/modbus/"
cat >"$T/src/modbus/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: make CC="$CC" && ./ems-modbus && echo "site=$EMS_SITE"
artifacts: [ems-modbus]
YML
commit_push modbus "modbus client"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 840 bash -c "s=\$(curl -s $URL/api/v1/jobs/$J | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "job did not finish"
job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 30; fail "job is $(job_state "$J")"; }
log_has "$J" "warning: Cross.toml: target.aarch64-unknown-linux-gnu.image ghcr.io/cross-rs/aarch64-unknown-linux-gnu:main is ignored: it needs the Docker runner" ||
	fail "the image key was not named in a warning: $(api "/api/v1/jobs/$J/log" | grep -i warning)"
log_has "$J" "Cross.toml pre-build: 2 command(s)" || fail "pre-build not announced"
api "/api/v1/jobs/$J/log" | grep -qE '^modbus 3\.[0-9.]+ on aarch64$' || fail "the Modbus client did not run as aarch64"
log_has "$J" "site=plant-3" || fail "env.passthrough did not reach the step"
anvil artifact get "$J" ems-modbus -o "$T/ems-modbus" >/dev/null
[ "$(od -An -t u2 -j 18 -N 2 "$T/ems-modbus" | tr -d ' ')" = 183 ] || fail "artifact is not aarch64"
ok "pre-build installed libmodbus-dev:arm64; the client cross-built against it and ran under QEMU"

# Cached: a second push reuses the derived rootfs (no apt run in its log).
echo "/* again */" >>"$T/src/modbus/main.c"
commit_push modbus "again"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 300 job_is "$J" success || fail "second job is $(job_state "$J")"
log_has "$J" "pre-build" || fail "second job lost the pre-build"
ok "the derived rootfs is cached"

# A broken Cross.toml fails the job with TOML's line number.
printf '[build]\npre-build = [\n' >"$T/src/modbus/Cross.toml"
commit_push modbus "broken Cross.toml"
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 job_is "$J" error || fail "broken Cross.toml job is $(job_state "$J")"
log_has "$J" "Cross.toml line" || fail "the TOML error has no line"
ok "a malformed Cross.toml is an error naming its line"
