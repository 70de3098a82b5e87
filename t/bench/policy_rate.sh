#!/bin/bash
# Benchmark: Postfix with mailstamp's policy service (mmilter --policy, standalone, check_policy_service at
# RCPT and at the end of data, as mmilter(8)'s example) against Postfix alone. As milter_rate.sh: smtp-source
# (-s 20) sends 1 KB and 100 KB messages from a whitelisted sender (a 100,000-entry whitelist, SPF pass from
# the tests' own DNS server) through one private Postfix, into its plain smtpd and into one whose restrictions
# ask the policy service, both relaying to the same smtp-sink, in turn (which goes first alternating),
# BENCH_RUNS times (median wall clock until the sink has every message). Prints messages/s, the ratio
# (target: >= 0.7) and the service's CPU time a message; asserts no time; fails when a message is lost or the
# service's log does not count one accepted recipient (event=accept) for each message sent through it.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
source "$(dirname "$0")/mta_lib.bash"
n=${BENCH_ENTRIES:-100000}
runs=${BENCH_RUNS:-3}
m_small=${BENCH_MESSAGES:-2000}
m_large=${BENCH_MESSAGES:-500}

need_postfix
[ -x "$bin/mmilter" ] || die "missing $bin/mmilter (make build)"
read -r sink_port policy_port < <(free_ports 2)
import_whitelist "$n"
"$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted"
start_sink
start_dns
"$bin/mmilter" --policy --dns "$dns" --listen "127.0.0.1:$policy_port" --log "$work/policy.log" 2>"$work/policy.err" &
policy_pid=$!; pids+=($policy_pid); wait_listen $policy_pid "$policy_port" "mmilter --policy" "$work/policy.err"
start_mta "{ smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$policy_port }" \
  "{ smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:$policy_port }"

mta_load "$PF_PORT" 40 1024 >/dev/null
mta_load "$ours_port" 40 1024 >/dev/null
compare_to_postfix "mmilter --policy" $policy_pid
kill -0 $policy_pid 2>/dev/null || die "mmilter --policy died: $(cat "$work/policy.err")"
sent=$((40 + runs * (m_small + m_large)))
got=$(grep -c 'event=accept ' "$work/policy.log" || true)
[ "$got" -eq "$sent" ] || die "mmilter --policy logged $got event=accept for $sent messages: $(grep -v 'event=accept ' "$work/policy.log" | tail -n 3)"
printf 'checked: the sink took every message; policy log: %d event=accept, %d warnings or errors\n' "$got" \
  "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$work/policy.log" || true)"
