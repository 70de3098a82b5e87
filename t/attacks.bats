#!/usr/bin/env bats
# The attacks a hostile sender tries, and the losses a delivery agent must
# never cause (the issue "Nothing lost, nothing raced"), each reproduced
# against the real programs with real clients on loopback. One section per
# attack, numbered as in mailstamp(7) THREATS; each test failed on the code
# before its fix.

load helpers

setup() {
  common_setup
  proxy_rig_setup
}

teardown() { kill_rig; }

# ---------------------------------------------------------------------------
# 1. mchallenge drops held mail that merely looks alike
# ---------------------------------------------------------------------------

# a1_setup: a Maildir, a sendmail that keeps each challenge (argv, message), and the mchallenge command line.
a1_setup() {
  mwhitelist domain add ours.example >/dev/null
  MD="$M/Maildir"
  mkdir -p "$MD"/{cur,new,tmp}
  fake_sendmail "$M/sendmail"
  MC=(mchallenge --deliver "maildir:$MD" --sendmail "$M/sendmail" --hostname mx.ours.example --hold-dir "$M/held")
}
# a1_mkmsg FILE SENDER BODY [RCPT]: a message without a Message-ID; bodies of one length make messages of one size.
a1_mkmsg() {
  printf 'Return-Path: <%s>\nX-Original-To: %s\nFrom: %s\nTo: bob@ours.example\nSubject: invoice\n\n%s\n' \
    "$2" "${4:-bob@ours.example}" "$2" "$3" >"$1"
}
a1_held() { mchallenge list | grep -c -E $'\t(held|pending|quiet)\t' || true; }
a1_challenges() { find "$M/sent" -name msg 2>/dev/null | wc -l; }
a1_delivered() { find "$MD/new" -type f 2>/dev/null | wc -l; }
# a1_confirm_of DIR: the confirm address of the challenge in DIR.
a1_confirm_of() { sed -n 's/^Reply-To: <\(.*\)>$/\1/p' "$1/msg"; }

@test "1. three look-alike messages (one sender, no Message-ID, one size) exit 0 and are three held messages" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  a1_mkmsg "$M/2.eml" ann@stranger.example "body two"
  a1_mkmsg "$M/3.eml" ann@stranger.example "body six"
  [ "$(stat -c %s "$M/1.eml")" -eq "$(stat -c %s "$M/3.eml")" ]
  for i in 1 2 3; do
    run "${MC[@]}" <"$M/$i.eml"
    assert_success
  done
  [ "$(a1_delivered)" -eq 0 ]
  [ "$(a1_held)" -eq 3 ]
  [ "$(a1_challenges)" -eq 3 ]
  # Each body is in the hold directory: nothing was dropped.
  for b in "body one" "body two" "body six"; do
    [ "$(grep -rl "^$b\$" "$M/held" | wc -l)" -eq 1 ]
  done
}

@test "1. the same bytes delivered twice (an MTA retry) are held once and challenged once; the same bytes to another recipient are held again" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  run "${MC[@]}" <"$M/1.eml"
  assert_success
  run "${MC[@]}" <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 1 ]
  [ "$(a1_challenges)" -eq 1 ]
  # The envelope is part of what makes it the same delivery: the same bytes for carol are hers to hold.
  run "${MC[@]}" --rcpt carol@ours.example <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 2 ]
  run "${MC[@]}" --rcpt carol@ours.example <"$M/1.eml"
  assert_success
  [ "$(a1_held)" -eq 2 ]
  [ "$(a1_delivered)" -eq 0 ]
}

# ---------------------------------------------------------------------------
# 2. A confirmation releases only one held message
# ---------------------------------------------------------------------------

# a2_reply CONFIRM-ADDRESS SENDER FILE: a person's answer to a challenge.
a2_reply() {
  printf 'Return-Path: <%s>\nX-Original-To: %s\nFrom: %s\nSubject: Re: confirm\n\nyes, me\n' "$2" "$1" "$2" >"$3"
}

@test "2. three look-alike held messages: three held, and one confirmation through procmail releases all three" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  a1_setup
  printf '[mchallenge]\nsendmail = %s\nhostname = mx.ours.example\n' "$M/sendmail" >"$M/conf"
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$M"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    echo "MAILSTAMP_CONFIG=$M/conf"; cat "$MAILSTAMP_SRC/contrib/mchallenge.procmailrc"; } >"$M/rc"
  cd "$M"
  for b in one two six; do
    a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"
    run procmail -m "$M/rc" <"$M/$b.eml"
    assert_success
  done
  [ "$(a1_held)" -eq 3 ]
  [ "$(a1_challenges)" -eq 3 ]
  [ "$(a1_delivered)" -eq 0 ]
  # ann answers the second challenge only.
  conf=$(a1_confirm_of "$(grep -l '^    Subject: invoice' "$M"/sent/*/msg | sed -n 2p | xargs dirname)")
  a2_reply "$conf" ann@stranger.example "$M/r.eml"
  run procmail -m "$M/rc" <"$M/r.eml"
  assert_success
  [ "$(a1_delivered)" -eq 3 ]
  [ "$(grep -l '^X-Mailstamp-Released: confirmed by ann@stranger.example' "$MD"/new/* | wc -l)" -eq 3 ]
  for b in one two six; do
    [ "$(grep -l "^body $b\$" "$MD"/new/* | wc -l)" -eq 1 ]
  done
  [ "$(a1_held)" -eq 0 ]
  mwhitelist check ann@stranger.example
  # Answers to the other two challenges come too late: Responses, and nothing delivered twice.
  for n in 1 3; do
    conf=$(a1_confirm_of "$(grep -l '^    Subject: invoice' "$M"/sent/*/msg | sed -n ${n}p | xargs dirname)")
    a2_reply "$conf" ann@stranger.example "$M/r$n.eml"
    run procmail -m "$M/rc" <"$M/r$n.eml"
    assert_success
  done
  [ "$(grep -l '^X-Mailstamp-Released' "$MD"/new/* | wc -l)" -eq 3 ]
  [ "$(grep -l '^X-Mailstamp-Class: R' "$MD"/new/* | wc -l)" -eq 2 ]
}

