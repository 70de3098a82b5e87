#!/usr/bin/env bats
# Whitelists that forgers cannot use (issue 14; mailstamp(7) ADMISSION): a whitelist hit counts only for an
# authenticated identity, in msmtp-proxy at SMTP time and in mverify, against the tests' own DNS server
# (t/dns/zone-server.py on loopback) serving good.example's SPF and DMARC records, a domain that publishes
# nothing, and a timeout. The proxy's client is 127.0.0.1; mverify is given --client-ip and --helo.

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  ZONE="$M/zone"
}

teardown() { kill_rig; }

# zone_good SPF: good.example publishes the SPF record SPF and DMARC p=reject; quiet.example nothing.
zone_good() {
  cat >"$ZONE" <<EOF2
good.example TXT "$1"
_dmarc.good.example TXT "v=DMARC1; p=reject"
evil.example TXT "v=spf1 +all"
EOF2
  start_zone "$ZONE"
}

# msg FILE FROM: a message to bob@ours.example from FROM, CRLF line ends.
msg() {
  printf 'From: %s\r\nTo: bob@ours.example\r\nSubject: auth case\r\nMessage-ID: <a%s@x.example>\r\n\r\nhello\r\n' \
    "$2" "$RANDOM" >"$1"
}

class_of() { sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1" | head -1; }

# verify SENDER CLIENT-IP [mverify options]: mverify on $M/m.eml; sets V to the class or exit:N.
verify() {
  local rc=0 s=$1 ip=$2
  shift 2
  mverify --log "$M/mverify.log" --sender "$s" --rcpt bob@ours.example --client-ip "$ip" --helo mail.example \
    "$@" <"$M/m.eml" >"$M/out.eml" 2>"$M/mverify.err" || rc=$?
  if [ "$rc" -ne 0 ]; then V="exit:$rc"; else V=$(class_of "$M/out.eml"); fi
}

# send SENDER: $M/m.eml through the proxy as SENDER to bob@ours.example; sets OUT to smtptool's line.
send() { OUT=$($PY "$TOOL" send "$PORT" "$1" bob@ours.example "$M/m.eml"); }

@test "forged whitelisted From (envelope spammer@evil.example): mverify tags [B] and logs forged" {
  mwhitelist add friend@good.example >/dev/null
  zone_good "v=spf1 ip4:192.0.2.1 -all"
  msg "$M/m.eml" friend@good.example
  verify spammer@evil.example 198.51.100.7
  [ "$V" = B ]
  grep -q 'forged.*friend@good.example' "$M/mverify.log"
  # The same message from the real sender (SPF pass for good.example, so DMARC passes aligned): [W], and the
  # reason names the method; the results are in Authentication-Results under our authserv-id.
  verify friend@good.example 192.0.2.1 --authserv-id mx.ours.example
  [ "$V" = W ]
  grep -q '^X-Mailstamp-Class: W .*friend@good.example is whitelisted, spf pass' "$M/out.eml"
  grep -q '^Authentication-Results: mx.ours.example; spf=pass' "$M/out.eml"
}

@test "forged whitelisted envelope sender: msmtp-proxy refuses it at SMTP time with a token address" {
  mwhitelist add friend@good.example >/dev/null
  zone_good "v=spf1 ip4:192.0.2.1 -all"   # 127.0.0.1, the proxy's client, is not good.example's
  msg "$M/m.eml" friend@good.example
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  send friend@good.example
  [[ "$OUT" == *550* ]]
  [[ "$OUT" == *"this address"* ]]
  grep -q 'forged' "$M/proxy.log"
  [ "$(sink_count)" -eq 0 ]
  # The envelope of the issue: spammer@evil.example, From friend@good.example; marked [B] in mark mode.
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$SINK" --unknown mark
  send spammer@evil.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: B'
}

@test "the real whitelisted sender with SPF pass is still [W] through msmtp-proxy" {
  mwhitelist add friend@good.example >/dev/null
  zone_good "v=spf1 ip4:127.0.0.1 -all"
  msg "$M/m.eml" friend@good.example
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --authserv-id mx.ours.example
  send friend@good.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W .*spf pass'
  sink_all | grep -q '^Authentication-Results: mx.ours.example; spf=pass'
}

@test "a domain that publishes nothing is still [W], logged as unauthenticated_hit" {
  mwhitelist add ann@quiet.example >/dev/null
  printf 'good.example TXT "v=spf1 -all"\n' >"$ZONE"
  start_zone "$ZONE"
  msg "$M/m.eml" ann@quiet.example
  verify ann@quiet.example 198.51.100.7
  [ "$V" = W ]
  grep -q 'unauthenticated_hit.*ann@quiet.example' "$M/mverify.log"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  send ann@quiet.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W'
  grep -q 'unauthenticated_hit' "$M/proxy.log"
}

@test "a DNS timeout is 4xx from msmtp-proxy and exit 75 from mverify, never a verdict" {
  mwhitelist add friend@good.example >/dev/null
  printf 'good.example TIMEOUT\n_dmarc.good.example TIMEOUT\n' >"$ZONE"
  start_zone "$ZONE"
  msg "$M/m.eml" friend@good.example
  verify friend@good.example 192.0.2.1
  [ "$V" = exit:75 ]
  [ ! -s "$M/out.eml" ]
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  send friend@good.example
  [[ "$OUT" == *" 4"[0-9][0-9]* ]] || [[ "$OUT" == *"451"* ]]
  [ "$(sink_count)" -eq 0 ]
}

@test "--auth none keeps the old behaviour: a whitelisted sender counts whatever SPF says" {
  mwhitelist add --auth none friend@good.example >/dev/null
  run mwhitelist list
  assert_line --regexp '^friend@good.example	address	.*	none	'
  zone_good "v=spf1 ip4:192.0.2.1 -all"
  msg "$M/m.eml" friend@good.example
  verify friend@good.example 198.51.100.7
  [ "$V" = W ]
  ! grep -q forged "$M/mverify.log"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  send friend@good.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W'
}

@test "mchallenge holds a forged whitelisted sender quietly: no challenge to the forged address" {
  mwhitelist add friend@good.example >/dev/null
  zone_good "v=spf1 ip4:192.0.2.1 -all"
  msg "$M/m.eml" friend@good.example
  cat >"$M/sendmail" <<EOF2
#!/bin/bash
cat >"$M/challenge.\$\$"
EOF2
  chmod +x "$M/sendmail"
  mchallenge --deliver "maildir:$M/Maildir" --sendmail "$M/sendmail" --hostname mx.ours.example \
    --sender friend@good.example --rcpt bob@ours.example --client-ip 198.51.100.7 --helo x.example <"$M/m.eml"
  [ -z "$(find "$M/Maildir/new" -type f 2>/dev/null)" ]
  run mchallenge list
  assert_output --partial quiet
  [ -z "$(ls "$M"/challenge.* 2>/dev/null)" ]
  # Its sender is on the whitelist, but the whitelist never lets a forged one in: the expiry sweep (which
  # releases held mail whose sender was confirmed meanwhile) leaves it held.
  mchallenge --deliver "maildir:$M/Maildir" expire >/dev/null
  [ -z "$(find "$M/Maildir/new" -type f 2>/dev/null)" ]
}

@test "mwhitelist: --auth is kept by list --json, export and import" {
  mwhitelist add --auth dkim @partner.example >/dev/null
  mwhitelist add --auth spf ann@quiet.example >/dev/null
  mwhitelist add bob@plain.example >/dev/null
  run mwhitelist list --json
  assert_output --partial '"entry":"@partner.example"'
  assert_output --partial '"auth":"dkim"'
  assert_output --partial '"auth":"auto"'
  run mwhitelist export
  assert_line '@partner.example auth=dkim'
  assert_line 'ann@quiet.example auth=spf'
  assert_line 'bob@plain.example'
  mwhitelist export --format csv >"$M/wl.csv"
  mwhitelist export >"$M/wl.lines"
  run mwhitelist add --auth bogus x@y.example
  [ "$status" -eq 64 ]
  for f in csv lines; do
    rm -f "$M/copy.db"
    mwhitelist --db "$M/copy.db" import --format "$f" <"$M/wl.$f" >/dev/null
    run mwhitelist --db "$M/copy.db" export
    assert_line '@partner.example auth=dkim'
    assert_line 'ann@quiet.example auth=spf'
    assert_line 'bob@plain.example'
  done
}

# list_reseal FILE KEY: what a mailing list at lists.example does: tags the Subject and adds a footer (which
# breaks the author's DKIM signature), records what it saw in its own Authentication-Results (dkim and
# dmarc pass for good.example), and ARC-seals the message with dkimpy (selector arc, domain lists.example).
list_reseal() {
  /usr/bin/python3 -c '
import sys, dkim
f, key = sys.argv[1:3]
m = open(f, "rb").read().replace(b"Subject: ", b"Subject: [friends] ", 1) + b"--\r\nfriends mailing list\r\n"
m = (b"Authentication-Results: lists.example; spf=pass smtp.mailfrom=good.example;"
     b" dkim=pass header.d=good.example; dmarc=pass header.from=good.example\r\n" + m)
seal = dkim.arc_sign(m, b"arc", b"lists.example", open(key, "rb").read(), b"lists.example")
open(f, "wb").write(b"".join(seal) + m)' "$@"
}

# zone_good_signing: good.example's SPF (192.0.2.1) and DMARC p=reject, and a DKIM key (selector sel, private
# key $M/good.pem); the zone server started.
zone_good_signing() {
  printf 'good.example TXT "v=spf1 ip4:192.0.2.1 -all"\n_dmarc.good.example TXT "v=DMARC1; p=reject"\n' >"$ZONE"
  dkim_key good sel good.example
  start_zone "$ZONE"
}

@test "the real sender, SPF pass and DKIM-signed, is [W]; DKIM alone authenticates the whitelisted From" {
  mwhitelist add friend@good.example >/dev/null
  zone_good_signing
  msg "$M/m.eml" friend@good.example
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  verify friend@good.example 192.0.2.1 --authserv-id mx.ours.example
  [ "$V" = W ]
  grep -q '^Authentication-Results: mx.ours.example; spf=pass' "$M/out.eml"
  grep -q 'dkim=pass header.d=good.example' "$M/out.eml"
  # Through the proxy (client 127.0.0.1, which good.example's SPF does not list): the DKIM signature aligned
  # with From authenticates the hit.
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --authserv-id mx.ours.example
  send friend@good.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W .*friend@good.example is whitelisted, dkim pass'
  # The same bytes with the body changed: the signature fails, SPF fails, so the hit is forged.
  sed -i 's/^hello/HELLO/' "$M/m.eml"
  verify friend@good.example 198.51.100.7
  [ "$V" = B ]
  grep -q 'forged.*friend@good.example' "$M/mverify.log"
}

@test "a mailing list message with a valid ARC chain from a trusted sealer is [W]; untrusted, it is not" {
  mwhitelist add friend@good.example >/dev/null
  cat >"$ZONE" <<'EOF2'
good.example TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.good.example TXT "v=DMARC1; p=reject"
lists.example TXT "v=spf1 ip4:203.0.113.5 ip4:127.0.0.1 -all"
EOF2
  dkim_key good sel good.example
  dkim_key list arc lists.example
  start_zone "$ZONE"
  msg "$M/m.eml" friend@good.example
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  list_reseal "$M/m.eml" "$M/list.pem"
  # The list's own envelope sender and server: SPF passes for lists.example, which is not aligned with From;
  # the author's signature is broken by the list; DMARC fails. Only the ARC chain vouches for the author.
  verify friends-bounces@lists.example 203.0.113.5 --authserv-id mx.ours.example
  [ "$V" = B ]
  grep -q 'forged.*friend@good.example' "$M/mverify.log"
  grep -q '^Authentication-Results: mx.ours.example;.* arc=pass' "$M/out.eml"
  verify friends-bounces@lists.example 203.0.113.5 --authserv-id mx.ours.example --trusted-arc-sealer lists.example
  [ "$V" = W ]
  grep -q '^X-Mailstamp-Class: W .*friend@good.example is whitelisted, arc' "$M/out.eml"
  # A chain tampered after sealing is not trusted, whoever sealed it.
  sed -i 's/^friends mailing list/friends mailing list (edited)/' "$M/m.eml"
  verify friends-bounces@lists.example 203.0.113.5 --trusted-arc-sealer lists.example
  [ "$V" = B ]
  # The proxy (marking what is not whitelisted instead of refusing it at RCPT, as the whitelisted identity
  # here is the From of the message), told the same sealer is trusted, classes the untampered message [W].
  msg "$M/m.eml" friend@good.example
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  list_reseal "$M/m.eml" "$M/list.pem"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown mark --trusted-arc-sealer lists.example
  send friends-bounces@lists.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W .*friend@good.example is whitelisted, arc'
}

@test "a DNS failure on a trusted sealer's ARC key is a retry (exit 75), not a forged sender" {
  mwhitelist add friend@good.example >/dev/null
  cat >"$ZONE" <<'EOF2'
good.example TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.good.example TXT "v=DMARC1; p=reject"
lists.example TXT "v=spf1 ip4:203.0.113.5 -all"
arc._domainkey.lists.example SERVFAIL
EOF2
  dkim_key good sel good.example
  openssl genrsa -out "$M/list.pem" 2048 2>/dev/null
  start_zone "$ZONE"
  msg "$M/m.eml" friend@good.example
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  list_reseal "$M/m.eml" "$M/list.pem"
  verify friends-bounces@lists.example 203.0.113.5 --trusted-arc-sealer lists.example
  [ "$V" = exit:75 ]
  [ ! -s "$M/out.eml" ]
  # A sealer nobody trusts: its chain is not looked at for the decision, so the DMARC failure decides.
  verify friends-bounces@lists.example 203.0.113.5
  [ "$V" = B ]
}

# mail_only: a session that ends after MAIL FROM:<friend@good.example> (no RCPT, no message).
mail_only() { $PY "$TOOL" chat "$PORT" "EHLO mail.example" "MAIL FROM:<friend@good.example>" "QUIT" >/dev/null; }
# spf_queries: the TXT queries for good.example itself (its SPF record) the zone server got.
spf_queries() { grep -ci '^good\.example\.\? TXT' "$ZONE.log" || true; }

@test "msmtp-proxy --spf no: no SPF lookup at MAIL, so a whitelisted sender SPF would pass is unauthenticated" {
  mwhitelist add friend@good.example >/dev/null
  zone_good "v=spf1 ip4:127.0.0.1 -all"   # SPF passes for 127.0.0.1, the proxy's client
  msg "$M/m.eml" friend@good.example
  start_sink
  # The default (--spf yes) asks for good.example's SPF record at MAIL, and the sender is [W] by SPF.
  start_proxy --relay "127.0.0.1:$SINK"
  mail_only
  [ "$(spf_queries)" -ge 1 ]
  send friend@good.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W .*spf pass'
  kill "$PROXY_PID"
  # --spf no (an MTA in front checks SPF): nothing is asked at MAIL ...
  rm -rf "$M/sink"/*
  : >"$ZONE.log"
  start_proxy --relay "127.0.0.1:$SINK" --spf no
  mail_only
  [ "$(spf_queries)" -eq 0 ]
  # ... and the same sender, unsigned, is not authenticated: refused with a token address, nothing delivered.
  send friend@good.example
  [[ "$OUT" == *550* ]]
  [[ "$OUT" == *"this address"* ]]
  [ "$(sink_count)" -eq 0 ]
  kill "$PROXY_PID"
  # In mark mode it goes through as [B], never [W].
  start_proxy --relay "127.0.0.1:$SINK" --spf no --unknown mark
  send friend@good.example
  [[ "$OUT" == "sent "* ]]
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: B'
  ! sink_all | grep -q '^X-Mailstamp-Class: W'
  # The config key does the same; a bad value is a usage error (64) on the command line, a config error (78)
  # in the file.
  kill "$PROXY_PID"
  printf '[msmtp-proxy]\nspf = no\n' >"$M/conf"
  : >"$ZONE.log"
  MAILSTAMP_CONFIG="$M/conf" start_proxy --relay "127.0.0.1:$SINK"
  mail_only
  [ "$(spf_queries)" -eq 0 ]
  run msmtp-proxy --listen "127.0.0.1:$(free_port)" --hostname mx.ours.example --relay "127.0.0.1:$SINK" --spf maybe
  [ "$status" -eq 64 ]
  assert_output --partial 'want yes or no'
  printf '[msmtp-proxy]\nspf = maybe\n' >"$M/conf"
  run env MAILSTAMP_CONFIG="$M/conf" msmtp-proxy --listen "127.0.0.1:$(free_port)" --hostname mx.ours.example --relay "127.0.0.1:$SINK"
  [ "$status" -eq 78 ]
}

@test "a second From field on top of a signed message does not borrow the signature (RFC 7489 §6.6.1)" {
  mwhitelist add friend@good.example >/dev/null
  zone_good_signing
  # A message the attacker got signed by good.example's own server (from an account of its own there) ...
  msg "$M/m.eml" mallory@good.example
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  verify spammer@evil.example 198.51.100.7
  [ "$V" = B ]
  # ... with a From field naming the whitelisted friend added on top, which the signature does not cover.
  { printf 'From: friend@good.example\r\n'; cat "$M/m.eml"; } >"$M/two.eml"
  mv "$M/two.eml" "$M/m.eml"
  verify spammer@evil.example 198.51.100.7
  [ "$V" = B ]
  # Two addresses in one From field likewise.
  msg "$M/m.eml" "friend@good.example, mallory@good.example"
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example
  verify spammer@evil.example 198.51.100.7
  [ "$V" = B ]
}
