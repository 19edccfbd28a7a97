#!/bin/bash
# Web UI sessions are server-side (issue 13): the cookie is a random value
# whose sha256 the server keeps with an expiry. Two logins get two cookies;
# logout ends its session at once (the old cookie, replayed, is sent to the
# login page and cannot post a form); a form from a foreign Origin is refused
# even with the right cookie and CSRF token; `anvil sessions revoke`
# (DELETE /api/v1/sessions, admin) ends every session.
. "$(dirname "$0")/lib.sh"

# (not start_server: its health check reads /healthz without a token)
"$B/anvil-server" --data "$T/data" --port 0 --read-auth true >>"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 60 test -s "$T/data/port" || fail "server did not start"
URL="http://127.0.0.1:$(cat "$T/data/port")"
export ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token"
wait_until 10 curl -sf -o /dev/null "$URL/login" || fail "server not answering"

login() { # JAR (headers in JAR.h)
	curl -s -o /dev/null -D "$1.h" -c "$1" --data-urlencode "token=$(cat "$T/data/admin.token")" "$URL/login"
}
cookie_of() { awk '$6 == "anvil_session" { print $7 }' "$1"; }
# page COOKIE → "<status> <redirect>" of the agents page with that cookie value
page() { curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H "Cookie: anvil_session=$1" "$URL/agents"; }
csrf_of() { # COOKIE → the CSRF token of the logout form
	curl -s -H "Cookie: anvil_session=$1" "$URL/agents" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 |
		sed 's/.*value="\([0-9a-f]*\)"/\1/'
}
# logout COOKIE CSRF [ORIGIN] → status
logout() {
	curl -s -o /dev/null -w '%{http_code}' -H "Cookie: anvil_session=$1" ${3:+-H "Origin: $3"} \
		--data-urlencode "csrf=$2" "$URL/logout"
}

login "$T/a"
login "$T/b"
A=$(cookie_of "$T/a")
Bc=$(cookie_of "$T/b")
[ -n "$A" ] && [ -n "$Bc" ] || fail "login set no cookie"
[ "$A" != "$Bc" ] || fail "two logins got the same cookie $A"
grep -qi '^set-cookie: anvil_session=[0-9a-f]\{64\}; Path=/; Max-Age=[0-9]*; HttpOnly; SameSite=Strict' "$T/a.h" ||
	fail "the session cookie lost its attributes: $(grep -i set-cookie "$T/a.h")"
[ "$(page "$A")" = "200 " ] || fail "session A does not read: $(page "$A")"
[ "$(page "$Bc")" = "200 " ] || fail "session B does not read: $(page "$Bc")"
[ "$(db "SELECT count(*) FROM ui_sessions WHERE id_sha256 = '$A'")" = 0 ] || fail "the store holds the cookie value"
HA=$(printf '%s' "$A" | sha256sum | cut -d' ' -f1)
[ "$(db "SELECT count(*) FROM ui_sessions WHERE id_sha256 = '$HA'")" = 1 ] || fail "the store lacks A's hash"
ok "two logins get two cookies, stored as their sha256 only"

CA=$(csrf_of "$A")
[ -n "$CA" ] || fail "no CSRF token on the page"
r=$(logout "$A" "$CA" "https://evil.example")
[ "$r" = 403 ] || fail "logout from a foreign Origin answered $r"
[ "$(page "$A")" = "200 " ] || fail "a refused foreign form ended the session"
r=$(logout "$A" "0000$CA")
[ "$r" = 403 ] || fail "logout with a wrong CSRF token answered $r"
ok "a form from a foreign Origin or with a wrong CSRF token is refused (403)"

r=$(logout "$A" "$CA" "$URL")
[ "$r" = 303 ] || fail "logout answered $r"
[ "$(page "$A")" = "303 $URL/login?next=/agents" ] || fail "the old cookie after logout: $(page "$A")"
r=$(logout "$A" "$CA" "$URL")
[ "$r" = 403 ] || fail "the old cookie posted a form after logout: $r"
r=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: anvil_session=$A" "$URL/jobs/1/events")
[ "$r" = 401 ] || fail "the old cookie reads the event stream: $r"
[ "$(page "$Bc")" = "200 " ] || fail "logout of A ended B"
ok "after logout the old cookie is sent to the login page (401 on the stream) and cannot post; B lives on"

login "$T/c"
C=$(cookie_of "$T/c")
r=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/api/v1/sessions")
[ "$r" = 401 ] || fail "revoke-all without the admin token answered $r"
[ "$(page "$C")" = "200 " ] || fail "session C does not read"
out=$(anvil sessions revoke) || fail "anvil sessions revoke: $out"
[ "$out" = "2 web session(s) ended" ] || fail "sessions revoke said: $out"
[ "$(page "$Bc")" = "303 $URL/login?next=/agents" ] || fail "B survived revoke-all: $(page "$Bc")"
[ "$(page "$C")" = "303 $URL/login?next=/agents" ] || fail "C survived revoke-all: $(page "$C")"
[ "$(db "SELECT count(*) FROM ui_sessions")" = 0 ] || fail "sessions left after revoke-all"
login "$T/d"
[ "$(page "$(cookie_of "$T/d")")" = "200 " ] || fail "a login after revoke-all does not work"
ok "anvil sessions revoke (DELETE /api/v1/sessions, admin only) ends every session; a new login works"
