"""CLI commands `suppress`, `suppression list|show|add|release|repair` and `export`: options in,
one call of pipeline.suppression, lines out."""

from __future__ import annotations

import sys

import click


from . import no_empty_name
from .terminal import (AS_OF, aligned, holds_no_store, aligned_line, column_widths, json_option, label_lines, lang_option, local, one_line,
                       reasons, text)


def print_rule_result(cfg, result, L=None) -> None:
    """The terminal summary of a rule run (`suppress`, `clean`), in the words of L."""
    from ..report.labels import labels

    L = L or labels(cfg.report.lang)
    rule = cfg.rule
    mode = L("cli.mode.dry_run") if result.dry_run else (
        L("cli.mode.applied") if result.applied else L("cli.mode.nothing"))
    pairs = [(L("cli.rule"), L("cli.rule_value", min_errors=rule.min_errors, min_days=rule.min_days,
                                window_days=rule.window_days, tz=cfg.timezone_name,
                                as_of=local(cfg, result.as_of))),
             (L("cli.marked"), L("cli.marked_value", marked=result.marked, listed=result.already_listed)),
             (L("cli.new"), L("cli.new_value", n=len(result.new), mode=mode))]
    unchecked = not result.guard_checked and result.new
    if unchecked:
        pairs.append((L("cli.guard"), L("cli.guard_unchecked")))
    lines = label_lines(pairs)
    for line in lines[:3]:
        click.echo(line)
    rows = [[rec["address"], L.carrier(text(rec["carrier"])), reasons(L, rec["reasons"]),
             L("cli.entry_evidence", errors=rec["error_count"], days=rec["distinct_days"],
               first=local(cfg, rec["first_error"]), last=local(cfg, rec["last_error"]))]
            for rec in result.new]
    for line in aligned(rows, min_widths=(40, 9, 24), indent="  + "):
        click.echo(line)
    for line in lines[3:]:
        click.echo(line)
    if result.guard.tripped:
        label = L("cli.guard_forced") if result.forced else L("cli.guard_refuses")
        click.echo(f"{label}:")
        for reason in result.guard.reasons:
            click.echo(f"  ! {reason}")


def guard_problems(result, L) -> list[str]:
    """What --quiet still prints about a rule run: a guard overridden by --force, or one that
    would refuse (a dry run with --check-guard)."""
    if not result.guard.tripped:
        return []
    head = L("cli.guard_overridden") if result.forced and not result.dry_run else f"{L('cli.guard_refuses')}:"
    return [head, *(f"  ! {reason}" for reason in result.guard.reasons)]


@click.command("suppress")
@click.option("--as-of", type=AS_OF, default=None, metavar="DATE",
              help="Evaluate history up to this moment: YYYY-MM-DD (end of that local day) or an ISO time. Default: now.")
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.option("--check-guard", is_flag=True,
              help="With --dry-run: also run the guard (one more pass over the events) and show its verdict.")
@click.option("--force", is_flag=True, help="Apply even when the guard refuses (a carrier block looks different from dead addresses: check first).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default=None,
              help="Where the rule's SQL runs (config: engine; default duckdb). spark needs the "
                   "`.[spark]` extra and Java 17; [spark] master says where (docs/scale-out.md).")
@json_option("Print the result as JSON (README \"Scripting\"): the new entries with their evidence, "
             "the counts, the guard's verdict and the engine.")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems (a guard overridden by --force, or refusing with --check-guard).")
@lang_option
@click.pass_obj
def suppress_cmd(app, as_of, dry_run, check_guard, force, engine, as_json, quiet, lang):
    """Run the multi-day rule and add dead addresses to the suppression list.

    An address is suppressed when, after its last successful delivery (and its last release),
    it has at least rule.min_errors counted errors (user unknown, host unknown, mailbox
    disabled or full) on rule.min_days different local days inside rule.window_days days.

    Exit status: 0 done (or nothing to add); 1 error; 3 the guard refused (nothing applied).

    \b
    Examples:
      mailhygiene suppress --dry-run --check-guard
      mailhygiene --timezone Asia/Tokyo suppress --as-of 2026-11-20
      mailhygiene suppress --dry-run --json | jq -r '.new[].address'
      mailhygiene --config central.toml suppress --engine spark --dry-run --json
    """
    from ..suppression.rule import rule_result_json, run_rule
    from ..suppression.store import SuppressionStore

    cfg = app.cfg
    if not dry_run:
        # the send daemon's results still in its queue's outbox (a daemon killed before its next
        # flush) are moved into the event store first, as `clean` does: the rule must count them
        from ..jobs.clean import flush_sender_events

        flush_sender_events(cfg)
    engine = engine or cfg.engine
    spark = None
    if engine == "spark":
        from ..lake.engines import SparkEngine

        spark = SparkEngine.open(cfg)
    from ..core.errors import GuardTripped

    try:
        result = run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, as_of,
                          tz=cfg.timezone_name, dry_run=dry_run, force=force, check_guard_in_dry_run=check_guard,
                          engine=spark)
    except GuardTripped as exc:
        if as_json and exc.result is not None:  # the refused run's document, then Error and exit 3
            app.print_json({**rule_result_json(exc.result, cfg.rule, cfg.timezone_name), "engine": engine})
        raise
    finally:
        if spark is not None:
            spark.close()
    L = app.labels(lang)
    if as_json:
        app.print_json({**rule_result_json(result, cfg.rule, cfg.timezone_name), "engine": engine})
    elif app.quiet or quiet:
        for line in guard_problems(result, L):
            app.problem(line)
    else:
        print_rule_result(cfg, result, L)


