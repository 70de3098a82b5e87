#!/usr/bin/env bats
# Two mail hosts, one store: two MX hosts of ours.example (A and B) run mailstamp's programs as separate
# processes, each with its own config file, host name, log and spool, and share ONE PostgreSQL store (a URI in
# MAILSTAMP_DB). Whatever consent one host records, the other must see: a hashcash stamp spent at one is spent
# at both, a sender confirmed at one is whitelisted at both (token addresses: t/two-mx.bats), and a message
# held for SOURCE/GET is served by whichever host the receiver reaches, max-gets
# counted across both. Every test would fail with a store per host (two SQLite files).
#
# The cluster: t/pg.sh, one per file run, on a Unix socket under $BATS_FILE_TMPDIR/pg; each test its own
# database.

load helpers

pg_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

setup_file() {
  pg_server || return 0
  "$BATS_TEST_DIRNAME/pg.sh" start "$BATS_FILE_TMPDIR/pg"
}

teardown_file() {
  pg_server || return 0
  "$BATS_TEST_DIRNAME/pg.sh" stop "$BATS_FILE_TMPDIR/pg"
}

setup() {
  pg_server || skip "needs a PostgreSQL server (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
  common_setup
  M="$BATS_TEST_TMPDIR"
  PY=/usr/bin/python3
  TOOL="$MAILSTAMP_SRC/t/smtptool.py"
  PIDS=()
  # One database per test, so no test sees another's state.
  local db="mx_${BATS_TEST_NUMBER}_$$"
  "$BATS_TEST_DIRNAME/pg.sh" createdb "$BATS_FILE_TMPDIR/pg" "$db"
  MAILSTAMP_DB=$("$BATS_TEST_DIRNAME/pg.sh" uri "$BATS_FILE_TMPDIR/pg" "$db")
  export MAILSTAMP_DB
  # The store's own settings, written once through the shared URI (by host A's tools, say).
  mwhitelist domain add ours.example >/dev/null
  mkdir -p "$M/a" "$M/b"
}

