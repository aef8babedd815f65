"""Per-carrier reports: tables from sql/*.sql, charts, CSV files and one self-contained HTML file.

Reads the event store and the suppression history through DuckDB (pipeline.store.warehouse); writes
<out_dir>/report.html, one CSV per table and one PNG per chart, each file atomically (temp file +
os.replace), overwriting the previous report in that folder. Called by the CLI (`report`), by the
nightly job (pipeline.jobs.clean -> write_report) and by notebooks (build_report for the tables only).

The figures and their definitions live in the SQL files; docs/reports.md explains them.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from .. import __version__
from . import charts
from ..core.config import Config
from ..core.errors import ConfigError, InputError, NoDataError
from ..store.event_store import EventStore
from ..suppression.store import HISTORY_SCHEMA
from ..store.warehouse import attach_views, run_sql

HTML_NAME = "report.html"
TOP_DOMAINS = 20
# Longer periods are charted per week instead of per day.
MAX_DAILY_CHART_DAYS = 92

# table name -> (title in the HTML, what it says)
TABLES = {
    "carrier_totals": ("Per carrier over the period", "sql/carrier_figures.sql, grain = period"),
    "carrier_weekly": ("Per carrier and week (Monday to Sunday)", "sql/carrier_figures.sql, grain = week"),
    "carrier_daily": ("Per carrier and day", "sql/carrier_figures.sql, grain = day"),
    "reasons_by_carrier": ("Why attempts did not deliver, per carrier", "sql/reasons_by_carrier.sql"),
    "top_failing_domains": ("Top failing recipient domains", "sql/top_failing_domains.sql"),
    "sender_problems_daily": ("Problems on our side (scope = sender) per carrier and day",
                              "sql/sender_problems_daily.sql: never counted against addresses"),
    "suppression_growth": ("Suppression list growth", "sql/suppression_growth.sql"),
}
RATE_COLUMNS = ("bounce_rate", "unknown_user_rate", "share_of_carrier", "failure_rate", "share_of_attempts")


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

    def over_threshold(self, rate: float | None = None) -> list[tuple[str, float]]:
        """Carriers whose unknown-user rate over the period exceeds `rate` (default: fail_over)."""
        limit = self.fail_over if rate is None else rate
        if not limit:
            return []
        t = self.tables["carrier_totals"]
        rows = t[(t["carrier"] != "all") & (t["unknown_user_rate"] > limit)]
        return [(r.carrier, float(r.unknown_user_rate)) for r in rows.itertuples()]


@dataclass
class WrittenReport:
    report: Report
    html: Path
    csv: list[Path]
    charts: list[Path]


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


def _params(cfg: Config, since: date | None, until: date | None) -> dict:
    return {"tz": cfg.timezone_name, "since": since, "until": until,
            "counted_reasons": list(cfg["rule"]["counted_reasons"]), "limit": TOP_DOMAINS}


def open_warehouse(cfg: Config) -> duckdb.DuckDBPyConnection:
    """DuckDB with `events` and `suppression_history` (empty when no list exists yet)."""
    if EventStore(cfg.data_dir).is_empty():
        raise NoDataError(f"no events in {cfg.data_dir} yet: run `mailhygiene ingest LOGS` first "
                          "(or pass the right --data-dir)")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    attach_views(con, cfg.data_dir)
    has_history = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'suppression_history'").fetchall()[0][0]
    if not has_history:
        con.register("suppression_history", HISTORY_SCHEMA.empty_table())
    return con


# --------------------------------------------------------------------------- tables
def build_report(cfg: Config, since: str | date | None = None, until: str | date | None = None,
                 *, fail_over: float | str | None = None) -> Report:
    """Run every report query for the local days since..until (inclusive; None = open end)."""
    since_d, until_d = parse_day(since, "--since"), parse_day(until, "--until")
    if since_d and until_d and since_d > until_d:
        raise InputError(f"--since {since_d} is after --until {until_d}")
    try:
        threshold = parse_rate(cfg["report"]["fail_over"] if fail_over is None else fail_over,
                               "report.fail_over" if fail_over is None else "--fail-over")
    except InputError as exc:
        if fail_over is None:
            raise ConfigError(str(exc)) from None
        raise
    con = open_warehouse(cfg)
    try:
        p = _params(cfg, since_d, until_d)
        tables = {
            "carrier_totals": run_sql(con, "carrier_figures", {**p, "grain": "period"}).df(),
            "carrier_weekly": run_sql(con, "carrier_figures", {**p, "grain": "week"}).df(),
            "carrier_daily": run_sql(con, "carrier_figures", {**p, "grain": "day"}).df(),
            "reasons_by_carrier": run_sql(con, "reasons_by_carrier", p).df(),
            "top_failing_domains": run_sql(con, "top_failing_domains", p).df(),
            "sender_problems_daily": run_sql(con, "sender_problems_daily", p).df(),
            "suppression_growth": run_sql(con, "suppression_growth", p).df(),
        }
        totals = tables["carrier_totals"]
        if totals.empty:
            stored = run_sql(con, "carrier_figures", {**_params(cfg, None, None), "grain": "period"}).df()
            first, last = stored["period_start"].iloc[0], stored["period_end"].iloc[0]
            raise NoDataError(
                f"no events between {since_d or 'the start'} and {until_d or 'the end'} "
                f"({cfg.timezone_name} days) in {cfg.data_dir}; the stored events cover "
                f"{pd.Timestamp(first):%Y-%m-%d} .. {pd.Timestamp(last):%Y-%m-%d}")
    finally:
        con.close()
    first_day = pd.Timestamp(totals["period_start"].iloc[0]).date()
    last_day = pd.Timestamp(totals["period_end"].iloc[0]).date()
    return Report(timezone=cfg.timezone_name, since=since_d, until=until_d, first_day=first_day,
                  last_day=last_day, generated_at=datetime.now(cfg.tz), fail_over=threshold,
                  tables=tables)


def chart_pngs(report: Report) -> dict[str, bytes]:
    """file stem -> PNG bytes, for every chart of the report."""
    grain = "daily" if report.chart_grain == "day" else "weekly"
    figures = {
        "bounce_rate_by_carrier": charts.bounce_rate_chart(
            report.chart_figures, title=f"Bounce rate per carrier ({grain})"),
        "reasons_by_carrier": charts.reasons_chart(report.tables["reasons_by_carrier"]),
        "suppression_growth": charts.suppression_growth_chart(report.tables["suppression_growth"]),
    }
    return {name: charts.to_png(fig) for name, fig in figures.items()}


# --------------------------------------------------------------------------- output
def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{value * 100:.1f} %"


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rates as percentages and dates as YYYY-MM-DD, for people (HTML, notebook)."""
    out = df.copy()
    for col in out.columns:
        if col in RATE_COLUMNS:
            out[col] = out[col].map(_percent)
        elif col in ("period_start", "period_end", "day"):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{pd.Timestamp(v):%Y-%m-%d}")
    return out


