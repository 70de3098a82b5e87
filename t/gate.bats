#!/usr/bin/env bats
# One gate, step one: today's admission decisions of the three front ends, pinned side by side. Each case
# sends the SAME message (same octets, CRLF) with the SAME envelope through
#   proxy       msmtp-proxy --unknown mark in front of Postfix's smtp-sink: the X-Mailstamp-Class the sink got
#               (or refused:CODE when the proxy said no);
#   mverify     mverify --sender S --rcpt R: the X-Mailstamp-Class it wrote (or exit:N);
#   mchallenge  mchallenge --sender S --rcpt R: the class of what it delivered at once, or "held" (held and
#               challenged) or "held-quiet" (held, no challenge);
# each against its own copy of one store set up once per case (so token addresses, made from the store's
# secret, are the same in all three). Where the front ends disagree the test says so: these are the
# differences the one admission core must settle. Nothing here changes code; it pins what is.
# Run: bats t/gate.bats (needs msmtp-proxy, mverify, mchallenge, mwhitelist, mtoken, mstamp in build/).

load helpers

setup() {
  common_setup
  proxy_rig_setup
  G="$M/gate"
  mkdir -p "$G/tmpl"
  export MAILSTAMP_DB="$G/tmpl/store.db"
  export MAILSTAMP_CONFIG="$G/conf"
  printf '[common]\nmin-bits = 16\n' >"$MAILSTAMP_CONFIG"
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
  # mchallenge's challenges go to a sendmail that keeps them.
  cat >"$G/sendmail" <<EOF
#!/bin/bash
d=\$(mktemp -d "$G/sent.XXXXXX")
printf '%s\n' "\$@" >"\$d/argv"
cat >"\$d/msg"
EOF
  chmod +x "$G/sendmail"
}

teardown() { kill_rig; }

# gate_msg FILE FROM [HEADER...]: the message of a case, CRLF line ends (SMTP's, so the proxy gets the same
# octets as the filters), to bob@ours.example.
gate_msg() {
  local f=$1 from=$2 h
  shift 2
  { printf 'From: %s\r\nTo: bob@ours.example\r\nSubject: gate case\r\n' "$from"
    printf 'Date: Fri, 04 Dec 2026 12:00:00 +0000\r\nMessage-ID: <gate-%s@sender.example>\r\n' "$RANDOM$RANDOM"
    for h in "$@"; do printf '%s\r\n' "$h"; done
    printf '\r\nthe same body for every front end\r\n'; } >"$f"
}

# gate_dsn FILE FROM: a delivery status notification (multipart/report) about a message of bob's.
gate_dsn() {
  { printf 'From: %s\r\nTo: bob@ours.example\r\nSubject: Undelivered Mail Returned to Sender\r\n' "$2"
    printf 'Date: Fri, 04 Dec 2026 12:00:00 +0000\r\nMessage-ID: <dsn-%s@mx.far.example>\r\n' "$RANDOM$RANDOM"
    printf 'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    printf -- '--B\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n\r\n'
    printf -- '--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.far.example\r\n\r\n'
    printf 'Final-Recipient: rfc822; gone@far.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n'
    printf -- '--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <x@ours.example>\r\n\r\n--B--\r\n'; } >"$1"
}

