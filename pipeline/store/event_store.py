"""The event store: the only writer of Parquet event files.

Writes <data_dir>/events/date=YYYY-MM-DD/part-*.parquet (UTC day of `ts`). Every file appears
atomically (written to a dot-temp name, fsynced, then os.replace'd), so readers never see half a
file. Rows whose event_id is already stored (in the same day partition) or repeated within the
batch are dropped, so re-ingesting a file adds nothing. A file lock serialises writers (`clean`,
`watch`, `ingest` may run at once).

Called by pipeline.ingest.engine (batch) and pipeline.ingest.follow (live).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import arrow_build as ab
from .records import EVENT_SCHEMA

PARTITION_PREFIX = "date="
COMPACTION_JOURNAL = ".compaction.json"
# Columns with few distinct values are dictionary-encoded; ids, texts and offsets are not (the
# dictionary would be as large as the column and costs a third of the write time).
DICTIONARY_COLUMNS = ["mta", "host", "sender", "recipient_domain", "carrier", "relay", "status", "dsn",
                      "reply_code", "smtp_phase", "reason", "scope", "hard", "source_file"]
# Min/max statistics where readers filter (time, status, carrier, reason); string statistics
# on every column cost another third of the write time and prune nothing.
STATISTICS_COLUMNS = ["ts", "status", "carrier", "reason", "scope"]


class EventStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "events"

    # ------------------------------------------------------------------ reading helpers
    def partitions(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(PARTITION_PREFIX))

    def files(self, day: str | None = None) -> list[Path]:
        dirs = [self.root / f"{PARTITION_PREFIX}{day}"] if day else self.partitions()
        out: list[Path] = []
        for d in dirs:
            if d.is_dir():
                out.extend(sorted(d.glob("*.parquet")))
        return out

    def glob(self) -> str:
        return str(self.root / f"{PARTITION_PREFIX}*" / "*.parquet")

    def is_empty(self) -> bool:
        return not self.files()

    # ------------------------------------------------------------------ writing
    @contextmanager
    def lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".write.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                self._finish_compaction()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def write(self, table: pa.Table) -> Counter:
        """Store the new rows of `table` (EVENT_SCHEMA); returns their count per status."""
        written: Counter = Counter()
        if table.num_rows == 0:
            return written
        table = table.cast(EVENT_SCHEMA)
        if len(pc.unique(table.column("event_id"))) != table.num_rows:
            table = _first_of_each_id(table)
        with self.lock():
            for day, part in _by_utc_day(table):
                # one stored file at a time (memory stays that of one file's ids, however big
                # the day's partition has grown); the part is copied only when some rows are
                # stored already, which a first ingest never finds
                ids = part.column("event_id")
                stored_already = None
                for f in self.files(day):
                    hit = pc.is_in(ids, value_set=_stored_ids(f).combine_chunks())
                    if pc.any(hit).as_py():
                        stored_already = hit if stored_already is None else pc.or_(stored_already, hit)
                if stored_already is not None:
                    part = part.filter(pc.invert(stored_already))
                if part.num_rows:
                    self._write_file(day, part)
                    for item in pc.value_counts(part.column("status")).to_pylist():
                        written[item["values"]] += item["counts"]
            return written

    def _write_file(self, day: str, table: pa.Table, before_publish=None) -> Path:
        d = self.root / f"{PARTITION_PREFIX}{day}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
        final = d / name
        tmp = d / f".{name}.tmp"
        import pyarrow.parquet as pq  # on first use, in the writer thread: not on ingest's start-up path

        pq.write_table(table, tmp, compression="zstd", use_dictionary=DICTIONARY_COLUMNS,
                       write_statistics=STATISTICS_COLUMNS)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if before_publish is not None:
            before_publish(final)
        os.replace(tmp, final)
        _fsync_dir(d)
        return final

    def compact(self, day: str, min_files: int = 8, max_file_bytes: int | None = None) -> bool:
        """Merge a day's files into one (or only those under `max_file_bytes`, so a live
        follower does not rewrite a whole day each time small files pile up).

        Crash-safe: a journal names the new file and the files it replaces before the new file
        appears; whoever takes the lock next finishes the removal, so a kill between "new file
        in" and "old files out" never leaves rows stored twice.
        """
        with self.lock():
            d = self.root / f"{PARTITION_PREFIX}{day}"
            for stale in d.glob(".part-*.parquet.tmp") if d.is_dir() else ():
                stale.unlink(missing_ok=True)  # left by a killed writer: no writer runs now
            files = self.files(day)
            if max_file_bytes is not None:
                files = [f for f in files if f.stat().st_size < max_file_bytes]
            if len(files) < min_files:
                return False
            import pyarrow.parquet as pq

            table = pa.concat_tables([pq.read_table(f).cast(EVENT_SCHEMA) for f in files]).sort_by("ts")
            journal = self.root / COMPACTION_JOURNAL

            def record_new(final: Path) -> None:
                _write_json_atomic(journal, {"day": day, "new": final.name, "old": [f.name for f in files]})

            self._write_file(day, table, before_publish=record_new)
            self._finish_compaction()
            return True

    def _finish_compaction(self) -> None:
        """Roll an interrupted compaction forward (new file present: drop the old ones) or back."""
        journal = self.root / COMPACTION_JOURNAL
        try:
            job = json.loads(journal.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            job = {}
        d = self.root / f"{PARTITION_PREFIX}{job.get('day', '')}"
        if job.get("new") and (d / job["new"]).is_file():
            for name in job.get("old", []):
                (d / name).unlink(missing_ok=True)
            _fsync_dir(d)
        elif job.get("new"):
            (d / f".{job['new']}.tmp").unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        _fsync_dir(self.root)


def _stored_ids(path: Path) -> pa.ChunkedArray:
    """The event ids of one stored file (ParquetFile: read_table would import pandas)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        return pf.read(columns=["event_id"]).column("event_id").cast(pa.string())


def _by_utc_day(table: pa.Table):
    """(`YYYY-MM-DD`, rows) per UTC day of `ts`, in log order within a day: a batch read from a
    log is ordered by day already (then the days are slices, not copies), else it is reordered
    by day (stable)."""
    us = ab.to_ints(table.column("ts").cast(pa.int64()))
    days = np.floor_divide(us, 86_400_000_000)
    if len(days) > 1 and bool((np.diff(days) < 0).any()):
        order = np.argsort(days, kind="stable")
        table, days = table.take(ab.indices(order)), days[order]
    cuts = np.flatnonzero(np.diff(days)) + 1
    for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(days)]):
        day = datetime.fromtimestamp(int(days[start]) * 86400, timezone.utc).strftime("%Y-%m-%d")
        yield day, table.slice(start, stop - start)


def _first_of_each_id(table: pa.Table) -> pa.Table:
    """One row per event_id (the one with the lowest source offset): a batch that read a line twice."""
    import duckdb  # only for this rare case: ingest does not pay for importing it

    con = duckdb.connect()
    try:
        con.register("batch", table)
        return con.sql("SELECT * FROM batch QUALIFY row_number() OVER "
                       "(PARTITION BY event_id ORDER BY source_offset) = 1").to_arrow_table().cast(EVENT_SCHEMA)
    finally:
        con.close()


def _write_json_atomic(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(value, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
