#!/usr/bin/env bats
# msmtp-proxy --source: SOURCE/GET and the proxy on one port. Site A
# (a.example) runs msourced; site B (b.example) runs only msmtp-proxy
# --source in front of smtp-sink, each with --mx-map pointing at the other.
# A notice to B is taken by the proxy, the message fetched back from A by
# GET and run through B's admission core as DATA mail would be, with the
# provenance (Facts::fetched_from) as a fact; plain DATA still works on the
# same port; B's held outgoing mail is served to A's GET by the proxy.

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mkdir -p "$M/a" "$M/b"
  mwhitelist --db "$M/a/store.db" domain add a.example >/dev/null
  mwhitelist --db "$M/b/store.db" domain add b.example >/dev/null
  PA=$(free_port)
  printf 'From: Alice <alice@a.example>\nTo: Bob <bob@b.example>\nSubject: one port\nMessage-ID: <s1@a.example>\nX-Mailstamp-Source: verified; domain=forged.example\n\nfetched body\n' >"$M/msg.eml"
}

teardown() { kill_rig; }

# site_a: msourced for a.example on $PA, B's port in its --mx-map, delivering into its Maildir.
site_a() {
  msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example --listen "127.0.0.1:$PA" \
    --mx-map "b.example=127.0.0.1:$PORT" --deliver "maildir:$M/a/Maildir" --retry 1 2>"$M/a/err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/a/err" wait_port "$PA"
}
# site_b [options]: msmtp-proxy --source for b.example relaying to the sink, A's port in its --mx-map.
site_b() {
  start_sink
  PORT=$(free_port)
  msmtp-proxy --db "$M/b/store.db" --listen "127.0.0.1:$PORT" --hostname mx.b.example --log "$M/b/log" \
    --relay "127.0.0.1:$SINK" --source --mx-map "a.example=127.0.0.1:$PA" --retry 1 "$@" \
    >/dev/null 2>"$M/b/err" 3>&- &
  PIDS+=($!)
  WAIT_LOG="$M/b/err" wait_port "$PORT"
}
# send_a FROM: A holds the message and gives B its notice.
send_a() {
  msourced --db "$M/a/store.db" --log "$M/a/log" --hostname mx.a.example --mx-map "b.example=127.0.0.1:$PORT" \
    --retry 1 send --from "$1" --rcpt bob@b.example <"$M/msg.eml"
}
# wait_log FILE PATTERN: until FILE has a line matching PATTERN (5 s).
wait_log() {
  local i
  for i in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no line /$2/ in $1:" >&2
  cat "$1" >&2
  return 1
}

@test "--source offers SOURCE on the proxy's port; not in inetd mode" {
  site_b
  run swaks --server "127.0.0.1:$PORT" --quit-after EHLO --helo client.example
  assert_output --regexp "<-  250[- ]SOURCE"
  run msmtp-proxy --db "$M/b/store.db" --relay 127.0.0.1:1 --source </dev/null
  assert_failure 64
  assert_output --partial "--source needs a daemon"
}