# class_of FILE: the category letter of the (first) X-Mailstamp-Class field in FILE.
class_of() { sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1" | head -1; }

# gate_fresh NAME: a copy of the case's store (and nothing else) in $G/NAME.
gate_fresh() {
  rm -rf "${G:?}/$1"
  mkdir -p "$G/$1"
  cp -a "$G/tmpl/." "$G/$1/"
}

# gate_proxy MSG SENDER RCPT: sets P to what the sink got through msmtp-proxy --unknown mark.
gate_proxy() {
  local out f i
  gate_fresh proxy
  start_sink
  start_proxy --db "$G/proxy/store.db" --relay "127.0.0.1:$SINK" --unknown mark
  out=$($PY "$TOOL" send "$PORT" "$2" "$3" "$1")
  if [[ "$out" != "sent "* ]]; then
    P="refused:$(awk '{print ($1 == "refused") ? $3 : $2}' <<<"$out")"
    return
  fi
  # The proxy said 250 only after the sink did; poll (bounded) for the file to show its verdict field.
  P=none
  for i in $(seq 100); do
    f=$(find "$M/sink" -type f | head -1)
    if [ -n "$f" ] && [ -n "$(class_of "$f")" ]; then
      P=$(class_of "$f")
      [ "$(find "$M/sink" -type f | wc -l)" -eq 1 ] || P="$P+more"
      return
    fi
    sleep 0.05
  done
}

# gate_mverify MSG SENDER RCPT: sets V to mverify's verdict.
gate_mverify() {
  local rc=0
  gate_fresh mverify
  mverify --db "$G/mverify/store.db" --sender "${2:-<>}" --rcpt "$3" <"$1" >"$G/mverify/out.eml" 2>"$G/mverify/err" || rc=$?
  if [ "$rc" -ne 0 ]; then V="exit:$rc"; else V=$(class_of "$G/mverify/out.eml"); fi
}

# gate_mchallenge MSG SENDER RCPT: sets C to what mchallenge did.
gate_mchallenge() {
  local rc=0 d="$G/mchallenge" f state
  gate_fresh mchallenge
  MAILSTAMP_DB="$d/store.db" mchallenge --deliver "maildir:$d/Maildir" --sendmail "$G/sendmail" \
    --hostname mx.ours.example --sender "${2:-<>}" --rcpt "$3" <"$1" 2>"$d/err" || rc=$?
  if [ "$rc" -ne 0 ]; then C="exit:$rc"; return; fi
  f=$(find "$d/Maildir/new" -type f 2>/dev/null | head -1)
  if [ -n "$f" ]; then
    C=$(class_of "$f")
    return
  fi
  state=$(MAILSTAMP_DB="$d/store.db" mchallenge list | cut -f2 | head -1)
  case "$state" in
  pending) C=held ;;
  quiet) C=held-quiet ;;
  *) C="none:$state" ;;
  esac
}

# gate MSG SENDER RCPT: the same message and envelope through all three; prints "proxy=X mverify=Y mchallenge=Z".
# SENDER "" is the null sender. It starts servers into PIDS: call it in this shell, never in $(...) or `run`.
gate() {
  gate_proxy "$@"
  gate_mverify "$@"
  gate_mchallenge "$@"
  echo "proxy=$P mverify=$V mchallenge=$C"
}

# gate_case MSG SENDER RCPT: gate, with its line in $output for assert_output.
gate_case() {
  gate "$@" >"$G/triple"
  run cat "$G/triple"
}

# token_state NAME TOKEN: "unused" or "used" in the store of front end NAME after its run.
token_state() {
  if mtoken --db "$G/$1/store.db" check "$2" >/dev/null 2>&1; then echo unused; else echo used; fi
}

@test "gate: whitelisted sender address" {
  gate_msg "$G/m.eml" friend@good.example
  gate_case "$G/m.eml" friend@good.example bob@ours.example
  assert_output "proxy=W mverify=W mchallenge=W"
}

@test "gate: sender whitelisted by domain" {
  mwhitelist add @partner.example >/dev/null
  gate_msg "$G/m.eml" someone@partner.example
  gate_case "$G/m.eml" someone@partner.example bob@ours.example
  assert_output "proxy=W mverify=W mchallenge=W"
}

@test "gate: BATV-tagged whitelisted sender" {
  gate_msg "$G/m.eml" friend@good.example
  gate_case "$G/m.eml" prvs=1234abcdef=friend@good.example bob@ours.example
  assert_output "proxy=W mverify=W mchallenge=W"
}

@test "gate: whitelisted From, stranger envelope sender" {
  # DISAGREE: the proxy looks at the envelope sender only (even in mark mode, where it has the header at
  # end of DATA); mverify and mchallenge let the From field's whitelist entry count (DESIGN §7).
  gate_msg "$G/m.eml" friend@good.example
  gate_case "$G/m.eml" stranger@bad.example bob@ours.example
  assert_output "proxy=B mverify=W mchallenge=W"
}

