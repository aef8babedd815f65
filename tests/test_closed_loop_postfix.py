"""The closed loop through a real Postfix: send -> Postfix -> "carriers" -> Postfix log -> ingest ->
suppress -> the next campaign skips exactly the dead addresses.

A private Postfix instance (own config directory, queue and data directories in a temp dir,
smtpd on an unprivileged loopback port, `maillog_file` logging through postlogd) relays with
`transport_maps` to three aiosmtpd servers standing in for docomo, au and SoftBank. They answer
dead addresses the way each carrier does at RCPT TO, "busy" addresses with 421 throttling, the
handset reception filter the way docomo and au do after DATA (`550 Unknown user` / `550 : User
unknown`), and policy refusals at RCPT TO (`554 5.7.1 ... Recipient address rejected: Access
denied`, a Japanese-worded one): only the dead addresses may be suppressed.

Two days are simulated: Postfix writes real-time syslog lines, so the first campaign's lines are
re-dated one day earlier before `mailhygiene ingest` reads them (the rule needs errors on two
different days). Skipped, with the reason, where Postfix is not installed or we are not root
(a Postfix master must start as root); `.ci/run` installs Debian's postfix so CI runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.store.records import normalise_address
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.testing import RecordingServer

from fixtures import DAEMON_DIR, POSTFIX, POSTFIX_TEST_DOMAINS, PrivatePostfix

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(POSTFIX is None or not os.path.exists(f"{DAEMON_DIR}/master"),
                       reason="Postfix is not installed (apt-get install postfix; .ci/run does this in CI)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must be started as root"),
]

LIVE = {
    "docomo": ["hanako@docomo.ne.jp", "taro..yamada.@docomo.ne.jp", "ichiro@docomo.ne.jp", "jiro@docomo.ne.jp"],
    "au": ["saburo@au.com", "shiro@au.com", "goro@au.com"],
    "softbank": ["rokuro@i.softbank.jp", "nanami@i.softbank.jp", "hachi@i.softbank.jp"],
}
DEAD = {
    "docomo": ["gone@docomo.ne.jp", "old..user.@docomo.ne.jp"],
    "au": ["gone@au.com"],
    "softbank": ["gone@i.softbank.jp"],
}
BUSY = {"docomo": ["busy@docomo.ne.jp"], "au": ["busy@au.com"], "softbank": ["busy@i.softbank.jp"]}
# alive, but refused: the handset's reception filter after DATA, and policy refusals at RCPT TO
FILTERED = {"docomo": ["filtered@docomo.ne.jp"], "au": ["filtered@au.com"]}
POLICY = {"au": ["denied@au.com"], "softbank": ["region@i.softbank.jp"]}
DOMAINS = POSTFIX_TEST_DOMAINS
ALL = [a for group in (LIVE, DEAD, BUSY, FILTERED, POLICY) for addrs in group.values() for a in addrs]
DEAD_SET = {a for addrs in DEAD.values() for a in addrs}
BUSY_SET = {a for addrs in BUSY.values() for a in addrs}
FILTERED_SET = {a for addrs in FILTERED.values() for a in addrs}
POLICY_SET = {a for addrs in POLICY.values() for a in addrs}


def carrier_reply(carrier):
    def reply(addr):
        if addr in BUSY_SET:
            return "421 4.7.0 Too many connections, try again later"
        if addr in DEAD_SET:
            return {"docomo": f"550 Unknown user {addr}",
                    "au": f"550 <{addr}>: User unknown",
                    "softbank": f"550 Invalid recipient: <{addr}>"}[carrier]
        if addr in POLICY_SET:
            return {"au": f"554 5.7.1 <{addr}>: Recipient address rejected: Access denied",
                    "softbank": f"550 5.7.1 <{addr}>: Recipient address rejected: Mail from your region is not accepted"}[carrier]
        return None
    return reply


def carrier_data_reply(carrier):
    def reply(addr):
        if addr in FILTERED_SET:  # the handset refuses our domain after DATA (carriers.md)
            return {"docomo": f"550 Unknown user {addr}", "au": "550 : User unknown"}[carrier]
        return None
    return reply


_TO = re.compile(r'to=<([^>]*)>.*?status=(\w+)')


def statuses(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in _TO.finditer(text):
        out.setdefault(normalise_address(m.group(1)), set()).add(m.group(2))
    return out


def wait_settled(pf: PrivatePostfix, offset: int, timeout: float = 60) -> None:
    """Every address has its final status (sent/bounced) in the log after `offset`, and every busy
    address at least one deferral."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = statuses(pf.log_text()[offset:])
        if all(("deferred" in st.get(a, ())) if a in BUSY_SET else (st.get(a, set()) & {"sent", "bounced"})
               for a in ALL):
            return
        time.sleep(0.2)
    raise AssertionError("Postfix did not finish the campaign in time:\n" + pf.log_text()[-4000:])


