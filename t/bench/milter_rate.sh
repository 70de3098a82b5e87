#!/bin/bash
# Benchmark: Postfix with mmilter against Postfix alone. Postfix's smtp-source (-s 20 sessions) sends 1 KB
# and 100 KB messages from a whitelisted sender (a 100,000-entry whitelist, SPF pass from the tests' own DNS
# server) to a protected recipient through one private Postfix instance, (a) into its plain smtpd and (b)
# into an smtpd with smtpd_milters = mmilter, both relaying to the same smtp-sink, in turn (which goes first
# alternating), BENCH_RUNS times (median wall clock, from the first connection until the sink has every
# message). Prints messages/s for both, the ratio (target: >= 0.7) and mmilter's CPU time a message; asserts
# no time. Fails only when a step fails or a message is lost; mmilter's log must count one accepted message
# (event=accepted) for each message sent through it.
# BENCH_MESSAGES sets the message count of both sizes (default 2000 for 1 KB, 500 for 100 KB);
# BENCH_ENTRIES the whitelist size.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
source "$(dirname "$0")/mta_lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-2000}
m_large=${BENCH_MESSAGES:-500}

need_postfix
[ -x "$bin/mmilter" ] || die "missing $bin/mmilter (make build)"
read -r sink_port milter_port < <(free_ports 2)
import_whitelist "$n"
"$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted"
start_sink
start_dns
"$bin/mmilter" --dns "$dns" --listen "127.0.0.1:$milter_port" --log "$work/mmilter.log" 2>"$work/mmilter.err" &
milter_pid=$!; pids+=($milter_pid); wait_listen $milter_pid "$milter_port" mmilter "$work/mmilter.err"
start_mta "smtpd_milters=inet:127.0.0.1:$milter_port" "milter_default_action=tempfail"

mta_load "$PF_PORT" 40 1024 >/dev/null    # warm-up: Postfix's processes, the store's pages
mta_load "$ours_port" 40 1024 >/dev/null
compare_to_postfix mmilter $milter_pid
kill -0 $milter_pid 2>/dev/null || die "mmilter died: $(cat "$work/mmilter.err")"
sent=$((40 + runs * (m_small + m_large)))
got=$(grep -c 'event=accepted ' "$work/mmilter.log" || true)
[ "$got" -eq "$sent" ] || die "mmilter logged $got event=accepted for $sent messages: $(grep -v 'event=accepted ' "$work/mmilter.log" | tail -n 3)"
printf 'checked: the sink took every message; mmilter log: %d event=accepted, %d warnings or errors\n' "$got" \
  "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$work/mmilter.log" || true)"
