#!/usr/bin/env bats
# The attacks a hostile sender tries, and the losses a delivery agent must
# never cause (the issue "Nothing lost, nothing raced"), each reproduced
# against the real programs with real clients on loopback. One section per
# attack, numbered as in mailstamp(7) THREATS; each test failed on the code
# before its fix.

load helpers

setup() {
  common_setup
  proxy_rig_setup
}

teardown() { kill_rig; }

# ---------------------------------------------------------------------------
# 1. mchallenge drops held mail that merely looks alike
# ---------------------------------------------------------------------------

# a1_setup: a Maildir, a sendmail that keeps each challenge (argv, message), and the mchallenge command line.
a1_setup() {
  mwhitelist domain add ours.example >/dev/null
  MD="$M/Maildir"
  mkdir -p "$MD"/{cur,new,tmp}
  cat >"$M/sendmail" <<EOS
#!/bin/bash
d="$M/sent/\$(date +%s%N)\$\$"
mkdir -p "\$d"
printf '%s\n' "\$@" >"\$d/argv"
cat >"\$d/msg"
EOS
  chmod +x "$M/sendmail"
  MC=(mchallenge --deliver "maildir:$MD" --sendmail "$M/sendmail" --hostname mx.ours.example)
}
# a1_mkmsg FILE SENDER BODY [RCPT]: a message without a Message-ID; bodies of one length make messages of one size.
a1_mkmsg() {
  printf 'Return-Path: <%s>\nX-Original-To: %s\nFrom: %s\nTo: bob@ours.example\nSubject: invoice\n\n%s\n' \
    "$2" "${4:-bob@ours.example}" "$2" "$3" >"$1"
}
a1_held() { mchallenge list | grep -c -E $'\t(held|pending|quiet)\t' || true; }
a1_challenges() { find "$M/sent" -name msg 2>/dev/null | wc -l; }
a1_delivered() { find "$MD/new" -type f 2>/dev/null | wc -l; }
# a1_confirm_of DIR: the confirm address of the challenge in DIR.
a1_confirm_of() { sed -n 's/^Reply-To: <\(.*\)>$/\1/p' "$1/msg"; }

@test "1. three look-alike messages (one sender, no Message-ID, one size) exit 0 and are three held messages" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  a1_mkmsg "$M/2.eml" ann@stranger.example "body two"
  a1_mkmsg "$M/3.eml" ann@stranger.example "body six"
  [ "$(stat -c %s "$M/1.eml")" -eq "$(stat -c %s "$M/3.eml")" ]
  for i in 1 2 3; do
    run "${MC[@]}" <"$M/$i.eml"
    assert_success
  done
  [ "$(a1_delivered)" -eq 0 ]
  [ "$(a1_held)" -eq 3 ]
  [ "$(a1_challenges)" -eq 3 ]
  # Each body is in the hold directory: nothing was dropped.
  for b in "body one" "body two" "body six"; do
    [ "$(grep -rl "^$b\$" "$M/held" | wc -l)" -eq 1 ]
  done
}

@test "1. the same bytes delivered twice (an MTA retry) are held once and challenged once; the same bytes to another recipient are held again" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  run "${MC[@]}" <"$M/1.eml"
  assert_success
  run "${MC[@]}" <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 1 ]
  [ "$(a1_challenges)" -eq 1 ]
  # The envelope is part of what makes it the same delivery: the same bytes for carol are hers to hold.
  run "${MC[@]}" --rcpt carol@ours.example <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 2 ]
  run "${MC[@]}" --rcpt carol@ours.example <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 2 ]
  [ "$(a1_delivered)" -eq 0 ]
}

# ---------------------------------------------------------------------------
# 2. A confirmation releases only one held message
# ---------------------------------------------------------------------------

# a2_reply CONFIRM-ADDRESS SENDER FILE: a person's answer to a challenge.
a2_reply() {
  printf 'Return-Path: <%s>\nX-Original-To: %s\nFrom: %s\nSubject: Re: confirm\n\nyes, me\n' "$2" "$1" "$2" >"$3"
}

@test "2. three look-alike held messages: three held, and one confirmation through procmail releases all three" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  a1_setup
  printf '[mchallenge]\nsendmail = %s\nhostname = mx.ours.example\n' "$M/sendmail" >"$M/conf"
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$M"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    echo "MAILSTAMP_CONFIG=$M/conf"; cat "$MAILSTAMP_SRC/contrib/mchallenge.procmailrc"; } >"$M/rc"
  cd "$M"
  for b in one two six; do
    a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"
    run procmail -m "$M/rc" <"$M/$b.eml"
    assert_success
  done
  [ "$(a1_held)" -eq 3 ]
  [ "$(a1_challenges)" -eq 3 ]
  [ "$(a1_delivered)" -eq 0 ]
  # ann answers the second challenge only.
  conf=$(a1_confirm_of "$(grep -l '^    Subject: invoice' "$M"/sent/*/msg | sed -n 2p | xargs dirname)")
  a2_reply "$conf" ann@stranger.example "$M/r.eml"
  run procmail -m "$M/rc" <"$M/r.eml"
  assert_success
  [ "$(a1_delivered)" -eq 3 ]
  [ "$(grep -l '^X-Mailstamp-Released: confirmed by ann@stranger.example' "$MD"/new/* | wc -l)" -eq 3 ]
  for b in one two six; do
    [ "$(grep -l "^body $b\$" "$MD"/new/* | wc -l)" -eq 1 ]
  done
  [ "$(a1_held)" -eq 0 ]
  mwhitelist check ann@stranger.example
  # Answers to the other two challenges come too late: Responses, and nothing delivered twice.
  for n in 1 3; do
    conf=$(a1_confirm_of "$(grep -l '^    Subject: invoice' "$M"/sent/*/msg | sed -n ${n}p | xargs dirname)")
    a2_reply "$conf" ann@stranger.example "$M/r$n.eml"
    run procmail -m "$M/rc" <"$M/r$n.eml"
    assert_success
  done
  [ "$(grep -l '^X-Mailstamp-Released' "$MD"/new/* | wc -l)" -eq 3 ]
  [ "$(grep -l '^X-Mailstamp-Class: R' "$MD"/new/* | wc -l)" -eq 2 ]
}

