#!/bin/bash
# The docker-compose stack: images built from this tree (base: a debootstrap
# bookworm brought in with `docker import`, no registry), `up` starts the
# server and an agent on the host's network (loopback), a pushed commit
# (served by `git daemon` on loopback) is cross-built for aarch64 inside the
# agent container, its artifact downloads from the host, and after
# `down` + `up` the pipeline, its log and its artifacts are still there.
# Starts its own dockerd when no engine answers (stopped after); skips when
# it cannot. Minutes (image builds): runs only with ANVIL_TEST_SHIP=1.
. "$(dirname "$0")/lib.sh"

[ "${ANVIL_TEST_SHIP:-0}" = 1 ] || { echo "skip: set ANVIL_TEST_SHIP=1 (builds Docker images; minutes)"; exit 0; }
if grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
	echo "skip: packaging is tested from the normal build, not the sanitizer build"
	exit 0
fi
DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker # Debian's client, same version as its engine
for tool in "$DOCKER" docker-compose dockerd debootstrap git; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed (docker.io, docker-compose)"; exit 0; }
done
export DOCKER
t0=$(date +%s)

# An engine: the running one, else our own dockerd (its image cache is kept
# under /var/cache/anvil/ship/docker).
PROJ="anvilship$$"
COMPOSE=(docker-compose -p "$PROJ" --env-file "$T/compose.env" -f "$S/docker-compose.yml")
ship_cleanup() {
	if [ -n "${COMPOSE_UP:-}" ]; then
		"${COMPOSE[@]}" down -v --remove-orphans >"$T/down-cleanup.log" 2>&1 || true
	fi
	docker_engine_stop
}
trap 'rc=$?; set +e; ship_cleanup; (exit $rc); e2e_cleanup' EXIT  # set +e: (exit rc) must not end the trap
docker_engine /var/cache/anvil/ship/docker || exit 0

# Images.
t1=$(date +%s)
"$S/packaging/image.sh" base >"$T/image.log" 2>&1 || fail "base image: $(tail -n 5 "$T/image.log")"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
cat >"$T/compose.env" <<ENV
ANVIL_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ANVIL_AGENT_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ANVIL_PORT=$PORT
ANVIL_TARGETS=aarch64-unknown-linux-gnu
ANVIL_CACHE=/var/cache/anvil
ANVIL_AGENT_NAME=compose-agent
ANVIL_IMAGE_TAG=test
ANVIL_CFLAGS=${ANVIL_SHIP_CFLAGS:-}
ENV
"${COMPOSE[@]}" build >"$T/compose-build.log" 2>&1 || fail "docker-compose build: $(tail -n 15 "$T/compose-build.log")"
# Earlier builds' images, now untagged, would pile up in the cached data root.
$DOCKER image prune -f >/dev/null 2>&1 || true
sizes=$($DOCKER image inspect -f '{{index .RepoTags 0}} {{.Size}}' anvil-base:bookworm anvil-server:test anvil-agent:test |
	awk '{printf "%s %d MB; ", $1, $2 / 1000000}')
ok "images built in $(($(date +%s) - t1)) s: $sizes"

