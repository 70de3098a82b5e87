#!/usr/bin/python3
# token_race.py PORT[,PORT...] TOKEN N: N SMTP sessions (spread over the ports in turn) send MAIL and
# RCPT TO:<TOKEN>; a barrier holds them until every one has its RCPT reply, so all N reach RCPT before any
# DATA ends; those answered 250 then send the message. Prints one line per session ("rcpt CODE data CODE |
# the RCPT reply"), then "delivered K" and "fresh tokens K" (RCPT replies handing out a token address).
import socket, sys, threading
ports, tok, n = [int(p) for p in sys.argv[1].split(",")], sys.argv[2], int(sys.argv[3])
barrier = threading.Barrier(n, timeout=60)
out = [None] * n
def reply(s, f):
    lines = []
    while True:
        l = f.readline().decode("latin-1").rstrip("\r\n")
        if not l:
            return lines or ["(closed)"]
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return lines
def run(i):
    s = socket.create_connection(("127.0.0.1", ports[i % len(ports)]), timeout=60)
    f = s.makefile("rb")
    reply(s, f)
    for c in (b"EHLO racer%d.example\r\n" % i, b"MAIL FROM:<racer%d@bad.example>\r\n" % i):
        s.sendall(c)
        reply(s, f)
    s.sendall(b"RCPT TO:<" + tok.encode() + b">\r\n")
    r = reply(s, f)
    barrier.wait()
    d = ["---"]
    if r[0].startswith("250"):
        s.sendall(b"DATA\r\n")
        if reply(s, f)[0].startswith("354"):
            s.sendall(b"Subject: race %d\r\n\r\nracer %d\r\n.\r\n" % (i, i))
            d = reply(s, f)
    s.sendall(b"QUIT\r\n")
    s.close()
    out[i] = (r, d)
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
for r, d in out:
    print("rcpt", r[0][:3], "data", d[0][:3], "|", " ".join(r))
print("delivered", sum(1 for r, d in out if d[0].startswith("250")))
print("fresh tokens", sum(1 for r, d in out if "this address: <" in " ".join(r)))
