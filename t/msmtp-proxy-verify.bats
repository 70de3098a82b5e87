#!/usr/bin/env bats
# msmtp-proxy --verify-recipients: a local part that does not exist gets
# 550 5.1.1 and no token address (a directory harvest learns nothing and
# fills no store). The downstream is t/tools/fake-mta.py, an aiosmtpd SMTP
# server that refuses recipients not in its users file at RCPT, as a real MTA
# with recipient maps does, and logs every command (to count the probes).

load helpers
load postfix

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
  printf 'bob@ours.example\ncarol@ours.example\n' >"$M/users"
}

teardown() {
  stop_postfix
  kill_rig
}

# start_mta [fake-mta options]: the downstream on $MTA, its log and mail under $M/mta.
start_mta() {
  MTA=$(free_port)
  mkdir -p "$M/mta"
  $PY "$MAILSTAMP_SRC/t/tools/fake-mta.py" --port "$MTA" --dir "$M/mta" --users "$M/users" "$@" >"$M/mta.err" 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$MTA"
}
probes() { grep -c "^RCPT $1\$" "$M/mta/log" || true; }
# Tokens are stateless (their MAC is the record); what the store keeps of an issue is the daily issue count
# per client network and per sender (tok:net:*, tok:snd:*): the tokens issued so far, per client network.
tokens() { store_sql "SELECT coalesce(sum(n), 0) FROM source_rate WHERE key LIKE 'tok:net:%'"; }

@test "probe: an unknown local part gets 550 5.1.1 and no token; a known one from a stranger the 550 with a token" {
  start_mta
  start_proxy --relay "127.0.0.1:$MTA" --verify-recipients probe
  run swaks_to stranger@bad.example nosuchuser@ours.example
  assert_failure
  assert_output --partial "<** 550 5.1.1 <nosuchuser@ours.example>: recipient unknown"
  refute_output --partial "this address"
  [ "$(tokens)" -eq 0 ]
  grep -q 'event=rcpt_verify .*address=nosuchuser@ours.example .*result=unknown' "$M/proxy.log"
  grep -q 'event=reject .*rcpt=nosuchuser@ours.example .*reason="unknown recipient"' "$M/proxy.log"
  # The probe: the null sender, the address, RSET; nothing delivered.
  grep -qx 'MAIL <>' "$M/mta/log"
  grep -qx 'RSET' "$M/mta/log"
  [ -z "$(ls "$M/mta/mail")" ]

  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "takes mail only from senders it knows"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  [ "$(tokens)" -eq 1 ]

  # The token address is verified by the address it stands for, and the resend is delivered.
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok"
  assert_output "sent "
  [ "$(find "$M/mta/mail" -name '*bob@ours.example' | wc -l)" -eq 1 ]
  # Whitelisted senders too are refused for addresses that do not exist.
  run swaks_to friend@good.example nobody@ours.example
  assert_output --partial "<** 550 5.1.1 <nobody@ours.example>: recipient unknown"
  run swaks_to friend@good.example carol@ours.example
  assert_success
}

@test "probe against a real Postfix: its relay_recipient_maps decide; an unknown user 550 5.1.1 and no token" {
  start_sink
  start_postfix "$SINK" "relay_recipient_maps = inline:{ bob@ours.example=ok, carol@ours.example=ok }"
  start_proxy --relay "127.0.0.1:$PF_PORT" --verify-recipients probe
  run swaks_to stranger@bad.example nosuchuser@ours.example
  assert_failure
  assert_output --partial "<** 550 5.1.1 <nosuchuser@ours.example>: recipient unknown"
  refute_output --partial "this address"
  [ "$(tokens)" -eq 0 ]
  # Postfix refused the probe itself, at RCPT, from its own table.
  for i in $(seq 100); do pf_log | grep -q 'Recipient address rejected: User unknown in relay recipient table' && break; sleep 0.05; done
  pf_log | grep -q 'NOQUEUE: reject: RCPT from localhost\[127.0.0.1\]: 550 5.1.1 <nosuchuser@ours.example>'
  # A user Postfix knows: the stranger gets the 550 with a token; a friend's mail goes through.
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "takes mail only from senders it knows"
  [[ "$(token_of "$output")" == bob+*@ours.example ]]
  run swaks_to friend@good.example carol@ours.example
  assert_success
  wait_sink 1
  [ "$(sink_count)" -eq 1 ]
}

