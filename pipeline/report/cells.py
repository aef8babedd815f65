"""How one cell of a report table is shown: rates, days, reply texts, carrier and reason names.

Pure functions on values and DataFrames; reads and writes nothing. Used by the HTML page, the CSV
writer, the terminal summary and notebooks (`display_table`).
"""

from __future__ import annotations

import re

import pandas as pd

from .labels import Labels, labels

RATE_COLUMNS = ("bounce_rate", "unknown_user_rate", "share_of_carrier", "failure_rate",
                "share_of_attempts", "refusal_rate")
DAY_COLUMNS = ("period_start", "period_end", "day")
REPLY_COLUMNS = ("top_reply",)

# Line breaks (real ones, and the two-character `\n` some loggers write instead) and runs of
# white space inside a reply: one reply is shown as one line.
_BREAKS = re.compile(r"(?:\\r\\n|\\n|\\r|\s)+")
# sql/sender_problems_daily.sql masks the address inside <...>, leaving <<address>>
_DOUBLE_MASK = re.compile(r"<<address>>")


def clean_reply(value):
    """A reply text on one line: line breaks and runs of spaces become one space."""
    if not isinstance(value, str):
        return value
    return _DOUBLE_MASK.sub("<address>", _BREAKS.sub(" ", value)).strip()


def percent(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value * 100:.1f} %"


def day(value) -> str:
    return "" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def display_table(df: pd.DataFrame, lang: str | Labels = "en", *, headers: bool = False) -> pd.DataFrame:
    """Rates as percentages, dates as YYYY-MM-DD, replies on one line, and (in Japanese)
    carrier, reason and scope names, for people (HTML, terminal, notebook). `headers=True` also
    renames the columns to their words in that language."""
    L = lang if isinstance(lang, Labels) else labels(lang)
    out = df.copy()
    for col in out.columns:
        if col in RATE_COLUMNS:
            out[col] = out[col].map(percent)
        elif col in DAY_COLUMNS:
            out[col] = out[col].map(day)
        elif col in REPLY_COLUMNS:
            out[col] = out[col].map(clean_reply)
        elif col == "carrier":
            out[col] = out[col].map(L.carrier)
        elif col in ("reason", "top_reason"):
            out[col] = out[col].map(lambda v: L.reason(v) if isinstance(v, str) else v)
        elif col == "scope":
            out[col] = out[col].map(L.scope)
    if headers:
        out.columns = [L.column(c) for c in out.columns]
    return out
