"""Bad input and faults, each on the real engine, the real store and (where the issue asks about a
command) the real CLI: mixed formats, a wrong --format, a non-mail file, re-reads with other parse
settings, impossible queue ids, standard input, rotation between batch runs (also for a path that
is not a glob), a damaged store file, a read-only data dir, a full disk, kill -9 of a batch run."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import pipeline
from fixtures import REPO, SAMPLES
from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.core.errors import StoreCorrupt
from pipeline.ingest.engine import ingest
from pipeline.store.event_store import EventStore

GEN = REPO / "bench" / "gen_logs.py"
PF = ("Nov 10 09:00:{s:02d} mx1 postfix/smtp[2]: 3C6D1C0A{n:02X}: to=<u{n}@docomo.ne.jp>, "
      "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)")


def run(data: Path, *args: str, stdin: bytes | None = None, timezone: str = "Asia/Tokyo") -> subprocess.CompletedProcess:
    """The real command in a child process."""
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--data-dir", str(data),
                           "--timezone", timezone, *args], input=stdin, capture_output=True, timeout=300)


def invoke(data: Path, *args: str, timezone: str = "Asia/Tokyo"):
    return CliRunner().invoke(cli, ["--data-dir", str(data), "--timezone", timezone, *map(str, args)])


def count(data: Path, where: str = "true") -> int:
    con = pipeline.connect(data)
    try:
        return con.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()[0]
    finally:
        con.close()


def state(data: Path) -> dict:
    return json.loads((data / "state" / "ingest-state.json").read_text())


def old(path: Path, seconds: int = 3600) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def pf_lines(start: int, stop: int, second: int = 2) -> str:
    return "".join(PF.format(s=second, n=n % 256).replace("3C6D1C0A", f"3C6D{n // 256:02X}0A") + "\n"
                   for n in range(start, stop))


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------- formats
def test_a_mixed_file_under_auto_reads_every_line_by_its_own_format(cfg, tmp_path):
    """Postfix, sendmail and qmail lines interleaved (and lines of other programs): each line goes
    to its own MTA's parser; the others are counted; nothing is dropped silently."""
    pf = (SAMPLES / "postfix" / "mail.log").read_text().splitlines()
    sm = (SAMPLES / "sendmail" / "maillog").read_text().splitlines()
    qm = (SAMPLES / "qmail" / "current").read_text().splitlines()
    other = ["Nov 10 09:00:00 mx1 dovecot: imap-login: Login: user=<x>", "Nov 10 09:00:00 mx1 kernel: eth0 up"]
    rng = random.Random(3)
    queues = [list(pf), list(sm), list(qm), other * 3]
    mixed = []
    while any(queues):  # interleaved, each MTA's own lines in their order
        q = rng.choice([q for q in queues if q])
        mixed.append(q.pop(0))
    log = tmp_path / "mixed.log"
    log.write_text("\n".join(mixed) + "\n")
    old(log)
    s = ingest(cfg, [log], year=2026)
    separate = {}
    for name, path in (("postfix", SAMPLES / "postfix" / "mail.log"), ("sendmail", SAMPLES / "sendmail" / "maillog"),
                       ("qmail", SAMPLES / "qmail" / "current")):
        one = load_config(None, data_dir=tmp_path / f"alone-{name}", timezone="Asia/Tokyo")
        separate[name] = ingest(one, [path], year=2026).events_written
    assert s.files[0]["format"] == "postfix+sendmail+qmail"
    assert s.lines == len(mixed) and s.other_lines == len(other) * 3
    assert sum(s.rejected.values()) == 0
    by_mta = dict(pipeline.connect(cfg.data_dir).execute("SELECT mta, count(*) FROM events GROUP BY mta").fetchall())
    assert by_mta == separate and all(separate.values())


