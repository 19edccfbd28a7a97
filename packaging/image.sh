#!/bin/bash
# anvil's images without a container registry: the base is a Debian
# bookworm minbase tree made by debootstrap, cached as a tarball, and
# brought into Docker with `docker import`; the anvil images are built
# from it (packaging/docker/Dockerfile) by docker-compose.
#
# Usage: packaging/image.sh rootfs   print the cached tarball's path (builds it once)
#        packaging/image.sh base     import it as the image anvil-base:bookworm
#        packaging/image.sh build    base, then `docker-compose build` (server and agent images)
#
# Environment: ANVIL_SHIP_CACHE (default /var/cache/anvil/ship), ANVIL_SUITE
# (bookworm), ANVIL_MIRROR (http://deb.debian.org/debian), ANVIL_BASE_IMAGE
# (anvil-base:bookworm), DOCKER (docker), COMPOSE (docker-compose).
set -euo pipefail

cache=${ANVIL_SHIP_CACHE:-/var/cache/anvil/ship}
suite=${ANVIL_SUITE:-bookworm}
mirror=${ANVIL_MIRROR:-http://deb.debian.org/debian}
arch=$(dpkg --print-architecture)
tarball="$cache/$suite-$arch-minbase.tar.zst"
base_image=${ANVIL_BASE_IMAGE:-anvil-base:$suite}
top=$(cd "$(dirname "$0")/.." && pwd)

# The tarball: debootstrap minbase plus apt's package lists, so that an
# `apt-get install` in it needs no `apt-get update` first. One builder at a
# time (flock); a finished tarball is never rewritten in place.
image_rootfs() {
	mkdir -p "$cache"
	exec 9>"$tarball.lock"
	flock 9
	if [ ! -s "$tarball" ]; then
		local tmp
		tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
		echo "image: debootstrap $suite $arch into $tmp (log $tarball.log)" >&2
		if ! debootstrap --variant=minbase --arch="$arch" "$suite" "$tmp" "$mirror" >"$tarball.log" 2>&1; then
			rm -rf "$tmp"
			echo "image: debootstrap failed, see $tarball.log" >&2
			return 1
		fi
		cp /etc/resolv.conf "$tmp/etc/resolv.conf"
		# bwrap, not chroot: its mounts vanish with it, nothing to unmount.
		bwrap --bind "$tmp" / --proc /proc --dev /dev --cap-add ALL --die-with-parent \
			--setenv PATH /usr/sbin:/usr/bin:/sbin:/bin \
			apt-get update -q >>"$tarball.log" 2>&1 || { rm -rf "$tmp"; echo "image: apt-get update failed" >&2; return 1; }
		: >"$tmp/etc/resolv.conf"
		rm -f "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin
		tar --zstd -C "$tmp" --numeric-owner -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$tmp"
	fi
	exec 9>&-
	echo "$tarball"
}

image_base() {
	local t stamp
	t=$(image_rootfs)
	# Re-imported when the tarball or the way it is imported (v2) changes.
	stamp="v2-$(stat -c %Y "$t")"
	if ${DOCKER:-docker} image inspect "$base_image" >/dev/null 2>&1 &&
		[ "$(${DOCKER:-docker} image inspect -f '{{index .Config.Labels "anvil.rootfs"}}' "$base_image")" = "$stamp" ]; then
		echo "$base_image"
		return
	fi
	# Without apt's lists (80 MB): every image runs apt-get update anyway.
	local tmp
	tmp=$(mktemp -d "$cache/import.XXXXXX")
	tar --zstd -C "$tmp" -xpf "$t" --numeric-owner
	rm -rf "$tmp"/var/lib/apt/lists/*
	tar -C "$tmp" --numeric-owner -cf - . | ${DOCKER:-docker} import --change "LABEL anvil.rootfs=$stamp" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null || { rm -rf "$tmp"; return 1; }
	rm -rf "$tmp"
	echo "$base_image"
}

case "${1:-}" in
rootfs) image_rootfs ;;
base) image_base ;;
build)
	image_base >/dev/null
	cd "$top"
	${COMPOSE:-docker-compose} build
	;;
*)
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
