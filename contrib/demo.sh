#!/bin/bash
# A short demonstration of the main job on a throwaway store: protect a
# domain, whitelist a friend, see who gets in, and hand a stranger a
# one-time token address as the SMTP proxy's 550 reply will.
set -euo pipefail
bin=${MAILSTAMP_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build}
export PATH="$bin:$PATH"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export MAILSTAMP_DB="$scratch/store.db" MAILSTAMP_CONFIG=/dev/null
step() { printf '\n$ %s\n' "$*"; "$@"; }
verdict() { if mwhitelist check "$@" >/dev/null; then echo "  -> $1 to ${2:-anyone}: accepted"; else echo "  -> $1 to ${2:-anyone}: refused"; fi; }

echo "mailstamp demo (throwaway store in $scratch)"
step mwhitelist domain add example.org
step mwhitelist add --note "my sister" sister@family.example
step mwhitelist add .trusted-partner.example
step mwhitelist add --recipient postmaster@example.org
printf 'From: me@example.org\nTo: Ann <ann@client.example>, bob@client.example\nSubject: quote\n\nHello\n' >"$scratch/outgoing.eml"
step mwhitelist add --from-message <"$scratch/outgoing.eml"
step mwhitelist list
echo
echo "Who gets in?"
verdict Sister@Family.example me@example.org
verdict noreply@billing.trusted-partner.example me@example.org
verdict prvs=0123abcdef=ann@client.example me@example.org
verdict stranger@spam.example me@example.org
verdict stranger@spam.example postmaster@example.org
echo
echo "The stranger is refused with a one-time token address instead:"
tok=$(mtoken make --once --ttl 10d me@example.org)
echo "  550 5.7.1 Unknown sender; to reach me, resend once to <$tok>"
step mtoken check --consume "$tok"
echo "  (a second use is refused)"
mtoken check --consume "$tok" || true
echo
echo "Outgoing mail carries postage; the receiving side verifies it (a separate store):"
printf 'From: me@example.org\nTo: friend@elsewhere.example\nSubject: hello\nMessage-ID: <demo1@example.org>\n\nHi\n' >"$scratch/out.eml"
mstamp --bits 16 <"$scratch/out.eml" >"$scratch/stamped.eml"
grep '^X-Hashcash:' "$scratch/stamped.eml" | sed 's/^/  /'
echo "  receiver:"
mwhitelist --db "$scratch/receiver.db" domain add elsewhere.example >/dev/null  # filters never create a store
mverify --db "$scratch/receiver.db" --min-bits 16 --authserv-id mx.elsewhere.example <"$scratch/stamped.eml" \
  | grep -E '^(X-Mailstamp-Class|Subject):' | sed 's/^/    /'
echo "  the same stamp lifted onto another message:"
sed 's/^Hi$/Buy now/; s/demo1/demo2/' "$scratch/stamped.eml" \
  | mverify --db "$scratch/receiver.db" --min-bits 16 --authserv-id mx.elsewhere.example \
  | grep -E '^(X-Mailstamp-Class|Authentication-Results):' | sed 's/^/    /'
echo
echo "The SMTP proxy does the same at RCPT time, in front of the real MTA (here a Maildir):"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
msmtp-proxy --listen "127.0.0.1:$port" --maildir "$scratch/Maildir" --hostname mx.example.org \
  --log "$scratch/proxy.log" &
proxy=$!
trap 'kill $proxy 2>/dev/null; rm -rf "$scratch"' EXIT
for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
smtp() { swaks --server "127.0.0.1:$port" --helo client.example --from "$1" --to "$2" --hide-informational 2>&1 || true; }
echo "  a stranger writes to me@example.org:"
reply=$(smtp stranger@spam.example me@example.org)
grep '^<\*\* 550' <<<"$reply" | sed 's/^<\*\*/   /'
tok=$(sed -n 's/.*this address: <\([^>]*\)>.*/\1/p' <<<"$reply" | head -1)
echo "  the stranger (a human) resends to <$tok>:"
smtp stranger@spam.example "$tok" | grep -E '^<-  250 2\.0\.0' | sed 's/^<-/   /'
echo "  delivered into the Maildir with the verdict:"
grep -hE '^(Received|X-Mailstamp-Class|Subject):' "$scratch"/Maildir/new/* | sed 's/^/    /'
echo "  and the same token a second time:"
smtp stranger@spam.example "$tok" | grep -E '^<\*\* 550 ' | sed 's/^<\*\*/   /'
echo "  the log says:"
grep -E 'event=(reject|delivered)' "$scratch/proxy.log" | sed 's/^[^ ]* /    /' | cut -c1-160
