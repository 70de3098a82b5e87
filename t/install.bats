#!/usr/bin/env bats
# cmake --install, as a package build does it (DESTDIR), under two prefixes:
# the one the build tree was configured with (make's default /usr/local) and
# the other of /usr and /usr/local, configured once in a scratch tree. Every
# installed file that names a path names the configured prefix's paths.

load helpers

progs="mchallenge mstamp mtoken mverify mwhitelist msmtp-proxy msourced mailstamp-store"
# In sbin: the daemons and the administrator's commands (section 8).
daemons="msmtp-proxy msourced mailstamp-store"

# The full paths GNUInstallDirs gives a prefix: sysconfdir and localstatedir
# are /etc and /var for /usr, PREFIX/etc and PREFIX/var otherwise.
prefix_paths() {
  local p=$1 etc=$1/etc var=$1/var
  if [ "$p" = /usr ]; then etc=/etc; var=/var; fi
  bindir=$p/bin sbindir=$p/sbin confdir=$etc/mailstamp statedir=$var/lib/mailstamp
  config=$etc/mailstamp/mailstamp.conf pkgdatadir=$p/share/mailstamp docdir=$p/share/doc/mailstamp
  libexecdir=$p/libexec/mailstamp unitdir=$p/lib/systemd/system userunitdir=$p/lib/systemd/user
  mandir=$p/share/man
}

setup_file() {
  local cache=$MAILSTAMP_BIN/CMakeCache.txt
  MAIN_PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$cache")
  if [ "$MAIN_PREFIX" = /usr ]; then OTHER_PREFIX=/usr/local; else OTHER_PREFIX=/usr; fi
  MAIN_ROOT=$BATS_FILE_TMPDIR/main OTHER_ROOT=$BATS_FILE_TMPDIR/other SCRATCH=$BATS_FILE_TMPDIR/tree
  export MAIN_PREFIX OTHER_PREFIX MAIN_ROOT OTHER_ROOT SCRATCH
  DESTDIR=$MAIN_ROOT cmake --install "$MAILSTAMP_BIN" >"$BATS_FILE_TMPDIR/main.log"
  # The other prefix: configured (no build: the data files are generated at
  # configure time), its files installed, the build tree's programs beside
  # them. Same compiler and launcher as the build tree.
  local cxx launcher
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")
  launcher=$(sed -n 's/^CMAKE_CXX_COMPILER_LAUNCHER:[A-Z]*=//p' "$cache")
  cmake -S "$MAILSTAMP_SRC" -B "$SCRATCH" -DCMAKE_INSTALL_PREFIX="$OTHER_PREFIX" -DMAILSTAMP_TESTS=OFF \
    -DCMAKE_CXX_COMPILER="$cxx" ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"} \
    >"$BATS_FILE_TMPDIR/configure.log"
  DESTDIR=$OTHER_ROOT cmake --install "$SCRATCH" --component Unspecified >"$BATS_FILE_TMPDIR/other.log"
  DESTDIR=$OTHER_ROOT cmake --install "$MAILSTAMP_BIN" --component programs --prefix "$OTHER_PREFIX" \
    >>"$BATS_FILE_TMPDIR/other.log"
}

setup() { common_setup; }

# Text files under ROOT naming one of PREFIX's install paths (but not as
# the tail of a longer path: /usr/local/etc/mailstamp is not /etc/mailstamp).
foreign_paths() {
  local root=$1
  prefix_paths "$2"
  local alt
  alt="$bindir/($(tr ' ' '|' <<<"$progs"))|$sbindir/($(tr ' ' '|' <<<"$daemons"))"
  alt+="|$confdir|$statedir|$pkgdatadir|$docdir|$libexecdir|$unitdir|$userunitdir"
  grep -rIonP "(?<![\\w./-])($alt)(?![\\w.-])" "$root" || true
}

