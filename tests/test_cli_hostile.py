"""Every command, hostile inputs: one `Error:` line and a non-zero exit, never a traceback (issue 14
item 6).

The commands are discovered from the click group (pipeline.cli COMMANDS and the commands defined in
pipeline/cli/__init__.py, sub-commands included), so a command added later is walked without an
edit here: its required arguments are filled from GOOD_VALUES by parameter name, else by type.

Three families of cases, each run in-process with click's CliRunner (bounded by an alarm):
- CONFIG: the config file itself is hostile (bad bytes, wrong types, `data_dir = 5`, a data_dir
  that is a file, unknown keys, absurd numbers, NUL and vertical tabs, a directory, a FIFO, an
  empty, binary or missing file);
- DATA: a valid config over a hostile data dir (read-only, a corrupt and a truncated Parquet file
  in events/ and in suppression/, a corrupt SQLite queue under sender/, a file where a directory
  belongs);
- ARGS: a working config and data dir, and one argument of the command made hostile at a time
  (missing file, directory, FIFO, empty or binary file for paths; vertical tab and NUL in text;
  absurd, negative and not-a-number values for numbers).

What every case must show:
- no traceback, and no exception escaping the command;
- a failure (exit status other than 0 and the command's own verdict codes, VERDICT_CODES) prints
  exactly one line starting `Error: ` on stderr;
- `Error: internal error` (exit status 70, the CLI's safety net) is a bug, not an answer: it fails
  the case unless the case is listed in KNOWN_TRACEBACKS (commands of rooms other than the CLI's);
- a failure leaves nothing half-written: no temp file, no pre-existing file changed (lock files
  aside) and no new regular file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import EX_SOFTWARE, cli

from fixtures import SAMPLES, Hung, alarm

REPO = Path(__file__).resolve().parents[1]
HANG_SECONDS = 60  # a case running longer than this is a hang (a FIFO nobody writes, a daemon)

# Exit statuses that are a command's verdict, not an error (no `Error:` line is expected).
VERDICT_CODES = {
    "doctor": {3, 4},   # a check failed / warnings under --strict (docs/doctor.md)
    "report": {2},      # a carrier's unknown-user rate is over --fail-over
}

# Arguments a command gets besides its required ones, by command path: to keep it bounded and off
# the network, or to make it do its work rather than stop at "give one of these options".
EXTRA_ARGS = {
    "send daemon": ["--exit-when-done", "--max-seconds", "2"],
    "send preview": ["--subject", "件名", "--body-file", "{body}"],
    "prune": ["--before", "2000-01-01", "--yes"],
    "suppression add": ["new.one@docomo.ne.jp"],
}
# Parameters that replace others: when the walk makes the first hostile, the listed words of
# EXTRA_ARGS go (ADDRESS and --from-file are one or the other).
ALTERNATIVES = {
    ("suppression add", "from_file"): ["new.one@docomo.ne.jp"],
    ("prune", "keep_days"): ["--before", "2000-01-01"],
}

# Values for required parameters, by parameter name (the rest: by type, see good_value()).
GOOD_VALUES = {
    "paths": "{log}",
    "path": "{out}/export.csv",
    "diagnostic": "550 5.1.1 <taro@docomo.ne.jp>: Recipient address rejected: User unknown",
    "address": "taro.dead@docomo.ne.jp",
    "file": str(REPO / "tests" / "fixtures" / "messages" / "clean_iso2022jp.eml"),
    "domain": "example.jp",
    "ip": "192.0.2.10",
    "subject": "お知らせ",
    "body_file": "{body}",
    "recipients_csv": "{recipients}",
    "carrier": "docomo",
    "before": "2000-01-01",
}

# Cases where a command of another room (ingest, watch, send, intake, bounces, lake) ends in a
# traceback or an internal error today: (command path, case id) -> what happens. Each entry is a
# bug in that room, listed here (not fixed in its files) while its helper works there; the
# coordinator empties this at merge. The CLI's own commands never get an entry.
KNOWN_TRACEBACKS: dict[tuple[str, str], str] = {
}


# Commands whose module lives in another room (see KNOWN_TRACEBACKS).
OTHER_ROOMS = ("ingest", "watch", "send", "intake", "bounces", "lake")


# ----------------------------------------------------------------------------- the commands
def command_paths() -> list[tuple[str, click.Command]]:
    """("suppression add", command) for every command and sub-command of the CLI."""
    out = []

    def walk(group: click.Group, prefix: str, ctx: click.Context) -> None:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            path = f"{prefix} {name}".strip()
            if isinstance(cmd, click.Group):
                walk(cmd, path, click.Context(cmd, parent=ctx, info_name=name))
            else:
                out.append((path, cmd))

    walk(cli, "", click.Context(cli, info_name="mailhygiene"))
    return out


COMMANDS = command_paths()
COMMAND_NAMES = [path for path, _ in COMMANDS]
COMMAND_BY_PATH = dict(COMMANDS)


def is_path_param(p: click.Parameter) -> bool:
    return isinstance(p.type, (click.Path, click.File)) or p.name in ("paths", "path", "file")


def good_value(p: click.Parameter) -> str:
    if p.name in GOOD_VALUES:
        return GOOD_VALUES[p.name]
    if isinstance(p.type, click.Choice):
        return str(p.type.choices[0])
    if is_path_param(p):
        return "{empty}"
    if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
        return "1"
    return "x"


def opt_name(p: click.Option) -> str:
    return max(p.opts, key=len)


def base_args(path: str) -> list[str]:
    """The command with its required parameters filled in."""
    cmd = COMMAND_BY_PATH[path]
    args = path.split()
    for p in cmd.params:
        if isinstance(p, click.Argument) and p.required:
            args.append(good_value(p))
        elif isinstance(p, click.Option) and p.required:
            args += [opt_name(p), good_value(p)]
    return args + EXTRA_ARGS.get(path, [])


def value_params(path: str) -> list[click.Parameter]:
    """The parameters of a command that take a value (not flags, not fixed choices)."""
    out = []
    for p in COMMAND_BY_PATH[path].params:
        if isinstance(p, click.Option) and (p.is_flag or p.count or p.name == "help"):
            continue
        if isinstance(p.type, click.Choice):
            continue
        out.append(p)
    return out


def with_value(path: str, p: click.Parameter, value: str) -> list[str]:
    """base_args with parameter `p` set to `value`."""
    args = base_args(path)
    for word in ALTERNATIVES.get((path, p.name), []):
        args.remove(word)
    if isinstance(p, click.Argument):
        given = [a for a in [good_value(p), *EXTRA_ARGS.get(path, [])[:1]] if a in args[len(path.split()):]]
        if given:
            args[args.index(given[0], len(path.split()))] = value
        else:
            args.append(value)
        return args
    name = opt_name(p)
    if name in args:
        args[args.index(name) + 1] = value
    else:
        args += [name, value]
    return args


# ----------------------------------------------------------------------------- the world
@contextmanager
def fifo_writer(path: Path, data: bytes):
    """A FIFO at `path` that hands `data` to the first reader that opens it, once, and then
    closes it, as a `<(cmd)` argument does. (Serving each reader in turn raced: a writer that
    opened the FIFO again before the reader had seen its end gave that reader the data again,
    an endless stream under load.)"""
    os.mkfifo(path)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                stop.wait(0.02)
                continue
            try:
                os.set_blocking(fd, True)
                os.write(fd, data)
            except OSError:
                pass
            finally:
                os.close(fd)
            return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path
    finally:
        stop.set()
        t.join(5)


def write_good_config(path: Path, data_dir: Path, log: Path, *, sources: bool = True) -> Path:
    body = f'data_dir = "{data_dir}"\ntimezone = "Asia/Tokyo"\n'
    if sources:
        body += f'\n[[sources]]\npath = "{log}"\nformat = "postfix"\n'
    body += ('\n[sender]\nfrom_address = "news@mail.example.jp"\nfrom_name = "配信センター"\n'
             'default_relay = "127.0.0.1:9"\n'
             '\n[doctor]\nresolver = "127.0.0.1"\nresolver_port = 9\nprobe_timeout = 0.1\ntimeout = 0.1\n'
             '\n[report]\ndir = "reports"\n')
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A working data dir: the sample Postfix logs ingested, the rule applied, one manual entry,
    a send queue database."""
    root = tmp_path_factory.mktemp("hostile-template")
    data = root / "data"
    conf = write_good_config(root / "mailhygiene.toml", data, root / "empty.log", sources=False)
    runner = CliRunner()
    for args in (["ingest", str(SAMPLES / "postfix" / "mail.log"), str(SAMPLES / "postfix" / "mail.log.1.gz")],
                 ["suppress", "--force"],
                 ["suppression", "add", "complainer@au.com", "--note", "asked"],
                 ["send", "flush-events"]):  # creates the queue (reading commands open it read-only)
        r = runner.invoke(cli, ["--config", str(conf), *args])
        assert r.exit_code == 0, (args, r.output)
    assert list((data / "events").glob("date=*/*.parquet"))
    assert (data / "suppression" / "current.parquet").is_file()
    assert (data / "sender" / "queue.sqlite3").is_file()
    return data


