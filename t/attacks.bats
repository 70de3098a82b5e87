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

# ---------------------------------------------------------------------------
# 13. Store path typos are silent
# ---------------------------------------------------------------------------
