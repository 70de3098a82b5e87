#!/usr/bin/python3
# Generates the DKIM/ARC differential corpus (t/dkim.bats): keys made with openssl, published in a zone file
# for t/dns/zone-server.py; messages signed by dkimpy (dkim.sign, dkim.arc_sign) and by opendkim
# (opendkim-testmsg), then tampered. Writes OUTDIR/zone, OUTDIR/cases.json and OUTDIR/NNN.eml.
#
# Usage: gen.py OUTDIR
# cases.json: [{"name", "file", "expect": {sig index: "temperror"|"permerror"|...} (mailstamp's exact result
# where the case decides it), "testing": [indexes], "arc": bool}]
import base64, json, os, subprocess, sys
import dkim

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def run(argv, data=None):
    return subprocess.run(argv, input=data, check=True, capture_output=True).stdout


def rsa_key(name, bits=2048):
    path = os.path.join(OUT, name + ".pem")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", path])
    der = run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"])
    return path, open(path, "rb").read(), base64.b64encode(der).decode()


def ed_key(name):
    path = os.path.join(OUT, name + ".pem")
    run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", path])
    priv = run(["openssl", "pkey", "-in", path, "-outform", "DER"])[-32:]
    pub = run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"])[-32:]
    return base64.b64encode(priv), base64.b64encode(pub).decode()


zone = []


def publish(sel, dom, record):
    chunks = [record[i:i + 250] for i in range(0, len(record), 250)]
    zone.append("%s._domainkey.%s TXT %s" % (sel, dom, " ".join('"%s"' % c for c in chunks)))


rsa_path, rsa_pem, rsa_pub = rsa_key("rsa")
rsa2_path, rsa2_pem, rsa2_pub = rsa_key("rsa2")
_, small_pem, small_pub = rsa_key("small", 768)
odk_path, _, odk_pub = rsa_key("odk")
ed_priv, ed_pub = ed_key("ed")
publish("sel1", "example.org", "v=DKIM1; k=rsa; p=" + rsa_pub)
publish("sel2", "example.net", "v=DKIM1; p=" + rsa2_pub)
publish("ed1", "example.org", "v=DKIM1; k=ed25519; p=" + ed_pub)
publish("test", "example.org", "v=DKIM1; k=rsa; t=y; p=" + rsa_pub)
publish("revoked", "example.org", "v=DKIM1; k=rsa; p=")
publish("small", "example.org", "v=DKIM1; k=rsa; p=" + small_pub)
publish("odk", "example.com", "v=DKIM1; k=rsa; p=" + odk_pub)
publish("arc1", "lists.example.net", "v=DKIM1; k=rsa; p=" + rsa2_pub)
publish("arc2", "fwd.example.com", "v=DKIM1; k=rsa; p=" + rsa_pub)
zone.append("tempfail._domainkey.example.org TXT SERVFAIL")
with open(os.path.join(OUT, "zone"), "w") as f:
    f.write("\n".join(zone) + "\n")

