#!/bin/bash
# Benchmark: mchallenge over a queue of 100,000 held messages, whole process:
# `mchallenge list --json` against the sqlite3 shell printing the same rows
# as JSON, and `mchallenge release ID` of one message against the sqlite3
# shell making the same state change. The queue is one real held message
# plus rows added with SQL (holding 100,000 messages one process at a time
# would take the benchmark's whole budget). Prints the ratios (target:
# within 2x); asserts nothing.
source "$(dirname "$0")/lib.bash"
n=${BENCH_HELD:-100000}
runs=${BENCH_RUNS:-20}
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
db="$work/store.db"
"$bin/mwhitelist" domain add ours.example >/dev/null
mkmsg() { printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\nFrom: %s\nSubject: bench %s\nMessage-ID: <%s@x>\n\nbody\n' "$1" "$1" "$2" "$2"; }
mkmsg first@stranger.example 0 | "$bin/mchallenge" --deliver "maildir:$work/Maildir" --sendmail /bin/true
sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $n - 1)
  INSERT INTO held SELECT printf('%016x', i), 'pending', 'sender' || i || '@stranger.example', 'bob@ours.example',
  'bench ' || i, '<' || i || '@x>', 'k' || i, '$work/held/none', 1000, 1700000000 + i, 1800000000, 'c' || i,
  'b' || i, 1700000000 + i, 1700000000 + i, '', '' FROM n;"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM held')" -eq "$n" ]
q="SELECT id,state,sender,rcpts,subject,message_id,size,received,expires,challenged,note,parent FROM held
   WHERE state IN ('held','pending','quiet','releasing','deletable','match') ORDER BY received, id;"
[ "$("$bin/mchallenge" list --json | jq length)" -eq "$n" ]
hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/l.json" \
  -n sqlite3 "sqlite3 -json $db \"$q\"" \
  -n mchallenge "$bin/mchallenge list --json" >"$work/l.txt"
# release: each run releases a different synthetic row (delivered into a Maildir from a real file).
cp "$(sqlite3 "$db" "SELECT path FROM held WHERE sender='first@stranger.example'")" "$work/one.eml"
sqlite3 "$db" "UPDATE held SET path='$work/one.eml.' || id"
ids=$(sqlite3 "$db" "SELECT id FROM held WHERE sender != 'first@stranger.example' ORDER BY id LIMIT $((runs * 2))")
for id in $(head -n "$runs" <<<"$ids"); do cp "$work/one.eml" "$work/one.eml.$id"; done
t0=$(date +%s.%N)
for id in $(head -n "$runs" <<<"$ids"); do
  "$bin/mchallenge" --deliver "maildir:$work/Maildir" release "$id" >/dev/null
done
t1=$(date +%s.%N)
for id in $(tail -n +$((runs + 1)) <<<"$ids" | head -n "$runs"); do
  sqlite3 "$db" "UPDATE held SET state='releasing' WHERE id='$id' AND state='pending'; UPDATE held SET state='ended' WHERE id='$id';" >/dev/null
done
t2=$(date +%s.%N)
[ "$(find "$work/Maildir/new" -type f | wc -l)" -eq "$runs" ]
t_peer=$(jq '.results[] | select(.command=="sqlite3") | .mean' "$work/l.json")
t_ours=$(jq '.results[] | select(.command=="mchallenge") | .mean' "$work/l.json")
printf 'list --json of %d held messages: sqlite3 -json %.1f ms, mchallenge %.1f ms (mean of %d runs)\n' \
  "$n" "$(echo "$t_peer*1000" | bc -l)" "$(echo "$t_ours*1000" | bc -l)" "$runs"
printf 'ratio mchallenge/sqlite3 (list) = %.2f (target <= 2)\n' "$(echo "$t_ours / $t_peer" | bc -l)"
r_ours=$(echo "($t1 - $t0) / $runs" | bc -l) r_peer=$(echo "($t2 - $t1) / $runs" | bc -l)
printf 'release of one message: sqlite3 %.2f ms, mchallenge %.2f ms (mean of %d runs)\n' \
  "$(echo "$r_peer*1000" | bc -l)" "$(echo "$r_ours*1000" | bc -l)" "$runs"
printf 'ratio mchallenge/sqlite3 (release) = %.2f (target <= 2)\n' "$(echo "$r_ours / $r_peer" | bc -l)"
