#!/usr/bin/env bats
# The bounce parser against an oracle: Debian's Sisimai (libsisimai-perl)
# reads every notice fixture under t/fixtures/dsn, and mailstamp's failed
# recipients and their permanence must equal Sisimai's -- or the difference
# is listed, with the reason mailstamp is right, in the fixture's .expect
# ("sisimai: differs REASON") or, for the fixtures of the top directory, in
# t/fixtures/dsn/sisimai-differs ("FILE REASON"). A listed difference that
# has gone away must be unlisted too.

load helpers

setup() {
  common_setup
  perl -MSisimai -e1 2>/dev/null || skip "Sisimai (libsisimai-perl) is not installed"
  skip_unless_sqlite "the parser does not depend on the store; once is enough"
  export MAILSTAMP_CONFIG=/dev/null
  mwhitelist domain add ours.example >/dev/null  # a store for mchallenge to open
  DSN="$MAILSTAMP_SRC/t/fixtures/dsn"
}

# mailstamp_reading FILE: the oracle's line format from `mchallenge bounce`.
mailstamp_reading() {
  local out notice rcpts rc=0
  out=$(mchallenge bounce <"$1") || rc=$?
  # 0: a notice, 1: not a notice; anything else is a failure of the program, not a reading.
  [ "$rc" -le 1 ] || { echo "mchallenge bounce exited $rc on $1" >&2; return 1; }
  notice=$(sed -n 's/^notice: //p' <<<"$out")
  rcpts=$(awk '$1 == "recipient:" && $2 != "" && $2 != "-" { print tolower($2) ":" $4 }' <<<"$out" |
          sort -u | awk -F: '{ a[$1] = (a[$1] == "permanent" ? "permanent" : $2) } END { for (k in a) print k ":" a[k] }' |
          sort | paste -sd, -)
  [ -n "$rcpts" ] || notice=no
  printf '%s\t%s\t%s\n' "$1" "$notice" "$rcpts"
}

# listed FILE: the reason a difference on FILE is expected, "" when none is.
listed() {
  local f=$1 exp="${1%.eml}.expect"
  if [ -f "$exp" ]; then
    sed -n 's/^sisimai: differs //p' "$exp"
  else
    awk -v n="$(basename "$f")" '$1 == n { $1 = ""; sub(/^ /, ""); print }' "$DSN/sisimai-differs"
  fi
}

@test "every notice fixture: mailstamp's failed recipients and permanence equal Sisimai's, or the difference is listed" {
  mapfile -t files < <(find "$DSN" -name '*.eml' | sort)
  [ "${#files[@]}" -gt 30 ]
  perl "$MAILSTAMP_SRC/t/tools/sisimai-oracle.pl" "${files[@]}" >"$BATS_TEST_TMPDIR/sisimai"
  for f in "${files[@]}"; do mailstamp_reading "$f" || return 1; done >"$BATS_TEST_TMPDIR/mailstamp"
  agree=0 differ=0 bad=0
  declare -A fam_n fam_agree
  while IFS=$'\t' read -r f s_notice s_rcpts && IFS=$'\t' read -r g m_notice m_rcpts <&3; do
    [ "$f" = "$g" ]
    rel=${f#"$DSN"/}
    fam=top; [[ $rel == wild/* ]] && { fam=${rel#wild/}; fam=${fam%%/*}; }
    fam_n[$fam]=$(( ${fam_n[$fam]:-0} + 1 ))
    why=$(listed "$f")
    if [ "$s_notice $s_rcpts" = "$m_notice $m_rcpts" ]; then
      if [ -n "$why" ]; then
        echo "LISTED BUT AGREES: $rel (listed: $why)"; bad=$((bad + 1))
      else
        agree=$((agree + 1)); fam_agree[$fam]=$(( ${fam_agree[$fam]:-0} + 1 ))
      fi
    elif [ -n "$why" ]; then
      differ=$((differ + 1))
    else
      echo "DIFFERS: $rel"; echo "  sisimai:   $s_notice $s_rcpts"; echo "  mailstamp: $m_notice $m_rcpts"
      bad=$((bad + 1))
    fi
  done <"$BATS_TEST_TMPDIR/sisimai" 3<"$BATS_TEST_TMPDIR/mailstamp"
  total=${#files[@]}
  {
    echo "# sisimai: $agree of $total fixtures agree; $differ differ with a reason listed; $bad unexplained"
    for fam in $(printf '%s\n' "${!fam_n[@]}" | sort); do
      echo "#   $fam: ${fam_n[$fam]} fixtures, ${fam_agree[$fam]:-0} agree"
    done
  } >&3
  [ "$bad" -eq 0 ]
  [ $((agree + differ)) -eq "$total" ]
}

@test "every listed difference names a fixture that exists and gives a reason" {
  while read -r name reason; do
    [ -n "$name" ] || continue
    [ -f "$DSN/$name" ] || { echo "no such fixture: $name"; false; }
    [ -n "$reason" ] || { echo "no reason for $name"; false; }
  done <"$DSN/sisimai-differs"
  while IFS= read -r exp; do
    run grep -c '^sisimai: \(agree$\|differs .\)' "$exp"
    [ "$output" = 1 ] || { echo "$exp: needs one line 'sisimai: agree' or 'sisimai: differs REASON'"; false; }
  done < <(find "$DSN" -name '*.expect')
}
