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
bench_mta_prepare
"$bin/mmilter" --dns "$dns" --listen "127.0.0.1:$daemon_port" --log "$work/mmilter.log" 2>"$work/mmilter.err" &
milter_pid=$!; pids+=($milter_pid); wait_listen $milter_pid "$daemon_port" mmilter "$work/mmilter.err"
start_mta "smtpd_milters=inet:127.0.0.1:$daemon_port" "milter_default_action=tempfail"

bench_mta_run "mmilter" $milter_pid "$work/mmilter.log" accepted
