#!/usr/bin/python3
# The SPF differential test (issue 14): generates SPF cases over every
# mechanism, modifier, macro, limit and error, serves their records with
# t/dns/zone-server.py on loopback, and runs each case through pyspf (Debian
# python3-spf, over dnspython pointed at that server) and through
# `mverify spf --dns 127.0.0.1:PORT`. Any difference that is not in KNOWN
# below (each with the RFC 7208 section that says mailstamp is right) fails
# the test; so does a KNOWN difference that no longer shows as listed.
#
# Usage: cases.py --mverify PATH [--workdir DIR] [--only NAME] [--verbose]
# Prints one line per difference and the tally:
#   cases N, equal E, listed differences L, unlisted differences U
# Exit 0 when U is 0 and every listed difference showed as listed, else 1.
import argparse, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ZONE_SERVER = os.path.join(HERE, "..", "dns", "zone-server.py")

# Differences with pyspf that RFC 7208 decides for mailstamp: case -> (mailstamp, pyspf, section, reason).
KNOWN = {
    "ptr-servfail": ("fail", "temperror", "5.5",
                     "a DNS error on the PTR lookup makes the ptr mechanism not match; pyspf returns temperror"),
    "ptr-names-void": ("pass", "permerror", "4.6.4, 5.5",
                       "the void-lookup limit counts terms; the A lookups of the client's own PTR names are "
                       "skipped when empty (5.5), so a client cannot turn the domain's result into permerror; "
                       "pyspf counts each as a void lookup"),
    "ptr-name-servfail": ("pass", "temperror", "5.5",
                          "a DNS error on the A lookup of one PTR name skips that name; pyspf returns temperror"),
    "redirect-not-evaluated-count": ("pass", "permerror", "4.6.4, 6.1",
                                     "the limit counts terms evaluated; a redirect that is never reached (a "
                                     "mechanism matched) costs no lookup; pyspf counts it when parsing"),
    "macro-delim-d": ("pass", "fail", "7.3",
                      "after splitting on the delimiters the parts are rejoined with '.'; pyspf keeps the "
                      "original delimiter for letters other than s and l"),
    "macro-unterminated": ("permerror", "fail", "7.1, 4.6",
                           "'%' may only start a macro-expand; '%{d' without its '}' is a syntax error in the "
                           "record, so permerror; pyspf takes it as literal text and queries it"),
    "macro-bad-delim": ("permerror", "fail", "7.1, 4.6",
                        "the delimiters are . - + , / _ = only; '%{d@}' is a syntax error, so permerror; pyspf "
                        "accepts any punctuation as a delimiter"),
    "macro-zero-digit": ("permerror", "pass", "7.3",
                         "'If a DIGIT is specified, the value MUST be nonzero': %{d0} is a syntax error; pyspf "
                         "expands it"),
}


