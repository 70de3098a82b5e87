#!/bin/bash
# Benchmark: hashcash minting, mstamp against Debian's `hashcash -m` at the
# same bits, stamps per second over enough stamps to average out luck.
# Prints the ratio (target: at least 4x); asserts nothing.
source "$(dirname "$0")/lib.bash"
bits=${BENCH_BITS:-20}
n=${BENCH_STAMPS:-100}
rcpts=()
for i in $(seq 1 "$n"); do rcpts+=(--rcpt "r$i@example.org"); done
printf 'From: me@example.org\nSubject: bench\n\nx\n' >"$work/m.eml"
MAILSTAMP_DB="$work/s.db" MAILSTAMP_CONFIG=/dev/null "$bin/mwhitelist" import </dev/null >/dev/null  # the store: filters never create one
peer() { for i in $(seq 1 "$n"); do hashcash -m -q -b "$bits" "r$i@example.org"; done; }
ours() { MAILSTAMP_DB="$work/s.db" MAILSTAMP_CONFIG=/dev/null "$bin/mstamp" --bits "$bits" "${rcpts[@]}" <"$work/m.eml"; }
t_peer=$(secs peer)
t_ours=$(secs ours)
printf 'hashcash %d stamps at %d bits: hashcash -m %.2fs (%.1f/s), mstamp %.2fs (%.1f/s), %s cores, SHA-NI %s\n' \
  "$n" "$bits" "$t_peer" "$(echo "$n / $t_peer" | bc -l)" "$t_ours" "$(echo "$n / $t_ours" | bc -l)" \
  "$(nproc)" "$(grep -q sha_ni /proc/cpuinfo && echo yes || echo no)"
printf 'ratio mstamp/hashcash (stamps per second) = %.2f (target >= 4.0)\n' "$(echo "$t_peer / $t_ours" | bc -l)"
