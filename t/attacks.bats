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
# a4_race PORT TOKEN N: N sessions send MAIL and RCPT TO:<TOKEN>; a barrier holds them until every one has its
# RCPT reply, so all N reach RCPT before any DATA ends; those answered 250 then send the message. Prints one
# line per session ("rcpt CODE data CODE") and a summary.
a4_race() {
  cat >"$M/race.py" <<'PY'
import socket, sys, threading
port, tok, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
barrier = threading.Barrier(n, timeout=60)
out = [None] * n
def reply(s, f):
    lines = []
    while True:
        l = f.readline().decode("latin-1").rstrip("\r\n")
        if not l:
            return lines or ["(closed)"]
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return lines
def run(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    reply(s, f)
    for c in (b"EHLO racer%d.example\r\n" % i, b"MAIL FROM:<racer%d@bad.example>\r\n" % i):
        s.sendall(c)
        reply(s, f)
    s.sendall(b"RCPT TO:<" + tok.encode() + b">\r\n")
    r = reply(s, f)
    barrier.wait()
    d = ["---"]
    if r[0].startswith("250"):
        s.sendall(b"DATA\r\n")
        if reply(s, f)[0].startswith("354"):
            s.sendall(b"Subject: race %d\r\n\r\nracer %d\r\n.\r\n" % (i, i))
            d = reply(s, f)
    s.sendall(b"QUIT\r\n")
    s.close()
    out[i] = (r, d)
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
for r, d in out:
    print("rcpt", r[0][:3], "data", d[0][:3], "|", " ".join(r))
print("delivered", sum(1 for r, d in out if d[0].startswith("250")))
print("fresh tokens", sum(1 for r, d in out if "this address: <" in " ".join(r)))
PY
  $PY "$M/race.py" "$@"
}

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

# ---------------------------------------------------------------------------
# 10. One client address takes every session slot
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 11. AUTH brute force, unthrottled and costly
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 12. SOURCE notices steer our connections
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 13. Store path typos are silent
# ---------------------------------------------------------------------------
