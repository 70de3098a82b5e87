#!/usr/bin/env bats
# The private Postfix instance the MTA tests use (t/postfix.bash): it starts
# on loopback, relays to smtp-sink, logs to its own file, and stops.

load helpers
load postfix

setup() {
  common_setup
  proxy_rig_setup
}

teardown() {
  stop_postfix
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
