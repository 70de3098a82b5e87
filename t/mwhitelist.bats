#!/usr/bin/env bats
# mwhitelist, driven as a user would from the shell.

load helpers

setup() { common_setup; }

@test "help and version exit 0; usage errors exit 64" {
  run mwhitelist --help
  assert_success
  assert_output --partial "check"
  run mwhitelist --version
  assert_success
  assert_output --regexp '^mwhitelist [0-9]+\.[0-9]+'
  run mwhitelist
  assert_failure 64
  run mwhitelist frobnicate
  assert_failure 64
  run mwhitelist add --bogus x@y.org
  assert_failure 64
}

@test "add, check, remove a sender address, domain and subdomains" {
  run mwhitelist add --note "met at FOSDEM" Friend@Example.org @corp.example .lists.example
  assert_success
  assert_line "added friend@example.org"
  assert_line "added @corp.example"
  assert_line "added .lists.example"
  run mwhitelist check FRIEND@example.ORG
  assert_success
  assert_output "$(printf 'friend@example.org\taddress\t*')"
  run mwhitelist check anyone@corp.example
  assert_success
  assert_output --partial "@corp.example"
  run mwhitelist check a@deep.lists.example
  assert_success
  assert_output --partial ".lists.example"
  run mwhitelist check stranger@evil.example
  assert_failure 1
  assert_output ""
  run mwhitelist add friend@example.org
  assert_output "exists friend@example.org"
  run mwhitelist remove friend@example.org
  assert_success
  assert_output "removed friend@example.org"
  run mwhitelist check friend@example.org
  assert_failure 1
  run mwhitelist remove friend@example.org
  assert_failure 1
  assert_output --partial "no such entry"
}

@test "BATV tags are stripped from the sender; SRS wrappers only of a trusted forwarder" {
  mwhitelist add bob@example.org
  run mwhitelist check prvs=1234abcdef=bob@example.org
  assert_success
  run mwhitelist check SRS0=abcd=XY=example.org=bob@forwarder.example
  assert_failure 1
  run mwhitelist check --trusted-forwarder forwarder.example SRS0=abcd=XY=example.org=bob@forwarder.example
  assert_success
  assert_output --partial "bob@example.org"
}

@test "--for scopes an entry; check without RECIPIENT sees unscoped entries only" {
  mwhitelist domain add ours.example
  mwhitelist add --for boss@ours.example partner.example
  mwhitelist add --for ours.example .vendor.example
  run mwhitelist check x@partner.example
  assert_failure 1
  run mwhitelist check x@partner.example boss@ours.example
  assert_success
  assert_output "$(printf '@partner.example\tdomain\tboss@ours.example')"
  run mwhitelist check x@partner.example clerk@ours.example
  assert_failure 1
  run mwhitelist check x@a.vendor.example clerk@ours.example
  assert_success
}

@test "unconditional recipients take mail from anyone" {
  run mwhitelist add --recipient Postmaster@Ours.example
  assert_success
  assert_output "added rcpt:postmaster@ours.example"
  run mwhitelist check random@spam.example postmaster@ours.example
  assert_success
  assert_output "$(printf 'rcpt:postmaster@ours.example\trecipient\t*')"
  run mwhitelist check random@spam.example
  assert_failure 1
}

@test "add --from-message whitelists To, Cc and Bcc with source outgoing" {
  printf 'From: me@ours.example\r\nTo: "Ann" <ann@a.example>, bob@b.example\r\nCc: team: carol@c.example;\r\nBcc: <dave@d.example>\r\nSubject: hi\r\n\r\nbody\r\n' >"$BATS_TEST_TMPDIR/out.eml"
  run mwhitelist add --from-message <"$BATS_TEST_TMPDIR/out.eml"
  assert_success
  assert_line "added ann@a.example"
  assert_line "added bob@b.example"
  assert_line "added carol@c.example"
  assert_line "added dave@d.example"
  run mwhitelist list --json
  assert_success
  assert_output --partial '"source":"outgoing"'
  run jq -r '.[].entry' <<<"$output"
  assert_output "$(printf 'ann@a.example\nbob@b.example\ncarol@c.example\ndave@d.example')"
}

@test "a malformed entry is refused with exit 65 and nothing of the batch is written" {
  run mwhitelist add good@example.org "bad entry" other@example.org
  assert_failure 65
  assert_output --partial "bad entry"
  run mwhitelist export
  assert_output ""
  printf 'a@x.example\nb@@broken\nc@x.example\n' >"$BATS_TEST_TMPDIR/in.txt"
  run mwhitelist import <"$BATS_TEST_TMPDIR/in.txt"
  assert_failure 65
  assert_output --partial "line 2"
  run mwhitelist export
  assert_output ""
}

