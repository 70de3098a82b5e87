#!/usr/bin/env bats
# The private MTAs the milter and policy tests run: a Postfix instance
# (t/postfix.bash) and Debian's Sendmail unpacked, never installed
# (t/sendmail.bash). Each starts on loopback, relays to smtp-sink, and stops
# leaving nothing behind.

load helpers
load postfix
load sendmail

setup() {
  common_setup
  proxy_rig_setup
}

teardown() {
  stop_postfix
  stop_sendmail
  kill_rig
}

@test "postfix: a private instance relays to smtp-sink and logs the client" {
  start_sink
  start_postfix "$SINK"
  run swaks --server "127.0.0.1:$PF_PORT" --helo client.example --from a@x.example --to bob@ours.example
  assert_success
  wait_sink 1
  for i in $(seq 50); do pf_log | grep -q 'status=sent' && break; sleep 0.1; done
  run pf_log
  assert_output --partial 'connect from localhost[127.0.0.1]'
  assert_output --partial 'to=<bob@ours.example>'
  assert_output --partial 'status=sent'
  # Not a relay for other domains.
  run swaks --server "127.0.0.1:$PF_PORT" --helo client.example --from a@x.example --to eve@elsewhere.example
  assert_output --partial '554 5.7.1'
  local dir=$PF
  stop_postfix
  [ ! -d "$dir" ]
}

@test "sendmail: a private Sendmail relays to smtp-sink" {
  start_sink
  start_sendmail "$SINK"
  run swaks --server "127.0.0.1:$SM_PORT" --helo client.example --from a@x.example --to bob@ours.example
  assert_success
  assert_output --partial 'ESMTP Sendmail'
  wait_sink 1
  run sink_all
  assert_output --partial 'To: bob@ours.example'
  assert_output --regexp 'by mx\.ours\.example \(8\.17[^)]*\) with ESMTP'
  local dir=$SM
  stop_sendmail
  [ ! -d "$dir" ]
}
