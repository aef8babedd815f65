"""The suppression list: its two files, their lock, the check of the list against its history,
the manual edits, and "which addresses are suppressed?" (failing closed).

Owner of <data_dir>/suppression/current.parquet (the list: one row per suppressed address with
its evidence) and history.parquet (every add and release, in order, only ever appended to).
DuckDB reads them (views `suppression` and `suppression_history`) and writes them with
`COPY (SELECT ...) TO` a temp file that fsutil.atomic_path fsyncs and renames, under
suppression/.lock: the history first, then the list. A crash between the two leaves the history
ahead of the list; readers then refuse the list (SuppressionUnavailable) and every writer
repairs it first from the history (sql/suppression_list.sql `stage_repair`).

Called by rule.py (new entries), export.py, the CLI (`suppression list|show|add|release|repair`),
the sender (suppressed_addresses) and the report (HISTORY_SCHEMA).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..core.errors import InputError, NoDataError, SuppressionUnavailable, unreadable_file
from ..core.fsutil import atomic_path, ensure_dir, file_lock

UTC = timezone.utc
LIST_SQL = "suppression_list"
# A rule run on a large store takes seconds; an edit waits that long for it, not forever.
LOCK_WAIT_S = 600.0


# --------------------------------------------------------------------------- SQL blocks
@lru_cache(maxsize=None)
def _blocks(file: str) -> dict[str, tuple[str, ...]]:
    from ..store.warehouse import read_sql

    text = read_sql(file)
    parts = re.split(r"^-- name: *(\w+) *$", text, flags=re.MULTILINE)
    # a block's statements end with `;` at the end of a line
    return {name: tuple(st.strip() for st in re.split(r";[ \t]*$", body, flags=re.MULTILINE) if _has_sql(st))
            for name, body in zip(parts[1::2], parts[2::2])}


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


class Result:
    """A finished DuckDB result: its column names and rows (the connection is free again)."""

    def __init__(self, cursor):
        self.columns = [d[0] for d in cursor.description] if cursor.description else []
        self.rows = cursor.fetchall() if cursor.description else []

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return self.rows

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def run_block(con, name: str, params: Mapping[str, Any] | None = None, *, file: str = LIST_SQL) -> Result:
    """Execute the block `-- name: <name>` of sql/<file>.sql with its $params, to the end."""
    from ..store.warehouse import bind_sql

    try:
        statements = _blocks(file)[name]
    except KeyError:
        raise InputError(f"no block named {name} in {file}.sql") from None
    result = None
    for sql in statements:  # DuckDB binds $params in one statement at a time
        result = Result(con.execute(sql, bind_sql(f"{file}.sql:{name}", sql, dict(params or {}))))
    return result


def stream_block(con, name: str, params: Mapping[str, Any] | None = None, *, file: str = LIST_SQL,
                 batch: int = 10_000) -> Iterator[dict[str, Any]]:
    """The rows of the block `-- name: <name>` (one statement) as dicts, fetched `batch` at a time
    as they are used (for lists too long to hold at once)."""
    from ..store.warehouse import bind_sql

    (sql,) = _blocks(file)[name]
    cursor = con.execute(sql, bind_sql(f"{file}.sql:{name}", sql, dict(params or {})))
    columns = [d[0] for d in cursor.description]
    while chunk := cursor.fetchmany(batch):
        for row in chunk:
            yield dict(zip(columns, row))


def rows(result) -> list[dict[str, Any]]:
    """A DuckDB result (a cursor or a Result) as dicts, column name -> value."""
    return (result if isinstance(result, Result) else Result(result)).dicts()


# --------------------------------------------------------------------------- the two files
@dataclass(frozen=True)
class Consistency:
    missing: int        # suppressed by the history, absent from the list (fail closed)
    stale: int          # released by the history, still listed (safe; repaired by any change)
    history_rows: int
    listed: int
    example: str | None


class SuppressionStore:
    """The list and its history under <data_dir>/suppression/."""

    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / "suppression"
        self.current_path = self.dir / "current.parquet"
        self.history_path = self.dir / "history.parquet"

    @classmethod
    def of(cls, where) -> SuppressionStore:
        """A store from a SuppressionStore, a Config (its data_dir) or a data dir path."""
        if isinstance(where, SuppressionStore):
            return where
        data_dir = getattr(where, "data_dir", None)
        return cls(data_dir if data_dir is not None else where)

    @contextmanager
    def lock(self) -> Iterator[None]:
        ensure_dir(self.dir)
        with file_lock(self.dir / ".lock", wait=LOCK_WAIT_S,
                       busy=f"the suppression list in {self.dir} is locked by another mailhygiene run "
                            f"(waited {LOCK_WAIT_S:.0f} s); nothing was changed: try again when it has finished"):
            yield

    # ------------------------------------------------------------------ reading
    def connect(self, *, events: bool = False, list_readable: bool = True):
        """DuckDB with the macros, `suppression`, `suppression_history` (empty ones when there
        is no list yet) and, with events=True, the `events` view (NoDataError when no events).

        SuppressionUnavailable when a file cannot be read; with list_readable=False an
        unreadable list is taken as empty instead (for repair, which rebuilds it).
        """
        import duckdb

        from ..store.warehouse import attach_views, no_progress_bar, read_sql

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            no_progress_bar(con)
            if events:
                # the rule and the guard read the same event files several times in one run
                # (sealed files: a changed one has another name or time, which the cache sees)
                con.execute("SET parquet_metadata_cache = true")
                _require_events(self.data_dir)
                attach_views(con, self.data_dir)  # events + the macros
                con.execute("DROP VIEW IF EXISTS main.suppression; DROP VIEW IF EXISTS main.suppression_history")
            else:
                con.execute(read_sql("macros"))
            self._attach_file(con, self.history_path, "history_file", "empty_history_file", True)
            try:
                self._attach_file(con, self.current_path, "list_file", "empty_list_file", False)
            except SuppressionUnavailable:
                if list_readable:
                    raise
                run_block(con, "empty_list_file")
            run_block(con, "views")
            return con
        except BaseException:
            con.close()
            raise

    def _attach_file(self, con, path: Path, view: str, empty_block: str, row_numbers: bool) -> None:
        import duckdb

        if not path.exists():
            run_block(con, empty_block)
            return
        try:
            rel = con.sql("SELECT * FROM read_parquet($path, file_row_number = $numbered)",
                          params={"path": str(path), "numbered": row_numbers})
            rel.create_view(view)
            rel.count("*").fetchall()
        except (duckdb.Error, OSError) as exc:
            raise SuppressionUnavailable(
                f"cannot read {path}: {str(exc).splitlines()[0]}. "
                + ("Restore it from a backup: the history is what the list is rebuilt from."
                   if row_numbers else
                   "Restore it from a backup, or rebuild it from its history with "
                   "`mailhygiene suppression repair`.")) from None

    def consistency(self, con) -> Consistency:
        return Consistency(*run_block(con, "consistency").fetchone())

    def require_consistent(self, con) -> None:
        """SuppressionUnavailable when the list lacks an address its history says is suppressed
        (a missing list with a non-empty history included)."""
        state = self.consistency(con)
        if not self.current_path.exists() and state.history_rows:
            raise SuppressionUnavailable(
                f"the suppression list {self.current_path} is missing while its history "
                f"({self.history_path}) records {state.history_rows} change(s): refusing to treat it as "
                "empty. Rebuild it with `mailhygiene suppression repair` (or restore it from a backup).")
        if state.missing:
            raise SuppressionUnavailable(
                f"the suppression list {self.current_path} is older than its history: {state.missing} "
                f"address(es) the history says are suppressed are not on it (e.g. {state.example}). "
                "Rebuild it with `mailhygiene suppression repair` (a run that was interrupted "
                "between writing the history and the list leaves this).")

    # ------------------------------------------------------------------ writing
    def stage_repair(self, con) -> None:
        run_block(con, "stage_repair")

    def commit(self, con) -> bool:
        """Write the staged changes (history first, then the list). Call under lock()."""
        additions, removals, history = run_block(con, "staged").fetchone()
        if not (additions or removals or history):
            return False
        ensure_dir(self.dir)
        # history first: a crash before the list is written leaves the history ahead, which
        # readers refuse and the next change repairs; never a list entry without its history
        with atomic_path(self.history_path) as tmp:
            run_block(con, "write_history", {"path": str(tmp)})
        with atomic_path(self.current_path) as tmp:
            run_block(con, "write_list", {"path": str(tmp)})
        return True


def _require_events(data_dir: Path) -> None:
    from ..store.warehouse import require_events

    require_events(data_dir)


@contextmanager
def changing(where, *, events: bool = False):
    """A connection for one change of the list, under the lock, on a list already repaired
    against its history (a repair is written at once). Stage, then `store.commit(con)`."""
    store = SuppressionStore.of(where)
    with store.lock(), damaged_files_named():
        con = store.connect(events=events, list_readable=False)
        try:
            store.stage_repair(con)
            if store.commit(con):
                con.close()
                con = store.connect(events=events)
            yield store, con
        finally:
            con.close()


@contextmanager
def reading(where, *, events: bool = False):
    """A connection on a list that agrees with its history (else SuppressionUnavailable)."""
    store = SuppressionStore.of(where)
    with damaged_files_named():
        con = store.connect(events=events)
        try:
            store.require_consistent(con)
            yield store, con
        finally:
            con.close()


@contextmanager
def damaged_files_named():
    """A damaged Parquet file (of the events or the list) read inside the block becomes a
    StoreCorrupt naming it (core.errors.unreadable_file), not an engine error."""
    try:
        yield
    except Exception as exc:
        error = unreadable_file(exc)
        if error is None:
            raise
        raise error from None


# --------------------------------------------------------------------------- questions
def suppressed_addresses(where) -> frozenset[str]:
    """Normalised addresses on the list: what the sender must never contact. `where`: a
    SuppressionStore, a Config or a data dir.

    Fails closed: SuppressionUnavailable when the list is unreadable, missing while its history
    records changes, or lacks an address its history says is suppressed. An empty list with an
    empty (or no) history is simply empty.
    """
    import duckdb

    try:
        with reading(where) as (_, con):
            listed = [a for (a,) in run_block(con, "addresses").fetchall()]
    except duckdb.Error as exc:
        store = SuppressionStore.of(where)
        raise SuppressionUnavailable(f"cannot read the suppression list in {store.dir}: "
                                     f"{str(exc).splitlines()[0]}") from None
    # an entry written with its domain in Unicode (from events stored before addresses were
    # keyed in A-label form) suppresses the canonical form too (pipeline/core/idn.py)
    from ..core.idn import ascii_address

    return frozenset(listed).union(ascii_address(a) for a in listed if not a.isascii())


def is_suppressed(where, address: str) -> bool:
    return checked_address(address) in suppressed_addresses(where)


def entries(where, limit: int | None = None) -> list[dict[str, Any]]:
    """The list's rows, by address (at most `limit`)."""
    with listing(where, limit) as found:
        return list(found.rows())