class World:
    """One case's directory: a copy of the template data dir, input files, an output folder."""

    def __init__(self, base: Path, template: Path):
        self.base = base
        self.data = base / "data"
        shutil.copytree(template, self.data)
        self.out = base / "out"
        self.out.mkdir()
        self.inputs = base / "inputs"
        self.inputs.mkdir()
        self.log = self.inputs / "empty.log"
        self.log.write_bytes(b"")
        self.empty = self.inputs / "empty.txt"
        self.empty.write_bytes(b"")
        self.body = self.inputs / "body.txt"
        self.body.write_text("こんにちは。\nお知らせです。\n", encoding="utf-8")
        self.recipients = self.inputs / "recipients.csv"
        self.recipients.write_text("email\nhanako@docomo.ne.jp\n", encoding="utf-8")
        self.config = write_good_config(base / "mailhygiene.toml", self.data, self.log)

    def fill(self, args: list[str]) -> list[str]:
        values = {"log": self.log, "out": self.out, "empty": self.empty, "body": self.body,
                  "recipients": self.recipients}
        return [a.format(**values) if "{" in a and "}" in a else a for a in args]


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    out[str(p.relative_to(root))] = hashlib.sha1(fh.read()).hexdigest()
            else:
                out[str(p.relative_to(root))] = f"mode {oct(st.st_mode)}"
    return out


def is_lock(name: str) -> bool:
    return name.endswith(".lock") or Path(name).name == ".lock"


