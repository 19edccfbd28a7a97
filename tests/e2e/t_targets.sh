#!/bin/bash
# One push, one job per target: a C project with a unit test cross-built for
# aarch64 and armv7 inside bubblewrap, its test binary run under QEMU on the
# target architecture, and the artifacts ELF files of that architecture.
# Also emulated mode for aarch64 (the target's own gcc under qemu-user).
. "$(dirname "$0")/lib.sh"

TARGETS=aarch64-unknown-linux-gnu,armv7-unknown-linux-gnueabihf
start_server
start_agent a1 --targets "$TARGETS"
wait_until 600 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[0].labels | index(\"target=armv7-unknown-linux-gnueabihf\")'" ||
	fail "agent does not advertise both targets"
make_repo cproj
cp -r "$S/tests/fixtures/cproj/." "$T/src/cproj/"
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf]
steps:
  - name: build
    run: make CC="$CC"
  - name: test
    run: ./test_arch | tee arch.txt
artifacts: [hello, test_arch, arch.txt]
YML
commit_push cproj "cross build"
P=$(latest_pipeline)
wait_until 900 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
[ "$(api "/api/v1/pipelines/$P" | jq '.jobs | length')" = 2 ] || fail "expected one job per target"

# elf_machine FILE: e_machine from the ELF header (bytes 18-19, little endian).
elf_machine() { od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '; }
for pair in aarch64-unknown-linux-gnu:183:aarch64 armv7-unknown-linux-gnueabihf:40:armv7l; do
	IFS=: read -r target machine uname <<<"$pair"
	J=$(api "/api/v1/pipelines/$P" | jq -r ".jobs[] | select(.target==\"$target\") | .id")
	log_has "$J" "cross mode" || fail "$target did not run in cross mode"
	anvil artifact get "$J" hello -o "$T/hello-$target" >/dev/null || fail "no hello for $target"
	[ "$(head -c 4 "$T/hello-$target" | od -An -c | tr -d ' ')" = '177ELF' ] || fail "$target hello is no ELF"
	[ "$(elf_machine "$T/hello-$target")" = "$machine" ] || fail "$target hello e_machine $(elf_machine "$T/hello-$target") != $machine"
	anvil artifact get "$J" arch.txt -o "$T/arch-$target" >/dev/null
	[ "$(cat "$T/arch-$target")" = "$uname" ] || fail "$target test ran as $(cat "$T/arch-$target"), want $uname"
	ok "$target: cross-built ELF e_machine=$machine, test ran as $uname under QEMU"
done

# Emulated mode: the same project built by the target's own gcc under qemu.
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
mode: emulated
steps:
  - run: uname -m && gcc -O2 -o test_arch test_arch.c && ./test_arch
artifacts: [test_arch]
YML
commit_push cproj "emulated" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 600 job_is "$J" success || fail "emulated job is $(job_state "$J")"
log_has "$J" "emulated mode" || fail "job did not run in emulated mode"
[ "$(api "/api/v1/jobs/$J/log" | grep -cx aarch64)" = 2 ] || fail "uname -m and test_arch did not both print aarch64"
anvil artifact get "$J" test_arch -o "$T/ta" >/dev/null
[ "$(od -An -t u2 -j 18 -N 2 "$T/ta" | tr -d ' ')" = 183 ] || fail "emulated build is not aarch64"
ok "emulated mode: the target's own gcc under qemu-user"

# The sandbox: no network, nothing written outside the workspace and caches.
cat >"$T/src/cproj/.anvil.yml" <<YML
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: |
      if timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT' 2>/dev/null; then echo NET"-"REACHED; fi
      if touch /usr/anvil-escape 2>/dev/null; then echo WROTE"-"USR; fi
      if touch /sysroot/anvil-escape 2>/dev/null; then echo WROTE"-"SYSROOT; fi
      echo in-workspace > ok.txt && echo in-cache > /cache/build/probe && echo sandbox-checked
artifacts: [ok.txt]
YML
commit_push cproj "sandbox" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 300 job_is "$J" success || fail "sandbox job is $(job_state "$J")"
log_has "$J" sandbox-checked || fail "sandbox job did not finish its checks"
for bad in NET-REACHED WROTE-USR WROTE-SYSROOT; do
	if log_has "$J" "$bad"; then fail "sandbox let through: $bad"; fi
done
[ ! -e /usr/anvil-escape ] || fail "file escaped to the host /usr"
ok "sandbox: no network (server port $PORT unreachable), read-only system, writable workspace and cache"
