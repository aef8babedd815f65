"""The report's figures: every report table, from sql/*.sql over the event store.

Reads <data_dir>/events and <data_dir>/suppression/history.parquet through DuckDB
(pipeline.store.warehouse); writes nothing. `build_report()` runs the queries for one period and
returns a Report (the tables as DataFrames, exactly the SQL files' columns). Called by
pipeline.report.reports (the files of `report` and `clean`) and by notebooks.

The figures and their definitions live in the SQL files; docs/reports.md explains them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from ..core.config import ReportSettings, RuleSettings, zone
from ..core.errors import ConfigError, InputError, NoDataError, unreadable_file
from ..store.warehouse import attach_views, keep_attempt_marks, no_progress_bar, require_events, run_sql
from ..suppression.counted import EVER, keep_counted_errors
from ..suppression.rule import rule_params
from ..suppression.store import HISTORY_SCHEMA

TOP_DOMAINS = 20
# Longer periods are charted per week instead of per day.
MAX_DAILY_CHART_DAYS = 92
# "On the hour" (毎正時) in carrier_hourly: the first minutes of each hour.
ON_THE_HOUR_MINUTES = 5

# table name -> the SQL file (and its extra params) it comes from; the order of the files written
QUERIES: dict[str, tuple[str, dict]] = {
    "carrier_totals": ("carrier_figures", {"grain": "period"}),
    "carrier_weekly": ("carrier_figures", {"grain": "week"}),
    "carrier_daily": ("carrier_figures", {"grain": "day"}),
    "carrier_hourly": ("carrier_hourly", {"edge_minutes": ON_THE_HOUR_MINUTES}),
    "reasons_by_carrier": ("reasons_by_carrier", {}),
    "top_failing_domains": ("top_failing_domains", {"limit": TOP_DOMAINS}),
    "sender_problems_daily": ("sender_problems_daily", {}),
    "filtered_daily": ("filtered_daily", {}),
    "suppression_growth": ("suppression_growth", {}),
}


@dataclass
class Report:
    """The tables of one report, with the period they cover."""

    timezone: str
    since: date | None                 # as asked (None = from the first stored day)
    until: date | None                 # as asked (None = up to the last stored day)
    first_day: date                    # first and last local day that hold events in the period
    last_day: date
    generated_at: datetime
    fail_over: float                   # unknown-user rate alert threshold (0 = off)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def chart_figures(self) -> pd.DataFrame:
        """Daily figures, or weekly ones when the period is long."""
        days = (self.last_day - self.first_day).days + 1
        return self.tables["carrier_daily" if days <= MAX_DAILY_CHART_DAYS else "carrier_weekly"]

    @property
    def chart_grain(self) -> str:
        return "day" if self.chart_figures is self.tables["carrier_daily"] else "week"

    @property
    def period(self) -> tuple[date, date]:
        return self.first_day, self.last_day

    def over_threshold(self, rate: float | None = None) -> list[tuple[str, float]]:
        """Carriers whose unknown-user rate over the period exceeds `rate` (default: fail_over)."""
        limit = self.fail_over if rate is None else rate
        if not limit:
            return []
        t = self.tables["carrier_totals"]
        rows = t[(t["carrier"] != "all") & (t["unknown_user_rate"] > limit)]
        return [(r.carrier, float(r.unknown_user_rate)) for r in rows.itertuples()]


# --------------------------------------------------------------------------- inputs
def parse_day(value: str | date | None, name: str = "date") -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"cannot read {name} {value!r} as a day: use YYYY-MM-DD (a local calendar day)") from None


def parse_rate(value, name: str = "--fail-over") -> float:
    """0.05, "0.05" or "5%" -> 0.05. Rates are fractions between 0 and 1 (0 = off)."""
    if value is None or value == "":
        return 0.0
    text = str(value).strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError(f"{name} {value!r} is not a rate: write 0.05 or 5%") from None
    if not 0 <= rate <= 1:
        raise InputError(f"{name} {value!r} is outside 0..1: write 0.05 or 5% (0 turns the alert off)")
    return rate


def open_warehouse(data_dir: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """DuckDB with `events` and `suppression_history` (empty when no list exists yet)."""
    data_dir = Path(data_dir)
    require_events(data_dir)  # the local store's, or the lake's with [store] url
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    no_progress_bar(con)
    attach_views(con, data_dir)
    keep_attempt_marks(con)  # every report query reads `attempts`: the marks are found once
    has_history = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'suppression_history'").fetchall()[0][0]
    if not has_history:
        con.register("suppression_history", HISTORY_SCHEMA.empty_table())
    return con


def query_params(timezone: str, rule: RuleSettings, since: date | None, until: date | None) -> dict:
    """The $params every report SQL file draws from (each file takes the ones it uses; the
    counted errors are the table keep_counted_errors kept)."""
    return {"tz": timezone, "since": since, "until": until}


# --------------------------------------------------------------------------- tables
def build_report(data_dir: str | os.PathLike, settings: ReportSettings, rule: RuleSettings,
                 timezone: str, since: str | date | None = None, until: str | date | None = None,
                 *, fail_over: float | str | None = None) -> Report:
    """Run every report query for the local days since..until (inclusive; None = open end).

    `settings` gives the alert threshold (report.fail_over) unless `fail_over` is passed;
    `rule` gives the counted reasons; `timezone` (an IANA name) the calendar days."""
    tz: ZoneInfo = zone(timezone)
    since_d, until_d = parse_day(since, "--since"), parse_day(until, "--until")
    if since_d and until_d and since_d > until_d:
        raise InputError(f"--since {since_d} is after --until {until_d}")
    try:
        threshold = parse_rate(settings.fail_over if fail_over is None else fail_over,
                               "report.fail_over" if fail_over is None else "--fail-over")
    except InputError as exc:
        if fail_over is None:
            raise ConfigError(str(exc)) from None
        raise
    try:
        con = open_warehouse(data_dir)
    except Exception as exc:
        error = unreadable_file(exc)
        if error is None:
            raise
        raise error from None
    try:
        # the counted errors: the rule's own (sql/counted_errors.sql), kept as the rule keeps them
        keep_counted_errors(con, rule_params(rule, timezone, EVER), marks_kept=True)
        p = query_params(timezone, rule, since_d, until_d)
        tables = {name: run_sql(con, file, {**p, **extra}).df() for name, (file, extra) in QUERIES.items()}
        totals = tables["carrier_totals"]
        if totals.empty:
            stored = run_sql(con, "carrier_figures",
                             {**query_params(timezone, rule, None, None), "grain": "period"}).df()
            first, last = stored["period_start"].iloc[0], stored["period_end"].iloc[0]
            raise NoDataError(
                f"no events between {since_d or 'the start'} and {until_d or 'the end'} "
                f"({timezone} days) in {data_dir}; the stored events cover "
                f"{pd.Timestamp(first):%Y-%m-%d} .. {pd.Timestamp(last):%Y-%m-%d}")
    except Exception as exc:
        error = unreadable_file(exc)
        if error is None:
            raise
        raise error from None
    finally:
        con.close()
    first_day = pd.Timestamp(totals["period_start"].iloc[0]).date()
    last_day = pd.Timestamp(totals["period_end"].iloc[0]).date()
    return Report(timezone=timezone, since=since_d, until=until_d, first_day=first_day,
                  last_day=last_day, generated_at=datetime.now(tz), fail_over=threshold,
                  tables=tables)
