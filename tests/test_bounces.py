"""`mailhygiene bounces`: bounce mails (RFC 3464 DSNs, qmail's and carriers' own formats) become
event rows the rule reads. Real CLI processes, real Parquet, real DuckDB; the real-Postfix DSN is
in tests/test_relay_postfix.py."""

from __future__ import annotations

import email.utils
import os
import subprocess
import sys
import time
from email.header import Header
from pathlib import Path

import pytest

import pipeline
from pipeline.sender.bounces import parse_bounce, verp_recipient
from pipeline.sender.daemon import run_daemon, verp_address
from pipeline.sender.enqueue import enqueue
from pipeline.sender.testing import RecordingServer
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import suppressed_addresses

from fixtures import make_config, sender_toml

REPO = Path(__file__).resolve().parents[1]
OURS = "news@mail.example.jp"


def dsn(day: float, *, mid="<b1@mx.example.jp>", original="<orig-1@mail.example.jp>") -> bytes:
    date = email.utils.formatdate(day)
    return f"""From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)
To: {OURS}
Date: {date}
Message-ID: {mid}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

<gone@docomo.ne.jp>: host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown
    user gone@docomo.ne.jp (in reply to RCPT TO command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp
Arrival-Date: {date}

Final-Recipient: rfc822; gone@docomo.ne.jp
Original-Recipient: rfc822;gone@docomo.ne.jp
Action: failed
Status: 5.0.0
Remote-MTA: dns; mfsmax.docomo.ne.jp
Diagnostic-Code: smtp; 550 Unknown user gone@docomo.ne.jp

Final-Recipient: rfc822; full@au.com
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--B
Content-Type: text/rfc822-headers

From: {OURS}
Message-ID: {original}
Subject: hello

--B--
""".replace("\n", "\r\n").encode()


QMAIL = b"""From: MAILER-DAEMON@mx.example.jp
To: news@mail.example.jp
Subject: failure notice
Date: Fri, 04 Dec 2026 10:00:00 +0900
Message-ID: <q1@mx.example.jp>

Hi. This is the qmail-send program at mx.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@au.com>:
111.86.247.1 does not like recipient.
Remote host said: 550 <nobody@au.com>: User unknown
Giving up on 111.86.247.1.

--- Below this line is a copy of the message.

From: news@mail.example.jp
Subject: hello
"""


def carrier_style(to: str) -> bytes:
    """A carrier's own bounce: ISO-2022-JP text naming no recipient; only the VERP address says whose."""
    subject = Header("返信メール", "iso-2022-jp").encode()
    text = "送信したメールは届きませんでした。\r\n\r\n   550 Unknown user\r\n"
    return (f"From: MAILER-DAEMON@docomo.ne.jp\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <c1@docomo.ne.jp>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n").encode() + text.encode("iso2022_jp")


def _cfg(tmp_path, relay="127.0.0.1:9", extra=""):
    return make_config(tmp_path, sender_toml(relay, OURS) + extra)


def _bounces(cfg, raw, *args, env=None):
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                           str(cfg.source), "--data-dir", str(cfg.data_dir), "bounces", *args], input=raw,
                          capture_output=True, cwd=REPO, timeout=60, env={**os.environ, **(env or {})})


def test_verp_round_trip():
    v = verp_address(OURS, "taro..yamada.@docomo.ne.jp")
    assert v == '"news+taro..yamada.=docomo.ne.jp"@mail.example.jp'
    assert verp_recipient(v, OURS) == "taro..yamada.@docomo.ne.jp"
    assert verp_recipient("news+a=b.jp@mail.example.jp", OURS) == "a@b.jp"
    assert verp_recipient("other+a=b.jp@mail.example.jp", OURS) is None
    assert verp_recipient("news+a=b.jp@evil.example", OURS) is None


