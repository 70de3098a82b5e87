#!/usr/bin/env bats
# cmake --install puts programs, man pages and share/ files in the usual places.

load helpers

setup() { common_setup; }

@test "install under a prefix: programs run, man pages render" {
  prefix="$BATS_TEST_TMPDIR/prefix"
  run cmake --install "$MAILSTAMP_BIN" --prefix "$prefix"
  assert_success
  for p in mwhitelist mtoken mstamp; do
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
  for page in "$prefix"/share/man/man*/*; do
    run mandoc -T lint -W error "$page"
    assert_success
  done
}
