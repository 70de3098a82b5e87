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
source "$(dirname "$0")/smtp_lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-3000}
m_large=${BENCH_MESSAGES:-600}
relay_py="$(cd "$(dirname "$0")" && pwd)/aiosmtpd_relay.py"
wait_listen_tries=400   # up to 20s for a listener (the shared default is 10s)

need_postfix
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
  die "missing peer aiosmtpd for /usr/bin/python3 (Debian package python3-aiosmtpd; make deps)"
command -v swaks >/dev/null || die "missing swaks (Debian package swaks; make deps)"
need_proxy
read -r sink_port proxy_port aio_port < <(free_ports 3)
import_whitelist "$n"
start_sink
start_proxy 200
/usr/bin/python3 "$relay_py" --listen "127.0.0.1:$aio_port" --relay "127.0.0.1:$sink_port" \
  --whitelist "$work/entries.txt" --domain ours.example --hostname mx.ours.example >"$work/aio.out" 2>"$work/aio.err" &
aio_pid=$!; pids+=($aio_pid); wait_listen $aio_pid "$aio_port" aiosmtpd_relay.py "$work/aio.err"

# Both refuse a sender that is not on the whitelist, at RCPT time.
for port in "$proxy_port" "$aio_port"; do
  swaks --server "127.0.0.1:$port" -f stranger@elsewhere.example -t "$rcpt" --quit-after RCPT >"$work/swaks.out" 2>&1 || true
  grep -q '^<\*\* *550' "$work/swaks.out" || die "port $port did not refuse an unknown sender with 550: $(cat "$work/swaks.out")"
done

load "$proxy_port" 40 1024 >/dev/null   # warm-up: caches, the store's pages
load "$aio_port" 40 1024 >/dev/null

compare_to_proxy aiosmtpd "$aio_port" \
  'smtp-source -s 20, %d x %d KB, %d-entry whitelist, into smtp-sink: aiosmtpd relay %.0f msg/s (%.2fs), msmtp-proxy %.0f msg/s (%.2fs) (median of %d runs)\n' \
  'ratio msmtp-proxy/aiosmtpd (%d KB) = %.2f (target >= 3)\n'
proxy_alive
kill -0 $aio_pid 2>/dev/null || die "aiosmtpd_relay.py died: $(cat "$work/aio.err")"
print_checked