teardown() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# mkmsg FILE SENDER [MESSAGE-ID [BODY]]: a CRLF message to bob@ours.example.
mkmsg() {
  printf 'Return-Path: <%s>\r\nFrom: %s\r\nTo: Bob <bob@ours.example>\r\nSubject: hello\r\nMessage-ID: <%s@sender.example>\r\n\r\n%s\r\n' \
    "$2" "$2" "${3:-m1}" "${4:-hello bob}" >"$1"
}
class_of() { sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1"; }

# verify_at A|B: mverify as that host: its own config file (its authserv-id, the bits it asks for).
verify_at() {
  local h=$1
  shift
  [ -s "$M/$h/verify.conf" ] || printf '[mverify]\nauthserv-id = mx%s.ours.example\nmin-bits = 12\n' "$h" >"$M/$h/verify.conf"
  mverify --config "$M/$h/verify.conf" "$@"
}

@test "a hashcash stamp spent at host A is a double spend at host B; the same message retried to B is not" {
  command -v hashcash >/dev/null || skip "needs Debian's hashcash"
  mkmsg "$M/a.eml" x@stranger.example a "first"
  s=$(hashcash -m -q -b 12 bob@ours.example)
  { printf 'X-Hashcash: %s\r\n' "$s"; cat "$M/a.eml"; } >"$M/a.tmp" && mv "$M/a.tmp" "$M/a.eml"
  # The same stamp on a second, different message.
  { grep '^X-Hashcash' "$M/a.eml"; grep -v '^X-Hashcash' "$M/a.eml" | sed 's/first/second/; s/<a@/<b@/'; } >"$M/b.eml"
  verify_at a <"$M/a.eml" >"$M/out-a.eml"
  [ "$(class_of "$M/out-a.eml")" = G ]
  grep -q '^Authentication-Results: mxa.ours.example; .*x-mailstamp-hashcash=pass (1[2-9] bits for bob@ours.example)' "$M/out-a.eml"
  # At host B, another message with that stamp: spent (at A).
  verify_at b <"$M/b.eml" >"$M/out-b.eml"
  [ "$(class_of "$M/out-b.eml")" = B ]
  grep -q '^Authentication-Results: mxb.ours.example; .*x-mailstamp-hashcash=fail (spent on another message)' "$M/out-b.eml"
  # The first message again, now at B (a sender's MTA retrying at the other MX): the same message, no double spend.
  verify_at b <"$M/a.eml" >"$M/out-a2.eml"
  [ "$(class_of "$M/out-a2.eml")" = G ]
  grep -q '^Authentication-Results: mxb.ours.example; .*x-mailstamp-hashcash=pass' "$M/out-a2.eml"
  # And the second message back at A: still spent.
  verify_at a <"$M/b.eml" >"$M/out-b2.eml"
  [ "$(class_of "$M/out-b2.eml")" = B ]
}

@test "one stamp on two messages checked at both hosts at the same moment: exactly one of them is G" {
  command -v hashcash >/dev/null || skip "needs Debian's hashcash"
  for round in 1 2 3 4 5; do
    s=$(hashcash -m -q -b 12 bob@ours.example)
    for h in a b; do
      mkmsg "$M/$h$round.eml" x@stranger.example "$h$round" "copy $h"
      { printf 'X-Hashcash: %s\r\n' "$s"; cat "$M/$h$round.eml"; } >"$M/tmp" && mv "$M/tmp" "$M/$h$round.eml"
    done
    verify_at a <"$M/a$round.eml" >"$M/out-a$round.eml" &
    pa=$!
    verify_at b <"$M/b$round.eml" >"$M/out-b$round.eml" &
    pb=$!
    wait "$pa"
    wait "$pb"
    got="$(class_of "$M/out-a$round.eml")$(class_of "$M/out-b$round.eml")"
    [ "$got" = GB ] || [ "$got" = BG ] || { echo "round $round: A and B gave $got" >&2; return 1; }
  done
}

# challenge_at A|B: mchallenge as that host: its config (host name, hold directory), its Maildir.
challenge_at() {
  local h=$1
  shift
  [ -s "$M/$h/challenge.conf" ] ||
    printf '[mchallenge]\nhostname = mx%s.ours.example\nhold-dir = %s\n' "$h" "$M/$h/held" >"$M/$h/challenge.conf"
  mchallenge --config "$M/$h/challenge.conf" --deliver "maildir:$M/$h/Maildir" --sendmail "$M/sendmail" "$@"
}
delivered() { find "$M/$1/Maildir/new" -type f 2>/dev/null | wc -l; }
# mkheld FILE SENDER SUBJECT: a message to bob@ours.example as a local delivery agent sees it.
mkheld() {
  printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\nFrom: %s\nTo: bob@ours.example\nSubject: %s\nMessage-ID: <%s@sender.example>\n\nthe body\n' \
    "$2" "$2" "$3" "$RANDOM$RANDOM" >"$1"
}

@test "a sender confirmed through mchallenge at host A is whitelisted at host B (mverify and mchallenge)" {
  fake_sendmail "$M/sendmail"
  mkheld "$M/u.eml" ann@stranger.example "a question"
  # Before: a stranger at both hosts.
  mkmsg "$M/v.eml" ann@stranger.example v1
  verify_at b <"$M/v.eml" >"$M/out0.eml"
  [ "$(class_of "$M/out0.eml")" = B ]
  # Held and challenged at A.
  run challenge_at a <"$M/u.eml"
  assert_success
  [ "$(delivered a)" -eq 0 ]
  c=$(ls -d "$M"/sent/* | tail -1)
  conf=$(sed -n 's/^Reply-To: <\(.*\)>$/\1/p' "$c/msg")
  [[ "$conf" == bob+*@ours.example ]]
  # The reply to the confirm address, at A: the held message is released there, ann is whitelisted.
  printf 'Return-Path: <ann@stranger.example>\nX-Original-To: %s\nFrom: ann@stranger.example\nSubject: Re: confirm\n\nyes, me\n' "$conf" >"$M/reply.eml"
  run challenge_at a <"$M/reply.eml"
  assert_success
  [ "$(delivered a)" -eq 1 ]
  grep -q '^X-Mailstamp-Released: confirmed by ann@stranger.example; ' "$M"/a/Maildir/new/*
  # At B: mverify calls ann whitelisted, by the confirmation A recorded.
  verify_at b <"$M/v.eml" >"$M/out1.eml"
  [ "$(class_of "$M/out1.eml")" = W ]
  grep -q '^X-Mailstamp-Class: W (Whitelist: .*ann@stranger.example.*) by mxb.ours.example' "$M/out1.eml"
  # And B's mchallenge delivers ann's next message at once: nothing held at B, no second challenge.
  mkheld "$M/u2.eml" ann@stranger.example "again"
  run challenge_at b <"$M/u2.eml"
  assert_success
  [ "$(delivered b)" -eq 1 ]
  grep -q '^X-Mailstamp-Class: W' "$M"/b/Maildir/new/*
  [ "$(find "$M/sent" -name msg | wc -l)" -eq 1 ]
  [ "$(mwhitelist list --json | jq -r '.[] | select(.value=="ann@stranger.example") | .source')" = confirmed ]
}

# source_at A|B [options]: msourced as that host of a.example: its config (host name, hold directory), its log.
source_at() {
  local h=$1
  shift
  [ -s "$M/$h/source.conf" ] ||
    printf '[msourced]\nhostname = mx%s.a.example\nhold-dir = %s\n' "$h" "$M/$h/source" >"$M/$h/source.conf"
  msourced --config "$M/$h/source.conf" --log "$M/$h/log" "$@"
}
# source_daemon A|B: that host's daemon on its own port (PORT_A / PORT_B), no fetch passes.
source_daemon() {
  local h=$1 port
  port=$(free_port)
  [ -s "$M/$h/source.conf" ] ||
    printf '[msourced]\nhostname = mx%s.a.example\nhold-dir = %s\n' "$h" "$M/$h/source" >"$M/$h/source.conf"
  msourced --config "$M/$h/source.conf" --log "$M/$h/log" --listen "127.0.0.1:$port" --fetch-interval 0 \
    --deliver "maildir:$M/$h/Maildir" 2>"$M/$h/err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/$h/err" wait_port "$port"
  eval "PORT_${h^^}=$port"
}
# get_at PORT ID: one GET session; prints the server's replies.
get_at() { $PY "$TOOL" chat "$1" "EHLO mx.b.example" "GET $2" "QUIT"; }

@test "a message held by host A's msourced is served by GET at host B; max-gets counts GETs at both hosts" {
  printf 'From: Alice <alice@a.example>\nTo: Bob <bob@b.example>\nSubject: held\nMessage-ID: <h1@a.example>\n\nthe held body\n' >"$M/msg.eml"
  # Host A takes the message for SOURCE/GET (at most 3 GETs); the receiver is down, so the row stays queued.
  run source_at a --max-gets 3 --retry 1h --mx-map "b.example=127.0.0.1:1" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  id=$(msourced queue --json | jq -r '.[] | select(.direction == "out") | .id')
  [[ "$id" =~ ^[0-9a-f]{32}$ ]]
  # The row names the held file by its absolute path, in A's hold directory: B serves it from there because
  # both "hosts" are this one machine. Two real machines need that directory on storage both can read.
  [ -n "$(find "$M/a/source" -type f)" ]
  [ -z "$(find "$M/b/source" -type f 2>/dev/null)" ]
  source_daemon a
  source_daemon b
  # GETs 1 and 2 at B, 3 at A: all served, the message as held.
  for port in "$PORT_B" "$PORT_B" "$PORT_A"; do
    run get_at "$port" "$id"
    assert_success
    assert_line --regexp '^250 2\.6\.0 message follows'
    assert_output --partial $'\r\nthe held body\r\n.\r\n>DATA'
  done
  grep -q "event=get .*result=served" "$M/b/log"
  [ "$(grep -c 'event=get .*result=served' "$M/b/log")" -eq 2 ]
  [ "$(grep -c 'event=get .*result=served' "$M/a/log")" -eq 1 ]
  [ "$(msourced queue --json | jq -r '.[0].gets')" = 3 ]
  # The fourth, at either host: refused as any unknown id is.
  for port in "$PORT_A" "$PORT_B"; do
    run get_at "$port" "$id"
    assert_line '550 5.7.1 no message by that id'
    refute_line --regexp 'message follows'
  done
}