@test "main prefix: user programs in bin, daemons in sbin; each runs" {
  prefix_paths "$MAIN_PREFIX"
  for p in $progs; do
    if [[ " $daemons " == *" $p "* ]]; then dir=$sbindir; other=$bindir; else dir=$bindir; other=$sbindir; fi
    [ -x "$MAIN_ROOT$dir/$p" ] || { echo "missing: $dir/$p"; false; }
    [ ! -e "$MAIN_ROOT$other/$p" ] || { echo "also in $other: $p"; false; }
    run "$MAIN_ROOT$dir/$p" --version
    assert_success
    assert_output "$p 0.1.0"
  done
  # Exactly these nine, nothing else.
  [ "$(ls "$MAIN_ROOT$bindir" "$MAIN_ROOT$sbindir" | grep -v ':$' | grep -c .)" -eq 9 ]
}

@test "both prefixes: no installed text file names the other prefix's paths" {
  run foreign_paths "$MAIN_ROOT" "$OTHER_PREFIX"
  assert_output ""
  run foreign_paths "$OTHER_ROOT" "$MAIN_PREFIX"
  assert_output ""
  # ...and the check finds them where they are: each root names its own.
  run foreign_paths "$MAIN_ROOT" "$MAIN_PREFIX"
  [ "${#lines[@]}" -gt 50 ]
  run foreign_paths "$OTHER_ROOT" "$OTHER_PREFIX"
  [ "${#lines[@]}" -gt 50 ]
}

