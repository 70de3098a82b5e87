#!/bin/bash
# Benchmark: start-up cost of linking OpenSSL, SQLite and libstdc++
# statically (MAILSTAMP_STATIC_DEPS=ON) or dynamically (the default), in one
# hyperfine run: `mverify --version`, then the stamped 10 KB message and
# 100,000-entry whitelist of t/bench/verify.sh, against Debian's hashcash.
# Usage: verify_static_dynamic.sh STATIC_BUILD_DIR DYNAMIC_BUILD_DIR
# (configure the first with -DMAILSTAMP_STATIC_DEPS=ON). Prints CPU time,
# mean and median per command and each ratio to hashcash; asserts nothing.
set -euo pipefail
if [ $# -ne 2 ]; then
  # `make bench` runs every script here without arguments: say why this one does nothing.
  echo "verify_static_dynamic: not run (usage: $0 STATIC_BUILD_DIR DYNAMIC_BUILD_DIR)"
  exit 0
fi
S=$1 D=$2
runs=${BENCH_RUNS:-200}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "user%d@host%d.example\n", i, i % 5000 }' >"$work/entries.txt"
"$D/mwhitelist" import "$work/entries.txt" >/dev/null
rcpt=bob@ours.example
{ printf 'X-Hashcash: %s\n' "$(hashcash -m -q -b 16 "$rcpt")"
  printf 'Return-Path: <stranger@elsewhere.example>\nFrom: stranger@elsewhere.example\nTo: %s\n' "$rcpt"
  printf 'Subject: benchmark\nMessage-ID: <bench@elsewhere.example>\n\n'
  head -c 10240 /dev/urandom | base64 -w 76; } >"$work/msg.eml"
for b in "$S" "$D"; do "$b/mverify" --min-bits 16 --rcpt "$rcpt" <"$work/msg.eml" | grep '^X-Mailstamp-Class: G' >/dev/null; done
hashcash -cX -d -f "$work/hc.db" -b 16 -r "$rcpt" <"$work/msg.eml" >/dev/null
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/v.json" \
  -n "mverify-static --version" "$S/mverify --version" \
  -n "mverify-dynamic --version" "$D/mverify --version" >/dev/null
hyperfine -i --warmup 20 --runs "$runs" --export-json "$work/h.json" \
  -n hashcash "hashcash -cX -d -f $work/hc.db -b 16 -r $rcpt <$work/msg.eml" \
  -n mverify-static "$S/mverify --min-bits 16 --rcpt $rcpt --log none <$work/msg.eml" \
  -n mverify-dynamic "$D/mverify --min-bits 16 --rcpt $rcpt --log none <$work/msg.eml" >/dev/null
for j in v h; do jq -r '.results[] | "\(.command)\t cpu(user+sys) \(((.user+.system)*1000*100)|round/100) ms  mean \(.mean*1000*100|round/100) ms  sd \(.stddev*1000*100|round/100) ms  median \(.median*1000*100|round/100) ms"' "$work/$j.json"; done
hc=$(jq '.results[] | select(.command=="hashcash") | .mean' "$work/h.json")
for c in mverify-static mverify-dynamic; do
  m=$(jq --arg c $c '.results[] | select(.command==$c) | .mean' "$work/h.json")
  printf 'ratio %s/hashcash = %.2f\n' "$c" "$(echo "$m / $hc" | bc -l)"
done
