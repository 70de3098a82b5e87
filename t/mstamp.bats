#!/usr/bin/env bats
# mstamp (hashcash postage so far), checked by Debian's hashcash program.

load helpers

setup() {
  common_setup
  mwhitelist import </dev/null >/dev/null  # the store: filters never create one
  printf 'From: me@ours.example\r\nTo: Ann <ann@a.example>, bob@b.example\r\nCc: carol@c.example\r\nBcc: dave@d.example\r\nSubject: hi\r\n\r\nbody\r\n' >"$BATS_TEST_TMPDIR/out.eml"
}

teardown() {
  # a spend server left by a failing test must not outlive it
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi
}

stamps_for() { grep -c "^X-Hashcash: 1:[0-9]*:[0-9]*:$1:" "$2"; }

@test "help and version exit 0; usage errors exit 64" {
  run mstamp --help
  assert_success
  run mstamp --version
  assert_success
  run mstamp --bits 99 <"$BATS_TEST_TMPDIR/out.eml"
  assert_failure 64
  assert_output --partial "bits must be 0 to 40"
  run mstamp --rcpt "not an address" <"$BATS_TEST_TMPDIR/out.eml"
  assert_failure 64
}

@test "one stamp per To, Cc and Bcc recipient, each accepted by hashcash -c" {
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  mstamp --bits 16 <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/stamped.eml"
  for r in ann@a.example bob@b.example carol@c.example dave@d.example; do
    [ "$(stamps_for "$r" "$BATS_TEST_TMPDIR/stamped.eml")" -eq 1 ]
    run hashcash -cXy -b 16 -r "$r" <"$BATS_TEST_TMPDIR/stamped.eml"
    assert_success
  done
  run hashcash -cXy -b 16 -r stranger@x.example <"$BATS_TEST_TMPDIR/stamped.eml"
  assert_failure
  run hashcash -cXy -b 24 -r ann@a.example <"$BATS_TEST_TMPDIR/stamped.eml"
  assert_failure
}

@test "--rcpt replaces the header recipients; stamps use the message's line ending" {
  mstamp --bits 12 --rcpt '<Zed@Z.example>' --rcpt ann@a.example <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/s.eml"
  run grep -c '^X-Hashcash: ' "$BATS_TEST_TMPDIR/s.eml"
  assert_output 2
  [ "$(stamps_for zed@z.example "$BATS_TEST_TMPDIR/s.eml")" -eq 1 ]
  run grep -c $'^X-Hashcash: .*\r$' "$BATS_TEST_TMPDIR/s.eml"
  assert_output 2
}

