#!/usr/bin/python3
# A DNS server of the tests' own, on loopback only: answers from a zone file
# over UDP and TCP on one port, with failures on demand. Needs python3-dnslib
# (Debian's /usr/bin/python3).
#
# Usage: zone-server.py ZONEFILE [--port N] [--port-file F] [--log F] [--idle-exit S]
#   --port 0 (the default) picks a free port and writes it to --port-file.
#   --log F appends "NAME TYPE" for every query received (tests count them).
#   --idle-exit S ends the server once S seconds pass with no query and no
#   change to the zone file (touching it keeps the server alive): for a
#   server shared by the tests of one file, which no teardown stops.
# The zone file is read again whenever it changes, so a test can edit it.
#
# Zone file lines (# starts a comment):
#   NAME [TTL] TYPE DATA
#     TYPE is A, AAAA, MX ("10 mx.example.org"), TXT (one or more "quoted"
#     strings, or the rest of the line as one string), PTR, CNAME, NS.
#     TTL defaults to 300. NAME may start with "*." (a wildcard, RFC 4592 in
#     its simple form: any name under it with no records of its own).
#   NAME [TYPE] TIMEOUT    never answer (the query is dropped)
#   NAME [TYPE] SERVFAIL   answer SERVFAIL
#   NAME [TYPE] REFUSED    answer REFUSED
# A name with no records, no failures and no names below it is NXDOMAIN; a
# name that exists without the type asked is NODATA, with an SOA in the
# authority section (minimum 60) for negative caching. UDP answers over 512
# octets (or the client's EDNS size) are sent truncated (TC), so a client must
# retry over TCP.
import argparse, os, socket, socketserver, sys, threading
from dnslib import DNSRecord, DNSHeader, RR, QTYPE, RCODE, A, AAAA, MX, TXT, PTR, CNAME, NS, SOA

TYPES = {"A": QTYPE.A, "AAAA": QTYPE.AAAA, "MX": QTYPE.MX, "TXT": QTYPE.TXT, "PTR": QTYPE.PTR,
         "CNAME": QTYPE.CNAME, "NS": QTYPE.NS}
FAILS = ("TIMEOUT", "SERVFAIL", "REFUSED")


def split_strings(rest):
    """The quoted strings of a TXT line ("a" "b" → [a, b]; \\" and \\\\ escapes), or the rest as one."""
    rest = rest.strip()
    if not rest.startswith('"'):
        return [rest]
    out, i = [], 0
    while i < len(rest):
        if rest[i] == '"':
            s, i = "", i + 1
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < len(rest):
                    i += 1
                s += rest[i]
                i += 1
            out.append(s)
        i += 1
    return out


class Zone:
    def __init__(self, path):
        self.path, self.mtime, self.lock = path, None, threading.Lock()
        self.records, self.fails = {}, {}

    def load(self):
        try:
            m = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        with self.lock:
            if m == self.mtime:
                return
            records, fails = {}, {}
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    parts = line.split(None, 1)
                    name = parts[0].lower().rstrip(".")
                    rest = parts[1] if len(parts) > 1 else ""
                    words = rest.split(None, 1)
                    ttl = 300
                    if words and words[0].isdigit():
                        ttl = int(words[0])
                        rest = words[1] if len(words) > 1 else ""
                        words = rest.split(None, 1)
                    if not words:
                        continue
                    kind = words[0].upper()
                    data = words[1] if len(words) > 1 else ""
                    if kind in FAILS:
                        fails[(name, None)] = kind
                        continue
                    if data.strip().upper() in FAILS:
                        fails[(name, TYPES[kind])] = data.strip().upper()
                        continue
                    records.setdefault(name, []).append((TYPES[kind], ttl, data))
            self.records, self.fails, self.mtime = records, fails, m

    def exists(self, name):
        if name in self.records or any(k[0] == name for k in self.fails):
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.records)

    def lookup(self, name):
        if name in self.records:
            return self.records[name]
        labels = name.split(".")
        for i in range(1, len(labels)):
            w = "*." + ".".join(labels[i:])
            if w in self.records and not self.exists(name):
                return self.records[w]
        return None


