#!/bin/bash
# The demo: installs what anvil needs, builds it, starts anvil-server and one
# anvil-agent, creates a sample git repository with a .anvil.yml, pushes it to
# a bare repository whose post-receive hook triggers the server, follows the
# cross build for aarch64 (built in a bubblewrap sandbox against an arm64
# rootfs, its test run under QEMU), and prints where to look.
# Usage: scripts/demo.sh [stop]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=${ANVIL_DEMO_DIR:-$ROOT/.demo}
PORT=${ANVIL_DEMO_PORT:-8080}
URL="http://127.0.0.1:$PORT"

stop_pidfile() {
	local f=$1
	if [ -f "$f" ]; then
		local pid
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	fi
}

demo_stop() {
	stop_pidfile "$D/agent.pid"
	stop_pidfile "$D/server.pid"
	if [ -d "$D/board" ] && [ -x qemu/board.sh ]; then
		qemu/board.sh stop "$D/board" >/dev/null 2>&1 || true
	fi
}

if [ "${1:-}" = stop ]; then
	demo_stop
	echo "demo stopped (state kept in $D; remove it to start afresh)"
	exit 0
fi

echo "== installing dependencies (Debian packages)"
scripts/deps.sh demo
echo "== building anvil"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export PATH="$ROOT/build:$PATH"

demo_stop
rm -rf "$D"
mkdir -p "$D"
echo "== starting anvil-server on $URL (data in $D/data)"
build/anvil-server --data "$D/data" --port "$PORT" >"$D/server.log" 2>&1 &
echo $! >"$D/server.pid"
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { cat "$D/server.log"; echo "server did not start" >&2; exit 1; }
grep 'generated' "$D/server.log" || true
export ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$D/data/admin.token"

echo "== starting anvil-agent (targets: aarch64; the arm64 rootfs is built once, ~2 min, then cached)"
# Steps run as the unprivileged user anvil-build: the agent's work directory
# must be reachable by it (a clone under /root is not).
AGENT_WORK=${ANVIL_DEMO_AGENT_WORK:-/var/lib/anvil-demo-agent}
rm -rf "$AGENT_WORK"
build/anvil-agent --server "$URL" --token-file "$D/data/agent.token" --name demo-agent --work "$AGENT_WORK" \
	--targets aarch64-unknown-linux-gnu --labels deploy=true >"$D/agent.log" 2>&1 &
echo $! >"$D/agent.pid"

echo "== starting a simulated aarch64 board (sshd chrooted into an arm64 rootfs on 127.0.0.71)"
BOARD_PORT=${ANVIL_DEMO_BOARD_PORT:-2271}
mkdir -p "$D/board"
qemu/board.sh start demo-board 127.0.0.71 "$BOARD_PORT" "$D/board" | sed 's/^/   /'
BOARD_KEY=$( . "$D/board/board.env" && echo "$BOARD_KEY")
BOARD_ROOT=$( . "$D/board/board.env" && echo "$BOARD_ROOT")
build/anvil board add plant-1 --host 127.0.0.71 --port "$BOARD_PORT" --user root --key "$BOARD_KEY" \
	--arch aarch64 --group field --trust | sed 's/^/   /'

echo "== creating the sample repository and its bare remote with a post-receive hook"
export GIT_AUTHOR_NAME="anvil demo" GIT_AUTHOR_EMAIL=demo@anvil.invalid
export GIT_COMMITTER_NAME="anvil demo" GIT_COMMITTER_EMAIL=demo@anvil.invalid
git init -q --bare -b main "$D/git/ems-sample.git"
cat >"$D/git/ems-sample.git/hooks/post-receive" <<HOOK
#!/bin/sh
while read old new ref; do
	[ "\$new" = 0000000000000000000000000000000000000000 ] && continue
	case "\$ref" in refs/tags/*) event=tag ;; *) event=push ;; esac
	ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$D/data/admin.token" \\
		"$ROOT/build/anvil" trigger ems-sample --url "$D/git/ems-sample.git" --ref "\$ref" --commit "\$new" --event "\$event"
done
HOOK
chmod +x "$D/git/ems-sample.git/hooks/post-receive"
git init -q -b main "$D/src/ems-sample"
cp -r tests/fixtures/cproj/. "$D/src/ems-sample/"
cat >"$D/src/ems-sample/.anvil.yml" <<'YML'
# Cross-build for the Rockchip boards (aarch64), run the unit test under QEMU.
targets: [aarch64-unknown-linux-gnu]
steps:
  - name: build
    run: make CC="$CC"
  - name: test
    run: ./test_arch && file hello
artifacts: [hello, test_arch]
# Then put hello on the field boards over SSH: atomic switch, health check,
# automatic rollback on failure.
deploy:
  - group: field
    on: {branch: main}
    install: /opt/ems
    files: [hello]
    restart: echo restarting ems
    health: ./current/hello | grep -q 'hello from aarch64'
    strategy: {canary: 1, batch: "50%"}
YML
git -C "$D/src/ems-sample" add -A
git -C "$D/src/ems-sample" commit -q -m "ems-sample: first version"
git -C "$D/src/ems-sample" remote add origin "$D/git/ems-sample.git"
echo "== git push (the hook triggers the pipeline)"
git -C "$D/src/ems-sample" push origin main 2>&1 | sed 's/^/   /'

P=$(anvil status --limit 1 | awk 'NR==2 {print $1}')
J=$(curl -s "$URL/api/v1/pipelines/$P" | jq -r '.jobs[0].id')
echo "== following job $J (anvil logs -f $J)"
anvil logs -f "$J"
DJ=""
for _ in $(seq 1 600); do
	DJ=$(curl -s "$URL/api/v1/pipelines/$P" | jq -r '.jobs[] | select(.kind=="deploy") | .id' | head -n 1)
	[ -n "$DJ" ] && break
	sleep 0.2
done
[ -n "$DJ" ] || { anvil show "$P"; echo "no deploy job was created" >&2; exit 1; }
echo "== following deploy job $DJ (anvil logs -f $DJ)"
anvil logs -f "$DJ"
anvil show "$P"
anvil artifacts "$J"
anvil deployment show "$DJ"
echo "== on the board: $(readlink "$BOARD_ROOT/opt/ems/current") is current; running it over ssh:"
ssh -q -i "$BOARD_KEY" -p "$BOARD_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	root@127.0.0.71 /opt/ems/current/hello | sed 's/^/   /'

cat <<EOF2

anvil is running:
  web UI / API     $URL/            (JSON API under $URL/api/v1/)
  admin token      $D/data/admin.token   (export ANVIL_TOKEN_FILE=$D/data/admin.token)
  server log       $D/server.log
  agent log        $D/agent.log
  sample repo      $D/src/ems-sample  (edit, commit, git push: a new pipeline starts)
  simulated board  root@127.0.0.71 port $BOARD_PORT (key $BOARD_KEY), files under $BOARD_ROOT
Try:  export PATH=$ROOT/build:\$PATH ANVIL_SERVER=$URL ANVIL_TOKEN_FILE=$D/data/admin.token
      anvil status; anvil show $P; anvil logs $J; anvil boards; anvil deployments
Stop: scripts/demo.sh stop
EOF2