def whole(path: Path) -> str | None:
    """Why a data file is not whole (None when it reads back complete)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".sqlite3", ".db"):
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                (ok,) = con.execute("PRAGMA integrity_check").fetchone()
            finally:
                con.close()
            if ok != "ok":
                return ok
    except Exception as exc:  # noqa: BLE001 - any way of not reading back is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


def half_written(base: Path, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """After a failure: temp files left; outputs written (a new or changed file outside the data
    dir); data files written that do not read back whole. A data file changed and whole is a
    finished step (e.g. the list repaired from its history before the command refused)."""
    bad = [f"temp file left: {n}" for n in after if n.endswith(".tmp") and n not in before]
    for n, h in after.items():
        if before.get(n) == h or is_lock(n) or h.startswith("mode"):
            continue
        if not n.startswith(("data/", "mailhygiene-data/")):  # the default data dir of an empty config
            bad.append(f"written despite the failure: {n}")
        elif (why := whole(base / n)) is not None:
            bad.append(f"not whole: {n}: {why}")
    return bad


@contextmanager
def effective_user(uid: int | None):
    if uid is None:
        yield
        return
    os.setegid(uid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def run_case(world: World, global_args: list[str], args: list[str], *, stdin: bytes = b"",
             uid: int | None = None):
    before = snapshot(world.base)
    with alarm(HANG_SECONDS), effective_user(uid):
        result = CliRunner().invoke(cli, [*global_args, *world.fill(args)], input=stdin)
    after = snapshot(world.base)
    return result, half_written(world.base, before, after)


def check(path: str, case: str, result, leftovers: list[str]) -> None:
    if os.environ.get("HOSTILE_SHOW"):
        print(f"\n## {path} [{case}] exit {result.exit_code}: {result.stderr.strip()[-300:]}")
    """The assertions every case shares (see the module docstring)."""
    stderr, stdout = result.stderr, result.stdout
    where = f"`{path}` [{case}]: exit {result.exit_code}\n--- stdout\n{stdout[-2000:]}\n--- stderr\n{stderr[-2000:]}"
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    if isinstance(escaped, Hung):
        pytest.fail(f"hangs: {where}")
    internal = escaped is not None or result.exit_code == EX_SOFTWARE or "Traceback" in result.output
    known = KNOWN_TRACEBACKS.get((path, case))
    if known is not None:
        if not internal:
            pytest.fail(f"{(path, case)} is in KNOWN_TRACEBACKS ({known}) but no longer fails that way: "
                        f"drop the entry. {where}")
        return
    assert escaped is None, f"exception escaped: {escaped!r}: {where}"
    assert "Traceback" not in result.output, f"traceback: {where}"
    assert result.exit_code != EX_SOFTWARE, f"internal error (a bug): {where}"
    verdicts = VERDICT_CODES.get(path.split()[0], set())
    if result.exit_code != 0 and result.exit_code not in verdicts:
        errors = [line for line in stderr.split("\n") if line.startswith("Error: ")]
        assert len(errors) == 1, f"expected one `Error:` line on stderr: {where}"
        assert all(ch.isprintable() or ch in "\t\u3000" for ch in errors[0]), \
            f"the `Error:` line carries a raw control character: {errors[0]!r}"
        assert not leftovers, f"half-written after a failure: {leftovers}: {where}"


# ----------------------------------------------------------------------------- CONFIG cases
def _cfg_file(name: str, content: bytes):
    def make(world: World) -> list[str]:
        p = world.base / name
        p.write_bytes(content)
        return ["--config", str(p)]
    return make


def _cfg_text(text: str):
    def make(world: World) -> list[str]:
        p = world.base / "hostile.toml"
        p.write_text(text.format(data=world.data, log=world.log), encoding="utf-8")
        return ["--config", str(p)]
    return make


def _cfg_directory(world: World) -> list[str]:
    d = world.base / "conf.d"
    d.mkdir()
    return ["--config", str(d)]


def _cfg_fifo(world: World) -> list[str]:
    p = world.base / "conf.fifo"
    world.stack.enter_context(fifo_writer(p, b'data_dir = "x"\n\x00\xff'))
    return ["--config", str(p)]


def _cfg_data_dir_is_file(world: World) -> list[str]:
    f = world.base / "not-a-dir"
    f.write_text("I am a file\n")
    p = world.base / "hostile.toml"
    p.write_text(f'data_dir = "{f}"\n[[sources]]\npath = "{world.log}"\n', encoding="utf-8")
    return ["--config", str(p)]


CONFIG_CASES = {
    "cfg-bad-bytes": _cfg_file("bad.toml", b'data_dir = "\xff\xfe\x80"\n'),
    "cfg-binary": _cfg_file("binary.toml", bytes(range(256)) * 4),
    "cfg-empty-file": _cfg_file("empty.toml", b""),
    "cfg-missing": lambda world: ["--config", str(world.base / "nope.toml")],
    "cfg-directory": _cfg_directory,
    "cfg-fifo": _cfg_fifo,
    "cfg-data-dir-number": _cfg_text("data_dir = 5\n"),
    "cfg-data-dir-is-file": _cfg_data_dir_is_file,
    "cfg-data-dir-nul": _cfg_text('data_dir = "{data}\\u0000x"\n'),
    "cfg-data-dir-vt": _cfg_text('data_dir = "{data}\\u000bx"\n'),
    "cfg-unknown-key": _cfg_text('data_dir = "{data}"\n[rule]\nmin_error = 2\n'),
    "cfg-unknown-section": _cfg_text('data_dir = "{data}"\n[rules]\nmin_errors = 2\n'),
    "cfg-wrong-types": _cfg_text('data_dir = "{data}"\n[rule]\nmin_errors = true\nwindow_days = "7"\n'),
    "cfg-absurd-numbers": _cfg_text('data_dir = "{data}"\n[ingest]\nbatch_events = 1000000000000000000000000\n'),
    "cfg-absurd-float": _cfg_text('data_dir = "{data}"\n[guard]\nblock_rate = inf\n'),
    "cfg-unknown-reason": _cfg_text('data_dir = "{data}"\n[rule]\ncounted_reasons = ["user_unknwon"]\n'),
    "cfg-carriers-string": _cfg_text('data_dir = "{data}"\n[carriers]\ndocomo = "example.jp"\n'),
    "cfg-timezone-vt": _cfg_text('data_dir = "{data}"\ntimezone = "Asia/\\u000bTokyo"\n'),
    "cfg-sources-not-list": _cfg_text('data_dir = "{data}"\nsources = "{log}"\n'),
    "cfg-source-path-nul": _cfg_text('data_dir = "{data}"\n[[sources]]\npath = "{log}\\u0000"\n'),
    # the global options, hostile
    "opt-config-nul": lambda world: ["--config", f"{world.config}\x00"],
    "opt-data-dir-nul": lambda world: ["--config", str(world.config), "--data-dir", f"{world.data}\x00x"],
    "opt-data-dir-vt": lambda world: ["--config", str(world.config), "--data-dir", f"{world.data}\x0bx"],
    "opt-data-dir-is-file": lambda world: ["--config", str(world.config), "--data-dir", str(world.log)],
    "opt-timezone-vt": lambda world: ["--config", str(world.config), "--timezone", "Asia/\x0bTokyo"],
    "opt-timezone-absurd": lambda world: ["--config", str(world.config), "--timezone", "../" * 100 + "etc/passwd"],
    # files of the zone database that ZoneInfo opens (or a directory of it): not zones the SQL knows
    "opt-timezone-db-file": lambda world: ["--config", str(world.config), "--timezone", "right/Asia/Tokyo"],
    "opt-timezone-directory": lambda world: ["--config", str(world.config), "--timezone", "Asia"],
}


# ----------------------------------------------------------------------------- DATA cases
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _first_event_file(world: World) -> Path:
    return sorted((world.data / "events").glob("date=*/*.parquet"))[0]


def _data_events_corrupt(world):
    _first_event_file(world).write_bytes(b"PAR1" + os.urandom(300) + b"PAR1")


def _data_events_truncated(world):
    _truncate(_first_event_file(world))


def _data_list_truncated(world):
    _truncate(world.data / "suppression" / "current.parquet")


def _data_history_corrupt(world):
    (world.data / "suppression" / "history.parquet").write_bytes(b"not parquet at all\n")


def _data_queue_corrupt(world):
    q = world.data / "sender" / "queue.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(q) + extra).unlink(missing_ok=True)
    q.write_bytes(b"SQLite format 3\x00" + os.urandom(4080))


def _data_events_is_file(world):
    shutil.rmtree(world.data / "events")
    (world.data / "events").write_text("not a directory\n")


def _data_suppression_is_file(world):
    shutil.rmtree(world.data / "suppression")
    (world.data / "suppression").write_text("not a directory\n")


def _data_missing(world):
    shutil.rmtree(world.data)


DATA_CASES = {
    "data-events-corrupt-parquet": _data_events_corrupt,
    "data-events-truncated-parquet": _data_events_truncated,
    "data-list-truncated-parquet": _data_list_truncated,
    "data-history-corrupt-parquet": _data_history_corrupt,
    "data-queue-corrupt-sqlite": _data_queue_corrupt,
    "data-events-dir-is-file": _data_events_is_file,
    "data-suppression-dir-is-file": _data_suppression_is_file,
    "data-dir-missing": _data_missing,
}


# ----------------------------------------------------------------------------- ARGS cases
def hostile_values(p: click.Parameter) -> dict[str, object]:
    """case id -> value (a str, or a callable World -> str for files made per case)."""
    if is_path_param(p):
        def directory(world):
            d = world.inputs / "a-directory"
            d.mkdir(exist_ok=True)
            return str(d)

        def fifo(world):
            f = world.inputs / "a-fifo"
            world.stack.enter_context(fifo_writer(f, b"\x00\x01binary\xff\xfe\n" * 10))
            return str(f)

        def binary(world):
            f = world.inputs / "binary.bin"
            f.write_bytes(bytes(range(256)) * 16)
            return str(f)

        return {"missing": lambda w: str(w.inputs / "no-such-file"), "directory": directory,
                "fifo": fifo, "empty": lambda w: str(w.empty), "binary": binary}
    if isinstance(p.type, click.types.IntParamType) or isinstance(p.type, click.types.IntRange):
        return {"absurd": "1" + "0" * 30, "negative": "-5"}
    if isinstance(p.type, (click.types.FloatParamType, click.types.FloatRange)):
        return {"absurd": "1e308", "nan": "nan", "negative": "-1"}
    return {"vt": "a\x0bb\x0b@docomo.ne.jp", "nul": "a\x00b@docomo.ne.jp", "absurd": "9" * 400}


ARG_CASES = [(path, p.name, case) for path in COMMAND_NAMES for p in value_params(path)
             for case in hostile_values(p)]


# ----------------------------------------------------------------------------- the tests
@pytest.fixture
def world(tmp_path, template, monkeypatch):
    from contextlib import ExitStack

    base = Path(tempfile.mkdtemp(prefix="mh-hostile-"))
    base.chmod(0o755)
    monkeypatch.chdir(base)  # a config without data_dir must not write into the checkout
    monkeypatch.delenv("MAILHYGIENE_CONFIG", raising=False)
    monkeypatch.delenv("MAILHYGIENE_DEBUG", raising=False)
    w = World(base, template)
    with ExitStack() as stack:
        w.stack = stack
        yield w
    shutil.rmtree(base, ignore_errors=True)


def test_every_command_is_walked():
    """The discovery finds the commands registered in pipeline.cli (none slips through)."""
    from pipeline.cli import COMMANDS as TABLE

    tops = {path.split()[0] for path in COMMAND_NAMES}
    assert set(TABLE) <= tops and "config" in tops
    assert {"suppression add", "suppression list", "suppression show", "doctor setup", "config show"} <= set(COMMAND_NAMES)
    assert len(ARG_CASES) > 100


def spanning(pairs: list[tuple], *, slow=pytest.mark.slow) -> list:
    """pytest params over `pairs` (command path first, case last): a subset that walks every
    command and every case at least once runs in `make test-fast`; the rest is marked slow."""
    seen_paths, seen_cases, out = set(), set(), []
    for pair in pairs:
        path, case = pair[0], pair[-1]
        fast = path not in seen_paths or case not in seen_cases
        seen_paths.add(path)
        seen_cases.add(case)
        out.append(pytest.param(*pair, marks=() if fast else slow))
    return out


def _rotated(paths: list[str], cases: list[str]) -> list[tuple[str, str]]:
    """Every (path, case), ordered so that the first len(paths) pairs give each command another case."""
    first = [(path, cases[i % len(cases)]) for i, path in enumerate(paths)]
    return first + [(p, c) for p in paths for c in cases if (p, c) not in first]


@pytest.mark.parametrize("path,case", spanning(_rotated(COMMAND_NAMES, sorted(CONFIG_CASES))))
def test_hostile_config(world, path, case):
    global_args = CONFIG_CASES[case](world)
    result, leftovers = run_case(world, global_args, base_args(path))
    check(path, case, result, leftovers)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DATA_CASES))
@pytest.mark.parametrize("path", COMMAND_NAMES)
def test_hostile_data_dir(world, path, case):
    DATA_CASES[case](world)
    config = write_good_config(world.base / "mailhygiene.toml", world.data, world.log,
                               sources=path != "watch")  # watch with a source would run until stopped
    result, leftovers = run_case(world, ["--config", str(config)], base_args(path))
    check(path, case, result, leftovers)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="SKIPPED LOUDLY: a read-only dir binds root only through another uid")
@pytest.mark.parametrize("path", COMMAND_NAMES)
def test_read_only_data_dir(world, template, path):
    """The data dir belongs to another user (the one running) and is read-only for it."""
    uid = 65534  # nobody
    for dirpath, dirnames, filenames in os.walk(world.base):
        for name in [*dirnames, *filenames, None]:
            p = Path(dirpath) if name is None else Path(dirpath) / name
            os.lchown(p, uid, uid)
    for dirpath, dirnames, filenames in os.walk(world.data):
        for name in [*dirnames, *filenames, None]:
            p = Path(dirpath) if name is None else Path(dirpath) / name
            p.chmod(0o555 if p.is_dir() else 0o444)
    config = write_good_config(world.base / "mailhygiene.toml", world.data, world.log,
                               sources=path != "watch")
    # The same run once as root on a scratch copy first: this interpreter's standard library may
    # live where `nobody` cannot read (pyenv under /root), so the modules the command imports
    # late (codecs, matplotlib's fonts ...) are loaded before the user changes.
    scratch = World(Path(tempfile.mkdtemp(prefix="mh-warm-")), template)
    scratch.stack = world.stack
    write_good_config(scratch.config, scratch.data, scratch.log, sources=path != "watch")
    try:
        run_case(scratch, ["--config", str(scratch.config)], base_args(path))
    finally:
        shutil.rmtree(scratch.base, ignore_errors=True)
    try:
        result, leftovers = run_case(world, ["--config", str(config)], base_args(path), uid=uid)
    finally:
        for dirpath, dirnames, filenames in os.walk(world.data):
            Path(dirpath).chmod(0o755)
    check(path, "data-read-only", result, leftovers)


@pytest.mark.parametrize("path,param,case", spanning(ARG_CASES))
def test_hostile_argument(world, path, param, case):
    p = next(p for p in value_params(path) if p.name == param)
    value = hostile_values(p)[case]
    value = value(world) if callable(value) else value
    config = write_good_config(world.base / "mailhygiene.toml", world.data, world.log,
                               sources=path != "watch")
    result, leftovers = run_case(world, ["--config", str(config)], with_value(path, p, value))
    check(path, f"arg-{param}-{case}", result, leftovers)


JSON_COMMANDS = [path for path in COMMAND_NAMES
                 if any(p.name == "as_json" for p in COMMAND_BY_PATH[path].params)]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DATA_CASES))
@pytest.mark.parametrize("path", JSON_COMMANDS)
def test_hostile_data_dir_with_json(world, path, case):
    """With --json, stdout is one JSON document or nothing: a failure is still one `Error:` line on
    stderr, never a half document a script would parse."""
    import json as json_module

    DATA_CASES[case](world)
    config = write_good_config(world.base / "mailhygiene.toml", world.data, world.log)
    result, leftovers = run_case(world, ["--config", str(config)], [*base_args(path), "--json"])
    check(path, case, result, leftovers)  # the same KNOWN_TRACEBACKS as without --json
    if result.exit_code != 0:
        assert result.stdout.strip() == "" or json_module.loads(result.stdout) is not None, result.stdout
    elif result.exit_code == 0:
        json_module.loads(result.stdout)


def test_json_commands_are_found():
    assert {"suppress", "suppression list", "suppression show", "clean", "report"} <= set(JSON_COMMANDS)


# ----------------------------------------------------------------------------- an operator's mistakes
# Cases the walk above does not make: the console process itself (signals, standard output),
# bytes that are not UTF-8, a full disk, a config saved by Notepad, --quiet under cron.
def invoke_world(world: World, *args, stdin: bytes = b"", global_args=None):
    """The command on the world's config, with the checks every case shares."""
    result, leftovers = run_case(world, global_args or ["--config", str(world.config)], list(args), stdin=stdin)
    check(" ".join(a for a in args[:2] if not a.startswith("-")), "probe", result, leftovers)
    return result


