"""`clean` moves the results a crashed send daemon left in the queue's outbox into the event store
before the rule, so the nightly rule never misses them; an unusable queue stops it (fail closed).

Real parts: an aiosmtpd carrier look-alike that refuses a dead address, the real daemon as a
process killed with SIGKILL before its next flush, the real `clean` (ingest, DuckDB rule, export,
report) as a subprocess. The daemon's clock is the only fake (yesterday's run).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipeline
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue, queue_path
from pipeline.sender.testing import RecordingServer, free_port
from pipeline.suppression.store import suppressed_addresses

from fixtures import SAMPLES, make_config, sender_toml

REPO = Path(__file__).resolve().parents[1]
DEAD = "gone@docomo.ne.jp"
LIVE = ["hanako@docomo.ne.jp", "saburo@docomo.ne.jp"]


def _cfg(tmp_path, relay, log=None):
    if log is None:
        log = tmp_path / "mail.log"
        log.write_text("")
    return make_config(tmp_path, sender_toml(f"127.0.0.1:{free_port()}") + f"""routes = {{docomo = "{relay}"}}
event_flush_interval = 600
[report]
dir = "reports"
[[sources]]
path = "{log}"
format = "postfix"
""")


def _mh(cfg, *args):
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                           str(cfg.source), "--data-dir", str(cfg.data_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def _dead_events(cfg) -> int:
    return pipeline.connect(cfg.data_dir).execute(
        "SELECT count(*) FROM events WHERE recipient = ? AND status = 'bounced'", [DEAD]).fetchone()[0]


@pytest.mark.slow
def test_clean_moves_a_crashed_daemons_results_before_the_rule(tmp_path):
    with RecordingServer(rcpt_reply=lambda a: "550 5.1.1 Unknown user" if a == DEAD else None) as srv:
        cfg = _cfg(tmp_path, srv.relay)
        # yesterday: a daemon that stopped normally (its results are in the store)
        enqueue(cfg, subject="1日目", body="本文", addresses=[DEAD, *LIVE])
        run_daemon(cfg, exit_when_done=True, max_seconds=30, clock=lambda: time.time() - 86400)
        assert _dead_events(cfg) == 1
        # today: the daemon is killed after sending, before it flushed (interval 600 s)
        job, _ = Queue.for_config(cfg).add_job(subject="2日目", body="本文", from_address="news@mail.example.jp",
                                               recipients=[(DEAD, "docomo.ne.jp", "docomo")])
        proc = subprocess.Popen([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                                 str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "daemon"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            reader = Queue(queue_path(cfg.data_dir), read_only=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and reader.rows(job)[0]["state"] != "failed":
                time.sleep(0.05)
            assert reader.rows(job)[0]["state"] == "failed", "the daemon never recorded the refusal"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    assert Queue.for_config(cfg).outbox_size() >= 1
    assert _dead_events(cfg) == 1          # today's refusal is only in the outbox: the rule cannot see it
    dry = _mh(cfg, "suppress", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert DEAD not in json.dumps(json.loads(dry.stdout)["new"]), "the rule suppressed without today's row"

    r = _mh(cfg, "clean", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sender_events"] >= 1
    assert _dead_events(cfg) == 2
    assert Queue.for_config(cfg).outbox_size() == 0
    assert DEAD in suppressed_addresses(cfg) and not set(LIVE) & suppressed_addresses(cfg)
    r = _mh(cfg, "clean")
    assert r.returncode == 0 and "== sender:" not in r.stdout, r.stdout  # nothing left to move: no line


@pytest.mark.slow
def test_an_unusable_queue_stops_clean_before_the_rule(tmp_path):
    cfg = _cfg(tmp_path, "127.0.0.1:9", SAMPLES / "postfix" / "mail.log")
    enqueue(cfg, subject="s", body="本文", addresses=LIVE)
    path = queue_path(cfg.data_dir)
    Queue(path).close()
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4080)
    r = _mh(cfg, "clean", "--json")
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert errors[0].startswith("Error: the suppression rule did not run"), errors[0]
    assert f"the send queue {path} is damaged" in errors[0] and f"mv {path} {path}.broken" in errors[0]
    assert not (cfg.data_dir / "suppression" / "current.parquet").exists()   # no rule, no export, no report
    assert not (cfg.data_dir / "reports").exists()
    # the way out the message gives: move it aside; the next clean runs
    path.rename(f"{path}.broken")
    r = _mh(cfg, "clean", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sender_events"] == 0
    assert (cfg.data_dir / "suppression" / "current.parquet").exists()


@pytest.mark.slow
def test_clean_without_a_sender_creates_no_queue(tmp_path):
    cfg = _cfg(tmp_path, "127.0.0.1:9", SAMPLES / "postfix" / "mail.log")
    r = _mh(cfg, "clean", "--quiet")
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    assert not (cfg.data_dir / "sender").exists()
