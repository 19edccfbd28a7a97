#!/bin/bash
# Packaging: CPack builds the Debian packages (anvil-server, anvil-agent,
# anvil), they install with apt into a clean Debian bookworm (debootstrap
# minbase, cached as a tarball under /var/cache/anvil/ship) which pulls their
# dependencies, the installed binaries run there, the installed server
# serves on loopback, and purging removes them. lintian must report no
# error (its warnings are printed). Entered with bwrap, so no mount outlives the test.
. "$(dirname "$0")/lib.sh"

if grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
	echo "skip: packaging is tested from the normal build, not the sanitizer build"
	exit 0
fi
[ "${ANVIL_TEST_SHIP:-1}" != 0 ] || { echo "skip: ANVIL_TEST_SHIP=0"; exit 0; }
for tool in debootstrap bwrap cpack dpkg-deb zstd; do
	command -v $tool >/dev/null || { echo "skip: $tool not installed"; exit 0; }
done
t0=$(date +%s)

# 1. The packages, from a build configured for /usr (the agent finds its
# recipes under the prefix it was built with). Kept under the build dir so
# a rerun is incremental.
PKG="$B/ship-deb"
cmake -S "$S" -B "$PKG" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DANVIL_TESTS=OFF \
	-DCMAKE_C_FLAGS="${ANVIL_SHIP_CFLAGS:-}" >"$T/cmake.log" 2>&1 || fail "cmake: $(tail -5 "$T/cmake.log")"
cmake --build "$PKG" -j"$(nproc)" >"$T/build.log" 2>&1 || fail "build: $(grep -m3 error "$T/build.log")"
rm -f "$PKG"/*.deb
(cd "$PKG" && cpack -G DEB) >"$T/cpack.log" 2>&1 || fail "cpack failed"
mkdir -p "$T/debs"
cp "$PKG"/*.deb "$T/debs/"
ls "$T/debs"/anvil-server_*.deb "$T/debs"/anvil-agent_*.deb "$T/debs"/anvil_*.deb >/dev/null || fail "missing packages: $(ls "$T/debs")"
for d in "$T/debs"/*.deb; do
	echo "  $(basename "$d"): $(stat -c %s "$d") bytes; Depends: $(dpkg-deb -f "$d" Depends)"
done
dpkg-deb -c "$T/debs"/anvil-server_*.deb >"$T/server.list"
dpkg-deb -c "$T/debs"/anvil-agent_*.deb >"$T/agent.list"
grep -q ' ./usr/lib/systemd/system/anvil-server.service$' "$T/server.list" || fail "no unit in anvil-server"
grep -q ' ./usr/share/anvil/recipes/aarch64-unknown-linux-gnu.yml$' "$T/agent.list" || fail "no recipes in anvil-agent"
grep -q ' ./usr/bin/anvil-verify$' "$T/agent.list" || fail "no anvil-verify in anvil-agent"
for pkg in anvil-server anvil-agent anvil; do
	list=$(dpkg-deb -c "$T/debs/${pkg}_"*.deb)
	grep -q " ./usr/share/man/man1/$pkg.1.gz\$" <<<"$list" || fail "no manual page in $pkg"
	grep -q " ./usr/share/doc/$pkg/copyright\$" <<<"$list" || fail "no copyright file in $pkg"
done
dpkg-deb --fsys-tarfile "$T/debs"/anvil_*.deb | tar -xO ./usr/share/man/man1/anvil.1.gz | gzip -d >"$T/anvil.1"
grep -Eq '^deploy( |$)' "$T/anvil.1" || fail "anvil(1) does not list the deploy command"
[ "$(dpkg-deb -f "$T/debs"/anvil-server_*.deb Version)" = "$(anvil-server --version | cut -d' ' -f2)-1" ] || fail "version mismatch"
ok "cpack: three packages (each with its manual page and copyright file) in $(($(date +%s) - t0)) s"

if command -v lintian >/dev/null; then
	lintian "$T/debs"/*.deb >"$T/lintian.txt" 2>/dev/null || true
	echo "  lintian:"
	sed 's/^/    /' "$T/lintian.txt"
	! grep -q '^E:' "$T/lintian.txt" || fail "lintian reports errors: $(grep '^E:' "$T/lintian.txt")"
	ok "lintian: no errors ($(grep -c '^W:' "$T/lintian.txt") warnings)"
fi

# 2. A clean Debian to install them into.
TARBALL=$("$S/packaging/image.sh" rootfs) || fail "no base rootfs (debootstrap needs root and the mirror)"
R="$T/root"
mkdir -p "$R"
tar --zstd -C "$R" -xpf "$TARBALL" --numeric-owner
cp /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/debs" && cp "$T/debs"/*.deb "$R/debs/"
# Downloaded packages are kept between runs.
APT_CACHE=${ANVIL_SHIP_CACHE:-/var/cache/anvil/ship}/apt-archives
mkdir -p "$APT_CACHE/partial"
# in_root CMD...: runs CMD as root inside the clean system (host network).
in_root() {
	bwrap --bind "$R" / --bind "$APT_CACHE" /var/cache/apt/archives --proc /proc --dev /dev --tmpfs /tmp \
		--cap-add ALL --die-with-parent --unshare-pid --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin \
		--setenv DEBIAN_FRONTEND noninteractive "$@"
}
in_root dpkg -s anvil-server >/dev/null 2>&1 && fail "the clean system already has anvil"
t1=$(date +%s)
DEBS=()
for d in "$R"/debs/*.deb; do DEBS+=("/debs/${d##*/}"); done
if ! in_root apt-get install -y -q --no-install-recommends "${DEBS[@]}" >"$T/apt.log" 2>&1; then
	# The lists in the cached tarball may be older than the mirror.
	in_root apt-get update -q >>"$T/apt.log" 2>&1
	in_root apt-get install -y -q --no-install-recommends "${DEBS[@]}" >>"$T/apt.log" 2>&1 ||
		fail "apt-get install: $(tail -5 "$T/apt.log")"
