#!/usr/bin/env bats
# mmilter --policy, the Postfix policy delegation service: the protocol on
# stdin/stdout (as spawn(8) runs it) with requests written by printf, its
# bounds and the store's failures; then end to end behind a private Postfix
# (t/postfix.bash) relaying to smtp-sink, once with the service listening
# (check_policy_service inet:) and once spawned by Postfix's master.

load helpers
load postfix

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  mwhitelist add friend@good.example >/dev/null
  PSTORE=
}

teardown() {
  stop_postfix
  kill_rig
  [ -z "$PSTORE" ] || rm -rf "$PSTORE"
}

# req STATE INSTANCE SENDER RECIPIENT: one request as Postfix writes it.
req() {
  printf 'request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\ninstance=%s\n' "$1" "$2"
  printf 'client_address=192.0.2.7\nclient_port=40000\nclient_name=unknown\nhelo_name=client.example\n'
  printf 'sender=%s\nrecipient=%s\nrecipient_count=0\nqueue_id=\nsasl_username=\nsize=0\n\n' "$3" "$4"
}

# policy [options]: one session on stdin/stdout, its log in $M/policy.log.
policy() { mmilter --policy --log "$M/policy.log" "$@"; }

@test "help: --policy picks the policy service's options; without it the milter, which wants a socket" {
  run mmilter --help
  assert_success
  assert_output --partial "mmilter --policy --help"
  refute_output --partial "--claim-at"
  run mmilter --policy --help
  assert_success
  assert_output --partial "--claim-at"
  refute_output --partial "--unknown"
  # Without --policy the milter, which needs a socket.
  run mmilter
  assert_failure 64
  assert_output "mmilter: give one --listen HOST:PORT or unix:PATH, or a socket from systemd"
  run mmilter --policy --claim-at never </dev/null
  assert_failure 64
  assert_output --partial "claim-at must be end-of-message or rcpt"
}

@test "stdin: whitelisted DUNNO, stranger 550 with a token address, postmaster and other stages DUNNO" {
  { req RCPT 1 friend@good.example bob@ours.example
    req RCPT 2 stranger@bad.example bob@ours.example
    req RCPT 2 stranger@bad.example postmaster@ours.example
    req RCPT 2 stranger@bad.example eve@elsewhere.example
    req DATA 2 stranger@bad.example ''
    req END-OF-MESSAGE 2 stranger@bad.example ''; } >"$M/in"
  run policy <"$M/in"
  assert_success
  [ "${#lines[@]}" -eq 6 ]
  [ "${lines[0]}" = "action=DUNNO" ]
  [[ "${lines[1]}" == "action=550 5.7.1 <bob@ours.example> takes mail only from senders it knows. To reach bob@ours.example, please send your message again, once, to this address: <bob+"*"@ours.example>" ]]
  [ "${lines[2]}" = "action=DUNNO" ]  # postmaster takes all mail
  [ "${lines[3]}" = "action=DUNNO" ]  # not a protected domain: Postfix's relay rules decide
  [ "${lines[4]}" = "action=DUNNO" ]
  [ "${lines[5]}" = "action=DUNNO" ]
  # Each answer is one action line and an empty line.
  req RCPT 1 friend@good.example bob@ours.example >"$M/in"
  policy <"$M/in" >"$M/out"
  printf 'action=DUNNO\n\n' | cmp - "$M/out"
  run cat "$M/policy.log"
  assert_output --regexp 'event=reject client=192\.0\.2\.7:40000 helo=client\.example sender=stranger@bad\.example rcpt=bob@ours\.example instance=2 reason="unknown sender" token=bob\+'
}