def q(s):
    """A zone-file TXT record: the text as quoted character-strings of at most 250 octets each."""
    parts = [s[k:k + 250] for k in range(0, len(s), 250)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


class Case:
    def __init__(self, name, record=None, ip="192.0.2.3", sender=None, helo=None, zone=(), exp=False):
        self.name = name
        self.domain = name + ".test"
        self.ip = ip
        self.sender = ("user@" + self.domain) if sender is None else sender.replace("$D", self.domain)
        self.helo = (helo or "mail.example.org").replace("$D", self.domain)
        self.lines = []
        if record is not None:
            records = record if isinstance(record, list) else [record]
            for r in records:
                if isinstance(r, tuple):
                    self.lines.append(f"{self.domain} TXT " + " ".join(q(x.replace('$D', self.domain)) for x in r))
                else:
                    self.lines.append(f"{self.domain} TXT " + q(r.replace("$D", self.domain)))
        for line in zone:
            self.lines.append(line.replace("$D", self.domain))
        self.compare_exp = exp


def build():
    C = []
    add = lambda *a, **k: C.append(Case(*a, **k))

    # ---- ip4 / ip6 ----
    for n in (32, 31, 30, 25, 24, 23, 16, 9, 8, 0):
        add(f"ip4-in-{n}", f"v=spf1 ip4:192.0.2.3/{n} -all" if n else "v=spf1 ip4:0.0.0.0/0 -all")
        if n >= 8:
            add(f"ip4-out-{n}", f"v=spf1 ip4:203.0.113.0/{n} -all")
    add("ip4-bare", "v=spf1 ip4:192.0.2.3 -all")
    add("ip4-bare-out", "v=spf1 ip4:192.0.2.4 -all")
    for qual, word in (("+", "pass"), ("-", "fail"), ("~", "softfail"), ("?", "neutral")):
        add(f"qual-{word}", f"v=spf1 {qual}ip4:192.0.2.0/24 -all")
        add(f"all-{word}", f"v=spf1 ip4:203.0.113.1 {qual}all")
    add("no-all", "v=spf1 ip4:203.0.113.1")
    add("empty-record", "v=spf1")
    add("first-match-wins", "v=spf1 -ip4:192.0.2.3 +ip4:192.0.2.0/24 +all")
    add("case-insensitive", "V=SPF1 IP4:192.0.2.3 -ALL")
    add("spaces", "v=spf1   ip4:192.0.2.3    -all   ")
    for n, net, ip, name in ((128, "2001:db8::3", "2001:db8::3", "in-128"), (64, "2001:db8::", "2001:db8::3", "in-64"),
                             (32, "2001:db8::", "2001:db8:ffff::1", "in-32"), (0, "::", "2001:db8::3", "in-0"),
                             (64, "2001:db8:1::", "2001:db8::3", "out-64"), (127, "2001:db8::2", "2001:db8::3", "in-127"),
                             (128, "2001:db8::4", "2001:db8::3", "out-128")):
        add(f"ip6-{name}", f"v=spf1 ip6:{net}/{n} -all", ip=ip)
    add("ip6-vs-v4-client", "v=spf1 ip6:::/0 -all")
    add("ip4-vs-v6-client", "v=spf1 ip4:0.0.0.0/0 -all", ip="2001:db8::3")
    add("mapped-client-ip4", "v=spf1 ip4:192.0.2.0/24 -all", ip="::ffff:192.0.2.3")
    add("mapped-client-a", "v=spf1 a -all", ip="::ffff:192.0.2.3", zone=["$D A 192.0.2.3"])
    add("mapped-client-ip6", "v=spf1 ip6:::ffff:0:0/96 -all", ip="::ffff:192.0.2.3")

    # ---- a ----
    add("a-match", "v=spf1 a -all", zone=["$D A 192.0.2.3"])
    add("a-nomatch", "v=spf1 a -all", zone=["$D A 192.0.2.4"])
    add("a-several", "v=spf1 a -all", zone=["$D A 198.51.100.1", "$D A 192.0.2.3"])
    add("a-cidr24", "v=spf1 a/24 -all", zone=["$D A 192.0.2.200"])
    add("a-cidr24-out", "v=spf1 a/24 -all", zone=["$D A 192.0.3.200"])
    add("a-other", "v=spf1 a:host.$D -all", zone=["host.$D A 192.0.2.3"])
    add("a-other-cidr", "v=spf1 a:host.$D/16 -all", zone=["host.$D A 192.0.77.1"])
    add("a-v6", "v=spf1 a -all", ip="2001:db8::3", zone=["$D AAAA 2001:db8::3"])
    add("a-v6-cidr", "v=spf1 a//64 -all", ip="2001:db8::3", zone=["$D AAAA 2001:db8::99"])
    add("a-v6-cidr-out", "v=spf1 a/24//120 -all", ip="2001:db8::3:3", zone=["$D AAAA 2001:db8::99"])
    add("a-dual-v4", "v=spf1 a/24//64 -all", zone=["$D A 192.0.2.99", "$D AAAA 2001:db8::1"])
    add("a-v4-only-for-v6", "v=spf1 a -all", ip="2001:db8::3", zone=["$D A 192.0.2.3"])
    add("a-nodata", "v=spf1 a ?all", zone=["$D MX 10 mx.$D"])
    add("a-nxdomain", "v=spf1 a:nothere.$D ?all")
    add("a-cname", "v=spf1 a:alias.$D -all", zone=["alias.$D CNAME real.$D", "real.$D A 192.0.2.3"])
    add("a-trailing-dot", "v=spf1 a:host.$D. -all", zone=["host.$D A 192.0.2.3"])
    add("a-servfail", "v=spf1 a:bad.$D -all", zone=["bad.$D A SERVFAIL"])
    add("a-refused", "v=spf1 a:bad.$D -all", zone=["bad.$D A REFUSED"])
    add("a-cidr0", "v=spf1 a/0 -all", zone=["$D A 203.0.113.1"])

    # ---- mx ----
    add("mx-match", "v=spf1 mx -all", zone=["$D MX 10 mx1.$D", "$D MX 20 mx2.$D", "mx1.$D A 198.51.100.1",
                                             "mx2.$D A 192.0.2.3"])
    add("mx-nomatch", "v=spf1 mx -all", zone=["$D MX 10 mx1.$D", "mx1.$D A 198.51.100.1"])
    add("mx-cidr", "v=spf1 mx/24 -all", zone=["$D MX 10 mx1.$D", "mx1.$D A 192.0.2.77"])
    add("mx-other", "v=spf1 mx:other.$D -all", zone=["other.$D MX 10 mx.other.$D", "mx.other.$D A 192.0.2.3"])
    add("mx-v6", "v=spf1 mx -all", ip="2001:db8::3", zone=["$D MX 10 mx1.$D", "mx1.$D AAAA 2001:db8::3"])
    add("mx-v6-cidr", "v=spf1 mx//64 -all", ip="2001:db8::3", zone=["$D MX 10 mx1.$D", "mx1.$D AAAA 2001:db8::5"])
    add("mx-nodata", "v=spf1 mx ?all", zone=["$D A 192.0.2.3"])
    add("mx-host-nx", "v=spf1 mx -all", zone=["$D MX 10 gone.$D", "$D MX 20 mx.$D", "mx.$D A 192.0.2.3"])
    ten = [f"$D MX {k} h{k}.$D" for k in range(10)]
    add("mx-ten", "v=spf1 mx -all", zone=ten + ["h9.$D A 192.0.2.3"] + [f"h{k}.$D A 198.51.100.{k + 1}" for k in range(9)])
    add("mx-eleven", "v=spf1 mx -all", zone=ten + ["$D MX 10 h10.$D", "h10.$D A 192.0.2.3"] +
        [f"h{k}.$D A 198.51.100.{k + 1}" for k in range(10)])
    add("mx-servfail", "v=spf1 mx -all", zone=["$D MX SERVFAIL", "$D A 192.0.2.3"])
    add("mx-host-servfail", "v=spf1 mx -all", zone=["$D MX 10 mx.$D", "mx.$D A SERVFAIL"])
    add("mx-cname-host", "v=spf1 mx -all", zone=["$D MX 10 mx.$D", "mx.$D CNAME real.$D", "real.$D A 192.0.2.3"])

    # ---- ptr ----
    rev = "3.2.0.192.in-addr.arpa"
    add("ptr-match", "v=spf1 ptr -all", zone=[f"{rev} PTR mail.$D"] if False else [])  # replaced below
    C.pop()
    # Each ptr case gets its own client address so the reverse zones do not collide.
    def ptr_case(name, record, k, ptrs, zone=(), v6=False):
        ip = f"192.0.2.{k}" if not v6 else f"2001:db8::{k:x}"
        if v6:
            nib = "".join(f"{int(x, 16):04x}" for x in ("2001", "db8", "0", "0", "0", "0", "0", f"{k:x}"))
            r = ".".join(reversed(nib)) + ".ip6.arpa"
        else:
            r = f"{k}.2.0.192.in-addr.arpa"
        lines = [f"{r} PTR {p}" for p in ptrs] + [z.replace("$IP", ip) for z in zone]
        add(name, record, ip=ip, zone=lines)
    ptr_case("ptr-match", "v=spf1 ptr -all", 11, ["mail.$D"], ["mail.$D A $IP"])
    ptr_case("ptr-domain", "v=spf1 ptr:$D -all", 12, ["a.b.$D"], ["a.b.$D A $IP"])
    ptr_case("ptr-exact", "v=spf1 ptr:mail.$D -all", 13, ["mail.$D"], ["mail.$D A $IP"])
    ptr_case("ptr-unvalidated", "v=spf1 ptr -all", 14, ["mail.$D"], ["mail.$D A 198.51.100.1"])
    ptr_case("ptr-other-domain", "v=spf1 ptr -all", 15, ["mail.elsewhere.test"], ["mail.elsewhere.test A $IP"])
    ptr_case("ptr-label-boundary", "v=spf1 ptr:ail.$D -all", 16, ["mail.$D"], ["mail.$D A $IP"])
    ptr_case("ptr-none", "v=spf1 ptr -all", 17, [])
    ptr_case("ptr-second-name", "v=spf1 ptr -all", 18, ["x.elsewhere.test", "mail.$D"],
             ["x.elsewhere.test A $IP", "mail.$D A $IP"])
    ptr_case("ptr-v6", "v=spf1 ptr -all", 0x19, ["mail.$D"], ["mail.$D AAAA $IP"], v6=True)
    ptr_case("ptr-servfail", "v=spf1 ptr -all", 20, [], ["20.2.0.192.in-addr.arpa PTR SERVFAIL"])
    ptr_case("ptr-names-void", "v=spf1 ptr -all", 21, ["n1.$D", "n2.$D", "n3.$D", "mail.$D"], ["mail.$D A $IP"])
    ptr_case("ptr-name-servfail", "v=spf1 ptr -all", 22, ["bad.$D", "mail.$D"], ["bad.$D A SERVFAIL", "mail.$D A $IP"])
    ptr_case("ptr-eleven-names", "v=spf1 ptr -all", 23, [f"h{k}.x.test" for k in range(10)] + ["mail.$D"],
             [f"h{k}.x.test A 198.51.100.1" for k in range(10)] + ["mail.$D A $IP"])

    # ---- exists ----
    add("exists-match", "v=spf1 exists:ok.$D -all", zone=["ok.$D A 127.0.0.2"])
    add("exists-nomatch", "v=spf1 exists:no.$D -all")
    add("exists-nodata", "v=spf1 exists:txt.$D -all", zone=["txt.$D TXT hello"])
    add("exists-ip", "v=spf1 exists:%{i}.e.$D -all", zone=["192.0.2.3.e.$D A 127.0.0.2"])
    add("exists-v6-asks-a", "v=spf1 exists:%{ir}.%{v}.e.$D -all", ip="2001:db8::cb01",
        zone=["1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.e.$D A 127.0.0.2"])
    add("exists-v6-aaaa-only", "v=spf1 exists:x.$D -all", ip="2001:db8::3", zone=["x.$D AAAA 2001:db8::3"])
    add("exists-servfail", "v=spf1 exists:x.$D -all", zone=["x.$D A SERVFAIL"])
    add("exists-qualified", "v=spf1 ~exists:ok.$D +all", zone=["ok.$D A 127.0.0.2"])

    # ---- include (§5.2) ----
    for word, rec in (("pass", "v=spf1 +all"), ("fail", "v=spf1 -all"), ("softfail", "v=spf1 ~all"),
                      ("neutral", "v=spf1 ?all"), ("permerror", "v=spf1 bogus"), ("none", "not spf")):
        add(f"include-{word}", "v=spf1 include:inc.$D -all", zone=[f"inc.$D TXT {q(rec)}"])
        add(f"include-{word}-plus", "v=spf1 include:inc.$D +all", zone=[f"inc.$D TXT {q(rec)}"])
    add("include-nx", "v=spf1 include:nothere.$D +all")
    add("include-temperror", "v=spf1 include:inc.$D +all", zone=["inc.$D TXT SERVFAIL"])
    add("include-inner-temperror", "v=spf1 include:inc.$D +all", zone=[f"inc.$D TXT {q('v=spf1 a:bad.$D')}",
                                                                        "bad.$D A SERVFAIL"])
    add("include-negated", "v=spf1 -include:inc.$D +all", zone=[f"inc.$D TXT {q('v=spf1 ip4:192.0.2.3')}"])
    add("include-nested", "v=spf1 include:i1.$D -all", zone=[f"i1.$D TXT {q('v=spf1 include:i2.$D')}",
                                                             f"i2.$D TXT {q('v=spf1 ip4:192.0.2.0/24')}"])
    add("include-d-macro", "v=spf1 include:inc.$D -all", zone=[f"inc.$D TXT {q('v=spf1 a:%{d} -all')}",
                                                               "inc.$D A 192.0.2.3"])
    add("include-loop", "v=spf1 include:$D -all")
    add("include-macro-target", "v=spf1 include:%{d1}.i.$D -all", zone=[f"test.i.$D TXT {q('v=spf1 +all')}"])

    # ---- redirect (§6.1) ----
    add("redirect-pass", "v=spf1 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 ip4:192.0.2.3 -all')}"])
    add("redirect-fail", "v=spf1 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 -all')}"])
    add("redirect-neutral", "v=spf1 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1')}"])
    add("redirect-after-match", "v=spf1 ip4:192.0.2.3 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 -all')}"])
    add("redirect-with-all", "v=spf1 redirect=r.$D ~all", zone=[f"r.$D TXT {q('v=spf1 +all')}"])
    add("redirect-none", "v=spf1 redirect=r.$D", zone=["r.$D TXT hello"])
    add("redirect-nx", "v=spf1 redirect=nothere.$D")
    add("redirect-chain", "v=spf1 redirect=r1.$D", zone=[f"r1.$D TXT {q('v=spf1 redirect=r2.$D')}",
                                                         f"r2.$D TXT {q('v=spf1 ip4:192.0.2.3 -all')}"])
    add("redirect-d-macro", "v=spf1 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 a:%{d} -all')}", "r.$D A 192.0.2.3"])
    add("redirect-syntax-error", "v=spf1 redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 ip4:300.0.0.1 -all')}"])
    add("redirect-loop", "v=spf1 redirect=$D")
    add("redirect-temperror", "v=spf1 redirect=r.$D", zone=["r.$D TXT SERVFAIL"])
    add("redirect-after-nomatch", "v=spf1 ip4:198.51.100.1 redirect=r.$D",
        zone=[f"r.$D TXT {q('v=spf1 ip4:192.0.2.0/24 -all')}"])
    add("redirect-duplicate", "v=spf1 redirect=r.$D redirect=r.$D", zone=[f"r.$D TXT {q('v=spf1 +all')}"])

    # ---- exp= (§6.2): the explanation is compared too ----
    add("exp-basic", "v=spf1 -all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('%{i} is not one of %{d}s servers')}"])
    add("exp-letters", "v=spf1 -all exp=e.$D", exp=True,
        zone=[f"e.$D TXT {q('s=%{s} l=%{l} o=%{o} d=%{d} h=%{h} c=%{c} v=%{v} d2=%{d2} lr=%{lr-}')}"])
    add("exp-escapes", "v=spf1 -all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('100%% sure%_here%-x')}"])
    add("exp-url", "v=spf1 -all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('see %{S} and %{L}')}"],
        sender="a+b@$D")
    add("exp-nx", "v=spf1 -all exp=e.$D", exp=True)
    add("exp-two-records", "v=spf1 -all exp=e.$D", exp=True, zone=["e.$D TXT one", "e.$D TXT two"])
    add("exp-bad-macro", "v=spf1 -all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('bad %{x} macro')}"])
    add("exp-servfail", "v=spf1 -all exp=e.$D", exp=True, zone=["e.$D TXT SERVFAIL"])
    add("exp-softfail-unused", "v=spf1 ~all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('why')}"])
    add("exp-macro-name", "v=spf1 -all exp=%{l}.e.$D", exp=True, zone=[f"user.e.$D TXT {q('for user')}"])
    add("exp-multi-string", "v=spf1 -all exp=e.$D", exp=True, zone=[f"e.$D TXT {q('part one ')} {q('part two')}"])
    add("exp-from-redirect", "v=spf1 exp=e.$D redirect=r.$D", exp=True,
        zone=[f"r.$D TXT {q('v=spf1 -all exp=e2.$D')}", f"e.$D TXT {q('original')}", f"e2.$D TXT {q('target %{d}')}"])
    add("exp-not-from-include", "v=spf1 include:i.$D -all", exp=True,
        zone=[f"i.$D TXT {q('v=spf1 -all exp=e.$D')}", f"e.$D TXT {q('included')}"])
    add("exp-empty-spec", "v=spf1 -all exp=")
    add("exp-duplicate", "v=spf1 -all exp=e.$D exp=e.$D", zone=[f"e.$D TXT {q('x')}"])

    # ---- macros in domain-specs (§7) ----
    def mac(name, spec, expanded, sender=None, helo=None, ip="192.0.2.3", zone=()):
        add(name, f"v=spf1 exists:{spec} -all", sender=sender, helo=helo, ip=ip,
            zone=[f"{expanded} A 127.0.0.2"] + list(zone))
    mac("macro-s", "%{s}.m.$D", "user@$D.m.$D")
    mac("macro-l", "%{l}.m.$D", "first.last.m.$D", sender="first.last@$D")
    mac("macro-o", "%{o}.m.$D", "$D.m.$D")
    mac("macro-d", "%{d}.m.$D", "$D.m.$D")
    mac("macro-d1", "%{d1}.m.$D", "test.m.$D")
    mac("macro-d2", "%{d2}.m.$D", "macro-d2.test.m.$D")
    mac("macro-d9", "%{d9}.m.$D", "$D.m.$D")
    mac("macro-dr", "%{dr}.m.$D", "test.macro-dr.m.$D")
    mac("macro-d1r", "%{d1r}.m.$D", "macro-dr.m.$D" if False else "macro-d1r.m.$D")
    mac("macro-i", "%{i}.m.$D", "192.0.2.3.m.$D")
    mac("macro-ir", "%{ir}.%{v}.m.$D", "3.2.0.192.in-addr.m.$D")
    mac("macro-i-v6", "%{i}.m.$D", "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1.m.$D",
        ip="2001:db8::cb01")
    mac("macro-v6", "%{v}.m.$D", "ip6.m.$D", ip="2001:db8::1")
    mac("macro-h", "%{h}.m.$D", "helo.example.org.m.$D", helo="helo.example.org")
    mac("macro-h2", "%{h2}.m.$D", "example.org.m.$D", helo="helo.example.org")
    mac("macro-l-delim", "%{l-}.m.$D", "strong.bad.m.$D", sender="strong-bad@$D")
    mac("macro-lr-delim", "%{lr-}.m.$D", "bad.strong.m.$D", sender="strong-bad@$D")
    mac("macro-l1r-delim", "%{l1r-}.m.$D", "strong.m.$D", sender="strong-bad@$D")
    mac("macro-l-plus", "%{l+}.m.$D", "user.tag.m.$D", sender="user+tag@$D")
    mac("macro-l-multi", "%{l+-}.m.$D", "a.b.c.m.$D", sender="a+b-c@$D")
    mac("macro-l-postmaster", "%{l}.m.$D", "postmaster.m.$D", sender="@$D")
    mac("macro-null-sender", "%{l}.%{o}.m.$D", "postmaster.$D.m.$D", sender="", helo="$D")
    mac("macro-upper-d", "%{D}.m.$D", "$D.m.$D")
    mac("macro-upper-s", "%{S}.m.$D", "user%40$D.m.$D")
    mac("macro-rfc-example", "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.$D")
    mac("macro-long-truncated", "%{l}.%{l}.%{l}.%{l}.%{l}.m.$D",
        ".".join(["x" * 50] * 4) + ".m.$D", sender="x" * 50 + "@$D")
    add("macro-p", "v=spf1 exists:%{p}.m.$D -all", ip="192.0.2.31",
        zone=["31.2.0.192.in-addr.arpa PTR mail.$D", "mail.$D A 192.0.2.31", "mail.$D.m.$D A 127.0.0.2"])
    add("macro-p-unknown", "v=spf1 exists:%{p}.m.$D -all", ip="192.0.2.32", zone=["unknown.m.$D A 127.0.0.2"])
    add("macro-delim-d", "v=spf1 exists:%{d-}.m.$D -all", zone=["macro.delim.d.test.m.$D A 127.0.0.2"])
    add("macro-zero-digit", "v=spf1 exists:%{d0}.m.$D +all")
    add("macro-percent", "v=spf1 a:%%.$D -all")
    add("macro-bad-letter", "v=spf1 exists:%{x}.$D -all")
    add("macro-c-in-domain", "v=spf1 exists:%{c}.$D -all")
    add("macro-r-in-domain", "v=spf1 exists:%{r}.$D -all")
    add("macro-t-in-domain", "v=spf1 exists:%{t}.$D -all")
    add("macro-lone-percent", "v=spf1 exists:%.$D -all")
    add("macro-unterminated", "v=spf1 exists:%{d.$D -all")
    add("macro-bad-delim", "v=spf1 exists:%{d@}.$D -all")
    add("macro-in-unknown-mod", "v=spf1 foo=%{d} ip4:192.0.2.3 -all")
    add("macro-bad-in-unknown-mod", "v=spf1 foo=%{q} ip4:192.0.2.3 -all")

    # ---- the 10-term limit (§4.6.4) ----
    many = lambda n, t="a:h.$D": " ".join([t] * n)
    add("limit-10-a", f"v=spf1 {many(10)} -all", zone=["h.$D A 198.51.100.1"])
    add("limit-11-a", f"v=spf1 {many(11)} -all", zone=["h.$D A 198.51.100.1"])
    add("limit-10-then-ip4", f"v=spf1 {many(10)} ip4:192.0.2.3 -all", zone=["h.$D A 198.51.100.1"])
    add("limit-match-before", f"v=spf1 a:ok.$D {many(11)} -all", zone=["h.$D A 198.51.100.1", "ok.$D A 192.0.2.3"])
    add("limit-mixed-11", f"v=spf1 {many(5)} mx:h.$D exists:n.$D ptr:h.$D include:i.$D a:h.$D a:h.$D -all",
        zone=["h.$D A 198.51.100.1", "h.$D MX 10 h.$D", f"i.$D TXT {q('v=spf1 ?all')}"])
    add("limit-include-10", "v=spf1 include:i.$D include:i.$D -all",
        zone=["h.$D A 198.51.100.1", f"i.$D TXT {q('v=spf1 ' + many(4))}"])
    add("limit-include-11", "v=spf1 include:i.$D include:i.$D a:h.$D -all",
        zone=["h.$D A 198.51.100.1", f"i.$D TXT {q('v=spf1 ' + many(4))}"])
    add("limit-redirect-10", f"v=spf1 {many(9)} redirect=r.$D",
        zone=["h.$D A 198.51.100.1", f"r.$D TXT {q('v=spf1 -all')}"])
    add("limit-redirect-11", f"v=spf1 {many(9)} redirect=r.$D",
        zone=["h.$D A 198.51.100.1", f"r.$D TXT {q('v=spf1 a:h.$D -all')}"])
    add("redirect-not-evaluated-count", f"v=spf1 {many(9)} a:ok.$D redirect=r.$D",
        zone=["h.$D A 198.51.100.1", "ok.$D A 192.0.2.3", f"r.$D TXT {q('v=spf1 -all')}"])
    add("limit-nested-includes", "v=spf1 include:i1.$D -all",
        zone=[f"i{k}.$D TXT {q(f'v=spf1 include:i{k + 1}.$D')}" for k in range(1, 11)] +
             [f"i11.$D TXT {q('v=spf1 +all')}"])
    add("limit-nested-includes-ok", "v=spf1 include:i1.$D -all",
        zone=[f"i{k}.$D TXT {q(f'v=spf1 include:i{k + 1}.$D')}" for k in range(1, 10)] +
             [f"i10.$D TXT {q('v=spf1 +all')}"])

    # ---- void lookups (§4.6.4) ----
    add("void-2", "v=spf1 a:n1.$D a:n2.$D -all")
    add("void-3", "v=spf1 a:n1.$D a:n2.$D a:n3.$D -all")
    add("void-3-after-match", "v=spf1 a:n1.$D a:n2.$D ip4:192.0.2.3 a:n3.$D -all")
    add("void-nodata-3", "v=spf1 a:t.$D mx:t.$D exists:t.$D -all", zone=["t.$D TXT hello"])
    add("void-mixed", "v=spf1 exists:n1.$D mx:n2.$D a:ok.$D a:n3.$D -all", zone=["ok.$D A 198.51.100.1"])
    add("void-not-counting-hits", "v=spf1 a:h.$D a:h.$D a:h.$D a:n1.$D a:n2.$D -all", zone=["h.$D A 198.51.100.1"])

    # ---- record selection and syntax errors (§4.5, §4.6) ----
    add("none-nxdomain", None)
    add("none-no-spf", "hello world")
    add("none-spf10", "v=spf10 +all")
    add("none-spf2", "spf2.0/mfrom +all")
    add("two-records", ["v=spf1 +all", "v=spf1 -all"])
    add("one-of-several-txt", ["hello", "v=spf1 ip4:192.0.2.3 -all", "world"])
    add("txt-strings-joined", [("v=spf1 ip4:192.0.2.3", " -all")])
    add("txt-strings-joined-2", [("v=spf1 ", "ip4:192.0.2.0/24 -all")])
    add("txt-strings-no-space", [("v=spf1 ip4:192.0.2.3", "-all")])
    add("top-servfail", None, zone=["$D TXT SERVFAIL"])
    add("top-refused", None, zone=["$D TXT REFUSED"])
    add("top-timeout", None, zone=["$D TXT TIMEOUT"])
    for k, rec in enumerate(("v=spf1 foo", "v=spf1 -all:x", "v=spf1 a/33", "v=spf1 a//129", "v=spf1 ip4:192.0.2.0/33",
                             "v=spf1 ip4:192.0.2", "v=spf1 ip4:192.0.2.256", "v=spf1 ip4:1.2.03.4",
                             "v=spf1 ip6:2001:db8::/129", "v=spf1 ip6:gggg::1", "v=spf1 include", "v=spf1 include:",
                             "v=spf1 exists", "v=spf1 exists:", "v=spf1 a:foo", "v=spf1 a:1.2.3.4",
                             "v=spf1 =a", "v=spf1 ptr/24", "v=spf1 ip4:192.0.2.3//64", "v=spf1 all/24",
                             "v=spf1 ip4:192.0.2.3 -all,", "v=spf1 a:%{d} mx:", "v=spf1 ip4:192.0.2.3 -all moo",
                             "v=spf1 ip4:192.0.2.3 -all foo=", "v=spf1 ip4:192.0.2.3 -all 1foo=bar",
                             "v=spf1 a:example.com:8080", "v=spf1 ip6:::1/64 ip4:192.0.2.3 -all",
                             "v=spf1 ip4:192.0.2.3/24 -all", "v=spf1 exists:foo.com/24", "v=spf1 a:.$D")):
        add(f"syntax-{k:02d}", rec)
    add("unknown-modifier-ignored", "v=spf1 ip4:192.0.2.3 x-custom=anything.here -all")
    add("unknown-modifier-name-chars", "v=spf1 my.mod_1-x=v ip4:192.0.2.3 -all")
    add("syntax-error-after-match", "v=spf1 ip4:192.0.2.3 bogus:x")

    # ---- identities ----
    add("helo-null-sender", "v=spf1 ip4:192.0.2.3 -all", sender="", helo="$D")
    add("helo-null-sender-fail", "v=spf1 -all", sender="", helo="$D")
    add("sender-subdomain", None, sender="user@sub.$D", zone=[f"sub.$D TXT {q('v=spf1 ip4:192.0.2.3 -all')}"])
    add("sender-upper", "v=spf1 ip4:192.0.2.3 -all", sender="User@$D".upper().replace("$D", "$D"))
    return C


