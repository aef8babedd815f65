"""Regenerate the sample logs in this folder (deterministic). Run: python sample_logs/make_samples.py

The scenario (all times Asia/Tokyo, November 2026; see README.md here for what each shows):
dead addresses at docomo/au/SoftBank that fail on two days inside a week (to be suppressed),
handset filtering, rate limiting and blocks of our IP (never suppressed), recoveries, quoted
docomo local parts, one address failing across Postfix, sendmail and qmail, and noise lines.
"""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
JST = timezone(timedelta(hours=9))
YEAR = 2026
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def syslog_ts(dt: datetime) -> str:
    return f"{MONTHS[dt.month - 1]} {dt.day:2d} {dt:%H:%M:%S}"


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(YEAR, 11, day, hh, mm, ss, tzinfo=JST)


# ----------------------------------------------------------------------------- Postfix
class Postfix:
    def __init__(self):
        self.lines: list[tuple[datetime, str]] = []
        self.n = 0x3C6D1C0A10
        self.pid = 2100

    def qid(self) -> str:
        self.n += 0x1F3
        return f"{self.n:X}"[:10]

    def log(self, dt, prog, msg):
        self.pid += 1
        self.lines.append((dt, f"{syslog_ts(dt)} mx1 {prog}[{self.pid}]: {msg}"))

    def message(self, dt, to, results, sender="news@mail.example.jp", expire=False, msgid=None, size=4210):
        """results: list of (status, dsn, relay, text) tried one after another, 20 min apart."""
        q = self.qid()
        msgid = msgid or f"{dt:%Y%m%d%H%M%S}.{q}@mail.example.jp"
        self.log(dt, "postfix/pickup", f"{q}: uid=1001 from=<{sender.split('@')[0]}>")
        self.log(dt, "postfix/cleanup", f"{q}: message-id=<{msgid}>")
        self.log(dt, "postfix/qmgr", f"{q}: from=<{sender}>, size={size}, nrcpt=1 (queue active)")
        t = dt
        for status, dsn, relay, text in results:
            t = t + timedelta(seconds=2)
            self.log(t, "postfix/smtp", f"{q}: to=<{to}>, relay={relay}, delay=1.2, delays=0.1/0/0.6/0.5, dsn={dsn}, status={status} ({text})")
            if status == "deferred":
                t = t + timedelta(minutes=20)
        if expire:
            self.log(t + timedelta(seconds=1), "postfix/qmgr", f"{q}: from=<{sender}>, status=expired, returned to sender")
            self.log(t + timedelta(seconds=1), "postfix/bounce", f"{q}: sender non-delivery notification: {self.qid()}")
        self.log(t + timedelta(seconds=1), "postfix/qmgr", f"{q}: removed")


DOCOMO_MX = "mfsmax.docomo.ne.jp[203.138.181.112]:25"
AU_MX = "msmx.au.com[111.86.141.160]:25"
SB_MX = "mx.softbank.ne.jp[210.146.60.90]:25"


def docomo_unknown(addr, phase="RCPT TO"):
    return ("bounced", "5.0.0", DOCOMO_MX,
            f"host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user {addr} (in reply to {phase} command)")


def au_unknown(addr):
    return ("bounced", "5.0.0", AU_MX, f"host msmx.au.com[111.86.141.160] said: 550 <{addr}>: User unknown (in reply to RCPT TO command)")


AU_FILTERED = ("bounced", "5.0.0", AU_MX, "host msmx.au.com[111.86.141.160] said: 550 : User unknown (in reply to end of DATA command)")
AU_THROTTLED = ("deferred", "4.7.0", AU_MX, "host msmx.au.com[111.86.141.160] refused to talk to me: 421 4.7.0 msmx.au.com Too many concurrent SMTP connections; please try again later")
SENT = lambda mx: ("sent", "2.0.0", mx, "250 2.0.0 Ok: queued")  # noqa: E731


