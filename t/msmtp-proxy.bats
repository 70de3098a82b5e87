#!/usr/bin/env bats
# msmtp-proxy end to end, with real clients (swaks, Python's smtplib, raw
# sockets for the misbehaving ones) and Postfix's smtp-sink as the MTA
# behind it, on loopback: every incoming policy path, the three ways of
# running, STARTTLS and AUTH, open-relay tricks, SMTP smuggling, slow
# clients, and nothing lost when downstream or the proxy itself fails.

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() { kill_rig; }

mkcert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
}

@test "help, version, and usage errors exit 0 and 64" {
  run msmtp-proxy --help
  assert_success
  assert_output --partial "--unknown"
  run msmtp-proxy --version
  assert_success
  run msmtp-proxy --listen 127.0.0.1:1
  assert_failure 64
  assert_output --partial "where does mail go"
  run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2 --unknown sometimes
  assert_failure 64
  assert_output --partial "unknown must be"
  run msmtp-proxy --listen 127.0.0.1:1 --relay nowhere
  assert_failure 64
  run msmtp-proxy --submission --relay 127.0.0.1:2 --listen 127.0.0.1:1
  assert_failure 64
  assert_output --partial "TLS"
}

@test "whitelisted sender delivered with Received and verdict fields; forged verdicts stripped" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to friend@good.example bob@ours.example \
    --header "X-Mailstamp-Class: G (forged) by mx.ours.example" \
    --header "Authentication-Results: mx.ours.example; x-mailstamp-hashcash=pass"
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 1
  sink_all | grep -q '^Received: from client.example (127.0.0.1) by mx.ours.example (msmtp-proxy) with ESMTP id'
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
  sink_all | grep -q '^Subject: \[W\] test'
  [ "$(sink_all | grep -c '^X-Mailstamp-Class:')" -eq 1 ]
  ! sink_all | grep -q 'forged'
  ! sink_all | grep -q 'hashcash=pass'
  grep -q 'event=delivered .*sender=friend@good.example rcpt=bob@ours.example class=W' "$M/proxy.log"
  grep -q 'downstream="250 ' "$M/proxy.log"
}

@test "unknown sender gets 550 with a one-time token; the resend is delivered; the token works once" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  token_round_trip "$M/proxy.log"
  # The second refusal came with a fresh token.
  [[ "$output" != *"$tok>"* ]]
  wait_sink 1
}

@test "a one-time token is not used up by a message that is not accepted" {
  start_proxy --relay "127.0.0.1:$(free_port)"
  tok=$(mtoken make --once bob@ours.example)
  run swaks_to stranger@bad.example "$tok"
  assert_output --partial "451 4.3.0"
  run mtoken check "$tok"
  assert_success
}

@test "unconditional recipient, whitelisted domain, and a dated token address are accepted" {
  mwhitelist add --recipient postmaster@ours.example >/dev/null
  mwhitelist add @partner.example >/dev/null
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to anyone@anywhere.example postmaster@ours.example
  assert_output --partial "250 2.0.0 OK"
  run swaks_to someone@partner.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  tok=$(mtoken make --ttl 2d alice@ours.example)
  run swaks_to anyone@anywhere.example "$tok"
  assert_output --partial "250 2.0.0 OK"
  run swaks_to again@anywhere.example "$tok"
  assert_output --partial "250 2.0.0 OK"
  wait_sink 4
  sink_all | grep -q 'takes all mail'
  sink_all | grep -q 'sender someone@partner.example is whitelisted'
  [ "$(sink_all | grep -c '^X-Rcpt-Args: <alice@ours.example>')" -eq 2 ]
}

@test "--unknown mark delivers unknown mail tagged [B]; --no-tag leaves the Subject" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown mark
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 1
  sink_all | grep -q '^Subject: \[B\] test'
  # Decided at end of DATA, as mverify decides it (mailstamp(7) ADMISSION).
  sink_all | grep -q '^X-Mailstamp-Class: B (Unknown: no postage, not whitelisted)'
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$SINK" --unknown mark --no-tag
  run swaks_to stranger@bad.example bob@ours.example
  wait_sink 2
  [ "$(sink_all | grep -c '^Subject: test')" -eq 1 ]
}