@test "2. a confirmation releases what its sender sent to that recipient; mail held only for another recipient is not released by it" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  a1_mkmsg "$M/2.eml" ann@stranger.example "body two"
  a1_mkmsg "$M/3.eml" ann@stranger.example "body six"
  a1_mkmsg "$M/4.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/1.eml"
  "${MC[@]}" --rcpt carol@ours.example --rcpt bob@ours.example <"$M/2.eml"
  "${MC[@]}" --rcpt carol@ours.example <"$M/3.eml"
  "${MC[@]}" <"$M/4.eml"
  [ "$(a1_held)" -eq 4 ]
  conf=$(a1_confirm_of "$(grep -l '^To: <ann@' "$M"/sent/*/msg | head -1 | xargs dirname)")
  [[ "$conf" == bob+* ]]
  a2_reply "$conf" ann@stranger.example "$M/r.eml"
  run "${MC[@]}" <"$M/r.eml"
  assert_success
  # bob's two (one of them also to carol) are out; carol's own and eve's wait.
  [ "$(grep -l '^X-Mailstamp-Released: confirmed by ann@stranger.example' "$MD"/new/* | wc -l)" -eq 2 ]
  grep -l '^body one$' "$MD"/new/*
  grep -l '^body two$' "$MD"/new/*
  run mchallenge list
  assert_output --partial eve@stranger.example
  [ "$(grep -c ann@stranger.example <<<"$output")" -eq 1 ]
}

@test "2. mchallenge whitelist SENDER releases everything held from that sender, for every recipient" {
  a1_setup
  for b in one two six; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  a1_mkmsg "$M/c.eml" ann@stranger.example "body car" carol@ours.example
  "${MC[@]}" --rcpt carol@ours.example <"$M/c.eml"
  a1_mkmsg "$M/e.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/e.eml"
  [ "$(a1_held)" -eq 5 ]
  run mchallenge --deliver "maildir:$MD" whitelist ann@stranger.example
  assert_success
  [ "$(grep -l '^X-Mailstamp-Released: sender whitelisted by hand' "$MD"/new/* | wc -l)" -eq 4 ]
  mwhitelist check ann@stranger.example
  [ "$(a1_held)" -eq 1 ]
  # An address with nothing held is whitelisted all the same.
  run mchallenge --deliver "maildir:$MD" whitelist nobody@stranger.example
  assert_success
  mwhitelist check nobody@stranger.example
  [ "$(a1_delivered)" -eq 4 ]
}

@test "2. confirmations of three look-alike messages at once, a whitelist and new mail from the sender racing them: each message delivered exactly once, none left held" {
  a1_setup
  for b in one two six; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  n=0
  for d in "$M"/sent/*; do
    n=$((n + 1))
    a2_reply "$(a1_confirm_of "$d")" ann@stranger.example "$M/r$n.eml"
  done
  [ "$n" -eq 3 ]
  # ...while more of ann's mail comes in: each is delivered, or held and then released, never left held.
  for b in ten 1ab 2cd 3ef; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; done
  "${MC[@]}" <"$M/r1.eml" & "${MC[@]}" <"$M/r2.eml" & "${MC[@]}" <"$M/r3.eml" &
  mchallenge --deliver "maildir:$MD" whitelist ann@stranger.example &
  for b in ten 1ab 2cd 3ef; do { "${MC[@]}" <"$M/$b.eml"; echo $? >"$M/$b.rc"; } & done
  wait
  for b in ten 1ab 2cd 3ef; do [ "$(cat "$M/$b.rc")" -eq 0 ]; done
  for b in one two six ten 1ab 2cd 3ef; do
    [ "$(grep -l "^body $b\$" "$MD"/new/* | wc -l)" -eq 1 ]
  done
  [ "$(a1_held)" -eq 0 ]
}

@test "2. mail held from a sender whitelisted since (a release that failed, mwhitelist add) is released by mchallenge expire" {
  a1_setup
  for b in one two; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  a1_mkmsg "$M/e.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/e.eml"
  mwhitelist add ann@stranger.example >/dev/null
  printf '[mchallenge]\ndeliver = maildir:%s\n' "$MD" >"$M/conf"
  run mchallenge --config "$M/conf" expire
  assert_success
  assert_output --partial "released 2"
  [ "$(grep -l '^X-Mailstamp-Released: sender whitelisted' "$MD"/new/* | wc -l)" -eq 2 ]
  [ "$(a1_held)" -eq 1 ]
}

# ---------------------------------------------------------------------------
# 3. Whitelist hit counts lag and are lost with the proxy
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 4. One-time tokens spent in parallel
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 5. SRS wrappers trusted as the wrapped sender
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 6. Submission users trusted too widely
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 7. Signed postage covers only the Message-ID and the body
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 8. The spend check trusts everyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 9. Tokens in 550 replies are free for anyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 10. One client address takes every session slot
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 11. AUTH brute force, unthrottled and costly
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 12. SOURCE notices steer our connections
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 13. Store path typos are silent
# ---------------------------------------------------------------------------