def postfix_logs():
    old, new = Postfix(), Postfix()
    # --- older file (rotated, gzipped): Nov 9-12
    for p, day in ((old, 9), (old, 10), (old, 11), (old, 12)):
        p.log(at(day, 8, 59, 50), "postfix/smtpd", "connect from localhost[127.0.0.1]")
        p.log(at(day, 8, 59, 51), "postfix/smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5")
    old.message(at(9, 9, 0), "ok1@docomo.ne.jp", [SENT(DOCOMO_MX)])
    old.message(at(9, 9, 1), "ok2@ezweb.ne.jp", [SENT(AU_MX)])
    # dead docomo address: RCPT unknown on the 10th and 13th -> suppressed
    old.message(at(10, 9, 0), "taro.dead@docomo.ne.jp", [docomo_unknown("taro.dead@docomo.ne.jp")])
    # docomo handset filter (same text after DATA) on two days -> filtered, never suppressed
    old.message(at(10, 9, 2), "hanako@docomo.ne.jp", [docomo_unknown("hanako@docomo.ne.jp", "end of DATA")])
    # quoted docomo local part, unknown on the 10th and 12th -> suppressed (one address)
    old.message(at(10, 9, 3), '"taro..yamada."@docomo.ne.jp', [docomo_unknown("taro..yamada.@docomo.ne.jp")])
    # first of two errors eight days apart (10th and 18th) -> not suppressed
    old.message(at(10, 9, 4), "faraway@docomo.ne.jp", [docomo_unknown("faraway@docomo.ne.jp")])
    # au dead address on the 11th and 14th -> suppressed
    old.message(at(11, 10, 0), "jiro.old@au.com", [au_unknown("jiro.old@au.com")])
    # au throttling us, several days: rate limiting is never the address's fault
    old.message(at(11, 10, 5), "busy@ezweb.ne.jp", [AU_THROTTLED, SENT(AU_MX)])
    # recovery: error, then delivered, then one more error -> not suppressed
    old.message(at(11, 11, 0), "comeback@docomo.ne.jp", [docomo_unknown("comeback@docomo.ne.jp")])
    old.message(at(12, 9, 2), "hanako@docomo.ne.jp", [docomo_unknown("hanako@docomo.ne.jp", "end of DATA")])
    old.message(at(12, 9, 3), '"taro..yamada."@docomo.ne.jp', [docomo_unknown("taro..yamada.@docomo.ne.jp")])
    old.message(at(12, 9, 4), "comeback@docomo.ne.jp", [SENT(DOCOMO_MX)])
    # many errors on one single day -> not suppressed (needs two days)
    for mm in (0, 20, 40):
        old.message(at(12, 13, mm), "oneday@au.com", [au_unknown("oneday@au.com")])
    old.log(at(12, 3, 0), "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <spam@mail.example.jp>: Relay access denied; from=<x@198.51.100.7> to=<spam@mail.example.jp> proto=SMTP helo=<198.51.100.7>")

    # --- current file: Nov 13-20
    new.log(at(13, 0, 0, 5), "postfix/postfix-script", "starting the Postfix mail system")
    new.message(at(13, 9, 0), "taro.dead@docomo.ne.jp", [docomo_unknown("taro.dead@docomo.ne.jp")])
    new.message(at(13, 9, 5), "comeback@docomo.ne.jp", [docomo_unknown("comeback@docomo.ne.jp")])
    new.message(at(14, 10, 0), "jiro.old@au.com", [au_unknown("jiro.old@au.com")])
    new.message(at(14, 10, 1), "shinji@au.com", [AU_FILTERED])
    new.message(at(14, 10, 2), "busy@ezweb.ne.jp", [AU_THROTTLED, AU_THROTTLED, SENT(AU_MX)])
    # mailbox full at docomo on the 15th and the 17th -> suppressed (mailbox_full counts)
    full = ("deferred", "4.0.0", DOCOMO_MX, "host mfsmax.docomo.ne.jp[203.138.181.112] said: 452 Too much mail data full@docomo.ne.jp (in reply to end of DATA command)")
    full5 = ("bounced", "5.0.0", DOCOMO_MX, "host mfsmax.docomo.ne.jp[203.138.181.112] said: 552 Too much mail data full@docomo.ne.jp (in reply to end of DATA command)")
    new.message(at(15, 9, 0), "full@docomo.ne.jp", [full5])
    new.message(at(17, 9, 0), "full@docomo.ne.jp", [full5])
    _ = full
    # our sender domain unknown to SoftBank (553 at MAIL FROM): our fault, never the address's
    ours = ("bounced", "5.0.0", SB_MX, "host mx.softbank.ne.jp[210.146.60.90] said: 553 <news@mail.example.jp> does not exist (in reply to MAIL FROM command)")
    new.message(at(15, 11, 0), "yuki@i.softbank.jp", [ours])
    new.message(at(16, 11, 0), "yuki@i.softbank.jp", [ours])
    # our IP on a block list at a non-carrier host
    rbl = ("bounced", "5.7.1", "mx.example.com[192.0.2.25]:25", "host mx.example.com[192.0.2.25] said: 554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org (in reply to RCPT TO command)")
    new.message(at(15, 12, 0), "partner@example.com", [rbl])
    new.message(at(16, 12, 0), "partner@example.com", [rbl])
    # two errors eight days apart -> not suppressed (10th and 18th)
    new.message(at(18, 9, 0), "faraway@docomo.ne.jp", [docomo_unknown("faraway@docomo.ne.jp")])
    # a domain that does not exist: deferred on DNS, then the queue lifetime runs out (expired)
    dns = ("deferred", "4.4.3", "none", "Host or domain name not found. Name service error for name=gone.example.jp type=MX: Host not found, try again")
    new.message(at(16, 14, 0), "someone@gone.example.jp", [dns, dns], expire=True)
    # a hard host-unknown bounce on two days -> suppressed
    nohost = ("bounced", "5.4.4", "none", "Host or domain name not found. Name service error for name=nohost.example.jp type=A: Host not found")
    new.message(at(16, 15, 0), "a@nohost.example.jp", [nohost])
    new.message(at(19, 15, 0), "a@nohost.example.jp", [nohost])
    # ordinary traffic, tls= key from newer Postfix, a long queue id, a bounce notice to us
    for i, day in enumerate(range(13, 21)):
        new.message(at(day, 8, 30), f"member{i:02d}@docomo.ne.jp", [SENT(DOCOMO_MX)])
        new.message(at(day, 8, 31), f"member{i:02d}@au.com", [SENT(AU_MX)])
        new.message(at(day, 8, 32), f"member{i:02d}@softbank.ne.jp", [SENT(SB_MX)])
    new.log(at(20, 8, 40), "postfix/smtp", "4jc5zM4YDDzBvb1: to=<info@example.org>, relay=mx.example.org[192.0.2.30]:25, delay=0.8, delays=0.1/0/0.3/0.4, tls=may, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4jc5zN0abcz9)")
    new.message(at(20, 8, 41), "news@mail.example.jp", [("sent", "2.0.0", "local", "delivered to mailbox")], sender="")
    new.log(at(20, 8, 42), "postfix/verify", "4B7A1C0A20: to=<probe@docomo.ne.jp>, relay=none, delay=0, delays=0/0/0/0, dsn=5.1.1, status=undeliverable-but-not-cached (probe)")
    # rsyslog RFC 3339 line (Debian 12 style) in the same file
    new.lines.append((at(20, 9, 0), "2026-11-20T09:00:00.123456+09:00 mx1 postfix/smtp[4242]: 5D2E1C0B31: to=<member99@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)"))
    return old, new


