#!/bin/bash
# Prints the median per-step start overhead of the bubblewrap sandbox: the
# wall time of `true` run plainly, inside the cross-mode sandbox (host
# userland, target rootfs at /sysroot) and inside the emulated-mode sandbox
# (target rootfs as /, `true` under qemu-user), over N runs each. The argv is
# the one qemu/runner_bwrap.c builds. Figures only; nothing is asserted.
# Usage: bench/sandbox_start.sh [N] [ROOTFS_DIR]
#   ROOTFS_DIR defaults to the cached aarch64 rootfs in /var/cache/anvil.
set -eu
n=${1:-50}
rootfs=${2:-$(ls -d /var/cache/anvil/rootfs/aarch64-unknown-linux-gnu-* 2>/dev/null | grep -v '\.' | head -n1 || true)}
if [ -z "$rootfs" ] || [ ! -d "$rootfs" ]; then
	echo "no rootfs: build one first (tests/unit/test_bwrap --warm) or pass ROOTFS_DIR" >&2
	exit 2
fi
ws=$(mktemp -d "${TMPDIR:-/tmp}/anvil-bench.XXXXXX")
trap 'rm -rf "$ws"' EXIT

common=(--die-with-parent --unshare-all --new-session)
tail_opts=(--proc /proc --dev /dev --tmpfs /tmp --bind "$ws" /work --tmpfs /cache)
env_opts=(--chdir /work --clearenv --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin --setenv HOME /tmp --setenv LANG C.UTF-8)
cross=(bwrap "${common[@]}" --tmpfs / --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib
	--symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --ro-bind /etc /etc --ro-bind "$rootfs" /sysroot
	"${tail_opts[@]}" --remount-ro / "${env_opts[@]}" -- /bin/sh -c true)
emulated=(bwrap "${common[@]}" --ro-bind "$rootfs" / "${tail_opts[@]}" "${env_opts[@]}" -- /bin/sh -c true)
plain=(/bin/sh -c true)

# median_us CMD...: runs CMD n times, prints the median wall time in us.
median_us() {
	local i t0 t1
	local -a times=()
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000)))
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((n + 1) / 2))p"
}

p=$(median_us "${plain[@]}")
c=$(median_us "${cross[@]}")
e=$(median_us "${emulated[@]}")
echo "runs=$n rootfs=$rootfs"
echo "plain_true_median_us=$p"
echo "bwrap_cross_true_median_us=$c overhead_us=$((c - p))"
echo "bwrap_emulated_true_median_us=$e overhead_us=$((e - p)) (sh and true run under qemu-user)"

# The same against `docker run` (the optional Docker runner, qemu/runner_docker.c)
# when an engine answers and the rootfs was imported by it (tests/e2e/t_docker.sh
# does both; set DOCKER_HOST for an engine of your own). Fewer runs: each is
# a whole container start.
image="anvil-rootfs:$(basename "$rootfs")"
if docker image inspect "$image" >/dev/null 2>&1; then
	dn=$(((n + 4) / 5))
	docker_run=(docker run --rm --pull never --network none --read-only --tmpfs /tmp --cap-drop ALL
		--security-opt no-new-privileges --mount "type=bind,source=$ws,target=/work" --workdir /work "$image")
	dc=$(n=$dn median_us "${docker_run[@]}" /bin/sh -c true)
	echo "docker_run_emulated_true_median_us=$dc overhead_us=$((dc - p)) runs=$dn (engine $(docker version -f '{{.Server.Version}}'))"
else
	echo "docker_run: skipped (no engine, or $image not imported: run tests/e2e/t_docker.sh)"
fi

# The agent's own start path (bench/sandbox_start.c through qemu/runner_bwrap.c):
# unconfined as before issue 13, and with the sandbox it always uses now
# (seccomp filter compiled once, job cgroup, build user, user namespace).
bench_bin=${ANVIL_BUILD_DIR:-build}/bench_sandbox_start
if [ -x "$bench_bin" ] && [ "$(id -u)" = 0 ] && getent passwd anvil-build >/dev/null; then
	"$bench_bin" "$rootfs" "$n"
else
	echo "runner_step_start: skipped ($bench_bin missing, not root, or no anvil-build user)"
fi
