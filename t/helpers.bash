# Shared setup for the bats files: the build tree's programs on PATH, and a
# private HOME, config and store per test.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

: "${MAILSTAMP_BIN:=$BATS_TEST_DIRNAME/../build}"
: "${MAILSTAMP_SRC:=$BATS_TEST_DIRNAME/..}"

common_setup() {
  # /usr/sbin: Postfix's smtp-sink and smtp-source for a user whose PATH lacks it.
  export PATH="$MAILSTAMP_BIN:$PATH:/usr/sbin"
  export HOME="$BATS_TEST_TMPDIR/home"
  mkdir -p "$HOME"
  unset MAILSTAMP_CONFIG MAILSTAMP_DB XDG_CONFIG_HOME XDG_DATA_HOME MAILSTAMP_TEST_NOW
  if [ -n "${MAILSTAMP_TEST_PG:-}" ]; then
    pg_test_store
  else
    export MAILSTAMP_DB="$BATS_TEST_TMPDIR/store.db"
  fi
  FIX="$MAILSTAMP_SRC/t/fixtures"
  test_dns
}

# The PostgreSQL pass (make test-pg): MAILSTAMP_TEST_PG names the directory of a running t/pg.sh cluster,
# and every test gets a fresh, empty database of its own as MAILSTAMP_DB (a postgresql:// URI). The
# databases of the file's earlier tests are dropped first (tests in one file run one after another; the
# last one goes with the cluster), so that a few hundred tests need not hold a few hundred databases.
pg_test_store() {
  local sock list="$BATS_FILE_TMPDIR/pg-databases" name old
  sock="$(realpath -m "$MAILSTAMP_TEST_PG")/sock"
  [ -S "$sock/.s.PGSQL.5432" ] || { echo "MAILSTAMP_TEST_PG=$MAILSTAMP_TEST_PG: no cluster runs there (t/pg.sh start)" >&2; return 1; }
  if [ -s "$list" ] && [ "${BATS_NUMBER_OF_PARALLEL_JOBS:-1}" -le 1 ]; then
    while read -r old; do
      dropdb --if-exists --force -h "$sock" -U postgres "$old" >/dev/null 2>&1 || true
    done <"$list"
    : >"$list"
  fi
  name="t_$(md5sum <<<"$BATS_TEST_TMPDIR" | cut -c1-12)_$$_$RANDOM"
  createdb -S file_copy -h "$sock" -U postgres "$name" || { echo "createdb $name failed" >&2; return 1; }
  echo "$name" >>"$list"
  PG_TEST_DBNAME=$name
  export MAILSTAMP_DB="postgresql:///$name?host=$sock&user=postgres"
}

# skip_unless_sqlite REASON: skips the test in the PostgreSQL pass; for tests that reach into the SQLite
# file itself (its path, its locks, its -wal file) rather than through the programs.
skip_unless_sqlite() {
  [ -z "${MAILSTAMP_TEST_PG:-}" ] || skip "SQLite store only: $1"
}

