#!/bin/bash
# The optional Docker runner (anvil-agent --runner docker): the cached
# aarch64 rootfs becomes an image with `docker import` (no registry: every
# run is --pull never), a job's steps run in containers under --platform
# linux/arm64 through qemu-user binfmt (emulated) or with the host's cross
# gcc and the rootfs at /sysroot (cross); --network none unless the
# pipeline asks; a cancelled job's container is killed, and containers a
# kill -9'd agent left behind are removed when it starts again. Starts its
# own dockerd (own socket, data root cached under /var/cache/anvil) when no
# engine answers; skips only where none can start.
. "$(dirname "$0")/lib.sh"

command -v docker >/dev/null && command -v dockerd >/dev/null ||
	{ echo "skip: docker.io is not installed (scripts/deps.sh test installs it)"; exit 0; }
docker_cleanup() {
	docker ps -aq --filter "label=anvil.work=$T/agent-a1" | xargs -r docker rm -f >/dev/null 2>&1 || true
	docker_engine_stop
}
trap 'rc=$?; set +e; docker_cleanup; (exit $rc); e2e_cleanup' EXIT  # set +e: (exit rc) must not end the trap
# One engine per data root: a lock so two runs (normal and sanitizer builds
# in parallel) take turns.
mkdir -p /var/cache/anvil
exec 9>/var/cache/anvil/docker-runner.lock
flock -w 900 9 || { echo "skip: another run holds the docker-runner engine for 15 min"; exit 0; }
docker_engine /var/cache/anvil/docker-runner || exit 0

TARGET=aarch64-unknown-linux-gnu
start_server
start_agent a1 --targets "$TARGET" --runner docker
wait_until 120 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[0].labels | index(\"runner=docker\")'" >/dev/null ||
	fail "agent does not advertise runner=docker"
make_repo cproj
cp -r "$S/tests/fixtures/cproj/." "$T/src/cproj/"

# 1. Emulated: the target's own gcc in the imported rootfs, under qemu.
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
mode: emulated
steps:
  - name: build
    run: uname -m && gcc -O2 -o test_arch test_arch.c && ./test_arch
  - name: sandbox
    run: |
      ls /sys/class/net | tr '\n' ' '; echo
      touch /etc/x 2>/dev/null && echo "rootfs writable" || echo "rootfs read-only"
      echo "cache=$ANVIL_CACHE"; echo cached >"$ANVIL_CACHE/mark"
      echo "uid=$(id -u)"
      cat /etc/shadow >/dev/null 2>&1 && echo "shadow read" || echo "shadow refused"
      mount -t tmpfs none /mnt 2>/dev/null && echo "mount done" || echo "mount refused"
      unshare -U true 2>/dev/null && echo "userns made" || echo "userns refused"
      grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -s '\t ' ' '
artifacts: [test_arch]
YML
t0=$(date +%s)
commit_push cproj "emulated in docker" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 900 job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 20; fail "emulated job is $(job_state "$J")"; }
log=$(api "/api/v1/jobs/$J/log")
grep -Eq "runner: docker container, emulated mode, image anvil-rootfs:$TARGET-[0-9a-f]+( --platform linux/arm64| \(engine recorded its own platform; qemu binfmt runs it\)), network none" <<<"$log" ||
	fail "runner line: $(grep 'runner:' <<<"$log")"
platform=$(grep -o -- '--platform [^,]*' <<<"$log" || echo "none (the engine ignored import --platform)")
[ "$(grep -cx aarch64 <<<"$log")" = 2 ] || fail "uname -m and test_arch did not both print aarch64"
grep -qx "lo " <<<"$log" || fail "network is not none: $(grep -A1 'sandbox' <<<"$log" | tail -n 1)"
grep -qx "rootfs read-only" <<<"$log" || fail "the image's root is writable"
# Containment (issue 13): the build user, no capabilities, no mount or user namespace.
grep -qx "uid=$(id -u anvil-build)" <<<"$log" || fail "the container step is not the build user: $(grep '^uid=' <<<"$log")"
for l in "shadow refused" "mount refused" "userns refused" "CapEff: 0000000000000000" "NoNewPrivs: 1"; do
	grep -qx "$l" <<<"$log" || fail "container containment: no '$l' in the step's output"
