# Shared by the msmtp-proxy benchmarks (proxy_*.sh), sourced after lib.bash:
# the peers (Postfix's smtp-source and smtp-sink), child processes killed on
# exit, free loopback ports, a scratch store with the whitelist, smtp-sink
# and msmtp-proxy started, and the counts and loads that check each message.
# Uses $bin and $work from lib.bash. Not a benchmark itself (only *.sh are).
sender=bench-sender@partner.example rcpt=bob@ours.example

die() { echo "${0##*/}: $*" >&2; exit 1; }
# Processes started in the background, killed and waited for on exit.
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

# Fails unless smtp-source and smtp-sink are there.
need_postfix() {
  local p
  for p in "$source_bin" "$sink_bin"; do [ -x "$p" ] || die "missing peer ${p##*/} (Debian package postfix; make deps)"; done
}
# Fails unless msmtp-proxy, mwhitelist and ss are there.
need_proxy() {
  local p
  for p in "$bin/msmtp-proxy" "$bin/mwhitelist"; do [ -x "$p" ] || die "missing $p (make build)"; done
  command -v ss >/dev/null || die "missing ss (Debian package iproute2)"
}

# Prints N free loopback ports, held open together so that they differ.
free_ports() {
  /usr/bin/python3 -c '
import socket, sys; s = [socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])' "$1"
}
# Waits until PID ($1) listens on PORT ($2), polling wait_listen_tries times
# 0.05s apart; fails with NAME ($3) and its stderr FILE ($4) if it exits first.
wait_listen_tries=200
wait_listen() {
  local i
  for i in $(seq "$wait_listen_tries"); do
    ss -Hltn "sport = :$2" | grep -q . && return 0
    kill -0 "$1" 2>/dev/null || die "$3 exited: $(cat "$4")"
    sleep 0.05
  done
  die "$3 does not listen on port $2: $(cat "$4")"
}

# The scratch store; the whitelist: N entries ($1) and the sender, from
# $work/entries.txt (written once), and ours.example as a protected domain,
# into the store named by $2 (default: the scratch store, $MAILSTAMP_DB).
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
import_whitelist() {
  local db=${2:-$MAILSTAMP_DB}
  if [ ! -s "$work/entries.txt" ]; then
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "user%d@host%d.example\n", i, i % 5000 }' >"$work/entries.txt"
    echo "$sender" >>"$work/entries.txt"
  fi
  MAILSTAMP_DB=$db "$bin/mwhitelist" import <"$work/entries.txt" >/dev/null
  MAILSTAMP_DB=$db "$bin/mwhitelist" domain add ours.example >/dev/null
}

# smtp-sink on $sink_port, counting messages (-c) into $work/sink.out.
start_sink() {
  local sink_user=()
  [ "$(id -u)" -ne 0 ] || sink_user=(-u root)
  "$sink_bin" "${sink_user[@]}" -c "127.0.0.1:$sink_port" 1024 >"$work/sink.out" 2>"$work/sink.err" &
  pids+=($!); wait_listen $! "$sink_port" smtp-sink "$work/sink.err"
}
# The tests' own DNS server (t/dns/zone-server.py) on loopback, logging its queries to $work/dns.log: the
# sender's domain publishes SPF pass for 127.0.0.1 and DMARC p=reject, so a whitelisted sender authenticates
# as it would in production; sets dns (HOST:PORT), which start_proxy passes on as --dns.
start_dns() {
  local d=${sender#*@}
  printf '%s TXT "v=spf1 ip4:127.0.0.1 -all"\n_dmarc.%s TXT "v=DMARC1; p=reject"\n' "$d" "$d" >"$work/zone"
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../dns/zone-server.py" "$work/zone" --port-file "$work/dns.port" \
    --log "$work/dns.log" >"$work/dns.err" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/dns.port" ] && break; sleep 0.05; done
  [ -s "$work/dns.port" ] || die "the zone server did not start: $(cat "$work/dns.err")"
  dns=127.0.0.1:$(cat "$work/dns.port")
}
# The running proxy's name: its log is $work/$proxy_name.log, its stderr
# $work/$proxy_name.err (set it before start_proxy and the counts when a
# benchmark runs more than one).
proxy_name=proxy
# msmtp-proxy on $proxy_port relaying into the sink, --max-sessions $1 and
# any further options, logging to $work/$proxy_name.log; sets proxy_pid.
start_proxy() {
  [ -n "${dns:-}" ] || start_dns
  "$bin/msmtp-proxy" --dns "$dns" --listen "127.0.0.1:$proxy_port" --relay "127.0.0.1:$sink_port" --hostname mx.ours.example \
    --log "$work/$proxy_name.log" --max-sessions "$1" --max-per-client 0 "${@:2}" 2>"$work/$proxy_name.err" &
  proxy_pid=$!; pids+=($proxy_pid); wait_listen $proxy_pid "$proxy_port" msmtp-proxy "$work/$proxy_name.err"
}
proxy_alive() { kill -0 $proxy_pid 2>/dev/null || die "msmtp-proxy died: $(cat "$work/$proxy_name.err")"; }

