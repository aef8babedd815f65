"""JSON for scripts: the values our records hold (datetimes, dates, decimals, tuples, JSON text
columns) as plain JSON values, one way everywhere.

Reads and writes nothing; called by the library functions that define a command's `--json` shape
(suppression.rule.rule_result_json, suppression.store.entry_json ...) and by the CLI to print them.
Times are ISO 8601 with their offset (UTC as stored), so a script never guesses a zone.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` as JSON-ready Python (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item"):  # a numpy scalar
        return jsonable(value.item())
    return str(value)


def dumps(document: Any) -> str:
    """The document as JSON text: UTF-8 (Japanese stays readable), keys in the order given."""
    return json.dumps(jsonable(document), ensure_ascii=False, indent=2)
