"""`mailhygiene watch` on real files: appends, partial lines, every rotation mode, truncation,
replacement, globs, restarts with cross-line parser state, problems with one source while another
keeps going (the follower in this process on a clock the test moves: tests/fixtures.py's
Follower); and as a real process: signals, a kill, an unreadable file, the lock, and `clean`
leaving ingestion to a live watch (bounded polling waits).

Every check reads the real event store through pipeline.connect().
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
import time

import pytest

import pipeline
from pipeline.core.config import load_config

from fixtures import WATCH_FLUSH, Follower, Watcher, append, pf_line, pf_lines

FLUSH = WATCH_FLUSH


@pytest.fixture
def logs(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    return d


@pytest.fixture
def watchers():
    started: list[Watcher] = []
    yield started
    for w in started:
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def new_watcher(watchers, tmp_path, sources, **kw) -> Watcher:
    w = Watcher(tmp_path, sources, **kw)
    watchers.append(w)
    return w


@pytest.mark.slow
def test_appends_and_sigterm(tmp_path, logs, watchers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 40))
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix")]).start()
    assert w.wait_for(40) == (40, 40)
    append(log, pf_lines(40, 60) + pf_line(60)[:50])   # and the start of a line
    assert w.wait_for(60) == (60, 60)
    assert w.stop() == 0
    assert "stopped after" in w.stderr()
    assert w.counts() == (60, 60)  # the half line was not stored (the clock tests below show it waits)


@pytest.mark.slow
def test_sighup_flushes_and_stops_like_sigterm_with_a_status_that_restarts_it(tmp_path, logs, watchers):
    """kill -HUP (a "reload"): the same flush and stop as SIGTERM, exit 129 so that systemd's
    Restart=on-failure starts it again. It used to raise where watch was (the console's
    Terminated: `Terminated: what was stored before stays`), as an interruption does."""
    import signal

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 10))
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix")]).start()
    assert w.wait_for(10) == (10, 10)
    assert w.stop(signal.SIGHUP) == 129
    assert "SIGHUP received: flushing and stopping" in w.stderr() and "stopped after" in w.stderr()
    assert "Terminated" not in w.stderr() and "Traceback" not in w.stderr()
    state = (w.data / "state" / "ingest-state.json").read_text()
    assert '"offset":' in state  # positions saved: the restart goes on from there
    w.start()
    append(log, pf_lines(10, 12))
    assert w.wait_for(12) == (12, 12)
    assert w.stop() == 0


@pytest.mark.slow
def test_postfix_expiry_state_survives_a_kill(tmp_path, logs, watchers):
    log = logs / "mail.log"
    log.write_text(
        "Nov  3 10:00:00 mx1 postfix/qmgr[9]: 9AB12C0A1F: from=<news@example.jp>, size=900, nrcpt=1 (queue active)\n"
        + pf_line(1, "Nov  3 10:00:01", status="deferred", qid="9AB12C0A1F"))
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix")]).start()
    assert w.wait_for(1) == (1, 1)
    state = w.data / "state" / "ingest-state.json"   # events first, then the state that knows the deferral
    deadline = time.monotonic() + 10
    while not (state.exists() and "9AB12C0A1F" in state.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "9AB12C0A1F" in state.read_text()
    w.kill()  # SIGKILL: the deferral must still be known after the restart
    append(log, "Nov  3 15:00:00 mx1 postfix/qmgr[9]: 9AB12C0A1F: from=<news@example.jp>, status=expired, returned to sender\n")
    w.start()
    assert w.wait_for(2) == (2, 1)
    con = pipeline.connect(w.data)
    assert sorted(r[0] for r in con.execute("SELECT status FROM events").fetchall()) == ["deferred", "expired"]
    assert w.stop() == 0


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to run the watcher without its file-permission override")
def test_unreadable_file_is_reported_and_retried(tmp_path, logs, watchers):
    log, other = logs / "mail.log", logs / "other.log"
    log.write_text(pf_lines(0, 5))
    other.write_text(pf_lines(100, 103, stamp="Nov  3 16:30:00"))
    os.chown(log, 65534, 65534)
    log.chmod(0o600)  # not the watcher's and not readable by others: Permission denied
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix"), (str(other), "postfix")])
    err = open(w.stderr_path, "a")
    w.proc = subprocess.Popen(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c",
         "from pipeline.cli import main; main()", "--config", str(w.config), "--data-dir", str(w.data), "watch"],
        stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    err.close()
    assert w.wait_for(3) == (3, 3)  # the readable source is followed meanwhile
    deadline = time.monotonic() + 10
    while "Permission denied" not in w.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "mail.log cannot be read: Permission denied (retrying" in w.stderr()
    # and what to do about it, as batch runs say (the journal of a unit that reads nothing)
    assert "may not read it: give the service user read access to the logs" in w.stderr()
    assert "adduser mailhygiene adm" in w.stderr()
    log.chmod(0o644)
    assert w.wait_for(8, timeout=10) == (8, 8)
    assert "is back and readable" in w.stderr()
    assert w.stop() == 0


@pytest.mark.slow
@pytest.mark.slow
def test_a_glob_of_more_files_than_can_be_open_is_read_in_turns(tmp_path, logs, watchers):
    """A glob matching more logs than the limit of open files (here 300 under a hard limit of
    256): watch held every followed file open, ran out of descriptors and ended at once with
    `Error: internal error: OSError: [Errno 24] Too many open files` (exit 70), 0 lines stored
    (1,200 files under systemd's default soft 1024 did the same). Now the soft limit is raised to
    the hard one, and the files beyond what may be open are read in turns, with one warning."""
    import resource

    from fixtures import alarm

    for i in range(300):
        (logs / f"h{i:03d}.log").write_text(pf_line(i, stamp=f"Nov  3 16:{i // 60:02d}:{i % 60:02d}")
                                            + pf_line(1000 + i))

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    w = new_watcher(watchers, tmp_path, [(str(logs / "*.log"), "postfix")]).start(preexec_fn=limit)
    with alarm(120):
        while w.counts()[0] < 600:
            assert w.proc.poll() is None, f"watch exited: {w.stderr()}"
            time.sleep(0.2)
    append(logs / "h007.log", pf_line(5000))  # a file closed to make room is read on when it grows
    with alarm(120):
        while w.counts()[0] < 601:
            assert w.proc.poll() is None, f"watch exited: {w.stderr()}"
            time.sleep(0.2)
    assert w.stop() == 0
    assert w.counts() == (601, 601)
    assert w.stderr().count("read in turns") == 1 and "Too many open files" not in w.stderr()


def test_clean_leaves_ingestion_to_a_live_watch(tmp_path, logs, watchers):
    from pipeline.ingest.session import watch_is_running
    from pipeline.jobs.clean import clean

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 10))
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix")]).start()
    cfg = load_config(w.config, data_dir=w.data)
    assert w.wait_for(10) == (10, 10)
    assert watch_is_running(cfg.data_dir)
    steps = []
    clean(cfg, report=False, on_step=lambda name, value: steps.append(name))
    assert "watch_running" in steps and "ingested" not in steps
    assert w.stop() == 0
    assert not watch_is_running(cfg.data_dir)
    append(log, pf_lines(10, 12))
    steps.clear()
    clean(cfg, report=False, on_step=lambda name, value: steps.append(name))
    assert "ingested" in steps
    assert w.counts() == (12, 12)  # what watch had stored was not stored again


@pytest.mark.slow
def test_second_watch_on_the_same_data_dir_is_refused(tmp_path, logs, watchers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 3))
    w = new_watcher(watchers, tmp_path, [(str(log), "postfix")]).start()
    r = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config", str(w.config),
                        "--data-dir", str(w.data), "watch"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "another `mailhygiene watch`" in r.stderr
    assert w.stop() == 0


# ----------------------------------------------------------------------------- on a clock the test moves
TICK = 0.25   # the Follower's flush and poll interval


@pytest.fixture
def watch_log(caplog):
    caplog.set_level(logging.INFO, logger="mailhygiene.watch")
    return caplog


@pytest.fixture
def followers():
    started: list[Follower] = []
    yield started
    for f in started:
        if f._following is not None:
            f.stop()


def new_follower(followers, tmp_path, sources, **kw) -> Follower:
    f = Follower(tmp_path, sources, **kw)
    followers.append(f)
    return f.start()


def test_events_are_stored_when_the_flush_interval_has_passed(tmp_path, logs, followers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 40))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")], flush=5.0)
    f.run(4.9)
    assert f.counts() == (0, 0)          # read, held until the flush interval has passed
    f.run(0.2)
    assert f.counts() == (40, 40)
    append(log, pf_lines(40, 60))
    f.run(4.9)
    assert f.counts() == (40, 40)
    f.run(0.2)
    assert f.counts() == (60, 60)


def test_the_follower_reads_even_a_few_new_lines_with_the_block_reader(tmp_path, logs, followers, monkeypatch):
    # a batch run reads a chunk under engine.BLOCK_MIN_BYTES line by line (a small log's start-up);
    # the follower, which pays for the block reader's imports once, keeps every chunk on it
    import pipeline.ingest.engine as engine_mod

    read_by_block = []
    real = engine_mod._extract
    monkeypatch.setattr(engine_mod, "_extract", lambda reader, data, *a: read_by_block.append(len(data)) or real(reader, data, *a))
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 3))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(0.5)
    append(log, pf_lines(3, 5))
    f.run(0.5)
    assert f.counts() == (5, 5)
    assert len(read_by_block) == 2 and max(read_by_block) < engine_mod.BLOCK_MIN_BYTES


def test_a_slow_store_is_started_early_so_lines_are_queryable_within_the_flush_interval(
        tmp_path, logs, followers, monkeypatch):
    """A line must be queryable flush_interval after the pass that read it, not flush_interval
    plus the time the store takes: the commit starts as much earlier as recent stores took."""
    from pipeline.store.event_store import EventStore

    store_s = 0.75                                   # each write takes this long on the follower's clock
    write = EventStore.write

    def slow_write(self, table):
        written = write(self, table)
        f.clock.advance(store_s)
        return written

    monkeypatch.setattr(EventStore, "write", slow_write)
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 40))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")], flush=5.0)
    f.run(4.9)
    assert f.counts() == (0, 0)                      # no store time known yet: at the interval
    f.run(0.2)
    assert f.counts() == (40, 40)
    append(log, pf_lines(40, 60))
    f.run(0)                                         # the pass that reads the new lines
    read_at = f.clock.monotonic()
    f.run(5.0 - store_s - 0.125)
    assert f.counts() == (40, 40)                    # held while there is time to store them
    f.run(0.25)
    assert f.counts() == (60, 60)
    assert f.clock.monotonic() - read_at <= 5.0      # queryable within the interval

    store_s = 4.0                                    # a store slower than half the interval ...
    append(log, pf_lines(60, 70))
    f.run(10)
    assert f.counts() == (70, 70)
    append(log, pf_lines(70, 80))                    # ... starts the next commit half of it early
    f.run(0)
    read_at = f.clock.monotonic()
    f.run(2.375)
    assert f.counts() == (70, 70)
    f.run(0.25)
    assert f.counts() == (80, 80)
    assert f.clock.monotonic() - read_at == pytest.approx(2.5 + 4.0)


def test_the_flush_interval_counts_from_the_notification_of_a_write_not_from_the_read(tmp_path, logs, followers):
    """A line the follower reads a while after the file system told of its write (a busy
    follower, a late pass) is still queryable flush_interval after that notification."""
    from fixtures import alarm

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 10))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")], flush=5.0, inotify=True)
    f.run(6)
    assert f.counts() == (10, 10)
    engine = f.engine
    engine.woken_at = None
    append(log, pf_lines(10, 20))
    with alarm(30):
        while engine.woken_at is None:               # inotify's event, on the observer's thread
            time.sleep(0.01)
    told_at = engine.woken_at
    f.clock.advance(2.0)                             # the pass that reads the lines comes 2 s late
    f.run(5.0 - 2.0 - 0.125)
    assert f.counts() == (10, 10)
    f.run(0.125)
    assert f.clock.monotonic() - told_at == 5.0
    assert f.counts() == (20, 20)                    # at the notification + 5 s, not the read + 5 s


def test_a_partial_line_waits_for_its_newline_across_flushes(tmp_path, logs, followers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 60))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    assert f.counts() == (60, 60)
    line = pf_line(60)
    append(log, line[:50])
    f.run(TICK * 20)
    assert f.counts() == (60, 60)
    append(log, line[50:])
    f.run(TICK)
    assert f.counts() == (61, 61)
    f.stop()
    assert f.counts() == (61, 61)


def test_a_live_logs_unfinished_line_waits_for_its_writer_however_long(tmp_path, logs, followers):
    """A writer that pauses mid-line (buffered rsyslog, a full disk, SIGSTOP) for longer than
    PARTIAL_LINE_GRACE_S: the half was read as a line once the file was quiet that long, and the
    rest as another, both rejected: the bounce was lost (6 of 7 events). The live log's last line
    now waits for its newline; once the log is rotated away (its writer is done with it), an
    unfinished last line is read after the grace, in a named source and under a glob."""
    from pipeline.ingest.source import PARTIAL_LINE_GRACE_S

    log = logs / "mail.log"
    line = pf_line(5, status="bounced")
    log.write_text(pf_lines(0, 5) + line[:150])        # the writer paused before its newline
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(PARTIAL_LINE_GRACE_S * 3)
    assert f.counts() == (5, 5)
    append(log, line[150:] + pf_line(6))               # ... and went on
    f.run(TICK * 3)
    assert f.counts() == (7, 7)
    assert not (f.data / "rejects").exists() or not list((f.data / "rejects").glob("*.jsonl"))
    append(log, pf_line(7)[:-1])                       # the writer stopped for good, then rotation
    f.run(PARTIAL_LINE_GRACE_S * 2)
    assert f.counts() == (7, 7)
    os.rename(log, logs / "mail.log.1")
    log.write_text(pf_line(8, stamp="Nov  3 16:09:00"))
    f.run(PARTIAL_LINE_GRACE_S + 5)                    # the rotated file: finished, read as it is
    assert f.counts() == (9, 9)


def test_a_rotated_copy_under_a_glob_has_its_unfinished_last_line_read(tmp_path, logs, followers):
    from pipeline.ingest.source import PARTIAL_LINE_GRACE_S

    (logs / "mail.log.1").write_text(pf_lines(0, 5) + pf_line(5)[:-1])
    (logs / "mail.log").write_text(pf_lines(10, 12, stamp="Nov  3 16:09:00") + pf_line(12)[:-1])
    f = new_follower(followers, tmp_path, [(str(logs / "mail.log*"), "postfix")])
    f.run(PARTIAL_LINE_GRACE_S + 5)
    assert f.counts() == (8, 8)                        # all of mail.log.1; mail.log's last line waits


def test_rename_and_create_reads_the_old_file_to_its_end(tmp_path, logs, followers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 30))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    assert f.counts() == (30, 30)
    os.rename(log, logs / "mail.log.1")
    append(logs / "mail.log.1", pf_lines(30, 40))  # syslog writes on until its HUP
    log.write_text(pf_lines(40, 55, stamp="Nov  3 16:05:00"))
    f.run(TICK / 3)                                  # a pass between the writes
    append(logs / "mail.log.1", pf_lines(55, 60))
    f.run(TICK * 3)
    assert f.counts() == (60, 60)


def test_copytruncate_reads_the_rest_from_the_copy(tmp_path, logs, followers, watch_log):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 20))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    assert f.counts() == (20, 20)
    # no pass while logrotate copies and truncates: the follower falls behind
    append(log, pf_lines(20, 35))
    shutil.copyfile(log, logs / "mail.log.1")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, pf_lines(35, 50, stamp="Nov  3 16:06:00"))
    f.run(TICK * 3)
    assert f.counts() == (50, 50)
    assert "truncated" in watch_log.text and "mail.log.1" in watch_log.text


def test_copytruncate_that_splits_a_line_counts_its_end(tmp_path, logs, followers, watch_log):
    """logrotate's copytruncate while the logger was writing a line: the copy ends with the
    line's start, the truncated log (the logger writes on at its start, O_APPEND) begins with its
    end. That end was skipped unseen; it is a reject `starts_mid_line` in watch's stats, and every
    whole line is read."""
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 20))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    split = pf_lines(20, 21)
    append(log, pf_lines(21, 35) + split[:120])
    shutil.copyfile(log, logs / "mail.log.1")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, split[120:] + pf_lines(35, 50, stamp="Nov  3 16:06:00"))
    f.run(TICK * 3)
    assert f.counts() == (49, 49)                   # all but the split line's delivery
    rejected = f.engine.session.summary.rejected
    assert rejected["starts_mid_line"] == 1, rejected
    watch_log.clear()
    f.clock.advance(61)                             # the report of watch's stats names the reason
    f.engine._last_report = -1e9
    f.engine._reported = None
    f.engine._maybe_report()
    assert "starts_mid_line 1" in watch_log.text


def test_rotated_and_compressed_while_stopped(tmp_path, logs, followers, watch_log):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    assert f.counts() == (25, 25)
    f.stop()
    # while it is down: more lines, rotation (.1), a new file, and compression (.1 -> .1.gz)
    append(log, pf_lines(25, 40))
    os.rename(log, logs / "mail.log.1")
    log.write_text(pf_lines(40, 50, stamp="Nov  3 16:07:00"))
    with open(logs / "mail.log.1", "rb") as src, gzip.open(logs / "mail.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(logs / "mail.log.1")
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK * 3)
    assert f.counts() == (50, 50)
    assert "mail.log.1.gz" in watch_log.text


def _gzip_to(src, dst):
    with open(src, "rb") as fh, gzip.open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)
    os.unlink(src)


@pytest.mark.parametrize("rotated", ["mail-20261206.log", "mail.1.log", "mail-20261206.log.gz", "mail.1.log.gz"])
def test_rotated_while_stopped_to_logrotates_extension_names(tmp_path, logs, followers, rotated):
    """logrotate's `extension .log` keeps the extension last: mail.log -> mail.1.log (dateext:
    mail-20261206.log), then .gz. Those names were not looked at: the 15 lines written before the
    rotation while watch was down were never read (35 of 50)."""
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    f.stop()
    append(log, pf_lines(25, 40))
    if rotated.endswith(".gz"):
        _gzip_to(log, logs / rotated)
    else:
        os.rename(log, logs / rotated)
    (logs / "mailman.log").write_text(pf_lines(0, 1) + pf_lines(900, 905))  # not a rotated name of it
    log.write_text(pf_lines(40, 50, stamp="Nov  3 16:07:00"))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK * 3)
    assert f.counts() == (50, 50)


@pytest.mark.parametrize("olddir", ["old", "{logs}/../archive"])
def test_logrotate_olddir_while_stopped_and_with_copytruncate(tmp_path, logs, followers, watch_log, olddir):
    """logrotate's `olddir` puts the rotated copies in another directory (relative to the log's,
    or absolute). Set as the source's olddir, the rest of the log is read from there: after a
    rotation while watch was down (then compressed), and after a copytruncate. Before, neither
    was looked for (35 of 50 lines), and nothing was said."""
    olddir = olddir.format(logs=logs)
    old = logs / olddir
    old.mkdir()
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))
    src = [(str(log), "postfix", olddir)]
    f = new_follower(followers, tmp_path, src)
    f.run(TICK)
    f.stop()
    append(log, pf_lines(25, 40))
    os.rename(log, old / "mail.log.1")
    _gzip_to(old / "mail.log.1", old / "mail.log.1.gz")
    log.write_text(pf_lines(40, 50, stamp="Nov  3 16:07:00"))
    f = new_follower(followers, tmp_path, src)
    f.run(TICK * 3)
    assert f.counts() == (50, 50)
    # copytruncate into the olddir while it runs, the follower behind
    append(log, pf_lines(50, 60, stamp="Nov  3 16:07:00"))
    shutil.copyfile(log, old / "mail.log.2")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, pf_lines(60, 70, stamp="Nov  3 16:08:00"))
    f.run(TICK * 3)
    assert f.counts() == (70, 70)
    assert str(old / "mail.log.1.gz") in watch_log.text and str(old / "mail.log.2") in watch_log.text


def test_a_rotated_log_whose_copy_is_not_found_is_said(tmp_path, logs, followers, watch_log):
    """Without olddir set, a log rotated into another directory while watch was down cannot be
    finished; that is said (with what to set), not passed over in silence."""
    (logs / "old").mkdir()
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    f.stop()
    append(log, pf_lines(25, 40))
    os.rename(log, logs / "old" / "mail.log.1")
    log.write_text(pf_lines(40, 50, stamp="Nov  3 16:07:00"))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK * 3)
    assert f.counts() == (35, 35)
    assert "was rotated while not followed, and no rotated copy" in watch_log.text and "set olddir" in watch_log.text


def _two_rotations(logs):
    """While nothing reads: the log grows and is rotated twice (mail.log -> .1 -> .2.gz), the
    middle log (lines 40-50) written and rotated away unseen."""
    log = logs / "mail.log"
    append(log, pf_lines(25, 40))
    os.rename(log, logs / "mail.log.1")
    os.utime(logs / "mail.log.1", (time.time() - 100, time.time() - 100))
    log.write_text(pf_lines(40, 50, stamp="Nov  3 16:07:00"))
    os.utime(log, (time.time() - 50, time.time() - 50))
    _gzip_to(logs / "mail.log.1", logs / "mail.log.2.gz")
    os.utime(logs / "mail.log.2.gz", (time.time() - 100, time.time() - 100))
    os.rename(log, logs / "mail.log.1")
    log.write_text(pf_lines(50, 60, stamp="Nov  3 16:08:00"))
    (logs / "mail.log.3.gz").write_bytes(gzip.compress(pf_lines(900, 910, stamp="Nov  1 10:00:00").encode()))
    os.utime(logs / "mail.log.3.gz", (time.time() - 900, time.time() - 900))  # older than what was read


def test_two_rotations_while_stopped_read_the_log_rotated_in_between(tmp_path, logs, followers, watch_log):
    """A follower stopped over two rotations finds its log's rest in mail.log.2.gz and reads the
    new mail.log; mail.log.1, written and rotated while it was down, matched neither the named
    source nor a position: that whole log was lost (50 of 60 lines). Now the logs rotated away
    after the one found, never seen, are read from their start; an older rotated log is not."""
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    f.stop()
    _two_rotations(logs)
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK * 3)
    assert f.counts() == (60, 60)
    assert "rotated away from" in watch_log.text
    f.stop()
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])  # and once only
    f.run(TICK * 3)
    assert f.counts() == (60, 60)


def test_two_rotations_between_batch_runs_read_the_log_rotated_in_between(tmp_path, logs):
    from click.testing import CliRunner

    from pipeline.cli import cli

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 25))

    def ingest():
        r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "--timezone", "UTC", "ingest",
                                     "--year", "2026", str(log)])
        assert r.exit_code == 0, r.output

    ingest()
    _two_rotations(logs)
    ingest()
    ingest()
    con = pipeline.connect(tmp_path / "data")
    assert con.execute("SELECT count(*), count(DISTINCT recipient) FROM events").fetchall() == [(60, 60)]


def test_file_replaced_by_a_shorter_one_and_truncated(tmp_path, logs, followers):
    log = logs / "mail.log"
    log.write_text(pf_lines(0, 30))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK * 3)
    assert f.counts() == (30, 30)
    # replaced (new inode) by a shorter file
    tmp = logs / "mail.log.new"
    tmp.write_text(pf_lines(100, 105, stamp="Nov  3 17:00:00"))
    os.replace(tmp, log)
    f.run(TICK * 3)
    assert f.counts() == (35, 35)
    # rewritten in place with a new first line, to exactly the same size (its mtime is the
    # clock's: the kernel's coarse timestamps would give two writes this close the same one)
    with open(log, "w") as fh:
        fh.write(pf_lines(200, 205, stamp="Nov  3 18:00:00"))
    os.utime(log, (f.clock.time(), f.clock.time()))
    f.run(TICK * 3)
    assert f.counts() == (40, 40)
    # rewritten in place by a shorter file with the same first line: read again from the start
    with open(log, "w") as fh:
        fh.write(pf_lines(200, 201, stamp="Nov  3 18:00:00") + pf_lines(300, 302, stamp="Nov  3 18:00:00"))
    os.utime(log, (f.clock.time(), f.clock.time()))
    f.run(TICK * 3)
    assert f.counts() == (42, 42)
    f.run(TICK * 3)
    assert f.counts() == (42, 42)


def test_glob_gains_files(tmp_path, logs, followers):
    (logs / "a.log").write_text(pf_lines(0, 10))
    f = new_follower(followers, tmp_path, [(str(logs / "*.log"), "postfix")])
    f.run(TICK)
    assert f.counts() == (10, 10)
    (logs / "b.log").write_text(pf_lines(10, 25, stamp="Nov  3 16:10:00"))
    f.run(TICK)
    assert f.counts() == (25, 25)
    sub = logs / "c.log"
    sub.write_text("")
    f.run(TICK)                                       # seen empty first
    append(sub, pf_lines(25, 30, stamp="Nov  3 16:11:00"))
    f.run(TICK)
    assert f.counts() == (30, 30)


def test_an_idle_file_is_closed_and_reopened_when_it_grows(tmp_path, logs, followers):
    from pipeline.ingest.source import IDLE_CLOSE_S

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 10))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    f.run(TICK)
    assert len(f.engine.files.streams) == 1
    f.run(IDLE_CLOSE_S - 1)
    assert len(f.engine.files.streams) == 1
    f.run(2)
    assert f.engine.files.streams == {}                # quiet for IDLE_CLOSE_S: closed, position kept
    append(log, pf_lines(10, 15))
    f.run(TICK)
    assert f.counts() == (15, 15) and len(f.engine.files.streams) == 1


def test_multilog_rotation_and_qmail_state_across_restart(tmp_path, logs, followers):
    cur = logs / "current"
    label = 0x400000006565_9a1b

    def q(sec: int, msg: str) -> str:
        return f"@{label + sec:016x}0a3b1c2c {msg}\n"

    cur.write_text(q(0, "new msg 101") + q(0, "info msg 101: bytes 900 from <news@example.jp> qp 1 uid 1")
                   + q(1, "starting delivery 1: msg 101 to remote a@docomo.ne.jp")
                   + q(1, "starting delivery 2: msg 101 to remote b@ezweb.ne.jp"))
    f = new_follower(followers, tmp_path, [(str(cur), "qmail")])
    f.run(TICK * 2)
    f.stop()  # the deliveries in flight are saved with the position
    append(cur, q(2, "delivery 1: success: 203.138.181.112_accepted_message./Remote_host_said:_250_ok/"))
    # multilog: current -> @<tai64n>.s, a new current
    os.rename(cur, logs / f"@{label + 3:016x}0a3b1c2c.s")
    cur.write_text(q(4, "delivery 2: failure: 111.87.0.1_does_not_like_recipient./"
                        "Remote_host_said:_550_5.1.1_<b@ezweb.ne.jp>:_User_unknown/Giving_up_on_111.87.0.1./"))
    f = new_follower(followers, tmp_path, [(str(cur), "qmail")])
    f.run(TICK * 2)
    assert f.counts() == (2, 2)
    con = pipeline.connect(f.data)
    rows = dict(con.execute("SELECT recipient, status FROM events").fetchall())
    con.close()
    assert rows == {"a@docomo.ne.jp": "sent", "b@ezweb.ne.jp": "bounced"}
    # and while running: current rotated again
    append(cur, q(5, "starting delivery 3: msg 101 to remote c@docomo.ne.jp"))
    f.run(TICK * 2)
    os.rename(cur, logs / f"@{label + 6:016x}0a3b1c2c.s")
    cur.write_text(q(7, "delivery 3: deferral: Sorry,_I_wasn't_able_to_establish_an_SMTP_connection._(#4.4.1)/"))
    f.run(TICK * 2)
    assert f.counts() == (3, 3)


def test_missing_and_deleted_source_reported_others_keep_going(tmp_path, logs, followers, watch_log):
    good, missing = logs / "mail.log", logs / "other" / "maillog"
    good.write_text(pf_lines(0, 10))
    f = new_follower(followers, tmp_path, [(str(missing), "postfix"), (str(good), "postfix")])
    f.run(TICK)
    assert f.counts() == (10, 10)
    assert "does not exist (yet)" in watch_log.text
    missing.parent.mkdir()
    missing.write_text(pf_lines(10, 20, stamp="Nov  3 16:20:00"))
    f.run(TICK)
    assert f.counts() == (20, 20)
    assert "is back" in watch_log.text
    good.unlink()
    append(missing, pf_lines(20, 25, stamp="Nov  3 16:21:00"))
    f.run(TICK)
    assert f.counts() == (25, 25)
    assert "renamed or deleted" in watch_log.text
    good.write_text(pf_lines(25, 30, stamp="Nov  3 16:22:00"))
    f.run(TICK)
    assert f.counts() == (30, 30)


def test_a_failing_store_keeps_the_events_and_retries_with_backoff(tmp_path, logs, followers, monkeypatch, watch_log):
    from pipeline.ingest.session import Session

    log = logs / "mail.log"
    log.write_text(pf_lines(0, 10))
    f = new_follower(followers, tmp_path, [(str(log), "postfix")])
    real_commit, failing = Session.commit, [True]

    def commit(self, *a, **kw):
        if failing[0] and self.buffer:
            raise OSError(28, "No space left on device")
        return real_commit(self, *a, **kw)

    monkeypatch.setattr(Session, "commit", commit)
    f.run(TICK * 10)
    assert f.counts() == (0, 0) and "retrying in" in watch_log.text and "nothing is lost" in watch_log.text
    assert f.engine.flush_failures >= 2                # retried, with growing delays
    failing[0] = False
    f.run(60)                                          # RETRY_MAX_S: the next retry has come
    assert f.counts() == (10, 10) and "writing events works again" in watch_log.text


RESTART = 'Nov  3 16:00:00 mx1 rsyslogd: [origin software="rsyslogd" swVersion="8.2302.0"] start\n'


def lines_read(f: Follower) -> int:
    return f.engine.session.summary.lines


def test_two_logs_that_start_with_the_same_line_are_each_followed_as_their_own(tmp_path, logs, followers):
    """Two vhosts' logs written by one rsyslog both start with its restart line, and a copy of a
    log beside it starts with that log's first line. Read positions were kept per first line:
    watch took the second file open for a copy of the first and never read it (its lines lost),
    and a restart read one from the other's offset. Now each is its own log, through rotation
    (rename + create, the new file starting with the same line again), a copy, and a restart:
    every line read once (the lines read are counted, the store would hide a second reading)."""
    a, b = logs / "a.log", logs / "b.log"
    a.write_text(RESTART + pf_lines(0, 20))
    b.write_text(RESTART + pf_lines(100, 130))
    f = new_follower(followers, tmp_path, [(str(logs / "*.log*"), "postfix")])
    f.run(TICK)
    assert f.counts() == (50, 50) and lines_read(f) == 52
    append(a, pf_lines(20, 25))
    append(b, pf_lines(130, 135))
    f.run(TICK)
    assert f.counts() == (60, 60) and lines_read(f) == 62
    os.rename(a, logs / "a.log.1")                   # rotated: syslog writes on into it until its HUP
    append(logs / "a.log.1", pf_lines(25, 28))
    a.write_text(RESTART + pf_lines(200, 205))       # the new a.log starts with the same line again
    append(b, pf_lines(135, 140))
    f.run(TICK * 3)
    assert f.counts() == (73, 73) and lines_read(f) == 62 + 3 + 6 + 5
    shutil.copyfile(b, logs / "b.log.bak")           # a copy beside it: read as its own log, stored once
    append(b, pf_lines(140, 142))
    f.run(TICK * 3)
    assert f.counts() == (75, 75) and lines_read(f) == 76 + 41 + 2
    f.stop()
    append(a, pf_lines(205, 210))                    # while it is down
    append(b, pf_lines(142, 145))
    append(logs / "a.log.1", pf_lines(28, 30))
    f = new_follower(followers, tmp_path, [(str(logs / "*.log*"), "postfix")])
    f.run(TICK)
    assert f.counts() == (85, 85) and lines_read(f) == 10  # each from where it was: none read again


def test_batch_and_watch_agree_on_logs_that_start_with_the_same_line(tmp_path, logs, followers):
    """A batch run kept one position for two logs with the same first line (the last read):
    a watch after it read the other again from its start, and the next batch run after that."""
    from pipeline.ingest.engine import ingest

    a, b = logs / "a.log", logs / "b.log"
    a.write_text(RESTART + pf_lines(0, 20))
    b.write_text(RESTART + pf_lines(100, 130))
    f = Follower(tmp_path, [(str(logs / "*.log"), "postfix")])
    s = ingest(f.cfg, [logs / "*.log"])
    assert s.lines == 52 and s.events_written == 50
    f.start()
    followers.append(f)
    f.run(TICK)
    assert lines_read(f) == 0                        # nothing read again
    append(a, pf_lines(20, 25))
    append(b, pf_lines(130, 135))
    f.run(TICK)
    assert f.counts() == (60, 60) and lines_read(f) == 10
    f.stop()
    append(a, pf_lines(25, 27))
    s = ingest(f.cfg, [logs / "*.log"])
    assert s.lines == 2 and f.counts() == (62, 62)


def test_a_file_in_the_olddir_belongs_to_its_source(tmp_path):
    """A position left part way through a copy in the olddir (watch stopped while finishing it)
    is taken up again only if its path is known as the source's: a glob source's olddir files
    were not, so the rest of that copy was passed over at the next start."""
    from pipeline.ingest.source import LogFiles, SourceSpec

    logs = tmp_path / "logs"
    glob_spec = SourceSpec(str(logs / "mail.log*"), "postfix", "old")
    named = SourceSpec(str(logs / "maillog"), "postfix", "../archive")
    files = LogFiles([glob_spec, named], {}, follow=True)
    assert files.source_of(str(logs / "old" / "mail.log.2.gz")) is glob_spec
    assert files.source_of(str(tmp_path / "archive" / "maillog-20261206.gz")) is named
    assert files.source_of(str(logs / "old" / "syslog.1")) is None
    assert files.source_of(str(tmp_path / "elsewhere" / "mail.log.1")) is None


def test_a_watch_started_mid_stream_counts_the_results_without_their_start(tmp_path, logs, followers, watch_log):
    """A watch started on a multilog `current` whose older `@….s` files are not followed: the
    results of the deliveries started before its first line cannot be attributed; they are
    rejects `result_without_start` in watch's stats, not dropped unseen."""
    cur = logs / "current"
    label = 0x400000006565_9a1b

    def q(sec: int, msg: str) -> str:
        return f"@{label + sec:016x}0a3b1c2c {msg}\n"

    cur.write_text(q(0, "delivery 7: success: 203.138.181.112_accepted_message./Remote_host_said:_250_ok/")
                   + q(0, "delivery 8: deferral: Sorry,_I_wasn't_able_to_establish_an_SMTP_connection._(#4.4.1)/")
                   + q(1, "starting delivery 1: msg 101 to remote a@docomo.ne.jp")
                   + q(2, "delivery 1: success: 203.138.181.112_accepted_message./Remote_host_said:_250_ok/"))
    f = new_follower(followers, tmp_path, [(str(cur), "qmail")])
    f.run(TICK * 2)
    assert f.counts() == (1, 1)
    assert f.engine.session.summary.rejected == {"result_without_start": 2}
    f.engine._last_report, f.engine._reported = -1e9, None
    f.engine._maybe_report()
    assert "2 lines rejected (result_without_start 2) so far" in watch_log.text
