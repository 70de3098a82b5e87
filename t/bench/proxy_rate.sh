#!/bin/bash
# Benchmark: msmtp-proxy's message rate. Postfix's smtp-source (-s 20
# sessions in parallel, one connection a message) sends 1 KB and 100 KB
# messages from a whitelisted sender (a 100,000-entry whitelist) to a
# protected recipient, (a) straight into Postfix's smtp-sink and (b) through
# msmtp-proxy --relay into the same smtp-sink, in turn, BENCH_RUNS times
# (median wall clock). Prints messages/s for both and the ratio proxy/direct
# (target: >= 0.5); asserts no time. Fails only when a step fails or a
# message is lost: the sink must count every message of every run, and the
# proxy log must have one event=delivered a message and no event=deferred.
# BENCH_MESSAGES sets the message count of both sizes (default 5000 for
# 1 KB, 1000 for 100 KB); BENCH_ENTRIES the whitelist size.
source "$(dirname "$0")/lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-5000}
m_large=${BENCH_MESSAGES:-1000}
sender=bench-sender@partner.example rcpt=bob@ours.example

die() { echo "${0##*/}: $*" >&2; exit 1; }
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source_bin=$(command -v smtp-source || echo /usr/sbin/smtp-source)
sink_bin=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
for p in "$source_bin" "$sink_bin"; do [ -x "$p" ] || die "missing peer ${p##*/} (Debian package postfix; make deps)"; done
for p in "$bin/msmtp-proxy" "$bin/mwhitelist"; do [ -x "$p" ] || die "missing $p (make build)"; done
command -v ss >/dev/null || die "missing ss (Debian package iproute2)"

# Free loopback ports, held open together so that they differ.
read -r sink_port proxy_port < <(/usr/bin/python3 -c '
import socket; s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
# Waits until PID listens on PORT; fails with its stderr if it exits first.
wait_listen() {
  local i
  for i in $(seq 200); do
    ss -Hltn "sport = :$2" | grep -q . && return 0
    kill -0 "$1" 2>/dev/null || die "$3 exited: $(cat "$4")"
    sleep 0.05
  done
  die "$3 does not listen on port $2: $(cat "$4")"
}

export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "user%d@host%d.example\n", i, i % 5000 }' >"$work/entries.txt"
echo "$sender" >>"$work/entries.txt"
"$bin/mwhitelist" import <"$work/entries.txt" >/dev/null
"$bin/mwhitelist" domain add ours.example >/dev/null
"$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted"

sink_user=(); [ "$(id -u)" -ne 0 ] || sink_user=(-u root)
"$sink_bin" "${sink_user[@]}" -c "127.0.0.1:$sink_port" 1024 >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!); wait_listen $! "$sink_port" smtp-sink "$work/sink.err"
"$bin/msmtp-proxy" --listen "127.0.0.1:$proxy_port" --relay "127.0.0.1:$sink_port" --hostname mx.ours.example \
  --log "$work/proxy.log" --max-sessions 200 2>"$work/proxy.err" &
proxy_pid=$!; pids+=($proxy_pid); wait_listen $proxy_pid "$proxy_port" msmtp-proxy "$work/proxy.err"

# Messages the sink has taken (its -c counter), and proxy log lines of a kind.
sink_count() { tr '\r' '\n' <"$work/sink.out" | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2 || true; }
log_count() { grep -c "event=$1 " "$work/proxy.log" || true; }
# Waits (a moment at most) until the sink's counter reaches $1.
sink_reaches() {
  local i c
  for i in $(seq 50); do c=$(sink_count); [ "${c:-0}" -ge "$1" ] && return 0; sleep 0.05; done
  return 1
}
# Wall-clock seconds of one smtp-source load: port, message count, length.
load() {
  local s e
  s=$(date +%s.%N)
  "$source_bin" -s 20 -m "$2" -l "$3" -f "$sender" -t "$rcpt" "127.0.0.1:$1" >/dev/null 2>"$work/source.err" ||
    die "smtp-source into port $1 failed: $(cat "$work/source.err")"
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
# One load, checked: where (direct/proxy), port, count, length; prints seconds.
checked_load() {
  local before delivered t
  before=$(sink_count); before=${before:-0}
  delivered=$(log_count delivered)
  t=$(load "$2" "$3" "$4")
  sink_reaches $((before + $3)) || die "$1 run: the sink took $(($(sink_count) - before)) of $3 messages"
  if [ "$1" = proxy ]; then
    [ $(($(log_count delivered) - delivered)) -eq "$3" ] ||
      die "proxy run: $(($(log_count delivered) - delivered)) event=delivered for $3 messages; see $(grep -v 'event=\(connect\|disconnect\|delivered\) ' "$work/proxy.log" | tail -n 5)"
    [ "$(log_count deferred)" -eq 0 ] || die "proxy run: event=deferred: $(grep 'event=deferred ' "$work/proxy.log" | head -n 3)"
  fi
  echo "$t"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

load "$sink_port" 40 1024 >/dev/null    # warm-up: caches, the store's pages
load "$proxy_port" 40 1024 >/dev/null
for size in 1024 102400; do
  [ "$size" -eq 1024 ] && m=$m_small || m=$m_large
  direct=() proxied=()
  for ((r = 0; r < runs; r++)); do
    direct+=("$(checked_load direct "$sink_port" "$m" "$size")")
    proxied+=("$(checked_load proxy "$proxy_port" "$m" "$size")")
  done
  t_direct=$(median "${direct[@]}") t_proxy=$(median "${proxied[@]}")
  printf 'smtp-source -s 20, %d x %d KB, %d-entry whitelist: smtp-sink direct %.0f msg/s (%.2fs), through msmtp-proxy %.0f msg/s (%.2fs) (median of %d runs)\n' \
    "$m" $((size / 1024)) "$n" "$(echo "$m / $t_direct" | bc -l)" "$t_direct" "$(echo "$m / $t_proxy" | bc -l)" "$t_proxy" "$runs"
  printf 'ratio proxy/direct (%d KB) = %.2f (target >= 0.5)\n' $((size / 1024)) "$(echo "$t_direct / $t_proxy" | bc -l)"
done
kill -0 $proxy_pid 2>/dev/null || die "msmtp-proxy died: $(cat "$work/proxy.err")"
printf 'checked: the sink took every message; proxy log: %d event=delivered, %d event=deferred, %d warnings or errors\n' \
  "$(log_count delivered)" "$(log_count deferred)" "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$work/proxy.log" || true)"
