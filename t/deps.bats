#!/usr/bin/env bats
# The Debian package lists of Makefile.inc and the decision about Postfix
# (t/other-mta.sh): `make demo` installs what building and the demo need and
# never an MTA, the lists are disjoint by purpose, nothing is ever removed, and
# Postfix is installed for smtp-sink only where no other MTA is -- otherwise the
# tests that need it skip, saying why. Package managers are faked on PATH where
# a real one would change this machine.

load helpers

setup() {
  common_setup
  SRC=$(cd "$MAILSTAMP_SRC" && pwd)
  FAKE="$BATS_TEST_TMPDIR/fake"
  mkdir -p "$FAKE"
  CALLS="$BATS_TEST_TMPDIR/calls"
  : >"$CALLS"
}

mk() { make -s --no-print-directory -C "$SRC" "$@"; }

# The packages one list names.
list() { mk "print-deps-$1"; }

# MTA packages of Debian 12 (those that provide mail-transport-agent), and tools make demo must not pull in.
FORBIDDEN='^(postfix|exim4.*|sendmail.*|courier-mta|msmtp-mta|nullmailer|opensmtpd|dma|ssmtp|citadel-mta|clang.*|libclang.*|hyperfine|dnsmasq.*)$'

# fake_dpkg STATUS_LINES [SENDMAIL_OWNER]: a dpkg-query answering -W with STATUS_LINES
# ("ii |pkg|provides" per line) and -S with "OWNER: path" (no owner: not found).
fake_dpkg() {
  printf '%s\n' "$1" >"$FAKE/status"
  cat >"$FAKE/dpkg-query" <<EOF
#!/bin/bash
case "\$1" in
  -W) if [ \$# -gt 2 ]; then
        # -W -f=... PKG: the status of one package
        line=\$(grep "|\$3|" "$FAKE/status") || exit 1
        case "\$line" in "ii "*) echo "install ok installed";; *) echo "deinstall ok config-files";; esac
      else cat "$FAKE/status"; fi ;;
  -S) [ -n "${2:-}" ] || { echo "dpkg-query: no path found matching pattern \$2" >&2; exit 1; }
      echo "${2:-}: \$2" ;;
esac
EOF
  chmod +x "$FAKE/dpkg-query"
}

# Fakes for what make would run as root: each call is recorded in $CALLS, none changes anything.
fake_root_tools() {
  local t
  for t in apt-get debconf-set-selections sudo; do
    cat >"$FAKE/$t" <<EOF
#!/bin/bash
echo "$t \$*" >>"$CALLS"
[ "$t" != debconf-set-selections ] || sed 's/^/  stdin: /' >>"$CALLS"
[ "$t" != sudo ] || exec "\$@"
exit 0
EOF
    chmod +x "$FAKE/$t"
  done
}

@test "the lists are disjoint by purpose, and print-deps names all but the MTA" {
  local all=()
  for l in build demo test bench fuzz; do
    run list "$l"
    assert_success
    [ -n "$output" ]
    all+=($output)
  done
  run bash -c 'printf "%s\n" "$@" | sort | uniq -d' _ "${all[@]}" postfix
  assert_output ""
  run mk print-deps
  assert_output "${all[*]}"
  refute_output --regexp '(^| )postfix( |$)'
}

@test "make demo installs the build and demo lists only: no MTA, no clang, hyperfine or dnsmasq" {
  run mk -n demo
  assert_success
  # Every package list make -n shows, one per line.
  pkgs=$(sed -n 's/.*for p in \([^;]*\); do dpkg-query.*/\1/p' <<<"$output" | tr ' ' '\n' | sed '/^$/d')
  [ "$(sort <<<"$pkgs")" = "$(printf '%s\n' $(list build) $(list demo) | sort)" ]
  ! grep -E "$FORBIDDEN" <<<"$pkgs"
  refute_output --partial other-mta
  refute_output --regexp 'postfix|exim|hyperfine|clang|dnsmasq'
  # The build and demo lists are real: cmake and swaks are in them.
  grep -qx cmake <<<"$pkgs"
  grep -qx swaks <<<"$pkgs"
}

@test "every apt-get install of make demo, test, bench and fuzz is --no-remove --no-install-recommends" {
  for t in demo test bench fuzz deps-mta; do
    run mk -n "$t"
    assert_success
    installs=$(grep -o 'apt-get install[^;]*' <<<"$output")
    [ -n "$installs" ] || { echo "make -n $t installs nothing"; return 1; }
    ! grep -v -- '--no-remove --no-install-recommends' <<<"$installs"
  done
}

@test "from an empty system, apt would pull no MTA into make demo's or make test's packages" {
  command -v apt-get >/dev/null || skip "apt-get is not installed"
  apt-cache show cmake >/dev/null 2>&1 || skip "no apt package lists here (apt-get update has not run)"
  : >"$BATS_TEST_TMPDIR/empty-status"
  sim() {
    apt-get -s -o Dir::State::Status="$BATS_TEST_TMPDIR/empty-status" install "$@" 2>&1 |
      sed -n 's/^Inst \([^ ]*\) .*/\1/p' | sed 's/:.*//'
  }
  demo=$(sim --no-remove --no-install-recommends $(list build) $(list demo))
  grep -qx libssl-dev <<<"$demo"      # the simulation resolved the lists
  ! grep -E "$FORBIDDEN" <<<"$demo"
  tst=$(sim --no-remove --no-install-recommends $(list test))
  grep -qx procmail <<<"$tst"
  ! grep -E '^(postfix|exim4.*|sendmail.*|courier-mta|msmtp-mta|nullmailer|opensmtpd|dma|ssmtp)$' <<<"$tst"
  # The same check sees the MTA procmail recommends when Recommends are installed.
  rec=$(sim procmail)
  grep -E '^(exim4-daemon-light|postfix|sendmail-bin)$' <<<"$rec"
}

