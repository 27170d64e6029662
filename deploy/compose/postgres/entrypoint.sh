#!/bin/bash
# A PostgreSQL server in the volume at $PGDATA: made on first start with the role POSTGRES_USER
# (default cascade, password POSTGRES_PASSWORD, required) owning the database POSTGRES_DB (default
# cascade); clients over TCP authenticate with scram-sha-256. Runs as the postgres user.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (compose: CASCADE_DB_PASSWORD)}"
user=${POSTGRES_USER:-cascade}
db=${POSTGRES_DB:-cascade}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

install -d -o postgres -g postgres -m 0700 "$PGDATA"
install -d -o postgres -g postgres -m 2775 /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  as_postgres "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  as_postgres "$bin/psql" -q -v ON_ERROR_STOP=1 -v user="$user" -v pw="$POSTGRES_PASSWORD" -v db="$db" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
SQL
  as_postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
