#!/usr/bin/env bats
# The DNS setting and the resolver layer, through a real program: msourced
# asks for the MX of a SOURCE notice's sender domain (and the fetcher asks
# again), so a notice from 127.0.0.1 makes it ask t/dns/zone-server.py, whose
# --log proves which server was asked and how often. --dns, MAILSTAMP_DNS and
# the config key dns are honoured in that order; a TIMEOUT record and SERVFAIL
# are a temporary failure (451 in the session) within about dns-timeout; a bad
# --dns value is one usage line and exit 64; the daemon's cache asks once
# within the TTL; answers with another id or question are ignored; a truncated
# answer is asked again over TCP. mverify,
# mchallenge and msmtp-proxy take the same setting.

load helpers

setup() {
  common_setup
  unset MAILSTAMP_DNS  # this file tests where the setting comes from
  M="$BATS_TEST_TMPDIR"
  PY=/usr/bin/python3
  TOOL="$MAILSTAMP_SRC/t/smtptool.py"
  PIDS=()
  $PY -c 'import dnslib' 2>/dev/null || skip "python3-dnslib not installed"
  cat >"$M/zone" <<'EOF'
a.example MX 10 mx.a.example
mx.a.example A 192.0.2.25
slow.example MX TIMEOUT
broken.example SERVFAIL
cached.example 300 MX 10 mx.cached.example
mx.cached.example 300 A 192.0.2.26
EOF
  $PY "$MAILSTAMP_SRC/t/dns/zone-server.py" "$M/zone" --port-file "$M/dns.port" --log "$M/dns.log" &
  PIDS+=($!)
  for i in $(seq 100); do [ -s "$M/dns.port" ] && break; sleep 0.05; done
  DNSPORT=$(cat "$M/dns.port")
  # A second server that is never asked when the first is named: it proves which one was.
  $PY "$MAILSTAMP_SRC/t/dns/zone-server.py" "$M/zone" --port-file "$M/dns2.port" --log "$M/dns2.log" &
  PIDS+=($!)
  for i in $(seq 100); do [ -s "$M/dns2.port" ] && break; sleep 0.05; done
  DNSPORT2=$(cat "$M/dns2.port")
  printf '[common]\ndns-timeout = 1\n' >"$M/config"
  export MAILSTAMP_CONFIG="$M/config"
  mkdir -p "$M/b"
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  PB=$(free_port)
}

teardown() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# start_b [options]: msourced for b.example listening on $PB.
start_b() {
  msourced --db "$M/b/store.db" --log "$M/b/log" --hostname mx.b.example --listen "127.0.0.1:$PB" \
    --deliver "maildir:$M/b/Maildir" --fetch-interval 60 --retry 1 "$@" 2>"$M/b/err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/b/err" wait_port "$PB"
}
# notice DOMAIN: a SOURCE notice for a message from alice@DOMAIN, from 127.0.0.1.
notice() {
  $PY "$TOOL" chat "$PB" "EHLO mx.$1" "MAIL FROM:<alice@$1>" "RCPT TO:<bob@b.example>" \
    "SOURCE 0123456789abcdef0123456789abcdef" "QUIT"
}
# asked NAME TYPE LOG: how many queries for NAME TYPE the zone server logged (0 when it logged none).
asked() {
  if [ -f "$3" ]; then grep -c "^$1 $2\$" "$3" || true; else echo 0; fi
}

@test "--dns names the server the MX lookup goes to, before MAILSTAMP_DNS and the config key" {
  printf 'dns = 127.0.0.1:%s\n' "$DNSPORT2" >>"$M/config"
  export MAILSTAMP_DNS="127.0.0.1:$DNSPORT2"
  start_b --dns "127.0.0.1:$DNSPORT"
  run notice a.example
  assert_success
  [ "$(asked a.example MX "$M/dns.log")" -ge 1 ]
  [ "$(asked a.example MX "$M/dns2.log")" -eq 0 ]
}

@test "MAILSTAMP_DNS is used when there is no --dns, before the config key" {
  printf 'dns = 127.0.0.1:%s\n' "$DNSPORT2" >>"$M/config"
  MAILSTAMP_DNS="127.0.0.1:$DNSPORT" start_b
  run notice a.example
  assert_success
  [ "$(asked a.example MX "$M/dns.log")" -ge 1 ]
  [ "$(asked a.example MX "$M/dns2.log")" -eq 0 ]
}

@test "the config key dns is used when neither --dns nor MAILSTAMP_DNS is set" {
  printf '[msourced]\ndns = 127.0.0.1:%s\n' "$DNSPORT" >>"$M/config"
  start_b
  run notice a.example
  assert_success
  [ "$(asked a.example MX "$M/dns.log")" -ge 1 ]
  [ "$(asked a.example MX "$M/dns2.log")" -eq 0 ]
}

@test "a DNS timeout is a temporary failure (451) within about dns-timeout" {
  start_b --dns "127.0.0.1:$DNSPORT"
  local t0=$SECONDS
  run notice slow.example
  local took=$((SECONDS - t0))
  assert_success
  assert_line --regexp '^451 4\.4\.3 cannot tell now whether 127\.0\.0\.1 is an MX of slow\.example'
  [ "$took" -le 4 ]
  # Asked twice (dns-attempts 2 by default), over about the second of dns-timeout.
  [ "$(asked slow.example MX "$M/dns.log")" -eq 2 ]
  run grep -E 'result=deferred.*timeout after 1000 ms' "$M/b/log"
  assert_success
}

