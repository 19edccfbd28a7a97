#!/bin/bash
# The seed users' case: a Rust program linking openssl (the openssl crate
# from Debian's packaged registry, offline) cross-built for aarch64 and armv7
# in cross mode with Debian's rustc; `cargo test` runs under QEMU through the
# recipe's CARGO_TARGET_<T>_RUNNER, and the binaries are target ELF files.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/cargo ] && [ -d /usr/share/cargo/registry/openssl-0.10.45 ] ||
	fail "Debian's cargo and librust-openssl-dev are missing (scripts/deps.sh test installs them)"
TARGETS=aarch64-unknown-linux-gnu,armv7-unknown-linux-gnueabihf
start_server
start_agent a1 --targets "$TARGETS"
make_repo ems-web
cp -r "$S/tests/fixtures/rustssl/." "$T/src/ems-web/"
cat >"$T/src/ems-web/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf]
timeout: 20m
# Rust is not in the recipes' toolroot: the crates come from Debian's packaged
# registry, so the build asks for cargo (rustc with it) and the crate package.
tools: [cargo, librust-openssl-dev]
steps:
  - name: build
    run: cargo build --offline --release --target "$ANVIL_TARGET"
  - name: test
    run: cargo test --offline --release --target "$ANVIL_TARGET" -- --nocapture
  - name: collect
    run: cp "target/$ANVIL_TARGET/release/ems-web" ems-web
artifacts: [ems-web]
YML
commit_push ems-web "rust + openssl"
P=$(latest_pipeline)
wait_until 850 bash -c "s=\$(curl -s $URL/api/v1/pipelines/$P | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "pipeline $P did not finish"
for pair in aarch64-unknown-linux-gnu:183:aarch64 armv7-unknown-linux-gnueabihf:40:arm; do
	IFS=: read -r target machine arch <<<"$pair"
	J=$(api "/api/v1/pipelines/$P" | jq -r ".jobs[] | select(.target==\"$target\") | .id")
	job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 40; fail "$target job is $(job_state "$J")"; }
	log_has "$J" "test result: ok. 2 passed" || fail "$target cargo test did not pass"
	log_has "$J" "test arch: $arch" || fail "$target tests did not run as $arch"
	anvil artifact get "$J" ems-web -o "$T/ems-web-$target" >/dev/null || fail "no artifact for $target"
	[ "$(od -An -t u2 -j 18 -N 2 "$T/ems-web-$target" | tr -d ' ')" = "$machine" ] || fail "$target binary has the wrong e_machine"
	ok "$target: Rust + openssl cross-built, cargo test passed under QEMU as $arch"
done
