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
bench_mta_prepare
"$bin/mmilter" --policy --dns "$dns" --listen "127.0.0.1:$daemon_port" --log "$work/policy.log" 2>"$work/policy.err" &
policy_pid=$!; pids+=($policy_pid); wait_listen $policy_pid "$daemon_port" "mmilter --policy" "$work/policy.err"
start_mta "{ smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$daemon_port }" \
  "{ smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:$daemon_port }"

bench_mta_run "mmilter --policy" $policy_pid "$work/policy.log" accept
