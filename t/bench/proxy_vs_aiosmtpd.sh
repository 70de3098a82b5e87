#!/bin/bash
# Benchmark: msmtp-proxy against the usual scripting alternative, an
# aiosmtpd relay (aiosmtpd_relay.py beside this file, run by Debian's
# /usr/bin/python3 with python3-aiosmtpd) doing the same job: RCPT-time
# check of the sender against the same 100,000-entry whitelist, 550 for
# others, relay to the downstream before answering 250. Postfix's
# smtp-source (-s 20 sessions in parallel, one connection a message) sends
# 1 KB and 100 KB messages through each into Postfix's smtp-sink, in turn,
# BENCH_RUNS times (median wall clock). Prints both rates and the ratio
# msmtp-proxy/aiosmtpd (target: >= 3); asserts no time. Fails only when a
# step fails or a message is lost: the sink must count every message, the
# proxy log must have one event=delivered a message and no event=deferred,
# and both must refuse a sender that is not whitelisted with 550.
# BENCH_MESSAGES sets the message count of both sizes (default 3000 for
# 1 KB, 600 for 100 KB); BENCH_ENTRIES the whitelist size.
source "$(dirname "$0")/lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-3000}
m_large=${BENCH_MESSAGES:-600}
sender=bench-sender@partner.example rcpt=bob@ours.example
relay_py="$(cd "$(dirname "$0")" && pwd)/aiosmtpd_relay.py"

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
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
  die "missing peer aiosmtpd for /usr/bin/python3 (Debian package python3-aiosmtpd; make deps)"
command -v swaks >/dev/null || die "missing swaks (Debian package swaks; make deps)"
for p in "$bin/msmtp-proxy" "$bin/mwhitelist"; do [ -x "$p" ] || die "missing $p (make build)"; done
command -v ss >/dev/null || die "missing ss (Debian package iproute2)"

# Free loopback ports, held open together so that they differ.
read -r sink_port proxy_port aio_port < <(/usr/bin/python3 -c '
import socket; s = [socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
# Waits until PID listens on PORT; fails with its stderr if it exits first.
wait_listen() {
  local i
  for i in $(seq 400); do
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

sink_user=(); [ "$(id -u)" -ne 0 ] || sink_user=(-u root)
"$sink_bin" "${sink_user[@]}" -c "127.0.0.1:$sink_port" 1024 >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!); wait_listen $! "$sink_port" smtp-sink "$work/sink.err"
"$bin/msmtp-proxy" --listen "127.0.0.1:$proxy_port" --relay "127.0.0.1:$sink_port" --hostname mx.ours.example \
  --log "$work/proxy.log" --max-sessions 200 2>"$work/proxy.err" &
proxy_pid=$!; pids+=($proxy_pid); wait_listen $proxy_pid "$proxy_port" msmtp-proxy "$work/proxy.err"
/usr/bin/python3 "$relay_py" --listen "127.0.0.1:$aio_port" --relay "127.0.0.1:$sink_port" \
  --whitelist "$work/entries.txt" --domain ours.example --hostname mx.ours.example >"$work/aio.out" 2>"$work/aio.err" &
aio_pid=$!; pids+=($aio_pid); wait_listen $aio_pid "$aio_port" aiosmtpd_relay.py "$work/aio.err"

# Both refuse a sender that is not on the whitelist, at RCPT time.
for port in "$proxy_port" "$aio_port"; do
  swaks --server "127.0.0.1:$port" -f stranger@elsewhere.example -t "$rcpt" --quit-after RCPT >"$work/swaks.out" 2>&1 || true
  grep -q '^<\*\* *550' "$work/swaks.out" || die "port $port did not refuse an unknown sender with 550: $(cat "$work/swaks.out")"
done

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
# One load, checked: which (proxy/aiosmtpd), port, count, length; prints seconds.
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

load "$proxy_port" 40 1024 >/dev/null   # warm-up: caches, the store's pages
load "$aio_port" 40 1024 >/dev/null
for size in 1024 102400; do
  [ "$size" -eq 1024 ] && m=$m_small || m=$m_large
  ours=() peer=()
  for ((r = 0; r < runs; r++)); do
    peer+=("$(checked_load aiosmtpd "$aio_port" "$m" "$size")")
    ours+=("$(checked_load proxy "$proxy_port" "$m" "$size")")
  done
  t_peer=$(median "${peer[@]}") t_ours=$(median "${ours[@]}")
  printf 'smtp-source -s 20, %d x %d KB, %d-entry whitelist, into smtp-sink: aiosmtpd relay %.0f msg/s (%.2fs), msmtp-proxy %.0f msg/s (%.2fs) (median of %d runs)\n' \
    "$m" $((size / 1024)) "$n" "$(echo "$m / $t_peer" | bc -l)" "$t_peer" "$(echo "$m / $t_ours" | bc -l)" "$t_ours" "$runs"
  printf 'ratio msmtp-proxy/aiosmtpd (%d KB) = %.2f (target >= 3)\n' $((size / 1024)) "$(echo "$t_peer / $t_ours" | bc -l)"
done
kill -0 $proxy_pid 2>/dev/null || die "msmtp-proxy died: $(cat "$work/proxy.err")"
kill -0 $aio_pid 2>/dev/null || die "aiosmtpd_relay.py died: $(cat "$work/aio.err")"
printf 'checked: the sink took every message; proxy log: %d event=delivered, %d event=deferred, %d warnings or errors\n' \
  "$(log_count delivered)" "$(log_count deferred)" "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$work/proxy.log" || true)"
