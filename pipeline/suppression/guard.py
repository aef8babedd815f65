"""The suppression guard: refuses a rule run whose new entries look like a mistake or a carrier
refusing us, rather than dead addresses.

Reads, on the rule's connection, the attempts (view `attempts`: each delivery attempt once,
whichever witnesses recorded it, no null-sender row: sql/not_attempts.sql, its marks kept by the
rule's run), the rule's counted errors (table `counted_errors`, read from the same attempts) and
its new entries (table `new_entries`, with the times of their errors) through
sql/guard_bursts.sql: one pass over the attempts, counted per carrier and quarter hour (the
counted errors are counted from the rule's table, not from the events again); only when
needed, sql/error_addresses.sql and sql/active_addresses.sql (the share test), their per-carrier
forms sql/carrier_error_addresses.sql and sql/carrier_active_addresses.sql, and
sql/guard_replies.sql (something was flagged: its top replies, from the counted errors).
Writes nothing. Called by rule.run_rule with the [guard] settings. With `suppress --engine
spark` these queries run on Spark, where the rule kept `counted_errors`; the small tables they
read besides (new_entries, flagged_periods) are copied there and the rows come back with
DuckDB's types (lake.engines.run_into), so the verdict is the same code on both engines.

Four tests (README "The rule and the guard"):
- share: more than guard.min_new new entries making more than guard.max_new_fraction of the
  addresses active in the evaluated period, of the whole list or of one carrier (a carrier
  refusing part of our addresses each day as "user unknown" stays under every rate and under
  the whole list's share) (the exact count of active addresses, a full scan,
  is only taken when two lower bounds of it do not already settle the question: the addresses
  with counted errors in the period, sql/error_addresses.sql, then those active in the
  period's last day);
- burst: a carrier-hour (guard.hour_*) or carrier-day (guard.block_*) holding new entries'
  errors in which counted errors are a large share of the attempts;
- usual addresses: a carrier-hour in which many new entries were refused within
  guard.recent_hours after a delivery to them (an address that took our mail yesterday and
  "does not exist" today is more likely refused than dead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core.config import GuardSettings, RuleSettings, zone


@dataclass
class GuardReport:
    tripped: bool = False
    reasons: list[str] = field(default_factory=list)
    # addresses active in the period; None when the lower bound (active_at_least) settled it
    active_addresses: int | None = None
    active_at_least: int = 0
    new_fraction: float | None = None
    bursts: list[dict[str, Any]] = field(default_factory=list)
    # carriers whose new entries are too large a share of their active addresses
    carrier_shares: list[dict[str, Any]] = field(default_factory=list)
    since: datetime | None = None


def _query(con, engine, name: str, params: dict[str, Any], inputs: tuple[str, ...] = ()):
    """sql/<name>.sql on DuckDB (`con`), or on the rule's engine (suppress --engine spark) with
    the tables of `con` it reads besides the events and counted_errors (`inputs`) copied over
    and its rows brought back with DuckDB's types."""
    from ..store.warehouse import run_sql

    if engine is None:
        return run_sql(con, name, params)
    from ..lake.engines import run_into

    return run_into(engine, con, name, params, table=f"engine_{name}", inputs=inputs)


def check_guard(con, guard: GuardSettings, rule: RuleSettings, *, tz: str, as_of: datetime,
                new_count: int, first_error: datetime | None, engine=None,
                new_by_carrier: dict[str, int] | None = None) -> GuardReport:
    """Judge the new entries in table `new_entries` of `con` (with the events view and the
    rule's table `counted_errors`); `engine`: None = DuckDB, else the engine that reads the
    events and holds counted_errors (lake.engines.SparkEngine). `new_by_carrier`: how many of
    the new entries each carrier ('unknown': none) has (the per-carrier share test)."""
    from .store import rows

    report = GuardReport()
    if not new_count or first_error is None:
        return report
    since = first_error - timedelta(days=rule.window_days)
    report.since = since
    found = rows(_query(con, engine, "guard_bursts", {
        "tz": tz, "as_of": as_of, "since": since,
        "hour_min_errors": guard.hour_min_errors, "hour_rate": guard.hour_rate,
        "recent_hours": guard.recent_hours, "recent_rate": guard.recent_rate,
        "block_min_errors": guard.block_min_errors, "block_rate": guard.block_rate}, ("new_entries",)))
    summary = next(r for r in found if r["kind"] == "summary")
    _share_test(con, guard, report, new_count=new_count, since=since, as_of=as_of,
                last_quarter=summary["last_quarter"], engine=engine)
    report.bursts = [r for r in found if r["kind"] != "summary"]
    shares = _carrier_share_test(con, guard, report, new_by_carrier or {}, since=since, as_of=as_of, engine=engine)
    if report.bursts or shares:
        local_since = since.astimezone(zone(tz)).replace(tzinfo=None)
        local_until = (as_of + timedelta(microseconds=1)).astimezone(zone(tz)).replace(tzinfo=None)
        for row in shares:
            row.update(kind="carrier", period_start=local_since, period_end=local_until)
        replies = _top_replies(con, report.bursts + shares, tz=tz, since=since, as_of=as_of, engine=engine)
        for row in report.bursts:
            row["top_replies"] = replies.get((row["kind"], row["carrier"], row["period_start"]))
            report.tripped = True
            report.reasons.append(_burst_reason(row, tz, guard))
        for row in shares:
            row["top_replies"] = replies.get((row["kind"], row["carrier"], row["period_start"]))
            report.tripped = True
            report.reasons.append(
                f"{row['new']} new entries at {row['carrier']} are {row['fraction']:.1%} of the {row['active']} "
                f"{row['carrier']} addresses active since {since:%Y-%m-%d}: more than guard.max_new_fraction = "
                f"{guard.max_new_fraction:.1%} of one carrier, which looks like {row['carrier']} refusing part of "
                f"our addresses, not dead addresses; top replies: {row['top_replies']}")
        report.carrier_shares = shares
    return report


