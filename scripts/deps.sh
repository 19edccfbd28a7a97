#!/bin/sh
# Installs everything anvil needs from Debian's archive. Idempotent: when every
# package is already present it runs no apt-get at all.
# Usage: scripts/deps.sh [build|test|demo|ship]   (default: test)
set -eu
want="${1:-test}"

pkgs_build="build-essential cmake pkg-config git ca-certificates
 libmicrohttpd-dev libcurl4-openssl-dev libevent-dev libgit2-dev libjansson-dev
 libsqlite3-dev libssh2-1-dev libyaml-dev nettle-dev libcmocka-dev libtomlplusplus-dev zlib1g-dev help2man
 libseccomp-dev libpq-dev"
# An agent host for cross mode needs only these: compilers and build tools
# come from each recipe's toolroot (docs/recipes.md). The rest is for the
# demo and the tests (sshd boards, sqlite3, curl, jq).
pkgs_targets="bubblewrap qemu-user-static binfmt-support debootstrap zstd
 openssh-server openssh-client sqlite3 curl jq file"
# The host's cross compilers only for the tests that drive the bubblewrap
# runner over the host's userland directly (unit/test_bwrap, bench).
pkgs_test="clang libclang-rt-14-dev valgrind file jq rustc cargo librust-openssl-dev chromium signify-openbsd
 gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf g++-aarch64-linux-gnu g++-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross"
# The store's PostgreSQL tests (ctest -L pg) start their own cluster from these binaries.
pkgs_test="$pkgs_test postgresql-15"
# Packaging tests (tests/e2e/t_ship_*.sh): lintian for the test build; the
# Docker engine and compose only when the shipping tests run (`ship`).
pkgs_test="$pkgs_test lintian docker.io" # docker.io: the optional Docker runner's test (t_docker)
pkgs_ship="docker.io docker-compose lintian"

case "$want" in
build) pkgs="$pkgs_build" ;;
demo) pkgs="$pkgs_build $pkgs_targets" ;;
test) pkgs="$pkgs_build $pkgs_targets $pkgs_test" ;;
ship) pkgs="$pkgs_build $pkgs_targets $pkgs_ship" ;;
*) echo "usage: $0 [build|test|demo|ship]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi

# The browser tests' npm packages (playwright-core, axe-core), once.
if [ "$want" = test ] && command -v npm >/dev/null; then
	"$(dirname "$0")/npm-deps.sh"
fi

# The agent runs every step as this unprivileged user (docs/security.md).
if [ "$want" != build ] && ! getent passwd anvil-build >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin anvil-build
fi

# qemu-user via binfmt: mount binfmt_misc when missing, then make sure the
# qemu handlers are registered (binfmt-support does it on install, but not
# after a reboot of a container host).
if [ "$want" != build ]; then
	if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
	fi
	if [ -e /proc/sys/fs/binfmt_misc/status ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
		update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
		if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
			update-binfmts --import >/dev/null 2>&1 || true
		fi
	fi
fi