class Listing:
    """The list as one reading sees it (store.listing): `count` entries, read by `rows()`, of
    the `total` the list holds (fewer under a limit)."""

    def __init__(self, con, count: int, limit: int | None, total: int | None = None):
        self._con, self.count, self._limit = con, count, limit
        self.total = count if total is None else total

    def rows(self, batch: int = 10_000, *, brief: bool = False) -> Iterator[dict[str, Any]]:
        """The entries by address (at most the limit), fetched `batch` at a time as they are used:
        a fresh read at each call, so a caller can go through them twice (column widths, then
        lines), one pass after the other. `brief`: only address, carrier, reasons and source."""
        if self._con is None:
            return iter(())
        return stream_block(self._con, "entries_brief" if brief else "entries", {"limit": self._limit}, batch=batch)


@contextmanager
def listing(where, limit: int | None = None) -> Iterator[Listing]:
    """The list for a reader that goes through it once or twice without holding it (`suppression
    list` of a million entries held 1.3 GB, 4.7 GB with --json): valid inside the block."""
    store = SuppressionStore.of(where)
    if not os.path.lexists(store.current_path) and not os.path.lexists(store.history_path):
        yield Listing(None, 0, limit)  # never written: an empty list that agrees with its (empty) history
        return
    with reading(store) as (_, con):
        total = run_block(con, "listed_count").fetchone()[0]
        if not limit or limit >= total:  # (a --limit past every entry: none, whatever its size)
            limit = None
        yield Listing(con, limit or total, limit, total)