# Up.
t2=$(date +%s)
COMPOSE_UP=1
"${COMPOSE[@]}" up -d >"$T/compose-up.log" 2>&1 || fail "docker-compose up: $(tail -n 10 "$T/compose-up.log")"
mkdir -p "$T/data"
sed -n 's/^ANVIL_ADMIN_TOKEN=//p' "$T/compose.env" >"$T/data/admin.token"
export ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token"
compose_logs() { "${COMPOSE[@]}" logs --no-color >"$T/compose.log" 2>&1 || true; }
wait_until 60 curl -sf "$URL/healthz" || { compose_logs; fail "server container not healthy on $URL"; }
wait_until 600 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[] | select(.name==\"compose-agent\") | .labels | index(\"target=aarch64-unknown-linux-gnu\")'" ||
	{ compose_logs; fail "agent container did not register with target=aarch64-unknown-linux-gnu"; }
ok "docker-compose up: server healthy and agent registered in $(($(date +%s) - t2)) s"

# A repository served over git:// on loopback, so that both containers
# fetch it the way they would fetch a forge.
mkdir -p "$T/git"
GITPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
git daemon --reuseaddr --export-all --base-path="$T/git" --listen=127.0.0.1 --port="$GITPORT" "$T/git" >"$T/git-daemon.log" 2>&1 &
PIDS+=($!)
make_repo cproj
cat >"$T/git/cproj.git/hooks/post-receive" <<HOOK
#!/bin/sh
while read old new ref; do
	[ "\$new" = 0000000000000000000000000000000000000000 ] && continue
	ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token" \
		"$B/anvil" trigger cproj --url "git://127.0.0.1:$GITPORT/cproj.git" --ref "\$ref" --commit "\$new" --event push
done
HOOK
cp -r "$S/tests/fixtures/cproj/." "$T/src/cproj/"
cat >"$T/src/cproj/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
steps:
  - name: build
    run: make CC="$CC"
  - name: test
    run: ./test_arch | tee arch.txt
artifacts: [hello, arch.txt]
YML
wait_until 10 bash -c "git ls-remote git://127.0.0.1:$GITPORT/cproj.git" || fail "git daemon not serving"
t3=$(date +%s)
commit_push cproj "built in the agent container" >"$T/push.log" || fail "push: $(cat "$T/push.log")"
P=$(latest_pipeline)
[ -n "$P" ] || fail "no pipeline after the push: $(cat "$T/push.log")"
wait_until 900 bash -c "s=\$(curl -s $URL/api/v1/pipelines/$P | jq -r .state); [ \"\$s\" != queued ] && [ \"\$s\" != running ]" ||
	fail "pipeline $P still $(pipeline_state "$P")"
J=$(first_job "$P")
[ "$(pipeline_state "$P")" = success ] || { api "/api/v1/jobs/$J/log" | tail -n 30 >&2; compose_logs; fail "pipeline $P is $(pipeline_state "$P")"; }
log_has "$J" "cross mode" || fail "not built in cross mode"
anvil artifact get "$J" hello -o "$T/hello" >/dev/null || fail "artifact download"
[ "$(od -An -t u2 -j 18 -N 2 "$T/hello" | tr -d ' ')" = 183 ] || fail "hello is not an aarch64 ELF"
anvil artifact get "$J" arch.txt -o "$T/arch.txt" >/dev/null
[ "$(cat "$T/arch.txt")" = aarch64 ] || fail "test ran as $(cat "$T/arch.txt")"
ok "pushed commit built for aarch64 in the agent container in $(($(date +%s) - t3)) s; hello (ELF aarch64) downloaded; test ran as aarch64"

# down + up: pipelines, logs and artifacts live in the anvil-data volume.
api "/api/v1/jobs/$J/log" >"$T/log-before"
sha_before=$(sha256sum <"$T/hello")
t4=$(date +%s)
"${COMPOSE[@]}" down >"$T/compose-down.log" 2>&1 || fail "docker-compose down: $(tail -n 5 "$T/compose-down.log")"
[ -z "$($DOCKER ps -q --filter "label=com.docker.compose.project=$PROJ")" ] || fail "containers left after down"
if curl -sf "$URL/healthz" >/dev/null 2>&1; then fail "server still answers after down"; fi
"${COMPOSE[@]}" up -d >>"$T/compose-up.log" 2>&1 || fail "second docker-compose up"
wait_until 60 curl -sf "$URL/healthz" || { compose_logs; fail "server not healthy after down/up"; }
ok "down + up in $(($(date +%s) - t4)) s"
[ "$(pipeline_state "$P")" = success ] || fail "pipeline $P is $(pipeline_state "$P") after down/up"
api "/api/v1/jobs/$J/log" >"$T/log-after"
cmp -s "$T/log-before" "$T/log-after" || fail "the job log changed across down/up"
rm -f "$T/hello"
anvil artifact get "$J" hello -o "$T/hello" >/dev/null || fail "artifact gone after down/up"
[ "$(sha256sum <"$T/hello")" = "$sha_before" ] || fail "artifact changed across down/up"
wait_until 120 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[] | select(.name==\"compose-agent\")'" || fail "agent did not come back"
ok "after down/up: pipeline $P success, log ($(wc -c <"$T/log-after") B) and artifact unchanged; whole test $(($(date +%s) - t0)) s"
