"""The labelled set: realistic Postfix, sendmail and qmail log lines with the verdict each must get.

tests/labelled_bounces.tsv holds one delivery per row: id, mta, day (the event's date), the
expected reason, scope and counted verdict (scope recipient and a reason of the rule's default
counted_reasons), a one-line justification, and the log line(s) (`⏎` separates the lines of one
delivery: qmail's "starting delivery" + result, an expiry's last deferral + expiry). The rows were
written from carriers.md, RFC 3463/5321 and the servers' documented wording, independently of the
classifier's output; the families follow issue 18's causes (generic phrase vs code, SMTP phase,
sendmail's phase, carrier behaviour by provider and date, bare DSNs, network/system text vs code,
Gmail rate limits, Japanese replies: Postfix and sendmail, since qmail logs non-ASCII bytes as `_`)
in each MTA format where they apply.

Each row goes through the real parser (as ingest reads it), then classify() with the event's
fields, recipient domain, relay and day included. Every verdict must be right.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.classify.classifier import classify
from pipeline.core.config import RuleSettings
from pipeline.ingest.parsers import REGISTRY, ParseContext

DATA = Path(__file__).with_name("labelled_bounces.tsv")
SEP = " \u23ce "
COUNTED = frozenset(RuleSettings().counted_reasons)


def load() -> list[dict]:
    with open(DATA, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = load()


def parse(row: dict) -> dict:
    """The delivery event the real parser makes of the row's lines (the last one it emits)."""
    day = datetime.strptime(row["day"], "%Y-%m-%d")
    ctx = ParseContext(tz=ZoneInfo("UTC"), source_file="labelled", year=day.year,
                       mtime=day.replace(tzinfo=timezone.utc).timestamp() + 86400, default_host="mx1")
    events: list[dict] = []
    parser = REGISTRY[row["mta"]](ctx, events.append)
    for i, line in enumerate(row["log"].split(SEP)):
        parser.feed(line, i)
    flush = getattr(parser, "finish", None) or getattr(parser, "flush", None)
    if not events and flush:
        flush()
    assert events, f"{row['id']} ({row['mta']}): the parser made no event of {row['log']!r}"
    return events[-1]


def verdict(event: dict):
    day = datetime.fromtimestamp(event["ts"] / 1e6, timezone.utc).date() if isinstance(event["ts"], int) else event["ts"].date()
    return classify(status=event["status"], diagnostic=event["diagnostic"], dsn=event["dsn"],
                    reply_code=event["reply_code"], smtp_phase=event["smtp_phase"], mta=event["mta"],
                    recipient_domain=event["recipient_domain"], relay=event["relay"], day=day)


def test_the_set_is_large_and_covers_the_three_formats():
    assert len(ROWS) >= 150
    assert len({r["id"] + r["mta"] for r in ROWS}) == len(ROWS)
    by_mta = Counter(r["mta"] for r in ROWS)
    assert min(by_mta[m] for m in ("postfix", "sendmail", "qmail")) >= 35, by_mta
    assert {r["counted"] for r in ROWS} == {"yes", "no"}
    for r in ROWS:
        assert r["why"].strip(), r["id"]
        assert (r["counted"] == "yes") == (r["scope"] == "recipient" and r["reason"] in COUNTED), r["id"]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['id']}-{r['mta']}" for r in ROWS])
def test_labelled_verdict(row):
    event = parse(row)
    c = verdict(event)
    counted = c.scope == "recipient" and c.reason in COUNTED
    assert (c.reason, c.scope, "yes" if counted else "no") == (row["reason"], row["scope"], row["counted"]), \
        f"{row['why']} | phase={event['smtp_phase']} dsn={event['dsn']} text={event['diagnostic']!r}"
