"""`mailhygiene clean`: the nightly job (ingest the sources, suppress, export, report)."""

from __future__ import annotations

import click


def ingest_problems(path, summary) -> list[str]:
    """What in an ingest summary needs an operator: rejected lines, unrecognised files."""
    d = summary.as_dict()
    out = []
    if d["lines_rejected"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d["rejected_by_reason"].items()))
        out.append(f"ingest {path}: {d['lines_rejected']} lines rejected ({reasons})"
                   + (f"; samples in {d['rejects_file']}" if d["rejects_file"] else ""))
    unrecognised = [f["path"] for f in d["files"] if f["format"] == "unrecognised"]
    if unrecognised:
        out.append(f"ingest {path}: not recognised as Postfix, sendmail or qmail (set format in [[sources]]): "
                   + ", ".join(unrecognised))
    return out


@click.command("clean")
@click.option("--as-of", default=None, metavar="DATE", help="As for `suppress` (default: now).")
@click.option("--force", is_flag=True, help="Apply the rule even when the guard refuses.")
@click.option("--progress/--no-progress", default=None)
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems (rejected or unrecognised log lines, a source matching no file, "
                   "a guard overridden by --force, errors): cron then mails only when something is wrong.")
@click.pass_obj
def clean_cmd(app, as_of, force, progress, quiet):
    """The nightly job: ingest new log lines, run the rule, write the export and report.

    Reads the [[sources]] of the config (rotated and .gz files included; what was read before
    is skipped). Takes a lock, so overlapping runs are refused. Exit status: 0 done,
    1 error, 3 guard refused the rule (nothing applied).

    \b
    Example (cron, 03:15 every night; prints nothing unless something is wrong):
      15 3 * * *  /opt/mailhygiene/.venv/bin/mailhygiene --config /etc/mailhygiene/mailhygiene.toml clean --quiet
    """
    from ..jobs.clean import clean
    from .ingest import print_ingest_summary  # here, not at the top: `clean --help` loads no numpy
    from .suppression import print_rule_result

    app.quiet = app.quiet or quiet
    if app.quiet:
        progress = False

    def on_step(name, value):
        if name == "ingested":
            path, summary = value
            if app.quiet:
                for line in ingest_problems(path, summary):
                    app.problem(line)
            else:
                click.echo(f"== ingest {path}")
                print_ingest_summary(summary)
        elif name == "watch_running":
            app.say("== ingest skipped: a live `mailhygiene watch` owns log ingestion for this data dir")
        elif name == "source_empty":
            if app.quiet:
                app.problem(f"ingest {value}: no files match (check [[sources]] path)")
            else:
                click.echo(f"== ingest {value}: no files match (skipped)")
        elif name == "rule":
            if not app.quiet:
                click.echo("== suppress")
                print_rule_result(app.cfg, value)
            elif value.guard.tripped:
                # only reachable with --force: the guard's objections were overridden
                app.problem("suppress: the guard's objections were overridden by --force:")
                for reason in value.guard.reasons:
                    app.problem(f"  ! {reason}")
        elif name == "exported":
            app.say(f"== export\nsuppression CSV: {value}")
        elif name == "report":
            app.say(f"== report\nreport: {value}")

    clean(app.cfg, as_of=as_of, force=force, progress=progress, on_step=on_step)