@pytest.mark.slow
def test_a_wrong_format_is_refused_not_marked_read_and_exits_non_zero(tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "maillog"
    shutil.copy(SAMPLES / "sendmail" / "maillog", log)
    r = run(data, "ingest", "--format", "postfix", str(log))
    assert r.returncode == 1
    assert "19 lines, none looked like postfix" in r.stderr.decode()
    assert not (data / "events").exists() or count(data) == 0
    assert all(p.get("path") != str(log) or p["offset"] == 0 for p in state(data)["positions"].values())
    ok = run(data, "ingest", "--format", "sendmail", str(log))  # the right format reads it all
    assert ok.returncode == 0, ok.stderr
    assert count(data) > 0 and list(state(data)["positions"].values())[0]["offset"] == log.stat().st_size


def test_a_file_of_no_mta_exits_non_zero(tmp_path):
    r = run(tmp_path / "data", "ingest", "/etc/passwd")
    assert r.returncode == 1
    assert "none looked like Postfix, sendmail or qmail" in r.stderr.decode()


@pytest.mark.slow
def test_standard_input(tmp_path):
    """`journalctl -u postfix -o short-iso | mailhygiene ingest --format postfix -`: RFC 3339
    stamps from standard input; read to its end, nothing marked as read (no file to mark)."""
    text = "".join(f"2026-11-10T09:00:{n:02d}+0900 mx1 postfix/smtp[2]: 3C6D1C0A{n:02X}: to=<u{n}@docomo.ne.jp>, "
                   "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
                   for n in range(30))
    data = tmp_path / "data"
    r = run(data, "ingest", "--format", "postfix", "-", stdin=text.encode())
    assert r.returncode == 0, r.stderr
    assert count(data) == 30
    again = run(data, "ingest", "-", stdin=text.encode())  # auto: told by its lines; nothing twice
    assert again.returncode == 0, again.stderr
    assert count(data) == 30 and "already stored:   30" in again.stdout.decode()


# ---------------------------------------------------------------------------- ids across settings
@pytest.mark.slow
def test_reread_with_another_timezone_or_year_stores_no_second_copy(tmp_path):
    """The event id is the line's (and its recipient's), not the parse settings': a re-read that
    puts the same line on another UTC day (another zone) or in another year finds it stored."""
    data = tmp_path / "data"
    logs = [str(SAMPLES / "postfix" / "mail.log.1.gz"), str(SAMPLES / "postfix" / "mail.log"),
            str(SAMPLES / "sendmail" / "maillog"), str(SAMPLES / "qmail" / "current")]
    first = invoke(data, "ingest", "--year", "2026", *logs)
    assert first.exit_code == 0, first.output
    n = count(data)
    days = {p.name for p in EventStore(data).partitions()}
    for zone, year in (("UTC", "2026"), ("Pacific/Kiritimati", "2026"), ("Asia/Tokyo", "2025"), ("America/Los_Angeles", "2024")):
        again = invoke(data, "ingest", "--reread", "--year", year, *logs, timezone=zone)
        assert again.exit_code == 0, again.output
        assert "events written:   0" in again.output, (zone, year, again.output)
    assert count(data) == n
    assert {p.name for p in EventStore(data).partitions()} == days
    con = pipeline.connect(data)
    assert con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0] == n


# ---------------------------------------------------------------------------- odd lines
def test_postfix_lines_with_impossible_queue_ids_are_rejects(cfg, tmp_path):
    good = PF.format(s=1, n=1)
    bad = [good.replace("3C6D1C0A01", "3C6D-1C0A!"), good.replace("3C6D1C0A01", "ZZ"),
           "Nov 10 09:00:02 mx1 postfix/qmgr[9]: 3C6D1C0AQQ: from=<a@b>, size=1, nrcpt=1 (queue active)",
           "Nov 10 09:00:02 mx1 postfix/cleanup[9]: 3c6d1c0a0a: message-id=<x@y>"]
    fine = ["Nov 10 09:00:02 mx1 postfix/smtpd[9]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <a@b>: "
            "Relay access denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"]
    log = tmp_path / "mail.log"
    log.write_text("\n".join([good, *bad, *fine]) + "\n")
    for columnar in (True, False):
        one = load_config(None, data_dir=tmp_path / f"d{columnar}", timezone="Asia/Tokyo")
        s = ingest(one, [log], fmt="postfix", columnar=columnar)
        assert dict(s.rejected) == {"malformed": len(bad)} and s.events_written == 1