def test_rfc3464_qmail_and_carrier_formats():
    rs, _ = parse_bounce(dsn(time.time()), envelope_from=OURS)
    by = {r.recipient: r for r in rs}
    gone = by["gone@docomo.ne.jp"]
    assert (gone.status, gone.reply_code, gone.smtp_phase, gone.remote_mta) == ("bounced", 550, "rcpt",
                                                                                 "mfsmax.docomo.ne.jp")
    assert gone.diagnostic == "550 Unknown user gone@docomo.ne.jp" and gone.found_by == "dsn"
    assert (by["full@au.com"].status, by["full@au.com"].dsn) == ("deferred", "4.2.2")
    rs, _ = parse_bounce(QMAIL, envelope_from=OURS)
    assert [(r.recipient, r.status, r.reply_code, r.found_by) for r in rs] == [("nobody@au.com", "bounced", 550,
                                                                                "flufl")]
    assert rs[0].diagnostic == "550 <nobody@au.com>: User unknown"
    rs, _ = parse_bounce(carrier_style(verp_address(OURS, "gone2@docomo.ne.jp")), envelope_from=OURS)
    assert [(r.recipient, r.status, r.reply_code, r.found_by) for r in rs] == [("gone2@docomo.ne.jp", "bounced",
                                                                                550, "verp")]


def test_a_bounce_mail_and_the_log_spell_the_message_id_alike(tmp_path):
    """The bounce's event and the Postfix log's event of the same message carry one Message-ID
    spelling (the store's: without angle brackets), as do the daemon's own attempts, so a
    message is followed by its id across the sources (the bounce and attempt events kept
    `<orig-1@mail.example.jp>` beside the log's `orig-1@mail.example.jp`)."""
    from pipeline.ingest.engine import ingest
    from pipeline.sender.bounces import process_bounces
    from pipeline.sender.events import attempt_event

    cfg = _cfg(tmp_path)
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 10 09:00:00 mx1 postfix/cleanup[1]: 1A2B3C4D01: message-id=<orig-1@mail.example.jp>\n"
        "Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: from=<news@mail.example.jp>, size=1200, nrcpt=1 (queue active)\n"
        "Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<gone@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25,"
        " delay=1, delays=0.1/0/0.5/0.4, dsn=5.0.0, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said:"
        " 550 Unknown user gone@docomo.ne.jp (in reply to RCPT TO command))\n")
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    assert [r.status for r in process_bounces(cfg, raw=dsn(time.time()))] == ["recorded"]
    ids = pipeline.connect(cfg.data_dir).execute(
        "SELECT DISTINCT mta, message_id FROM events WHERE recipient = 'gone@docomo.ne.jp' ORDER BY mta").fetchall()
    assert ids == [("mailhygiene", "orig-1@mail.example.jp"), ("postfix", "orig-1@mail.example.jp")]
    row = attempt_event(ts=0.0, host="h", job_id=1, row_id=1, attempt=1, message_id="<m1@mail.example.jp>",
                        sender=OURS, recipient="a@au.com", carrier="au", relay="127.0.0.1:25", status="sent",
                        reply_code=250, reply="ok", smtp_phase=None, reason="delivered", scope=None, hard=None,
                        queue_file="q")
    assert row["message_id"] == "m1@mail.example.jp"


