"""The reject samples under <data_dir>/rejects/ stay bounded: each run that keeps samples starts a
file of its own and prunes the folder to `ingest.reject_files` files, `reject_files_mib` MiB and
`reject_files_days` days, never removing a file this run named (the summary printed it) or one
another process is still writing; `watch` starts a file a day. Runs here are in this process;
`RejectLog.named` (what a process has named) is emptied between runs that stand for separate
processes."""

from __future__ import annotations

import fcntl
import os
import time

import pytest

from fixtures import Follower, make_config, pf_lines

BAD = b"Nov  3 16:04:31 mx1 postfix/smtp[1]: \xff\xfe not UTF-8\n"


@pytest.fixture
def named(monkeypatch):
    from pipeline.ingest.session import RejectLog

    monkeypatch.setattr(RejectLog, "named", set(), raising=False)
    return RejectLog


def a_run(cfg, tmp_path, n: int, named, bad_lines: int = 1):
    """One `ingest` process over a new log with `bad_lines` rejects; its summary."""
    from pipeline.ingest.engine import ingest

    named.named = set()
    log = tmp_path / f"mail-{n}.log"
    log.write_bytes(pf_lines(10 * n, 10 * n + 3).encode() + BAD * bad_lines)  # (a log of its own)
    return ingest(cfg, [log], fmt="postfix")


def samples(cfg) -> list[str]:
    return sorted(p.name for p in (cfg.data_dir / "rejects").glob("*.jsonl"))


def age(path, days: float) -> None:
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_reject_samples_are_bounded_by_count_size_and_age_over_many_runs(tmp_path, named):
    """Every run with a rejected line left one more file under rejects/, for ever (a cron
    `ingest` every five minutes: 100,000 files a year)."""
    cfg = make_config(tmp_path, "[ingest]\nreject_files = 3\nreject_files_mib = 1\nreject_files_days = 2\n")
    kept = []
    for n in range(6):
        s = a_run(cfg, tmp_path, n, named)
        assert s.rejects_file, s.as_dict()
        kept.append(os.path.basename(s.rejects_file))
        assert os.path.exists(s.rejects_file) and s.rejected["invalid_utf8"] == 1
        assert samples(cfg) == sorted(kept[-3:]), (n, samples(cfg))         # the newest 3 (by count)
    old = cfg.data_dir / "rejects" / kept[-3]
    age(old, 3)                                                               # older than 2 days
    s = a_run(cfg, tmp_path, 6, named)
    assert not old.exists() and len(samples(cfg)) == 3
    big = cfg.data_dir / "rejects" / kept[-1]                                 # a bad night's samples: > 1 MiB
    with open(big, "ab") as fh:
        fh.truncate(big.stat().st_size + (1 << 20))
    s = a_run(cfg, tmp_path, 7, named)
    assert not big.exists() and os.path.exists(s.rejects_file) and len(samples(cfg)) == 3
    assert not list((cfg.data_dir / "rejects").glob(".*.part"))


def test_a_file_named_by_this_run_or_written_by_another_process_is_never_pruned(tmp_path, named):
    """With room for one file: `clean` reads two sources in one run and names both files in its
    summary; a `watch` (another process) is writing its own. All three stay; the next run (a
    new process) prunes the first two, and the watch's while it is written, never."""
    cfg = make_config(tmp_path, "[ingest]\nreject_files = 1\n")
    rejects = cfg.data_dir / "rejects"
    rejects.mkdir(parents=True)
    theirs = rejects / "20260101T000000-999999-1.jsonl"                      # another process writes it
    theirs.write_text('{"line": "x"}\n')
    age(theirs, 90)
    held = open(theirs, "a")
    fcntl.flock(held, fcntl.LOCK_SH)
    try:
        from pipeline.ingest.engine import Engine
        from pipeline.core.config import SourceSettings

        named.named = set()
        for n in (1, 2):
            (tmp_path / f"src{n}.log").write_bytes(pf_lines(100 * n, 100 * n + 2).encode() + BAD)
        summaries = Engine.from_config(cfg).ingest_sources(
            [SourceSettings(str(tmp_path / f"src{n}.log"), "postfix") for n in (1, 2)])
        told = [s.rejects_file for s in summaries]
        assert len(set(told)) == 2 and all(os.path.exists(f) for f in told) and theirs.exists()
        s = a_run(cfg, tmp_path, 3, named)
        assert [os.path.exists(f) for f in told] == [False, False] and os.path.exists(s.rejects_file)
        assert theirs.exists()                                                # still being written
    finally:
        held.close()
    a_run(cfg, tmp_path, 4, named)
    assert not theirs.exists() and len(samples(cfg)) == 1


def test_watch_keeps_a_file_a_day_and_the_days_before_are_pruned(tmp_path, monkeypatch, named):
    """A watch kept one file for as long as it ran, and no sample after its first
    `reject_samples` rejects (weeks without a sample of what goes wrong now). Now a file a day:
    the day that ended is no longer the watch's to keep and is pruned like any other."""
    from pipeline.ingest import session

    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    log.write_bytes(pf_lines(0, 3).encode() + BAD)
    day = ["20261110"]
    monkeypatch.setattr(session, "_today", lambda: day[0])
    f = Follower(tmp_path, [(str(log), "postfix")])
    (tmp_path / "mailhygiene.toml").write_text((tmp_path / "mailhygiene.toml").read_text()
                                               + "[ingest]\nreject_files = 1\nreject_samples = 2\n")
    from pipeline.core.config import load_config

    f.cfg = load_config(tmp_path / "mailhygiene.toml", data_dir=f.data)
    f.start()
    try:
        f.run(0.25)
        first = f.engine.session.summary.rejects_file
        with open(log, "ab") as fh:
            fh.write(BAD * 3)                                                 # over the day's 2 samples
        f.run(0.25)
        assert sum(1 for _ in open(first)) == 2
        day[0] = "20261111"
        with open(log, "ab") as fh:
            fh.write(BAD)
        f.run(0.25)
        second = f.engine.session.summary.rejects_file
        assert second != first and sum(1 for _ in open(second)) == 1
        assert not os.path.exists(first)                                      # one file kept: the day's
        assert f.engine.session.summary.rejected["invalid_utf8"] == 5
    finally:
        f.stop()
