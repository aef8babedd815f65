"""The multi-day rule: which addresses are dead, and adding them to the list (guarded).

Reads the attempts (view `attempts`: each delivery attempt once, sql/not_attempts.sql: the
counted errors and the latest deliveries) and the list (through store.SuppressionStore's DuckDB
connection) and runs the rule in two steps: counted.keep_counted_errors (the events narrowed to
as_of first, so that nothing logged later is seen; sql/bounce_mails.sql, sql/bound_marks.sql and
sql/counted_errors.sql: every counted error, kept as table `counted_errors`, which the guard
reads again instead of the events, and which the report and `suppression show` keep the same
way) and sql/suppression_candidates.sql. The new entries stay in DuckDB (table `new_entries`), are judged
by guard.check_guard and, unless this is a dry run or the guard refuses, are written by the
store. Only the new entries (usually a handful) come back to Python, for the caller to show.
A dry run reads without the lock and skips the guard (a pass over the events) unless asked.
Called by the CLI (`suppress`), the nightly job (`clean`) and the notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from ..core.config import GuardSettings, RuleSettings, zone
from ..core.errors import GuardTripped, InputError
from ..core.vocabulary import SENDER_MTA
from .counted import keep_counted_errors
from .guard import GuardReport, check_guard
from .store import SuppressionStore, changing, reading, rows, run_block

UTC = ZoneInfo("UTC")


@dataclass
class RuleResult:
    as_of: datetime
    marked: int                                   # addresses the rule marks (listed or not)
    new: list[dict[str, Any]]                     # marked and not listed yet, with evidence
    already_listed: int
    guard: GuardReport = field(default_factory=GuardReport)
    applied: bool = False
    dry_run: bool = False
    forced: bool = False
    guard_checked: bool = True


# The `--json` shape of a rule run (`suppress --json`, `clean --json`'s "rule"): one definition,
# whatever engine produced the result. Fields of each new entry, in this order:
NEW_ENTRY_FIELDS = ("address", "carrier", "reasons", "error_count", "distinct_days", "first_error",
                    "last_error", "window_start", "last_dsn", "last_reply_code", "last_diagnostic",
                    "last_sent", "event_ids")


def rule_result_json(result: RuleResult, rule: RuleSettings, tz: str) -> dict[str, Any]:
    """A rule run as JSON-ready values (README "Scripting"):

    {"as_of": ISO time (UTC), "timezone": zone of the days, "rule": {min_errors, min_days,
     window_days, counted_reasons}, "dry_run", "applied", "forced": bools, "marked": addresses
     the rule marks, "already_listed": of those, already on the list, "new": [{NEW_ENTRY_FIELDS}],
     "guard": {"checked", "tripped", "reasons": [text], "active_addresses", "new_fraction"}}

    `result` is a RuleResult from any engine (DuckDB here; another engine builds a RuleResult
    with the same fields); a field an engine lacks is null."""
    from ..core.jsonout import jsonable

    guard = result.guard
    return jsonable({
        "as_of": result.as_of,
        "timezone": tz,
        "rule": {"min_errors": rule.min_errors, "min_days": rule.min_days, "window_days": rule.window_days,
                 "counted_reasons": list(rule.counted_reasons)},
        "dry_run": result.dry_run,
        "applied": result.applied,
        "forced": result.forced,
        "marked": result.marked,
        "already_listed": result.already_listed,
        "new": [{f: rec.get(f) for f in NEW_ENTRY_FIELDS} for rec in result.new],
        "guard": {"checked": result.guard_checked, "tripped": guard.tripped, "reasons": list(guard.reasons),
                  "active_addresses": guard.active_addresses, "new_fraction": guard.new_fraction},
    })


def parse_as_of(value: str | date | datetime | None, tz: str) -> datetime:
    """`2026-11-20` (end of that local day in tz) or an ISO time (local when it has no zone);
    None = now. Returned in UTC."""
    zone_info = zone(tz)
    if value is None or value == "":
        return datetime.now(UTC)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time(23, 59, 59, 999999))
    else:
        try:
            if len(value) == 10:
                dt = datetime.combine(date.fromisoformat(value), time(23, 59, 59, 999999))
            else:
                dt = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"cannot read {value!r} as a date: use YYYY-MM-DD or "
                             "YYYY-MM-DDTHH:MM[:SS][+09:00]") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone_info)
    return dt.astimezone(UTC)


def rule_params(rule: RuleSettings, tz: str, as_of: datetime) -> dict[str, Any]:
    return {"tz": tz, "as_of": as_of, "min_errors": rule.min_errors, "min_days": rule.min_days,
            "window_days": rule.window_days, "counted_reasons": list(rule.counted_reasons),
            "sender_mta": SENDER_MTA}


def evaluate(store, rule: RuleSettings, as_of: str | datetime | None = None, *, tz: str,
             engine=None) -> list[dict[str, Any]]:
    """Every address the rule marks over the whole stored history up to as_of (listed or not).
    `engine`: None = DuckDB; a pipeline.lake.engines.SparkEngine runs the rule's SQL on Spark."""
    params = rule_params(rule, tz, parse_as_of(as_of, tz))
    with reading(store, events=True) as (_, con):
        keep_counted_errors(con, params, engine)
        return rows(_candidates(con, engine, params, keep=False))