@pytest.mark.slow
def test_cli_records_events_that_feed_the_rule(tmp_path):
    from pipeline.sender.events import attempt_event, to_table
    from pipeline.store.event_store import EventStore

    cfg = _cfg(tmp_path)
    yesterday = time.time() - 86400
    # the daemon sent the two returned messages to both (a bounce mail counts only when bound to
    # mail we sent: tests/test_bounce_binding.py)
    EventStore(cfg.data_dir).write(to_table([attempt_event(
        ts=when - 60, host="h", job_id=1, row_id=row, attempt=1, message_id=mid, sender=OURS, recipient=rcpt,
        carrier="other", relay="127.0.0.1:25", status="sent", reply_code=250, reply="ok", smtp_phase=None,
        reason="delivered", scope="none", hard=None, queue_file="q")
        for row, (when, mid, rcpt) in enumerate([(t, m, a) for t, m in ((yesterday, "<orig-1@mail.example.jp>"),
                                                                       (time.time(), "<orig-2@mail.example.jp>"))
                                                 for a in ("gone@docomo.ne.jp", "full@au.com")])]))
    r = _bounces(cfg, dsn(yesterday, mid="<d1@mx.example.jp>"))
    assert r.returncode == 0 and r.stdout.startswith(b"recorded: 2 recipient(s)"), r.stderr
    # today's bounce is of today's message (a bounce of yesterday's message again would be the
    # same failed delivery: one error)
    r = _bounces(cfg, dsn(time.time(), mid="<d2@mx.example.jp>", original="<orig-2@mail.example.jp>"))
    assert r.returncode == 0, r.stderr
    r = _bounces(cfg, QMAIL)
    assert r.returncode == 0 and b"nobody@au.com bounced user_unknown" in r.stdout
    env = {"ORIGINAL_RECIPIENT": verp_address(OURS, "gone2@docomo.ne.jp")}
    r = _bounces(cfg, carrier_style("undisclosed-recipients:;"), env=env)
    # no SMTP phase in such a bounce: whatever the classifier makes of docomo's bare "550 Unknown
    # user" (it is also docomo's DATA-time filter reply) is what the event says
    from pipeline.classify.classifier import classify
    expected = classify("bounced", "550 Unknown user", reply_code=550, carrier="docomo", mta="mailhygiene",
                        recipient_domain="docomo.ne.jp").reason
    assert r.returncode == 0 and f"gone2@docomo.ne.jp bounced {expected}".encode() in r.stdout, r.stdout
    r = _bounces(cfg, b"From: friend@example.jp\r\nSubject: hi\r\n\r\nhello\r\n")
    assert r.returncode == 0 and r.stdout.startswith(b"ignored: not a bounce")
    r = _bounces(cfg, b"\xff\xfe\x00garbage" * 1000)
    assert r.returncode == 0 and r.stdout.split(b":")[0] in (b"ignored", b"refused")
    again = _bounces(cfg, dsn(time.time(), mid="<d2@mx.example.jp>", original="<orig-2@mail.example.jp>"))  # the same bounce twice adds nothing
    assert again.returncode == 0

    con = pipeline.connect(cfg.data_dir)
    rows = con.execute("SELECT recipient, status, reason, smtp_phase, mta, source_file, message_id, "
                       "CAST(ts AS DATE) FROM events WHERE status <> 'sent' ORDER BY ts").fetchall()
    assert {r[4] for r in rows} == {"mailhygiene"} and all(r[5].startswith("mailhygiene-bounces:") for r in rows)
    gone = [r for r in rows if r[0] == "gone@docomo.ne.jp"]
    assert len(gone) == 2 and {r[1:4] for r in gone} == {("bounced", "user_unknown", "rcpt")}
    assert gone[0][6] == "orig-1@mail.example.jp" and gone[0][7] != gone[1][7]
    assert [r[1] for r in rows if r[0] == "full@au.com"] == ["deferred", "deferred"]
    run_rule(cfg, cfg.rule, cfg.guard, None, tz=cfg.timezone_name)
    # errors on two days (mailbox_full is a counted reason too); the others have one day only
    assert suppressed_addresses(cfg) == {"gone@docomo.ne.jp", "full@au.com"}


@pytest.mark.slow
def test_maildir_and_the_daemon_writes_verp(tmp_path):
    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay, "verp = true\n")
        enqueue(cfg, subject="s", body="b", addresses=["taro..yamada.@docomo.ne.jp", "hanako@au.com"])
        run_daemon(cfg, exit_when_done=True, max_seconds=20)
        froms = {r.rcpt_tos[0]: r.mail_from for r in srv.received}
    # (aiosmtpd reports the quoted local part without its quotes)
    assert froms == {"taro..yamada.@docomo.ne.jp": "news+taro..yamada.=docomo.ne.jp@mail.example.jp",
                     "hanako@au.com": "news+hanako=au.com@mail.example.jp"}
    md = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (md / d).mkdir(parents=True)
    (md / "new" / "1.M1.host").write_bytes(carrier_style(froms["hanako@au.com"]))
    (md / "new" / "2.M2.host").write_bytes(QMAIL)
    r = _bounces(cfg, b"", "--maildir", str(md))
    assert r.returncode == 0 and r.stdout.count(b"recorded:") == 2, r.stderr
    assert not list((md / "new").iterdir()) and len(list((md / "cur").iterdir())) == 2
    rows = pipeline.connect(cfg.data_dir).execute(
        "SELECT recipient, source_file FROM events WHERE source_file LIKE 'mailhygiene-bounces:%' "
        "ORDER BY recipient").fetchall()
    assert [r[0] for r in rows] == ["hanako@au.com", "nobody@au.com"]
    assert all("/cur/" in r[1] for r in rows)


