"""DuckDB over the data dir: views over the stores, and named SQL files with $params.

Reads <data_dir>/events/**.parquet and <data_dir>/suppression/*.parquet; writes nothing.
Views: `events` (every stored row: one per witness of an attempt, plus the `date` partition
column = UTC day; its recipients in canonical form whichever version stored them: sql/events.sql
over `stored_events`, the rows as stored), `not_attempts`, `witnessed_events` and `attempts` (each delivery attempt once: sql/attempts.sql),
`suppression` (current list) and `suppression_history` when they exist.
A damaged (e.g. truncated) Parquet file of the event store is found when the views are made
(EventStore.check) and when DuckDB reads one in run_sql(): pipeline.core.errors.StoreCorrupt names
the file and how to recover, instead of a DuckDB traceback in whichever command asked.
Called by the library entry point pipeline.connect(), by suppression.py and reports.py.
"""

from __future__ import annotations

import os
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from ..core.config import Config, load_config
from ..core.errors import InputError, StoreCorrupt


def sql_dir() -> Path:
    """sql/ inside the installed package (wheel), else the repository's top-level sql/."""
    packaged = Path(str(resources.files("pipeline"))) / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "sql"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("the sql/ directory is missing from this installation")


def read_sql(name: str) -> str:
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        raise InputError(f"no SQL file named {name}.sql in {sql_dir()}")
    return path.read_text(encoding="utf-8")