def rdata(qtype, data):
    if qtype == QTYPE.A:
        return A(data.strip())
    if qtype == QTYPE.AAAA:
        return AAAA(data.strip())
    if qtype == QTYPE.MX:
        pref, host = data.split()
        return MX(host, int(pref))
    if qtype == QTYPE.TXT:
        return TXT([s.encode("utf-8") for s in split_strings(data)])
    if qtype == QTYPE.PTR:
        return PTR(data.strip())
    if qtype == QTYPE.CNAME:
        return CNAME(data.strip())
    if qtype == QTYPE.NS:
        return NS(data.strip())
    raise ValueError(qtype)


LAST = [0.0]  # monotonic time of the last query


def answer(zone, packet, log):
    """The response to packet, or None to drop it."""
    import time
    LAST[0] = time.monotonic()
    zone.load()
    try:
        q = DNSRecord.parse(packet)
    except Exception:
        return None
    name = str(q.q.qname).lower().rstrip(".")
    qtype = q.q.qtype
    if log:
        with open(log, "a") as f:
            f.write(f"{name} {QTYPE.get(qtype)}\n")
    r = DNSRecord(DNSHeader(id=q.header.id, qr=1, aa=1, ra=1, rd=q.header.rd), q=q.q)
    with zone.lock:
        fail = zone.fails.get((name, qtype)) or zone.fails.get((name, None))
        if fail == "TIMEOUT":
            return None
        if fail:
            r.header.rcode = RCODE.SERVFAIL if fail == "SERVFAIL" else RCODE.REFUSED
            return r
        cur, seen = name, 0
        while seen < 10:
            seen += 1
            recs = zone.lookup(cur)
            if recs is None:
                if not zone.exists(cur):
                    r.header.rcode = RCODE.NXDOMAIN
                break
            cnames = [x for x in recs if x[0] == QTYPE.CNAME]
            if cnames and qtype != QTYPE.CNAME:
                t, ttl, data = cnames[0]
                r.add_answer(RR(cur, QTYPE.CNAME, ttl=ttl, rdata=rdata(t, data)))
                cur = data.strip().lower().rstrip(".")
                continue
            for t, ttl, data in recs:
                if t == qtype:
                    r.add_answer(RR(cur, t, ttl=ttl, rdata=rdata(t, data)))
            break
        if not r.rr:
            r.add_auth(RR("test", QTYPE.SOA, ttl=60,
                          rdata=SOA("ns.test", "hostmaster.test", (1, 3600, 600, 86400, 60))))
    return r


class UDP(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        r = answer(self.server.zone, data, self.server.log)
        if r is None:
            return
        limit = 512
        try:
            q = DNSRecord.parse(data)
            for ar in q.ar:
                if ar.rtype == QTYPE.OPT:
                    limit = max(512, ar.rclass)
        except Exception:
            pass
        out = r.pack()
        if len(out) > limit:
            r.rr, r.auth, r.ar = [], [], []
            r.header.tc = 1
            out = r.pack()
        sock.sendto(out, self.client_address)


class TCP(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(10)
        while True:
            head = s.recv(2)
            if len(head) < 2:
                return
            n = int.from_bytes(head, "big")
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            r = answer(self.server.zone, data, self.server.log)
            if r is None:
                continue
            out = r.pack()
            s.sendall(len(out).to_bytes(2, "big") + out)


class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zone")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--idle-exit", type=float, default=0)
    a = ap.parse_args()
    zone = Zone(a.zone)
    zone.load()
    port = a.port
    # One port for both transports: take a free UDP port, then TCP on the same number (retry on a clash).
    for _ in range(50):
        udp = UDPServer(("127.0.0.1", port), UDP)
        p = udp.server_address[1]
        try:
            tcp = TCPServer(("127.0.0.1", p), TCP)
            break
        except OSError:
            udp.server_close()
            if port:
                raise
    else:
        sys.exit("zone-server: no free port")
    for s in (udp, tcp):
        s.zone, s.log = zone, a.log
        threading.Thread(target=s.serve_forever, daemon=True).start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{p}\n")
        os.rename(tmp, a.port_file)
    if not a.idle_exit:
        threading.Event().wait()
    import time
    LAST[0] = time.monotonic()
    seen = None
    while True:
        time.sleep(1)
        try:
            m = os.stat(a.zone).st_mtime_ns
        except FileNotFoundError:
            m = None
        if m != seen:
            seen, LAST[0] = m, time.monotonic()
        if time.monotonic() - LAST[0] > a.idle_exit:
            os._exit(0)


if __name__ == "__main__":
    main()