def _report(to: str, blocks: str, text: str, subject="Undelivered Mail Returned to Sender") -> bytes:
    """A Postfix-shaped multipart/report: human text, then the delivery-status fields."""
    return f"""From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)
To: {to}
Date: Fri, 04 Dec 2026 10:00:00 +0900
Message-ID: <r1@mx.example.jp>
Subject: {subject}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

{text}
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp

{blocks}
--B--
""".replace("\n", "\r\n").encode()


def test_auto_replies_and_success_reports_to_the_verp_address_are_no_failures():
    """Everything sent to the envelope sender reaches the VERP address: a vacation reply (RFC 3834
    sends it there), a challenge-response mail, a success DSN (NOTIFY=SUCCESS, action relayed or
    delivered). None is a failure; each was recorded `bounced` for the VERP recipient (the
    vacation with "550 people attend" as its reply, the others with their first line)."""
    verp = verp_address(OURS, "taro@docomo.ne.jp")
    vacation = f"""From: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@docomo.ne.jp>
To: {verp}
Subject: =?UTF-8?B?6Ieq5YuV5b+c562U?= Re: hello
Auto-Submitted: auto-replied
X-Autoreply: yes
Date: Fri, 04 Dec 2026 10:00:00 +0900
Message-ID: <v1@docomo.ne.jp>
Content-Type: text/plain; charset=utf-8

I am out of the office until 10 Dec. 550 people attend the fair.
""".replace("\n", "\r\n").encode()
    challenge = f"""From: Spam Filter <confirm@filter.example.net>
To: {verp}
Subject: Please confirm your message
Date: Fri, 04 Dec 2026 10:00:00 +0900
Message-ID: <c1@filter.example.net>

Your mail to taro@docomo.ne.jp is held. Please click the link to confirm you are human.
""".replace("\n", "\r\n").encode()
    blocks = ("Final-Recipient: rfc822; taro@docomo.ne.jp\nOriginal-Recipient: rfc822;taro@docomo.ne.jp\n"
              "Action: {}\nStatus: 2.0.0\nRemote-MTA: dns; mfsmax.docomo.ne.jp\nDiagnostic-Code: smtp; 250 ok\n")
    text = "<taro@docomo.ne.jp>: delivery via mfsmax.docomo.ne.jp[203.138.181.112]:25: 250 ok\n"
    for name, raw in [("vacation", vacation), ("challenge", challenge),
                      *((a, _report(verp, blocks.format(a), text, "Successful Mail Delivery Report"))
                        for a in ("relayed", "delivered", "expanded"))]:
        for rcpt in (None, verp):
            rs, _ = parse_bounce(raw, envelope_from=OURS, envelope_recipient=rcpt)
            assert rs == [], (name, rs)
    # the same VERP address still names the recipient of a real carrier bounce
    rs, _ = parse_bounce(carrier_style(verp), envelope_from=OURS)
    assert [(r.recipient, r.status, r.found_by) for r in rs] == [("taro@docomo.ne.jp", "bounced", "verp")]


@pytest.mark.parametrize("ctype,charset", [("message/global-delivery-status", "utf-8"),
                                           ("message/delivery-status", "utf-8"),
                                           ("message/delivery-status", "cp932")])
