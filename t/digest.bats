#!/usr/bin/env bats
# mchallenge digest (mchallenge(1) DIGEST): held mail listed by mail, sent through Postfix's smtp-sink as the
# relay, and the replies to its addresses coming back through the real procmail running
# contrib/mchallenge.procmailrc: release one, release and whitelist, release all; forged and replayed replies
# release nothing; nothing held, nothing sent; the HTML part rendered by headless Chromium.

load helpers

setup() {
  common_setup
  M="$BATS_TEST_TMPDIR"
  SINKU=()
  [ "$(id -u)" -ne 0 ] || SINKU=(-u root)
  PIDS=()
  command -v procmail >/dev/null || skip "procmail is not installed"
  export MAILSTAMP_CONFIG="$M/conf"
  fake_sendmail "$M/sendmail"
  printf '[mchallenge]\nsendmail = %s\nhostname = mx.ours.example\nlog = %s\n' "$M/sendmail" "$M/mc.log" >"$M/conf"
  mwhitelist domain add ours.example >/dev/null
  MD="$M/Maildir"
  mkdir -p "$MD"/{cur,new,tmp}
  { echo "PATH=$MAILSTAMP_BIN:/usr/bin:/bin"; echo "HOME=$M"; echo "MAILSTAMP_DB=$MAILSTAMP_DB"
    echo "MAILSTAMP_DNS=$MAILSTAMP_DNS"; echo "MAILSTAMP_CONFIG=$M/conf"
    cat "$MAILSTAMP_SRC/contrib/mchallenge.procmailrc"; } >"$M/rc"
  start_sink
}

teardown() { kill_rig; }

# mkmsg FILE SENDER SUBJECT: a message from SENDER to bob@ours.example.
mkmsg() {
  { printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\nFrom: %s\nTo: bob@ours.example\n' "$2" "$2"
    printf 'Subject: %s\nMessage-ID: <%s@sender.example>\nDate: Sun, 06 Dec 2026 10:00:00 +0000\n' "$3" "$RANDOM$RANDOM"
    printf '\nthe body of %s\n' "$2"; } >"$1"
}

