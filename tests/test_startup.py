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
    data.mkdir()  # (suppression add refuses a data dir that does not exist: a mistyped --data-dir)
    args = ["--data-dir", str(data), "--timezone", "Asia/Tokyo"]
    assert subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", *args, "suppression", "add",
                           "taro@docomo.ne.jp", "--note", "test"], capture_output=True, timeout=120,
                          cwd=Path(__file__).parents[1]).returncode == 0
    result = loaded([*args, "suppression", "list"], tmp_path)
    assert "Traceback" not in result["stderr"] and "duckdb" in result["heavy"]
    assert not set(result["heavy"]) & {"pandas", "numpy", "pyarrow"}, result["heavy"]


def test_ingest_off_a_terminal_does_not_load_the_progress_bar(tmp_path):
    # `--progress` (and the default for large inputs) draws on a terminal only; off one (cron,
    # pipes, CI) tqdm is not even imported: its import alone costs ~50 ms of CPU per run
    log = tmp_path / "mail.log"
    log.write_text("Dec  1 10:00:00 mx postfix/qmgr[1]: 3F2A1B: removed\n")
    probe = PROBE.replace("%r" % (HEAVY,), "('tqdm', 'numpy')")
    r = subprocess.run([sys.executable, "-c", probe, "--data-dir", str(tmp_path / "data"), "--timezone",
                        "Asia/Tokyo", "ingest", "--format", "postfix", "--progress", str(log)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
    result = json.loads(r.stderr.strip().splitlines()[-1])
    assert result == {"heavy": ["numpy"], "code": 0}, r.stderr


def test_ingest_on_a_terminal_draws_the_progress_bar(tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import termios

    log = tmp_path / "mail.log"
    log.write_text("Dec  1 10:00:00 mx postfix/qmgr[1]: 3F2A1B: removed\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child: standard error (and out) is the terminal
        try:
            os.chdir(tmp_path)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal 80 wide
            os.environ.update({"PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
            os.execv(sys.executable, [sys.executable, "-c", "from pipeline.cli import main; main()",
                                      "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                                      "ingest", "--format", "postfix", "--progress", str(log)])
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"ingest:" in out and b"lines read:" in out, out  # tqdm's "ingest: 100%|...", then the summary


# Modules `mailhygiene ingest` does not need: pandas (pyarrow's pa.array() would import it:
# pipeline/store/arrow_build.py builds arrays from buffers instead), duckdb (only a batch that read
# a line twice needs it) and hashlib, which loads OpenSSL (2.5 ms: pipeline/core/hashes.py).
INGEST_MUST_NOT_LOAD = ("pandas", "duckdb", "hashlib")


def test_ingest_loads_no_module_it_does_not_need(tmp_path):
    # every MTA's sample logs, twice, in batches small enough that the store also reads stored ids
    from fixtures import SAMPLES

    config = tmp_path / "mailhygiene.toml"
    config.write_text("[ingest]\nbatch_events = 5\n")
    logs = [str(SAMPLES / "postfix" / "mail.log.1.gz"), str(SAMPLES / "postfix" / "mail.log"),
            str(SAMPLES / "sendmail" / "maillog"), str(SAMPLES / "qmail" / "current")]
    args = ["--config", str(config), "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", "ingest",
            "--no-progress", *logs]
    code = ("import sys\nfrom pipeline.cli import cli\n"
            "for _ in range(2):\n"
            "    cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
            f"print(sorted(m for m in {INGEST_MUST_NOT_LOAD!r} if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "events written" in r.stdout and "lines read" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


BLOCK_READER_MODULES = ("pipeline.ingest.parsers.postfix_block", "pipeline.ingest.parsers.sendmail_block",
                        "pipeline.ingest.parsers.qmail_block")


def test_an_ingest_of_one_mta_loads_no_other_mtas_block_reader(tmp_path):
    # pipeline.ingest.parsers.BLOCK_READERS imports a block reader when a log of its MTA is read
    # (the sample logs are small: every chunk goes to the block reader here, as in a large log)
    from fixtures import SAMPLES

    readers = BLOCK_READER_MODULES
    for mta, log in (("postfix", SAMPLES / "postfix" / "mail.log"), ("sendmail", SAMPLES / "sendmail" / "maillog")):
        code = ("import sys\nfrom pipeline.cli import cli\n"
                "import pipeline.ingest.engine\npipeline.ingest.engine.BLOCK_MIN_BYTES = 0\n"
                "cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
                f"print(sorted(m for m in {readers!r} if m in sys.modules))\n")
        r = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / mta), "--timezone", "Asia/Tokyo",
                            "ingest", "--no-progress", str(log)], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]),
                                              "HOME": str(tmp_path)})
        assert r.returncode == 0 and "events written" in r.stdout, r.stderr
        assert r.stdout.strip().splitlines()[-1] == str([f"pipeline.ingest.parsers.{mta}_block"]), (mta, r.stdout)


def test_an_ingest_of_small_logs_loads_no_block_reader_nor_pyarrow_compute(tmp_path):
    # chunks under engine.BLOCK_MIN_BYTES are read line by line: small logs (every MTA's samples, in
    # two runs, the second's store reading the ids the first stored) cost neither pyarrow.compute's
    # import (~25 ms: it wraps and documents ~280 functions) nor a block reader's
    from fixtures import SAMPLES

    runs = [[str(SAMPLES / "postfix" / "mail.log.1.gz"), str(SAMPLES / "sendmail" / "maillog")],
            [str(SAMPLES / "postfix" / "mail.log"), str(SAMPLES / "qmail" / "current")]]
    assert all(Path(log).stat().st_size < 64 << 10 for logs in runs for log in logs)
    unwanted = ("pyarrow.compute", "pyarrow._compute", *BLOCK_READER_MODULES)
    code = ("import sys\nfrom pipeline.cli import cli\n"
            f"for logs in {runs!r}:\n"
            "    cli.main(sys.argv[1:] + logs, prog_name='mailhygiene', standalone_mode=False)\n"
            f"print(sorted(m for m in {unwanted!r} if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                        "ingest", "--no-progress"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("events written:") == 2 and "events written:   0" not in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_every_dataclass_an_ingest_defines_has_a_docstring(tmp_path):
    # dataclass() writes a missing docstring from inspect.signature(cls): ~1.5 ms of CPU for the
    # first one of a process (inspect's machinery warming up), for a docstring nobody reads
    from fixtures import SAMPLES

    code = ("import dataclasses, sys\n"
            "process, docless = dataclasses._process_class, []\n"
            "def watched(cls, *args, **kwargs):\n"
            "    if not cls.__doc__:\n"
            "        docless.append(cls.__qualname__)\n"
            "    return process(cls, *args, **kwargs)\n"
            "dataclasses._process_class = watched\n"
            "from pipeline.cli import cli\n"
            "cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
            "print(docless)\n")
    r = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                        "ingest", "--no-progress", str(SAMPLES / "postfix" / "mail.log")], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                       "PYTHONPATH": str(Path(__file__).parents[1])})
    assert r.returncode == 0 and "events written" in r.stdout, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_the_hashes_of_the_ingest_path_are_hashlibs():
    # pipeline.core.hashes: CPython's own blake2b and sha1, not through hashlib (which loads OpenSSL)
    import hashlib

    from pipeline.core import hashes

    assert hashes.blake2b is hashlib.blake2b
    for data in (b"", b"a", b"\0" + bytes(range(256)) * 300, "日本語".encode()):
        assert hashes.sha1(data).hexdigest() == hashlib.sha1(data).hexdigest()
        assert hashes.sha1(data).digest() == hashlib.new("sha1", data).digest()
        h = hashes.sha1(data[:7]); h.update(data[7:])
        assert h.hexdigest() == hashlib.sha1(data).hexdigest()


def test_the_command_imports_its_stage_without_garbage_collector_passes(tmp_path):
    # pipeline.cli.start_up: in the `mailhygiene` process (main()), ingest's imports and set-up run
    # with the cyclic collector off, their objects frozen after; the collector is on again for the run
    from fixtures import SAMPLES

    code = ("import atexit, gc, sys\n"
            "from pipeline.cli import main\n"
            "passes = []\n"
            "gc.callbacks.append(lambda phase, info: passes.append(phase) if phase == 'start' else None)\n"
            "atexit.register(lambda: print('GC', gc.isenabled(), gc.get_freeze_count() > 10000, len(passes)))\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo",
                        "ingest", "--no-progress", str(SAMPLES / "postfix" / "mail.log")], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
    assert r.returncode == 0 and "events written" in r.stdout, r.stderr
    enabled, frozen, passes = r.stdout.strip().splitlines()[-1].split()[1:]
    assert (enabled, frozen) == ("True", "True"), r.stdout
    assert int(passes) < 20, r.stdout  # about 50 with the collector on through the imports


def test_a_library_users_garbage_collector_is_left_alone(tmp_path):
    # the same command run in-process (CliRunner, notebooks): nothing frozen, the collector on
    import gc

    from click.testing import CliRunner

    from fixtures import SAMPLES

    before = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", "ingest",
                                      "--no-progress", str(SAMPLES / "postfix" / "mail.log")])
    assert result.exit_code == 0, result.output
    assert gc.isenabled() and gc.get_freeze_count() == before