def redate(text: str, days: int) -> str:
    """Shift the syslog timestamps ("Nov 28 12:35:09") of every line by `days`."""
    year = datetime.now().year
    out = []
    for line in text.splitlines(keepends=True):
        stamp = line[:15]
        t = datetime.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S") + timedelta(days=days)
        out.append(t.strftime("%b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S") + line[15:])
    return "".join(out)


def run_cli(args):
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def campaign(cfg, subject):
    report = enqueue(cfg, subject=subject, body="いつもありがとうございます。", addresses=ALL)
    stats = run_daemon(cfg, exit_when_done=True, max_seconds=60)
    return report, stats


@pytest.mark.slow
def test_closed_loop_through_postfix():
    carriers = {c: RecordingServer(rcpt_reply=carrier_reply(c), data_reply=carrier_data_reply(c)).start()
                for c in DOMAINS}
    root = Path(tempfile.mkdtemp(prefix="mh-postfix-", dir="/tmp"))
    os.chmod(root, 0o755)
    pf = PrivatePostfix(root, carriers)
    try:
        pf.start()
        toml = root / "mailhygiene.toml"
        toml.write_text(f"""
timezone = "UTC"
[sender]
from_address = "news@mail.example.jp"
from_name = "配信センター"
default_relay = "127.0.0.1:{pf.port}"
default_rate = {{count = 50, interval = 1.0}}
[guard]
# A 17-address list with 5 dead ones: far above the 5 % a real list should show.
max_new_fraction = 0.5
""", encoding="utf-8")
        data = root / "mh-data"
        cfg = load_config(toml, data_dir=data, timezone="UTC")
        base = ["--config", str(toml), "--data-dir", str(data)]

        # day 1 and day 2: the same list, through Postfix to the carriers
        _, day1 = campaign(cfg, "1日目のお知らせ")
        assert day1.sent == len(ALL)          # Postfix accepted everything; the carriers decide
        wait_settled(pf, 0)
        off1 = len(pf.log_text())
        _, day2 = campaign(cfg, "2日目のお知らせ")
        wait_settled(pf, off1)
        text = pf.log_text()
        yesterday = datetime.now() - timedelta(days=1)
        logs = root / "logs"
        logs.mkdir()
        (logs / "maillog.day1").write_text(redate(text[:off1], -1))
        (logs / "maillog.day2").write_text(text[off1:])
        assert "(in reply to RCPT TO command)" in text and "421 4.7.0" in text
        assert "(in reply to end of DATA command)" in text

        run_cli(base + ["ingest", "--year", str(yesterday.year), str(logs / "maillog.day1")])
        run_cli(base + ["ingest", "--year", str(datetime.now().year), str(logs / "maillog.day2")])
        out = run_cli(base + ["suppress", "--as-of", datetime.now().strftime("%Y-%m-%d")])

        from pipeline.suppression.store import suppressed_addresses
        # the dead ones: not the throttled, not the filtered (after DATA), not the policy refusals
        assert suppressed_addresses(cfg) == DEAD_SET, out

        # day 3: the list is cleaned at enqueue; the carriers never hear about the dead addresses
        seen_before = {c: len(s.rcpt_attempts) for c, s in carriers.items()}
        off3 = len(pf.log_text())
        report, day3 = campaign(cfg, "3日目のお知らせ")
        assert (report.queued, report.suppressed) == (len(ALL) - len(DEAD_SET), len(DEAD_SET))
        st = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = statuses(pf.log_text()[off3:])
            if all("sent" in st.get(a, ()) for addrs in LIVE.values() for a in addrs):
                break
            time.sleep(0.2)
        contacted = {a for c, s in carriers.items() for _, a in s.rcpt_attempts[seen_before[c]:]}
        assert not contacted & DEAD_SET
        assert {a for addrs in LIVE.values() for a in addrs} | FILTERED_SET | POLICY_SET <= contacted
        assert not set(st) & DEAD_SET
    finally:
        pf.stop()
        for s in carriers.values():
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
