"""Batch ingest into the real event store: idempotency, rotation copies, bad input, CRLF."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import time

import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline.core.errors import InputError
from pipeline.store.event_store import EventStore
from pipeline.ingest.engine import ingest
from pipeline.store.records import EVENT_SCHEMA

from fixtures import SAMPLES

GOOD = ("Nov 10 09:00:02 mx1 postfix/smtp[2]: 3C6D1C0A{n:02X}: to=<u{n}@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)")


def count(cfg, where="true"):
    con = pipeline.connect(cfg.data_dir)
    return con.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()[0]


def saved_state(cfg):
    """The session's state file: positions and parser state in one."""
    return json.loads((cfg.data_dir / "state" / "ingest-state.json").read_text())


def old(path, seconds=3600):
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_samples_ingest_with_schema_and_partitions(cfg):
    s = ingest(cfg, [SAMPLES / "postfix" / "mail.log.1.gz", SAMPLES / "postfix" / "mail.log",
                     SAMPLES / "sendmail" / "maillog", SAMPLES / "qmail" / "current"])
    assert s.events_written == 81 and sum(s.rejected.values()) == 0
    assert {f["format"] for f in s.files} == {"postfix", "sendmail", "qmail"}
    store = EventStore(cfg.data_dir)
    days = [p.name for p in store.partitions()]
    assert days[0] == "date=2026-11-09" and "date=2026-11-20" in days
    table = pq.read_table(store.files()[0])
    assert table.schema.names == EVENT_SCHEMA.names
    con = pipeline.connect(cfg.data_dir)
    assert con.execute("SELECT count(DISTINCT event_id) = count(*) FROM events").fetchone()[0]
    assert con.execute("SELECT count(*) FROM events WHERE carrier IS NULL OR reason IS NULL OR scope IS NULL").fetchone()[0] == 0
    row = con.execute("SELECT source_file, source_offset FROM events WHERE recipient = 'jiro.old@au.com' ORDER BY ts LIMIT 1").fetchone()
    assert row[0].endswith("mail.log.1.gz") and row[1] > 0


def test_the_state_file_is_written_only_when_it_changes(cfg, monkeypatch):
    # each write is a temp file, two fsyncs and a rename: a batch run's last commit (after the
    # last file's commit, nothing read since) leaves it as it is
    from pipeline.core import fsutil

    writes = []
    real = fsutil.atomic_write_text
    monkeypatch.setattr(fsutil, "atomic_write_text", lambda path, text, *a, **k: (writes.append(path.name),
                                                                                    real(path, text, *a, **k))[1])
    log = SAMPLES / "postfix" / "mail.log"
    s = ingest(cfg, [log], fmt="postfix", year=2026)
    assert s.events_written > 20 and s.commits >= 2
    assert writes.count("ingest-state.json") == 1
    state = saved_state(cfg)
    assert state["positions"] and state["parsers"]["postfix"]
    ingest(cfg, [log, SAMPLES / "sendmail" / "maillog"], year=2026)  # only the new file's commit writes
    assert writes.count("ingest-state.json") == 2
    assert saved_state(cfg)["parsers"]["sendmail"] and saved_state(cfg)["parsers"]["postfix"] == state["parsers"]["postfix"]


def test_reingest_and_rotated_gz_copy_add_nothing(cfg, tmp_path):
    log = tmp_path / "mail.log"
    shutil.copy(SAMPLES / "postfix" / "mail.log", log)
    old(log)
    first = ingest(cfg, [log])
    assert first.events_written == 46
    again = ingest(cfg, [log], use_positions=False)
    assert again.events_parsed == 46 and again.events_written == 0
    # logrotate renames and later compresses: same text, new name -> recognised, nothing added
    rotated = tmp_path / "mail.log.1.gz"
    with open(log, "rb") as src, gzip.open(rotated, "wb") as dst:
        dst.write(src.read())
    log.unlink()
    third = ingest(cfg, [rotated])
    assert third.events_written == 0
    assert count(cfg) == 46


