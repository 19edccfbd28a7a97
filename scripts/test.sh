#!/bin/bash
# Sets up and runs every test: dependencies, a normal build and an
# ASan+UBSan build each running the whole ctest suite, then each libFuzzer
# target for a bounded time. Usage: scripts/test.sh [--quick] (quick: the
# normal build's ctest only).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = --quick ] && quick=1
jobs=$(nproc)

scripts/deps.sh test
scripts/npm-deps.sh

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "build (RelWithDebInfo)"
# ANVIL_TESTS=ON: scripts/demo.sh configures the same build dir without tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
step "ctest (normal build)"
(cd build && ctest --output-on-failure -j2)
[ $quick = 1 ] && exit 0

step "build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DANVIL_SANITIZE=ON -DANVIL_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
step "ctest (ASan+UBSan build)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2)

step "fuzz (libFuzzer, ${ANVIL_FUZZ_SECONDS:-30} s per target)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DANVIL_FUZZ=ON -DANVIL_TESTS=OFF >/dev/null
cmake --build build-fuzz --target fuzz -j"$jobs"
tests/fuzz/run.sh build-fuzz "${ANVIL_FUZZ_SECONDS:-30}"
# Shipping tests (tests/e2e/t_ship_self.sh, t_ship_compose.sh: anvil cross-built
# by itself, Docker images and the compose stack) take minutes even with warm
# caches (/var/cache/anvil), so they run only when there is time:
# ANVIL_TEST_SHIP=1 runs them, 0 skips them; unset, they run when everything
# above took less than 15 minutes.
if [ "${ANVIL_TEST_SHIP:-}" = 1 ] || { [ -z "${ANVIL_TEST_SHIP:-}" ] && [ "$SECONDS" -lt 900 ]; }; then
	step "shipping: anvil builds itself, docker-compose stack"
	scripts/deps.sh ship
	(cd build && ANVIL_TEST_SHIP=1 ctest --output-on-failure -R 'e2e/t_ship_(self|compose)$')
else
	step "shipping tests skipped (ANVIL_TEST_SHIP=${ANVIL_TEST_SHIP:-unset}, ${SECONDS} s so far)"
fi
step "all tests passed"
