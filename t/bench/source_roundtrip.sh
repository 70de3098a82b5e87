#!/bin/bash
# Benchmark: msourced's SOURCE/GET reverse delivery against plain DATA,
# between the same two hosts: msourced A (mx.a.example, the sender domain's
# MX, serving GET) and msourced B (mx.b.example, the recipient domain's MX,
# delivering into a Maildir), both on 127.0.0.1, ports in 20000-32000. The
# same BENCH_MESSAGES (default 1,000) messages of 1 to 10 KB of text,
# generated once, go to B twice, one after the other:
#   DATA        MAIL, RCPT, DATA + the message; B delivers before its 250.
#   SOURCE/GET  MAIL, RCPT, "SOURCE <id>"; B records the notice, its fetch
#               thread (woken 200 ms after a notice; --fetch-interval 1)
#               connects back to A, GETs the message and delivers it.
# Each is timed from the first connection until all the messages are in B's
# Maildir (new/ polled every 10 ms), so SOURCE/GET's time includes the
# notice, the GET from A and the delivery, and DATA's the transfer and the
# delivery. Prints both times, ms per message and the ratio SOURCE/GET over
# DATA (target: <= 3); asserts no time.
#
# Why this design: `msourced send` falls back to DATA only for a peer that
# does not offer SOURCE, and every msourced offers it, so it cannot send the
# DATA half to B. Both halves are therefore sent by one client, a small
# Python smtplib program below (Debian's /usr/bin/python3), one connection a
# message, one message at a time, to the same B: the only difference is
# DATA + body against SOURCE + id. The ids are real held messages on A: they
# are held beforehand (untimed) by `msourced send` with b.example mapped to
# a third msourced, C, that only takes notices (--fetch-interval 0, never
# fetches), so A's rows are "notified" as after a real notice (as a receiver
# sees them); C is stopped before the timing and the ids are
# matched from each send's "event=hold" log line (an 8-digit prefix) to
# `msourced queue --json`. Both halves end in the same Maildir code, with the
# same messages, so the ratio is the cost of the notice, the fetch thread's
# wake-up and the GET round trip against sending the body inline.
# --get-limit (GET and SOURCE commands per client address a minute, default
# 600) and --fetch-limit (GETs sent per sender domain a minute, default 120)
# are raised on every instance: all the traffic comes from 127.0.0.1.
#
# A warm-up of BENCH_WARMUP (default 10) other messages goes each way first.
# Fails only when the run breaks: a daemon dies, a step fails, or a message
# is missing (or arrives changed) after BENCH_TIMEOUT (default 60) seconds.
# The closing lines check every delivered file against its original: same
# body (sha256, line ends aside), X-Mailstamp-Source verified (SOURCE/GET)
# or unverified (DATA), and A's and B's logs (GETs served, fetches).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/smtp_lib.bash"
n=${BENCH_MESSAGES:-1000}
warm=${BENCH_WARMUP:-10}
wait_max=${BENCH_TIMEOUT:-60}
py=/usr/bin/python3
env_from=bench@a.example env_to=bob@b.example
export MAILSTAMP_CONFIG=/dev/null

for p in "$bin/msourced" "$bin/mwhitelist"; do [ -x "$p" ] || die "missing $p (make build)"; done
[ -x "$py" ] || die "missing $py (Debian package python3)"
command -v jq >/dev/null || die "missing jq (Debian package jq)"
command -v ss >/dev/null || die "missing ss (Debian package iproute2)"

# N free loopback ports in 20000-32000, held open together so that they differ.
ports_in_range() {
  "$py" -c '
import random, socket, sys
held = []
for p in random.sample(range(20000, 32001), 2000):
    s = socket.socket()
    try: s.bind(("127.0.0.1", p))
    except OSError: s.close(); continue
    held.append(s)
    if len(held) == int(sys.argv[1]): break
print(*[s.getsockname()[1] for s in held])' "$1"
}
read -r port_a port_b port_c < <(ports_in_range 3)
[ -n "${port_c:-}" ] || die "no free ports in 20000-32000"

# The messages: $work/msg/NNNN.eml (timed) and $work/warm/NNNN.eml, CRLF line ends.
"$py" - "$work" "$n" "$warm" <<'EOF'
import os, random, sys
work, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(20251202)
words = ("mail stamp source fetch domain message sender recipient held notice body verify "
         "loopback partial exchange server client header field letter parcel post").split()
