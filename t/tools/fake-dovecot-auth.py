#!/usr/bin/python3
"""A stand-in for Dovecot's authentication service, enough for Postfix's SASL (smtpd_sasl_type = dovecot).

  fake-dovecot-auth.py --port N --user NAME --password SECRET --log FILE

It listens on 127.0.0.1:N and speaks the client side of Dovecot's auth protocol (version 1): on each
connection it sends its handshake (VERSION, the mechanisms PLAIN and LOGIN, SPID, CUID, COOKIE, DONE),
reads the client's VERSION and CPID, then answers AUTH requests: OK with user=NAME for the one name and
password it was given, FAIL for anything else. Every connection, handshake line and decision goes to
FILE, one line each (passwords never). It runs until killed.
"""
import argparse
import base64
import binascii
import os
import socketserver
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    logf = open(a.log, "a", buffering=1)
    lock = threading.Lock()
    conns = [0]

    def log(text):
        with lock:
            logf.write(text + "\n")

    def check(authzid, authcid, password):
        # Dovecot refuses a login as someone else (an authorization identity) unless a master user asks.
        ok = authcid == a.user and password == a.password and authzid in ("", authcid)
        return ok

    class Handler(socketserver.StreamRequestHandler):
        def send(self, *fields):
            self.wfile.write(("\t".join(fields) + "\n").encode())
            self.wfile.flush()

        def handle(self):
            with lock:
                conns[0] += 1
                cuid = conns[0]
            log("connect cuid=%d" % cuid)
            self.send("VERSION", "1", "2")
            self.send("MECH", "PLAIN", "plaintext")
            self.send("MECH", "LOGIN", "plaintext")
            self.send("SPID", str(os.getpid()))
            self.send("CUID", str(cuid))
            self.send("COOKIE", binascii.hexlify(os.urandom(16)).decode())
            self.send("DONE")
            # Requests in progress (LOGIN asks twice): id -> what is known so far.
            pending = {}
            for raw in self.rfile:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                f = line.split("\t")
                if f[0] in ("VERSION", "CPID"):
                    log("client %s" % " ".join(f))
                    continue
                if f[0] == "AUTH" and len(f) >= 3:
                    self.auth(f, pending)
                    continue
                if f[0] == "CONT" and len(f) >= 2:
                    self.cont(f, pending)
                    continue
                log("unknown %s" % f[0])
            log("disconnect cuid=%d" % cuid)

        def auth(self, f, pending):
            rid, mech = f[1], f[2].upper()
            params = {}
            for p in f[3:]:
                k, _, v = p.partition("=")
                params[k] = v
            shown = " ".join("%s=%s" % (k, v) if v else k for k, v in params.items() if k != "resp")
            log("auth id=%s mech=%s %s" % (rid, mech, shown))
            if mech not in ("PLAIN", "LOGIN"):
                self.fail(rid, "", "unsupported mechanism")
                return
            pending[rid] = {"mech": mech, "step": 0}
            if "resp" in params:
                self.step(rid, params["resp"], pending)
            elif mech == "PLAIN":
                self.send("CONT", rid, "")
            else:
                self.send("CONT", rid, base64.b64encode(b"Username:").decode())

        def cont(self, f, pending):
            rid = f[1]
            if rid not in pending:
                log("cont id=%s unknown" % rid)
                self.send("FAIL", rid, "reason=unknown request")
                return
            self.step(rid, f[2] if len(f) > 2 else "", pending)

        def step(self, rid, b64, pending):
            st = pending[rid]
            try:
                data = base64.b64decode(b64, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                del pending[rid]
                self.fail(rid, "", "bad base64")
                return
            if st["mech"] == "PLAIN":
                parts = data.split("\0")
                del pending[rid]
                if len(parts) != 3:
                    self.fail(rid, "", "malformed PLAIN response")
                    return
                self.decide(rid, parts[0], parts[1], parts[2])
                return
            if st["step"] == 0:
                st["user"] = data
                st["step"] = 1
                self.send("CONT", rid, base64.b64encode(b"Password:").decode())
                return
            del pending[rid]
            self.decide(rid, "", st["user"], data)

        def decide(self, rid, authzid, authcid, password):
            if check(authzid, authcid, password):
                log("ok id=%s user=%s" % (rid, authcid))
                self.send("OK", rid, "user=" + authcid)
            else:
                self.fail(rid, authcid, "wrong user or password")

        def fail(self, rid, user, why):
            log("fail id=%s user=%s reason=%s" % (rid, user, why))
            fields = ["FAIL", rid]
            if user:
                fields.append("user=" + user)
            self.send(*fields)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server(("127.0.0.1", a.port), Handler)
    log("listen port=%d user=%s" % (a.port, a.user))
    srv.serve_forever()


if __name__ == "__main__":
    main()
