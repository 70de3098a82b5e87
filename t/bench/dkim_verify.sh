#!/bin/bash
# Benchmark: DKIM verification of one signed 10 KB message (rsa-sha256, 2048-bit key, relaxed/relaxed,
# signed by dkimpy's dkimsign), whole process, against dkimpy's `dkimverify` and OpenDKIM's
# `opendkim-testmsg` in the same hyperfine run. mailstamp runs as `mverify auth` (DKIM, ARC and DMARC:
# the DMARC lookups are answered too; no client is given, so no SPF) and as the plain filter `mverify`
# (sender whitelisted, client 127.0.0.1: SPF, DKIM, DMARC and the whitelist decision, store included).
# The keys come from the tests' own zone server on 127.0.0.1:53, warm (local, answers from memory); the
# two peers use the system resolver, so the script runs in a private mount namespace whose
# /etc/resolv.conf names 127.0.0.1 (needs root and a free port 53; otherwise it says why and does
# nothing). Prints the mean of each and the ratios (mailstamp's mean / the peer's: below 1 is faster);
# asserts nothing but that each verifies the signature. BENCH_RUNS: runs of each (default 100).
set -euo pipefail
if [ -z "${MAILSTAMP_BENCH_NS:-}" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    echo "dkim_verify: not run (needs root and unshare for a private /etc/resolv.conf)"; exit 0
  fi
  if ss -Hlun 'sport = :53' | grep -q . || ss -Hltn 'sport = :53' | grep -q . ; then
    echo "dkim_verify: not run (port 53 is in use here)"; exit 0
  fi
  for p in dkimsign dkimverify opendkim-testmsg hyperfine jq bc; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "dkim_verify: not run ($p missing)"; exit 0; }
  done
  exec env MAILSTAMP_BENCH_NS=1 unshare -m bash "$0" "$@"
fi
source "$(dirname "$0")/lib.bash"
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=${BENCH_RUNS:-100}
export MAILSTAMP_CONFIG=/dev/null MAILSTAMP_DB="$work/store.db"
echo "nameserver 127.0.0.1" >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf
openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
pub=$(openssl rsa -in "$work/key.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
{ printf 'sel._domainkey.bench.example TXT "v=DKIM1; k=rsa; p="'
  for ((i = 0; i < ${#pub}; i += 200)); do printf ' "%s"' "${pub:i:200}"; done
  printf '\n'
  printf 'bench.example TXT "v=spf1 ip4:127.0.0.1 -all"\n'
  printf '_dmarc.bench.example TXT "v=DMARC1; p=reject"\n'
} >"$work/zone"
/usr/bin/python3 "$root/t/dns/zone-server.py" "$work/zone" --port 53 --port-file "$work/port" >"$work/zone.err" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "dkim_verify: the zone server did not start: $(cat "$work/zone.err")"; exit 1; }
{ printf 'From: Alice <alice@bench.example>\r\nTo: bob@ours.example\r\nSubject: benchmark\r\n'
  printf 'Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench@bench.example>\r\n\r\n'
  head -c 7680 /dev/urandom | base64 -w 76 | sed 's/$/\r/'; } >"$work/msg.eml"
dkimsign --hcanon relaxed --bcanon relaxed sel bench.example "$work/key.pem" <"$work/msg.eml" >"$work/signed.eml"
sbin=/usr/sbin/opendkim-testmsg; command -v opendkim-testmsg >/dev/null && sbin=$(command -v opendkim-testmsg)
"$bin/mwhitelist" add alice@bench.example >/dev/null
"$bin/mwhitelist" domain add ours.example >/dev/null
filter=("$bin/mverify" --dns 127.0.0.1:53 --sender alice@bench.example --rcpt bob@ours.example --client-ip 127.0.0.1
  --helo mail.bench.example)
# Each must verify the signature before it is timed.
dkimverify <"$work/signed.eml" >/dev/null || { echo "dkimverify did not verify"; exit 1; }
"$sbin" -C <"$work/signed.eml" || { echo "opendkim-testmsg did not verify"; exit 1; }
# (Whole outputs captured first: grep -q would stop reading early, and pipefail would count the writer's
# SIGPIPE as a failure.)
out=$("$bin/mverify" auth --dns 127.0.0.1:53 <"$work/signed.eml")
grep -q '^dkim=pass' <<<"$out" || { echo "mverify auth did not verify: $out"; exit 1; }
out=$("${filter[@]}" <"$work/signed.eml")
grep -q '^Authentication-Results: .*dkim=pass' <<<"$out" ||
  { echo "mverify (filter) did not verify: $(grep -i '^authentication-results\|^x-mailstamp' <<<"$out")"; exit 1; }
printf 'message %d octets; %d runs each; load average %s\n' "$(wc -c <"$work/signed.eml")" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --warmup 10 --runs "$runs" --export-json "$work/h.json" \
  -n dkimverify "dkimverify <$work/signed.eml" \
  -n opendkim-testmsg "$sbin -C <$work/signed.eml" \
  -n mverify-auth "$bin/mverify auth --dns 127.0.0.1:53 <$work/signed.eml" \
  -n mverify-filter "${filter[*]} <$work/signed.eml" >/dev/null
jq -r '.results[] | "\(.command)\tmean \(.mean*1000*100|round/100) ms  sd \(.stddev*1000*100|round/100) ms  median \(.median*1000*100|round/100) ms"' "$work/h.json"
for ours in mverify-auth mverify-filter; do
  m=$(jq --arg c $ours '.results[] | select(.command==$c) | .mean' "$work/h.json")
  for peer in dkimverify opendkim-testmsg; do
    p=$(jq --arg c $peer '.results[] | select(.command==$c) | .mean' "$work/h.json")
    printf 'ratio %s/%s = %.2f\n' "$ours" "$peer" "$(echo "$m / $p" | bc -l)"
  done
done