_CSS = """
body { font-family: system-ui, -apple-system, "Hiragino Sans", "Noto Sans JP", Meiryo, sans-serif;
       margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
p.meta, p.note { color: #555; margin: 0.2em 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; }
td:nth-child(-n+3) { text-align: left; }
tr.over td, .alert { background: #fde2e2; }
.alert { border: 1px solid #e0a0a0; padding: 0.5em 1em; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
dl { font-size: 0.9em; } dt { font-weight: bold; } dd { margin: 0 0 0.4em 1.5em; }
"""

_DEFINITIONS = [
    ("attempts", "every delivery attempt (one log line per recipient), deferrals included"),
    ("finished", "attempts with a final outcome: delivered + bounced + expired + undeliverable"),
    ("bounce rate", "(bounced + expired + undeliverable) / finished"),
    ("unknown-user rate", "finished attempts with reason user_unknown / finished"),
    ("counted errors", "deferred/bounced/expired, scope recipient, reason in rule.counted_reasons "
                       "(what the suppression rule counts)"),
    ("hard bounces", "hard = true and status bounced, expired or undeliverable"),
    ("filtered", "attempts with reason filtered: the receiver refused our mail"),
    ("days", "calendar days in the report's time zone"),
]


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, PNGs as data: URIs, no external resources."""
    esc = html.escape
    period = f"{report.first_day:%Y-%m-%d} .. {report.last_day:%Y-%m-%d}"
    asked = ""
    if report.since or report.until:
        asked = f" (asked: {report.since or 'start'} .. {report.until or 'end'})"
    over = report.over_threshold()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mailhygiene report {esc(period)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>mailhygiene delivery report</h1>",
        f'<p class="meta">Period: <b>{esc(period)}</b>{esc(asked)}, calendar days in {esc(report.timezone)}</p>',
        f'<p class="meta">Generated: {report.generated_at:%Y-%m-%d %H:%M:%S %Z} by mailhygiene {esc(__version__)}</p>',
    ]
    if over:
        items = ", ".join(f"{c} {r * 100:.1f} %" for c, r in over)
        parts.append(f'<p class="alert">Unknown-user rate over {report.fail_over * 100:.1f} %: {esc(items)}</p>')
    parts.append("<h2>Key figures</h2>")
    parts.append(key_figures_html(report))
    for name, title in (("bounce_rate_by_carrier", "Bounce rate per carrier"),
                        ("reasons_by_carrier", "Reasons per carrier"),
                        ("suppression_growth", "Suppression list growth")):
        if name in pngs:
            data = base64.b64encode(pngs[name]).decode("ascii")
            parts.append(f"<h2>{esc(title)}</h2>")
            parts.append(f'<img alt="{esc(title)}" src="data:image/png;base64,{data}">')
    for name, (title, source) in TABLES.items():
        if name == "carrier_totals":
            continue
        df = report.tables[name]
        parts.append(f"<h2>{esc(title)}</h2>")
        parts.append(f'<p class="note">{esc(source)}; {len(df)} row(s); also {esc(name)}.csv</p>')
        parts.append(display_table(df).to_html(index=False, escape=True, na_rep="", border=0)
                     if len(df) else "<p>(none)</p>")
    parts.append("<h2>Definitions</h2>")
    parts.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _DEFINITIONS) + "</dl>")
    parts.append("</body>")
    parts.append("</html>")
    return "\n".join(parts) + "\n"


KEY_COLUMNS = [("carrier", "carrier"), ("attempts", "attempts"), ("delivered", "delivered"),
               ("bounce_rate", "bounce rate"), ("unknown_user_rate", "unknown-user rate"),
               ("filtered", "filtered"), ("counted_errors", "counted errors"),
               ("hard_bounces", "hard bounces"), ("recipients", "recipients")]


def key_figures(report: Report) -> pd.DataFrame:
    """The per-carrier figures over the period, for people (terminal, HTML, notebook)."""
    t = report.tables["carrier_totals"]
    out = display_table(t[[c for c, _ in KEY_COLUMNS]]).rename(columns=dict(KEY_COLUMNS))
    if report.fail_over:
        over = {c for c, _ in report.over_threshold()}
        out["alert"] = ["over" if c in over else "" for c in t["carrier"]]
    return out


def key_figures_html(report: Report) -> str:
    df = key_figures(report)
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cls = ' class="over"' if getattr(rec, "alert", "") else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{esc(str(v))}</td>" for v in rec) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def generate(cfg: Config, out_dir: str | os.PathLike, since: str | date | None = None,
             until: str | date | None = None, *, fail_over: float | str | None = None) -> WrittenReport:
    """Build the report and write report.html, the CSV tables and the PNG charts into out_dir."""
    report = build_report(cfg, since, until, fail_over=fail_over)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file: --out needs a folder")
    out.mkdir(parents=True, exist_ok=True)
    csvs = []
    for name, df in report.tables.items():
        path = out / f"{name}.csv"
        _atomic_write(path, df.to_csv(index=False, date_format="%Y-%m-%d").encode("utf-8"))
        csvs.append(path)
    pngs = chart_pngs(report)
    chart_paths = []
    for name, data in pngs.items():
        path = out / f"{name}.png"
        _atomic_write(path, data)
        chart_paths.append(path)
    html_path = out / HTML_NAME
    _atomic_write(html_path, render_html(report, pngs).encode("utf-8"))
    return WrittenReport(report=report, html=html_path, csv=csvs, charts=chart_paths)


def write_report(cfg: Config, out_dir: str | os.PathLike, since: str | date | None = None,
                 until: str | date | None = None) -> Path:
    """Write the report into out_dir; returns the path of the HTML file."""
    return generate(cfg, out_dir, since, until).html
