#!/bin/bash
# Benchmark: what SPF costs msmtp-proxy. Postfix's smtp-source (-s 20 sessions in parallel, one
# connection a message) sends 1 KB messages through msmtp-proxy --relay into Postfix's smtp-sink, the
# proxy run with --spf yes and with --spf no, in turn (a fresh proxy each run, warmed up first, so its
# DNS cache is warm), BENCH_RUNS times each (median wall clock). The sender's domain publishes an SPF
# record that passes for 127.0.0.1 and a DMARC record, served by the tests' own zone server
# (t/dns/zone-server.py) on loopback through --dns. The sender is not whitelisted and the proxy runs with
# --unknown mark, so every message takes the same way (Unknown, marked, relayed) whatever SPF says: the
# two differ only in the SPF evaluation at MAIL. Prints both rates and the ratio on/off; asserts no
# time. Fails only when a step fails or a message is lost (the sink counts every message, the proxy
# log has one event=delivered a message and no event=deferred). BENCH_MESSAGES: messages a run
# (default 2000).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
runs=${BENCH_RUNS:-5}
m=${BENCH_MESSAGES:-2000}

need_postfix
need_proxy
start_dns
import_whitelist 1000
"$bin/mwhitelist" remove "$sender" >/dev/null
! "$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is whitelisted"
[ "$("$bin/mverify" spf --dns "$dns" --ip 127.0.0.1 --helo mail.example --sender "$sender" | cut -d' ' -f1)" = pass ] ||
  die "SPF does not pass for $sender from 127.0.0.1"
read -r sink_port < <(free_ports 1)
start_sink

spf_queries() { grep -ci "^${sender#*@}\.\? TXT" "$work/dns.log" || true; }
# run MODE: a fresh proxy with --spf MODE, warmed up, one checked load; prints seconds.
run() {
  local t
  read -r proxy_port < <(free_ports 1)
  start_proxy 200 --unknown mark --spf "$1"
  load "$proxy_port" 40 1024 >/dev/null    # warm-up: the DNS cache, the store's pages
  t=$(checked_load proxy "$proxy_port" "$m" 1024)
  proxy_alive
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
  echo "$t"
}
on=() off=()
q0=$(spf_queries) asked=0
for ((r = 0; r < runs; r++)); do
  on+=("$(run yes)")
  q1=$(spf_queries)
  off+=("$(run no)")
  q2=$(spf_queries)
  [ "$q1" -gt "$q0" ] || die "--spf yes asked no SPF record"
  asked=$((asked + q1 - q0))
  [ "$q2" -eq "$q1" ] || die "--spf no asked for ${sender#*@}'s SPF record $((q2 - q1)) times"
  q0=$q2
done
t_on=$(median "${on[@]}") t_off=$(median "${off[@]}")
printf 'load average %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'smtp-source -s 20, %d x 1 KB, sender with SPF pass (not whitelisted, --unknown mark): --spf yes %.0f msg/s (%.2fs), --spf no %.0f msg/s (%.2fs) (median of %d runs)\n' \
  "$m" "$(echo "$m / $t_on" | bc -l)" "$t_on" "$(echo "$m / $t_off" | bc -l)" "$t_off" "$runs"
printf 'runs (s): --spf yes %s; --spf no %s\n' "${on[*]}" "${off[*]}"
printf 'zone server: %d queries for %s TXT in the --spf yes runs (%d messages), none in the --spf no runs\n' "$asked" "${sender#*@}" $((runs * (m + 40)))
printf 'ratio rate spf on/off = %.2f\n' "$(echo "$t_off / $t_on" | bc -l)"
print_checked
