#!/bin/bash
# Benchmark: msmtp-proxy holding 1,000 idle SMTP sessions (--max-sessions
# 1100). A /usr/bin/python3 script opens them one after another, reads each
# greeting and leaves them idle. Prints the proxy's resident memory
# (/proc/PID/status VmRSS, and VmHWM, its peak) with no session and with the
# sessions held, the cost of a session, and how long 20 messages (Postfix's
# smtp-source, one session at a time, into Postfix's smtp-sink) take with no
# session held and with the 1,000 held. Asserts no figure; fails only when a
# step fails: a session not greeted with 220, a message not delivered (the
# sink and the proxy log count them), a held session not answering QUIT with
# 221 at the end. BENCH_SESSIONS sets the number of sessions.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
sessions=${BENCH_SESSIONS:-1000}

need_postfix
[ -x /usr/bin/python3 ] || die "missing /usr/bin/python3 (Debian package python3; make deps)"
need_proxy
# A descriptor a session in the proxy and one in the holder, and some more.
fds=$((sessions + 256))
[ "$(ulimit -n)" -ge "$fds" ] || ulimit -n "$fds" 2>/dev/null || die "cannot raise ulimit -n to $fds (hard limit $(ulimit -Hn))"

read -r sink_port proxy_port < <(free_ports 2)
"$bin/mwhitelist" add "$sender" >/dev/null
"$bin/mwhitelist" domain add ours.example >/dev/null
start_sink
start_proxy 1100

status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$proxy_pid/status"; }
# 20 messages, one session at a time, checked; prints the seconds they took.
deliver20() {
  local before delivered s e i c
  before=$(sink_count); before=${before:-0}
  delivered=$(log_count delivered)
  s=$(date +%s.%N)
  "$source_bin" -s 1 -m 20 -l 1024 -f "$sender" -t "$rcpt" "127.0.0.1:$proxy_port" >/dev/null 2>"$work/source.err" ||
    die "smtp-source failed: $(cat "$work/source.err"); proxy log: $(tail -n 5 "$work/proxy.log")"
  e=$(date +%s.%N)
  for i in $(seq 50); do c=$(sink_count); [ "${c:-0}" -ge $((before + 20)) ] && break; sleep 0.05; done
  [ "${c:-0}" -ge $((before + 20)) ] || die "the sink took $((${c:-0} - before)) of 20 messages"
  [ $(($(log_count delivered) - delivered)) -eq 20 ] || die "$(($(log_count delivered) - delivered)) event=delivered for 20 messages"
  [ "$(log_count deferred)" -eq 0 ] || die "event=deferred: $(grep 'event=deferred ' "$work/proxy.log" | head -n 3)"
  echo "$e - $s" | bc -l
}

rss_start=$(status VmRSS)
t_free=$(deliver20)                      # also the warm-up: the store open, the first sessions run
sleep 0.2
rss_free=$(status VmRSS) hwm_free=$(status VmHWM) threads_free=$(status Threads)

# The holder: opens the sessions, reads each greeting, waits for the release
# file, then sends QUIT on each and counts the 221 replies.
cat >"$work/hold.py" <<'PY'
import os, socket, sys, time
n, port, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def reply(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            return buf or b"(closed)"
        buf += chunk
    return buf
held = []
t0 = time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    g = reply(s)
    if not g.startswith(b"220"):
        sys.exit("session %d greeted with %r" % (i + 1, g))
    held.append(s)
print("held %d %.2f" % (len(held), time.monotonic() - t0), flush=True)
deadline = time.monotonic() + 900
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
ok = bad = 0
for s in held:
    try:
        s.sendall(b"QUIT\r\n")
        r = reply(s)
    except OSError as e:
        r = repr(e).encode()
    if r.startswith(b"221"):
        ok += 1
    elif bad < 3:
        print("QUIT answered %r" % r, file=sys.stderr)
        bad += 1
    s.close()
print("quit %d" % ok, flush=True)
PY
/usr/bin/python3 "$work/hold.py" "$sessions" "$proxy_port" "$work/release" >"$work/hold.out" 2>"$work/hold.err" &
holder=$!; pids+=($holder)
for i in $(seq 1200); do
  grep -q '^held ' "$work/hold.out" && break
  kill -0 $holder 2>/dev/null || die "the holder failed: $(cat "$work/hold.err"); proxy log: $(tail -n 3 "$work/proxy.log")"
  sleep 0.05
done
grep -q '^held ' "$work/hold.out" || die "the holder did not open $sessions sessions in 60s: $(tail -n 3 "$work/proxy.log")"
t_open=$(awk '/^held / { print $3 }' "$work/hold.out")
sleep 0.5
rss_held=$(status VmRSS) hwm_held=$(status VmHWM) threads_held=$(status Threads)
t_held=$(deliver20)
rss_after=$(status VmRSS)
touch "$work/release"
wait $holder || die "the holder failed: $(cat "$work/hold.err")"
quit_ok=$(awk '/^quit / { print $2 }' "$work/hold.out")
quit_ok=${quit_ok:-0}
[ "$quit_ok" -eq "$sessions" ] || die "$quit_ok of $sessions held sessions answered QUIT with 221: $(cat "$work/hold.err")"
for i in $(seq 100); do [ "$(status Threads)" -le "$threads_free" ] && break; sleep 0.05; done
rss_released=$(status VmRSS) hwm_end=$(status VmHWM)
proxy_alive

printf 'msmtp-proxy RSS: %d KB at start, %d KB with 0 sessions after 20 messages (VmHWM %d KB, %d threads)\n' \
  "$rss_start" "$rss_free" "$hwm_free" "$threads_free"
printf 'with %d idle sessions held (opened in %.2fs): VmRSS %d KB, VmHWM %d KB, %d threads; %.1f KB a session over 0 sessions\n' \
  "$sessions" "$t_open" "$rss_held" "$hwm_held" "$threads_held" "$(echo "($rss_held - $rss_free) / $sessions" | bc -l)"
printf 'after 20 more messages %d KB; the sessions closed (all %d answered QUIT with 221): %d KB (VmHWM %d KB)\n' \
  "$rss_after" "$quit_ok" "$rss_released" "$hwm_end"
printf '20 messages one at a time: %.3fs with 0 sessions held, %.3fs with %d held (all delivered)\n' \
  "$t_free" "$t_held" "$sessions"
printf 'ratio RSS held/0 sessions = %.2f, delivery time held/0 sessions = %.2f\n' \
  "$(echo "$rss_held / $rss_free" | bc -l)" "$(echo "$t_held / $t_free" | bc -l)"
