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

# a5_verdict SENDER RCPT [mverify options]: the X-Mailstamp-Class letter mverify gives.
a5_verdict() {
  printf 'From: <%s>\r\nSubject: hi\r\n\r\nhello\r\n' "$1" |
    mverify --sender "$1" --rcpt "$2" "${@:3}" | sed -n 's/^X-Mailstamp-Class: \([A-Z]\) .*/\1/p'
}

a5_setup() {
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

@test "5. an SRS-wrapped forgery is the forwarder's address: no whitelist hit, no sender-bound token (mverify, msmtp-proxy)" {
  a5_setup
  srs0='SRS0=hash=tt=good.example=friend@attacker.example'
  srs1='SRS1=HHH=fwd.example==hash=tt=good.example=friend@attacker.example'
  tok=$(mtoken make --sender friend@good.example bob@ours.example)
  # The real friend, and friend behind its own BATV tag, are whitelisted.
  [ "$(a5_verdict friend@good.example bob@ours.example)" = W ]
  [ "$(a5_verdict prvs=1234abcdef=friend@good.example bob@ours.example)" = W ]
  [ "$(a5_verdict friend@good.example "$tok")" = W ]
  # The SRS wrappers nobody checked are not.
  [ "$(a5_verdict "$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs1" bob@ours.example)" = B ]
  [ "$(a5_verdict "prvs=1234abcdef=$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs0" "$tok")" = B ]

  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to "$srs0" bob@ours.example
  assert_output --partial "5.7.1 <bob@ours.example> takes mail only from senders it knows"
  run swaks_to "$srs1" bob@ours.example
  assert_output --partial "550 5.7.1"
  run swaks_to "$srs0" "$tok"
  assert_output --partial "550 5.7.1"
  run swaks_to prvs=1234abcdef=friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to friend@good.example "$tok"
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 2
  ! grep -q 'event=delivered .*attacker' "$M/proxy.log"
}

@test "5. a trusted forwarder's SRS wrapper counts as the wrapped sender (option and config key)" {
  a5_setup
  srs0='SRS0=hash=tt=good.example=friend@fwd.example'
  srs1='SRS1=HHH=fwd.example==hash=tt=good.example=friend@fwd2.example'
  tok=$(mtoken make --sender friend@good.example bob@ours.example)
  [ "$(a5_verdict "$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs0" bob@ours.example --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "prvs=1234abcdef=$srs0" bob@ours.example --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "$srs0" "$tok" --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "$srs0" bob@ours.example --trusted-forwarder other.example)" = B ]
  # SRS1: each forwarder on the way must be trusted.
  [ "$(a5_verdict "$srs1" bob@ours.example --trusted-forwarder fwd2.example)" = B ]
  [ "$(a5_verdict "$srs1" bob@ours.example --trusted-forwarder fwd2.example --trusted-forwarder fwd.example)" = W ]
  run mwhitelist check "$srs0" bob@ours.example
  assert_failure 1
  run mwhitelist check --trusted-forwarder fwd.example "$srs0" bob@ours.example
  assert_success
  run mtoken check --sender "$srs0" "$tok"
  assert_failure
  run mtoken check --trusted-forwarder fwd.example --sender "$srs0" "$tok"
  assert_success
  # mchallenge delivers the trusted forwarder's mail and holds the rest.
  printf '#!/bin/sh\ncat >/dev/null\n' >"$M/sendmail"
  chmod +x "$M/sendmail"
  for s in "$srs0" 'SRS0=hash=tt=good.example=friend@attacker.example'; do
    printf 'From: <%s>\r\nTo: bob@ours.example\r\nSubject: hi\r\nMessage-ID: <%s@x>\r\n\r\nhello\r\n' "$s" "$RANDOM" |
      mchallenge --deliver "maildir:$M/md" --sendmail "$M/sendmail" --hostname mx.ours.example \
        --sender "$s" --rcpt bob@ours.example --trusted-forwarder fwd.example
  done
  [ "$(find "$M/md/new" -type f | wc -l)" -eq 1 ]
  grep -q '^X-Mailstamp-Class: W' "$M"/md/new/*
  [ "$(mchallenge list | grep -c attacker.example)" -eq 1 ]
  run mverify --trusted-forwarder 'not/a.domain' --sender x@y.example --rcpt bob@ours.example <<<"Subject: x"
  assert_failure 64
  assert_output --partial "--trusted-forwarder: 'not/a.domain' is not a domain"

  # The config key, in [common], serves every program.
  printf '[common]\ntrusted-forwarder = fwd.example fwd2.example\n' >"$M/mailstamp.conf"
  export MAILSTAMP_CONFIG="$M/mailstamp.conf"
  [ "$(a5_verdict "$srs0" bob@ours.example)" = W ]
  [ "$(a5_verdict "$srs1" bob@ours.example)" = W ]
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to "$srs0" bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to "$srs0" "$tok"
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to 'SRS0=hash=tt=good.example=friend@attacker.example' bob@ours.example
  assert_output --partial "550 5.7.1"
  wait_sink 2
}

# ---------------------------------------------------------------------------
# 6. Submission users trusted too widely
# ---------------------------------------------------------------------------

a6_mkcert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
}

# a6_send USER FROM TO [swaks options]: one message from an authenticated user (password "sesame").
a6_send() { swaks_to "$2" "$3" -tls -a PLAIN -au "$1" -ap sesame "${@:4}"; }

a6_rig() {
  mwhitelist domain add ours.example >/dev/null
  a6_mkcert
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" "$@"
}

@test "6. an authenticated user sends only as the addresses they own" {
  printf 'sesame\n' | msmtp-proxy user add alice@ours.example
  printf 'sesame\n' | msmtp-proxy user add dave
  a6_rig
  # The login is the default sender; another user's address is refused.
  run a6_send alice@ours.example bob@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <bob@ours.example>: sender address not owned by user alice@ours.example"
  run a6_send alice@ours.example alice@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  run a6_send alice@ours.example Alice@OURS.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  printf 'sesame\n' | msmtp-proxy user add carol --sender carol@ours.example --sender Sales@Ours.Example
  run msmtp-proxy user add erin --sender 'not an address' </dev/null
  assert_failure 64
  run msmtp-proxy user list
  assert_line --regexp '^alice@ours.example	.*	alice@ours.example \(default\)$'
  assert_line --regexp '^carol	.*	carol@ours.example,sales@ours.example$'
  # Senders given with user add.
  run a6_send carol sales@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  run a6_send carol alice@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <alice@ours.example>: sender address not owned by user carol"
  # ... changed with user senders.
  msmtp-proxy user senders carol --sender carol2@ours.example
  run msmtp-proxy user senders carol
  assert_output "carol2@ours.example"
  run a6_send carol sales@ours.example pal@far.example
  assert_output --partial "553 5.7.1"
  run a6_send carol carol2@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  # A login that is no address owns nothing until it is given senders.
  run a6_send dave dave@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <dave@ours.example>: sender address not owned by user dave"
  msmtp-proxy user senders dave --sender dave@ours.example
  run a6_send dave dave@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  msmtp-proxy user senders dave --default
  run msmtp-proxy user senders dave
  assert_output ""
  wait_sink 5
  grep -q 'event=reject .*sender=bob@ours.example user=alice@ours.example reason="sender not owned by the user"' "$M/proxy.log"
}

@test "6. outgoing recipients are whitelisted for the sending user only; address literals never" {
  printf 'sesame\n' | msmtp-proxy user add alice@ours.example
  a6_rig
  run a6_send alice@ours.example alice@ours.example spammer@evil.example,lit@[127.0.0.2]
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  run mwhitelist export
  assert_output "spammer@evil.example alice@ours.example"
  # The spammer reaches alice, who wrote to it, and nobody else.
  run swaks_to spammer@evil.example alice@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to spammer@evil.example bob@ours.example
  assert_output --partial "5.7.1 <bob@ours.example> takes mail only from senders it knows"
  run swaks_to 'lit@[127.0.0.2]' alice@ours.example
  assert_output --partial "550 5.7.1"
  wait_sink 2
  # The same when the proxy stamps outgoing mail (mstamp does the whitelisting then).
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" --stamp hashcash --stamp-bits 8
  run a6_send alice@ours.example alice@ours.example pal@far.example,lit2@[127.0.0.3]
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 3
  run mwhitelist check pal@far.example bob@ours.example
  assert_failure 1
  run mwhitelist check pal@far.example alice@ours.example
  assert_success
  ! mwhitelist export | grep -q '127.0.0.3'
}

@test "6. mstamp and mwhitelist add --from-message scope the recipients to a local sender" {
  mwhitelist domain add ours.example >/dev/null
  printf 'From: Alice <alice@ours.example>\r\nTo: pal@far.example, x@[10.0.0.1]\r\nSubject: hi\r\n\r\nhello\r\n' >"$M/out.eml"
  run mwhitelist add --from-message <"$M/out.eml"
  assert_success
  assert_output "added pal@far.example for alice@ours.example"
  run mwhitelist check pal@far.example bob@ours.example
  assert_failure 1
  run mwhitelist check pal@far.example alice@ours.example
  assert_success
  # mstamp: the sender from --sender, else From.
  mstamp --bits 8 --rcpt friend2@far.example --sender bob@ours.example <"$M/out.eml" >/dev/null
  mstamp --bits 8 --rcpt 'y@[10.0.0.2]' <"$M/out.eml" >/dev/null
  mstamp --bits 8 <"$M/out.eml" >/dev/null
  run mwhitelist export
  assert_output "friend2@far.example bob@ours.example
pal@far.example alice@ours.example"
  # A sender outside the protected domains (a personal store): as before, for every recipient.
  printf 'From: me@home.example\r\nTo: buddy@far.example\r\n\r\nhi\r\n' | mstamp --bits 8 >/dev/null
  run mwhitelist check buddy@far.example bob@ours.example
  assert_success
}

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
