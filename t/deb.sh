#!/bin/bash
# Installs the mailstamp .deb on this machine, checks what the package
# promises, then purges it and checks what purge leaves. Run as root (it
# installs and removes a package, and creates the mailstamp system user):
#
#   make deb-test                 # builds the package first
#   t/deb.sh build/deb/mailstamp_0.1.0_amd64.deb
#
# Without an argument it builds the package (make deb). It refuses to run
# where mailstamp is installed already: it would replace and purge it.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
failures=0
checks=0

pass() { checks=$((checks + 1)); printf 'ok   %s\n' "$*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); printf 'FAIL %s\n' "$*"; }
# check DESCRIPTION COMMAND...: runs COMMAND, shows its output when it fails.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what"; printf '%s\n' "$out" | sed 's/^/     | /'; fi
}
die() { printf 'FAIL %s\n' "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "t/deb.sh must run as root (dpkg -i, dpkg --purge)"
if dpkg-query -W -f='${Status}' mailstamp 2>/dev/null | grep -q 'installed'; then
  die "mailstamp is installed on this machine already; t/deb.sh would purge it"
fi
if [ -e /var/lib/mailstamp ]; then
  die "/var/lib/mailstamp exists already; t/deb.sh would remove it on purge"
fi

deb=${1:-}
if [ -z "$deb" ]; then
  make -C "$here" deb || die "make deb"
  deb=$(ls "$here"/build/deb/mailstamp_*.deb 2>/dev/null | tail -n 1)
fi
[ -f "$deb" ] || die "no package file: ${deb:-(none built)}"
echo "package: $deb ($(stat -c %s "$deb") bytes)"

user_existed=no
getent passwd mailstamp >/dev/null && user_existed=yes

scratch=$(mktemp -d)
cleanup() {
  rm -rf "$scratch"
  # The test's own leftovers: the package if a check stopped it halfway,
  # and the account, which purge keeps on purpose (debian/mailstamp.postrm)
  # but which this test created.
  if dpkg-query -W -f='${Status}' mailstamp 2>/dev/null | grep -q installed; then
    dpkg --purge mailstamp >/dev/null 2>&1
  fi
  if [ "$user_existed" = no ] && getent passwd mailstamp >/dev/null; then
    deluser --system --quiet mailstamp >/dev/null 2>&1
    getent group mailstamp >/dev/null && delgroup --system --quiet mailstamp >/dev/null 2>&1
  fi
}
trap cleanup EXIT

echo "== install"
# Only the package's own Depends may be missing here; they are the
# libraries the build machine has, so dpkg -i alone must succeed.
check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
check "package is installed" sh -c "dpkg-query -W -f='\${Status}' mailstamp | grep -qx 'install ok installed'"

echo "== programs"
for p in mwhitelist mtoken mstamp mverify mchallenge; do
  check "/usr/bin/$p --version says $p 0.1.0" sh -c "/usr/bin/$p --version | grep -qx '$p [0-9][0-9.]*'"
  check "/usr/bin/$p --help" /usr/bin/$p --help
  check "no /usr/sbin/$p" test ! -e /usr/sbin/$p
done
for p in msmtp-proxy msourced mailstamp-store; do
  check "/usr/sbin/$p --version says $p 0.1.0" sh -c "/usr/sbin/$p --version | grep -qx '$p [0-9][0-9.]*'"
  check "/usr/sbin/$p --help" /usr/sbin/$p --help
  check "no /usr/bin/$p (daemons and admin commands live in sbin)" test ! -e /usr/bin/$p
done
check "the programs link the system libcrypto, libsqlite3, libstdc++ dynamically, and resolve all" sh -c '
  for f in /usr/bin/mwhitelist /usr/bin/mtoken /usr/bin/mstamp /usr/bin/mverify /usr/bin/mchallenge \
           /usr/sbin/msmtp-proxy /usr/sbin/msourced /usr/sbin/mailstamp-store; do
    l=$(ldd "$f") || exit 1
    if printf "%s\n" "$l" | grep "not found"; then exit 1; fi
    for lib in libcrypto.so libsqlite3.so libstdc++.so; do
      printf "%s\n" "$l" | grep -q "$lib" || { echo "$f: no $lib"; exit 1; }
    done
  done'
check "msmtp-proxy (STARTTLS) links the system libssl" sh -c 'ldd /usr/sbin/msmtp-proxy | grep -q libssl.so'
for page in mwhitelist.1 mtoken.1 mstamp.1 mverify.1 mchallenge.1 msmtp-proxy.8 msourced.8 \
            mailstamp-store.8 mailstamp.conf.5 mailstamp-store.5 mailstamp.7; do
  sec=${page##*.}
  check "man page $page installed" test -f /usr/share/man/man$sec/$page.gz
done
# Prose may name /usr/local (where a source build goes, an admin's own
# script); no path of a program, configuration file, unit or data file may.
# README.md is the source tree's own guide (make install, default prefix).
check "no installed file names a program, configuration or data path under /usr/local" sh -c '
  ! dpkg -L mailstamp | grep -vx /usr/share/doc/mailstamp/README.md.gz |
    while read -r f; do [ -f "$f" ] && echo "$f"; done |
    xargs -r zgrep -lE "/usr/local/(s?bin|etc|share|lib|var)/"'

echo "== user, group, store directory"
check "system user mailstamp exists" getent passwd mailstamp
check "system group mailstamp exists" getent group mailstamp
check "mailstamp is a system account (uid < 1000)" sh -c '[ "$(id -u mailstamp)" -lt 1000 ]'
check "primary group of mailstamp is mailstamp" sh -c '[ "$(id -gn mailstamp)" = mailstamp ]'
check "home of mailstamp is /var/lib/mailstamp" sh -c '[ "$(getent passwd mailstamp | cut -d: -f6)" = /var/lib/mailstamp ]'
check "mailstamp cannot log in (nologin shell)" sh -c 'getent passwd mailstamp | cut -d: -f7 | grep -q nologin'
check "/var/lib/mailstamp is mailstamp:mailstamp 2770" \
  sh -c '[ "$(stat -c "%U:%G %a" /var/lib/mailstamp)" = "mailstamp:mailstamp 2770" ]'
check "/var/lib/mailstamp has a dpkg statoverride" dpkg-statoverride --list /var/lib/mailstamp

echo "== one real job as the mailstamp user"
db=/var/lib/mailstamp/deb-test.db
check "mwhitelist add (as mailstamp)" \
  runuser -u mailstamp -- /usr/bin/mwhitelist --db "$db" add friend@example.org
check "mwhitelist list shows the entry" \
  sh -c "runuser -u mailstamp -- /usr/bin/mwhitelist --db '$db' list | grep -q 'friend@example.org'"
check "mwhitelist check: whitelisted sender found" \
  runuser -u mailstamp -- /usr/bin/mwhitelist --db "$db" check friend@example.org
check "mwhitelist check: unknown sender not found" \
  sh -c "! runuser -u mailstamp -- /usr/bin/mwhitelist --db '$db' check stranger@example.net"
check "store file belongs to group mailstamp (setgid directory)" \
  sh -c "[ \"\$(stat -c %G '$db')\" = mailstamp ]"
printf 'From: friend@example.org\nTo: me@example.com\nSubject: hi\nMessage-ID: <1@example.org>\n\nhello\n' >"$scratch/in.eml"
chmod 644 "$scratch/in.eml"
chmod 755 "$scratch"
check "mverify classifies mail from the whitelisted sender" sh -c "
  runuser -u mailstamp -- /usr/bin/mverify --db '$db' <'$scratch/in.eml' >'$scratch/out.eml'
  grep -qi '^X-Mailstamp' '$scratch/out.eml' && grep -q '^hello\$' '$scratch/out.eml'"
check "msmtp-proxy serves one inetd-style session (220 ... 221)" sh -c "
  printf 'QUIT\r\n' | runuser -u mailstamp -- /usr/sbin/msmtp-proxy --db '$db' --relay 127.0.0.1:9 --log none >'$scratch/smtp.out' 2>&1
  head -n 1 '$scratch/smtp.out' | grep -q '^220 ' && grep -q '^221 ' '$scratch/smtp.out'"

echo "== configuration file"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' mailstamp)
check "/etc/mailstamp/mailstamp.conf is a conffile" sh -c "printf '%s\n' '$conffiles' | grep -q '^ /etc/mailstamp/mailstamp.conf [0-9a-f]\{32\}'"
check "/etc/mailstamp/mailstamp.conf is readable" test -r /etc/mailstamp/mailstamp.conf
check "the programs read /etc/mailstamp/mailstamp.conf (its db = names the store)" sh -c "
  cp /etc/mailstamp/mailstamp.conf '$scratch/conf.orig'
  printf '\\n[common]\\ndb = $db\\n' >>/etc/mailstamp/mailstamp.conf
  out=\$(runuser -u mailstamp -- env -u HOME -u XDG_CONFIG_HOME -u MAILSTAMP_CONFIG -u MAILSTAMP_DB \\
        /usr/bin/mwhitelist list 2>&1); rc=\$?
  cp '$scratch/conf.orig' /etc/mailstamp/mailstamp.conf
  printf '%s\\n' \"\$out\"
  [ \$rc -eq 0 ] && printf '%s\\n' \"\$out\" | grep -q 'friend@example.org'"

echo "== systemd units"
units=$(dpkg -L mailstamp | grep -E '^(/usr)?/lib/systemd/system/[^/]+\.(service|socket|timer)$')
check "units installed" test -n "$units"
mkdir -p "$scratch/units"
for u in $units; do
  name=$(basename "$u")
  if [[ $name == *@.service ]]; then
    # verify wants an instance of a template: the same file under an instance name.
    cp "$u" "$scratch/units/${name/@./@0.}"
    check "systemd-analyze verify $name (as ${name/@./@0.})" \
      sh -c "out=\$(systemd-analyze verify --man=no '$scratch/units/${name/@./@0.}' 2>&1); printf '%s' \"\$out\"; [ -z \"\$out\" ]"
  else
    check "systemd-analyze verify $name" \
      sh -c "out=\$(systemd-analyze verify --man=no '$u' 2>&1); printf '%s' \"\$out\"; [ -z \"\$out\" ]"
  fi
  state=$(systemctl --root=/ is-enabled "$name" 2>/dev/null)
  case $state in
    disabled|static|indirect) pass "$name not enabled ($state)" ;;
    *) fail "$name is '$state', want disabled/static/indirect" ;;
  esac
