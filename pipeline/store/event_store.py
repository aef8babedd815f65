"""The event store: the only writer of Parquet event files.

Writes <data_dir>/events/date=YYYY-MM-DD/part-*.parquet (UTC day of `ts`). Every file appears
atomically (written to a dot-temp name, fsynced, then os.replace'd: pipeline.core.fsutil's rules),
so readers never see half a file; a failed write (full disk, read-only data dir) removes its
temp file and raises StoreError. Rows whose event_id is already stored, or repeated within the
batch, are dropped, so re-ingesting a file adds nothing. The check holds across partitions: a
line read again with another --timezone or --year lands on another UTC day, but only ever on a
day whose month and day are within one of the first reading's (a zone moves a line by less than
a day, a year by whole years), so those partitions are checked too. A file lock serialises
writers (`clean`, `watch`, `ingest` and the sender may write at once).

Public API (for ingest's sink, the sender's own delivery rows, and uploads of sealed files):
  EventStore(data_dir).write(table) -> Counter of new rows per status   (table: EVENT_SCHEMA;
  recipients with an internationalised domain are stored in A-label form: records.canonical_recipients)
  .files(day=None) -> [Path]   sealed Parquet files (a file never changes once it appears; only
                               compaction replaces small files by one, under the lock)
  .partitions() -> [Path]      the date=YYYY-MM-DD directories
  .check() -> None             StoreCorrupt naming the first damaged file and how to recover
  .compact(day, ...)           merge a day's small files (crash-safe, journalled)

Called by pipeline.ingest.sink, pipeline.store.warehouse (check) and the sender.
"""

from __future__ import annotations

import binascii
import os
import time
import uuid
from collections import Counter, OrderedDict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..core import fsutil
from ..core.errors import StoreError
from ..core.hashes import blake2b  # not hashlib: it loads OpenSSL (2.5 ms)
from . import arrow_build as ab
from . import arrow_compute as pc
from . import layout, parquet_io
from .layout import PARTITION_PREFIX, corrupt
from .layout import damage as _damage
from .records import EVENT_SCHEMA, canonical_recipients

COMPACTION_JOURNAL = ".compaction.json"
# A live merge (watch's compaction of a day it writes to, the lake upload's merge before it
# sends) takes only a day's files under this size, so a day is not rewritten whole each time.
SMALL_FILE_BYTES = 16 << 20
# Columns with few distinct values are dictionary-encoded; ids, texts and offsets are not (the
# dictionary would be as large as the column and costs a third of the write time).
DICTIONARY_COLUMNS = ["mta", "host", "sender", "recipient_domain", "carrier", "relay", "status", "dsn",
                      "reply_code", "smtp_phase", "reason", "scope", "hard", "source_file"]
# Min/max statistics where readers filter (time, status, carrier, reason); string statistics
# on every column cost another third of the write time and prune nothing.
STATISTICS_COLUMNS = ["ts", "status", "carrier", "reason", "scope"]
# zstd where it pays (ids, texts, addresses, times, offsets: 2-6x smaller). Columns whose values
# come from a closed vocabulary (the classifier's labels, SMTP codes, the MTA) are a dictionary of
# a few values and their run-length-coded indices, a few KB a file either way: zstd over them only
# costs time (~10 ms of a 1M-line ingest's 1.2 s; BENCHMARKS.md). Columns with an open set of
# values (sender, domains, relay, host, source file) keep zstd: a file with too many distinct
# values for the dictionary falls back to plain strings, which must stay compressed.
UNCOMPRESSED_COLUMNS = ["mta", "carrier", "status", "dsn", "reply_code", "smtp_phase", "reason", "scope", "hard"]
COMPRESSION = {f.name: "none" if f.name in UNCOMPRESSED_COLUMNS else "zstd" for f in EVENT_SCHEMA}
# How every writer of event files (this store, its compaction, the lake's merge and upload) writes.
WRITE_OPTIONS = {"compression": COMPRESSION, "use_dictionary": DICTIONARY_COLUMNS,
                 "write_statistics": STATISTICS_COLUMNS}


