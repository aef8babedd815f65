"""Merge a node's objects of closed days into one object per day.

Reads this node's objects under <root>/events/node=<node>/date=<day>/ for days older than
`after_days` (UTC; the node writes no more for them, barring a late log file); writes one
object `compact-<digest of the merged names>.parquet` per day (create-only, lake.objects), then
deletes the objects it replaces. Rows whose event id repeats are kept once, ordered by ts, event_id.

Safe for readers at every moment: between "merged object created" and "old objects deleted" a
listing sees the rows twice, and lake.read keeps each event id once per day. A run that dies in
between is finished by the next (the merged name is derived from the names it merges; the next
run merges the merged object with what is left, which is the same rows). Only the node that owns
a prefix compacts it, so no two writers race on one prefix.

Called by `clean` on a node (when `[store] url` and store.compact_after_days are set).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..core.errors import LakeError
from .objects import writer_for
from .read import list_objects
from .url import LakeLocation, check_node

COMPACT_PREFIX = "compact-"


@dataclass
class CompactSummary:
    days: list[str] = field(default_factory=list)
    objects_replaced: int = 0
    rows_written: int = 0
    duplicate_rows_dropped: int = 0


def closed_days_before(after_days: int, today: date | None = None) -> str:
    """Days strictly before this one (YYYY-MM-DD, UTC) are closed."""
    today = today or datetime.now(timezone.utc).date()
    return (today - timedelta(days=after_days)).isoformat()


def compact_closed_days(lake: LakeLocation, node: str, *, after_days: int, today: date | None = None,
                        min_objects: int = 2, writer=None, work_dir: str | Path | None = None) -> CompactSummary:
    """Merge each closed day of `node` that has at least `min_objects` objects."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..store.event_store import WRITE_OPTIONS
    from ..store.records import EVENT_SCHEMA

    check_node(node)
    summary = CompactSummary()
    if after_days <= 0:
        return summary
    before = closed_days_before(after_days, today)
    writer = writer or writer_for(lake)
    filesystem = lake.filesystem()
    by_day: dict[str, list] = {}
    for o in list_objects(lake, filesystem):
        if o.node == node and o.day < before:
            by_day.setdefault(o.day, []).append(o)
    for day, objects in sorted(by_day.items()):
        if len(objects) < min_objects:
            continue
        names = sorted(o.path.rsplit("/", 1)[1] for o in objects)
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:20]
        key = lake.key(node, day, f"{COMPACT_PREFIX}{digest}.parquet")
        try:
            tables = [pq.read_table(o.path, filesystem=filesystem, schema=None).select(
                [n for n in EVENT_SCHEMA.names]).cast(EVENT_SCHEMA) for o in objects]
        except (OSError, KeyError, pa.ArrowInvalid) as exc:
            raise LakeError(f"cannot read the objects of {node} {day} for compaction: {exc}") from None
        merged = pa.concat_tables(tables).sort_by([("ts", "ascending"), ("event_id", "ascending"),
                                                   ("source_file", "ascending"), ("source_offset", "ascending")])
        ids = merged.column("event_id")
        if len(pc.unique(ids)) != merged.num_rows:
            first = _first_index_of_each(ids)
            summary.duplicate_rows_dropped += merged.num_rows - len(first)
            merged = merged.take(first)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            part = Path(tmp) / "merged.parquet"
            pq.write_table(merged, part, **WRITE_OPTIONS)
            writer.put_if_absent(key, part)
        old = [_key_of(lake, o.path) for o in objects]
        writer.delete([k for k in old if k != key])
        summary.days.append(day)
        summary.objects_replaced += len(objects)
        summary.rows_written += merged.num_rows
    return summary


def _key_of(lake: LakeLocation, path: str) -> str:
    """A filesystem path of the lake back to the writer's key (s3: without the bucket)."""
    return path[len(lake.bucket) + 1:] if lake.scheme == "s3" else path


def _first_index_of_each(ids):
    """Indices of the first row of each event id, in row order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.table({"id": ids, "i": pa.array(np.arange(len(ids), dtype=np.int64))})
    first = t.group_by("id", use_threads=False).aggregate([("i", "min")]).column("i_min")
    return pc.take(first, pc.sort_indices(first))
