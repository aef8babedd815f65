"""A real sendmail against a server that advertises ENHANCEDSTATUSCODES, as every mainstream MX does
(Postfix, Gmail, Microsoft, Yahoo): what sendmail logs then, and the classifier's verdict on it.

tests/test_sendmail_real.py records sendmail against aiosmtpd, which does not advertise
ENHANCEDSTATUSCODES: sendmail then writes its own mapping of the reply code and command in `dsn=`.
A server that advertises it gets its own enhanced code copied into `dsn=` (sendmail's usersmtp.c
reply(): the code is taken only when MCIF_ENHSTAT is set), so the same refusal at RCPT TO logs
`dsn=5.7.1, stat=User unknown` instead of `dsn=5.1.1`. The classifier must read both shapes alike:
sendmail's `dsn=` may be either, and only the reply's own words and code are the remote's.

Reuses the private sendmail of test_sendmail_real.py (its own config, queue, syslog socket and mount
namespace; skipped with the same reasons) against a local aiosmtpd server whose EHLO adds
ENHANCEDSTATUSCODES. The log lines go through the real sendmail parser, then classify().
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from pipeline.classify.classifier import classify
from pipeline.core.config import RuleSettings
from pipeline.ingest.parsers import REGISTRY, ParseContext
from pipeline.sender.testing import free_port

from fixtures import SENDMAIL_MARKS, PrivateSendmail

pytestmark = [pytest.mark.slow, *SENDMAIL_MARKS]

COUNTED = frozenset(RuleSettings().counted_reasons)

# address -> (command refused at, reply, (stat prefix, dsn) sendmail logs, expected reason)
PLAN: dict[str, tuple[str | None, str | None, tuple[str, str], str]] = {
    "gone@example.co.jp": ("rcpt", "550 5.1.1 <{a}>: Recipient address rejected: User unknown in local recipient table",
                           ("User unknown", "5.1.1"), "user_unknown"),
    "denied@example.co.jp": ("rcpt", "550 5.7.1 <{a}>: Recipient address rejected: Access denied",
                             ("User unknown", "5.7.1"), "policy"),
    "denied554@example.co.jp": ("rcpt", "554 5.7.1 <{a}>: Recipient address rejected: Access denied",
                                ("Service unavailable", "5.7.1"), "policy"),
    "region@example.co.jp": ("rcpt", "550 <{a}>: Recipient address rejected: Mail from your region is not accepted",
                             ("User unknown", "5.1.1"), "policy"),
    "disabled@example.co.jp": ("rcpt", "550 5.2.1 <{a}>: Recipient address rejected: Account disabled",
                               ("User unknown", "5.2.1"), "mailbox_disabled"),
    "full@example.co.jp": ("rcpt", "552 5.2.2 <{a}>: Recipient address rejected: Mailbox full",
                           ("Service unavailable", "5.2.2"), "mailbox_full"),
    "nowords@example.co.jp": ("rcpt", "550 Rejected", ("User unknown", "5.1.1"), "undefined"),
    "malformed@example.co.jp": ("rcpt", "553 5.1.3 <{a}>... Invalid address", ("User unknown", "5.1.3"), "syntax"),
    "late@example.co.jp": ("data", "550 5.1.1 <{a}>: User unknown", ("Service unavailable", "5.1.1"), "user_unknown"),
    "spam@example.co.jp": ("data", "550 5.7.1 Message rejected as spam", ("Service unavailable", "5.7.1"), "spam"),
    "filtered@docomo.ne.jp": ("data", "550 Unknown user {a}", ("Service unavailable", "5.2.0"), "filtered"),
    "grey@example.co.jp": ("rcpt", "450 4.7.1 <{a}>: Recipient address rejected: Greylisted, see https://grey.example/",
                           ("Deferred", "4.7.1"), "rate_limited"),
    "live@example.co.jp": (None, None, ("Sent", "2.0.0"), "delivered"),
}
DEAD = {a for a, (_, _, _, reason) in PLAN.items() if reason in COUNTED}


class EnhancedServer:
    """aiosmtpd on loopback that advertises ENHANCEDSTATUSCODES and refuses per PLAN."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        at, reply, _, _ = PLAN.get(address.lower(), (None, None, None, None))
        if at == "rcpt":
            return reply.format(a=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            at, reply, _, _ = PLAN.get(address.lower(), (None, None, None, None))
            if at == "data":
                return reply.format(a=address)
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def enhanced_sendmail():
    port = free_port()
    controller = Controller(EnhancedServer(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    root = Path(tempfile.mkdtemp(prefix="mh-sendmail-enh-", dir="/tmp"))
    os.chmod(root, 0o755)
    sm = PrivateSendmail(root, port)
    try:
        yield sm
    finally:
        sm.close()
        controller.stop()
        shutil.rmtree(root, ignore_errors=True)


def events_of(text: str) -> dict[str, dict]:
    ctx = ParseContext(tz=ZoneInfo("UTC"), source_file="sendmail-enhanced", year=date.today().year,
                       mtime=None, default_host="mx.closedloop.test")
    events: list[dict] = []
    parser = REGISTRY["sendmail"](ctx, events.append)
    for i, line in enumerate(text.splitlines()):
        parser.feed(line, i)
    return {e["recipient"]: e for e in events if e["recipient"] in PLAN}


def test_sendmail_copies_the_remotes_enhanced_code_and_the_verdicts_hold(enhanced_sendmail):
    sm = enhanced_sendmail
    for address in PLAN:
        r = sm.send(address)
        assert r.returncode in (0, 67, 69, 75), (address, r.returncode, r.stderr[-2000:])
    text = sm.syslog_text()
    logged = {}
    for line in text.splitlines():
        m = re.search(r"to=<?([^>,\s]+)>?, .*?dsn=([\d.]+), .*?stat=(.*)$", line)
        if m and m.group(1) in PLAN:
            logged[m.group(1)] = (m.group(3), m.group(2))
    assert set(logged) == set(PLAN), text[-3000:]
    for address, (_, _, (stat, dsn), _) in PLAN.items():
        assert logged[address][0].startswith(stat) and logged[address][1] == dsn, (address, logged[address])

    events = events_of(text)
    assert set(events) == set(PLAN), sorted(events)
    verdicts = {}
    for address, e in events.items():
        c = classify(status=e["status"], diagnostic=e["diagnostic"], dsn=e["dsn"], reply_code=e["reply_code"],
                     smtp_phase=e["smtp_phase"], mta="sendmail", recipient_domain=e["recipient_domain"],
                     relay=e["relay"], day=date.today())
        verdicts[address] = c.reason
    assert verdicts == {a: reason for a, (_, _, _, reason) in PLAN.items()}
    assert {a for a, reason in verdicts.items() if reason in COUNTED} == DEAD
