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