def test_a_japanese_diagnostic_in_the_delivery_status_part_is_read_as_text(ctype, charset):
    """RFC 6533's message/global-delivery-status (8-bit UTF-8 fields) was parsed like a quoted
    mail and its recipients never seen: the failure was missed. The same Japanese reply in a plain
    message/delivery-status part (UTF-8 or Shift_JIS bytes, as Japanese MTAs write them) was kept
    as surrogate characters: '550 5.1.1 ' then U+FFFD-like mojibake in the stored diagnostic."""
    raw = _report(OURS, "Final-Recipient: rfc822; gone@au.com\nAction: failed\nStatus: 5.1.1\n"
                        "Remote-MTA: dns; lsean.ezweb.ne.jp\nDiagnostic-Code: smtp; 550 5.1.1 宛先が存在しません\n",
                  "<gone@au.com>: host lsean.ezweb.ne.jp[1.2.3.4] said: 550 5.1.1 (in reply to RCPT TO command)\n")
    raw = raw.replace(b"message/delivery-status", ctype.encode()).replace(
        "宛先が存在しません".encode(), "宛先が存在しません".encode(charset))
    rs, _ = parse_bounce(raw, envelope_from=OURS)
    assert [(r.recipient, r.status, r.dsn, r.reply_code, r.remote_mta, r.diagnostic) for r in rs] == [
        ("gone@au.com", "bounced", "5.1.1", 550, "lsean.ezweb.ne.jp", "550 5.1.1 宛先が存在しません")]


B_DOCOMO = "Final-Recipient: rfc822; {}\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 Unknown user\n"
EXIM_TEXT = """A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@docomo.ne.jp
    host mfsmax.docomo.ne.jp [203.138.181.112]
    SMTP error from remote mail server after {}:
    550 Unknown user
"""
SENDMAIL_TEXT = """   ----- The following addresses had permanent fatal errors -----
<gone@docomo.ne.jp>
    (reason: 550 Unknown user)

   ----- Transcript of session follows -----
... while talking to mfsmax.docomo.ne.jp.:
>>> MAIL From:<news@mail.example.jp> SIZE=1200
<<< 250 2.1.0 ok
>>> {}
<<< 550 Unknown user
550 5.1.1 <gone@docomo.ne.jp>... User unknown
"""


@pytest.mark.parametrize("text,phase", [
    (EXIM_TEXT.format("RCPT TO:<gone@docomo.ne.jp>"), "rcpt"), (EXIM_TEXT.format("end of data"), "end_of_data"),
    (SENDMAIL_TEXT.format("RCPT To:<gone@docomo.ne.jp>"), "rcpt"), (SENDMAIL_TEXT.format("DATA"), "data"),
    (SENDMAIL_TEXT.format("."), "end_of_data")])
def test_exim_and_sendmail_dsns_give_the_smtp_phase(text, phase):
    """docomo's bare "550 Unknown user" is a dead address at RCPT TO and the handset's filter after
    DATA: the phase decides. Exim's and sendmail's DSNs carry no phase in Diagnostic-Code; their
    text names it ("after RCPT TO:", sendmail's ">>> DATA" transcript) and was not read: phase
    None, so a dead address refused at RCPT TO came out `filtered` (not counted)."""
    from pipeline.classify.classifier import classify

    rs, _ = parse_bounce(_report(OURS, B_DOCOMO.format("gone@docomo.ne.jp"), text), envelope_from=OURS)
    assert [(r.recipient, r.smtp_phase) for r in rs] == [("gone@docomo.ne.jp", phase)]
    reason = classify("bounced", rs[0].diagnostic, dsn=rs[0].dsn, reply_code=550, smtp_phase=phase,
                      carrier="docomo", mta="mailhygiene", recipient_domain="docomo.ne.jp").reason
    assert (reason == "user_unknown") == (phase == "rcpt"), reason


