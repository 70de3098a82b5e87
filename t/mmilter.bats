#!/usr/bin/env bats
# mmilter end to end inside real MTAs on loopback: a private Postfix
# (t/postfix.bash, smtpd_milters) and Debian's Sendmail unpacked
# (t/sendmail.bash, INPUT_MAIL_FILTER), both relaying to smtp-sink, swaks
# and Python's smtplib as clients. Every policy path: whitelisted, stranger
# refused with a token at RCPT, the token used once, postmaster, forged
# verdict fields removed, postage [G], and a locked store a 451. With
# Postfix's SASL on (t/tools/fake-dovecot-auth.py standing in for Dovecot's
# auth service), an authenticated sender's mail goes out stamped, its
# recipients whitelisted for the sender.

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
  # The token address goes on to its base recipient, once.
  token_round_trip "$M/milter.log"
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

@test "postfix: --unknown mark delivers a stranger's mail [B]" {
  postfix_with_milter --unknown mark
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: B (Unknown'
  sink_all | grep -q '^Subject: \[B\] test'
}

@test "postfix: --unknown quarantine: Postfix takes a stranger's mail and holds it; the sink gets nothing" {
  postfix_with_milter --unknown quarantine
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  qid=$(sed -n 's/.*250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' <<<"$output")
  [ -n "$qid" ]
  # On hold: postqueue marks the queue id with '!', and the file is in the hold directory.
  for i in $(seq 100); do [ -e "$PF/queue/hold/$qid" ] && break; sleep 0.05; done
  [ -e "$PF/queue/hold/$qid" ]
  run postqueue -c "$PF/etc" -p
  assert_line --regexp "^${qid}!"
  assert_output --partial "stranger@bad.example"
  pf_log | grep -q "$qid: milter-hold: END-OF-MESSAGE .*milter triggers HOLD action"
  grep -q 'event=accepted .*sender=stranger@bad.example rcpt=bob@ours.example class=B' "$M/milter.log"
  sleep 0.5
  [ "$(sink_count)" -eq 0 ]
  # Released by the admin, it is delivered with its verdict.
  postsuper -c "$PF/etc" -H "$qid" >/dev/null 2>&1
  postqueue -c "$PF/etc" -f
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: B (Unknown'
}

@test "postfix: --unknown forward=ADDR sends a stranger's mail to ADDR instead of its recipient" {
  postfix_with_milter --unknown forward=quarantine@ours.example
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <quarantine@ours.example>'
  ! sink_all | grep -q '^X-Rcpt-Args: <bob@ours.example>'
  sink_all | grep -q '^X-Mailstamp-Class: B (.*forwarded to quarantine@ours.example'
  # A whitelisted sender's mail still goes to its own recipient.
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 2
  [ "$(sink_all | grep -c '^X-Rcpt-Args: <bob@ours.example>')" -eq 1 ]
}

@test "postfix: an unconditional recipient takes a stranger's mail, unchanged in the envelope" {
  mwhitelist add --recipient abuse@ours.example >/dev/null
  postfix_with_milter
  run swaks_to stranger@bad.example abuse@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <abuse@ours.example>'
  sink_all | grep -q '^X-Mailstamp-Class: W (.*takes all mail'
  # The same stranger to anyone else is still refused with a token.
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
  sleep 0.5
  [ "$(sink_count)" -eq 1 ]
}

# signed_message: good.example's SPF (which does not list 127.0.0.1, the MTA's client here) and DMARC p=reject
# served, and $M/m.eml from friend@good.example DKIM-signed with simple/simple over fields whose bytes an MTA
# that eats the space after the colon would change: a Subject with no space there, a field led by a tab.
# The whitelisted sender then passes only by that signature.
signed_message() {
  ZONE="$M/zone"
  printf 'good.example TXT "v=spf1 ip4:192.0.2.1 -all"\n_dmarc.good.example TXT "v=DMARC1; p=reject"\n' >"$ZONE"
  dkim_key good sel good.example
  start_zone "$ZONE"
  printf 'From: friend@good.example\r\nTo: bob@ours.example\r\nSubject:no space\r\nX-Tab:\tled by a tab\r\nX-Folded: first\r\n\tsecond\r\nMessage-ID: <s1@good.example>\r\n\r\nhello\r\n' >"$M/m.eml"
  dkim_sign "$M/m.eml" "$M/good.pem" sel good.example simple/simple from to subject x-tab x-folded message-id
}

@test "postfix: a DKIM simple/simple signed message is verified on its raw header (no lost spaces): [W], dkim=pass" {
  signed_message
  postfix_with_milter --no-tag
  run $PY "$TOOL" send "$PORT" friend@good.example bob@ours.example "$M/m.eml"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted, dkim pass)'
  sink_all | grep -q '^Authentication-Results: mx.ours.example;.* dkim=pass header.d=good.example'
  grep -q 'event=accepted .*sender=friend@good.example .*class=W' "$M/milter.log"
  # The fields reach the sink as they were sent.
  sink_all | grep -q '^Subject:no space'
  sink_all | grep -q "^X-Tab:$(printf '\t')led by a tab"
}

@test "postfix: the tagged Subject and the verdict fields keep one space after the colon" {
  postfix_with_milter
  printf 'From: friend@good.example\r\nSubject:packed\r\n\r\nhello\r\n' >"$M/m.eml"
  run $PY "$TOOL" send "$PORT" friend@good.example bob@ours.example "$M/m.eml"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q '^Subject: \[W\] packed'
  sink_all | grep -q '^X-Mailstamp-Class: W '
  sink_all | grep -q '^Authentication-Results: mx.ours.example;'
}

@test "postfix: a client Postfix lets relay (mynetworks) writes to another domain: none of ours, no 550, no token" {
  postfix_with_milter
  # 127.0.0.2 is the rig's mynetworks; the sender is no one we know.
  run swaks_to stranger@bad.example carol@elsewhere.example --local-interface 127.0.0.2
  refute_output --partial "550"
  refute_output --partial "this address"
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <carol@elsewhere.example>'
  ! sink_all | grep -q '^X-Mailstamp-Class:'
  grep -q 'event=relayed .*rcpt=carol@elsewhere.example' "$M/milter.log"
  # The same client to one of ours is decided as anyone's.
  run swaks_to stranger@bad.example bob@ours.example --local-interface 127.0.0.2
  assert_output --partial "550"
  [[ "$(token_of "$output")" == bob+*@ours.example ]]
}

@test "postfix: a locked store is a 451 at RCPT, never an accept" {
  skip_unless_sqlite "another process holds the SQLite file's lock (sqlite3 BEGIN EXCLUSIVE)"
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

@test "sendmail: a DKIM simple/simple signed message is [W] by dkim pass; the tagged Subject keeps its space" {
  signed_message
  start_sink
  start_milter
  start_sendmail "$SINK" "INPUT_MAIL_FILTER(\`mmilter', \`S=inet:$MPORT@127.0.0.1, F=T, T=S:30s;R:1m;E:5m')"
  PORT=$SM_PORT
  run $PY "$TOOL" send "$PORT" friend@good.example bob@ours.example "$M/m.eml"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted, dkim pass)'
  sink_all | grep -q '^Subject: \[W\] no space'
  sink_all | grep -q "^X-Tab:$(printf '\t')led by a tab"
}

# postfix_sasl_milter [mmilter options]: postfix_with_milter whose smtpd authenticates alice (password
# sesame) through t/tools/fake-dovecot-auth.py; alice is a user of the store who sends as alice@ours.example.
postfix_sasl_milter() {
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice >/dev/null
  start_sink
  start_fake_sasl alice sesame
  start_milter "$@"
  start_postfix "$SINK" "smtpd_milters = inet:127.0.0.1:$MPORT" "milter_default_action = tempfail" \
    "milter_protocol = 6" "${PF_SASL[@]}"
  PORT=$PF_PORT
}

# pf_wait TEXT: until Postfix's log has TEXT.
pf_wait() {
  local i
  for i in $(seq 100); do pf_log | grep -qF -- "$1" && return 0; sleep 0.05; done
  echo "Postfix's log has no '$1':" >&2
  pf_log >&2
  return 1
}

@test "postfix SASL: an authenticated sender's mail to strangers goes out hashcash-stamped per recipient, the recipients whitelisted for the user" {
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  postfix_sasl_milter --stamp hashcash --stamp-bits 12
  run swaks_to alice@ours.example carol@elsewhere.example,dave@far.example -a PLAIN -au alice -ap sesame
  assert_output --partial "235 2.7.0 Authentication successful"
  # Strangers both: never refused, no token, for an authenticated sender.
  refute_output --partial "550"
  assert_output --partial "250 2.0.0 Ok: queued"
  grep -q 'ok id=[0-9]* user=alice' "$M/sasl.log"
  pf_wait 'sasl_method=PLAIN, sasl_username=alice'
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <carol@elsewhere.example>'
  sink_all | grep -q '^X-Rcpt-Args: <dave@far.example>'
  [ "$(sink_all | grep -c '^X-Hashcash: ')" -eq 2 ]
  for r in carol@elsewhere.example dave@far.example; do
    run hashcash -cXy -b 12 -r "$r" <"$(ls "$M"/sink/*)"
    assert_success
  done
  run hashcash -cXy -b 12 -r someone@else.example <"$(ls "$M"/sink/*)"
  assert_failure
  # Outgoing mail gets no verdict fields and no Subject tag.
  ! sink_all | grep -q '^X-Mailstamp-Class:'
  sink_all | grep -q '^Subject: test'
  grep -q 'event=accepted .*sender=alice@ours.example rcpt=carol@elsewhere.example,dave@far.example class=out user=alice' "$M/milter.log"
  # The answers may come back to alice, and only to her.
  run mwhitelist list
  assert_line --regexp "^carol@elsewhere.example	address	alice@ours.example	.*	outgoing	"
  assert_line --regexp "^dave@far.example	address	alice@ours.example	.*	outgoing	"
  run mwhitelist check carol@elsewhere.example alice@ours.example
  assert_success
  run mwhitelist check carol@elsewhere.example bob@ours.example
  assert_failure
}

@test "postfix SASL: without stamps the recipients are still whitelisted; a sender alice does not own 553; a wrong password 535" {
  postfix_sasl_milter
  run swaks_to alice@ours.example carol@elsewhere.example -a PLAIN -au alice -ap sesame
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  ! sink_all | grep -q '^X-Hashcash:'
  run mwhitelist list
  assert_line --regexp "^carol@elsewhere.example	address	alice@ours.example	.*	outgoing	"
  # MAIL FROM an address of ours that is not hers: mmilter refuses it (Postfix alone would relay it).
  run swaks_to bob@ours.example carol@elsewhere.example -a LOGIN -au alice -ap sesame
  assert_output --partial "235 2.7.0"
  assert_output --partial "553 5.7.1 <bob@ours.example>: sender address not owned by user alice"
  grep -q 'event=reject .*sender=bob@ours.example user=alice reason="sender not owned by the user"' "$M/milter.log"
  run swaks_to alice@ours.example carol@elsewhere.example -a PLAIN -au alice -ap wrong
  assert_output --partial "535 5.7.8"
  grep -q 'fail id=[0-9]* user=alice reason=wrong user or password' "$M/sasl.log"
  # Unauthenticated, the same envelope is refused by Postfix's own relay restriction.
  run swaks_to alice@ours.example carol@elsewhere.example
  assert_output --partial "554 5.7.1 <carol@elsewhere.example>: Relay access denied"
  sleep 0.3
  [ "$(sink_count)" -eq 1 ]
}

@test "--listen unix:PATH with --user: the socket is given to the user and its group, mode 0660, before the switch" {
  [ "$(id -u)" -eq 0 ] || skip "needs root to switch users"
  S=$(mktemp -d)
  chmod 755 "$S"
  MAILSTAMP_DB="$S/store.db" mwhitelist domain add ours.example >/dev/null
  chown -R nobody "$S"
  mmilter --listen "unix:$S/m.sock" --user nobody --db "$S/store.db" --config /dev/null \
    --log "$M/milter.log" >/dev/null 2>"$M/milter.err" 3>&- &
  PIDS+=($!)
  for i in $(seq 100); do [ -S "$S/m.sock" ] && grep -q 'event=listen' "$M/milter.log" 2>/dev/null && break; sleep 0.05; done
  run stat -c '%U %G %a' "$S/m.sock"
  assert_output "nobody $(id -gn nobody) 660"
  # A root-made socket no one else may write to would keep the MTA out: the user can connect.
  run setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups /usr/bin/python3 -c \
    "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')" "$S/m.sock"
  assert_output "connected"
  rm -rf "$S"
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
  # (systemd-socket-activate writes its own lines there first: wait for mmilter's)
  msg="mmilter: systemd passed a connected socket: mmilter's socket unit needs Accept=no"
  for i in $(seq 100); do grep -qx "$msg" "$M/err" && break; sleep 0.05; done
  grep -qx "$msg" "$M/err"
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