@pytest.mark.parametrize("args", [
    ["ingest", "{inputs}/log\udcff\udcfe.txt"],        # a Shift_JIS file name, as Python hands it on
    ["export", "{out}/out\udcff.csv"],
    ["report", "--out", "{out}/r\udcff"],
    ["classify", "550 unknown \udcff user"],
])
def test_an_argument_that_is_not_utf8_is_a_usage_error_naming_it(world, args):
    """Bytes that are not UTF-8 in an argument stop the command before it reads or writes anything
    (exit 2, the argument shown with its bytes), not an encoding error half-way (exit 70)."""
    (world.inputs / "log\udcff\udcfe.txt").write_bytes((SAMPLES / "qmail" / "current").read_bytes())
    args = [a.replace("{inputs}", str(world.inputs)) for a in args]
    result = invoke_world(world, *args)
    assert result.exit_code == 2, result.output
    assert "\\xff" in result.stderr and "not UTF-8" in result.stderr, result.stderr


def test_a_glob_matching_a_name_that_is_not_utf8_names_the_file(world):
    (world.inputs / "mail.log\udcff").write_bytes((SAMPLES / "qmail" / "current").read_bytes())
    result = invoke_world(world, "ingest", f"{world.inputs}/mail.log*")
    assert result.exit_code == 1 and "mail.log\\xff" in result.stderr and "not UTF-8" in result.stderr, result.stderr


