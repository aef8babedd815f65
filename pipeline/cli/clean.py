"""`mailhygiene clean`: the nightly job (ingest the sources, suppress, export, report)."""

from __future__ import annotations

import click

from .terminal import AS_OF, holds_no_store, json_option, lang_option


def ingest_problems(path, summary, L=None) -> list[str]:
    """What in an ingest summary needs an operator: rejected lines, unrecognised files."""
    from ..report.labels import labels

    L = L or labels("en")
    d = summary.as_dict()
    out = []
    if d["lines_rejected"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d["rejected_by_reason"].items()))
        out.append(L("cli.problem_rejected", path=path, n=d["lines_rejected"], reasons=reasons)
                   + (L("cli.problem_samples", file=d["rejects_file"]) if d["rejects_file"] else ""))
    unrecognised = [f["path"] for f in d["files"] if f["format"] == "unrecognised"]
    if unrecognised:
        out.append(L("cli.problem_unrecognised", path=path, files=", ".join(unrecognised)))
    return out


def ingest_summary_line(summary, L) -> str:
    d = summary.as_dict()
    return L("cli.ingest_summary", files=len(d["files"]), lines=d["lines"], events=d["events_written"],
             stored=d["already_stored"], rejected=d["lines_rejected"])


@click.command("clean")
@click.option("--as-of", type=AS_OF, default=None, metavar="DATE", help="As for `suppress` (default: now).")
@click.option("--force", is_flag=True, help="Apply the rule even when the guard refuses.")
@click.option("--allow-shrink", is_flag=True,
              help="Replace the export even when this night's list would drop most of its addresses without "
                   "releasing them (refused by default: the data dir looks unmounted or moved).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar of the ingest step (default: on a terminal, for large inputs).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems (rejected or unrecognised log lines, a source matching no file, "
                   "a guard overridden by --force, errors): cron then mails only when something is wrong.")
@json_option("Print the run's key figures as JSON (README \"Scripting\"): lines, events, rejects, "
             "new suppressions, export path and rows, report path.")
@lang_option
@click.pass_obj
def clean_cmd(app, as_of, force, progress, quiet, as_json, lang, allow_shrink):
    """The nightly job: ingest new log lines, run the rule, write the export and report.

    Reads the [[sources]] of the config (rotated and .gz files included; what was read before
    is skipped). Takes a lock, so overlapping runs are refused. Exit status: 0 done,
    1 error, 3 guard refused the rule (nothing applied).

    The export is not replaced (Error, exit 1, no report) when this night's list would drop
    more than half of the addresses the export held and the list's history shows no releases
    of them: a data dir whose disk is not mounted, or that moved, starts an empty list, and a
    CRM importing its export would mail the suppressed addresses again. Mount or restore the
    data dir; if the smaller list is right, run once with --allow-shrink.

    \b
    Example (cron, 03:15 every night; prints nothing unless something is wrong):
      15 3 * * *  /opt/mailhygiene/.venv/bin/mailhygiene --config /etc/mailhygiene/mailhygiene.toml clean --quiet
    Scripts:
      mailhygiene clean --json | jq .new_suppressions
    A new data dir on purpose (its first list is smaller than the export published before):
      mailhygiene clean --allow-shrink
    """
    from ..jobs.clean import clean, clean_result_json
    from .suppression import guard_problems, print_rule_result

    app.quiet = app.quiet or quiet
    cfg = app.cfg
    L = app.labels(lang)
    silent = app.quiet or as_json  # --json: stdout carries the document alone; problems still go to stderr
    if silent:
        progress = False

    def on_step(name, value):
        if name == "ingested":
            path, summary = value
            if silent:
                for line in ingest_problems(path, summary, L):
                    app.problem(line)
            elif L.lang == "en":
                from .ingest import print_ingest_summary  # here: `clean --help` loads no numpy

                click.echo(L("cli.ingest", path=path))
                print_ingest_summary(summary)
            else:
                click.echo(L("cli.ingest", path=path))
                click.echo(ingest_summary_line(summary, L))
                for line in ingest_problems(path, summary, L):
                    click.echo(line, err=True)
        elif name == "watch_running":
            if not silent:
                click.echo(L("cli.ingest_watch"))
        elif name == "no_sources":
            if not silent:
                click.echo(L("cli.ingest_sender_only"))
        elif name == "source_empty":
            if silent:
                app.problem(L("cli.problem_no_files", path=value))
            else:
                click.echo(L("cli.ingest_no_files", path=value))
        elif name == "sender_events":
            if value and not silent:
                click.echo(L("cli.sender_events", n=value))
        elif name == "rule":
            if not silent:
                click.echo(L("cli.suppress"))
                print_rule_result(cfg, value, L)
            else:
                # only reachable with --force: the guard's objections were overridden
                for line in guard_problems(value, L):
                    app.problem(line)
        elif name == "lake" and value is not None:
            if not silent:
                click.echo(L("cli.lake"))
                click.echo(L("cli.lake_uploaded", files=value.uploaded, bytes=value.bytes,
                             already=value.already_there))
        elif name == "exported":
            if not silent:
                click.echo(L("cli.export"))
                click.echo(L("cli.export_path", path=value))
        elif name == "report":
            if not silent:
                click.echo(L("cli.report"))
                click.echo(L("cli.report_path", path=value))

    from ..core.errors import GuardTripped

    started_empty = holds_no_store(cfg.data_dir)
    try:
        result = clean(cfg, as_of=as_of, force=force, progress=progress, lang=app.language(lang), on_step=on_step,
                       allow_shrink=allow_shrink)
    except GuardTripped as exc:
        # the night's document still goes to stdout (`clean --json > last-run.json` from cron):
        # the refusal is the night most worth a record; the Error line and exit 3 follow
        if started_empty:
            app.problem(L("cli.problem_new_data_dir", path=cfg.data_dir))
        if as_json and getattr(exc, "clean_result", None) is not None:
            app.print_json(clean_result_json(exc.clean_result, cfg))
        raise
    if started_empty:
        # a first night, or a data dir whose volume is not mounted (or that moved): the job
        # cannot tell them apart, and in the second case the opt-outs added by hand are gone
        # from this night's list and export; never a silent good night
        app.problem(L("cli.problem_new_data_dir", path=cfg.data_dir))
    if as_json:
        app.print_json(clean_result_json(result, cfg))
    if result.sources_without_files and not result.ingest and not result.watch_running:
        # every log source came up empty: a moved log or a mistyped path, which a nightly job
        # that exits 0 would hide from its monitoring for as long as it lasts
        from ..core.errors import InputError

        paths = ", ".join(result.sources_without_files)
        raise InputError(f"no [[sources]] path matches a file ({paths}): no log was read. The rule, export and "
                         "report ran on the events stored before; check those paths (a moved or renamed log?)")
