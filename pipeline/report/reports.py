"""Per-carrier reports: the files of `report` and of the nightly `clean` job.

Reads the event store and the suppression history (through pipeline.report.figures); writes
<out_dir>/report.html, one CSV per table and one PNG per chart, each file atomically (temp file +
fsync + os.replace), overwriting the previous report in that folder. Called by the CLI
(`report`: generate), by the nightly job (pipeline.jobs.clean: write_report) and by notebooks
(build_report, key_figures, display_table).

The pieces, one job each: figures (the tables, SQL), charts (data in, Figure out), html (the
page), csvfiles (formula-safe CSV bytes), labels (English and Japanese words), fonts (the
Japanese chart font), notice (the template notice for handset filters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from ..core.config import Config, ReportSettings, RuleSettings, SenderSettings
from ..core.errors import InputError
from ..core.fsutil import atomic_write_bytes, describe_os_error
from . import charts, fonts, notice
from .cells import RATE_COLUMNS, display_table
from .csvfiles import csv_bytes
from .figures import (MAX_DAILY_CHART_DAYS, ON_THE_HOUR_MINUTES, TOP_DOMAINS, Report, build_report,
                      open_warehouse, parse_day, parse_rate)
from .html import KEY_COLUMNS, render_html
from .labels import labels

__all__ = ["HTML_NAME", "Report", "WrittenReport", "build_report", "chart_pngs", "display_table",
           "generate", "key_figures", "written_report_json", "open_warehouse", "parse_day", "parse_rate", "sending_domain_of",
           "write_report", "MAX_DAILY_CHART_DAYS", "ON_THE_HOUR_MINUTES", "RATE_COLUMNS", "TOP_DOMAINS"]

HTML_NAME = "report.html"


@dataclass
class WrittenReport:
    report: Report
    html: Path
    csv: list[Path]
    charts: list[Path]
    lang: str = "en"
    warnings: list[str] = field(default_factory=list)


def chart_pngs(report: Report, lang: str = "en") -> dict[str, bytes]:
    """file stem -> PNG bytes, for every chart of the report, in `lang`."""
    figures = {
        "bounce_rate_by_carrier": charts.bounce_rate_chart(
            report.chart_figures, lang=lang, period=report.period, grain=report.chart_grain),
        "hourly_by_carrier": charts.hourly_chart(
            report.tables["carrier_hourly"], lang=lang, timezone=report.timezone,
            edge_minutes=ON_THE_HOUR_MINUTES),
        "reasons_by_carrier": charts.reasons_chart(report.tables["reasons_by_carrier"], lang=lang),
        "suppression_growth": charts.suppression_growth_chart(
            report.tables["suppression_growth"], lang=lang, period=report.period),
    }
    return {name: charts.to_png(fig) for name, fig in figures.items()}


def key_figures(report: Report, lang: str = "en") -> pd.DataFrame:
    """The per-carrier figures over the period, for people (terminal, notebook): rates as
    percentages, headers and carrier names in `lang`, and an alert column when a threshold is set."""
    L = labels(lang)
    t = report.tables["carrier_totals"]
    out = display_table(t[list(KEY_COLUMNS)], L, headers=True)
    if report.fail_over:
        over = {c for c, _ in report.over_threshold()}
        out[L.column("alert")] = ["over" if c in over else "" for c in t["carrier"]]
    return out


def written_report_json(written: WrittenReport) -> dict:
    """`report --json` (README "Scripting"): the key figures per carrier (codes and fractions,
    whatever the language) and where the files went.

    {"period": {"first_day", "last_day", "since", "until", "timezone"}, "carriers": [{KEY_COLUMNS
     of sql/carrier_figures.sql: carrier, attempts, ..., rates as fractions 0..1}], "fail_over":
     threshold or 0, "over_threshold": [{"carrier", "unknown_user_rate"}], "html", "csv": [path],
     "charts": [path], "lang", "warnings": [text]}"""
    from ..core.jsonout import jsonable

    report = written.report
    totals = report.tables["carrier_totals"][list(KEY_COLUMNS)]
    carriers = [{c: (None if pd.isna(v) else v) for c, v in row.items()} for row in totals.to_dict("records")]
    return jsonable({
        "period": {"first_day": report.first_day, "last_day": report.last_day, "since": report.since,
                   "until": report.until, "timezone": report.timezone},
        "carriers": carriers,
        "fail_over": report.fail_over,
        "over_threshold": [{"carrier": c, "unknown_user_rate": r} for c, r in report.over_threshold()],
        "html": written.html, "csv": written.csv, "charts": written.charts, "lang": written.lang,
        "warnings": written.warnings,
    })


def generate(data_dir: str | os.PathLike, out_dir: str | os.PathLike, settings: ReportSettings,
             rule: RuleSettings, timezone: str, since: str | date | None = None,
             until: str | date | None = None, *, fail_over: float | str | None = None,
             lang: str | None = None, excel: bool = False,
             sending_domain: str | None = None) -> WrittenReport:
    """Build the report and write report.html, the CSV tables and the PNG charts into out_dir.

    `lang` (default settings.lang): "en" or "ja" for the page, the CSV headers and the charts.
    CSV files get a UTF-8 BOM (Excel on Japanese Windows) when `excel` or lang is "ja".
    `sending_domain` fills the template notice for handset filters."""
    lang = lang or settings.lang
    L = labels(lang)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file: --out needs a folder")
    report = build_report(data_dir, settings, rule, timezone, since, until, fail_over=fail_over)
    chart_lang, warning = fonts.chart_language(L.lang, fonts.japanese_font())
    warnings = [warning] if warning else []
    files = {f"{name}.csv": csv_bytes(df, L.lang, bom=excel or L.lang == "ja")
             for name, df in report.tables.items()}
    pngs = chart_pngs(report, chart_lang)
    files.update({f"{name}.png": data for name, data in pngs.items()})
    files[HTML_NAME] = render_html(report, pngs, L.lang, notice=notice.template(sending_domain)).encode("utf-8")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():   # report.html last: it shows the others' figures
            atomic_write_bytes(out / name, data)
    except OSError as exc:
        raise InputError(f"cannot write the report into {out}: {describe_os_error(exc)}") from None
    html_path = out / HTML_NAME
    csvs = [out / f"{name}.csv" for name in report.tables]
    chart_paths = [out / f"{name}.png" for name in pngs]
    return WrittenReport(report=report, html=html_path, csv=csvs, charts=chart_paths, lang=L.lang,
                         warnings=warnings)


def sending_domain_of(sender: SenderSettings | Config) -> str | None:
    """The domain customers must allow: the envelope sender's, else the From address's
    (`sender`: the [sender] settings, or a Config for its)."""
    sender = getattr(sender, "sender", sender)
    for address in (sender.envelope_from, sender.from_address):
        if address and "@" in address:
            return address.rsplit("@", 1)[1].strip().strip(">").lower() or None
    return None


def write_report(cfg: Config, out_dir: str | os.PathLike, since: str | date | None = None,
                 until: str | date | None = None) -> Path:
    """The nightly job's entry: the report from the config's sections into out_dir; returns the
    path of the HTML file."""
    return generate(cfg.data_dir, out_dir, cfg.report, cfg.rule, cfg.timezone_name, since, until,
                    excel=cfg.export.excel, sending_domain=sending_domain_of(cfg)).html
