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
from typing import Any, Iterable, Iterator, Mapping


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


def dumps_pieces(head: Mapping[str, Any], key: str, items: Iterable[Any]) -> Iterator[str]:
    """The text of dumps({**head, key: list(items)}), in pieces, taking `items` one at a time: a
    list of a million entries is never held whole, as Python values or as one text."""
    items = iter(items)
    first = next(items, _NONE)
    if first is _NONE:
        yield dumps({**head, key: []})
        return
    # the document around the list, from the same encoder: a placeholder element marks the spot
    before, after = dumps({**head, key: [0]}).rsplit("\n    0\n", 1)
    yield before + "\n"
    yield _element(first)
    for item in items:
        yield ",\n" + _element(item)
    yield "\n" + after


_NONE = object()


def _element(item: Any) -> str:
    """`item` as dumps() writes an element of a list that is a value of the top-level object."""
    return "    " + dumps(item).replace("\n", "\n    ")
