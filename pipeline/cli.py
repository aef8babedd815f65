"""The `mailhygiene` command: a thin click layer over the library.

Each command turns options into one library call and prints the result. Library errors
(MailHygieneError) become a single `Error: …` line and exit status 1.
"""

from __future__ import annotations

import json

import click

from . import __version__
from .config import load_config, render_toml
from .errors import MailHygieneError


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
        return self._cfg


class Group(click.Group):
    """Turns MailHygieneError into `Error: …` + exit 1, never a traceback."""

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
    """Print the effective configuration (defaults <- file <- options)."""
    cfg = app.cfg
    values = dict(cfg.values)
    values["timezone"] = cfg.timezone_name
    values["data_dir"] = str(cfg.data_dir)
    if as_json:
        click.echo(json.dumps(values, indent=2, ensure_ascii=False))
    else:
        src = str(cfg.source) if cfg.source else "(none: built-in defaults)"
        click.echo(f"# config file: {src}")
        click.echo(render_toml(values), nl=False)


# Commands defined in other modules are registered below, one line each.
from .cli_ingest import classify_cmd, ingest_cmd  # noqa: E402

from .cli_suppression import clean_cmd, export_cmd, suppress_cmd, suppression_group  # noqa: E402

cli.add_command(ingest_cmd)
cli.add_command(classify_cmd)
cli.add_command(suppress_cmd)
cli.add_command(suppression_group)
cli.add_command(export_cmd)
cli.add_command(clean_cmd)

from .sender.cli import intake, send  # noqa: E402

cli.add_command(send)
cli.add_command(intake)

from .preflight.cli import doctor  # noqa: E402

cli.add_command(doctor)

from .cli_report import report_cmd  # noqa: E402

cli.add_command(report_cmd)

from .cli_watch import watch_cmd  # noqa: E402

cli.add_command(watch_cmd)