@test "2. a confirmation releases what its sender sent to that recipient; mail held only for another recipient is not released by it" {
  a1_setup
  a1_mkmsg "$M/1.eml" ann@stranger.example "body one"
  a1_mkmsg "$M/2.eml" ann@stranger.example "body two"
  a1_mkmsg "$M/3.eml" ann@stranger.example "body six"
  a1_mkmsg "$M/4.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/1.eml"
  "${MC[@]}" --rcpt carol@ours.example --rcpt bob@ours.example <"$M/2.eml"
  "${MC[@]}" --rcpt carol@ours.example <"$M/3.eml"
  "${MC[@]}" <"$M/4.eml"
  [ "$(a1_held)" -eq 4 ]
  conf=$(a1_confirm_of "$(grep -l '^To: <ann@' "$M"/sent/*/msg | head -1 | xargs dirname)")
  [[ "$conf" == bob+* ]]
  a2_reply "$conf" ann@stranger.example "$M/r.eml"
  run "${MC[@]}" <"$M/r.eml"
  assert_success
  # bob's two (one of them also to carol) are out; carol's own and eve's wait.
  [ "$(grep -l '^X-Mailstamp-Released: confirmed by ann@stranger.example' "$MD"/new/* | wc -l)" -eq 2 ]
  grep -l '^body one$' "$MD"/new/*
  grep -l '^body two$' "$MD"/new/*
  run mchallenge list
  assert_output --partial eve@stranger.example
  [ "$(grep -c ann@stranger.example <<<"$output")" -eq 1 ]
}

@test "2. mchallenge whitelist SENDER releases everything held from that sender, for every recipient" {
  a1_setup
  for b in one two six; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  a1_mkmsg "$M/c.eml" ann@stranger.example "body car" carol@ours.example
  "${MC[@]}" --rcpt carol@ours.example <"$M/c.eml"
  a1_mkmsg "$M/e.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/e.eml"
  [ "$(a1_held)" -eq 5 ]
  run mchallenge --deliver "maildir:$MD" whitelist ann@stranger.example
  assert_success
  [ "$(grep -l '^X-Mailstamp-Released: sender whitelisted by hand' "$MD"/new/* | wc -l)" -eq 4 ]
  mwhitelist check ann@stranger.example
  [ "$(a1_held)" -eq 1 ]
  # An address with nothing held is whitelisted all the same.
  run mchallenge --deliver "maildir:$MD" whitelist nobody@stranger.example
  assert_success
  mwhitelist check nobody@stranger.example
  [ "$(a1_delivered)" -eq 4 ]
}

@test "2. confirmations of three look-alike messages at once, a whitelist and new mail from the sender racing them: each message delivered exactly once, none left held" {
  a1_setup
  for b in one two six; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  n=0
  for d in "$M"/sent/*; do
    n=$((n + 1))
    a2_reply "$(a1_confirm_of "$d")" ann@stranger.example "$M/r$n.eml"
  done
  [ "$n" -eq 3 ]
  # ...while more of ann's mail comes in: each is delivered, or held and then released, never left held.
  for b in ten 1ab 2cd 3ef; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; done
  "${MC[@]}" <"$M/r1.eml" & "${MC[@]}" <"$M/r2.eml" & "${MC[@]}" <"$M/r3.eml" &
  mchallenge --deliver "maildir:$MD" whitelist ann@stranger.example &
  for b in ten 1ab 2cd 3ef; do { "${MC[@]}" <"$M/$b.eml"; echo $? >"$M/$b.rc"; } & done
  wait
  for b in ten 1ab 2cd 3ef; do [ "$(cat "$M/$b.rc")" -eq 0 ]; done
  for b in one two six ten 1ab 2cd 3ef; do
    [ "$(grep -l "^body $b\$" "$MD"/new/* | wc -l)" -eq 1 ]
  done
  [ "$(a1_held)" -eq 0 ]
}

@test "2. mail held from a sender whitelisted since (a release that failed, mwhitelist add) is released by mchallenge expire" {
  a1_setup
  for b in one two; do a1_mkmsg "$M/$b.eml" ann@stranger.example "body $b"; "${MC[@]}" <"$M/$b.eml"; done
  a1_mkmsg "$M/e.eml" eve@stranger.example "body eve"
  "${MC[@]}" <"$M/e.eml"
  mwhitelist add ann@stranger.example >/dev/null
  printf '[mchallenge]\ndeliver = maildir:%s\n' "$MD" >"$M/conf"
  run mchallenge --config "$M/conf" expire
  assert_success
  assert_output --partial "released 2"
  [ "$(grep -l '^X-Mailstamp-Released: sender whitelisted' "$MD"/new/* | wc -l)" -eq 2 ]
  [ "$(a1_held)" -eq 1 ]
}

@test "2. mail from a sender whitelisted since is released by expire even when its hold has run out meanwhile" {
  a1_setup
  a1_mkmsg "$M/one.eml" ann@stranger.example "body one"
  "${MC[@]}" <"$M/one.eml"
  mwhitelist add ann@stranger.example >/dev/null
  printf '[mchallenge]\ndeliver = maildir:%s\n' "$MD" >"$M/conf"
  # expire runs a month later: past the hold, but the sender is known now, so the mail is let in, not dropped
  MAILSTAMP_TEST_NOW=$(( $(date +%s) + 31 * 86400 )) run mchallenge --config "$M/conf" expire
  assert_success
  assert_output --partial "released 1"
  [ "$(a1_delivered)" -eq 1 ]
}

# ---------------------------------------------------------------------------
# 3. Whitelist hit counts lag and are lost with the proxy
# ---------------------------------------------------------------------------

a3_setup() {
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}
# a3_hits: the hit count of friend@good.example in the store.
a3_hits() { mwhitelist list --json | jq '.[] | select(.value=="friend@good.example") | .hits'; }
# a3_wait_hits N: until the store shows N hits; the bound is the flush interval (2 s, msmtp-proxy(8)) with
# room for a loaded machine.
a3_wait_hits() {
  local i
  for i in $(seq 200); do [ "$(a3_hits)" -ge "$1" ] && break; sleep 0.05; done
  [ "$(a3_hits)" -eq "$1" ] || { echo "store shows $(a3_hits) hits, want $1" >&2; return 1; }
}
# a3_send N: N whitelisted messages, one session each, back to back.
a3_send() {
  local i
  for i in $(seq "$1"); do
    run swaks_to friend@good.example bob@ours.example
    assert_output --partial "250 2.0.0 OK"
  done
}

@test "3: whitelist hits reach the store within the flush bound while the proxy runs, and survive SIGKILL after it" {
  a3_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  a3_send 3
  a3_wait_hits 3
  mwhitelist stats | grep -qx 'hits 3'
  # No further traffic: the last hits still arrive while the proxy keeps running.
  a3_send 2
  a3_wait_hits 5
  kill -9 "$PROXY_PID"
  wait "$PROXY_PID" 2>/dev/null || true
  [ "$(a3_hits)" -eq 5 ]
}

@test "3: SIGTERM writes every counted hit before the proxy exits" {
  a3_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  a3_send 4
  kill -TERM "$PROXY_PID"
  wait "$PROXY_PID" || true
  [ "$(a3_hits)" -eq 4 ]
  grep -q 'event=stop' "$M/proxy.log"
}

# ---------------------------------------------------------------------------
# 4. One-time tokens spent in parallel
# ---------------------------------------------------------------------------

a4_setup() { mwhitelist domain add ours.example >/dev/null; }
# a4_race PORT TOKEN N: t/token_race.py (N sessions racing for one token).
a4_race() { $PY "$MAILSTAMP_SRC/t/token_race.py" "$@"; }

@test "4: eight parallel sessions racing one one-time token: exactly one delivered, the others 550 with a fresh token" {
  a4_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  tok=$(mtoken make --once bob@ours.example)
  run a4_race "$PORT" "$tok" 8
  echo "$output"
  assert_line "delivered 1"
  assert_line "fresh tokens 7"
  [ "$(grep -c '^rcpt 550' <<<"$output")" -eq 7 ]
  wait_sink 1
  run mtoken check "$tok"
  assert_failure
  assert_output --partial "used"
}

@test "4: a token reserved at RCPT is given back when downstream refuses or is down; it works again" {
  a4_setup
  tok=$(mtoken make --once bob@ours.example)
  start_sink -f RCPT
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to stranger@bad.example "$tok"
  assert_output --regexp "<\*\* 5[0-9][0-9] 5.0.0 refused downstream"
  kill "$PROXY_PID"
  start_proxy --relay "127.0.0.1:$(free_port)"
  run swaks_to stranger@bad.example "$tok"
  assert_output --partial "451 4.3.0"
  run mtoken check "$tok"
  assert_success
  kill "$PROXY_PID"
  rm -rf "$M/sink"
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to stranger@bad.example "$tok"
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 1
  run swaks_to stranger@bad.example "$tok"
  assert_output --partial "550"
  wait_sink 1
}

# a4_holder PORT TOKEN READY GO MODE: one session that reaches RCPT TO:<TOKEN> (MODE leave) or the middle of
# DATA (MODE data), creates READY, waits for GO to exist, then disconnects (leave) or ends the message (data).
a4_holder() {
  cat >"$M/holder.py" <<'PY'
import os, socket, sys, time
port, tok, ready, go, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode("latin-1").rstrip("\r\n")
        print(l, flush=True)
        if len(l) < 4 or l[3] != "-":
            return l
reply()
for c in ("EHLO holder.example", "MAIL FROM:<holder@bad.example>", "RCPT TO:<%s>" % tok):
    s.sendall(c.encode() + b"\r\n")
    reply()
if mode == "data":
    s.sendall(b"DATA\r\n")
    reply()
    s.sendall(b"Subject: held\r\n\r\nheld\r\n")
open(ready, "w").close()
for _ in range(1200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
if mode == "data":
    s.sendall(b".\r\n")
    reply()
s.close()
PY
  $PY "$M/holder.py" "$@"
}
a4_wait_file() {
  local i
  for i in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
  return 1
}

@test "4: a reservation is held while its session lives, released when the client leaves before DATA ends" {
  a4_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  tok=$(mtoken make --once bob@ours.example)
  a4_holder "$PORT" "$tok" "$M/ready" "$M/go" leave >"$M/holder.out" 2>&1 &
  holder=$!
  a4_wait_file "$M/ready"
  grep -q '^250 2.1.5' "$M/holder.out"
  run $PY "$TOOL" send "$PORT" other@bad.example "$tok"
  assert_output --partial "refused $tok 550"
  assert_output --partial "this address: <bob+"
  touch "$M/go"
  wait "$holder"
  # The holder left without DATA: its reservation is released with its session, and the token works, once.
  for i in $(seq 100); do
    run $PY "$TOOL" send "$PORT" other@bad.example "$tok"
    [ "$output" = "sent " ] && break
    sleep 0.05
  done
  assert_output "sent "
  wait_sink 1
  run $PY "$TOOL" send "$PORT" third@bad.example "$tok"
  assert_output --partial "refused $tok 550"
}

@test "4: a reservation left by a killed proxy expires after the documented bound (10 minutes)" {
  a4_setup
  start_proxy --maildir "$M/Maildir"
  tok=$(mtoken make --once bob@ours.example)
  a4_holder "$PORT" "$tok" "$M/ready" "$M/go" leave >"$M/holder.out" 2>&1 &
  holder=$!
  a4_wait_file "$M/ready"
  grep -q '^250 2.1.5' "$M/holder.out"
  kill -9 "$PROXY_PID"
  touch "$M/go"
  wait "$holder" || true
  start_proxy --maildir "$M/Maildir"
  run swaks_to other@bad.example "$tok"
  assert_output --partial "550-5.7.1"
  kill "$PROXY_PID"
  MAILSTAMP_TEST_NOW=$(($(date +%s) + 601)) start_proxy --maildir "$M/Maildir"
  run swaks_to other@bad.example "$tok"
  assert_output --partial "250 2.0.0 OK"
}

@test "4: mverify does not consume a token a proxy session holds; the proxy delivers it, once" {
  a4_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  tok=$(mtoken make --once bob@ours.example)
  a4_holder "$PORT" "$tok" "$M/ready" "$M/go" data >"$M/holder.out" 2>&1 &
  holder=$!
  a4_wait_file "$M/ready"
  printf 'From: x@bad.example\nTo: %s\nSubject: via mverify\n\nhi\n' "$tok" >"$M/m.eml"
  run mverify --sender x@bad.example --rcpt "$tok" <"$M/m.eml"
  refute_output --partial "X-Mailstamp-Class: W"
  touch "$M/go"
  wait "$holder"
  grep -q '^250 2.0.0 OK: delivered' "$M/holder.out"
  wait_sink 1
  run mtoken check "$tok"
  assert_failure
}

# ---------------------------------------------------------------------------
# 5. SRS wrappers trusted as the wrapped sender
# ---------------------------------------------------------------------------

# a5_verdict SENDER RCPT [mverify options]: the X-Mailstamp-Class letter mverify gives.
a5_verdict() {
  printf 'From: <%s>\r\nSubject: hi\r\n\r\nhello\r\n' "$1" |
    mverify --sender "$1" --rcpt "$2" "${@:3}" | sed -n 's/^X-Mailstamp-Class: \([A-Z]\) .*/\1/p'
}

a5_setup() {
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
}

@test "5. an SRS-wrapped forgery is the forwarder's address: no whitelist hit, no sender-bound token (mverify, msmtp-proxy)" {
  a5_setup
  srs0='SRS0=hash=tt=good.example=friend@attacker.example'
  srs1='SRS1=HHH=fwd.example==hash=tt=good.example=friend@attacker.example'
  tok=$(mtoken make --sender friend@good.example bob@ours.example)
  # The real friend, and friend behind its own BATV tag, are whitelisted.
  [ "$(a5_verdict friend@good.example bob@ours.example)" = W ]
  [ "$(a5_verdict prvs=1234abcdef=friend@good.example bob@ours.example)" = W ]
  [ "$(a5_verdict friend@good.example "$tok")" = W ]
  # The SRS wrappers nobody checked are not.
  [ "$(a5_verdict "$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs1" bob@ours.example)" = B ]
  [ "$(a5_verdict "prvs=1234abcdef=$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs0" "$tok")" = B ]

  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to "$srs0" bob@ours.example
  assert_output --partial "5.7.1 <bob@ours.example> takes mail only from senders it knows"
  run swaks_to "$srs1" bob@ours.example
  assert_output --partial "550 5.7.1"
  run swaks_to "$srs0" "$tok"
  assert_output --partial "550 5.7.1"
  run swaks_to prvs=1234abcdef=friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to friend@good.example "$tok"
  assert_output --partial "250 2.0.0 OK: delivered"
  wait_sink 2
  ! grep -q 'event=delivered .*attacker' "$M/proxy.log"
}

