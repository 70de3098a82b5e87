#!/usr/bin/env bats
# The PostgreSQL pass's own plumbing (make test-pg; t/pg.sh, common_setup in t/helpers.bash): with
# MAILSTAMP_TEST_PG set, each test's MAILSTAMP_DB is a database of its own on the throwaway cluster, empty
# when the test starts, and the database of the test before is gone. store_sql reaches the store in both passes.

load helpers

setup() {
  common_setup
  SEEN="$BATS_FILE_TMPDIR/seen"
}

need_pg() {
  [ -n "${MAILSTAMP_TEST_PG:-}" ] || skip "the PostgreSQL pass only (make test-pg sets MAILSTAMP_TEST_PG)"
}

pg() { psql -X -qAt -v ON_ERROR_STOP=1 -h "$(realpath "$MAILSTAMP_TEST_PG")/sock" -U postgres -d postgres -c "$1"; }

# The tables a fresh database holds outside the system schemas.
user_tables() {
  store_sql "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
}

@test "store_sql reaches the test's store, whichever the backend" {
  run store_sql "CREATE TABLE probe (k text, n integer)"
  assert_success
  store_sql "INSERT INTO probe VALUES ('a', 1), ('b', 2)"
  run store_sql "SELECT k, n FROM probe ORDER BY k"
  assert_output "$(printf 'a|1\nb|2')"
  if [ -n "${MAILSTAMP_TEST_PG:-}" ]; then
    [[ "$MAILSTAMP_DB" == "postgresql:///"*"?host=$(realpath "$MAILSTAMP_TEST_PG")/sock&user=postgres" ]]
  else
    [ "$MAILSTAMP_DB" = "$BATS_TEST_TMPDIR/store.db" ]
    [ -f "$MAILSTAMP_DB" ]
  fi
}

@test "pg: the test's database exists and starts empty; a table made in it stays in it" {
  need_pg
  name=$(store_sql "SELECT current_database()")
  [ -n "$name" ]
  [ "$("$MAILSTAMP_SRC/t/pg.sh" uri "$MAILSTAMP_TEST_PG" "$name")" = "$MAILSTAMP_DB" ]
  [ "$(user_tables)" -eq 0 ]
  store_sql "CREATE TABLE left_behind (x integer)"
  [ "$(user_tables)" -eq 1 ]
  echo "$name" >>"$SEEN"
  # Only the one cluster, on its socket: no TCP listener.
  [ "$(pg "SHOW listen_addresses")" = "" ]
}

@test "pg: the next test gets another database, without the table, and the one before is dropped" {
  need_pg
  [ -s "$SEEN" ] || skip "runs after the test before it"
  name=$(store_sql "SELECT current_database()")
  before=$(tail -1 "$SEEN")
  [ "$name" != "$before" ]
  [ "$(user_tables)" -eq 0 ]
  run store_sql "SELECT count(*) FROM left_behind"
  assert_failure
  [ "$(pg "SELECT count(*) FROM pg_database WHERE datname = '$before'")" -eq 0 ]
  [ "$(pg "SELECT count(*) FROM pg_database WHERE datname = '$name'")" -eq 1 ]
}
