"""Compaction as the follower uses it: only small files are merged, a kill between "new file in"
and "old files out" never leaves rows twice, and a follower with many small flushes compacts
the day it writes to. Real Parquet, real DuckDB, the real follower in a thread."""

from __future__ import annotations

import pyarrow as pa

import pipeline
import pipeline.ingest.engine as engine_mod
from pipeline.store.event_store import COMPACTION_JOURNAL, EventStore
from pipeline.store.records import EVENT_SCHEMA, event_id_for

from fixtures import Follower, pf_lines


def table(start: int, stop: int) -> pa.Table:
    rows = {name: [] for name in EVENT_SCHEMA.names}
    for n in range(start, stop):
        r = {name: None for name in EVENT_SCHEMA.names}
        r.update(event_id=event_id_for(f"line {n}", f"u{n}@docomo.ne.jp"), ts=1793721871000000 + n,
                 mta="postfix", recipient=f"u{n}@docomo.ne.jp", status="sent")
        for k, v in r.items():
            rows[k].append(v)
    return pa.Table.from_pydict(rows, schema=EVENT_SCHEMA)


def stored(data) -> tuple[int, int]:
    con = pipeline.connect(data)
    try:
        return tuple(con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone())
    finally:
        con.close()


def test_compact_merges_only_small_files(tmp_path):
    store = EventStore(tmp_path)
    store.write(table(0, 5000))
    big = store.files()[0]
    for i in range(10):
        store.write(table(5000 + i * 10, 5010 + i * 10))
    day = big.parent.name.split("=", 1)[1]
    assert len(store.files(day)) == 11
    assert store.compact(day, min_files=8, max_file_bytes=big.stat().st_size)
    files = store.files(day)
    assert len(files) == 2 and big in files
    assert stored(tmp_path) == (5100, 5100)
    assert not store.compact(day, min_files=8, max_file_bytes=big.stat().st_size)


