#!/bin/bash
# The server and the agent under valgrind memcheck for one whole job: push →
# checkout → step → log → artifact upload → success → artifact download,
# then both stopped with SIGTERM so memcheck runs its leak check at a clean
# exit. Fails on any memcheck error and on any definitely lost block (exit
# code 99 from --error-exitcode). tests/e2e/valgrind.supp suppresses only
# third-party noise, each entry says why. Skipped for a sanitizer build
# (ASan and valgrind cannot share a process) or without valgrind.
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null; then
	echo "skip: valgrind not installed"
	exit 0
fi
if grep -q '^ANVIL_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
	echo "skip: $B is a sanitizer build"
	exit 0
fi

# Wrappers with the real names, so lib.sh's start_* run them under valgrind
# (exec: the pid lib.sh records is valgrind's, which is the program's).
W=$T/vg-bin
mkdir -p "$W"
for prog in anvil-server anvil-agent; do
	cat >"$W/$prog" <<SH
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
	--show-leak-kinds=definite --track-fds=no --num-callers=30 \\
	--suppressions="$S/tests/e2e/valgrind.supp" --log-file="$T/vg-$prog.%p.txt" "$B/$prog" "\$@"
SH
	chmod +x "$W/$prog"
done
ln -s "$B/anvil" "$W/anvil"
REAL_B=$B
B=$W

# Under valgrind start-up is slower than lib.sh's 10 s allow: wait here.
rm -f "$T/data/port"
mkdir -p "$T/data"
"$B/anvil-server" --data "$T/data" --port 0 --lease 30 >>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 60 test -s "$T/data/port" || fail "server did not start under valgrind"
PORT=$(cat "$T/data/port")
URL="http://127.0.0.1:$PORT"
export ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token"
wait_until 30 curl -sf "$URL/healthz" || fail "server not healthy"

start_agent v1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
artifacts:
  - out/app.bin
steps:
  - name: build
    run: |
      mkdir -p out
      for i in 1 2 3; do echo line-$i; done
      head -c 300000 /dev/urandom >out/app.bin
      sha256sum out/app.bin
YML
commit_push demo "valgrind" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 120 job_is "$J" success || fail "job is $(job_state "$J") under valgrind"
log_has "$J" line-3 || fail "log incomplete"
want=$(api "/api/v1/jobs/$J/log" | grep 'out/app.bin' | grep -oE '^[0-9a-f]{64}' | head -n 1)
"$REAL_B/anvil" artifact get "$J" out/app.bin -o "$T/app.bin" >/dev/null || fail "artifact download"
[ "$(sha256sum "$T/app.bin" | cut -d' ' -f1)" = "$want" ] || fail "downloaded artifact differs"
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P")"
ok "push → success → artifact download with server and agent under memcheck"

# SIGTERM both; each must exit 0 (99 = memcheck found errors or definite leaks).
stop() { # stop PID NAME
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	if [ "$rc" != 0 ]; then
		for f in "$T"/vg-"$2".*.txt; do
			echo "=== $f" >&2
			cat "$f" >&2
		done
		fail "$2 exited $rc under valgrind"
	fi
}
stop "$AGENT_PID" anvil-agent
stop "$SERVER_PID" anvil-server
errs=$(cat "$T"/vg-*.txt | grep -c 'ERROR SUMMARY: [1-9]' || true)
[ "$errs" = 0 ] || fail "memcheck reported errors: $(cat "$T"/vg-*.txt)"
ok "server and agent exit cleanly on SIGTERM: no memcheck error, no definite leak"
