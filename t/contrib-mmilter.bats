#!/usr/bin/env bats
# The configuration snippets for mmilter that contrib/ ships are real: the
# main.cf and master.cf blocks of postfix-mmilter.cf (as configured into the
# build tree) pass postconf, and put into a private Postfix (t/postfix.bash),
# with only the port changed, they make mmilter refuse a stranger with a
# token address and let a whitelisted sender through; the lines of
# sendmail-mmilter.mc (configured too) do the same in a private Sendmail (t/sendmail.bash).

load helpers
load postfix
load sendmail

setup() {
  common_setup
  proxy_rig_setup
  PFCF="$MAILSTAMP_BIN/contrib/postfix-mmilter.cf"
  SMMC="$MAILSTAMP_BIN/contrib/sendmail-mmilter.mc"
  [ -f "$PFCF" ] && [ -f "$SMMC" ] || skip "no $PFCF or $SMMC: configure the build first"
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

teardown() {
  stop_postfix
  stop_sendmail
  kill_rig
}

# block NAME: the lines of the "#---- NAME" block of postfix-mmilter.cf, their "#" removed.
block() {
  awk -v h="#---- $1" '$0 == h { on = 1; n++; next } on && $0 == "#---- end" { on = 0 } on { print substr($0, 2) }
    END { if (n != 1) exit 1 }' "$PFCF"
}

# start_milter: mmilter on $MPORT, logging to $M/milter.log.
start_milter() {
  MPORT=$(free_port)
  mmilter --listen "127.0.0.1:$MPORT" --hostname mx.ours.example --log "$M/milter.log" \
    >/dev/null 2>"$M/milter.err" 3>&- &
  PIDS+=($!)
  wait_port "$MPORT"
}

# lines_of TEXT: TEXT's lines as the array LINES (one main.cf or .mc line each).
lines_of() { mapfile -t LINES <<<"$1"; }

@test "postfix-mmilter.cf: no template left, and every main.cf and master.cf block passes postconf" {
  run grep -c '@[A-Z_]*@' "$PFCF"
  assert_output 0
  command -v postconf >/dev/null || skip "needs Postfix's postconf"
  d="$BATS_TEST_TMPDIR/pf"
  mkdir -p "$d"
  for b in "main.cf: the milter" "main.cf: the milter on a UNIX socket" "main.cf: the policy service" \
           "main.cf: the policy service under spawn(8)"; do
    block "$b" >"$d/main.cf"
    block "master.cf: a re-injection listener without milters" >"$d/master.cf"
    block "master.cf: the policy service under spawn(8)" >>"$d/master.cf"
    run postconf -c "$d" -n
    assert_success
    refute_output --partial "warning"
    run postconf -c "$d" -M
    assert_success
    refute_output --partial "warning"
    grep -qE '^mmilter-policy +unix .* spawn user=mailstamp argv=/[^ ]*/mmilter --policy --db /' <<<"$output"
  done
  block "main.cf: the milter" >"$d/main.cf"
  [ "$(postconf -c "$d" -h milter_default_action)" = tempfail ]
  postconf -c "$d" -h milter_mail_macros | grep -qF '{auth_authen}'
  [ -z "$(postconf -c "$d" -h non_smtpd_milters)" ]
}

@test "postfix-mmilter.cf: the milter block in a private Postfix refuses a stranger with a token, passes a friend" {
  start_sink
  start_milter
  lines_of "$(block "main.cf: the milter" | sed "s/127\.0\.0\.1:10030/127.0.0.1:$MPORT/")"
  printf '%s\n' "${LINES[@]}" | grep -q "^smtpd_milters = inet:127.0.0.1:$MPORT$"
  start_postfix "$SINK" "${LINES[@]}"
  PORT=$PF_PORT
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
  # The resend to the token address goes on to bob, once.
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok"
  assert_output "sent "
  wait_sink 2
}

@test "postfix-mmilter.cf: the standalone policy service block in a private Postfix" {
  start_sink
  PP=$(free_port)
  mmilter --policy --listen "127.0.0.1:$PP" --log "$M/policy.log" >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$PP"
  lines_of "$(block "main.cf: the policy service" | sed "s/127\.0\.0\.1:10031/127.0.0.1:$PP/")"
  # mynetworks is 127.0.0.2 in the rig: the test's client is a stranger to Postfix.
  start_postfix "$SINK" "${LINES[@]}"
  PORT=$PF_PORT
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550 5.7.1"
  [[ "$(token_of "$output")" == bob+*@ours.example ]]
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 Ok: queued"
  wait_sink 1
}

@test "sendmail-mmilter.mc: its lines in a private Sendmail refuse a stranger with a token, pass a friend" {
  run grep -c '@[A-Z_]*@' "$SMMC"
  assert_output 0
  start_sink
  need_sendmail
  start_milter
  run grep -c '^INPUT_MAIL_FILTER(`mmilter'"'"', `S=inet:10030@127.0.0.1, F=T, ' "$SMMC"
  assert_output 1
  lines_of "$(grep -v '^dnl' "$SMMC" | sed "s/inet:10030@127\.0\.0\.1/inet:$MPORT@127.0.0.1/")"
  [ "${#LINES[@]}" -eq 3 ]
  start_sendmail "$SINK" "${LINES[@]}"
  PORT=$SM_PORT
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550"
  [[ "$(token_of "$output")" == bob+*@ours.example ]]
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0"
  wait_sink 1
  sink_all | grep -q '^X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example'
}