@test "5. a trusted forwarder's SRS wrapper counts as the wrapped sender (option and config key)" {
  a5_setup
  srs0='SRS0=hash=tt=good.example=friend@fwd.example'
  srs1='SRS1=HHH=fwd.example==hash=tt=good.example=friend@fwd2.example'
  tok=$(mtoken make --sender friend@good.example bob@ours.example)
  [ "$(a5_verdict "$srs0" bob@ours.example)" = B ]
  [ "$(a5_verdict "$srs0" bob@ours.example --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "prvs=1234abcdef=$srs0" bob@ours.example --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "$srs0" "$tok" --trusted-forwarder fwd.example)" = W ]
  [ "$(a5_verdict "$srs0" bob@ours.example --trusted-forwarder other.example)" = B ]
  # SRS1: each forwarder on the way must be trusted.
  [ "$(a5_verdict "$srs1" bob@ours.example --trusted-forwarder fwd2.example)" = B ]
  [ "$(a5_verdict "$srs1" bob@ours.example --trusted-forwarder fwd2.example --trusted-forwarder fwd.example)" = W ]
  run mwhitelist check "$srs0" bob@ours.example
  assert_failure 1
  run mwhitelist check --trusted-forwarder fwd.example "$srs0" bob@ours.example
  assert_success
  run mtoken check --sender "$srs0" "$tok"
  assert_failure
  run mtoken check --trusted-forwarder fwd.example --sender "$srs0" "$tok"
  assert_success
  # mchallenge delivers the trusted forwarder's mail and holds the rest.
  printf '#!/bin/sh\ncat >/dev/null\n' >"$M/sendmail"
  chmod +x "$M/sendmail"
  for s in "$srs0" 'SRS0=hash=tt=good.example=friend@attacker.example'; do
    printf 'From: <%s>\r\nTo: bob@ours.example\r\nSubject: hi\r\nMessage-ID: <%s@x>\r\n\r\nhello\r\n' "$s" "$RANDOM" |
      mchallenge --deliver "maildir:$M/md" --sendmail "$M/sendmail" --hostname mx.ours.example \
        --sender "$s" --rcpt bob@ours.example --trusted-forwarder fwd.example
  done
  [ "$(find "$M/md/new" -type f | wc -l)" -eq 1 ]
  grep -q '^X-Mailstamp-Class: W' "$M"/md/new/*
  [ "$(mchallenge list | grep -c attacker.example)" -eq 1 ]
  run mverify --trusted-forwarder 'not/a.domain' --sender x@y.example --rcpt bob@ours.example <<<"Subject: x"
  assert_failure 64
  assert_output --partial "--trusted-forwarder: 'not/a.domain' is not a domain"

  # The config key, in [common], serves every program.
  printf '[common]\ntrusted-forwarder = fwd.example fwd2.example\n' >"$M/mailstamp.conf"
  export MAILSTAMP_CONFIG="$M/mailstamp.conf"
  [ "$(a5_verdict "$srs0" bob@ours.example)" = W ]
  [ "$(a5_verdict "$srs1" bob@ours.example)" = W ]
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  run swaks_to "$srs0" bob@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to "$srs0" "$tok"
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to 'SRS0=hash=tt=good.example=friend@attacker.example' bob@ours.example
  assert_output --partial "550 5.7.1"
  wait_sink 2
}

# ---------------------------------------------------------------------------
# 6. Submission users trusted too widely
# ---------------------------------------------------------------------------

a6_mkcert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
}

# a6_send USER FROM TO [swaks options]: one message from an authenticated user (password "sesame").
a6_send() { swaks_to "$2" "$3" -tls -a PLAIN -au "$1" -ap sesame "${@:4}"; }

a6_rig() {
  mwhitelist domain add ours.example >/dev/null
  a6_mkcert
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" "$@"
}

@test "6. an authenticated user sends only as the addresses they own" {
  printf 'sesame\n' | msmtp-proxy user add alice@ours.example
  printf 'sesame\n' | msmtp-proxy user add dave
  a6_rig
  # The login is the default sender; another user's address is refused.
  run a6_send alice@ours.example bob@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <bob@ours.example>: sender address not owned by user alice@ours.example"
  run a6_send alice@ours.example alice@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  run a6_send alice@ours.example Alice@OURS.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  printf 'sesame\n' | msmtp-proxy user add carol --sender carol@ours.example --sender Sales@Ours.Example
  run msmtp-proxy user add erin --sender 'not an address' </dev/null
  assert_failure 64
  run msmtp-proxy user list
  assert_line --regexp '^alice@ours.example	.*	alice@ours.example \(default\)$'
  assert_line --regexp '^carol	.*	carol@ours.example,sales@ours.example$'
  # Senders given with user add.
  run a6_send carol sales@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  run a6_send carol alice@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <alice@ours.example>: sender address not owned by user carol"
  # ... changed with user senders.
  msmtp-proxy user senders carol --sender carol2@ours.example
  run msmtp-proxy user senders carol
  assert_output "carol2@ours.example"
  run a6_send carol sales@ours.example pal@far.example
  assert_output --partial "553 5.7.1"
  run a6_send carol carol2@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  # A login that is no address owns nothing until it is given senders.
  run a6_send dave dave@ours.example pal@far.example
  assert_output --partial "553 5.7.1 <dave@ours.example>: sender address not owned by user dave"
  msmtp-proxy user senders dave --sender dave@ours.example
  run a6_send dave dave@ours.example pal@far.example
  assert_output --partial "250 2.0.0 OK: sent"
  msmtp-proxy user senders dave --default
  run msmtp-proxy user senders dave
  assert_output ""
  wait_sink 5
  grep -q 'event=reject .*sender=bob@ours.example user=alice@ours.example reason="sender not owned by the user"' "$M/proxy.log"
}

@test "6. outgoing recipients are whitelisted for the sending user only; address literals never" {
  printf 'sesame\n' | msmtp-proxy user add alice@ours.example
  a6_rig
  run a6_send alice@ours.example alice@ours.example spammer@evil.example,lit@[127.0.0.2]
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  run mwhitelist export
  assert_output "spammer@evil.example alice@ours.example"
  # The spammer reaches alice, who wrote to it, and nobody else.
  run swaks_to spammer@evil.example alice@ours.example
  assert_output --partial "250 2.0.0 OK: delivered"
  run swaks_to spammer@evil.example bob@ours.example
  assert_output --partial "5.7.1 <bob@ours.example> takes mail only from senders it knows"
  run swaks_to 'lit@[127.0.0.2]' alice@ours.example
  assert_output --partial "550 5.7.1"
  wait_sink 2
  # The same when the proxy stamps outgoing mail (mstamp does the whitelisting then).
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" --stamp hashcash --stamp-bits 8
  run a6_send alice@ours.example alice@ours.example pal@far.example,lit2@[127.0.0.3]
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 3
  run mwhitelist check pal@far.example bob@ours.example
  assert_failure 1
  run mwhitelist check pal@far.example alice@ours.example
  assert_success
  ! mwhitelist export | grep -q '127.0.0.3'
}

@test "6. mstamp and mwhitelist add --from-message scope the recipients to a local sender" {
  mwhitelist domain add ours.example >/dev/null
  printf 'From: Alice <alice@ours.example>\r\nTo: pal@far.example, x@[10.0.0.1]\r\nSubject: hi\r\n\r\nhello\r\n' >"$M/out.eml"
  run mwhitelist add --from-message <"$M/out.eml"
  assert_success
  assert_output "added pal@far.example for alice@ours.example"
  run mwhitelist check pal@far.example bob@ours.example
  assert_failure 1
  run mwhitelist check pal@far.example alice@ours.example
  assert_success
  # mstamp: the sender from --sender, else From.
  mstamp --bits 8 --rcpt friend2@far.example --sender bob@ours.example <"$M/out.eml" >/dev/null
  mstamp --bits 8 --rcpt 'y@[10.0.0.2]' <"$M/out.eml" >/dev/null
  mstamp --bits 8 <"$M/out.eml" >/dev/null
  run mwhitelist export
  assert_output "friend2@far.example bob@ours.example
pal@far.example alice@ours.example"
  # A sender outside the protected domains of a site store is none of ours: nobody is whitelisted for it
  # (for every recipient, it would open every mailbox of the site).
  printf 'From: me@home.example\r\nTo: buddy@far.example\r\n\r\nhi\r\n' >"$M/home.eml"
  mstamp --bits 8 <"$M/home.eml" >/dev/null
  run mwhitelist check buddy@far.example bob@ours.example
  assert_failure 1
  run mwhitelist check buddy@far.example
  assert_failure 1
  # A personal store (no protected domains): the one user's correspondents, as before.
  mwhitelist --db "$M/personal.db" import </dev/null >/dev/null
  mstamp --db "$M/personal.db" --bits 8 <"$M/home.eml" >/dev/null
  run mwhitelist --db "$M/personal.db" check buddy@far.example
  assert_success
}

# ---------------------------------------------------------------------------
# 7. Signed postage covers only the Message-ID and the body
# ---------------------------------------------------------------------------

# a7_paid_setup: an authority, a sender store with a book of 10 stamps, and $M/paid.eml to bob stamped by it.
a7_paid_setup() {
  AUTH=(--db "$M/authority.db")
  SEND=(--db "$M/sender.db")
  mstamp "${AUTH[@]}" authority init >/dev/null
  mstamp "${AUTH[@]}" authority pubkey >"$M/authority.pub"
  mstamp "${AUTH[@]}" authority issue --owner "$(mstamp "${SEND[@]}" book keygen)" --count 10 |
    mstamp "${SEND[@]}" book import - >/dev/null
  printf 'From: Alice <alice@sender.example>\r\nTo: Bob <bob@ours.example>\r\nSubject: lunch on friday\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <a7.1@sender.example>\r\n\r\nsee you there\r\n' >"$M/m.eml"
  mstamp "${SEND[@]}" --paid --rcpt bob@ours.example <"$M/m.eml" >"$M/paid.eml" 2>/dev/null
}

# a7_class FILE: the category letter mverify gives FILE for bob, in a fresh receiver store.
a7_class() {
  local db
  db="$M/recv.$RANDOM$RANDOM.db"
  mwhitelist --db "$db" import </dev/null >/dev/null  # a fresh receiver's store (filters never create one)
  mverify --db "$db" --rcpt bob@ours.example --authority-key "$M/authority.pub" <"$1" >"$1.out"
  sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1.out"
}

@test "7. a Subject change on a stamped message is not [G]; nor a From, To, Cc or Date change" {
  a7_paid_setup
  [ "$(a7_class "$M/paid.eml")" = G ]
  sed 's/^Subject: .*\r$/Subject: URGENT: wire money\r/' "$M/paid.eml" >"$M/subject.eml"
  grep -q '^Subject: URGENT: wire money' "$M/subject.eml"
  [ "$(a7_class "$M/subject.eml")" != G ]
  grep -q 'x-mailstamp-postage=fail (wrong header)' "$M/subject.eml.out"
  sed 's/^From: .*\r$/From: Bank <ceo@bank.example>\r/' "$M/paid.eml" >"$M/from.eml"
  [ "$(a7_class "$M/from.eml")" != G ]
  sed 's/^To: .*\r$/To: Bob <bob@ours.example>, Carol <carol@ours.example>\r/' "$M/paid.eml" >"$M/to.eml"
  [ "$(a7_class "$M/to.eml")" != G ]
  sed 's/^Date: .*\r$/Date: Fri, 04 Dec 2026 10:00:00 +0000\r/' "$M/paid.eml" >"$M/date.eml"
  [ "$(a7_class "$M/date.eml")" != G ]
  sed 's/^Subject: /Cc: Mallory <m@evil.example>\r\nSubject: /' "$M/paid.eml" >"$M/cc.eml"
  [ "$(a7_class "$M/cc.eml")" != G ]
  # a second Subject a reader's program might show instead
  sed 's/^Subject: \(.*\)$/Subject: \1\nSubject: URGENT: wire money\r/' "$M/paid.eml" >"$M/two.eml"
  [ "$(a7_class "$M/two.eml")" != G ]
}

@test "7. folding, whitespace, name case and line endings that relaxed canonicalisation allows stay [G]" {
  a7_paid_setup
  sed 's/^Subject: lunch on friday\r$/SUBJECT:   lunch\r\n\ton    friday  \r/' "$M/paid.eml" >"$M/folded.eml"
  grep -q '^	on    friday' "$M/folded.eml"
  [ "$(a7_class "$M/folded.eml")" = G ]
  sed 's/^To: Bob <bob@ours.example>\r$/To :Bob\r\n  <bob@ours.example>\r/' "$M/paid.eml" >"$M/to.eml"
  [ "$(a7_class "$M/to.eml")" = G ]
  # an MTA rewriting CRLF to LF, and adding its own header fields
  { printf 'Received: from mx by us; Fri, 04 Dec 2026 10:00:01 +0000\n'; sed 's/\r$//' "$M/paid.eml"; } >"$M/lf.eml"
  [ "$(a7_class "$M/lf.eml")" = G ]
}

@test "7. a version 1 stamp (headers unsigned) is Questionable, never [G]; the version 2 vector is [G]" {
  # the mstamp(1) version 1 test vector: fixed keys, stamp 3 of book 0707..., for bob, <m1@x>, body "Hello" CRLF
  printf '# the mstamp(1) test authority\niojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n' >"$M/authority.pub"
  { printf 'Mailstamp-Postage: %s\r\n' "$(cat "$FIX/postage/stamp.txt")"
    printf 'From: x@stranger.example\r\nTo: bob@ours.example\r\nSubject: anything at all\r\nMessage-ID: <m1@x>\r\n\r\nHello\r\n'; } >"$M/v1.eml"
  mwhitelist import </dev/null >/dev/null
  MAILSTAMP_TEST_NOW=1800000100 mverify --rcpt bob@ours.example --authority-key "$M/authority.pub" <"$M/v1.eml" >"$M/out.eml"
  run sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$M/out.eml"
  assert_output Q
  grep -q 'x-mailstamp-postage=policy (version 1 stamp: header fields not signed' "$M/out.eml"
  # the version 2 test vector of mstamp(1), same keys: Stamped; its Subject rewritten: not
  for db in r2 r3; do mwhitelist --db "$M/$db.db" import </dev/null >/dev/null; done
  MAILSTAMP_TEST_NOW=1800000100 mverify --db "$M/r2.db" --rcpt bob@ours.example --authority-key "$M/authority.pub" \
    <"$FIX/postage/stamped-2.eml" >"$M/out2.eml"
  grep -q '^X-Mailstamp-Class: G' "$M/out2.eml"
  sed 's/^Subject: .*\r$/Subject: URGENT: wire money\r/' "$FIX/postage/stamped-2.eml" |
    MAILSTAMP_TEST_NOW=1800000100 mverify --db "$M/r3.db" --rcpt bob@ours.example --authority-key "$M/authority.pub" >"$M/out3.eml"
  grep -q '^X-Mailstamp-Class: B' "$M/out3.eml"
}

# ---------------------------------------------------------------------------
# 8. The spend check trusts everyone
# ---------------------------------------------------------------------------

# a8_setup: an authority serving spend checks on $AUTHORITY, a sender store with a book of 10 stamps,
# and $M/paid.eml to bob stamped with its index 0.
a8_setup() {
  AUTH=(--db "$M/authority.db")
  SEND=(--db "$M/sender.db")
  mstamp "${AUTH[@]}" authority init >/dev/null
  mstamp "${AUTH[@]}" authority pubkey >"$M/authority.pub"
  mstamp "${AUTH[@]}" authority issue --owner "$(mstamp "${SEND[@]}" book keygen)" --count 10 |
    mstamp "${SEND[@]}" book import - >/dev/null
  a8_mkmsg "$M/m.eml" a8.1
  cp "$M/sender.db" "$M/copy.db"
  mstamp "${SEND[@]}" --paid --rcpt bob@ours.example <"$M/m.eml" >"$M/paid.eml" 2>/dev/null
  mstamp "${AUTH[@]}" authority serve --listen 127.0.0.1:0 2>"$M/serve.log" 3>&- &
  PIDS+=($!)
  local i
  for i in $(seq 100); do grep -q 'listening on' "$M/serve.log" && break; sleep 0.05; done
  AUTHORITY=$(sed -n 's/.*listening on \(127.0.0.1:[0-9]*\).*/\1/p' "$M/serve.log")
  [ -n "$AUTHORITY" ]
}