# Stored event ids kept in memory as 64-bit keys (12 bytes each with their file) between writes
# of one process.
ID_CACHE_KEYS = 8_000_000


class EventStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.root = layout.events_root(self.data_dir)
        self._days: OrderedDict[str, _DayIndex] = OrderedDict()  # day -> its files' id keys, merged

    # ------------------------------------------------------------------ reading helpers
    # (store.layout holds the file layout, so readers can list and check without numpy/pyarrow)
    def partitions(self) -> list[Path]:
        return layout.partitions(self.data_dir)

    def files(self, day: str | None = None) -> list[Path]:
        return layout.stored_files(self.data_dir, day)

    def glob(self) -> str:
        return layout.files_glob(self.data_dir)

    def is_empty(self) -> bool:
        return not self.files()

    def check(self) -> None:
        """Every stored file is a whole Parquet file (magic bytes at both ends, a footer that fits):
        else StoreCorrupt naming the file and how to recover. Cheap: 12 bytes read per file."""
        layout.check_files(self.data_dir)

    # ------------------------------------------------------------------ writing
    def lock(self):
        return _StoreLock(self)

    def write(self, table: pa.Table) -> Counter:
        """Store the new rows of `table` (EVENT_SCHEMA); returns their count per status."""
        written: Counter = Counter()
        if table.num_rows == 0:
            return written
        table = canonical_recipients(_as_events(table))   # IDN recipients keyed in A-label form
        keys = _id_keys(table.column("event_id").combine_chunks())
        # ids repeated within the batch: by their 64-bit keys, exactly only when two keys match;
        # the key order is kept for the lookups below (a day's part of the batch reads its own off it)
        key_order = np.argsort(keys)
        in_order = keys[key_order]
        if (in_order[1:] == in_order[:-1]).any() and len(pc.unique(table.column("event_id"))) != table.num_rows:
            table = _first_of_each_id(table)
            keys = _id_keys(table.column("event_id").combine_chunks())
            key_order = np.argsort(keys)
            in_order = keys[key_order]
        with self.lock():
            partitions = {p.name[len(PARTITION_PREFIX):] for p in self.partitions()}
            for day, rows in _by_utc_day(table):
                part = table if rows is None else _rows_of(table, rows)
                part_keys = keys if rows is None else _keys_of(keys, rows)
                # checked against the stored files of every partition this line could have gone
                # to under other parse settings, one file at a time, by 64-bit keys kept in
                # memory (exactly, against the file's ids, only where a key matches); the part is
                # copied only when some rows are stored already, which a first ingest never finds
                # looked up in key order: twice as fast
                by_key = key_order if rows is None else _part_order(key_order, rows)
                sorted_keys = in_order if rows is None else part_keys[by_key]
                stored_already = ids = None
                for near in self._days_near(day, partitions):
                    index = self._day_index(near)
                    if not len(index.keys):
                        continue
                    at = np.empty(len(part_keys), np.int64)
                    at[by_key] = np.minimum(np.searchsorted(index.keys, sorted_keys), len(index.keys) - 1)
                    maybe = np.flatnonzero(index.keys[at] == part_keys)
                    if not len(maybe):
                        continue
                    if ids is None:
                        ids = part.column("event_id").combine_chunks()
                    for owner in np.unique(index.owner[at[maybe]]).tolist():
                        f = index.names[owner]
                        mine = maybe[index.owner[at[maybe]] == owner]
                        exact = pc.is_in(pc.take(ids, ab.indices(mine)), value_set=_stored_ids(f, self.data_dir).combine_chunks())
                        hit = mine[ab.to_bools(exact)]
                        if len(hit):
                            if stored_already is None:
                                stored_already = np.zeros(len(part_keys), bool)
                            stored_already[hit] = True
                if stored_already is not None:
                    keep = ~stored_already
                    part = pc.filter(part, ab.booleans(keep))
                    sorted_keys = part_keys[by_key[keep[by_key]]]
                if part.num_rows:
                    final = self._write_file(day, part)
                    partitions.add(day)
                    self._add_to_index(day, final, sorted_keys)
                    written += _count_by_status(part.column("status"))
            return written

    def _days_near(self, day: str, partitions: set[str]) -> list[str]:
        """The partitions that can hold a line that is now on `day`."""
        near = _month_days(day)
        return [p for p in sorted(partitions) if (_month_days(p) or near) & near]

    def _day_index(self, day: str) -> "_DayIndex":
        """The sorted 64-bit keys of a day's stored event ids, with the file each is in (kept
        in memory while this EventStore lives, checked against the directory each time)."""
        files = {str(f): _stamp(f) for f in self.files(day)}
        index = self._days.get(day)
        if index is None or any(files.get(name) != st for name, st in index.stamps.items()):
            index = _DayIndex()                       # first use, or a file changed (compaction)
        for name in files:
            if name not in index.stamps:
                index.add(name, files[name], np.sort(_id_keys(_stored_ids(Path(name), self.data_dir).combine_chunks())))
        self._remember(day, index)
        return index

    def _add_to_index(self, day: str, f: Path, sorted_keys: np.ndarray) -> None:
        # a day not indexed yet gets an index of this file alone: _day_index() adds the day's
        # other files when it is next asked (so a file just written is never read back)
        index = self._days.get(day) or _DayIndex()
        index.add(str(f), _stamp(f), sorted_keys)
        self._remember(day, index)

    def _remember(self, day: str, index: "_DayIndex") -> None:
        """Keep a day's index (most recently used last); the oldest go beyond ID_CACHE_KEYS keys."""
        self._days.pop(day, None)
        self._days[day] = index
        total = sum(len(i.keys) for i in self._days.values())
        while total > ID_CACHE_KEYS and len(self._days) > 1:
            _, dropped = self._days.popitem(last=False)
            total -= len(dropped.keys)

    def _write_file(self, day: str, table: pa.Table, before_publish=None) -> Path:
        d = fsutil.ensure_dir(self.root / f"{PARTITION_PREFIX}{day}")
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
        final = d / name
        tmp = d / f".{name}.tmp"
        try:
            parquet_io.write_table(table, tmp, **WRITE_OPTIONS)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            if before_publish is not None:
                before_publish(final)
            os.replace(tmp, final)
            fsutil.fsync_dir(d)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write events to {d}: {fsutil.describe_os_error(exc)}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
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
            table = pa.concat_tables([_read_file(f, self.data_dir).cast(EVENT_SCHEMA) for f in files]).sort_by("ts")
            journal = self.root / COMPACTION_JOURNAL

            def record_new(final: Path) -> None:
                fsutil.atomic_write_json(journal, {"day": day, "new": final.name, "old": [f.name for f in files]})

            self._write_file(day, table, before_publish=record_new)
            self._finish_compaction()
            return True

    _swept = False

    def _sweep_stale_temps(self) -> None:
        """Remove the temp files a killed writer left (every write holds the lock, so under it no
        temp file is in flight); once per store object, at its first lock."""
        for stale in self.root.glob(f"{PARTITION_PREFIX}*/.part-*.parquet.tmp"):
            stale.unlink(missing_ok=True)
        self._swept = True

    def _finish_compaction(self) -> None:
        """Roll an interrupted compaction forward (new file present: drop the old ones) or back."""
        journal = self.root / COMPACTION_JOURNAL
        import json

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
            fsutil.fsync_dir(d)
        elif job.get("new"):
            (d / f".{job['new']}.tmp").unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        fsutil.fsync_dir(self.root)


