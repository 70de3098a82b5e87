#!/usr/bin/env bats
# mchallenge: the hold / challenge / confirm loop, bounces of challenges,
# expiry, the suppression rules one by one, the preview commands, races,
# a crash between hold and challenge, and the real procmail and maildrop
# running contrib's recipes.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
  MD="$M/Maildir"
  fake_sendmail "$M/sendmail"
  MC=(mchallenge --deliver "maildir:$MD" --sendmail "$M/sendmail" --hostname mx.ours.example)
}

# mkmsg FILE SENDER [SUBJECT [EXTRA-HEADER]]: a message to bob@ours.example.
mkmsg() {
  { printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\nFrom: %s\nTo: bob@ours.example\n' "$2" "$2"
    printf 'Subject: %s\nMessage-ID: <%s@sender.example>\n' "${3:-hello}" "$RANDOM$RANDOM"
    [ -z "${4:-}" ] || printf '%s\n' "$4"
    printf '\nthe secret body text\n'; } >"$1"
}

challenges() { find "$M/sent" -name msg 2>/dev/null | wc -l; }
delivered() { find "$MD/new" -type f 2>/dev/null | wc -l; }
last_challenge() { ls -d "$M"/sent/* | tail -1; }
# confirm_of DIR: the confirm address of the challenge in DIR.
confirm_of() { sed -n 's/^Reply-To: <\(.*\)>$/\1/p' "$1/msg"; }
held_ids() { mchallenge list | cut -f1; }

@test "help and version exit 0; no --deliver is a usage error" {
  run mchallenge --help
  assert_success
  assert_output --partial "--deliver"
  run mchallenge --version
  assert_success
  mkmsg "$M/m.eml" friend@good.example
  run mchallenge <"$M/m.eml"
  assert_failure 64
}

@test "whitelisted and stamped mail is delivered at once, with its verdict" {
  mkmsg "$M/w.eml" friend@good.example
  run "${MC[@]}" <"$M/w.eml"
  assert_success
  assert_output ""
  [ "$(delivered)" -eq 1 ]
  grep -q '^X-Mailstamp-Class: W' "$MD"/new/*
  stamp=$(hashcash -m -q -b 16 bob@ours.example)
  mkmsg "$M/g.eml" paid@stranger.example hi "X-Hashcash: $stamp"
  printf '[mchallenge]\nmin-bits = 16\n' >"$M/conf"
  run "${MC[@]}" --config "$M/conf" <"$M/g.eml"
  assert_success
  [ "$(delivered)" -eq 2 ]
  grep -l '^X-Mailstamp-Class: G' "$MD"/new/* | xargs grep -q '^Subject: \[G\] hi'
  [ "$(challenges)" -eq 0 ]
}

@test "mail delivered at once (W, G, B) keeps its whole body after the edited header" {
  { printf 'Return-Path: <friend@good.example>\nX-Original-To: bob@ours.example\nFrom: friend@good.example\n'
    printf 'X-Mailstamp-Class: G (forged) by mx.ours.example\nSubject: long\n\n'
    seq 1 2000; } >"$M/w.eml"
  run "${MC[@]}" <"$M/w.eml"
  assert_success
  f=$(ls "$MD"/new/*)
  grep -q '^X-Mailstamp-Class: W' "$f"
  ! grep -q 'forged' "$f"
  # Everything after the first blank line is the body as it came.
  diff <(sed '1,/^$/d' "$f") <(seq 1 2000)
  rm "$f"
  printf '[mchallenge]\nunchallenged = deliver\n' >"$M/conf"
  mkmsg "$M/l.eml" g@x.example hi "List-Id: <l.x.example>"
  run "${MC[@]}" --config "$M/conf" <"$M/l.eml"
  assert_success
  f=$(ls "$MD"/new/*)
  grep -q '^Subject: \[B\] hi' "$f"
  [ "$(sed '1,/^$/d' "$f")" = "the secret body text" ]
}

@test "signed postage is checked on the body as it came, after forged verdict fields are stripped" {
  A=(--db "$M/authority.db")
  S=(--db "$M/sender.db")
  mstamp "${A[@]}" authority init >/dev/null
  mstamp "${A[@]}" authority pubkey >"$M/authority.pub"
  owner=$(mstamp "${S[@]}" book keygen)
  mstamp "${A[@]}" authority issue --owner "$owner" --count 2 | mstamp "${S[@]}" book import - >/dev/null
  mkmsg "$M/m.eml" payer@stranger.example "paid"
  mstamp "${S[@]}" --paid --rcpt bob@ours.example <"$M/m.eml" >"$M/paid.eml" 2>/dev/null
  # Verdict fields forged on the way: stripped before the check, which must still find the body where it is.
  sed -i '1i X-Mailstamp-Class: W (forged) by mx.ours.example\nAuthentication-Results: mx.ours.example; x-mailstamp-postage=pass' "$M/paid.eml"
  printf '[mchallenge]\nauthority-key = %s\n' "$M/authority.pub" >"$M/conf"
  run "${MC[@]}" --config "$M/conf" <"$M/paid.eml"
  assert_success
  [ "$(challenges)" -eq 0 ]
  f=$(ls "$MD"/new/*)
  grep -q '^X-Mailstamp-Class: G' "$f"
  ! grep -q forged "$f"
  [ "$(sed '1,/^$/d' "$f")" = "the secret body text" ]
}

@test "unknown sender: held, challenged; the reply releases the message byte-identical plus one field and whitelists the sender" {
  mkmsg "$M/u.eml" ann@stranger.example "a question"
  run "${MC[@]}" <"$M/u.eml"
  assert_success
  [ "$(delivered)" -eq 0 ]
  [ "$(challenges)" -eq 1 ]
  c=$(last_challenge)
  # The challenge: to the sender, from the confirm address, marked auto-replied, headers quoted, never the body.
  grep -q '^To: <ann@stranger.example>$' "$c/msg"
  grep -q '^Auto-Submitted: auto-replied$' "$c/msg"
  grep -q '^Precedence: bulk$' "$c/msg"
  grep -q '^    Subject: a question$' "$c/msg"
  ! grep -q 'secret body' "$c/msg"
  # Its envelope sender is a tagged address of ours, so its bounces come back identifiable.
  [ "$(sed -n 2p "$c/argv")" = -f ]
  [[ "$(sed -n 3p "$c/argv")" == bob+*@ours.example ]]
  [ "$(tail -1 "$c/argv")" = ann@stranger.example ]
  run mchallenge list
  assert_output --partial $'\tpending\t'
  assert_output --partial "ann@stranger.example"
  conf=$(confirm_of "$c")
  [[ "$conf" == bob+*@ours.example ]]
  printf 'Return-Path: <ann@stranger.example>\nX-Original-To: %s\nFrom: ann@stranger.example\nSubject: Re: confirm\n\nyes, me\n' "$conf" >"$M/reply.eml"
  run "${MC[@]}" <"$M/reply.eml"
  assert_success
  [ "$(delivered)" -eq 1 ]
  f=$(ls "$MD"/new/*)
  head -1 "$f" | grep -q '^X-Mailstamp-Released: confirmed by ann@stranger.example; '
  tail -n +2 "$f" | cmp - "$M/u.eml"
  run mwhitelist check ann@stranger.example
  assert_success
  [ "$(mwhitelist list --json | jq -r '.[] | select(.value=="ann@stranger.example") | .source')" = confirmed ]
  run mchallenge list
  assert_output ""
  # From now on, ann's mail goes straight through.
  mkmsg "$M/u2.eml" ann@stranger.example "again"
  run "${MC[@]}" <"$M/u2.eml"
  [ "$(delivered)" -eq 2 ]
  [ "$(challenges)" -eq 1 ]
  # A second confirmation, too late: delivered as Response [R].
  run "${MC[@]}" <"$M/reply.eml"
  assert_success
  [ "$(delivered)" -eq 3 ]
  grep -l '^X-Mailstamp-Class: R' "$MD"/new/* | xargs grep -q '^Subject: \[R\] Re: confirm'
}

@test "a bounced challenge makes the held message Deletable, files the notice as Match Information; expire purges both" {
  mkmsg "$M/u.eml" forged@nowhere.example
  "${MC[@]}" <"$M/u.eml"
  c=$(last_challenge)
  env_from=$(sed -n 3p "$c/argv")
  mid=$(sed -n 's/^Message-ID: //p' "$c/msg")
  {
    printf 'Return-Path: <>\nX-Original-To: %s\nFrom: MAILER-DAEMON@mx.nowhere.example\nSubject: Undelivered Mail Returned to Sender\n' "$env_from"
    printf 'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
    printf -- '--B\nContent-Type: text/plain\n\nThe mail system could not deliver your message.\n\n'
    printf -- '--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.nowhere.example\n\n'
    printf 'Final-Recipient: rfc822; forged@nowhere.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n\n'
    printf -- '--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: %s\nSubject: Please confirm\n\n--B--\n' "$mid"
  } >"$M/dsn.eml"
  run mchallenge bounce <"$M/dsn.eml"
  assert_success
  assert_line "notice: yes"
  assert_line "failure: permanent"
  assert_line --partial "recipient: forged@nowhere.example 5.1.1"
  id=$(held_ids)
  assert_line "challenge: $id"
  run "${MC[@]}" <"$M/dsn.eml"
  assert_success
  [ "$(delivered)" -eq 0 ]
  run mchallenge list
  assert_output --partial "$id"$'\tdeletable'
  assert_output --partial $'\tmatch\t'
  run mchallenge expire
  assert_success
  assert_output --partial "purged 2"
  run mchallenge list
  assert_output ""
  [ "$(find "$M" -path '*held/*' -type f | wc -l)" -eq 0 ]
}

@test "a notice that matches nothing we sent is Information [I]" {
  printf 'Return-Path: <>\nX-Original-To: bob@ours.example\nFrom: MAILER-DAEMON@x.example\nSubject: failure\n\nsorry\n' >"$M/n.eml"
  run "${MC[@]}" <"$M/n.eml"
  assert_success
  grep -q '^X-Mailstamp-Class: I' "$MD"/new/*
  [ "$(challenges)" -eq 0 ]
}

@test "no challenge for: <>, MAILER-DAEMON, postmaster, Auto-Submitted, List-*, Precedence, our own challenges, the daily quota" {
  n=0
  for case in "postmaster@x.example|" "a@x.example|Auto-Submitted: auto-replied" \
              "b@x.example|List-Id: <l.x.example>" "c@x.example|Precedence: bulk" "d@x.example|Precedence: junk" \
              "e@x.example|Precedence: list" "f@x.example|X-Mailstamp-Challenge: 0123456789abcdef"; do
    mkmsg "$M/s.eml" "${case%%|*}" hi "${case#*|}"
    run "${MC[@]}" <"$M/s.eml"
    assert_success
    n=$((n + 1))
  done
  # The null sender: a notice that matches nothing is delivered as Information; no challenge. A non-null
  # sender named MAILER-DAEMON is no notice (anyone can take the name): held, but never challenged.
  mkmsg "$M/s.eml" "" hi
  run "${MC[@]}" --sender '' <"$M/s.eml"
  assert_success
  mkmsg "$M/s.eml" mailer-daemon@x.example hi
  run "${MC[@]}" <"$M/s.eml"
  assert_success
  n=$((n + 1))
  [ "$(grep -l '^X-Mailstamp-Class: I' "$MD"/new/* | wc -l)" -eq 1 ]
  [ "$(challenges)" -eq 0 ]
  [ "$(mchallenge list | grep -c $'\tquiet\t')" -eq "$n" ]
  # Auto-Submitted: no is a person: challenged.
  mkmsg "$M/p.eml" person@x.example hi "Auto-Submitted: no"
  "${MC[@]}" <"$M/p.eml"
  [ "$(challenges)" -eq 1 ]
  # The quota: the fourth message of a day from one sender is held without a challenge.
  for i in 2 3 4 5; do mkmsg "$M/p$i.eml" person@x.example "hi $i"; "${MC[@]}" <"$M/p$i.eml"; done
  [ "$(challenges)" -eq 3 ]
  run mchallenge show "$(mchallenge list | grep 'hi 5' | cut -f1)"
  assert_line "Note: daily challenge quota reached"
  # unchallenged = deliver: tagged [B] instead of held.
  printf '[mchallenge]\nunchallenged = deliver\n' >"$M/conf"
  mkmsg "$M/l.eml" g@x.example hi "List-Id: <l.x.example>"
  run "${MC[@]}" --config "$M/conf" <"$M/l.eml"
  assert_success
  grep -l '^Subject: \[B\] hi' "$MD"/new/* | xargs grep -q 'not challenged: mailing list'
}

@test "expiry: held mail past the holding time becomes Deletable and is purged; a late confirmation is a Response" {
  mkmsg "$M/u.eml" late@stranger.example
  "${MC[@]}" --hold-time 2d <"$M/u.eml"
  conf=$(confirm_of "$(last_challenge)")
  export MAILSTAMP_TEST_NOW=$(($(date +%s) + 86400))
  run mchallenge expire --after 2d
  assert_output --partial "expired 0"
  export MAILSTAMP_TEST_NOW=$(($(date +%s) + 3 * 86400))
  run mchallenge expire --after 2d
  assert_output --partial "expired 1, purged 1"
  run mchallenge list
  assert_output ""
  printf 'Return-Path: <late@stranger.example>\nX-Original-To: %s\nFrom: late@stranger.example\nSubject: yes\n\nme\n' "$conf" >"$M/reply.eml"
  run "${MC[@]}" <"$M/reply.eml"
  assert_success
  grep -q '^X-Mailstamp-Class: R' "$MD"/new/*
}

@test "preview commands: list --json, show, release, delete, whitelist; IDs on stdin" {
  for s in a b c d; do mkmsg "$M/$s.eml" "$s@stranger.example" "from $s"; "${MC[@]}" <"$M/$s.eml"; done
  run mchallenge list --json
  assert_success
  [ "$(jq length <<<"$output")" -eq 4 ]
  [ "$(jq -r '.[0].state' <<<"$output")" = pending ]
  ida=$(jq -r '.[] | select(.sender=="a@stranger.example") | .id' <<<"$output")
  idb=$(jq -r '.[] | select(.sender=="b@stranger.example") | .id' <<<"$output")
  idc=$(jq -r '.[] | select(.sender=="c@stranger.example") | .id' <<<"$output")
  run mchallenge show "$ida"
  assert_success
  assert_line "Sender: a@stranger.example"
  assert_line "Subject: from a"
  refute_output --partial "secret body"
  run mchallenge --deliver "maildir:$MD" release "$ida"
  assert_success
  [ "$(delivered)" -eq 1 ]
  run mwhitelist check a@stranger.example
  assert_failure
  echo "$idb" | mchallenge delete -
  run mchallenge --deliver "maildir:$MD" whitelist "$idc"
  assert_success
  [ "$(delivered)" -eq 2 ]
  mwhitelist check c@stranger.example
  run mchallenge list
  [ "$(grep -c . <<<"$output")" -eq 1 ]
  assert_output --partial d@stranger.example
  run mchallenge --deliver "maildir:$MD" release "$ida"
  assert_failure 1
  run mchallenge list --older 1d
  assert_output ""
}

@test "races: parallel deliveries all held; two confirmations at once release once; a confirmation racing expiry" {
  for i in $(seq 8); do mkmsg "$M/p$i.eml" "p$i@stranger.example" "par $i"; done
  for i in $(seq 8); do "${MC[@]}" <"$M/p$i.eml" & done
  wait
  [ "$(mchallenge list | wc -l)" -eq 8 ]
  [ "$(challenges)" -eq 8 ]
  c=$(grep -l 'p1@stranger.example' "$M"/sent/*/argv | head -1)
  conf=$(confirm_of "$(dirname "$c")")
  printf 'Return-Path: <p1@stranger.example>\nX-Original-To: %s\nFrom: p1@stranger.example\nSubject: yes\n\nme\n' "$conf" >"$M/r.eml"
  "${MC[@]}" <"$M/r.eml" & "${MC[@]}" <"$M/r.eml" & wait
  # The message once, and the other confirmation as a Response.
  [ "$(grep -l '^X-Mailstamp-Released' "$MD"/new/* | wc -l)" -eq 1 ]
  [ "$(grep -l '^X-Mailstamp-Class: R' "$MD"/new/* | wc -l)" -eq 1 ]
  c=$(grep -l 'p2@stranger.example' "$M"/sent/*/argv | head -1)
  conf=$(confirm_of "$(dirname "$c")")
  printf 'Return-Path: <p2@stranger.example>\nX-Original-To: %s\nFrom: p2@stranger.example\nSubject: yes\n\nme\n' "$conf" >"$M/r2.eml"
  "${MC[@]}" <"$M/r2.eml" & MAILSTAMP_TEST_NOW=$(($(date +%s) + 30 * 86400)) mchallenge expire >/dev/null & wait
  # Either the release won (delivered once) or the expiry did (a Response): never both, never neither.
  rel=$(grep -l '^X-Mailstamp-Released: confirmed by p2' "$MD"/new/* | wc -l)
  resp=$(grep -l '^From: p2@stranger.example' "$MD"/new/* | xargs grep -l '^X-Mailstamp-Class: R' | wc -l)
  [ $((rel + resp)) -eq 1 ]
}

@test "a row held under the old key (sender|Message-ID|size) still works; the same bytes again are held, not dropped" {
  mkmsg "$M/u.eml" old@stranger.example "from before"
  "${MC[@]}" <"$M/u.eml"
  id=$(held_ids)
  mid=$(sed -n 's/^Message-ID: //p' "$M/u.eml")
  store_sql "UPDATE held SET msg_key='old@stranger.example|$mid|$(stat -c %s "$M/u.eml")' WHERE id='$id'"
  run "${MC[@]}" <"$M/u.eml"
  assert_success
  [ "$(mchallenge list | wc -l)" -eq 2 ]
  [ "$(store_sql "SELECT count(*) FROM held WHERE msg_key LIKE 'sha256:%'")" -eq 1 ]
  # Its confirmation releases it (and the copy held since, for the same recipient).
  conf=$(sed -n 's/^Reply-To: <\(.*\)>$/\1/p' "$(grep -l "challenge.$id@" "$M"/sent/*/msg)")
  printf 'Return-Path: <old@stranger.example>\nX-Original-To: %s\nFrom: old@stranger.example\nSubject: yes\n\nme\n' "$conf" >"$M/r.eml"
  run "${MC[@]}" <"$M/r.eml"
  assert_success
  [ "$(delivered)" -eq 2 ]
  run mchallenge list
  assert_output ""
}

