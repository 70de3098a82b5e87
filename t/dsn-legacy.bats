#!/usr/bin/env bats
# The whole loop for the bounce formats of dsn_vendor.cpp and the older
# Exim and qmail texts: a challenge bounced by each family's notice (a
# fixture of t/fixtures/dsn/wild, sent to the challenge's envelope sender)
# makes the held message Deletable and is filed as Match Information; a
# delay notice leaves it held. mchallenge bounce names each family.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  mwhitelist domain add ours.example >/dev/null
  MD="$M/Maildir"
  fake_sendmail "$M/sendmail"
  MC=(mchallenge --deliver "maildir:$MD" --sendmail "$M/sendmail" --hostname mx.ours.example)
  W="$FIX/dsn/wild"
}

# hold SENDER: holds a message from SENDER to bob@ours.example; sets id (the held message) and env_from
# (its challenge's envelope sender).
hold() {
  printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\nFrom: %s\nTo: bob@ours.example\nSubject: hi\nMessage-ID: <%s@sender.example>\n\nbody\n' \
    "$1" "$1" "$RANDOM$RANDOM" >"$M/u.eml"
  "${MC[@]}" <"$M/u.eml"
  local c
  c=$(ls -d "$M"/sent/* | tail -1)
  env_from=$(sed -n 3p "$c/argv")
  id=$(mchallenge list | grep -F "$1" | cut -f1)
  [ -n "$id" ] && [ -n "$env_from" ]
}

# bounce FIXTURE: the fixture as delivered to the challenge's envelope sender.
bounce() {
  { printf 'X-Original-To: %s\n' "$env_from"; cat "$W/$1"; } >"$M/dsn.eml"
  "${MC[@]}" <"$M/dsn.eml"
}

state_of() { mchallenge list | awk -F'\t' -v id="$1" '$1 == id { print $2 }'; }

@test "a challenge bounced by each family's notice makes its held message Deletable, the notice Match Information" {
  n=0
  for f in domino/user-unknown domino/notes-failure-reasons groupwise/user-not-found groupwise/could-not-be-delivered \
           mdaemon/user-unknown smtp32/unknown-user iplanet/user-unknown iplanet/netscape-undeliverable \
           pmdf/illegal-host pmdf/v5-nosuchuser courier/remote-user-unknown qmail/machine-generated \
           qmail/vpopmail exim/exim3-remote simple/angle-sentence simple/own-line; do
    n=$((n + 1))
    hold "forged$n@nowhere.example"
    run bounce "$f.eml"
    assert_success
    [ "$(state_of "$id")" = deletable ] || { echo "$f: held message is $(state_of "$id")"; false; }
  done
  [ "$(find "$MD/new" -type f 2>/dev/null | wc -l)" -eq 0 ]
  [ "$(mchallenge list | awk -F'\t' '$2 == "match"' | wc -l)" -eq "$n" ]
}

@test "a delay notice of these families leaves the held message as it was" {
  n=0
  for f in courier/delayed iplanet/delayed pmdf/delayed mdaemon/delay-warning exim/exim3-delay simple/temporary; do
    n=$((n + 1))
    hold "slow$n@nowhere.example"
    before=$(state_of "$id")
    run bounce "$f.eml"
    assert_success
    [ "$(state_of "$id")" = "$before" ] || { echo "$f: held message is $(state_of "$id")"; false; }
  done
}

@test "mchallenge bounce names the family and the failed recipient" {
  for case in domino/two-recipients:domino:dave@notes.example groupwise/host-not-found-multi:groupwise:jack@gw.example \
              mdaemon/two-recipients:mdaemon:rita@remote.example smtp32/remote-rejected:smtp32:uma@remote.example \
              iplanet/two-recipients:iplanet:zoe@ims.example pmdf/relay-and-full:pmdf:greta@remote.example \
              courier/no-domain-and-quota:courier:kim@courier.example simple/own-line-two:simple:dara@simple.example; do
    IFS=: read -r f format rcpt <<<"$case"
    run mchallenge bounce <"$W/$f.eml"
    assert_success
    assert_line "notice: yes"
    assert_line "format: $format"
    assert_line --partial "recipient: $rcpt "
  done
  for f in simple/person-says-bounced simple/vacation-mentions-address simple/forwarded-notice; do
    run mchallenge bounce <"$W/$f.eml"
    assert_failure 1
    assert_output "notice: no"
  done
}
