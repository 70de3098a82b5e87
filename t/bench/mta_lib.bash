# Shared by the benchmarks of mailstamp inside Postfix (milter_rate.sh, policy_rate.sh), sourced after
# lib.bash and smtp_lib.bash: one private Postfix instance (t/postfix.bash) with two smtpd listeners on the
# same queue, the same qmgr and the same smtp-sink: a plain one (Postfix alone) and one with mailstamp
# plugged in (master.cf -o overrides), so the two rates differ only by what mailstamp adds. Not a benchmark
# itself (only *.sh are).

# What t/postfix.bash expects from the bats helpers, for a script.
skip() { die "$*"; }
need_smtp_sink() { :; }
free_port() { free_ports 1; }
wait_port() {
  local i
  for i in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  die "nothing listening on $1: $(cat "${WAIT_LOG:-/dev/null}" 2>/dev/null | tail -n 5)"
}
source "$(dirname "${BASH_SOURCE[0]}")/../postfix.bash"

# Starts Postfix relaying into the sink: its plain smtpd on $PF_PORT, and ours on $ours_port with the
# master.cf -o options given ($@, each a "name=value" without spaces, or "{ name = value }").
start_mta() {
  [ "$(id -u)" -eq 0 ] || die "needs root: a private Postfix's master(8) starts as root"
  ours_port=$(free_ports 1)
  local o line="127.0.0.1:$ours_port inet n - n - - smtpd"
  for o in "$@"; do line+=" -o $o"; done
  PF_MASTER_EXTRA=$line
  start_postfix "$sink_port" 'in_flow_delay = 0' 'default_process_limit = 200' 'mynetworks = 127.0.0.0/8' \
    'smtpd_client_connection_rate_limit = 0' 'smtpd_client_message_rate_limit = 0' || die "Postfix did not start"
  wait_port "$ours_port"
  trap 'stop_postfix; cleanup' EXIT
}

# Wall-clock seconds from the start of one smtp-source load (port $1, $2 messages of $3 bytes) until the sink
# has taken all of them: Postfix queues before it relays, so its rate is measured to the far end.
mta_load() {
  local before s e c i
  before=$(sink_count); before=${before:-0}
  s=$(date +%s.%N)
  "$source_bin" -s 20 -m "$2" -l "$3" -f "$sender" -t "$rcpt" "127.0.0.1:$1" >/dev/null 2>"$work/source.err" ||
    die "smtp-source into port $1 failed: $(cat "$work/source.err")"
  for i in $(seq 6000); do
    c=$(sink_count); [ "${c:-0}" -ge $((before + $2)) ] && break
    sleep 0.02
  done
  e=$(date +%s.%N)
  [ "${c:-0}" -ge $((before + $2)) ] ||
    die "port $1: the sink took $((c - before)) of $2 messages; Postfix says: $(grep -E 'reject|warning|milter' "$PF/maillog" | tail -n 3)"
  echo "$e - $s" | bc -l
}

# CPU seconds (user + system, all its threads) process $1 has used so far.
cpu_secs() {
  local f
  read -ra f <"/proc/$1/stat" || die "no process $1"
  echo "(${f[13]} + ${f[14]}) / $(getconf CLK_TCK)" | bc -l
}

# Both sizes, 1 KB ($m_small) and 100 KB ($m_large), $runs times each: Postfix alone and Postfix with
# mailstamp ($1) in turn, the one that goes first alternating (a machine shared with other work slows one
# run more than the next). Prints for each size a line with both rates and their ratio, then (with $2, the
# pid of mailstamp's daemon) the CPU time that daemon used per message.
compare_to_postfix() {
  local size m r base ours t_base t_ours cpu0 cpu1 sent=0
  [ -z "${2:-}" ] || cpu0=$(cpu_secs "$2")
  for size in 1024 102400; do
    [ "$size" -eq 1024 ] && m=$m_small || m=$m_large
    base=() ours=()
    for ((r = 0; r < runs; r++)); do
      if ((r % 2 == 0)); then
        base+=("$(mta_load "$PF_PORT" "$m" "$size")")
        ours+=("$(mta_load "$ours_port" "$m" "$size")")
      else
        ours+=("$(mta_load "$ours_port" "$m" "$size")")
        base+=("$(mta_load "$PF_PORT" "$m" "$size")")
      fi
      sent=$((sent + m))
    done
    t_base=$(median "${base[@]}") t_ours=$(median "${ours[@]}")
    printf 'smtp-source -s 20, %d x %d KB, %d-entry whitelist: Postfix alone %.0f msg/s (%.2fs), Postfix + %s %.0f msg/s (%.2fs) (median of %d runs)\n' \
      "$m" $((size / 1024)) "$n" "$(echo "$m / $t_base" | bc -l)" "$t_base" "$1" "$(echo "$m / $t_ours" | bc -l)" "$t_ours" "$runs"
    printf 'ratio (Postfix + %s)/(Postfix alone) (%d KB) = %.2f (target >= 0.7)\n' "$1" $((size / 1024)) "$(echo "$t_base / $t_ours" | bc -l)"
  done
  [ -z "${2:-}" ] || {
    cpu1=$(cpu_secs "$2")
    printf '%s CPU time: %.2fs for %d messages (%.2f ms a message, both sizes)\n' "$1" "$(echo "$cpu1 - $cpu0" | bc -l)" \
      "$sent" "$(echo "($cpu1 - $cpu0) * 1000 / $sent" | bc -l)"
  }
}

# bench_mta_prepare: what both MTA benchmarks set up before their daemon starts: the settings (n, runs,
# m_small, m_large from BENCH_ENTRIES, BENCH_RUNS, BENCH_MESSAGES), a Postfix and mmilter to run, two free
# ports (sink_port, daemon_port), the whitelist of n entries with the sender in it, the sink and the DNS server.
bench_mta_prepare() {
  n=${BENCH_ENTRIES:-100000}
  runs=${BENCH_RUNS:-3}
  m_small=${BENCH_MESSAGES:-2000}
  m_large=${BENCH_MESSAGES:-500}
  need_postfix
  [ -x "$bin/mmilter" ] || die "missing $bin/mmilter (make build)"
  read -r sink_port daemon_port < <(free_ports 2)
  import_whitelist "$n"
  "$bin/mwhitelist" check "$sender" >/dev/null || die "the sender is not whitelisted"
  start_sink
  start_dns
}

# bench_mta_run NAME PID LOG EVENT: warms both smtpds up, compares them (compare_to_postfix), then checks that
# the daemon PID still runs and that its LOG has one EVENT line for each message sent through it.
bench_mta_run() {
  local name=$1 pid=$2 log=$3 event=$4 sent got
  mta_load "$PF_PORT" 40 1024 >/dev/null    # warm-up: Postfix's processes, the store's pages
  mta_load "$ours_port" 40 1024 >/dev/null
  compare_to_postfix "$name" "$pid"
  kill -0 "$pid" 2>/dev/null || die "$name died"
  sent=$((40 + runs * (m_small + m_large)))
  got=$(grep -c "event=$event " "$log" || true)
  [ "$got" -eq "$sent" ] || die "$name logged $got event=$event for $sent messages: $(grep -v "event=$event " "$log" | tail -n 3)"
  printf 'checked: the sink took every message; %s log: %d event=%s, %d warnings or errors\n' "$name" "$got" "$event" \
    "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$log" || true)"
}
