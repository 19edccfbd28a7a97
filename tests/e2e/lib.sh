# Shared fixture for end-to-end tests: real anvil-server and anvil-agent
# processes in a temp dir, on loopback ports picked at run time. Every daemon
# started here is killed by pid when the test exits, pass or fail.
set -euo pipefail

B=${ANVIL_BUILD_DIR:?set ANVIL_BUILD_DIR to the build directory}
S=${ANVIL_SOURCE_DIR:?set ANVIL_SOURCE_DIR to the source directory}
T=$(mktemp -d /tmp/anvil-e2e.XXXXXX)
# Steps run as the agent's build user (anvil-build): it must reach the
# agent's work directory under $T.
chmod 755 "$T"
PIDS=()
export PATH="$B:$PATH"
export GIT_AUTHOR_NAME=anvil-test GIT_AUTHOR_EMAIL=test@anvil.invalid
export GIT_COMMITTER_NAME=anvil-test GIT_COMMITTER_EMAIL=test@anvil.invalid

e2e_cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		echo "--- test failed (rc=$rc); logs from $T:" >&2
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "=== $f (last 40 lines)" >&2
			tail -n 40 "$f" >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap e2e_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# wait_until SECONDS CMD...: polls CMD until it succeeds or the deadline passes.
# 0 when directory $1 holds nothing (for wait_until: an argument like
# "$(ls DIR)" would be read once, before the first try).
dir_empty() { [ -z "$(ls -A "$1")" ]; }

wait_until() {
	local secs=$1
	shift
	local deadline=$(($(date +%s%N) + secs * 1000000000))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s%N)" -gt "$deadline" ]; then
			return 1
		fi
		sleep 0.05
	done
}

# start_server [extra options]: starts anvil-server on a free port (or $PORT
# when set, for restarts); sets SERVER_PID, PORT, URL; exports the CLI env.
# With ANVIL_TEST_STORE (a postgresql:// URL: the e2e-pg tests, tests/pg/run.sh)
# the server keeps its store there instead of $T/data/anvil.db.
start_server() {
	local store=()
	[ -n "${ANVIL_TEST_STORE:-}" ] && store=(--store "$ANVIL_TEST_STORE")
	rm -f "$T/data/port"
	"$B/anvil-server" --data "$T/data" --port "${PORT:-0}" "${store[@]}" "$@" >>"$T/server.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	wait_until 60 test -s "$T/data/port" || fail "server did not start"
	PORT=$(cat "$T/data/port")
	URL="http://127.0.0.1:$PORT"
	export ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token"
	wait_until 10 curl -sf "$URL/healthz" || fail "server not healthy"
}

# start_agent NAME [extra options]: sets AGENT_PID. Without --targets the
# agent serves the (sandboxed) host target only. (A test may wrap it and
# call start_agent_plain.)
start_agent() { start_agent_plain "$@"; }
start_agent_plain() {
	local name=$1
	shift
	local targets=(--targets host)
	case " $* " in *" --targets "*) targets=() ;; esac
	"$B/anvil-agent" --server "$URL" --token-file "$T/data/agent.token" --name "$name" \
		--work "$T/agent-$name" "${targets[@]}" "$@" >>"$T/agent-$name.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}

# step_dir AGENT REPO: the host directory a host-target step of REPO on
# AGENT sees as /cache/build ($ANVIL_CACHE). Steps are sandboxed: this is
# the one host place a test can share files with them through (gates,
# markers). Made here so it exists before the job.
step_dir() {
	local d="$T/agent-$1/cache/$2/host"
	mkdir -p "$d"
	chmod 755 "$T/agent-$1" "$T/agent-$1/cache" "$T/agent-$1/cache/$2"
	chown "$(id -u anvil-build):$(id -g anvil-build)" "$d"
	echo "$d"
}

