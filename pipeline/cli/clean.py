"""`mailhygiene clean`: the nightly job (ingest the sources, suppress, export, report)."""

from __future__ import annotations

import click

from .ingest import print_ingest_summary
from .suppression import print_rule_result


@click.command("clean")
@click.option("--as-of", default=None, metavar="DATE", help="As for `suppress` (default: now).")
@click.option("--force", is_flag=True, help="Apply the rule even when the guard refuses.")
@click.option("--progress/--no-progress", default=None)
@click.pass_obj
def clean_cmd(app, as_of, force, progress):
    """The nightly job: ingest new log lines, run the rule, write the export and report.

    Reads the [[sources]] of the config (rotated and .gz files included; what was read before
    is skipped). Takes a lock, so overlapping runs are refused. Exit status: 0 done,
    1 error, 3 guard refused the rule (nothing applied).

    \b
    Example (cron, 03:15 every night):
      15 3 * * *  mailhygiene --config /etc/mailhygiene.toml clean
    """
    from ..jobs.clean import clean

    def on_step(name, value):
        if name == "ingested":
            path, summary = value
            click.echo(f"== ingest {path}")
            print_ingest_summary(summary)
        elif name == "watch_running":
            click.echo("== ingest skipped: a live `mailhygiene watch` owns log ingestion for this data dir")
        elif name == "source_empty":
            click.echo(f"== ingest {value}: no files match (skipped)")
        elif name == "rule":
            click.echo("== suppress")
            print_rule_result(app.cfg, value)
        elif name == "exported":
            click.echo(f"== export\nsuppression CSV: {value}")
        elif name == "report":
            click.echo(f"== report\nreport: {value}")

    clean(app.cfg, as_of=as_of, force=force, progress=progress, on_step=on_step)
