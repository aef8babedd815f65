"""Queue management like postqueue/postsuper: `send list/hold/release/cancel/retry/status --job`,
through the real CLI (subprocesses) while real daemons send to an aiosmtpd server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.testing import RecordingServer

from fixtures import make_config, sender_toml

REPO = Path(__file__).resolve().parents[1]


def _mh(cfg, *args, **kw):
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                           str(cfg.source), "--data-dir", str(cfg.data_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, **kw)


def _popen(cfg, *args):
    return subprocess.Popen([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                             str(cfg.source), "--data-dir", str(cfg.data_dir), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(pred, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_hold_release_cancel_retry_and_status(tmp_path):
    tries = defaultdict(int)

    def rcpt(addr):
        tries[addr] += 1
        return "450 4.2.2 mailbox busy" if addr == "later@docomo.ne.jp" and tries[addr] == 1 else None

    with RecordingServer(rcpt_reply=rcpt) as srv:
        cfg = make_config(tmp_path, sender_toml(srv.relay) + """rates = {au = {count = 4, interval = 0.5}}
backoff_base = 300
backoff_max = 600
concurrency = 2
""")
        j1 = enqueue(cfg, subject="一", body="b", addresses=[f"a{i}@au.com" for i in range(30)], name="slow-au").job_id
        j2 = enqueue(cfg, subject="二", body="b", addresses=["later@docomo.ne.jp", "now@docomo.ne.jp"]).job_id
        j3 = enqueue(cfg, subject="三", body="b", addresses=[f"c{i}@i.softbank.jp" for i in range(5)]).job_id
        assert _mh(cfg, "send", "cancel", str(j3)).stdout.strip() == f"job {j3} cancelled: 5 recipients will not be sent"

        daemon = _popen(cfg, "send", "daemon")
        try:
            assert _wait(lambda: len([a for a in srv.addresses() if a.endswith("@au.com")]) >= 8)
            r = _mh(cfg, "send", "hold", str(j1))
            assert r.returncode == 0 and "held" in r.stdout, r.stderr
            # messages already under way finish; then (the rate would allow 4 every 0.5 s) nothing
            quiet_since, seen = time.monotonic(), len(srv.addresses())
            deadline = time.monotonic() + 15
            while time.monotonic() - quiet_since < 0.8 and time.monotonic() < deadline:
                time.sleep(0.05)
                if len(srv.addresses()) != seen:
                    quiet_since, seen = time.monotonic(), len(srv.addresses())
            at_hold = len(srv.addresses())
            time.sleep(1.5)                    # three more windows: nothing of the held job starts
            assert len(srv.addresses()) == at_hold < 30
            listing = json.loads(_mh(cfg, "send", "list", "--json").stdout)
            assert [j["held"] for j in listing] == [1, 0, 0] and listing[2]["skipped"] == 5
            assert "held" in _mh(cfg, "send", "list").stdout
            # later@ was deferred for 300 s: `send retry` makes it due now
            assert _wait(lambda: Queue.for_config(cfg).rows(j2)[0]["state"] == "deferred")
            assert _mh(cfg, "send", "retry").stdout.startswith("1 deferred recipients are due now")
            assert _wait(lambda: "later@docomo.ne.jp" in srv.addresses())
            r = _mh(cfg, "send", "release", str(j1))
            assert r.returncode == 0 and "released" in r.stdout
            assert _wait(lambda: len([a for a in srv.addresses() if a.endswith("@au.com")]) == 30)
        finally:
            daemon.terminate()
            daemon.communicate(timeout=30)
        assert daemon.returncode == 0

    status = json.loads(_mh(cfg, "send", "status", "--job", str(j2), "--json").stdout)
    later = next(r for r in status["recipients"] if r["address"] == "later@docomo.ne.jp")
    assert (later["state"], later["attempts"], later["reply_code"]) == ("sent", 2, 250)
    assert status["job"]["subject"] == "二" and len(status["recipients"]) == 2
    text = _mh(cfg, "send", "status", "--job", str(j1)).stdout
    assert "a29@au.com" in text and "sent" in text
    assert sorted(set(srv.addresses())) == sorted(srv.addresses())        # nobody twice
    assert not any(a.endswith("softbank.jp") for a in srv.addresses())    # the cancelled job
    r = _mh(cfg, "send", "hold", "99")
    assert r.returncode == 1 and r.stderr.startswith("Error: there is no job 99")


@pytest.mark.slow
def test_cancel_stops_a_job_the_daemon_is_sending(tmp_path):
    """`send cancel` while the daemon sends the job: the rows it had fetched already (up to 200
    a carrier) kept going out after the cancel; like `send hold`, nothing more may start."""
    with RecordingServer() as srv:
        cfg = make_config(tmp_path, sender_toml(srv.relay) + "rates = {au = {count = 4, interval = 0.5}}\n")
        job = enqueue(cfg, subject="s", body="b", addresses=[f"a{i}@au.com" for i in range(60)]).job_id
        daemon = _popen(cfg, "send", "daemon")
        try:
            assert _wait(lambda: len(srv.addresses()) >= 4)
            r = _mh(cfg, "send", "cancel", str(job))
            assert r.returncode == 0 and "cancelled" in r.stdout, r.stderr
            at_cancel = len(srv.addresses())
            time.sleep(2.0)                    # four more windows of 4
            after = len(srv.addresses())
        finally:
            daemon.terminate()
            daemon.communicate(timeout=30)
    assert after <= at_cancel + 4              # at most the messages already under way
    rows = Queue.for_config(cfg).rows(job)
    assert sum(r["state"] == "skipped" for r in rows) >= 60 - after
