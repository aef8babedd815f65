"""The daemon against real SMTP servers on loopback (aiosmtpd), one per simulated carrier/relay.

Each server records what it received and when; the assertions are about what the carriers saw.
Small intervals (count per 0.5-1 s) keep the whole file to a few seconds.
"""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.suppression import store as suppression
from pipeline.sender.compose import decode_message
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.core.config import load_config
from pipeline.sender.testing import RecordingServer, max_in_window

from fixtures import make_config, sender_toml


def make_cfg(tmp_path, relay, extra=""):
    return make_config(tmp_path, sender_toml(relay) + f"""default_rate = {{count = 1000, interval = 1.0}}
backoff_base = 0.2
backoff_max = 0.4
timeout = 5
{extra}
""")


def rows_by_address(cfg):
    return {r["address"]: r for r in Queue.for_config(cfg).rows()}


@pytest.mark.slow
def test_throttle_holds_in_every_window_while_a_backlog_keeps_it_busy(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, """
rates = {au = {count = 5, interval = 0.5}}
concurrency = 4
""")
        au = [f"u{i}@au.com" for i in range(25)]
        enqueue(cfg, subject="s", body="b", addresses=au + [f"d{i}@docomo.ne.jp" for i in range(100)])
        started = time.time()
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=30)
        elapsed = time.time() - started
        assert stats.sent == 125
        au_times = [r.at for r in srv.received if r.rcpt_tos[0].endswith("@au.com")]
        assert len(au_times) == 25
        assert max_in_window(au_times, 0.5) <= 5          # never more than count per interval
        assert max_in_window(au_times, 0.5 * 1.2) >= 5    # ...and the backlog kept it busy
        assert elapsed < 4.0 + 2.0                          # 25 au at 5/0.5 s is ~2 s of windows
        docomo_times = sorted(r.at for r in srv.received if "docomo" in r.rcpt_tos[0])
        assert docomo_times[-1] < au_times[-1]              # the unthrottled carrier is not held back


def test_routes_choose_the_right_server(tmp_path):
    with RecordingServer() as local, RecordingServer() as docomo, RecordingServer() as ez:
        cfg = make_cfg(tmp_path, local.relay, f"""
routes = {{docomo = "{docomo.relay}", ".ezweb.ne.jp" = "{ez.relay}"}}
messages_per_connection = 3
""")
        enqueue(cfg, subject="s", body="b", addresses=[
            "a@docomo.ne.jp", "b@mopera.net", "c@biz.ezweb.ne.jp", "d@au.com", "e@gmail.com", "f@docomo.ne.jp"])
        run_daemon(cfg, exit_when_done=True, max_seconds=20)
        assert sorted(docomo.addresses()) == ["a@docomo.ne.jp", "b@mopera.net", "f@docomo.ne.jp"]
        assert ez.addresses() == ["c@biz.ezweb.ne.jp"]
        assert sorted(local.addresses()) == ["d@au.com", "e@gmail.com"]
        assert rows_by_address(cfg)["a@docomo.ne.jp"]["relay"] == docomo.relay


def test_each_carrier_receives_text_that_decodes_back(tmp_path):
    subject, body = "【冬のセール】①本日限り～髙島屋前", "いつもありがとうございます。\n㈱テスト ｶﾀｶﾅ"
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, 'charsets = {au = "utf-8"}')
        enqueue(cfg, subject=subject, body=body, addresses=["taro..yamada.@docomo.ne.jp", "x@au.com"])
        run_daemon(cfg, exit_when_done=True, max_seconds=20)
        got = {r.rcpt_tos[0]: r.data for r in srv.received}
    docomo = decode_message(got["taro..yamada.@docomo.ne.jp"])
    assert docomo["charset"] == "iso-2022-jp"
    assert docomo["subject"] == "【冬のセール】(1)本日限り〜高島屋前"     # documented replacements
    assert docomo["body"] == "いつもありがとうございます。\n(株)テスト カタカナ\n"
    assert docomo["from"] == "配信センター <news@mail.example.jp>"
    au = decode_message(got["x@au.com"])
    assert au["charset"] == "utf-8" and au["subject"] == subject and au["body"] == body + "\n"
    assert all(b < 128 for b in got["x@au.com"])


def test_suppressed_addresses_are_never_contacted(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, "concurrency = 1")
        suppression.add(cfg, "dead@docomo.ne.jp", "test")
        report = enqueue(cfg, subject="s", body="b",
                         addresses=["dead@docomo.ne.jp", "late@au.com", "ok@au.com", "OK@au.com"])
        assert (report.queued, report.suppressed, report.duplicates) == (2, 1, 1)
        suppression.add(cfg, "late@au.com", "added after enqueue")   # checked again before sending
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=20)
        contacted = {a for _, a in srv.rcpt_attempts}
    assert contacted == {"ok@au.com"}
    rows = rows_by_address(cfg)
    assert rows["dead@docomo.ne.jp"]["state"] == rows["late@au.com"]["state"] == "skipped"
    assert rows["late@au.com"]["reason"] == "suppressed" and stats.skipped == 1


