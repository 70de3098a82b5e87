#!/bin/bash
# Benchmark: msmtp-proxy's message rate with its store on PostgreSQL against
# the same with the store on SQLite. Two msmtp-proxy instances relay into one
# Postfix smtp-sink, one on a SQLite store file, one on a database of a
# throwaway PostgreSQL cluster (pg_lib.bash), each store holding the same
# 100,000-entry whitelist with the sender. Postfix's smtp-source (-s 20
# sessions in parallel, one connection a message) sends 1 KB messages from the
# whitelisted sender to a protected recipient through one and then the other,
# the order alternating run by run, BENCH_RUNS times (median wall clock).
# Prints messages/s for both and the ratio PostgreSQL/SQLite (target: >= 0.8);
# asserts no time. Fails only when a step fails or a message is lost: the
# sink must count every message of every run, and each proxy log must have
# one event=delivered a message and no event=deferred.
# BENCH_MESSAGES sets the message count (default 5000); BENCH_ENTRIES the
# whitelist size; BENCH_PG_FSYNC=off a cluster without fsync.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
source "$(dirname "$0")/pg_lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m=${BENCH_MESSAGES:-5000}
size=1024

need_postfix
need_proxy
need_pg
start_pg
pg_uri=$(pg_createdb bench)
read -r sink_port port_sqlite port_pg < <(free_ports 3)
import_whitelist "$n" "$work/store.db"
import_whitelist "$n" "$pg_uri"
for db in "$work/store.db" "$pg_uri"; do
  MAILSTAMP_DB=$db "$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted in $db"
done
start_sink
proxy_name=proxy-sqlite proxy_port=$port_sqlite
MAILSTAMP_DB="$work/store.db" start_proxy 200
pid_sqlite=$proxy_pid
proxy_name=proxy-pg proxy_port=$port_pg
MAILSTAMP_DB=$pg_uri start_proxy 200
pid_pg=$proxy_pid

# One checked load through the proxy named $1 (sqlite or pg); prints seconds.
through() {
  local port
  proxy_name=proxy-$1
  [ "$1" = sqlite ] && port=$port_sqlite || port=$port_pg
  checked_load proxy "$port" "$2" "$size"
}
through sqlite 40 >/dev/null    # warm-up: caches, the stores' pages, the connections
through pg 40 >/dev/null

t_sqlite=() t_pg=()
for ((r = 0; r < runs; r++)); do
  if ((r % 2 == 0)); then
    t_sqlite+=("$(through sqlite "$m")"); t_pg+=("$(through pg "$m")")
  else
    t_pg+=("$(through pg "$m")"); t_sqlite+=("$(through sqlite "$m")")
  fi
done
s=$(median "${t_sqlite[@]}") p=$(median "${t_pg[@]}")
printf 'smtp-source -s 20, %d x %d KB, %d-entry whitelist through msmtp-proxy: store on SQLite %.0f msg/s (%.2fs), on PostgreSQL %.0f msg/s (%.2fs) (fsync=%s; median of %d runs, order alternating)\n' \
  "$m" $((size / 1024)) "$n" "$(echo "$m / $s" | bc -l)" "$s" "$(echo "$m / $p" | bc -l)" "$p" "$pg_fsync" "$runs"
printf 'ratio PostgreSQL/SQLite = %.2f (target >= 0.8)\n' "$(echo "$s / $p" | bc -l)"
for name in sqlite pg; do
  proxy_name=proxy-$name
  [ "$name" = sqlite ] && proxy_pid=$pid_sqlite || proxy_pid=$pid_pg
  proxy_alive
  printf '%s: ' "$name"; print_checked
done