def test_a_killed_writers_temp_file_is_removed_by_the_next_writer(tmp_path):
    """kill -9 inside a write leaves `.part-*.parquet.tmp` (never read: readers take `part-*`);
    the next process that writes removes it under the lock, and only then."""
    EventStore(tmp_path).write(table(0, 10))
    day_dir = EventStore(tmp_path).files()[0].parent
    stale = day_dir / ".part-20261205T000000-0123456789ab.parquet.tmp"
    stale.write_bytes(b"half a parquet file")
    assert stored(tmp_path) == (10, 10)          # readers never see it
    store = EventStore(tmp_path)                 # a new process's store
    assert stale.exists()                        # nothing removed before the lock is taken
    store.write(table(10, 20))
    assert not stale.exists() and stored(tmp_path) == (20, 20)


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (no except/finally of the store catches it)."""


def test_kill_during_compaction_is_rolled_forward(tmp_path):
    class KilledAfterPublish(EventStore):
        calls = None  # counted once armed

        def _finish_compaction(self):
            if KilledAfterPublish.calls is not None:
                KilledAfterPublish.calls += 1
            if KilledAfterPublish.calls == 2:  # the call right after the new file appeared
                raise Killed()
            super()._finish_compaction()

    store = KilledAfterPublish(tmp_path)
    for i in range(8):
        store.write(table(i * 10, i * 10 + 10))
    KilledAfterPublish.calls = 0
    day = store.files()[0].parent.name.split("=", 1)[1]
    try:
        store.compact(day, min_files=8)
    except Killed:
        pass
    assert (tmp_path / "events" / COMPACTION_JOURNAL).exists()
    assert stored(tmp_path) == (160, 80)  # the merged file and the old ones: rows twice
    EventStore(tmp_path).write(table(80, 81))  # the next writer finishes the compaction first
    assert not (tmp_path / "events" / COMPACTION_JOURNAL).exists()
    assert stored(tmp_path) == (81, 81)


def test_follower_compacts_the_days_it_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_mod, "COMPACT_FILES", 6)
    log = tmp_path / "mail.log"
    log.write_text(pf_lines(0, 1))
    f = Follower(tmp_path, [(str(log), "postfix")]).start()   # the follower, on a clock the test moves
    try:
        for i in range(1, 16):
            with open(log, "a") as fh:
                fh.write(pf_lines(i * 10, i * 10 + 10))
            f.run(0.5)                                        # past a flush: one small file per round
    finally:
        f.stop()
    assert f.engine.session.summary.compactions >= 1
    assert stored(tmp_path / "data") == (151, 151)
    assert len(EventStore(tmp_path / "data").files()) <= 6


def _days_table(days: list[int]) -> pa.Table:
    """One event per entry of `days` (days after 2026-11-03), in that order; source_offset = position."""
    rows = {name: [] for name in EVENT_SCHEMA.names}
    for n, d in enumerate(days):
        r = {name: None for name in EVENT_SCHEMA.names}
        r.update(event_id=event_id_for(f"line {n}", f"u{n}@docomo.ne.jp"), ts=1793721871000000 + d * 86_400_000_000 + n,
                 mta="postfix", recipient=f"u{n}@docomo.ne.jp", status="sent", source_offset=n)
        for k, v in r.items():
            rows[k].append(v)
    return pa.Table.from_pydict(rows, schema=EVENT_SCHEMA)


def test_a_batch_out_of_day_order_is_stored_by_day_in_log_order(tmp_path, monkeypatch):
    import pipeline.store.event_store as es
    import pyarrow.parquet as pq

    days = [1, 0, 0, 1, 2, 0, 1, 1, 2, 0]
    for max_runs in (1024, 2):  # few runs: slices put together; many: one reordering copy
        monkeypatch.setattr(es, "_MAX_RUNS", max_runs)
        data = tmp_path / str(max_runs)
        counts = EventStore(data).write(_days_table(days))
        assert counts["sent"] == len(days)
        store = EventStore(data)
        assert len(store.partitions()) == 3
        for k, part in enumerate(sorted(store.partitions())):
            (f,) = store.files(part.name.split("=", 1)[1])
            offsets = pq.read_table(f).column("source_offset").to_pylist()
            assert offsets == [n for n, d in enumerate(days) if d == k]


def test_a_batch_partly_stored_and_repeating_itself_adds_each_new_id_once(tmp_path, monkeypatch):
    """A batch over several days (in runs, or reordered) that holds rows stored by an earlier
    write and rows repeated within itself stores each new id once, in its day, in log order,
    and counts only those; a later store object (its index read back from the files) agrees."""
    import pipeline.store.event_store as es
    import pyarrow.parquet as pq

    days = [1, 0, 0, 1, 2, 0, 1, 1, 2, 0, 2, 2, 1, 0]
    whole = _days_table(days)
    first = [0, 3, 4, 9]                                 # stored before
    again = [2, 3, 5, 5, 6, 9, 10, 11, 12, 13, 12, 0]   # some stored, some twice, the rest new
    for max_runs in (1024, 2):
        monkeypatch.setattr(es, "_MAX_RUNS", max_runs)
        data = tmp_path / str(max_runs)
        assert EventStore(data).write(whole.take(first))["sent"] == len(first)
        store = EventStore(data)
        store.write(whole.take([1]))                     # an index made from the files, then grown
        counts = store.write(whole.take(again))
        new = sorted(set(again) - set(first))
        assert counts["sent"] == len(new), max_runs
        assert EventStore(data).write(whole.take(again + first + [1])) == {}  # all stored already
        stored = {}
        for part in EventStore(data).partitions():
            day = part.name.split("=", 1)[1]
            rows = pa.concat_tables(pq.read_table(f) for f in EventStore(data).files(day))
            stored[day] = rows.column("source_offset").to_pylist()
        offsets = [n for day in sorted(stored) for n in stored[day]]
        assert sorted(offsets) == sorted(set(first) | {1} | set(new))   # each id once
        for day in stored:                                               # in its own day
            assert {days[n] for n in stored[day]} == {(int(day[-2:]) - 3)}