@test "SERVFAIL is a temporary failure (451), and is not cached" {
  start_b --dns "127.0.0.1:$DNSPORT"
  run notice broken.example
  assert_success
  assert_line --regexp '^451 4\.4\.3 cannot tell now whether 127\.0\.0\.1 is an MX of broken\.example'
  run notice broken.example
  assert_line --regexp '^451 '
  [ "$(asked broken.example MX "$M/dns.log")" -eq 2 ]
  run grep -E 'result=deferred.*SERVFAIL' "$M/b/log"
  assert_success
}

@test "the daemon's cache asks once within the TTL" {
  start_b --dns "127.0.0.1:$DNSPORT"
  run notice cached.example
  assert_success
  run notice cached.example
  assert_success
  run notice cached.example
  assert_success
  sleep 0.5
  [ "$(asked cached.example MX "$M/dns.log")" -eq 1 ]
  [ "$(asked mx.cached.example A "$M/dns.log")" -eq 1 ]
}

@test "a bad --dns value is one usage line and exit 64; a bad MAILSTAMP_DNS or config dns is exit 78" {
  local prog
  for prog in mverify mchallenge msmtp-proxy msourced; do
    run "$prog" --help
    assert_success
    assert_output --partial "--dns"
    run --separate-stderr "$prog" --dns "nonsense:x" </dev/null
    [ "$status" -eq 64 ] || { echo "$prog: $status $stderr"; false; }
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *"--dns"* ]]
  done
  run --separate-stderr msourced --dns "localhost:53" queue
  [ "$status" -eq 64 ]
  [ "${stderr_lines[0]}" = "msourced: --dns: 'localhost:53': not a numeric IP address" ]
  MAILSTAMP_DNS="127.0.0.1:0" run --separate-stderr msourced queue
  [ "$status" -eq 78 ]
  [[ "$stderr" == *'$MAILSTAMP_DNS'* ]]
  printf 'dns = 1.2.3.4:99999\n' >>"$M/config"
  run --separate-stderr msourced queue
  [ "$status" -eq 78 ]
  [[ "$stderr" == *"$M/config:3: dns: "* ]]
}

@test "answers with another id or another question are ignored; the one that matches is taken" {
  # A server that sends two wrong answers before the right one: another id (naming evil.example as the
  # MX), then the right id for another question (also evil), then the answer asked for.
  cat >"$M/spoof.py" <<'PY'
import socket, sys
from dnslib import DNSRecord, DNSHeader, DNSQuestion, RR, QTYPE, MX, A
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)
while True:
    data, peer = s.recvfrom(4096)
    q = DNSRecord.parse(data)
    name = str(q.q.qname).rstrip(".").lower()
    log.write(f"{name} {QTYPE.get(q.q.qtype)}\n")
    def reply(ident, qname, host):
        r = DNSRecord(DNSHeader(id=ident, qr=1, rd=1, ra=1), q=DNSQuestion(qname, q.q.qtype))
        if q.q.qtype == QTYPE.MX:
            r.add_answer(RR(qname, QTYPE.MX, ttl=300, rdata=MX(host)))
        elif q.q.qtype == QTYPE.A:
            r.add_answer(RR(qname, QTYPE.A, ttl=300, rdata=A("192.0.2.25")))
        return r.pack()
    qid = q.header.id
    s.sendto(reply((qid + 1) & 0xffff, name, "evil.example"), peer)
    s.sendto(reply(qid, "other.example", "evil.example"), peer)
    s.sendto(reply(qid, name, "mx." + name), peer)
PY
  $PY "$M/spoof.py" "$M/spoof.port" "$M/spoof.log" &
  PIDS+=($!)
  for i in $(seq 100); do [ -s "$M/spoof.port" ] && break; sleep 0.05; done
  start_b --dns "127.0.0.1:$(cat "$M/spoof.port")"
  run notice a.example
  assert_success
  sleep 0.3
  run cat "$M/spoof.log"
  assert_line "a.example MX"
  assert_line "mx.a.example A"
  refute_line --partial "evil.example"
}

@test "a truncated UDP answer is asked again over TCP, and its records are used" {
  # 80 MX records do not fit the 1232 octets offered over UDP: the server sends TC, the resolver asks over TCP.
  for i in $(seq -w 10 89); do printf 'big.example MX %s mx%s.big.example\n' "$i" "$i"; done >>"$M/zone"
  start_b --dns "127.0.0.1:$DNSPORT"
  run notice big.example
  assert_success
  sleep 0.3
  [ "$(asked big.example MX "$M/dns.log")" -eq 2 ]
  # The hosts of the TCP answer are looked up, in order of preference.
  run grep -m1 ' A$' "$M/dns.log"
  assert_output "mx10.big.example A"
  [ "$(asked mx19.big.example A "$M/dns.log")" -eq 1 ]
}