def show(where, address: str, *, tz: str, counted_reasons, window_days: int) -> dict[str, Any]:
    """An address's entry (or None), its history and every delivery attempt to it
    (address_attempts)."""
    a = checked_address(address)
    store = SuppressionStore.of(where)
    has_events = _has_events(store.data_dir)
    with reading(store, events=has_events) as (_, con):
        found = rows(run_block(con, "entry", {"address": a}))
        history = rows(run_block(con, "address_history", {"address": a}))
        attempts = []
        if has_events:
            keep_counted(con, tz=tz, counted_reasons=counted_reasons, window_days=window_days)
            attempts = address_attempts(con, a, tz=tz)
    if not found and not history and not attempts:
        raise InputError(f"{a} is neither on the suppression list nor in any stored event")
    return {"address": a, "entry": found[0] if found else None, "history": history, "events": attempts}


def keep_counted(con, *, tz: str, counted_reasons, window_days: int) -> None:
    """The rule's counted errors and bounce-mail binding over every stored row, kept on `con`
    (which has the `events` view) for address_attempts: pipeline/suppression/rule.py
    keep_counted_errors, the one definition (`counted_reasons`, `window_days`: the rule's)."""
    from .counted import counted_params, keep_counted_errors

    keep_counted_errors(con, counted_params(tz, counted_reasons, window_days))


