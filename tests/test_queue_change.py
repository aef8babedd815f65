"""QueueParser.change(ENTRY, ...) is the same as the lines it stands for, one change() each:
SENDER, MESSAGE_ID, RECIPIENTS (unless None) and a DELIVERY per row. The block readers use it to
leave an entry in one step; the per-line parsers never do, so this holds the two together."""

import copy
import random
from zoneinfo import ZoneInfo

import pytest

from pipeline.ingest.parsers.common import (DELIVERY, ENTRY, MESSAGE_ID, RECIPIENTS, SENDER, ParseContext,
                                            QueueParser)

T0 = 1_790_000_000_000_000


def _parser() -> QueueParser:
    ctx = ParseContext(source_file="/var/log/maillog", tz=ZoneInfo("Asia/Tokyo"), year=2026)
    return QueueParser(ctx, emit=lambda row: None)


def _row(rng: random.Random, recipients: list) -> dict:
    status = rng.choice(["deferred", "deferred", "sent", "bounced"])
    return {"mta": "sendmail", "queue_id": "Q1", "message_id": None, "recipient": rng.choice(recipients),
            "recipient_domain": "docomo.ne.jp", "relay": "mx.example", "dsn": "4.0.0", "reply_code": 421,
            "smtp_phase": None, "diagnostic": f"try {rng.randrange(1000)}", "status": status}


def _state(rng: random.Random, recipients: list) -> dict:
    """A queue table: the entry of Q1 absent, stale, or live (with deferrals and a count or not)."""
    shape = rng.choice(["none", "stale", "live", "live"])
    if shape == "none":
        return {}
    seen = T0 - (8 * 86400 * 1_000_000 if shape == "stale" else rng.randrange(3600) * 1_000_000)
    st = {"sender": "old@example.jp", "message_id": "old@id", "seen": seen, "deferred": {}}
    for r in rng.sample(recipients, rng.randrange(len(recipients) + 1)):
        st["deferred"][r] = {"recipient": r, "diagnostic": "earlier", "message_id": "old@id"}
    if rng.random() < 0.7:
        st["left"] = rng.randrange(-1, 4)
    return {"Q1": st}


@pytest.mark.parametrize("seed", range(400))
def test_entry_is_the_lines_it_stands_for(seed):
    rng = random.Random(seed)
    recipients = [f"user{i}@docomo.ne.jp" for i in range(rng.randrange(1, 4))]
    queue = _state(rng, recipients)
    sender = rng.choice([None, "news@example.jp"])
    message_id = rng.choice([None, "abc@example.jp"])
    left = rng.choice([None, 0, 1, 2, 3])
    rows = [_row(rng, recipients) for _ in range(rng.randrange(5))]
    ts = T0 + rng.randrange(-60, 60) * 1_000_000

    one, lines = _parser(), _parser()
    for p in (one, lines):
        p.queue, p.clock = copy.deepcopy(queue), T0
    one_rows, line_rows = copy.deepcopy(rows), copy.deepcopy(rows)

    one.change(ENTRY, "Q1", ts, (sender, message_id, left, one_rows))
    lines.change(SENDER, "Q1", ts, sender)
    lines.change(MESSAGE_ID, "Q1", ts, message_id)
    if left is not None:
        lines.change(RECIPIENTS, "Q1", ts, left)
    for row in line_rows:
        lines.change(DELIVERY, "Q1", ts, row)

    assert one.queue == lines.queue
    assert one.clock == lines.clock
    assert one_rows == line_rows                 # each row's sender and message-id as joined


def test_a_row_after_the_last_announced_recipient_starts_a_new_entry():
    """The case the step must not smooth over: the entry is forgotten mid-way (every announced
    recipient final), so the next row of the same queue id starts a new one, with no sender."""
    p = _parser()
    p.clock = T0
    rows = [{"recipient": "a@docomo.ne.jp", "status": "sent"}, {"recipient": "b@docomo.ne.jp", "status": "sent"}]
    p.change(ENTRY, "Q1", T0, ("news@example.jp", "m@id", 1, rows))
    assert rows[0]["sender"] == "news@example.jp"
    assert rows[1]["sender"] is None               # the entry was forgotten after the first row
    assert p.queue["Q1"]["sender"] is None and p.queue["Q1"]["deferred"] == {}
