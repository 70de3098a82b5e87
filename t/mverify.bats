#!/usr/bin/env bats
# mverify: every category, the bad-mail modes, forged verdicts, hashcash
# interop with Debian's hashcash both ways, double spends, and messages of
# odd shapes passing through byte-identical apart from what mverify adds.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  mwhitelist domain add ours.example
}

# mkmsg FILE SENDER [MESSAGE-ID [BODY]]: a CRLF message to bob@ours.example.
mkmsg() {
  printf 'Return-Path: <%s>\r\nFrom: %s\r\nTo: Bob <bob@ours.example>\r\nSubject: hello\r\nMessage-ID: <%s@sender.example>\r\n\r\n%s\r\n' \
    "$2" "$2" "${3:-m1}" "${4:-hello bob}" >"$1"
}

# class_of FILE: the category letter mverify gave.
class_of() { sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1"; }

# stamp FILE BITS [RESOURCE]: prepend an X-Hashcash stamp minted by Debian's hashcash.
stamp() {
  local s
  s=$(hashcash -m -q -b "$2" "${@:4}" "${3:-bob@ours.example}")
  { printf 'X-Hashcash: %s\r\n' "$s"; cat "$1"; } >"$1.tmp" && mv "$1.tmp" "$1"
}

@test "help and version exit 0; usage and configuration errors exit 64 and 78" {
  run mverify --help
  assert_success
  assert_output --partial "--authority-key"
  run mverify --version
  assert_success
  mkmsg "$M/m.eml" x@stranger.example
  run mverify --unknown maybe <"$M/m.eml"
  assert_failure 64
  assert_output --partial "unknown must be mark or reject"
  run mverify --min-bits x <"$M/m.eml"
  assert_failure 64
  printf '[mverify]\nmin-bits = lots\n' >"$M/conf"
  run mverify --config "$M/conf" <"$M/m.eml"
  assert_failure 78
  assert_output --partial "conf:2"
  run mverify --authority-key "$M/missing.pub" <"$M/m.eml"
  assert_failure 66
}

@test "Unknown [B]: tagged and marked by default; --unknown reject exits 69 with 5.7.1 and writes nothing" {
  mkmsg "$M/m.eml" x@stranger.example
  mverify --authserv-id mx.ours.example <"$M/m.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  grep -q '^Subject: \[B\] hello' "$M/out.eml"
  # No client given (so no SPF), no signature, and the tests' DNS knows no DMARC record for stranger.example.
  grep -qxF 'Authentication-Results: mx.ours.example; dkim=none (no signatures); dmarc=none (no DMARC record) header.from=stranger.example; arc=none; x-mailstamp-hashcash=none; x-mailstamp-postage=none' <(tr -d '\r' <"$M/out.eml")
  run --separate-stderr mverify --unknown reject <"$M/m.eml"
  assert_failure 69
  assert_output ""
  [[ "$stderr" == *"5.7.1"* ]]
  printf '[mverify]\nunknown = reject\n' >"$M/conf"
  run --separate-stderr mverify --config "$M/conf" <"$M/m.eml"
  assert_failure 69
}

@test "Whitelist [W]: envelope sender, From, a domain entry, an unconditional recipient, a token address" {
  mkmsg "$M/m.eml" ann@friend.example
  mwhitelist add ann@friend.example
  mverify <"$M/m.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = W ]
  grep -q '^Subject: \[W\] hello' "$M/out.eml"
  run mwhitelist list --json
  [ "$(jq '.[] | select(.value=="ann@friend.example") | .hits' <<<"$output")" -eq 1 ]
  # From alone counts when the envelope sender differs (a mailing list, a forwarder)
  printf 'Return-Path: <bounces@list.example>\nFrom: Ann <ann@friend.example>\nTo: bob@ours.example\nSubject: x\n\nx\n' >"$M/l.eml"
  mverify <"$M/l.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = W ]
  # a BATV-tagged sender of a whitelisted domain
  mwhitelist add @corp.example
  mkmsg "$M/b.eml" prvs=1234abcd=joe@corp.example
  mverify <"$M/b.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = W ]
  # an unconditional recipient takes mail from anyone
  mwhitelist add --recipient postmaster@ours.example
  mkmsg "$M/p.eml" x@stranger.example
  mverify --rcpt postmaster@ours.example <"$M/p.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = W ]
  # a one-time token address lets one message in
  tok=$(mtoken make --once bob@ours.example)
  mverify --rcpt "$tok" --sender x@stranger.example <"$M/p.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = W ]
  grep -q "token address" "$M/out.eml"
  mverify --rcpt "$tok" --sender x@stranger.example <"$M/p.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
}

@test "Information [I]: a notice from the null sender; a delivery-status report from anyone else is [B]" {
  mkmsg "$M/m.eml" x@stranger.example
  mverify --sender '<>' <"$M/m.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = I ]
  printf 'Return-Path: <>\nFrom: MAILER-DAEMON@mx.example\nTo: bob@ours.example\nSubject: Undelivered\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n\nx\n--b--\n' >"$M/r.eml"
  mverify <"$M/r.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = I ]
  # The same report with no envelope sender known, or a sender that only calls itself MAILER-DAEMON: the shape
  # of a body is the sender's to forge (mailstamp(7) ADMISSION).
  sed 1d "$M/r.eml" | mverify >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  mverify --sender MAILER-DAEMON@mx.example <"$M/r.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  # a bounce is not rejected by --unknown reject
  run mverify --unknown reject --sender '' <"$M/m.eml"
  assert_success
}

@test "Stamped [G]: a stamp minted by hashcash -m passes; one minted by mstamp passes both" {
  mkmsg "$M/m.eml" x@stranger.example
  stamp "$M/m.eml" 12
  mverify --min-bits 12 <"$M/m.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = G ]
  grep -q '^Subject: \[G\] hello' "$M/out.eml"
  grep -q 'x-mailstamp-hashcash=pass (1[2-9] bits for bob@ours.example)' "$M/out.eml"
  # mstamp's stamps: hashcash -c accepts them, and so does mverify
  mwhitelist --db "$M/sender.db" import </dev/null >/dev/null
  printf 'From: a@out.example\nTo: bob@ours.example\nSubject: s\nMessage-ID: <s1@out.example>\n\nbody\n' | mstamp --db "$M/sender.db" --bits 12 >"$M/s.eml"
  run hashcash -cXy -b 12 -r bob@ours.example <"$M/s.eml"
  assert_success
  mverify --min-bits 12 <"$M/s.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = G ]
}

@test "bad stamps fail in hashcash -c and in mverify alike: wrong resource, too few bits, expired, spent" {
  for case in resource bits expired; do
    mkmsg "$M/$case.eml" x@stranger.example "$case"
  done
  stamp "$M/resource.eml" 12 carol@ours.example
  stamp "$M/bits.eml" 6
  stamp "$M/expired.eml" 12 bob@ours.example -t 200101
  for case in resource bits expired; do
    run hashcash -cX -b 12 -r bob@ours.example <"$M/$case.eml"
    assert_failure
    mverify --min-bits 12 <"$M/$case.eml" >"$M/out.eml"
    [ "$(class_of "$M/out.eml")" = B ]
    grep -q 'x-mailstamp-hashcash=fail' "$M/out.eml"
  done
  grep -q 'fail (expired)' "$M/out.eml"
  # spent: the same stamp on a second, different message
  mkmsg "$M/a.eml" x@stranger.example a "first"
  stamp "$M/a.eml" 12
  { grep '^X-Hashcash' "$M/a.eml"; grep -v '^X-Hashcash' "$M/a.eml" | sed 's/first/second/; s/<a@/<b@/'; } >"$M/b.eml"
  run hashcash -cX -d -f "$M/hc.db" -b 12 -r bob@ours.example <"$M/a.eml"
  assert_success
  run hashcash -cX -d -f "$M/hc.db" -b 12 -r bob@ours.example <"$M/b.eml"
  assert_failure
  mverify --min-bits 12 <"$M/a.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = G ]
  mverify --min-bits 12 <"$M/b.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  grep -q 'fail (spent on another message)' "$M/out.eml"
}

@test "the same message checked twice (an MTA retry) is not a double spend, even with LF for CRLF" {
  mkmsg "$M/m.eml" x@stranger.example
  stamp "$M/m.eml" 10
  mverify --min-bits 10 <"$M/m.eml" >"$M/1.eml"
  [ "$(class_of "$M/1.eml")" = G ]
  tr -d '\r' <"$M/m.eml" | mverify --min-bits 10 >"$M/2.eml"
  [ "$(class_of "$M/2.eml")" = G ]
}

@test "forged verdict headers are removed; other hosts' Authentication-Results stay" {
  mkmsg "$M/m.eml" x@stranger.example
  { printf 'X-Mailstamp-Class: W (Whitelist: forged) by mx.ours.example\r\n'
    printf 'X-MAILSTAMP-Extra: forged\r\n'
    printf 'Authentication-Results: MX.ours.example; x-mailstamp-hashcash=pass\r\n'
    printf 'Authentication-Results: (comment) mx.ours.example; x-mailstamp-postage=pass\r\n'
    printf 'Authentication-Results: relay.example; spf=pass smtp.mailfrom=x@stranger.example\r\n'
    cat "$M/m.eml"; } >"$M/f.eml"
  mverify --authserv-id mx.ours.example <"$M/f.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  run grep -ci '^X-Mailstamp' "$M/out.eml"
  assert_output 1
  run grep -c '^Authentication-Results: ' "$M/out.eml"
  assert_output 2
  grep -q '^Authentication-Results: relay.example; spf=pass' "$M/out.eml"
  # --trust-upstream takes a verdict already there as it is
  mverify --trust-upstream --authserv-id mx.ours.example <"$M/f.eml" >"$M/t.eml"
  [ "$(class_of "$M/t.eml")" = W ]
  grep -q '^Subject: \[W\] hello' "$M/t.eml"
}

@test "messages of odd shapes pass byte-identical apart from the two added fields" {
  for f in "$FIX"/message/*.eml; do
    mverify --no-tag --rcpt bob@ours.example --sender x@stranger.example <"$f" >"$M/out.eml" || {
      echo "mverify failed on $f"; return 1; }
    # The two fields go on top, below an mbox From line if there is one.
    mb=0
    if head -c 5 "$f" | grep -q '^From '; then mb=$(head -n 1 "$f" | wc -c); fi
    tail -c +$((mb + 1)) "$M/out.eml" | head -n 2 >"$M/added"
    grep -q '^X-Mailstamp-Class: B ' <(head -n 1 "$M/added")
    grep -q '^Authentication-Results: [^;]*; dkim=[^;]*; dmarc=[^;]*; arc=[^;]*; x-mailstamp-hashcash=none; x-mailstamp-postage=none$' <(tail -n 1 "$M/added" | tr -d '\r')
    { head -c "$mb" "$M/out.eml"; tail -c +$((mb + $(wc -c <"$M/added") + 1)) "$M/out.eml"; } >"$M/rest.eml"
    cmp "$f" "$M/rest.eml" || { echo "changed: $f"; return 1; }
  done
}

@test "a stamped 50 MB body passes through byte-identical and still earns [G]" {
  mkmsg "$M/m.eml" x@stranger.example big ""
  stamp "$M/m.eml" 10
  head -c 50000000 /dev/zero | tr '\0' 'x' | fold -w 76 >>"$M/m.eml"
  mverify --no-tag --min-bits 10 <"$M/m.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = G ]
  tail -n +3 "$M/out.eml" | cmp - "$M/m.eml"
}

@test "a store that fails is 75 with nothing on stdout; an oversized message is 65" {
  mkmsg "$M/m.eml" x@stranger.example
  mkdir "$M/dir.db"
  run --separate-stderr mverify --db "$M/dir.db" <"$M/m.eml"
  assert_failure 75
  assert_output ""
  run --separate-stderr mverify --max-size 100 <"$M/m.eml"
  assert_failure 65
  assert_output ""
}

# Messages for the recipe tests: one stamped, one whitelisted, one unknown.
recipe_mail() {
  mwhitelist add friend@friend.example
  mkmsg "$M/known.eml" friend@friend.example k "known"
  mkmsg "$M/stamped.eml" x@stranger.example s "stamped"
  stamp "$M/stamped.eml" 20
  mkmsg "$M/unknown.eml" y@stranger.example u "unknown"
  for d in "" .Unknown .Questionable; do mkdir -p "$HOME/Maildir/$d/"{cur,new,tmp}; done
}

@test "procmail with contrib/mverify.procmailrc files mail by category; a failing store files nothing (75)" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  recipe_mail
  # procmail resets HOME and the environment: set what the recipe needs in the rc.
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    cat "$MAILSTAMP_SRC/contrib/mverify.procmailrc"; } >"$M/rc"
  cd "$M"
  for m in known stamped unknown; do
    run procmail -m "$M/rc" <"$M/$m.eml"
    assert_success
  done
  grep -l '^Subject: \[W\] hello' "$HOME"/Maildir/new/*
  grep -l '^Subject: \[G\] hello' "$HOME"/Maildir/new/*
  grep -l '^Subject: \[B\] hello' "$HOME"/Maildir/.Unknown/new/*
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 3 ]
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$M"
    cat "$MAILSTAMP_SRC/contrib/mverify.procmailrc"; } >"$M/rc-broken"
  run procmail -m "$M/rc-broken" <"$M/known.eml"
  assert_failure 75
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 3 ]
}

@test "maildrop with contrib/mverify.mailfilter files mail by category; a failing store files nothing (75)" {
  command -v maildrop >/dev/null || skip "maildrop is not installed"
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  recipe_mail
  # maildrop exports the variables a filter file sets to the programs it runs.
  { echo "PATH=\"$MAILSTAMP_BIN:/usr/bin:/bin\""; echo "HOME=\"$HOME\""; echo "MAILSTAMP_DB=\"$MAILSTAMP_DB\""
    cat "$MAILSTAMP_SRC/contrib/mverify.mailfilter"; } >"$M/mailfilter"
  chmod 600 "$M/mailfilter"
  for m in known stamped unknown; do
    run maildrop "$M/mailfilter" <"$M/$m.eml"
    assert_success
  done
  grep -l '^Subject: \[W\] hello' "$HOME"/Maildir/new/*
  grep -l '^Subject: \[G\] hello' "$HOME"/Maildir/new/*
  grep -l '^Subject: \[B\] hello' "$HOME"/Maildir/.Unknown/new/*
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 3 ]
  sed "s|^MAILSTAMP_DB=.*|MAILSTAMP_DB=\"$M\"|" "$M/mailfilter" >"$M/mailfilter-broken"
  chmod 600 "$M/mailfilter-broken"
  run maildrop "$M/mailfilter-broken" <"$M/known.eml"
  assert_failure 75
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 3 ]
}

@test "contrib/mverify-reinject hands the classified message to sendmail with the same envelope, or nothing" {
  recipe_mail
  printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"%s/argv"\ncat >"%s/injected"\n' "$M" "$M" >"$M/sendmail"
  chmod +x "$M/sendmail"
  SENDMAIL="$M/sendmail" run "$MAILSTAMP_SRC/contrib/mverify-reinject" y@stranger.example bob@ours.example <"$M/unknown.eml"
  assert_success
  grep -q '^X-Mailstamp-Class: B' "$M/injected"
  run cat "$M/argv"
  assert_output "$(printf -- '-G\n-i\n-f\ny@stranger.example\n--\nbob@ours.example')"
  rm "$M/injected"
  MAILSTAMP_DB="$M" SENDMAIL="$M/sendmail" run "$MAILSTAMP_SRC/contrib/mverify-reinject" y@stranger.example bob@ours.example <"$M/unknown.eml"
  assert_failure 75
  [ ! -e "$M/injected" ]
}

# paid_setup: an authority, a sender store with a book of $1 stamps, and a stamped message $M/paid.eml to bob.
paid_setup() {
  AUTH=(--db "$M/authority.db")
  SEND=(--db "$M/sender.db")
  mstamp "${AUTH[@]}" authority init >/dev/null
  mstamp "${AUTH[@]}" authority pubkey >"$M/authority.pub"
  owner=$(mstamp "${SEND[@]}" book keygen)
  mstamp "${AUTH[@]}" authority issue --owner "$owner" --count "$1" | mstamp "${SEND[@]}" book import - >/dev/null
  mkmsg "$M/m.eml" x@stranger.example p1 "paid for"
  mstamp "${SEND[@]}" --paid --rcpt bob@ours.example <"$M/m.eml" >"$M/paid.eml" 2>/dev/null
}

# start_authority DB: `mstamp authority serve` on a free loopback port; sets AUTHORITY and SERVER_PID.
start_authority() {
  mstamp --db "$1" authority serve --listen 127.0.0.1:0 2>"$M/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 50); do grep -q 'listening on' "$M/serve.log" && break; sleep 0.1; done
  AUTHORITY=$(sed -n 's/.*listening on \(127.0.0.1:[0-9]*\).*/\1/p' "$M/serve.log")
  [ -n "$AUTHORITY" ]
}

teardown() {
  if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
}

@test "signed postage: [G] with the authority's key; untrusted without it; a lifted stamp is refused" {
  paid_setup 5
  mverify --authority-key "$M/authority.pub" <"$M/paid.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = G ]
  grep -q 'x-mailstamp-postage=pass (book [0-9a-f]* stamp 0 for bob@ours.example)' "$M/out.eml"
  # without the authority's key the stamp is not trusted
  for r in r2 r3 r4; do mwhitelist --db "$M/$r.db" import </dev/null >/dev/null; done
  mverify --db "$M/r2.db" <"$M/paid.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  grep -q 'x-mailstamp-postage=fail (untrusted authority)' "$M/out.eml"
  # lifted onto another message (same headers, another body)
  sed 's/paid for/something else/' "$M/paid.eml" >"$M/lifted.eml"
  mverify --db "$M/r3.db" --authority-key "$M/authority.pub" <"$M/lifted.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  grep -q 'x-mailstamp-postage=fail (wrong message)' "$M/out.eml"
  # lifted onto another recipient
  mverify --db "$M/r4.db" --rcpt carol@ours.example --authority-key "$M/authority.pub" <"$M/paid.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = B ]
  grep -q 'x-mailstamp-postage=fail (wrong recipient)' "$M/out.eml"
  run mstamp "${SEND[@]}" book balance
  assert_output 4
}

@test "the authority down gives [Q]; a malformed authority address is a usage error" {
  paid_setup 5
  # a port nobody listens on
  mverify --authority-key "$M/authority.pub" --authority 127.0.0.1:9 --authority-timeout 2s <"$M/paid.eml" >"$M/out.eml"
  [ "$(class_of "$M/out.eml")" = Q ]
  grep -q '^Subject: \[Q\] hello' "$M/out.eml"
  grep -q 'x-mailstamp-postage=temperror (authority unreachable)' "$M/out.eml"
  # a bad authority address is a usage error
  run mverify --authority-key "$M/authority.pub" --authority nowhere <"$M/paid.eml"
  assert_failure 64
  assert_output --partial "HOST:PORT"
}

@test "a real double spend: two copies of the sender's store, two receivers, one authority" {
  paid_setup 5
  cp "$M/sender.db" "$M/sender-copy.db"
  mkmsg "$M/m2.eml" x@stranger.example p2 "a different message"
  # both copies hand out book index 1 for a new message
  mstamp "${SEND[@]}" --paid --rcpt bob@ours.example <"$M/m.eml" >"$M/a.eml" 2>/dev/null
  mstamp --db "$M/sender-copy.db" --paid --rcpt bob@ours.example <"$M/m2.eml" >"$M/b.eml" 2>/dev/null
  [ "$(grep -o 'i=[0-9]*' "$M/a.eml")" = "$(grep -o 'i=[0-9]*' "$M/b.eml")" ]
  start_authority "$M/authority.db"
  for r in recv1 recv2 recv3; do mwhitelist --db "$M/$r.db" import </dev/null >/dev/null; done
  mverify --db "$M/recv1.db" --authority-key "$M/authority.pub" --authority "$AUTHORITY" <"$M/a.eml" >"$M/out1.eml"
  [ "$(class_of "$M/out1.eml")" = G ]
  # the same message checked again (a retry) is no double spend, locally or at the authority
  mverify --db "$M/recv1.db" --authority-key "$M/authority.pub" --authority "$AUTHORITY" <"$M/a.eml" >"$M/again.eml"
  [ "$(class_of "$M/again.eml")" = G ]
  mverify --db "$M/recv2.db" --authority-key "$M/authority.pub" --authority "$AUTHORITY" <"$M/b.eml" >"$M/out2.eml"
  [ "$(class_of "$M/out2.eml")" = B ]
  grep -q 'x-mailstamp-postage=fail (spent on another message, says the authority)' "$M/out2.eml"
  # without the online check, the second receiver could not have known
  mverify --db "$M/recv3.db" --authority-key "$M/authority.pub" <"$M/b.eml" >"$M/out3.eml"
  [ "$(class_of "$M/out3.eml")" = G ]
}
