#!/bin/bash
# Benchmark: mverify on a stamped 10 KB message with a 100,000-entry
# whitelist (sender not on it, so the stamp decides), whole process, against
# Debian's hashcash checking the same message and recording the spend
# (`hashcash -cX -d -f DB -b 16 -r ADDR`). hyperfine runs each many times:
# mverify sees the same message again (not a double spend), hashcash sees
# its stamp spent after the first run; both do the full check. Prints the
# ratio (target: within 1.5x); asserts nothing.
source "$(dirname "$0")/lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-200}
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "user%d@host%d.example\n", i, i % 5000 }' >"$work/entries.txt"
"$bin/mwhitelist" import "$work/entries.txt" >/dev/null
rcpt=bob@ours.example
{
  printf 'X-Hashcash: %s\n' "$(hashcash -m -q -b 16 "$rcpt")"
  printf 'Return-Path: <stranger@elsewhere.example>\nFrom: stranger@elsewhere.example\nTo: %s\n' "$rcpt"
  printf 'Subject: benchmark\nMessage-ID: <bench@elsewhere.example>\n\n'
  head -c 10240 /dev/urandom | base64 -w 76
} >"$work/msg.eml"
"$bin/mverify" --min-bits 16 --rcpt "$rcpt" <"$work/msg.eml" >"$work/out.eml"
grep -q '^X-Mailstamp-Class: G' "$work/out.eml"   # must pass
hashcash -cX -d -f "$work/hc.db" -b 16 -r "$rcpt" <"$work/msg.eml" >/dev/null   # records the spend
# (hyperfine 1.15 has no --input: the redirection runs in its shell, whose
# start-up time hyperfine measures and subtracts.)
hyperfine -i --warmup 20 --runs "$runs" --export-json "$work/h.json" \
  -n hashcash "hashcash -cX -d -f $work/hc.db -b 16 -r $rcpt <$work/msg.eml" \
  -n mverify "$bin/mverify --min-bits 16 --rcpt $rcpt --log none <$work/msg.eml" >"$work/h.txt"
t_peer=$(jq '.results[] | select(.command=="hashcash") | .mean' "$work/h.json")
t_ours=$(jq '.results[] | select(.command=="mverify") | .mean' "$work/h.json")
printf 'verify a stamped 10 KB message, %d-entry whitelist: hashcash %.2f ms, mverify %.2f ms (mean of %d runs)\n' \
  "$n" "$(echo "$t_peer*1000" | bc -l)" "$(echo "$t_ours*1000" | bc -l)" "$runs"
printf 'ratio mverify/hashcash = %.2f (target <= 1.5)\n' "$(echo "$t_ours / $t_peer" | bc -l)"