def address_attempts(con, address: str, *, tz: str) -> list[dict[str, Any]]:
    """Every event to a normalised address on `con` (on which keep_counted kept the counted
    errors), oldest first (sql/address_history.sql): each says whether the rule counts it as an
    error (a row of sql/counted_errors.sql) and, a bounce mail's, whether it is bound to mail we
    sent to the address (sql/bounce_mails.sql)."""
    from ..store.warehouse import run_sql

    return rows(run_sql(con, "address_history", {"address": address, "tz": tz}))


# The `--json` shapes of `suppression list` and `show` (README "Scripting"): the list's columns,
# in this order, times as ISO 8601 (UTC).
ENTRY_FIELDS = ("address", "carrier", "reasons", "source", "note", "added_at", "rule", "first_error",
                "last_error", "error_count", "distinct_days", "window_start", "last_dsn",
                "last_reply_code", "last_diagnostic", "last_sent", "event_ids")
HISTORY_FIELDS = ("at", "action", "source", "note", "rule", "evidence")


def entry_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    from ..core.jsonout import jsonable

    return jsonable({f: entry.get(f) for f in ENTRY_FIELDS})


def list_json(listed: list[Mapping[str, Any]]) -> dict[str, Any]:
    """{"count": n, "entries": [{ENTRY_FIELDS}]}"""
    return {"count": len(listed), "entries": [entry_json(e) for e in listed]}


def show_json(info: Mapping[str, Any]) -> dict[str, Any]:
    """{"address", "suppressed": bool, "entry": {ENTRY_FIELDS} or null, "history": [{HISTORY_FIELDS},
    evidence as an object], "events": [every column of sql/address_history.sql]}"""
    import json

    from ..core.jsonout import jsonable

    def history(rec):
        out = {f: rec.get(f) for f in HISTORY_FIELDS}
        try:
            out["evidence"] = json.loads(out["evidence"]) if out["evidence"] else None
        except ValueError:
            pass  # kept as the text it is
        return out

    entry = info["entry"]
    return jsonable({"address": info["address"], "suppressed": entry is not None,
                     "entry": entry_json(entry) if entry is not None else None,
                     "history": [history(r) for r in info["history"]], "events": list(info["events"])})


def _has_events(data_dir: Path) -> bool:
    from ..store.warehouse import has_events

    return has_events(data_dir)  # the local store's, or the lake's with [store] url


# --------------------------------------------------------------------------- manual changes
_SPACE = re.compile(r"\s")


def checked_address(address: str) -> str:
    from ..store.records import canonical_address  # (records imports pyarrow: only when needed)

    a = canonical_address(address)   # the key: the domain in A-label form (pipeline/core/idn.py)
    if any("\uff01" <= ch <= "\uff5e" for ch in a):  # ＡＢＣ＠: typed with a Japanese input method
        import unicodedata

        raise InputError(f"{address!r} holds full-width characters: no carrier delivers to it, so it would "
                         f"match no mail; type it in half-width ({unicodedata.normalize('NFKC', a)})")
    local, at, domain = a.rpartition("@")
    if not at or not local or "." not in domain or not a.isprintable() or _SPACE.search(a):
        raise InputError(f"{address!r} is not an e-mail address (expected local@domain, no spaces "
                         "or control characters)")
    if not domain.isascii():
        from ..core.idn import domain_problem

        raise InputError(f"{address!r}: the domain is not a valid internationalised name "
                         f"({domain_problem(domain) or 'no A-label form'})")
    return a


