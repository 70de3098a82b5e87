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
source "$(dirname "$0")/smtp_lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-5000}
m_large=${BENCH_MESSAGES:-1000}

need_postfix
need_proxy
read -r sink_port proxy_port < <(free_ports 2)
import_whitelist "$n"
"$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted"
start_sink
start_proxy 200

load "$sink_port" 40 1024 >/dev/null    # warm-up: caches, the store's pages
load "$proxy_port" 40 1024 >/dev/null

compare_to_proxy direct "$sink_port" \
  'smtp-source -s 20, %d x %d KB, %d-entry whitelist: smtp-sink direct %.0f msg/s (%.2fs), through msmtp-proxy %.0f msg/s (%.2fs) (median of %d runs)\n' \
  'ratio proxy/direct (%d KB) = %.2f (target >= 0.5)\n'
proxy_alive
print_checked
