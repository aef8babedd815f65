"""The `mailhygiene` command: a thin click layer over the library.

Each command turns options into one library call and prints the result. Library errors
(MailHygieneError) become a single `Error: …` line and exit status 1.

Module map (one file per command group; COMMANDS below is the table of them):
  __init__     the group, global options (--config, --data-dir, --timezone, --quiet), `config show`,
               COMMANDS (name -> module and one-line help: `--help` lists commands without
               importing them) and READ_ONLY (commands that may run as any user)
  ingest       ingest               classify   classify        suppression  suppress, suppression, export
  clean        clean                report     report          watch        watch
  send         send, intake         doctor     doctor          prune        prune

Start-up: importing this module loads click and nothing of the stages (no pandas, numpy, pyarrow,
duckdb or dnspython); a command's module is imported only when that command runs
(tests/test_startup.py pins it).
"""

from __future__ import annotations

import importlib
import os
import shlex

# numpy's OpenBLAS starts a thread per core that spins for a while: CPU that a command of this
# tool (no linear algebra anywhere) would take from its own threads. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Arrow's default pool (mimalloc) hands the pages of each freed block back and faults fresh ones
# in for the next: with malloc's pool an ingest of 1M Postfix lines peaks at about 200 MB
# instead of 310 MB, for the same speed (BENCHMARKS.md). Read when pyarrow is first imported.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import click

from .. import __version__
from ..core.errors import MailHygieneError

# Every command defined outside this file: name -> ("module:attribute", one-line help). `--help`
# lists them from this table alone; a command's module is imported only when it runs (or its own
# --help is asked for). Keep the help line in step with the command's docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("pipeline.cli.ingest:ingest_cmd", "Read mail logs (plain or .gz) into the event store."),
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
    "doctor": ("pipeline.cli.doctor:doctor", "Preflight checks: the sending setup (DNS) and a message (.eml)."),
    "report": ("pipeline.cli.report:report_cmd",
               "Write per-carrier tables, charts and one self-contained HTML report."),
    "watch": ("pipeline.cli.watch:watch_cmd",
              "Follow the [[sources]] of the config and keep the event store current."),
}
# Backwards-compatible view of the table (name -> "module:attribute").
LAZY_COMMANDS = {name: target for name, (target, _) in COMMANDS.items()}

# Commands (or "group sub-command") that never create or change a file of the data dir: they may
# run as any user. Every other command that loads the config must run as the data dir's owner
# (pipeline.core.owner): a file it left owned by root would stop the service user's next run.
READ_ONLY = frozenset({"config", "classify", "doctor", "suppression list", "suppression show"})
COMMAND_META = "mailhygiene.command"  # ctx.meta key: (writes, [command, args...]) of this run


class AppContext:
    """Carries global options; the config is loaded lazily so `--help` never touches files.

    `quiet`: print only problems (commands use `say` for their normal output, `problem` for what
    must reach the operator, e.g. from cron). `writes`: the command may create files in the data
    dir, so loading the config also checks that we run as the data dir's owner.
    """

    def __init__(self, config_path, data_dir, timezone, quiet=False):
        self.config_path = config_path
        self.data_dir = data_dir
        self.timezone = timezone
        self.quiet = quiet
        self.writes = False
        self.command_args: list[str] = []  # the sub-command and its arguments, as typed
        self._cfg = None

    @property
    def cfg(self):
        if self._cfg is None:
            from ..core.config import load_config

            cfg = load_config(self.config_path, data_dir=self.data_dir, timezone=self.timezone)
            if self.writes:
                from ..core.owner import require_owner

                require_owner(cfg.data_dir, command=self.command_line())
            from ..classify import configure  # the config's [classify] phrases and providers

            configure(cfg.classify, cfg.carriers)
            self._cfg = cfg
        return self._cfg

    def command_line(self) -> str:
        """This run as a shell command line (for messages that say how to run it instead)."""
        words = ["mailhygiene"]
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

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MailHygieneError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


pass_app = click.make_pass_decorator(AppContext)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              envvar="MAILHYGIENE_CONFIG", show_envvar=True,
              help="TOML config file. Default: ./mailhygiene.toml when present, else "
                   "/etc/mailhygiene/mailhygiene.toml when present.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where events, the suppression list and reports live (config: data_dir).")
@click.option("--timezone", default=None, metavar="ZONE",
              help="IANA zone of syslog clocks and of calendar days, e.g. Asia/Tokyo "
                   "(config: timezone; default: this machine's zone).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems, so cron mails only when something is wrong "
                   "(clean; see each command's --help).")
@click.version_option(__version__, prog_name="mailhygiene")
@click.pass_context
def cli(ctx, config_path, data_dir, timezone, quiet):
    """Keep bulk mail to Japanese mobile carriers deliverable.

    \b
    Typical flow:
      mailhygiene ingest /var/log/mail.log*      # logs -> classified events (Parquet)
      mailhygiene suppress                        # multi-day rule -> suppression list
      mailhygiene export suppression.csv --excel  # the list, with evidence
      mailhygiene clean                           # all of the above, nightly from cron

    Commands that write the data dir must run as its owner (sudo -u mailhygiene mailhygiene ...).
    """
    ctx.obj = AppContext(config_path, data_dir, timezone, quiet)
    ctx.obj.writes, ctx.obj.command_args = ctx.meta.get(COMMAND_META, (False, []))


def main() -> None:
    cli(prog_name="mailhygiene")


# ---------------------------------------------------------------- config
@cli.group()
def config():
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def config_show(app, as_json):
    """Print the effective configuration (defaults <- file <- options); secrets are masked."""
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
