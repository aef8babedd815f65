"""CLI commands `suppress`, `suppression list|show|add|release|repair` and `export`: options in,
one call of pipeline.suppression, lines out."""

from __future__ import annotations

import click


def _local(cfg, value) -> str:
    if value is None:
        return "-"
    return value.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M")


def _text(value, default: str = "-") -> str:
    return default if value is None or value == "" else str(value)


def print_rule_result(cfg, result) -> None:
    rule = cfg.rule
    mode = "dry run: nothing written" if result.dry_run else ("applied" if result.applied else "nothing to add")
    click.echo(f"rule:             {rule.min_errors}+ counted errors on {rule.min_days}+ days "
               f"within {rule.window_days} days ({cfg.timezone_name}), up to {_local(cfg, result.as_of)}")
    click.echo(f"addresses marked: {result.marked} ({result.already_listed} already listed)")
    click.echo(f"new entries:      {len(result.new)}  [{mode}]")
    for rec in result.new:
        click.echo(f"  + {rec['address']:40} {_text(rec['carrier']):9} {_text(rec['reasons']):24} "
                   f"{rec['error_count']} errors on {rec['distinct_days']} days, "
                   f"{_local(cfg, rec['first_error'])} .. {_local(cfg, rec['last_error'])}")
    if not result.guard_checked and result.new:
        click.echo("guard:            not checked in a dry run (add --check-guard)")
    if result.guard.tripped:
        label = "guard (overridden by --force)" if result.forced else "guard WOULD refuse this run"
        click.echo(f"{label}:")
        for reason in result.guard.reasons:
            click.echo(f"  ! {reason}")


@click.command("suppress")
@click.option("--as-of", default=None, metavar="DATE",
              help="Evaluate history up to this moment: YYYY-MM-DD (end of that local day) or an ISO time. Default: now.")
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.option("--check-guard", is_flag=True,
              help="With --dry-run: also run the guard (one more pass over the events) and show its verdict.")
@click.option("--force", is_flag=True, help="Apply even when the guard refuses (a carrier block looks different from dead addresses: check first).")
@click.pass_obj
def suppress_cmd(app, as_of, dry_run, check_guard, force):
    """Run the multi-day rule and add dead addresses to the suppression list.

    An address is suppressed when, after its last successful delivery (and its last release),
    it has at least rule.min_errors counted errors (user unknown, host unknown, mailbox
    disabled or full) on rule.min_days different local days inside rule.window_days days.

    \b
    Examples:
      mailhygiene suppress --dry-run --check-guard
      mailhygiene --timezone Asia/Tokyo suppress --as-of 2026-11-20
    """
    from ..suppression.rule import run_rule
    from ..suppression.store import SuppressionStore

    cfg = app.cfg
    result = run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, as_of,
                      tz=cfg.timezone_name, dry_run=dry_run, force=force, check_guard_in_dry_run=check_guard)
    print_rule_result(cfg, result)


@click.group("suppression")
def suppression_group():
    """Inspect and edit the suppression list."""


@suppression_group.command("list")
@click.option("--limit", type=int, default=0, help="Show at most this many entries (0 = all).")
@click.pass_obj
def suppression_list(app, limit):
    """List suppressed addresses with carrier, reasons and when they were added.

    \b
    Example:
      mailhygiene suppression list
    """
    from ..suppression.store import entries

    listed = entries(app.cfg.data_dir, limit or None)
    click.echo(f"{len(listed)} suppressed address(es)")
    for rec in listed:
        note = f"  note: {rec['note']}" if rec["note"] else ""
        click.echo(f"{rec['address']:40} {_text(rec['carrier']):9} {_text(rec['reasons'] or rec['source']):24} "
                   f"added {_local(app.cfg, rec['added_at'])}{note}")