def _stamp(f: Path) -> tuple:
    try:
        st = f.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


class _DayIndex:
    """A day partition's stored event-id keys, sorted, and the file each came from."""

    def __init__(self):
        self.stamps: dict[str, tuple] = {}
        self.names: list[str] = []
        self.keys = np.empty(0, np.uint64)
        self.owner = np.empty(0, np.int32)

    def add(self, name: str, stamp: tuple, keys: np.ndarray) -> None:
        """Merge a file's sorted keys in (one pass: insert positions, not a new sort)."""
        self.stamps[name] = stamp
        owner = len(self.names)
        self.names.append(name)
        # each new key goes before the stored keys not below it, after the new keys before it
        # (both sorted: where it lands is known; np.insert would sort the positions first)
        new_at = np.searchsorted(self.keys, keys) + np.arange(len(keys))
        merged = np.empty(len(self.keys) + len(keys), np.uint64)
        owners = np.empty(len(merged), np.int32)
        old_at = np.ones(len(merged), bool)
        old_at[new_at] = False
        merged[new_at], merged[old_at] = keys, self.keys
        owners[new_at], owners[old_at] = owner, self.owner
        self.keys, self.owner = merged, owners


class _StoreLock:
    """The writers' lock (events/.write.lock, core.fsutil.file_lock, waiting as long as it takes);
    whoever takes it first finishes an interrupted compaction."""

    def __init__(self, store: EventStore):
        self.store = store
        self._lock = fsutil.file_lock(store.root / ".write.lock", wait=None)

    def __enter__(self):
        self._lock.__enter__()
        try:
            self.store._finish_compaction()
            if not self.store._swept:
                self.store._sweep_stale_temps()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)