@test "a SOURCE notice taken by the proxy: fetched by GET from msourced, admitted and relayed with its provenance; DATA on the same port" {
  mwhitelist --db "$M/b/store.db" add alice@a.example >/dev/null
  mwhitelist --db "$M/b/store.db" add friend@good.example >/dev/null
  site_b
  site_a
  run send_a alice@a.example
  assert_success
  wait_sink 1
  grep -qE 'event=notice .*result=notified' "$M/a/log"
  grep -qE 'event=get .*result=served' "$M/a/log"
  grep -qE 'event=fetch .*result=delivered' "$M/b/log"
  f=$(ls "$M"/sink/*)
  grep -qE "^X-Mailstamp-Source: verified; domain=a\.example; mx=127\.0\.0\.1:$PA; id=[0-9a-f]{32}" "$f"
  [ "$(grep -c '^X-Mailstamp-Source:' "$f")" -eq 1 ]  # the forged one removed
  grep -q '^X-Mailstamp-Class: W (Whitelist: sender alice@a.example is whitelisted' "$f"
  grep -q 'x-mailstamp-source=fetched (from the MX of a.example)' "$f"
  grep -qE '^Received: from 127\.0\.0\.1 \(127\.0\.0\.1\) by mx\.b\.example \(msmtp-proxy\) with SOURCE/GET' "$f"
  grep -q '^fetched body' "$f"
  # Nothing partial left at B; A's row was served once.
  run msourced --db "$M/b/store.db" queue --json
  assert_output "[]"
  # Plain DATA on the same port: admitted as ever, marked as sent, not fetched.
  run swaks_to friend@good.example bob@b.example
  assert_success
  wait_sink 2
  g=$(grep -l 'friend@good.example' "$M"/sink/*)
  grep -q '^X-Mailstamp-Source: unverified; received by DATA from 127.0.0.1' "$g"
  grep -q '^X-Mailstamp-Class: W' "$g"
}

@test "provenance is a fact of the core: a fetch from the sender's MX authenticates what SPF does not" {
  ZONE="$M/zone"
  printf 'a.example TXT "v=spf1 -all"\n' >"$ZONE"
  start_zone "$ZONE"
  mwhitelist --db "$M/b/store.db" add alice@a.example >/dev/null
  site_b
  site_a
  # By DATA from 127.0.0.1, which a.example's SPF does not allow: forged, refused with a token address.
  run swaks_to alice@a.example bob@b.example
  assert_failure
  assert_output --partial "550"
  [ "$(sink_count)" -eq 0 ]
  grep -qE 'event=forged .*identity=alice@a\.example' "$M/b/log"
  # The same sender by SOURCE: the body fetched from a.example's MX by our own connection passes the entry.
  run send_a alice@a.example
  assert_success
  wait_sink 1
  f=$(ls "$M"/sink/*)
  grep -q '^X-Mailstamp-Class: W (Whitelist: .*fetched from the MX of a.example' "$f"
  grep -qE "^X-Mailstamp-Source: verified; domain=a\.example" "$f"
}

@test "a stranger's notice is refused at RCPT with a token address, as DATA mail is; --unknown mark fetches and marks it" {
  site_b
  site_a
  run send_a carol@a.example
  assert_success
  wait_log "$M/a/log" 'event=notice .*result=failed'
  grep -qE 'event=reject .*sender=carol@a\.example .*token=' "$M/b/log"
  sleep 0.5
  [ "$(sink_count)" -eq 0 ]
  run msourced --db "$M/b/store.db" queue --json
  assert_output "[]"
  kill_rig
  PIDS=()
  rm -rf "$M/sink"
  site_b --unknown mark
  site_a
  run send_a carol@a.example
  assert_success
  wait_sink 1
  f=$(ls "$M"/sink/*)
  grep -q '^X-Mailstamp-Class: B' "$f"
  grep -qE '^X-Mailstamp-Source: verified; domain=a\.example' "$f"
}

@test "GET served by the proxy: B's held outgoing message fetched by A's msourced" {
  site_b
  site_a
  printf 'From: Bob <bob@b.example>\nTo: Alice <alice@a.example>\nSubject: back\n\nheld at b\n' |
    msourced --db "$M/b/store.db" --log "$M/b/send.log" --hostname mx.b.example --mx-map "a.example=127.0.0.1:$PA" \
      send --from bob@b.example --rcpt alice@a.example
  for i in $(seq 100); do [ -n "$(ls "$M/a/Maildir/new" 2>/dev/null)" ] && break; sleep 0.05; done
  f=$(ls "$M"/a/Maildir/new/*)
  grep -q '^held at b' "$f"
  grep -qE "^X-Mailstamp-Source: verified; domain=b\.example; mx=127\.0\.0\.1:$PORT" "$f"
  grep -qE 'event=get .*result=served' "$M/b/log"
  # An unknown id gets msourced's one answer from the proxy too.
  run "$PY" - "$PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode()
        if line[3:4] != "-":
            return line.strip()
reply()
s.sendall(b"EHLO client.example\r\n"); reply()
s.sendall(b"GET 0123456789abcdef0123456789abcdef\r\n"); print(reply())
PYEOF
  assert_output "550 5.7.1 no message by that id"
}