@test "import is idempotent and prints counts; import(export) is the identity" {
  printf '# comment\na@x.example\n@y.example ours.example\n.z.example\nrcpt:pm@ours.example\n\n' >"$BATS_TEST_TMPDIR/in.txt"
  run mwhitelist import <"$BATS_TEST_TMPDIR/in.txt"
  assert_success
  assert_output "added 4, existing 0"
  run mwhitelist import --format lines "$BATS_TEST_TMPDIR/in.txt"
  assert_output "added 0, existing 4"
  mwhitelist add --note 'a "quoted", note' q@x.example
  for fmt in lines csv; do
    mwhitelist export --format $fmt >"$BATS_TEST_TMPDIR/exp.$fmt"
    MAILSTAMP_DB="$BATS_TEST_TMPDIR/copy-$fmt.db" mwhitelist import --format $fmt <"$BATS_TEST_TMPDIR/exp.$fmt"
    MAILSTAMP_DB="$BATS_TEST_TMPDIR/copy-$fmt.db" mwhitelist export --format $fmt >"$BATS_TEST_TMPDIR/exp2.$fmt"
    run cmp "$BATS_TEST_TMPDIR/exp.$fmt" "$BATS_TEST_TMPDIR/exp2.$fmt"
    assert_success
  done
  run grep -c . "$BATS_TEST_TMPDIR/exp.csv"
  assert_output 6
  run grep -F '"a ""quoted"", note"' "$BATS_TEST_TMPDIR/exp.csv"
  assert_success
}

@test "CSV import keeps given source and counters" {
  printf 'entry,kind,scope,note,source,created,hits,last_hit\nold@x.example,address,,legacy,confirmed,2020-01-01T00:00:00Z,42,2021-06-01T12:00:00Z\n' >"$BATS_TEST_TMPDIR/in.csv"
  run mwhitelist import --format csv <"$BATS_TEST_TMPDIR/in.csv"
  assert_output "added 1, existing 0"
  run mwhitelist list
  assert_output "$(printf 'ENTRY\tKIND\tSCOPE\tCREATED\tHITS\tLAST-HIT\tSOURCE\tAUTH\tNOTE\nold@x.example\taddress\t*\t2020-01-01T00:00:00Z\t42\t2021-06-01T12:00:00Z\tconfirmed\tauto\tlegacy')"
}

@test "protected domains: add, list, remove" {
  run mwhitelist domain add Ours.Example other.example
  assert_success
  run mwhitelist domain list
  assert_output "$(printf 'other.example\nours.example')"
  run mwhitelist domain remove other.example
  assert_output "removed other.example"
  run mwhitelist domain add "not a domain"
  assert_failure 65
  run mwhitelist stats
  assert_line "protected-domains 1"
}

@test "the store is created 0600 at the XDG default, or where --db or the config says" {
  unset MAILSTAMP_DB
  mwhitelist add a@x.example
  run stat -c %a "$HOME/.local/share/mailstamp/store.db"
  assert_output 600
  export XDG_DATA_HOME="$BATS_TEST_TMPDIR/xdg"
  mwhitelist add b@x.example
  [ -f "$XDG_DATA_HOME/mailstamp/store.db" ]
  mwhitelist --db "$BATS_TEST_TMPDIR/explicit.db" add c@x.example
  run sqlite3 "$BATS_TEST_TMPDIR/explicit.db" "select value from whitelist"
  assert_output "c@x.example"
  printf '[common]\ndb = %s\n' "$BATS_TEST_TMPDIR/fromconfig.db" >"$BATS_TEST_TMPDIR/conf"
  mwhitelist --config "$BATS_TEST_TMPDIR/conf" add d@x.example
  run sqlite3 "$BATS_TEST_TMPDIR/fromconfig.db" "select value from whitelist"
  assert_output "d@x.example"
  # command line beats environment beats file
  MAILSTAMP_DB="$BATS_TEST_TMPDIR/env.db" mwhitelist --config "$BATS_TEST_TMPDIR/conf" add e@x.example
  run sqlite3 "$BATS_TEST_TMPDIR/env.db" "select value from whitelist"
  assert_output "e@x.example"
}

@test "a locked store exits 75 with one line; an unreadable one too" {
  skip_unless_sqlite "another process holds the SQLite file's write lock (sqlite3 BEGIN IMMEDIATE)"
  mwhitelist add a@x.example
  # hold the write lock from another process longer than the busy timeout
  (sqlite3 "$MAILSTAMP_DB" "PRAGMA busy_timeout=100; BEGIN IMMEDIATE; SELECT 1 FROM whitelist; " ".shell sleep 4" "COMMIT;" >/dev/null) &
  sleep 0.5
  printf '[common]\nbusy-timeout = 1s\n' >"$BATS_TEST_TMPDIR/conf"
  run mwhitelist --config "$BATS_TEST_TMPDIR/conf" add b@x.example
  assert_failure 75
  assert_output --regexp '^mwhitelist: .*locked'
  [ "${#lines[@]}" -eq 1 ]
  wait
  run mwhitelist check b@x.example
  assert_failure 1
  mkdir "$BATS_TEST_TMPDIR/dir.db"
  run mwhitelist --db "$BATS_TEST_TMPDIR/dir.db" check a@x.example
  assert_failure 75
}