@test "stdin: the token address takes one resend, used at END-OF-MESSAGE; released when the transaction ends otherwise" {
  out=$(req RCPT 1 stranger@bad.example bob@ours.example | policy)
  tok=$(token_of "$out")
  [ -n "$tok" ]
  # Reserved at RCPT, then the transaction ends without END-OF-MESSAGE (RSET, a refused DATA): given back.
  { req RCPT 2 stranger@bad.example "$tok"; req RCPT 3 stranger@bad.example bob@ours.example; } >"$M/in"
  run policy <"$M/in"
  assert_success
  [ "${lines[0]}" = "action=DUNNO" ]
  grep -q "event=token_release .*instance=2" "$M/policy.log"
  # Reserved, then used at END-OF-MESSAGE of the same instance.
  { req RCPT 4 stranger@bad.example "$tok"; req END-OF-MESSAGE 4 stranger@bad.example ''; } >"$M/in"
  run policy <"$M/in"
  assert_success
  [ "${lines[0]}" = "action=DUNNO" ]
  [ "${lines[1]}" = "action=DUNNO" ]
  grep -q "event=token_claim .*instance=4" "$M/policy.log"
  # Used: a second resend is a stranger's, with a fresh token.
  req RCPT 5 stranger@bad.example "$tok" >"$M/in"
  run policy <"$M/in"
  assert_success
  assert_output --partial "action=550 5.7.1 <bob@ours.example> takes mail only from senders it knows."
  [ "$(token_of "$output")" != "$tok" ]
}

@test "stdin: --claim-at rcpt uses the token at RCPT" {
  tok=$(token_of "$(req RCPT 1 stranger@bad.example bob@ours.example | policy)")
  [ -n "$tok" ]
  { req RCPT 2 stranger@bad.example "$tok"; req RCPT 3 stranger@bad.example "$tok"; } >"$M/in"
  run policy --claim-at rcpt <"$M/in"
  assert_success
  [ "${lines[0]}" = "action=DUNNO" ]
  [[ "${lines[1]}" == "action=550 5.7.1 "* ]]
}

@test "stdin: bad and oversized input ends the session with a clear error and exit 65" {
  bad() { run mmilter --policy --log /dev/null <"$M/in"; }
  printf 'request=smtpd_access_policy\nthis is no attribute\n\n' >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: not name=value: 'this is no attribute'"
  { printf 'request=smtpd_access_policy\nsender='; printf '%05000d\n\n' 0; } >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: line longer than 4096 octets"
  # 4096 octets are allowed.
  { req RCPT 1 friend@good.example bob@ours.example | head -n -1; printf 'x=%04094d\n\n' 0; } >"$M/in"
  bad
  assert_success
  assert_output "action=DUNNO"
  { for i in $(seq 101); do echo "a$i=b"; done; echo; } >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: more than 100 attributes in a request"
  { for i in $(seq 70); do printf 'a%d=%01000d\n' "$i" 0; done; echo; } >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: request larger than 65536 octets"
  printf 'request=smtpd_access_policy\nsender=a@b.example' >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: connection closed inside a request"
  printf '\n' >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: empty request (an empty line before any attribute)"
  printf 'request=junk\n\n' >"$M/in"
  bad
  assert_failure 65
  assert_output "mmilter: policy: not a policy request (want request=smtpd_access_policy)"
  # Answers given before the bad request stand; the log names the error.
  { req RCPT 1 friend@good.example bob@ours.example; printf 'junk\n\n'; } >"$M/in"
  run policy <"$M/in"
  assert_failure 65
  assert_line --index 0 "action=DUNNO"
  grep -q "event=protocol client=stdin error=\"not name=value: 'junk'\"" "$M/policy.log"
  # End of input between requests is the normal end.
  : >"$M/in"
  bad
  assert_success
  assert_output ""
}