@test "--unknown forward=ADDR and forward=/MAP deliver to the forward address" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown forward=quarantine@ours.example
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <quarantine@ours.example>'
  kill "$PROXY_PID"
  printf '# forward map\nbob@ours.example  bob-spam@ours.example\n* catchall@ours.example\n' >"$M/map"
  start_proxy --relay "127.0.0.1:$SINK" --unknown "forward=$M/map"
  run swaks_to stranger@bad.example bob@ours.example
  run swaks_to stranger@bad.example carol@ours.example
  wait_sink 3
  sink_all | grep -q '^X-Rcpt-Args: <bob-spam@ours.example>'
  sink_all | grep -q '^X-Rcpt-Args: <catchall@ours.example>'
}

@test "--unknown postage: a hashcash-stamped message is delivered [G], an unstamped one gets 550 with a token" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown postage --min-bits 16
  stamp=$(hashcash -m -q -b 16 bob@ours.example)
  printf 'X-Hashcash: %s\r\nFrom: stranger@bad.example\r\nSubject: paid\r\nMessage-ID: <p1@bad.example>\r\n\r\nI paid.\r\n' "$stamp" >"$M/stamped.eml"
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/stamped.eml"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -qE '^X-Mailstamp-Class: G \(Stamped: hashcash: (1[6-9]|[2-9][0-9]) bits for bob@ours.example\)'
  sink_all | grep -q 'x-mailstamp-hashcash=pass'
  printf 'From: stranger@bad.example\r\nSubject: free\r\n\r\nI did not pay.\r\n' >"$M/free.eml"
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/free.eml"
  assert_output --partial "data 550"
  assert_output --partial "this address: <bob+"
  # The same stamp on another message is a double spend.
  sed 's/I paid./Buy now./; s/p1@/p2@/' "$M/stamped.eml" >"$M/lifted.eml"
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/lifted.eml"
  assert_output --partial "data 550"
  wait_sink 1
}

@test "--unknown postage: provisional and whitelisted recipients are not mixed in one transaction (452 4.5.3)" {
  mwhitelist add --recipient postmaster@ours.example >/dev/null
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown postage
  run swaks_to stranger@bad.example bob@ours.example,postmaster@ours.example
  assert_output --partial "452 4.5.3"
}

