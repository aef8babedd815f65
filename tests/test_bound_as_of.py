"""Every figure agrees with the rule, and an as-of run sees nothing later.

1. A forged bounce mail (a DSN for a message we never sent to that address: unbound,
   sql/bounce_mails.sql) changes no figure a user sees: not the report's attempts, bounced,
   filtered, refusals or rates (the report read `attempts`, which held the unbound rows), not the
   guard's active addresses. sql/bound_marks.sql marks those rows, so `attempts` leaves them out.
2. `suppress --as-of DATE` gives the answer a run on that date would have given: the same rule
   over a store holding only the events up to as_of (warehouse.events_up_to). Before, the marks
   of sql/not_attempts.sql were found with every stored event: a failure logged after as_of made
   an earlier `sent` a hand-off (no delivery) and an earlier bounce mail a restatement (no error).
"""

from __future__ import annotations

from datetime import datetime

import pandas.testing as pdt
from click.testing import CliRunner

from pipeline.cli import cli

from pipeline.report import explore
from pipeline.report.figures import QUERIES, build_report
from pipeline.store.warehouse import connect, run_sql
from pipeline.suppression.counted import counted_params, keep_counted_errors
from pipeline.suppression.rule import evaluate, run_rule
from pipeline.suppression.store import show

from fixtures import TOKYO, at, event, fixture_events, make_config, store_events

OURS = "news@mail.example.jp"


def two_stores(tmp_path, first: str, second: str):
    (tmp_path / first).mkdir()
    (tmp_path / second).mkdir()
    return make_config(tmp_path / first), make_config(tmp_path / second)


def bounce_mail(recipient, when, n, message_id=None, **kw):
    """A row of a bounce mail (`mailhygiene bounces`: pipeline/sender/events.py bounce_event)."""
    return event(recipient, when, mta="mailhygiene", queue_id=None, sender=OURS, message_id=message_id,
                 source_file=f"mailhygiene-bounces:mail{n}", source_offset=0, **kw)


def report_tables(cfg):
    report = build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name)
    return {name: report.tables[name] for name in QUERIES}


def guard_denominators(cfg):
    con = connect(cfg.data_dir)
    try:
        keep_counted_errors(con, counted_params(cfg.timezone_name, cfg.rule.counted_reasons, cfg.rule.window_days))
        since, until = datetime(2026, 11, 1, tzinfo=TOKYO), datetime(2026, 11, 30, tzinfo=TOKYO)
        return (run_sql(con, "active_addresses", {"since": since, "as_of": until}).fetchall(),
                run_sql(con, "carrier_active_addresses",
                        {"since": since, "as_of": until, "carriers": ["au", "docomo", "other"]}).fetchall())
    finally:
        con.close()


