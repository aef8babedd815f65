"""A real sendmail against carrier look-alike servers: what sendmail logs for a refusal at RCPT TO,
at MAIL FROM and after DATA, that the parser derives the SMTP phase from it, and the closed loop
(log -> ingest -> suppress) suppressing only the dead addresses.

sendmail logs no "in reply to"; its `stat=` and `dsn=` are its own mapping of the reply code and
the command it answered. This test records that mapping from Debian's sendmail 8.17 (facts the
parser's smtp_phase_of() and the classifier's SYNTHESISED table rely on) and fails if a sendmail
answers otherwise.

The sendmail is never installed (Debian's sendmail-bin conflicts with postfix): .ci/fetch_sendmail.sh
unpacks its .debs into a private prefix. Each run gets its own .cf (built with m4 from the unpacked
sendmail-cf), queue, hosts/resolv.conf and syslog socket: sendmail runs in a private mount and UTS
namespace (unshare) where /dev is a directory of ours holding null/zero/random/urandom and `log`,
a datagram socket this test reads; the machine's /dev/log and DNS are never used. It relays every
message to one aiosmtpd server on 127.0.0.1 (SMART_HOST) that answers per recipient like
docomo, au, SoftBank, Yahoo and a policy-refusing server. Skipped, with the reason, without root,
unshare, m4 or the unpacked sendmail.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.ingest.parsers.sendmail import smtp_phase_of, split_to_line
from pipeline.sender.testing import RecordingServer

from fixtures import SENDMAIL_MARKS, SENDMAIL_SENDER, PrivateSendmail

pytestmark = [pytest.mark.slow, *SENDMAIL_MARKS]

SENDER = SENDMAIL_SENDER

# address -> (command the server refuses at, its reply, dead address?)
PLAN: dict[str, tuple[str | None, str | None, bool]] = {
    "gone@docomo.ne.jp": ("rcpt", "550 Unknown user {a}", True),
    "filtered@docomo.ne.jp": ("data", "550 Unknown user {a}", False),
    "full@docomo.ne.jp": ("rcpt", "552 Too much mail data {a}", True),
    "gone@au.com": ("rcpt", "550 <{a}>: User unknown", True),
    "filtered@au.com": ("data", "550 : User unknown", False),
    "gone@i.softbank.jp": ("rcpt", "550 Invalid recipient: <{a}>", True),
    "nosuch@yahoo.com": ("data", "554 delivery error: dd This user doesn't have a yahoo.com account ({a}) [0] - mta1061.mail.ne1.yahoo.com", True),
    "denied@example.co.jp": ("rcpt", "554 5.7.1 <{a}>: Recipient address rejected: Access denied", False),
    "region@example.co.jp": ("rcpt", "550 5.7.1 <{a}>: Recipient address rejected: Mail from your region is not accepted", False),
    "spam@example.co.jp": ("data", "550 5.7.1 Message rejected as spam", False),
    "jp@example.ne.jp": ("rcpt", "550 指定されたメールアドレスは存在しません", True),
    "busy@example.co.jp": ("rcpt", "450 4.7.1 <{a}>: Recipient address rejected: Try again later", False),
    "live@docomo.ne.jp": (None, None, False),
    "live@au.com": (None, None, False),
}
DEAD = {a for a, (_, _, dead) in PLAN.items() if dead}

# what sendmail 8.17 logs for each refusal: (stat prefix, dsn) -- its own mapping, whatever the remote said
EXPECTED_STAT_DSN = {
    "gone@docomo.ne.jp": ("User unknown", "5.1.1"),
    "filtered@docomo.ne.jp": ("Service unavailable", "5.2.0"),
    "full@docomo.ne.jp": ("Service unavailable", "5.2.2"),
    "gone@au.com": ("User unknown", "5.1.1"),
    "filtered@au.com": ("Service unavailable", "5.2.0"),
    "gone@i.softbank.jp": ("User unknown", "5.1.1"),
    "nosuch@yahoo.com": ("Service unavailable", "5.0.0"),
    "denied@example.co.jp": ("Service unavailable", "5.0.0"),
    "region@example.co.jp": ("User unknown", "5.1.1"),   # a policy 550 at RCPT is "User unknown" to sendmail
    "spam@example.co.jp": ("Service unavailable", "5.2.0"),
    "jp@example.ne.jp": ("User unknown", "5.1.1"),
    "busy@example.co.jp": ("Deferred", "4.2.0"),
    "live@docomo.ne.jp": ("Sent", "2.0.0"),
    "live@au.com": ("Sent", "2.0.0"),
}
EXPECTED_PHASE = {
    "gone@docomo.ne.jp": "rcpt", "filtered@docomo.ne.jp": "end_of_data", "full@docomo.ne.jp": None,
    "gone@au.com": "rcpt", "filtered@au.com": "end_of_data", "gone@i.softbank.jp": "rcpt",
    "nosuch@yahoo.com": None, "denied@example.co.jp": None, "region@example.co.jp": "rcpt",
    "spam@example.co.jp": "end_of_data", "jp@example.ne.jp": "rcpt", "busy@example.co.jp": None,
}

def carrier_server() -> RecordingServer:
    def reply(command):
        def answer(addr):
            at, text, _ = PLAN.get(addr, (None, None, False))
            return text.format(a=addr) if at == command else None
        return answer
    return RecordingServer(rcpt_reply=reply("rcpt"), data_reply=reply("data")).start()


def to_lines(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in text.splitlines():
        m = re.search(r": ([0-9A-Za-z]{8,20}): (to=.*)$", line)
        if m:
            fields = split_to_line(m.group(2))
            if fields and fields["to"].strip("<>") in PLAN:
                out[fields["to"].strip("<>")] = fields
    return out


def redate(text: str, days: int) -> str:
    year = datetime.now().year
    out = []
    for line in text.splitlines(keepends=True):
        t = datetime.strptime(f"{year} {line[:15]}", "%Y %b %d %H:%M:%S") + timedelta(days=days)
        out.append(t.strftime("%b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S") + line[15:])
    return "".join(out)


@pytest.fixture
def sendmail_loop():
    server = carrier_server()
    root = Path(tempfile.mkdtemp(prefix="mh-sendmail-", dir="/tmp"))
    os.chmod(root, 0o755)
    sm = PrivateSendmail(root, server.port)
    try:
        yield sm, server
    finally:
        sm.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def campaign(sm: PrivateSendmail) -> None:
    for address in PLAN:
        r = sm.send(address)
        assert r.returncode in (0, 67, 69, 75), (address, r.returncode, r.stderr[-2000:])


@pytest.mark.slow
def test_what_a_real_sendmail_logs_and_the_phase_derived_from_it(sendmail_loop):
    sm, server = sendmail_loop
    campaign(sm)
    text = sm.syslog_text()
    lines = to_lines(text)
    assert set(lines) == set(PLAN), text[-3000:]
    for address, (stat_prefix, dsn) in EXPECTED_STAT_DSN.items():
        fields = lines[address]
        assert fields["stat"].startswith(stat_prefix) and fields.get("dsn") == dsn, (address, fields)
    for address, phase in EXPECTED_PHASE.items():
        fields = lines[address]
        reply = fields.get("reply", "")
        code = int(reply[:3]) if reply[:3].isdigit() else None
        assert smtp_phase_of(fields["stat"], fields.get("dsn"), code) == phase, (address, fields)
    # sendmail escapes the bytes of a Japanese reply as octal: the classifier reads them back
    assert "\\346\\214\\207" in lines["jp@example.ne.jp"]["reply"]
    # the aiosmtpd server saw exactly what the plan says: refused at RCPT never reached DATA
    accepted = set(server.addresses())
    assert {"live@docomo.ne.jp", "live@au.com"} <= accepted
    assert not accepted & {a for a, (at, _, _) in PLAN.items() if at == "rcpt"}


@pytest.mark.slow
def test_closed_loop_through_sendmail_suppresses_only_dead_addresses(sendmail_loop, tmp_path):
    sm, _ = sendmail_loop
    campaign(sm)
    day1 = sm.syslog_text()
    n1 = len(day1.splitlines())
    campaign(sm)
    day2 = "\n".join(sm.syslog_text().splitlines()[n1:]) + "\n"
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "maillog.day1").write_text(redate(day1, -1), encoding="utf-8")
    (logs / "maillog.day2").write_text(day2, encoding="utf-8")
    toml = tmp_path / "mailhygiene.toml"
    toml.write_text('timezone = "UTC"\n[guard]\nmax_new_fraction = 0.9\n', encoding="utf-8")
    data = tmp_path / "data"
    base = ["--config", str(toml), "--data-dir", str(data)]
    yesterday = datetime.now() - timedelta(days=1)
    runner = CliRunner()
    for args in (["ingest", "--format", "sendmail", "--year", str(yesterday.year), str(logs / "maillog.day1")],
                 ["ingest", "--format", "sendmail", "--year", str(datetime.now().year), str(logs / "maillog.day2")],
                 ["suppress", "--as-of", datetime.now().strftime("%Y-%m-%d")]):
        r = runner.invoke(cli, base + args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
    cfg = load_config(toml, data_dir=data, timezone="UTC")

    import duckdb
    rows = duckdb.sql(f"select recipient, smtp_phase, reason, scope from read_parquet('{data}/events/**/*.parquet') "
                      "where recipient <> 'news@mail.example.jp'").fetchall()
    got = {}
    for recipient, phase, reason, scope in rows:
        got.setdefault(recipient, set()).add((phase, reason, scope))
    assert got["filtered@docomo.ne.jp"] == {("end_of_data", "filtered", "sender")}
    assert got["filtered@au.com"] == {("end_of_data", "filtered", "sender")}
    assert got["gone@docomo.ne.jp"] == {("rcpt", "user_unknown", "recipient")}
    assert got["nosuch@yahoo.com"] == {(None, "user_unknown", "recipient")}
    assert got["denied@example.co.jp"] == {(None, "policy", "sender")}
    assert got["region@example.co.jp"] == {("rcpt", "policy", "sender")}
    assert got["jp@example.ne.jp"] == {("rcpt", "user_unknown", "recipient")}
    assert got["full@docomo.ne.jp"] == {(None, "mailbox_full", "recipient")}

    from pipeline.suppression.store import suppressed_addresses
    assert suppressed_addresses(cfg) == DEAD