@suppression_group.command("show")
@click.argument("address")
@click.pass_obj
def suppression_show(app, address):
    """Explain an address: its entry, its history and every delivery attempt behind it.

    \b
    Example:
      mailhygiene suppression show taro.dead@docomo.ne.jp
    """
    from ..suppression.store import show

    cfg = app.cfg
    info = show(cfg.data_dir, address, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons)
    e = info["entry"]
    if e is None:
        click.echo(f"{info['address']}: not suppressed")
    else:
        click.echo(f"{info['address']}: SUPPRESSED ({e['source']}) since {_local(cfg, e['added_at'])}")
        if e["source"] == "rule":
            click.echo(f"  carrier {e['carrier']}, reasons {e['reasons']}: {e['error_count']} counted errors on "
                       f"{e['distinct_days']} days, {_local(cfg, e['first_error'])} .. {_local(cfg, e['last_error'])}")
            reply = _text(e['last_diagnostic'], '').replace("\n", " / ")
            click.echo(f"  last reply: dsn {_text(e['last_dsn'])} {reply}")
            click.echo(f"  rule: {e['rule']}")
        if e["note"]:
            click.echo(f"  note: {e['note']}")
    for rec in info["history"]:
        click.echo(f"  history: {_local(cfg, rec['at'])} {rec['action']}" + (f" ({rec['note']})" if rec["note"] else ""))
    attempts = info["events"]
    click.echo(f"delivery attempts: {len(attempts)}")
    for rec in attempts:
        counted = "*" if rec["counted"] else " "
        diag = (rec["diagnostic"] or "").replace("\n", " / ")
        click.echo(f" {counted} {rec['local_time']:%Y-%m-%d %H:%M:%S} {rec['mta']:8} {rec['status']:9} "
                   f"{_text(rec['reason']):18} {_text(rec['smtp_phase']):11} {diag[:110]}")
    click.echo("(* = counted error)")


@suppression_group.command("add")
@click.argument("address")
@click.option("--note", default=None, help="Why (kept in history).")
@click.pass_obj
def suppression_add(app, address, note):
    """Suppress an address by hand.

    \b
    Example:
      mailhygiene suppression add complainer@au.com --note "asked to stop, ticket 123"
    """
    from ..suppression.store import add

    add(app.cfg.data_dir, address, note, carriers=app.cfg.carriers)
    click.echo(f"added {address.strip().lower()}")


@suppression_group.command("release")
@click.argument("address")
@click.option("--note", default=None, help="Why (kept in history).")
@click.pass_obj
def suppression_release(app, address, note):
    """Take an address off the list: only counted errors after now count again, whatever
    --as-of a later `suppress` uses.

    \b
    Example:
      mailhygiene suppression release taro.dead@docomo.ne.jp --note "customer confirmed new phone"
    """
    from ..suppression.store import release

    e = release(app.cfg.data_dir, address, note)
    click.echo(f"released {e['address']}")


@suppression_group.command("repair")
@click.pass_obj
def suppression_repair(app):
    """Rebuild the list from its history after an interrupted write or a lost list file.

    Entries the history added come back with the evidence it kept; released ones go.

    \b
    Example:
      mailhygiene suppression repair
    """
    from ..suppression.store import repair

    before = repair(app.cfg.data_dir)
    if before.missing or before.stale:
        click.echo(f"repaired: {before.missing} entr(ies) restored from the history, {before.stale} released "
                   "entr(ies) removed")
    else:
        click.echo("the list agrees with its history: nothing to repair")


@click.command("export")
@click.argument("path", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--excel/--no-excel", default=None,
              help="CSV with a UTF-8 BOM so Excel (Japanese Windows) opens it without mojibake. Default: export.excel.")
@click.option("--allow-empty", is_flag=True, help="Write the file even when there is nothing to export.")
@click.option("--filtered", is_flag=True,
              help="Instead of the list: addresses refused by their own reception filter (指定受信・迷惑メール設定), "
                   "with carrier, count and last refusal, to ask them to allow the sending domain.")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="With --filtered: refusals of the last N days (default: export.filtered_days).")
@click.pass_obj
def export_cmd(app, path, fmt, excel, allow_empty, filtered, days):
    """Write the suppression list with its evidence (address first), or with --filtered the
    handset-filter list. PATH - writes to standard output.

    Text cells starting with =, +, -, @, a tab or a carriage return get a leading ' so
    spreadsheets never run them; the address column is a key and is never changed. Exits
    non-zero and writes nothing when there is nothing to export (unless --allow-empty) and
    refuses to replace anything but a regular file.

    \b
    Examples:
      mailhygiene export suppression.csv --excel
      mailhygiene export suppression.parquet --format parquet
      mailhygiene export --filtered filtered.csv
      mailhygiene export - | head
    """
    from ..suppression.export import export, export_filtered

    cfg = app.cfg
    if filtered:
        n = export_filtered(cfg.data_dir, path, cfg.export, tz=cfg.timezone_name, days=days, fmt=fmt,
                            excel=excel, allow_empty=allow_empty)
        what = "filtered address(es)"
    else:
        if days is not None:
            raise click.UsageError("--days goes with --filtered")
        n = export(cfg.data_dir, path, cfg.export, tz=cfg.timezone_name, fmt=fmt, excel=excel,
                   allow_empty=allow_empty)
        what = "entries"
    if path != "-":  # standard output carries the file alone
        click.echo(f"wrote {n} {what} to {path}")

