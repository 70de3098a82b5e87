#!/usr/bin/env bats
# mverify spf (RFC 7208) against a DNS server of the test's own on loopback
# (t/dns/zone-server.py): the output and exit codes of the command, a
# timeout giving temperror, and the differential test against pyspf
# (t/spf/cases.py: every mechanism, macro, limit and error).

load helpers

setup() {
  common_setup
  export MAILSTAMP_CONFIG=/dev/null
  M="$BATS_TEST_TMPDIR"
  ZONE="$M/zone"
  cat >"$ZONE" <<'EOF'
ok.test TXT "v=spf1 ip4:192.0.2.0/24 -all exp=why.ok.test"
why.ok.test TXT "%{i} is not allowed to send for %{d}"
soft.test TXT "v=spf1 ~all"
bad.test TXT "v=spf1 ip4:192.0.2.0/24 bogus -all"
slow.test TXT TIMEOUT
broken.test TXT SERVFAIL
helo.test TXT "v=spf1 a -all"
helo.test A 192.0.2.44
EOF
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dns/zone-server.py" "$ZONE" --port-file "$M/port" 2>"$M/server.err" &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$M/port" ] && break; sleep 0.05; done
  PORT=$(cat "$M/port")
  DNS="127.0.0.1:$PORT"
}

teardown() {
  [ -z "${SERVER:-}" ] || kill "$SERVER" 2>/dev/null || true
}

@test "spf: pass, fail with the exp= explanation on the second line, softfail; exit 0" {
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@ok.test --dns "$DNS"
  assert_success
  assert_output "pass"
  run mverify spf --ip 198.51.100.7 --helo mail.example.org --sender user@ok.test --dns "$DNS"
  assert_success
  assert_line --index 0 "fail"
  assert_line --index 1 "198.51.100.7 is not allowed to send for ok.test"
  run mverify spf --ip 2001:db8::1 --helo mail.example.org --sender user@soft.test --dns "$DNS"
  assert_success
  assert_output "softfail"
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@nothing.test --dns "$DNS"
  assert_success
  assert_output "none"
}

@test "spf: permerror names the problem; the null sender checks postmaster@HELO" {
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@bad.test --dns "$DNS"
  assert_success
  assert_line --index 0 "permerror"
  assert_line --index 1 --partial "bogus"
  run mverify spf --ip 192.0.2.44 --helo helo.test --sender '' --dns "$DNS"
  assert_success
  assert_output "pass"
  run mverify spf --ip 192.0.2.45 --helo helo.test --sender '<>' --dns "$DNS"
  assert_success
  assert_output "fail"
}

@test "spf: a DNS timeout or SERVFAIL is temperror" {
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@slow.test --dns "$DNS"
  assert_success
  assert_line --index 0 "temperror"
  assert_line --index 1 --partial "slow.test"
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@broken.test --dns "$DNS"
  assert_success
  assert_line --index 0 "temperror"
}

@test "spf: usage errors exit 64 with one line" {
  run mverify spf --helo mail.example.org --sender user@ok.test --dns "$DNS"
  assert_failure 64
  [ "${#lines[@]}" -eq 1 ]
  run mverify spf --ip not-an-ip --helo mail.example.org --sender user@ok.test --dns "$DNS"
  assert_failure 64
  [ "${#lines[@]}" -eq 1 ]
  assert_output --partial "--ip"
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@ok.test --dns "not a server"
  assert_failure 64
  [ "${#lines[@]}" -eq 1 ]
  assert_output --partial "--dns"
  run mverify spf --ip 192.0.2.3 --helo mail.example.org --sender user@ok.test --bogus
  assert_failure 64
  [ "${#lines[@]}" -eq 1 ]
}

@test "spf: differential test against pyspf (t/spf/cases.py)" {
  run /usr/bin/python3 "$MAILSTAMP_SRC/t/spf/cases.py" --mverify "$MAILSTAMP_BIN/mverify" --workdir "$M/diff"
  # The tally and every listed difference, in the test's output.
  printf '%s\n' "$output" | sed 's/^/# /' >&3
  assert_success
  assert_line --regexp '^cases [0-9]+, equal [0-9]+, listed differences [0-9]+, unlisted differences 0$'
  n=$(printf '%s\n' "$output" | sed -n 's/^cases \([0-9]*\),.*/\1/p')
  [ "$n" -ge 200 ]
}
