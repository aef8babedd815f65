"""README's settings table is generated from pipeline/core/config.py and stays true to it (issue 16
item 2): every setting is in it with its default and a meaning; the CLI's and the jobs' own files
read typed sections, not `cfg["..."]`."""

from __future__ import annotations

import dataclasses
import re
import typing

from pipeline.core import config_doc
from pipeline.core.config import DEFAULTS, FileSettings

from fixtures import REPO


def test_readme_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert config_doc.BEGIN in readme and config_doc.END in readme, "README lost the table's markers"
    assert config_doc.replace_in(readme) == readme, (
        "README.md's settings table is out of date: run `python -m pipeline.core.config_doc --write README.md`")


def leaf_keys(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and cls is FileSettings:
            yield from leaf_keys(tp, f"{f.name}.")
        else:
            yield prefix + f.name


def test_every_setting_has_a_row_a_default_and_a_meaning():
    rows = config_doc.rows()
    keys = [part.strip("`") for k, _, _ in rows for part in k.split(", ")]  # a shared row names several
    named = {re.sub(r"^\[\[?[\w.]+(?:\.NAME)?\]\]? ", "", k) if " " in k else k.strip("[]").removesuffix(".NAME")
             for k in keys}
    for key in leaf_keys(FileSettings):
        assert key in named or key.split(".")[-1] in named, f"{key} has no row in the settings table"
    for key, default, meaning in rows:
        assert default.startswith("`") and default.endswith("`"), key
        assert len(meaning) > 10, f"{key}: no meaning (write a comment above its field in core/config.py)"
    # the defaults shown are the defaults in force
    by_key = {k.strip("`"): d.strip("`") for k, d, _ in rows if ", `" not in k}
    assert by_key["rule.min_errors"] == str(DEFAULTS["rule"]["min_errors"])
    assert by_key["guard.max_new_fraction"] == repr(DEFAULTS["guard"]["max_new_fraction"])
    assert by_key["data_dir"] == f'"{DEFAULTS["data_dir"]}"'
    assert by_key["report.lang"] == '"en"'


def test_a_new_field_shows_up_in_the_table(monkeypatch):
    """The table follows the dataclasses (not a list kept by hand): a new field shows up; one
    without a comment after an uncommented start (here: first in its class) has an empty meaning,
    which the test above refuses; one right after a commented field shares that field's row."""
    from pipeline.core.config import setting

    grown = dataclasses.make_dataclass("FileSettings", [("extra_limit", int, setting(3, min=1))],
                                       bases=(FileSettings,), frozen=True)
    monkeypatch.setattr(config_doc, "FileSettings", grown)
    row = next(r for r in config_doc.rows() if r[0] == "`extra_limit`")
    assert row == ("`extra_limit`", "`3`", " (>= 1)")
    assert config_doc.field_comments()[("RuleSettings", "window_days")].startswith("... inside a window")


# Files that still read the config as a dict (none left; core/config.py defines that access).
KNOWN_DICT_READERS: set[str] = {"pipeline/core/config.py"}


def test_stages_cli_and_jobs_read_typed_sections():
    offenders = {}
    for path in (REPO / "pipeline").rglob("*.py"):
        rel = str(path.relative_to(REPO))
        hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if re.search(r"""cfg\[["']""", line)]
        if hits and rel not in KNOWN_DICT_READERS:
            offenders[rel] = hits
    assert offenders == {}, f"cfg[\"...\"] dict access (use the typed sections, cfg.rule.min_errors): {offenders}"