@pytest.mark.parametrize("fmt", ["postfix", "sendmail"])
def test_garbage_shift_jis_nul_and_huge_lines_are_counted_rejects(cfg, tmp_path, fmt):
    good = PF.format(s=1, n=1) if fmt == "postfix" else (SAMPLES / "sendmail" / "maillog").read_text().splitlines()[3]
    rng = random.Random(11)
    chunks = [good.encode(),
              "Nov 10 09:00:02 mx1 postfix/cleanup[2]: 3C6D1C0A99: warning: header Subject: ".encode() + "テスト".encode("shift_jis"),
              b"\x00\x00" + good.encode(),
              b"Nov 10 09:00:02 mx1 postfix/smtp[2]: " + b"A" * 300_000,
              bytes(rng.randrange(256) for _ in range(5000)).replace(b"\n", b".")]
    log = tmp_path / "mail.log"
    log.write_bytes(b"\n".join(chunks) + b"\n")
    old(log)
    s = ingest(cfg, [log], fmt=fmt)
    assert s.lines == 5
    assert s.rejected["too_long"] == 1 and s.rejected["nul_bytes"] == 1 and s.rejected["invalid_utf8"] >= 2
    assert s.recovered == 1 and s.events_parsed == 2  # the good line, and the same line behind NULs


