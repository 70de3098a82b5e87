#!/usr/bin/python3
# The DKIM/ARC differential (t/dkim.bats): every case of gen.py's corpus verified by dkimpy (dkim.DKIM.verify
# per signature, dkim.arc_verify) and by mailstamp (t/tools/dkimcheck), compared per signature: pass against
# not pass; where the case decides it (temperror, permerror, a revoked key, t=y) mailstamp's exact result too.
# A difference counts only when it is not in the known-differences file (one per line:
# CASE-GLOB <TAB> ALGORITHM-or-* <TAB> the RFC section saying mailstamp is right).
#
# Usage: diff.py CASEDIR KNOWN DKIMCHECK --dns HOST:PORT
# Prints each difference, then the tally: "cases N signatures N equal N listed N arc N different N"; exit 1
# when any difference is not listed.
import fnmatch, json, os, subprocess, sys
import dkim

casedir, known_path, dkimcheck = sys.argv[1:4]
resolver_args = sys.argv[4:6]

zone = {}
for line in open(os.path.join(casedir, "zone")):
    parts = line.split(None, 2)
    if len(parts) < 3 or parts[1] != "TXT" or parts[2].strip() == "SERVFAIL":
        continue
    rest = parts[2].strip()
    zone[parts[0].lower()] = "".join(s for k, s in enumerate(rest.split('"')) if k % 2 == 1)


def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = zone.get(n.lower().rstrip("."))
    return v.encode() if v is not None else None


known = []
for line in open(known_path):
    if line.strip() and not line.startswith("#"):
        glob, alg, why = line.rstrip("\n").split("\t", 2)
        known.append((glob, alg, why))
used = set()

cases = json.load(open(os.path.join(casedir, "cases.json")))
tally = {"cases": 0, "signatures": 0, "equal": 0, "listed": 0, "arc": 0, "different": 0}
for c in cases:
    tally["cases"] += 1
    msg = open(os.path.join(casedir, c["file"]), "rb").read()
    p = subprocess.run([dkimcheck] + resolver_args, input=msg, capture_output=True)
    lines = p.stdout.decode(errors="replace").splitlines()
    if p.returncode != 0:
        print("%s: dkimcheck exit %d: %s" % (c["name"], p.returncode, p.stderr.decode(errors="replace").strip()))
        tally["different"] += 1
        continue
    ours = [ln.split() for ln in lines if ln.startswith("dkim ")]
    arc_line = [ln for ln in lines if ln.startswith("arc ")]
    d = dkim.DKIM(msg)
    nsig = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
    if nsig != len(ours):
        print("%s: dkimpy sees %d signatures, mailstamp %d" % (c["name"], nsig, len(ours)))
        tally["different"] += 1
        continue
    for i in range(nsig):
        tally["signatures"] += 1
        try:
            theirs = bool(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc))
        except Exception as e:  # dkimpy raises on some malformed input: not a pass
            theirs = False
        fields = dict(w.split("=", 1) for w in ours[i][3:] if "=" in w)
        status = ours[i][2]
        problems = []
        if (status == "pass") != theirs:
            problems.append("dkimpy %s, mailstamp %s (%s)" % ("pass" if theirs else "not pass", status,
                                                             " ".join(ours[i][3:])))
        want = c.get("expect", {}).get(str(i))
        if want and status != want:
            problems.append("mailstamp %s, the case says %s" % (status, want))
        if i in c.get("testing", []) and fields.get("testing") != "1":
            problems.append("key says t=y, mailstamp did not report testing")
        if not problems:
            tally["equal"] += 1
            continue
        hit = [k for k in known if fnmatch.fnmatch(c["name"], k[0]) and k[1] in ("*", fields.get("a"))]
        if hit and not want:
            tally["listed"] += 1
            used.add(hit[0])
            print("listed  %s sig %d: %s [%s]" % (c["name"], i, "; ".join(problems), hit[0][2]))
        else:
            tally["different"] += 1
            print("DIFFERENT %s sig %d: %s" % (c["name"], i, "; ".join(problems)))
    if c.get("arc"):
        tally["arc"] += 1
        cv, _, comment = dkim.arc_verify(msg, dnsfunc=dnsfunc)
        theirs = cv.decode() if isinstance(cv, bytes) else str(cv)
        ours_arc = arc_line[0].split()[1] if arc_line else "?"
        if theirs.lower() != ours_arc:
            tally["different"] += 1
            print("DIFFERENT %s arc: dkimpy %s (%s), mailstamp %s" % (c["name"], theirs, comment, arc_line))
for k in known:
    if k not in used:
        print("known difference not seen: %s %s" % (k[0], k[1]))
print("cases %(cases)d signatures %(signatures)d equal %(equal)d listed %(listed)d arc %(arc)d different %(different)d"
      % tally)
sys.exit(1 if tally["different"] else 0)
