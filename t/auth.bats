#!/usr/bin/env bats
# mverify auth: the SPF, DKIM, DMARC and ARC results of a message, end to end
# against a DNS server of the test's own (t/dns/zone-server.py on loopback),
# and the RFC 8601 text checked by a peer parser (Debian's python3-authres).

load helpers

PY=/usr/bin/python3

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  ZONE="$M/zone"
  cat >"$ZONE" <<'EOF'
good.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.good.example TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@good.example"
mail.good.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
strict.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
mail.strict.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.strict.example TXT "v=DMARC1; p=quarantine; aspf=s; pct=50"
evil.example TXT "v=spf1 ip4:203.0.113.0/24 -all"
nodmarc.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
slow.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.slow.example TIMEOUT
two.example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.two.example TXT "v=DMARC1; p=reject"
_dmarc.two.example TXT "v=DMARC1; p=none"
EOF
  "$PY" "$MAILSTAMP_SRC/t/dns/zone-server.py" "$ZONE" --port-file "$M/port" --log "$M/queries" 3>&- &
  ZPID=$!
  local i
  for i in $(seq 100); do [ -s "$M/port" ] && break; sleep 0.05; done
  DNS="127.0.0.1:$(cat "$M/port")"
}

teardown() {
  kill "$ZPID" 2>/dev/null || true
  wait "$ZPID" 2>/dev/null || true
}

# msg FILE FROM [EXTRA-FIELD]: a small message.
msg() {
  printf '%sFrom: %s\r\nTo: bob@ours.example\r\nSubject: hi\r\nMessage-ID: <m1@x.example>\r\n\r\nhello\r\n' \
    "${3:+$3$'\r\n'}" "$2" >"$1"
}

# auth ARGS...: mverify auth against the zone server, the message on stdin.
auth() { mverify auth --dns "$DNS" "$@"; }

# authres_check OUTPUT: every line parses with python3-authres as a resinfo, with the same method and result.
authres_check() {
  "$PY" - "$1" <<'EOF'
import sys, authres
lines = [l for l in sys.argv[1].splitlines() if l.strip()]
field = "Authentication-Results: test.example; " + ";\n ".join(lines)
h = authres.AuthenticationResultsHeader.parse(field)
assert h.authserv_id == "test.example", h.authserv_id
assert len(h.results) == len(lines), (len(h.results), lines)
for l, r in zip(lines, h.results):
    method, result = l.split(" ")[0].split("=")
    assert (r.method, r.result) == (method, result), (l, r.method, r.result)
    props = {p.type + "." + p.name: p.value for p in r.properties}
    for key in ("header.from", "smtp.mailfrom", "smtp.helo", "header.d", "header.s"):
        if key + "=" in l:
            assert props.get(key) == l.split(key + "=")[1].split()[0].strip('"'), (l, props)
print("authres ok", len(lines))
EOF
}

@test "auth: help, and usage errors exit 64" {
  run mverify auth --help
  assert_success
  assert_output --partial "--trusted-relay"
  msg "$M/m.eml" a@good.example
  run mverify auth --ip not-an-ip <"$M/m.eml"
  assert_failure 64
  assert_output --partial "--ip"
  run mverify auth --ip 192.0.2.1 --sender "<<bad" <"$M/m.eml"
  assert_failure 64
}

@test "auth: DMARC none and temperror, whatever SPF says, as python3-authres reads them" {
  msg "$M/m.eml" a@nodmarc.example
  run auth --ip 192.0.2.5 --helo mail.nodmarc.example --sender a@nodmarc.example <"$M/m.eml"
  assert_success
  assert_line "dmarc=none (no DMARC record) header.from=nodmarc.example"
  assert_line "dkim=none (no signatures)"
  assert_line "arc=none"
  run authres_check "$output"
  assert_success
  # Discovery asked the From domain, then (nodmarc.example is its own org domain) nothing more.
  grep -qx "_dmarc.nodmarc.example TXT" "$M/queries"

  msg "$M/s.eml" a@news.slow.example
  run auth --ip 192.0.2.5 --sender a@slow.example <"$M/s.eml"
  assert_success
  assert_line --regexp '^dmarc=temperror .*header.from=news.slow.example$'
  # The subdomain first, then the organizational domain, which timed out.
  grep -qx "_dmarc.news.slow.example TXT" "$M/queries"
  grep -qx "_dmarc.slow.example TXT" "$M/queries"

  msg "$M/t.eml" a@two.example
  run auth --ip 192.0.2.5 --sender a@two.example <"$M/t.eml"
  assert_line "dmarc=none (several DMARC records at _dmarc.two.example) header.from=two.example"
}

@test "auth: SPF pass aligns DMARC (relaxed), and python3-authres reads every line" {
  msg "$M/m.eml" "Alice <alice@good.example>"
  run auth --ip 192.0.2.5 --helo mail.good.example --sender bounce@mail.good.example <"$M/m.eml"
  assert_success
  assert_line --regexp '^spf=pass .*smtp.mailfrom=bounce@mail.good.example$'
  assert_line --regexp '^spf=pass .*smtp.helo=mail.good.example$'
  assert_line "dmarc=pass (p=reject) header.from=good.example"
  run authres_check "$output"
  assert_success
  assert_output "authres ok 5"
}

