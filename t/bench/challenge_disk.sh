#!/bin/bash
# Benchmark: disk used by 10,000 held messages of mixed sizes (1 KB to
# 100 KB, uniformly), store and hold directory together (du), against the
# messages' own total size. Prints the ratio (target: at most 1.25); asserts
# nothing but that every message was held.
source "$(dirname "$0")/lib.bash"
n=${BENCH_HELD:-10000}
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
"$bin/mwhitelist" domain add ours.example >/dev/null
/usr/bin/python3 - "$work/msgs" "$n" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
random.seed(1)
for i in range(n):
    size = random.randint(1024, 102400)
    head = ("Return-Path: <s%d@stranger.example>\nX-Original-To: bob@ours.example\nFrom: s%d@stranger.example\n"
            "Subject: held %d\nMessage-ID: <%d@x>\n\n" % (i, i, i, i))
    line = "the quick brown fox jumps over the lazy dog %d\n" % i
    body = (line * (size // len(line) + 1))[: max(0, size - len(head))]
    open(os.path.join(d, "%05d.eml" % i), "w").write(head + body)
PY
total=$(cat "$work"/msgs/*.eml | wc -c)
t0=$(date +%s.%N)
for f in "$work"/msgs/*.eml; do
  "$bin/mchallenge" --deliver "maildir:$work/Maildir" --sendmail /bin/true --quota 100 <"$f"
done
t1=$(date +%s.%N)
[ "$("$bin/mchallenge" list | wc -l)" -eq "$n" ]
used=$(du -sb --apparent-size "$work/held" | cut -f1)
disk=$(( $(du -sk "$work/held" | cut -f1) * 1024 + $(du -sk "$work"/store.db* | awk '{ s += $1 } END { print s }') * 1024 ))
printf 'held %d messages (%d octets) in %.1f s (%.1f ms each)\n' "$n" "$total" "$(echo "$t1 - $t0" | bc -l)" \
  "$(echo "($t1 - $t0) * 1000 / $n" | bc -l)"
printf 'disk: hold directory %d KB (apparent %d octets) + store %d KB\n' "$(du -sk "$work/held" | cut -f1)" "$used" \
  "$(du -sk "$work"/store.db* | awk '{ s += $1 } END { print s }')"
printf 'ratio disk/messages = %.3f (target <= 1.25)\n' "$(echo "$disk / $total" | bc -l)"