@test "probe: answers are cached, known and unknown; other domains are not probed" {
  start_mta
  start_proxy --relay "127.0.0.1:$MTA" --verify-recipients probe
  for i in 1 2 3; do
    run swaks_to stranger@bad.example ghost@ours.example
    assert_output --partial "550 5.1.1 <ghost@ours.example>"
  done
  [ "$(probes ghost@ours.example)" -eq 1 ]
  grep -q 'event=rcpt_verify .*address=ghost@ours.example .*cached=yes' "$M/proxy.log"
  for i in 1 2; do
    run swaks_to friend@good.example bob@ours.example
    assert_success
  done
  # One probe, then one RCPT for each delivery.
  [ "$(probes bob@ours.example)" -eq 3 ]
  run swaks_to stranger@bad.example someone@elsewhere.example
  assert_output --partial "554 5.7.1 <someone@elsewhere.example>: relay access denied"
  [ "$(probes someone@elsewhere.example)" -eq 0 ]
}

@test "probe: a downstream that cannot answer now gives 450 4.1.1, not cached, and no token" {
  start_mta --tempfail-unknown
  start_proxy --relay "127.0.0.1:$MTA" --verify-recipients probe
  for i in 1 2; do
    run swaks_to stranger@bad.example ghost@ours.example
    assert_output --partial "<** 450 4.1.1 <ghost@ours.example>"
  done
  [ "$(probes ghost@ours.example)" -eq 2 ]
  [ "$(tokens)" -eq 0 ]
  kill_rig
  PIDS=()
  start_proxy --relay "127.0.0.1:$(free_port)" --verify-recipients probe
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "<** 450 4.1.1 <bob@ours.example>"
  [ "$(tokens)" -eq 0 ]
}

@test "map:FILE: addresses and @domain lines; the rest 550 5.1.1 without a token" {
  mwhitelist domain add open.example >/dev/null
  start_sink
  printf '# who exists\nbob@ours.example\n\n@open.example\n' >"$M/map"
  start_proxy --relay "127.0.0.1:$SINK" --verify-recipients "map:$M/map"
  run swaks_to stranger@bad.example nosuchuser@ours.example
  assert_output --partial "<** 550 5.1.1 <nosuchuser@ours.example>: recipient unknown"
  [ "$(tokens)" -eq 0 ]
  run swaks_to stranger@bad.example BOB@ours.example
  assert_output --partial "this address: <"
  run swaks_to stranger@bad.example anyone@open.example
  assert_output --partial "this address: <anyone+"
  [ "$(tokens)" -eq 2 ]
  run swaks_to friend@good.example bob@ours.example
  assert_success
  wait_sink 1
}

@test "bad --verify-recipients settings are usage errors" {
  run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2 --verify-recipients sometimes
  assert_failure 64
  assert_output --partial "want probe, map:FILE or none"
  run msmtp-proxy --listen 127.0.0.1:1 --maildir "$BATS_TEST_TMPDIR/md" --verify-recipients probe
  assert_failure 64
  assert_output --partial "needs an SMTP or LMTP downstream"
  printf 'not an address\n' >"$BATS_TEST_TMPDIR/map"
  run msmtp-proxy --listen 127.0.0.1:1 --relay 127.0.0.1:2 --verify-recipients "map:$BATS_TEST_TMPDIR/map"
  assert_failure 64
  assert_output --partial "map:1: want local@domain or @domain"
}