# ----------------------------------------------------------------------------- sendmail
def sendmail_log() -> list[str]:
    out = []
    def log(dt, prog, pid, msg):
        out.append((dt, f"{syslog_ts(dt)} relay2 {prog}[{pid}]: {msg}"))
    # the MSP hop to the local MTA (not a delivery to a carrier), then the MTA's own lines
    log(at(11, 9, 0), "sendmail", 3001, "2ABB09f0003001: from=news, size=812, class=0, nrcpts=3, msgid=<202611110900.2ABB09f0003001@relay2.example.jp>, relay=news@localhost")
    log(at(11, 9, 0, 1), "sendmail", 3001, "2ABB09f0003001: to=saburo@i.softbank.jp,member01@ezweb.ne.jp,member02@ezweb.ne.jp, ctladdr=news (1001/1001), delay=00:00:01, xdelay=00:00:01, mailer=relay, pri=122812, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2ABB0A1u003002 Message accepted for delivery)")
    log(at(11, 9, 0, 1), "sm-mta", 3002, "2ABB0A1u003002: from=<news@mail.example.jp>, size=1012, class=0, nrcpts=3, msgid=<202611110900.2ABB09f0003001@relay2.example.jp>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]")
    log(at(11, 9, 0, 3), "sm-mta", 3003, "2ABB0A1u003002: to=<saburo@i.softbank.jp>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=122812, relay=mx.softbank.ne.jp. [210.146.60.90], dsn=5.1.1, reply=550 Invalid recipient: <saburo@i.softbank.jp>, stat=User unknown")
    log(at(11, 9, 0, 4), "sm-mta", 3003, "2ABB0A1u003002: to=<member01@ezweb.ne.jp>,<member02@ezweb.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=122812, relay=lsean.ezweb.ne.jp. [111.86.141.161], dsn=2.0.0, reply=250 ok, stat=Sent (ok)")
    log(at(11, 9, 0, 5), "sm-mta", 3003, "2ABB0A1u003002: 2ABB0A1u003003: DSN: User unknown")
    # au throttling: 421, reply= holds the answer to QUIT
    log(at(12, 9, 0), "sm-mta", 3010, "2ACB0A1u003010: from=<news@mail.example.jp>, size=1012, class=0, nrcpts=1, msgid=<202611120900.x@relay2.example.jp>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]")
    log(at(12, 9, 0, 2), "sm-mta", 3011, "2ACB0A1u003010: to=<busy2@au.com>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=122812, relay=msmx.au.com. [111.86.141.160], dsn=4.7.0, reply=221 msmx.au.com closing connection, stat=Deferred: 421 4.7.0 msmx.au.com Too many connections, try again later")
    log(at(12, 9, 30, 2), "sm-mta", 3012, "2ACB0A1u003010: to=<busy2@au.com>, delay=00:30:02, xdelay=00:00:01, mailer=esmtp, pri=212812, relay=msmx.au.com. [111.86.141.160], dsn=2.0.0, reply=250 ok, stat=Sent (ok)")
    # old sendmail without reply=: user unknown at au on two days -> suppressed
    for day, qid in ((13, "2ADB0A1u003020"), (16, "2AGB0A1u003030")):
        log(at(day, 9, 0), "sm-mta", 3020 + day, f"{qid}: from=<news@mail.example.jp>, size=900, class=0, nrcpts=1, msgid=<{qid}@relay2.example.jp>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]")
        log(at(day, 9, 0, 2), "sm-mta", 3021 + day, f"{qid}: to=<kenji.gone@ezweb.ne.jp>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=120900, relay=lsean.ezweb.ne.jp. [111.86.141.161], dsn=5.1.1, stat=User unknown")
    # a remote that times out for days: deferred, then expiry
    log(at(14, 9, 0), "sm-mta", 3040, "2AEB0A1u003040: from=<news@mail.example.jp>, size=900, class=0, nrcpts=1, msgid=<2AEB0A1u003040@relay2.example.jp>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]")
    log(at(14, 9, 0, 30), "sm-mta", 3041, "2AEB0A1u003040: to=<slow@slow.example.jp>, delay=00:00:30, xdelay=00:00:30, mailer=esmtp, pri=120900, relay=mx.slow.example.jp. [192.0.2.40], dsn=4.0.0, stat=Deferred: Connection timed out with mx.slow.example.jp.")
    log(at(19, 9, 1), "sm-mta", 3042, "2AEB0A1u003040: to=<slow@slow.example.jp>, delay=5+00:01:00, xdelay=00:00:30, mailer=esmtp, pri=9120900, relay=mx.slow.example.jp. [192.0.2.40], dsn=4.0.0, stat=Deferred: Connection timed out with mx.slow.example.jp.")
    log(at(19, 9, 1, 1), "sm-mta", 3042, "2AEB0A1u003040: 2AJB0A1u003099: DSN: Cannot send message for 5 days")
    # noise
    log(at(14, 10, 0), "sm-mta", 3050, "2AEB0B1u003050: Milter: no active filter")
    log(at(14, 10, 0, 1), "sm-mta", 3050, "ruleset=check_rcpt, arg1=<x@mail.example.jp>, relay=unknown [198.51.100.9], reject=550 5.7.1 <x@mail.example.jp>... Relaying denied")
    out.sort(key=lambda t: t[0])
    return [line for _, line in out]