@pytest.mark.slow
def test_smtp_results_4xx_5xx_disconnect_and_rate_limit(tmp_path):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def count(addr):
        with lock:
            seen[addr] = seen.get(addr, 0) + 1
            return seen[addr]

    def rcpt(addr):
        if addr == "gone@docomo.ne.jp":
            return "550 Unknown user gone@docomo.ne.jp"
        if addr == "nobody@au.com":
            return "550 <nobody@au.com>: User unknown"
        if addr == "full@au.com":
            return "452 4.2.2 Mailbox full"
        if addr == "slow@i.softbank.jp" and count(addr) == 1:
            return "421 4.7.0 Too many connections, slow down"
        return None

    def data(addr):
        if addr == "drop@docomo.ne.jp" and count(addr) == 1:
            return "DISCONNECT"
        return None

    with RecordingServer(rcpt_reply=rcpt, data_reply=data) as srv:
        cfg = make_cfg(tmp_path, srv.relay, "rate_limit_pause = 1.0\nmax_attempts = 3\nconcurrency = 2")
        enqueue(cfg, subject="s", body="b", addresses=[
            "gone@docomo.ne.jp", "nobody@au.com", "full@au.com", "drop@docomo.ne.jp", "slow@i.softbank.jp",
            "next@i.softbank.jp", "fine@docomo.ne.jp"])
        run_daemon(cfg, exit_when_done=True, max_seconds=20)
        slow_421_at = min(t for t, a in srv.rcpt_attempts if a == "slow@i.softbank.jp")
        softbank_starts = [t for t, a in srv.rcpt_attempts if a.endswith("softbank.jp") and t > slow_421_at]
    rows = rows_by_address(cfg)
    assert (rows["gone@docomo.ne.jp"]["state"], rows["gone@docomo.ne.jp"]["reason"]) == ("failed", "user_unknown")
    assert rows["gone@docomo.ne.jp"]["smtp_phase"] == "rcpt" and rows["gone@docomo.ne.jp"]["reply_code"] == 550
    assert (rows["nobody@au.com"]["state"], rows["nobody@au.com"]["reason"]) == ("failed", "user_unknown")
    full = rows["full@au.com"]
    assert (full["state"], full["reason"], full["attempts"]) == ("failed", "expired", 3)   # 4xx retried, then gave up
    drop = rows["drop@docomo.ne.jp"]
    assert drop["state"] == "sent" and drop["attempts"] == 2          # lost connection -> deferred -> sent
    slow = rows["slow@i.softbank.jp"]
    assert slow["state"] == "sent" and slow["attempts"] == 2
    # the 421 paused SoftBank: no transaction started for rate_limit_pause seconds. With two
    # workers, one already under way when the 421 came may still reach RCPT a few ms later.
    started_in_pause = [t for t in softbank_starts if t > slow_421_at + 0.1]
    assert started_in_pause and min(started_in_pause) >= slow_421_at + 0.95  # the retry of slow@ waited
    assert rows["fine@docomo.ne.jp"]["state"] == "sent"


def test_unreachable_relay_defers_and_never_expires_the_message(tmp_path):
    """A relay that refuses the connection is an outage of ours: the message waits for it however
    often it is tried (its tries count not towards max_attempts), the relay paused between tries
    (tests/test_sender_relay_outage.py)."""
    from pipeline.sender.testing import free_port

    cfg = make_cfg(tmp_path, f"127.0.0.1:{free_port()}", "max_attempts = 2\nrelay_pause = 0.05\nrelay_pause_max = 0.05")
    enqueue(cfg, subject="s", body="b", addresses=["a@au.com"])
    for _ in range(20):   # (a loaded machine may try it only twice in one short run: run again, at most 20 times)
        run_daemon(cfg, exit_when_done=True, max_seconds=0.5)
        row = rows_by_address(cfg)["a@au.com"]
        if row["attempts"] > 2 or row["state"] != "deferred":
            break
    assert row["state"] == "deferred" and row["attempts"] > 2
    assert "connection to 127.0.0.1:" in row["reply"] and "refused" in row["reply"]


def test_at_most_100_recipients_per_session(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, "concurrency = 1\nmessages_per_connection = 500")
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@docomo.ne.jp" for i in range(230)])
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        per_session: dict = {}
        for r in srv.received:
            per_session[r.peer] = per_session.get(r.peer, 0) + 1
    assert sum(per_session.values()) == 230
    assert max(per_session.values()) == 100 and len(per_session) == 3


def test_second_daemon_is_refused(tmp_path):
    from pipeline.core.errors import LockedError
    from pipeline.sender.daemon import DaemonLock

    cfg = make_cfg(tmp_path, "127.0.0.1:25")
    with DaemonLock(cfg.data_dir):
        with pytest.raises(LockedError):
            run_daemon(cfg, exit_when_done=True, max_seconds=1)


