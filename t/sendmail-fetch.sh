#!/bin/sh
# Unpacks Debian's Sendmail (sendmail-bin, sendmail-cf) into a directory for
# the tests that run mmilter under a real Sendmail (t/sendmail.bash), without
# installing it: the sendmail-bin package conflicts with every other MTA
# (Postfix among them), and installing it would replace the host's mail
# server. The binary runs from there with a private sendmail.cf; its shared
# libraries are in Makefile.inc's DEB_TEST.
#
# Usage: t/sendmail-fetch.sh [DIR]   (default: .sendmail beside this script's t/)
# Prints what it did; exits 0 when DIR holds a usable tree, 1 when the
# packages could not be fetched (the tests that need it then skip and say so).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.sendmail}
bin=$dir/root/usr/libexec/sendmail/sendmail
if [ -x "$bin" ] && [ -f "$dir/root/usr/share/sendmail/cf/m4/cf.m4" ]; then
  echo "sendmail-fetch: $dir already holds Sendmail"
  exit 0
fi
mkdir -p "$dir/debs"
cd "$dir/debs"
# apt-get download runs as _apt when it can; a directory it cannot write makes it warn and fetch as root.
if ! apt-get download sendmail-bin sendmail-cf >download.log 2>&1; then
  echo "sendmail-fetch: apt-get download sendmail-bin sendmail-cf failed:" >&2
  tail -n 3 download.log >&2
  exit 1
fi
rm -rf "$dir/root"
for deb in sendmail-bin_*.deb sendmail-cf_*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
[ -x "$bin" ] || { echo "sendmail-fetch: no $bin in the packages" >&2; exit 1; }
echo "sendmail-fetch: Sendmail unpacked into $dir"