# a8_mkmsg FILE ID: a message to bob with Message-ID <ID@sender.example>.
a8_mkmsg() {
  printf 'From: alice@sender.example\r\nTo: bob@ours.example\r\nSubject: paid mail %s\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s@sender.example>\r\n\r\nbody of %s\r\n' \
    "$2" "$2" "$2" >"$1"
}

# a8_verify FILE AUTHORITY: the category letter mverify gives FILE for bob, in a fresh receiver store.
a8_verify() {
  local db
  db="$M/recv.$RANDOM$RANDOM.db"
  mwhitelist --db "$db" import </dev/null >/dev/null  # a fresh receiver's store (filters never create one)
  mverify --db "$db" --rcpt bob@ours.example --authority-key "$M/authority.pub" --authority "$2" \
    --authority-timeout 5s <"$1" >"$1.out"
  sed -n 's/^X-Mailstamp-Class: \(.\).*/\1/p' "$1.out"
}

# a8_talk HOST:PORT LINE...: sends each line on one connection, prints one answer line per line.
a8_talk() {
  "$PY" - "$@" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)), timeout=10)
f = c.makefile("rwb")
for line in sys.argv[2:]:
    f.write(line.encode() + b"\r\n"); f.flush()
    print(f.readline().decode().rstrip("\r\n"))
PY
}

