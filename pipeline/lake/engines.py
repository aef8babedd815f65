"""One interface over the two query engines: run a named sql/ query, register a table.

    engine = open_engine(cfg, "spark")          # or "duckdb"; None = cfg.engine
    engine.register("releases", arrow_table)
    engine.keep("counted_errors", params, table="counted_errors")   # rows kept on the engine
    rows = engine.query("suppression_candidates", params)   # a pyarrow.Table
    engine.close()

DuckDBEngine runs sql/<name>.sql as it is (named $params); SparkEngine runs its port
(lake.port). Both read the same events: the lake when `[store] url` is set (every node, each
event once), else the local data dir. `normalise()` gives both results one Arrow shape (times in
UTC, whole numbers as int64) so they can be compared cell for cell.

Reads events and sql/; writes nothing. Called by the suppression rule (`suppress --engine`),
the reports, bench/bench_engines.py and the tests.
"""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa

from ..core.config import Config
from ..core.errors import ConfigError
from ..store.warehouse import read_sql, run_sql
from .url import lake_of

ENGINES = ("duckdb", "spark")


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, con):
        self.con = con

    @classmethod
    def open(cls, cfg: Config) -> "DuckDBEngine":
        from .read import connect_lake

        from ..store.warehouse import attach_views, no_progress_bar

        lake = lake_of(cfg)
        if lake is not None:
            con = connect_lake(lake, cfg.data_dir)
        else:
            import duckdb

            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            attach_views(con, cfg.data_dir)
        # the rule and the guard run here for `clean` (cron, `clean --json`) and `suppress`: a
        # query over 2 s would draw DuckDB's progress bar on standard output, into the JSON
        no_progress_bar(con)
        return cls(con)

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def keep(self, name: str, params: dict[str, Any] | None = None, *, table: str) -> None:
        """The rows of sql/<name>.sql kept as table `table` for later queries (a name from code)."""
        from ..store.warehouse import sql_relation

        self.con.execute(f"DROP TABLE IF EXISTS {table}")
        sql_relation(self.con, name, params).to_table(table)

    def events_up_to(self, as_of) -> None:
        """`events` narrowed to the rows up to as_of (store.warehouse.events_up_to); the marks
        are found anew over them (keep_attempt_marks)."""
        from ..store.warehouse import events_up_to, keep_attempt_marks

        events_up_to(self.con, as_of)
        keep_attempt_marks(self.con)

    def keep_attempt_marks(self, marks: str = "not_attempts") -> None:
        """The rows of sql/<marks>.sql kept as the marks `not_attempts` reads (a name from code)."""
        from ..store.warehouse import keep_attempt_marks

        keep_attempt_marks(self.con, marks, f"{marks}_kept")

    def query(self, name: str, params: dict[str, Any] | None = None) -> pa.Table:
        with warnings.catch_warnings():  # "an extra copy of the rows": results here are small
            warnings.simplefilter("ignore", UserWarning)
            return run_sql(self.con, name, params).to_arrow_table()

    def sql(self, text: str) -> pa.Table:
        return self.con.sql(text).to_arrow_table()

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    name = "spark"

    def __init__(self, spark):
        self.spark = spark
        self._queries = 0
        self._kept: dict[str, Any] = {}   # table name -> its checkpointed DataFrame

    @classmethod
    def open(cls, cfg: Config) -> "SparkEngine":
        from .spark import (canonical_events, register_attempt_views, register_lake_events, register_local_events,
                            session)

        spark = session(cfg.spark)
        engine = cls(spark)
        lake = lake_of(cfg)
        if lake is not None:
            for i, df in enumerate(register_lake_events(spark, lake)):
                engine._kept[f"_lake_{i}"] = df  # released by close()
        else:
            register_local_events(spark, cfg.data_dir)
        canonical_events(spark)  # IDN recipients an older version stored: read in canonical form
        engine._kept["_attempt_marks"] = register_attempt_views(spark)  # released by close()
        return engine

    def register(self, name: str, table: pa.Table) -> None:
        from .read import ddl

        if table.num_rows == 0:
            df = self.spark.createDataFrame([], ddl(table.schema))
        else:
            df = self.spark.createDataFrame(table)
        df.createOrReplaceTempView(name)

    def keep(self, name: str, params: dict[str, Any] | None = None, *, table: str) -> None:
        """The rows of sql/<name>.sql computed once and kept (a local checkpoint) as the view
        `table`, which later queries of this engine read (the rule's counted_errors)."""
        from .spark import checkpoint

        df = self._run(name, params, lambda final: checkpoint(self.spark.sql(final)))
        old = self._kept.pop(table, None)
        if old is not None:
            _release_checkpoint(old)
        df.createOrReplaceTempView(table)
        self._kept[table] = df

    def events_up_to(self, as_of) -> None:
        """`events` narrowed to the rows up to as_of, as store.warehouse.events_up_to does in
        DuckDB (the stored rows stay the view `stored_events`), and the attempt views made anew
        over them (their marks found again)."""
        from .spark import events_up_to

        events_up_to(self.spark, as_of)
        self.keep_attempt_marks("not_attempts")

    def keep_attempt_marks(self, marks: str = "not_attempts") -> None:
        """The rows of sql/<marks>.sql (sql/not_attempts.sql, or sql/bound_marks.sql over those
        and the kept `bounce_mails`) kept as the marks `not_attempts`, and `witnessed_events` and
        `attempts` registered again over them (a temp view holds the plan it was made with)."""
        from .spark import register_attempt_views

        old = self._kept.pop("_attempt_marks", None)
        self._kept["_attempt_marks"] = register_attempt_views(self.spark, marks)
        if old is not None:
            _release_checkpoint(old)

    def query(self, name: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The rows of sql/<name>.sql (its port) as an Arrow table."""
        return self._run(name, params, lambda final: self.spark.sql(final).toArrow())

    def _run(self, name: str, params: dict[str, Any] | None, finish):
        """The port of sql/<name>.sql, its named steps run as views: a step that later steps read
        more than once is computed once and kept for this query (Spark would recompute it, down
        to the scan of the events, at every reference); `finish(final_sql)` makes the result."""
        from .port import port_stages
        from .spark import checkpoint

        self._queries += 1
        stages, final = port_stages(read_sql(name), params or {}, macros=read_sql("macros"),
                                    prefix=f"mh_q{self._queries}")
        kept = []
        try:
            for stage in stages:
                df = self.spark.sql(stage.sql)
                if stage.reuse:  # computed here, once; later steps read the stored rows
                    df = checkpoint(df)
                    kept.append(df)
                df.createOrReplaceTempView(stage.view)
            return finish(final)
        finally:
            for df in kept:
                _release_checkpoint(df)
            for stage in stages:
                self.spark.catalog.dropTempView(stage.view)

    def sql(self, text: str) -> pa.Table:
        return self.spark.sql(text).toArrow()

    def close(self) -> None:
        """The session stays up for the process (starting Spark costs seconds); views, cached
        events and kept rows are dropped."""
        for df in self._kept.values():
            _release_checkpoint(df)
        self._kept.clear()
        self.spark.catalog.clearCache()
        for t in self.spark.catalog.listTables():
            if t.isTemporary:
                self.spark.catalog.dropTempView(t.name)


def _release_checkpoint(df) -> None:
    """Free the stored rows of a local checkpoint now (df.unpersist() does not: the rows belong
    to the RDD under the plan, which Spark's cleaner would free only after a JVM garbage
    collection). Best effort: a Spark without this plan shape leaves it to the cleaner."""
    try:
        df._jdf.queryExecution().analyzed().rdd().unpersist(False)
    except Exception:  # noqa: BLE001 (internal API; the cleaner frees it later anyway)
        pass


def open_engine(cfg: Config, name: str | None = None):
    name = name or cfg.engine
    if name == "duckdb":
        return DuckDBEngine.open(cfg)
    if name == "spark":
        return SparkEngine.open(cfg)
    raise ConfigError(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}")


def normalise(table: pa.Table, *, drop_zone: bool = False) -> pa.Table:
    """One shape for both engines' results: aware times in UTC (naive local times as they are),
    integers as int64, large strings as strings. `drop_zone`: every time as a naive UTC wall
    time (DuckDB's `AT TIME ZONE` gives a naive local time, Spark's a UTC-zoned one showing
    the same wall clock)."""
    fields, cols = [], []
    for f, col in zip(table.schema, table.columns):
        t = f.type
        if pa.types.is_timestamp(t):
            target = pa.timestamp("us", tz="UTC" if t.tz and not drop_zone else None)
        elif pa.types.is_integer(t):
            target = pa.int64()
        elif pa.types.is_large_string(t) or pa.types.is_string(t):
            target = pa.string()
        elif pa.types.is_decimal(t):
            target = pa.float64()
        else:
            target = t
        if pa.types.is_timestamp(t) and t.tz and target.tz is None:
            col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).cast(target)
        cols.append(col.cast(target) if col.type != target else col)
        fields.append(pa.field(f.name, target))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def run_into(engine, con, name: str, params: dict[str, Any], *, table: str, inputs: tuple[str, ...] = ()):
    """Run sql/<name>.sql on `engine` (Spark) for a DuckDB-resident caller: the tables of `con`
    named in `inputs` are copied to the engine first (the rule's small state: the list's
    history, its new entries, flagged periods), the rows come back into table `table` of `con`
    with the column types DuckDB gives that query (a naive local time stays naive), and the
    table is returned as a cursor, as run_sql() would return the query's rows.

    `table` and `inputs` are names from code, never data.
    """
    from ..store.warehouse import sql_relation

    for name_in in inputs:
        engine.register(name_in, con.sql(f"SELECT * FROM {name_in}").to_arrow_table())
    rows = engine.query(name, params)
    shape = sql_relation(con, name, params)  # bound, not run: only its column types are read
    con.register("_engine_rows", rows)
    try:
        casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in zip(shape.columns, shape.types))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {casts} FROM _engine_rows")
    finally:
        con.unregister("_engine_rows")
    return con.execute(f"SELECT * FROM {table}")
