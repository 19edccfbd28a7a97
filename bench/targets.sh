#!/bin/bash
# Target build benchmarks; prints figures, asserts nothing.
#   side by side (issue 18), for the same C project (generated, FILES
#   translation units) and for the Rust + openssl fixture, each for aarch64:
#   the cross build through anvil (a job: claim to finish, checkout and log
#   streaming included), the same command by hand with the same toolchain
#   (bubblewrap run directly over the job's own toolroot and rootfs, no
#   server, agent or checkout: what a person gets from a chroot of the same
#   trees), and the emulated build through anvil; through anvil should stay
#   within 1.1x by hand (hand_ratio);
#   the Rust + openssl fixture cold (empty cache) vs warm (cargo target dir
#   and cargo home kept in the per repo x target cache);
#   sandbox start overhead per step (bench/sandbox_start.sh);
#   the cross toolroot (issue 18): its cold build time and size (a fresh
#   cache directory whose rootfs/ is the shared one, so only the toolroot is
#   built) and the warm start of a step (a job of one `true` step on warm
#   caches, claim to finish).
# Usage: bench/targets.sh [BUILD_DIR]; env FILES (120), BENCH_ONLY=toolroot
# (stop after the toolroot figures), BENCH_ONLY=cross (only the cross
# builds through anvil and by hand: no toolroot, emulated or warm figures),
# BENCH_RUNS (1: through anvil and by hand alternated this many times, the
# medians printed), BENCH_EMULATED_RUST=0 (skip the
# emulated Rust build: its first run installs cargo into the arm64 rootfs
# under qemu, many minutes).
set -euo pipefail
export ANVIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
export ANVIL_BUILD_DIR=$(cd "${1:-$ANVIL_SOURCE_DIR/build}" && pwd)
. "$ANVIL_SOURCE_DIR/tests/e2e/lib.sh"
FILES=${FILES:-120}

start_server --log-level warn

job_seconds() { api "/api/v1/jobs/$1" | jq -r '(.finished_unix_ms - .started_unix_ms) / 1000'; }
run_pipeline() { # run_pipeline REPO MSG → prints the job's seconds; its id goes to $T/last_job
	commit_push "$1" "$2" >/dev/null 2>&1
	local p j
	p=$(latest_pipeline)
	j=$(first_job "$p")
	echo "$j" >"$T/last_job"
	# Waited for by following its log (the server's long poll), not by
	# polling its state: wait_until's curl + jq every 50 ms took a third of
	# a core of this 2-core box from the build being timed (by hand had no
	# such neighbour), which alone made through anvil look 1.3x slower.
	anvil logs -f "$j" >/dev/null 2>&1 || true
	wait_until 60 bash -c "s=\$(curl -s $URL/api/v1/jobs/$j | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]"
	job_is "$j" success || { api "/api/v1/jobs/$j/log" | tail -n 20 >&2; fail "job $j failed"; }
	job_seconds "$j"
}
# The trees the last job ran on, from its log's runner line
# ("bubblewrap, cross mode, rootfs R (arm64, ...), toolroot TR").
last_rootfs() { api "/api/v1/jobs/$(cat "$T/last_job")/log" | sed -n 's/.*, rootfs \([^ ]*\) (.*/\1/p' | head -n 1; }
last_toolroot() { api "/api/v1/jobs/$(cat "$T/last_job")/log" | sed -n 's/.*, toolroot \([^ ,]*\).*/\1/p' | head -n 1; }
# The recipe's env and env_cross as KEY=VALUE lines (for env -i).
recipe_env() {
	python3 - "$S/recipes/$1.yml" <<'PY'
import sys, yaml
r = yaml.safe_load(open(sys.argv[1]))
for k in ("env", "env_cross"):
    for key, val in (r.get(k) or {}).items():
        print(f"{key}={val}")
PY
}
# by_hand TOOLROOT ROOTFS SRC CMD → prints seconds: CMD run in a fresh copy
# of SRC the way a person would with the same trees (the toolroot's /usr and
# /etc, the rootfs at /sysroot, the Rust sysroot links, the recipe's cross
# environment), through bubblewrap started directly: no agent, no server,
# no checkout, no log streaming, no sandbox user or limits.
by_hand() {
	local tr=$1 rf=$2 src=$3 cmd=$4 w t0 t1
	w=$(mktemp -d "$T/hand.XXXXXX")
	cp -a "$src/." "$w/"
	mapfile -t envs < <(recipe_env aarch64-unknown-linux-gnu)
	t0=$(date +%s%N)
	env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp CARGO_HOME=/tmp/cargo \
		ANVIL_TARGET=aarch64-unknown-linux-gnu "${envs[@]}" \
		bwrap --die-with-parent --unshare-all --new-session --tmpfs / \
		--ro-bind "$tr/usr" /usr --symlink usr/bin /bin --symlink usr/lib /lib \
		--symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --ro-bind "$tr/etc" /etc \
		--ro-bind "$rf" /sysroot --bind "$w" /work --proc /proc --dev /dev --tmpfs /tmp \
		--symlink /usr/lib/rustlib/x86_64-unknown-linux-gnu /rust-sysroot/lib/rustlib/x86_64-unknown-linux-gnu \
		--symlink /sysroot/usr/lib/rustlib/aarch64-unknown-linux-gnu /rust-sysroot/lib/rustlib/aarch64-unknown-linux-gnu \
		--chdir /work /bin/sh -c "$cmd" >"$w.log" 2>&1 || { tail -n 20 "$w.log" >&2; fail "by hand: $cmd failed"; }
	t1=$(date +%s%N)
	rm -rf "$w"
	awk "BEGIN {printf \"%.2f\", ($t1 - $t0) / 1e9}"
}
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }

median() { tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {printf "%.2f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
RUNS=${BENCH_RUNS:-1}
ONLY=${BENCH_ONLY:-}

if [ "$ONLY" != cross ]; then
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
[ "$ONLY" = toolroot ] && exit 0
fi

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
c_cross=() c_hand=()
for run in $(seq 1 "$RUNS"); do
	echo "/* again $run */" >>"$T/src/cgen/main.c"
	c_cross+=("$(run_pipeline cgen "cross $run")")
	c_tr=$(last_toolroot)
	c_rf=$(last_rootfs)
	c_hand+=("$(by_hand "$c_tr" "$c_rf" "$T/src/cgen" 'make -j2 CC="$CC"')")
	[ "$RUNS" -gt 1 ] && echo "c run $run: cross_anvil_s=${c_cross[-1]} cross_by_hand_s=${c_hand[-1]} load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
cross=$(echo "${c_cross[*]}" | median)
hand=$(echo "${c_hand[*]}" | median)
emu_c=
if [ "$ONLY" != cross ]; then
	sed -i 's/^mode: cross/mode: emulated/' "$T/src/cgen/.anvil.yml"
	emu=$(run_pipeline cgen emulated)
	emu_c=" emulated_s=$emu speedup=$(awk "BEGIN {printf \"%.1f\", $emu / $cross}")"
fi
echo "c_project_files=$FILES runs=$RUNS cross_anvil_s=$cross cross_by_hand_s=$hand hand_ratio=$(ratio "$cross" "$hand")$emu_c"

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
# The tools: toolroot first (a repository of its own), so the cold figure
# is the build alone.
make_repo rustprep
printf 'targets: [aarch64-unknown-linux-gnu]\ntools: [cargo, librust-openssl-dev]\nsteps:\n  - run: "true"\n' >"$T/src/rustprep/.anvil.yml"
run_pipeline rustprep tools >/dev/null
r_cold=() r_hand=()
for run in $(seq 1 "$RUNS"); do
	# Cold: the repository x target cache (cargo home, target dir) emptied.
	rm -rf --one-file-system "$T/agent-a1/cache/rust"
	echo "// cold $run" >>"$T/src/rust/src/main.rs"
	r_cold+=("$(run_pipeline rust "cold $run")")
	r_tr=$(last_toolroot)
	r_rf=$(last_rootfs)
	r_hand+=("$(by_hand "$r_tr" "$r_rf" "$T/src/rust" 'cargo build --offline --release --target "$ANVIL_TARGET"')")
	[ "$RUNS" -gt 1 ] && echo "rust run $run: cross_anvil_cold_s=${r_cold[-1]} cross_by_hand_cold_s=${r_hand[-1]} load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
cold=$(echo "${r_cold[*]}" | median)
hand=$(echo "${r_hand[*]}" | median)
if [ "$ONLY" = cross ]; then
	echo "rust_openssl runs=$RUNS cross_anvil_cold_s=$cold cross_by_hand_cold_s=$hand hand_ratio=$(ratio "$cold" "$hand")"
	exit 0
fi
echo "// touch" >>"$T/src/rust/src/main.rs"
warm=$(run_pipeline rust warm)
emu_line=
if [ "${BENCH_EMULATED_RUST:-1}" != 0 ]; then
	# Emulated: tools: go into a copy of the arm64 rootfs (cargo under qemu),
	# prepared by a first job; then the build itself, cold.
	make_repo rustemu
	cp -r "$S/tests/fixtures/rustssl/." "$T/src/rustemu/"
	printf 'targets: [aarch64-unknown-linux-gnu]\nmode: emulated\ntools: [cargo, librust-openssl-dev]\nsteps:\n  - run: "true"\n' >"$T/src/rustemu/.anvil.yml"
	emu_prep=$(run_pipeline rustemu tools)
	sed 's/^targets: .*/&\nmode: emulated/' "$T/src/rust/.anvil.yml" >"$T/src/rustemu/.anvil.yml"
	emu=$(run_pipeline rustemu build)
	emu_line=" emulated_s=$emu emulated_tools_prep_s=$emu_prep"
fi
echo "rust_openssl runs=$RUNS cross_anvil_cold_s=$cold cross_by_hand_cold_s=$hand hand_ratio=$(ratio "$cold" "$hand")$emu_line"
echo "rust_openssl_cold_s=$cold rust_openssl_warm_s=$warm speedup=$(awk "BEGIN {printf \"%.1f\", $cold / $warm}")"
