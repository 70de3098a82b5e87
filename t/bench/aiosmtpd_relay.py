#!/usr/bin/python3
# The scripting alternative to msmtp-proxy for t/bench/proxy_vs_aiosmtpd.sh:
# an aiosmtpd server that, at RCPT time, takes mail for the protected domain
# only from senders on a whitelist file (one address, or @domain, a line;
# loaded into a set at start) and refuses the rest with 550, then relays each
# accepted message with smtplib to the downstream server, answering 250 only
# once the downstream has accepted it (its refusal is passed back). The
# blocking smtplib call runs in a thread pool so sessions do not wait on one
# another; each thread keeps its downstream connection open between
# messages (msmtp-proxy keeps a pool of them too); and a Received field is
# added, as msmtp-proxy does.
#
# Usage: aiosmtpd_relay.py --listen 127.0.0.1:PORT --relay HOST:PORT
#                          --whitelist FILE --domain ours.example [--hostname NAME]
import argparse
import asyncio
import concurrent.futures
import email.utils
import smtplib
import threading

from aiosmtpd.smtp import SMTP


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


class Relay:
    def __init__(self, whitelist, domain, downstream, hostname):
        self.whitelist, self.domain = whitelist, domain.lower()
        self.downstream, self.hostname = downstream, hostname
        self.local = threading.local()

    def listed(self, sender):
        sender = sender.lower()
        return sender in self.whitelist or "@" + sender.rpartition("@")[2] in self.whitelist

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.rpartition("@")[2].lower() != self.domain:
            return "550 5.7.1 relaying denied"
        if not self.listed(envelope.mail_from or ""):
            return "550 5.7.1 sender not whitelisted"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def relay(self, sender, rcpts, data):
        c = getattr(self.local, "conn", None)
        if c is not None:
            try:
                c.rset()
            except (OSError, smtplib.SMTPException):
                c = None
        if c is None:
            c = self.local.conn = smtplib.SMTP(*self.downstream, local_hostname=self.hostname)
        try:
            c.sendmail(sender, rcpts, data)  # raises unless the downstream accepted it
        except (OSError, smtplib.SMTPServerDisconnected):
            self.local.conn = None
            raise

    async def handle_DATA(self, server, session, envelope):
        received = ("Received: from %s ([%s])\r\n\tby %s with ESMTP; %s\r\n"
                    % (session.host_name, session.peer[0], self.hostname, email.utils.formatdate())).encode()
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.relay, envelope.mail_from, envelope.rcpt_tos, received + envelope.original_content)
        except smtplib.SMTPResponseException as e:
            text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else e.smtp_error
            return "%d %s" % (e.smtp_code, text)
        except (OSError, smtplib.SMTPException) as e:
            return "451 4.4.1 relay failed: %s" % e
        return "250 2.0.0 OK: delivered"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, type=hostport)
    ap.add_argument("--relay", required=True, type=hostport)
    ap.add_argument("--whitelist", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--hostname", default="mx.ours.example")
    ap.add_argument("--threads", type=int, default=64, help="relay threads (default 64)")
    a = ap.parse_args()
    with open(a.whitelist) as f:
        whitelist = {line.strip().lower() for line in f if line.strip()}
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(a.threads))
    handler = Relay(whitelist, a.domain, a.relay, a.hostname)
    server = await loop.create_server(lambda: SMTP(handler, hostname=a.hostname), *a.listen, backlog=1024)
    print("listening on %s:%d, %d whitelist entries" % (*a.listen, len(whitelist)), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
