#!/usr/bin/env bats
# The attacks a hostile sender tries, and the losses a delivery agent must
# never cause (the issue "Nothing lost, nothing raced"), each reproduced
# against the real programs with real clients on loopback. One section per
# attack, numbered as in mailstamp(7) THREATS; each test failed on the code
# before its fix.

load helpers

setup() {
  common_setup
  proxy_rig_setup
}

teardown() { kill_rig; }

# ---------------------------------------------------------------------------
# 1. mchallenge drops held mail that merely looks alike
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 2. A confirmation releases only one held message
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 3. Whitelist hit counts lag and are lost with the proxy
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 4. One-time tokens spent in parallel
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 5. SRS wrappers trusted as the wrapped sender
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 6. Submission users trusted too widely
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 7. Signed postage covers only the Message-ID and the body
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 8. The spend check trusts everyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 9. Tokens in 550 replies are free for anyone
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 10. One client address takes every session slot
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 11. AUTH brute force, unthrottled and costly
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 12. SOURCE notices steer our connections
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# 13. Store path typos are silent
# ---------------------------------------------------------------------------

f13_msg() { printf 'Return-Path: <x@stranger.example>\nFrom: x@stranger.example\nTo: bob@ours.example\nSubject: hello\n\nbody\n' >"$M/m.eml"; }

@test "13. a filter on a store path with a typo exits 75 with one line naming the path, and creates nothing" {
  f13_msg
  run --separate-stderr mverify --db "$M/nonexistent/dir/x.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  [ -z "$output" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"$M/nonexistent/dir/x.db"* ]]
  [ ! -e "$M/nonexistent" ]
  # The last component alone missing: the same, nothing created.
  mkdir "$M/dir"
  run --separate-stderr mverify --db "$M/dir/typo.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == *"$M/dir/typo.db"* ]]
  [ -z "$(ls -A "$M/dir")" ]
  # The other readers and filters too.
  for cmd in "mwhitelist check x@stranger.example" "mwhitelist list" "mwhitelist export" "mtoken check bob+abc@ours.example" \
    "mtoken list" "mchallenge list" "mstamp book balance"; do
    set -- $cmd
    run --separate-stderr "$1" --db "$M/dir/typo.db" "${@:2}"
    [ "$status" -eq 75 ] || { echo "$cmd: exit $status" >&2; false; }
    [[ "$stderr" == *"$M/dir/typo.db"* ]]
  done
  run --separate-stderr mchallenge --db "$M/dir/typo.db" --rcpt bob@ours.example <"$M/m.eml"
  assert_failure 75
  run --separate-stderr mstamp --db "$M/dir/typo.db" --rcpt y@else.example <"$M/m.eml"
  assert_failure 75
  [ -z "$(ls -A "$M/dir")" ]
}

@test "13. procmail with a store typo in the recipe keeps the message queued (75) instead of filing it as [B]" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  f13_msg
  mkdir -p "$HOME/Maildir/"{cur,new,tmp} "$HOME/Maildir/.Unknown/"{cur,new,tmp}
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$M/nonexistent/dir/x.db"
    cat "$MAILSTAMP_SRC/contrib/mverify.procmailrc"; } >"$M/rc"
  cd "$M"
  run procmail -m "$M/rc" <"$M/m.eml"
  assert_failure 75
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq 0 ]
  [ ! -e "$M/nonexistent" ]
}

@test "13. write commands create the store, but only its last path component; the default path gets its directory" {
  run --separate-stderr mwhitelist --db "$M/new/x.db" add friend@friend.example
  assert_failure 75
  [[ "$stderr" == *"$M/new"* ]]
  [ ! -e "$M/new" ]
  mkdir "$M/new"
  run mwhitelist --db "$M/new/x.db" add friend@friend.example
  assert_success
  [ "$(stat -c %a "$M/new/x.db")" = 600 ]
  run mwhitelist --db "$M/new/x.db" check friend@friend.example
  assert_success
  run mtoken --db "$M/t.db" make bob@ours.example
  assert_success
  [ -f "$M/t.db" ]
  # No --db: the default store under XDG_DATA_HOME; readers do not create it, writers create mailstamp/ too.
  unset MAILSTAMP_DB
  run mwhitelist check friend@friend.example
  assert_failure 75
  [ ! -e "$HOME/.local/share/mailstamp" ]
  run mwhitelist add friend@friend.example
  assert_success
  [ -f "$HOME/.local/share/mailstamp/store.db" ]
  [ "$(stat -c %a "$HOME/.local/share/mailstamp")" = 700 ]
  run mwhitelist check friend@friend.example
  assert_success
}
