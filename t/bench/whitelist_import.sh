#!/bin/bash
# Benchmark: import of 1,000,000 whitelist entries by mwhitelist against the
# sqlite3 shell's .import of the same CSV file into an equivalent indexed
# table. Prints the times and the ratio (target: within 2x); asserts nothing.
source "$(dirname "$0")/lib.bash"
n=${BENCH_ENTRIES:-1000000}
csv="$work/entries.csv"
awk -v n="$n" 'BEGIN {
  print "entry,kind,scope,note,source,created,hits,last_hit"
  for (i = 0; i < n; i++)
    printf "user%d@host%d.example,address,,,import,2026-01-01T00:00:00Z,0,\n", i, i % 5000
}' >"$csv"


# The peer: the same columns, the same unique index, WAL, one transaction.
peer() {
  sqlite3 "$work/peer.db" <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE whitelist(entry TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT NOT NULL, note TEXT, source TEXT,
  created TEXT, hits INTEGER, last_hit TEXT, UNIQUE(entry, scope, kind));
.import --csv --skip 1 $csv whitelist
SQL
}
ours() { MAILSTAMP_DB="$work/ours.db" MAILSTAMP_CONFIG=/dev/null "$bin/mwhitelist" import --format csv "$csv"; }

t_peer=$(secs peer)
t_ours=$(secs ours)
rows_peer=$(sqlite3 "$work/peer.db" "select count(*) from whitelist")
rows_ours=$(sqlite3 "$work/ours.db" "select count(*) from whitelist")
printf 'whitelist import of %d entries: sqlite3 .import %.2fs (%s rows), mwhitelist import %.2fs (%s rows)\n' \
  "$n" "$t_peer" "$rows_peer" "$t_ours" "$rows_ours"
printf 'ratio mwhitelist/sqlite3 = %.2f (target <= 2.0)\n' "$(echo "$t_ours / $t_peer" | bc -l)"
