#!/usr/bin/env bats
# Two MX hosts, one consent: two msmtp-proxy processes (two ports, one smtp-sink behind them) share one
# PostgreSQL store (a throwaway cluster, t/pg.sh), so a one-time token is good once across both, and a race
# for it split over both delivers exactly once. PostgreSQL stopped mid-run: every program tempfails and
# nothing is accepted or lost; started again, the same daemons work on without a restart.

load helpers

setup_file() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || return 0
  "$BATS_TEST_DIRNAME/pg.sh" start "$BATS_FILE_TMPDIR/pg"
}

teardown_file() {
  [ ! -d "$BATS_FILE_TMPDIR/pg" ] || "$BATS_TEST_DIRNAME/pg.sh" stop "$BATS_FILE_TMPDIR/pg"
}

setup() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip "needs a PostgreSQL server (Debian's postgresql-15): make test installs it"
  common_setup
  proxy_rig_setup
  PG="$BATS_FILE_TMPDIR/pg"
  local db="mx_${BATS_TEST_NUMBER}_$$"
  "$MAILSTAMP_SRC/t/pg.sh" createdb "$PG" "$db"
  export MAILSTAMP_DB=$("$MAILSTAMP_SRC/t/pg.sh" uri "$PG" "$db")
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() {
  kill_rig
  # A test that stopped the server starts it again for the next one.
  "$MAILSTAMP_SRC/t/pg.sh" start "$PG" 2>/dev/null || true
}

# mx_proxy N: msmtp-proxy mxN.ours.example on the store, relaying to the sink; its port in $PORT, its log
# $M/mxN.log.
mx_proxy() {
  PORT=$(free_port)
  msmtp-proxy --listen "127.0.0.1:$PORT" --hostname "mx$1.ours.example" --relay "127.0.0.1:$SINK" \
    --log "$M/mx$1.log" >/dev/null 2>"$M/mx$1.err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/mx$1.err" wait_port "$PORT"
}

# two_mx: the sink and two proxies on the one store, listening on $MX1 and $MX2.
two_mx() {
  start_sink
  mx_proxy 1
  MX1=$PORT
  mx_proxy 2
  MX2=$PORT
}

@test "a one-time token handed out by one MX is used at the other, and then refused at both" {
  two_mx
  PORT=$MX1
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1 <bob@ours.example> takes mail only from senders it knows"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  PORT=$MX2
  run $PY "$TOOL" send "$MX2" other@bad.example "$tok"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q "^X-Mailstamp-Class: W (Whitelist: token address $tok)"
  run $PY "$TOOL" send "$MX1" stranger@bad.example "$tok"
  assert_output --partial "refused $tok 550"
  run $PY "$TOOL" send "$MX2" stranger@bad.example "$tok"
  assert_output --partial "refused $tok 550"
  wait_sink 1
}

@test "eight parallel sessions split over both MX hosts racing one one-time token: exactly one delivered" {
  two_mx
  tok=$(mtoken make --once bob@ours.example)
  run $PY "$MAILSTAMP_SRC/t/token_race.py" "$MX1,$MX2" "$tok" 8
  echo "$output"
  assert_line "delivered 1"
  assert_line "fresh tokens 7"
  wait_sink 1
  # Both hosts took part.
  grep -q "rcpt=" "$M/mx1.log"
  grep -q "rcpt=" "$M/mx2.log"
  run mtoken check "$tok"
  assert_failure
  assert_output --partial "used"
}

@test "PostgreSQL stopped: the proxies answer 4xx, the filters exit 75, nothing is accepted; started again, the same daemons deliver" {
  two_mx
  PORT=$MX1
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0"
  wait_sink 1
  "$MAILSTAMP_SRC/t/pg.sh" stop "$PG"
  for PORT in $MX1 $MX2; do
    run swaks_to friend@good.example bob@ours.example
    assert_output --regexp "<\*\* 4[0-9][0-9] 4\."
    refute_output --partial "250 2.0.0"
    run swaks_to stranger@bad.example bob@ours.example
    assert_output --regexp "<\*\* 4[0-9][0-9] 4\."
  done
  wait_sink 1
  printf 'From: friend@good.example\nTo: bob@ours.example\nSubject: hi\n\nhello\n' >"$M/m.eml"
  run mverify <"$M/m.eml"
  assert_failure 75
  assert_output --partial "store postgresql://"
  run mwhitelist add new@good.example
  assert_failure 75
  run mtoken make --once bob@ours.example
  assert_failure 75
  fake_sendmail "$M/sendmail"
  run mchallenge --deliver "maildir:$M/Maildir" --sendmail "$M/sendmail" --hold-dir "$M/held" <"$M/m.eml"
  assert_failure 75
  [ ! -d "$M/Maildir/new" ] || [ -z "$(ls "$M/Maildir/new")" ]
  run msourced --hold-dir "$M/source" send --from friend@good.example --rcpt bob@b.example <"$M/m.eml"
  assert_failure 75
  # No password is ever in a URI, so nothing secret can be in these messages; the error names the store.
  grep -q "event=tempfail .*rcpt=bob@ours.example .*reason=\"lookup failed: store postgresql://" "$M/mx1.log"
  "$MAILSTAMP_SRC/t/pg.sh" start "$PG"
  for PORT in $MX1 $MX2; do
    run swaks_to friend@good.example bob@ours.example
    assert_output --partial "250 2.0.0"
  done
  wait_sink 3
  PORT=$MX2
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1 <bob@ours.example> takes mail only from senders it knows"
  [[ "$(token_of "$output")" == bob+*@ours.example ]]
  run mwhitelist check new@good.example
  assert_failure
}

@test "a store URI holding a password is refused without repeating it" {
  run mwhitelist --db "postgresql://mailstamp:s3cret@localhost/mailstamp" list
  assert_failure 78
  assert_output --partial "password"
  refute_output --partial "s3cret"
  run msmtp-proxy --db "postgresql:///x?password=s3cret" --listen "127.0.0.1:$(free_port)" --relay 127.0.0.1:1
  assert_failure 78
  refute_output --partial "s3cret"
}

@test "the store's writer lock held past the busy timeout: a write exits 75 and the proxy answers 451, naming the lock wait" {
  printf 'busy-timeout = 1\n' >"$M/conf"
  export MAILSTAMP_CONFIG="$M/conf"
  # Another host's transaction holds the store's writer lock (pg_db.cpp) for 8 seconds.
  psql -X -q "$MAILSTAMP_DB" -c "BEGIN" -c "SELECT pg_advisory_xact_lock(120265265263476)" \
    -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null 2>&1 &
  PIDS+=($!)
  locks() { psql -X -qAt "$MAILSTAMP_DB" -c "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND granted"; }
  for i in $(seq 100); do [ "$(locks)" = 1 ] && break; sleep 0.1; done
  [ "$(locks)" = 1 ]
  run mwhitelist add late@good.example
  assert_failure 75
  assert_output --partial "lock timeout"
  start_sink
  mx_proxy 1
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "451 4.3.0"
  grep -q 'event=tempfail .*lock timeout' "$M/mx1.log"
  # Once the lock is given back, the same daemon and the same command work.
  for i in $(seq 150); do [ "$(locks)" = 0 ] && break; sleep 0.1; done
  run mwhitelist add late@good.example
  assert_success
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
}
