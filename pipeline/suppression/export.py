"""Exports for spreadsheets and CRMs: the suppression list, and the handset-filter list.

Reads the list (store.reading: refused when it disagrees with its history) and, for
`--filtered`, the events (sql/filtered_addresses.sql). DuckDB writes the file
(`COPY (SELECT ...) TO`, sql/suppression_list.sql `export_*`); a CSV has its text cells made
formula-safe in SQL by csv_safe (the same rule as pipeline.core.csvsafe.neutralise) except the
address, a key that is never altered (address_cell only quotes again a local part that needs quotes). A file target is replaced atomically (fsutil), and only a
regular file is ever replaced; `-` writes to standard output. Nothing is written when there is
nothing to export, unless allow_empty: a CRM importing an empty file in replace mode would
drop every suppression.
Called by the CLI (`export`) and the nightly job (`clean`).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from ..core.config import ExportSettings
from ..core.errors import InputError, NoDataError
from ..core.fsutil import atomic_file, atomic_path, engine_writes
from .rule import parse_as_of
from .store import SuppressionStore, reading, run_block

FORMATS = ("csv", "parquet")
BOM = "\ufeff".encode("utf-8")
STDOUT = "-"


def export(store, path: str | os.PathLike, settings: ExportSettings | None = None, *, tz: str,
           fmt: str = "csv", excel: bool | None = None, allow_empty: bool = False,
           out: BinaryIO | None = None) -> int:
    """Write the list with its evidence (address first); returns the number of rows.

    `excel` (default: settings.excel): CSV with a UTF-8 BOM (Excel on Japanese Windows reads
    UTF-8 then). `out`: the stream for path `-` (default: standard output).
    """
    settings = settings or ExportSettings()
    excel = settings.excel if excel is None else excel
    store = SuppressionStore.of(store)
    target = check_target(path, fmt, store.data_dir)
    _require_data_dir(store)
    with reading(store) as (_, con):
        count = run_block(con, "listed_count").fetchone()[0]
        if not count and not allow_empty:
            raise NoDataError(
                f"the suppression list in {store.dir} is empty: nothing written (a CRM importing an empty "
                "file would drop every suppression). Check --data-dir; pass --allow-empty if an empty "
                "list is right.")
        if fmt == "csv":
            _stage_unicode_forms(con)
        _write(con, f"export_{fmt}", {"tz": tz}, target, excel=excel and fmt == "csv", out=out)
    return count


def _stage_unicode_forms(con) -> None:
    """Table unicode_forms: each listed address with an A-label (xn--) domain and its Unicode
    form, for the CSV's address_unicode column (pipeline/core/idn.py; DuckDB has no IDNA)."""
    from ..core.idn import unicode_address

    addresses = [a for (a,) in run_block(con, "idn_addresses").fetchall()]
    run_block(con, "stage_unicode_forms", {"addresses": addresses,
                                           "unicode": [unicode_address(a) for a in addresses]})


def export_filtered(store, path: str | os.PathLike, settings: ExportSettings | None = None, *, tz: str,
                    window_days: int, days: int | None = None, as_of=None, fmt: str = "csv",
                    excel: bool | None = None, allow_empty: bool = False, out: BinaryIO | None = None) -> int:
    """Write the addresses refused by their own reception filter in the last `days` days
    (default: settings.filtered_days) up to as_of (default now), with carrier, count, first and
    last refusal; returns the rows. A bounce mail's refusal counts only when bound to mail we sent
    (sql/bounce_mails.sql, as for the rule; `window_days`: the rule's look-back), and no event
    after as_of is seen (counted.keep_bound_attempts, as for the rule)."""
    from ..store.warehouse import sql_relation
    from .counted import counted_params, keep_bound_attempts

    settings = settings or ExportSettings()
    excel = settings.excel if excel is None else excel
    days = settings.filtered_days if days is None else days
    store = SuppressionStore.of(store)
    target = check_target(path, fmt, store.data_dir)
    _require_data_dir(store)
    as_of_dt = parse_as_of(as_of, tz)
    since = as_of_dt - timedelta(days=days)
    with reading(store, events=True) as (_, con):
        # the attempts as of as_of_dt (no later event seen), unbound bounce mails' rows left out
        keep_bound_attempts(con, counted_params(tz, (), window_days, as_of_dt))
        sql_relation(con, "filtered_addresses", {"since": since, "as_of": as_of_dt}).to_table("filtered")
        count = run_block(con, "filtered_count").fetchone()[0]
        if not count and not allow_empty:
            raise NoDataError(
                f"no address was refused by a reception filter in the {days} days up to "
                f"{as_of_dt:%Y-%m-%d %H:%M} UTC: nothing written. Pass --allow-empty to write an empty file.")
        _write(con, f"export_filtered_{fmt}", {"tz": tz}, target, excel=excel and fmt == "csv", out=out)
    return count


# --------------------------------------------------------------------------- the target
def check_target(path: str | os.PathLike, fmt: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The real file to replace (None = standard output); InputError for anything but a regular
    file or a new name in an existing folder (a device node, a FIFO, a directory, a socket), and
    for a place among the data dir's own state (its events, the list and its history ...: an
    export there would replace the list's history or be read as events)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: {' or '.join(FORMATS)}")
    if str(path) == STDOUT:
        return None
    given = Path(path)
    real = Path(os.path.realpath(given))  # a symlink: replace the file it points to, keep the link
    if data_dir is not None:
        from ..store.layout import inside_state

        folder = inside_state(data_dir, real)
        if folder is not None:
            raise InputError(f"{given} is inside {folder}, where the program keeps its own data (an export there "
                             f"would replace it or be read as events): export elsewhere, e.g. "
                             f"{Path(data_dir) / 'exports' / ('suppression.' + fmt)}")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"cannot use {given} as the export file: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{given} is a directory: give a file name such as {given}/suppression.{fmt}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{given} is not a regular file (a device, FIFO or socket): the export only "
                         "writes or replaces regular files; give a file path, or - for standard output")
    if not real.parent.is_dir():
        raise InputError(f"folder {given.parent} does not exist: create it first")
    return real


def _require_data_dir(store: SuppressionStore) -> None:
    if not store.data_dir.is_dir():
        raise NoDataError(f"data dir {store.data_dir} does not exist: nothing written (check --data-dir)")


def _write(con, block: str, params: dict, target: Path | None, *, excel: bool,
           out: BinaryIO | None) -> None:
    if target is None:  # standard output: DuckDB writes a private temp file that is copied out
        if out is None and sys.stdout is None:  # started with it closed (`>&-`)
            raise InputError("standard output is closed: nothing written; give a file path instead of -")
        stream = out if out is not None else sys.stdout.buffer
        with tempfile.TemporaryDirectory(prefix="mailhygiene-export-") as tmp:
            raw = Path(tmp) / "export"
            run_block(con, block, {**params, "path": str(raw)})
            if excel:
                stream.write(BOM)
            with open(raw, "rb") as fh:
                shutil.copyfileobj(fh, stream)
            stream.flush()
        return
    if not excel:
        with atomic_path(target) as tmp:
            run_block(con, block, {**params, "path": str(tmp)})
        return
    raw = target.with_name(f".{target.name}.{os.getpid()}.raw")
    try:
        with engine_writes(target):
            run_block(con, block, {**params, "path": str(raw)})
        with atomic_file(target, "wb") as fh, open(raw, "rb") as src:
            fh.write(BOM)
            shutil.copyfileobj(src, fh)
    finally:
        raw.unlink(missing_ok=True)