@contextmanager
def full_filesystem(path: Path, size: str = "4m"):
    """A small tmpfs at `path` (root only; skipped loudly elsewhere), to be filled by the caller
    with fill()."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("SKIPPED LOUDLY: a full file system needs a tmpfs mount (root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Take every free byte of the file system holding `path`."""
    with open(path / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    for _ in range(64):  # and the last fragments: small files until not even one byte fits
        try:
            with open(path / f"crumb{_}", "wb") as fh:
                fh.write(b"\0" * 512)
        except OSError:
            break


@pytest.mark.parametrize("args", [
    ["export", "{full}/out.csv"],
    ["export", "{full}/out.csv", "--excel"],
    ["export", "{full}/out.parquet", "--format", "parquet"],
    ["export", "--filtered", "{full}/f.csv", "--allow-empty"],
])
def test_an_export_onto_a_full_disk_says_so(world, args):
    """DuckDB's COPY ... TO a full disk is `Error: cannot write FILE: No space left on device`
    (exit 1, no temp file), not an internal error (70)."""
    with full_filesystem(world.base / "full") as full:
        fill(full)
        result = invoke_world(world, *[a.replace("{full}", str(full)) for a in args])
        assert result.exit_code == 1, result.output
        assert "No space left on device" in result.stderr and str(full) in result.stderr, result.stderr
        # not "nothing was changed": an ingest stopped by a full disk keeps the batches it stored
        assert "run the command again" in result.stderr and "nothing was changed" not in result.stderr
        assert not [p.name for p in full.iterdir() if not p.name.startswith(("filler", "crumb"))]


def test_a_list_change_on_a_full_disk_says_so_and_keeps_the_list(world):
    with full_filesystem(world.base / "full", size="8m") as full:
        shutil.copytree(world.data, full / "data")
        config = write_good_config(world.base / "full.toml", full / "data", world.log)
        before = snapshot(full / "data" / "suppression")
        fill(full)
        for args in (["suppression", "add", "new.one@docomo.ne.jp"],
                     ["suppression", "release", "complainer@au.com"]):
            result = invoke_world(world, *args, global_args=["--config", str(config)])
            assert result.exit_code == 1 and "No space left on device" in result.stderr, result.output
            assert snapshot(full / "data" / "suppression") == before


def console(world: World, *args, stdout=None, **kwargs):
    """The console command itself (pipeline.cli.main, as `mailhygiene` runs it) in a subprocess."""
    import subprocess
    import sys

    from fixtures import CLI, OPERATOR_ENV

    env = {k: v for k, v in os.environ.items() if k not in (*OPERATOR_ENV, "MAILHYGIENE_DEBUG")}
    config = [] if "--config" in args else ["--config", str(world.config)]
    return subprocess.run([sys.executable, "-c", CLI, *config, *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, cwd=world.base, timeout=HANG_SECONDS,
                          **kwargs)


@pytest.mark.parametrize("args", [["export", "-"], ["export", "-", "--excel"], ["suppression", "list"],
                                  ["suppression", "list", "--json"], ["report", "--json"], ["config", "show"],
                                  ["classify", "550 Unknown user"], ["suppress", "--dry-run", "--json"]])
def test_standard_output_on_a_full_device_is_an_error_not_a_bug(world, args):
    """`> /dev/full` (a full disk under `> file`): `Error: cannot write to standard output`, exit 1,
    not `internal error` (70): the output a script waits for is incomplete."""
    with open("/dev/full", "w") as full:
        r = console(world, *args, stdout=full)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("Error: cannot write to standard output: No space left on device"), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["suppression", "list"], ["config", "show"], ["report"], ["export", "-"]])
