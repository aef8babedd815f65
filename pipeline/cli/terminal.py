"""What the terminal summaries share: the --lang and --json options, label: value lines and
columns aligned for double-width (Japanese) characters, local times.

Reads and writes nothing; the words come from pipeline.report.labels (one table for the report and
the terminal), the widths from its display_width(). Used by pipeline.cli.suppression and .clean.
"""

from __future__ import annotations

import click

LANG_HELP = ("Language of this summary (ja = 日本語). Default: the global --lang, else config "
             "report.lang (en).")


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
    from ..report.labels import display_width, pad

    if not rows:
        return []
    n = max(len(r) for r in rows)
    widths = [max([display_width(r[i]) for r in rows if i < len(r)]
                  + [min_widths[i] if i < len(min_widths) else 0]) for i in range(n)]
    lines = []
    for r in rows:
        cells = [cell if i == len(r) - 1 else pad(cell, widths[i], aligns[i] if i < len(aligns) else "<")
                 for i, cell in enumerate(r)]
        lines.append((indent + " ".join(cells)).rstrip())
    return lines


def reasons(L, value) -> str:
    """A comma-separated reason list in the summary's language."""
    if not value:
        return "-"
    return ",".join(L.reason(r.strip()) for r in str(value).split(","))
