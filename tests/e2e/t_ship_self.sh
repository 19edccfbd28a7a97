#!/bin/bash
# anvil builds itself: the repository's own .anvil.yml, pushed to a server,
# cross-builds anvil for aarch64 and armv7 (host cmake + cross gcc against
# the target rootfs holding anvil's -dev libraries); then the aarch64
# anvil-agent it produced, run under qemu-user inside the arm64 rootfs
# (bubblewrap), registers with this x86_64 server and completes a job.
# Heavy the first time (two target rootfs with anvil's -dev libraries are
# built, minutes each, then cached under /var/cache/anvil): runs only with
# ANVIL_TEST_SHIP=1.
. "$(dirname "$0")/lib.sh"

[ "${ANVIL_TEST_SHIP:-0}" = 1 ] || { echo "skip: set ANVIL_TEST_SHIP=1 (cross-builds anvil itself; minutes)"; exit 0; }
if grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
	echo "skip: packaging is tested from the normal build, not the sanitizer build"
	exit 0
fi
for tool in bwrap debootstrap qemu-aarch64-static aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc cmake; do
	command -v $tool >/dev/null || { echo "skip: $tool not installed"; exit 0; }
done
t0=$(date +%s)
TARGETS=aarch64-unknown-linux-gnu,armv7-unknown-linux-gnueabihf

