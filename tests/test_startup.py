"""Start-up: which heavy modules each command loads (issue 16 item 4).

Each case runs `mailhygiene ARGS` in a fresh interpreter and reads sys.modules at exit: `--help`
of the tool and of every command, and the cheap commands, must not load pandas, numpy, pyarrow,
duckdb, dnspython or matplotlib (each costs 50-500 ms of start-up). No timings here: those are
in BENCHMARKS.md ("Start-up"); this test pins the imports that decide them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pipeline.cli import COMMANDS, cli

HEAVY = ("pandas", "numpy", "pyarrow", "duckdb", "dns", "matplotlib")

PROBE = """
import json, sys
from pipeline.cli import cli
try:
    cli(sys.argv[1:], prog_name="mailhygiene")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"heavy": sorted(m for m in %r if m in sys.modules), "code": code}), file=sys.stderr)
""" % (HEAVY,)

# Commands whose module, owned by another room, still imports a stage at module level, so even
# their --help loads it. Each entry is a known violation to be emptied at merge, not a licence.
KNOWN_HEAVY_HELP: dict[str, set[str]] = {}  # none left


def test_the_ingest_commands_formats_are_the_parsers():
    from pipeline.cli.ingest import FORMATS as CLI_FORMATS
    from pipeline.ingest.parsers import FORMATS as PARSER_FORMATS

    assert CLI_FORMATS == PARSER_FORMATS


def loaded(args, tmp_path) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]),
                                          "HOME": str(tmp_path)})
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    assert last.startswith("{"), r.stderr
    result = json.loads(last)
    result["stderr"] = r.stderr
    return result


def help_cases():
    yield ["--help"]
    yield ["--version"]
    for name in COMMANDS:
        yield [name, "--help"]
        command = cli.get_command(click.Context(cli), name)
        if isinstance(command, click.Group):
            for sub in command.list_commands(click.Context(command)):
                yield [name, sub, "--help"]
    yield ["config", "show", "--help"]


# every command's own --help runs in `make test-fast`; the sub-commands' in the whole suite
@pytest.mark.parametrize("args", [pytest.param(a, marks=pytest.mark.slow) if len(a) > 2 else a for a in help_cases()],
                         ids=" ".join)
def test_help_loads_no_heavy_module(args, tmp_path):
    result = loaded(args, tmp_path)
    assert result["code"] == 0, result["stderr"]
    allowed = KNOWN_HEAVY_HELP.get(args[0], set()) if args[0] in COMMANDS else set()
    assert set(result["heavy"]) <= allowed, f"`mailhygiene {' '.join(args)}` loads {result['heavy']}"
    if args == [args[0], "--help"] and allowed:  # the allow-list only shrinks
        assert set(result["heavy"]) == allowed, \
            f"fixed: delete or shrink KNOWN_HEAVY_HELP[{args[0]!r}] in tests/test_startup.py ({result['heavy']})"


def test_top_level_help_lists_every_command_from_the_table(tmp_path):
    r = subprocess.run([sys.executable, "-c", PROBE, "--help"], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])})
    listed = r.stdout.split("Commands:", 1)[1]
    for name, (target, short_help) in COMMANDS.items():
        assert f"  {name} " in listed
    # the table names real commands (a stale entry would only fail when someone runs it)
    for name, (target, _) in COMMANDS.items():
        module, _, attr = target.partition(":")
        command = getattr(__import__(module, fromlist=[attr]), attr)
        assert isinstance(command, click.Command) and command.name == name, (name, target)


@pytest.mark.parametrize("args, must_not_load", [
    (["config", "show"], HEAVY),
    (["classify", "550 5.1.1 <taro@docomo.ne.jp>: Unknown user", "--phase", "rcpt"], HEAVY),
    (["send", "status"], HEAVY),
])
def test_cheap_commands_stay_light(args, must_not_load, tmp_path):
    result = loaded(["--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", *args], tmp_path)
    assert "Traceback" not in result["stderr"]
    assert not set(result["heavy"]) & set(must_not_load), f"`mailhygiene {' '.join(args)}` loads {result['heavy']}"


def test_suppression_list_on_an_empty_store_loads_no_dataframe_library(tmp_path):
    # the list is read by DuckDB (pipeline/suppression/store.py): no pandas, numpy or pyarrow
    result = loaded(["--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", "suppression", "list"], tmp_path)
    assert "Traceback" not in result["stderr"]
    assert not set(result["heavy"]) & {"pandas", "numpy", "pyarrow", "duckdb"}, result["heavy"]  # no list yet: no engine


def test_suppression_list_with_a_list_loads_no_dataframe_library(tmp_path):
    # the list is read by DuckDB (pipeline/suppression/store.py): no pandas, numpy or pyarrow
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--timezone", "Asia/Tokyo"]
    assert subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", *args, "suppression", "add",
                           "taro@docomo.ne.jp", "--note", "test"], capture_output=True, timeout=120,
                          cwd=Path(__file__).parents[1]).returncode == 0
    result = loaded([*args, "suppression", "list"], tmp_path)
    assert "Traceback" not in result["stderr"] and "duckdb" in result["heavy"]
    assert not set(result["heavy"]) & {"pandas", "numpy", "pyarrow"}, result["heavy"]