def add(where, address: str, note: str | None = None, *, carriers: Mapping | None = None,
        now: datetime | None = None) -> None:
    """Put an address on the list by hand (source = manual). `carriers`: extra carrier domains
    as in the config's [carriers] (a Config passed as `where` brings its own)."""
    from ..classify.carriers import CarrierTable

    a = checked_address(address)
    if carriers is None:
        carriers = getattr(where, "carriers", None) or {}
    carrier = CarrierTable.from_config(carriers).carrier_for(a.rpartition("@")[2])
    with changing(where) as (store, con):
        if run_block(con, "entry", {"address": a}).fetchone():
            raise InputError(f"{a} is already on the suppression list")
        run_block(con, "stage_manual_add", {"address": a, "carrier": carrier, "note": note,
                                            "now": now or datetime.now(UTC)})
        store.commit(con)


def add_many(where, addresses, note: str | None = None, *, carriers: Mapping | None = None,
             ignore_existing: bool = False, now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Put many addresses on the list by hand in one change: all of them or none.

    Every address is checked first (InputError naming the first bad one, with its position);
    duplicates in the input count once. An address already on the list is an InputError naming
    it (nothing added), unless ignore_existing, when it is skipped. Returns (added, skipped)."""
    from ..classify.carriers import CarrierTable

    wanted: dict[str, None] = {}
    for i, address in enumerate(addresses, 1):
        try:
            wanted[checked_address(address)] = None
        except InputError as exc:
            raise InputError(f"address {i}: {exc}") from None
    if not wanted:
        raise InputError("no addresses to add")
    if carriers is None:
        carriers = getattr(where, "carriers", None) or {}
    carrier_for = CarrierTable.from_config(carriers).carrier_for
    with changing(where) as (store, con):
        listed = {a for (a,) in run_block(con, "listed_among", {"addresses": list(wanted)}).fetchall()}
        if listed and not ignore_existing:
            first = sorted(listed)
            more = f" and {len(first) - 1} more" if len(first) > 1 else ""
            raise InputError(f"{first[0]}{more} already on the suppression list: nothing was added "
                             "(add --ignore-existing to skip the addresses already listed)")
        added = [a for a in wanted if a not in listed]
        if added:
            run_block(con, "stage_manual_adds", {
                "addresses": added, "carriers": [carrier_for(a.rpartition("@")[2]) for a in added],
                "note": note, "now": now or datetime.now(UTC)})
            store.commit(con)
    return added, sorted(listed)


def release(where, address: str, note: str | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """Take an address off the list. It stays in the history, and only counted errors after
    this moment count again, for every later rule run whatever its --as-of."""
    a = checked_address(address)
    with changing(where) as (store, con):
        found = rows(run_block(con, "entry", {"address": a}))
        if not found and "xn--" in a:
            # an entry written before IDN domains were keyed in A-label form keeps its Unicode domain
            from ..core.idn import unicode_address

            legacy = unicode_address(a)
            found = rows(run_block(con, "entry", {"address": legacy}))
            a = legacy if found else a
        if not found:
            raise InputError(f"{a} is not on the suppression list (see `mailhygiene suppression list`)")
        run_block(con, "stage_release", {"address": a, "note": note, "now": now or datetime.now(UTC)})
        store.commit(con)
    return found[0]


def repair(where) -> Consistency:
    """Bring the list back in line with its history (entries the history added come back with
    their evidence, released ones go); returns the state found before the repair."""
    store = SuppressionStore.of(where)
    with store.lock(), damaged_files_named():
        con = store.connect(list_readable=False)
        try:
            before = store.consistency(con)
            store.stage_repair(con)
            store.commit(con)
        finally:
            con.close()
    return before


# --------------------------------------------------------------------------- Arrow schemas
def __getattr__(name: str):
    """CURRENT_SCHEMA / HISTORY_SCHEMA: the files' pyarrow schemas, derived from the DDL in
    sql/suppression_list.sql (built on first use: pyarrow is not needed to use the list)."""
    if name in ("CURRENT_SCHEMA", "HISTORY_SCHEMA"):
        return _arrow_schemas()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _arrow_schemas() -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        run_block(con, "empty_list_file")
        run_block(con, "empty_history_file")
        return {"CURRENT_SCHEMA": con.sql("SELECT * FROM list_file").arrow().schema,
                "HISTORY_SCHEMA": con.sql("SELECT * EXCLUDE (file_row_number) FROM history_file").arrow().schema}
    finally:
        con.close()
