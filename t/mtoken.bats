#!/usr/bin/env bats
# mtoken, driven as a user or a script would.

load helpers

setup() { common_setup; }

@test "help and version exit 0; usage errors exit 64" {
  run mtoken --help
  assert_success
  run mtoken --version
  assert_success
  run mtoken make
  assert_failure 64
  run mtoken make --once --dated a@x.example
  assert_failure 64
  run mtoken make --ttl forever a@x.example
  assert_failure 64
  run mtoken make "not an address"
  assert_failure 64
}

@test "make prints a token address that check maps back to the recipient" {
  run mtoken make Alice@Example.org
  assert_success
  assert_output --regexp '^Alice\+[a-z2-7]{24}@Example\.org$'
  tok=$output
  run mtoken check "$tok"
  assert_success
  assert_output "alice@example.org"
}

@test "a token is accepted whatever the case of its letters" {
  tok=$(mtoken make alice@example.org)
  run mtoken check "$(tr a-z A-Z <<<"$tok")"
  assert_success
  assert_output "alice@example.org"
}

@test "a token with one character changed is invalid" {
  tok=$(mtoken make alice@example.org)
  local="${tok%@*}"
  payload="${local#*+}"
  for i in 0 5 11 17 23; do
    c=${payload:$i:1}
    if [ "$c" = a ]; then n=b; else n=a; fi
    bad="alice+${payload:0:$i}$n${payload:$((i+1))}@example.org"
    run mtoken check "$bad"
    assert_failure 1
    assert_output "mtoken: check: invalid"
  done
  run mtoken check "alice@example.org"
  assert_failure 1
  assert_output "mtoken: check: invalid"
}

@test "dated tokens expire after their ttl" {
  export MAILSTAMP_TEST_NOW=1800000000
  tok=$(mtoken make --ttl 1h alice@example.org)
  MAILSTAMP_TEST_NOW=1800003600 run mtoken check "$tok"
  assert_success
  MAILSTAMP_TEST_NOW=1800003601 run mtoken check "$tok"
  assert_failure 1
  assert_output "mtoken: check: expired"
  # default lifetime is 10 days
  tok=$(mtoken make alice@example.org)
  MAILSTAMP_TEST_NOW=$((1800000000 + 864000)) run mtoken check "$tok"
  assert_success
  MAILSTAMP_TEST_NOW=$((1800000000 + 864001)) run mtoken check "$tok"
  assert_output "mtoken: check: expired"
}

@test "one-time tokens: --consume uses them up; list shows them; expire purges" {
  export MAILSTAMP_TEST_NOW=1800000000
  tok=$(mtoken make --once --ttl 2d bob@example.org)
  run mtoken check --consume "$tok"
  assert_success
  assert_output "bob@example.org"
  run mtoken check --consume "$tok"
  assert_failure 1
  assert_output "mtoken: check: used"
  run mtoken check "$tok"
  assert_failure 1
  run mtoken list
  assert_success
  assert_output --regexp "^[a-z2-7]{24}	used	bob@example.org	"
  MAILSTAMP_TEST_NOW=$((1800000000 + 2*86400 + 1)) run mtoken expire
  assert_output "purged 1"
  MAILSTAMP_TEST_NOW=$((1800000000 + 2*86400 + 1)) run mtoken list
  assert_output ""
}

@test "two processes consuming one token at once: exactly one succeeds" {
  for round in 1 2 3 4 5; do
    tok=$(mtoken make --once bob@example.org)
    mtoken check --consume "$tok" >"$BATS_TEST_TMPDIR/a" 2>&1 &
    pa=$!
    mtoken check --consume "$tok" >"$BATS_TEST_TMPDIR/b" 2>&1 &
    pb=$!
    ra=0; wait $pa || ra=$?
    rb=0; wait $pb || rb=$?
    [ $((ra + rb)) -eq 1 ]
    run cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
    assert_line "bob@example.org"
    assert_line "mtoken: check: used"
  done
}

@test "sender-bound tokens refuse other senders" {
  tok=$(mtoken make --sender Partner@Vendor.example bob@example.org)
  run mtoken check --sender partner@vendor.example "$tok"
  assert_success
  run mtoken check --sender prvs=0123456789=partner@vendor.example "$tok"
  assert_success
  run mtoken check --sender eve@evil.example "$tok"
  assert_failure 1
  assert_output "mtoken: check: wrong sender"
  run mtoken check "$tok"
  assert_output "mtoken: check: wrong sender"
}

@test "revoke refuses a token from then on; junk is refused whole" {
  tok=$(mtoken make bob@example.org)
  tok2=$(mtoken make bob@example.org)
  run mtoken revoke "$tok" junk@example.org
  assert_failure 65
  run mtoken check "$tok"
  assert_success
  run mtoken revoke "$tok"
  assert_success
  assert_output "revoked $tok"
  run mtoken check "$tok"
  assert_failure 1
  assert_output "mtoken: check: revoked"
  run mtoken check "$tok2"
  assert_success
  run mtoken list
  assert_output --partial "revoked"
}

