#!/usr/bin/env bats
# msourced end to end on loopback: two instances (a.example and b.example)
# with --mx-map pointing at each other, a message given by SOURCE and fetched
# back by GET arriving byte-identical, refused ids, a sender offline at fetch
# time, peers without the extension (Postfix's smtp-sink, msmtp-proxy), the
# three ways of running, and once the real MX path: dnsmasq serving an MX
# record in a private network and mount namespace with its own resolv.conf.
# Notices are taken only from the sender domain's MX (here: the --mx-map
# entry, 127.0.0.1); attacks.bats section 12 has the refusals.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  PY=/usr/bin/python3
  TOOL="$MAILSTAMP_SRC/t/smtptool.py"
  SINKU=()
  [ "$(id -u)" -ne 0 ] || SINKU=(-u root)
  PIDS=()
  mkdir -p "$M/a" "$M/b"
  mwhitelist --db "$M/a/store.db" domain add a.example >/dev/null
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  PA=$(free_port)
  PB=$(free_port)
  while [ "$PB" = "$PA" ]; do PB=$(free_port); done
  # The test message: LF line ends, lines starting with dots, 8-bit text, a long line, no final newline.
  {
    printf 'From: Alice <alice@a.example>\nTo: Bob <bob@b.example>\nSubject: reverse delivery\n'
    printf 'Message-ID: <t1@a.example>\nX-Mailstamp-Source: verified; domain=forged.example\n\n'
    printf 'first line\n.a line with a leading dot\n..two dots\n.\nnot the end\n\xc3\xa9t\xc3\xa9\n'
    head -c 3000 /dev/zero | tr '\0' x
    printf '\nlast line without newline'
  } >"$M/msg.eml"
}

teardown() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# host X [options]: msourced for X.example from its own directory (store, log, Maildir).
host() {
  local h=$1
  shift
  msourced --db "$M/$h/store.db" --log "$M/$h/log" --hostname "mx.$h.example" "$@"
}
# start A|B [options]: the daemon for that host on its port, the other host in --mx-map.
start() {
  local h=$1 port other oport
  shift
  if [ "$h" = a ]; then port=$PA other=b oport=$PB; else port=$PB other=a oport=$PA; fi
  # msourced itself in the background (not the host function: $! would be a subshell, and killing it
  # would leave the daemon running).
  msourced --db "$M/$h/store.db" --log "$M/$h/log" --hostname "mx.$h.example" --listen "127.0.0.1:$port" \
    --mx-map "$other.example=127.0.0.1:$oport" --deliver "maildir:$M/$h/Maildir" --fetch-interval "${FETCH:-60}" \
    --retry 1 "$@" 2>"$M/$h/err" 3>&- &
  PIDS+=($!)
  eval "PID_$h=$!"
  WAIT_LOG="$M/$h/err" wait_port "$port"
}
send_a() { host a --mx-map "b.example=127.0.0.1:$PB" --retry 1 send --from alice@a.example --rcpt bob@b.example "$@" <"$M/msg.eml"; }
count() { find "$M/$1/Maildir/new" -type f 2>/dev/null | wc -l; }
# wait_mail HOST N: until HOST's Maildir holds N messages (then a moment more, to see that no more come).
wait_mail() {
  local i
  for i in $(seq 200); do [ "$(count "$1")" -ge "$2" ] && break; sleep 0.05; done
  sleep 0.3
  [ "$(count "$1")" -eq "$2" ] || { echo "$1 holds $(count "$1") messages, want $2" >&2; cat "$M/$1/log" >&2; return 1; }
}
# The one delivered message, less the fields delivery added on top (Return-Path, X-Original-To, Received,
# X-Mailstamp-Source), with the Maildir's LF line ends.
delivered_body() { sed '1,4d' "$(find "$M/$1/Maildir/new" -type f | head -1)"; }
# The message as it must arrive: the forged X-Mailstamp-Source removed, a final line end added.
expected() { grep -v '^X-Mailstamp-Source:' "$M/msg.eml"; }
id_out() { host a queue --json | jq -r '.[] | select(.direction == "out") | .id' | head -1; }

