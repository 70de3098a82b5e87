#!/usr/bin/env bats
# mmilter end to end inside real MTAs on loopback: a private Postfix
# (t/postfix.bash, smtpd_milters) and Debian's Sendmail unpacked
# (t/sendmail.bash, INPUT_MAIL_FILTER), both relaying to smtp-sink, swaks
# and Python's smtplib as clients. Every policy path: whitelisted, stranger
# refused with a token at RCPT, the token used once, postmaster, forged
# verdict fields removed, postage [G], and a locked store a 451.

load helpers
load postfix
load sendmail

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() {
  stop_postfix
  stop_sendmail
  kill_rig
}

# start_milter [options]: mmilter on $MPORT, logging to $M/milter.log.
start_milter() {
  MPORT=$(free_port)
  mmilter --listen "127.0.0.1:$MPORT" --hostname mx.ours.example --log "$M/milter.log" "$@" \
    >/dev/null 2>"$M/milter.err" 3>&- &
  MILTER_PID=$!
  PIDS+=($MILTER_PID)
  wait_port "$MPORT"
}

# postfix_with_milter [mmilter options]: the sink, mmilter, and Postfix asking it; PORT is Postfix's.
postfix_with_milter() {
  start_sink
  start_milter "$@"
  start_postfix "$SINK" "smtpd_milters = inet:127.0.0.1:$MPORT" "milter_default_action = tempfail" \
    "milter_protocol = 6"
  PORT=$PF_PORT
}

@test "usage: --listen forms, and a bad --unknown" {
  run mmilter --help
  assert_success
  assert_output --partial "--unknown"
  # Neither --listen nor a socket from systemd.
  run mmilter
  assert_failure 64
  assert_output "mmilter: give one --listen HOST:PORT or unix:PATH, or a socket from systemd"
  run mmilter --listen nowhere
  assert_failure 64
  run mmilter --listen 127.0.0.1:1 --unknown sometimes
  assert_failure 64
  assert_output --partial "quarantine"
}

@test "postfix: whitelisted sender delivered with the verdict fields; forged ones removed" {
  postfix_with_milter
  run swaks_to friend@good.example bob@ours.example \
    --header "X-Mailstamp-Class: G (forged) by mx.ours.example" \
    --header "Authentication-Results: mx.ours.example; x-mailstamp-hashcash=pass"
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
  sink_all | grep -q '^Authentication-Results: mx.ours.example;'
  sink_all | grep -q '^Subject: \[W\] test'
  [ "$(sink_all | grep -c '^X-Mailstamp-Class:')" -eq 1 ]
  ! sink_all | grep -q 'forged'
  ! sink_all | grep -q 'hashcash=pass'
  grep -q 'event=accepted .*sender=friend@good.example rcpt=bob@ours.example class=W' "$M/milter.log"
  grep -q 'event=forged_fields .*removed=2' "$M/milter.log"
}

@test "postfix: a stranger is refused at RCPT with a token; the resend is delivered once; postmaster always" {
  postfix_with_milter
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  grep -q "event=reject .*rcpt=bob@ours.example .*token=$tok" "$M/milter.log"
  [ "$(sink_count)" -eq 0 ]
  run $PY "$TOOL" send "$PORT" other@bad.example "$tok"
  assert_output "sent "
  wait_sink 1
  # The token address goes on to its base recipient.
  sink_all | grep -q '^X-Rcpt-Args: <bob@ours.example>'
  sink_all | grep -q "^X-Mailstamp-Class: W (Whitelist: token address $tok)"
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok"
  assert_output --partial "refused $tok 550"
  sleep 0.5
  [ "$(sink_count)" -eq 1 ]
  run swaks_to stranger@bad.example postmaster@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 2
}

@test "postfix: --unknown postage: a hashcash-stamped message is delivered [G], an unstamped one refused with a token" {
  postfix_with_milter --unknown postage --min-bits 16
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
  sleep 0.5
  [ "$(sink_count)" -eq 1 ]
}

