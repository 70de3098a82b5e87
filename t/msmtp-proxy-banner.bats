#!/usr/bin/env bats
# msmtp-proxy's submission side adds the recruitment banner (--banner, config
# `banner`) to outgoing mail, stamped or not, with Postfix's smtp-sink as the
# smart host: a multipart/alternative message comes out with the banner in its
# text alternative as text and in its HTML alternative as HTML (rendered with
# headless Chromium when it is installed).

load helpers

setup() {
  common_setup
  proxy_rig_setup
  mwhitelist domain add ours.example >/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.ours.example" \
    -keyout "$M/key.pem" -out "$M/cert.pem" >/dev/null 2>&1
  printf 'sesame\n' | msmtp-proxy user add --sender alice@ours.example alice
  printf 'Join mailstamp & stop spam: <postage> for mail.\nhttps://example.org/join?a=1&b=2\n' >"$M/banner.txt"
}

teardown() { kill_rig; }

# alt_message FILE: a multipart/alternative message, quoted-printable text and base64 HTML.
alt_message() {
  /usr/bin/python3 - "$1" <<'PYEOF'
import base64, quopri, sys
html = "<html><body>\r\n<p>Bonjour caf\u00e9</p>\r\n</body></html>\r\n".encode()
text = quopri.encodestring("Bonjour caf\u00e9 =\n".encode()).decode().replace("\n", "\r\n")
m = ("From: alice@ours.example\r\nTo: carol@elsewhere.example\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
     "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
     "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
     + text + "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     + base64.encodebytes(html).decode().replace("\n", "\r\n") + "--b1--\r\n")
open(sys.argv[1], "w", newline="").write(m.replace("\r\n", "\n"))  # swaks sends CRLF
PYEOF
}

# parts SINKFILE OUTDIR: the text and HTML alternatives of the message the sink got, decoded, into
# OUTDIR/plain and OUTDIR/html; prints the number of parsing defects and of leaf parts.
parts() {
  /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import email, email.policy, sys
raw = open(sys.argv[1], "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.default)
defects = list(m.defects) + [d for p in m.walk() for d in p.defects]
leaves = [p for p in m.walk() if not p.is_multipart()]
for p in leaves:
    name = {"text/plain": "plain", "text/html": "html"}.get(p.get_content_type())
    if name:
        open(sys.argv[2] + "/" + name, "w").write(p.get_content())
print(len(defects), len(leaves))
PYEOF
}

@test "submission: a stamped multipart/alternative message gets the banner as text and as HTML, in their encodings" {
  start_sink
  start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem" \
    --stamp hashcash --stamp-bits 8 --banner "$M/banner.txt"
  alt_message "$M/alt.eml"
  run swaks_to alice@ours.example carol@elsewhere.example -tls -a PLAIN -au alice -ap sesame --data "@$M/alt.eml"
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  got=$(ls "$M"/sink/* | head -1)
  grep -q '^X-Hashcash: ' "$got"
  # the encodings are kept: no new parts, no 8-bit octets
  grep -q '^Content-Transfer-Encoding: quoted-printable' "$got"
  grep -q '^Content-Transfer-Encoding: base64' "$got"
  [ "$(LC_ALL=C grep -c '[^[:print:][:space:]]' "$got")" -eq 0 ]
  mkdir "$M/p"
  run parts "$got" "$M/p"
  assert_output "0 2"
  run cat "$M/p/plain"
  assert_output --partial "Bonjour café ="
  assert_output --partial $'\nJoin mailstamp & stop spam: <postage> for mail.\nhttps://example.org/join?a=1&b=2'
  run cat "$M/p/html"
  assert_output --partial 'Join mailstamp &amp; stop spam: &lt;postage&gt; for mail.'
  assert_output --partial '<a href="https://example.org/join?a=1&amp;b=2">'
  # before </body>, after the original text
  /usr/bin/python3 -c '
import sys; h = open(sys.argv[1]).read()
assert h.index("Bonjour caf") < h.index("mailstamp-banner") < h.index("</body>"), h' "$M/p/html"
  # Rendered by a browser: the banner is text on the page, the address a link.
  if ! command -v chromium >/dev/null; then
    skip "chromium is not installed: the HTML part was not rendered"
  fi
  cp "$M/p/html" "$M/p/page.html"
  run timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$M/chromium" \
    --dump-dom "file://$M/p/page.html"
  assert_output --partial 'Join mailstamp &amp; stop spam: &lt;postage&gt; for mail.'
  assert_output --partial '<a href="https://example.org/join?a=1&amp;b=2">https://example.org/join?a=1&amp;b=2</a>'
  [[ "$output" == *"Bonjour café"*"mailstamp-banner"*"</body>"* ]]
}

@test "submission: the banner without stamps, from the config file; a missing banner file stops the start" {
  start_sink
  printf '[msmtp-proxy]\nbanner = %s\n' "$M/banner.txt" >"$M/conf"
  MAILSTAMP_CONFIG="$M/conf" start_proxy --relay "127.0.0.1:$SINK" --tls-cert "$M/cert.pem" --tls-key "$M/key.pem"
  run swaks_to alice@ours.example carol@elsewhere.example -tls -a PLAIN -au alice -ap sesame --body 'just text'
  assert_output --partial "250 2.0.0 OK: sent"
  wait_sink 1
  [ "$(sink_all | grep -c '^X-Hashcash: ')" -eq 0 ]
  sink_all | tr -d '\r' | grep -q '^Join mailstamp & stop spam: <postage> for mail.$'
  # Incoming mail gets no banner.
  mwhitelist add friend@good.example >/dev/null
  run swaks_to friend@good.example bob@ours.example
  assert_output --partial "250 2.0.0 OK"
  wait_sink 2
  [ "$(sink_all | grep -c '^Join mailstamp')" -eq 1 ]
  run msmtp-proxy --listen 127.0.0.1:1 --relay "127.0.0.1:$SINK" --banner "$M/missing.txt"
  assert_failure 66
  assert_output --partial "missing.txt: cannot read"
}
