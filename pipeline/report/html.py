"""report.html: one self-contained page (inline CSS, charts as data: URIs, no scripts).

Pure: a Report, its chart PNGs and a language in, the page's text out (pipeline.report.reports
writes it). Daily tables are collapsed by week, each week's days behind a `<details>`; day cells
never wrap; reply texts are shown on one line; every value is HTML-escaped. Called by
pipeline.report.reports.
"""

from __future__ import annotations

import base64
import html
from datetime import timedelta

import pandas as pd

from .. import __version__
from .cells import DAY_COLUMNS, RATE_COLUMNS, REPLY_COLUMNS, clean_reply, day, percent
from .figures import ON_THE_HOUR_MINUTES, Report
from .labels import Labels, labels

esc = html.escape

# chart file stem -> label key of its heading, in page order
CHARTS = ("bounce_rate_by_carrier", "hourly_by_carrier", "reasons_by_carrier", "suppression_growth")
KEY_COLUMNS = ("carrier", "attempts", "delivered", "bounce_rate", "unknown_user_rate", "filtered",
               "counted_errors", "hard_bounces", "recipients")
NOTICE_ID = "handset-filters"
REASON_COLUMNS = ("reason", "top_reason")

_CSS = """
body { font-family: system-ui, -apple-system, "Hiragino Sans", "Hiragino Kaku Gothic ProN",
       "Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", Meiryo, sans-serif;
       margin: 2em auto; max-width: 78em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
p.meta, p.note { color: #555; margin: 0.2em 0; }
div.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; }
th { background: #f3f3f3; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.day { white-space: nowrap; }
td.text { text-align: left; white-space: nowrap; }
td.reply { text-align: left; min-width: 20em; overflow-wrap: anywhere; }
span.code { color: #777; font-size: 0.85em; }
tr.over td, .alert { background: #fde2e2; }
tr.total td { font-weight: bold; }
.alert { border: 1px solid #e0a0a0; padding: 0.5em 1em; }
details { margin: 0.25em 0; }
summary { cursor: pointer; padding: 0.15em 0; }
summary .week { white-space: nowrap; font-weight: bold; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
dl { font-size: 0.9em; } dt { font-weight: bold; } dd { margin: 0 0 0.4em 1.5em; }
pre.notice { white-space: pre-wrap; font-family: inherit; background: #f7f7f7;
             border: 1px solid #ddd; padding: 1em; line-height: 1.6; }
"""


# --------------------------------------------------------------------------- cells and tables
def _cell(col: str, value, L: Labels) -> tuple[str, str]:
    """(escaped HTML, CSS class) of one cell."""
    if col in RATE_COLUMNS:
        return esc(percent(value)), "num"
    if col in DAY_COLUMNS:
        return esc(day(value)), "day"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "", "text"
    if col in REPLY_COLUMNS:
        return esc(clean_reply(value)), "reply"
    if col == "carrier":
        return esc(L.carrier(value)), "text"
    if col in REASON_COLUMNS:
        name = L.reason(value)
        return (esc(name) + (f' <span class="code">{esc(value)}</span>' if name != value else "")), "text"
    if col == "scope":
        return esc(L.scope(value)), "text"
    if col == "hour":
        return f"{int(value):02d}:00", "num"
    if isinstance(value, (int, float)) or pd.api.types.is_number(value):
        return esc(str(value)), "num"
    return esc(str(value)), "text"


def table_html(df: pd.DataFrame, L: Labels, *, row_class=None) -> str:
    """A table of `df` with headers in L's language; `row_class(row) -> str` marks rows."""
    if df.empty:
        return f"<p>{esc(L('none'))}</p>"
    head = "".join(f"<th>{esc(L.column(c))}</th>" for c in df.columns)
    body = []
    for rec in df.to_dict("records"):
        cls = row_class(rec) if row_class else ""
        cells = "".join('<td class="{1}">{0}</td>'.format(*_cell(c, rec[c], L)) for c in df.columns)
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _monday(value) -> pd.Timestamp:
    ts = pd.Timestamp(value).normalize()
    return ts - timedelta(days=ts.weekday())


def by_week_html(df: pd.DataFrame, L: Labels, summary=None, *, day_column: str = "day") -> str:
    """One `<details>` per week (Monday to Sunday): the week and `summary(week_start, rows)` in
    the `<summary>`, the week's rows in a table behind it."""
    if df.empty:
        return f"<p>{esc(L('none'))}</p>"
    weeks = df[day_column].map(_monday)
    parts = []
    for start in sorted(weeks.unique()):
        rows = df[weeks == start]
        label = L("week", start=f"{start:%Y-%m-%d}", end=f"{start + timedelta(days=6):%Y-%m-%d}")
        extra = summary(start, rows) if summary else L("week_rows", n=len(rows))
        parts.append(f'<details><summary><span class="week">{esc(label)}</span> · {esc(extra)}</summary>'
                     f"{table_html(rows, L, row_class=_total_row)}</details>")
    return "\n".join(parts)


def _total_row(rec) -> str:
    return "total" if rec.get("carrier") == "all" else ""


