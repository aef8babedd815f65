"""THE counted errors of the suppression rule, kept on a connection for every reader.

keep_counted_errors() narrows the events to the run's as_of, keeps table `bounce_mails`
(sql/bounce_mails.sql: which bounce mails' rows are bound to mail we sent), marks the unbound
ones so that the view `attempts` leaves them out (sql/bound_marks.sql: keep_bound_attempts), and
keeps table `counted_errors` (sql/counted_errors.sql: the one definition of a counted error). The
rule and the guard read them (pipeline.suppression.rule, guard), and so do the report
(pipeline.report.figures: every figure, read from `attempts`, and its counted_errors column),
`suppression show` and `bounces` (store.address_attempts), with as_of EVER; `export --filtered`
keeps the bound attempts (keep_bound_attempts).
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


def keep_bound_attempts(con, params: dict[str, Any], engine=None, *, marks_kept: bool = False) -> None:
    """The attempts as of params["as_of"], with the bounce-mail binding applied, for every later
    query of this run:

    1. An as-of run (as_of before EVER) sees only the events up to as_of: `events` is narrowed
       (warehouse.events_up_to) before anything is read, so the marks of sql/not_attempts.sql (a
       hand-off, a restated failure), the binding's witnesses, the counted errors, the latest
       deliveries and the guard's attempts are those a run on that date would have found; no
       event or bounce mail logged after it is seen.
    2. The marks (sql/not_attempts.sql), then table `bounce_mails` (sql/bounce_mails.sql: THE
       binding), then the marks again with every unbound bounce mail's row marked 'unbound'
       (sql/bound_marks.sql): from then on the view `attempts` leaves those rows out, so no
       figure read from it (the report's, the guard's, the latest delivery, export --filtered)
       counts a failure the rule refuses as unbound.

    With an engine (Spark) the same steps run there (its `events`, narrowed at every run, marks
    and views; `con` gets an empty `bounce_mails` of DuckDB's shape). `marks_kept`: the caller kept the marks of
    sql/not_attempts.sql already (with as_of EVER only: an as-of run finds them anew)."""
    from ..store.warehouse import events_up_to, keep_attempt_marks, sql_relation

    as_of = params["as_of"]
    con.execute("DROP TABLE IF EXISTS bounce_mails")
    if engine is not None:
        # every run narrows from the stored rows again and finds the marks anew: an engine
        # outlives a run (`clean` retries on it), and its marks of the last run are no base
        engine.events_up_to(as_of)
        engine.keep("bounce_mails", params, table="bounce_mails")
        engine.keep_attempt_marks("bound_marks")
        sql_relation(con, "bounce_mails", params).limit(0).to_table("bounce_mails")
        return
    if as_of < EVER:
        events_up_to(con, as_of)
        marks_kept = False
    if not marks_kept:
        keep_attempt_marks(con)
    # The tables' row order is never read (every query over them orders what it needs, by a
    # total order): DuckDB may fill them in parallel instead of in the order of the files.
    con.execute("SET preserve_insertion_order = false")
    try:
        sql_relation(con, "bounce_mails", params).to_table("bounce_mails")
        keep_attempt_marks(con, "bound_marks", "bound_attempt_marks")
    finally:
        con.execute("RESET preserve_insertion_order")


def keep_counted_errors(con, params: dict[str, Any], engine=None, *, marks_kept: bool = False) -> None:
    """THE counted errors, kept for every later query of this run: keep_bound_attempts (the
    events up to as_of, table `bounce_mails`, `attempts` without unbound bounce mails' rows),
    then table `counted_errors` (sql/counted_errors.sql). The rule's first step; the report,
    `suppression show` and `bounces` keep the same tables (with as_of EVER), so that no reader
    counts an error the rule would not. With an engine (Spark) the rows are kept there, where the
    rule's and the guard's queries then run; `con` gets empty tables of DuckDB's shape of them
    (what run_into binds the later queries against). On DuckDB the marks (sql/not_attempts.sql)
    are found once here and kept for the run (`marks_kept`: the caller kept them already; the
    Spark engine keeps its own)."""
    from ..store.warehouse import sql_relation

    con.execute("DROP TABLE IF EXISTS counted_errors")
    keep_bound_attempts(con, params, engine, marks_kept=marks_kept)
    if engine is not None:
        engine.keep("counted_errors", params, table="counted_errors")
        sql_relation(con, "counted_errors", params).limit(0).to_table("counted_errors")
        return
    con.execute("SET preserve_insertion_order = false")
    try:
        sql_relation(con, "counted_errors", params).to_table("counted_errors")
    finally:
        con.execute("RESET preserve_insertion_order")
