"""THE counted errors of the suppression rule, kept on a connection for every reader.

keep_counted_errors() keeps table `bounce_mails` (sql/bounce_mails.sql: which bounce mails' rows
are bound to mail we sent) and table `counted_errors` (sql/counted_errors.sql: the one definition
of a counted error). The rule and the guard read them (pipeline.suppression.rule, guard), and so do
the report (pipeline.report.figures: its counted_errors column), `suppression show` and
`bounces` (store.address_attempts), with as_of EVER; `export --filtered` keeps `bounce_mails`.
Reads the events through the connection's views; writes nothing but the connection's tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..core.vocabulary import SENDER_MTA

UTC = ZoneInfo("UTC")

# "As of whenever": the reports and `suppression show` count every stored row as the rule would
# (the rule itself counts up to its as_of).
EVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def counted_params(tz: str, counted_reasons, window_days: int, as_of: datetime = EVER) -> dict[str, Any]:
    """The params of sql/bounce_mails.sql and sql/counted_errors.sql for a reader other than the
    rule (the report, `suppression show`, `bounces`, `export --filtered`)."""
    return {"tz": tz, "as_of": as_of, "counted_reasons": list(counted_reasons), "window_days": window_days,
            "sender_mta": SENDER_MTA}


def keep_counted_errors(con, params: dict[str, Any], engine=None, *, marks_kept: bool = False) -> None:
    """THE counted errors, kept for every later query of this run: table `bounce_mails`
    (sql/bounce_mails.sql: which bounce mails' rows are bound to mail we sent), then table
    `counted_errors` (sql/counted_errors.sql, which reads it). The rule's first step; the report,
    `suppression show` and `bounces` keep the same tables (with as_of EVER), so that no reader
    counts an error the rule would not. With an engine (Spark) the rows are kept there, where the
    rule's and the guard's queries then run; `con` gets empty tables of DuckDB's shape of them
    (what run_into binds the later queries against). Both read the view `attempts`, as the
    guard's queries do: on DuckDB its marks (sql/not_attempts.sql) are found once here and kept
    for the run (`marks_kept`: the caller kept them already; the Spark engine keeps its own)."""
    from ..store.warehouse import keep_attempt_marks, sql_relation

    for table in ("bounce_mails", "counted_errors"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if engine is not None:
        for table in ("bounce_mails", "counted_errors"):
            engine.keep(table, params, table=table)
            sql_relation(con, table, params).limit(0).to_table(table)
        return

    if not marks_kept:
        keep_attempt_marks(con)
    # The tables' row order is never read (every query over them orders what it needs, by a
    # total order): DuckDB may fill them in parallel instead of in the order of the files.
    con.execute("SET preserve_insertion_order = false")
    try:
        for table in ("bounce_mails", "counted_errors"):
            sql_relation(con, table, params).to_table(table)
    finally:
        con.execute("RESET preserve_insertion_order")
