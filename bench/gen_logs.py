"""Generate realistic mail logs of a Japanese bulk sender, for benchmarks and tests.

Usage: python bench/gen_logs.py OUT --mta postfix|sendmail|qmail [--lines 1000000] [--days 5]
       [--seed 1] [--subjects 0.5] [--ascii] [--stamps traditional|rfc3339] [--splogger]

What makes them realistic (DESIGN.md rule 11):
- postfix: Postfix 3.7 shapes: pickup or smtpd (connect, client=, disconnect with command
  counts), cleanup message-id= and, for a share of the messages (`--subjects`, 1-10 % in real
  logs), the `info: header Subject:` line of a header_checks INFO rule with the Japanese subject
  as raw UTF-8, a Japanese display name in a `To:` header line for some; qmgr from= (queue
  active); TLS notes of smtp; deliveries through several relays (each carrier's MX hosts, a
  smarthost for some domains; every `250 … queued as ID` reply names another id); ~5 % SMTPUTF8 recipients (`to=<山田@例え.jp>`); ~25 % of the
  messages deferred at least once (greylisting, 421 too many connections, timeouts), retried
  later, then sent, bounced or expired (qmgr `status=expired, returned to sender` + bounce
  notice); carrier bounce texts (some in Japanese), `removed`.
- sendmail: the MSP hop (`sendmail[pid]`, mailer=relay to [127.0.0.1], several recipients on one
  line without brackets), the MTA's own from= (daemon=MTA) and to= lines with several recipients
  per line, `reply=` (8.15+), deferrals (`stat=Deferred: …`) retried later, `DSN:` lines,
  expiry (`DSN: Cannot send message for 5 days`), STARTTLS notes.
- qmail: multilog TAI64N stamps; new msg / info msg / starting delivery / status / delivery
  success, deferral, failure (qmail's escaped texts) / end msg; deliveries retried.

--ascii writes the same traffic without any non-ASCII byte (no subject lines, no SMTPUTF8, no
Japanese texts): the second benchmark row, never the headline.

--stamps rfc3339 writes the same traffic (postfix, sendmail) with the stamps rsyslog writes by
default since Debian 12 (`2026-11-01T00:00:02.140891+09:00`) instead of `Nov  1 00:00:02`.
--splogger writes qmail's lines as qmail's own rc does (`qmail-start ./Mailbox splogger qmail`):
`Nov  1 00:00:02 mx1 qmail: 1793491202.135520 …` (syslog stamp by --stamps) instead of multilog.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta

MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# domain -> (relay hosts "name[ip]")
CARRIERS = [
    ("docomo.ne.jp", ["mfsmax.docomo.ne.jp[203.138.181.112]", "mfsmax.docomo.ne.jp[203.138.181.240]"], 30),
    ("ezweb.ne.jp", ["lsean.ezweb.ne.jp[111.86.141.161]", "lsean.ezweb.ne.jp[27.86.113.8]"], 15),
    ("au.com", ["msmx.au.com[111.86.141.160]"], 10),
    ("i.softbank.jp", ["mx.softbank.ne.jp[210.146.60.90]", "mx2.softbank.ne.jp[210.146.60.91]"], 10),
    ("softbank.ne.jp", ["mx.softbank.ne.jp[210.146.60.91]"], 5),
    ("gmail.com", ["gmail-smtp-in.l.google.com[142.250.4.26]", "alt1.gmail-smtp-in.l.google.com[142.250.141.26]"], 12),
    ("yahoo.co.jp", ["mx1.mail.yahoo.co.jp[183.79.57.116]", "mx5.mail.yahoo.co.jp[182.22.12.117]"], 10),
    ("example.co.jp", ["[smtp-relay.example.net][198.51.100.25]"], 5),   # through a smarthost
    ("nifty.com", ["mx.nifty.com[202.248.20.41]"], 3),
]
WEIGHTS = [w for _, _, w in CARRIERS]
SUBJECTS = ["【重要】ご登録内容の確認のお願い", "今週のおすすめ商品のご案内", "ポイント失効のお知らせ",
            "ご注文ありがとうございます", "メールマガジン第128号 秋の特集", "パスワード再設定のご案内"]
NAMES = ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健太", "渡辺 由美"]
UTF8_LOCAL = ["山田", "はなこ", "たろう.やまだ", "佐藤_花子", "すずき"]
UTF8_DOMAINS = ["例え.jp", "ドメイン名例.jp", "テスト.co.jp"]
BOUNCES = [
    ("5.0.0", "host {h} said: 550 Unknown user {a} (in reply to end of DATA command)"),
    ("5.0.0", "host {h} said: 550 <{a}>: User unknown (in reply to RCPT TO command)"),
    ("5.1.1", "host {h} said: 550 5.1.1 <{a}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"),
    ("5.1.1", "host {h} said: 550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser d9443c01a7336-1f3 - gsmtp (in reply to RCPT TO command)"),
    ("5.2.2", "host {h} said: 552 5.2.2 <{a}>: Mailbox full (in reply to RCPT TO command)"),
    ("5.7.1", "host {h} said: 554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org (in reply to RCPT TO command)"),
    ("5.0.0", "host {h} said: 550 このアドレスへのメールはお届けできません (in reply to RCPT TO command)"),
]
DEFERS = [
    ("4.7.0", "host {h} refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections; please try again later"),
    ("4.4.1", "connect to {h}:25: Connection timed out"),
    ("4.2.0", "host {h} said: 450 4.2.0 <{a}>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/help/example.co.jp.html (in reply to RCPT TO command)"),
    ("4.3.0", "host {h} said: 451 4.3.0 Temporary failure, please try again later (in reply to end of DATA command)"),
]


class Clock:
    def __init__(self, rng: random.Random, days: int, lines: int, per_message: float):
        self.rng = rng
        self.start = datetime(2026, 11, 1)
        self.step = timedelta(days=days).total_seconds() / max(lines / per_message, 1)
        self.t = 0.0

    def next(self) -> datetime:
        self.t += self.step * self.rng.uniform(0.5, 1.5)
        return self.start + timedelta(seconds=self.t)


_ID_CHARS = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"


def remote_id(rng: random.Random) -> str:
    """A receiving server's queue id, as its `250 … queued as …` reply names it (every reply differs)."""
    return "".join(rng.choice(_ID_CHARS) for _ in range(rng.choice((10, 11, 12))))