done
# User units (mchallenge expire, for the user whose mail is held): none may
# be enabled for every user (systemctl --global).
user_units=$(dpkg -L mailstamp | grep -E '^(/usr)?/lib/systemd/user/[^/]+\.(service|socket|timer)$')
for u in $user_units; do
  name=$(basename "$u")
  check "systemd-analyze verify $name (user unit)" \
    sh -c "out=\$(systemd-analyze verify --man=no '$u' 2>&1); printf '%s' \"\$out\"; [ -z \"\$out\" ]"
  state=$(systemctl --global --root=/ is-enabled "$name" 2>/dev/null)
  case $state in
    disabled|static|indirect) pass "user unit $name not enabled globally ($state)" ;;
    *) fail "user unit $name is '$state' for every user, want disabled/static/indirect" ;;
  esac
done
# The daily digest of held mail (mchallenge(1) DIGEST): its user units and its cron line are in the package.
for n in mchallenge-digest.service mchallenge-digest.timer; do
  check "user unit $n installed" sh -c "printf '%s\\n' \"\$1\" | grep -q '/$n\$'" _ "$user_units"
done
check "the cron file has the digest line" grep -q 'mchallenge digest' /usr/share/mailstamp/cron/mchallenge
check "no unit of the package is linked into /etc/systemd/system or /etc/systemd/user" sh -c '
  ! find /etc/systemd/system /etc/systemd/user -type l \( -name "msmtp-proxy*" -o -name "msourced*" -o -name "mchallenge*" -o -name "mmilter*" \) | grep .'
