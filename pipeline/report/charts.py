"""Matplotlib figures for the report and the notebook: a DataFrame in, a Figure out.

Reads nothing and writes nothing: each function takes the table of one sql/ file (as returned by
pipeline.report.figures) and returns a `matplotlib.figure.Figure` drawn on an Agg canvas. No
pyplot and no change to matplotlib's global settings: a figure carries its own fonts (the
Japanese font of pipeline.report.fonts for `lang="ja"`) and applies them only while it is drawn,
so nothing leaks between calls, threads or a notebook's own plots. Time axes span the report
period (`period=(first_day, last_day)`), not just the days that happen to have data. `to_png()`
turns a figure into PNG bytes. Called by pipeline.report.reports and notebooks/explore_bounces.ipynb.
"""

from __future__ import annotations

import io
from datetime import date

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter, DayLocator
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from . import fonts
from .labels import labels
from ..core.vocabulary import CARRIERS, OTHER_CARRIER

# One colour per carrier, the same in every chart; 'all' (every carrier together) is black.
CARRIER_COLORS = {
    "docomo": "tab:red", "au": "tab:orange", "softbank": "tab:blue", "ymobile": "tab:pink",
    "rakuten": "tab:purple", "other": "tab:green", "unknown": "tab:brown", "all": "black",
}
_SPARE_COLORS = ["tab:olive", "tab:cyan", "tab:gray"]
REFUSED_COLOR = "0.15"   # near black: distinct from every carrier colour


def carrier_color(carrier: str) -> str:
    """A carrier's colour; carriers added in the config get a spare colour by name."""
    if carrier in CARRIER_COLORS:
        return CARRIER_COLORS[carrier]
    return _SPARE_COLORS[sum(carrier.encode()) % len(_SPARE_COLORS)]


def carrier_order(carriers) -> list[str]:
    """The mobile carriers in their usual order, then the others by name, 'unknown' and 'all' last."""
    rank = {c: i for i, c in enumerate(CARRIERS + (OTHER_CARRIER,))}
    tail = {"unknown": 1, "all": 2}
    return sorted(set(carriers), key=lambda c: (tail.get(c, 0), rank.get(c, len(rank)), c))