BASES = [
    (b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Lunch  on   Friday\r\n"
     b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
     b"Hi Bob,\r\n\r\nshall we meet at noon?\r\n  Alice\r\n\r\n\r\n"),
    (b"Received: from mx.example.org by mx.example.net; Sat, 05 Dec 2026 10:00:01 +0000\r\n"
     b"From: alice@example.org\r\nTo: Bob <bob@example.net>,\r\n  Carol <carol@example.net>\r\n"
     b"Subject: report\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
     + b"".join(b"line %d of the report\t with tabs  and spaces \r\n" % k for k in range(40))),
    (b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: empty\r\n"
     b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\n"),
]


def dsign(msg, sel, dom, key, canon=(b"relaxed", b"relaxed"), alg=b"rsa-sha256", length=False, headers=None,
          identity=None):
    sig = dkim.sign(msg, sel.encode(), dom.encode(), key, canonicalize=canon, signature_algorithm=alg,
                    length=length, include_headers=headers, identity=identity)
    return sig + msg


def osign(msg, sel, dom, keypath):
    # opendkim-testmsg signs with libopendkim's defaults (rsa-sha1, relaxed/simple). Its output repeats the
    # last octets of b= ("...Kmj2oQ==Kmj2oQ=="); b= of a 2048-bit key is 344 base64 characters, so the
    # repetition is cut off here, and nothing else is touched.
    out = run(["opendkim-testmsg", "-d", dom, "-s", sel, "-k", keypath], msg.replace(b"\r\n", b"\n"))
    head, _, rest = out.partition(b"\n\n")
    sig_end = 0
    lines = head.split(b"\n")
    for k, ln in enumerate(lines):
        if k > 0 and ln[:1] not in (b" ", b"\t"):
            sig_end = k
            break
    sig = b"\n".join(lines[:sig_end])
    pre, _, b = sig.partition(b"b=")
    b64 = b"".join(b.split())[:344]
    sig = pre + b"b=" + b"\n\t ".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    out = sig + b"\n" + b"\n".join(lines[sig_end:]) + b"\n\n" + rest
    return out.replace(b"\n", b"\r\n")


RR, SS, RS, SR = (b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple"), (b"simple", b"relaxed")
CONFIGS = [
    ("rsa-rr", lambda m: dsign(m, "sel1", "example.org", rsa_pem, RR), {}),
    ("rsa-ss", lambda m: dsign(m, "sel1", "example.org", rsa_pem, SS), {}),
    ("rsa-rs", lambda m: dsign(m, "sel1", "example.org", rsa_pem, RS), {}),
    ("rsa-sr", lambda m: dsign(m, "sel1", "example.org", rsa_pem, SR), {}),
    ("ed-rr", lambda m: dsign(m, "ed1", "example.org", ed_priv, RR, b"ed25519-sha256"), {}),
    ("ed-ss", lambda m: dsign(m, "ed1", "example.org", ed_priv, SS, b"ed25519-sha256"), {}),
    ("l-rr", lambda m: dsign(m, "sel1", "example.org", rsa_pem, RR, length=True), {}),
    ("l-ss", lambda m: dsign(m, "sel1", "example.org", rsa_pem, SS, length=True), {}),
    ("two", lambda m: dsign(dsign(m, "ed1", "example.org", ed_priv, RR, b"ed25519-sha256"), "sel2", "example.net",
                            rsa2_pem, SS), {}),
    ("over", lambda m: dsign(m, "sel1", "example.org", rsa_pem, RR,
                             headers=[b"from", b"subject", b"subject", b"to", b"to", b"x-none"]), {}),
    ("ident", lambda m: dsign(m, "sel1", "example.org", rsa_pem, RR, identity=b"alice@mail.example.org"), {}),
    ("testing", lambda m: dsign(m, "test", "example.org", rsa_pem, RR), {"testing": [0]}),
    ("revoked", lambda m: dsign(m, "revoked", "example.org", rsa_pem, RR), {"expect": {"0": "fail"}}),
    ("nokey", lambda m: dsign(m, "nokey", "example.org", rsa_pem, RR), {"expect": {"0": "permerror"}}),
    ("tempfail", lambda m: dsign(m, "tempfail", "example.org", rsa_pem, RR), {"expect": {"0": "temperror"}}),
    ("small", lambda m: dsign(m, "small", "example.org", small_pem, RR), {"expect": {"0": "fail"}}),
    ("odk", lambda m: osign(m, "odk", "example.com", odk_path), {}),
    ("odk+dkimpy", lambda m: dsign(osign(m, "odk", "example.com", odk_path), "ed1", "example.org", ed_priv, RS,
                                   b"ed25519-sha256"), {}),
]


def split(msg):
    h, _, b = msg.partition(b"\r\n\r\n")
    return h + b"\r\n", b


TAMPERS = [
    ("none", lambda m: m),
    ("body", lambda m: m.replace(b"noon", b"nine") if b"noon" in m else m.replace(b"line 3 ", b"line 9 ")
     if b"line 3 " in m else m + b"x\r\n"),
    ("header", lambda m: m.replace(b"Subject: ", b"Subject: Re: ", 1)),
    ("unsigned", lambda m: drop_first_sig(m)),
    ("above", lambda m: b"X-Added: yes\r\nSubject: spam\r\n" + m),
    ("ws", lambda m: ws_change(m)),
    ("append", lambda m: m + b"P.S. appended\r\n"),
]


def drop_first_sig(m):
    h, b = split(m)
    lines = h.split(b"\r\n")
    out, skip = [], False
    dropped = False
    for ln in lines:
        if not dropped and ln.lower().startswith(b"dkim-signature:"):
            skip, dropped = True, True
            continue
        if skip and ln[:1] in (b" ", b"\t"):
            continue
        skip = False
        out.append(ln)
    return b"\r\n".join(out) + b"\r\n" + b


def ws_change(m):
    h, b = split(m)
    h = h.replace(b"Subject:", b"Subject:  ", 1)
    b = b.replace(b"\r\n", b"  \r\n", 2).replace(b" ", b"   ", 3)
    return h + b"\r\n" + b


cases = []


def add(name, msg, meta):
    fn = "%03d.eml" % len(cases)
    with open(os.path.join(OUT, fn), "wb") as f:
        f.write(msg)
    c = {"name": name, "file": fn}
    c.update(meta)
    cases.append(c)


for bi, base in enumerate(BASES):
    for cname, sign, meta in CONFIGS:
        signed = sign(base)
        for tname, tamper in TAMPERS:
            m = tamper(signed)
            if tname == "unsigned":
                meta2 = {"testing": [], "expect": {}}
            else:
                meta2 = meta
            add("b%d/%s/%s" % (bi, cname, tname), m, dict(meta2))

def drop_set1(m):
    # removes the three fields of ARC set 1 (with their folded lines)
    h, b = split(m)
    out, skip = [], False
    for ln in h.split(b"\r\n"):
        if ln[:1] in (b" ", b"\t"):
            if not skip:
                out.append(ln)
            continue
        low = ln.lower()
        skip = low.startswith(b"arc-") and b"i=1;" in ln.replace(b" ", b"")
        if not skip:
            out.append(ln)
    return b"\r\n".join(out) + b"\r\n" + b


# ARC: dkimpy seals 1- and 2-hop chains; broken ones tampered after sealing.
def arc_hop(msg, sel, dom, key, srv):
    # dkimpy takes cv= from the arc= result of our own Authentication-Results
    arc = b" arc=pass;" if b"ARC-Seal:" in msg else b""
    msg = (b"Authentication-Results: " + srv.encode() + b";" + arc + b" dkim=pass header.d=example.org; dmarc=pass\r\n"
           + msg)
    sig = dkim.arc_sign(msg, sel.encode(), dom.encode(), key, srv.encode())
    return b"".join(sig) + msg


for bi, base in enumerate(BASES[:2]):
    signed = dsign(base, "sel1", "example.org", rsa_pem, RR)
    # the list tags the subject (breaking DKIM), then seals; the forwarder adds a field, then seals
    hop1 = arc_hop(signed.replace(b"Subject: ", b"Subject: [list] ", 1), "arc1", "lists.example.net", rsa2_pem,
                   "lists.example.net")
    hop2 = arc_hop(b"X-Forwarded: yes\r\n" + hop1, "arc2", "fwd.example.com", rsa_pem, "fwd.example.com")
    assert b"ARC-Seal: i=2" in hop2
    add("arc%d/1hop" % bi, hop1, {"arc": True})
    add("arc%d/2hop" % bi, hop2, {"arc": True})
    add("arc%d/2hop-body" % bi, hop2.replace(b"Hi Bob", b"Hi Eve") if b"Hi Bob" in hop2 else hop2 + b"x\r\n",
        {"arc": True})
    add("arc%d/2hop-aar1" % bi, hop2.replace(b"ARC-Authentication-Results: i=1; lists.example.net; dkim=pass",
                                             b"ARC-Authentication-Results: i=1; lists.example.net; dkim=fail"),
        {"arc": True})
    add("arc%d/1hop-subject" % bi, hop1.replace(b"Subject: ", b"Subject: X", 1), {"arc": True})
    add("arc%d/none" % bi, signed, {"arc": True})
    add("arc%d/2hop-dropped-set1" % bi, drop_set1(hop2), {"arc": True})

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=0)
print("%d cases in %s" % (len(cases), OUT))