@test "a crash between hold and challenge: the message stays held, and the MTA's retry sends the challenge once" {
  # The crash comes from outside, as a real one would: a sendmail that kills mchallenge (its parent) with
  # SIGKILL the moment it is started to send the challenge, before taking anything.
  printf '#!/bin/bash\nkill -KILL "$PPID"\nexit 1\n' >"$M/killer"
  chmod +x "$M/killer"
  CRASH=(mchallenge --deliver "maildir:$MD" --sendmail "$M/killer" --hostname mx.ours.example)
  mkmsg "$M/u.eml" crash@stranger.example
  run "${CRASH[@]}" <"$M/u.eml"
  [ "$status" -eq 137 ]
  assert_failure
  [ "$(challenges)" -eq 0 ]
  run mchallenge list
  assert_output --partial $'\theld\t'
  run "${MC[@]}" <"$M/u.eml"
  assert_success
  [ "$(challenges)" -eq 1 ]
  [ "$(mchallenge list | wc -l)" -eq 1 ]
  run mchallenge list
  assert_output --partial $'\tpending\t'
  # A challenge that could not go out is sent by expire.
  mkmsg "$M/v.eml" crash2@stranger.example
  run "${CRASH[@]}" <"$M/v.eml"
  [ "$status" -eq 137 ]
  run mchallenge --sendmail "$M/sendmail" expire
  assert_output --partial "challenged 1"
  [ "$(challenges)" -eq 2 ]
}

