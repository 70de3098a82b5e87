#!/bin/bash
# A throwaway PostgreSQL cluster for the tests, listening only on a Unix socket:
#   t/pg.sh start DIR          creates (first time) and starts the cluster: data DIR/data, socket DIR/sock,
#                              log DIR/log; returns once it accepts connections
#   t/pg.sh stop DIR           stops it (fast: open sessions are cut)
#   t/pg.sh uri DIR DBNAME     the URI mailstamp's --db / MAILSTAMP_DB takes for database DBNAME
#   t/pg.sh createdb DIR NAME  a new empty database NAME
# No TCP, trust authentication, no fsync: for tests only. initdb refuses to run as root, so as root the
# cluster belongs to the postgres user. Prints nothing but errors.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || { echo "pg.sh: no PostgreSQL server found (/usr/lib/postgresql/*/bin)" >&2; exit 2; }

usage() { echo "usage: $0 start DIR | stop DIR | uri DIR DBNAME | createdb DIR DBNAME" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")

# as_owner CMD...: CMD as the cluster's owner (postgres when we are root, else ourselves).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { "$PGBIN/pg_isready" -q -h "$dir/sock" -U postgres -d postgres; }

case "$cmd" in
start)
  mkdir -p "$dir/sock"
  : >>"$dir/log"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir" "$dir/sock" "$dir/log"
    # The postgres user must reach DIR: every directory above it needs search permission.
    d=$dir
    while [ "$d" != / ]; do
      d=$(dirname "$d")
      [ "$(runuser -u postgres -- test -x "$d" && echo y)" = y ] || chmod o+x "$d"
    done
  fi
  chmod 711 "$dir"   # others (a test program run as nobody) reach sock/, not data/
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
      >>"$dir/log" 2>&1 || { echo "pg.sh: initdb failed, see $dir/log" >&2; tail -20 "$dir/log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
# t/pg.sh: a throwaway test cluster
listen_addresses = ''
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 100
EOF
  fi
  if ready; then exit 0; fi
  # -w waits until the server accepts connections (or fails).
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -s start >/dev/null ||
    { echo "pg.sh: the server did not start, see $dir/log" >&2; tail -20 "$dir/log" >&2; exit 1; }
  for _ in $(seq 100); do ready && exit 0; sleep 0.1; done
  echo "pg.sh: the server does not accept connections, see $dir/log" >&2
  exit 1
  ;;
stop)
  [ -s "$dir/data/postmaster.pid" ] || exit 0
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 -s stop >/dev/null
  ;;
uri)
  [ $# -eq 3 ] || usage
  echo "postgresql:///$3?host=$dir/sock&user=postgres"
  ;;
createdb)
  [ $# -eq 3 ] || usage
  createdb -h "$dir/sock" -U postgres "$3"
  ;;
*) usage ;;
esac
