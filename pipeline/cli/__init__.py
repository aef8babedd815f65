"""The `mailhygiene` command: a thin click layer over the library.

Each command turns options into one library call and prints the result. Library errors
(MailHygieneError) become a single `Error: …` line and exit status 1.
"""

from __future__ import annotations

import importlib
import json
import os

# numpy's OpenBLAS starts a thread per core that spins for a while: CPU that a command of this
# tool (no linear algebra anywhere) would take from its own threads. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Arrow's default pool (mimalloc) hands the pages of each freed block back and faults fresh ones
# in for the next: with malloc's pool an ingest of 1M Postfix lines peaks at about 200 MB
# instead of 310 MB, for the same speed (BENCHMARKS.md). Read when pyarrow is first imported.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import click

from .. import __version__
from ..core.config import effective_values, load_config, render_toml
from ..core.errors import MailHygieneError


class AppContext:
    """Carries global options; the config is loaded lazily so `--help` never touches files."""

    def __init__(self, config_path, data_dir, timezone):
        self.config_path = config_path
        self.data_dir = data_dir
        self.timezone = timezone
        self._cfg = None

    @property
    def cfg(self):
        if self._cfg is None:
            self._cfg = load_config(self.config_path, data_dir=self.data_dir, timezone=self.timezone)
            from ..classify import configure  # the config's [classify] phrases and providers
            configure(self._cfg.classify, self._cfg.carriers)
        return self._cfg


class Group(click.Group):
    """Turns MailHygieneError into `Error: …` + exit 1, never a traceback; loads the commands
    named in `lazy_commands` on first use (click's lazy-loading pattern)."""

    lazy_commands: dict[str, str] = {}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy_commands:
            module, _, attr = self.lazy_commands[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MailHygieneError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


pass_app = click.make_pass_decorator(AppContext)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config file. Default: ./mailhygiene.toml when present.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where events, the suppression list and reports live (config: data_dir).")
@click.option("--timezone", default=None, metavar="ZONE",
              help="IANA zone of syslog clocks and of calendar days, e.g. Asia/Tokyo "
                   "(config: timezone; default: this machine's zone).")
@click.version_option(__version__, prog_name="mailhygiene")
@click.pass_context
def cli(ctx, config_path, data_dir, timezone):
    """Keep bulk mail to Japanese mobile carriers deliverable.

    \b
    Typical flow:
      mailhygiene ingest /var/log/mail.log*      # logs -> classified events (Parquet)
      mailhygiene suppress                        # multi-day rule -> suppression list
      mailhygiene export suppression.csv --excel  # the list, with evidence
      mailhygiene clean                           # all of the above, nightly from cron
    """
    ctx.obj = AppContext(config_path, data_dir, timezone)


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
    cfg = app.cfg
    values = effective_values(cfg, mask_secrets=True)
    if as_json:
        click.echo(json.dumps(values, indent=2, ensure_ascii=False))
    else:
        src = str(cfg.source) if cfg.source else "(none: built-in defaults)"
        click.echo(f"# config file: {src}")
        click.echo(render_toml(values), nl=False)


# Commands defined in other modules, imported only when used (`mailhygiene ingest` need not load
# the DNS resolver of `doctor`, nor the sender): name -> "module:attribute".
LAZY_COMMANDS = {
    "ingest": "pipeline.cli.ingest:ingest_cmd",
    "classify": "pipeline.cli.classify:classify_cmd",
    "suppress": "pipeline.cli.suppression:suppress_cmd",
    "suppression": "pipeline.cli.suppression:suppression_group",
    "export": "pipeline.cli.suppression:export_cmd",
    "clean": "pipeline.cli.clean:clean_cmd",
    "send": "pipeline.cli.send:send",
    "intake": "pipeline.cli.send:intake",
    "bounces": "pipeline.cli.bounces:bounces_cmd",
    "doctor": "pipeline.cli.doctor:doctor",
    "report": "pipeline.cli.report:report_cmd",
    "watch": "pipeline.cli.watch:watch_cmd",
}
cli.lazy_commands = LAZY_COMMANDS
