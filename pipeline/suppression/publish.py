"""The nightly export's guard: never publish a list that lost most of its entries without
releasing them.

A data dir whose volume is not mounted (or that moved, or was replaced by an empty one) looks like
a first night to `clean`: it reads the logs still on disk, builds a list of the last days' dead
addresses only, and would replace the export a CRM imports with it: the addresses added by hand
and those found before the logs rotated would be mailed again. The export written before is the
witness that survives: when this night's list holds fewer than half of its rows, and the list's
history does not explain the drop by releases recorded since that file was written, the export
is refused (ExportShrinkRefused, nothing replaced). `clean --allow-shrink` publishes anyway.

Reads the previous export (CSV) and the list; writes nothing. Called by the nightly job
(pipeline.jobs.clean) before it writes the export.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

from ..core.errors import MailHygieneError
from .store import SuppressionStore, reading, run_block

SHRINK_LIMIT = 0.5  # refused when the unexplained drop is more than this share of the previous rows


class ExportShrinkRefused(MailHygieneError):
    """This night's list would drop most of the published export's addresses without releases."""


def previous_export(path: str | os.PathLike) -> tuple[int, dt.datetime] | None:
    """(rows, modification time) of the export at `path` written before; None when there is none
    or it is no CSV this program wrote (nothing to compare with)."""
    try:
        mtime = dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc)
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "address":
                return None
            rows = sum(1 for _ in reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return rows, mtime


def check_not_shrunk(store, path: str | os.PathLike) -> None:
    """ExportShrinkRefused when replacing the export at `path` with the list of `store` would drop
    more than SHRINK_LIMIT of its rows that the history does not show released since."""
    previous = previous_export(path)
    if previous is None or previous[0] == 0:
        return
    rows, written = previous
    store = SuppressionStore.of(store)
    with reading(store) as (_, con):
        now = run_block(con, "listed_count").fetchone()[0]
        released = run_block(con, "released_since", {"since": written}).fetchone()[0]
    dropped = rows - now
    if dropped - released <= rows * SHRINK_LIMIT:
        return
    raise ExportShrinkRefused(
        f"the export {Path(path)} was not replaced: it lists {rows} addresses, this night's list {now}, and "
        f"the list's history records {released} release(s) since that file was written "
        f"({written:%Y-%m-%d %H:%M} UTC): {dropped - released} addresses would vanish unreleased, and a CRM "
        f"importing the file would mail them again. The data dir {store.data_dir} looks unmounted, moved or "
        f"replaced (its list lost entries it never released): mount or restore it and run clean again. If the "
        f"smaller list is right (a new data dir on purpose), publish it once with `mailhygiene clean --allow-shrink`")