@test "auth: the forger of a whitelisted From passes SPF for its own domain and fails DMARC" {
  msg "$M/m.eml" "Friend <friend@good.example>"
  run auth --ip 203.0.113.7 --helo mx.evil.example --sender spammer@evil.example <"$M/m.eml"
  assert_success
  assert_line --regexp '^spf=pass .*smtp.mailfrom=spammer@evil.example$'
  assert_line "dmarc=fail (p=reject, no aligned SPF or DKIM pass) header.from=good.example"
  # The same sender from an address outside good.example's SPF: SPF fails, DMARC too.
  run auth --ip 203.0.113.7 --helo mx.evil.example --sender friend@good.example <"$M/m.eml"
  assert_line --regexp '^spf=fail .*smtp.mailfrom=friend@good.example$'
  assert_line --regexp '^dmarc=fail '
  # A subdomain of good.example: sp= applies.
  msg "$M/n.eml" "News <news@news.good.example>"
  run auth --ip 203.0.113.7 --sender spammer@evil.example <"$M/n.eml"
  assert_line "dmarc=fail (p=quarantine, no aligned SPF or DKIM pass) header.from=news.good.example"
}

@test "auth: strict SPF alignment, pct shown" {
  msg "$M/m.eml" a@strict.example
  run auth --ip 192.0.2.5 --sender bounce@mail.strict.example <"$M/m.eml"
  assert_line --regexp '^spf=pass '
  assert_line "dmarc=fail (p=quarantine pct=50, no aligned SPF or DKIM pass) header.from=strict.example"
  run auth --ip 192.0.2.5 --sender bounce@strict.example <"$M/m.eml"
  assert_line "dmarc=pass (p=quarantine pct=50) header.from=strict.example"
}

@test "auth: without --ip the client comes from the Received field, trusted relays walked" {
  local recv=$'Received: from mail.good.example (mail.good.example [192.0.2.5])\r\n\tby mx.ours.example (Postfix) with ESMTP id 1; Sat, 5 Dec 2026 10:00:00 +0000'
  msg "$M/m.eml" a@good.example "$recv"
  run auth --sender a@good.example <"$M/m.eml"
  assert_line --regexp '^spf=pass .*smtp.mailfrom=a@good.example$'
  assert_line --regexp '^spf=pass .*smtp.helo=mail.good.example$'
  # An internal hop on top: only when it is a trusted relay is the field below believed.
  local hop=$'Received: from mx1.ours.example (mx1.ours.example [10.9.8.7])\r\n\tby box.ours.example (Postfix) with ESMTP id 2; Sat, 5 Dec 2026 10:00:01 +0000'
  { printf '%s\r\n' "$hop"; cat "$M/m.eml"; } >"$M/h.eml"
  run auth --sender a@good.example <"$M/h.eml"
  assert_line --regexp '^spf=fail .*smtp.mailfrom=a@good.example$'
  run auth --sender a@good.example --trusted-relay 10.0.0.0/8 <"$M/h.eml"
  assert_line --regexp '^spf=pass .*smtp.mailfrom=a@good.example$'
}

@test "auth: a trusted upstream's Authentication-Results are taken when no client is known" {
  local ar='Authentication-Results: mx.ours.example; spf=pass smtp.mailfrom=a@good.example; dmarc=pass (p=reject dis=none) header.from=good.example'
  msg "$M/m.eml" a@good.example "$ar"
  run auth --sender a@good.example --trusted-authserv-id mx.ours.example <"$M/m.eml"
  assert_success
  assert_line "spf=pass smtp.mailfrom=a@good.example"
  assert_line "dmarc=pass (p=reject) header.from=good.example"
  # An id that is not trusted: checked here, no SPF without a client, DMARC fails (DKIM none).
  run auth --sender a@good.example --trusted-authserv-id other.example <"$M/m.eml"
  assert_success
  refute_line --regexp '^spf='
  assert_line "dmarc=fail (p=reject, no aligned SPF or DKIM pass) header.from=good.example"
}

@test "auth: a DKIM signature by dkimpy aligns DMARC without SPF" {
  openssl genrsa -out "$M/key.pem" 2048 2>/dev/null
  local p
  p=$(openssl rsa -in "$M/key.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
  printf 'sel._domainkey.good.example TXT "v=DKIM1; k=rsa; p=%s" "%s"\n' "${p:0:200}" "${p:200}" >>"$ZONE"
  msg "$M/m.eml" a@good.example
  "$PY" -c '
import sys, dkim
m = open(sys.argv[1], "rb").read()
sig = dkim.sign(m, b"sel", b"good.example", open(sys.argv[2], "rb").read(), include_headers=[b"from", b"to", b"subject"])
open(sys.argv[1], "wb").write(sig + m)' "$M/m.eml" "$M/key.pem"
  run auth --ip 203.0.113.7 --sender spammer@evil.example <"$M/m.eml"
  assert_success
  assert_line --regexp '^dkim=pass header.d=good.example header.s=sel header.b=.* header.a=rsa-sha256$'
  assert_line "dmarc=pass (p=reject) header.from=good.example"
  run authres_check "$output"
  assert_success
  # Tampered: the signature fails, DMARC too.
  sed -i 's/^hello/HELLO/' "$M/m.eml"
  run auth --ip 203.0.113.7 --sender spammer@evil.example <"$M/m.eml"
  assert_line --regexp '^dkim=fail '
  assert_line --regexp '^dmarc=fail '
}