# store_sql SQL: runs SQL on the test's store ($MAILSTAMP_DB) whichever the backend, printing rows as
# sqlite3 and psql -A both do (columns joined by |). Only for SQL both dialects take.
store_sql() {
  if [[ "$MAILSTAMP_DB" == postgres://* || "$MAILSTAMP_DB" == postgresql://* ]]; then
    psql -X -qAt -v ON_ERROR_STOP=1 "$MAILSTAMP_DB" -c "$1"
  else
    sqlite3 "$MAILSTAMP_DB" "$1"
  fi
}

# test_dns: every program asks the tests' own DNS server, never the host's (whose answers, or timeouts,
# would decide the tests): one server per test file with an empty zone, so every name is NXDOMAIN and no
# domain publishes SPF or DMARC. A test that needs records starts its own (start_zone), which takes over
# MAILSTAMP_DNS. The shared server ends by itself 10 minutes after its last query (no teardown_file
# is common to every file); each test's setup touches its zone to keep it alive.
test_dns() {
  local d="$BATS_FILE_TMPDIR/dns" i
  mkdir -p "$d"
  if ! { [ -s "$d/pid" ] && [ -s "$d/port" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; }; then
    : >"$d/zone"
    rm -f "$d/port"
    /usr/bin/python3 "$MAILSTAMP_SRC/t/dns/zone-server.py" "$d/zone" --port-file "$d/port" --idle-exit 600 \
      >/dev/null 2>&1 3>&- &
    echo $! >"$d/pid"
    for i in $(seq 200); do [ -s "$d/port" ] && break; sleep 0.05; done
    [ -s "$d/port" ] || { echo "the tests' DNS server did not start" >&2; return 1; }
  fi
  touch "$d/zone"
  export MAILSTAMP_DNS="127.0.0.1:$(cat "$d/port")"
}

# A free port below the ephemeral range, so that no client's source port takes it before the server binds.
free_port() {
  /usr/bin/python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break'
}
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on $1" >&2
  [ -z "${WAIT_LOG:-}" ] || cat "$WAIT_LOG" >&2 2>/dev/null
  return 1
}

# SMTP test rigs shared by msmtp-proxy.bats and attacks.bats. They expect $M (scratch), PIDS (an array
# the teardown kills) and SINKU (smtp-sink's -u option when run as root).
proxy_rig_setup() {
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  PY=/usr/bin/python3
  TOOL="$MAILSTAMP_SRC/t/smtptool.py"
  SINKU=()
  [ "$(id -u)" -ne 0 ] || SINKU=(-u root)
  PIDS=()
  WAIT_LOG="$M/proxy.err"
}

# kill_rig: stops everything in PIDS.
kill_rig() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# need_smtp_sink: skips the test, saying why, when Postfix's smtp-sink is not installed. `make test`
# installs Postfix only where no other MTA is (t/other-mta.sh): it never replaces the host's mail server.
need_smtp_sink() {
  command -v smtp-sink >/dev/null && return 0
  local mta
  mta=$("$MAILSTAMP_SRC/t/other-mta.sh" 2>/dev/null | paste -sd, - | sed 's/,/, /g')
  if [ -n "$mta" ]; then
    skip "needs Postfix's smtp-sink, not installed: this machine's MTA is $mta, which make test does not replace"
  else
    skip "needs Postfix's smtp-sink, not installed: make test installs it (no other MTA is installed here)"
  fi
}

# start_sink [smtp-sink options]: the MTA behind the proxy; every message lands in $M/sink/.
start_sink() {
  need_smtp_sink
  SINK=$(free_port)
  mkdir -p "$M/sink"
  smtp-sink "${SINKU[@]}" -d "$M/sink/%M." "$@" "127.0.0.1:$SINK" 100 >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  wait_port "$SINK"
}

# start_proxy [options]: msmtp-proxy on $PORT relaying to the sink, logging to $M/proxy.log.
start_proxy() {
  PORT=$(free_port)
  msmtp-proxy --listen "127.0.0.1:$PORT" --hostname mx.ours.example --log "$M/proxy.log" "$@" >/dev/null 2>"$M/proxy.err" 3>&- &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port "$PORT"
}

sink_count() { find "$M/sink" -type f | wc -l; }
# wait_sink N: until the sink holds N messages (then a moment more, to see that no more come).
wait_sink() {
  local i
  for i in $(seq 100); do [ "$(sink_count)" -ge "$1" ] && break; sleep 0.05; done
  sleep 0.2
  [ "$(sink_count)" -eq "$1" ] || { echo "sink holds $(sink_count) messages, want $1" >&2; return 1; }
}
sink_all() { cat "$M"/sink/* 2>/dev/null; }

swaks_to() { swaks --server "127.0.0.1:$PORT" --helo client.example --from "$1" --to "$2" "${@:3}" 2>&1; }

# token_of OUTPUT: the token address a 550 reply handed out.
token_of() { sed -n 's/.*this address: <\([^>]*\)>.*/\1/p' <<<"$1" | head -1; }

# token_round_trip LOG: through whatever listens on $PORT and delivers to the sink (which must be empty): a
# stranger writing to bob@ours.example gets the 550 with a token address, logged in LOG; the resend to it
# from another sender reaches bob, W by the token; the same one-time token again is refused. Sets tok.
token_round_trip() {
  run swaks_to stranger@bad.example bob@ours.example
  assert_output --partial "550-5.7.1 <bob@ours.example> takes mail only from senders it knows"
  tok=$(token_of "$output")
  [[ "$tok" == bob+*@ours.example ]]
  grep -q "event=reject .*rcpt=bob@ours.example .*token=$tok" "$1"
  [ "$(sink_count)" -eq 0 ]
  # Python's smtplib resends to the token address, from another sender: the token is not sender-bound.
  run $PY "$TOOL" send "$PORT" other@bad.example "$tok"
  assert_output "sent "
  wait_sink 1
  sink_all | grep -q '^X-Rcpt-Args: <bob@ours.example>'
  sink_all | grep -q "^X-Mailstamp-Class: W (Whitelist: token address $tok)"
  # The same one-time token the second time: refused.
  run $PY "$TOOL" send "$PORT" stranger@bad.example "$tok"
  assert_output --partial "refused $tok 550"
}


# fake_sendmail PATH: a sendmail at PATH that keeps what it is given: one directory per message under
# $M/sent, with its argv and the message.
fake_sendmail() {
  cat >"$1" <<EOF
#!/bin/bash
d="$M/sent/\$(date +%s%N)\$\$"
mkdir -p "\$d"
printf '%s\n' "\$@" >"\$d/argv"
cat >"\$d/msg"
EOF
  chmod +x "$1"
}

# start_zone FILE: the tests' own DNS server (t/dns/zone-server.py, loopback only) answering from the zone
# FILE (re-read when it changes), its queries logged to FILE.log; MAILSTAMP_DNS points every program at it.
# Needs PIDS (proxy_rig_setup) for the teardown to stop it.
start_zone() {
  local pf="$1.port" i
  rm -f "$pf"
  /usr/bin/python3 "$MAILSTAMP_SRC/t/dns/zone-server.py" "$1" --port-file "$pf" --log "$1.log" >/dev/null 2>&1 3>&- &
  PIDS+=($!)
  for i in $(seq 200); do [ -s "$pf" ] && break; sleep 0.05; done
  [ -s "$pf" ] || { echo "zone server did not start" >&2; return 1; }
  export MAILSTAMP_DNS="127.0.0.1:$(cat "$pf")"
}


# dkim_key NAME SELECTOR DOMAIN: an RSA key in $M/NAME.pem, its record appended to $ZONE (before start_zone).
dkim_key() {
  openssl genrsa -out "$M/$1.pem" 2048 2>/dev/null
  local p
  p=$(openssl rsa -in "$M/$1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
  printf '%s._domainkey.%s TXT "v=DKIM1; k=rsa; p=%s" "%s"\n' "$2" "$3" "${p:0:200}" "${p:200}" >>"$ZONE"
}

# dkim_sign FILE KEY SELECTOR DOMAIN [CANON [FIELD...]]: FILE signed in place by dkimpy. CANON is the header/body
# canonicalization (relaxed/simple, dkimpy's default, unless given); the fields signed are From, To, Subject and
# Message-ID unless named.
dkim_sign() {
  /usr/bin/python3 -c '
import sys, dkim
f, key, sel, dom = sys.argv[1:5]
canon = (sys.argv[5] if len(sys.argv) > 5 else "relaxed/simple").encode().split(b"/")
names = [n.lower().encode() for n in sys.argv[6:]] or [b"from", b"to", b"subject", b"message-id"]
m = open(f, "rb").read()
sig = dkim.sign(m, sel.encode(), dom.encode(), open(key, "rb").read(), canonicalize=tuple(canon),
                include_headers=names)
open(f, "wb").write(sig + m)' "$@"
}