@test "stdin: a locked store is a 451, never a DUNNO for a stranger" {
  skip_unless_sqlite "another process holds the SQLite file's write lock (sqlite3 BEGIN IMMEDIATE)"
  printf '[common]\nbusy-timeout = 1s\n' >"$M/conf"
  (sqlite3 "$MAILSTAMP_DB" "PRAGMA busy_timeout=100; BEGIN IMMEDIATE; SELECT 1 FROM whitelist;" ".shell sleep 5" "COMMIT;" >/dev/null) &
  PIDS+=($!)
  sleep 0.5
  req RCPT 1 stranger@bad.example bob@ours.example >"$M/in"
  run policy --config "$M/conf" <"$M/in"
  assert_success
  assert_output "action=451 4.3.0 cannot answer now, try again later"
  wait
  # A store that cannot be opened at all: 451 too.
  mkdir "$M/dir.db"
  req RCPT 1 friend@good.example bob@ours.example >"$M/in"
  run policy --db "$M/dir.db" <"$M/in"
  assert_success
  assert_output "action=451 4.3.0 cannot answer now, try again later"
}

@test "stdin: a whitelisted sender whose SPF DNS fails is a 451, never a verdict" {
  # Nothing answers on port 9: every lookup fails at once.
  req RCPT 1 friend@good.example bob@ours.example >"$M/in"
  run policy --dns 127.0.0.1:9 <"$M/in"
  assert_success
  assert_output "action=451 4.7.0 cannot check the sender's authentication now (DNS), try again later"
  # The tests' DNS server answers (nothing published): the hit counts.
  run policy <"$M/in"
  assert_output "action=DUNNO"
}

# pf_flow POSTFIX_PORT: the paths end to end through Postfix and the service: whitelisted delivered, a
# stranger refused at RCPT with a token address, one resend to it delivered, a second refused, postmaster
# delivered.
pf_flow() {
  run swaks --server "127.0.0.1:$1" --helo client.example --from friend@good.example --to bob@ours.example
  assert_success
  wait_sink 1
  run swaks --server "127.0.0.1:$1" --helo client.example --from stranger@bad.example --to bob@ours.example
  assert_failure
  assert_output --regexp '<\*\* 550 5\.7\.1 <bob@ours\.example>: Recipient address rejected: <bob@ours\.example> takes mail only from senders it knows\. To reach bob@ours\.example, please send your message again, once, to this address: <bob\+[a-z0-9]+@ours\.example>'
  tok=$(token_of "$output")
  [ -n "$tok" ]
  wait_sink 1
  run swaks --server "127.0.0.1:$1" --helo client.example --from stranger@bad.example --to "$tok"
  assert_success
  wait_sink 2
  sink_all | grep -q "^To: $tok"
  run swaks --server "127.0.0.1:$1" --helo client.example --from stranger@bad.example --to "$tok"
  assert_failure
  assert_output --partial "550 5.7.1 <$tok>: Recipient address rejected: <bob@ours.example> takes mail only from senders it knows."
  run swaks --server "127.0.0.1:$1" --helo client.example --from stranger@bad.example --to postmaster@ours.example
  assert_success
  wait_sink 3
}

@test "postfix: check_policy_service inet: to the listening service" {
  need_postfix
  start_sink
  PP=$(free_port)
  mmilter --policy --listen "127.0.0.1:$PP" --log "$M/policy.log" 2>"$M/policy.err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/policy.err" wait_port "$PP"
  start_postfix "$SINK" \
    "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$PP" \
    "smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:$PP"
  pf_flow "$PF_PORT"
  grep -q 'event=listen address=127\.0\.0\.1:'"$PP"' role=policy' "$M/policy.log"
  grep -q 'event=token_claim ' "$M/policy.log"
  run grep -c 'event=token_release ' "$M/policy.log"
  assert_output 0
}

