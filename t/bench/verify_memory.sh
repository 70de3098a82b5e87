#!/bin/bash
# Benchmark: peak resident memory of mverify on a stamped 100 MB message
# (the body is hashed and spooled on its way through), against cat passing
# the same message, from GNU time's maximum RSS. Prints both and the
# figure against the 16 MB target; asserts nothing.
source "$(dirname "$0")/lib.bash"
size_mb=${BENCH_SIZE_MB:-100}
export MAILSTAMP_DB="$work/store.db" MAILSTAMP_CONFIG=/dev/null
"$bin/mwhitelist" import </dev/null >/dev/null  # the store: filters never create one
rcpt=bob@ours.example
{
  printf 'X-Hashcash: %s\n' "$(hashcash -m -q -b 12 "$rcpt")"
  printf 'From: stranger@elsewhere.example\nTo: %s\nSubject: big\nMessage-ID: <big@elsewhere.example>\n\n' "$rcpt"
  head -c $((size_mb * 1024 * 1024 * 3 / 4)) /dev/zero | base64 -w 76
} >"$work/big.eml"
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; }
peer=$(rss cat "$work/big.eml")
ours=$(rss "$bin/mverify" --min-bits 12 --rcpt "$rcpt" --max-size 1G --no-tag --log none <"$work/big.eml")
"$bin/mverify" --min-bits 12 --rcpt "$rcpt" --max-size 1G --no-tag --log none <"$work/big.eml" >"$work/out.eml"
grep -q '^X-Mailstamp-Class: G' "$work/out.eml"   # the stamp was checked: the body went through the spool
cmp <(tail -c +$(($(head -n 2 "$work/out.eml" | wc -c) + 1)) "$work/out.eml") "$work/big.eml"
printf 'peak RSS on a %d MB message: cat %d KB, mverify %d KB (target < 16384 KB)\n' \
  "$(($(stat -c %s "$work/big.eml") / 1048576))" "$peer" "$ours"
printf 'ratio mverify/16 MB = %.2f (target < 1)\n' "$(echo "$ours / 16384" | bc -l)"