# Messages the sink has taken (its -c counter), and proxy log lines of a kind.
sink_count() { tr '\r' '\n' <"$work/sink.out" | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2 || true; }
log_count() { grep -c "event=$1 " "$work/$proxy_name.log" || true; }
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
# One load, checked: what goes through (direct, aiosmtpd or proxy; proxy also
# checks the proxy log), port, count, length; prints seconds.
checked_load() {
  local before delivered t
  before=$(sink_count); before=${before:-0}
  delivered=$(log_count delivered)
  t=$(load "$2" "$3" "$4")
  sink_reaches $((before + $3)) || die "$1 run: the sink took $(($(sink_count) - before)) of $3 messages"
  if [ "$1" = proxy ]; then
    [ $(($(log_count delivered) - delivered)) -eq "$3" ] ||
      die "proxy run: $(($(log_count delivered) - delivered)) event=delivered for $3 messages; see $(grep -v 'event=\(connect\|disconnect\|delivered\) ' "$work/$proxy_name.log" | tail -n 5)"
    [ "$(log_count deferred)" -eq 0 ] || die "proxy run: event=deferred: $(grep 'event=deferred ' "$work/$proxy_name.log" | head -n 3)"
  fi
  echo "$t"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Both sizes, 1 KB ($m_small messages) and 100 KB ($m_large), $runs times
# each: a load through a baseline (what: direct or aiosmtpd, $1; port, $2),
# then one through msmtp-proxy, in turn. Prints, a size, a line of format $3
# (count, KB, whitelist entries $n, msg/s and median seconds of the baseline,
# the same through the proxy, $runs) and one of format $4 (KB, the ratio of
# the medians baseline/proxy).
compare_to_proxy() {
  local size m r base ours t_base t_ours
  for size in 1024 102400; do
    [ "$size" -eq 1024 ] && m=$m_small || m=$m_large
    base=() ours=()
    for ((r = 0; r < runs; r++)); do
      base+=("$(checked_load "$1" "$2" "$m" "$size")")
      ours+=("$(checked_load proxy "$proxy_port" "$m" "$size")")
    done
    t_base=$(median "${base[@]}") t_ours=$(median "${ours[@]}")
    # shellcheck disable=SC2059 # the formats are the caller's
    printf "$3" "$m" $((size / 1024)) "$n" "$(echo "$m / $t_base" | bc -l)" "$t_base" "$(echo "$m / $t_ours" | bc -l)" "$t_ours" "$runs"
    # shellcheck disable=SC2059
    printf "$4" $((size / 1024)) "$(echo "$t_base / $t_ours" | bc -l)"
  done
}
# The closing line of a load benchmark: what the proxy log counted.
print_checked() {
  printf 'checked: the sink took every message; proxy log: %d event=delivered, %d event=deferred, %d warnings or errors\n' \
    "$(log_count delivered)" "$(log_count deferred)" "$(grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' "$work/$proxy_name.log" || true)"
}
