#!/usr/bin/env bats
# mailstamp-store copy and info: a store filled by the real programs on SQLite, copied to PostgreSQL (a
# throwaway cluster of this file's own, on a Unix socket) and back, and the programs judging the same on
# the copy; a copy cut short completes when run again; a copy with more rows than its source is exit 65.

load helpers

PGBIN=/usr/lib/postgresql/15/bin

# as_pg CMD...: CMD as the cluster's owner (initdb refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

setup_file() {
  [ -x "$PGBIN/initdb" ] || return 0
  local d=$BATS_FILE_TMPDIR/pg
  mkdir -p "$d/sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$d"
    # The postgres user must reach the socket directory through every directory above it.
    local up=$d
    while [ "$up" != / ]; do
      up=$(dirname "$up")
      runuser -u postgres -- test -x "$up" || chmod o+x "$up"
    done
  fi
  as_pg "$PGBIN/initdb" -D "$d/data" --auth=trust -U postgres --no-sync >"$BATS_FILE_TMPDIR/initdb.log" 2>&1
  as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$d/log" -w -s \
    -o "-c listen_addresses='' -c unix_socket_directories=$d/sock -c fsync=off" start >/dev/null
}

teardown_file() {
  [ -d "$BATS_FILE_TMPDIR/pg/data" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$BATS_FILE_TMPDIR/pg/data" -m fast -s stop >/dev/null 2>&1 || true
}

setup() {
  common_setup
  # The stores these tests copy from are SQLite files, also in the PostgreSQL pass (make test-pg).
  export MAILSTAMP_DB="$BATS_TEST_TMPDIR/store.db"
  SOCK=$BATS_FILE_TMPDIR/pg/sock
}

need_pg() {
  [ -x "$PGBIN/initdb" ] || skip "needs a PostgreSQL server ($PGBIN/initdb: Debian's postgresql-15)"
}

# new_db NAME: a new empty database; prints its store URI.
new_db() {
  createdb -h "$SOCK" -U postgres "$1"
  echo "postgresql:///$1?host=$SOCK&user=postgres"
}

psql_in() {
  local db=$1
  shift
  psql -X -q -t -A -h "$SOCK" -U postgres -d "$db" "$@"
}

# Fills $MAILSTAMP_DB with something in most tables, using the programs; TOK_USED is a one-time token
# address consumed, TOK_FRESH one made but not used.
fill_store() {
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@example.org >/dev/null
  mwhitelist add --for bob@ours.example partner.example >/dev/null
  printf 'a%d@bulk.example\n' $(seq 1 25) | mwhitelist import >/dev/null
  TOK_USED=$(mtoken make --once alice@ours.example)
  mtoken check --consume "$TOK_USED" >/dev/null
  TOK_FRESH=$(mtoken make --once carol@ours.example)
  TOK_REVOKED=$(mtoken make dave@ours.example)
  mtoken revoke "$TOK_REVOKED" >/dev/null
  printf 'sesame\n' | msmtp-proxy user add alice@ours.example >/dev/null
}

# The table lines of `info` (no engine, no schema).
counts() {
  MAILSTAMP_DB=$1 mailstamp-store info | grep -v '^engine \|^schema '
}

@test "help, version and usage errors; info on a missing store is exit 75" {
  run mailstamp-store --version
  assert_success
  assert_output --regexp '^mailstamp-store [0-9]'
  run mailstamp-store copy only-one.db
  assert_failure 64
  run mailstamp-store frobnicate
  assert_failure 64
  run mailstamp-store info --db "$BATS_TEST_TMPDIR/none.db"
  assert_failure 75
  assert_output --partial "does not exist"
  [ ! -e "$BATS_TEST_TMPDIR/none.db" ]
  run mailstamp-store copy "$BATS_TEST_TMPDIR/none.db" "$BATS_TEST_TMPDIR/to.db"
  assert_failure 75
  [ "${#lines[@]}" -eq 1 ]
}

@test "info shows the engine, the schema version and a count per table" {
  fill_store
  run mailstamp-store info
  assert_success
  assert_line "engine sqlite"
  assert_line --regexp '^schema [0-9]+$'
  assert_line "domains 1"
  assert_line "whitelist 27"
  assert_line "tokens 2"
  assert_line "users 1"
  assert_line "sent 0"
  [ "${#lines[@]}" -eq 16 ]  # engine, schema and one line for each of 14 tables
}

@test "SQLite to SQLite: every table, counts compared; the same store twice is refused" {
  fill_store
  run mailstamp-store copy "$MAILSTAMP_DB" "$BATS_TEST_TMPDIR/b.db"
  assert_success
  assert_line "whitelist 27 27"
  assert_line "secrets 1 1"
  [ "${#lines[@]}" -eq 14 ]  # one line for each of 14 tables
  [ "$(counts "$MAILSTAMP_DB")" = "$(counts "$BATS_TEST_TMPDIR/b.db")" ]
  run mailstamp-store copy "$MAILSTAMP_DB" "$MAILSTAMP_DB"
  assert_failure 64
  ln -s "$MAILSTAMP_DB" "$BATS_TEST_TMPDIR/alias.db"
  run mailstamp-store copy "$BATS_TEST_TMPDIR/alias.db" "$MAILSTAMP_DB"
  assert_failure 64
  assert_output --partial "same store"
}

@test "SQLite to PostgreSQL and back: the programs judge the same on each copy" {
  need_pg
  fill_store
  sqlite=$MAILSTAMP_DB
  pg=$(new_db roundtrip)
  # Batches of 4 rows: the whitelist (27 entries) takes several.
  run mailstamp-store copy --batch 4 "$sqlite" "$pg"
  assert_success
  assert_line "whitelist 27 27"
  assert_line "tokens 2 2"
  assert_line "users 1 1"
  run mailstamp-store info --db "$pg"
  assert_success
  assert_line "engine postgresql"
  [ "$(counts "$sqlite")" = "$(counts "$pg")" ]
  export MAILSTAMP_DB=$pg
  # The whitelist, scopes included.
  run mwhitelist check friend@example.org
  assert_success
  run mwhitelist check a17@bulk.example
  assert_success
  run mwhitelist check x@partner.example bob@ours.example
  assert_success
  run mwhitelist check x@partner.example carol@ours.example
  assert_failure 1
  run mwhitelist check stranger@evil.example
  assert_failure 1
  # Tokens: the secret came along (a token made on SQLite checks here), the consumed one is refused, and
  # so is the revoked one.
  run mtoken check "$TOK_FRESH"
  assert_success
  assert_output "carol@ours.example"
  run mtoken check --consume "$TOK_USED"
  assert_failure
  run mtoken check "$TOK_REVOKED"
  assert_failure
  run mtoken check --consume "$TOK_FRESH"
  assert_success
  run mtoken check --consume "$TOK_FRESH"
  assert_failure
  # New whitelist entries on PostgreSQL get ids past the copied ones.
  run mwhitelist add new@example.net
  assert_success
  [ "$(psql_in roundtrip -c 'SELECT count(DISTINCT id) FROM whitelist')" = 28 ]
  # And back into a new SQLite file.
  run mailstamp-store copy "$pg" "$BATS_TEST_TMPDIR/back.db"
  assert_success
  assert_line "whitelist 28 28"
  assert_line "tokens 3 3"
  [ "$(counts "$pg")" = "$(counts "$BATS_TEST_TMPDIR/back.db")" ]
  MAILSTAMP_DB=$BATS_TEST_TMPDIR/back.db run mtoken check "$TOK_FRESH"
  assert_failure
  MAILSTAMP_DB=$BATS_TEST_TMPDIR/back.db run mwhitelist check new@example.net
  assert_success
  MAILSTAMP_DB=$BATS_TEST_TMPDIR/back.db run mtoken check "$(MAILSTAMP_DB=$pg mtoken make erin@ours.example)"
  assert_success
  assert_output "erin@ours.example"
}

@test "PostgreSQL to PostgreSQL; a copy run again changes nothing; one cut short completes" {
  need_pg
  fill_store
  a=$(new_db pga)
  b=$(new_db pgb)
  run mailstamp-store copy "$MAILSTAMP_DB" "$a"
  assert_success
  run mailstamp-store copy --batch 5 "$a" "$b"
  assert_success
  before=$(psql_in pgb -c 'SELECT id, value, scope FROM whitelist ORDER BY id')
  run mailstamp-store copy "$a" "$b"
  assert_success
  assert_line "whitelist 27 27"
  [ "$(psql_in pgb -c 'SELECT id, value, scope FROM whitelist ORDER BY id')" = "$before" ]
  # Cut short: some rows of several tables missing from the copy (and sent, replaced whole, gets rows).
  psql_in pgb -c "DELETE FROM whitelist WHERE id > 10; DELETE FROM tokens; DELETE FROM secrets; DELETE FROM users"
  psql_in pga -c "INSERT INTO sent VALUES ('s@x.example', 5, 1), ('s@x.example', 5, 1), ('t@x.example', 7, 2)"
  run mailstamp-store copy --batch 2 "$a" "$b"
  assert_success
  assert_line "whitelist 27 27"
  assert_line "sent 3 3"
  [ "$(psql_in pgb -c 'SELECT id, value, scope FROM whitelist ORDER BY id')" = "$before" ]
  [ "$(counts "$a")" = "$(counts "$b")" ]
  run mailstamp-store copy "$a" "$b"
  assert_success
  assert_line "sent 3 3"
}

@test "a copy holding a row its source lacks is exit 65, naming the table" {
  need_pg
  fill_store
  pg=$(new_db extra)
  mailstamp-store copy "$MAILSTAMP_DB" "$pg" >/dev/null
  psql_in extra -c "INSERT INTO domains VALUES ('theirs.example', 1)"
  run --separate-stderr mailstamp-store copy "$MAILSTAMP_DB" "$pg"
  assert_failure 65
  assert_line "domains 1 2"
  [ "$(wc -l <<<"$stderr")" -eq 1 ]
  [[ $stderr == *"table domains"* ]]
  # SQLite the same.
  mailstamp-store copy "$MAILSTAMP_DB" "$BATS_TEST_TMPDIR/c.db" >/dev/null
  MAILSTAMP_DB=$BATS_TEST_TMPDIR/c.db mwhitelist add extra@example.net
  run mailstamp-store copy "$MAILSTAMP_DB" "$BATS_TEST_TMPDIR/c.db"
  assert_failure 65
  assert_output --partial "table whitelist"
}

@test "a store URI with a password is exit 78 and the password is not printed" {
  fill_store
  run mailstamp-store copy "$MAILSTAMP_DB" "postgresql://postgres:Hunter2secret@localhost/x"
  assert_failure 78
  refute_output --partial Hunter2secret
  [ "${#lines[@]}" -eq 1 ]
  run mailstamp-store info --db "postgresql:///x?user=postgres&password=Hunter2secret"
  assert_failure 78
  refute_output --partial Hunter2secret
}

@test "a PostgreSQL store that cannot be reached is exit 75 with one line" {
  need_pg
  fill_store
  run mailstamp-store copy "$MAILSTAMP_DB" "postgresql:///nosuchdb?host=$SOCK&user=postgres"
  assert_failure 75
  [ "${#lines[@]}" -eq 1 ]
  run mailstamp-store copy "postgresql:///postgres?host=$SOCK&user=postgres" "$BATS_TEST_TMPDIR/x.db"
  assert_failure 75
  assert_output --partial "no mailstamp tables"
}
