#!/bin/bash
# Runs every libFuzzer target for SECONDS each over a scratch copy of its
# corpus (tests/fuzz/corpus/<name without fuzz_>/) and prints one line per
# target: "target=<name> execs=<n> crashes=<n>". Exits non-zero when any
# target crashed (or could not run); crash inputs are kept under
# BUILD_DIR/fuzz-artifacts/<name>/.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
# BUILD_DIR was configured with: CC=clang cmake -DANVIL_FUZZ=ON ...
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$(cd "$1" && pwd) || exit 2
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/anvil-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

status=0
ntargets=0
for src in "$here"/fuzz_*.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	bin="$build/tests/fuzz/$name"
	ntargets=$((ntargets + 1))
	if [ ! -x "$bin" ]; then
		echo "target=$name execs=0 crashes=0 error=missing-binary:$bin"
		status=1
		continue
	fi
	corpus="$work/corpus-$short"
	arts="$work/artifacts-$short"
	mkdir -p "$corpus" "$arts"
	if [ -d "$here/corpus/$short" ]; then
		cp -R "$here/corpus/$short/." "$corpus/"
	fi
	log="$work/$name.log"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$arts/" "$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	crashes=$(find "$arts" -type f | wc -l)
	if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
		crashes=1 # died without writing an input (e.g. a sanitizer abort in init)
	fi
	echo "target=$name execs=${execs:-0} crashes=$crashes"
	if [ "$crashes" -ne 0 ]; then
		status=1
		mkdir -p "$build/fuzz-artifacts/$name"
		cp -R "$arts/." "$build/fuzz-artifacts/$name/" 2>/dev/null
		cp "$log" "$build/fuzz-artifacts/$name/$name.log"
		echo "--- $name: last lines of its log (kept in $build/fuzz-artifacts/$name/) ---" >&2
		tail -n 40 "$log" >&2
	fi
done
if [ "$ntargets" -eq 0 ]; then
	echo "no fuzz targets in $here" >&2
	exit 1
fi
exit "$status"
