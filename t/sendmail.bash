# A private Sendmail for the tests that run mmilter under it (the milter's other MTA): Debian's binary
# unpacked by t/sendmail-fetch.sh (never installed: sendmail-bin conflicts with Postfix), a sendmail.cf
# made by m4 from Debian's sendmail-cf for this test, running in the foreground (-bD) on 127.0.0.1 on a
# free high port, relaying everything to a port the test names (smtp-sink). It runs in a UTS namespace
# of its own named mx.ours.example: Sendmail wants a qualified host name and sleeps a minute otherwise.
# Sendmail logs only to syslog, which these machines lack: tests look at replies and at the sink.
# Load it after helpers.bash; call stop_sendmail in teardown.
#
#   need_sendmail                skip (saying why) unless the unpacked Sendmail is there and we are root
#   start_sendmail SINKPORT [mc lines...]
#                                starts it: SM (its directory), SM_PORT (its port)
#   stop_sendmail                stops it and removes its directory

: "${MAILSTAMP_SENDMAIL_TREE:=$MAILSTAMP_SRC/.sendmail}"

need_sendmail() {
  need_smtp_sink
  [ -x "$MAILSTAMP_SENDMAIL_TREE/root/usr/libexec/sendmail/sendmail" ] ||
    skip "needs Sendmail unpacked by t/sendmail-fetch.sh into $MAILSTAMP_SENDMAIL_TREE (make test does it)"
  [ "$(id -u)" -eq 0 ] || skip "needs root: Sendmail's daemon starts as root"
  command -v m4 >/dev/null || skip "needs m4 to make a sendmail.cf"
  unshare -u true 2>/dev/null || skip "needs a UTS namespace (unshare -u) to give Sendmail a qualified host name"
}

start_sendmail() {
  need_sendmail
  local sink="$1" line root="$MAILSTAMP_SENDMAIL_TREE/root"
  shift
  SM=$(mktemp -d /tmp/mailstamp-sendmail.XXXXXX)
  mkdir -p "$SM/queue" "$SM/mqueue"
  chmod 700 "$SM/queue"
  SM_PORT=$(free_port)
  printf 'hosts files\naliases files\n' >"$SM/service.switch"
  {
    echo "include(\`$root/usr/share/sendmail/cf/m4/cf.m4')dnl"
    echo "OSTYPE(\`linux')dnl"
    echo "define(\`confDOMAIN_NAME', \`mx.ours.example')dnl"
    echo "define(\`confSERVICE_SWITCH_FILE', \`$SM/service.switch')dnl"
    echo "define(\`confDONT_PROBE_INTERFACES', \`True')dnl"
    echo "define(\`confHOST_STATUS_DIRECTORY', \`')dnl"
    echo "define(\`confCW_FILE', \`')dnl"
    echo "define(\`ALIAS_FILE', \`')dnl"
    echo "define(\`QUEUE_DIR', \`$SM/queue')dnl"
    echo "define(\`MSP_QUEUE_DIR', \`$SM/mqueue')dnl"
    echo "define(\`STATUS_FILE', \`$SM/statistics')dnl"
    echo "define(\`confPID_FILE', \`$SM/sendmail.pid')dnl"
    echo "define(\`confDELIVERY_MODE', \`interactive')dnl"
    echo "define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe')dnl"
    echo "define(\`SMART_HOST', \`relay:[127.0.0.1]')dnl"
    echo "define(\`RELAY_MAILER_ARGS', \`TCP \$h $sink')dnl"
    echo "define(\`confTO_ICONNECT', \`5s')dnl"
    echo "FEATURE(\`nocanonify')dnl"
    echo "FEATURE(\`no_default_msa')dnl"
    echo "FEATURE(\`accept_unresolvable_domains')dnl"
    echo "DAEMON_OPTIONS(\`Port=$SM_PORT, Addr=127.0.0.1, Name=MTA')dnl"
    echo "RELAY_DOMAIN(\`ours.example')dnl"
    for line in "$@"; do printf '%s\n' "$line"; done
    echo "MAILER(\`smtp')dnl"
  } >"$SM/test.mc"
  m4 "$SM/test.mc" >"$SM/sendmail.cf" 2>"$SM/m4.err" || { cat "$SM/m4.err" >&2; return 1; }
  unshare -u sh -c "hostname mx.ours.example && exec '$root/usr/libexec/sendmail/sendmail' -C '$SM/sendmail.cf' -bD" \
    >"$SM/sendmail.out" 2>&1 3>&- &
  SM_PID=$!
  WAIT_LOG="$SM/sendmail.out" wait_port "$SM_PORT"
}

stop_sendmail() {
  [ -n "${SM:-}" ] && [ -d "$SM" ] || return 0
  kill "$SM_PID" 2>/dev/null || true
  wait "$SM_PID" 2>/dev/null || true
  rm -rf "$SM"
  SM=
}