for kind, count in (("msg", n), ("warm", warm)):
    os.mkdir(os.path.join(work, kind))
    for i in range(count):
        size = rnd.randint(1024, 10240)
        head = (f"From: Bench <bench@a.example>\r\nTo: <bob@b.example>\r\nSubject: {kind} {i}\r\n"
                f"Date: Tue, 02 Dec 2025 00:00:00 +0000\r\nMessage-ID: <{kind}-{i}@a.example>\r\n\r\n")
        body = [f"{kind} message {i} of {count}, {size} octets."]
        length = len(head) + len(body[0]) + 2
        while length < size:
            line = " ".join(rnd.choice(words) for _ in range(rnd.randint(6, 12)))
            body.append(line)
            length += len(line) + 2
        with open(os.path.join(work, kind, f"{i:04d}.eml"), "wb") as f:
            f.write((head + "\r\n".join(body) + "\r\n").encode())
EOF
bytes=$(cat "$work"/msg/*.eml | wc -c)

# The client of both halves: for each line of a list (PATH, or PATH TAB ID
# for SOURCE) one connection to B: EHLO, MAIL, RCPT, then DATA with the file
# or SOURCE ID; then waits until B's Maildir new/ has COUNT files. Prints the
# seconds until the last reply and until the last file.
cat >"$work/client.py" <<'EOF'
import os, smtplib, sys, time
mode, port, new, lst, count, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
sender, rcpt = sys.argv[7], sys.argv[8]
jobs = []
for line in open(lst):
    path, _, ident = line.rstrip("\n").partition("\t")
    jobs.append((open(path, "rb").read() if mode == "data" else None, ident))
t0 = time.monotonic()
for body, ident in jobs:
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="mx.a.example", timeout=30)
    s.ehlo()
    if mode == "source" and not s.has_extn("source"):
        sys.exit("B does not offer SOURCE")
    code, msg = s.mail(sender)
    if code != 250: sys.exit(f"MAIL: {code} {msg!r}")
    code, msg = s.rcpt(rcpt)
    if code != 250: sys.exit(f"RCPT: {code} {msg!r}")
    code, msg = s.data(body) if mode == "data" else s.docmd("SOURCE", ident)
    if code != 250: sys.exit(f"{mode.upper()}: {code} {msg!r}")
    s.quit()
t1 = time.monotonic()
got = len(os.listdir(new))
while got < count and time.monotonic() - t1 < limit:
    time.sleep(0.01)
    got = len(os.listdir(new))
t2 = time.monotonic()
print(f"{t1 - t0:.4f} {t2 - t0:.4f} {got}")
EOF

# Each delivered file (DIR) against the originals (LIST): the same body after
# the header's blank line (line ends aside), each original once, and
# X-Mailstamp-Source of class CLASS. Prints "OK COUNT" or what differs.
cat >"$work/check.py" <<'EOF'
import hashlib, os, re, sys
lst, d, cls = sys.argv[1], sys.argv[2], sys.argv[3]
def split(raw):
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    return head, hashlib.sha256(body).hexdigest()
want = {}
for line in open(lst):
    head, h = split(open(line.rstrip("\n").split("\t")[0], "rb").read())
    want[re.search(rb"^Message-ID: (\S+)", head, re.M | re.I).group(1)] = h
bad, seen = [], set()
for f in sorted(os.listdir(d)):
    head, h = split(open(os.path.join(d, f), "rb").read())
    mid = re.search(rb"^Message-ID: (\S+)", head, re.M | re.I)
    src = re.search(rb"^X-Mailstamp-Source: (\w+)", head, re.M)
    mid = mid and mid.group(1)
    if mid not in want: bad.append(f"{f}: unknown Message-ID {mid!r}")
    elif mid in seen: bad.append(f"{f}: {mid!r} delivered twice")
    elif want[mid] != h: bad.append(f"{f}: {mid!r} body differs from the original")
    elif not src or src.group(1).decode() != cls: bad.append(f"{f}: X-Mailstamp-Source not {cls}")
    seen.add(mid)
missing = len(set(want) - seen)
if missing: bad.append(f"{missing} of {len(want)} messages not delivered")
print("OK %d" % len(seen) if not bad else "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""))
EOF

# The instances: each its own directory (store, hold directory, log, stderr).
mkdir -p "$work"/{a,b,c} "$work"/Maildir/{tmp,new,cur} "$work"/c/Maildir/{tmp,new,cur}
"$bin/mwhitelist" --db "$work/b/store.db" domain add b.example >/dev/null
"$bin/mwhitelist" --db "$work/c/store.db" domain add b.example >/dev/null
pid_c=''  # pid_a, pid_b, pid_c: set by start_msourced, read by alive
start_msourced() {  # NAME PORT ARGS...: starts it, sets pid_NAME
  local name=$1 port=$2; shift 2
  "$bin/msourced" --db "$work/$name/store.db" --log "$work/$name/daemon.log" --hostname "mx.$name.example" \
    --listen "127.0.0.1:$port" --get-limit 1000000 --fetch-limit 1000000 "$@" 2>"$work/$name/err" &
  pids+=($!); printf -v "pid_$name" %s $!
  wait_listen $! "$port" "msourced $name" "$work/$name/err"
}
alive() {
  local name
  for name in "$@"; do
    local pid_var="pid_$name"
    kill -0 "${!pid_var}" 2>/dev/null || die "msourced $name died: $(cat "$work/$name/err"; tail -n 5 "$work/$name/daemon.log")"
  done
}
start_msourced a "$port_a" --fetch-interval 0
start_msourced b "$port_b" --mx-map "a.example=127.0.0.1:$port_a" --deliver "maildir:$work/Maildir" --fetch-interval 1
start_msourced c "$port_c" --deliver "maildir:$work/c/Maildir" --fetch-interval 0

# Untimed: A holds every message (warm-up ones too), its notices going to C;
# two sends at a time. Then the lists: PATH TAB ID, in the order of the files.
hold_t0=$(date +%s.%N)
# shellcheck disable=SC2016 # the single-quoted script is sh -c's, its $1... are the arguments after it
find "$work/msg" "$work/warm" -name '*.eml' | sort |
  xargs -P 2 -I{} sh -c '"$1" --db "$2/a/store.db" --log stderr --hostname mx.a.example \
    --mx-map "b.example=127.0.0.1:$3" send --from "$4" --rcpt "$5" <"$6" 2>"$6.hold" || { cat "$6.hold" >&2; exit 255; }' \
    sh "$bin/msourced" "$work" "$port_c" "$env_from" "$env_to" {} || die "msourced send failed"
hold_t1=$(date +%s.%N)
alive c
"$bin/msourced" --db "$work/a/store.db" --log none queue --json >"$work/queue.json"
held=$(jq '[.[] | select(.direction == "out" and .state == "notified" and .gets == 0)] | length' "$work/queue.json")
[ "$held" -eq $((n + warm)) ] || die "A holds $held notified messages, not $((n + warm))"
jq -r '.[] | select(.direction == "out") | .id' "$work/queue.json" | sort >"$work/ids.held"
# The logs name an id by its first 8 hex digits only (ids are capabilities); the queue has them whole.
for kind in msg warm; do
  for f in "$work/$kind"/*.eml; do
    grep -q 'event=notice .*result=notified' "$f.hold" || die "$f: no notice to C: $(cat "$f.hold")"
    prefix=$(grep -o 'event=hold id=[0-9a-f]*' "$f.hold" | cut -d= -f3)
    [ ${#prefix} -eq 8 ] || die "$f: no id in the send log"
    id=$(grep "^$prefix" "$work/ids.held")
    [ "$(wc -l <<<"$id")" -eq 1 ] && [ ${#id} -eq 32 ] || die "$f: id $prefix... is not one of A's queue"
    printf '%s\t%s\n' "$f" "$id"
  done >"$work/$kind.source"
  cut -f1 "$work/$kind.source" >"$work/$kind.data"
done
cut -f2 "$work/msg.source" "$work/warm.source" | sort >"$work/ids.want"
cmp -s "$work/ids.want" "$work/ids.held" || die "the ids in the send logs are not those of A's queue"
kill "$pid_c"; wait "$pid_c" 2>/dev/null || true

# One half: MODE, list, count; prints "seconds-to-last-reply seconds-to-last-file".
half() {
  local out sent total got
  out=$("$py" "$work/client.py" "$1" "$port_b" "$work/Maildir/new" "$2" "$3" "$wait_max" "$env_from" "$env_to" 2>"$work/client.err") ||
    die "$1 client failed: $(cat "$work/client.err")"
  read -r sent total got <<<"$out"
  alive a b
  [ "$got" -ge "$3" ] || die "$1: $got of $3 messages in the Maildir after ${wait_max}s; B log: $(grep -v 'event=\(source\|fetch\|deliver\|pass\) ' "$work/b/daemon.log" | tail -n 5)"
  echo "$sent $total"
}
# Moves what the Maildir holds to DIR (B is idle between halves).
take_maildir() { mv "$work/Maildir/new" "$1" && mkdir "$work/Maildir/new"; }

half data "$work/warm.data" "$warm" >/dev/null; take_maildir "$work/got-warm-data"
half source "$work/warm.source" "$warm" >/dev/null; take_maildir "$work/got-warm-source"
out=$(half data "$work/msg.data" "$n"); read -r d_sent d_total <<<"$out"; take_maildir "$work/got-data"
out=$(half source "$work/msg.source" "$n"); read -r s_sent s_total <<<"$out"; take_maildir "$work/got-source"
sleep 0.3   # a duplicate delivery would show up in the check below
[ -z "$(ls -A "$work/Maildir/new")" ] || take_maildir "$work/got-late"

ms() { echo "$1 * 1000 / $n" | bc -l; }
printf 'messages: %d, %d bytes in all (%d to %d KB of text), the same files both ways; one Python smtplib connection a message, in turn, to msourced B on 127.0.0.1\n' \
  "$n" "$bytes" 1 10
printf 'held beforehand on A (untimed): %d msourced send, 2 at a time, %.1fs\n' $((n + warm)) "$(echo "$hold_t1 - $hold_t0" | bc -l)"
printf 'DATA: %.2fs, %.2f ms/message (MAIL, RCPT, DATA; B delivers into its Maildir before its 250; last reply at %.2fs)\n' \
  "$d_total" "$(ms "$d_total")" "$d_sent"
printf 'SOURCE/GET: %.2fs, %.2f ms/message (MAIL, RCPT, SOURCE <id>: notices given by %.2fs; B fetches each from A by GET and delivers; last in the Maildir at %.2fs)\n' \
  "$s_total" "$(ms "$s_total")" "$s_sent" "$s_total"
printf 'ratio source/data = %.2f (target <= 3)\n' "$(echo "$s_total / $d_total" | bc -l)"

# Correctness, not timing.
r_data=$("$py" "$work/check.py" "$work/msg.data" "$work/got-data" unverified)
r_source=$("$py" "$work/check.py" "$work/msg.source" "$work/got-source" verified)
late=0
[ ! -d "$work/got-late" ] || late=$(find "$work/got-late" -type f | wc -l)
[ "$r_data" = "OK $n" ] || die "DATA delivery: $r_data"
[ "$r_source" = "OK $n" ] || die "SOURCE/GET delivery: $r_source"
[ "$late" -eq 0 ] || die "$late messages delivered again after the SOURCE/GET half"
alive a b
served=$(grep -c 'event=get .*result=served' "$work/a/daemon.log" || true)
fetched=$(grep -c 'event=fetch .*result=delivered' "$work/b/daemon.log" || true)
deferred=$(grep -c 'event=fetch .*result=\(deferred\|refused\)' "$work/b/daemon.log" || true)
warnings=$(cat "$work/a/daemon.log" "$work/b/daemon.log" | grep -c 'level=\(warning\|err\|crit\|alert\|emerg\) ' || true)
printf 'checked: all %d delivered files match their originals both ways (body sha256, line ends aside; X-Mailstamp-Source unverified for DATA, verified for SOURCE/GET)\n' "$n"
printf 'checked: with the %d warm-up messages, A served %d GETs, B fetched and delivered %d, %d fetches deferred or refused; %d warnings or errors in the logs of A and B\n' \
  "$warm" "$served" "$fetched" "$deferred" "$warnings"
