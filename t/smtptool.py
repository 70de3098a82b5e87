#!/usr/bin/python3
"""SMTP clients for the bats tests: Python's smtplib where a well-behaved
client is wanted, raw sockets where the test needs a client that misbehaves
(smuggling, dripping, talking first, pipelining after STARTTLS).

Usage: smtptool.py COMMAND PORT [ARGS...]; prints what the server said and
exits 0 unless the conversation could not be had at all."""

import smtplib
import socket
import ssl
import sys
import time


def replies(sock, n=1, timeout=10):
    """Reads n complete replies; returns them as lists of lines."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    cur = []
    while len(out) < n:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                if cur:
                    out.append(cur)
                return out
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        text = line.decode("latin-1")
        cur.append(text)
        if len(text) < 4 or text[3] != "-":
            out.append(cur)
            cur = []
    return out


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    return s


def cmd_send(port, sender, rcpts, *rest):
    """send PORT FROM TO[,TO...] [FILE]: one message with smtplib; prints the outcome."""
    body = open(rest[0], "rb").read() if rest else b"Subject: hello\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as c:
        try:
            refused = c.sendmail(sender, rcpts.split(","), body)
            print("sent", " ".join(sorted(refused)) if refused else "")
        except smtplib.SMTPRecipientsRefused as e:
            for r, (code, msg) in e.recipients.items():
                print("refused", r, code, msg.decode().replace("\n", " | "))
        except smtplib.SMTPDataError as e:
            print("data", e.smtp_code, e.smtp_error.decode().replace("\n", " | "))
        except smtplib.SMTPSenderRefused as e:
            print("sender", e.smtp_code, e.smtp_error.decode())


def cmd_relaytricks(port, local, ip):
    """relaytricks PORT LOCALDOMAIN IP: tries every sender x recipient trick in one session; prints CODE PATH."""
    senders = ["<>", "<user@%s>" % local, "<user@[%s]>" % ip, "<user@foreign.example>"]
    rcpts = [
        "u%%ext.example@%s" % local,
        "u%%ext.example@[%s]" % ip,
        '"u@ext.example"',
        '"u%ext.example"',
        "u@ext.example@[%s]" % ip,
        '"u@ext.example"@[%s]' % ip,
        "u@ext.example@%s" % local,
        "@[%s]:u@ext.example" % ip,
        "@%s:u@ext.example" % local,
        "ext.example!u",
        "ext.example!u@[%s]" % ip,
        "ext.example!u@%s" % local,
    ]
    for snd in senders:
        for r in rcpts:
            # A session each: a server may count refusals and close a session that collects too many.
            s = connect(port)
            replies(s)
            s.sendall(b"EHLO tricks.example\r\n")
            replies(s)
            s.sendall(("MAIL FROM:%s\r\n" % snd).encode())
            m = replies(s)[0]
            s.sendall(("RCPT TO:<%s>\r\n" % r).encode())
            rr = replies(s)[0]
            s.sendall(b"DATA\r\n")
            d = replies(s)[0]
            if d[0].startswith("354"):
                s.sendall(b"Subject: relayed\r\n\r\nrelayed\r\n.\r\n")
                d = replies(s)[0]
            print(m[0][:3], rr[0][:3], d[0][:3], snd, "<%s>" % r)
            s.sendall(b"QUIT\r\n")
            replies(s)
            s.close()


SMUGGLE = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-cr": b"\r.\r",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
    "lf-dot-cr": b"\n.\r",
}


def cmd_smuggle(port, variant, sender, rcpt, evil_rcpt):
    """smuggle PORT VARIANT FROM TO EVILTO: a message whose body holds VARIANT then a pipelined second
    transaction; prints every reply."""
    end = SMUGGLE[variant]
    s = connect(port)
    replies(s)
    s.sendall(b"EHLO smuggler.example\r\n")
    replies(s)
    msg = (
        b"MAIL FROM:<" + sender.encode() + b">\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n"
    )
    s.sendall(msg)
    got = replies(s, 3)
    body = b"Subject: first\r\n\r\nfirst message" + end
    body += b"MAIL FROM:<" + sender.encode() + b">\r\nRCPT TO:<" + evil_rcpt.encode() + b">\r\nDATA\r\n"
    body += b"Subject: smuggled\r\n\r\nsmuggled message\r\n.\r\n"
    s.sendall(body)
    got += replies(s, 1, timeout=5)
    s.sendall(b"QUIT\r\n")
    got += replies(s, 5, timeout=5)
    for r in got:
        print(r[-1])


def cmd_starttls_pipeline(port):
    """starttls-pipeline PORT: STARTTLS with commands pipelined behind it in plaintext; prints the replies
    after the handshake to a MAIL sent without a new EHLO, then to EHLO."""
    s = connect(port)
    replies(s)
    s.sendall(b"EHLO pipe.example\r\n")
    replies(s)
    s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<bob@ours.example>\r\n")
    print("starttls", replies(s)[0][-1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname="localhost")
    # Nothing may be waiting: the injected commands must have been thrown away.
    t.settimeout(1)
    try:
        extra = t.recv(65536)
    except (socket.timeout, ssl.SSLError):
        extra = b""
    print("pending", repr(extra))
    t.sendall(b"RCPT TO:<bob@ours.example>\r\n")
    print("rcpt", replies(t)[0][-1])
    t.sendall(b"EHLO pipe.example\r\n")
    print("ehlo", " ".join(replies(t)[0]))
    t.sendall(b"QUIT\r\n")
    replies(t)


def cmd_drip(port, delay, count):
    """drip PORT DELAY COUNT: after the greeting, sends 'EHLO ...' one octet every DELAY seconds; prints
    what the server answered and how long it took."""
    s = connect(port)
    replies(s)
    start = time.time()
    line = b"EHLO " + b"d" * 200 + b"\r\n"
    answer = []
    s.settimeout(float(delay))
    for i in range(min(int(count), len(line))):
        try:
            s.sendall(line[i:i + 1])
        except OSError:
            break
        try:
            data = s.recv(4096)
            if data:
                answer.append(data.decode("latin-1").strip())
            else:
                break
        except socket.timeout:
            pass
        if answer:
            break
    print("after %.1f s:" % (time.time() - start), " ".join(answer) or "nothing")


def cmd_early(port):
    """early PORT: talks before the greeting; prints the first reply."""
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.sendall(b"EHLO early.example\r\n")
    r = replies(s)
    print(r[0][-1] if r else "closed")


def cmd_partial(port, sender, rcpt, ready_file):
    """partial PORT FROM TO READYFILE: starts DATA, sends half a message, creates READYFILE, then waits for
    the server; prints what it said (nothing, when it was killed)."""
    s = connect(port)
    replies(s)
    s.sendall(b"EHLO partial.example\r\n")
    replies(s)
    s.sendall(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender, rcpt)).encode())
    print(" ".join(r[-1][:3] for r in replies(s, 3)))
    s.sendall(b"Subject: half\r\n\r\n" + b"half a message\r\n" * 1000)
    open(ready_file, "w").close()
    r = replies(s, 1, timeout=20)
    print("after kill:", r[0][-1] if r else "connection closed, no reply")


def cmd_idle(port, n, ready_file, hold):
    """idle PORT N READYFILE SECONDS: holds N sessions open after their greeting for SECONDS."""
    socks = []
    for _ in range(int(n)):
        s = connect(port)
        socks.append(s)
    greeted = 0
    for s in socks:
        r = replies(s)
        if r and r[0][-1].startswith("220"):
            greeted += 1
    print("greeted", greeted)
    sys.stdout.flush()
    open(ready_file, "w").close()
    time.sleep(float(hold))


def cmd_chat(port, *lines):
    """Says each line in turn after the greeting and prints every reply line. After a 250 to GET, the data
    that follows is read up to CRLF.CRLF and printed as it came (dot-stuffed), between DATA< and >DATA."""
    s = connect(port)
    buf = b""

    def more():
        nonlocal buf
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk

    def reply():
        nonlocal buf
        while True:
            while b"\r\n" not in buf:
                more()
            line, buf = buf.split(b"\r\n", 1)
            text = line.decode("latin-1")
            print(text)
            if len(text) < 4 or text[3] != "-":
                return text

    try:
        reply()
        for cmd in lines:
            s.sendall(cmd.encode("latin-1") + b"\r\n")
            last = reply()
            if cmd.upper().startswith("GET ") and last.startswith("250"):
                while not (buf.startswith(b".\r\n") or b"\r\n.\r\n" in buf):
                    more()
                end = 3 if buf.startswith(b".\r\n") else buf.index(b"\r\n.\r\n") + 5
                sys.stdout.write("DATA<" + buf[:end].decode("latin-1") + ">DATA\n")
                buf = buf[end:]
    except EOFError:
        print("(connection closed)")


def main():
    cmds = {
        "send": cmd_send,
        "relaytricks": cmd_relaytricks,
        "smuggle": cmd_smuggle,
        "starttls-pipeline": cmd_starttls_pipeline,
        "drip": cmd_drip,
        "early": cmd_early,
        "partial": cmd_partial,
        "idle": cmd_idle,
        "chat": cmd_chat,
    }
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