@test "gate: stranger to a one-time token address" {
  tok=$(mtoken make --once bob@ours.example)
  gate_msg "$G/m.eml" stranger@bad.example
  gate_case "$G/m.eml" stranger@bad.example "$tok"
  assert_output "proxy=W mverify=W mchallenge=W"
  # Each used the token up (the proxy reserved it at RCPT and claimed it at end of DATA; the filters at once).
  [ "$(token_state proxy "$tok") $(token_state mverify "$tok") $(token_state mchallenge "$tok")" = "used used used" ]
}

@test "gate: stranger to postmaster" {
  # DISAGREE: the proxy always takes postmaster (RFC 5321 4.5.1) as W; mverify has no such rule (B) and
  # mchallenge holds it and challenges the stranger.
  gate_msg "$G/m.eml" stranger@bad.example
  gate_case "$G/m.eml" stranger@bad.example postmaster@ours.example
  assert_output "proxy=W mverify=B mchallenge=held"
}

@test "gate: stranger to an unconditional recipient" {
  mwhitelist add --recipient info@ours.example >/dev/null
  gate_msg "$G/m.eml" stranger@bad.example
  gate_case "$G/m.eml" stranger@bad.example info@ours.example
  assert_output "proxy=W mverify=W mchallenge=W"
}

@test "gate: fresh one-time token whose base recipient has a scoped whitelist entry for the sender" {
  mwhitelist add --for bob@ours.example pal@pal.example >/dev/null
  tok=$(mtoken make --once bob@ours.example)
  gate_msg "$G/m.eml" pal@pal.example
  gate_case "$G/m.eml" pal@pal.example "$tok"
  assert_output "proxy=W mverify=W mchallenge=W"
  # DISAGREE (not in the class but in what it costs): the proxy admits on the scoped entry and leaves the token
  # alone; mverify and mchallenge do not see the entry (scoped to bob, not to the token address) and use the token.
  [ "$(token_state proxy "$tok") $(token_state mverify "$tok") $(token_state mchallenge "$tok")" = "unused used used" ]
}

@test "gate: used-up one-time token whose base recipient has a scoped whitelist entry for the sender" {
  mwhitelist add --for bob@ours.example pal@pal.example >/dev/null
  tok=$(mtoken make --once bob@ours.example)
  gate_msg "$G/first.eml" other@bad.example
  mverify --sender other@bad.example --rcpt "$tok" <"$G/first.eml" >/dev/null
  [ "$(token_state tmpl "$tok")" = used ]
  gate_msg "$G/m.eml" pal@pal.example
  gate_case "$G/m.eml" pal@pal.example "$tok"
  # DISAGREE: the proxy counts the entry scoped to the token's base recipient (W); mverify and mchallenge
  # match whitelist entries against the token address itself and so find none, and the token is spent.
  assert_output "proxy=W mverify=B mchallenge=held"
}

@test "gate: bounce (null sender, delivery status notification)" {
  gate_dsn "$G/m.eml" MAILER-DAEMON@mx.far.example
  gate_case "$G/m.eml" "" bob@ours.example
  assert_output "proxy=I mverify=I mchallenge=I"
}

@test "gate: null sender that is not a bounce (an auto-reply from a stranger)" {
  # Agree, on I: every front end calls anything from <> a non-delivery notice, whatever it is.
  gate_msg "$G/m.eml" stranger@bad.example "Auto-Submitted: auto-replied"
  gate_case "$G/m.eml" "" bob@ours.example
  assert_output "proxy=I mverify=I mchallenge=I"
}

@test "gate: null sender with a whitelisted From" {
  # DISAGREE: the proxy files every <> message as I; the filters check the From field's whitelist first (W).
  gate_msg "$G/m.eml" friend@good.example
  gate_case "$G/m.eml" "" bob@ours.example
  assert_output "proxy=I mverify=W mchallenge=W"
}

