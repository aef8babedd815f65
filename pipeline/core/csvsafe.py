"""Formula safety for every CSV the project writes (exports and reports): one rule, one place.

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula (OWASP "CSV injection"). Free text cells (diagnostics, notes, domains, reasons) get a
leading apostrophe, which Excel and LibreOffice show as text and hide. Key cells (the address
column) are never altered: a CRM matches on them, and `+81@…` or `-taro@…` is a legitimate
address. The store keeps addresses normalised, without the quotes of a quoted local part, so the
export writes them through `address_cell` (sql/macros.sql), which quotes such a local part again
(`"=1+2 x"@docomo.ne.jp`): a key cell holds no space or parenthesis outside quotes, so it cannot
hold a function call; docs/reports.md says how to open the file in Excel as text.

Pure functions; called by the suppression export and by the report's CSV writer. The SQL side
(`csv_safe` in sql/macros.sql, when the export runs in DuckDB) must agree with `neutralise`:
tests hold the two to each other.
"""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell made safe for spreadsheets; non-text values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_row(row: dict, key_columns: frozenset[str] | set[str] = frozenset({"address"})) -> dict:
    """Every text cell of a row neutralised, except the key columns (kept exactly)."""
    return {k: (v if k in key_columns else neutralise(v)) for k, v in row.items()}
