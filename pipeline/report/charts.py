"""Matplotlib figures for the report and the notebook: a DataFrame in, a Figure out.

Reads nothing and writes nothing: each function takes the table of one sql/ file (as returned by
pipeline.report.reports) and returns a `matplotlib.figure.Figure` drawn on an Agg canvas. No pyplot, so
no global figure state leaks between calls, threads or a notebook's own plots. `to_png()` turns
a figure into PNG bytes. Called by pipeline/reports.py and notebooks/explore_bounces.ipynb.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter, DayLocator
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

# One colour per carrier, the same in every chart; 'all' (every carrier together) is black.
CARRIER_COLORS = {
    "docomo": "tab:red", "au": "tab:orange", "softbank": "tab:blue", "ymobile": "tab:pink",
    "rakuten": "tab:purple", "other": "tab:green", "unknown": "tab:brown", "all": "black",
}
_SPARE_COLORS = ["tab:olive", "tab:cyan", "tab:gray"]


def carrier_color(carrier: str) -> str:
    """A carrier's colour; carriers added in the config get a spare colour by name."""
    if carrier in CARRIER_COLORS:
        return CARRIER_COLORS[carrier]
    return _SPARE_COLORS[sum(carrier.encode()) % len(_SPARE_COLORS)]


def _figure(width: float = 9.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _date_axis(ax, x: pd.Series) -> None:
    """Whole days on the x axis, a day of margin either side (one day alone stays readable)."""
    lo, hi = x.min() - pd.Timedelta(days=1), x.max() + pd.Timedelta(days=1)
    ax.set_xlim(lo, hi)
    span = (hi - lo).days
    ax.xaxis.set_major_locator(DayLocator(interval=max(1, span // 12)) if span <= 120
                               else AutoDateLocator())
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def bounce_rate_chart(figures: pd.DataFrame, title: str = "Bounce rate per carrier") -> Figure:
    """Lines of bounce_rate over period_start, one per carrier ('all' dashed).

    `figures`: rows of sql/carrier_figures.sql at grain 'day' or 'week'.
    """
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(title)
    data = figures.dropna(subset=["bounce_rate"]) if len(figures) else figures
    if data.empty:
        _no_data(ax, "no finished deliveries in this period")
        return fig
    carriers = sorted(c for c in data["carrier"].unique() if c != "all")
    for carrier in carriers + (["all"] if "all" in set(data["carrier"]) else []):
        rows = data[data["carrier"] == carrier].sort_values("period_start")
        x = pd.to_datetime(rows["period_start"])
        ax.plot(x, rows["bounce_rate"], marker="o", markersize=3,
                linestyle="--" if carrier == "all" else "-",
                linewidth=1.2 if carrier == "all" else 1.8,
                color=carrier_color(carrier), label=carrier)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, max(0.05, float(data["bounce_rate"].max()) * 1.1))
    ax.set_ylabel("(bounced + expired + undeliverable) / finished")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _date_axis(ax, pd.to_datetime(data["period_start"]))
    return fig


def reasons_chart(reasons: pd.DataFrame, title: str = "Why attempts did not deliver, per carrier") -> Figure:
    """Horizontal stacked bars: undelivered attempts per carrier, split by reason.

    `reasons`: rows of sql/reasons_by_carrier.sql (carrier, reason, attempts, ...).
    """
    fig = _figure(height=max(3.0, 1.0 + 0.6 * max(1, reasons["carrier"].nunique() if len(reasons) else 1)))
    ax = fig.add_subplot()
    ax.set_title(title)
    if reasons.empty:
        _no_data(ax, "every attempt in this period was delivered")
        return fig
    table = reasons.pivot_table(index="carrier", columns="reason", values="attempts",
                                aggfunc="sum", fill_value=0)
    # biggest reasons first (left), carriers with most trouble on top
    table = table[table.sum().sort_values(ascending=False).index]
    table = table.loc[table.sum(axis=1).sort_values().index]
    palette = [f"C{i}" for i in range(10)] + ["tab:olive", "tab:cyan", "0.5", "0.75", "0.25"]
    left = pd.Series(0, index=table.index, dtype="float64")
    for i, reason in enumerate(table.columns):
        ax.barh(table.index, table[reason], left=left, color=palette[i % len(palette)], label=reason)
        left += table[reason]
    ax.set_xlabel("undelivered attempts")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return fig


def suppression_growth_chart(growth: pd.DataFrame, title: str = "Suppression list") -> Figure:
    """Bars of entries added (up) and released (down) per day; the list's size as a step line.

    `growth`: rows of sql/suppression_growth.sql.
    """
    fig = _figure(height=3.5)
    ax = fig.add_subplot()
    ax.set_title(title)
    if growth.empty:
        _no_data(ax, "no suppression entries yet")
        return fig
    x = pd.to_datetime(growth["day"])
    ax.bar(x, growth["added"], width=0.8, color="tab:green", label="added")
    ax.bar(x, -growth["released"], width=0.8, color="tab:red", label="released")
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_ylabel("entries per day")
    ax.set_ylim(-int(growth["released"].max()) * 1.2, max(1, int(growth["added"].max())) * 1.2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    size = ax.twinx()
    size.step(x, growth["list_size"], where="post", color="black", marker="o", markersize=3,
              label="list size")
    size.set_ylabel("list size")
    size.set_ylim(bottom=0, top=max(1, int(growth["list_size"].max())) * 1.15)
    size.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = ax.get_legend_handles_labels()[0] + size.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left",
              bbox_to_anchor=(1.08, 1.0), frameon=False)
    _date_axis(ax, x)
    return fig


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (no timestamp metadata, so the same data gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