@test "gate: delivery-status-shaped message from a stranger's non-null sender" {
  # DISAGREE: the filters take a multipart/report delivery-status body as a notice (I) whatever the envelope
  # sender; the proxy decides on the envelope alone (B).
  gate_dsn "$G/m.eml" stranger@bad.example
  gate_case "$G/m.eml" stranger@bad.example bob@ours.example
  assert_output "proxy=B mverify=I mchallenge=I"
}

@test "gate: MAILER-DAEMON@ sender that is not null, plain message" {
  # DISAGREE: the filters take a sender whose local part is MAILER-DAEMON as a notice (I); the proxy, B.
  gate_msg "$G/m.eml" mailer-daemon@bad.example
  gate_case "$G/m.eml" MAILER-DAEMON@bad.example bob@ours.example
  assert_output "proxy=B mverify=I mchallenge=I"
}

@test "gate: hashcash-stamped stranger" {
  # DISAGREE: msmtp-proxy --unknown mark never looks at postage (only --unknown postage does): B; the filters: G.
  stamp=$(hashcash -m -q -b 16 bob@ours.example)
  gate_msg "$G/m.eml" stranger@bad.example "X-Hashcash: $stamp"
  gate_case "$G/m.eml" stranger@bad.example bob@ours.example
  assert_output "proxy=B mverify=G mchallenge=G"
}

@test "gate: stranger with signed postage" {
  # DISAGREE: as with hashcash, the proxy in mark mode does not check the stamp (B); the filters: G.
  A=(--db "$G/authority.db")
  S=(--db "$G/sender.db")
  mstamp "${A[@]}" authority init >/dev/null
  mstamp "${A[@]}" authority pubkey >"$G/authority.pub"
  owner=$(mstamp "${S[@]}" book keygen)
  mstamp "${A[@]}" authority issue --owner "$owner" --count 2 | mstamp "${S[@]}" book import - >/dev/null
  printf 'authority-key = %s\n' "$G/authority.pub" >>"$MAILSTAMP_CONFIG"
  gate_msg "$G/plain.eml" payer@stranger.example
  mstamp "${S[@]}" --paid --rcpt bob@ours.example <"$G/plain.eml" >"$G/m.eml" 2>/dev/null
  grep -q '^Mailstamp-Postage:' "$G/m.eml"
  gate_case "$G/m.eml" payer@stranger.example bob@ours.example
  assert_output "proxy=B mverify=G mchallenge=G"
}

@test "gate: stranger, nothing else" {
  gate_msg "$G/m.eml" stranger@bad.example
  gate_case "$G/m.eml" stranger@bad.example bob@ours.example
  assert_output "proxy=B mverify=B mchallenge=held"
}

@test "gate: a one-time token on a message that is not taken" {
  # DISAGREE: the proxy reserves the token at RCPT and makes it a use only when the message is taken, so a 451
  # (downstream down) leaves it for the retry; mverify and mchallenge use it while deciding, before they write
  # or deliver, so their exit 75 (the MTA will retry) leaves the retry a spent token.
  tok=$(mtoken make --once bob@ours.example)
  gate_msg "$G/m.eml" stranger@bad.example
  gate_fresh proxy
  start_proxy --db "$G/proxy/store.db" --relay "127.0.0.1:$(free_port)" --unknown mark
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok" "$G/m.eml"
  assert_output --partial "data 451"
  gate_fresh mverify
  rc=0
  mverify --db "$G/mverify/store.db" --sender stranger@bad.example --rcpt "$tok" <"$G/m.eml" >/dev/full 2>/dev/null || rc=$?
  [ "$rc" -eq 75 ]
  gate_fresh mchallenge
  : >"$G/mchallenge/not-a-dir"
  run mchallenge --db "$G/mchallenge/store.db" --deliver "maildir:$G/mchallenge/not-a-dir/Maildir" \
    --sendmail "$G/sendmail" --hostname mx.ours.example --sender stranger@bad.example --rcpt "$tok" <"$G/m.eml"
  assert_failure 75
  [ "$(token_state proxy "$tok") $(token_state mverify "$tok") $(token_state mchallenge "$tok")" = "unused used used" ]
}
