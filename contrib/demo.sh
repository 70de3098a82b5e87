#!/bin/bash
# A short demonstration of the main job on throwaway defaults: protect a
# domain, whitelist a friend, see who gets in, hand a stranger a one-time
# token address, stamp a message and verify it, then the same at SMTP time
# with msmtp-proxy on loopback delivering into a Maildir. It runs in a
# temporary HOME (so the default store is a new one there) with no config
# file, and touches no MTA: nothing is sent anywhere but to the proxy.
#
# Each step is printed exactly as you would type it in that directory, and
# that same string is what runs.
# No pipefail: the steps run as at a prompt, where a pipeline's status is its last command's.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${MAILSTAMP_BIN:-$src/build}
export PATH="$bin:$PATH"
scratch=$(mktemp -d)
proxy=
cleanup() {
  if [ -n "$proxy" ]; then kill "$proxy" 2>/dev/null || true; wait "$proxy" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
export HOME="$scratch/home" MAILSTAMP_CONFIG=/dev/null
unset MAILSTAMP_DB XDG_DATA_HOME XDG_CONFIG_HOME
mkdir -p "$HOME"
cd "$HOME"

# step: prints the command read from stdin as "$ command" and runs that same string, as a shell at a
# prompt would (a failing part of a list does not stop the rest); the demo stops if its status is not 0.
step() {
  local cmd rc=0
  cmd=$(cat)
  printf '\n$ %s\n' "$cmd"
  eval "$cmd" </dev/null || rc=$?
  [ "$rc" -eq 0 ] || { echo "demo: that step failed (exit status $rc)" >&2; exit 1; }
}
# step_status: the same for a command whose exit status is the answer; prints the status and what it means
# (MEANING0 for 0, MEANING1 for anything else).
step_status() {
  local cmd rc=0
  cmd=$(cat)
  printf '\n$ %s\n' "$cmd"
  eval "$cmd" </dev/null || rc=$?
  if [ "$rc" -eq 0 ]; then echo "  (exit status 0: $1)"; else echo "  (exit status $rc: $2)"; fi
}
say() { printf '\n%s\n' "$*" | fold -s -w 78; }

echo "mailstamp demo: a throwaway HOME in $HOME (the default store is created there), no config file"

say "Protect a domain, and whitelist who may write to it:"
step <<'EOF'
mwhitelist domain add example.org
EOF
step <<'EOF'
mwhitelist add --note "my sister" sister@family.example
EOF
step <<'EOF'
mwhitelist add .trusted-partner.example
EOF
step <<'EOF'
mwhitelist add --recipient postmaster@example.org
EOF
say "Everyone you write to gets whitelisted, from your outgoing mail:"
step <<'EOF'
printf 'From: me@example.org\nTo: Ann <ann@client.example>, bob@client.example\nSubject: quote\n\nHello\n' > outgoing.eml
EOF
step <<'EOF'
mwhitelist add --from-message < outgoing.eml
EOF
step <<'EOF'
mwhitelist list
EOF
say "(Scripts read 'mwhitelist list --json': one JSON array, no header.)"

say "Who gets in? 'mwhitelist check SENDER RECIPIENT' answers with its exit status:"
step_status 'in: whitelisted' 'not whitelisted' <<'EOF'
mwhitelist check Sister@Family.example me@example.org
EOF
step_status 'in: a subdomain of a trusted partner' 'not whitelisted' <<'EOF'
mwhitelist check noreply@billing.trusted-partner.example me@example.org
EOF
step_status 'in: a BATV-tagged bounce address of someone we wrote to' 'not whitelisted' <<'EOF'
mwhitelist check prvs=0123abcdef=ann@client.example me@example.org
EOF
step_status 'in' 'a stranger: not whitelisted' <<'EOF'
mwhitelist check stranger@spam.example me@example.org
EOF
step_status 'in: postmaster takes mail from anyone' 'not whitelisted' <<'EOF'
mwhitelist check stranger@spam.example postmaster@example.org
EOF

say "The stranger is refused, and handed a one-time token address instead (msmtp-proxy does this in its 550 reply, below):"
step <<'EOF'
tok=$(mtoken make --once --ttl 10d me@example.org); echo "$tok"
EOF
step_status 'the token is good: mail to it is for me@example.org; now it is used up' 'refused' <<'EOF'
mtoken check --consume "$tok"
EOF
step_status 'accepted again?' 'a second use is refused' <<'EOF'
mtoken check --consume "$tok"
EOF

say "Outgoing mail carries postage (a hashcash stamp per recipient); the receiving side, with a store of its own, verifies it:"
step <<'EOF'
printf 'From: me@example.org\nTo: friend@elsewhere.example\nSubject: hello\nMessage-ID: <demo1@example.org>\n\nHi\n' > out.eml
EOF
step <<'EOF'
mstamp --bits 16 < out.eml > stamped.eml
EOF
step <<'EOF'
grep '^X-Hashcash:' stamped.eml
EOF
step <<'EOF'
mwhitelist --db receiver.db domain add elsewhere.example
EOF
step <<'EOF'
mverify --db receiver.db --min-bits 16 --authserv-id mx.elsewhere.example < stamped.eml | grep -E '^(X-Mailstamp-Class|Subject):'
EOF
say "The verdict is a letter, also put in front of the Subject: G is Stamped (good postage). The others: W Whitelist (a whitelisted sender, or a token address), Q Questionable (postage that could not be fully checked), I Information (a bounce), B Unknown (none of these)."
say "The same stamp lifted onto another message is refused (the stamp is bound to its message, and already spent):"
step <<'EOF'
sed 's/^Hi$/Buy now/; s/demo1/demo2/' stamped.eml | mverify --db receiver.db --min-bits 16 --authserv-id mx.elsewhere.example | grep -E '^(X-Mailstamp-Class|Authentication-Results):'
EOF

say "A whitelist entry counts only for a sender that authenticates (SPF, DKIM, DMARC): a forger who writes as your sister gets nothing from her entry. A DNS server of our own on loopback plays the Internet here: family.example publishes SPF for its mail server 192.0.2.10 and DMARC p=reject."
step <<'EOF2'
printf 'family.example TXT "v=spf1 ip4:192.0.2.10 -all"\n_dmarc.family.example TXT "v=DMARC1; p=reject"\n' > zone
EOF2
printf '\n$ %s\n' "t/dns/zone-server.py zone --port-file dns.port &"
/usr/bin/python3 "$src/t/dns/zone-server.py" zone --port-file dns.port >/dev/null 2>&1 &
dns=$!
for _ in $(seq 100); do [ -s dns.port ] && break; sleep 0.05; done
[ -s dns.port ] || { echo "demo: the DNS server did not start (python3-dnslib missing?)" >&2; exit 1; }
export MAILSTAMP_DNS="127.0.0.1:$(cat dns.port)"
step <<'EOF2'
printf 'From: sister@family.example\nTo: me@example.org\nSubject: lunch\n\nSunday?\n' > sister.eml
EOF2
say "From her own mail server (the MTA passes the client address, as Postfix's pipe does with \${client_address}):"
step <<'EOF2'
mverify --sender sister@family.example --rcpt me@example.org --client-ip 192.0.2.10 --helo mail.family.example < sister.eml | grep '^X-Mailstamp-Class:'
EOF2
say "The same message from anywhere else is a forgery: Unknown, and logged as forged:"
step <<'EOF2'
mverify --sender sister@family.example --rcpt me@example.org --client-ip 203.0.113.66 --helo forger.example < sister.eml | grep -E '^(X-Mailstamp-Class|Authentication-Results):'
EOF2
kill "$dns" 2>/dev/null || true; wait "$dns" 2>/dev/null || true

say "The SMTP proxy asks the same questions at RCPT time, in front of the real MTA (here a Maildir; nothing leaves this machine):"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '\n$ %s\n' "msmtp-proxy --listen 127.0.0.1:$port --maildir Maildir --hostname mx.example.org --log proxy.log &"
msmtp-proxy --listen "127.0.0.1:$port" --maildir Maildir --hostname mx.example.org --log proxy.log &
proxy=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
say "A stranger writes to me@example.org (swaks is the stranger's mail client):"
step <<EOF
reply=\$(swaks --server 127.0.0.1:$port --from stranger@spam.example --to me@example.org --quit-after RCPT 2>&1); grep '^<\*\* 550' <<<"\$reply"
EOF
say "The stranger, a human, resends to the token address from the 550:"
step <<'EOF'
tok=$(sed -n 's/.*this address: <\([^>]*\)>.*/\1/p' <<<"$reply"); echo "$tok"
EOF
step <<EOF
swaks --server 127.0.0.1:$port --from stranger@spam.example --to "\$tok" --hide-informational 2>&1 | grep '^<-  250 2\.0\.0'
EOF
say "Delivered into the Maildir, with its verdict (W: it came to a good token address):"
step <<'EOF'
grep -hE '^(Received|X-Mailstamp-Class|Subject):' Maildir/new/*
EOF
say "The same token a second time is refused (it was for one message), with a new one:"
step <<EOF
swaks --server 127.0.0.1:$port --from stranger@spam.example --to "\$tok" --quit-after RCPT 2>&1 | grep '^<\*\* 550'
EOF
say "The proxy's log, one line per event:"
step <<'EOF'
grep -E 'event=(reject|delivered)' proxy.log | cut -d' ' -f2- | cut -c1-150
EOF