deliver() { (cd "$M" && procmail -m "$M/rc" <"$1"); }
delivered() { find "$MD/new" -type f | wc -l; }
held_count() { mchallenge list | grep -c $'\t\\(held\\|pending\\|quiet\\)\t' || true; }
digests() { grep -l '^X-Mailstamp-Digest:' "$M"/sink/* 2>/dev/null | wc -l; }
held_path() { store_sql "SELECT path FROM held WHERE sender='$1'"; }

# hold3: three strangers write to bob; all three are held (and challenged through the fake sendmail).
hold3() {
  mkmsg "$M/1.eml" ann@stranger.example "lunch on friday"
  mkmsg "$M/2.eml" carl@stranger.example "<script>alert(1)</script> & more"
  mkmsg "$M/3.eml" dora@stranger.example "invoice 42"
  for i in 1 2 3; do deliver "$M/$i.eml"; done
  [ "$(held_count)" -eq 3 ]
  [ "$(delivered)" -eq 0 ]
  for s in ann carl dora; do cp "$(held_path "$s@stranger.example")" "$M/orig-$s"; done
}

# send_digest: runs mchallenge digest through the sink; the digest's parts land in $M/d.txt and $M/d.html and
# its addresses in $M/addr (sender, release, whitelist a line) and $M/all.
send_digest() {
  run mchallenge --relay "127.0.0.1:$SINK" digest "$@"
  assert_success
  for i in $(seq 100); do [ "$(digests)" -ge 1 ] && break; sleep 0.05; done
  [ "$(digests)" -eq 1 ]
  DIGEST=$(grep -l '^X-Mailstamp-Digest:' "$M"/sink/*)
  /usr/bin/python3 - "$DIGEST" "$M" <<'PYEOF'
import email, email.policy, re, sys
raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw, policy=email.policy.default)
out = sys.argv[2]
assert m.get_content_type() == 'multipart/alternative', m.get_content_type()
parts = {p.get_content_type(): p.get_content() for p in m.iter_parts()}
assert set(parts) == {'text/plain', 'text/html'}, parts.keys()
open(out + '/d.txt', 'w').write(parts['text/plain'])
open(out + '/d.html', 'w').write(parts['text/html'])
rows = re.findall(r'From:\s+(\S+)\n(?:.*\n)*?   Release:\s+<([^>]+)>\n   Whitelist: <([^>]+)>', parts['text/plain'])
with open(out + '/addr', 'w') as f:
    for r in rows:
        f.write('\t'.join(r) + '\n')
open(out + '/all', 'w').write(re.search(r'Release everything above: <([^>]+)>', parts['text/plain']).group(1))
open(out + '/hdr', 'w').write(''.join('%s: %s\n' % (k, v) for k, v in m.items()))
PYEOF
}

addr_of() { awk -F'\t' -v s="$1" '$1 == s { print $2 }' "$M/addr"; }
wl_addr_of() { awk -F'\t' -v s="$1" '$1 == s { print $3 }' "$M/addr"; }

# reply FILE TO [SENDER [FROM]]: bob's reply to the digest address TO (or another sender's).
reply() {
  printf 'Return-Path: <%s>\nX-Original-To: %s\nFrom: %s\nTo: %s\nSubject: release\nMessage-ID: <%s@ours.example>\n\nyes please\n' \
    "${3:-bob@ours.example}" "$2" "${4:-${3:-bob@ours.example}}" "$2" "$RANDOM$RANDOM" >"$1"
}

@test "three held messages make one digest with three entries, auto-generated, not bulk, from our own address" {
  hold3
  send_digest
  [ "$(wc -l <"$M/addr")" -eq 3 ]
  grep -q '^X-Rcpt-Args: <bob@ours.example>' "$DIGEST"
  grep -q '^X-Mail-Args: <bob+' "$DIGEST"
  grep -q '^Auto-Submitted: auto-generated' "$M/hdr"
  ! grep -qi '^Precedence' "$M/hdr" || false
  for s in ann carl dora; do grep -q "From:      $s@stranger.example" "$M/d.txt"; done
  grep -q 'Subject:   lunch on friday' "$M/d.txt"
  # Every address is its own; all are bob's.
  [ "$(cut -f2,3 "$M/addr" | tr '\t' '\n' | sort -u | grep -c '^bob+')" -eq 6 ]
  # The HTML part: escaped, no script, mailto links.
  grep -q '&lt;script&gt;alert(1)&lt;/script&gt; &amp; more' "$M/d.html"
  ! grep -q '<script' "$M/d.html" || false
  ! grep -Eq '<img|https?:' "$M/d.html" || false
  [ "$(grep -o 'href="mailto:' "$M/d.html" | wc -l)" -eq 7 ]
  grep -q 'event=digest' "$M/mc.log"
  # The digest coming back through procmail is delivered, never held or challenged.
  sent_before=$(find "$M/sent" -name msg | wc -l)
  env_from=$(sed -n 's/^X-Mail-Args: <\([^>]*\)>.*/\1/p' "$DIGEST")
  { printf 'Return-Path: <%s>\nX-Original-To: bob@ours.example\n' "$env_from"
    tr -d '\r' <"$DIGEST" | sed '1,/^$/{/^X-[A-Z][a-z]*-Args:/d;/^X-Client-/d}'; } >"$M/back.eml"
  deliver "$M/back.eml"
  [ "$(delivered)" -eq 1 ]
  grep -q '^X-Mailstamp-Class: W' "$MD"/new/*
  [ "$(held_count)" -eq 3 ]
  [ "$(find "$M/sent" -name msg | wc -l)" -eq "$sent_before" ]
  # A reply to the digest's From address releases nothing, and is delivered.
  reply "$M/r.eml" "$env_from"
  deliver "$M/r.eml"
  [ "$(delivered)" -eq 2 ]
  [ "$(held_count)" -eq 3 ]
}

@test "a reply to one entry's address releases exactly that message, byte-identical plus one field" {
  hold3
  send_digest
  reply "$M/r.eml" "$(addr_of carl@stranger.example)"
  deliver "$M/r.eml"
  [ "$(delivered)" -eq 1 ]
  [ "$(held_count)" -eq 2 ]
  f=$(ls "$MD"/new/*)
  head -1 "$f" | grep -q '^X-Mailstamp-Released: released from the digest; '
  tail -n +2 "$f" | cmp - "$M/orig-carl"
  grep -q 'event=digest-release .*action=release' "$M/mc.log"
  ! mwhitelist check carl@stranger.example || false
}

@test "a reply to the whitelist address releases the message and whitelists its sender" {
  hold3
  send_digest
  reply "$M/r.eml" "$(wl_addr_of dora@stranger.example)"
  deliver "$M/r.eml"
  [ "$(delivered)" -eq 1 ]
  tail -n +2 "$MD"/new/* | cmp - "$M/orig-dora"
  mwhitelist check dora@stranger.example
  [ "$(held_count)" -eq 2 ]
  # Dora's next message goes straight in.
  mkmsg "$M/4.eml" dora@stranger.example "again"
  deliver "$M/4.eml"
  [ "$(delivered)" -eq 2 ]
}

@test "a reply to the release-all address releases everything listed" {
  hold3
  send_digest
  reply "$M/r.eml" "$(cat "$M/all")"
  deliver "$M/r.eml"
  [ "$(delivered)" -eq 3 ]
  [ "$(held_count)" -eq 0 ]
  for f in "$MD"/new/*; do
    s=$(sed -n 's/^From: \([a-z]*\)@stranger.example$/\1/p' "$f")
    tail -n +2 "$f" | cmp - "$M/orig-$s"
  done
}

@test "a reply from another address releases nothing, is logged, and is handled as ordinary mail" {
  hold3
  send_digest
  a=$(addr_of ann@stranger.example)
  # Another envelope sender and From.
  reply "$M/f1.eml" "$a" mallory@evil.example
  deliver "$M/f1.eml"
  # bob's From with another envelope sender, and bob's envelope sender with another From.
  reply "$M/f2.eml" "$a" mallory@evil.example bob@ours.example
  deliver "$M/f2.eml"
  reply "$M/f3.eml" "$a" bob@ours.example mallory@evil.example
  deliver "$M/f3.eml"
  [ "$(delivered)" -eq 0 ]
  [ "$(grep -c 'event=digest-forged' "$M/mc.log")" -eq 3 ]
  # Held as a stranger's mail (not lost), the three originals still held.
  mchallenge list | grep -q $'\tmallory@evil.example\trelease'
  for s in ann carl dora; do mchallenge list | grep -q $'\t'"$s@stranger.example"$'\t'; done
  # The address still works for bob.
  reply "$M/r.eml" "$a"
  deliver "$M/r.eml"
  [ "$(delivered)" -eq 1 ]
  grep -q '^From: ann@stranger.example' "$MD"/new/*
}

@test "a reply from the recipient's address that fails its domain's SPF releases nothing; one that passes does" {
  hold3
  send_digest
  printf 'ours.example TXT "v=spf1 ip4:192.0.2.1 -all"\n' >"$M/zone"
  start_zone "$M/zone"
  a=$(addr_of ann@stranger.example)
  reply "$M/r.eml" "$a"
  mc=(mchallenge --deliver "maildir:$MD" --sender bob@ours.example --rcpt "$a" --helo mail.ours.example)
  run "${mc[@]}" --client-ip 198.51.100.7 <"$M/r.eml"
  assert_success
  grep -q 'event=digest-forged .*why="not authenticated"' "$M/mc.log"
  [ "$(delivered)" -eq 0 ]
  [ "$(held_count)" -eq 4 ]  # the three, and the forged reply held quietly as a stranger's
  run "${mc[@]}" --client-ip 192.0.2.1 <"$M/r.eml"
  assert_success
  [ "$(delivered)" -eq 1 ]
  grep -q '^From: ann@stranger.example' "$MD"/new/*
  grep -q 'event=digest-release' "$M/mc.log"
}

@test "a second reply to the same address releases nothing and is delivered tagged Response" {
  hold3
  send_digest
  a=$(addr_of ann@stranger.example)
  reply "$M/r1.eml" "$a"
  deliver "$M/r1.eml"
  [ "$(delivered)" -eq 1 ]
  reply "$M/r2.eml" "$a"
  deliver "$M/r2.eml"
  [ "$(delivered)" -eq 2 ]
  [ "$(held_count)" -eq 2 ]
  grep -l '^X-Mailstamp-Class: R' "$MD"/new/* | xargs grep -q '^Subject: \[R\] release'
  grep -q 'event=digest-replay' "$M/mc.log"
  # The release-all address of the same digest still releases what is left, once.
  reply "$M/r3.eml" "$(cat "$M/all")"
  deliver "$M/r3.eml"
  [ "$(held_count)" -eq 0 ]
  [ "$(delivered)" -eq 4 ]
}

@test "concurrent replies to one address release the message once" {
  hold3
  send_digest
  a=$(addr_of ann@stranger.example)
  pids=()
  for i in 1 2 3 4; do reply "$M/c$i.eml" "$a"; deliver "$M/c$i.eml" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  [ "$(grep -l '^From: ann@stranger.example' "$MD"/new/* | wc -l)" -eq 1 ]
  [ "$(grep -c 'event=digest-release' "$M/mc.log")" -eq 1 ]
  [ "$(grep -c 'event=digest-replay' "$M/mc.log")" -eq 3 ]
}

@test "nothing held: nothing sent, exit 0, and a log line saying so" {
  run mchallenge --relay "127.0.0.1:$SINK" digest
  assert_success
  assert_output --partial "nothing held"
  [ "$(sink_count)" -eq 0 ]
  grep -q 'event=digest .*why="\{0,1\}nothing held' "$M/mc.log"
  # --to another recipient, --since shorter than what is held: nothing either.
  hold3
  run mchallenge --relay "127.0.0.1:$SINK" digest --to carol@ours.example
  assert_success
  assert_output --partial "nothing held for carol@ours.example"
  run mchallenge --relay "127.0.0.1:$SINK" digest --since 1h
  assert_success
  assert_output --partial "digest sent to bob@ours.example: 3 messages"
  run mchallenge digest --since nonsense
  assert_failure 64
}

@test "the HTML part renders in headless Chromium with every sender and subject on the page" {
  c=$(command -v chromium || command -v chromium-browser || true)
  [ -n "$c" ] || skip "chromium is not installed: the HTML part was not rendered"
  hold3
  send_digest
  timeout 120 "$c" --headless --no-sandbox --disable-gpu --user-data-dir="$M/chromium" --dump-dom "file://$M/d.html" \
    >"$M/dom.html" 2>"$M/chromium.err"
  /usr/bin/python3 - "$M/dom.html" <<'PYEOF'
import html.parser, sys
class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.text = []; self.scripts = 0; self.links = []
    def handle_starttag(self, tag, attrs):
        if tag == 'script': self.scripts += 1
        if tag == 'a': self.links.append(dict(attrs).get('href', ''))
    def handle_data(self, d): self.text.append(d)
p = Text(); p.feed(open(sys.argv[1]).read())
page = ' '.join(p.text)
for want in ['ann@stranger.example', 'carl@stranger.example', 'dora@stranger.example', 'lunch on friday',
             '<script>alert(1)</script> & more', 'invoice 42']:
    assert want in page, want
assert p.scripts == 0, 'a script element on the page'
assert len(p.links) == 7 and all(l.startswith('mailto:bob%2B') for l in p.links), p.links
PYEOF
}
