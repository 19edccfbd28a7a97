#!/bin/bash
# Libraries bound at run time (issue 17, common/dynlib.h): each process maps
# libcurl, libgit2, libpq and libssh2 only once it does what needs them, and
# a library that cannot be loaded is a clear error, never a crash.
. "$(dirname "$0")/lib.sh"

LIBDIR=$(dirname "$(ldconfig -p | awk '/libgit2\.so\.[0-9]/ {print $NF; exit}')")
GIT2=$(ldconfig -p | awk '/libgit2\.so\.[0-9]/ {print $NF; exit}')
# libcurl's GnuTLS flavour, as libmicrohttpd's, else libcurl4 (CMakeLists.txt)
CURL_GNUTLS=$LIBDIR/libcurl-gnutls.so.4
CURL_OPENSSL=$LIBDIR/libcurl.so.4
EVENT=$(ldconfig -p | awk '/libevent-2\.1\.so\.7 / {print $NF; exit}')
[ -f "$EVENT" ] || fail "libevent not found by ldconfig"
[ -f "$GIT2" ] && [ -f "$CURL_GNUTLS" ] && [ -f "$CURL_OPENSSL" ] || fail "libgit2 or libcurl not found by ldconfig"
# maps PID LIB: 1 when process PID has a file named like LIB mapped.
maps() { grep -q "/$2" "/proc/$1/maps" && echo 1 || echo 0; }
# hide LIB[,LIB...] CMD...: runs CMD with each LIB replaced by an empty
# file (an absent or broken library) in a private mount namespace.
hide() {
	local libs=() l
	for l in ${1//,/ }; do libs+=(--ro-bind /dev/null "$l"); done
	shift
	# --die-with-parent: the cleanup kills bwrap (its pid is the one
	# recorded); the program must go with it.
	bwrap --die-with-parent --dev-bind / / "${libs[@]}" "$@"
}

start_server --log-level info
# libcrypto/libssl too: the project's own crypto is nettle's (common/crypto.c).
for l in libcurl libgit2 libpq libssh2 libcrypto libssl; do
	[ "$(maps "$SERVER_PID" $l)" = 0 ] || fail "an idle server maps $l"
done
ok "an idle server maps none of libcurl, libgit2, libpq, libssh2, libcrypto, libssl"

n=$(LD_DEBUG=files anvil --help 2>&1 >/dev/null | grep -Ec "file=lib(curl|event)" || true)
[ "$n" = 0 ] || fail "anvil --help loads libcurl or libevent"
dbg=$(LD_DEBUG=files anvil status 2>&1 >/dev/null)
n=$(grep -c "file=libevent" <<<"$dbg" || true)
[ "$n" -ge 1 ] || fail "anvil status did not load libevent (LD_DEBUG saw $n)"
n=$(grep -c "file=libcurl" <<<"$dbg" || true)
[ "$n" = 0 ] || fail "anvil status over plain HTTP loaded libcurl"
ok "the CLI loads libevent (not libcurl) for a plain-HTTP request, nothing for --help"

# Without libevent the CLI's requests go through libcurl, and without
# libcurl's GnuTLS flavour through libcurl4.
out=$(hide "$EVENT" "$B/anvil" status 2>&1) || fail "the CLI without libevent failed: $out"
n=$(hide "$EVENT,$CURL_GNUTLS" env LD_DEBUG=files "$B/anvil" status 2>&1 >/dev/null | grep -c "file=libcurl.so.4 " || true)
[ "$n" -ge 1 ] || fail "without libevent and libcurl-gnutls the CLI did not fall back to libcurl.so.4"
ok "without libevent the CLI uses libcurl, and without libcurl's GnuTLS flavour libcurl4"
out=$(hide "$EVENT,$CURL_GNUTLS,$CURL_OPENSSL" "$B/anvil" status 2>&1) && fail "the CLI without libcurl succeeded: $out"
case $out in *"cannot load libcurl-gnutls.so.4 libcurl.so.4"*) ;; *) fail "the CLI without libcurl said: $out" ;; esac
ok "the CLI without libcurl: $out"

