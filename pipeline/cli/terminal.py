"""What the terminal summaries share: the --lang and --json options, label: value lines and
columns aligned for double-width (Japanese) characters, local times.

Reads and writes nothing; the words come from pipeline.report.labels (one table for the report and
the terminal), the widths from its display_width(). Used by pipeline.cli.suppression and .clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import click

LANG_HELP = ("Language of this summary (ja = 日本語). Default: the global --lang, else config "
             "report.lang (en).")


class DayType(click.ParamType):
    """A calendar day, YYYY-MM-DD: a bad one is a usage error (exit 2), named by its option."""

    name = "date"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date: use YYYY-MM-DD, e.g. 2026-01-01", param, ctx)


DAY = DayType()


class RateType(click.ParamType):
    """A rate between 0 and 1 (0.05 or 5%): a bad one is a usage error (exit 2)."""

    name = "rate"

    def convert(self, value, param, ctx):
        from ..core.errors import InputError
        from ..report.figures import parse_rate   # (only when the option is given: no pandas at start-up)

        try:
            return parse_rate(value, param.opts[0] if param is not None else "rate")
        except InputError as exc:
            self.fail(str(exc), param, ctx)


RATE = RateType()


class AsOfType(click.ParamType):
    """--as-of: a day (YYYY-MM-DD) or an ISO time, checked as the rule reads it
    (suppression.rule.parse_as_of); a bad one is a usage error (exit 2), like a bad --since.
    The text is passed on: the zone it is read in comes with the config."""

    name = "date"

    def convert(self, value, param, ctx):
        from ..core.errors import InputError
        from ..suppression.rule import parse_as_of  # (only when the option is given)

        try:
            parse_as_of(str(value), "UTC")
        except InputError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


AS_OF = AsOfType()


def lang_option(f):
    return click.option("--lang", type=click.Choice(["en", "ja"]), default=None, help=LANG_HELP)(f)


def json_option(help_text: str):
    def decorate(f):
        return click.option("--json", "as_json", is_flag=True, help=help_text)(f)
    return decorate


def local(cfg, value) -> str:
    """A stored time (UTC) as the config's local time, to the minute; "-" for none."""
    if value is None:
        return "-"
    return value.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M")


def text(value, default: str = "-") -> str:
    return default if value is None or value == "" else str(value)


def one_line(value) -> str:
    """A reply text or a note on one line: real and written-out line breaks become ` / `, other
    control characters their escape (a terminal never receives a raw NUL or vertical tab)."""
    text = str(value or "").replace("\\n", "\n").replace("\r\n", "\n").replace("\r", "\n")
    from . import printable

    return printable(" / ".join(p.strip() for p in text.split("\n") if p.strip()))


def label_lines(pairs: list[tuple[str, str]]) -> list[str]:
    """`label:` value lines, the values aligned after the widest label (display columns)."""
    from ..report.labels import display_width, pad

    width = max(display_width(label) for label, _ in pairs) + 2
    return [pad(f"{label}:", width) + value for label, value in pairs]


def aligned(rows: list[list[str]], *, aligns: str = "", min_widths: tuple[int, ...] = (),
            indent: str = "") -> list[str]:
    """Rows of cells as lines, each column padded to its widest cell in display columns (a
    Japanese character takes two); `aligns`: one '<' or '>' per column (default '<'); the last
    column is not padded."""
    if not rows:
        return []
    widths = column_widths(rows, min_widths)
    return [aligned_line(r, widths, aligns=aligns, indent=indent) for r in rows]


def column_widths(rows: Iterable[Sequence[str]], min_widths: tuple[int, ...] = ()) -> list[int]:
    """Each column's widest cell in display columns, at least min_widths[i] (for aligned_line;
    `rows` is gone through once, so it may be a stream)."""
    from ..report.labels import display_width

    widths: list[int] = []
    for r in rows:
        if len(r) > len(widths):
            widths += [0] * (len(r) - len(widths))
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], display_width(cell))
    return [max(w, min_widths[i] if i < len(min_widths) else 0) for i, w in enumerate(widths)]


def aligned_line(r: Sequence[str], widths: list[int], *, aligns: str = "", indent: str = "") -> str:
    """One row of aligned(): its cells padded to `widths` (column_widths), the last one not."""
    from ..report.labels import pad

    cells = [cell if i == len(r) - 1 else pad(cell, widths[i], aligns[i] if i < len(aligns) else "<")
             for i, cell in enumerate(r)]
    return (indent + " ".join(cells)).rstrip()


def reasons(L, value) -> str:
    """A comma-separated reason list in the summary's language."""
    if not value:
        return "-"
    return ",".join(L.reason(r.strip()) for r in str(value).split(","))


def holds_no_store(data_dir) -> bool:
    """No stored event file and no suppression history in `data_dir` (missing or empty): a new
    store, or a data dir that is not mounted, has moved or is mistyped (clean, suppression add)."""
    from ..store.layout import stored_files
    from ..suppression.store import SuppressionStore

    return not stored_files(data_dir) and not SuppressionStore(data_dir).history_path.exists()
