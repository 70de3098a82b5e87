#!/bin/sh
# Is a mail server other than Postfix installed here? `make test` installs
# Postfix (whose smtp-sink and smtp-source the tests drive) only when none
# is: Postfix conflicts with every other MTA, and installing it would replace
# the host's mail server.
#
# Prints what it found, one a line, and exits 0; exits 1 (printing nothing)
# when no other MTA is installed. Found are:
#   - every installed package (other than postfix) that provides
#     mail-transport-agent (exim4-daemon-light, sendmail-bin, msmtp-mta, ...);
#   - a sendmail command (MAILSTAMP_SENDMAIL, default /usr/sbin/sendmail) that
#     belongs to no package, or to one other than postfix (printed as
#     "PACKAGE (/usr/sbin/sendmail)" or "/usr/sbin/sendmail (no package)").
# Exit 2 when dpkg-query is missing: not a Debian system, nothing decided.
set -u
sendmail=${MAILSTAMP_SENDMAIL:-/usr/sbin/sendmail}
command -v dpkg-query >/dev/null 2>&1 || { echo "other-mta.sh: dpkg-query not found" >&2; exit 2; }

found=$(
  dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
    awk -F'|' '$1 ~ /^ii/ && $2 != "postfix" && $3 ~ /(^|[ ,])mail-transport-agent([ ,(]|$)/ { print $2 }'
  if [ -e "$sendmail" ] || [ -L "$sendmail" ]; then
    owner=$(dpkg-query -S "$sendmail" 2>/dev/null | grep -v '^diversion ' | sed -n 's/^\([^:]*\): .*/\1/p' | head -n 1)
    case $owner in
      "") echo "$sendmail (no package)" ;;
      postfix) ;;
      *) echo "$owner ($sendmail)" ;;
    esac
  fi
)
[ -n "$found" ] || exit 1
# One line per MTA: a package named both ways is printed once.
printf '%s\n' "$found" | awk '{ name = $1 } !seen[name]++'
exit 0