def stamp(dt: datetime) -> str:
    """A syslog stamp of Japan time: traditional, or RFC 3339 (--stamps rfc3339)."""
    if RFC3339:
        return f"{dt:%Y-%m-%dT%H:%M:%S.%f}+09:00"
    return f"{MON[dt.month - 1]} {dt.day:2d} {dt:%H:%M:%S}"


RFC3339 = False  # (main() sets it from --stamps)


def recipient(rng: random.Random, ascii_only: bool) -> tuple[str, str, str]:
    """(address, relay host 'name[ip]', domain)."""
    if not ascii_only and rng.random() < 0.05:
        dom = rng.choice(UTF8_DOMAINS)
        return f"{rng.choice(UTF8_LOCAL)}{rng.randrange(1000)}@{dom}", f"mx.{dom}[192.0.2.{rng.randrange(1, 250)}]", dom
    dom, relays, _ = rng.choices(CARRIERS, WEIGHTS)[0]
    local = rng.choice(["user", "taro", "hanako", "k.yamada", "info", "mm"]) + str(rng.randrange(400_000))
    return f"{local}@{dom}", rng.choice(relays), dom


def postfix(out, args, rng: random.Random) -> None:
    clock = Clock(rng, args.days, args.lines, 9.5)
    pid = [1000]
    written = [0]
    pending: list[tuple[datetime, str]] = []   # (when, line) of retries and later lines, kept in time order

    def log(dt: datetime, prog: str, msg: str) -> None:
        pid[0] = pid[0] + 1 if pid[0] < 60000 else 1000
        out.write(f"{stamp(dt)} mx1 postfix/{prog}[{pid[0]}]: {msg}\n")
        written[0] += 1

    qn = 0x100000
    while written[0] < args.lines:
        now = clock.next()
        while pending and pending[0][0] <= now:
            when, prog, msg = pending.pop(0)
            log(when, prog, msg)
        qn += rng.randrange(1, 40)
        q = f"{qn:X}"[-6:] + f"{rng.randrange(16**4):04X}"
        a, relay, dom = recipient(rng, args.ascii)
        if rng.random() < 0.6:
            log(now, "pickup", f"{q}: uid=1000 from=<news>")
        else:
            log(now, "smtpd", "connect from localhost[127.0.0.1]")
            log(now, "smtpd", f"{q}: client=localhost[127.0.0.1]")
        log(now, "cleanup", f"{q}: message-id=<{now:%Y%m%d%H%M%S}.{q}@mail.example.jp>")
        if not args.ascii and rng.random() < args.subjects:
            log(now, "cleanup", f"{q}: info: header Subject: {rng.choice(SUBJECTS)} from localhost[127.0.0.1]; "
                                f"from=<news@mail.example.jp> to=<{a}> proto=ESMTP helo=<localhost>")
            if rng.random() < 0.3:
                log(now, "cleanup", f"{q}: info: header To: {rng.choice(NAMES)} <{a}> from localhost[127.0.0.1]; "
                                    f"from=<news@mail.example.jp> to=<{a}> proto=ESMTP helo=<localhost>")
        log(now, "qmgr", f"{q}: from=<news@mail.example.jp>, size={rng.randrange(2000, 30000)}, nrcpt=1 (queue active)")
        if written[0] and rng.random() < 0.4:
            log(now, "smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5")
        h = relay
        if rng.random() < 0.3:
            log(now, "smtp", f"Verified TLS connection established to {relay}:25: "
                             "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
        base = f"{q}: to=<{a}>, relay={relay}:25, delay={{d}}, delays=0.1/0.01/0.3/{{d}}, dsn="
        r = rng.random()
        tries = []
        if r < 0.25:   # deferred at least once, retried
            dsn, text = DEFERS[rng.randrange(len(DEFERS))]
            retries = rng.choice((1, 1, 2, 3))
            for k in range(retries):
                tries.append((timedelta(minutes=15 * (2 ** k) * k), "smtp", base.format(d=f"{900 * k + 1.2:.1f}")
                              + f"{dsn}, status=deferred ({text.format(h=h, a=a)})"))
            end = timedelta(minutes=15 * (2 ** retries))
            fate = rng.random()
            if fate < 0.8:
                tries.append((end, "smtp", base.format(d="1.1") + f"2.0.0, status=sent (250 2.0.0 Ok: queued as {remote_id(rng)})"))
                tries.append((end, "qmgr", f"{q}: removed"))
            elif fate < 0.95:
                bdsn, btext = BOUNCES[rng.randrange(len(BOUNCES))]
                if args.ascii and not btext.isascii():
                    bdsn, btext = BOUNCES[0]
                tries.append((end, "smtp", base.format(d="1.1") + f"{bdsn}, status=bounced ({btext.format(h=h, a=a)})"))
                tries.append((end, "bounce", f"{q}: sender non-delivery notification: {q[:-1]}Z"))
                tries.append((end, "qmgr", f"{q}: removed"))
            else:
                tries.append((end, "qmgr", f"{q}: from=<news@mail.example.jp>, status=expired, returned to sender"))
                tries.append((end, "bounce", f"{q}: sender non-delivery notification: {q[:-1]}Y"))
                tries.append((end, "qmgr", f"{q}: removed"))
        elif r < 0.93:
            tries.append((timedelta(0), "smtp", base.format(d="0.9") + f"2.0.0, status=sent (250 2.0.0 Ok: queued as {remote_id(rng)})"))
            tries.append((timedelta(0), "qmgr", f"{q}: removed"))
        else:
            bdsn, btext = BOUNCES[rng.randrange(len(BOUNCES))]
            if args.ascii and not btext.isascii():
                bdsn, btext = BOUNCES[0]
            tries.append((timedelta(0), "smtp", base.format(d="0.9") + f"{bdsn}, status=bounced ({btext.format(h=h, a=a)})"))
            tries.append((timedelta(0), "bounce", f"{q}: sender non-delivery notification: {q[:-1]}Z"))
            tries.append((timedelta(0), "qmgr", f"{q}: removed"))
        for delay, prog, msg in tries:
            if delay:
                _insert(pending, (now + delay, prog, msg))
            else:
                log(now, prog, msg)
    # what is still pending after the last line is not written (a log cut at any moment)


def _insert(pending: list, item: tuple) -> None:
    lo, hi = 0, len(pending)
    while lo < hi:
        mid = (lo + hi) // 2
        if pending[mid][0] <= item[0]:
            lo = mid + 1
        else:
            hi = mid
    pending.insert(lo, item)


def sendmail(out, args, rng: random.Random) -> None:
    clock = Clock(rng, args.days, args.lines, 8.0)
    pid = [2000]
    written = [0]
    pending: list = []

    def log(dt: datetime, prog: str, msg: str) -> None:
        pid[0] = pid[0] + 1 if pid[0] < 60000 else 2000
        out.write(f"{stamp(dt)} mx1 {prog}[{pid[0]}]: {msg}\n")
        written[0] += 1

    n = 0
    while written[0] < args.lines:
        now = clock.next()
        while pending and pending[0][0] <= now:
            when, prog, msg = pending.pop(0)
            log(when, prog, msg)
        n += 1
        msp, mta = f"5B{n:08X}"[-10:].rjust(10, "0"), f"5C{n:08X}"[-10:].rjust(10, "0")
        msp, mta = "4A1" + msp[-7:] + "0", "4A1" + mta[-7:] + "1"
        rcpts = [recipient(rng, args.ascii) for _ in range(rng.choice((1, 1, 1, 2, 3, 5)))]
        msgid = f"<{now:%Y%m%d%H%M%S}.{msp}@mail.example.jp>"
        log(now, "sendmail", f"{msp}: from=news, size={rng.randrange(2000, 30000)}, class=0, nrcpts={len(rcpts)}, "
                             f"msgid={msgid}, relay=news@localhost")
        log(now, "sendmail", f"{msp}: to={','.join(a for a, _, _ in rcpts)}, ctladdr=news (1000/1000), delay=00:00:00, "
                             f"xdelay=00:00:00, mailer=relay, pri={30000 + 30000 * len(rcpts)}, relay=[127.0.0.1] [127.0.0.1], "
                             f"dsn=2.0.0, stat=Sent ({mta} Message accepted for delivery)")
        log(now, "sm-mta", f"{mta}: from=<news@mail.example.jp>, size={rng.randrange(2000, 30000)}, class=0, "
                           f"nrcpts={len(rcpts)}, msgid={msgid}, bodytype=8BITMIME, proto=ESMTP, daemon=MTA-v4, "
                           "relay=localhost [127.0.0.1]")
        # recipients of the same MX go on one line
        by_relay: dict[str, list] = {}
        for a, relay, dom in rcpts:
            by_relay.setdefault(relay, []).append(a)
        for relay, addrs in by_relay.items():
            host, ip = relay.rsplit("[", 1)[0], relay.rsplit("[", 1)[1][:-1]
            to = ",".join(f"<{x}>" for x in addrs)
            head = f"{mta}: to={to}, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120512, relay={host}. [{ip}], "
            if rng.random() < 0.2:
                log(now, "sm-mta", f"STARTTLS=client, relay={host}., version=TLSv1.3, verify=FAIL, "
                                   "cipher=TLS_AES_256_GCM_SHA384, bits=256/256")
            r = rng.random()
            if r < 0.25:
                reply = rng.choice(["421 4.7.0 Too many connections, try again later",
                                    "450 4.2.0 <{a}>: Recipient address rejected: Greylisted",
                                    "451 4.3.0 Temporary local problem"])
                log(now, "sm-mta", head + f"dsn=4.0.0, stat=Deferred: {reply.format(a=addrs[0])}")
                later = now + timedelta(minutes=rng.choice((15, 30, 60)))
                fate = rng.random()
                if fate < 0.8:
                    rid = remote_id(rng)
                    _insert(pending, (later, "sm-mta", head.replace("00:00:01", "00:30:02", 1)
                                      + f"dsn=2.0.0, reply=250 2.0.0 Ok: queued as {rid}, stat=Sent (Ok: queued as {rid})"))
                elif fate < 0.95:
                    _insert(pending, (later, "sm-mta", head + f"dsn=5.1.1, reply=550 5.1.1 <{addrs[0]}>: User unknown, "
                                                              "stat=User unknown"))
                    _insert(pending, (later, "sm-mta", f"{mta}: 4A2{n:07X}: DSN: User unknown"))
                else:
                    _insert(pending, (later + timedelta(days=0), "sm-mta", f"{mta}: 4A3{n:07X}: DSN: Cannot send message for 5 days"))
            elif r < 0.93:
                rid = remote_id(rng)
                log(now, "sm-mta", head + f"dsn=2.0.0, reply=250 2.0.0 Ok: queued as {rid}, stat=Sent (Ok: queued as {rid})")
            else:
                which = rng.random()
                if which < 0.5:
                    log(now, "sm-mta", head + f"dsn=5.1.1, reply=550 5.1.1 <{addrs[0]}>: User unknown, stat=User unknown")
                elif which < 0.8 or args.ascii:
                    log(now, "sm-mta", head + "dsn=5.2.0, reply=550 5.7.1 Message rejected as spam, stat=Service unavailable")
                else:
                    log(now, "sm-mta", head + "dsn=5.0.0, reply=550 このアドレスには配信できません, stat=Service unavailable")
                log(now, "sm-mta", f"{mta}: 4A4{n:07X}: DSN: Service unavailable")


def qmail(out, args, rng: random.Random) -> None:
    clock = Clock(rng, args.days, args.lines, 9.0)
    written = [0]
    base = 4611686018427387914
    pending: list = []
    state = {"d": 0, "local": 0, "remote": 0}

    def log(dt: datetime, msg: str) -> None:
        secs = int(dt.timestamp())
        nanos = rng.randrange(1 << 30) % 1_000_000_000
        if args.splogger:  # qmail-send | splogger qmail: syslog's stamp and host, then splogger's Unix time
            out.write(f"{stamp(dt)} mx1 qmail: {secs}.{nanos // 1000:06d} {msg}\n")
        else:
            out.write(f"@{base + secs:016x}{nanos:08x} {msg}\n")
        written[0] += 1

    m = 1000000
    while written[0] < args.lines:
        now = clock.next()
        while pending and pending[0][0] <= now:
            when, msg = pending.pop(0)
            log(when, msg)
        m += rng.randrange(1, 50)
        log(now, f"new msg {m}")
        log(now, f"info msg {m}: bytes {rng.randrange(2000, 30000)} from <news@mail.example.jp> qp {rng.randrange(2000, 60000)} uid 1000")
        rcpts = [recipient(rng, args.ascii) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        ends = now
        for a, relay, dom in rcpts:
            state["d"] = state["d"] % 9999 + 1
            d = state["d"]
            ip = relay.rsplit("[", 1)[1][:-1]
            log(now, f"starting delivery {d}: msg {m} to remote {a}")
            log(now, f"status: local 0/10 remote {rng.randrange(1, 20)}/20")
            r = rng.random()
            if r < 0.25:
                log(now, f"delivery {d}: deferral: Connected_to_{ip}_but_greeting_failed./Remote_host_said:_421_4.7.0_Too_many_connections,_try_again_later/")
                later = now + timedelta(minutes=rng.choice((7, 15, 30)))
                state["d"] = state["d"] % 9999 + 1
                d2 = state["d"]
                _insert(pending, (later, f"starting delivery {d2}: msg {m} to remote {a}"))
                if rng.random() < 0.85:
                    _insert(pending, (later, f"delivery {d2}: success: {ip}_accepted_message./Remote_host_said:_250_2.0.0_Ok:_queued_as_{remote_id(rng)}/"))
                else:
                    _insert(pending, (later, f"delivery {d2}: failure: {ip}_does_not_like_recipient./Remote_host_said:_550_5.1.1_<{a}>:_User_unknown/Giving_up_on_{ip}./"))
                ends = max(ends, later)
            elif r < 0.93:
                log(now, f"delivery {d}: success: {ip}_accepted_message./Remote_host_said:_250_2.0.0_Ok:_queued_as_{remote_id(rng)}/")
            else:
                log(now, f"delivery {d}: failure: {ip}_does_not_like_recipient./Remote_host_said:_550_5.1.1_<{a}>:_User_unknown/Giving_up_on_{ip}./")
            log(now, f"status: local 0/10 remote {rng.randrange(0, 20)}/20")
        if ends > now:
            _insert(pending, (ends + timedelta(seconds=1), f"end msg {m}"))
        else:
            log(now, f"end msg {m}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mta", choices=("postfix", "sendmail", "qmail"), default="postfix")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subjects", type=float, default=0.5, help="share of messages with a UTF-8 Subject: line (postfix)")
    ap.add_argument("--ascii", action="store_true", help="no non-ASCII byte anywhere (the second benchmark row)")
    ap.add_argument("--stamps", choices=("traditional", "rfc3339"), default="traditional",
                    help="syslog stamps: `Nov  1 00:00:02` or `2026-11-01T00:00:02.140891+09:00` (postfix, sendmail)")
    ap.add_argument("--splogger", action="store_true", help="qmail through splogger into syslog, not multilog")
    args = ap.parse_args()
    global RFC3339
    RFC3339 = args.stamps == "rfc3339"
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8", buffering=1 << 20) as out:
        {"postfix": postfix, "sendmail": sendmail, "qmail": qmail}[args.mta](out, args, rng)


if __name__ == "__main__":
    main()