@test "maildir and pickup delivery write complete files before 250" {
  start_proxy --maildir "$M/Maildir"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  [ "$(ls "$M/Maildir/new" | wc -l)" -eq 1 ]
  [ "$(ls "$M/Maildir/tmp" | wc -l)" -eq 0 ]
  f=$(ls "$M"/Maildir/new/*)
  head -1 "$f" | grep -q '^Return-Path: <friend@good.example>$'
  grep -q '^X-Original-To: bob@ours.example$' "$f"
  ! grep -q $'\r' "$f"
  kill "$PROXY_PID"
  start_proxy --pickup "$M/pickup"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  f=$(ls "$M"/pickup/*.eml)
  head -1 "$f" | grep -q $'^X-Sender: friend@good.example\r$'
  grep -q $'^X-Receiver: bob@ours.example\r$' "$f"
}

@test "downstream down or answering 4xx or 5xx: the client gets the failure, nothing is delivered" {
  dead=$(free_port)
  start_proxy --relay "127.0.0.1:$dead"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "451 4.3.0"
  grep -q 'event=deferred .*Connection refused' "$M/proxy.log"
  kill "$PROXY_PID"
  start_sink -r .
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "451 4.4.0"
  grep -q 'event=downstream .*reply="45' "$M/proxy.log"
  ! grep -q 'event=delivered' "$M/proxy.log"
  kill "$PROXY_PID"
  rm -rf "$M/sink"
  start_sink -f RCPT
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to friend@good.example bob@ours.example
  assert_output --regexp "<\*\* 5[0-9][0-9] 5.0.0 refused downstream"
  [ "$(find "$M/sink" -type f | wc -l)" -eq 0 ]
}

@test "the proxy killed with SIGKILL mid-DATA: no 250, nothing delivered or half-written" {
  start_sink
  start_proxy --maildir "$M/Maildir"
  $PY "$TOOL" partial "$PORT" friend@good.example bob@ours.example "$M/ready" >"$M/client.out" 2>&1 3>&- &
  client=$!
  for i in $(seq 100); do [ -e "$M/ready" ] && break; sleep 0.05; done
  kill -9 "$PROXY_PID"
  wait "$client"
  grep -q "250 250 354" "$M/client.out"
  grep -q "after kill: connection closed, no reply" "$M/client.out"
  [ "$(find "$M/Maildir" -type f 2>/dev/null | wc -l)" -eq 0 ]
}

@test "relay: 554 for outside recipients and every routing trick, from every kind of sender; nothing relayed" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run $PY "$TOOL" relaytricks "$PORT" ours.example 127.0.0.1
  assert_success
  echo "$output"
  [ "$(grep -c . <<<"$output")" -eq 48 ]
  # Every line: MAIL accepted (250) or refused, RCPT refused with 5xx, DATA refused.
  ! grep -vE '^(250|5[0-9][0-9]) 5[0-9][0-9] 5[0-9][0-9] ' <<<"$output"
  run swaks_to friend@good.example someone@elsewhere.example
  assert_output --partial "554 5.7.1 <someone@elsewhere.example>: relay access denied"
  wait_sink 0
  grep -q 'event=reject .*reason=relay' "$M/proxy.log"
}

@test "SMTP smuggling: no bare-LF/CR end-of-data variant lets a second, pipelined message through" {
  mwhitelist add --recipient victim@ours.example >/dev/null
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  for v in lf-dot-lf lf-dot-crlf crlf-dot-lf cr-dot-cr cr-dot-crlf crlf-dot-cr lf-dot-cr; do
    run $PY "$TOOL" smuggle "$PORT" "$v" friend@good.example bob@ours.example victim@ours.example
    echo "$v: $output"
    assert_output --partial "550 5.6.0 message refused: bare CR or LF"
  done
  wait_sink 0
  kill "$PROXY_PID"
  # Normalising instead: the first message is delivered with the rest as its body; never a second one.
  start_proxy --relay "127.0.0.1:$SINK" --bare-newline normalise
  n=0
  for v in lf-dot-lf lf-dot-crlf crlf-dot-lf cr-dot-cr cr-dot-crlf crlf-dot-cr lf-dot-cr; do
    run $PY "$TOOL" smuggle "$PORT" "$v" friend@good.example bob@ours.example victim@ours.example
    n=$((n + 1))
    wait_sink "$n"
  done
  ! grep -q 'X-Rcpt-Args: <victim@ours.example>' "$M"/sink/*
  [ "$(grep -l '^smuggled message' "$M"/sink/* | wc -l)" -eq 7 ]
}

@test "STARTTLS with a test certificate; pipelined plaintext discarded; AUTH only after TLS; authenticated relay" {
  mkcert
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice
  run msmtp-proxy user list
  assert_output --partial "alice"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem"
  run swaks_to alice@ours.example someone@elsewhere.example -a PLAIN -au alice -ap sesame
  assert_output --partial "Host did not advertise authentication"
  run $PY "$TOOL" starttls-pipeline "$PORT"
  assert_line "starttls 220 2.0.0 Ready to start TLS"
  assert_line "pending b''"
  assert_line --partial "rcpt 503"
  assert_line --partial "AUTH PLAIN LOGIN"
  refute_line --regexp '^ehlo.*STARTTLS'
  run swaks_to alice@ours.example someone@elsewhere.example -tls -a PLAIN -au alice -ap wrong
  assert_output --partial "535 5.7.8"
  grep -q 'event=auth result=fail client=127.0.0.1:[0-9]* mechanism=PLAIN user=alice password="\[redacted' "$M/proxy.log"
  ! grep -q wrong "$M/proxy.log"
  run swaks_to alice@ours.example someone@elsewhere.example -tls -a LOGIN -au alice -ap sesame
  assert_output --partial "235 2.7.0"
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  sink_all | grep -q 'with ESMTPSA'
  # The recipient is whitelisted for the answer, to the user who wrote.
  run mwhitelist check someone@elsewhere.example alice@ours.example
  assert_success
  # An authenticated user may not use a sender outside the home domains.
  run swaks_to alice@elsewhere.example someone@elsewhere.example -tls -a PLAIN -au alice -ap sesame
  assert_output --partial "553 5.7.1"
}

@test "submission: stamps outgoing mail (hashcash interoperable), BATV-signs the sender, refuses unsigned bounces" {
  mkcert
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" \
    --stamp hashcash --stamp-bits 12 --batv
  run swaks_to alice@ours.example carol@elsewhere.example -tls -a PLAIN -au alice -ap sesame
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  stamp=$(sink_all | sed -n 's/^X-Hashcash: //p' | tr -d '\r')
  [ -n "$stamp" ]
  echo "stamp: $stamp"
  hashcash -cqy -b 12 -r carol@elsewhere.example "$stamp"
  signed=$(sink_all | sed -n 's/^X-Mail-Args: <\([^>]*\)>.*/\1/p')
  [[ "$signed" == prvs=*=alice@ours.example ]]
  # A bounce to the signed address comes in; one to the bare address is backscatter.
  run swaks_to '<>' "$signed"
  assert_output --partial "250 2.0.0 OK"
  run swaks_to '<>' alice@ours.example
  assert_output --partial "550 5.7.1 <alice@ours.example>: bounce to an address we never sent from"
  wait_sink 2
  sink_all | grep -q '^X-Rcpt-Args: <alice@ours.example>'
  sink_all | grep -q '^X-Mailstamp-Class: I (Information: non-delivery notice)'
}

@test "limits: too many recipients 452, too big 552, overlong line 500, talking before the greeting 554" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --max-recipients 2 --max-message-size 2000 --greet-delay 1
  mwhitelist add --recipient a@ours.example --recipient b@ours.example --recipient c@ours.example >/dev/null 2>&1 || {
    mwhitelist add --recipient a@ours.example; mwhitelist add --recipient b@ours.example; mwhitelist add --recipient c@ours.example; } >/dev/null
  run swaks_to x@y.example a@ours.example,b@ours.example,c@ours.example
  assert_output --partial "452 4.5.3 too many recipients"
  head -c 5000 /dev/zero | tr '\0' 'x' >"$M/big"
  run swaks_to friend@good.example bob@ours.example --body "$M/big"
  assert_output --partial "552 5.3.4"
  run swaks_to friend@good.example bob@ours.example --helo "$(head -c 3000 /dev/zero | tr '\0' h)"
  assert_output --partial "500 5.5.2 line too long"
  run $PY "$TOOL" early "$PORT"
  assert_output --partial "554 5.5.0"
  grep -q 'talked before the greeting' "$M/proxy.log"
}

