"""Limits that hold across restarts, faults that are temporary, rate reduction after 421, pacing,
per-carrier session limits and connection reuse: real daemons (in-process or as `mailhygiene send
daemon` processes) against aiosmtpd carrier look-alikes; assertions are about what the servers saw.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.testing import RecordingServer, max_in_window
from pipeline.sender.throttle import Rate, Throttle

from fixtures import make_config, sender_toml

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path, relay, extra=""):
    return make_config(tmp_path, sender_toml(relay) + f"""default_rate = {{count = 1000, interval = 1.0}}
backoff_base = 0.3
backoff_max = 0.6
timeout = 2
{extra}""")


def _daemon_process(cfg, *args):
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                           str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "daemon", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_three_restarts_inside_one_window_never_exceed_the_limit(tmp_path):
    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay, "rates = {au = {count = 5, interval = 60.0}}\n")
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(40)])
        started = time.time()
        for _ in range(3):
            r = _daemon_process(cfg, "--max-seconds", "1")
            assert r.returncode == 0, r.stderr
        elapsed = time.time() - started
        times = srv.times()
    assert elapsed < 60.0                       # the three runs were inside one window
    assert len(times) == 5                      # the first run used the window; the next two waited
    assert max_in_window(times, 60.0) <= 5


@pytest.mark.slow
def test_a_rate_limit_pause_and_reduced_rate_survive_a_restart(tmp_path):
    calls = defaultdict(int)

    def rcpt(addr):
        calls[addr] += 1
        return "421 4.7.0 Too many connections, slow down" if addr == "u0@au.com" and calls[addr] == 1 else None

    with RecordingServer(rcpt_reply=rcpt) as srv:
        cfg = _cfg(tmp_path, srv.relay, "rates = {au = {count = 8, interval = 1.0}}\nrate_limit_pause = 3.0\n")
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(30)])
        r = _daemon_process(cfg, "--max-seconds", "0.5")
        assert r.returncode == 0, r.stderr
        first_421 = min(t for t, a in srv.rcpt_attempts if a == "u0@au.com")
        r = _daemon_process(cfg, "--max-seconds", "5")      # restarted inside the pause
        assert r.returncode == 0, r.stderr
        after = sorted(t for t, _ in srv.rcpt_attempts if t > first_421 + 0.2)
    state = Queue.for_config(cfg).throttle_states()["au"]
    assert after and after[0] >= first_421 + 2.9             # the pause outlived the first daemon
    assert state[1] == 0.5                                    # count halved (8 -> 4), recovering from there
    assert max_in_window(after, 1.0) <= 4 + 1                 # 4 per second, +1 as the rate recovers


@pytest.mark.slow
def test_garbage_truncated_dropped_and_timed_out_replies_are_temporary(tmp_path):
    tries = defaultdict(int)
    lock = threading.Lock()

    def first_time(addr):
        with lock:
            tries[addr] += 1
            return tries[addr] == 1

    def rcpt(addr):
        n = int(addr[1:].split("@")[0])
        if n % 50 == 7 and first_time(addr):
            return "garbage-not-an-smtp-reply"
        if n % 50 == 8 and first_time(addr):
            return "25"                                   # a reply cut short
        return None

    def data(addr):
        n = int(addr[1:].split("@")[0])
        if n % 50 == 9 and first_time(addr):
            return "DISCONNECT"
        if n == 10 and first_time(addr):
            time.sleep(2.5)                               # longer than sender.timeout
        return None

    with RecordingServer(rcpt_reply=rcpt, data_reply=data) as srv:
        # one session: the look-alike's sleep blocks its whole event loop, which must not time out
        # a second session and muddle the attempt counts below
        cfg = _cfg(tmp_path, srv.relay, "concurrency = 1\n")
        addresses = [f"u{i}@docomo.ne.jp" for i in range(200)]
        enqueue(cfg, subject="s", body="b", addresses=addresses)
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=60)
        received = srv.addresses()
    rows = {r["address"]: r for r in Queue.for_config(cfg).rows()}
    assert stats.failed == 0 and set(received) == set(addresses)
    assert {r["state"] for r in rows.values()} == {"sent"}
    assert rows["u7@docomo.ne.jp"]["attempts"] == rows["u8@docomo.ne.jp"]["attempts"] == 2
    assert rows["u9@docomo.ne.jp"]["attempts"] == 2 and rows["u10@docomo.ne.jp"]["attempts"] == 2


@pytest.mark.slow
def test_deferred_recipients_are_retried_when_their_backoff_ends_not_after_the_backlog(tmp_path):
    tries = defaultdict(int)

    def rcpt(addr):
        tries[addr] += 1
        return "450 4.2.1 try later" if addr == "first@au.com" and tries[addr] == 1 else None

    with RecordingServer(rcpt_reply=rcpt) as srv:
        cfg = _cfg(tmp_path, srv.relay, "rates = {au = {count = 10, interval = 0.5}}\nconcurrency = 2\n")
        enqueue(cfg, subject="s", body="b", addresses=["first@au.com"] + [f"u{i}@au.com" for i in range(80)])
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        attempts = [t for t, a in srv.rcpt_attempts if a == "first@au.com"]
        last_of_backlog = max(r.at for r in srv.received)
    assert len(attempts) == 2
    assert attempts[1] < last_of_backlog - 1.0                 # retried mid-backlog (80 at 20/s = 4 s)


@pytest.mark.slow
def test_pacing_spreads_each_window_evenly(tmp_path):
    with RecordingServer() as paced, RecordingServer() as burst:
        for srv, pacing in ((paced, "true"), (burst, "false")):
            d = tmp_path / pacing
            d.mkdir()
            cfg = make_config(d, sender_toml(srv.relay) + f"rates = {{au = {{count = 5, interval = 1.0}}}}\n"
                              f"pacing = {pacing}\nconcurrency = 4\n")
            enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(10)])
            run_daemon(cfg, exit_when_done=True, max_seconds=30)
        gaps = lambda ts: [b - a for a, b in zip(ts, ts[1:])]  # noqa: E731
        paced_times, burst_times = paced.times(), burst.times()
    assert len(paced_times) == len(burst_times) == 10
    # starts are 1.0 s / 5 apart; arrival times at the server add the jitter of each dialogue
    assert max_in_window(paced_times, 0.3) <= 2 and sum(gaps(paced_times)) >= 9 * 0.19
    assert max_in_window(burst_times, 0.1) >= 4               # without pacing the window's five go at once
    assert max_in_window(paced_times, 1.0) <= 5


@pytest.mark.slow
def test_session_limits_per_carrier_and_connections_reused_across_windows(tmp_path):
    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay, """concurrency = 4