def test_each_recipient_of_a_dsn_gets_the_phase_named_next_to_it():
    """Postfix's DSN for two docomo recipients, one refused at RCPT TO (dead), one after DATA (the
    handset's filter): both got the first phase of the whole text, rcpt, and the filtered one was
    counted user_unknown."""
    text = ("<a@docomo.ne.jp>: host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user\n"
            "    a@docomo.ne.jp (in reply to RCPT TO command)\n\n"
            "<b@docomo.ne.jp>: host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user (in\n"
            "    reply to end of DATA command)\n")
    blocks = "\n".join(B_DOCOMO.format(a) for a in ("a@docomo.ne.jp", "b@docomo.ne.jp"))
    rs, _ = parse_bounce(_report(OURS, blocks, text), envelope_from=OURS)
    assert [(r.recipient, r.smtp_phase) for r in rs] == [("a@docomo.ne.jp", "rcpt"), ("b@docomo.ne.jp", "end_of_data")]


def test_a_status_field_with_a_comment_gives_its_code():
    """RFC 3464's Status is a structured field: `Status: 5.2.2 (mailbox full)` (Exchange and
    others write the comment). The comment went into the event's dsn, which the classifier then
    could not read: 5.1.1 with a comment came out `undefined`, 5.2.2 `user_unknown` (hard)."""
    from pipeline.classify.classifier import classify

    blocks = ("Final-Recipient: RFC822; <Gone@AU.com>\nAction: Failed\nStatus: 5.1.1 (unknown user)\n"
              "Diagnostic-Code: X-Unix; unknown\n\n"
              "Final-Recipient: rfc822; full@au.com\nAction: failed\nStatus: 5.2.2 (mailbox full)\n"
              "Diagnostic-Code: X-Unix; Mailbox unavailable\n")
    rs, _ = parse_bounce(_report(OURS, blocks, "failed\n"), envelope_from=OURS)
    assert [(r.recipient, r.status, r.dsn) for r in rs] == [("gone@au.com", "bounced", "5.1.1"),
                                                             ("full@au.com", "bounced", "5.2.2")]
    assert [classify("bounced", r.diagnostic, dsn=r.dsn, carrier="au", mta="mailhygiene",
                     recipient_domain="au.com").reason for r in rs] == ["user_unknown", "mailbox_full"]


def test_the_bounce_of_a_message_we_never_sent_is_ignored(tmp_path):
    """Backscatter: someone sent spam with our bounce address as envelope sender, and a DSN for it
    arrives. Its returned headers are not ours (From another domain), nor is a bounce of a bounce
    (the returned mail is itself a DSN from a mailer daemon). Each was recorded as a failure of
    whoever it names (a stranger, or someone's MAILER-DAEMON); ours still is."""
    from pipeline.sender.bounces import process_bounces

    block = "Final-Recipient: rfc822; stranger@docomo.ne.jp\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 unknown\n"
    text = "<stranger@docomo.ne.jp>: host mfsmax.docomo.ne.jp said: 550 5.1.1 unknown (in reply to RCPT TO command)\n"

    def returned(headers: str) -> bytes:
        return _report(OURS, block, text).replace(b"--B--", ("--B\nContent-Type: text/rfc822-headers\n\n" + headers +
                                                             "\n--B--").replace("\n", "\r\n").encode())
    spam = returned("Return-Path: <news@mail.example.jp>\nFrom: Cheap Pills <sales@pills.example.ru>\n"
                    "Message-ID: <spam1@pills.example.ru>\nSubject: pills\n")
    spam = spam.replace(b"Return-Path: <news@mail.example.jp>\r\n", b"")
    double = returned("From: MAILER-DAEMON@mx.other.example (Mail Delivery System)\n"
                      "Message-ID: <dsn9@mx.other.example>\nSubject: Undelivered Mail Returned to Sender\n"
                      "Content-Type: multipart/report; report-type=delivery-status;\n boundary=\"X\"\n")
    ours = returned(f"From: {OURS}\nMessage-ID: <orig-7@mail.example.jp>\nSubject: hello\n")
    for raw in (spam, double):
        assert parse_bounce(raw, envelope_from=OURS)[0] == []
    rs, _ = parse_bounce(ours, envelope_from=OURS)
    assert [(r.recipient, r.status) for r in rs] == [("stranger@docomo.ne.jp", "bounced")]
    cfg = _cfg(tmp_path)
    res = process_bounces(cfg, raw=spam)
    assert [(r.status, r.reason.split(" (")[0]) for r in res] == [("ignored", "the bounce of a message we did not send")]