# --------------------------------------------------------------------------- the page
def _chart(name: str, pngs: dict[str, bytes], L: Labels) -> list[str]:
    if name not in pngs:
        return []
    title = L(f"chart.{name}")
    data = base64.b64encode(pngs[name]).decode("ascii")
    return [f'<h2 id="chart-{name}">{esc(title)}</h2>',
            f'<img id="img-{name}" alt="{esc(title)}" src="data:image/png;base64,{data}">']


def _section(name: str, report: Report, L: Labels, body: str, note: str = "") -> list[str]:
    df = report.tables[name]
    meta = esc(L("rows", n=len(df), csv=f"{name}.csv"))
    text = f"{note}{L('note_end')}{meta}" if note else meta
    return [f'<h2 id="table-{name}">{esc(L("title." + name))}</h2>', f'<p class="note">{text}</p>', body]


def render_html(report: Report, pngs: dict[str, bytes], lang: str = "en",
                notice: str | None = None) -> str:
    """One self-contained page: inline CSS, PNGs as data: URIs, no scripts, no external files.

    `notice`: the template notice for customers whose handset filters refuse us (embedded at
    the end and linked from the reception-filter table)."""
    L = labels(lang)
    period = f"{report.first_day:%Y-%m-%d} .. {report.last_day:%Y-%m-%d}"
    if lang == "ja":
        period = f"{report.first_day:%Y-%m-%d} 〜 {report.last_day:%Y-%m-%d}"
    asked = ""
    if report.since or report.until:
        asked = L("asked", since=report.since or L("start"), until=report.until or L("end"))
    t = report.tables
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{L("html_lang")}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(L('page_title', period=period))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(L('heading'))}</h1>",
        '<p class="meta">' + L("period", period=esc(period), asked=esc(asked), tz=esc(report.timezone)) + "</p>",
        f'<p class="meta">{esc(L("generated", at=f"{report.generated_at:%Y-%m-%d %H:%M:%S %Z}", version=__version__))}</p>',
    ]
    over = report.over_threshold()
    if over:
        items = ", ".join(f"{L.carrier(c)} {percent(r)}" for c, r in over)
        parts.append(f'<p class="alert">{esc(L("alert", limit=percent(report.fail_over), items=items))}</p>')
    parts.append(f'<h2 id="key-figures">{esc(L("key_figures"))}</h2>')
    overs = {c for c, _ in over}
    parts.append(table_html(t["carrier_totals"][list(KEY_COLUMNS)], L,
                            row_class=lambda r: "over" if r["carrier"] in overs else _total_row(r)))
    for name in CHARTS:
        parts += _chart(name, pngs, L)

    parts += _section("carrier_weekly", report, L, table_html(t["carrier_weekly"], L, row_class=_total_row))

    weekly_all = t["carrier_weekly"][t["carrier_weekly"]["carrier"] == "all"]
    week_totals = {_monday(r.period_start): r for r in weekly_all.itertuples()}

    def daily_summary(start, rows):
        week = week_totals.get(start)
        if week is None:
            return L("week_rows", n=len(rows))
        return L("week_summary", attempts=int(week.attempts), rate=percent(week.bounce_rate))

    daily = t["carrier_daily"].drop(columns="period_end").rename(columns={"period_start": "day"})
    parts += _section("carrier_daily", report, L, by_week_html(daily, L, daily_summary))
    hourly = t["carrier_hourly"]
    hourly_body = "\n".join(
        f"<details><summary>{esc(L.carrier(c))}</summary>{table_html(hourly[hourly['carrier'] == c], L)}</details>"
        for c in hourly["carrier"].unique()) if len(hourly) else f"<p>{esc(L('none'))}</p>"
    parts += _section("carrier_hourly", report, L, hourly_body,
                      esc(L("note.carrier_hourly", minutes=ON_THE_HOUR_MINUTES)))
    parts += _section("reasons_by_carrier", report, L, table_html(t["reasons_by_carrier"], L))
    parts += _section("top_failing_domains", report, L, table_html(t["top_failing_domains"], L))
    parts += _section("sender_problems_daily", report, L, by_week_html(t["sender_problems_daily"], L),
                      esc(L("note.sender_problems_daily")))
    link = f'<a href="#{NOTICE_ID}">{esc(L("note.filtered_link"))}</a>' if notice else ""
    parts += _section("filtered_daily", report, L, by_week_html(t["filtered_daily"], L),
                      esc(L("note.filtered_daily") if notice else L("note.filtered_daily").rstrip(": ")) + link)
    parts += _section("suppression_growth", report, L, table_html(t["suppression_growth"], L))
    parts.append(f'<h2 id="definitions">{esc(L("definitions"))}</h2>')
    parts.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in L.definitions) + "</dl>")
    if notice:
        parts.append(f'<h2 id="{NOTICE_ID}">{esc(L("note.filtered_link"))}</h2>')
        parts.append(f'<pre class="notice" lang="ja">{esc(notice)}</pre>')
    parts.append("</body>")
    parts.append("</html>")
    return "\n".join(parts) + "\n"