# make_repo NAME: a working tree at $T/src/NAME and a bare repository at
# $T/git/NAME.git whose post-receive hook runs `anvil trigger`.
make_repo() {
	local name=$1
	mkdir -p "$T/src" "$T/git"
	git init -q -b main "$T/src/$name"
	git init -q --bare -b main "$T/git/$name.git"
	cat >"$T/git/$name.git/hooks/post-receive" <<HOOK
#!/bin/sh
# anvil: every pushed ref (but deletions) starts a pipeline.
while read old new ref; do
	[ "\$new" = 0000000000000000000000000000000000000000 ] && continue
	case "\$ref" in refs/tags/*) event=tag ;; *) event=push ;; esac
	ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token" \
		"$B/anvil" trigger "$name" --url "$T/git/$name.git" --ref "\$ref" --commit "\$new" --event "\$event"
done
HOOK
	chmod +x "$T/git/$name.git/hooks/post-receive"
	git -C "$T/src/$name" remote add origin "$T/git/$name.git"
}

# push_file NAME FILE CONTENT...: commits and pushes; prints the push output.
commit_push() {
	local name=$1 msg=$2
	git -C "$T/src/$name" add -A
	git -C "$T/src/$name" commit -q -m "$msg"
	git -C "$T/src/$name" push -q origin HEAD:refs/heads/main 2>&1
}

api() {
	curl -s "$URL$1"
}

admin_api() {
	local method=$1 path=$2
	shift 2
	curl -s -X "$method" -H "Authorization: Bearer $(cat "$T/data/admin.token")" "$URL$path" "$@"
}

job_state() {
	api "/api/v1/jobs/$1" | jq -r .state
}

pipeline_state() {
	api "/api/v1/pipelines/$1" | jq -r .state
}

job_is() {
	[ "$(job_state "$1")" = "$2" ]
}

pipeline_is() {
	[ "$(pipeline_state "$1")" = "$2" ]
}

latest_pipeline() {
	api "/api/v1/pipelines?limit=1" | jq -r '.pipelines[0].id // empty'
}

first_job() {
	api "/api/v1/pipelines/$1" | jq -r '.jobs[0].id'
}

# grep reads the whole log (no -q): quitting at the first match can leave
# curl writing into a closed pipe, and pipefail then fails the check.
log_has() {
	api "/api/v1/jobs/$1/log" | grep -F -- "$2" >/dev/null
}

# db SQL: runs SQL on the server's store (SQLite, or PostgreSQL under
# ANVIL_TEST_STORE; there "PRAGMA integrity_check" asks whether it answers).
db() {
	if [ -z "${ANVIL_TEST_STORE:-}" ]; then
		sqlite3 "$T/data/anvil.db" "$@"
	elif [ "$1" = "PRAGMA integrity_check" ]; then
		[ "$(psql "$ANVIL_TEST_STORE" -Atqc "SELECT 'ok'")" = ok ] && echo ok
	else
		psql "$ANVIL_TEST_STORE" -Atqc "$1"
	fi
}

# docker_engine DATA_ROOT: the running Docker engine, else a dockerd of the
# test's own (socket and exec root under /run, no bridge or iptables, images
# kept in DATA_ROOT across runs); exports DOCKER_HOST for it and sets
# DOCKERD_PID (empty when an engine was already running). Prints a skip line
# and returns 1 when none can start. Stop it with docker_engine_stop.
DOCKERD_PID=
DOCKERD_RUN=/run/anvil-dockerd-$$
docker_engine() {
	local docker=${DOCKER:-docker}
	if ! $docker info >/dev/null 2>&1; then
		mkdir -p "$DOCKERD_RUN" "$1"
		export DOCKER_HOST="unix://$DOCKERD_RUN/docker.sock"
		dockerd --host "$DOCKER_HOST" --pidfile "$DOCKERD_RUN/docker.pid" --exec-root "$DOCKERD_RUN/exec" \
			--data-root "$1" --iptables=false --ip-masq=false --bridge=none >"$T/dockerd.log" 2>&1 &
		DOCKERD_PID=$!
		wait_until 60 $docker info ||
			{ echo "skip: cannot start dockerd here: $(tail -n 3 "$T/dockerd.log")"; return 1; }
	fi
	echo "  engine: $($docker version -f '{{.Server.Version}}') ($([ -n "$DOCKERD_PID" ] && echo "started by this test" || echo "already running"))"
}

# Stops the dockerd docker_engine started (nothing when it found one
# running), and what it leaves mounted (its default network namespace).
docker_engine_stop() {
	[ -n "$DOCKERD_PID" ] || return 0
	kill "$DOCKERD_PID" 2>/dev/null || true
	for _ in $(seq 1 200); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$DOCKERD_PID" 2>/dev/null || true
	awk -v d="$DOCKERD_RUN/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
	rm -rf "$DOCKERD_RUN"
	DOCKERD_PID=
}
