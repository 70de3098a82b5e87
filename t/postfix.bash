# A private Postfix instance for the tests that put mailstamp inside a real MTA (mmilter, the policy
# service, msmtp-proxy's XCLIENT and PROXY protocol): its own config, queue and data directories under
# /tmp, listening on 127.0.0.1 only on a free high port, relaying everything to a port the test names
# (smtp-sink), logging to a file. It never touches the host's Postfix (/etc/postfix is only read for the
# daemon directories). Load it after helpers.bash; call stop_postfix in teardown.
#
#   need_postfix                 skip unless Postfix is installed and the test runs as root (master(8)
#                                must start as root to become mail_owner)
#   start_postfix SINKPORT [main.cf lines...]
#                                starts the instance: PF (its directory), PF_PORT (its smtpd); a line
#                                replaces the default of its parameter; extra master.cf lines may be given
#                                in PF_MASTER_EXTRA
#   pf_log                       the instance's maillog
#   stop_postfix                 stops it and removes its directory
#   start_fake_sasl USER PASSWORD
#                                a stand-in for Dovecot's auth service (t/tools/fake-dovecot-auth.py) that
#                                knows USER only: SASL_PORT, its log $M/sasl.log (needs PIDS), and PF_SASL,
#                                the main.cf lines that make the instance's smtpd authenticate through it

need_postfix() {
  need_smtp_sink
  command -v postfix >/dev/null || PATH="$PATH:/usr/sbin"
  command -v postfix >/dev/null || skip "needs Postfix installed"
  [ "$(id -u)" -eq 0 ] || skip "needs root: a private Postfix's master(8) starts as root to become mail_owner"
}

start_postfix() {
  need_postfix
  local sink="$1" line name i
  shift
  # Not under BATS_TEST_TMPDIR: its parents are mode 0700 and Postfix's daemons run as the postfix user.
  PF=$(mktemp -d /tmp/mailstamp-postfix.XXXXXX)
  chmod 755 "$PF"
  mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
  chown postfix: "$PF/data"
  PF_PORT=$(free_port)
  cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
command_directory = /usr/sbin
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = /tmp
myhostname = mx.ours.example
mydomain = ours.example
myorigin = ours.example
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.2/32
relay_domains = ours.example
relay_transport = smtp:[127.0.0.1]:$sink
default_transport = smtp:[127.0.0.1]:$sink
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_banner = mx.ours.example ESMTP
biff = no
EOF
  # A line given for a parameter above replaces it (Postfix would warn of the override in every daemon's log).
  for line in "$@"; do
    name="${line%%=*}"
    name="${name%"${name##*[! ]}"}"
    grep -v "^$name = " "$PF/etc/main.cf" >"$PF/etc/main.cf.new" || true
    mv "$PF/etc/main.cf.new" "$PF/etc/main.cf"
    printf '%s\n' "$line" >>"$PF/etc/main.cf"
  done
  cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
${PF_MASTER_EXTRA:-}
EOF
  # postfix(1) reports only to syslog or a terminal; there is no syslog here, so its errors go to the log
  # through script(1)'s terminal.
  script -qec "postfix -c '$PF/etc' start" /dev/null >"$PF/start.out" 2>&1 || {
    cat "$PF/start.out" "$PF/maillog" >&2 2>/dev/null
    return 1
  }
  WAIT_LOG="$PF/maillog" wait_port "$PF_PORT"
}

pf_log() { cat "$PF/maillog" 2>/dev/null; }

stop_postfix() {
  [ -n "${PF:-}" ] && [ -d "$PF" ] || return 0
  local pid i
  pid=$(head -1 "$PF/queue/pid/master.pid" 2>/dev/null | tr -d ' ')
  postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  if [ -n "$pid" ]; then
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$PF"
  PF=
}

start_fake_sasl() {
  SASL_PORT=$(free_port)
  /usr/bin/python3 "$MAILSTAMP_SRC/t/tools/fake-dovecot-auth.py" --port "$SASL_PORT" --user "$1" --password "$2" \
    --log "$M/sasl.log" >/dev/null 2>"$M/sasl.err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/sasl.err" wait_port "$SASL_PORT"
  PF_SASL=("smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = dovecot" "smtpd_sasl_path = inet:127.0.0.1:$SASL_PORT"
    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
}
