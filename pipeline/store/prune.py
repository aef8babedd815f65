"""Pruning the event store: delete whole day partitions older than a date.

Reads the store's listing (EventStore.partitions / files) and each file's Parquet footer (row
counts for the plan); deletes <data_dir>/events/date=YYYY-MM-DD/ for every day before the cut-off,
under the store's write lock so no writer adds to a day while it goes. Each partition is first
renamed out of the readers' glob (to events/.pruning-date=…, one atomic rename), then removed, so
a query sees a day whole or not at all; a removal interrupted by a crash is finished by the next
prune. Partitions are UTC days (the store's layout), so the cut-off is 00:00 UTC of `before`.

Days inside the suppression rule's current window (the last rule.window_days local days) are
refused unless forced: the rule would lose errors it may still count. Older days only lose their
detail: `suppression show` lists the delivery attempts that are still stored; entries already on
the list keep their evidence (error count, days, first and last error) in the list itself.

On a node of a lake (`[store] url` and node set), days holding files not uploaded yet are
refused unless forced too: the local store is the only copy of those events, so deleting them
would lose them from the lake for good (a lake that was down for a while, a node whose uploads
failed). The caller passes `not_uploaded` (lake.upload.not_uploaded: the store does not import
the lake); it is asked again under the store's lock, so a file stored after the plan counts.

Called by the CLI (`mailhygiene prune`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from ..core.errors import InputError, StoreError
from ..core.fsutil import describe_os_error, fsync_dir
from .event_store import PARTITION_PREFIX, EventStore

PRUNING_PREFIX = ".pruning-"


@dataclass(frozen=True)
class DayPartition:
    day: date
    path: Path
    files: int
    rows: int
    bytes: int


@dataclass
class PrunePlan:
    before: date
    data_dir: Path
    doomed: list[DayPartition] = field(default_factory=list)
    kept_days: list[date] = field(default_factory=list)
    # the first local day of the rule's current window, and whether `before` reaches into it
    window_start: date | None = None
    in_window: bool = False
    # the latest `before` that keeps the whole window (its first local midnight, as a UTC day)
    last_safe: date | None = None
    # doomed days holding files not uploaded to the lake yet -> how many (a node of a lake)
    not_uploaded: dict[date, int] = field(default_factory=dict)
    # asked again under the store's lock: day (YYYY-MM-DD) -> files not uploaded yet
    uploads_pending: Callable[[], dict[str, int]] | None = None

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.doomed)

    @property
    def files(self) -> int:
        return sum(p.files for p in self.doomed)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.doomed)


def days_ago(days: int, now: datetime | None = None) -> date:
    """The UTC day `days` days before today (UTC): `--keep-days N` keeps N whole days."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date() - timedelta(days=days)


def rule_window_start(window_days: int, tz: ZoneInfo, now: datetime | None = None) -> date:
    """The first local calendar day of the rule window that ends today."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(tz).date()
    return today - timedelta(days=window_days - 1)


def plan_prune(data_dir: str | os.PathLike, before: date, *, window_days: int, tz: ZoneInfo,
               now: datetime | None = None,
               not_uploaded: Callable[[], dict[str, int]] | None = None) -> PrunePlan:
    """What `prune` would delete: every stored UTC day partition before `before`.
    `not_uploaded`: day -> files the lake does not have yet (a node of a lake), kept unless forced."""
    store = EventStore(data_dir)
    plan = PrunePlan(before=before, data_dir=Path(data_dir), uploads_pending=not_uploaded)
    plan.window_start = rule_window_start(window_days, tz, now)
    window_start_utc = datetime.combine(plan.window_start, time(0), tz).astimezone(timezone.utc)
    plan.in_window = datetime.combine(before, time(0), timezone.utc) > window_start_utc
    plan.last_safe = window_start_utc.date()
    for part in store.partitions():
        day = _partition_day(part)
        if day is None:
            continue
        if day < before:
            files = store.files(day.isoformat())
            plan.doomed.append(DayPartition(day, part, len(files), _rows(files), _size(part)))
        else:
            plan.kept_days.append(day)
    plan.not_uploaded = _doomed_not_uploaded(plan)
    return plan


def _doomed_not_uploaded(plan: PrunePlan) -> dict[date, int]:
    if plan.uploads_pending is None or not plan.doomed:
        return {}
    pending = plan.uploads_pending()
    return {p.day: pending[p.day.isoformat()] for p in plan.doomed if pending.get(p.day.isoformat())}


def check_plan(plan: PrunePlan, *, force: bool = False) -> None:
    """Refuse a cut-off inside the rule's current window, or days not uploaded to the lake yet
    (unless forced)."""
    if plan.in_window and not force:
        raise InputError(
            f"--before {plan.before} reaches into the suppression rule's current window (local days from "
            f"{plan.window_start} on): the rule still counts those errors. Use --before {plan.last_safe} or "
            f"earlier, or --force if you mean it")
    if plan.not_uploaded and not force:
        raise InputError(_not_uploaded_message(plan.not_uploaded))


def _not_uploaded_message(days: dict[date, int]) -> str:
    shown = ", ".join(f"{d} ({n} file{'s' if n != 1 else ''})" for d, n in sorted(days.items())[:5])
    more = f" and {len(days) - 5} more day(s)" if len(days) > 5 else ""
    return (f"{len(days)} of the days to delete hold events not uploaded to the lake yet: {shown}{more}. "
            "This node's store is their only copy: deleting them loses them from the lake too. Run "
            "`mailhygiene lake upload` first (it uploads what is missing), or --force if you mean it")


def prune(plan: PrunePlan, *, force: bool = False) -> list[DayPartition]:
    """Delete the planned partitions (under the store's write lock); returns what went."""
    check_plan(plan, force=force)
    store = EventStore(plan.data_dir)
    removed: list[DayPartition] = []
    with store.lock():
        _finish_interrupted(store.root)
        if not force:  # again under the lock: a file stored (and not uploaded) since the plan
            late = _doomed_not_uploaded(plan)
            if late:
                raise InputError(_not_uploaded_message(late))
        for part in plan.doomed:
            if not part.path.is_dir():
                continue  # gone meanwhile (another prune)
            hidden = part.path.with_name(PRUNING_PREFIX + part.path.name)
            try:
                os.replace(part.path, hidden)
                fsync_dir(part.path.parent)
                shutil.rmtree(hidden)
            except OSError as exc:
                raise StoreError(f"cannot delete {part.path}: {describe_os_error(exc)}; "
                                 f"{len(removed)} earlier days were deleted") from None
            removed.append(part)
        if removed:
            fsync_dir(store.root)
    return removed


def _finish_interrupted(root: Path) -> None:
    if not root.is_dir():
        return
    for leftover in root.glob(PRUNING_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _partition_day(path: Path) -> date | None:
    if not path.name.startswith(PARTITION_PREFIX):
        return None
    try:
        return date.fromisoformat(path.name[len(PARTITION_PREFIX):])
    except ValueError:
        return None


def _rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        try:
            total += pq.read_metadata(f).num_rows
        except (OSError, ValueError):
            pass  # an unreadable file goes with its day; counted as 0 rows
    return total


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
