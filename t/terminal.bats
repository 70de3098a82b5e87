#!/usr/bin/env bats
# Errors a human sees (mailstamp(7) LOGGING): a daemon started on a terminal,
# or with no syslog daemon to read its log, says why it refuses service on
# standard error -- but never into an inetd client's socket; a command on a
# terminal prints its result without repeating it as a log line, unless
# --log-level asks. Terminals come from script(1).

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
}

# on_tty COMMAND: runs the command string on a new terminal (stdin, stdout and stderr); output without CRs.
on_tty() {
  script -qec "$1" /dev/null </dev/null | tr -d '\r'
  return "${PIPESTATUS[0]}"
}

# syslog_up: a syslog daemon listens on /dev/log.
syslog_up() {
  /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.connect("/dev/log")
except OSError:
    sys.exit(1)'
}

@test "a command on a terminal prints its result once; --log-level info adds the log line" {
  run on_tty "mwhitelist add friend@example.org"
  assert_success
  assert_output "added friend@example.org"
  run on_tty "mwhitelist --log-level info add other@example.org"
  assert_success
  assert_line "added other@example.org"
  assert_line --regexp '^[0-9T:-]+Z mwhitelist\[[0-9]+\]: level=info event=whitelist_add entry="added other@example.org"$'
  # Warnings still show without asking.
  run on_tty "mwhitelist remove nobody@example.org"
  assert_failure
  assert_output --partial "nobody@example.org: no such entry"
}

@test "a command's config log-level counts as asking" {
  printf '[common]\nlog-level = info\n' >"$M/m.conf"
  run on_tty "mwhitelist --config $M/m.conf add friend@example.org"
  assert_success
  assert_line "added friend@example.org"
  assert_line --partial 'level=info event=whitelist_add entry="added friend@example.org"'
}

@test "msmtp-proxy bare on a terminal: a bad config file's reason is printed beside the 421" {
  run on_tty "msmtp-proxy --config $M/missing.conf"
  assert_failure
  assert_line "421 4.3.0 service not available (configuration)"
  assert_line --regexp "^msmtp-proxy: .*$M/missing.conf"
}

@test "msmtp-proxy bare on a terminal: a missing TLS certificate is named beside the 421, once" {
  run on_tty "msmtp-proxy --maildir $M/md --tls-cert $M/none.pem --tls-key $M/none.key"
  assert_failure
  assert_line "421 4.3.0 service not available (configuration)"
  assert_line --regexp "^msmtp-proxy: $M/none.pem: cannot load the TLS certificate"
  # Said once: the log (on this terminal too) does not repeat it.
  [ "$(grep -c 'none.pem' <<<"$output")" -eq 1 ]
}

@test "msourced bare on a terminal: a bad config file's reason is printed beside the 421" {
  run on_tty "msourced --config $M/missing.conf"
  assert_failure
  assert_line "421 4.3.0 service not available (configuration)"
  assert_line --regexp "^msourced: .*$M/missing.conf"
}

@test "inetd with stderr the client's socket: the client gets the 421 and nothing else" {
  # fds 0, 1 and 2 are one end of a socket pair, as inetd and xinetd set them; then the same with
  # stderr a file of its own, where the reason must be.
  run /usr/bin/python3 - "$M/missing.conf" "$M/err" <<'EOF'
import socket, subprocess, sys
conf, errfile = sys.argv[1], sys.argv[2]
for own_stderr in (False, True):
    a, b = socket.socketpair()
    err = open(errfile, "wb") if own_stderr else b
    p = subprocess.Popen(["msmtp-proxy", "--config", conf], stdin=b, stdout=b, stderr=err)
    b.close()
    data = b""
    while True:
        chunk = a.recv(4096)
        if not chunk:
            break
        data += chunk
    rc = p.wait()
    print(("own-stderr" if own_stderr else "shared"), rc, repr(data))
EOF
  assert_success
  assert_line "shared 66 b'421 4.3.0 service not available (configuration)\\r\\n'"
  assert_line "own-stderr 66 b'421 4.3.0 service not available (configuration)\\r\\n'"
  run cat "$M/err"
  assert_output --regexp "^msmtp-proxy: .*$M/missing.conf"
}

@test "a daemon's log goes to stderr when no syslog daemon listens (and to syslog when one does)" {
  # inetd mode, stdin not a terminal: the store's directory is missing, so the session ends with 421.
  run bash -c "msmtp-proxy --db '$M/no/such/dir/store.db' --maildir '$M/Maildir' --hostname mx.ours.example </dev/null 2>'$M/err'"
  assert_output --partial "421 4.3.0 mx.ours.example service temporarily unavailable"
  if syslog_up; then
    run cat "$M/err"
    refute_output --partial "event=store"
  else
    run cat "$M/err"
    assert_output --regexp "msmtp-proxy\[[0-9]+\]: level=err event=store .*no/such/dir"
  fi
  # A filter is no daemon: with no terminal its log stays off stderr either way.
  mwhitelist domain add ours.example >/dev/null 2>&1
  printf 'From: a@b.example\nTo: c@ours.example\nSubject: x\n\nhi\n' >"$M/m.eml"
  run bash -c "mverify --rcpt c@ours.example <'$M/m.eml' 2>'$M/err2' >/dev/null"
  assert_success
  run cat "$M/err2"
  assert_output ""
}