fi
ok "apt-get install of the three packages with their dependencies: $(($(date +%s) - t1)) s"

# 3. The installed programs.
v=$(in_root anvil-server --version) || fail "anvil-server --version failed"
[ "$v" = "$(anvil-server --version)" ] || fail "anvil-server --version says '$v'"
in_root anvil --help >"$T/help.out" 2>&1 || fail "anvil --help: $(head -3 "$T/help.out")"
grep -q trigger "$T/help.out" || fail "anvil --help lists no commands"
in_root anvil-agent --version | grep -q "^anvil-agent " || fail "anvil-agent --version"
ok "in the clean system: $v; $(in_root anvil-agent --version); anvil --help lists $(grep -c '^  ' "$T/help.out") lines"
for tool in bwrap debootstrap zstd qemu-aarch64-static; do
	in_root sh -c "command -v $tool" >/dev/null || fail "the agent's dependency $tool was not installed"
done
[ -f "$R/usr/share/anvil/recipes/armv7-unknown-linux-gnueabihf.yml" ] || fail "recipes not installed"
[ -f "$R/lib/systemd/system/anvil-agent.service" ] || [ -f "$R/usr/lib/systemd/system/anvil-agent.service" ] ||
	fail "agent unit not installed"
grep -qx /etc/default/anvil-server "$R/var/lib/dpkg/info/anvil-server.conffiles" || fail "/etc/default/anvil-server is not a conffile"
ok "dependencies (bwrap, debootstrap, zstd, qemu-user-static), recipes, units and conffiles installed"

# The installed units against the installed binaries (the clean system has
# no systemd of its own: the host's verifier reads them).
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T/units"
	for u in anvil-server anvil-agent; do
		f=$(ls "$R"/lib/systemd/system/$u.service "$R"/usr/lib/systemd/system/$u.service 2>/dev/null | head -n1)
		sed "s|/usr/bin/|$R/usr/bin/|g" "$f" >"$T/units/$u.service"
	done
	systemd-analyze verify "$T/units/anvil-server.service" "$T/units/anvil-agent.service" >"$T/verify.log" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$T/verify.log")"
	ok "systemd-analyze verify of the installed units"
fi

# The installed server, configured as the unit does it, serves on loopback.
in_root sh -c 'set -a; . /etc/default/anvil-server; exec anvil-server --check-config' | grep -q "configuration ok" ||
	fail "--check-config with the installed /etc/default/anvil-server"
in_root anvil-server --data /tmp/data --port 0 >"$T/server-root.log" 2>&1 &
PIDS+=($!)
wait_until 20 grep -q "event=listening" "$T/server-root.log" || fail "installed server did not start"
RURL=$(grep -o 'url=http://[0-9.:]*' "$T/server-root.log" | head -n1 | cut -d= -f2)
[ "$(curl -s "$RURL/healthz" | jq -r '.ok // .status // empty')" != "" ] || curl -sf "$RURL/healthz" >/dev/null ||
	fail "installed server not healthy at $RURL"
ok "installed anvil-server answers on $RURL"
kill "${PIDS[-1]}"

# 4. Removal: purge takes the binaries and the conffiles.
in_root dpkg --purge anvil-server anvil-agent anvil >"$T/purge.log" 2>&1 || fail "purge: $(tail -3 "$T/purge.log")"
[ ! -e "$R/usr/bin/anvil-server" ] && [ ! -e "$R/etc/default/anvil-server" ] || fail "purge left files behind"
ok "dpkg --purge removes binaries and conffiles; whole test $(($(date +%s) - t0)) s"
