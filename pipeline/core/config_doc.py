"""The README's settings table, generated from the settings dataclasses of core/config.py: every
setting, its default and its meaning (the comment written above its field), with its range or
choices. One definition: a new field shows up in the table, and tests/test_config_doc.py fails
until README.md is regenerated.

Reads config.py's source (for the comments); writes README.md only when asked:
    python -m pipeline.core.config_doc              # print the table
    python -m pipeline.core.config_doc --write README.md
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import typing
from pathlib import Path

from . import config
from .config import FileSettings, to_plain, toml_value

BEGIN = ("<!-- settings table: generated from pipeline/core/config.py by "
         "`python -m pipeline.core.config_doc --write README.md`; tests/test_config_doc.py checks it -->")
END = "<!-- end of the settings table -->"
MAX_CHOICES_SHOWN = 6


def field_comments() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comment block right above the field, as one sentence."""
    source = inspect.getsource(config)
    lines = source.splitlines()
    out = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for st in node.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                block = []
                i = st.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#"):
                    block.insert(0, lines[i].strip().lstrip("#").strip())
                    i -= 1
                out[(node.name, st.target.id)] = " ".join(block)
    return out


def _constraint(f: dataclasses.Field) -> str:
    lo, hi, choices = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices")
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"{lo:g} .. {hi:g}")
    elif lo is not None:
        parts.append(f">= {lo:g}")
    elif hi is not None:
        parts.append(f"<= {hi:g}")
    if choices:
        shown = [c or '""' for c in choices]
        parts.append("one of " + ", ".join(shown) if len(shown) <= MAX_CHOICES_SHOWN
                     else f"names from pipeline/core/vocabulary.py ({len(shown)})")
    if f.metadata.get("secret"):
        parts.append("masked by `config show`")
    return f" ({'; '.join(parts)})" if parts else ""


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return f"`{toml_value(to_plain(value))}`"


def rows() -> list[tuple[str, str, str]]:
    """(setting, default, meaning) for every setting, in the order of the dataclasses. Fields
    that follow a commented field without a comment of their own share its row (one comment
    describing two settings, e.g. sender.backoff_base and backoff_max)."""
    comments = field_comments()
    out: list[tuple[str, str, str]] = []

    def walk(cls, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        group: list[dataclasses.Field] = []  # plain settings that share one comment

        def flush() -> None:
            if not group:
                return
            meaning = comments.get((cls.__name__, group[0].name), "")
            if len(group) == 1:
                out.append((f"`{prefix}{group[0].name}`", _default(group[0]), meaning + _constraint(group[0])))
            else:
                limits = "; ".join(f"{f.name}: {_constraint(f).strip()[1:-1]}" for f in group if _constraint(f))
                out.append((", ".join(f"`{prefix}{f.name}`" for f in group),
                            ", ".join(_default(f) for f in group),
                            meaning + (f" ({limits})" if limits else "")))
            group.clear()

        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            own_comment = bool(comments.get((cls.__name__, f.name)))
            if cls is FileSettings and dataclasses.is_dataclass(tp):
                flush()
                walk(tp, f"{f.name}.")  # a section: its settings are the rows
                continue
            if typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
                flush()
                out.append((f"`[[{prefix}{f.name}]]`", _default(f), comments.get((cls.__name__, f.name), "")))
                walk(typing.get_args(tp)[0], f"[[{prefix}{f.name}]] ")
                continue
            if typing.get_origin(tp) is dict and dataclasses.is_dataclass(typing.get_args(tp)[1]) \
                    and typing.get_args(tp)[1] is not config.Rate:
                flush()
                out.append((f"`[{prefix}{f.name}.NAME]`", _default(f), comments.get((cls.__name__, f.name), "")))
                walk(typing.get_args(tp)[1], f"[{prefix}{f.name}.NAME] ")
                continue
            if own_comment or not group:
                flush()
            group.append(f)
        flush()
    walk(FileSettings, "")
    return out


def table() -> str:
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for key, default, meaning in rows():
        lines.append(f"| {key} | {default.replace('|', '&#124;')} | {meaning.replace('|', '&#124;')} |")
    return "\n".join(lines)


def block() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def replace_in(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block() + text[end:]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_in(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
