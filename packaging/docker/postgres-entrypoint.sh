#!/bin/sh
# The compose file's optional PostgreSQL (profile "postgres"): Debian's
# postgresql 15, data in the volume anvil-pg, no TCP at all: the server
# reaches it over the unix socket in the volume anvil-pg-run, which only
# the server container mounts (so the socket trusts whoever reaches it).
set -eu
PGBIN=/usr/lib/postgresql/15/bin
DATA=/var/lib/postgresql/data
RUN=/run/postgresql
mkdir -p "$DATA" "$RUN"
chown postgres:postgres "$DATA" "$RUN"
chmod 0700 "$DATA"
chmod 0755 "$RUN"
if [ ! -s "$DATA/PG_VERSION" ]; then
	runuser -u postgres -- "$PGBIN/initdb" -A trust -U postgres -E UTF8 -D "$DATA" >/dev/null
	# set up on a private socket: the shared one appears only when the
	# database is there to serve
	init=$(mktemp -d)
	chown postgres "$init"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -w -o "-c listen_addresses='' -k $init" start >/dev/null
	runuser -u postgres -- psql -h "$init" -U postgres -qc "CREATE ROLE anvil LOGIN" \
		-c "CREATE DATABASE anvil OWNER anvil"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -w -m fast stop >/dev/null
	rm -rf "$init"
fi
exec runuser -u postgres -- "$PGBIN/postgres" -D "$DATA" -c listen_addresses='' -k "$RUN" \
	-c unix_socket_permissions=0777
