#!/usr/bin/env bats
# mstamp (hashcash postage so far), checked by Debian's hashcash program.

load helpers

setup() {
  common_setup
  printf 'From: me@ours.example\r\nTo: Ann <ann@a.example>, bob@b.example\r\nCc: carol@c.example\r\nBcc: dave@d.example\r\nSubject: hi\r\n\r\nbody\r\n' >"$BATS_TEST_TMPDIR/out.eml"
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