make_repo demo
printf 'steps:\n  - run: echo built\n' >"$T/src/demo/.anvil.yml"
commit_push demo first >/dev/null
start_agent a1
P1=$(latest_pipeline)
J1=$(first_job "$P1")
wait_until 60 job_is "$J1" success || fail "job is $(job_state "$J1")"
# The server's libgit2 work runs in its git helper (server/gitproc): the
# server itself maps none of libgit2's tree, the helper (its child, until
# it has been idle for a while) does.
for l in libgit2 libssh2 libcrypto libmbed libcurl libpq; do
	[ "$(maps "$SERVER_PID" $l)" = 0 ] || fail "the server maps $l after a push (no forge, SQLite)"
done
HELPER=$(pgrep -P "$SERVER_PID" -f -- '--git-helper' | head -1)
[ -n "$HELPER" ] || fail "no git helper runs under the server after a push"
[ "$(maps "$HELPER" libgit2)" = 1 ] || fail "the git helper read a pipeline file without libgit2 mapped?"
# It gets the server's environment without anvil's own settings (tokens).
tr '\0' '\n' <"/proc/$SERVER_PID/environ" | grep -q '^ANVIL_' || fail "precondition: no ANVIL_ variable in the server's environment"
leak=$(tr '\0' '\n' <"/proc/$HELPER/environ" | grep '^ANVIL_' | grep -v '^ANVIL_GIT_HELPER=1$' || true)
[ -z "$leak" ] || fail "the git helper inherited: $leak"
# The agent's checkout ran in its own git helper, as the server's reads do.
for l in libgit2 libssh2 libcrypto libmbed; do
	[ "$(maps "$AGENT_PID" $l)" = 0 ] || fail "the agent maps $l after a checkout"
done
AHELPER=$(pgrep -P "$AGENT_PID" -f -- '--git-helper' | head -1)
[ -n "$AHELPER" ] || fail "no git helper runs under the agent after a job"
[ "$(maps "$AHELPER" libgit2)" = 1 ] || fail "the agent's git helper checked out without libgit2 mapped?"
[ "$(maps "$AGENT_PID" libpq)" = 0 ] || fail "the agent maps libpq"
# Its requests to a plain-HTTP server go over libevent: no libcurl until
# an artifact moves or a server is https.
[ "$(maps "$AGENT_PID" libevent)" = 1 ] || fail "the agent talks to the server without libevent?"
[ "$(maps "$AGENT_PID" libcurl)" = 0 ] || fail "the agent maps libcurl for a job without artifacts"
ok "after a push: neither the server nor the agent maps libgit2, libssh2, libcrypto or mbedTLS (their git helpers map libgit2); no libcurl or libpq; the agent talks over libevent"

# A server whose libgit2 cannot be loaded records a push as an error
# pipeline (never lost) and stays up (the package depends on libgit2: this is a broken install).
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
rm -f "$T/data/port"
hide "$GIT2" "$B/anvil-server" --data "$T/data" --port 0 >>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 60 test -s "$T/data/port" || fail "server did not start without libgit2"
PORT=$(cat "$T/data/port")
URL="http://127.0.0.1:$PORT"
export ANVIL_SERVER="$URL"
C=$(git -C "$T/src/demo" rev-parse HEAD)
out=$(anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main --commit "$C" --delivery nogit 2>&1) ||
	fail "trigger without libgit2: $out"
P2=$(latest_pipeline)
[ "$(pipeline_state "$P2")" = error ] || fail "pipeline without libgit2 is $(pipeline_state "$P2"): $(api "/api/v1/pipelines/$P2")"
grep -q "event=pipeline_error pipeline=$P2 error=\".*cannot load libgit2" "$T/server.log" ||
	fail "the pipeline's error does not name libgit2: $(grep pipeline_error "$T/server.log")"
curl -sf "$URL/healthz" >/dev/null || fail "the server died after a trigger without libgit2"
ok "a server without libgit2 records the push as an error pipeline naming the library, and stays up"