@test "challenges through --relay are captured by smtp-sink" {
  need_smtp_sink
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  u=(); [ "$(id -u)" -ne 0 ] || u=(-u root)
  mkdir -p "$M/sink"
  smtp-sink "${u[@]}" -d "$M/sink/%M." "127.0.0.1:$port" 10 >/dev/null 2>&1 3>&- &
  sink=$!
  for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  mkmsg "$M/u.eml" ann@stranger.example
  run mchallenge --deliver "maildir:$MD" --relay "127.0.0.1:$port" <"$M/u.eml"
  kill "$sink"
  assert_success
  f=$(ls "$M"/sink/*)
  grep -q '^X-Rcpt-Args: <ann@stranger.example>' "$f"
  grep -q '^X-Mail-Args: <bob+' "$f"
  grep -q '^Auto-Submitted: auto-replied' "$f"
}

@test "procmail runs the whole loop with contrib/mchallenge.procmailrc; a failing store files nothing (75)" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  mkdir -p "$MD"/{cur,new,tmp}
  rc() { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$M"; echo "MAILSTAMP_DB=$1"
         echo "MAILSTAMP_CONFIG=$M/conf"; cat "$MAILSTAMP_SRC/contrib/mchallenge.procmailrc"; }
  printf '[mchallenge]\nsendmail = %s\nhostname = mx.ours.example\n' "$M/sendmail" >"$M/conf"
  rc "$MAILSTAMP_DB" >"$M/rc"
  cd "$M"
  mkmsg "$M/u.eml" ann@stranger.example "via procmail"
  run procmail -m "$M/rc" <"$M/u.eml"
  assert_success
  [ "$(challenges)" -eq 1 ]
  [ "$(delivered)" -eq 0 ]
  conf=$(confirm_of "$(last_challenge)")
  printf 'Return-Path: <ann@stranger.example>\nX-Original-To: %s\nFrom: ann@stranger.example\nSubject: ok\n\nme\n' "$conf" >"$M/r.eml"
  run procmail -m "$M/rc" <"$M/r.eml"
  assert_success
  [ "$(delivered)" -eq 1 ]
  grep -q '^Subject: via procmail' "$MD"/new/*
  mwhitelist check ann@stranger.example
  # A bounced challenge, through procmail too.
  mkmsg "$M/v.eml" gone@nowhere.example
  procmail -m "$M/rc" <"$M/v.eml"
  env_from=$(sed -n 3p "$(last_challenge)/argv")
  printf 'Return-Path: <>\nX-Original-To: %s\nFrom: MAILER-DAEMON@x\nSubject: failure\nX-Failed-Recipients: gone@nowhere.example\n\nA message that you sent could not be delivered.\n' "$env_from" >"$M/b.eml"
  run procmail -m "$M/rc" <"$M/b.eml"
  assert_success
  mchallenge list | grep -q $'\tdeletable\t'
  run mchallenge expire
  assert_output --partial "purged 2"
  rc "$M" >"$M/rc-broken"
  run procmail -m "$M/rc-broken" <"$M/u.eml"
  assert_failure 75
  [ "$(delivered)" -eq 1 ]
}

@test "maildrop runs the loop with contrib/mchallenge.mailfilter; a failing store files nothing (75)" {
  command -v maildrop >/dev/null || skip "maildrop is not installed"
  mkdir -p "$MD"/{cur,new,tmp}
  printf '[mchallenge]\nsendmail = %s\nhostname = mx.ours.example\n' "$M/sendmail" >"$M/conf"
  { echo "PATH=\"$MAILSTAMP_BIN:/usr/bin:/bin\""; echo "HOME=\"$M\""; echo "MAILSTAMP_DB=\"$MAILSTAMP_DB\""
    echo "MAILSTAMP_CONFIG=\"$M/conf\""; cat "$MAILSTAMP_SRC/contrib/mchallenge.mailfilter"; } >"$M/mailfilter"
  chmod 600 "$M/mailfilter"
  mkmsg "$M/u.eml" ann@stranger.example "via maildrop"
  run maildrop "$M/mailfilter" <"$M/u.eml"
  assert_success
  [ "$(challenges)" -eq 1 ]
  conf=$(confirm_of "$(last_challenge)")
  printf 'Return-Path: <ann@stranger.example>\nX-Original-To: %s\nFrom: ann@stranger.example\nSubject: ok\n\nme\n' "$conf" >"$M/r.eml"
  run maildrop "$M/mailfilter" <"$M/r.eml"
  assert_success
  grep -q '^Subject: via maildrop' "$MD"/new/*
  sed "s|^MAILSTAMP_DB=.*|MAILSTAMP_DB=\"$M\"|" "$M/mailfilter" >"$M/mailfilter-broken"
  chmod 600 "$M/mailfilter-broken"
  run maildrop "$M/mailfilter-broken" <"$M/u.eml"
  assert_failure 75
  [ "$(delivered)" -eq 1 ]
}

@test "--deliver sendmail hands mail to deliver-sendmail with the envelope; --trust-upstream takes the proxy's verdict" {
  printf '#!/bin/bash\nprintf "%%s\\n" "$@" >"%s/deliver.argv"\ncat >"%s/deliver.msg"\n' "$M" "$M" >"$M/deliver"
  chmod +x "$M/deliver"
  printf '[mchallenge]\ndeliver-sendmail = %s\n' "$M/deliver" >"$M/conf"
  mkmsg "$M/w.eml" friend@good.example
  run mchallenge --config "$M/conf" --deliver sendmail --sendmail "$M/sendmail" <"$M/w.eml"
  assert_success
  [ "$(sed -n 3p "$M/deliver.argv")" = friend@good.example ]
  [ "$(tail -1 "$M/deliver.argv")" = bob@ours.example ]
  grep -q '^X-Mailstamp-Class: W' "$M/deliver.msg"
  # Behind msmtp-proxy, which already decided: no second check, no challenge.
  mkmsg "$M/u.eml" stranger@x.example hi "X-Mailstamp-Class: G (Stamped: hashcash) by mx.ours.example"
  run "${MC[@]}" --trust-upstream <"$M/u.eml"
  assert_success
  [ "$(challenges)" -eq 0 ]
  grep -q '^Subject: \[G\] hi' "$MD"/new/*
  # Without it, the same field is a forgery: stripped, and the stranger is challenged.
  run "${MC[@]}" <"$M/u.eml"
  [ "$(challenges)" -eq 1 ]
}

@test "an autoresponder answering the challenge confirms nothing; a delay notice leaves the message held" {
  mkmsg "$M/u.eml" forged@victim.example "buy now"
  "${MC[@]}" <"$M/u.eml"
  c=$(last_challenge)
  conf=$(confirm_of "$c")
  printf 'Return-Path: <forged@victim.example>\nX-Original-To: %s\nFrom: forged@victim.example\nAuto-Submitted: auto-replied\nSubject: Out of office\n\naway\n' "$conf" >"$M/vac.eml"
  run "${MC[@]}" <"$M/vac.eml"
  assert_success
  [ "$(delivered)" -eq 0 ]
  run mwhitelist check forged@victim.example
  assert_failure
  run mchallenge list
  assert_output --partial $'\tpending\t'
  assert_output --partial $'\tmatch\t'
  env_from=$(sed -n 3p "$c/argv")
  { printf 'Return-Path: <>\nX-Original-To: %s\nFrom: MAILER-DAEMON@mx.victim.example\nSubject: Delayed Mail (still being retried)\n' "$env_from"
    printf 'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n--B\nContent-Type: message/delivery-status\n\n'
    printf 'Reporting-MTA: dns; mx.victim.example\n\nFinal-Recipient: rfc822; forged@victim.example\nAction: delayed\nStatus: 4.4.1\n\n--B--\n'; } >"$M/delay.eml"
  run "${MC[@]}" <"$M/delay.eml"
  assert_success
  run mchallenge list
  assert_output --partial $'\tpending\t'
  refute_output --partial deletable
}
