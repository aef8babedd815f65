"""The report's CSV files: one table in, the bytes of a formula-safe CSV out.

Pure: reads nothing, writes nothing (pipeline.report.reports writes the bytes atomically).
Every text cell goes through pipeline.core.csvsafe.neutralise, the one formula-safety rule of
the project, so a recipient domain such as `=cmd|' /C calc'!A0` lands as `'=cmd|…` and a
spreadsheet shows it as text. The report's tables hold no address column, so no cell is a key
that must stay exact. Reply texts are written on one line. Values stay as the SQL returns them
(rates as fractions, carrier and reason codes); with lang "ja" the headers are Japanese.
"""

from __future__ import annotations

import pandas as pd

from ..core.csvsafe import neutralise
from .cells import REPLY_COLUMNS, clean_reply
from .labels import labels


def csv_bytes(df: pd.DataFrame, lang: str = "en", *, bom: bool = False) -> bytes:
    """UTF-8 CSV of one table (with a BOM for Excel when `bom`), days as YYYY-MM-DD."""
    L = labels(lang)
    out = df.copy()
    for col in REPLY_COLUMNS:
        if col in out.columns:
            out[col] = out[col].map(clean_reply)
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(L.csv_column(c)) for c in out.columns]
    text = out.to_csv(index=False, date_format="%Y-%m-%d")
    return text.encode("utf-8-sig" if bom else "utf-8")
