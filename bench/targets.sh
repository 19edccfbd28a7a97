#!/bin/bash
# Target build benchmarks; prints figures, asserts nothing.
#   the same C project (generated, FILES translation units) built for
#   aarch64 in cross mode vs emulated mode;
#   the Rust + openssl fixture cold (empty cache) vs warm (cargo target dir
#   and cargo home kept in the per repo x target cache);
#   sandbox start overhead per step (bench/sandbox_start.sh);
#   the cross toolroot (issue 18): its cold build time and size (a fresh
#   cache directory whose rootfs/ is the shared one, so only the toolroot is
#   built) and the warm start of a step (a job of one `true` step on warm
#   caches, claim to finish).
# Usage: bench/targets.sh [BUILD_DIR]; env FILES (120), BENCH_ONLY=toolroot
# (stop after the toolroot figures).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
FILES=${FILES:-120}

start_server --log-level warn

job_seconds() { api "/api/v1/jobs/$1" | jq -r '(.finished_unix_ms - .started_unix_ms) / 1000'; }
run_pipeline() { # run_pipeline REPO MSG → prints the job's seconds
	commit_push "$1" "$2" >/dev/null 2>&1
	local p j
	p=$(latest_pipeline)
	j=$(first_job "$p")
	wait_until 1800 bash -c "s=\$(curl -s $URL/api/v1/jobs/$j | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]"
	job_is "$j" success || { api "/api/v1/jobs/$j/log" | tail -n 20 >&2; fail "job $j failed"; }
	job_seconds "$j"
}

# The toolroot, cold: its own cache directory, the target rootfs shared.
TR_CACHE="$T/cache"
mkdir -p "$TR_CACHE"
ln -s "${ANVIL_CACHE_DIR:-/var/cache/anvil}/rootfs" "$TR_CACHE/rootfs"
start_agent t1 --targets aarch64-unknown-linux-gnu --cache "$TR_CACHE" --log-level warn
TR_AGENT=$AGENT_PID
make_repo tiny
printf 'targets: [aarch64-unknown-linux-gnu]\nsteps:\n  - run: "true"\n' >"$T/src/tiny/.anvil.yml"
cold_job=$(run_pipeline tiny cold)
tr_dir=$(ls -d "$TR_CACHE"/toolroot/aarch64-unknown-linux-gnu-*[0-9a-f] | head -n 1)
tr_build=$(( $(stat -c %Y "$tr_dir.tar.zst") - $(stat -c %Y "$tr_dir.lock") ))
tr_mb=$(du -sm "$tr_dir" | cut -f1)
tr_tar_mb=$(( $(stat -c %s "$tr_dir.tar.zst") / 1048576 ))
echo "x" >>"$T/src/tiny/.anvil.yml.note"
warm=$(run_pipeline tiny warm1)
echo "y" >>"$T/src/tiny/.anvil.yml.note"
warm2=$(run_pipeline tiny warm2)
echo "toolroot_build_s=$tr_build toolroot_mb=$tr_mb toolroot_tar_zst_mb=$tr_tar_mb first_job_s=$cold_job warm_step_job_s=$warm,$warm2"
kill "$TR_AGENT"
wait "$TR_AGENT" 2>/dev/null || true
rm -rf --one-file-system "$TR_CACHE/toolroot"
[ "${BENCH_ONLY:-}" = toolroot ] && exit 0

start_agent a1 --targets aarch64-unknown-linux-gnu --log-level warn
make_repo cgen
for i in $(seq 1 "$FILES"); do
	{
		echo "#include <string.h>"
		echo "static unsigned tab$i[256];"
		for k in 1 2 3 4 5 6; do
			echo "unsigned f${i}_$k(const char *s) { unsigned h = $k; for (size_t n = 0; n < strlen(s); n++) { h = h * 31 + (unsigned)s[n]; tab$i[h & 255] ^= h; } return h ^ tab$i[$k]; }"
		done
	} >"$T/src/cgen/u$i.c"
done
printf 'int main(void) { return 0; }\n' >"$T/src/cgen/main.c"
printf 'SRCS := $(wildcard *.c)\napp: $(SRCS:.c=.o)\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c $< -o $@\n' >"$T/src/cgen/Makefile"
printf 'targets: [aarch64-unknown-linux-gnu]\nmode: cross\nsteps:\n  - run: make -j2 CC="$CC"\n' >"$T/src/cgen/.anvil.yml"
run_pipeline cgen warmup >/dev/null # the rootfs, checked out once
echo "/* again */" >>"$T/src/cgen/main.c"
cross=$(run_pipeline cgen cross)
sed -i 's/^mode: cross/mode: emulated/' "$T/src/cgen/.anvil.yml"
emu=$(run_pipeline cgen emulated)
echo "c_project_files=$FILES cross_s=$cross emulated_s=$emu speedup=$(awk "BEGIN {printf \"%.1f\", $emu / $cross}")"

make_repo rust
cp -r "$S/tests/fixtures/rustssl/." "$T/src/rust/"
cat >"$T/src/rust/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
tools: [cargo, librust-openssl-dev]
env:
  CARGO_TARGET_DIR: /cache/build/target
steps:
  - run: cargo build --offline --release --target "$ANVIL_TARGET"
YML
cold=$(run_pipeline rust cold)
echo "// touch" >>"$T/src/rust/src/main.rs"
warm=$(run_pipeline rust warm)
echo "rust_openssl_cold_s=$cold rust_openssl_warm_s=$warm speedup=$(awk "BEGIN {printf \"%.1f\", $cold / $warm}")"