def notebook_attempts(cfg):
    """What the notebook's first table counts, on its connection (report.explore.connect)."""
    con = explore.connect(cfg)
    try:
        return con.sql("SELECT status, count(*) FROM attempts GROUP BY ALL ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_a_forged_bounce_mail_changes_no_report_figure(tmp_path):
    real = fixture_events()
    real += [event("a3@docomo.ne.jp", at(11, 9), status="sent", message_id="r1@mail.example.jp"),
             # a bound bounce mail: it returns the Message-ID we sent to a3@ (it counts)
             bounce_mail("a3@docomo.ne.jp", at(12, 9), 1, message_id="<r1@mail.example.jp>", hard=True)]
    forged = [
        # DSNs for addresses we never mailed; one returns a Message-ID we sent to someone else
        bounce_mail("forged1@docomo.ne.jp", at(10, 16), 2, message_id="<r1@mail.example.jp>", hard=True),
        bounce_mail("forged2@au.com", at(16, 15), 3, reason="filtered", scope="sender", carrier="au", hard=False,
                    diagnostic="550 5.7.1 <forged2@au.com>: Recipient address rejected: filtered"),
        bounce_mail("forged3@docomo.ne.jp", at(16, 0, 1), 4, status="deferred", reason="rate_limited",
                    scope="sender", hard=False, diagnostic="421 4.7.0 Too many connections"),
        bounce_mail("x@forged.example", at(17, 9), 5, status="undeliverable", reason="host_unknown",
                    carrier="other", hard=True),
    ]
    clean_cfg, forged_cfg = two_stores(tmp_path, "clean", "forged")
    store_events(clean_cfg, real)
    store_events(forged_cfg, real + forged)

    clean, with_forged = report_tables(clean_cfg), report_tables(forged_cfg)
    for name in QUERIES:
        pdt.assert_frame_equal(with_forged[name], clean[name], obj=name)
    assert guard_denominators(forged_cfg) == guard_denominators(clean_cfg)
    assert notebook_attempts(forged_cfg) == notebook_attempts(clean_cfg)
    # the bound bounce mail counts (a3@'s failure is docomo's third bounce on the 12th) ...
    daily = clean["carrier_daily"]
    assert daily[(daily["carrier"] == "docomo") & (daily["period_start"] == datetime(2026, 11, 12))][
        ["bounced", "counted_errors"]].values.tolist() == [[1, 1]]
    # ... and the forged rows stay in the store, shown as unbound
    info = show(forged_cfg.data_dir, "forged2@au.com", tz=forged_cfg.timezone_name,
                counted_reasons=forged_cfg.rule.counted_reasons, window_days=forged_cfg.rule.window_days)
    assert [(e["reason"], e["counted"], e["bound"], e["attempt"]) for e in info["events"]] == [
        ("filtered", False, False, False)]
    shown = CliRunner().invoke(cli, ["--config", str(forged_cfg.source), "--data-dir", str(forged_cfg.data_dir),
                                     "suppression", "show", "forged2@au.com", "--lang", "en"])
    assert shown.exit_code == 0, shown.output
    assert "delivery attempts: 0" in shown.output     # was 1: the forged DSN


AS_OF = datetime(2026, 11, 14, 23, 59, 59, tzinfo=TOKYO)


def as_of_events():
    """Events before and after AS_OF (2026-11-14, Tokyo)."""
    return [
        # hand@: errors on the 10th and 11th, then a delivery on the 13th of message h1 ...
        event("hand@docomo.ne.jp", at(10, 9)), event("hand@docomo.ne.jp", at(11, 9)),
        event("hand@docomo.ne.jp", at(13, 9), status="sent", message_id="h1@mail.example.jp"),
        # ... which bounced on the 16th: on the 14th it was a delivery (errors reset: not marked)
        event("hand@docomo.ne.jp", at(16, 9), message_id="h1@mail.example.jp"),
        # rest@: an error on the 10th; the bounce mail of m2 on the 12th (bound: m2 was sent to it),
        # whose failure Postfix logged only on the 15th: on the 14th the bounce mail was the error
        event("rest@au.com", at(10, 10), carrier="au"),
        event("rest@au.com", at(11, 10), status="sent", carrier="au", message_id="m2@mail.example.jp"),
        bounce_mail("rest@au.com", at(12, 10), 1, carrier="au", message_id="<m2@mail.example.jp>", hard=True),
        event("rest@au.com", at(15, 10), carrier="au", message_id="m2@mail.example.jp"),
        # dead@: marked on the 14th whatever comes later
        event("dead@docomo.ne.jp", at(12, 8)), event("dead@docomo.ne.jp", at(13, 8)),
        event("dead@docomo.ne.jp", at(20, 8), status="sent"),
        # later@: its errors are all after the 14th; busy@: deliveries before and after
        event("later@docomo.ne.jp", at(15, 8)), event("later@docomo.ne.jp", at(16, 8)),
        event("busy@docomo.ne.jp", at(13, 7), status="sent"), event("busy@docomo.ne.jp", at(18, 7), status="sent"),
        bounce_mail("later@docomo.ne.jp", at(17, 8), 2, hard=True),
    ]


def rule_outcome(cfg):
    """The rule's whole answer as of AS_OF: its candidates (every column) and its dry run with the
    guard (new entries with their evidence, counts, the guard's verdict and figures)."""
    candidates = evaluate(cfg, cfg.rule, AS_OF, tz=cfg.timezone_name)
    result = run_rule(cfg, cfg.rule, cfg.guard, AS_OF, tz=cfg.timezone_name, dry_run=True,
                      check_guard_in_dry_run=True)
    guard = result.guard
    return candidates, (result.marked, result.already_listed, result.new, guard.tripped, guard.reasons,
                        guard.active_addresses, guard.new_fraction)


def test_an_as_of_run_equals_a_run_over_the_events_known_then(tmp_path):
    events = as_of_events()
    full_cfg, then_cfg = two_stores(tmp_path, "full", "then")
    store_events(full_cfg, events)
    store_events(then_cfg, [e for e in events if e["ts"].replace(tzinfo=TOKYO) <= AS_OF])

    then = rule_outcome(then_cfg)
    assert [c["address"] for c in then[0]] == ["dead@docomo.ne.jp", "rest@au.com"]
    assert rule_outcome(full_cfg) == then