@test "help, version, and usage errors exit 0 and 64" {
  run msourced --help
  assert_success
  assert_output --partial "--mx-map"
  run msourced --version
  assert_success
  run msourced send --rcpt bob@b.example
  assert_failure 64
  run msourced --mx-map nonsense send --from a@a.example --rcpt b@b.example </dev/null
  assert_failure 64
  assert_output --partial "mx-map"
  run msourced --deliver mbox:/tmp/x queue
  assert_failure 64
}

@test "a message given by SOURCE is fetched back by GET and arrives byte-identical" {
  start a
  start b
  run send_a
  assert_success
  wait_mail b 1
  diff <(expected) <(delivered_body b)
  f=$(find "$M/b/Maildir/new" -type f)
  run sed -n '3,4p' "$f"
  assert_line --index 0 --regexp "^Received: from 127\.0\.0\.1 \(127\.0\.0\.1:$PA\) by mx\.b\.example \(msourced\) with SOURCE/GET id [0-9a-f]{32} for <bob@b\.example>;"
  assert_line --index 1 --regexp "^X-Mailstamp-Source: verified; domain=a\.example; mx=127\.0\.0\.1:$PA; id=[0-9a-f]{32}$"
  run grep -c '^X-Mailstamp-Source' "$f"
  assert_output 1
  # The sender's row: notified, served once; the receiver has nothing partial left.
  run host a queue --json
  assert_success
  [ "$(jq -r '.[0].state' <<<"$output")" = notified ]
  [ "$(jq -r '.[0].gets' <<<"$output")" = 1 ]
  [ "$(jq -r '.[0].id' <<<"$output" | grep -cE '^[0-9a-f]{32}$')" = 1 ]
  run host b queue --json
  assert_output "[]"
  run grep -E 'event=get .*result=served' "$M/a/log"
  assert_success
  run grep -E 'event=fetch .*result=delivered' "$M/b/log"
  assert_success
}

@test "a wrong id, an expired id and an id fetched past its limit are refused the same way" {
  start a
  start b
  # The limit is the sender's, recorded with the held message.
  run host a --max-gets 1 --mx-map "b.example=127.0.0.1:$PB" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  wait_mail b 1
  id=$(id_out)
  [ -n "$id" ]
  # Exhausted (max-gets 1, fetched once), unknown, malformed: one answer.
  run $PY "$TOOL" chat "$PA" "EHLO probe.example" "GET $id" "GET 0123456789abcdef0123456789abcdef" "GET nonsense" "QUIT"
  assert_success
  refusals=$(grep -c '^550 5.7.1 no message by that id$' <<<"$output")
  [ "$refusals" -eq 3 ]
  # Expired: a second message held for one second.
  run host a --hold-time 1 --mx-map "b.example=127.0.0.1:1" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  id2=$(host a queue --json | jq -r '.[] | select(.state == "queued") | .id')
  [ -n "$id2" ]
  sqlite3 "$M/a/store.db" "UPDATE source_out SET state='notified' WHERE id='$id2'"
  sleep 1.2
  run $PY "$TOOL" chat "$PA" "EHLO probe.example" "GET $id2" "QUIT"
  assert_line "550 5.7.1 no message by that id"
  run grep -c 'message follows' <<<"$output"
  assert_output 0
}

