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
  fi
  for page in "$prefix"/share/man/man*/*; do
    run mandoc -T lint -W error "$page"
    assert_success
  done
}