# Where the package has the Postfix pipe helper outside the documentation,
# it is a program: executable.
for f in $(dpkg -L mailstamp | grep '/mverify-reinject$' | grep -v '^/usr/share/doc/'); do
  check "$f is executable" test -x "$f"
done
check "systemd-analyze verify has something to refuse (a broken unit fails)" sh -c "
  printf '[Service]\nExecStart=/nonexistent/program\n' >'$scratch/units/broken.service'
  ! systemd-analyze verify --man=no '$scratch/units/broken.service' >/dev/null 2>&1"

echo "== remove, then purge"
check "dpkg --remove mailstamp" dpkg --remove mailstamp
check "programs gone after remove" sh -c '[ ! -e /usr/bin/mverify ] && [ ! -e /usr/sbin/msmtp-proxy ]'
check "conffile kept after remove" test -f /etc/mailstamp/mailstamp.conf
check "store kept after remove" test -f "$db"
check "dpkg --purge mailstamp" dpkg --purge mailstamp
check "package unknown to dpkg after purge" sh -c "! dpkg-query -W -f='\${Status}' mailstamp 2>/dev/null | grep -q 'installed\|config-files'"
check "/etc/mailstamp removed" test ! -e /etc/mailstamp
check "/var/lib/mailstamp (the store) removed" test ! -e /var/lib/mailstamp
check "statoverride removed" sh -c '! dpkg-statoverride --list /var/lib/mailstamp'
check "units removed" sh -c "for u in $(echo $units $user_units); do [ ! -e \"\$u\" ] || exit 1; done"
check "man pages removed" test ! -e /usr/share/man/man8/msmtp-proxy.8.gz
check "system user mailstamp kept on purge (policy, debian/mailstamp.postrm)" getent passwd mailstamp

echo "== $checks checks, $failures failed"
[ "$failures" -eq 0 ]
