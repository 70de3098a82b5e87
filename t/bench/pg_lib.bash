# Shared by the PostgreSQL benchmarks (pg_*.sh), sourced after lib.bash (and
# smtp_lib.bash when used): a throwaway PostgreSQL cluster in $work/pg,
# listening on a Unix socket only, stopped on exit. Not a benchmark itself.
# BENCH_PG_FSYNC=off runs the cluster without fsync (default on: commits as
# durable as the SQLite store's, which runs WAL with synchronous=FULL).
pg_bindir=${BENCH_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
pg_fsync=${BENCH_PG_FSYNC:-on}
# psql itself, not Debian's wrapper (/usr/bin/psql, a Perl script that picks a
# version: some 100 ms a start, which would swamp a one-lookup comparison).
pg_psql=$pg_bindir/psql
[ -x "$pg_psql" ] || pg_psql=$(command -v psql || echo psql)
pg_dir="$work/pg"
pg_sock="$pg_dir/sock"

# Runs a server program as postgres when we are root (initdb refuses root).
pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Fails unless the server programs and psql are there.
need_pg() {
  [ -n "$pg_bindir" ] && [ -x "$pg_bindir/initdb" ] && [ -x "$pg_bindir/pg_ctl" ] ||
    { echo "${0##*/}: missing the PostgreSQL server (Debian package postgresql)" >&2; exit 1; }
  [ -x "$pg_psql" ] || { echo "${0##*/}: missing psql (Debian package postgresql-client)" >&2; exit 1; }
}
# Stops the cluster (fast: it rolls back what is open), if it runs.
stop_pg() {
  [ -f "$pg_dir/data/postmaster.pid" ] || return 0
  pg_as "$pg_bindir/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
# Creates and starts the cluster; extra server settings ("-c name=value") as
# arguments. Its log: $pg_dir/log.
# shellcheck disable=SC2120 # the settings are optional
start_pg() {
  need_pg
  mkdir -p "$pg_sock"
  if [ "$(id -u)" -eq 0 ]; then chmod 711 "$work"; chown -R postgres "$pg_dir"; fi
  pg_as "$pg_bindir/initdb" -D "$pg_dir/data" --auth=trust -U postgres >"$pg_dir/initdb.out" 2>&1 ||
    { echo "${0##*/}: initdb failed: $(tail -n 5 "$pg_dir/initdb.out")" >&2; exit 1; }
  trap 'stop_pg; if declare -F cleanup >/dev/null; then cleanup; else rm -rf "$work"; fi' EXIT
  pg_as "$pg_bindir/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories=$pg_sock -c fsync=$pg_fsync $*" start >/dev/null ||
    { echo "${0##*/}: the cluster did not start: $(tail -n 5 "$pg_dir/log")" >&2; exit 1; }
}
# psql on database $1 of the cluster, quiet, stopping at the first error.
pg_sql() { "$pg_psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_sock" -U postgres -d "$1" "${@:2}"; }
# Creates database $1 and prints the store URI that names it.
pg_createdb() {
  pg_sql postgres -c "CREATE DATABASE \"$1\"" >/dev/null
  echo "postgresql:///$1?host=$pg_sock&user=postgres"
}