# ---------------------------------------------------------------------------- rotation between runs
@pytest.mark.parametrize("mode", ["rename", "rename+compress", "copytruncate"])
def test_a_file_rotated_between_batch_runs_is_finished_from_its_sibling(tmp_path, mode):
    """`ingest /var/log/mail.log` (a path, not a glob) night after night: lines appended after a
    run and then rotated away before the next are found by fingerprint in mail.log.1(.gz)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "mail.log"
    data = tmp_path / "data"
    live.write_text(pf_lines(0, 20))
    old(live)
    assert invoke(data, "ingest", live).exit_code == 0
    with open(live, "a") as fh:
        fh.write(pf_lines(20, 35))  # written after the run ...
    if mode == "copytruncate":
        shutil.copyfile(live, logs / "mail.log.1")
        live.write_text(pf_lines(35, 50, second=30))
    else:
        os.rename(live, logs / "mail.log.1")  # ... and rotated away before the next
        if mode == "rename+compress":
            with open(logs / "mail.log.1", "rb") as src, gzip.open(logs / "mail.log.1.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (logs / "mail.log.1").unlink()
        live.write_text(pf_lines(35, 50, second=30))
    for p in logs.iterdir():
        old(p)
    r = invoke(data, "ingest", live)
    assert r.exit_code == 0, r.output
    assert count(data) == 50 and count(data, "true") == len({r[0] for r in pipeline.connect(data).execute(
        "SELECT recipient FROM events").fetchall()})
    assert invoke(data, "ingest", live).exit_code == 0 and count(data) == 50



# where the tests cut a line: inside a delivery's text (what logrotate's copytruncate does when the
# logger has written the start of a line and not its end)
CUT_AFTER = {"postfix": ", relay=", "sendmail": ", relay=", "qmail": " success: "}


@pytest.mark.parametrize("columnar", [True, False])
@pytest.mark.parametrize("mta", ["postfix", "sendmail", "qmail"])
def test_the_end_of_a_line_split_by_copytruncate_is_a_reject(tmp_path, mta, columnar):
    """copytruncate while the logger was writing a line: the copy (mail.log.1) ends with the line's
    start, the live log starts with its end. That end, read from the new start of the file, was
    skipped unseen (no prefix: no parser's line); it is a reject `starts_mid_line`, by both ways of
    reading, and the lines after it are read as before; the start is a `malformed` reject (a
    delivery line without its status; qmail's result reads as one without its text)."""
    from fixtures import generated_log

    text = generated_log(tmp_path, mta, lines=3000).read_text()
    at = text.index(CUT_AFTER[mta], len(text) // 2) + len(CUT_AFTER[mta]) + 3
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "mail.log.1").write_text(text[:at])
    (logs / "mail.log").write_text(text[at:])
    whole = tmp_path / "whole.log"
    whole.write_text(text)
    for p in (*logs.iterdir(), whole):
        old(p)
    s = ingest(load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo"),
               [logs / "mail.log.1", logs / "mail.log"], fmt=mta, year=2026, columnar=columnar)
    assert s.rejected["starts_mid_line"] == 1 and s.lines == text.count("\n") + 1
    assert sum(s.rejected.values()) == (1 if mta == "qmail" else 2), s.rejected
    samples = [json.loads(ln) for ln in open(s.rejects_file)]
    assert [(r["file"].endswith("mail.log"), r["offset"]) for r in samples if r["reason"] == "starts_mid_line"] == [(True, 0)]
    # every other line as in the log read whole: the events of all but the split line
    w = ingest(load_config(None, data_dir=tmp_path / "whole", timezone="Asia/Tokyo"), [whole], fmt=mta, year=2026,
               columnar=columnar)
    assert s.events_parsed >= w.events_parsed - 1 - 2 * (mta == "sendmail")


@pytest.mark.parametrize("mode", ["rename", "rename+compress", "copytruncate+compress"])
def test_a_file_rotated_after_it_was_read_to_its_end_is_no_warning(tmp_path, mode):
    """The nightly `ingest /var/log/mail.log` with logrotate's rename + compress between two
    runs and nothing written in between: the copy holds the log, read to its end. It warned
    `… was rotated while not followed, and no rotated copy holding its text was found …: lines
    written to it after offset N, if any, are not read` every night (a cron mail crying data loss)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "mail.log"
    data = tmp_path / "data"
    live.write_text(pf_lines(0, 20))
    old(live)
    assert invoke(data, "ingest", live).exit_code == 0
    if mode.startswith("copytruncate"):
        shutil.copyfile(live, logs / "mail.log.1")
    else:
        os.rename(live, logs / "mail.log.1")
    if mode.endswith("compress"):
        with open(logs / "mail.log.1", "rb") as src, gzip.open(logs / "mail.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        (logs / "mail.log.1").unlink()
    live.write_text(pf_lines(20, 30, second=30))
    for p in logs.iterdir():
        old(p)
    r = run(data, "ingest", str(live))
    assert r.returncode == 0, r.stderr
    assert b"rotated while not followed" not in r.stderr and b"not read" not in r.stderr, r.stderr
    assert count(data) == 30
    assert all(p["done"] for p in state(data)["positions"].values() if p["offset"] == len(pf_lines(0, 20)))

# ---------------------------------------------------------------------------- the store
def test_a_damaged_store_file_gives_every_command_an_error_naming_it(tmp_path):
    data = tmp_path / "data"
    cfg_file = tmp_path / "mailhygiene.toml"
    cfg_file.write_text(f'[[sources]]\npath = "{SAMPLES / "postfix" / "mail.log"}"\n')
    assert invoke(data, "ingest", SAMPLES / "postfix" / "mail.log").exit_code == 0
    victim = EventStore(data).files()[0]
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated
    # (export reads only the suppression list, not the events: it is not among them)
    for args in (["ingest", "--reread", SAMPLES / "postfix" / "mail.log"], ["suppress", "--dry-run"], ["report"],
                 ["suppression", "show", "hanako@docomo.ne.jp"], ["--config", cfg_file, "clean"]):
        head = [a for a in args[:2] if a == "--config" or str(a).endswith(".toml")]
        rest = args[len(head):]
        r = CliRunner().invoke(cli, [*map(str, head), "--data-dir", str(data), "--timezone", "Asia/Tokyo", *map(str, rest)])
        assert r.exit_code == 1, (args, r.output)
        assert "Error:" in r.output and str(victim) in r.output and "--reread" in r.output, (args, r.output)
        assert "Traceback" not in r.output
    with pytest.raises(StoreCorrupt):
        pipeline.connect(data)


def test_a_file_compacted_away_between_listing_and_check_is_not_damage(tmp_path):
    """A reader (a notebook's pipeline.connect(), `report`) lists the store while `watch` compacts
    a day: the listed file is gone by the time it is checked. That is not a damaged store; a
    truncated file in the same listing still is."""
    from pipeline.store import layout

    data = tmp_path / "data"
    assert invoke(data, "ingest", SAMPLES / "postfix" / "mail.log").exit_code == 0
    files = layout.stored_files(data)
    gone = files[0].with_name("part-compacted-away.parquet")
    layout.check_files(data, [gone, *files])  # no error
    victim = files[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(StoreCorrupt, match="truncated"):
        layout.check_files(data, [gone, *files])


def _mount(kind: str, target: Path, size: str = "") -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    target.mkdir(parents=True, exist_ok=True)
    opts = ["-o", f"size={size}"] if size else []
    r = subprocess.run(["mount", "-t", "tmpfs", *opts, "tmpfs", str(target)], capture_output=True)
    return r.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_a_read_only_data_dir_is_an_error_and_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    if not _mount("tmpfs", data, "1m"):
        pytest.skip("needs root and mount to make a read-only file system")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        r = run(data, "ingest", str(SAMPLES / "postfix" / "mail.log"))
        assert r.returncode == 1
        err = r.stderr.decode()
        # (the CLI may refuse the data dir before ingest starts: its owner check)
        assert err.startswith("Error:") and ("Read-only file system" in err or "not writable" in err)
        assert "Traceback" not in err
        # the library itself, past any such check: a StoreError, nothing left behind
        from pipeline.core.errors import StoreError

        with pytest.raises(StoreError, match="Read-only file system"):
            ingest(load_config(None, data_dir=data, timezone="Asia/Tokyo"), [SAMPLES / "postfix" / "mail.log"])
        assert list(data.iterdir()) == []
    finally:
        _umount(data)


@pytest.mark.slow
def test_a_full_disk_is_an_error_and_leaves_no_temp_files(tmp_path):
    """The events of a big log do not fit: the run stops with `Error:`, no temp file is left,
    and what was stored and marked as read agree (a later run with space completes it)."""
    log = tmp_path / "big.log"
    subprocess.run([sys.executable, str(GEN), str(log), "--lines", "60000", "--days", "1"], check=True)
    old(log)
    data = tmp_path / "data"
    if not _mount("tmpfs", data, "160k"):
        pytest.skip("needs root and mount to make a small file system")
    try:
        (data / "mailhygiene.toml").write_text("[ingest]\nbatch_events = 2000\n")
        r = run(data, "--config", str(data / "mailhygiene.toml"), "ingest", "--no-progress", str(log))
        err = r.stderr.decode()
        assert r.returncode == 1, (r.stdout, err)
        assert "Error:" in err and "No space left on device" in err and "Traceback" not in err
        assert temp_files(data) == []
        stored = count(data) if (data / "events").exists() else 0
        copy = tmp_path / "copy"
        shutil.copytree(data, copy)
    finally:
        _umount(data)
    r = run(copy, "ingest", "--no-progress", str(log))  # room now: the rest, nothing twice
    assert r.returncode == 0, r.stderr
    total = count(copy)
    con = pipeline.connect(copy)
    assert con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0] == total
    fresh = tmp_path / "fresh"
    assert run(fresh, "ingest", "--no-progress", str(log)).returncode == 0
    assert total == count(fresh) and stored < total


# ---------------------------------------------------------------------------- kill -9
@pytest.mark.slow
def test_kill_9_of_a_batch_run_loses_and_doubles_nothing(tmp_path):
    """A batch ingest with small batches SIGKILLed at random moments, then run again until it
    finishes: the store holds exactly what one uninterrupted run stores."""
    log = tmp_path / "big.log"
    subprocess.run([sys.executable, str(GEN), str(log), "--lines", "120000", "--days", "2"], check=True)
    old(log)
    cfg_file = tmp_path / "mailhygiene.toml"
    cfg_file.write_text("[ingest]\nbatch_events = 1500\n")
    data = tmp_path / "data"
    seed = int(os.environ.get("INGEST_KILL_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    # 64 KiB blocks (not 8 MiB): many commits in a run, so a kill lands between commits or in one
    child_code = "import pipeline.ingest.source as s; s.BLOCK_BYTES = 64 * 1024; from pipeline.cli import main; main()"
    cmd = [sys.executable, "-c", child_code, "--config", str(cfg_file), "--data-dir",
           str(data), "--timezone", "Asia/Tokyo", "ingest", "--no-progress", str(log)]
    kills = 0
    for attempt in range(8):
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:
            # the first kill lands after the first commit, whatever the machine's speed: wait for a
            # stored file, bounded
            deadline = time.monotonic() + 60
            while child.poll() is None and time.monotonic() < deadline and not any((data / "events").rglob("*.parquet")):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            time.sleep(rng.uniform(0.2, 1.2))
        if child.poll() is not None:
            break  # it finished: the store is complete
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        kills += 1
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    fresh = tmp_path / "fresh"
    assert run(fresh, "ingest", "--no-progress", str(log)).returncode == 0
    con = pipeline.connect(data)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert kills >= 1, f"seed {seed}: no run was killed"
    assert (total, distinct) == (count(fresh), count(fresh)), f"seed {seed}"
    assert temp_files(data / "events") == []