# ----------------------------------------------------------------------------- qmail
def tai64n(dt: datetime) -> str:
    secs = int(dt.timestamp())
    return f"@{secs + 4611686018427387914:016x}{(dt.microsecond * 1000):08x}"


def qmail_log() -> list[str]:
    out: list[str] = []
    state = {"d": 0, "m": 1000}
    def log(dt, msg):
        out.append(f"{tai64n(dt)} {msg}")
    def message(dt, to, kind, text, sender="news@mail.example.jp"):
        state["d"] += 1
        state["m"] += 7
        d, m = state["d"], state["m"]
        log(dt, f"new msg {m}")
        log(dt, f"info msg {m}: bytes 2211 from <{sender}> qp {9000 + d} uid 1001")
        log(dt, f"starting delivery {d}: msg {m} to remote {to}")
        log(dt, "status: local 0/10 remote 1/20")
        log(dt + timedelta(seconds=2), f"delivery {d}: {kind}: {text}")
        log(dt + timedelta(seconds=2), "status: local 0/10 remote 0/20")
        if kind == "failure":
            log(dt + timedelta(seconds=2), f"bounce msg {m} qp {9500 + d}")
        if kind != "deferral":
            log(dt + timedelta(seconds=2), f"end msg {m}")
    message(at(13, 18, 0), "member03@docomo.ne.jp", "success", "203.138.181.112_accepted_message./Remote_host_said:_250_ok/")
    # the same dead SoftBank address as in the sendmail log, on another day -> suppressed across MTAs
    message(at(15, 18, 0), "Saburo@I.SoftBank.jp", "failure", "210.146.60.90_does_not_like_recipient./Remote_host_said:_550_Invalid_recipient:_<Saburo@I.SoftBank.jp>/Giving_up_on_210.146.60.90./")
    # docomo refusing after DATA: the handset filter, not a dead address
    message(at(15, 18, 1), "filtered@docomo.ne.jp", "failure", "203.138.181.112_failed_after_I_sent_the_message./Remote_host_said:_550_Unknown_user_filtered@docomo.ne.jp/")
    message(at(17, 18, 1), "filtered@docomo.ne.jp", "failure", "203.138.181.112_failed_after_I_sent_the_message./Remote_host_said:_550_Unknown_user_filtered@docomo.ne.jp/")
    # a connection failure (deferral) and a queue lifetime expiry
    message(at(16, 18, 0), "far@slow.example.jp", "deferral", "Sorry,_I_wasn't_able_to_establish_an_SMTP_connection._(#4.4.1)/")
    message(at(16, 18, 5), "nobody@nxdomain.example.jp", "failure", "Sorry,_I_couldn't_find_any_host_named_nxdomain.example.jp._(#5.1.2)/")
    message(at(17, 23, 50), "late@au.com", "failure", "111.86.141.160_does_not_like_recipient./Remote_host_said:_550_<late@au.com>:_User_unknown/Giving_up_on_111.86.141.160./")
    # ... and again the next day just after local midnight (Asia/Tokyo): two calendar days -> suppressed
    message(at(18, 0, 10), "late@au.com", "failure", "111.86.141.160_does_not_like_recipient./Remote_host_said:_550_<late@au.com>:_User_unknown/Giving_up_on_111.86.141.160./")
    message(at(19, 18, 0), "member04@docomo.ne.jp", "failure", "I'm_not_going_to_try_again;_this_message_has_been_in_the_queue_too_long./")
    return out


def write(path: Path, lines: list[str], gz: bool = False, mtime: datetime | None = None) -> None:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        with gzip.GzipFile(path, "wb", mtime=0) as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    if mtime:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def main() -> None:
    old, new = postfix_logs()
    (HERE / "postfix").mkdir(exist_ok=True)
    (HERE / "sendmail").mkdir(exist_ok=True)
    (HERE / "qmail").mkdir(exist_ok=True)
    write(HERE / "postfix" / "mail.log.1.gz", [l for _, l in sorted(old.lines, key=lambda t: t[0])], gz=True)
    write(HERE / "postfix" / "mail.log", [l for _, l in sorted(new.lines, key=lambda t: t[0])])
    write(HERE / "sendmail" / "maillog", sendmail_log())
    write(HERE / "qmail" / "current", qmail_log())


if __name__ == "__main__":
    main()