def _read_file(path: Path, data_dir: Path, columns: list[str] | None = None) -> pa.Table:
    """One stored file (as ParquetFile reads it: pq.read_table would import pandas); StoreCorrupt if damaged."""
    try:
        return parquet_io.read_table(path, columns)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise corrupt(path, _damage(path) or f"unreadable: {exc}", data_dir) from None


def _stored_ids(path: Path, data_dir: Path) -> pa.ChunkedArray:
    """The event ids of one stored file."""
    ids = _read_file(path, data_dir, ["event_id"]).column("event_id")
    return ids if ids.type == pa.string() else pc.cast(ids, pa.string())


_HEX = np.full(256, 255, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def _id_keys(ids: pa.Array) -> np.ndarray:
    """A 64-bit key per event id: its first 16 hex digits (records.event_id_for ids are 20
    lower-case hex digits); any other id, the first 8 bytes of its BLAKE2b."""
    n = len(ids)
    if n == 0:
        return np.empty(0, np.uint64)
    if ids.null_count == 0:
        offsets = ab.offsets(ids)
        if int(offsets[-1] - offsets[0]) == 20 * n and bool((np.diff(offsets) == 20).all()):
            chars = np.frombuffer(ids.buffers()[2], np.uint8)[offsets[0]:offsets[0] + 20 * n].reshape(n, 20)[:, :16]
            if not (_HEX[chars] == 255).any():
                # 16 lower-case hex digits -> 8 bytes, read as a big-endian integer
                return np.frombuffer(binascii.unhexlify(chars.tobytes()), ">u8").astype(np.uint64)
    return np.array([int.from_bytes(blake2b((v or "").encode(), digest_size=8).digest(), "big")
                     for v in ids.to_pylist()], np.uint64)


def _month_days(day: str) -> set[tuple[int, int]]:
    """(month, day) of the day before, the day and the day after (a zone moves a line by less
    than a day either way; a year by whole years: same month and day)."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return set()  # not a date: checked like any near day (the caller's `or`)
    near = set()
    for k in (-1, 0, 1):
        try:
            n = d + timedelta(days=k)
        except OverflowError:  # the first or the last day there is (a clock set to 9999)
            continue
        near.add((n.month, n.day))
    return near


_MAX_RUNS = 1024  # runs of one day in a batch beyond which it is reordered (copied) instead


def _as_events(table: pa.Table) -> pa.Table:
    """`table` cast to EVENT_SCHEMA; as it is when it has that schema and no null where the schema
    allows none (the sink's tables): cast() would return the same, after importing pyarrow.compute
    (~25 ms, an eighth of the start-up of a small ingest)."""
    if table.schema.equals(EVENT_SCHEMA, check_metadata=True) and not any(
            table.column(f.name).null_count for f in EVENT_SCHEMA if not f.nullable):
        return table
    return table.cast(EVENT_SCHEMA)


# Up to this many rows a part's statuses are counted in Python (a small ingest then never imports
# pyarrow.compute; 0.3 ms at most), beyond by value_counts (a 50,000-event batch: 0.7 ms instead of 7).
COUNT_IN_PYTHON_ROWS = 4096


def _count_by_status(status: pa.ChunkedArray) -> Counter:
    """Rows per status (a null is counted as None, as value_counts does)."""
    if len(status) <= COUNT_IN_PYTHON_ROWS:
        return Counter(status.to_pylist())
    return Counter({item["values"]: item["counts"] for item in pc.value_counts(status).to_pylist()})


def _by_utc_day(table: pa.Table):
    """(`YYYY-MM-DD`, rows) per UTC day of `ts`, in log order within a day; rows is None for the
    whole table (one day), else the day's runs of rows: a list of (start, stop) slices (a batch
    read from a log is ordered by day already), or, for many short runs, the row numbers."""
    us = ab.to_ints(table.column("ts"))  # (the µs since 1970 of `ts`, non-null)
    days = np.floor_divide(us, 86_400_000_000)
    cuts = (np.flatnonzero(np.diff(days)) + 1).tolist()
    runs = list(zip([0, *cuts], [*cuts, len(days)]))
    if len(runs) == 1:
        yield _day_name(int(days[0])), None
        return
    by_day: dict[int, list] = {}
    for start, stop in runs:
        by_day.setdefault(int(days[start]), []).append((start, stop))
    if len(runs) > _MAX_RUNS:
        # many short runs: each day's rows picked at once (stable: log order kept within a day)
        order = np.argsort(days, kind="stable")
        ordered = days[order]
        cuts = (np.flatnonzero(np.diff(ordered)) + 1).tolist()
        for a, b in zip([0, *cuts], [*cuts, len(days)]):
            yield _day_name(int(ordered[a])), order[a:b]
        return
    for d in sorted(by_day):
        yield _day_name(d), by_day[d]


def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86400, timezone.utc).strftime("%Y-%m-%d")


def _rows_of(table: pa.Table, rows) -> pa.Table:
    """The rows of _by_utc_day: slices put together without copying (a few runs per day: a
    block's rows come out of log order only in places), or row numbers taken."""
    if isinstance(rows, list):
        pieces = [table.slice(a, b - a) for a, b in rows]
        return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
    return pc.take(table, ab.indices(rows))


def _keys_of(keys: np.ndarray, rows) -> np.ndarray:
    """The id keys of the same rows as _rows_of(table, rows)."""
    if isinstance(rows, list):
        return np.concatenate([keys[a:b] for a, b in rows])
    return keys[rows]


def _part_order(key_order: np.ndarray, rows) -> np.ndarray:
    """The key order of a day's part (_rows_of(table, rows)): argsort of its keys, read off the
    whole batch's key order (`key_order`) instead of sorting again."""
    row_ids = np.concatenate([np.arange(a, b) for a, b in rows]) if isinstance(rows, list) else np.asarray(rows)
    place = np.full(len(key_order), -1, np.int64)
    place[row_ids] = np.arange(len(row_ids))
    in_order = place[key_order]
    return in_order[in_order >= 0]


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


