#!/usr/bin/env bats
# Bad-mail mode forward and stamped mail (--forward-stamped, config
# `forward-stamped`): by default only Unknown mail (no postage, or postage
# that failed) goes to the forward address and stamped mail is delivered;
# with forward-stamped, mail admitted only by its postage (Stamped [G],
# Questionable [Q]) is forwarded too, its verdict fields kept. Whitelisted
# mail is delivered either way. The real msmtp-proxy, smtp-sink behind it.

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() { kill_rig; }

# stamped_message FILE ID BITS: a message from stranger@bad.example to bob with a hashcash stamp of BITS bits.
stamped_message() {
  local stamp
  stamp=$(hashcash -m -q -b "$3" bob@ours.example)
  printf 'X-Hashcash: %s\r\nFrom: stranger@bad.example\r\nTo: bob@ours.example\r\nSubject: paid %s\r\nMessage-ID: <%s@bad.example>\r\n\r\nI paid.\r\n' \
    "$stamp" "$2" "$2" >"$1"
}

# rcpt_of SUBJECT: the envelope recipient the sink got the message with that Subject for.
rcpt_of() {
  local f
  f=$(grep -l "^Subject: .*$1" "$M"/sink/* | head -1)
  sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$f" | head -1
}

# class_of SUBJECT: the X-Mailstamp-Class value (unfolded) of the message the sink got with that Subject.
class_of() {
  /usr/bin/python3 -c '
import email, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*")):
    m = email.message_from_binary_file(open(f, "rb"))
    if sys.argv[2] in str(m["Subject"]):
        print(" ".join(str(m["X-Mailstamp-Class"]).split()))
        break' "$M/sink" "$1"
}

@test "forward mode: stamped mail is delivered by default; bad stamps and no stamps are forwarded" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown forward=screen@ours.example --min-bits 16
  stamped_message "$M/good.eml" good 16
  stamped_message "$M/weak.eml" weak 8
  printf 'From: stranger@bad.example\r\nSubject: free\r\n\r\nI did not pay.\r\n' >"$M/free.eml"
  for m in good weak free; do
    run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/$m.eml"
    assert_output "sent "
  done
  wait_sink 3
  [ "$(rcpt_of 'paid good')" = bob@ours.example ]
  [[ "$(class_of 'paid good')" == "G "* ]]
  [ "$(rcpt_of 'paid weak')" = screen@ours.example ]
  [[ "$(class_of 'paid weak')" == "B "* ]]
  [ "$(rcpt_of free)" = screen@ours.example ]
}

@test "--forward-stamped: stamped mail goes to the forward address too, marked G; whitelisted mail is delivered" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown forward=screen@ours.example --min-bits 16 --forward-stamped
  stamped_message "$M/good.eml" good 16
  stamped_message "$M/weak.eml" weak 8
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/good.eml"
  assert_output "sent "
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/weak.eml"
  assert_output "sent "
  run swaks_to friend@good.example bob@ours.example --header 'Subject: from a friend'
  assert_output --partial "250 2.0.0 OK"
  wait_sink 3
  [ "$(rcpt_of 'paid good')" = screen@ours.example ]
  [[ "$(class_of 'paid good')" == "G "*"forwarded to screen@ours.example"* ]]
  [ "$(rcpt_of 'paid weak')" = screen@ours.example ]
  [ "$(rcpt_of 'from a friend')" = bob@ours.example ]
}

@test "forward-stamped from the config file; a bad value is a configuration error" {
  start_sink
  printf '[msmtp-proxy]\nunknown = forward=screen@ours.example\nforward-stamped = yes\nmin-bits = 16\n' >"$M/conf"
  MAILSTAMP_CONFIG="$M/conf" start_proxy --relay "127.0.0.1:$SINK"
  stamped_message "$M/good.eml" good 16
  run $PY "$TOOL" send "$PORT" stranger@bad.example bob@ours.example "$M/good.eml"
  assert_output "sent "
  wait_sink 1
  [ "$(rcpt_of 'paid good')" = screen@ours.example ]
  printf '[msmtp-proxy]\nunknown = forward=screen@ours.example\nforward-stamped = maybe\n' >"$M/bad.conf"
  MAILSTAMP_CONFIG="$M/bad.conf" run msmtp-proxy --listen 127.0.0.1:1 --relay "127.0.0.1:$SINK"
  assert_failure 78
  assert_output --partial "bad.conf:3: want yes or no"
}