@click.group("suppression")
def suppression_group():
    """Inspect and edit the suppression list."""


@suppression_group.command("list")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Show at most this many entries (0 = all).")
@json_option("Print JSON (README \"Scripting\"): {\"count\": N, \"entries\": [...]}.")
@lang_option
@click.pass_obj
def suppression_list(app, limit, as_json, lang):
    """List suppressed addresses with carrier, reasons and when they were added.

    \b
    Examples:
      mailhygiene suppression list
      mailhygiene --lang ja suppression list
      mailhygiene suppression list --json | jq -r '.entries[].address'
      mailhygiene suppression list --limit 20    # the first 20 by address; the count is the whole list's
    """
    from ..suppression.store import entry_json, listing

    cfg = app.stored_cfg()
    with listing(cfg.data_dir, limit or None) as found:  # read as printed: never the whole list at once
        if as_json:  # what app.print_json(list_json(entries)) prints, written piece by piece
            from ..core.jsonout import dumps_pieces

            _echo_pieces(dumps_pieces({"count": found.total, "shown": found.count}, "entries",
                                      map(entry_json, found.rows())), "\n")
            return
        L = app.labels(lang)
        click.echo(L("cli.list_count", n=found.total)
                   + (L("cli.list_shown", n=found.count) if found.count < found.total else ""))

        def cells(rec):
            return [rec["address"], L.carrier(text(rec["carrier"])),
                    reasons(L, rec["reasons"]) if rec["reasons"] else L(f"cli.source.{rec['source']}")]

        widths = column_widths(map(cells, found.rows(brief=True)), min_widths=(40, 9, 24))
        _echo_pieces(aligned_line(cells(rec) + [L("cli.list_added", at=local(cfg, rec["added_at"]))
                                               + (f"  {L('cli.note', note=one_line(rec['note']))}" if rec["note"] else "")],
                                 widths) + "\n"
                    for rec in found.rows())


def _echo_pieces(pieces, end: str = "") -> None:
    """Text pieces to standard output, a few thousand at a time (an echo flushes), then `end`."""
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) >= 4096:
            click.echo("".join(batch), nl=False)
            batch.clear()
    click.echo("".join(batch) + end, nl=False)


@suppression_group.command("show")
@click.argument("address")
@json_option("Print JSON (README \"Scripting\"): the entry, its history and every delivery attempt.")
@lang_option
@click.pass_obj
def suppression_show(app, address, as_json, lang):
    """Explain an address: its entry, its history and every delivery attempt behind it.

    \b
    Examples:
      mailhygiene suppression show taro.dead@docomo.ne.jp
      mailhygiene suppression show taro.dead@docomo.ne.jp --json
    """
    from ..suppression.store import show, show_json

    cfg = app.stored_cfg()
    info = show(cfg.data_dir, address, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                window_days=cfg.rule.window_days)
    if as_json:
        app.print_json(show_json(info))
        return
    L = app.labels(lang)
    e = info["entry"]
    if e is None:
        click.echo(L("cli.not_suppressed", address=info["address"]))
    else:
        click.echo(L("cli.suppressed", address=info["address"], source=L(f"cli.source.{e['source']}"),
                     at=local(cfg, e["added_at"])))
        if e["source"] == "rule":
            click.echo("  " + L("cli.evidence", carrier=L.carrier(text(e["carrier"])),
                                reasons=reasons(L, e["reasons"]), errors=e["error_count"],
                                days=e["distinct_days"], first=local(cfg, e["first_error"]),
                                last=local(cfg, e["last_error"])))
            click.echo("  " + L("cli.last_reply", dsn=text(e["last_dsn"]), reply=one_line(e["last_diagnostic"])))
            click.echo("  " + L("cli.rule_label", rule=e["rule"]))
        if e["note"]:
            click.echo("  " + L("cli.note", note=one_line(e["note"])))
    for rec in info["history"]:
        action = L(f"cli.action.{rec['action']}") if rec["action"] in ("added", "released") else rec["action"]
        click.echo("  " + L("cli.history", at=local(cfg, rec["at"]), action=action)
                   + (f" ({one_line(rec['note'])})" if rec["note"] else ""))
    attempts = info["events"]
    # a row of `attempts` (sql/address_history.sql `attempt`): not a hand-off, a restated failure,
    # null-sender mail, nor a bounce mail bound to no mail we sent (sql/bound_marks.sql)
    click.echo(L("cli.attempts", n=sum(bool(rec.get("attempt")) for rec in attempts)))
    rows = [[mark(rec),
             f"{rec['local_time']:%Y-%m-%d %H:%M:%S}", rec["mta"],
             L.status(rec["status"]), L.reason(text(rec["reason"])), text(rec["smtp_phase"]),
             one_line(rec["diagnostic"])[:110]] for rec in attempts]
    for line in aligned(rows, min_widths=(1, 19, 8, 9, 18, 11), indent=" "):
        click.echo(line)
    click.echo(L("cli.counted_legend_hops" if any(rec.get("hand_off") or rec.get("restated") for rec in attempts)
                 else "cli.counted_legend"))
    if any(rec.get("bound") is False for rec in attempts):
        click.echo(L("cli.unbound_legend"))