@test "postfix: --unknown mark delivers a stranger's mail [B]; quarantine holds it" {
  postfix_with_milter --unknown mark
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: B (Unknown'
  sink_all | grep -q '^Subject: \[B\] test'
}

@test "postfix: a locked store is a 451 at RCPT, never an accept" {
  printf '[common]\nbusy-timeout = 1s\n' >"$M/conf"
  postfix_with_milter --config "$M/conf"
  (sqlite3 "$MAILSTAMP_DB" "PRAGMA busy_timeout=100; BEGIN EXCLUSIVE; SELECT 1 FROM whitelist; " ".shell sleep 5" "COMMIT;" >/dev/null) &
  locker=$!
  sleep 0.5
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "451 4.3.0"
  # Only the locker: a bare wait would wait for mmilter too.
  wait "$locker"
  [ "$(sink_count)" -eq 0 ]
}

@test "sendmail: INPUT_MAIL_FILTER: a stranger is refused with a token, a whitelisted sender delivered" {
  start_sink
  start_milter
  start_sendmail "$SINK" "INPUT_MAIL_FILTER(\`mmilter', \`S=inet:$MPORT@127.0.0.1, F=T, T=S:30s;R:1m;E:5m')"
  PORT=$SM_PORT
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
}

# activated_milter [mmilter options]: mmilter started by systemd-socket-activate on $MPORT (Accept=no: the
# listening socket passed), the sink, and Postfix asking it; PORT is Postfix's. systemd-socket-activate passes
# on no environment but PATH, HOME, USER and TERM: the store, configuration and DNS server go as options.
activated_milter() {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed (package systemd)"
  start_sink
  MPORT=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$MPORT" "$MAILSTAMP_BIN/mmilter" --db "$MAILSTAMP_DB" --config /dev/null \
    --dns "$MAILSTAMP_DNS" --hostname mx.ours.example --log "$M/milter.log" "$@" >/dev/null 2>"$M/milter.err" 3>&- &
  MILTER_PID=$!
  PIDS+=($MILTER_PID)
  wait_port "$MPORT"  # the probe's connection starts mmilter (systemd-socket-activate execs it in place)
  start_postfix "$SINK" "smtpd_milters = inet:127.0.0.1:$MPORT" "milter_default_action = tempfail" \
    "milter_protocol = 6"
  PORT=$PF_PORT
}

@test "systemd socket activation: libmilter serves the passed socket; Postfix delivers a friend's mail, refuses a stranger" {
  activated_milter
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  # The process systemd-socket-activate became, on the socket it was given: no socket of its own.
  grep -q "mmilter\[$MILTER_PID\]: .*event=listen address=127.0.0.1:$MPORT role=milter" "$M/milter.log"
  [ "$(grep -o 'mmilter\[[0-9]*\]' "$M/milter.log" | sort -u)" = "mmilter[$MILTER_PID]" ]
  grep -q "event=reject .*rcpt=bob@ours.example .*token=$tok" "$M/milter.log"
  [ "$(sink_count)" -eq 1 ]
}

@test "systemd socket activation: --listen too, two sockets, or a connected socket is refused" {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed (package systemd)"
  p=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$p" "$MAILSTAMP_BIN/mmilter" --listen 127.0.0.1:1 >"$M/out" 2>&1 3>&- &
  sa=$!
  wait_port "$p"
  rc=0
  wait "$sa" || rc=$?
  [ "$rc" -eq 64 ]
  # (systemd-socket-activate says what it does on stderr too)
  grep -qx "mmilter: --listen and a socket from systemd: give one, not both" "$M/out"
  p=$(free_port)
  p2=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$p" -l "127.0.0.1:$p2" "$MAILSTAMP_BIN/mmilter" >"$M/out" 2>&1 3>&- &
  sa=$!
  wait_port "$p"
  rc=0
  wait "$sa" || rc=$?
  [ "$rc" -eq 78 ]
  grep -qx "mmilter: systemd passed 2 sockets; mmilter serves one" "$M/out"
  # -a: a connected socket per connection (Accept=yes), which libmilter cannot serve.
  p=$(free_port)
  systemd-socket-activate -a -l "127.0.0.1:$p" "$MAILSTAMP_BIN/mmilter" >/dev/null 2>"$M/err" 3>&- &
  PIDS+=($!)
  wait_port "$p"
  for i in $(seq 100); do [ -s "$M/err" ] && break; sleep 0.05; done
  grep -qx "mmilter: systemd passed a connected socket: mmilter's socket unit needs Accept=no" "$M/err"
}

@test "log rotation: SIGUSR1 reopens --log at once and the milter goes on; SIGHUP stops it, as libmilter does" {
  activated_milter
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  mv "$M/milter.log" "$M/milter.log.1"
  kill -USR1 "$MILTER_PID"
  for i in $(seq 100); do [ -e "$M/milter.log" ] && break; sleep 0.05; done
  [ -e "$M/milter.log" ]  # reopened before any connection: no session had to end first
  kill -0 "$MILTER_PID"
  run swaks_to friend@good.example carol@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 2
  grep -q 'event=accepted .*rcpt=bob@ours.example' "$M/milter.log.1"
  ! grep -q 'rcpt=carol@ours.example' "$M/milter.log.1"
  grep -q 'event=accepted .*rcpt=carol@ours.example' "$M/milter.log"
  ! grep -q 'rcpt=bob@ours.example' "$M/milter.log"
  # Again, with the second file rotated the same way.
  mv "$M/milter.log" "$M/milter.log.2"
  kill -USR1 "$MILTER_PID"
  run swaks_to friend@good.example dave@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  grep -q 'event=accepted .*rcpt=dave@ours.example' "$M/milter.log"
  # libmilter's signal thread takes SIGHUP as a stop (mmilter.service's ExecReload sends SIGUSR1).
  kill -HUP "$MILTER_PID"
  for i in $(seq 100); do kill -0 "$MILTER_PID" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$MILTER_PID" 2>/dev/null
  grep -q 'event=stop result=ok' "$M/milter.log"
}
