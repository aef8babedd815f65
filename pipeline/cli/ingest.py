"""`mailhygiene ingest`: read MTA logs into the event store (thin: options -> one library call -> output)."""

from __future__ import annotations

import json

import click

from ..ingest.parsers import FORMATS


def print_ingest_summary(summary, as_json: bool = False) -> None:
    d = summary.as_dict()
    if as_json:
        click.echo(json.dumps(d, indent=2, ensure_ascii=False))
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
    unrecognised = [f["path"] for f in d["files"] if f["format"] == "unrecognised"]
    if unrecognised:
        click.echo("not recognised as Postfix, sendmail or qmail (use --format): " + ", ".join(unrecognised), err=True)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="MTA of the logs; auto detects it per file.")
@click.option("--year", type=int, default=None,
              help="Year of syslog lines (they carry none). Default: inferred from each file's mtime.")
@click.option("--reread", is_flag=True,
              help="Ignore saved positions and read the files from the start (stored events are still not duplicated).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for large inputs).")
@click.pass_obj
def ingest_cmd(app, paths, fmt, year, reread, as_json, progress):
    """Read mail logs (plain or .gz) into the event store.

    \b
    Examples:
      mailhygiene ingest /var/log/mail.log /var/log/mail.log.1 /var/log/mail.log.*.gz
      mailhygiene ingest --format qmail /var/log/qmail/current
      mailhygiene --timezone Asia/Tokyo ingest --year 2024 old/maillog-2024*.gz

    Globs are expanded; files are read oldest first. Re-ingesting a file adds nothing twice.
    Bad lines are counted and sampled under DATA_DIR/rejects/.
    """
    from ..ingest.engine import ingest

    summary = ingest(app.cfg, paths, fmt=fmt, year=year, use_positions=not reread, progress=progress)
    print_ingest_summary(summary, as_json)
    if app.cfg.store.url:  # [store] url: this node uploads its sealed files (docs/scale-out.md)
        from ..lake.node import after_commit

        after_commit(app.cfg, strict=True)