@test "20 concurrent mwhitelist processes all land their entries" {
  for i in $(seq 1 20); do
    mwhitelist add "writer$i@x.example" >/dev/null &
  done
  wait
  run mwhitelist stats
  assert_line "entries 20"
}

@test "check only reads: hit counts are unchanged" {
  mwhitelist add a@x.example
  mwhitelist check a@x.example
  mwhitelist check a@x.example
  run mwhitelist list --json
  assert_output --partial '"hits":0'
}

@test "procmail with contrib/procmailrc.example files known senders in the inbox, strangers in quarantine" {
  command -v procmail >/dev/null || skip "procmail is not installed"
  mkdir -p "$HOME/Maildir/cur" "$HOME/Maildir/new" "$HOME/Maildir/tmp"
  # procmail resets HOME (and may scrub the environment): set what the recipe needs in the rc.
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    cat "$MAILSTAMP_SRC/contrib/procmailrc.example"; } >"$BATS_TEST_TMPDIR/rc"
  mwhitelist add friend@example.org
  printf 'From friend@example.org Mon Jan  1 00:00:00 2026\nFrom: Friend <friend@example.org>\nTo: me@ours.example\nSubject: hello\n\nhi\n' >"$BATS_TEST_TMPDIR/known.eml"
  printf 'From spam@evil.example Mon Jan  1 00:00:00 2026\nFrom: spam@evil.example\nTo: me@ours.example\nSubject: buy\n\nbuy\n' >"$BATS_TEST_TMPDIR/unknown.eml"
  cd "$BATS_TEST_TMPDIR"
  run procmail -m "$BATS_TEST_TMPDIR/rc" <"$BATS_TEST_TMPDIR/known.eml"
  assert_success
  run procmail -m "$BATS_TEST_TMPDIR/rc" <"$BATS_TEST_TMPDIR/unknown.eml"
  assert_success
  run grep -l "Subject: hello" "$HOME"/Maildir/new/*
  assert_success
  run grep -l "Subject: buy" "$HOME"/Maildir/.Quarantine/new/*
  assert_success
  run grep -rl "Subject: buy" "$HOME/Maildir/new"
  assert_failure
  # A store that cannot answer: procmail exits 75 and files nothing.
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$HOME"; echo "MAILSTAMP_DB=$BATS_TEST_TMPDIR"
    cat "$MAILSTAMP_SRC/contrib/procmailrc.example"; } >"$BATS_TEST_TMPDIR/rc-broken"
  before=$(find "$HOME/Maildir" -type f | wc -l)
  run procmail -m "$BATS_TEST_TMPDIR/rc-broken" <"$BATS_TEST_TMPDIR/known.eml"
  assert_failure 75
  [ "$(find "$HOME/Maildir" -type f | wc -l)" -eq "$before" ]
}

@test "the shipped example config is accepted; a broken config exits 78 naming the line; a missing one 66" {
  mwhitelist import </dev/null >/dev/null
  run mwhitelist --config "$MAILSTAMP_BIN/share/mailstamp.conf.example" stats
  assert_success
  printf '[common]\nthis line is wrong\n' >"$BATS_TEST_TMPDIR/bad.conf"
  run mwhitelist --config "$BATS_TEST_TMPDIR/bad.conf" stats
  assert_failure 78
  assert_output --partial "bad.conf:2"
  run mwhitelist --config "$BATS_TEST_TMPDIR/missing.conf" stats
  assert_failure 66
}

@test "add takes rcpt: entries; recipient entries take no scope; removing what is not there exits 1" {
  run mwhitelist add rcpt:pm@ours.example
  assert_output "added rcpt:pm@ours.example"
  run mwhitelist add --for ours.example rcpt:x@ours.example
  assert_failure 64
  run mwhitelist remove --recipient --for ours.example pm@ours.example
  assert_failure 64
  run mwhitelist domain remove never.example
  assert_failure 1
  assert_output "mwhitelist: domain remove: never.example: not protected"
  printf '# exported whitelist\nentry,kind,scope,note,source,created,hits,last_hit\na@x.example,address,,,,,,\n' >"$BATS_TEST_TMPDIR/c.csv"
  run mwhitelist import --format csv "$BATS_TEST_TMPDIR/c.csv"
  assert_output "added 1, existing 0"
}