@test "the GET reply is dot-stuffed and ends with CRLF.CRLF; un-stuffed it is the held message" {
  run host a --mx-map "b.example=127.0.0.1:1" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  id=$(id_out)
  sqlite3 "$M/a/store.db" "UPDATE source_out SET state='notified' WHERE id='$id'"
  # inetd mode: one session on stdin/stdout.
  printf 'EHLO probe.example\r\nGET %s\r\nQUIT\r\n' "$id" | host a >"$M/out" 2>"$M/err"
  [ ! -s "$M/err" ]
  run grep -c $'^250 2.6.0 message follows' "$M/out"
  assert_output 1
  grep -q $'^\\.\\.a line with a leading dot\r$' "$M/out"
  grep -q $'^\\.\\.\\.two dots\r$' "$M/out"
  grep -q $'^last line without newline\r$' "$M/out"
  # The data: from after the 250 line to the lone dot; un-stuffed and with LF line ends it is the message.
  sed -n '/^250 2.6.0 message follows/,/^\.\r$/p' "$M/out" | sed '1d;$d' | tr -d '\r' | sed 's/^\.//' >"$M/got"
  diff <(cat "$M/msg.eml"; echo) "$M/got"
  run grep -c $'^221 ' "$M/out"
  assert_output 1
}

@test "a sender offline at fetch time is retried, and the message arrives once it is back" {
  start b
  # Host A's daemon is not running: the notice goes to B, B's fetch fails.
  run send_a
  assert_success
  for i in $(seq 100); do grep -q 'event=fetch .*result=deferred' "$M/b/log" 2>/dev/null && break; sleep 0.05; done
  run grep 'event=fetch .*result=deferred' "$M/b/log"
  assert_success
  [ "$(count b)" -eq 0 ]
  run host b queue --json
  [ "$(jq -r '.[0].direction' <<<"$output")" = in ]
  [ "$(jq -r '.[0].tries' <<<"$output")" -ge 1 ]
  start a
  # B's fetch thread comes back when the retry is due (1 s, then 2 s, 4 s...), not only every --fetch-interval.
  for i in $(seq 100); do [ "$(count b)" -ge 1 ] && break; sleep 0.1; done
  wait_mail b 1
  diff <(expected) <(delivered_body b)
}

@test "a receiver offline when the notice is due is retried by the sender's daemon" {
  # The daemon looks for due notices every --fetch-interval (and sooner when its own passes left a retry).
  FETCH=1 start a
  # B is down: the notice stays queued with the error.
  run send_a
  assert_success
  run host a queue --json
  [ "$(jq -r '.[0].state' <<<"$output")" = queued ]
  [ "$(jq -r '.[0].tries' <<<"$output")" -eq 1 ]
  assert_output --partial "127.0.0.1:$PB"
  start b
  # A's fetch thread gives the notice when its retry is due; B fetches the message back.
  for i in $(seq 150); do [ "$(count b)" -ge 1 ] && break; sleep 0.1; done
  wait_mail b 1
  diff <(expected) <(delivered_body b)
  run host a queue --json
  [ "$(jq -r '.[0].state' <<<"$output")" = notified ]
}

@test "a fetched message whose delivery fails is kept and delivered later without a second GET" {
  need_smtp_sink
  start a
  SINK=$(free_port)
  # B relays to an MTA that is down: the GET succeeds, the delivery does not.
  msourced --db "$M/b/store.db" --log "$M/b/log" --hostname mx.b.example --listen "127.0.0.1:$PB" \
    --mx-map "a.example=127.0.0.1:$PA" --relay "127.0.0.1:$SINK" --fetch-interval 60 --retry 1 2>"$M/b/err" 3>&- &
  PIDS+=($!)
  wait_port "$PB"
  run send_a
  assert_success
  for i in $(seq 100); do grep -q 'event=fetch .*result=deferred.*delivery' "$M/b/log" 2>/dev/null && break; sleep 0.05; done
  run grep 'event=fetch .*result=deferred' "$M/b/log"
  assert_output --partial "delivery"
  [ "$(find "$M/b/source" -name 'fetched-*' | wc -l)" -eq 1 ]
  mkdir -p "$M/sink"
  smtp-sink "${SINKU[@]}" -d "$M/sink/%M." "127.0.0.1:$SINK" 100 >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$SINK"
  for i in $(seq 150); do [ "$(find "$M/sink" -type f | wc -l)" -ge 1 ] && break; sleep 0.1; done
  f=$(find "$M/sink" -type f | head -1)
  [ -n "$f" ]
  grep -q '^X-Mailstamp-Source: verified; domain=a.example; mx=127.0.0.1:'"$PA" "$f"
  grep -q 'last line without newline' "$f"
  # One GET only, and the copy is gone.
  [ "$(host a queue --json | jq -r '.[0].gets')" -eq 1 ]
  [ "$(find "$M/b/source" -name 'fetched-*' | wc -l)" -eq 0 ]
  run host b queue --json
  assert_output "[]"
}