class ChartFigure(Figure):
    """A Figure that draws with its own font settings (matplotlib rc), whoever renders it."""

    def __init__(self, *args, rc: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rc = dict(rc or {})

    def fonts(self):
        return matplotlib.rc_context(self.rc)

    def draw(self, renderer):
        with self.fonts():
            return super().draw(renderer)


def _figure(lang: str, width: float = 9.0, height: float = 4.5) -> ChartFigure:
    fig = ChartFigure(figsize=(width, height), layout="constrained", rc=fonts.rc_params(lang))
    FigureCanvasAgg(fig)
    return fig


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _date_axis(ax, x: pd.Series, period: tuple[date, date] | None = None) -> None:
    """Whole days on the x axis over the report period (else the data's days), a day of margin."""
    lo = _day(period[0]) if period else x.min()
    hi = _day(period[1]) if period else x.max()
    if len(x):
        lo, hi = min(lo, x.min()), max(hi, x.max())
    lo, hi = lo - pd.Timedelta(days=1), hi + pd.Timedelta(days=1)
    ax.set_xlim(lo, hi)
    span = (hi - lo).days
    ax.xaxis.set_major_locator(DayLocator(interval=max(1, span // 12)) if span <= 120
                               else AutoDateLocator())
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def _no_data(ax, text: str, keep_axes: bool = False) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    if not keep_axes:
        ax.set_xticks([])
        ax.set_yticks([])


def bounce_rate_chart(figures: pd.DataFrame, title: str | None = None, *, lang: str = "en",
                      period: tuple[date, date] | None = None, grain: str = "day") -> Figure:
    """Lines of bounce_rate over period_start, one per carrier ('all' dashed).

    `figures`: rows of sql/carrier_figures.sql at grain 'day' or 'week'.
    """
    L = labels(lang)
    fig = _figure(lang)
    with fig.fonts():
        ax = fig.add_subplot()
        ax.set_title(title or L("chart_title.bounce_rate", grain=L(f"grain.{grain}")))
        data = figures.dropna(subset=["bounce_rate"]) if len(figures) else figures
        if data.empty:
            _no_data(ax, L("chart.no_finished"), keep_axes=period is not None)
            if period is not None:
                _date_axis(ax, pd.Series([], dtype="datetime64[ns]"), period)
            return fig
        for carrier in carrier_order(data["carrier"].unique()):
            rows = data[data["carrier"] == carrier].sort_values("period_start")
            x = pd.to_datetime(rows["period_start"])
            ax.plot(x, rows["bounce_rate"], marker="o", markersize=3,
                    linestyle="--" if carrier == "all" else "-",
                    linewidth=1.2 if carrier == "all" else 1.8,
                    color=carrier_color(carrier), label=L.carrier(carrier))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, max(0.05, float(data["bounce_rate"].max()) * 1.1))
        ax.set_ylabel(L("chart.bounce_rate_ylabel"))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        _date_axis(ax, pd.to_datetime(data["period_start"]), period)
    return fig


def reasons_chart(reasons: pd.DataFrame, title: str | None = None, *, lang: str = "en") -> Figure:
    """Horizontal stacked bars: undelivered attempts per carrier, split by reason.

    `reasons`: rows of sql/reasons_by_carrier.sql (carrier, reason, attempts, ...).
    """
    L = labels(lang)
    n = reasons["carrier"].nunique() if len(reasons) else 1
    fig = _figure(lang, height=max(3.0, 1.0 + 0.6 * max(1, n)))
    with fig.fonts():
        ax = fig.add_subplot()
        ax.set_title(title or L("chart.reasons_title"))
        if reasons.empty:
            _no_data(ax, L("chart.all_delivered"))
            return fig
        table = reasons.pivot_table(index="carrier", columns="reason", values="attempts",
                                    aggfunc="sum", fill_value=0)
        # biggest reasons first (left), carriers with most trouble on top
        table = table[table.sum().sort_values(ascending=False).index]
        table = table.loc[table.sum(axis=1).sort_values().index]
        names = [L.carrier(c) for c in table.index]
        palette = [f"C{i}" for i in range(10)] + ["tab:olive", "tab:cyan", "0.5", "0.75", "0.25"]
        left = pd.Series(0, index=table.index, dtype="float64")
        for i, reason in enumerate(table.columns):
            ax.barh(names, table[reason], left=left, color=palette[i % len(palette)],
                    label=L.reason(reason))
            left += table[reason]
        ax.set_xlabel(L("chart.reasons_xlabel"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return fig


def hourly_chart(hourly: pd.DataFrame, *, lang: str = "en", timezone: str = "",
                 edge_minutes: int = 5) -> Figure:
    """One panel per carrier: attempts per local hour of the day (the first `edge_minutes` of
    each hour solid), refusals (scope sender) in dark grey; each panel's title says which share of the
    carrier's attempts and refusals fell on the hour.

    `hourly`: rows of sql/carrier_hourly.sql.
    """
    L = labels(lang)
    carriers = carrier_order(hourly["carrier"].unique()) if len(hourly) else []
    fig = _figure(lang, height=1.2 + 1.9 * max(1, len(carriers)))
    with fig.fonts():
        fig.suptitle(L("chart.hourly_title", tz=timezone) if timezone else L("chart.hourly_by_carrier"))
        if not carriers:
            _no_data(fig.add_subplot(), L("chart.hourly_none"))
            return fig
        axes = fig.subplots(len(carriers), 1, sharex=True, squeeze=False)[:, 0]
        for ax, carrier in zip(axes, carriers):
            counts = ["attempts", "on_the_hour_attempts", "refused", "on_the_hour_refused"]
            rows = (hourly.loc[hourly["carrier"] == carrier, ["hour", *counts]]
                    .set_index("hour").reindex(range(24), fill_value=0))
            color = carrier_color(carrier)
            hours = list(range(24))
            ax.bar(hours, rows["attempts"], width=0.8, color=color, alpha=0.3,
                   label=L("chart.hourly_attempts"))
            ax.bar(hours, rows["on_the_hour_attempts"], width=0.8, color=color,
                   label=(L("chart.hourly_on_the_hour", minutes=edge_minutes, last=edge_minutes - 1)))
            ax.bar([h + 0.22 for h in hours], rows["refused"], width=0.28, color=REFUSED_COLOR, zorder=3,
                   label=L("chart.hourly_refused"))
            attempts, refused = int(rows["attempts"].sum()), int(rows["refused"].sum())
            share = rows["on_the_hour_attempts"].sum() / attempts if attempts else 0.0
            r_share = rows["on_the_hour_refused"].sum() / refused if refused else 0.0
            rate = refused / attempts if attempts else 0.0
            detail = L("chart.hourly_detail", attempts=attempts, share=f"{share:.0%}", refused=refused,
                       rate=f"{rate:.1%}", r_share=f"{r_share:.0%}")
            ax.set_title(f"{L.carrier(carrier)}: {detail}", fontsize="medium", loc="left")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
            ax.set_ylim(0, max(1, int(rows["attempts"].max())) * 1.15)
            ax.grid(True, axis="y", alpha=0.3)
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
        last = axes[-1]
        last.set_xlim(-0.6, 23.6)
        last.set_xticks(range(0, 24, 2))
        last.set_xticklabels([f"{h:02d}:00" for h in range(0, 24, 2)])
        last.set_xlabel(L("chart.hourly_xlabel"))
    return fig


def suppression_growth_chart(growth: pd.DataFrame, title: str | None = None, *, lang: str = "en",
                             period: tuple[date, date] | None = None) -> Figure:
    """Bars of entries added (up) and released (down) per day; the list's size as a step line.

    `growth`: rows of sql/suppression_growth.sql. With `period`, the axis is the report period:
    days outside it are left out, and the size line starts at the list's size when the period
    began (the table's list_size counts the whole history).
    """
    L = labels(lang)
    fig = _figure(lang, height=3.5)
    with fig.fonts():
        ax = fig.add_subplot()
        ax.set_title(title or L("chart.growth_title"))
        if growth.empty:
            _no_data(ax, L("chart.growth_none"), keep_axes=period is not None)
            if period is not None:
                ax.set_yticks([])
                _date_axis(ax, pd.Series([], dtype="datetime64[ns]"), period)
            return fig
        days = pd.to_datetime(growth["day"])
        shown = growth.assign(day=days)
        if period is not None:
            lo, hi = _day(period[0]), _day(period[1])
            later = shown[shown["day"] >= lo]
            start_size = (int(later["list_size"].iloc[0] - later["net_change"].iloc[0]) if len(later)
                          else int(shown["list_size"].iloc[-1]))
            after = shown[shown["day"] > hi]
            shown = later[later["day"] <= hi]
        else:
            lo, hi = days.min(), days.max()
            start_size = int(shown["list_size"].iloc[0] - shown["net_change"].iloc[0])
            after = shown.iloc[0:0]
        x = shown["day"]
        ax.bar(x, shown["added"], width=0.8, color="tab:green")
        ax.bar(x, -shown["released"], width=0.8, color="tab:red")
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_ylabel(L("chart.growth_ylabel"))
        top_added = int(shown["added"].max()) if len(shown) else 0
        top_released = int(shown["released"].max()) if len(shown) else 0
        ax.set_ylim(-top_released * 1.2, max(1, top_added) * 1.2)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        size = ax.twinx()
        steps_x = [lo] + list(x) + [hi + pd.Timedelta(days=1)]
        sizes = [start_size] + [int(v) for v in shown["list_size"]]
        steps_y = sizes + [sizes[-1]]
        size.step(steps_x, steps_y, where="post", color="black", linewidth=1.5, label=L("chart.growth_size"))
        size.plot(list(x), [int(v) for v in shown["list_size"]], linestyle="none", marker="o",
                  markersize=3, color="black")
        size.set_ylabel(L("chart.growth_size"))
        size.set_ylim(bottom=0, top=max(1, max(steps_y)) * 1.15)
        size.yaxis.set_major_locator(MaxNLocator(integer=True))
        notes = [L("chart.growth_outside", size=sizes[-1])] if shown.empty else []
        if len(after):
            notes.append(L("chart.growth_after", added=int(after["added"].sum()),
                           released=int(after["released"].sum()), last=f"{after['day'].max():%Y-%m-%d}"))
        if notes:
            ax.text(0.5, 0.95, "\n".join(notes), ha="center", va="top", transform=ax.transAxes,
                    color="0.3", fontsize="small")
        handles = [Patch(color="tab:green", label=L("chart.growth_added")),
                   Patch(color="tab:red", label=L("chart.growth_released")),
                   Line2D([], [], color="black", linewidth=1.5, label=L("chart.growth_size"))]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False)
        _date_axis(ax, x, period if period is not None else (lo.date(), hi.date()))
    return fig


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (no timestamp metadata, so the same data gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
