#!/usr/bin/python3
"""A small SMTP or LMTP server for the delivery and recipient-verification tests (aiosmtpd).

  fake-mta.py (--port N | --unix PATH) --dir DIR [--lmtp] [--users FILE] [--defer ADDR] [--later ADDR]

Every command line it receives goes to DIR/log (one line each); every accepted message to
DIR/mail/N.RCPT (one file per recipient). --users: a file of known addresses, one a line; any other
recipient is refused at RCPT with 550 5.1.1 (--tempfail-unknown: 450 4.1.1 instead). --defer ADDR:
that recipient gets 452 after the data (LMTP; with SMTP the whole message gets it). --later ADDR: that
recipient gets 550 after the data. It writes DIR/ready once listening and runs until killed.
"""
import argparse
import asyncio
import os
import sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


def main():
    ap = argparse.ArgumentParser()
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--unix")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lmtp", action="store_true")
    ap.add_argument("--users")
    ap.add_argument("--tempfail-unknown", action="store_true")
    ap.add_argument("--defer", action="append", default=[])
    ap.add_argument("--later", action="append", default=[])
    a = ap.parse_args()
    os.makedirs(os.path.join(a.dir, "mail"), exist_ok=True)
    users = None
    if a.users:
        with open(a.users) as f:
            users = {l.strip().lower() for l in f if l.strip()}
    log = open(os.path.join(a.dir, "log"), "a", buffering=1)
    count = [0]

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            log.write("RCPT %s\n" % address)
            if users is not None and address.lower() not in users:
                if a.tempfail_unknown:
                    return "450 4.1.1 <%s>: recipient lookup failed" % address
                return "550 5.1.1 <%s>: user unknown" % address
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            log.write("MAIL %s\n" % address)
            envelope.mail_from = address
            return "250 OK"

        async def handle_RSET(self, server, session, envelope):
            log.write("RSET\n")
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            replies = []
            for r in envelope.rcpt_tos:
                if r in a.defer:
                    replies.append("452 4.2.2 <%s>: mailbox full" % r)
                elif r in a.later:
                    replies.append("550 5.2.1 <%s>: mailbox disabled" % r)
                else:
                    count[0] += 1
                    with open(os.path.join(a.dir, "mail", "%d.%s" % (count[0], r)), "wb") as f:
                        f.write(("X-Envelope-From: <%s>\r\n" % envelope.mail_from).encode())
                        f.write(envelope.original_content)
                    replies.append("250 2.0.0 <%s> delivered" % r)
            log.write("DATA %s\n" % " | ".join(replies))
            if a.lmtp:
                return "\r\n".join(replies)
            bad = [x for x in replies if not x.startswith("250")]
            return bad[0] if bad else "250 2.0.0 queued"

    cls = LMTP if a.lmtp else SMTP

    def factory():
        return cls(Handler(), decode_data=False, enable_SMTPUTF8=True)

    async def run():
        loop = asyncio.get_running_loop()
        if a.unix:
            server = await loop.create_unix_server(factory, a.unix)
        else:
            server = await loop.create_server(factory, "127.0.0.1", a.port)
        open(os.path.join(a.dir, "ready"), "w").close()
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