@test "everything but the added stamps is byte-identical" {
  for f in "$FIX"/message/*.eml; do
    grep -qiE '^(To|Cc|Bcc):' "$f" || continue
    mstamp --bits 8 --rcpt x@y.example <"$f" >"$BATS_TEST_TMPDIR/s.eml"
    grep -v '^X-Hashcash: ' "$BATS_TEST_TMPDIR/s.eml" >"$BATS_TEST_TMPDIR/rest.eml" || true
    if head -c 5 "$f" | grep -q '^From '; then
      # the mbox line stays first, above the stamps
      run head -n 1 "$BATS_TEST_TMPDIR/s.eml"
      assert_output "$(head -n 1 "$f")"
    fi
    run cmp "$f" "$BATS_TEST_TMPDIR/rest.eml"
    assert_success
  done
}

@test "hashcash -m stamps already on the message are kept, not minted again" {
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  s=$(hashcash -m -q -b 12 -u ann@a.example)
  { printf 'X-Hashcash: %s\r\n' "$s"; cat "$BATS_TEST_TMPDIR/out.eml"; } >"$BATS_TEST_TMPDIR/pre.eml"
  mstamp --bits 12 <"$BATS_TEST_TMPDIR/pre.eml" >"$BATS_TEST_TMPDIR/s.eml"
  [ "$(stamps_for ann@a.example "$BATS_TEST_TMPDIR/s.eml")" -eq 1 ]
  run grep -c "$s" "$BATS_TEST_TMPDIR/s.eml"
  assert_output 1
  [ "$(stamps_for bob@b.example "$BATS_TEST_TMPDIR/s.eml")" -eq 1 ]
}

@test "every stamped recipient is whitelisted with source outgoing" {
  mstamp --bits 8 <"$BATS_TEST_TMPDIR/out.eml" >/dev/null
  run mwhitelist export --format csv
  assert_line --partial "ann@a.example,address,,,outgoing,"
  assert_line --partial "dave@d.example,address,,,outgoing,"
  run mwhitelist check carol@c.example
  assert_success
}

@test "no recipients is a bad message (65); a store that fails is 75 with nothing on stdout" {
  printf 'From: me@ours.example\nSubject: nobody\n\nx\n' >"$BATS_TEST_TMPDIR/none.eml"
  run mstamp --bits 8 <"$BATS_TEST_TMPDIR/none.eml"
  assert_failure 65
  mkdir "$BATS_TEST_TMPDIR/dir.db"
  run --separate-stderr mstamp --db "$BATS_TEST_TMPDIR/dir.db" --bits 8 <"$BATS_TEST_TMPDIR/out.eml"
  assert_failure 75
  assert_output ""
  run mstamp --bits 8 </dev/null
  assert_failure 65
}

# book_setup: an authority store, a sender store with an owner key, and a book of $1 stamps imported.
book_setup() {
  A=(--db "$BATS_TEST_TMPDIR/authority.db")
  mstamp "${A[@]}" authority init >/dev/null
  mstamp "${A[@]}" authority pubkey >"$BATS_TEST_TMPDIR/authority.pub"
  owner=$(mstamp book keygen)
  mstamp "${A[@]}" authority issue --owner "$owner" --count "$1" >"$BATS_TEST_TMPDIR/book.cert"
  mstamp book import "$BATS_TEST_TMPDIR/book.cert"
}

@test "--timed: the bits rise with the sender's volume in the window, and hashcash -c accepts the stamps" {
  command -v hashcash >/dev/null || skip "hashcash is not installed"
  printf '[mstamp]\ntimed-base-bits = 8\ntimed-step = 2\ntimed-window = 1h\ntimed-max-bits = 9\n' >"$BATS_TEST_TMPDIR/conf"
  export MAILSTAMP_TEST_NOW=1795000000
  for i in 1 2 3 4 5; do
    mstamp --config "$BATS_TEST_TMPDIR/conf" --timed --rcpt ann@a.example <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/t$i.eml"
  done
  bits() { sed -n 's/^X-Hashcash: 1:\([0-9]*\):.*/\1/p' "$1"; }
  [ "$(bits "$BATS_TEST_TMPDIR/t1.eml")" = 8 ]
  [ "$(bits "$BATS_TEST_TMPDIR/t2.eml")" = 8 ]
  [ "$(bits "$BATS_TEST_TMPDIR/t3.eml")" = 9 ]
  [ "$(bits "$BATS_TEST_TMPDIR/t5.eml")" = 9 ]   # capped by timed-max-bits
  unset MAILSTAMP_TEST_NOW
  run hashcash -cXy -b 8 -r ann@a.example <"$BATS_TEST_TMPDIR/t1.eml"
  assert_success
  # another sender starts at the base again; after the window the volume is forgotten
  export MAILSTAMP_TEST_NOW=1795000000
  mstamp --config "$BATS_TEST_TMPDIR/conf" --timed --sender other@ours.example --rcpt ann@a.example <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/o.eml"
  [ "$(bits "$BATS_TEST_TMPDIR/o.eml")" = 8 ]
  export MAILSTAMP_TEST_NOW=1795003601
  mstamp --config "$BATS_TEST_TMPDIR/conf" --timed --rcpt ann@a.example <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/later.eml"
  [ "$(bits "$BATS_TEST_TMPDIR/later.eml")" = 8 ]
}

@test "stamp books: keygen, issue, import, list, and the balance falls by one per recipient" {
  book_setup 10
  run mstamp book balance
  assert_output 10
  mstamp --paid <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/p.eml" 2>"$BATS_TEST_TMPDIR/err"
  [ "$(grep -c '^Mailstamp-Postage: v=2; ' "$BATS_TEST_TMPDIR/p.eml")" -eq 4 ]
  grep -q '^Message-ID: <' "$BATS_TEST_TMPDIR/p.eml"
  grep -q 'only 6 stamps left' "$BATS_TEST_TMPDIR/err"
  run mstamp book balance
  assert_output 6
  run mstamp book list --json
  [ "$(jq '.[0].used' <<<"$output")" -eq 4 ]
  [ "$(jq '.[0].left' <<<"$output")" -eq 6 ]
  # a second keygen does not silently replace the owner key
  run mstamp book keygen
  assert_failure 64
  # the stamped recipients are whitelisted as for hashcash
  run mwhitelist check dave@d.example
  assert_success
}

