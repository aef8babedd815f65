"""The `mailhygiene` command: a thin click layer over the library.

Each command turns options into one library call and prints the result. Library errors
(MailHygieneError) become a single `Error: …` line and exit status 1 (or the error's own
exit_code); any other exception is a bug and becomes `Error: internal error: <type>: <message>`
and exit status 70 (MAILHYGIENE_DEBUG=1 also prints the traceback).

Module map (one file per command group; COMMANDS below is the table of them):
  __init__     the group, global options (--config, --data-dir, --timezone, --quiet, --lang),
               the safety net (`Error: internal error`, exit 70), `config show`,
               COMMANDS (name -> module and one-line help: `--help` lists commands without
               importing them) and READ_ONLY (commands that may run as any user)
  ingest       ingest               classify   classify        suppression  suppress, suppression, export
  clean        clean                report     report          watch        watch
  send         send, intake         doctor     doctor          prune        prune
  lake         lake (status, upload, compact: the shared event lake, docs/scale-out.md)
  terminal     shared output helpers: aligned columns for double-width text, --json, --lang

Start-up: importing this module loads click and nothing of the stages (no pandas, numpy, pyarrow,
duckdb or dnspython); a command's module is imported only when that command runs
(tests/test_startup.py pins it).
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import shlex
import sys
from contextlib import contextmanager

# numpy's OpenBLAS starts a thread per core that spins for a while: CPU that a command of this
# tool (no linear algebra anywhere) would take from its own threads. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Arrow's default pool (mimalloc) hands the pages of each freed block back and faults fresh ones
# in for the next: with malloc's pool an ingest of 1M Postfix lines peaks at about 200 MB
# instead of 310 MB, for the same speed (BENCHMARKS.md). Read when pyarrow is first imported.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import click

from .. import __version__
from ..core import signals as sigphase
from ..core.errors import MailHygieneError

sigphase.test_pause("cli-import")  # (test-only: a signal while the CLI is being imported)

# Every command defined outside this file: name -> ("module:attribute", one-line help). `--help`
# lists them from this table alone; a command's module is imported only when it runs (or its own
# --help is asked for). Keep the help line in step with the command's docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("pipeline.cli.ingest:ingest_cmd", "Read mail logs (plain, .gz, .bz2, .xz) into the event store."),
    "classify": ("pipeline.cli.classify:classify_cmd",
                 "Show how a bounce text is classified (reason, whose fault, hard/soft, carrier)."),
    "suppress": ("pipeline.cli.suppression:suppress_cmd",
                 "Run the multi-day rule and add dead addresses to the suppression list."),
    "suppression": ("pipeline.cli.suppression:suppression_group", "Inspect and edit the suppression list."),
    "export": ("pipeline.cli.suppression:export_cmd",
               "Write the suppression list with its evidence (address first)."),
    "clean": ("pipeline.cli.clean:clean_cmd",
              "The nightly job: ingest new log lines, run the rule, write the export and report."),
    "prune": ("pipeline.cli.prune:prune_cmd", "Delete whole days of events older than a date."),
    "send": ("pipeline.cli.send:send", "Send campaigns: enqueue, run the throttled daemon, watch the queue."),
    "intake": ("pipeline.cli.send:intake", "Turn a request mail (stdin) into a queued campaign."),
    "bounces": ("pipeline.cli.bounces:bounces_cmd",
                "Record bounce mails (DSNs and carriers' own formats) as events, like log lines."),
    "doctor": ("pipeline.cli.doctor:doctor", "Preflight checks: the sending setup (DNS), the relays (STARTTLS, AUTH) and a message (.eml)."),
    "report": ("pipeline.cli.report:report_cmd",
               "Write per-carrier tables, charts and one self-contained HTML report."),
    "watch": ("pipeline.cli.watch:watch_cmd",
              "Follow the [[sources]] of the config and keep the event store current."),
    "lake": ("pipeline.cli.lake:lake_group", "The shared event lake of many MTA nodes: status, upload, compact."),
}
# Backwards-compatible view of the table (name -> "module:attribute").
LAZY_COMMANDS = {name: target for name, (target, _) in COMMANDS.items()}

# Commands (or "group sub-command") that never create or change a file of the data dir: they may
# run as any user. Every other command that loads the config must run as the data dir's owner
# (pipeline.core.owner): a file it left owned by root would stop the service user's next run.
READ_ONLY = frozenset({"config", "classify", "doctor", "suppression list", "suppression show",
                       "send list", "send status", "send preview", "send mta-config",  # the queue opened read-only
                       "lake status"})
COMMAND_META = "mailhygiene.command"  # ctx.meta key: (writes, [command, args...]) of this run


class AppContext:
    """Carries global options; the config is loaded lazily so `--help` never touches files.

    `quiet`: print only problems (commands use `say` for their normal output, `problem` for what
    must reach the operator, e.g. from cron). `writes`: the command may create files in the data
    dir, so loading the config also checks that we run as the data dir's owner.
    """

    def __init__(self, config_path, data_dir, timezone, quiet=False, lang=None, init_data_dir=False):
        self.config_path = config_path
        self.init_data_dir = init_data_dir  # --init-data-dir: a new data dir is meant where one held data
        self.data_dir = data_dir
        self.timezone = timezone
        self.quiet = quiet
        self.lang = lang  # --lang: overrides report.lang (the one language setting) for this run
        self.writes = False
        self.command_args: list[str] = []  # the sub-command and its arguments, as typed
        self._cfg = None
        self._claimed = False

    def stored_cfg(self):
        """The config, for a command that reads or changes what the data dir holds (the list, the
        event days): NoDataError when the data dir does not exist or is not a mailhygiene data dir
        (pipeline.store.datadir), so a mistyped --data-dir or the wrong config is said as such
        instead of answered with "0 entries" or "nothing to delete" (exit 0), and nothing is
        created there by a command that then fails."""
        from ..core.errors import NoDataError
        from ..store import datadir

        cfg = self._load()
        if not cfg.data_dir.exists():
            raise NoDataError(f"data dir {cfg.data_dir}{self.data_dir_origin(cfg)} does not exist: check --data-dir "
                              "or the config (a new install stores its first events with `mailhygiene ingest LOGS`)")
        if not self.writes:
            datadir.check_readable(cfg.data_dir, self.data_dir_origin(cfg), config_inside(cfg))
        return self.cfg

    def read_cfg(self):
        """The config, for a read-only command that reads the data dir but has an answer for a
        new one (`send list`: the queue is empty): NoDataError when the data dir is a foreign
        directory (pipeline.store.datadir), instead of that answer."""
        from ..store import datadir

        cfg = self.cfg
        datadir.check_readable(cfg.data_dir, self.data_dir_origin(cfg), config_inside(cfg))
        return cfg

    def data_dir_origin(self, cfg) -> str:
        """Where the data dir's path came from, for messages: ` (data_dir of FILE)` or ``."""
        return f" (data_dir of {cfg.source})" if cfg.source and self.data_dir is None else ""

    @property
    def cfg(self):
        """The config. For a command that writes, the data dir is claimed first
        (pipeline.store.datadir.claim: a directory holding other files and no marker is refused,
        nothing written, and so is a missing or empty one that held data before, its volume not
        mounted, unless --init-data-dir: pipeline.store.vanished; an empty one or one of our
        layout is marked as ours; a missing one is marked when the command ends, if it created it)."""
        cfg = self._load()
        if self.writes and not self._claimed:
            from ..store import datadir

            datadir.claim(cfg.data_dir, self.data_dir_origin(cfg), config_inside(cfg), init=self.init_data_dir,
                          command=self.command_line("--init-data-dir"))
            self._claimed = True
            # a data dir the command creates (the store makes it as it writes) is marked at the end
            ctx = click.get_current_context(silent=True)
            if ctx is not None:
                ctx.find_root().call_on_close(lambda: datadir.mark(cfg.data_dir, config_inside(cfg)))
        return cfg

    def _load(self):
        if self._cfg is None:
            from ..core.config import load_config

            cfg = load_config(self.config_path, data_dir=self.data_dir, timezone=self.timezone)
            check_data_dir(cfg)
            if self.writes:
                from ..core.owner import require_owner
                from ..store import datadir

                # a foreign directory first: /etc is root's, yet "run as root" is not the answer
                datadir.refuse_foreign(cfg.data_dir, self.data_dir_origin(cfg), config_inside(cfg))
                require_owner(cfg.data_dir, command=self.command_line())
            from ..classify import configure  # the config's [classify] phrases and providers

            configure(cfg.classify, cfg.carriers)
            # `[store] url`: every events view reads all nodes of the lake (not for `config show`,
            # which reads no events and must show a config whose lake url is refused)
            if cfg.store.url and self.command_args[:1] != ["config"]:
                from ..lake.read import use_lake

                use_lake(cfg)
            self._cfg = cfg
        return self._cfg

    def labels(self, lang: str | None = None):
        """The words of the terminal summaries: `lang` (a command's --lang), else the global
        --lang, else report.lang of the config (pipeline.report.labels)."""
        from ..report.labels import labels

        return labels(lang or self.lang or self.cfg.report.lang)

    def language(self, lang: str | None = None) -> str | None:
        """The language a command's --lang, else the global --lang, asks for (None: report.lang)."""
        return lang or self.lang

    @staticmethod
    def print_json(document) -> None:
        """A command's --json document on stdout (pipeline.core.jsonout: one JSON text)."""
        from ..core.jsonout import dumps

        click.echo(dumps(document))

    def command_line(self, *options: str) -> str:
        """This run as a shell command line (for messages that say how to run it instead), with
        global `options` added (--init-data-dir)."""
        words = ["mailhygiene", *options]
        for option, value in (("--config", self.config_path), ("--data-dir", self.data_dir),
                              ("--timezone", self.timezone)):
            if value is not None:
                words += [option, str(value)]
        return shlex.join(words + self.command_args)

    def say(self, message: str = "", **kwargs) -> None:
        """Normal output: printed unless --quiet."""
        if not self.quiet:
            click.echo(message, **kwargs)

    @staticmethod
    def problem(message: str) -> None:
        """Something the operator must see (always printed, on stderr: cron mails it)."""
        click.echo(message, err=True)