@test "a client dripping one octet at a time gets 421 at the deadline while another is served" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --command-timeout 2
  $PY "$TOOL" drip "$PORT" 0.25 400 >"$M/drip.out" 2>&1 3>&- &
  drip=$!
  sleep 0.5
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait "$drip"
  cat "$M/drip.out"
  grep -q '421 4.4.2 mx.ours.example timeout' "$M/drip.out"
  secs=$(sed -n 's/^after \([0-9]*\).*/\1/p' "$M/drip.out")
  [ "$secs" -ge 1 ] && [ "$secs" -le 4 ]
}

@test "inetd mode: systemd-socket-activate --inetd -a; a configuration error is a 421 (and a line on stderr)" {
  start_sink
  PORT=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$PORT" --inetd -a \
    "$MAILSTAMP_BIN/msmtp-proxy" --db "$MAILSTAMP_DB" --config /dev/null --relay "127.0.0.1:$SINK" \
    --hostname mx.ours.example --log "$M/proxy.log" >/dev/null 2>"$M/activate.err" 3>&- &
  PIDS+=($!)
  wait_port "$PORT"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
  wait_sink 1
  grep -q 'event=delivered' "$M/proxy.log"
  # In inetd mode a configuration error is said to the client as a 421, and on stderr when that is not
  # the client's socket (here a file; when it is the socket, nothing goes there: terminal.bats).
  printf 'EHLO x\r\nQUIT\r\n' | msmtp-proxy --relay nowhere >"$M/out" 2>"$M/err" || true
  [ "$(cat "$M/out")" = $'421 4.3.0 service not available (configuration)\r' ]
  [ "$(cat "$M/err")" = "msmtp-proxy: --relay: 'nowhere': want HOST:PORT or [IPv6]:PORT" ]
}

