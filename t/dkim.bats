#!/usr/bin/env bats
# The DKIM/ARC differential against dkimpy (python3-dkim) on a corpus signed by dkimpy and opendkim
# (t/dkim/gen.py), keys served by t/dns/zone-server.py on loopback and read by mailstamp through its resolver
# (t/tools/dkimcheck --dns). Every signature's result must equal dkimpy's, or the difference be listed in
# t/dkim/known-differences with the RFC section that decides it.
load helpers

setup() {
  common_setup
  DKIMCHECK="$MAILSTAMP_BIN/t/dkimcheck"
  CASES="$BATS_TEST_TMPDIR/cases"
}

teardown() {
  [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null || true
}

start_zone_server() {
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dns/zone-server.py" "$CASES/zone" --port-file "$BATS_TEST_TMPDIR/port" \
    --log "$BATS_TEST_TMPDIR/queries" >"$BATS_TEST_TMPDIR/zone-server.log" 2>&1 &
  ZPID=$!
  local i
  for i in $(seq 100); do
    [ -s "$BATS_TEST_TMPDIR/port" ] && break
    sleep 0.05
  done
  PORT=$(cat "$BATS_TEST_TMPDIR/port")
  [ -n "$PORT" ]
}

# The resolver: the real one (io/dns) against the zone server.
pick_resolver() {
  start_zone_server
  args=(--dns "127.0.0.1:$PORT")
}

@test "dkim: differential against dkimpy, signed by dkimpy and opendkim, tampered" {
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dkim/gen.py" "$CASES"
  pick_resolver
  run /usr/bin/python3 "$MAILSTAMP_SRC/t/dkim/diff.py" "$CASES" "$MAILSTAMP_SRC/t/dkim/known-differences" \
    "$DKIMCHECK" "${args[@]}"
  echo "$output" | grep -v '^listed' >&3 || true
  echo "$output" | grep -c '^listed' | sed 's/^/# listed signatures: /' >&3
  assert_success
  # the tally: at least 100 cases, every signature compared, nothing unexplained
  tally=$(echo "$output" | tail -1)
  [[ "$tally" =~ ^cases\ ([0-9]+)\ signatures\ ([0-9]+)\ equal\ ([0-9]+)\ listed\ ([0-9]+)\ arc\ ([0-9]+)\ different\ 0$ ]]
  [ "${BASH_REMATCH[1]}" -ge 100 ]
  [ "${BASH_REMATCH[5]}" -ge 6 ]
  [ $((BASH_REMATCH[3] + BASH_REMATCH[4])) -eq "${BASH_REMATCH[2]}" ]
}

@test "dkim: the differential catches a difference (a tampered verdict is reported)" {
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dkim/gen.py" "$CASES"
  # a checker that claims pass for everything must be caught
  pick_resolver
  fake="$BATS_TEST_TMPDIR/fakecheck"
  printf '#!/bin/sh\n"%s" "$@" | sed "s/^dkim \\([0-9]*\\) [a-z]*/dkim \\1 pass/"\n' "$DKIMCHECK" >"$fake"
  chmod +x "$fake"
  run /usr/bin/python3 "$MAILSTAMP_SRC/t/dkim/diff.py" "$CASES" "$MAILSTAMP_SRC/t/dkim/known-differences" \
    "$fake" "${args[@]}"
  assert_failure
  assert_output --partial "DIFFERENT b0/rsa-rr/body sig 0"
}

@test "dkim: keys come from DNS: a SERVFAIL is temperror, a missing record permerror" {
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dkim/gen.py" "$CASES" >/dev/null
  pick_resolver
  tf=$(/usr/bin/python3 -c 'import json,sys; print([c["file"] for c in json.load(open(sys.argv[1])) if c["name"]=="b0/tempfail/none"][0])' "$CASES/cases.json")
  nk=$(/usr/bin/python3 -c 'import json,sys; print([c["file"] for c in json.load(open(sys.argv[1])) if c["name"]=="b0/nokey/none"][0])' "$CASES/cases.json")
  ok=$(/usr/bin/python3 -c 'import json,sys; print([c["file"] for c in json.load(open(sys.argv[1])) if c["name"]=="b0/rsa-rr/none"][0])' "$CASES/cases.json")
  run "$DKIMCHECK" "${args[@]}" <"$CASES/$tf"
  assert_success
  assert_line --partial "dkim 1 temperror d=example.org s=tempfail"
  run "$DKIMCHECK" "${args[@]}" <"$CASES/$nk"
  assert_line --partial "dkim 1 permerror d=example.org s=nokey"
  run "$DKIMCHECK" "${args[@]}" <"$CASES/$ok"
  assert_line "dkim 1 pass d=example.org s=sel1 a=rsa-sha256 testing=0 reason="
  assert_line "arc none i=0 sealer= reason="
  if [ "${args[0]}" = --dns ]; then
    grep -qi 'sel1._domainkey.example.org' "$BATS_TEST_TMPDIR/queries"
  fi
}