done
anvil artifact get "$J" test_arch -o "$T/ta" >/dev/null
[ "$(od -An -t u2 -j 18 -N 2 "$T/ta" | tr -d ' ')" = 183 ] || fail "emulated build is not aarch64"
[ "$(cat "$T/agent-a1/cache/cproj/$TARGET/mark")" = cached ] || fail "the cache dir was not bound at \$ANVIL_CACHE"
docker image inspect "$(grep -o 'anvil-rootfs:[^ ]*' <<<"$log" | head -n 1)" >/dev/null || fail "no imported image"
ok "emulated: imported rootfs image, run platform: $platform, gcc under qemu, network none, read-only root, build user, no capabilities, no mount, no user namespace, cache bound ($(($(date +%s) - t0)) s incl. a first import)"

# 2. Cross: the host's cross gcc, the rootfs at /sysroot; the test under qemu.
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
network: true
steps:
  - name: build
    run: make CC="$CC" && ./test_arch && ls /sys/class/net | wc -l
artifacts: [hello]
YML
commit_push cproj "cross in docker" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 300 job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 20; fail "cross job is $(job_state "$J")"; }
log=$(api "/api/v1/jobs/$J/log")
grep -q "runner: docker container, cross mode, image anvil-cross-root:1, network host" <<<"$log" ||
	fail "runner line: $(grep 'runner:' <<<"$log")"
grep -qx aarch64 <<<"$log" || fail "the cross-built test did not print aarch64"
anvil artifact get "$J" hello -o "$T/hello" >/dev/null
[ "$(od -An -t u2 -j 18 -N 2 "$T/hello" | tr -d ' ')" = 183 ] || fail "cross build is not aarch64"
ok "cross: host cross gcc with the rootfs at /sysroot in a container, network host on request"

# 2b. A Cross.toml image (here: the rootfs image re-tagged, as a team would
# docker build or docker load its own) replaces the rootfs image.
docker tag "$(grep -o 'anvil-rootfs:[^ ]*' <<<"$(api "/api/v1/jobs/$(first_job 1)/log")" | head -n 1)" local/anvil-test-img:1
cat >"$T/src/cproj/Cross.toml" <<'TOML'
[target.aarch64-unknown-linux-gnu]
image = "local/anvil-test-img:1"
TOML
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - run: uname -m; echo "CC=${CC:-unset}"
YML
commit_push cproj "Cross.toml image" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 20; fail "image job is $(job_state "$J")"; }
log=$(api "/api/v1/jobs/$J/log")
grep -q "runner: docker container, Cross.toml image mode, image local/anvil-test-img:1" <<<"$log" ||
	fail "runner line: $(grep 'runner:' <<<"$log")"
grep -qx aarch64 <<<"$log" && grep -qx "CC=unset" <<<"$log" || fail "the image job's output: $log"
rm "$T/src/cproj/Cross.toml"
ok "Cross.toml target image: the job runs in that image, without the recipe's environment"

# 3. Cancel: the running step's container is killed, not only the CLI.
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
mode: emulated
steps:
  - run: echo "step-$((40+2))-running"; sleep 300
YML
commit_push cproj "long" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 log_has "$J" step-42-running || fail "long step did not start"
[ "$(docker ps -q --filter "label=anvil.work=$T/agent-a1" | wc -l)" = 1 ] || fail "no container for the running step: $(docker ps -a --format "{{.Names}} {{.Status}} {{.Labels}}")"
anvil cancel "$J" >/dev/null || fail "cancel"
wait_until 30 job_is "$J" canceled || fail "job is $(job_state "$J")"
no_step_containers() { [ -z "$(docker ps -aq --filter "label=anvil.work=$T/agent-a1")" ]; }
wait_until 30 no_step_containers ||
	fail "the cancelled step's container still exists"
ok "cancel kills the step's container"

# 4. An agent killed mid-step leaves its container; the next start removes it.
echo "# again" >>"$T/src/cproj/.anvil.yml"
commit_push cproj "long again" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 log_has "$J" step-42-running || fail "long step did not start"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
orphan=$(docker ps -q --filter "label=anvil.work=$T/agent-a1")
[ "$(wc -w <<<"$orphan")" = 1 ] || fail "expected the orphaned container, got: $orphan"
anvil cancel "$J" >/dev/null || fail "cancel"
start_agent a1 --targets "$TARGET" --runner docker
wait_until 60 bash -c "! docker ps -aq --no-trunc | grep -q '^$orphan'" ||
	fail "the restarted agent did not remove the orphaned container $orphan"
grep -q "event=containers_reaped count=1" "$T/agent-a1.log" || fail "no containers_reaped event"
ok "a restarted agent removes the containers its killed predecessor left"

# 5. Bad input: an unknown --runner is refused with a clear message.
out=$("$B/anvil-agent" --runner lxc 2>&1) && fail "--runner lxc accepted"
grep -q "not bwrap, docker or podman" <<<"$out" || fail "unclear --runner error: $out"
ok "--runner lxc refused: $out"