def test_a_report_without_its_per_message_block_loses_no_recipient():
    """The first block of a delivery-status part was dropped as the per-message one (Reporting-MTA)
    whatever it held: a report that omits it lost its first recipient (1 of 2 found)."""
    blocks = "\n".join(B_DOCOMO.format(a) for a in ("a@docomo.ne.jp", "b@docomo.ne.jp"))
    raw = _report(OURS, blocks, "failed\n").replace(b"Reporting-MTA: dns; mx.example.jp\r\n\r\n", b"")
    rs, _ = parse_bounce(raw, envelope_from=OURS)
    assert [(r.recipient, r.status) for r in rs] == [("a@docomo.ne.jp", "bounced"), ("b@docomo.ne.jp", "bounced")]


def test_each_qmail_recipient_gets_its_own_reason():
    """qmail's QSBMF names each recipient with its own paragraph. One refused by the remote host
    (an SMTP reply) and one refused by qmail itself ("Sorry, no mailbox here by that name.
    (#5.1.1)", no SMTP reply): the second was given the first's reply "550 Unknown user
    a@docomo.ne.jp" and its phase (rcpt), its own text and 5.1.1 never read."""
    raw = b"""From: MAILER-DAEMON@mx.example.jp
To: news@mail.example.jp
Subject: failure notice
Date: Fri, 04 Dec 2026 10:00:00 +0900
Message-ID: <q2@mx.example.jp>

Hi. This is the qmail-send program at mx.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<a@docomo.ne.jp>:
203.138.181.112 does not like recipient.
Remote host said: 550 Unknown user a@docomo.ne.jp
Giving up on 203.138.181.112.

<b@mail.example.jp>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: news@mail.example.jp
Subject: hello
""".replace(b"\n", b"\r\n")
    rs, _ = parse_bounce(raw, envelope_from=OURS)
    by = {r.recipient: (r.dsn, r.reply_code, r.smtp_phase, r.diagnostic) for r in rs}
    assert by == {"a@docomo.ne.jp": (None, 550, "rcpt", "550 Unknown user a@docomo.ne.jp"),
                  "b@mail.example.jp": ("5.1.1", None, None,
                                        "<b@mail.example.jp>: Sorry, no mailbox here by that name. (#5.1.1)")}


def test_a_dsn_block_without_diagnostic_code_takes_its_own_recipients_reply():
    """Diagnostic-Code is optional (RFC 3464). For two recipients without it, each was given the
    first 500 characters of the text, both replies: a@ (550 5.1.1 User unknown) came out
    mailbox_full, and b@ carried a@'s text. Each now gets the reply next to its address."""
    from pipeline.classify.classifier import classify

    text = ("<a@au.com>: host lsean.ezweb.ne.jp[1.2.3.4] said: 550 5.1.1 <a@au.com>: User unknown (in reply\n"
            "    to RCPT TO command)\n\n"
            "<b@au.com>: host lsean.ezweb.ne.jp[1.2.3.4] said: 452 4.2.2 Mailbox full (in reply to RCPT TO\n"
            "    command)\n")
    blocks = ("Final-Recipient: rfc822; a@au.com\nAction: failed\nStatus: 5.1.1\n\n"
              "Final-Recipient: rfc822; b@au.com\nAction: delayed\nStatus: 4.2.2\n")
    rs, _ = parse_bounce(_report(OURS, blocks, text), envelope_from=OURS)
    assert [(r.recipient, r.status, r.reply_code, r.smtp_phase, r.diagnostic[:30]) for r in rs] == [
        ("a@au.com", "bounced", 550, "rcpt", "550 5.1.1 <a@au.com>: User unk"),
        ("b@au.com", "deferred", 452, "rcpt", "452 4.2.2 Mailbox full (in rep")]
    assert [classify(r.status, r.diagnostic, dsn=r.dsn, reply_code=r.reply_code, smtp_phase=r.smtp_phase,
                     carrier="au", mta="mailhygiene", recipient_domain="au.com").reason for r in rs] == [
        "user_unknown", "mailbox_full"]
