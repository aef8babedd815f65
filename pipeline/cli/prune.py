"""`mailhygiene prune`: delete whole days of events older than a date (thin: plan, confirm, delete)."""

from __future__ import annotations

import sys

import click

from .terminal import DAY


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


@click.command("prune")
@click.option("--before", type=DAY, default=None, metavar="DATE",
              help="Delete the event days before this UTC day (YYYY-MM-DD); DATE itself is kept.")
@click.option("--keep-days", type=click.IntRange(min=1, max=36_600), default=None, metavar="N",
              help="Instead of --before: keep the last N days (DATE = today, UTC, minus N days); "
                   "for timers and cron.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--yes", "-y", "assume_yes", is_flag=True,
              help="Do not ask for confirmation (needed without a terminal, e.g. from cron).")
@click.option("--force", is_flag=True,
              help="Allow a DATE inside the suppression rule's current window (the rule loses errors it still "
                   "counts), and on a node of a lake days not uploaded yet (the lake loses them).")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems (with --yes, for cron).")
@click.pass_obj
def prune_cmd(app, before, keep_days, dry_run, assume_yes, force, quiet):
    """Delete whole days of events older than a date.

    Each day partition (<data_dir>/events/date=YYYY-MM-DD/) before DATE goes as a whole; the
    days are listed first, with their files, events and size, and you confirm. A DATE inside the
    rule's current window (the last rule.window_days local days) is refused unless --force, and
    so, on a node of a lake ([store] url), are days with files not uploaded to the lake yet.
    The suppression list keeps its entries and their evidence; `suppression show` then lists
    only the attempts still stored.

    \b
    Examples:
      mailhygiene prune --before 2026-01-01 --dry-run
      mailhygiene prune --before 2026-01-01
      sudo -u mailhygiene mailhygiene prune --keep-days 400 --yes --quiet
    """
    from ..core.errors import InputError
    from ..lake.upload import not_uploaded
    from ..store.prune import check_plan, days_ago, plan_prune, prune

    app.quiet = app.quiet or quiet
    if (before is None) == (keep_days is None):
        raise InputError("give --before DATE or --keep-days N (one of them)")
    day = before if before is not None else days_ago(keep_days)
    cfg = app.stored_cfg()
    plan = plan_prune(cfg.data_dir, day, window_days=cfg.rule.window_days, tz=cfg.tz,
                      not_uploaded=(lambda: not_uploaded(cfg)) if cfg.store.url else None)
    check_plan(plan, force=force)
    if not plan.doomed:
        app.say(f"no event days before {day} in {cfg.data_dir / 'events'}: nothing to delete")
        return
    if plan.in_window:
        app.problem(f"warning: --force: deleting days inside the rule window (from {plan.window_start} on)")
    if plan.not_uploaded:
        app.problem(f"warning: --force: deleting {len(plan.not_uploaded)} day(s) not uploaded to the lake yet")
    if not app.quiet or not assume_yes:
        click.echo(f"event days before {day} (UTC) in {cfg.data_dir / 'events'}:")
        for part in plan.doomed:
            click.echo(f"  {part.day}  {part.files:4} files  {part.rows:>12,} events  {_size(part.bytes):>10}")
        kept = (f"{plan.kept_days[0]} .. {plan.kept_days[-1]} ({len(plan.kept_days)} days)"
                if plan.kept_days else "none")
        click.echo(f"to delete: {len(plan.doomed)} days, {plan.files} files, {plan.rows:,} events, "
                   f"{_size(plan.bytes)}; kept: {kept}")
    if dry_run:
        click.echo("dry run: nothing deleted")
        return
    if not assume_yes:
        if not sys.stdin.isatty():
            raise InputError("prune asks before it deletes, and there is no terminal to ask on: "
                             "check the list with --dry-run, then add --yes")
        if not click.confirm(f"Delete these {len(plan.doomed)} days of events?", default=False):
            click.echo("nothing deleted")
            return
    removed = prune(plan, force=force)
    app.say(f"deleted {len(removed)} days ({sum(p.rows for p in removed):,} events, "
            f"{_size(sum(p.bytes for p in removed))})")
