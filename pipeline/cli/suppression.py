"""CLI commands `suppress`, `suppression list|show|add|release` and `export`."""

from __future__ import annotations

import click

# pandas is imported where it is used: loading it costs every command ~0.2 s of start-up.


def _present(value) -> bool:
    import pandas as pd

    return value is not None and not (isinstance(value, float) and pd.isna(value))


def _local(cfg, value) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    return pd.Timestamp(value).tz_convert(cfg.tz).strftime("%Y-%m-%d %H:%M")


def print_rule_result(cfg, result) -> None:
    mode = "dry run: nothing written" if result.dry_run else ("applied" if result.applied else "nothing to add")
    click.echo(f"rule:             {cfg['rule']['min_errors']}+ counted errors on {cfg['rule']['min_days']}+ days "
               f"within {cfg['rule']['window_days']} days ({cfg.timezone_name}), up to {_local(cfg, result.as_of)}")
    click.echo(f"addresses marked: {len(result.candidates)} ({result.already_listed} already listed)")
    click.echo(f"new entries:      {len(result.new)}  [{mode}]")
    for rec in result.new.to_dict("records"):
        click.echo(f"  + {rec['address']:40} {rec['carrier'] or '-':9} {rec['reasons']:24} "
                   f"{rec['error_count']} errors on {rec['distinct_days']} days, "
                   f"{_local(cfg, rec['first_error'])} .. {_local(cfg, rec['last_error'])}")
    if result.guard.tripped:
        label = "guard (overridden by --force)" if result.forced else "guard WOULD refuse this run"
        click.echo(f"{label}:")
        for reason in result.guard.reasons:
            click.echo(f"  ! {reason}")


@click.command("suppress")
@click.option("--as-of", default=None, metavar="DATE",
              help="Evaluate history up to this moment: YYYY-MM-DD (end of that local day) or an ISO time. Default: now.")
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.option("--force", is_flag=True, help="Apply even when the guard refuses (a carrier block looks different from dead addresses: check first).")
@click.pass_obj
def suppress_cmd(app, as_of, dry_run, force):
    """Run the multi-day rule and add dead addresses to the suppression list.

    An address is suppressed when, after its last successful delivery, it has at least
    rule.min_errors counted errors (user unknown, host unknown, mailbox disabled or full)
    on rule.min_days different local days inside rule.window_days days.

    \b
    Examples:
      mailhygiene suppress --dry-run
      mailhygiene --timezone Asia/Tokyo suppress --as-of 2026-11-20
    """
    from ..suppression.store import run_rule

    result = run_rule(app.cfg, as_of=as_of, dry_run=dry_run, force=force)
    print_rule_result(app.cfg, result)


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

    df = entries(app.cfg).sort_values("address")
    if limit:
        df = df.head(limit)
    click.echo(f"{len(df)} suppressed address(es)")
    for rec in df.to_dict("records"):
        click.echo(f"{rec['address']:40} {rec['carrier'] or '-':9} {rec['reasons'] or rec['source']:24} "
                   f"added {_local(app.cfg, rec['added_at'])}" + (f"  note: {rec['note']}" if _present(rec['note']) else ""))


@suppression_group.command("show")
@click.argument("address")
@click.pass_obj
def suppression_show(app, address):
    """Explain an address: its entry, its history and every delivery attempt behind it.

    \b
    Example:
      mailhygiene suppression show taro.dead@docomo.ne.jp
    """
    import pandas as pd

    from ..suppression.store import show

    info = show(app.cfg, address)
    cfg = app.cfg
    e = info["entry"]
    if e is None:
        click.echo(f"{info['address']}: not suppressed")
    else:
        click.echo(f"{info['address']}: SUPPRESSED ({e['source']}) since {_local(cfg, e['added_at'])}")
        if e["source"] == "rule":
            click.echo(f"  carrier {e['carrier']}, reasons {e['reasons']}: {e['error_count']} counted errors on "
                       f"{e['distinct_days']} days, {_local(cfg, e['first_error'])} .. {_local(cfg, e['last_error'])}")
            click.echo(f"  last reply: dsn {e['last_dsn']} {e['last_diagnostic']}")
            click.echo(f"  rule: {e['rule']}")
        if _present(e["note"]):
            click.echo(f"  note: {e['note']}")
    for rec in info["history"].to_dict("records"):
        click.echo(f"  history: {_local(cfg, rec['at'])} {rec['action']}" + (f" ({rec['note']})" if _present(rec["note"]) else ""))
    ev = info["events"]
    click.echo(f"delivery attempts: {len(ev)}")
    for rec in ev.to_dict("records"):
        counted = "*" if (rec["scope"] == "recipient" and rec["reason"] in cfg["rule"]["counted_reasons"]
                          and rec["status"] in ("deferred", "bounced", "expired")) else " "
        diag = (rec["diagnostic"] or "").replace("\n", " / ")
        click.echo(f" {counted} {pd.Timestamp(rec['local_time']):%Y-%m-%d %H:%M:%S} {rec['mta']:8} {rec['status']:9} "
                   f"{rec['reason'] or '-':18} {rec['smtp_phase'] or '-':11} {diag[:110]}")
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

    add(app.cfg, address, note)
    click.echo(f"added {address.strip().lower()}")


@suppression_group.command("release")
@click.argument("address")
@click.option("--note", default=None, help="Why (kept in history).")
@click.pass_obj
def suppression_release(app, address, note):
    """Take an address off the list (errors before now no longer count).

    \b
    Example:
      mailhygiene suppression release taro.dead@docomo.ne.jp --note "customer confirmed new phone"
    """
    from ..suppression.store import release

    e = release(app.cfg, address, note)
    click.echo(f"released {e['address']}")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--excel", is_flag=True, help="CSV with a UTF-8 BOM so Excel (Japanese Windows) opens it without mojibake.")
@click.pass_obj
def export_cmd(app, path, fmt, excel):
    """Write the suppression list with its evidence (address first).

    Cells starting with =, +, - or @ are prefixed with ' so spreadsheets never run them.

    \b
    Examples:
      mailhygiene export suppression.csv --excel
      mailhygiene export suppression.parquet --format parquet
    """
    from ..suppression.store import export

    n = export(app.cfg, path, fmt, excel)
    click.echo(f"wrote {n} entries to {path}")
