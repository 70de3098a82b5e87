#!/bin/bash
# Benchmark: `mwhitelist check` on a 1,000,000-entry store, whole process,
# against the sqlite3 shell answering the same indexed lookup. Uses hyperfine
# for repeated runs. Prints the ratio (target: within 1.5x); asserts nothing.
source "$(dirname "$0")/lib.bash"
n=${BENCH_ENTRIES:-1000000}
runs=${BENCH_RUNS:-200}
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "user%d@host%d.example\n", i, i % 5000 }' >"$work/entries.txt"
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
"$bin/mwhitelist" import "$work/entries.txt" >/dev/null
db="$work/store.db"
i=$((n * 7 / 9)); probe="user$i@host$((i % 5000)).example"
"$bin/mwhitelist" check "$probe" >/dev/null   # must be a hit
# The peer answers the same question with the same index: is this address listed?
q="SELECT value,kind,scope FROM whitelist WHERE value='$probe' AND scope='';"
[ -n "$(sqlite3 "$db" "$q")" ]
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/h.json" \
  -n sqlite3 "sqlite3 $db \"$q\"" \
  -n mwhitelist "$bin/mwhitelist check $probe" >"$work/h.txt"
t_peer=$(jq '.results[] | select(.command=="sqlite3") | .mean' "$work/h.json")
t_ours=$(jq '.results[] | select(.command=="mwhitelist") | .mean' "$work/h.json")
printf 'whitelist check on %d entries: sqlite3 %.2f ms, mwhitelist %.2f ms (mean of %d runs)\n' \
  "$n" "$(echo "$t_peer*1000" | bc -l)" "$(echo "$t_ours*1000" | bc -l)" "$runs"
printf 'ratio mwhitelist/sqlite3 = %.2f (target <= 1.5)\n' "$(echo "$t_ours / $t_peer" | bc -l)"