connections = {docomo = 1, au = 1}
session_recipients = {docomo = 10}
rates = {au = {count = 3, interval = 0.4}}
idle_timeout = 5
""")
        enqueue(cfg, subject="s", body="b",
                addresses=[f"d{i}@docomo.ne.jp" for i in range(40)] + [f"a{i}@au.com" for i in range(9)])
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        sessions = defaultdict(list)
        for r in srv.received:
            sessions[(r.rcpt_tos[0].split("@")[1], r.peer)].append(r.at)
    docomo = sorted((min(ts), max(ts), len(ts)) for (dom, _), ts in sessions.items() if dom == "docomo.ne.jp")
    assert sum(n for *_, n in docomo) == 40 and max(n for *_, n in docomo) == 10 and len(docomo) == 4
    assert all(a[1] <= b[0] for a, b in zip(docomo, docomo[1:]))   # one docomo session at a time
    au = [ts for (dom, _), ts in sessions.items() if dom == "au.com"]
    assert len(au) == 1 and len(au[0]) == 9                        # one session across three windows


def test_rate_reduction_and_recovery_with_a_fake_clock():
    class Clock:
        t = 1000.0

        def __call__(self):
            return self.t

    clock = Clock()
    saved = {}
    th = Throttle({"au": Rate(10, 1.0)}, Rate(100, 1.0), clock=clock, reduce_factor=0.5, recovery=100.0,
                  on_state=lambda c, p, f, at: saved.update({c: (p, f, at)}))
    assert th.effective_count("au") == 10
    until, count = th.rate_limited("au", 5.0)
    assert (until, count) == (1005.0, 5) and saved["au"] == (1005.0, 0.5, 1000.0)
    assert th.wait_time("au") == 5.0
    clock.t += 25.0
    assert th.effective_count("au") == 7                       # 0.5 + 25/100
    th.rate_limited("au", 0.0)
    assert th.effective_count("au") == 3                       # 0.75 * 0.5
    clock.t += 1000
    assert th.effective_count("au") == 10
    restarted = Throttle({"au": Rate(10, 1.0)}, Rate(100, 1.0), clock=clock, recovery=100.0)
    restarted.restore([("au", clock.t - 0.5, clock.t - 0.4)] * 10, {"au": (clock.t + 2, 0.2, clock.t)})
    assert restarted.effective_count("au") == 2 and restarted.wait_time("au") == 2.0


@pytest.mark.slow
def test_a_wall_clock_step_forward_does_not_open_a_new_window(tmp_path):
    """The daemon's wall clock jumps an hour ahead once the window's quota is spent (NTP, a VM
    resumed): the carrier still sees at most `count` messages in `interval` real seconds."""
    with RecordingServer() as srv:
        cfg = make_config(tmp_path, sender_toml(srv.relay) + 'rates = {au = {count = 2, interval = 60.0}}\n'
                                                            'concurrency = 1\n')
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(6)])

        def clock():
            return time.time() + (3600.0 if len(srv.received) >= 2 else 0.0)

        stats = run_daemon(cfg, max_seconds=4, clock=clock)
    assert stats.sent == 2 and len(srv.received) == 2
    assert max_in_window(srv.times(), 60.0) <= 2


@pytest.mark.slow
def test_a_wall_clock_step_back_does_not_blind_the_daemon(tmp_path):
    """The wall clock steps an hour back while the daemon runs: the queue is still looked at every
    poll (a job enqueued after the step used to wait for the hour to pass again)."""
    with RecordingServer() as srv:
        cfg = make_config(tmp_path, sender_toml(srv.relay))
        enqueue(cfg, subject="s", body="b", addresses=["a@docomo.ne.jp"])

        def clock():
            return time.time() - (3600.0 if len(srv.received) >= 1 else 0.0)

        done = {}
        daemon = threading.Thread(target=lambda: done.update(stats=run_daemon(cfg, max_seconds=5, clock=clock)))
        daemon.start()
        deadline = time.monotonic() + 20
        while not srv.received and time.monotonic() < deadline:
            time.sleep(0.02)
        enqueue(cfg, subject="s2", body="b", addresses=["b@au.com", "c@docomo.ne.jp"])
        daemon.join(timeout=30)
    assert sorted(srv.addresses()) == ["a@docomo.ne.jp", "b@au.com", "c@docomo.ne.jp"]