@test "an empty book: paid-fallback fail exits 75 with nothing written; timed stamps instead by default" {
  book_setup 2
  run --separate-stderr mstamp --paid <"$BATS_TEST_TMPDIR/out.eml"   # four recipients, two stamps
  assert_success
  [ "$(grep -c '^X-Hashcash: ' <<<"$output")" -eq 4 ]
  [ "$(grep -c '^Mailstamp-Postage: ' <<<"$output" || true)" -eq 0 ]
  run mstamp book balance
  assert_output 2
  printf '[mstamp]\npaid-fallback = fail\n' >"$BATS_TEST_TMPDIR/conf"
  run --separate-stderr mstamp --config "$BATS_TEST_TMPDIR/conf" --paid <"$BATS_TEST_TMPDIR/out.eml"
  assert_failure 75
  assert_output ""
  run --separate-stderr mstamp --config "$BATS_TEST_TMPDIR/conf" --paid --rcpt ann@a.example --bits 8 <"$BATS_TEST_TMPDIR/out.eml"
  assert_success
}

@test "import refuses a book for another owner, a tampered one and an expired one" {
  book_setup 5
  mstamp --db "$BATS_TEST_TMPDIR/other.db" book keygen >"$BATS_TEST_TMPDIR/other.pub"
  mstamp "${A[@]}" authority issue --owner "$(cat "$BATS_TEST_TMPDIR/other.pub")" --count 5 >"$BATS_TEST_TMPDIR/theirs.cert"
  run mstamp book import "$BATS_TEST_TMPDIR/theirs.cert"
  assert_failure 65
  assert_output --partial "not to one of ours"
  sed 's/count=5/count=500/' "$BATS_TEST_TMPDIR/book.cert" >"$BATS_TEST_TMPDIR/tampered.cert"
  run mstamp book import - <"$BATS_TEST_TMPDIR/tampered.cert"
  assert_failure 65
  assert_output --partial "signature does not verify"
  MAILSTAMP_TEST_NOW=1000000000 mstamp "${A[@]}" authority issue --owner "$owner" --count 5 --expires 30d >"$BATS_TEST_TMPDIR/old.cert"
  run mstamp book import "$BATS_TEST_TMPDIR/old.cert"
  assert_failure 65
  assert_output --partial "expired"
  run mstamp book import "$BATS_TEST_TMPDIR/missing.cert"
  assert_failure 66
  run mstamp "${A[@]}" authority issue --owner junk --count 5
  assert_failure 64
  mwhitelist --db "$BATS_TEST_TMPDIR/none.db" import </dev/null >/dev/null
  run mstamp --db "$BATS_TEST_TMPDIR/none.db" authority pubkey
  assert_failure 78
}

@test "signed stamps survive CRLF to LF rewriting: the body hash is the same" {
  book_setup 4
  mstamp --paid --rcpt ann@a.example <"$BATS_TEST_TMPDIR/out.eml" >"$BATS_TEST_TMPDIR/crlf.eml" 2>/dev/null
  tr -d '\r' <"$BATS_TEST_TMPDIR/out.eml" | mstamp --paid --rcpt ann@a.example >"$BATS_TEST_TMPDIR/lf.eml" 2>/dev/null
  h1=$(grep -o 'h=[^;]*' "$BATS_TEST_TMPDIR/crlf.eml")
  h2=$(grep -o 'h=[^;]*' "$BATS_TEST_TMPDIR/lf.eml")
  [ -n "$h1" ] && [ "$h1" = "$h2" ]
  # and the receiver accepts the LF-rewritten copy of the CRLF original
  mwhitelist --db "$BATS_TEST_TMPDIR/r.db" import </dev/null >/dev/null
  tr -d '\r' <"$BATS_TEST_TMPDIR/crlf.eml" | mverify --db "$BATS_TEST_TMPDIR/r.db" --rcpt ann@a.example \
    --authority-key "$BATS_TEST_TMPDIR/authority.pub" >"$BATS_TEST_TMPDIR/v.eml"
  grep -q '^X-Mailstamp-Class: G' "$BATS_TEST_TMPDIR/v.eml"
}