@test "both prefixes: the layout (units, config, man, doc, data, libexec)" {
  for pr in "$MAIN_PREFIX:$MAIN_ROOT" "$OTHER_PREFIX:$OTHER_ROOT"; do
    prefix_paths "${pr%%:*}"
    r=${pr#*:}
    for u in msmtp-proxy.socket msmtp-proxy@.service msmtp-proxy-daemon.socket msmtp-proxy-submission.socket \
             msmtp-proxy-daemon.service msourced.socket msourced@.service msourced-daemon.socket \
             msourced-daemon.service msourced-fetch.service msourced-fetch.timer mmilter.socket mmilter.service \
             mmilter-policy.socket mmilter-policy.service; do
      [ -f "$r$unitdir/$u" ] || { echo "no system unit $unitdir/$u"; false; }
    done
    [ -f "$r$userunitdir/mchallenge-expire.service" ]
    [ -f "$r$userunitdir/mchallenge-expire.timer" ]
    [ -f "$r$userunitdir/mchallenge-digest.service" ]
    [ -f "$r$userunitdir/mchallenge-digest.timer" ]
    [ -f "$r$config" ]
    [ -f "$r$docdir/mailstamp.conf.example" ]
    cmp "$r$config" "$r$docdir/mailstamp.conf.example"
    for f in cron/mchallenge cron/msourced inetd/msmtp-proxy.inetd.conf inetd/msmtp-proxy.xinetd \
             inetd/msourced.inetd.conf inetd/msourced.xinetd challenge.txt; do
      [ -f "$r$pkgdatadir/$f" ] || { echo "no $pkgdatadir/$f"; false; }
    done
    for f in postfix-msmtp-proxy.cf exim-msmtp-proxy.conf postfix-mverify.cf procmailrc.example \
             mchallenge.procmailrc mchallenge.mailfilter mverify.procmailrc mverify.mailfilter \
             postfix-mmilter.cf sendmail-mmilter.mc; do
      [ -f "$r$docdir/contrib/$f" ] || { echo "no $docdir/contrib/$f"; false; }
    done
    grep -qF "argv=$sbindir/mmilter --policy" "$r$docdir/contrib/postfix-mmilter.cf"
    grep -qF -- "--db $statedir/store.db" "$r$docdir/contrib/postfix-mmilter.cf"
    # No template left unfilled, none installed.
    run grep -rIlE '@MAILSTAMP_[A-Z_]+@' "$r"
    assert_output ""
    run find "$r" -name '*.in'
    assert_output ""
    for m in 1/mchallenge 1/mstamp 1/mtoken 1/mverify 1/mwhitelist 5/mailstamp.conf 5/mailstamp-store \
             7/mailstamp 8/mmilter 8/msmtp-proxy 8/msourced 8/mailstamp-store; do
      [ -f "$r$mandir/man${m%%/*}/${m#*/}.${m%%/*}" ] || { echo "no page $m"; false; }
    done
  done
}

@test "mverify-reinject is installed executable where postfix-mverify.cf names it" {
  for pr in "$MAIN_PREFIX:$MAIN_ROOT" "$OTHER_PREFIX:$OTHER_ROOT"; do
    prefix_paths "${pr%%:*}"
    r=${pr#*:}
    [ -x "$r$libexecdir/mverify-reinject" ]
    [ "$(stat -c %a "$r$libexecdir/mverify-reinject")" = 755 ]
    grep -qF "argv=$libexecdir/mverify-reinject " "$r$docdir/contrib/postfix-mverify.cf"
    grep -qF "$libexecdir/mverify-reinject" "$r$mandir/man1/mverify.1"
    [ ! -e "$r$docdir/contrib/mverify-reinject" ]
  done
  # It runs: mverify's verdict, then the message to sendmail unchanged.
  prefix_paths "$MAIN_PREFIX"
  printf '#!/bin/sh\necho "$@" >"%s/argv"; cat >"%s/sent"\n' "$BATS_TEST_TMPDIR" "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/sendmail"
  chmod +x "$BATS_TEST_TMPDIR/sendmail"
  printf 'From: a@b.example\nTo: c@d.example\nSubject: x\n\nhi\n' >"$BATS_TEST_TMPDIR/m.eml"
  export MAILSTAMP_DB=$BATS_TEST_TMPDIR/store.db MAILSTAMP_CONFIG=/dev/null
  "$MAIN_ROOT$bindir/mwhitelist" add a@b.example
  MVERIFY=$MAIN_ROOT$bindir/mverify SENDMAIL=$BATS_TEST_TMPDIR/sendmail \
    run "$MAIN_ROOT$libexecdir/mverify-reinject" a@b.example c@d.example <"$BATS_TEST_TMPDIR/m.eml"
  assert_success
  [ "$(cat "$BATS_TEST_TMPDIR/argv")" = "-G -i -f a@b.example -- c@d.example" ]
  grep -q '^X-Mailstamp-Class: ' "$BATS_TEST_TMPDIR/sent"
  grep -q '^hi$' "$BATS_TEST_TMPDIR/sent"
}

@test "binary, man pages, example config and units agree on the configuration file" {
  prefix_paths "$MAIN_PREFIX"
  # The programs read the file named in paths.cpp: the string in the binary.
  for p in mwhitelist mverify; do
    strings -a "$MAIN_ROOT$bindir/$p" | grep -qxF "$config"
  done
  for p in msmtp-proxy msourced; do
    strings -a "$MAIN_ROOT$sbindir/$p" | grep -qxF "$config"
  done
  grep -qF "\"$config\"" "$MAILSTAMP_BIN/libmail/base/paths.cpp"
  prefix_paths "$OTHER_PREFIX"
  grep -qF "\"$config\"" "$SCRATCH/libmail/base/paths.cpp"
  for pr in "$MAIN_PREFIX:$MAIN_ROOT" "$OTHER_PREFIX:$OTHER_ROOT"; do
    prefix_paths "${pr%%:*}"
    r=${pr#*:}
    # Every mailstamp.conf path an installed text file names is this one.
    run bash -c "grep -rIhoP '[^ \"(]*/mailstamp\\.conf(?![.\\w])' '$r' | sort -u"
    assert_output "$config"
    # And each page that lists it under FILES lists it so.
    for m in man1/mtoken.1 man1/mwhitelist.1 man5/mailstamp.conf.5 man7/mailstamp.7 man8/msmtp-proxy.8 man8/msourced.8 man8/mailstamp-store.8; do
      grep -qxF ".It Pa $config" "$r$mandir/$m" || { echo "$m: no .It Pa $config"; false; }
    done
  done
}

@test "systemd-analyze verify passes on every installed unit, programs from the install" {
  command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed (package systemd)"
  for pr in "$MAIN_PREFIX:$MAIN_ROOT" "$OTHER_PREFIX:$OTHER_ROOT"; do
    prefix_paths "${pr%%:*}"
    r=${pr#*:}
    # verify wants the Exec programs on this machine: copies of the units
    # whose paths point into the DESTDIR, where the installed programs are.
    u=$BATS_TEST_TMPDIR/units$(tr / _ <<<"${pr%%:*}")
    mkdir -p "$u"
    n=0
    for f in "$r$unitdir"/* "$r$userunitdir"/*; do
      sed -E "s#^(Exec[A-Za-z]*=)${pr%%:*}/#\\1$r${pr%%:*}/#" "$f" >"$u/$(basename "$f")"
      n=$((n + 1))
    done
    [ "$n" -eq 19 ]  # 15 system units, 4 user units (mchallenge expire and digest)
    # Every Exec line naming the prefix now names the installed program.
    run grep -E "^Exec[A-Za-z]*=${pr%%:*}/" "$u"/*
    assert_output ""
    [ "$(cat "$u"/* | grep -cE "^ExecStart=$r")" -eq 10 ]  # every service
    # Template units verify as an instance.
    for t in "$u"/*@.service; do cp "$t" "${t%@.service}@0.service"; done
    run systemd-analyze verify --man=no "$u"/*
    assert_success
    assert_output ""
  done
}

@test "unit and cron contents: sockets, oneshot services, timers, cron.d lines" {
  prefix_paths "$MAIN_PREFIX"
  r=$MAIN_ROOT
  grep -q "^ExecStart=$sbindir/msmtp-proxy " "$r$unitdir/msmtp-proxy@.service"
  grep -q "^ExecStart=$sbindir/msmtp-proxy " "$r$unitdir/msmtp-proxy-daemon.service"
  grep -q "^ReadWritePaths=$statedir$" "$r$unitdir/msmtp-proxy-daemon.service"
  grep -q '^Accept=yes$' "$r$unitdir/msourced.socket"
  grep -q '^StandardInput=socket$' "$r$unitdir/msourced@.service"
  run grep -q '^Accept=yes' "$r$unitdir/msourced-daemon.socket"
  assert_failure
  # mmilter: libmilter takes SIGHUP as a stop, so a reload sends SIGUSR1; the policy service reopens on SIGHUP.
  grep -q "^ExecStart=$sbindir/mmilter --db $statedir/store.db$" "$r$unitdir/mmilter.service"
  grep -q '^ExecReload=/bin/kill -USR1 \$MAINPID$' "$r$unitdir/mmilter.service"
  grep -q "^ExecStart=$sbindir/mmilter --policy " "$r$unitdir/mmilter-policy.service"
  grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$r$unitdir/mmilter-policy.service"
  for f in mmilter.service mmilter-policy.service; do
    grep -q '^User=mailstamp$' "$r$unitdir/$f"
    grep -q "^ReadWritePaths=$statedir$" "$r$unitdir/$f"
  done
  [ "$(grep -c '^ListenStream=' "$r$unitdir/mmilter.socket")" -eq 1 ]
  run grep -q '^Accept=yes' "$r$unitdir/mmilter.socket" "$r$unitdir/mmilter-policy.socket"
  assert_failure
  fs=$r$unitdir/msourced-fetch.service
  grep -q '^Type=oneshot$' "$fs"
  # fetch first, then expire: two ExecStart lines, in that order.
  [ "$(grep '^ExecStart=' "$fs" | sed 's/.* //' | tr '\n' ' ')" = "fetch expire " ]
  grep -q "^ExecStart=$sbindir/msourced --db $statedir/store.db " "$fs"
  grep -q '^WantedBy=timers.target$' "$r$unitdir/msourced-fetch.timer"
  mc=$r$pkgdatadir/cron/msourced
  [ "$(grep -cE "^\\*/5 +\\* +\\* +\\* +\\* +[a-z_][a-z0-9_-]* +$sbindir/msourced .* fetch$" "$mc")" -eq 1 ]
  [ "$(grep -cE "^[0-9]+ +\\* +\\* +\\* +\\* +[a-z_][a-z0-9_-]* +$sbindir/msourced .* expire$" "$mc")" -eq 1 ]
  [ "$(grep -cvE '^(#|$)' "$mc")" -eq 2 ]
  grep -qP "^smtp\\tstream\\ttcp\\tnowait.200\\tmailstamp\\t$sbindir/msmtp-proxy\\tmsmtp-proxy " \
    "$r$pkgdatadir/inetd/msmtp-proxy.inetd.conf"
  grep -qP "^\\s*server\\s*= $sbindir/msourced$" "$r$pkgdatadir/inetd/msourced.xinetd"
  t=$r$userunitdir/mchallenge-expire.timer
  s=$r$userunitdir/mchallenge-expire.service
  grep -q '^OnCalendar=daily$' "$t"
  grep -q '^Persistent=true$' "$t"
  grep -q '^WantedBy=timers.target$' "$t"
  grep -q '^Type=oneshot$' "$s"
  grep -q "^ExecStart=$bindir/mchallenge expire$" "$s"
  c=$r$pkgdatadir/cron/mchallenge
  [ "$(grep -cE "^[0-9]+ +[0-9]+ +\\* +\\* +\\* +[a-z_][a-z0-9_-]* +$bindir/mchallenge expire( |$)" "$c")" -eq 1 ]
  [ "$(grep -cE "^[0-9]+ +[0-9]+ +\\* +\\* +\\* +[a-z_][a-z0-9_-]* +$bindir/mchallenge digest( |$)" "$c")" -eq 1 ]
  [ "$(grep -cvE '^(#|$)' "$c")" -eq 2 ]
  t=$r$userunitdir/mchallenge-digest.timer
  s=$r$userunitdir/mchallenge-digest.service
  grep -q '^OnCalendar=' "$t"
  grep -q '^Persistent=true$' "$t"
  grep -q '^WantedBy=timers.target$' "$t"
  grep -q '^Type=oneshot$' "$s"
  grep -q "^ExecStart=$bindir/mchallenge digest$" "$s"
}

@test "installed man pages lint clean (mandoc -W error)" {
  for pr in "$MAIN_PREFIX:$MAIN_ROOT" "$OTHER_PREFIX:$OTHER_ROOT"; do
    prefix_paths "${pr%%:*}"
    r=${pr#*:}
    n=0
    for page in "$r$mandir"/man*/*; do
      run mandoc -T lint -W error "$page"
      assert_success
      n=$((n + 1))
    done
    [ "$n" -eq 12 ]
  done
}

@test "a reinstall keeps the administrator's configuration file" {
  prefix_paths "$MAIN_PREFIX"
  echo "db = /srv/edited.db" >"$MAIN_ROOT$config"
  DESTDIR=$MAIN_ROOT run cmake --install "$MAILSTAMP_BIN"
  assert_success
  assert_output --partial "Keeping: $MAIN_ROOT$config"
  [ "$(cat "$MAIN_ROOT$config")" = "db = /srv/edited.db" ]
}

@test "a new prefix recompiles one object (paths.cpp); the rest stays built" {
  # The scratch tree, marked built without compiling (make -t), then given
  # another prefix: make would compile paths.cpp.o and nothing else.
  run cmake --build "$SCRATCH" -- -t
  assert_success
  run bash -c "cmake --build '$SCRATCH' -- -n | grep -c 'Building CXX'"
  assert_output 0
  run cmake -S "$MAILSTAMP_SRC" -B "$SCRATCH" -DCMAKE_INSTALL_PREFIX=/srv/ms
  assert_success
  grep -qF '"/srv/ms/etc/mailstamp/mailstamp.conf"' "$SCRATCH/libmail/base/paths.cpp"
  run bash -c "cmake --build '$SCRATCH' -- -n | grep -o 'Building CXX object .*\\.o'"
  assert_output "Building CXX object CMakeFiles/mail.dir/libmail/base/paths.cpp.o"
}
