#!/usr/bin/env bats
# msmtp-proxy hands the real client to the MTA behind it (msmtp-proxy(8),
# --xclient and --relay-proxy-protocol): a private Postfix (t/postfix.bash)
# as the relay, swaks as the client on its own loopback address 127.0.0.5,
# and Postfix's own log and Received field as the witnesses of what it saw.
# XCLIENT LOGIN needs Postfix's SASL on: t/tools/fake-dovecot-auth.py stands
# in for Dovecot's auth service (smtpd_sasl_type = dovecot).

load helpers
load postfix

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() {
  stop_postfix
  kill_rig
}

# from5 SENDER RCPT [swaks options]: a message to the proxy from 127.0.0.5.
from5() {
  swaks --server "127.0.0.1:$PORT" --local-interface 127.0.0.5 --helo client.example --from "$1" --to "$2" "${@:3}" 2>&1
}

# pf_wait TEXT: until Postfix's log has TEXT (its daemons log a moment after the reply).
pf_wait() {
  local i
  for i in $(seq 100); do pf_log | grep -qF -- "$1" && return 0; sleep 0.05; done
  echo "Postfix's log has no '$1':" >&2
  pf_log >&2
  return 1
}

@test "xclient auto: Postfix offers XCLIENT, and logs and stamps the real client 127.0.0.5" {
  start_sink
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8'
  start_proxy --relay "127.0.0.1:$PF_PORT"
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'client=unknown[127.0.0.5]'
  pf_wait 'status=sent'
  wait_sink 1
  # The client's own HELO, its address, and the protocol it spoke, as Postfix recorded them.
  sink_all | grep -q '^Received: from client.example (unknown \[127.0.0.5\])'
  sink_all | grep -A1 '^Received: from client.example (unknown' | grep -q 'by mx.ours.example (Postfix) with ESMTP'
  ! pf_log | grep -q 'client=localhost\[127.0.0.1\]'
  # A second session on a kept connection is handed over anew (another port, same address).
  run from5 friend@good.example carol@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'to=<carol@ours.example>'
  [ "$(pf_log | grep -c 'client=unknown\[127.0.0.5\]')" -eq 2 ]
}

@test "xclient no: Postfix sees the proxy, 127.0.0.1" {
  start_sink
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8'
  start_proxy --relay "127.0.0.1:$PF_PORT" --xclient no
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'client=localhost[127.0.0.1]'
  ! pf_log | grep -q '127.0.0.5'
  ! pf_log | grep -q 'xclient='
}

@test "xclient yes: a downstream that does not offer XCLIENT gets nothing, the client a 4xx; auto then delivers" {
  start_sink
  start_postfix "$SINK"
  start_proxy --relay "127.0.0.1:$PF_PORT" --xclient yes
  run from5 friend@good.example bob@ours.example
  assert_output --partial "451 4.3.0"
  refute_output --partial "250 2.0.0 OK: delivered"
  grep -q 'event=deferred .*does not offer XCLIENT' "$M/proxy.log"
  sleep 0.3
  ! pf_log | grep -q 'client='
  [ "$(sink_count)" -eq 0 ]
  # smtp-sink told not to offer XCLIENT (-C) likewise.
  start_sink -C
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$SINK" --xclient yes
  run from5 friend@good.example bob@ours.example
  assert_output --partial "451 4.3.0"
  [ "$(sink_count)" -eq 0 ]
  # The client's retry, with the proxy on auto: delivered (as from the proxy, which is all this Postfix allows).
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$PF_PORT"
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'client=localhost[127.0.0.1]'
  wait_sink 1
}

@test "xclient yes: smtp-sink's older XCLIENT answer, 250, counts; the proxy then greets as the client" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --xclient yes
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 1
  # smtp-sink records the last EHLO: the client's name, sent after XCLIENT (without it, the proxy's own).
  sink_all | grep -q '^X-Helo-Args: client.example$'
}

@test "a config file's xclient and relay-proxy-protocol; bad values are refused" {
  run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2 --xclient sometimes
  assert_failure 64
  assert_output --partial "xclient must be auto, yes or no"
  run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2 --relay-proxy-protocol v1
  assert_failure 64
  assert_output --partial "relay-proxy-protocol must be none or v2"
  printf '[msmtp-proxy]\nxclient = maybe\n' >"$M/bad.conf"
  MAILSTAMP_CONFIG="$M/bad.conf" run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2
  assert_failure
  assert_output --partial "xclient must be auto, yes or no"
  start_sink
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8'
  printf '[msmtp-proxy]\nxclient = no\n' >"$M/no.conf"
  MAILSTAMP_CONFIG="$M/no.conf" start_proxy --relay "127.0.0.1:$PF_PORT"
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'client=localhost[127.0.0.1]'
}

