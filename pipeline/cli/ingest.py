"""`mailhygiene ingest`: read MTA logs into the event store (thin: options -> one library call -> output)."""

from __future__ import annotations

import json

import click

from ..core.errors import InputError
from ..core.vocabulary import MTA_FORMATS

FORMATS = ("auto", *MTA_FORMATS)  # the parsers' registry (pipeline.ingest.parsers.FORMATS; a test holds them equal), without importing it


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_ingest_summary(summary, as_json: bool = False) -> None:
    d = summary.as_dict()
    if as_json:
        click.echo(json.dumps(d, indent=2, ensure_ascii=False))
        print_ingest_warnings(summary)  # on stderr: stdout carries the document alone
        return
    rate = d["lines"] / d["seconds"] if d["seconds"] else 0
    click.echo(f"files:            {len(d['files'])}")
    for f in d["files"]:
        click.echo(f"  {f['path']}  [{f['format']}]  {f['lines']} lines, {f['events']} events")
    click.echo(f"lines read:       {d['lines']}  ({rate:,.0f} lines/s)")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(d["written_by_status"].items())) or "none"
    click.echo(f"events written:   {d['events_written']}  ({statuses})")
    if d["already_stored"]:
        click.echo(f"already stored:   {d['already_stored']}  (seen in an earlier run: not added again)")
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(d["rejected_by_reason"].items()))
    click.echo(f"lines rejected:   {d['lines_rejected']}" + (f"  ({reasons})" if reasons else ""))
    if d["recovered_from_rejected"]:
        click.echo(f"  deliveries recovered from rejected lines: {d['recovered_from_rejected']}")
    if d["rejects_file"]:
        click.echo(f"  samples kept in {d['rejects_file']}")
    if d["local_deliveries"]:
        click.echo(f"local deliveries: {d['local_deliveries']}  (to a local user, program or file such as "
                   "root or |procmail: no address, not stored)")
    if d["other_lines"]:
        click.echo(f"other programs:   {d['other_lines']} lines of no MTA in files of several (counted, not read)")
    print_ingest_warnings(summary)


def print_ingest_warnings(summary) -> None:
    """What the operator must act on, on stderr (with or without --json)."""
    if summary.private:
        click.echo("note: a live `mailhygiene watch` owns this data dir's read positions: these files were read "
                   "from their start and nothing was marked as read (the store kept one copy of each line)", err=True)
    for f in summary.refused:
        click.echo(f"Warning: {f['path']}: {f['problem']}: not read and not marked as read "
                   f"({f.get('hint') or 'give the right --format, or check the file'})", err=True)
    for f in summary.damaged:
        click.echo(f"Warning: {f['path']}: {f['damaged']}", err=True)
    for pattern in summary.unmatched:
        click.echo(f"Warning: {pattern} matched no file (check the pattern; the other paths were read)", err=True)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="MTA of the logs; auto detects it per file.")
@click.option("--year", type=click.IntRange(1970, 9999), default=None,
              help="Year of the first syslog line of each file (they carry none); a log that runs on from "
                   "December into January goes on into the next year. Default: inferred from each file's mtime.")
@click.option("--reread", is_flag=True,
              help="Ignore saved positions and read the files from the start (stored events are still not duplicated).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for large inputs).")
@click.pass_obj
def ingest_cmd(app, paths, fmt, year, reread, as_json, progress):
    """Read mail logs (plain, .gz, .bz2 or .xz; - for standard input) into the event store.

    \b
    Examples:
      mailhygiene ingest /var/log/mail.log /var/log/mail.log.1 /var/log/mail.log.*.gz
      mailhygiene ingest --format qmail /var/log/qmail/current
      mailhygiene --timezone Asia/Tokyo ingest --year 2024 old/maillog-2024*.gz
      journalctl -u postfix -o short-iso | mailhygiene ingest --format postfix -

    Globs are expanded; files are read oldest first, each from where the last run stopped.
    Re-ingesting a file adds nothing twice. With the global --quiet only problems are printed (stderr). Bad lines are counted and sampled under
    DATA_DIR/rejects/. A file that is not of the format given (or of no MTA under auto) is
    not read nor marked as read, and the exit status is 1. A damaged compressed file is read up to the
    damage, which is reported (exit status 1).
    """
    import sys

    from . import no_empty_name, start_up

    for path in paths:
        no_empty_name(path, "a PATH")

    if "-" in paths and _is_terminal(sys.stdin):  # else it waits without a word, as if hung
        click.echo("ingest: reading log lines from the terminal (standard input): end with Ctrl-D, or pipe a log "
                   "in (journalctl -u postfix -o short-iso | mailhygiene ingest -)", err=True)
    with start_up(batch=True):
        from ..ingest.engine import Engine

        engine = Engine.from_config(app.cfg, year=year, progress=progress)
    summary = engine.ingest(paths, fmt=fmt, use_positions=not reread)
    if app.quiet and not as_json:  # cron: only what the operator must act on (stderr)
        print_ingest_warnings(summary)
    else:
        print_ingest_summary(summary, as_json)
    if app.cfg.store.url:  # [store] url: this node uploads what the run stored (docs/scale-out.md)
        from ..lake.node import after_commit

        after_commit(app.cfg, strict=True)
    if summary.refused:
        n = len(summary.refused)
        raise InputError(f"{n} of {len(summary.files)} file{'s' if n > 1 else ''} not read (see the warning"
                         f"{'s' if n > 1 else ''} above): nothing in {'them' if n > 1 else 'it'} was marked as read")
    if summary.damaged:
        n = len(summary.damaged)
        raise InputError(f"{n} of {len(summary.files)} file{'s' if n > 1 else ''} could not be read to the end "
                         f"(see the warning{'s' if n > 1 else ''} above)")