@test "other-mta.sh: Postfix alone is no other MTA" {
  fake_dpkg $'ii |postfix|mail-transport-agent\nii |procmail|' postfix
  run env PATH="$FAKE:$PATH" "$SRC/t/other-mta.sh"
  assert_failure 1
  assert_output ""
}

@test "other-mta.sh: Exim is found, once, through its package and through /usr/sbin/sendmail" {
  fake_dpkg $'ii |exim4-daemon-light|mail-transport-agent\nii |exim4-base|\nii |procmail|' exim4-daemon-light
  sendmail="$BATS_TEST_TMPDIR/sendmail"
  touch "$sendmail"
  run env PATH="$FAKE:$PATH" MAILSTAMP_SENDMAIL="$sendmail" "$SRC/t/other-mta.sh"
  assert_success
  assert_output "exim4-daemon-light"
}

@test "other-mta.sh: a removed MTA (config files left) is not installed; provides lists are read whole" {
  fake_dpkg $'rc |exim4-daemon-light|mail-transport-agent\nii |postfix|mail-transport-agent\nii |not-an-mta|mail-transport-agent-tools' postfix
  run env PATH="$FAKE:$PATH" "$SRC/t/other-mta.sh"
  assert_failure 1
  fake_dpkg $'ii |msmtp-mta|default-mta, mail-transport-agent' ""
  run env PATH="$FAKE:$PATH" MAILSTAMP_SENDMAIL=/nonexistent "$SRC/t/other-mta.sh"
  assert_success
  assert_output "msmtp-mta"
}

@test "other-mta.sh: a sendmail that no package owns is an MTA; no dpkg-query is no answer" {
  fake_dpkg $'ii |procmail|' ""
  sendmail="$BATS_TEST_TMPDIR/sbin/sendmail"
  mkdir -p "${sendmail%/*}"
  touch "$sendmail"
  run env PATH="$FAKE:$PATH" MAILSTAMP_SENDMAIL="$sendmail" "$SRC/t/other-mta.sh"
  assert_success
  assert_output "$sendmail (no package)"
  mkdir -p "$BATS_TEST_TMPDIR/nodpkg"
  ln -s "$(command -v awk)" "$BATS_TEST_TMPDIR/nodpkg/awk"
  run env PATH="$BATS_TEST_TMPDIR/nodpkg" /bin/sh "$SRC/t/other-mta.sh"
  assert_failure 2
  assert_output --partial "dpkg-query not found"
}

@test "other-mta.sh on this machine agrees with dpkg" {
  run "$SRC/t/other-mta.sh"
  [ "$status" -eq 0 ] || [ "$status" -eq 1 ]
  for line in "${lines[@]}"; do
    pkg=${line%% *}
    [[ $pkg == /* ]] && continue
    [ "$pkg" != postfix ]
    dpkg-query -W -f='${Status}\n' "$pkg" | grep -q '^install ok installed'
  done
  if [ "$status" -eq 1 ] && [ -e /usr/sbin/sendmail ]; then
    [ "$(dpkg-query -S /usr/sbin/sendmail | sed 's/:.*//')" = postfix ]
  fi
}

@test "make deps-mta with Exim installed: Postfix is not installed, and make says why" {
  fake_dpkg $'ii |exim4-daemon-light|mail-transport-agent' exim4-daemon-light
  fake_root_tools
  run env PATH="$FAKE:$PATH" MAILSTAMP_SENDMAIL=/nonexistent make -s --no-print-directory -C "$SRC" deps-mta
  assert_success
  assert_output --partial "not installing postfix: this machine's MTA is exim4-daemon-light"
  run cat "$CALLS"
  assert_output ""
}

@test "make deps-mta with no MTA: Postfix is installed unconfigured, with --no-remove" {
  fake_dpkg $'ii |procmail|' ""
  fake_root_tools
  run env PATH="$FAKE:$PATH" MAILSTAMP_SENDMAIL=/nonexistent make -s --no-print-directory -C "$SRC" deps-mta
  assert_success
  assert_output --partial "installing (test: smtp-sink and smtp-source with no other MTA installed): postfix"
  run grep -F 'apt-get install -y -qq --no-remove --no-install-recommends postfix' "$CALLS"
  assert_success
  run grep -F 'stdin: postfix postfix/main_mailer_type select No configuration' "$CALLS"
  assert_success
}

@test "a test that needs smtp-sink skips with the reason when Postfix is absent" {
  fake_dpkg $'ii |exim4-daemon-light|mail-transport-agent' exim4-daemon-light
  # (Written with printf: bats rewrites a line that starts with @test, even in a here-document.)
  printf '%s\n' "load '$SRC/t/helpers.bash'" '@test "needs a sink" {' '  need_smtp_sink' \
    '  echo "ran without smtp-sink" >&2' '  false' '}' >"$BATS_TEST_TMPDIR/sink.bats"
  # A PATH without /usr/sbin and /sbin, where smtp-sink lives.
  run env -i HOME="$HOME" PATH="$FAKE:/usr/bin:/bin" MAILSTAMP_SRC="$SRC" MAILSTAMP_SENDMAIL=/nonexistent \
    bats --tap "$BATS_TEST_TMPDIR/sink.bats" 3>&-
  assert_success
  assert_line "ok 1 needs a sink # skip needs Postfix's smtp-sink, not installed: this machine's MTA is exim4-daemon-light, which make test does not replace"
}