@test "relay-proxy-protocol v2: a Postfix smtpd behind smtpd_upstream_proxy_protocol = haproxy sees 127.0.0.5" {
  start_sink
  local pp
  pp=$(free_port)
  PF_MASTER_EXTRA="127.0.0.1:$pp inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy"
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8'
  wait_port "$pp"
  start_proxy --relay "127.0.0.1:$pp" --relay-proxy-protocol v2 --xclient no
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'connect from unknown[127.0.0.5]'
  pf_wait 'client=unknown[127.0.0.5]'
  wait_sink 1
  # The header carries addresses only: the HELO name is the proxy's.
  sink_all | grep -q '^Received: from mx.ours.example (unknown \[127.0.0.5\])'
  ! pf_log | grep -q 'client=localhost\[127.0.0.1\]'
  # With XCLIENT as well (offered: the proxied client is in 127.0.0.0/8), the client's HELO too.
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$pp" --relay-proxy-protocol v2
  run from5 friend@good.example dave@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 2
  sink_all | grep -q '^Received: from client.example (unknown \[127.0.0.5\])'
  # Without the header that smtpd refuses the proxy's session: 4xx to the client, nothing delivered.
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$pp" --xclient no
  run from5 friend@good.example carol@ours.example
  assert_output --regexp "<\*\* 4[0-9][0-9] "
  refute_output --partial "250 2.0.0 OK: delivered"
  sleep 0.3
  ! pf_log | grep -q 'to=<carol@ours.example>'
  [ "$(sink_count)" -eq 2 ]
}

mkcert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
}

@test "xclient LOGIN: a user who authenticated to the proxy is Postfix's sasl_username, and Postfix relays for her" {
  mkcert
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice >/dev/null
  start_sink
  # Postfix's SASL is on (a stand-in for Dovecot's auth service that knows no alice): it takes LOGIN only then.
  start_fake_sasl nobody-here nothing
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8' "${PF_SASL[@]}"
  start_proxy --relay "127.0.0.1:$PF_PORT" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem"
  run from5 alice@ours.example carol@elsewhere.example -tls -a PLAIN -au alice -ap sesame
  assert_output --partial "235 2.7.0"
  assert_output --partial "250 2.0.0 OK: sent"
  pf_wait 'client=unknown[127.0.0.5], sasl_method=XCLIENT, sasl_username=alice'
  pf_wait 'to=<carol@elsewhere.example>'
  pf_wait 'status=sent'
  wait_sink 1
  # Postfix's Received field: the client, and ESMTPSA (authenticated, over TLS) as the proxy told it.
  sink_all | grep -q '^Received: from client.example (unknown \[127.0.0.5\])'
  sink_all | grep -A1 '^Received: from client.example' | grep -q 'with ESMTPSA'
  # The login came by XCLIENT: Postfix never asked its auth service about a password.
  grep -q '^connect ' "$M/sasl.log"
  ! grep -q '^auth ' "$M/sasl.log"
  # A client that did not authenticate on the same kept connection: its session carries no login.
  run from5 friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  pf_wait 'to=<bob@ours.example>'
  [ "$(pf_log | grep -c 'client=unknown\[127.0.0.5\]')" -eq 2 ]
  [ "$(pf_log | grep -c 'sasl_username=')" -eq 1 ]
  wait_sink 2
}

@test "xclient LOGIN: a Postfix without SASL ignores the login, so mail to a stranger is not relayed" {
  mkcert
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice >/dev/null
  start_sink
  start_postfix "$SINK" 'smtpd_authorized_xclient_hosts = 127.0.0.0/8'
  start_proxy --relay "127.0.0.1:$PF_PORT" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem"
  run from5 alice@ours.example carol@elsewhere.example -tls -a PLAIN -au alice -ap sesame
  assert_output --partial "235 2.7.0"
  refute_output --partial "250 2.0.0 OK: sent"
  assert_output --partial "554 5.7.1 <carol@elsewhere.example>: Relay access denied"
  pf_wait 'NOQUEUE: reject: RCPT from unknown[127.0.0.5]'
  ! pf_log | grep -q 'sasl_username='
  [ "$(sink_count)" -eq 0 ]
}
