#!/usr/bin/env bats
# The whole loop for every notice fixture written in a format seen in the
# wild (t/fixtures/dsn/wild): a stranger's message is held and challenged;
# the challenge "bounces" with that fixture, sent to the challenge's tagged
# envelope sender. A permanent failure makes the held message Deletable; a
# delay leaves it Pending; either way the notice is filed as Match
# Information, never delivered or challenged as a stranger's mail. What is
# not a notice (an auto-reply) sent there changes nothing and is filed too.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  export MAILSTAMP_CONFIG=/dev/null
  mwhitelist domain add ours.example >/dev/null
  MD="$M/Maildir"
  fake_sendmail "$M/sendmail"
  MC=(mchallenge --deliver "maildir:$MD" --sendmail "$M/sendmail" --hostname mx.ours.example)
}

@test "a challenge bounced by each family's notice: permanent → Deletable, delay → Pending, notice filed as Match" {
  mapfile -t files < <(find "$MAILSTAMP_SRC/t/fixtures/dsn/wild" -name '*.expect' | sort)
  [ "${#files[@]}" -gt 0 ] || skip "no wild fixtures"
  n=0 deletable=0 pending=0
  declare -A fams
  for exp in "${files[@]}"; do
    grep -qx 'notice: yes' "$exp" || continue
    eml=${exp%.expect}.eml
    fam=$(basename "$(dirname "$eml")")
    n=$((n + 1))
    printf 'Return-Path: <s%d@stranger.example>\nFrom: s%d@stranger.example\nTo: bob@ours.example\nSubject: held %d\nMessage-ID: <h%d@stranger.example>\n\nbody\n' \
      "$n" "$n" "$n" "$n" >"$M/u.eml"
    "${MC[@]}" --sender "s$n@stranger.example" --rcpt bob@ours.example <"$M/u.eml"
    c=$(ls -d "$M"/sent/* | tail -1)
    env_from=$(sed -n 3p "$c/argv")
    [[ "$env_from" == bob+*@ours.example ]]
    id=$(mchallenge list --sender "s$n@stranger.example" | cut -f1)
    [ -n "$id" ]
    run "${MC[@]}" --sender '' --rcpt "$env_from" <"$eml"
    [ "$status" -eq 0 ] || { echo "$eml: mchallenge exited $status: $output"; false; }
    state=$(mchallenge list --all | awk -F'\t' -v id="$id" '$1 == id { print $2 }')
    if grep -qx 'permanent: yes' "$exp"; then
      [ "$state" = deletable ] || { echo "$eml: held message is $state, not deletable"; false; }
      deletable=$((deletable + 1))
    else
      [ "$state" = pending ] || { echo "$eml: held message is $state, not pending"; false; }
      pending=$((pending + 1))
    fi
    # The notice itself: filed as Match Information about this challenge, nothing delivered, no new challenge.
    mchallenge list --all | grep -q $'\tmatch\t' || { echo "$eml: notice not filed as match"; false; }
    [ "$(find "$MD/new" -type f 2>/dev/null | wc -l)" -eq 0 ] || { echo "$eml: something was delivered"; false; }
    [ "$(find "$M/sent" -name msg | wc -l)" -eq "$n" ] || { echo "$eml: a notice was challenged"; false; }
    fams[$fam]=1
  done
  echo "# loop: $n notices from ${#fams[@]} families: $deletable deletable, $pending pending" >&3
  [ "$n" -gt 0 ]
}