@test "authority serve answers the spend-check protocol on loopback, signed, and only for real stamps" {
  book_setup 10
  printf 'From: a@b.example\r\nTo: ann@a.example\r\nSubject: s\r\nMessage-ID: <1@b.example>\r\n\r\nbody\r\n' |
    mstamp --paid >"$BATS_TEST_TMPDIR/p.eml" 2>/dev/null
  stamp=$(sed -n 's/^Mailstamp-Postage: \(.*\)\r$/\1/p' "$BATS_TEST_TMPDIR/p.eml")
  [ -n "$stamp" ]
  mstamp "${A[@]}" authority serve --listen 127.0.0.1:0 --max-requests 4 \
    2>"$BATS_TEST_TMPDIR/serve.log" &
  pid=$!
  for _ in $(seq 50); do grep -q 'listening on' "$BATS_TEST_TMPDIR/serve.log" && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/serve.log")
  [ -n "$port" ]
  ask() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%s\r\nQUIT\r\n' "$1" >&3
    head -n 1 <&3 | tr -d '\r'
    exec 3<&-
  }
  [[ "$(ask "SPEND 00112233445566778899aabbccddeeff $stamp")" =~ ^250\ fresh\ [A-Za-z0-9+/]{86}==$ ]]
  [[ "$(ask "SPEND ffeeddccbbaa99887766554433221100 $stamp")" =~ ^251\ same\  ]]
  [[ "$(ask 'SPEND book:00ff:1 aaaa 1900000000')" =~ ^530\  ]]
  [ "$(ask "SPEND 00112233445566778899aabbccddeeff ${stamp/; i=0;/; i=1;}")" = "554 bad signature" ]
  timeout 10 tail --pid="$pid" -f /dev/null
  grep -q 'event=spend peer=127.0.0.1' "$BATS_TEST_TMPDIR/serve.log"
}

@test "--banner keeps the message valid MIME (plain, alternative, mixed, base64) and signed stamps cover it" {
  printf 'Join mailstamp: postage for mail.\nhttps://example.org/join\n' >"$BATS_TEST_TMPDIR/banner.txt"
  printf 'From: a@b.example\nTo: ann@a.example\nSubject: plain\n\nHello\n' >"$BATS_TEST_TMPDIR/plain.eml"
  printf 'From: a@b.example\r\nTo: ann@a.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nHi\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n--alt--\r\n' >"$BATS_TEST_TMPDIR/alt.eml"
  cp "$FIX/banner/mixed.eml" "$FIX/banner/base64.eml" "$BATS_TEST_TMPDIR/"
  for m in plain alt mixed base64; do
    mstamp --bits 8 --rcpt ann@a.example --banner "$BATS_TEST_TMPDIR/banner.txt" <"$BATS_TEST_TMPDIR/$m.eml" >"$BATS_TEST_TMPDIR/$m.out"
    # Python's email parser: no defects, and the banner is in exactly one text part (or the plain body).
    run /usr/bin/python3 -c '
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
defects = list(m.defects) + [d for p in m.walk() for d in p.defects]
hits = sum(1 for p in m.walk() if not p.is_multipart() and p.get_content_type() == "text/plain"
           and "Join mailstamp" in p.get_content())
print(len(defects), hits)
' "$BATS_TEST_TMPDIR/$m.out"
    assert_output "0 1"
  done
  # the base64 text part is decoded, given the banner and encoded again
  run /usr/bin/python3 -c '
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
print([p.get_payload(decode=True) for p in m.walk() if p.get("Content-Transfer-Encoding") == "base64"][0])
' "$BATS_TEST_TMPDIR/base64.out"
  assert_output "b'Hello world\\n\\nJoin mailstamp: postage for mail.\\nhttps://example.org/join\\n'"
  # with --paid the stamp covers the banner: the receiver accepts it
  book_setup 3
  mstamp --paid --rcpt ann@a.example --banner "$BATS_TEST_TMPDIR/banner.txt" <"$BATS_TEST_TMPDIR/alt.eml" >"$BATS_TEST_TMPDIR/paid.out" 2>/dev/null
  mwhitelist --db "$BATS_TEST_TMPDIR/r.db" import </dev/null >/dev/null
  mverify --db "$BATS_TEST_TMPDIR/r.db" --rcpt ann@a.example --authority-key "$BATS_TEST_TMPDIR/authority.pub" \
    <"$BATS_TEST_TMPDIR/paid.out" | grep -q '^X-Mailstamp-Class: G'
  run mstamp --banner "$BATS_TEST_TMPDIR/missing.txt" <"$BATS_TEST_TMPDIR/plain.eml"
  assert_failure 66
}

@test "--banner survives a Content-Type whose comment ends in a lone backslash (fuzz crash)" {
  # found by banner_fuzz: the comment skipper stepped past the end of the value
  # and std::out_of_range killed mstamp; the message must come out whole.
  printf 'Join mailstamp\n' >"$BATS_TEST_TMPDIR/banner.txt"
  printf 'From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=(comment\\\n\n--x\nhello there\n' \
    >"$BATS_TEST_TMPDIR/odd.eml"
  run mstamp --bits 8 --rcpt ann@a.example --banner "$BATS_TEST_TMPDIR/banner.txt" <"$BATS_TEST_TMPDIR/odd.eml"
  assert_success
  assert_output --partial 'hello there'
  assert_output --partial 'X-Hashcash: '
}
