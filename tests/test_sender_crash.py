"""The daemon as a real process: SIGTERM stops it gracefully; SIGKILL loses no recipient.

At-least-once bound: after each kill, the only messages whose fate the queue does not know are those
sent whose result was not yet committed (results are written in batches of at most
`sender.commit_batch`); they are still `queued` and are sent again on restart. So every recipient is
received at least once, and each kill adds at most concurrency x commit_batch duplicates: exactly
the messages the server had received beyond the attempts the queue had recorded.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue, queue_path
from pipeline.sender.testing import RecordingServer

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path, relay, rate="count = 40, interval = 0.5", concurrency=4):
    p = tmp_path / "mailhygiene.toml"
    p.write_text(f"""
[sender]
from_address = "news@mail.example.jp"
default_relay = "{relay}"
default_rate = {{{rate}}}
concurrency = {concurrency}
backoff_base = 0.2
backoff_max = 0.5

[sender.rates]
# au's built-in rate is 100 a minute: after the kill runs it would hold the last run a minute
au = {{{rate}}}
""")
    return load_config(p, data_dir=tmp_path / "data", timezone="Asia/Tokyo")


def _daemon(cfg, *extra):
    return subprocess.Popen(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "--config", str(cfg.source),
         "--data-dir", str(cfg.data_dir), "send", "daemon", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _sending_rows(cfg) -> int:
    con = sqlite3.connect(queue_path(cfg.data_dir))
    try:
        return con.execute("SELECT COUNT(*) FROM recipients WHERE state = 'sending'").fetchone()[0]
    finally:
        con.close()


def _recorded_attempts(cfg) -> int:
    con = sqlite3.connect(queue_path(cfg.data_dir))
    try:
        return con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_and_restart_loses_no_recipient(tmp_path):
    addresses = [f"user{i}@docomo.ne.jp" for i in range(150)] + [f"user{i}@au.com" for i in range(150)]
    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay)
        enqueue(cfg, subject="kill test", body="本文", addresses=addresses)
        unrecorded_at_kills = []
        for kill in range(3):
            target = len(srv.received) + 40 + 15 * kill
            proc = _daemon(cfg)
            try:
                assert _wait_for(lambda: len(srv.received) >= target, 30), proc.stderr.read1(4000) if proc.poll() else "slow"
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            # received by the server, but no result in the queue: these are sent again
            unrecorded_at_kills.append(len(srv.received) - _recorded_attempts(cfg) - sum(unrecorded_at_kills))
        final = _daemon(cfg, "--exit-when-done", "--max-seconds", "60")
        out, err = final.communicate(timeout=90)
        assert final.returncode == 0, err.decode()[-2000:]
        got = Counter(srv.addresses())
    assert set(got) == set(addresses)                                 # nobody lost
    duplicates = sum(n - 1 for n in got.values())
    print(f"unrecorded at the kills: {unrecorded_at_kills}; duplicates received: {duplicates}")
    assert duplicates == sum(unrecorded_at_kills)                     # exactly the unrecorded sends
    assert all(0 <= n <= 4 * cfg.sender.commit_batch for n in unrecorded_at_kills)
    assert {r["state"] for r in Queue.for_config(cfg).rows()} == {"sent"}
    assert b"sent" in out


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 0), (signal.SIGHUP, 129)], ids=["TERM", "HUP"])
def test_sigterm_finishes_the_message_in_flight_and_exits_cleanly(tmp_path, signum, status):
    """SIGHUP (an operator's "reload": kill -HUP, systemctl kill -s HUP) stops as gracefully; exit
    129 so that systemd's Restart=on-failure starts it again. It used to raise where the daemon
    was (the console's Terminated), as a crash does: a message cut, its row left in doubt."""
    def slow_data(addr):
        time.sleep(0.3)  # a slow carrier: SIGTERM will arrive mid-DATA
        return None

    with RecordingServer(data_reply=slow_data) as srv:
        cfg = _cfg(tmp_path, srv.relay, rate="count = 100, interval = 1.0", concurrency=2)
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(40)])
        proc = _daemon(cfg)
        try:
            assert _wait_for(lambda: len(srv.received) >= 3, 30)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == status, err.decode()[-2000:]
        assert b"finishing the messages in flight, then stopping" in err, err.decode()[-2000:]
        assert b"Terminated" not in err and b"Traceback" not in err, err.decode()[-2000:]
        received = srv.addresses()
    rows = Queue.for_config(cfg).rows()
    sent = {r["address"] for r in rows if r["state"] == "sent"}
    assert _sending_rows(cfg) == 0                      # nothing left in doubt
    assert sent == set(received) and len(received) == len(set(received))
    assert 3 <= len(sent) < 40                          # it stopped early, without cutting a message
    assert {r["state"] for r in rows} == {"sent", "queued"}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["killed", "commit failed"])
def test_a_restart_after_a_crash_counts_the_unrecorded_sends_in_the_window(tmp_path, how):
    """kill -9 (or a commit that failed: a full disk) leaves sends whose results and attempt
    records were never committed: the server counted them, the attempt log does not know them.
    The next daemon used to restore an empty window and send a full `count` more: au saw count +
    those sends in one interval."""
    import threading

    from pipeline.sender.daemon import Daemon
    from pipeline.sender.queue import QueueUnavailable
    from pipeline.sender.testing import max_in_window

    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay, "count = 5, interval = 60.0", concurrency=1)
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(20)])
        crashed = Daemon(cfg)
        never = threading.Event()

        def lost(results):
            if how == "killed":
                never.wait()                             # stuck committing: as good as killed
            raise QueueUnavailable("the disk holding the send queue is full")

        def run():
            try:
                crashed.run()
            except QueueUnavailable:                     # the failed commit stops it, as it should
                pass

        crashed.queue.finish_many = lost                 # its results never reach the queue
        threading.Thread(target=run, daemon=True).start()
        assert _wait_for(lambda: len(srv.received) >= 1, 20)
        time.sleep(0.3)
        unrecorded = len(srv.received)
        assert 1 <= unrecorded <= 5 and _recorded_attempts(cfg) == 0
        stats = Daemon(cfg, max_seconds=2).run()         # the restart, well inside the 60 s window
        times = srv.times()
        crashed.stop.set()
        never.set()
    assert max_in_window(times, 60.0) <= 5, (unrecorded, stats.sent)