def config_inside(cfg) -> frozenset[str]:
    """The config file's name when it is kept at the top of its own data dir (data_dir = "."):
    that file does not make the directory someone else's (pipeline.store.datadir)."""
    try:
        if cfg.source is not None and os.path.samefile(cfg.source.parent, cfg.data_dir):
            return frozenset({cfg.source.name})
    except OSError:
        pass
    return frozenset()


def check_data_dir(cfg) -> None:
    """ConfigError when the data dir's path holds a control character (a vertical tab pasted
    from a spreadsheet ...) or names something that is not a directory (a mistyped path to a file)."""
    from ..core.errors import ConfigError

    where = f" (config file {cfg.source})" if cfg.source else ""
    bad = next((ch for ch in str(cfg.data_dir) if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise ConfigError(f"data_dir {str(cfg.data_dir)!r}{where} holds a control character "
                          f"(U+{ord(bad):04X}): a typo? Give the directory's real path")
    try:
        if cfg.data_dir.exists() and not cfg.data_dir.is_dir():
            raise ConfigError(f"data_dir {cfg.data_dir}{where} is not a directory: "
                              "point data_dir (or --data-dir) at a directory")
    except OSError as exc:
        raise ConfigError(f"cannot inspect data_dir {cfg.data_dir}{where}: {exc.strerror or exc}") from None


class Group(click.Group):
    """Turns MailHygieneError into `Error: …` + exit 1, never a traceback; loads the commands
    named in `lazy_commands` (name -> ("module:attribute", help)) on first use, and lists them in
    `--help` from that table without importing anything."""

    lazy_commands: dict[str, tuple[str, str]] = {}
    read_only: frozenset[str] = frozenset()

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy_commands:
            sigphase.test_pause("command-import")  # (test-only)
            target, short_help = self.lazy_commands[name]
            module, _, attr = target.partition(":")
            command = getattr(importlib.import_module(module), attr)
            command.short_help = command.short_help or short_help
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        """The command list of `--help`, from the table for commands not loaded yet."""
        limit = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy_commands[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        """Also notes (before the group's callback builds the AppContext) whether the command
        may write the data dir, and its arguments."""
        cmd_name, command, rest = super().resolve_command(ctx, args)
        if cmd_name is not None:
            sub = next((a for a in rest if not a.startswith("-")), None)
            path = f"{cmd_name} {sub}" if isinstance(command, click.Group) and sub else cmd_name
            ctx.meta[COMMAND_META] = (cmd_name not in self.read_only and path not in self.read_only,
                                      [cmd_name, *rest])
        return cmd_name, command, rest

    def make_context(self, info_name, args, parent=None, **extra):
        if parent is None:
            check_utf8_arguments(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except ValueError as exc:
            raise nul_in_argument(exc) from None

    def invoke(self, ctx):
        try:
            return self._invoke(ctx)
        finally:
            if _OWN_SIGNALS and ctx.parent is None:  # the command is over: a signal now ends the process at once
                sigphase.end_at_once(sigphase.ENDED)
                sigphase.test_pause("ending")  # (test-only)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MailHygieneError as exc:
            click.echo(f"Error: {one_line(exc)}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own: usage errors (exit 2), ctx.exit(n)
        except KeyboardInterrupt as exc:
            interrupted(ctx, _signals.terminated if isinstance(exc, Terminated) else 0)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # `mailhygiene export - | head`: click's main() ends quietly
            if writing_stdout(exc):  # `> /dev/full`, a full disk under `> file`: the output is lost
                say_error(f"cannot write to standard output: {exc.strerror or exc} (the output is incomplete: "
                          "free some space where it goes, or send it elsewhere)")
                ctx.exit(1)
            internal_error(ctx, exc)
        except ValueError as exc:
            if "null byte" not in str(exc):
                internal_error(ctx, exc)
            raise nul_in_argument(exc) from None
        except Exception as exc:  # the safety net: a bug, said in one line, never a bare traceback
            if interrupted_query(exc):
                interrupted(ctx, _signals.terminated)
            internal_error(ctx, exc)


def writing_stdout(exc: BaseException) -> bool:
    """Whether `exc` was raised writing standard output (click.echo, the export's copy to `-`):
    one of the frames it passed through holds sys.stdout or its binary buffer."""
    streams = [s for s in (sys.stdout, sys.__stdout__) if s is not None]
    streams += [s.buffer for s in list(streams) if hasattr(s, "buffer")]
    tb = exc.__traceback__
    while tb is not None:
        if any(value is stream for value in tb.tb_frame.f_locals.values() for stream in streams):
            return True
        tb = tb.tb_next
    return False


def say_error(message: str) -> None:
    """The `Error:` line on stderr, when stderr can take it."""
    say_error_line(f"Error: {message}")


def say_error_line(line: str) -> None:
    try:
        click.echo(line, err=True)
    except OSError:
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd stopping a unit, `kill PID`, a timeout) or SIGHUP (the terminal closed)
    in the console command: raised where the process is, as Ctrl-C's KeyboardInterrupt is, so
    every atomic write removes its temp file and the command ends like an interrupted one (exit
    143, 129). Commands that stop gracefully on SIGTERM (watch, send daemon) install their own
    handler."""


class _signals:
    terminated = 0  # the SIGTERM (SIGHUP) that arrived: an engine may report it as its own interruption
    pending = 0  # a signal that arrived inside an import, raised once the import has ended
    wait = 0.0  # seconds until the pending signal is looked at again


def _terminate(signum, frame):
    if _importing(frame):
        _hold(signum)
        return
    _signals.terminated = signum
    raise Terminated()


def _importing(frame) -> bool:
    """Whether the main thread is inside an import. An exception raised there by a signal handler
    can land inside a native library's initialisation (DuckDB's nanobind creating its enums, at
    `import duckdb`), which aborts it with "Critical nanobind error" and a traceback instead of
    ending the command as interrupted. Imports take milliseconds: the signal waits for the end."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _hold(signum: int) -> None:
    """Keep the signal (the first of several) and look again in 10 ms, then 20, 40, up to 0.2 s,
    by SIGALRM: no thread and no re-sent signal, so a process starved of CPU (a loaded machine, a
    nice'd job) spends next to nothing waiting and its import goes on."""
    import signal

    if not _signals.pending:
        _signals.pending = signum
        _signals.wait = 0.01
        signal.signal(signal.SIGALRM, _raise_held)
        signal.setitimer(signal.ITIMER_REAL, _signals.wait)


def _raise_held(alarm, frame):
    import signal

    if _importing(frame):
        _signals.wait = min(_signals.wait * 2, 0.2)
        signal.setitimer(signal.ITIMER_REAL, _signals.wait)
        return
    signum, _signals.pending = _signals.pending, 0
    _terminate(signum, frame)


def install_signal_handlers() -> None:
    """The command's handlers (in place of pipeline.core.signals' start-up ones, which end the process
    at once): SIGTERM and SIGHUP end the command as Ctrl-C does (Terminated), and neither cuts an
    import short. A signal the process was started ignoring (nohup) stays ignored. Ctrl-C gets
    Python's own handler (KeyboardInterrupt at once). (`ingest -` on a terminal seemed to hang past
    60 s after Ctrl-C in whole-suite runs: those runs were started in the background, with SIGINT
    ignored, which the commands they started inherited; tests/conftest.py now starts each test
    with it not ignored.)"""
    import signal

    for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal or ssh session went away
        current = signal.getsignal(signum)
        if current == signal.SIG_DFL or sigphase.ours(current):  # SIG_IGN (nohup): left as it is
            signal.signal(signum, _terminate)
    if sigphase.ours(signal.getsignal(signal.SIGINT)):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupted_query(exc: BaseException) -> bool:
    """DuckDB's answer to Ctrl-C or SIGTERM during a query: it catches the KeyboardInterrupt the
    signal raised and raises `RuntimeError: Query interrupted` (InterruptException in newer
    versions) in its place."""
    return (type(exc).__name__ == "InterruptException"
            or (type(exc) is RuntimeError and str(exc).strip().startswith("Query interrupted")))


def interrupted(ctx, terminated: int) -> None:
    """Ctrl-C (or `terminated`, the number of the SIGTERM or SIGHUP that arrived): what was
    committed stays (every write is atomic, positions go with it, temp files are removed on the
    way out); exit 130 (143, 129) as a shell's own commands do, not click's "Aborted!" with 1."""
    word = "Terminated" if terminated else "Interrupted"
    say_error_line(f"\n{word}: what was stored before stays; run the command again to go on.")
    ctx.exit(128 + terminated if terminated else EX_INTERRUPTED)


def no_empty_name(value: str | None, what: str) -> None:
    """UsageError for a file name given as "" (an unset shell variable: `--config "$CONF"`), which
    would otherwise be read as the current directory and answered with `. is a directory`."""
    if value is not None and str(value) == "":
        raise click.UsageError(f"{what} is empty: give a file name (an unset shell variable?)")


def nul_in_argument(exc: ValueError) -> Exception:
    """A NUL character in a file name (click's Path checks, os.stat) is a usage error; a real
    command line cannot carry one, a caller in Python can. Other ValueErrors are returned as they are."""
    if "null byte" in str(exc):
        return click.UsageError("an argument holds a NUL character: file names and options cannot")
    return exc


# The environment variables of the global options (their values reach the commands as arguments do).
OPTION_ENV = ("MAILHYGIENE_CONFIG", "MAILHYGIENE_DATA_DIR", "MAILHYGIENE_TIMEZONE")


def check_utf8_arguments(args) -> None:
    """UsageError (exit 2, before anything is read or written) when an argument, or the value of
    a global option's environment variable, is not UTF-8: Python hands such bytes on as lone
    surrogates (a Shift_JIS or Latin-1 file name), which no file the tool writes (Parquet, JSON,
    CSV) and no DuckDB query can carry, so the command would fail half-way with an encoding error."""
    given = [(f"argument {i}", a) for i, a in enumerate(args, 1) if isinstance(a, str)]
    given += [(f"${name}", os.environ[name]) for name in OPTION_ENV if name in os.environ]
    for where, value in given:
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            shown = os.fsencode(value).decode("ascii", "backslashreplace") if _fs_roundtrips(value) else printable(value)
            raise click.UsageError(
                f"{where} '{shown}' is not UTF-8 text (a file name in another encoding, e.g. Shift_JIS?): "
                "mailhygiene reads names and text as UTF-8. Rename the file (e.g. `convmv -f sjis -t utf8 "
                "--notest FILE`), or give a log on standard input (`mailhygiene ingest - < FILE`)")


def _fs_roundtrips(value: str) -> bool:
    try:
        os.fsencode(value)
        return True
    except UnicodeError:
        return False


EX_SOFTWARE = 70  # sysexits.h: internal software error
EX_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
EX_TERMINATED = 143  # 128 + SIGTERM
DEBUG_ENV = "MAILHYGIENE_DEBUG"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (an `Error:` line is exactly one line on stderr): line
    breaks become ` / `, other control characters (a NUL, a vertical tab in an argument) their
    escape, so the line shows what was typed and a terminal or a cron mail shows it whole."""
    text = str(exc).strip().replace("\r\n", "\n").replace("\r", "\n")
    parts = [p.strip() for p in text.split("\n") if p.strip()]
    return printable(" / ".join(parts) or type(exc).__name__)


def printable(text: str) -> str:
    """`text` with each control character (NUL, vertical tab, ESC ...) written as its escape;
    tabs and spaces (the ideographic one too) kept."""
    import unicodedata

    return "".join(ch if ch.isprintable() or ch == "\t" or unicodedata.category(ch) == "Zs"
                   else repr(ch)[1:-1] for ch in text)


def internal_error(ctx, exc: Exception) -> None:
    """An exception no library code meant for the operator: a bug. One `Error: internal error`
    line and exit status 70, or with MAILHYGIENE_DEBUG=1 the traceback as well."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        import sys
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"Error: internal error: {type(exc).__name__}: {one_line(exc)} (please report; run with "
               f"{DEBUG_ENV}=1 for the traceback)", err=True)
    ctx.exit(EX_SOFTWARE)


pass_app = click.make_pass_decorator(AppContext)


def _check_zone(ctx, param, value):
    """--timezone (or MAILHYGIENE_TIMEZONE) must name a zone: a bad one is a usage error (exit 2)
    before any command runs, as for every other bad option value."""
    if value is None:
        return None
    from ..core.config import zone
    from ..core.errors import ConfigError

    try:
        zone(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              envvar="MAILHYGIENE_CONFIG", show_envvar=True,
              help="TOML config file. Default: ./mailhygiene.toml when present, else "
                   "/etc/mailhygiene/mailhygiene.toml when present.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="MAILHYGIENE_DATA_DIR", show_envvar=True,
              help="Where events, the suppression list and reports live (config: data_dir): a new "
                   "or empty directory, or one mailhygiene made; a directory holding other files is "
                   "refused. E.g. --data-dir /var/lib/mailhygiene")
@click.option("--timezone", default=None, metavar="ZONE", callback=_check_zone,
              envvar="MAILHYGIENE_TIMEZONE", show_envvar=True,
              help="IANA zone of syslog clocks and of calendar days, e.g. Asia/Tokyo "
                   "(config: timezone; default: this machine's zone).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems, so cron mails only when something is wrong "
                   "(clean, ingest, suppress, report, prune, export, suppression add|release|repair; "
                   "see each command's --help).")
@click.option("--lang", type=click.Choice(["en", "ja"]), default=None,
              help="Language of the terminal summaries and the report (ja = 日本語). "
                   "Default: config report.lang (en).")
@click.option("--init-data-dir", is_flag=True,
              help="Start a new data dir even where one held data before (it is missing or empty now: "
                   "without this, a command that would write there stops, as its volume may not be "
                   "mounted). For a data dir deleted or moved on purpose.")
@click.version_option(__version__, prog_name="mailhygiene")
@click.pass_context
def cli(ctx, config_path, data_dir, timezone, quiet, lang, init_data_dir):
    """Keep bulk mail to Japanese mobile carriers deliverable.

    \b
    Typical flow:
      mailhygiene ingest /var/log/mail.log*      # logs -> classified events (Parquet)
      mailhygiene suppress                        # multi-day rule -> suppression list
      mailhygiene export suppression.csv --excel  # the list, with evidence
      mailhygiene clean                           # all of the above, nightly from cron

    Commands that write the data dir must run as its owner (sudo -u mailhygiene mailhygiene ...).
    """
    if _OWN_SIGNALS:  # the command starts: its own handlers (pipeline/core/signals.py: the phases)
        install_signal_handlers()
        sigphase.test_pause("command")  # (test-only)
    no_empty_name(config_path, "--config (or $MAILHYGIENE_CONFIG)")
    ctx.obj = AppContext(config_path, data_dir, timezone, quiet, lang, init_data_dir)
    ctx.obj.writes, ctx.obj.command_args = ctx.meta.get(COMMAND_META, (False, []))


_CONSOLE = False  # set by main(): this process is the `mailhygiene` command, not a library's or a test's
_OWN_SIGNALS = False  # set by main(): the signal handlers are this process's to switch (never a test's)


@contextmanager
def start_up(batch: bool = False):
    """A command's imports of its stage and set-up (numpy, pyarrow, the config, the classifier)
    with the cyclic garbage collector off, their objects frozen after (gc.freeze: no later pass
    examines them). They live to the end of the process, so the collector's ~70 passes over them
    during the imports of an ingest free nothing (a few hundred objects): 7.5 ms of CPU of a small
    ingest's 0.17 s (BENCHMARKS.md); the later full collections of a large one skip them too. Only
    in the `mailhygiene` process itself (main()): a library user's or a test's collector is left
    alone (freezing would keep whatever garbage that process has at that moment). `batch`: a
    command that reads a log to its end and exits (ingest) also keeps the blocks it frees for reuse
    (pipeline/core/allocator.py), again only in the `mailhygiene` process."""
    if _CONSOLE and batch:
        from ..core.allocator import tune_for_batch

        tune_for_batch()
    if not _CONSOLE or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    """The console script: the command, then a quick exit (see _exit_now)."""
    global _CONSOLE, _OWN_SIGNALS
    _CONSOLE = _OWN_SIGNALS = True
    sigphase.end_at_once()  # until the command starts (pipeline/core/signals.py; already so from pipeline.console.main())
    sigphase.test_stacks()
    _fill_closed_std_fds()
    try:
        cli(prog_name="mailhygiene")
    except SystemExit as exc:
        _exit_now(exc.code)
    _exit_now(0)


def _fill_closed_std_fds() -> None:
    """Started with standard input, output or error closed (`mailhygiene ... >&-`, a daemon's
    `exec >&-`): /dev/null takes the descriptor, so no file the command opens later (a Parquet
    file, the queue database) becomes descriptor 1 or 2 and receives what is printed. Python
    leaves sys.stdout (sys.stderr) None then: prints go nowhere, `export -` refuses."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdin is None:
        sys.stdin = ClosedStdin()


class ClosedStdin:
    """sys.stdin of a process started with standard input closed (`<&-`): not a terminal, and
    reading it (`ingest -`, `intake`, `bounces`, `--from-file -`) is an Error saying so instead of
    an AttributeError on None."""

    def __init__(self):
        self.buffer = self

    def isatty(self) -> bool:
        return False

    def _closed(self, *args, **kwargs):
        from ..core.errors import InputError

        raise InputError("standard input is closed: give the input on it (... < FILE) or name a file")

    read = read1 = readline = readlines = readinto = peek = fileno = _closed

    def __iter__(self):
        return self._closed()


def _exit_now(code) -> None:
    """Exit with `code` as sys.exit would, without the interpreter's teardown: freeing every
    object and module one by one costs a finished ingest 0.05-0.1 s (BENCHMARKS.md), a third of
    the fixed cost of a small run. Only when the command has left no other thread running (its
    work is then done: every file it wrote is closed and fsync'd) and after the atexit handlers
    and a flush of stdout and stderr; otherwise the ordinary exit."""
    import threading

    if threading.active_count() > 1:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        print(code, file=sys.stderr)
        status = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with that descriptor closed (_fill_closed_std_fds)
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there
            pass
    os._exit(status)


# ---------------------------------------------------------------- config
@cli.group()
def config():
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def config_show(app, as_json):
    """Print the effective configuration (defaults <- file <- options); secrets are masked.

    The first line names the config file read (or none); data_dir is shown resolved.

    \b
    Examples:
      mailhygiene config show
      sudo -u mailhygiene mailhygiene config show      # what the timers and cron see
      mailhygiene --config central.toml config show --json | jq .rule
    """
    import json

    from ..core.config import effective_values, render_toml

    cfg = app.cfg
    values = effective_values(cfg, mask_secrets=True)
    if as_json:
        click.echo(json.dumps(values, indent=2, ensure_ascii=False))
    else:
        src = str(cfg.source) if cfg.source else "(none: built-in defaults)"
        click.echo(f"# config file: {src}")
        click.echo(render_toml(values), nl=False)


cli.lazy_commands = COMMANDS
cli.read_only = READ_ONLY