def pyspf_check(port, case):
    import dns.resolver
    import spf
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = port
    r.timeout = 2
    r.lifetime = 3
    dns.resolver.default_resolver = r
    res, exp = spf.check2(i=case.ip, s=case.sender, h=case.helo, querytime=3, timeout=3)
    return res, exp


def mverify_check(mverify, port, case, env):
    argv = [mverify, "spf", "--ip", case.ip, "--helo", case.helo, "--sender", case.sender,
            "--dns", f"127.0.0.1:{port}"]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    if p.returncode != 0:
        return f"exit {p.returncode}: {p.stderr.strip()}", ""
    lines = p.stdout.split("\n")
    return lines[0], (lines[1] if len(lines) > 1 else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mverify", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--only")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--count", action="store_true", help="print the number of cases and exit")
    a = ap.parse_args()
    cases = build()
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"duplicate case names: {sorted(dup)}")
    if a.count:
        print(len(cases))
        return 0
    if a.only:
        cases = [c for c in cases if c.name == a.only]
    work = a.workdir or tempfile.mkdtemp(prefix="spf-diff.")
    os.makedirs(work, exist_ok=True)
    zone = os.path.join(work, "zone")
    with open(zone, "w") as f:
        for c in build():
            for line in c.lines:
                f.write(line + "\n")
    port_file = os.path.join(work, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    server = subprocess.Popen(["/usr/bin/python3", ZONE_SERVER, zone, "--port-file", port_file],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.err"), "w"))
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        port = int(open(port_file).read().strip())
        env = dict(os.environ, HOME=work, MAILSTAMP_CONFIG="/dev/null", MAILSTAMP_DB=os.path.join(work, "store.db"))
        env.pop("MAILSTAMP_DNS", None)
        equal = listed = 0
        unlisted = []
        stale = []
        for c in cases:
            ours, our_exp = mverify_check(a.mverify, port, c, env)
            theirs, their_exp = pyspf_check(port, c)
            if theirs == "fail" and their_exp == "SPF fail - not authorized":
                their_exp = ""  # pyspf's default text when there is no exp=
            same = ours == theirs and (not c.compare_exp or ours != "fail" or our_exp == their_exp)
            if a.verbose:
                print(f"{c.name}: mailstamp {ours} {our_exp!r} pyspf {theirs} {their_exp!r}")
            if c.name in KNOWN:
                want_ours, want_theirs, section, reason = KNOWN[c.name]
                if (ours, theirs) == (want_ours, want_theirs):
                    listed += 1
                    print(f"listed difference {c.name}: mailstamp {ours}, pyspf {theirs} (RFC 7208 §{section}: {reason})")
                else:
                    stale.append(f"{c.name}: listed as mailstamp {want_ours} / pyspf {want_theirs}, "
                                 f"got mailstamp {ours} / pyspf {theirs}")
                continue
            if same:
                equal += 1
            else:
                unlisted.append(f"{c.name}: mailstamp {ours} {our_exp!r}, pyspf {theirs} {their_exp!r} "
                                f"(ip {c.ip}, helo {c.helo}, sender {c.sender})")
        for u in unlisted:
            print("UNLISTED DIFFERENCE " + u)
        for s in stale:
            print("LISTED DIFFERENCE NOT AS LISTED " + s)
        print(f"cases {len(cases)}, equal {equal}, listed differences {listed}, unlisted differences {len(unlisted)}"
              + (f", stale listed {len(stale)}" if stale else ""))
        return 0 if not unlisted and not stale else 1
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