def test_a_closed_standard_output_is_no_traceback(world, args):
    """Started with standard output closed (`>&-`): no traceback at exit; `export -` refuses (exit
    1: nothing was exported) rather than pretend."""
    r = console(world, *args, pass_fds=(), preexec_fn=lambda: os.close(1))
    assert "Traceback" not in r.stderr, r.stderr
    if args[0] == "export":
        assert r.returncode == 1 and r.stderr.startswith("Error: standard output is closed"), r.stderr
    else:
        assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_ends_a_command_as_ctrl_c_does(world, sig):
    """SIGTERM (systemd stopping the unit, `kill`, a timeout) ends a command as Ctrl-C does: exit
    143 with `Terminated:` on stderr (not a silent death by the signal), no temp file, every data
    file whole, and the next run does the work. Here the ingest waits for the ingest lock another
    run holds: a moment the test can see (the wait is announced on stderr)."""
    import fcntl
    import subprocess
    import sys

    from fixtures import CLI

    log = SAMPLES / "postfix" / "mail.log"
    args = [sys.executable, "-c", CLI, "--config", str(world.config), "ingest", "--reread", str(log)]
    before = snapshot(world.data)
    with open(world.data / "state" / "ingest.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=world.base)
        try:
            with alarm(HANG_SECONDS):
                first = p.stderr.readline()
            assert "waiting" in first, first
            p.send_signal(sig)  # SIGHUP: the terminal or the ssh session went away
            out, err = p.communicate(timeout=HANG_SECONDS)
        finally:
            if p.poll() is None:
                p.kill()
    assert p.returncode == 128 + sig, (first, err)
    assert "Terminated: what was stored before stays" in err and "Traceback" not in err, err
    after = snapshot(world.data)
    assert not [n for n in after if n.endswith(".tmp")], after
    assert {n: h for n, h in after.items() if not is_lock(n)} == {n: h for n, h in before.items() if not is_lock(n)}
    r = subprocess.run(args, capture_output=True, text=True, cwd=world.base, timeout=HANG_SECONDS)
    assert r.returncode == 0 and "already stored" in r.stdout, r.stderr


@pytest.mark.parametrize("mail", [b"", b"Subject: hello\n\nnot a bounce\n"])
def test_bounces_of_a_mail_without_from_shows_no_traceback(world, mail):
    """A mail without From (or no mail at all) piped to `bounces`: one line saying it was
    ignored, no traceback from a bounce detector's logger on stderr (Postfix mails stderr back)."""
    import subprocess

    r = console(world, "bounces", input=mail.decode(), stdout=subprocess.PIPE)
    assert r.returncode == 0 and "not a bounce" in r.stdout, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "flufl" not in r.stderr, r.stderr


def test_a_config_saved_with_a_bom_is_read(world):
    """Notepad's "UTF-8 with BOM": the file is read as written, not refused with 'Invalid
    statement (at line 1, column 1)', which does not say what is wrong."""
    conf = world.base / "bom.toml"
    conf.write_bytes(b"\xef\xbb\xbf" + world.config.read_bytes().replace(b"\n", b"\r\n"))
    result = invoke_world(world, "config", "show", "--json", global_args=["--config", str(conf)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["data_dir"] == str(world.data) and doc["sender"]["from_name"] == "配信センター"


@pytest.mark.parametrize("args", [
    ["ingest", str(SAMPLES / "qmail" / "current")],
    ["export", "{out}/list.csv"],
    ["suppression", "add", "new.one@docomo.ne.jp"],
    ["suppression", "release", "complainer@au.com"],
    ["suppression", "repair"],
    ["suppress"], ["report"], ["prune", "--before", "2000-01-01", "--yes"],
])
def test_quiet_prints_nothing_when_all_is_well(world, args):
    """`mailhygiene --quiet CMD` from cron: no output at all when the run went well (cron mails any)."""
    result = invoke_world(world, *args, global_args=["--config", str(world.config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == "", result.output


def test_quiet_ingest_still_says_what_went_wrong(world):
    result = invoke_world(world, "ingest", str(SAMPLES / "qmail" / "current"), f"{world.inputs}/nothing-*.log",
                          global_args=["--config", str(world.config), "--quiet"])
    assert result.exit_code == 0 and result.stdout == "", result.output
    assert "nothing-*.log matched no file" in result.stderr, result.stderr


@pytest.mark.parametrize("args", [
    ["suppression", "list"], ["suppression", "list", "--json"], ["suppression", "show", "taro.dead@docomo.ne.jp"],
    ["suppression", "release", "complainer@au.com"], ["suppression", "repair"],
    ["prune", "--keep-days", "30", "--yes"],
])
def test_a_data_dir_that_does_not_exist_is_said_and_not_created(world, args):
    """A mistyped --data-dir: `Error: data dir ... does not exist` (exit 1), not "0 suppressed
    address(es)" / "nothing to delete" (exit 0) that a script takes for an answer, and no
    directory is left there by the command."""
    typo = world.base / "dta"
    result = invoke_world(world, *args, global_args=["--config", str(world.config), "--data-dir", str(typo)])
    assert result.exit_code == 1, result.output
    assert f"data dir {typo} does not exist" in result.stderr and result.stdout == "", result.output
    assert not typo.exists()


@pytest.mark.parametrize("args", [["export", ""], ["ingest", ""], ["ingest", "{log}", ""],
                                  ["suppression", "add", "--from-file", ""]])
def test_an_empty_file_name_is_said_as_such(world, args):
    """`mailhygiene export "$OUT"` with OUT unset: a usage error saying the name is empty, not
    `Error: . is a directory` (the empty name read as the current directory)."""
    result = invoke_world(world, *args)
    assert result.exit_code == 2 and "is empty: give a file name" in result.stderr, result.output


def test_an_empty_config_name_is_said_as_such(world):
    result = invoke_world(world, "report", global_args=["--config", ""])
    assert result.exit_code == 2 and "--config (or $MAILHYGIENE_CONFIG) is empty" in result.stderr, result.output


@pytest.mark.parametrize("args", [["report"], ["suppress", "--dry-run"], ["export", "--filtered", "{out}/f.csv"]])
def test_an_empty_lake_is_named_not_the_full_local_store(world, args):
    """With [store] url, the commands read the lake: an empty lake (a new url, a typo in it) is said
    as such, not "no events in <data dir>", which holds events."""
    lake = world.base / "new-lake"
    world.config.write_text(world.config.read_text() + f'\n[store]\nurl = "{lake}"\nnode = "mta01"\n',
                            encoding="utf-8")
    result = invoke_world(world, *args)
    assert result.exit_code == 1, result.output
    assert f"no events in the lake {lake} yet" in result.stderr, result.stderr


@pytest.mark.parametrize("args,status", [(["intake"], 1), (["ingest", "-"], 1), (["bounces"], 75),
                                         (["suppression", "add", "--from-file", "-"], 1),
                                         (["prune", "--before", "2026-11-12", "--force"], None)])
def test_a_closed_standard_input_is_said(world, args, status):
    """Started with standard input closed (`<&-`): the commands that read it say it is closed
    (bounces: 75, the MTA retries), prune finds no terminal to ask on; no internal error."""
    import subprocess

    r = console(world, *args, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(0))
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    if status is not None:
        assert r.returncode == status and "standard input is closed" in r.stderr, r.stderr
    else:  # prune: nothing deleted without an answer
        assert r.returncode == 1 and "there is no terminal to ask on" in r.stderr, r.stderr
        assert (world.data / "events" / "date=2026-11-09").is_dir()


@pytest.mark.parametrize("name", ["localtime", "posixrules", "right/Asia/Tokyo", "posix/Asia/Tokyo", "Asia"])
@pytest.mark.parametrize("args", [["report"], ["suppress", "--dry-run"], ["export", "-"]])
def test_a_zone_database_file_is_not_a_time_zone(world, name, args):
    """`--timezone localtime` (or right/..., a directory such as Asia): ZoneInfo may open it, the
    SQL does not know it; a usage error naming --timezone (exit 2, README) before any work, not an
    internal error."""
    zoneinfo_dir = Path("/usr/share/zoneinfo")
    if name != "Asia" and not (zoneinfo_dir / name).exists():
        pytest.skip(f"SKIPPED LOUDLY: this system's zone database has no {name}")
    result = invoke_world(world, *args, global_args=["--config", str(world.config), "--timezone", name])
    assert result.exit_code == 2 and "Invalid value for '--timezone'" in result.stderr, result.output
    assert "time zone" in result.stderr and name in result.stderr, result.output


@pytest.mark.parametrize("target,fmt", [("suppression/history.parquet", "parquet"),
                                        ("suppression/current.parquet", "parquet"),
                                        ("events/date=2026-11-10/list.parquet", "parquet"),
                                        ("state/ingest-state.json", "csv"), ("sender/queue.sqlite3", "csv")])
def test_an_export_never_replaces_the_data_dirs_own_files(world, target, fmt):
    """`export DATA/suppression/history.parquet --format parquet` replaced the list's history with
    the export (every later command: internal error); one into events/ was read as events. Now
    refused before anything is written, naming where to export instead."""
    result = invoke_world(world, "export", str(world.data / target), "--format", fmt)
    assert result.exit_code == 1 and "where the program keeps its own data" in result.stderr, result.output
    assert "exports" in result.stderr
    listed = invoke_world(world, "suppression", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["count"] == 6, listed.output


def test_an_export_into_exports_or_reports_of_the_data_dir_is_fine(world):
    for target in ("exports/list.csv", "reports/list.csv"):
        (world.data / target).parent.mkdir(exist_ok=True)
        result = invoke_world(world, "export", str(world.data / target))
        assert result.exit_code == 0 and (world.data / target).is_file(), result.output


def _limit_memory():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # without the bound: MemoryError, not the OOM killer


@pytest.mark.parametrize("source", ["/dev/zero", "big-file"])
def test_a_config_that_is_no_config_file_is_refused_without_reading_it_all(world, source):
    """`--config /dev/zero` (a device, a log given by mistake): read up to 1 MiB and refused, not
    read until memory runs out (the OOM killer ended the command)."""
    import subprocess

    if source == "big-file":
        source = world.base / "big.toml"
        source.write_bytes(b"# " + b"x" * (3 << 20) + b"\n")
    r = console(world, "--config", str(source), "config", "show", stdout=subprocess.PIPE, preexec_fn=_limit_memory)
    assert r.returncode == 1 and "is larger than 1 MiB: not a config file" in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["send", "enqueue", "--subject", "x", "--body-file", "/dev/zero", "--recipients", "{recipients}"],
     "larger than 64 MiB: not a message text"),
    (["send", "enqueue", "--subject", "x", "--body-file", "{body}", "--recipients", "/dev/zero"],
     "larger than 512 MB: not a list of addresses"),
    (["send", "preview", "--carrier", "docomo", "--subject", "x", "--body-file", "/dev/zero"],
     "larger than 64 MiB: not a message text"),
])
def test_an_endless_input_file_is_refused_not_read_into_memory(world, args, message):
    """`--body-file /dev/zero` (a device or a log given by mistake): an Error, not MemoryError (70)
    or the OOM killer."""
    import subprocess

    r = console(world, *world.fill(args), stdout=subprocess.PIPE, preexec_fn=_limit_memory)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_watch_passes_over_a_file_whose_name_is_not_utf8(tmp_path):
    """A file of a watched glob named in Shift_JIS: a warning naming it, the other files are
    followed, and the stop is clean (not 'internal error: UnicodeEncodeError' at the first commit)."""
    from fixtures import Watcher, pf_lines

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "mail.log.\udcff").write_text(pf_lines(100, 110))
    (logs / "mail.log").write_text(pf_lines(0, 10))
    w = Watcher(tmp_path, [(f"{logs}/mail.log*", "postfix")]).start()
    try:
        assert w.wait_for(10, timeout=HANG_SECONDS)[0] == 10, w.stderr()
    finally:
        status = w.stop()
    assert status == 0 and "internal error" not in w.stderr(), w.stderr()
    assert "mail.log.\\xff) has a name that is not UTF-8" in w.stderr(), w.stderr()


@pytest.mark.parametrize("encoding,sep", [("utf-16", "\t"), ("utf-8", "\t"), ("cp932", "\t"), ("utf-16", ",")])
def test_excel_unicode_text_and_tab_separated_address_files_are_read(world, encoding, sep):
    """Excel's "Unicode Text" (UTF-16 with a BOM, tab-separated) and "Text (Tab delimited)": the
    addresses, not 'is not a text file (it holds NUL bytes)' or "'email\\tname' is not an e-mail address"."""
    f = world.inputs / "optouts.txt"
    f.write_bytes(f"email{sep}名前\r\nu16.one@docomo.ne.jp{sep}太郎\r\nu16.two@au.com{sep}花子\r\n".encode(encoding))
    result = invoke_world(world, "suppression", "add", "--from-file", str(f))
    assert result.exit_code == 0 and "added 2 address(es)" in result.stdout, result.output


def test_config_show_masks_a_password_in_a_url(world):
    """`config show` (run as anyone, pasted into tickets) masks intake.shared_secret and the
    password of a URL such as store.endpoint_url = "http://user:password@host"."""
    world.config.write_text(world.config.read_text() + '\n[store]\nurl = "s3://bucket/p"\n'
                            'endpoint_url = "http://AKIA:supersecret@127.0.0.1:9000"\n', encoding="utf-8")
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = invoke_world(world, *args)
        assert result.exit_code == 0 and "supersecret" not in result.stdout, result.output
        assert "http://AKIA:********@127.0.0.1:9000" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")])
def test_a_signal_during_a_duckdb_query_is_an_interruption_not_a_bug(world, template, sig, status, word):
    """Ctrl-C or SIGTERM while DuckDB runs a query (here: adding 200,000 addresses): DuckDB turns
    the signal into `RuntimeError: Query interrupted`, which was 'internal error' (70). Now the
    command ends as interrupted (130 / 143); the list reads back (whole, or asking for `repair`).
    The signal is sent at several moments, so that some land inside a query."""
    import subprocess
    import sys
    import time

    from fixtures import CLI

    addresses = world.inputs / "many.txt"
    addresses.write_text("".join(f"bulk{i}@docomo.ne.jp\n" for i in range(200_000)))
    seen = []
    for delay in [0.6 + 0.3 * i for i in range(9)]:   # (0.6-3.0 s: from the imports to the end of the adds)
        shutil.rmtree(world.data)
        shutil.copytree(template, world.data)
        p = subprocess.Popen([sys.executable, "-c", CLI, "--config", str(world.config), "suppression", "add",
                              "--from-file", str(addresses)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=world.base)
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=HANG_SECONDS)
        seen.append(p.returncode)
        assert "internal error" not in err and "Traceback" not in err, (delay, err)
        assert p.returncode in (0, status), (delay, p.returncode, err)
        if p.returncode == status:
            assert f"{word}: what was stored before stays" in err, err
        assert not [n for n in snapshot(world.data) if n.endswith(".tmp")]
        if p.returncode == 0:
            break
    assert status in seen, seen


SELF_SIGNAL_MODULE = """
import os, signal, time
os.kill(os.getpid(), signal.{sig})
started = time.monotonic()
while time.monotonic() - started < 0.3:  # Python bytecode runs: an unguarded handler raises here
    pass
import builtins
builtins.SELF_SIGNAL_IMPORTED = True  # the import's last step: the signal may land right after it
"""

SIGNAL_AFTER_IMPORT = """
import builtins, sys, time
sys.path.insert(0, sys.argv[1])
from pipeline.cli import install_signal_handlers
install_signal_handlers()
try:
    import self_signal
    time.sleep(20)
    outcome = "the signal was lost"
except BaseException as exc:
    outcome = type(exc).__name__
print(getattr(builtins, "SELF_SIGNAL_IMPORTED", False), outcome, flush=True)
"""


@pytest.mark.parametrize("sig,raised", [("SIGTERM", "Terminated"), ("SIGHUP", "Terminated")])
def test_a_signal_during_an_import_waits_for_the_import_to_end(tmp_path, sig, raised):
    """SIGTERM or SIGHUP while a module is being imported: the handler's exception used to land
    wherever the import was, and inside a native library's initialisation (DuckDB's nanobind
    creating its enums at `import duckdb`) that is "Critical nanobind error" and a traceback, not
    an interrupted command (seen in CI, by the DuckDB-query test above). Now the signal waits for
    the import to end, then ends the command as usual. Here a module sends the signal to its own
    process in the middle of its import: the import completes, then the signal is raised."""
    import subprocess
    import sys

    (tmp_path / "self_signal.py").write_text(SELF_SIGNAL_MODULE.format(sig=sig))
    p = subprocess.run([sys.executable, "-c", SIGNAL_AFTER_IMPORT, str(tmp_path)], capture_output=True,
                       text=True, timeout=HANG_SECONDS, cwd=Path(__file__).resolve().parent.parent)
    assert p.stdout.split() == ["True", raised], (p.stdout, p.stderr)  # the whole import ran, then the signal
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("lock,args", [("suppression/.lock", ["suppress"]),
                                       ("state/ingest.lock", ["ingest", str(SAMPLES / "qmail" / "current")]),
                                       ("events/.write.lock", ["ingest", str(SAMPLES / "qmail" / "current")])])
def test_a_lock_file_that_is_a_directory_says_what_to_do(world, lock, args):
    (world.data / lock).unlink(missing_ok=True)
    (world.data / lock).mkdir()
    result = invoke_world(world, *args)
    assert result.exit_code == 1 and f"lock file {world.data / lock} is a directory" in result.stderr, result.output
    assert "remove that directory" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_clean_refuses_a_source_that_is_a_pipe_or_device(world, kind):
    """`[[sources]] path` naming a FIFO nobody writes, or /dev/zero: `clean` read it until it ended,
    i.e. never (a nightly job holding its lock forever). Now `Error:` naming the source, the rule
    not run."""
    if kind == "fifo":
        source = world.inputs / "pipe.log"
        os.mkfifo(source)
    else:
        source = Path("/dev/zero")
    config = world.base / "pipe.toml"
    config.write_text(f'data_dir = "{world.data}"\ntimezone = "Asia/Tokyo"\n[[sources]]\npath = "{source}"\n'
                      'format = "postfix"\n', encoding="utf-8")
    result = invoke_world(world, "clean", "--quiet", global_args=["--config", str(config)])
    assert result.exit_code == 1 and f"[[sources]] path {source} is" in result.stderr, result.output


@pytest.mark.parametrize("typed,halfwidth", [("ｔａｒｏ.dead@docomo.ne.jp", "taro.dead@docomo.ne.jp"),
                                             ("taro.dead＠docomo.ne.jp", "taro.dead@docomo.ne.jp")])
def test_a_full_width_address_is_refused_with_its_half_width_form(world, typed, halfwidth):
    """An opt-out typed with a Japanese input method (ｔａｒｏ＠...): the sender never delivers to
    such an address, so an entry for it would suppress nobody; refused, naming the half-width form."""
    for args in (["suppression", "add", typed], ["suppression", "show", typed]):
        result = invoke_world(world, *args)
        assert result.exit_code == 1 and "full-width" in result.stderr and halfwidth in result.stderr, result.output
    assert typed.lower() not in invoke_world(world, "suppression", "list").stdout
