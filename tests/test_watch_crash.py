"""Crash loop: a log written at a steady pace and rotated the logrotate way (rename + create,
delaycompress: `.1` -> `.2.gz`), the watcher SIGKILLed at random moments and restarted.
At the end the event store holds exactly the deliveries written: none lost, none twice.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import threading
import time

import pytest

from fixtures import Watcher, pf_line

RUN_S = 22.0
LINES_PER_S = 300
ROTATE_EVERY_S = 4.0


def rotate(logs, keep: int = 4) -> None:
    """logrotate with delaycompress: .N.gz -> .N+1.gz, .1 -> .2.gz, live -> .1, new live."""
    base = logs / "mail.log"
    for n in range(keep, 1, -1):
        src = logs / f"mail.log.{n}.gz"
        if src.exists():
            os.replace(src, logs / f"mail.log.{n + 1}.gz")
    one = logs / "mail.log.1"
    if one.exists():
        with open(one, "rb") as fh, gzip.open(logs / "mail.log.2.gz.tmp", "wb") as out:
            shutil.copyfileobj(fh, out)
        os.replace(logs / "mail.log.2.gz.tmp", logs / "mail.log.2.gz")
        one.unlink()
    os.rename(base, one)
    base.touch()


def writer(logs, stop: threading.Event, written: list[int], rng: random.Random) -> None:
    base = logs / "mail.log"
    n = 0
    started = time.monotonic()
    next_rotation = started + ROTATE_EVERY_S
    fh = open(base, "a")
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_rotation:
                fh.close()
                rotate(logs)
                fh = open(base, "a")
                next_rotation = now + ROTATE_EVERY_S
            for _ in range(10):
                sec = n // 50
                line = pf_line(n, stamp=f"Nov  3 {10 + sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}")
                if rng.random() < 0.05:  # a line written in two parts: the watcher may see half of it
                    cut = rng.randrange(1, len(line) - 1)
                    fh.write(line[:cut])
                    fh.flush()
                    time.sleep(0.002)
                    fh.write(line[cut:])
                else:
                    fh.write(line)
                fh.flush()
                written.append(n)
                n += 1
            time.sleep(max(0.0, started + n / LINES_PER_S - time.monotonic()))
    finally:
        fh.close()


@pytest.mark.slow
def test_sigkill_loop_loses_nothing_and_duplicates_nothing(tmp_path):
    seed = int(os.environ.get("WATCH_CRASH_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "mail.log").touch()
    w = Watcher(tmp_path, [(str(logs / "mail.log"), "postfix")], flush=0.5, poll=0.5)
    stop = threading.Event()
    written: list[int] = []
    t = threading.Thread(target=writer, args=(logs, stop, written, rng), daemon=True)
    w.start()
    t.start()
    kills = 0
    try:
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline - 2:
            time.sleep(rng.uniform(1.5, 4.5))
            w.kill()
            kills += 1
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 1.0))  # down for a while: rotations may happen meanwhile
            w.start()
        stop.set()
        t.join(timeout=10)
        total = len(written)
        got = w.wait_for(total, timeout=20)
        time.sleep(1.0)  # anything stored twice would show up now
        assert w.stop() == 0
    finally:
        stop.set()
        if w.proc is not None and w.proc.poll() is None:
            w.proc.send_signal(signal.SIGKILL)
            w.proc.wait()
    import pipeline

    con = pipeline.connect(w.data)
    count, distinct = con.execute("SELECT count(*), count(DISTINCT recipient) FROM events").fetchone()
    stored = {r[0] for r in con.execute("SELECT recipient FROM events").fetchall()}
    expected = {f"u{n}@docomo.ne.jp" for n in written}
    assert kills >= 3
    assert (count, distinct) == (total, total), f"seed {seed}: {got=} {total=} kills={kills}\n{w.stderr()[-3000:]}"
    assert stored == expected, f"seed {seed}"