@test "rotate: tokens made with older secrets stay valid until they expire" {
  old=$(mtoken make bob@example.org)
  run mtoken rotate
  assert_success
  assert_output "key 2"
  new=$(mtoken make bob@example.org)
  run mtoken check "$old"
  assert_success
  run mtoken check "$new"
  assert_success
  run store_sql "select count(*) from secrets"
  assert_output 2
}

@test "issued tokens are not stored" {
  for i in $(seq 1 10); do mtoken make --once "u$i@example.org" >/dev/null; done
  run store_sql "select count(*) from tokens"
  assert_output 0
}

@test "the qmail delimiter, from the option or the config file" {
  run mtoken --delimiter - make bob@example.org
  assert_output --regexp '^bob-[a-z2-7]{24}@example\.org$'
  tok=$output
  run mtoken check "$tok"
  assert_failure 1
  run mtoken --delimiter - check "$tok"
  assert_success
  printf '[mtoken]\ndelimiter = -\nttl = 1h\n' >"$BATS_TEST_TMPDIR/conf"
  run mtoken --config "$BATS_TEST_TMPDIR/conf" check "$tok"
  assert_success
  run mtoken --delimiter '#' make bob@example.org
  assert_failure 64
}

@test "a token for a long local part that cannot fit 64 octets is refused" {
  run mtoken make "$(printf 'x%.0s' $(seq 1 50))@example.org"
  assert_failure 65
  assert_output --partial "64 octets"
}

@test "--log FILE gets one key=value line per event, without the token itself" {
  tok=$(mtoken --log "$BATS_TEST_TMPDIR/log" make --once bob@example.org)
  mtoken --log "$BATS_TEST_TMPDIR/log" check --consume "$tok"
  run cat "$BATS_TEST_TMPDIR/log"
  assert_line --index 0 --regexp '^[0-9T:-]+Z mtoken\[[0-9]+\]: level=info event=token_make recipient=bob@example.org kind=once '
  assert_line --index 1 --regexp 'event=token_check result=ok recipient=bob@example.org consume=yes$'
  [ "${#lines[@]}" -eq 2 ]
  payload=${tok#bob+}; payload=${payload%@*}
  run grep -c "$payload" "$BATS_TEST_TMPDIR/log"
  assert_output 0
  run mtoken --log-level bogus list
  assert_failure 64
}

@test "procmail with contrib/procmailrc.example lets a one-time token in once" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  mkdir -p "$HOME/Maildir/cur" "$HOME/Maildir/new" "$HOME/Maildir/tmp"
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    cat "$MAILSTAMP_SRC/contrib/procmailrc.example"; } >"$BATS_TEST_TMPDIR/rc"
  tok=$(mtoken make --once me@ours.example)
  printf 'From: stranger@elsewhere.example\nTo: %s\nSubject: via token\n\nhello\n' "$tok" >"$BATS_TEST_TMPDIR/m.eml"
  cd "$BATS_TEST_TMPDIR"
  run procmail -m "$BATS_TEST_TMPDIR/rc" "$tok" <"$BATS_TEST_TMPDIR/m.eml"
  assert_success
  run procmail -m "$BATS_TEST_TMPDIR/rc" "$tok" <"$BATS_TEST_TMPDIR/m.eml"
  assert_success
  [ "$(ls "$HOME/Maildir/new" | wc -l)" -eq 1 ]
  [ "$(ls "$HOME/Maildir/.Quarantine/new" | wc -l)" -eq 1 ]
}

@test "bad [mtoken] config values exit 78 naming the file and line" {
  printf '[mtoken]\nttl = forever\n' >"$BATS_TEST_TMPDIR/c1"
  run mtoken --config "$BATS_TEST_TMPDIR/c1" make bob@example.org
  assert_failure 78
  assert_output --partial "c1:2"
  printf '[mtoken]\nkind = onse\n' >"$BATS_TEST_TMPDIR/c2"
  run mtoken --config "$BATS_TEST_TMPDIR/c2" make bob@example.org
  assert_failure 78
  assert_output --partial "c2:2"
  printf '[mtoken]\ndelimiter = #\n' >"$BATS_TEST_TMPDIR/c3"
  run mtoken --config "$BATS_TEST_TMPDIR/c3" make bob@example.org
  assert_failure 78
  printf '[mtoken]\nkind = once\nttl = 2h\n' >"$BATS_TEST_TMPDIR/c4"
  export MAILSTAMP_TEST_NOW=1800000000
  tok=$(mtoken --config "$BATS_TEST_TMPDIR/c4" make bob@example.org)
  MAILSTAMP_TEST_NOW=1800007201 run mtoken check "$tok"
  assert_output "mtoken: check: expired"
  run mtoken check --consume "$tok"
  assert_success
  run mtoken check --consume "$tok"
  assert_output "mtoken: check: used"
}