def mark(rec) -> str:
    """A stored row's mark in `suppression show`: = a bounce mail restating a logged failure (the
    same attempt), * a counted error, > a `sent` that only handed the message on, ? a bounce mail
    bound to no mail we sent to the address (kept, not counted)."""
    if rec.get("restated"):
        return "="
    if rec["counted"]:
        return "*"
    return ">" if rec.get("hand_off") else ("?" if rec.get("bound") is False else " ")


@suppression_group.command("add")
@click.argument("address", required=False)
@click.option("--from-file", "from_file", default=None, metavar="FILE",
              help="Add every address in FILE: one per line, or a CSV with an address (or email) "
                   "column; - reads standard input. All or nothing.")
@click.option("--ignore-existing", is_flag=True,
              help="Skip addresses already on the list (without it, one listed address stops the whole add).")
@click.option("--note", default=None, help="Why (kept in history).")
@lang_option
@click.pass_obj
def suppression_add(app, address, from_file, ignore_existing, note, lang):
    """Suppress an address by hand, or every address in a file.

    An address already on the list is an error naming it, and nothing is added (with
    --from-file too: all or nothing), unless --ignore-existing.

    \b
    Examples:
      mailhygiene suppression add complainer@au.com --note "asked to stop, ticket 123"
      mailhygiene suppression add --from-file optouts.csv --ignore-existing --note "CRM opt-outs"
      crm-export | mailhygiene suppression add --from-file - --ignore-existing
    """
    from ..core.errors import InputError
    from ..suppression.address_file import read_addresses
    from ..suppression.store import add_many

    if (address is None) == (from_file is None):
        raise InputError("give one ADDRESS or --from-file FILE (one of them)")
    if from_file is not None:
        no_empty_name(from_file, "--from-file")
        if from_file == "-":
            addresses = read_addresses(sys.stdin.buffer.read(), "standard input")
        else:
            addresses = read_addresses(from_file)
    else:
        addresses = [address]
    # a data dir that does not exist is a mistyped --data-dir or the wrong config: the opt-out
    # would go to a list no nightly job or sender reads (export and suppress refuse it too)
    cfg = app.stored_cfg()
    started_empty = holds_no_store(cfg.data_dir)
    added, skipped = add_many(cfg.data_dir, addresses, note, carriers=cfg.carriers,
                              ignore_existing=ignore_existing)
    L = app.labels(lang)
    if started_empty and added:
        app.problem(L("cli.problem_new_list", path=cfg.data_dir))
    if from_file is None and added:
        app.say(L("cli.added", address=added[0]))
    else:
        app.say(L("cli.added_many", n=len(added)))
    if skipped:
        examples = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        app.say(L("cli.skipped_listed", n=len(skipped), examples=examples))


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

    e = release(app.stored_cfg().data_dir, address, note)
    app.say(app.labels()("cli.released", address=e["address"]))


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

    before = repair(app.stored_cfg().data_dir)
    if before.missing or before.stale:
        click.echo(f"repaired: {before.missing} entr(ies) restored from the history, {before.stale} released "
                   "entr(ies) removed")
    else:
        app.say("the list agrees with its history: nothing to repair")


@click.command("export")
@click.argument("path", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="csv (formula-safe text, local times with their offset) or parquet (typed columns, as stored).")
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
    spreadsheets never run them; the address column is a key and is never changed (a local
    part the logs quoted, "=1+2 x"@docomo.ne.jp, is written quoted again). Exits
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

    no_empty_name(path, "PATH")
    cfg = app.cfg
    if filtered:
        n = export_filtered(cfg.data_dir, path, cfg.export, tz=cfg.timezone_name,
                            window_days=cfg.rule.window_days, days=days, fmt=fmt,
                            excel=excel, allow_empty=allow_empty)
        what = "filtered address(es)"
    else:
        if days is not None:
            raise click.UsageError("--days goes with --filtered")
        n = export(cfg.data_dir, path, cfg.export, tz=cfg.timezone_name, fmt=fmt, excel=excel,
                   allow_empty=allow_empty)
        what = "entries"
    if path != "-":  # standard output carries the file alone
        app.say(f"wrote {n} {what} to {path}")