def run_rule(store, rule: RuleSettings, guard: GuardSettings, as_of: str | datetime | None = None,
             *, tz: str, dry_run: bool = False, force: bool = False, check_guard_in_dry_run: bool = False,
             now: datetime | None = None, engine=None) -> RuleResult:
    """Evaluate the rule and add the new addresses, unless dry_run, or the guard refuses (unless
    force). `store`: a SuppressionStore (or a Config / data dir); `tz`: the zone of the days.
    A dry run skips the guard (a pass over the events) unless check_guard_in_dry_run.
    `engine`: None = DuckDB; a pipeline.lake.engines.SparkEngine runs the queries that read the
    events (the rule's and the guard's) on Spark, the list stays in DuckDB (docs/scale-out.md).

    Raises GuardTripped (nothing written) when the guard refuses; NoDataError without events.
    """
    as_of_dt = parse_as_of(as_of, tz)
    store = SuppressionStore.of(store)
    if dry_run:  # reads only: no lock, no repair (an inconsistent list is an error)
        with reading(store, events=True) as (_, con):
            return _judge(con, rule, guard, tz, as_of_dt, dry_run=True, force=force,
                          with_guard=check_guard_in_dry_run, engine=engine)
    with changing(store, events=True) as (_, con):
        result = _judge(con, rule, guard, tz, as_of_dt, dry_run=False, force=force, with_guard=True,
                        engine=engine)
        if not result.new:
            return result
        if result.guard.tripped and not force:
            raise GuardTripped(
                "the suppression guard refused this run; nothing was changed. "
                + " ; ".join(result.guard.reasons)
                + ". Check the replies (a block lifts when the cause is fixed); "
                  "re-run with --force only if these really are dead addresses.", result=result)
        run_block(con, "stage_rule_entries", {
            "note": "forced past the guard" if result.guard.tripped else None,
            "now": now or datetime.now(UTC), "rule": rule.label(tz)})
        result.applied = store.commit(con)
        return result


def _candidates(con, engine, params: dict[str, Any], *, keep: bool):
    """sql/suppression_candidates.sql on DuckDB, or on the given engine with its rows brought
    back into `con`; keep=True leaves them in table `candidates` (what new_entries reads)."""
    from ..store.warehouse import run_sql, sql_relation

    if engine is not None:
        from ..lake.engines import run_into

        return run_into(engine, con, "suppression_candidates", params, table="candidates",
                        inputs=("suppression_history",))
    if keep:
        sql_relation(con, "suppression_candidates", params).to_table("candidates")
        return None
    return run_sql(con, "suppression_candidates", params)


def _judge(con, rule: RuleSettings, guard: GuardSettings, tz: str, as_of: datetime, *,
           dry_run: bool, force: bool, with_guard: bool, engine=None) -> RuleResult:
    params = rule_params(rule, tz, as_of)
    keep_counted_errors(con, params, engine)
    _candidates(con, engine, params, keep=True)
    run_block(con, "new_entries")
    marked, already_listed, first_error = run_block(con, "counts").fetchone()
    new = rows(run_block(con, "new"))
    by_carrier: dict[str, int] = {}
    for rec in new:
        by_carrier[rec.get("carrier") or "unknown"] = by_carrier.get(rec.get("carrier") or "unknown", 0) + 1
    report = (check_guard(con, guard, rule, tz=tz, as_of=as_of, new_count=len(new), first_error=first_error,
                          engine=engine, new_by_carrier=by_carrier)
              if with_guard else GuardReport())
    return RuleResult(as_of=as_of, marked=marked, new=new, already_listed=already_listed,
                      guard=report, dry_run=dry_run, forced=force, guard_checked=with_guard)
