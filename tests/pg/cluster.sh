#!/bin/sh
# A throw-away PostgreSQL cluster for tests, from Debian's postgresql 15:
# unix socket only (in DIR), trust authentication, no fsync.
#   cluster.sh start DIR   creates DIR, starts the cluster, creates database
#                          anvil and prints its URL
#   cluster.sh stop DIR    stops the cluster DIR holds (its own pg_ctl, by the
#                          pid file in DIR) and removes DIR
# PostgreSQL refuses to run as root: as root, it runs as user postgres.
set -eu
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [ -z "$dir" ] || { [ "$cmd" != start ] && [ "$cmd" != stop ]; }; then
	echo "usage: $0 start|stop DIR" >&2
	exit 2
fi

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "$cmd" in
start)
	if [ -e "$dir" ]; then
		echo "cluster.sh: $dir exists (stop it first)" >&2
		exit 1
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	chmod 0700 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	as_pg "$PGBIN/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-k $dir -c listen_addresses='' -c fsync=off -c max_connections=50" start >/dev/null || {
		cat "$dir/server.log" >&2
		exit 1
	}
	as_pg "$PGBIN/createdb" -h "$dir" -U postgres anvil
	echo "postgresql:///anvil?host=$dir&user=postgres"
	;;
stop)
	[ -e "$dir" ] || exit 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
esac
