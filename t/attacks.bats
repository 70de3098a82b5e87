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

# ---------------------------------------------------------------------------
# 2. A confirmation releases only one held message
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 3. Whitelist hit counts lag and are lost with the proxy
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 4. One-time tokens spent in parallel
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 5. SRS wrappers trusted as the wrapped sender
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 6. Submission users trusted too widely
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 7. Signed postage covers only the Message-ID and the body
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 8. The spend check trusts everyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 9. Tokens in 550 replies are free for anyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 10. One client address takes every session slot
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 11. AUTH brute force, unthrottled and costly
# ---------------------------------------------------------------------------

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