_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def bind_sql(name: str, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The $params that `sql` (the text of <name>) uses, taken from `params`; InputError when
    one is missing."""
    body = "\n".join(line.split("--", 1)[0] if "--" in line else line for line in sql.splitlines())
    wanted = set(_PARAM_RE.findall(body))
    params = params or {}
    missing = wanted - set(params)
    if missing:
        raise InputError(f"{name}.sql needs parameters: {', '.join(sorted(missing))}")
    return {k: v for k, v in params.items() if k in wanted}


def run_sql(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None):
    """Execute sql/<name>.sql with named $params (only those the file uses are passed); a DuckDB
    error about a Parquet file of the store becomes StoreCorrupt."""
    sql = read_sql(name)
    try:
        return con.execute(sql, bind_sql(name, sql, params))
    except duckdb.Error as exc:
        raise _corrupt_file_error(exc) or exc


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """No progress bar on this connection: DuckDB draws it on standard output (a file or a pipe
    too) when a query runs over 2 s, into a --json document or an `export -` file (a `suppression
    list --json` of 1M entries began with one). In Jupyter DuckDB draws a widget instead, and
    refuses the setting when ipywidgets is missing: there it stays as it is."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass


def sql_relation(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None):
    """sql/<name>.sql as a DuckDB relation (e.g. to keep its rows: `.to_table("candidates")`)."""
    sql = read_sql(name)
    return con.sql(sql, params=bind_sql(name, sql, params))


def resolve_config(data_dir: str | os.PathLike | None = None, config: Config | None = None) -> Config:
    """The config connect() uses: `config` (with `data_dir` over it), else MAILHYGIENE_DATA_DIR
    or the default config."""
    if config is None:
        env = os.environ.get("MAILHYGIENE_DATA_DIR")
        return load_config(data_dir=data_dir or env) if (data_dir or env) else load_config()
    if data_dir is not None:
        return load_config(config.source, data_dir=data_dir, timezone=config["timezone"] or None)
    return config


# The first path to a .parquet file in an error's text: from the first '/' of a run of characters
# other than quotes and white space to the first ".parquet" after it. (Not `["']?(/[^"'\s]*?\.parquet)`
# searched from every '/': a run of many '/' and no ".parquet" was quadratic. When the first '/'
# of a run has no ".parquet" after it, no later one has.)
_PARQUET_PATH_RE = re.compile(r"""(?<![^"'\s])[^"'\s/]*+(/[^"'\s]*?\.parquet)""")


def _corrupt_file_error(exc: Exception) -> StoreCorrupt | None:
    """StoreCorrupt for a DuckDB error about a Parquet file (a damaged store file); else None."""
    text = str(exc)
    m = _PARQUET_PATH_RE.search(text)
    if m is None or "parquet" not in text.lower():
        return None
    from .layout import corrupt

    path = Path(m.group(1))
    data_dir = path.parents[2] if len(path.parents) > 2 and path.parent.name.startswith("date=") else path.parent
    return corrupt(path, f"DuckDB cannot read it: {text.splitlines()[0][:200]}", data_dir)


def connect(data_dir: str | os.PathLike | None = None, *, config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the data dir.

    With neither argument, the data dir comes from MAILHYGIENE_DATA_DIR or the default config.
    NoDataError when it names a directory that is not a mailhygiene data dir (datadir.py).
    """
    from .datadir import check_readable

    config = resolve_config(data_dir, config)
    check_readable(config.data_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    attach_views(con, config.data_dir)
    return con


# Where the `events` of a data dir come from when not from its own event store: a config with
# `[store] url` reads every node of the lake (pipeline.lake.read.use_lake registers its source
# here; the store does not import the lake). A source has attach(con) and has_events().
EVENT_SOURCES: dict[Path, Any] = {}


def use_event_source(data_dir: str | os.PathLike, source) -> None:
    """Read the events of `data_dir` from `source` (None: from its own event store again)."""
    key = Path(data_dir).expanduser().resolve()
    if source is None:
        EVENT_SOURCES.pop(key, None)
    else:
        EVENT_SOURCES[key] = source


def event_source(data_dir: str | os.PathLike):
    return EVENT_SOURCES.get(Path(data_dir).expanduser().resolve()) if EVENT_SOURCES else None


def has_events(data_dir: str | os.PathLike) -> bool:
    """Whether `events` of this data dir would have rows to read (its source's, or its store's)."""
    source = event_source(data_dir)
    if source is not None:
        return source.has_events()
    from .layout import stored_files  # (no numpy/pyarrow)

    return bool(stored_files(data_dir))


def require_events(data_dir: str | os.PathLike) -> None:
    """NoDataError saying where no events are (the lake of [store] url, a data dir that does not
    exist, or one with none yet) and what to do; nothing when `events` has rows to read."""
    from ..core.errors import NoDataError

    if has_events(data_dir):
        return
    data_dir = Path(data_dir)
    source = event_source(data_dir)
    if source is not None:  # [store] url: the lake's events
        raise NoDataError(f"no events in the lake {source.lake.url} yet: the nodes upload after "
                          "each ingest (`mailhygiene lake status` shows what it holds)")
    if not data_dir.exists():
        raise NoDataError(f"data dir {data_dir} does not exist: run `mailhygiene ingest LOGS` first "
                          "(or pass the right --data-dir)")
    raise NoDataError(f"no events in {data_dir} yet: run `mailhygiene ingest LOGS` first")


VIEW_ATTEMPTS = 5


def vanished_file(exc: duckdb.IOException) -> bool:
    """Is this DuckDB error a file that was listed and then gone (replaced by a compaction)?"""
    return "No such file" in str(exc)


# The views over `events` that say which rows are delivery attempts (sql/<name>.sql, in this
# order: each reads the one before); lake.spark registers their ports under the same names.
ATTEMPT_VIEWS = ("not_attempts", "witnessed_events", "attempts")


def attach_attempt_views(con: duckdb.DuckDBPyConnection) -> None:
    """`not_attempts`, `witnessed_events` and `attempts` over this connection's `events` (needs
    the macros). Views: each query reads the events as they are then."""
    for name in ATTEMPT_VIEWS:
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {read_sql(name)}")


def keep_attempt_marks(con: duckdb.DuckDBPyConnection, marks: str = "not_attempts",
                       table: str = "attempt_marks") -> None:
    """The rows of sql/<marks>.sql (sql/not_attempts.sql; sql/bound_marks.sql adds the binding's
    'unbound' marks to those) computed now and kept for this connection as table `table`
    (`not_attempts` then reads them): for a reader that reads `attempts` many times over events
    that do not change meanwhile (the report's queries), which then pay a join on event_id each
    instead of finding the marks again. `marks` and `table` are names from code."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {read_sql(marks)}")
    con.execute(f"CREATE OR REPLACE VIEW not_attempts AS SELECT event_id, not_attempt FROM {table}")


def events_up_to(con: duckdb.DuckDBPyConnection, as_of) -> None:
    """From now on, `events` on this connection holds only the stored rows up to `as_of` (an
    aware datetime; ts <= as_of), as a store holding only those rows would: every view and query
    over it (the marks of sql/not_attempts.sql, the binding, the counted errors, the guard) sees
    nothing later. What an as-of rule run reads (pipeline/suppression/counted.py): the answer a
    run on that date would have given. The narrowing is of the stored rows, under whatever
    `events` makes of them (canonical_events: every recipient in canonical form): `stored_events`
    becomes the rows up to as_of, every stored row stays readable as `every_stored_event`, and a
    second call narrows from those again. Call it before the marks are kept (keep_attempt_marks)."""
    from datetime import timezone

    views = {name for name, in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if "stored_events" not in views:   # `events` is the stored rows as they are (not made canonical)
        con.execute("ALTER VIEW events RENAME TO stored_events")
        con.execute("CREATE VIEW events AS SELECT * FROM stored_events")
    if "every_stored_event" not in views:
        con.execute("ALTER VIEW stored_events RENAME TO every_stored_event")
    instant = as_of.astimezone(timezone.utc).isoformat(sep=" ")
    con.execute("CREATE OR REPLACE VIEW stored_events AS "
                f"SELECT * FROM every_stored_event WHERE ts <= TIMESTAMPTZ '{instant}'")


def canonical_events(con: duckdb.DuckDBPyConnection) -> None:
    """Turn this connection's `events` (the rows as stored, from the local store or the lake)
    into `stored_events`, and make `events` the same rows with every recipient in canonical form
    (sql/events.sql): rows an older version stored with an IDN domain in Unicode and the A-label
    rows of today are one address for every reader. Called wherever `events` is (re)made."""
    from ..core.idn import ascii_address, readable_ascii_domain

    for name, function in (("idn_ascii_address", ascii_address), ("idn_ascii_domain", readable_ascii_domain)):
        try:
            con.create_function(name, function, ["VARCHAR"], "VARCHAR", side_effects=False)
        except (duckdb.NotImplementedException, duckdb.CatalogException):
            pass  # registered on this connection before (a lake view made over the local one)
    con.execute("DROP VIEW IF EXISTS stored_events")
    con.execute("ALTER VIEW events RENAME TO stored_events")
    con.execute(f"CREATE VIEW events AS {read_sql('events')}")


def attach_views(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    from . import layout  # lists and checks the files without numpy or pyarrow

    source = event_source(data_dir)
    files = [] if source is not None else layout.stored_files(data_dir)
    layout.check_files(data_dir, files)  # StoreCorrupt: a truncated file would fail every query on the view
    if source is not None:  # [store] url: every node's events from the lake
        source.attach(con)
    elif not files:
        import pyarrow as pa  # an empty store only: a typed empty view

        from .records import EVENT_SCHEMA

        con.register("_empty_events", pa.table({n: pa.array([], type=t) for n, t in zip(EVENT_SCHEMA.names, EVENT_SCHEMA.types)}))
        con.execute("CREATE OR REPLACE VIEW events AS SELECT *, CAST(NULL AS VARCHAR) AS date FROM _empty_events")
    else:
        glob = layout.files_glob(data_dir).replace("'", "''")
        view = (f"CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet('{glob}', "
                "hive_partitioning = true, hive_types = {'date': VARCHAR}, union_by_name = true)")
        for attempt in range(VIEW_ATTEMPTS):
            try:
                con.execute(view)  # (reads every file's schema: union_by_name)
                break
            except duckdb.IOException as exc:
                # a file of the glob replaced between DuckDB's listing and its read: a running
                # `watch` compacted that day (docs/watch.md); the next listing has the new file
                if attempt == VIEW_ATTEMPTS - 1 or not vanished_file(exc):
                    raise
                time.sleep(0.05)
    canonical_events(con)  # every recipient in one form, whichever version stored it (sql/events.sql)
    con.execute(read_sql("macros"))  # the scalar macros every SQL file shares (counted_error, local_day ...)
    attach_attempt_views(con)
    sup = Path(data_dir) / "suppression"
    for view, file in (("suppression", "current.parquet"), ("suppression_history", "history.parquet")):
        f = sup / file
        if f.is_file():
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{str(f).replace(chr(39), chr(39) * 2)}')")
