#!/bin/bash
# Packaging: the systemd units pass `systemd-analyze verify` (pointed at the
# built binaries), a broken unit does not, and the settings the units read
# from /etc/default are checked by `anvil-server --check-config`.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || { echo "skip: systemd-analyze not installed"; exit 0; }
P="$S/packaging"
mkdir -p "$T/units"
for u in anvil-server anvil-agent; do
	# The units name /usr/bin/<binary>; verify checks that it exists and is executable.
	sed "s|/usr/bin/|$B/|g" "$P/systemd/$u.service" >"$T/units/$u.service"
done
systemd-analyze verify "$T/units/anvil-server.service" "$T/units/anvil-agent.service" >"$T/verify.log" 2>&1 ||
	{ cat "$T/verify.log" >&2; fail "systemd-analyze verify failed"; }
[ ! -s "$T/verify.log" ] || { cat "$T/verify.log" >&2; fail "systemd-analyze verify printed warnings"; }
ok "systemd-analyze verify: anvil-server.service and anvil-agent.service are clean"

# The verifier is not a no-op: a misspelt directive and a missing binary are reported.
sed 's/^Restart=on-failure/Restart=sometimes/; s|^ExecStart=.*|ExecStart=/nonexistent/anvil-server|' \
	"$T/units/anvil-server.service" >"$T/units/broken.service"
if systemd-analyze verify "$T/units/broken.service" >"$T/broken.log" 2>&1 && [ ! -s "$T/broken.log" ]; then
	fail "a broken unit passed systemd-analyze verify"
fi
grep -q "restart specifier" "$T/broken.log" || fail "bad Restart= not reported: $(cat "$T/broken.log")"
ok "a broken unit is reported"

# Every variable the units and the default files name is an option the
# server knows (ANVIL_<OPTION>), or one the agent unit expands itself.
vars=$(grep -o '^#*ANVIL_[A-Z_]*=' "$P/default/anvil-server" | tr -d '#=' | sort -u)
for v in $vars; do
	case $v in ANVIL_ADMIN_TOKEN | ANVIL_AGENT_TOKEN) continue ;; esac
	opt=$(echo "${v#ANVIL_}" | tr 'A-Z_' 'a-z-')
	anvil-server --help | grep -q -- "--$opt " || fail "/etc/default/anvil-server names $v, but anvil-server has no --$opt"
done
for v in $(grep -ho '^#*ANVIL_[A-Z_]*' "$P/default/anvil-agent" | tr -d '#' | sort -u); do
	grep -q "\${$v}\|\$$v" "$P/systemd/anvil-agent.service" || fail "/etc/default/anvil-agent names $v, the unit does not use it"
done
ok "every ANVIL_* variable in /etc/default/anvil-{server,agent} is used"

# --check-config with the shipped defaults file uncommented (its sample values).
sed -n 's/^#\(ANVIL_[A-Z_]*=..*\)$/\1/p' "$P/default/anvil-server" >"$T/server.env"
grep -q ANVIL_PORT "$T/server.env" || fail "no sample values in the defaults file"
(set -a && . "$T/server.env" && ANVIL_DATA="$T/data" anvil-server --check-config) >"$T/check.out" 2>&1 ||
	fail "--check-config refused the shipped sample settings: $(cat "$T/check.out")"
grep -q "configuration ok" "$T/check.out" || fail "--check-config: $(cat "$T/check.out")"
[ ! -e "$T/data" ] || fail "--check-config created the data directory"
ok "--check-config accepts the sample settings: $(cat "$T/check.out")"

# A bad setting in the environment stops the unit before it starts (ExecStartPre), exit 2.
for bad in ANVIL_PORT=99999 ANVIL_LISTEN=localhost ANVIL_LOG_CAP=lots ANVIL_READ_AUTH=maybe; do
	rc=0
	env "$bad" anvil-server --check-config >"$T/bad.out" 2>&1 || rc=$?
	[ $rc = 2 ] || fail "$bad: --check-config exit $rc, want 2"
	head -n1 "$T/bad.out" | grep -q "ANVIL_\|--" || fail "$bad: no reason given: $(head -n1 "$T/bad.out")"
done
ok "--check-config rejects bad settings with exit 2: $(env ANVIL_PORT=99999 anvil-server --check-config 2>&1 | head -n1)"
