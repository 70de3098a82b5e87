#!/usr/bin/env bats
# Delivery targets beside maildir: and sendmail: LMTP (over TCP and a Unix
# socket) to a test LMTP server (t/tools/fake-mta.py, aiosmtpd's LMTP class)
# with its per-recipient replies after the data, and pipe: to a program run
# once per recipient; each used by msmtp-proxy --deliver and mchallenge.
# The message counts as delivered only when the target took it for every
# recipient; otherwise the client is told 4xx (or 5xx when the target says so).

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() { kill_rig; }

# start_lmtp [fake-mta options]: the LMTP server on $LMTP (TCP), its log and mail under $M/lmtp.
start_lmtp() {
  LMTP=$(free_port)
  mkdir -p "$M/lmtp"
  $PY "$MAILSTAMP_SRC/t/tools/fake-mta.py" --lmtp --port "$LMTP" --dir "$M/lmtp" "$@" >"$M/lmtp.err" 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$LMTP"
}
lmtp_mail() { find "$M/lmtp/mail" -type f 2>/dev/null | wc -l; }

# mkprog: a delivery program that writes its first argument and the message to $M/out/SECOND-ARGUMENT
# and exits with the number in $M/rc (0 when there is none).
mkprog() {
  mkdir -p "$M/out"
  printf '%s\n' '#!/bin/sh' \
    "f=\"$M/out/\$2\"" \
    'printf "sender=%s\n" "$1" >"$f"' \
    'cat >>"$f"' \
    "exit \$(cat \"$M/rc\" 2>/dev/null || echo 0)" >"$M/prog"
  chmod +x "$M/prog"
}

@test "lmtp over TCP: every recipient's 250 after the data, then 250 to the client" {
  start_lmtp
  start_proxy --deliver "lmtp:127.0.0.1:$LMTP"
  run swaks_to friend@good.example bob@ours.example,carol@ours.example --body "lmtp body"
  assert_success
  assert_output --partial "<-  250 2.0.0 OK: delivered"
  [ "$(lmtp_mail)" -eq 2 ]
  grep -q 'lmtp body' "$M/lmtp/mail/"*bob@ours.example
  grep -q '^X-Mailstamp-Class: W' "$M/lmtp/mail/"*carol@ours.example
  grep -q '^X-Envelope-From: <friend@good.example>' "$M/lmtp/mail/"*bob@ours.example
  grep -q 'DATA 250 .* | 250 ' "$M/lmtp/log"
}

@test "lmtp over a Unix socket" {
  mkdir -p "$M/lmtp"
  $PY "$MAILSTAMP_SRC/t/tools/fake-mta.py" --lmtp --unix "$M/lmtp.sock" --dir "$M/lmtp" >"$M/lmtp.err" 2>&1 3>&- &
  PIDS+=($!)
  for i in $(seq 100); do [ -e "$M/lmtp/ready" ] && break; sleep 0.05; done
  start_proxy --deliver "lmtp:unix:$M/lmtp.sock"
  run swaks_to friend@good.example bob@ours.example
  assert_success
  assert_output --partial "<-  250 2.0.0 OK: delivered"
  [ "$(lmtp_mail)" -eq 1 ]
}

@test "lmtp: one recipient's 452 after the data makes the message a 4xx for the client, nothing lost" {
  start_lmtp --defer carol@ours.example
  start_proxy --deliver "lmtp:127.0.0.1:$LMTP"
  run swaks_to friend@good.example bob@ours.example,carol@ours.example
  assert_failure
  assert_output --partial "<** 451 4.4.0 downstream busy, try again later: 452 4.2.2 <carol@ours.example>"
  grep -q 'event=downstream .*reply="452 4.2.2' "$M/proxy.log"
  # The client keeps the message and tries again: bob may get it twice, carol never not at all.
  [ -z "$(find "$M/lmtp/mail" -name '*carol@ours.example')" ]
}

@test "lmtp: a recipient's 5xx after the data (none deferred) is a refusal; a dead server a 4xx" {
  start_lmtp --later carol@ours.example
  start_proxy --deliver "lmtp:127.0.0.1:$LMTP"
  run swaks_to friend@good.example bob@ours.example,carol@ours.example
  assert_failure
  assert_output --partial "<** 550 5.0.0 refused downstream: 550 5.2.1"
  kill_rig
  PIDS=()
  start_proxy --deliver "lmtp:127.0.0.1:$(free_port)"
  run swaks_to friend@good.example bob@ours.example
  assert_failure
  assert_output --regexp '<\*\* 4[0-9][0-9] '
}

@test "pipe: the program runs once per recipient, \${sender} and \${recipient} in its argv, message on stdin" {
  mkprog
  start_proxy --deliver "pipe:$M/prog \${sender} \${recipient}"
  run swaks_to friend@good.example bob@ours.example,carol@ours.example --body "piped body"
  assert_success
  assert_output --partial "<-  250 2.0.0 OK: delivered"
  grep -qx 'sender=friend@good.example' "$M/out/bob@ours.example"
  grep -q 'piped body' "$M/out/bob@ours.example"
  grep -q 'piped body' "$M/out/carol@ours.example"
}

@test "pipe: a program that exits 75 (EX_TEMPFAIL) or 1 is a 4xx; 67 (EX_NOUSER) a 5xx" {
  mkprog
  start_proxy --deliver "pipe:$M/prog \${sender} \${recipient}"
  echo 75 >"$M/rc"
  run swaks_to friend@good.example bob@ours.example
  assert_failure
  assert_output --partial "<** 451 4.4.0 downstream busy, try again later: 451 4.3.0 temporary failure"
  echo 1 >"$M/rc"
  run swaks_to friend@good.example bob@ours.example
  assert_failure
  assert_output --partial "<** 451 "
  echo 67 >"$M/rc"
  run swaks_to friend@good.example bob@ours.example
  assert_failure
  assert_output --partial "<** 550 5.0.0 refused downstream: 550 5.1.1 user unknown"
}

@test "bad targets are usage errors that say what is wanted" {
  run msmtp-proxy --listen 127.0.0.1:1 --deliver "lmtp:nohost"
  assert_failure 64
  assert_output --partial "lmtp:unix:/PATH"
  run msmtp-proxy --listen 127.0.0.1:1 --deliver "pipe:relative/prog"
  assert_failure 64
  assert_output --partial "absolute program path"
  run msmtp-proxy --listen 127.0.0.1:1 --deliver "lmtp:127.0.0.1:24" --maildir "$M/md"
  assert_failure 64
  run msourced --deliver "pipe:" queue
  assert_failure 64
  run mchallenge --deliver "lmtp:unix:" </dev/null
  assert_failure 64
}

@test "mchallenge takes the same targets: it delivers over LMTP and through pipe:" {
  start_lmtp
  printf 'Return-Path: <friend@good.example>\nX-Original-To: bob@ours.example\nFrom: friend@good.example\nTo: bob@ours.example\nSubject: hi\n\nbody\n' >"$M/w.eml"
  run mchallenge --deliver "lmtp:127.0.0.1:$LMTP" --hostname mx.ours.example <"$M/w.eml"
  assert_success
  [ "$(lmtp_mail)" -eq 1 ]
  mkprog
  run mchallenge --deliver "pipe:$M/prog \${sender} \${recipient}" --hostname mx.ours.example <"$M/w.eml"
  assert_success
  grep -q '^X-Mailstamp-Class: W' "$M/out/bob@ours.example"
  echo 75 >"$M/rc"
  run mchallenge --deliver "pipe:$M/prog \${sender} \${recipient}" --hostname mx.ours.example <"$M/w.eml"
  assert_failure 75
}