# a8_fake MODE FILE [UPSTREAM]: a fake authority on loopback, its address in FAKE. MODE plain answers
# "250 fresh" to everything; record relays each request to UPSTREAM and saves the answer in FILE;
# replay answers every request with the line saved in FILE.
a8_fake() {
  rm -f "$M/fake.addr"
  "$PY" - "$@" >"$M/fake.addr" 2>"$M/fake.err" 3>&- <<'PY' &
import socket, sys
mode, path = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print("127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    for line in f:
        if line.strip() == b"QUIT":
            f.write(b"221 bye\r\n"); f.flush(); break
        if mode == "plain":
            answer = b"250 fresh\r\n"
        elif mode == "replay":
            answer = open(path, "rb").read()
        else:
            host, port = sys.argv[3].rsplit(":", 1)
            u = socket.create_connection((host, int(port)), timeout=10)
            u.sendall(line)
            answer = u.makefile("rb").readline()
            u.close()
            open(path, "wb").write(answer)
        f.write(answer); f.flush()
    c.close()
PY
  PIDS+=($!)
  local i
  for i in $(seq 100); do [ -s "$M/fake.addr" ] && break; sleep 0.05; done
  FAKE=$(cat "$M/fake.addr")
  [ -n "$FAKE" ]
}

@test "8. an unauthenticated spend request for an unseen index is refused, and the owner's next stamp still verifies" {
  a8_setup
  # the attacker saw one stamp: its book id, and the stamp itself
  stamp=$(sed -n 's/^Mailstamp-Postage: \(.*\)\r$/\1/p' "$M/paid.eml")
  id=$(printf '%s' "$stamp" | sed 's/.*b=\([^;]*\);.*/\1/' | base64 -d | sed 's/.* id=\([0-9a-f]*\) .*/\1/')
  [ ${#id} -eq 32 ]
  # the old request form: a stamp key anyone can write
  run a8_talk "$AUTHORITY" "SPEND book:$id:1 deadbeef 1900000000" "SPEND book:$id:2 deadbeef 1900000000"
  refute_output --partial '250'
  refute_output --partial '251'
  assert_output --partial '530 '
  # the stamp it saw, its index changed: the owner's signature no longer covers it
  forged=$(printf '%s' "$stamp" | sed 's/; i=0;/; i=1;/')
  run a8_talk "$AUTHORITY" "SPEND 0123456789abcdef0123456789abcdef $forged"
  assert_output '554 bad signature'
  # the owner's next stamp (index 1) still verifies, online
  a8_mkmsg "$M/m2.eml" a8.2
  mstamp "${SEND[@]}" --paid --rcpt bob@ours.example <"$M/m2.eml" >"$M/paid2.eml" 2>/dev/null
  grep -q '^Mailstamp-Postage: .*; i=1;' "$M/paid2.eml"
  [ "$(a8_verify "$M/paid2.eml" "$AUTHORITY")" = G ]
  grep -q 'x-mailstamp-postage=pass' "$M/paid2.eml.out"
}

@test "8. a fake authority answering a plaintext 250 gives Questionable, not Stamped" {
  a8_setup
  a8_fake plain "$M/none"
  [ "$(a8_verify "$M/paid.eml" "$FAKE")" = Q ]
  grep -q "x-mailstamp-postage=temperror (authority's answer not trusted)" "$M/paid.eml.out"
  # the real authority signs its answer
  [ "$(a8_verify "$M/paid.eml" "$AUTHORITY")" = G ]
}

@test "8. a signed answer replayed for another request is not Stamped" {
  a8_setup
  # the authority's real answer for the first receiver, recorded on the way
  a8_fake record "$M/answer" "$AUTHORITY"
  [ "$(a8_verify "$M/paid.eml" "$FAKE")" = G ]
  grep -q '^250' "$M/answer"
  kill "${PIDS[-1]}"
  # a copy of the sender's store spends index 0 again, on another message
  a8_mkmsg "$M/m2.eml" a8.2
  mstamp --db "$M/copy.db" --paid --rcpt bob@ours.example <"$M/m2.eml" >"$M/double.eml" 2>/dev/null
  grep -q '^Mailstamp-Postage: .*; i=0;' "$M/double.eml"
  # the recorded answer replayed to another receiver, whose request has another nonce and another stamp
  a8_fake replay "$M/answer"
  [ "$(a8_verify "$M/double.eml" "$FAKE")" = Q ]
  grep -q "x-mailstamp-postage=temperror (authority's answer not trusted)" "$M/double.eml.out"
  # and the real authority knows it for a double spend
  [ "$(a8_verify "$M/double.eml" "$AUTHORITY")" = B ]
}

# ---------------------------------------------------------------------------
# 9. Tokens in 550 replies are free for anyone
# ---------------------------------------------------------------------------

a9_setup() { mwhitelist domain add ours.example >/dev/null; }
# a9_ask PORT N SENDER...: N sessions, each from the next sender (cycling), to bob@ours.example; prints per
# session "token" when the 550 handed out a token address, "none" when it did not.
a9_ask() {
  cat >"$M/ask.py" <<'PY'
import smtplib, sys
port, n, senders = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
for i in range(n):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("asker.example")
        c.mail(senders[i % len(senders)].replace("%d", str(i)))
        code, msg = c.rcpt("bob@ours.example")
        text = msg.decode()
        print(code, "token" if "this address: <" in text else "none", text.replace("\n", " | "))
PY
  $PY "$M/ask.py" "$@"
}

@test "9: the 21st token request from one /24 gets the 550 without a token, logged" {
  a9_setup
  start_proxy --maildir "$M/Maildir"
  run a9_ask "$PORT" 21 "s%d@bad%d.example"
  [ "$(grep -c '^550 token' <<<"$output")" -eq 20 ]
  [ "$(sed -n 21p <<<"$output" | cut -d' ' -f1-2)" = "550 none" ]
  sed -n 21p <<<"$output" | grep -q 'takes mail only from senders it knows'
  grep -q 'event=reject .*reason="token limit: network 127.0.0.0/24"' "$M/proxy.log"
}

@test "9: token requests per sender per day are limited too (--token-limit-sender)" {
  a9_setup
  start_proxy --maildir "$M/Maildir" --token-limit-sender 3
  run a9_ask "$PORT" 4 "same@bad.example"
  [ "$(grep -c '^550 token' <<<"$output")" -eq 3 ]
  [ "$(sed -n 4p <<<"$output" | cut -d' ' -f1-2)" = "550 none" ]
  grep -q 'event=reject .*reason="token limit: sender same@bad.example"' "$M/proxy.log"
  # Another sender from the same network still gets one.
  run a9_ask "$PORT" 1 "other@bad.example"
  assert_output --partial "550 token"
}

@test "9: --unknown token-postage: the 550 names the bits; the resend needs a hashcash stamp for the token" {
  a9_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown token-postage --min-bits 16
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "hashcash stamp of 16 bits"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  # A scripted resend to the token without a stamp: refused, and the token is not used up by it.
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok"
  assert_output --partial "data 550"
  assert_output --partial "16 bits"
  # A stamp of too few bits, or for another resource, does not do either.
  weak=$(hashcash -m -q -b 8 "$tok")
  other=$(hashcash -m -q -b 16 bob@ours.example)
  printf 'X-Hashcash: %s\r\nX-Hashcash: %s\r\nSubject: cheap\r\n\r\ncheap\r\n' "$weak" "$other" >"$M/cheap.eml"
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok" "$M/cheap.eml"
  assert_output --partial "data 550"
  [ "$(sink_count)" -eq 0 ]
  stamp=$(hashcash -m -q -b 16 "$tok")
  printf 'X-Hashcash: %s\r\nSubject: paid resend\r\nMessage-ID: <r1@bad.example>\r\n\r\nhello\r\n' "$stamp" >"$M/paid.eml"
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok" "$M/paid.eml"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <bob@ours.example>'
  sink_all | grep -q "^X-Mailstamp-Class: W (Whitelist: token address $tok"
  # The token was one-time: the same paid message again is refused at RCPT.
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok" "$M/paid.eml"
  assert_output --partial "refused $tok 550"
  wait_sink 1
}

@test "9: a token-postage token reaching mverify directly (past the proxy) also needs its stamp" {
  a9_setup
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --unknown token-postage --min-bits 16
  run swaks_to stranger@bad.example bob@ours.example
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  # Past the proxy (a backup MX, a local injection): without a stamp for the token it is no token at all.
  printf 'From: stranger@bad.example\r\nSubject: free ride\r\n\r\nhi\r\n' >"$M/free.eml"
  mverify --min-bits 16 --sender stranger@bad.example --rcpt "$tok" <"$M/free.eml" >"$M/free.out"
  grep -q '^X-Mailstamp-Class: B' "$M/free.out"
  # ... and it was not used up by trying: the stamped resend is Whitelist, once.
  stamp=$(hashcash -m -q -b 16 "$tok")
  { printf 'X-Hashcash: %s\r\n' "$stamp"; cat "$M/free.eml"; } >"$M/paid.eml"
  mverify --min-bits 16 --sender stranger@bad.example --rcpt "$tok" <"$M/paid.eml" >"$M/paid.out"
  grep -q "^X-Mailstamp-Class: W (Whitelist: token address $tok" "$M/paid.out"
  mverify --min-bits 16 --sender stranger@bad.example --rcpt "$tok" <"$M/paid.eml" >"$M/again.out"
  ! grep -q '^X-Mailstamp-Class: W' "$M/again.out"
}

# ---------------------------------------------------------------------------
# 10. One client address takes every session slot
# ---------------------------------------------------------------------------

# a10_hold ADDR N: opens N connections from ADDR to the proxy and keeps them open (idle) until killed;
# $M/hold.out gets "220 X 421 Y" once every connection has had its first reply line.
a10_hold() {
  $PY - "$1" "$2" "$PORT" "$M/hold.out" 3>&- <<'PY' &
import socket, sys, time
addr, n, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind((addr, 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
counts = {}
for s in socks:
    s.settimeout(10)
    try:
        line = s.recv(512).decode("latin-1")
    except OSError:
        line = "none"
    code = line[:3] or "eof"
    counts[code] = counts.get(code, 0) + 1
with open(out + ".tmp", "w") as f:
    f.write(" ".join("%s %d" % kv for kv in sorted(counts.items())) + "\n")
import os
os.rename(out + ".tmp", out)
time.sleep(3600)
PY
  HOLD_PID=$!
  PIDS+=($HOLD_PID)
  local i
  for i in $(seq 200); do [ -s "$M/hold.out" ] && return 0; sleep 0.05; done
  echo "the held connections got no replies" >&2
  return 1
}

# a10_hello ADDR: one session from ADDR: greeting, EHLO, QUIT; prints the greeting and the EHLO code.
a10_hello() {
  $PY - "$1" "$PORT" <<'PY'
import smtplib, sys
try:
    c = smtplib.SMTP(timeout=10, source_address=(sys.argv[1], 0))
    code, msg = c.connect("127.0.0.1", int(sys.argv[2]))
    print("greeting", code, msg.decode())
    print("ehlo", c.ehlo()[0])
    c.quit()
except smtplib.SMTPConnectError as e:
    print("greeting", e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPServerDisconnected as e:
    print("disconnected", e)
PY
}

@test "10. 100 idle sockets from 127.0.0.1 and a client from 127.0.0.2 still served" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK"
  a10_hold 127.0.0.1 100
  cat "$M/hold.out"
  run a10_hello 127.0.0.2
  echo "$output"
  assert_line --regexp '^greeting 220 '
  assert_line "ehlo 250"
}

@test "10. the per-address limit: the next session from the address gets 421, logged; freed sessions are reused" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --max-per-client 3
  a10_hold 127.0.0.3 3
  run cat "$M/hold.out"
  assert_output "220 3"
  run a10_hello 127.0.0.3
  echo "$output"
  assert_line --regexp '^greeting 421 4\.7\.0 mx\.ours\.example too many sessions from your address, try again later$'
  grep -E 'level=warning event=busy reason=per-client ip=127\.0\.0\.3 limit=3$' "$M/proxy.log"
  # Another address is served meanwhile; the idle sessions, once closed, free their slots.
  run a10_hello 127.0.0.2
  assert_line --regexp '^greeting 220 '
  kill "$HOLD_PID"
  local i
  for i in $(seq 100); do
    run a10_hello 127.0.0.3
    [[ "$output" == *"greeting 220 "* ]] && break
    sleep 0.1
  done
  echo "$output"
  assert_line --regexp '^greeting 220 '
  assert_line "ehlo 250"
}

@test "10. msourced has the same per-address limit" {
  mkdir -p "$M/Maildir"
  PORT=$(free_port)
  msourced --listen "127.0.0.1:$PORT" --hostname mx.b.example --log "$M/msourced.log" \
    --deliver "maildir:$M/Maildir" --fetch-interval 0 --max-per-client 2 2>"$M/msourced.err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/msourced.err" wait_port "$PORT"
  a10_hold 127.0.0.3 2
  run cat "$M/hold.out"
  assert_output "220 2"
  run a10_hello 127.0.0.3
  assert_line --regexp '^greeting 421 4\.7\.0 mx\.b\.example too many sessions from your address, try again later$'
  grep -E 'level=warning event=busy reason=per-client ip=127\.0\.0\.3 limit=2$' "$M/msourced.log"
  run a10_hello 127.0.0.2
  assert_line --regexp '^greeting 220 '
}

# ---------------------------------------------------------------------------
# 11. AUTH brute force, unthrottled and costly
# ---------------------------------------------------------------------------

a11_mkcert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
}

# a11_auth ADDR USER PASSWORD: one session from ADDR: STARTTLS, AUTH PLAIN; prints "auth CODE TEXT".
a11_auth() {
  $PY - "$1" "$PORT" "$2" "$3" <<'PY'
import base64, smtplib, ssl, sys
addr, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(addr, 0))
c.ehlo("client.example")
c.starttls(context=ctx)
c.ehlo("client.example")
resp = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
code, msg = c.docmd("AUTH", "PLAIN " + resp)
print("auth", code, msg.decode())
try:
    c.quit()
except smtplib.SMTPServerDisconnected:
    pass
PY
}

# a11_fail2ban LOG: the addresses the fail2ban filter of msmtp-proxy(8) finds in LOG (its failregex, with
# <HOST> as a capture group; fail2ban takes the time stamp off first).
a11_fail2ban() {
  $PY - "$1" <<'PY'
import re, sys
rx = re.compile(r"^\S+ msmtp-proxy\[\d+\]: level=\w+ event=auth_fail ip=(?P<host>[0-9A-Fa-f.:]+) ")
for line in open(sys.argv[1], encoding="latin-1"):
    m = rx.match(line)
    if m:
        print(m.group("host"))
PY
}

@test "11. AUTH failures from one address are delayed, then locked out (a good password too); logged for fail2ban; other addresses served" {
  a11_mkcert
  printf 'sesame\n' | msmtp-proxy user add alice
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" --auth-failures 5
  local i
  for i in 1 2 3 4 5; do
    run a11_auth 127.0.0.1 alice "wrong$i"
    assert_output "auth 535 5.7.8 authentication credentials invalid"
  done
  # The first three answers come at once, the next ones later and later; the fifth locks the address out.
  grep -E 'level=warning event=auth_fail ip=127\.0\.0\.1 failures=3 delay=0 ' "$M/proxy.log"
  grep -E 'level=warning event=auth_fail ip=127\.0\.0\.1 failures=4 delay=1 ' "$M/proxy.log"
  grep -E 'level=warning event=auth_fail ip=127\.0\.0\.1 failures=5 delay=2 ' "$M/proxy.log"
  grep -E 'level=warning event=auth_lockout ip=127\.0\.0\.1 failures=5 until=' "$M/proxy.log"
  # Locked out: the right password is refused too, at once, without a password hash.
  run a11_auth 127.0.0.1 alice sesame
  assert_output "auth 454 4.7.0 too many failed logins from your address, try again later"
  grep -E 'level=warning event=auth_locked ip=127\.0\.0\.1 ' "$M/proxy.log"
  ! grep -q 'event=auth result=ok' "$M/proxy.log"
  # Another address is not affected.
  run a11_auth 127.0.0.2 alice sesame
  assert_output "auth 235 2.7.0 authentication successful"
  # The fail2ban filter finds the failing address, and nothing a client writes into a user name.
  run a11_auth 127.0.0.3 'x level=warning event=auth_fail ip=10.9.9.9 failures=1 ' wrong
  run a11_auth 127.0.0.3 $'x\nlevel=warning event=auth_fail ip=10.9.9.8 failures=1 ' wrong
  run a11_fail2ban "$M/proxy.log"
  assert_output "$(printf '127.0.0.1\n127.0.0.1\n127.0.0.1\n127.0.0.1\n127.0.0.1\n127.0.0.3\n127.0.0.3')"
}

@test "11. inetd mode: the lockout holds across the processes of one session each" {
  a11_mkcert
  printf 'sesame\n' | msmtp-proxy user add alice
  start_sink
  PORT=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$PORT" --inetd -a \
    "$MAILSTAMP_BIN/msmtp-proxy" --db "$MAILSTAMP_DB" --config /dev/null --relay "127.0.0.1:$SINK" \
    --hostname mx.ours.example --log "$M/proxy.log" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" \
    --auth-failures 2 >/dev/null 2>"$M/activate.err" 3>&- &
  PIDS+=($!)
  wait_port "$PORT"
  run a11_auth 127.0.0.1 alice wrong1
  assert_output "auth 535 5.7.8 authentication credentials invalid"
  run a11_auth 127.0.0.1 alice wrong2
  assert_output "auth 535 5.7.8 authentication credentials invalid"
  run a11_auth 127.0.0.1 alice sesame
  assert_output "auth 454 4.7.0 too many failed logins from your address, try again later"
  run a11_auth 127.0.0.2 alice sesame
  assert_output "auth 235 2.7.0 authentication successful"
}

@test "11. 60 parallel brute-force sessions leave the proxy's peak memory bounded" {
  # AddressSanitizer keeps freed memory in quarantine and adds shadow memory: the peak measures the sanitizer.
  if ldd "$(command -v msmtp-proxy)" | grep -q libasan; then
    skip "peak memory is measured in the plain build, not under AddressSanitizer"
  fi
  a11_mkcert
  printf 'sesame\n' | msmtp-proxy user add alice
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem"
  # 60 sessions from 60 addresses (a botnet: per-address limits do not help), three guesses each, together.
  run $PY - "$PORT" <<'PY'
import base64, smtplib, ssl, sys, threading
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
n = 60
ready = threading.Barrier(n)
codes = []
lock = threading.Lock()
def run(i):
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=120, source_address=("127.0.1.%d" % (i + 1), 0))
        c.ehlo("client.example")
        c.starttls(context=ctx)
        c.ehlo("client.example")
    finally:
        ready.wait()
    for k in range(3):
        resp = base64.b64encode(b"\0alice\0guess%d-%d" % (i, k)).decode()
        code, _ = c.docmd("AUTH", "PLAIN " + resp)
        with lock:
            codes.append(code)
    c.quit()
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("answers", len(codes), "refused", codes.count(535))
PY
  echo "$output"
  assert_output "answers 180 refused 180"
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PROXY_PID/status")
  echo "peak resident memory: $hwm kB"
  [ "$hwm" -lt 204800 ]
}

# ---------------------------------------------------------------------------
# 12. SOURCE notices steer our connections
# ---------------------------------------------------------------------------

# f12_host X [options]: msourced with X.example's store and log (one command or one stdin session).
f12_host() {
  local h=$1
  shift
  msourced --db "$M/$h/store.db" --log "$M/$h/log" --hostname "mx.$h.example" "$@"
}
# f12_start X PORT [options]: the daemon for X.example on 127.0.0.1:PORT, no fetch thread (fetches are run by
# hand with f12_host X fetch, so the test decides when they happen).
f12_start() {
  local h=$1 port=$2
  shift 2
  msourced --db "$M/$h/store.db" --log "$M/$h/log" --hostname "mx.$h.example" --listen "127.0.0.1:$port" \
    --deliver "maildir:$M/$h/Maildir" --fetch-interval 0 --retry 1 "$@" 2>"$M/$h/err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/$h/err" wait_port "$port"
}
# f12_chat FROM-IP TO-IP PORT LINE...: one SMTP conversation from a chosen source address; prints the replies.
f12_chat() {
  /usr/bin/python3 - "$@" <<'EOF'
import socket, sys
src, dst, port, lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
s = socket.socket()
s.bind((src, 0))
s.settimeout(30)
s.connect((dst, port))
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode("latin-1").rstrip("\r\n")
        print(l)
        if len(l) < 4 or l[3] != "-":
            return
reply()
for l in lines:
    s.sendall(l.encode() + b"\r\n")
    reply()
EOF
}
f12_count() { find "$M/$1/Maildir/new" -type f 2>/dev/null | wc -l; }
f12_hosts() {
  mkdir -p "$M/a" "$M/b"
  mwhitelist --db "$M/a/store.db" domain add a.example >/dev/null
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  printf 'From: alice@a.example\nTo: bob@b.example\nSubject: reverse delivery\nMessage-ID: <f12@a.example>\n\nbody\n' >"$M/msg.eml"
  PA=$(free_port)
  PB=$(free_port)
  while [ "$PB" = "$PA" ]; do PB=$(free_port); done
}

@test "12. a SOURCE notice from a client that is not the sender domain's MX is refused, nothing fetched; from the MX it is fetched" {
  f12_hosts
  # a.example's MX is A on 127.0.0.1 (--mx-map names loopback, so it may be used); B receives for b.example.
  f12_start a "$PA" --mx-map "b.example=127.0.0.1:$PB"
  f12_start b "$PB" --mx-map "a.example=127.0.0.1:$PA"
  # A third party on 127.0.0.2 forges a notice for a.example: B must not go and fetch from a.example's MX.
  run f12_chat 127.0.0.2 127.0.0.1 "$PB" "EHLO forger.example" "MAIL FROM:<alice@a.example>" "RCPT TO:<bob@b.example>" \
    "SOURCE 0123456789abcdef0123456789abcdef" "QUIT"
  assert_success
  assert_line "550 5.7.1 SOURCE is taken only from an MX of a.example; 127.0.0.2 is none: use DATA"
  run f12_host b --mx-map "a.example=127.0.0.1:$PA" --deliver "maildir:$M/b/Maildir" fetch
  assert_success
  run grep 'event=get' "$M/a/log"
  assert_failure
  run f12_host b queue --json
  assert_output "[]"
  run grep 'event=source .*result=refused.*client=127.0.0.2\|event=source .*client=127.0.0.2.*result=refused' "$M/b/log"
  assert_success
  # The real sender: A's notice comes from 127.0.0.1, the address --mx-map gives for a.example.
  run f12_host a --mx-map "b.example=127.0.0.1:$PB" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  run f12_host b --mx-map "a.example=127.0.0.1:$PA" --deliver "maildir:$M/b/Maildir" fetch
  assert_success
  [ "$(f12_count b)" -eq 1 ]
  grep -q '^X-Mailstamp-Source: verified; domain=a.example' "$M"/b/Maildir/new/*
  run grep -c 'event=get .*result=served' "$M/a/log"
  assert_output 1
}

@test "12. MX answers naming loopback, private, link-local or multicast addresses get no connection; a DNS failure is 4xx" {
  command -v dnsmasq >/dev/null || skip "dnsmasq not installed"
  unshare -mn true 2>/dev/null || skip "no namespaces here (unshare -mn)"
  mkdir -p "$M/b"
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  # A listener that records every connection it gets, on the internal addresses the MX answers name.
  cat >"$M/listen.py" <<'EOF'
import socket, sys, threading
log = sys.argv[1]
def serve(addr):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 25))
    s.listen(16)
    while True:
        c, peer = s.accept()
        with open(log, "a") as f:
            f.write("connection to %s from %s\n" % (addr, peer[0]))
        c.sendall(b"220 internal host\r\n")
        c.close()
for a in sys.argv[2:]:
    threading.Thread(target=serve, args=(a,), daemon=True).start()
open(log + ".ready", "w").close()
threading.Event().wait()
EOF
  declare -f f12_chat >"$M/chat.sh"
  cat >"$M/inside.sh" <<EOF
set -u
. "$M/chat.sh"
ip link set lo up
for a in 10.1.2.3 169.254.1.1 192.0.2.25 192.0.2.66; do ip addr add \$a/32 dev lo; done
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$M/resolv.conf"
mount --bind "$M/resolv.conf" /etc/resolv.conf
unset MAILSTAMP_DNS  # these cases are the resolv.conf path
# evil.example: four MX hosts inside our networks, then the attacker's own (192.0.2.66, which sends the notice).
# inner.example: no MX, its implicit MX is loopback. refused.test: the DNS server refuses to answer.
dnsmasq --conf-file=/dev/null --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
  --port=53 --user=root --local=/example/ \
  --mx-host=evil.example,int1.evil.example,10 --host-record=int1.evil.example,127.0.0.1 \
  --mx-host=evil.example,int2.evil.example,20 --host-record=int2.evil.example,10.1.2.3 \
  --mx-host=evil.example,int3.evil.example,30 --host-record=int3.evil.example,169.254.1.1 \
  --mx-host=evil.example,int4.evil.example,40 --host-record=int4.evil.example,224.0.0.1 \
  --mx-host=evil.example,mx.evil.example,50 --host-record=mx.evil.example,192.0.2.66 \
  --host-record=inner.example,127.0.0.1 \
  --log-facility="$M/dnsmasq.log" --log-queries 2>"$M/dnsmasq.err" &
DNS=\$!
/usr/bin/python3 "$M/listen.py" "$M/connections" 127.0.0.1 10.1.2.3 169.254.1.1 &
L=\$!
msourced --db "$M/b/store.db" --log "$M/b/log" --hostname mx.b.example --listen 192.0.2.25:2526 \
  --deliver "maildir:$M/b/Maildir" --fetch-interval 0 --timeout 5 &
B=\$!
trap 'kill \$DNS \$L \$B 2>/dev/null || true' EXIT
for i in \$(seq 100); do [ -e "$M/connections.ready" ] && (exec 3<>/dev/tcp/192.0.2.25/2526) 2>/dev/null && break; sleep 0.05; done
# From the attacker's MX: taken. From loopback (an address evil.example's MX answer names): refused.
f12_chat 192.0.2.66 192.0.2.25 2526 "EHLO mx.evil.example" "MAIL FROM:<x@evil.example>" "RCPT TO:<bob@b.example>" \
  "SOURCE 0123456789abcdef0123456789abcdef" "RSET" \
  "MAIL FROM:<x@refused.test>" "RCPT TO:<bob@b.example>" "SOURCE 0123456789abcdef0123456789abcde1" "QUIT"
f12_chat 127.0.0.1 192.0.2.25 2526 "EHLO int1.evil.example" "MAIL FROM:<y@evil.example>" "RCPT TO:<bob@b.example>" \
  "SOURCE 0123456789abcdef0123456789abcde2" "RSET" \
  "MAIL FROM:<z@inner.example>" "RCPT TO:<bob@b.example>" "SOURCE 0123456789abcdef0123456789abcde3" "QUIT"
msourced --db "$M/b/store.db" --log "$M/b/log2" --hostname mx.b.example --deliver "maildir:$M/b/Maildir" --timeout 5 fetch
EOF
  : >"$M/connections"
  run unshare -mn bash "$M/inside.sh"
  cat "$M/b/log" "$M/b/log2" "$M/dnsmasq.err" >&2 || true
  replies=$output
  # Not one connection to an internal address.
  [ -e "$M/connections.ready" ]
  run cat "$M/connections"
  assert_output ""
  # The attacker's own MX may notify; the notice is tried only at 192.0.2.66, where nothing listens.
  run printf "%s\n" "$replies"
  assert_line --partial "250 2.6.0 0123456789abcdef0123456789abcdef noted"
  assert_line --regexp "^4[0-9][0-9] 4\.[0-9.]+ .*refused\.test"
  assert_line "550 5.7.1 SOURCE is taken only from an MX of evil.example; 127.0.0.1 is none: use DATA"
  assert_line "550 5.7.1 SOURCE is taken only from an MX of inner.example; 127.0.0.1 is none: use DATA"
  run grep -E 'event=fetch .*domain=evil\.example.*result=deferred' "$M/b/log2"
  assert_success
  assert_output --partial "192.0.2.66"
  [ "$(f12_count b)" -eq 0 ]
}

@test "12. a sender whose notice is refused (it is not the MX the receiver knows) gives the message by DATA" {
  f12_hosts
  # B believes a.example's MX is 127.0.0.2: A's notices from 127.0.0.1 are refused.
  f12_start b "$PB" --mx-map "a.example=127.0.0.2:$PA"
  run f12_host a --mx-map "b.example=127.0.0.1:$PB" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  [ "$(f12_count b)" -eq 1 ]
  grep -q '^X-Mailstamp-Source: unverified; received by DATA from 127.0.0.1' "$M"/b/Maildir/new/*
  grep -q '^Subject: reverse delivery' "$M"/b/Maildir/new/*
  run f12_host a queue --json
  [ "$(jq -r '.[0].state' <<<"$output")" = sent ]
  run grep 'event=notice .*result=refused.*then=DATA' "$M/a/log"
  assert_success
}

@test "12. fetches are rate-limited per sender domain (--fetch-limit per --rate-window)" {
  f12_hosts
  f12_start a "$PA" --mx-map "b.example=127.0.0.1:$PB"
  f12_start b "$PB" --mx-map "a.example=127.0.0.1:$PA"
  for i in 1 2 3; do
    f12_host a --mx-map "b.example=127.0.0.1:$PB" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  done
  [ "$(f12_host b queue --json | jq length)" -eq 3 ]
  # One window (an hour, fixed by the clock the test sets): two fetches, the third waits for the next window.
  t=$(( ($(date +%s) / 3600 + 1) * 3600 + 10 ))
  fetch_b() { f12_host b --mx-map "a.example=127.0.0.1:$PA" --deliver "maildir:$M/b/Maildir" --fetch-limit 2 --rate-window 1h fetch; }
  MAILSTAMP_TEST_NOW=$t run fetch_b
  assert_success
  [ "$(f12_count b)" -eq 2 ]
  MAILSTAMP_TEST_NOW=$((t + 60)) run fetch_b
  [ "$(f12_count b)" -eq 2 ]
  run grep -c 'event=get .*result=served' "$M/a/log"
  assert_output 2
  run f12_host b queue --json
  assert_output --partial "fetch limit"
  MAILSTAMP_TEST_NOW=$((t + 3600)) run fetch_b
  assert_success
  [ "$(f12_count b)" -eq 3 ]
}

# f12_dns_flaky: a DNS server for flaky.test on 127.0.0.1:5300 (dnsmasq forwards flaky.test to it) whose answers
# fail by name: ok6 has an A record and drops every AAAA query, srv6 has an A record and answers AAAA with
# SERVFAIL, fail answers everything with SERVFAIL, b6 has an A record (192.0.2.25) and drops AAAA.
f12_dns_flaky() {
  cat >"$M/flaky_dns.py" <<'EOF'
import socket, struct
A = {"ok6.flaky.test": "192.0.2.66", "srv6.flaky.test": "192.0.2.66", "b6.flaky.test": "192.0.2.25"}
DROP_AAAA = {"ok6.flaky.test", "b6.flaky.test"}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 5300))
while True:
    q, peer = s.recvfrom(4096)
    qid, flags = struct.unpack(">HH", q[:4])
    pos, labels = 12, []
    while q[pos]:
        labels.append(q[pos + 1:pos + 1 + q[pos]].decode().lower())
        pos += 1 + q[pos]
    name, (qtype,) = ".".join(labels), struct.unpack(">H", q[pos + 1:pos + 3])
    question = q[12:pos + 5]
    if qtype == 28 and name in DROP_AAAA:
        continue
    rcode, answers = 0, b""
    if name not in A or (qtype == 28 and name == "srv6.flaky.test"):
        rcode = 2
    elif qtype == 1:
        answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(A[name])
    s.sendto(struct.pack(">HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, 1 if answers else 0, 0, 0)
             + question + answers, peer)
EOF
}

@test "12. a sender domain with one MX host whose AAAA (or whole) lookup fails still has its notices taken from a resolved MX" {
  command -v dnsmasq >/dev/null || skip "dnsmasq not installed"
  unshare -mn true 2>/dev/null || skip "no namespaces here (unshare -mn)"
  mkdir -p "$M/b"
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  f12_dns_flaky
  declare -f f12_chat >"$M/chat.sh"
  cat >"$M/inside.sh" <<EOF
set -u
. "$M/chat.sh"
ip link set lo up
for a in 192.0.2.25 192.0.2.66 192.0.2.67; do ip addr add \$a/32 dev lo; done
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$M/resolv.conf"
mount --bind "$M/resolv.conf" /etc/resolv.conf
unset MAILSTAMP_DNS  # these cases are the resolv.conf path
/usr/bin/python3 "$M/flaky_dns.py" &
S=\$!
# a6.example: one MX, its AAAA query unanswered. s6.example: a first MX whose lookups all fail, a second whose
# AAAA gets SERVFAIL; both with an A record at 192.0.2.66, the client that gives the notices.
dnsmasq --conf-file=/dev/null --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
  --port=53 --user=root --local=/example/ --server=/flaky.test/127.0.0.1#5300 \
  --mx-host=a6.example,ok6.flaky.test,10 \
  --mx-host=s6.example,fail.flaky.test,10 --mx-host=s6.example,srv6.flaky.test,20 \
  --mx-host=b6.example,fail.flaky.test,10 --mx-host=b6.example,b6.flaky.test,20 \
  --log-facility="$M/dnsmasq.log" --log-queries 2>"$M/dnsmasq.err" &
DNS=\$!
msourced --db "$M/b/store.db" --log "$M/b/log" --hostname mx.b.example --listen 192.0.2.25:2526 \
  --deliver "maildir:$M/b/Maildir" --fetch-interval 0 --timeout 5 &
B=\$!
trap 'kill \$DNS \$S \$B 2>/dev/null || true' EXIT
for i in \$(seq 100); do (exec 3<>/dev/tcp/192.0.2.25/2526) 2>/dev/null && break; sleep 0.05; done
f12_chat 192.0.2.66 192.0.2.25 2526 "EHLO ok6.flaky.test" "MAIL FROM:<x@a6.example>" "RCPT TO:<bob@b.example>" \
  "SOURCE 0123456789abcdef0123456789abcdef" "RSET" \
  "MAIL FROM:<x@s6.example>" "RCPT TO:<bob@b.example>" "SOURCE 0123456789abcdef0123456789abcde1" "QUIT"
# Not an MX, and the domain's lookups partly failed: cannot tell, 4xx.
f12_chat 192.0.2.67 192.0.2.25 2526 "EHLO forger.example" "MAIL FROM:<y@s6.example>" "RCPT TO:<bob@b.example>" \
  "SOURCE 0123456789abcdef0123456789abcde2" "QUIT"
# Our own outgoing mail to b6.example: its first MX fails to resolve, the second has only an A record that
# answers (192.0.2.25, where B listens): sent there.
msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a6.example --mx-port 2526 --timeout 5 \
  send --from alice@a.example --rcpt bob@b6.example <"$M/msg.eml"
msourced --db "$M/a/store.db" queue --json >"$M/a/queue.json"
EOF
  mkdir -p "$M/a"
  mwhitelist --db "$M/b/store.db" domain add b6.example >/dev/null
  mwhitelist --db "$M/a/store.db" import </dev/null >/dev/null
  printf 'From: alice@a.example\nTo: bob@b6.example\nSubject: past a broken MX\n\nbody\n' >"$M/msg.eml"
  run unshare -mn bash "$M/inside.sh"
  cat "$M/b/log" "$M/a/log" "$M/dnsmasq.err" >&2 || true
    assert_line "250 2.6.0 0123456789abcdef0123456789abcdef noted; the message will be fetched from the MX of a6.example"
    assert_line "250 2.6.0 0123456789abcdef0123456789abcde1 noted; the message will be fetched from the MX of s6.example"
  assert_line --regexp "^451 4\.4\.3 cannot tell now whether 192\.0\.2\.67 is an MX of s6\.example"
  # Taken as soon as the client's address resolved: ok6's unanswered AAAA was never asked.
  run grep 'query\[AAAA\] ok6\.flaky\.test' "$M/dnsmasq.log"
  assert_failure
  run jq -r '.[0].state' "$M/a/queue.json"
  assert_output --regexp '^(sent|notified)$'
  [ "$(f12_count b)" -eq 1 ]
}

@test "12. outgoing mail to a domain whose MX hosts have only internal addresses waits, is retried, and expires with that reason logged" {
  command -v dnsmasq >/dev/null || skip "dnsmasq not installed"
  unshare -mn true 2>/dev/null || skip "no namespaces here (unshare -mn)"
  mkdir -p "$M/a"
  mwhitelist --db "$M/a/store.db" import </dev/null >/dev/null
  printf 'From: alice@a.example\nTo: bob@vpn.example\nSubject: to a partner over the VPN\n\nbody\n' >"$M/msg.eml"
  cat >"$M/inside.sh" <<EOF
set -u
ip link set lo up
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$M/resolv.conf"
mount --bind "$M/resolv.conf" /etc/resolv.conf
unset MAILSTAMP_DNS  # these cases are the resolv.conf path
# vpn.example: split-horizon DNS, its MX only at 10.9.8.7 and 100.64.1.2.
dnsmasq --conf-file=/dev/null --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
  --port=53 --user=root --local=/example/ --mx-host=vpn.example,mx.vpn.example,10 \
  --host-record=mx.vpn.example,10.9.8.7 --mx-host=vpn.example,mx2.vpn.example,20 --host-record=mx2.vpn.example,100.64.1.2 \
  --log-facility="$M/dnsmasq.log" 2>"$M/dnsmasq.err" &
DNS=\$!
trap 'kill \$DNS 2>/dev/null || true' EXIT
for i in \$(seq 100); do (exec 3<>/dev/udp/127.0.0.1/53) 2>/dev/null && break; sleep 0.05; done
msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example --timeout 5 --retry 1 \
  send --from alice@a.example --rcpt bob@vpn.example <"$M/msg.eml"
echo "send: \$?"
msourced --db "$M/a/store.db" queue --json >"$M/q1.json"
# The next pass, once the retry is due: tried again, still waiting.
MAILSTAMP_TEST_NOW=\$((\$(date +%s) + 60)) msourced --db "$M/a/store.db" --log "$M/a/log" --timeout 5 --retry 1 fetch
msourced --db "$M/a/store.db" queue --json >"$M/q2.json"
EOF
  run unshare -mn bash "$M/inside.sh"
  cat "$M/a/log" "$M/dnsmasq.err" >&2 || true
  assert_line "send: 0"
  run jq -r '.[0] | "\(.state) \(.tries)"' "$M/q1.json"
  assert_output "queued 1"
  run jq -r '.[0] | "\(.state) \(.tries)"' "$M/q2.json"
  assert_output "queued 2"
  run grep -E 'event=notice .*domain=vpn\.example.*result=deferred.*only internal addresses.*--mx-map' "$M/a/log"
  assert_success
  # Past the hold time: removed, and the log says why it never left.
  MAILSTAMP_TEST_NOW=$(( $(date +%s) + 8 * 86400 )) run msourced --db "$M/a/store.db" --log "$M/a/log" expire
  assert_success
  run msourced --db "$M/a/store.db" queue --json
  assert_output "[]"
  run grep -E 'event=expire .*direction=out.*state=queued.*only internal addresses.*--mx-map' "$M/a/log"
  assert_success
}

# ---------------------------------------------------------------------------
# 13. Store path typos are silent
# ---------------------------------------------------------------------------

f13_msg() { printf 'Return-Path: <x@stranger.example>\nFrom: x@stranger.example\nTo: bob@ours.example\nSubject: hello\n\nbody\n' >"$M/m.eml"; }

@test "13. a filter on a store path with a typo exits 75 with one line naming the path, and creates nothing" {
  f13_msg
  run --separate-stderr mverify --db "$M/nonexistent/dir/x.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  [ -z "$output" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"$M/nonexistent/dir/x.db"* ]]
  [ ! -e "$M/nonexistent" ]
  # The last component alone missing: the same, nothing created.
  mkdir "$M/dir"
  run --separate-stderr mverify --db "$M/dir/typo.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"$M/dir/typo.db"* ]]
  [ -z "$(ls -A "$M/dir")" ]
  # The other readers and filters too.
  for cmd in "mwhitelist check x@stranger.example" "mwhitelist list" "mwhitelist export" "mtoken check bob+abc@ours.example" \
    "mtoken list" "mchallenge list" "mstamp book balance"; do
    set -- $cmd
    run --separate-stderr "$1" --db "$M/dir/typo.db" "${@:2}"
    [ "$status" -eq 75 ] || { echo "$cmd: exit $status" >&2; false; }
    [[ "$stderr" == *"$M/dir/typo.db"* ]]
  done
  run --separate-stderr mchallenge --db "$M/dir/typo.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  run --separate-stderr mstamp --db "$M/dir/typo.db" --rcpt y@else.example <"$M/m.eml"
  assert_failure 75
  [ -z "$(ls -A "$M/dir")" ]
}

@test "13. procmail with a store typo in the recipe keeps the message queued (75) instead of filing it as [B]" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  f13_msg
  mkdir -p "$HOME/Maildir/"{cur,new,tmp} "$HOME/Maildir/.Unknown/"{cur,new,tmp}
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$M/nonexistent/dir/x.db"
    cat "$MAILSTAMP_SRC/contrib/mverify.procmailrc"; } >"$M/rc"
  cd "$M"
  run procmail -m "$M/rc" <"$M/m.eml"
  assert_failure 75
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 0 ]
  [ ! -e "$M/nonexistent" ]
}

@test "13. write commands create the store, but only its last path component; the default path gets its directory" {
  run --separate-stderr mwhitelist --db "$M/new/x.db" add friend@friend.example
  assert_failure 75
  [[ "$stderr" == *"$M/new"* ]]
  [ ! -e "$M/new" ]
  mkdir "$M/new"
  run mwhitelist --db "$M/new/x.db" add friend@friend.example
  assert_success
  [ "$(stat -c %a "$M/new/x.db")" = 600 ]
  run mwhitelist --db "$M/new/x.db" check friend@friend.example
  assert_success
  run mtoken --db "$M/t.db" make bob@ours.example
  assert_success
  [ -f "$M/t.db" ]
  # No --db: the default store under XDG_DATA_HOME; readers do not create it, writers create mailstamp/ too.
  unset MAILSTAMP_DB
  run mwhitelist check friend@friend.example
  assert_failure 75
  [ ! -e "$HOME/.local/share/mailstamp" ]
  run mwhitelist add friend@friend.example
  assert_success
  [ -f "$HOME/.local/share/mailstamp/store.db" ]
  [ "$(stat -c %a "$HOME/.local/share/mailstamp")" = 700 ]
  run mwhitelist check friend@friend.example
  assert_success
}

@test "13. msourced send (the pipe Postfix runs per message) on a store typo exits 75 naming the path and creates nothing" {
  mkdir -p "$M/a"
  mwhitelist --db "$M/a/store.db" import </dev/null >/dev/null
  printf 'From: alice@a.example\nTo: bob@b.example\nSubject: s\n\nbody\n' >"$M/msg.eml"
  run --separate-stderr msourced --db "$M/a/stroe.db" --log "$M/a/log" --hostname mx.a.example \
    send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_failure 75
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"$M/a/stroe.db"* ]]
  [ ! -e "$M/a/stroe.db" ]
  # The real store holds it.
  run msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example --mx-map "b.example=127.0.0.1:9" \
    send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  [ "$(msourced --db "$M/a/store.db" queue --json | jq length)" -eq 1 ]
}