@test "socket activation with a listening socket: systemd-socket-activate -l" {
  start_sink
  PORT=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$PORT" \
    "$MAILSTAMP_BIN/msmtp-proxy" --db "$MAILSTAMP_DB" --config /dev/null --relay "127.0.0.1:$SINK" \
    --hostname mx.ours.example --log "$M/proxy.log" >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$PORT"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  run swaks_to friend@good.example carol@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 2
  # One process served both sessions.
  [ "$(grep -o 'msmtp-proxy\[[0-9]*\]' "$M/proxy.log" | sort -u | wc -l)" -eq 1 ]
  grep -q 'event=listen' "$M/proxy.log"
}

@test "standalone on IPv6 and IPv4 at once; SIGTERM stops it" {
  start_sink
  p6=$(free_port)
  start_proxy --relay "127.0.0.1:$SINK" --listen "[::1]:$p6"
  run swaks --server "[::1]:$p6" --from friend@good.example --to bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 2
  kill -TERM "$PROXY_PID"
  for i in $(seq 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$PROXY_PID" 2>/dev/null
  grep -q 'event=stop' "$M/proxy.log"
}

@test "--max-sessions: a session over the bound gets 421 and the others go on" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --max-sessions 1
  $PY "$TOOL" idle "$PORT" 1 "$M/ready" 3 >"$M/idle.out" 2>&1 3>&- &
  idle=$!
  for i in $(seq 100); do [ -e "$M/ready" ] && break; sleep 0.05; done
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "421 4.3.2 mx.ours.example too many connections"
  grep -q 'event=busy' "$M/proxy.log"
  wait "$idle"
  grep -q 'greeted 1' "$M/idle.out"
  sleep 0.2
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
}

@test "--user: privileges dropped after binding, mail still delivered" {
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  sys=$(mktemp -d /tmp/mailstamp-user.XXXXXX)
  chmod 0755 "$sys"
  export MAILSTAMP_DB="$sys/store.db"
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
  chown -R nobody "$sys"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --user nobody
  run swaks_to friend@good.example bob@ours.example
  # read once a session was served (the port is bound before the drop, so reading at once raced it)
  uid=$(awk '/^Uid:/ {print $2 " " $3 " " $4 " " $5}' "/proc/$PROXY_PID/status")
  rm -rf "$sys"
  [ "$uid" = "$(id -u nobody) $(id -u nobody) $(id -u nobody) $(id -u nobody)" ]
  assert_output --partial "250 2.0.0 OK"
}

@test "socket activation with connected sockets: systemd-socket-activate -a without --inetd" {
  start_sink
  PORT=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$PORT" -a \
    "$MAILSTAMP_BIN/msmtp-proxy" --db "$MAILSTAMP_DB" --config /dev/null --relay "127.0.0.1:$SINK" \
    --hostname mx.ours.example --log "$M/proxy.log" >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$PORT"
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 1
  grep -q 'event=listen address=connected' "$M/proxy.log"
}