def _carrier_share_test(con, guard: GuardSettings, report: GuardReport, new_by_carrier: dict[str, int], *,
                        since: datetime, as_of: datetime, engine=None) -> list[dict[str, Any]]:
    """The share test per carrier: a carrier that refuses a part of our addresses each day with
    "user unknown" (a block worded as dead addresses) stays under every rate of its hours and
    days and, in a list of many carriers, under the whole list's share. The carriers with more
    than guard.min_new new entries making more than guard.max_new_fraction of that carrier's
    addresses active in the period; the exact count (a pass over the events) only for those a
    lower bound (the carrier's addresses with counted errors, from the rule's table) leaves open."""
    from .store import rows

    many = {c: n for c, n in new_by_carrier.items() if n > guard.min_new}
    if not many:
        return []
    params = {"since": since, "as_of": as_of, "carriers": sorted(many)}
    bound = {r["carrier"]: r["error_addresses"] for r in rows(_query(con, engine, "carrier_error_addresses", params))}
    open_ = sorted(c for c, n in many.items() if not bound.get(c) or n / bound[c] > guard.max_new_fraction)
    if not open_:
        return []
    active = {r["carrier"]: r["active_addresses"]
              for r in rows(_query(con, engine, "carrier_active_addresses", {**params, "carriers": open_}))}
    found = []
    for carrier in open_:
        n, total = many[carrier], active.get(carrier, 0)
        fraction = n / total if total else 1.0
        if fraction > guard.max_new_fraction:
            found.append({"carrier": carrier, "new": n, "active": total, "fraction": fraction})
    return found


def _top_replies(con, bursts, *, tz: str, since: datetime, as_of: datetime, engine=None) -> dict:
    """(kind, carrier, period_start) -> "n x reply | ..." for the flagged periods (from the
    rule's counted errors, only when something was flagged)."""
    from .store import rows, run_block

    periods = [{"kind": b["kind"], "carrier": b["carrier"], "period_start": b["period_start"],
                "period_end": b.get("period_end")} for b in bursts]
    run_block(con, "flagged_periods", {"periods": periods})
    found = rows(_query(con, engine, "guard_replies", {"tz": tz, "since": since,
                                                       "until": as_of + timedelta(microseconds=1)},
                        ("flagged_periods",)))
    return {(r["kind"], r["carrier"], r["period_start"]): r["top_replies"] for r in found}


def _share_test(con, guard: GuardSettings, report: GuardReport, *, new_count: int,
                since: datetime, as_of: datetime, last_quarter: datetime | None, engine=None) -> None:
    """Counting the addresses active in the period is a full scan. Two lower bounds of it
    usually settle the question first: the addresses with a counted error in the period (from
    the rule's table, no scan), then those active in the period's last day (a sixtieth of it)."""
    def count(name: str, start: datetime) -> int:
        return int(_query(con, engine, name, {"since": start, "as_of": as_of}).fetchall()[0][0])

    def settled(bound: int) -> bool:
        report.active_at_least = max(report.active_at_least, bound)
        # the share is at most new_count / active_at_least: below the limit?
        return bool(report.active_at_least) and new_count / report.active_at_least <= guard.max_new_fraction

    if new_count <= guard.min_new:
        return
    if settled(count("error_addresses", since)):
        return
    if last_quarter is not None and settled(count("active_addresses", max(since, last_quarter - timedelta(days=1)))):
        return
    active = report.active_addresses = count("active_addresses", since)
    report.new_fraction = new_count / active if active else 1.0
    if report.new_fraction > guard.max_new_fraction:
        report.tripped = True
        report.reasons.append(
            f"{new_count} new entries are {report.new_fraction:.1%} of the {active} addresses active "
            f"since {since:%Y-%m-%d}: more than guard.max_new_fraction = {guard.max_new_fraction:.1%}")


def _burst_reason(row: dict[str, Any], tz: str, guard: GuardSettings) -> str:
    start = row["period_start"]
    if row["kind"] == "hour":
        when = f"{start:%Y-%m-%d %H:00}-{(start + timedelta(hours=1)):%H:00} ({tz})"
    else:
        when = f"on {start:%Y-%m-%d} ({tz})"
    what = [f"{row['counted_errors']} of {row['attempts']} attempts ({row['error_rate']:.0%}) failed as dead addresses"]
    if row["usual"]:
        what.append(f"{row['usual_refusals']} of them to addresses that had mail delivered within "
                    f"{guard.recent_hours:g} h before")
    return (f"{row['carrier']} {when}: {', '.join(what)}, which looks like {row['carrier']} refusing us, "
            f"not dead addresses; top replies: {row['top_replies']}")