@test "a peer that does not offer the extension gets the message by DATA (smtp-sink, msmtp-proxy)" {
  need_smtp_sink
  SINK=$(free_port)
  mkdir -p "$M/sink"
  smtp-sink "${SINKU[@]}" -d "$M/sink/%M." "127.0.0.1:$SINK" 100 >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$SINK"
  run host a --mx-map "b.example=127.0.0.1:$SINK" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  for i in $(seq 100); do [ "$(find "$M/sink" -type f | wc -l)" -ge 1 ] && break; sleep 0.05; done
  f=$(find "$M/sink" -type f | head -1)
  [ -n "$f" ]
  grep -q '^Subject: reverse delivery' "$f"
  grep -q 'last line without newline' "$f"
  run host a queue --json
  [ "$(jq -r '.[0].state' <<<"$output")" = sent ]
  # msmtp-proxy in front of a Maildir: the same by DATA.
  mwhitelist --db "$M/b/store.db" add alice@a.example >/dev/null
  PX=$(free_port)
  msmtp-proxy --db "$M/b/store.db" --listen "127.0.0.1:$PX" --hostname mx.b.example --maildir "$M/px" --log "$M/px.log" 3>&- &
  PIDS+=($!)
  wait_port "$PX"
  run host a --mx-map "b.example=127.0.0.1:$PX" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  for i in $(seq 100); do [ "$(find "$M/px/new" -type f 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 0.05; done
  f=$(find "$M/px/new" -type f | head -1)
  grep -q 'last line without newline' "$f"
  grep -q '^\.a line with a leading dot' "$f"
}

@test "plain DATA is taken for protected domains, marked unverified; forged fields removed; no relaying" {
  start b
  run swaks --server "127.0.0.1:$PB" --helo client.example --from carol@c.example --to bob@b.example \
    --header "X-Mailstamp-Source: verified; domain=c.example" --body "hello by DATA"
  assert_success
  wait_mail b 1
  f=$(find "$M/b/Maildir/new" -type f)
  run grep '^X-Mailstamp-Source:' "$f"
  assert_output "X-Mailstamp-Source: unverified; received by DATA from 127.0.0.1"
  run swaks --server "127.0.0.1:$PB" --helo client.example --from carol@c.example --to someone@elsewhere.example
  assert_failure
  assert_output --partial "554 5.7.1 relay access denied"
  run $PY "$TOOL" chat "$PB" "EHLO c.example" "MAIL FROM:<carol@c.example>" "RCPT TO:<bob%elsewhere.example@b.example>" "QUIT"
  assert_line "554 5.7.1 relay access denied"
  [ "$(count b)" -eq 1 ]
}

@test "SOURCE replies: no MAIL, no recipients, null sender, bad id; a notice the sender's MX does not hold is dropped" {
  start a
  start b
  run $PY "$TOOL" chat "$PB" "EHLO c.example" "SOURCE 0123456789abcdef0123456789abcdef" \
    "MAIL FROM:<>" "RCPT TO:<bob@b.example>" "SOURCE 0123456789abcdef0123456789abcdef" "RSET" \
    "MAIL FROM:<mallory@a.example>" "RCPT TO:<bob@b.example>" "SOURCE 12345" \
    "SOURCE 0123456789ABCDEF0123456789ABCDEF" "QUIT"
  assert_success
  assert_line --regexp "^250[- ]SOURCE$"
  assert_line "503 5.5.1 need MAIL before SOURCE"
  assert_line "550 5.7.1 SOURCE needs a sender domain to fetch from; use DATA"
  assert_line "501 5.5.4 Syntax: SOURCE <32 hex digits>"
  assert_line --partial "250 2.6.0 0123456789abcdef0123456789abcdef noted"
  # A forged notice: a.example's MX holds no such id, so nothing is delivered and the partial is gone.
  for i in $(seq 100); do grep -q 'event=fetch .*result=refused' "$M/b/log" 2>/dev/null && break; sleep 0.05; done
  run grep 'event=fetch .*result=refused' "$M/b/log"
  assert_success
  assert_output --partial "550 5.7.1 no message by that id"
  [ "$(count b)" -eq 0 ]
  run host b queue --json
  assert_output "[]"
}

@test "GETs are rate-limited per client address" {
  start a --get-limit 3
  run $PY "$TOOL" chat "$PA" "EHLO probe.example" "GET 0123456789abcdef0123456789abcdef" \
    "GET 0123456789abcdef0123456789abcde0" "GET 0123456789abcdef0123456789abcde1" "GET 0123456789abcdef0123456789abcde2" "QUIT"
  [ "$(grep -c '^550 5.7.1 no message by that id$' <<<"$output")" -eq 3 ]
  assert_line "450 4.7.1 too many GET commands, try again later"
}

@test "expiry: held messages are removed with their file; partial ones dropped, or delivered as an unverified notice" {
  run host a --mx-map "b.example=127.0.0.1:1" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  assert_success
  [ "$(find "$M/a/source" -type f | wc -l)" -eq 1 ]
  # A partial message on B from a notice whose sender never answers.
  printf 'EHLO mx.a.example\r\nMAIL FROM:<alice@a.example>\r\nRCPT TO:<bob@b.example>\r\nSOURCE %s\r\nQUIT\r\n' \
    0123456789abcdef0123456789abcdef | host b --deliver "maildir:$M/b/Maildir" >/dev/null
  [ "$(host b queue --json | jq length)" -eq 1 ]
  later=$(( $(date +%s) + 8 * 86400 ))
  MAILSTAMP_TEST_NOW=$later run host a expire
  assert_success
  run host a queue --json
  assert_output "[]"
  [ "$(find "$M/a/source" -type f | wc -l)" -eq 0 ]
  MAILSTAMP_TEST_NOW=$later run host b --deliver "maildir:$M/b/Maildir" --on-expiry notify expire
  assert_success
  [ "$(count b)" -eq 1 ]
  f=$(find "$M/b/Maildir/new" -type f)
  grep -q '^X-Mailstamp-Source: unverified; expired; domain=a.example; id=0123456789abcdef0123456789abcdef' "$f"
  grep -q '^Subject: \[unverified\] a message from alice@a.example could not be fetched' "$f"
  run host b queue --json
  assert_output "[]"
}

@test "socket activation: systemd-socket-activate with a listening socket, and inetd-style with -a --inetd" {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed"
  run host a --mx-map "b.example=127.0.0.1:1" send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
  id=$(id_out)
  sqlite3 "$M/a/store.db" "UPDATE source_out SET state='notified' WHERE id='$id'"
  systemd-socket-activate -l "127.0.0.1:$PA" msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example \
    --fetch-interval 0 2>"$M/sa.err" 3>&- &
  PIDS+=($!)
  wait_port "$PA"
  run $PY "$TOOL" chat "$PA" "EHLO probe.example" "GET $id" "QUIT"
  assert_line --partial "250 2.6.0 message follows"
  assert_output --partial "last line without newline"
  kill "${PIDS[-1]}"
  P2=$(free_port)
  systemd-socket-activate --inetd -a -l "127.0.0.1:$P2" msourced --db "$M/a/store.db" --log "$M/a/log2" \
    --hostname mx.a.example 2>"$M/sa2.err" 3>&- &
  PIDS+=($!)
  wait_port "$P2"
  run $PY "$TOOL" chat "$P2" "EHLO probe.example" "GET $id" "QUIT"
  assert_line --partial "250 2.6.0 message follows"
  assert_line "221 2.0.0 mx.a.example closing connection"
}

@test "the real MX path: dnsmasq on loopback in a private namespace serves the MX the fetcher follows" {
  command -v dnsmasq >/dev/null || skip "dnsmasq not installed"
  unset MAILSTAMP_DNS  # this test is the resolv.conf path
  unshare -mn true 2>/dev/null || skip "no namespaces here (unshare -mn)"
  cat >"$M/inside.sh" <<EOF
set -eu
ip link set lo up
# The MX of a.example at an address of its own: mailstamp never connects to loopback that DNS names.
ip addr add 192.0.2.25/32 dev lo
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$M/resolv.conf"
mount --bind "$M/resolv.conf" /etc/resolv.conf
dnsmasq --conf-file=/dev/null --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
  --port=53 --user=root --local=/example/ --mx-host=a.example,mx.a.example,10 \
  --host-record=mx.a.example,192.0.2.25 --log-facility="$M/dnsmasq.log" --log-queries 2>"$M/dnsmasq.err" &
DNS=\$!
trap 'kill \$DNS \$A \$B 2>/dev/null || true' EXIT
# Host A is the MX of a.example on port 25 of this namespace's 192.0.2.25; B resolves it through DNS, and
# takes A's notice because it comes from that address.
msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example --listen 192.0.2.25:25 --fetch-interval 0 &
A=\$!
msourced --db "$M/b/store.db" --log "$M/b/log" --hostname mx.b.example --listen 192.0.2.25:2526 \
  --deliver "maildir:$M/b/Maildir" --fetch-interval 60 --timeout 5 &
B=\$!
for i in \$(seq 100); do (exec 3<>/dev/tcp/192.0.2.25/25) 2>/dev/null && (exec 3<>/dev/tcp/192.0.2.25/2526) 2>/dev/null && break; sleep 0.05; done
msourced --db "$M/a/store.db" --log "$M/a/send.log" --hostname mx.a.example --mx-map b.example=192.0.2.25:2526 \
  send --from alice@a.example --rcpt bob@b.example <"$M/msg.eml"
for i in \$(seq 200); do [ "\$(find "$M/b/Maildir/new" -type f 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 0.05; done
# A domain that does not exist: its notice is dropped (NXDOMAIN), nothing fetched.
printf 'EHLO mx.nowhere.example\r\nMAIL FROM:<x@nowhere.example>\r\nRCPT TO:<bob@b.example>\r\nSOURCE %s\r\nQUIT\r\n' \
  0123456789abcdef0123456789abcdef | msourced --db "$M/b/store.db" --log "$M/b/log3" --deliver "maildir:$M/b/Maildir" >/dev/null
msourced --db "$M/b/store.db" --log "$M/b/log3" --deliver "maildir:$M/b/Maildir" --timeout 5 fetch
EOF
  run unshare -mn bash "$M/inside.sh"
  cat "$M/b/log" "$M/b/log3" "$M/dnsmasq.err" >&2 || true
  assert_success
  [ "$(count b)" -eq 1 ]
  diff <(expected) <(delivered_body b)
  run grep -E 'event=fetch .*mx=mx\.a\.example:25 result=delivered' "$M/b/log"
  assert_success
  run grep -E 'query\[MX\] a\.example' "$M/dnsmasq.log"
  assert_success
  run grep -E 'event=fetch .*domain=nowhere\.example.*result=refused.*no such domain' "$M/b/log3"
  assert_success
}