# The agent's recipes: the shipped ones, plus anvil's build dependencies in
# the target rootfs. (The recipe format has no per-repository package list;
# an agent that builds anvil is given such a recipes directory.)
ANVIL_DEV_PACKAGES="libmicrohttpd-dev libcurl4-openssl-dev libevent-dev libgit2-dev libjansson-dev libsqlite3-dev libssh2-1-dev libyaml-dev nettle-dev libtomlplusplus-dev libseccomp-dev"
mkdir -p "$T/recipes"
for t in ${TARGETS//,/ }; do
	awk -v pk="$ANVIL_DEV_PACKAGES" '{ print } /^packages:/ { n = split(pk, a, " "); for (i = 1; i <= n; i++) print "  - " a[i] }' \
		"$S/recipes/$t.yml" >"$T/recipes/$t.yml"
	grep -q -- "- libgit2-dev" "$T/recipes/$t.yml" || fail "could not add packages to $t"
done

start_server
# One agent per target, so that the two rootfs (first run: minutes each) build side by side.
for t in ${TARGETS//,/ }; do
	start_agent "x86-${t%%-*}" --targets "$t" --recipes "$T/recipes"
done
wait_until 60 bash -c "curl -s $URL/api/v1/agents | jq -e '[.agents[].labels[]] | index(\"target=armv7-unknown-linux-gnueabihf\") and index(\"target=aarch64-unknown-linux-gnu\")'" ||
	fail "agents do not advertise both targets"

# The repository: this source tree as it is (tracked files when it is a git checkout).
make_repo anvil
if git -C "$S" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$S" ls-files -z --cached --others --exclude-standard | (cd "$S" && xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$T/src/anvil"
else
	tar -C "$S" --exclude='./build*' -cf - . | tar -xf - -C "$T/src/anvil"
fi
[ -f "$T/src/anvil/.anvil.yml" ] || fail "the source tree has no .anvil.yml"
if [ -n "${ANVIL_SHIP_CFLAGS:-}" ]; then # a developer's escape hatch, e.g. -Wno-error=...
	printf 'env:\n  CFLAGS: "%s"\n' "$ANVIL_SHIP_CFLAGS" >>"$T/src/anvil/.anvil.yml"
fi
t1=$(date +%s)
commit_push anvil "anvil, built by anvil" >/dev/null
P=$(latest_pipeline)
[ -n "$P" ] || fail "no pipeline"
wait_until 2400 bash -c "s=\$(curl -s $URL/api/v1/pipelines/$P | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "pipeline $P still $(pipeline_state "$P")"
[ "$(pipeline_state "$P")" = success ] || {
	for j in $(api "/api/v1/pipelines/$P" | jq -r '.jobs[].id'); do api "/api/v1/jobs/$j/log" | tail -n 30 >&2; done
	fail "pipeline $P is $(pipeline_state "$P")"
}
ok "anvil's .anvil.yml cross-built anvil for aarch64 and armv7 in $(($(date +%s) - t1)) s (rootfs builds included on a first run)"

# The logs are long (a whole build): read them whole, then grep (a `grep -q`
# that stops early would break curl's pipe).
jlog_has() { api "/api/v1/jobs/$1/log" >"$T/job-$1.log" && grep -qF -- "$2" "$T/job-$1.log"; }

# elf_machine FILE: e_machine from the ELF header (bytes 18-19, little endian).
elf_machine() { od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '; }
for pair in aarch64-unknown-linux-gnu:183 armv7-unknown-linux-gnueabihf:40; do
	IFS=: read -r target machine <<<"$pair"
	J=$(api "/api/v1/pipelines/$P" | jq -r ".jobs[] | select(.target==\"$target\") | .id")
	jlog_has "$J" "cross mode" || fail "$target did not run in cross mode"
	jlog_has "$J" "anvil-server 0." || fail "$target: the built server did not run under qemu"
	mkdir -p "$T/out-$target"
	for bin in anvil-server anvil-agent anvil; do
		anvil artifact get "$J" "_build/$bin" -o "$T/out-$target/$bin" >/dev/null || fail "no $bin for $target"
		[ "$(elf_machine "$T/out-$target/$bin")" = "$machine" ] || fail "$target $bin: e_machine $(elf_machine "$T/out-$target/$bin")"
	done
	echo "  $target: $(ls -l "$T/out-$target" | awk 'NR>1 {printf "%s %s B; ", $9, $5}')"
done
ok "artifacts are ELF for aarch64 (183) and arm (40); their --version ran under QEMU in the job"

# The aarch64 agent in the arm64 rootfs (its own libraries: the -dev
# packages pulled them in), under qemu-user, on this server. The x86_64
# agents leave first, so that only it can claim the job.
for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
# The very rootfs the aarch64 build used (its libraries are the ones linked).
ROOTFS=$(grep -o 'cross mode, rootfs [^ ]*' "$T/agent-x86-aarch64.log" | tail -n1 | cut -d' ' -f4)
[ -n "$ROOTFS" ] && [ -e "$ROOTFS/usr/include/git2.h" ] || fail "no cached arm64 rootfs with anvil's libraries ('$ROOTFS')"
mkdir -p "$T/a64/bin" "$T/a64/work"
cp "$T/out-aarch64-unknown-linux-gnu/anvil-agent" "$T/a64/bin/"
chmod +x "$T/a64/bin/anvil-agent"
a64() { # runs the aarch64 agent with OPTIONS in the arm64 rootfs, in the background; sets A64
	bwrap --ro-bind "$ROOTFS" / --proc /proc --dev /dev --tmpfs /tmp --bind "$T/a64/work" /work \
		--ro-bind "$T/a64/bin" /tmp/anvil-bin --ro-bind "$T/git" "$T/git" \
		--unshare-pid --die-with-parent --clearenv --setenv PATH /usr/bin:/bin --setenv HOME /tmp \
		--setenv ANVIL_AGENT_TOKEN "$(cat "$T/data/agent.token")" \
		/tmp/anvil-bin/anvil-agent --server "$URL" --name a64-under-qemu --work /work "$@" \
		>>"$T/agent-a64.log" 2>&1 &
	A64=$!
	PIDS+=("$A64")
}
# Steps, host ones too, run only in bubblewrap, which this build rootfs
# lacks: asked for the host target, the agent refuses to start, saying so.
a64 --targets host --build-user 65534:65534 --once
wait_until 120 bash -c "! kill -0 $A64 2>/dev/null" || fail "the aarch64 agent without bubblewrap did not exit"
grep -q 'target host: bubblewrap (bwrap) is not installed' "$T/agent-a64.log" ||
	fail "the aarch64 agent without bubblewrap did not say why: $(tail -n 3 "$T/agent-a64.log")"
ok "the aarch64 anvil-agent (qemu-user, arm64 rootfs) refuses the host target without bubblewrap"
a64 --targets none --build-user 65534:65534
wait_until 120 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[] | select(.name==\"a64-under-qemu\") | .labels | index(\"arch=aarch64\")'" ||
	fail "the aarch64 agent did not register with arch=aarch64"
ok "the aarch64 anvil-agent (qemu-user, arm64 rootfs) registered: $(curl -s "$URL/api/v1/agents" | jq -c '.agents[] | select(.name=="a64-under-qemu") | .labels'); whole test $(($(date +%s) - t0)) s"
