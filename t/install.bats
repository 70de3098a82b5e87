#!/usr/bin/env bats
# cmake --install puts programs, man pages and share/ files in the usual places.

load helpers

setup() { common_setup; }

@test "install under a prefix: programs run, man pages render" {
  prefix="$BATS_TEST_TMPDIR/prefix"
  run cmake --install "$MAILSTAMP_BIN" --prefix "$prefix"
  assert_success
  for p in mwhitelist mtoken mstamp mchallenge; do
    [ -x "$prefix/bin/$p" ]
    run "$prefix/bin/$p" --version
    assert_success
    [ -f "$prefix/share/man/man1/$p.1" ]
  done
  [ -f "$prefix/share/man/man5/mailstamp.conf.5" ]
  [ -f "$prefix/share/man/man5/mailstamp-store.5" ]
  [ -f "$prefix/share/man/man7/mailstamp.7" ]
  [ -x "$prefix/bin/msmtp-proxy" ]
  run "$prefix/bin/msmtp-proxy" --version
  assert_success
  [ -f "$prefix/share/man/man8/msmtp-proxy.8" ]
  for u in msmtp-proxy.socket msmtp-proxy@.service msmtp-proxy-daemon.socket \
           msmtp-proxy-submission.socket msmtp-proxy-daemon.service; do
    [ -f "$prefix/share/mailstamp/systemd/$u" ]
    # The services run the program where make install puts it (PREFIX /usr/local).
    if [[ $u == *.service ]]; then grep -q '^ExecStart=/usr/local/bin/msmtp-proxy ' "$prefix/share/mailstamp/systemd/$u"; fi
  done
  [ -f "$prefix/share/mailstamp/inetd/msmtp-proxy.inetd.conf" ]
  [ -f "$prefix/share/mailstamp/inetd/msmtp-proxy.xinetd" ]
  # msourced: its page, units (per connection, daemon, fetch timer), inetd
  # lines, and fetch/expire as a cron.d file.
  [ -x "$prefix/bin/msourced" ]
  run "$prefix/bin/msourced" --version
  assert_success
  [ -f "$prefix/share/man/man8/msourced.8" ]
  for u in msourced.socket msourced@.service msourced-daemon.socket msourced-daemon.service \
           msourced-fetch.service msourced-fetch.timer; do
    [ -f "$prefix/share/mailstamp/systemd/$u" ]
    if [[ $u == *.service ]]; then grep -q '^ExecStart=/usr/local/bin/msourced ' "$prefix/share/mailstamp/systemd/$u"; fi
  done
  grep -q '^Accept=yes$' "$prefix/share/mailstamp/systemd/msourced.socket"
  grep -q '^StandardInput=socket$' "$prefix/share/mailstamp/systemd/msourced@.service"
  run grep -q '^Accept=yes' "$prefix/share/mailstamp/systemd/msourced-daemon.socket"
  assert_failure
  fs="$prefix/share/mailstamp/systemd/msourced-fetch.service"
  grep -q '^Type=oneshot$' "$fs"
  # fetch first, then expire: two ExecStart lines, in that order.
  [ "$(grep '^ExecStart=' "$fs" | sed 's/.* //' | tr '\n' ' ')" = "fetch expire " ]
  grep -q '^WantedBy=timers.target$' "$prefix/share/mailstamp/systemd/msourced-fetch.timer"
  [ -f "$prefix/share/mailstamp/inetd/msourced.inetd.conf" ]
  [ -f "$prefix/share/mailstamp/inetd/msourced.xinetd" ]
  mc="$prefix/share/mailstamp/cron/msourced"
  [ -f "$mc" ]
  [ "$(grep -cE '^\*/5 +\* +\* +\* +\* +[a-z_][a-z0-9_-]* +/usr/local/bin/msourced .* fetch$' "$mc")" -eq 1 ]
  [ "$(grep -cE '^[0-9]+ +\* +\* +\* +\* +[a-z_][a-z0-9_-]* +/usr/local/bin/msourced .* expire$' "$mc")" -eq 1 ]
  [ "$(grep -cvE '^(#|$)' "$mc")" -eq 2 ]
  [ -f "$prefix/share/doc/mailstamp/contrib/postfix-msmtp-proxy.cf" ]
  [ -f "$prefix/share/doc/mailstamp/contrib/exim-msmtp-proxy.conf" ]
  [ -f "$prefix/share/mailstamp/mailstamp.conf.example" ]
  [ -f "$prefix/share/doc/mailstamp/contrib/procmailrc.example" ]
  # mchallenge: its default template, recipes, and the daily expire as a
  # systemd timer and as a cron.d line (minute hour * * * user command).
  [ -f "$prefix/share/mailstamp/challenge.txt" ]
  [ -f "$prefix/share/doc/mailstamp/contrib/mchallenge.procmailrc" ]
  [ -f "$prefix/share/doc/mailstamp/contrib/mchallenge.mailfilter" ]
  t="$prefix/share/mailstamp/systemd/mchallenge-expire.timer"
  s="$prefix/share/mailstamp/systemd/mchallenge-expire.service"
  [ -f "$t" ] && [ -f "$s" ]
  grep -q '^OnCalendar=daily$' "$t"
  grep -q '^Persistent=true$' "$t"
  grep -q '^WantedBy=timers.target$' "$t"
  grep -q '^Type=oneshot$' "$s"
  grep -q '^ExecStart=/usr/local/bin/mchallenge expire$' "$s"
  c="$prefix/share/mailstamp/cron/mchallenge"
  [ -f "$c" ]
  [ "$(grep -cE '^[0-9]+ +[0-9]+ +\* +\* +\* +[a-z_][a-z0-9_-]* +/usr/local/bin/mchallenge expire( |$)' "$c")" -eq 1 ]
  # Every other line is a comment or blank, as cron.d wants.
  [ "$(grep -cvE '^(#|$)' "$c")" -eq 1 ]
  if command -v systemd-analyze >/dev/null; then
    # The units parse; verify wants the program to exist, so a stand-in for it.
    mkdir -p "$BATS_TEST_TMPDIR/units"
    cp "$t" "$BATS_TEST_TMPDIR/units/"
    sed 's|^ExecStart=/usr/local/bin/mchallenge|ExecStart=/bin/true|' "$s" >"$BATS_TEST_TMPDIR/units/mchallenge-expire.service"
    run systemd-analyze verify --man=no \
      "$BATS_TEST_TMPDIR/units/mchallenge-expire.timer" "$BATS_TEST_TMPDIR/units/mchallenge-expire.service"
    assert_success
    assert_output ""
    # The msourced units parse too, with the same stand-in for the program.
    mkdir -p "$BATS_TEST_TMPDIR/msourced-units"
    for u in "$prefix"/share/mailstamp/systemd/msourced*; do
      sed 's|^ExecStart=/usr/local/bin/msourced|ExecStart=/bin/true|' "$u" >"$BATS_TEST_TMPDIR/msourced-units/$(basename "$u")"
    done
    cp "$BATS_TEST_TMPDIR/msourced-units/msourced@.service" "$BATS_TEST_TMPDIR/msourced-units/msourced@0.service"
    run systemd-analyze verify --man=no \
      "$BATS_TEST_TMPDIR/msourced-units/msourced-fetch.timer" "$BATS_TEST_TMPDIR/msourced-units/msourced-fetch.service" \
      "$BATS_TEST_TMPDIR/msourced-units/msourced-daemon.socket" "$BATS_TEST_TMPDIR/msourced-units/msourced-daemon.service" \
      "$BATS_TEST_TMPDIR/msourced-units/msourced.socket" "$BATS_TEST_TMPDIR/msourced-units/msourced@0.service"
    assert_success
    assert_output ""
  fi
  for page in "$prefix"/share/man/man*/*; do
    run mandoc -T lint -W error "$page"
    assert_success
  done
}
