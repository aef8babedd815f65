"""Generate an ASCII-only Postfix log of the earlier benchmarks (kept for the block reader's tests;
the benchmarks now use bench/gen_logs.py, whose logs carry the UTF-8 of real Japanese traffic).

Usage: python bench/gen_postfix_log.py OUT.log [--lines 1000000] [--days 5] [--seed 1]

Per message: smtpd connect/client/disconnect, cleanup message-id, qmgr from=, one or more
delivery attempts (mix as in real bulk traffic: ~85 % sent, ~7 % deferred then sent, ~5 %
bounced with carrier replies, ~1 % expired after deferrals, plus throttling), qmgr removed.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta

MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DOMAINS = [("docomo.ne.jp", "mfsmax.docomo.ne.jp[203.138.181.112]:25"), ("ezweb.ne.jp", "lsean.ezweb.ne.jp[111.86.141.161]:25"),
           ("au.com", "msmx.au.com[111.86.141.160]:25"), ("i.softbank.jp", "mx.softbank.ne.jp[210.146.60.90]:25"),
           ("softbank.ne.jp", "mx.softbank.ne.jp[210.146.60.91]:25"), ("gmail.com", "gmail-smtp-in.l.google.com[142.250.4.26]:25"),
           ("yahoo.co.jp", "mx1.mail.yahoo.co.jp[183.79.57.116]:25"), ("example.com", "mx.example.com[192.0.2.25]:25")]
BOUNCES = [
    ("5.0.0", "host {h} said: 550 Unknown user {a} (in reply to RCPT TO command)"),
    ("5.0.0", "host {h} said: 550 Unknown user {a} (in reply to end of DATA command)"),
    ("5.0.0", "host {h} said: 550 <{a}>: User unknown (in reply to RCPT TO command)"),
    ("5.0.0", "host {h} said: 550 : User unknown (in reply to end of DATA command)"),
    ("5.1.1", "host {h} said: 550 5.1.1 <{a}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"),
    ("5.0.0", "host {h} said: 550 Invalid recipient: <{a}> (in reply to RCPT TO command)"),
    ("5.7.1", "host {h} said: 554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org (in reply to RCPT TO command)"),
    ("5.2.2", "host {h} said: 552 5.2.2 <{a}>: Mailbox full (in reply to RCPT TO command)"),
]
DEFERS = [
    ("4.7.0", "host {h} refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections; please try again later"),
    ("4.4.1", "connect to {h}: Connection timed out"),
    ("4.2.0", "host {h} said: 450 4.2.0 <{a}>: Recipient address rejected: Greylisted (in reply to RCPT TO command)"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    start = datetime(2026, 11, 1, 0, 0, 0)
    step = timedelta(days=args.days).total_seconds() / (args.lines / 7.5)
    t = 0.0
    qn = 0x100000
    pid = 1000
    written = 0
    with open(args.out, "w", buffering=1 << 20) as out:
        def log(prog, msg, dt):
            nonlocal written, pid
            pid = pid + 1 if pid < 60000 else 1000
            out.write(f"{MON[dt.month - 1]} {dt.day:2d} {dt:%H:%M:%S} mx1 postfix/{prog}[{pid}]: {msg}\n")
            written += 1
        while written < args.lines:
            t += step * rng.uniform(0.5, 1.5)
            dt = start + timedelta(seconds=t)
            qn += rng.randrange(1, 40)
            q = f"{qn:X}"[-6:] + f"{rng.randrange(16**4):04X}"
            dom, relay = DOMAINS[rng.randrange(len(DOMAINS))]
            a = f"user{rng.randrange(400_000)}@{dom}"
            h = relay.rsplit(":", 1)[0]
            log("smtpd", "connect from localhost[127.0.0.1]", dt)
            log("smtpd", f"{q}: client=localhost[127.0.0.1]", dt)
            log("cleanup", f"{q}: message-id=<{dt:%Y%m%d%H%M%S}.{q}@mail.example.jp>", dt)
            log("qmgr", f"{q}: from=<news@mail.example.jp>, size={rng.randrange(2000, 9000)}, nrcpt=1 (queue active)", dt)
            log("smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5", dt)
            r = rng.random()
            base = f"{q}: to=<{a}>, relay={relay}, delay=1.1, delays=0.1/0/0.5/0.5, dsn="
            if r < 0.85:
                log("smtp", base + "2.0.0, status=sent (250 2.0.0 Ok: queued as ABC123)", dt)
            elif r < 0.92:
                dsn, text = DEFERS[rng.randrange(len(DEFERS))]
                log("smtp", base + f"{dsn}, status=deferred ({text.format(h=h, a=a)})", dt)
                log("smtp", base + "2.0.0, status=sent (250 2.0.0 Ok: queued as ABC124)", dt + timedelta(minutes=15))
            elif r < 0.99:
                dsn, text = BOUNCES[rng.randrange(len(BOUNCES))]
                log("smtp", base + f"{dsn}, status=bounced ({text.format(h=h, a=a)})", dt)
                log("bounce", f"{q}: sender non-delivery notification: {q[:-1]}Z", dt)
            else:
                dsn, text = DEFERS[1]
                for k in range(3):
                    log("smtp", base + f"{dsn}, status=deferred ({text.format(h=h, a=a)})", dt + timedelta(hours=k))
                log("qmgr", f"{q}: from=<news@mail.example.jp>, status=expired, returned to sender", dt + timedelta(hours=3))
            log("qmgr", f"{q}: removed", dt)


if __name__ == "__main__":
    main()