def test_a_broken_config_is_refused_before_the_daemon_sends(tmp_path):
    from pipeline.core.errors import ConfigError

    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay)
        enqueue(cfg, subject="s", body="b", addresses=["a@au.com"])
        broken = tmp_path / "broken.toml"
        broken.write_text(sender_toml(srv.relay) + '[sender.charsets]\nau = "latin-1"\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"sender\.charsets\.au.*latin-1"):
            load_config(broken, data_dir=cfg.data_dir, timezone="Asia/Tokyo")
        assert srv.received == []
    assert rows_by_address(cfg)["a@au.com"]["state"] == "queued"  # untouched, sent after the fix


# Refusals of our sending identity, at any phase: our IP blocked, our mail failing SPF/DKIM/DMARC
# (carriers.md: "never count"), our envelope sender's domain refused (Postfix says it at RCPT TO).
OUR_SIDE = {
    "blocked": ("rcpt", "550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org"),
    "auth": ("rcpt", "550 5.7.1 Sender address rejected: SPF check failed"),
    "auth ": ("end_of_data", "550 5.7.26 Unauthenticated email from mail.example.jp is not accepted due to "
                            "domain's DMARC policy"),
    "sender_domain": ("rcpt", "550 5.1.8 <news@mail.example.jp>: Sender address rejected: Domain not found"),
}


@pytest.mark.slow
@pytest.mark.parametrize("reason", sorted(OUR_SIDE))
def test_a_refusal_of_our_ip_or_domain_pauses_the_carrier_and_fails_nobody(tmp_path, reason):
    """docomo and others refuse a blocked network at RCPT TO ("blocked using ...", reputation):
    not the addresses' fault. It used to fail every recipient of the carrier one after the other
    (each message lost, the blocking carrier hammered); now it is deferred and the carrier paused,
    as a refusal before RCPT is. The same for our mail failing SPF/DKIM/DMARC and for our sender
    domain refused: those were still failed row after row (a whole docomo campaign marked failed
    at full speed by an SPF record gone wrong), never sent after the fix."""
    phase, reply = OUR_SIDE[reason]

    def refuse(addr):
        return reply if addr.endswith("@au.com") else None

    hooks = {"rcpt_reply": refuse} if phase == "rcpt" else {"data_reply": refuse}
    with RecordingServer(**hooks) as srv:
        cfg = make_cfg(tmp_path, srv.relay, "rate_limit_pause = 60\nconcurrency = 1\n")
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(10)] + ["d@docomo.ne.jp"])
        stats = run_daemon(cfg, max_seconds=3)
        au_tries = [a for _, a in srv.rcpt_attempts if a.endswith("@au.com")]
    rows = rows_by_address(cfg)
    assert stats.failed == 0 and len(au_tries) == 1                  # paused after the first refusal
    tried = rows[au_tries[0]]
    assert (tried["state"], tried["reason"], tried["smtp_phase"]) == ("deferred", reason.strip(), phase)
    assert sum(r["state"] == "queued" for r in rows.values()) == 9
    assert rows["d@docomo.ne.jp"]["state"] == "sent"                  # other carriers go on


def test_too_many_recipients_is_retried_in_a_new_session():
    """docomo's "552 Too many recipients" at RCPT TO: the session carried too many, our fault
    (carriers.md); the address is fine and gets the message in a fresh session, not a failure."""
    from pipeline.sender.daemon import classify_reply

    out = classify_reply(552, "Too many recipients", "rcpt", "docomo")
    assert (out.state, out.reason, out.drop_connection) == ("deferred", "too_many_recipients", True)
    assert classify_reply(550, "5.1.1 User unknown", "rcpt", "docomo").state == "failed"


def test_a_mistyped_carrier_route_is_refused_before_anything_is_sent(tmp_path):
    """routes = {docmo = "[tokutei]:25"}: the key was taken for a domain "docmo" that matches no
    mail, and docomo's mail went to default_relay instead of its 特定接続 relay, unnoticed (the
    generated MTA configuration too). Now the daemon and `send mta-config` refuse it."""
    from pipeline.core.errors import ConfigError
    from pipeline.sender.mtaconfig import mta_config

    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, 'routes = {docmo = "127.0.0.1:9", "docomo.ne.jp" = "127.0.0.1:9"}\n')
        enqueue(cfg, subject="s", body="b", addresses=["d@docomo.ne.jp"])
        with pytest.raises(ConfigError, match="sender.routes has unknown carrier 'docmo'"):
            run_daemon(cfg, exit_when_done=True, max_seconds=5)
        with pytest.raises(ConfigError, match="unknown carrier 'docmo'"):
            mta_config(cfg, "postfix")
        assert srv.received == []


@pytest.mark.slow
def test_a_session_the_server_ended_is_reopened_not_a_deferral(tmp_path):
    """A server that ends each session after its own limit (here: one message) or cuts an idle one:
    the next message on the kept connection met "connection lost during mail" and was deferred for
    backoff_base (60 s by default), every other recipient of the campaign. The server was told
    nothing of that message: it now goes at once over a new session."""
    with RecordingServer(close_after_message=True) as srv:
        cfg = make_cfg(tmp_path, srv.relay, "concurrency = 1\n")   # backoff_base 0.2 s, max_seconds 20: a deferral shows
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(6)])
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=20)
    assert (stats.sent, stats.deferred) == (6, 0)
    assert sorted(srv.addresses()) == sorted(f"u{i}@au.com" for i in range(6))
