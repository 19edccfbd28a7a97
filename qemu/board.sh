#!/bin/bash
# A simulated aarch64 board for tests and demos: the host's OpenSSH sshd on
# its own 127.0.0.x address and port, chrooted into an arm64 Debian rootfs
# (binfmt qemu-aarch64 runs its binaries). See docs/deploy.md.
#
#   board.sh start NAME ADDR PORT STATE_DIR   start a board (prints its keys)
#   board.sh stop STATE_DIR                   stop it (safe to call twice)
#   board.sh rootfs                           only build the cached rootfs
#
# Layout:
#   /var/cache/anvil/board/arm64-minbase.tar  debootstrap minbase, built once
#   /var/cache/anvil/board/arm64-minbase/     the tarball extracted: overlay lower
#   /var/lib/anvil-boards/NAME/{root,upper,work}
#                                              root = overlay, the sshd chroot
#   STATE_DIR/                                 sshd_config, host key, client keys,
#                                              authorized_keys, sshd.pid, sshd.log,
#                                              board.env (the facts, sourceable)
# sshd refuses a chroot path with a component that is not root-owned or is
# group/world-writable, hence /var/lib and not a temp dir.
set -euo pipefail

CACHE_DIR=/var/cache/anvil/board
CACHE_TAR=$CACHE_DIR/arm64-minbase.tar
CACHE_ROOT=$CACHE_DIR/arm64-minbase
BOARDS_DIR=/var/lib/anvil-boards
SUITE=bookworm
MIRROR=${ANVIL_BOARD_MIRROR:-http://deb.debian.org/debian}
START_TIMEOUT_S=${ANVIL_BOARD_START_TIMEOUT_S:-15}

die() {
	echo "board.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: board.sh start NAME ADDR PORT STATE_DIR | stop STATE_DIR | rootfs" >&2
	exit 2
}

# Builds the cached tarball and its extracted copy once; an exclusive flock
# keeps two concurrent callers from building it twice.
ensure_rootfs() {
	umask 022
	mkdir -p "$CACHE_DIR"
	chmod 755 /var/cache/anvil "$CACHE_DIR"
	exec 9>"$CACHE_DIR/.lock"
	flock 9
	if [ ! -f "$CACHE_TAR" ]; then
		local tmp="$CACHE_DIR/build.$$"
		rm -rf "$tmp"
		echo "board.sh: building arm64 minbase rootfs (debootstrap, about a minute)" >&2
		if ! debootstrap --variant=minbase --arch=arm64 "$SUITE" "$tmp" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
			rm -rf "$tmp"
			die "debootstrap failed, see $CACHE_DIR/debootstrap.log"
		fi
		# The install tree of a release lives under /opt on boards; the
		# rest of the image stays as debootstrap left it.
		mkdir -p "$tmp/opt" "$tmp/root"
		rm -rf "$tmp/var/cache/apt/archives/"*.deb
		tar -C "$tmp" -cf "$CACHE_TAR.tmp" .
		mv "$CACHE_TAR.tmp" "$CACHE_TAR"
		rm -rf "$tmp"
	fi
	if [ ! -d "$CACHE_ROOT" ]; then
		local tmp="$CACHE_ROOT.tmp.$$"
		rm -rf "$tmp"
		mkdir -p "$tmp"
		tar -C "$tmp" -xf "$CACHE_TAR"
		chmod 755 "$tmp"
		mv "$tmp" "$CACHE_ROOT"
	fi
	exec 9>&-
}

is_mounted() {
	findmnt -rn --mountpoint "$1" >/dev/null 2>&1
}

# Anything mounted at or below $1?
has_mounts_under() {
	awk -v p="$1" '$2 == p || index($2, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

# Is pid $1 still our sshd (same config path on its command line)? Guards
# against killing a recycled pid.
is_our_sshd() {
	local pid=$1 cfg=$2
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-f $cfg"
}

cmd_start() {
	[ $# -eq 4 ] || usage
	local name=$1 addr=$2 port=$3 state=$4
	[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad board name '$name'"
	[[ "$addr" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "address must be loopback 127.x.y.z, got '$addr'"
	[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad port '$port'"
	command -v /usr/sbin/sshd >/dev/null || die "/usr/sbin/sshd missing (apt-get install openssh-server)"
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "binfmt qemu-aarch64 not registered (scripts/deps.sh)"

	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	local cfg=$state/sshd_config
	if [ -f "$state/sshd.pid" ] && is_our_sshd "$(cat "$state/sshd.pid")" "$cfg"; then
		die "board in $state is already running (pid $(cat "$state/sshd.pid")); stop it first"
	fi
	local bdir=$BOARDS_DIR/$name
	if has_mounts_under "$bdir"; then
		die "board '$name' is already in use ($bdir is mounted); run board.sh stop on its state dir"
	fi

	ensure_rootfs

	umask 022
	mkdir -p "$BOARDS_DIR"
	chmod 755 /var/lib "$BOARDS_DIR"
	rm -rf --one-file-system "$bdir"
	mkdir -p "$bdir/root" "$bdir/upper" "$bdir/work"
	chmod 755 "$bdir" "$bdir/root"
	echo "$name" >"$state/name"
	mount -t overlay "anvil-board-$name" \
		-o "lowerdir=$CACHE_ROOT,upperdir=$bdir/upper,workdir=$bdir/work" "$bdir/root"
	mount --bind /dev "$bdir/root/dev"
	mount -t proc proc "$bdir/root/proc"

	# Keys: the host key is the board's identity; two client keys (ed25519
	# and RSA) are both authorized. Kept across restarts of the same state.
	[ -f "$state/ssh_host_ed25519_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C "anvil-board-$name" -f "$state/ssh_host_ed25519_key"
	[ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "anvil-client" -f "$state/id_ed25519"
	[ -f "$state/id_rsa" ] || ssh-keygen -q -t rsa -b 3072 -m PEM -N '' -C "anvil-client-rsa" -f "$state/id_rsa"
	cat "$state/id_ed25519.pub" "$state/id_rsa.pub" >"$state/authorized_keys"
	chmod 600 "$state/ssh_host_ed25519_key" "$state/id_ed25519" "$state/id_rsa"

	# PidFile none: never touch the host sshd's /run/sshd.pid. ssh-rsa is
	# accepted because libssh2 1.10 signs RSA user auth with SHA-1 only.
	cat >"$cfg" <<EOF
ListenAddress $addr:$port
HostKey $state/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PubkeyAcceptedAlgorithms +ssh-rsa
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
ChrootDirectory $bdir/root
Subsystem sftp internal-sftp
X11Forwarding no
AllowTcpForwarding no
PermitTTY yes
LogLevel VERBOSE
MaxSessions 32
MaxStartups 64:30:128
EOF
	mkdir -p /run/sshd
	chmod 755 /run/sshd
	/usr/sbin/sshd -t -f "$cfg" || die "sshd rejected $cfg"
	: >"$state/sshd.log"
	/usr/sbin/sshd -D -f "$cfg" -E "$state/sshd.log" </dev/null >/dev/null 2>&1 &
	local pid=$!
	echo "$pid" >"$state/sshd.pid"

	# Ready when the port accepts a connection; polled until a deadline.
	local deadline=$((SECONDS + START_TIMEOUT_S)) up=0
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
			up=1
			break
		fi
		sleep 0.05
	done
	if [ $up -ne 1 ]; then
		cat "$state/sshd.log" >&2 || true
		cmd_stop "$state" || true
		die "sshd for board '$name' did not come up on $addr:$port"
	fi

	local fp
	fp=$(ssh-keygen -l -E sha256 -f "$state/ssh_host_ed25519_key.pub" | awk '{print $2}')
	cat >"$state/board.env" <<EOF
BOARD_NAME=$name
BOARD_ADDR=$addr
BOARD_PORT=$port
BOARD_PID=$pid
BOARD_ROOT=$bdir/root
BOARD_HOSTKEY_FP=$fp
BOARD_HOSTKEY_PUB=$state/ssh_host_ed25519_key.pub
BOARD_KEY=$state/id_ed25519
BOARD_KEY_RSA=$state/id_rsa
EOF
	cat "$state/board.env"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local state=$1
	[ -d "$state" ] || return 0
	state=$(cd "$state" && pwd)
	local cfg=$state/sshd_config
	if [ -f "$state/sshd.pid" ]; then
		local pid
		pid=$(cat "$state/sshd.pid")
		if is_our_sshd "$pid" "$cfg"; then
			kill "$pid" 2>/dev/null || true
			local deadline=$((SECONDS + 10))
			while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
				sleep 0.05
			done
			if kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		rm -f "$state/sshd.pid"
	fi
	[ -f "$state/name" ] || return 0
	local name
	name=$(cat "$state/name")
	[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad board name '$name' in $state/name"
	local bdir=$BOARDS_DIR/$name
	local m
	for m in "$bdir/root/proc" "$bdir/root/dev" "$bdir/root"; do
		if is_mounted "$m"; then
			# A session child may still hold the tree for a moment.
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	# Never rm -rf through a live mount (the /dev bind above all).
	if has_mounts_under "$bdir"; then
		die "still mounted under $bdir; not removing it"
	fi
	rm -rf --one-file-system "$bdir"
	rm -f "$state/name"
}

[ $# -ge 1 ] || usage
[ "$(id -u)" -eq 0 ] || die "must run as root (mount, chroot)"
cmd=$1
shift
case "$cmd" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
rootfs) ensure_rootfs ;;
*) usage ;;
esac
