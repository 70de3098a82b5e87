#!/usr/bin/env bats
# mchallenge bounce on the bounce formats of dsn_vendor.cpp: it names each
# family and its failed recipient, and says "notice: no" for look-alikes.
# (The whole loop for every wild fixture is t/dsn-loop.bats.)

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  mwhitelist domain add ours.example >/dev/null
  W="$FIX/dsn/wild"
}

@test "mchallenge bounce names the family and the failed recipient" {
  for case in domino/two-recipients:domino:dave@notes.example groupwise/host-not-found-multi:groupwise:jack@gw.example \
              mdaemon/two-recipients:mdaemon:rita@remote.example smtp32/remote-rejected:smtp32:uma@remote.example \
              iplanet/two-recipients:iplanet:zoe@ims.example pmdf/relay-and-full:pmdf:greta@remote.example \
              courier/no-domain-and-quota:courier:kim@courier.example simple/own-line-two:simple:dara@simple.example; do
    IFS=: read -r f format rcpt <<<"$case"
    run mchallenge bounce <"$W/$f.eml"
    assert_success
    assert_line "notice: yes"
    assert_line "format: $format"
    assert_line --partial "recipient: $rcpt "
  done
  for f in simple/person-says-bounced simple/vacation-mentions-address simple/forwarded-notice; do
    run mchallenge bounce <"$W/$f.eml"
    assert_failure 1
    assert_output "notice: no"
  done
}