def test_a_batch_overlapping_several_stored_files_adds_only_its_new_rows(cfg, tmp_path):
    """The store checks a batch against each stored file of the day in turn: rows found in the
    first file and rows found in the second are all left out."""
    def log(name, numbers):
        path = tmp_path / name
        path.write_text("".join(GOOD.format(n=n) + "\n" for n in numbers))
        return old(path)

    assert ingest(cfg, [log("a.log", range(0, 10))]).events_written == 10
    assert ingest(cfg, [log("b.log", range(10, 20))]).events_written == 10
    assert len(EventStore(cfg.data_dir).files()) == 2
    assert ingest(cfg, [log("c.log", range(5, 25))]).events_written == 5
    assert count(cfg) == 25 and count(cfg, "recipient = 'u24@docomo.ne.jp'") == 1


def test_positions_read_only_what_is_new(cfg, tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("\n".join(GOOD.format(n=n) for n in range(5)) + "\n")
    old(log)
    assert ingest(cfg, [log]).events_written == 5
    with open(log, "a") as fh:
        fh.write("\n".join(GOOD.format(n=n) for n in range(5, 8)) + "\n")
    old(log)
    s = ingest(cfg, [log])
    assert s.lines == 3 and s.events_written == 3
    assert count(cfg) == 8


def test_partial_last_line_of_a_live_file_waits(cfg, tmp_path):
    log = tmp_path / "mail.log"
    full = GOOD.format(n=1)
    log.write_text(GOOD.format(n=0) + "\n" + full[:40])  # just written, no newline yet
    assert ingest(cfg, [log]).events_written == 1
    with open(log, "a") as fh:
        fh.write(full[40:] + "\n")
    s = ingest(cfg, [log])
    assert s.events_written == 1 and sum(s.rejected.values()) == 0
    assert count(cfg) == 2


def test_crlf_line_endings(cfg, tmp_path):
    log = tmp_path / "mail.log"
    log.write_bytes(b"\r\n".join(GOOD.format(n=n).encode() for n in range(3)) + b"\r\n")
    s = ingest(cfg, [log])
    assert s.events_written == 3
    con = pipeline.connect(cfg.data_dir)
    assert con.execute("SELECT count(*) FROM events WHERE diagnostic LIKE '%\r%'").fetchone()[0] == 0


def test_bad_input_is_counted_kept_aside_and_survived(cfg, tmp_path):
    rng = random.Random(7)
    log = tmp_path / "mail.log"
    bad_utf8_delivery = GOOD.format(n=1).replace("(250 ok)", "(250 ok \xff\xfe)").encode("latin-1")
    sjis_subject = "Nov 10 09:00:02 mx1 postfix/cleanup[2]: 3C6D1C0A99: warning: header Subject: ".encode() + "テスト".encode("shift_jis")
    chunks = [
        GOOD.format(n=0).encode(),
        bad_utf8_delivery,
        sjis_subject,
        b"\x00\x00\x00" + GOOD.format(n=2).encode(),
        b"Nov 10 09:00:02 mx1 postfix/smtp[2]: 3C6D1C0AFF: to=<x@docomo.ne.jp>, relay=",  # truncated
        b"Nov 10 09:00:02 mx1 postfix/smtp[2]: " + b"A" * 300_000,  # hundreds of KB
        bytes(rng.randrange(256) for _ in range(5000)).replace(b"\n", b"."),  # random binary
        GOOD.format(n=3).encode(),
    ]
    log.write_bytes(b"\n".join(chunks) + b"\n")
    s = ingest(cfg, [log], fmt="postfix")
    assert s.lines == 8
    assert s.rejected["invalid_utf8"] >= 2 and s.rejected["nul_bytes"] == 1
    assert s.rejected["too_long"] == 1 and s.rejected["malformed"] == 1
    assert s.recovered == 2  # the deliveries inside bad-byte lines were not lost
    assert count(cfg) == 4
    samples = [json.loads(ln) for ln in open(s.rejects_file, encoding="utf-8")]
    assert {x["reason"] for x in samples} >= {"invalid_utf8", "nul_bytes", "too_long", "malformed"}
    assert all(x["file"] == str(log) and isinstance(x["offset"], int) for x in samples)
    truncated = [x for x in samples if x["reason"] == "malformed"][0]
    assert truncated["offset"] == sum(len(c) + 1 for c in chunks[:4])


def test_truncated_gzip_keeps_what_was_read(cfg, tmp_path):
    data = ("\n".join(GOOD.format(n=n) for n in range(200)) + "\n").encode()
    gz = tmp_path / "mail.log.2.gz"
    full = gzip.compress(data)
    gz.write_bytes(full[: len(full) * 2 // 3])
    old(gz)  # (one written in the last minute may still be being compressed: the rest is left for later)
    s = ingest(cfg, [gz])
    assert 0 < s.events_written < 200
    assert s.rejected["unreadable_rest"] == 1


def test_auto_detection_reports_unrecognised_files(cfg, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    s = ingest(cfg, [junk, SAMPLES / "sendmail" / "maillog"])
    assert [f["format"] for f in s.files] == ["unrecognised", "sendmail"] or \
           [f["format"] for f in s.files] == ["sendmail", "unrecognised"]


def test_missing_file_is_a_clear_error(cfg, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ingest(cfg, [tmp_path / "nope.log"])
    with pytest.raises(InputError, match="no log files matched"):
        ingest(cfg, [str(tmp_path / "nothing*.log")])


def test_event_ids_are_stable_across_runs(tmp_path):
    from fixtures import make_config

    ids = []
    for i in range(2):
        cfg = make_config(tmp_path, data_dir=tmp_path / f"d{i}")
        ingest(cfg, [SAMPLES / "qmail" / "current"])
        con = pipeline.connect(cfg.data_dir)
        ids.append(sorted(r[0] for r in con.execute("SELECT event_id FROM events").fetchall()))
    assert ids[0] == ids[1] and len(ids[0]) == 9


def test_batch_event_ids_equal_the_single_ones():
    """The store's ids are made in batches by event_ids_for; the live follower and old stores use
    event_id_for: one id per line and recipient, whichever made it."""
    from pipeline.store.records import event_id_for, event_ids_for

    lines = [GOOD.format(n=1), GOOD.format(n=1) + "\r\n", "l\udcffine with a bad byte", "日本語の行", "no recipient"]
    rcpts = ["u1@docomo.ne.jp", "u1@docomo.ne.jp", "x@y", "太郎@example.jp", ""]
    assert event_ids_for(lines, rcpts) == [event_id_for(ln, r) for ln, r in zip(lines, rcpts)]
    assert event_ids_for(lines[:1], rcpts[:1]) == event_ids_for(lines[1:2], rcpts[1:2])  # line end ignored
    assert len(set(event_ids_for(lines, rcpts))) == 4


@pytest.mark.parametrize("block_bytes", [64, 700, 4 * 1024 * 1024])
def test_blocks_of_clean_and_checked_lines_agree_on_rows_and_offsets(tmp_path, monkeypatch, block_bytes):
    """Clean ASCII blocks are decoded at once, blocks with bad bytes line by line: at any block
    size the stored rows, their byte offsets and the rejects are the same."""
    import pipeline.ingest.source as source_mod
    from pipeline.core.config import load_config

    lines = [GOOD.format(n=n).encode() for n in range(40)]
    lines[7] = lines[7].replace(b"(250 ok)", "(250 了解)".encode())                 # UTF-8: fine, not ASCII
    lines[13] = lines[13].replace(b"(250 ok)", b"(250 \xff ok)")                        # invalid UTF-8
    lines[21] = lines[21].replace(b", status=sent (250 ok)", b", status=weird")         # malformed
    lines[30] = lines[30] + b"\r"                                                       # CRLF
    log = tmp_path / "mail.log"
    log.write_bytes(b"\n".join(lines) + b"\n" + lines[0].replace(b"0A00", b"0AFF"))  # last line: no newline
    old(log)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", block_bytes)
    cfg = load_config(None, data_dir=tmp_path / f"data{block_bytes}", timezone="Asia/Tokyo")
    s = ingest(cfg, [log], fmt="postfix")
    assert s.lines == 41 and s.events_parsed == 40
    assert dict(s.rejected) == {"invalid_utf8": 1, "malformed": 1}
    con = pipeline.connect(cfg.data_dir)
    offsets = [r[0] for r in con.execute("SELECT source_offset FROM events ORDER BY source_offset").fetchall()]
    starts = [sum(len(ln) + 1 for ln in lines[:i]) for i in range(41)]
    assert offsets == [starts[i] for i in range(41) if i != 21]
    samples = [json.loads(ln) for ln in open(s.rejects_file, encoding="utf-8")]
    assert sorted((x["reason"], x["offset"]) for x in samples) == [("invalid_utf8", starts[13]), ("malformed", starts[21])]


def test_chunks_end_at_the_last_newline_of_each_read(tmp_path, monkeypatch):
    """A file is read in chunks of whole lines, each cut after the last newline of a read of
    BLOCK_BYTES; the cut is found in the read's last TAIL_PROBE bytes first (the chunk is then
    read as it is, not copied), else (a line longer than that at the cut) in the whole read:
    both give the chunks of the plain rule, on lines of every length around the probe."""
    import pipeline.ingest.source as source_mod
    from pipeline.ingest.source import LogFiles, SourceSpec

    rng = random.Random(13)
    probe = source_mod.TAIL_PROBE
    lengths = [rng.choice([1, 80, 300, probe - 1, probe, probe + 1, 2 * probe + 7]) for _ in range(300)]
    text = b"".join(bytes([97 + i % 26]) * (n - 1) + b"\n" for i, n in enumerate(lengths)) + b"no newline at the end"
    log = tmp_path / "mail.log"
    log.write_bytes(text)
    old(log)
    block = 3 * probe + 5
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", block)
    want, at = [], 0
    while at < len(text):
        piece = text[at:at + block]
        cut = piece.rfind(b"\n") + 1
        if cut == 0:  # a line longer than a read: read on to its newline; the last one, as it is
            cut = text.index(b"\n", at) + 1 - at if b"\n" in text[at:] else len(piece)
        want.append((at, text[at:at + cut]))
        at += cut
    files = LogFiles([SourceSpec(str(log), "postfix")], {}, follow=False, use_positions=False)
    (spec, path), = files.batch_files()
    s = files.open_path(spec, str(path))
    got = [(c.offset, c.data) for c in files.chunks(s)]
    files.close()
    assert got == want


@pytest.mark.parametrize("compressed", [False, True])
def test_chunks_grow_from_the_first_block_size_and_a_file_s_last_ones_shrink(tmp_path, monkeypatch, compressed):
    """A read starts with a chunk of about FIRST_BLOCK_BYTES, each next one twice as big up to
    BLOCK_BYTES, and (a plain file, whose size is known) the last ones of the file shrink again;
    whatever their sizes, the chunks are whole lines, back to back, covering the file."""
    import pipeline.ingest.source as source_mod
    from pipeline.ingest.source import LINES, LogFiles, SourceSpec

    first, block = 1000, 16_000
    monkeypatch.setattr(source_mod, "FIRST_BLOCK_BYTES", first)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", block)
    rng = random.Random(7)
    text = b"".join(b"m" * rng.randrange(0, 90) + b"\n" for _ in range(4000))  # ~180 KB
    log = tmp_path / ("mail.log.gz" if compressed else "mail.log")
    log.write_bytes(gzip.compress(text) if compressed else text)
    old(log)
    files = LogFiles([SourceSpec(str(log), "postfix")], {}, follow=False, use_positions=False)
    (spec, path), = files.batch_files()
    got = [(c.offset, c.end, c.kind, c.data) for c in files.chunks(files.open_path(spec, str(path)))]
    files.close()
    assert b"".join(d for _, _, _, d in got) == text
    assert got[0][0] == 0 and all(a[1] == b[0] for a, b in zip(got, got[1:])) and got[-1][1] == len(text)
    assert all(kind == LINES and data.endswith(b"\n") for _, _, kind, data in got)
    sizes = [len(d) for _, _, _, d in got]
    # 1000, 2000, 4000 ... bytes a read (lines are at most 90 bytes: a chunk ends within 90 bytes
    # of its read's end; a .gz chunk starts with what the read before left of its last line)
    assert first - 100 < sizes[0] <= first + 100
    assert sizes[1] <= 2 * first + 100 < sizes[2] <= 4 * first + 100
    assert block - 100 < max(sizes) <= block + 100
    if not compressed:
        assert sizes[-1] < block // 2 and sizes[-2] < block // 2     # the file's last chunks: smaller


def test_a_followed_file_s_pass_reads_about_its_budget(tmp_path, monkeypatch):
    """`watch` reads each file READ_BUDGET bytes a pass (so other files and signals get a turn):
    the growing chunks of a pass stop at about that, and the next pass goes on from there."""
    import pipeline.ingest.source as source_mod
    from pipeline.ingest.source import LogFiles, SourceSpec

    monkeypatch.setattr(source_mod, "FIRST_BLOCK_BYTES", 1000)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 16_000)
    rng = random.Random(5)
    text = b"".join(b"m" * rng.randrange(0, 90) + b"\n" for _ in range(4000))  # ~180 KB
    log = tmp_path / "mail.log"
    log.write_bytes(text)
    old(log)
    files = LogFiles([SourceSpec(str(log), "postfix")], {}, follow=True, use_positions=False)
    (spec, path), = files.batch_files()
    s = files.open_path(spec, str(path))
    read = b""
    passes = 0
    while len(read) < len(text) and passes < 100:
        got = b"".join(c.data for c in files.chunks(s, budget=10_000))
        assert 0 < len(got) <= 10_000 + 1000                     # the budget, or one small chunk over
        read += got
        passes += 1
    files.close()
    assert read == text and passes >= len(text) // 11_000


@pytest.mark.parametrize("columnar", [True, False])
def test_a_failed_store_write_loses_nothing_and_the_rerun_duplicates_nothing(tmp_path, monkeypatch, columnar):
    """Batches are stored by a writer thread while parsing goes on; a commit's state and position
    are saved only once its batch is durable. A write that fails stops the run with the error,
    the position stays at the last durable batch, and the next run completes the store exactly.
    (Per line, a batch is cut at batch_events; column-wise, at the end of the block that reached it.)"""
    import pipeline.ingest.source as source_mod
    from fixtures import make_config
    from pipeline.core.errors import StoreError

    log = tmp_path / "mail.log"
    log.write_text("".join(GOOD.format(n=n) + "\n" for n in range(250)))
    old(log)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 4096)
    cfg = make_config(tmp_path, "[ingest]\nbatch_events = 50\n")
    real_write, calls = EventStore.write, []

    def failing_write(self, table):
        calls.append(table.num_rows)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_write(self, table)

    monkeypatch.setattr(EventStore, "write", failing_write)
    with pytest.raises(StoreError, match="disk full"):
        ingest(cfg, [log], fmt="postfix", columnar=columnar)
    stored = count(cfg)
    assert stored == calls[0] + calls[1] and calls[0] >= 50  # two batches made it
    if not columnar:
        assert stored == 100
    saved = list(saved_state(cfg)["positions"].values())[0]["offset"]
    assert saved == sum(len(GOOD.format(n=n)) + 1 for n in range(stored))  # not past what is stored
    monkeypatch.setattr(EventStore, "write", real_write)
    again = ingest(cfg, [log], fmt="postfix", columnar=columnar)
    assert again.events_written == 250 - stored and count(cfg) == 250
    assert count(cfg, "true") == len({r[0] for r in pipeline.connect(cfg.data_dir).execute("SELECT event_id FROM events").fetchall()})


def test_ingest_does_not_import_pandas(tmp_path):
    """pyarrow's pa.array()/to_numpy() import pandas on first use (a quarter of a second of every
    ingest): ingest builds its Arrow arrays from buffers (pipeline/arrow_build.py) instead. Two
    runs over the sample logs, with batches small enough that the store reads stored ids."""
    import subprocess
    import sys

    from fixtures import SAMPLES

    config = tmp_path / "mailhygiene.toml"
    config.write_text("[ingest]\nbatch_events = 5\n")
    logs = [str(SAMPLES / "postfix" / "mail.log.1.gz"), str(SAMPLES / "postfix" / "mail.log"),
            str(SAMPLES / "sendmail" / "maillog"), str(SAMPLES / "qmail" / "current")]
    code = ("import sys\nfrom pipeline.cli import cli\n"
            "for _ in range(2):\n"
            "    cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
            "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, "--config", str(config), "--data-dir", str(tmp_path / "data"),
                          "--timezone", "Asia/Tokyo", "ingest", "--no-progress", *logs],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "events written" in out.stdout


@pytest.mark.slow
def test_realistic_traffic_ingest_does_not_import_pandas(tmp_path):
    """pa.scalar()/pa.array() of a Python value import pandas (0.2 s) on first use: the
    ingest of every MTA's realistic traffic (block readers, sink, store) goes without it."""
    import subprocess
    import sys

    from fixtures import REPO

    logs = []
    for mta in ("postfix", "sendmail", "qmail"):
        log = tmp_path / f"{mta}.log"
        subprocess.run([sys.executable, str(REPO / "bench" / "gen_logs.py"), str(log), "--mta", mta,
                        "--lines", "20000", "--days", "1"], check=True)
        logs.append(str(log))
    # (main() ends the process itself after the atexit handlers: the check is one of them)
    code = ("import atexit, sys\n"
            "from pipeline.cli import main\n"
            "atexit.register(lambda: print('PANDAS', 'pandas' in sys.modules))\n"
            f"sys.argv = ['mailhygiene', '--data-dir', {str(tmp_path / 'data')!r}, 'ingest', *{logs!r}]\n"
            "main()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "events written" in out
    assert "PANDAS False" in out


@pytest.mark.parametrize("probe", [64, 1000, 5000])
def test_chunks_read_by_probing_the_window_end_are_the_cut_ones(tmp_path, monkeypatch, probe):
    """A plain file's chunks are read as whole lines after a look at the window's end (no copy
    cut off a longer read). Whatever the probe finds (a newline, none: a line longer than it,
    the file's unfinished last line), the chunks are those of reading the whole window and
    cutting it at its last newline (the probe turned off), byte for byte, with the same kinds."""
    import random

    import pipeline.ingest.source as source_mod
    from pipeline.ingest.parsers.common import MAX_LINE_BYTES
    from pipeline.ingest.source import LINES, LogFiles, SourceSpec

    rng = random.Random(probe)
    lines = [b"x" * rng.choice([0, 1, 30, 63, 64, 65, 200, 999, 1000, 1001, 2500, 6000]) for _ in range(400)]
    lines[50] = b"y" * (MAX_LINE_BYTES + 10)  # over-long: rejected unread, then skipped
    log = tmp_path / "mail.log"
    log.write_bytes(b"\n".join(lines) + b"\n" + b"tail without newline")
    old(log)
    text = log.read_bytes()
    spec = SourceSpec(str(log), "postfix")

    def chunks(block: int, probe_bytes: int) -> list:
        monkeypatch.setattr(source_mod, "TAIL_PROBE", probe_bytes)
        files = LogFiles([spec], {}, follow=False)
        try:
            return [(c.offset, c.end, c.kind, c.data) for c in files.chunks(files.open_path(spec, str(log)), block=block)]
        finally:
            files.close()

    for block in (3000, 7001, 70_000, 1 << 20):
        got = chunks(block, probe)
        assert got == chunks(block, 1 << 30), block  # the probe off: read the window, cut it
        assert got[0][0] == 0 and all(a[1] == b[0] for a, b in zip(got, got[1:])) and got[-1][1] == len(text)
        for offset, end, kind, data in got:
            if kind == LINES:
                last = text[offset:offset + block].rfind(b"\n")  # (none: one line longer than the block)
                assert data == text[offset:end] == text[offset:(offset + last if last >= 0 else text.index(b"\n", offset)) + 1]


def test_a_batch_read_hands_all_but_the_last_block_to_the_writer_before_reading_it(tmp_path, monkeypatch):
    """With one block of a file left, what is buffered is committed (its write overlaps the last
    block), so the write the run waits for at its end holds only the last block's events; every
    event is stored once, whatever the batches."""
    import pipeline.ingest.source as source_mod
    from fixtures import make_config

    log = tmp_path / "mail.log"
    log.write_text("".join(GOOD.format(n=n) + "\n" for n in range(250)))
    old(log)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 4096)
    cfg = make_config(tmp_path, "[ingest]\nbatch_events = 1000\n")   # never reached: 250 events
    real_write, tables = EventStore.write, []

    def recording_write(self, table):
        tables.append(table)
        return real_write(self, table)

    monkeypatch.setattr(EventStore, "write", recording_write)
    summary = ingest(cfg, [log], fmt="postfix")
    assert summary.events_written == 250 == count(cfg) == sum(t.num_rows for t in tables)
    assert len(tables) == 2
    last_block_start = min(tables[-1].column("source_offset").to_pylist())
    assert max(tables[0].column("source_offset").to_pylist()) < last_block_start
    assert log.stat().st_size - last_block_start <= 4096                 # one block: ~23 of the 250


@pytest.mark.parametrize("block_bytes", [4096, 100_000])
def test_an_over_long_line_in_a_gz_log_is_rejected_and_the_next_lines_read(tmp_path, monkeypatch, block_bytes):
    """A .gz log (read on, not by offset) with a line longer than the longest line taken, spread
    over several reads: it is one too_long reject, and every line after it is read, the first
    one included (the rest of the long line is skipped up to its newline, not beyond)."""
    import gzip

    import pipeline.ingest.source as source_mod
    from fixtures import make_config
    from pipeline.ingest.parsers.common import MAX_LINE_BYTES

    lines = [GOOD.format(n=n) for n in range(60)]
    lines[20] = "Nov 10 09:00:02 mx1 postfix/smtp[2]: " + "x" * (3 * MAX_LINE_BYTES)
    log = tmp_path / "mail.log.1.gz"
    with gzip.open(log, "wt") as fh:
        fh.write("".join(line + "\n" for line in lines))
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", block_bytes)
    cfg = make_config(tmp_path, "")
    s = ingest(cfg, [log], fmt="postfix")
    assert dict(s.rejected) == {"too_long": 1}
    assert s.events_written == 59 == count(cfg)
    assert count(cfg, "recipient = 'u21@docomo.ne.jp'") == 1   # the line right after the long one


def test_ingest_does_not_import_numpy_ma(tmp_path):
    """A plain np.unique() imports numpy.ma on its first call (~8 ms of every run's start, a
    masked-array check): the block readers count distinct codes instead (blocks.distinct_codes)."""
    import subprocess
    import sys

    from fixtures import SAMPLES

    logs = [str(SAMPLES / "postfix" / "mail.log.1.gz"), str(SAMPLES / "postfix" / "mail.log"),
            str(SAMPLES / "sendmail" / "maillog"), str(SAMPLES / "qmail" / "current")]
    code = ("import sys\nfrom pipeline.cli import cli\n"
            "cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
            "print('numpy.ma' in sys.modules, 'numpy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                          "ingest", "--no-progress", *logs], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False True", out.stdout


def test_distinct_codes_are_the_sorted_distinct_non_negative_values():
    import numpy as np
    from pipeline.ingest.parsers.blocks import distinct_codes

    rng = np.random.default_rng(3)
    for n in (0, 1, 5, 1000):
        codes = rng.integers(-3, 40, n)
        assert distinct_codes(codes).tolist() == np.unique(codes[codes >= 0]).tolist()
    assert distinct_codes(np.array([-1, -1])).tolist() == []


@pytest.mark.parametrize("mta", ["postfix", "sendmail"])
def test_chunks_are_found_ahead_as_deep_as_their_mta_asks(tmp_path, monkeypatch, mta):
    """Reader threads find the fields of EXTRACT_AHEAD[mta] chunks (else 1) while one is applied:
    never more (memory), and as many whenever the file has them (speed)."""
    import threading

    import pipeline.ingest.engine as engine_mod
    import pipeline.ingest.source as source_mod
    from fixtures import generated_log, make_config
    from pipeline.ingest.parsers import BLOCK_READERS

    log = generated_log(tmp_path, mta, lines=6000)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(source_mod, "FIRST_BLOCK_BYTES", 64 << 10)
    lock, submitted, applied, outstanding = threading.Lock(), [0], [0], []
    read_block = BLOCK_READERS[mta].read_block

    class CountingPool(engine_mod.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            with lock:
                submitted[0] += fn is engine_mod._extract
            return super().submit(fn, *args, **kwargs)

    def counting_read_block(*args, **kwargs):
        with lock:
            outstanding.append(submitted[0] - applied[0] - 1)  # found (or being found) beyond this one
            applied[0] += 1
        return read_block(*args, **kwargs)

    monkeypatch.setattr(engine_mod, "ThreadPoolExecutor", CountingPool)
    monkeypatch.setattr(BLOCK_READERS[mta], "read_block", counting_read_block)
    ingest(make_config(tmp_path), [str(log)], fmt=mta, year=2026)
    depth = engine_mod.EXTRACT_AHEAD.get(mta, 1)
    assert len(outstanding) > 2 * depth + 2                # (many chunks of 64 KiB)
    assert max(outstanding) == depth
    assert outstanding[:-depth] == [depth] * (len(outstanding) - depth)  # all but the file's last ones


def test_the_progress_bar_moves_through_one_big_file(cfg, tmp_path, monkeypatch):
    """The bar was moved once per file: one big mail.log (the usual case) stood at 0 % until
    it was done. It now moves with the chunks of a plain file, a compressed one at its end,
    and ends at the inputs' whole size."""
    from pipeline.ingest import engine as engine_module, source

    class Bar:
        def __init__(self, total):
            self.total, self.steps, self.closed = total, [], False

        def update(self, n):
            self.steps.append(n)

        def close(self):
            self.closed = True

    bars = []
    monkeypatch.setattr(engine_module.Engine, "_progress_bar",
                        lambda self, total: bars.append(Bar(total)) or bars[-1])
    monkeypatch.setattr(source, "BLOCK_BYTES", 64 * 1024)
    lines = (SAMPLES / "postfix" / "mail.log").read_text(encoding="utf-8").splitlines(keepends=True)
    log = tmp_path / "mail.log"
    with open(log, "w", encoding="utf-8") as fh:
        for i in range(60):
            fh.writelines(line.replace("to=<", f"to=<u{i}.", 1) for line in lines)
    gz = tmp_path / "mail.log.1.gz"
    shutil.copy(SAMPLES / "postfix" / "mail.log.1.gz", gz)
    old(gz, 7200), old(log)
    ingest(cfg, [log, gz], fmt="postfix", year=2026)
    (bar,) = bars
    assert bar.total == log.stat().st_size + gz.stat().st_size
    assert sum(bar.steps) == bar.total and bar.closed
    assert len(bar.steps) >= log.stat().st_size // (64 * 1024)  # chunk by chunk, not once per file
    assert all(step > 0 for step in bar.steps)