@test "postfix: spawn(8) runs one session a connection on stdin/stdout (unix:private/policy)" {
  need_postfix
  start_sink
  # Everything the spawned service (user nobody) touches is its own: the store, the log.
  PSTORE=$(mktemp -d /tmp/mailstamp-policy.XXXXXX)
  MAILSTAMP_DB="$PSTORE/store.db" mwhitelist domain add ours.example >/dev/null
  MAILSTAMP_DB="$PSTORE/store.db" mwhitelist add friend@good.example >/dev/null
  : >"$PSTORE/policy.log"
  chown -R nobody "$PSTORE"
  PF_MASTER_EXTRA="policy unix - n n - 0 spawn user=nobody argv=$(readlink -f "$MAILSTAMP_BIN/mmilter") --policy --config /dev/null --db $PSTORE/store.db --dns $MAILSTAMP_DNS --log $PSTORE/policy.log" \
    start_postfix "$SINK" \
    "smtpd_recipient_restrictions = check_policy_service unix:private/policy" \
    "smtpd_end_of_data_restrictions = check_policy_service unix:private/policy" \
    "policy_time_limit = 3600"
  pf_flow "$PF_PORT"
  grep -q 'event=token_claim ' "$PSTORE/policy.log"
  run grep -c 'event=token_release ' "$PSTORE/policy.log"
  assert_output 0
  run bash -c "grep -E 'warning: .*(policy|spawn)' '$PF/maillog'"
  assert_failure 1
}

@test "listening on a unix socket; a connection over the bound is told 451" {
  S="$M/policy.sock"
  mmilter --policy --listen "unix:$S" --max-sessions 1 --log "$M/policy.log" 2>"$M/policy.err" 3>&- &
  PIDS+=($!)
  for i in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
  [ -S "$S" ]
  run /usr/bin/python3 - "$S" <<'EOF'
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    return s
req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\ninstance=1\nsender=friend@good.example\n"
       b"recipient=bob@ours.example\nclient_address=192.0.2.7\n\n")
a = conn()
a.sendall(req)
print(a.recv(4096).decode().strip())
b = conn()
time.sleep(0.3)
print(b.recv(4096).decode().strip())
EOF
  assert_success
  assert_line --index 0 "action=DUNNO"
  assert_line --index 1 "action=451 4.3.2 too many connections to the policy service, try again later"
  grep -q "event=listen address=unix:$S role=policy" "$M/policy.log"
}

# ask PORT: the request on stdin to the service on 127.0.0.1:PORT, over one connection; prints the answer.
ask() {
  /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
answer = b""
while not answer.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.decode().strip())' "$1"
}

@test "systemd socket activation; SIGHUP reopens --log (once a connection ends) and the service goes on" {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate not installed (package systemd)"
  PP=$(free_port)
  # systemd-socket-activate passes on no environment but PATH, HOME, USER and TERM.
  systemd-socket-activate -l "127.0.0.1:$PP" "$MAILSTAMP_BIN/mmilter" --policy --db "$MAILSTAMP_DB" \
    --config /dev/null --dns "$MAILSTAMP_DNS" --log "$M/policy.log" 2>"$M/policy.err" 3>&- &
  pid=$!
  PIDS+=($pid)
  WAIT_LOG="$M/policy.err" wait_port "$PP"
  run ask "$PP" < <(req RCPT 1 friend@good.example bob@ours.example)
  assert_output "action=DUNNO"
  # The process systemd-socket-activate became, on the socket it was given.
  grep -q "mmilter\[$pid\]: .*event=listen address=127\.0\.0\.1:$PP role=policy" "$M/policy.log"
  mv "$M/policy.log" "$M/policy.log.1"
  kill -HUP "$pid"
  run ask "$PP" < <(req RCPT 2 stranger@bad.example bob@ours.example)
  assert_output --partial "action=550 5.7.1"
  # The connection that ended reopened the log.
  for i in $(seq 100); do [ -e "$M/policy.log" ] && break; sleep 0.05; done
  run ask "$PP" < <(req RCPT 3 stranger@bad.example carol@ours.example)
  assert_output --partial "action=550 5.7.1"
  kill -0 "$pid"
  grep -q 'event=reject .*rcpt=bob@ours\.example' "$M/policy.log.1"
  grep -q 'event=reject .*rcpt=carol@ours\.example' "$M/policy.log"
  run grep -c 'rcpt=carol@' "$M/policy.log.1"
  assert_output 0
  kill -TERM "$pid"
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null
  grep -q 'event=stop' "$M/policy.log"
}
