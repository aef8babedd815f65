"""EventBuffer.annotate (the block readers' carrier and classification of column-wise rows) held
to its definition: every row gets carrier_for(domain, relay) and classify() of its own fields.

annotate classifies each distinct combination of a block's fields once, standing the provider key
in for recipient domain, relay, carrier and day, and the addresses-masked text in for the text;
classify_by_key caches verdicts across blocks, reader threads and event buffers. So the checks:
random rows over several blocks of one buffer, the same text on two days whose provider periods
read it differently, and the same row under two carrier tables (one buffer each) sharing that
cache: each row gets its own verdict, none from an earlier block, day or table.
"""

from __future__ import annotations

import random
from datetime import date

import pyarrow as pa
import pytest

from pipeline.classify import classify, configure
from pipeline.classify.carriers import CarrierTable
from pipeline.ingest import native
from pipeline.ingest.sink import EventBuffer

_EPOCH = date(1970, 1, 1)
_COLUMNS = ("recipient_domain", "relay", "status", "text", "dsn", "reply_code", "smtp_phase", "day")


def _rows(events: list[tuple]) -> dict:
    """Column-wise rows as the block readers hand them to annotate (day: the UTC day number)."""
    cols = {name: [e[i] for e in events] for i, name in enumerate(_COLUMNS)}
    return {
        "recipient_domain": pa.array(cols["recipient_domain"], pa.string()),
        "relay": pa.array(cols["relay"], pa.string()),
        "status": pa.array(cols["status"], pa.string()),
        "text": pa.array(cols["text"], pa.string()),
        "dsn": pa.array(cols["dsn"], pa.string()),
        "reply_code": pa.array(cols["reply_code"], pa.int16()),
        "smtp_phase": pa.array(cols["smtp_phase"], pa.string()),
        "day": pa.array([None if d is None else (d - _EPOCH).days for d in cols["day"]], pa.int32()),
    }


def _annotated(buffer: EventBuffer, events: list[tuple], mta: str) -> list[tuple]:
    rows = _rows(events)
    buffer.annotate(rows, mta)
    return list(zip(*(rows[name].to_pylist() for name in ("carrier", "reason", "scope", "hard"))))


def _expected(table: CarrierTable, events: list[tuple], mta: str) -> list[tuple]:
    out = []
    for domain, relay, status, text, dsn, code, phase, day in events:
        carrier = None if domain is None else table.carrier_for(domain, relay)
        c = classify(status, text, dsn=dsn, reply_code=code, smtp_phase=phase, carrier=carrier, mta=mta,
                     recipient_domain=domain, relay=relay, day=day)
        out.append((carrier, c.reason, c.scope, c.hard))
    return out


@pytest.fixture
def package_tables():
    configure(None)
    yield
    configure(None)


_TEXTS = [
    "host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user {a} (in reply to end of DATA command)",
    "host mx.example.jp[192.0.2.1] said: 550 5.1.1 <{a}>: Recipient address rejected: User unknown in local "
    "recipient table (in reply to RCPT TO command)",
    "Deferred: 450 4.2.0 <{a}>: Recipient address rejected: Greylisted",
    "host lsean.ezweb.ne.jp[111.86.141.161] said: 550 <{a}>: User unknown (in reply to RCPT TO command)",
    "550 5.1.1 <{a}>: User unknown",
    "552 5.2.2 {a}... Mailbox full",
    "connect to mx.example.jp[192.0.2.3]:25: Connection timed out",
    "host mx.example.jp[192.0.2.1] refused to talk to me: 421 4.7.0 Too many connections",
    "{a} does not like recipient.\nRemote host said: 550 5.1.1 <{a}>: User unknown\nGiving up on 192.0.2.1.",
    "550 このアドレス {a} へのメールはお届けできません",
    "250 2.0.0 Ok: queued as 4Q1",
    "",
]


def _random_events(rng: random.Random, n: int) -> list[tuple]:
    domains = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "i.softbank.jp", "yahoo.co.jp", "gmail.com", "example.jp",
               "例え.jp", "", None]
    relays = ["mfsmax.docomo.ne.jp[203.138.181.112]:25", "lsean.ezweb.ne.jp[111.86.141.161]:25",
              "mx.example.jp[192.0.2.1]:25", "mx1.mail.yahoo.co.jp[183.79.57.116]:25", "local", "", None]
    days = [date(2025, 3, 11), date(2025, 3, 12), date(2025, 3, 13), date(2026, 11, 3), None]
    locals_ = ["taro", "k.yamada", "hanako.1985", "a+tag", "名前"]
    events = []
    for _ in range(n):
        address = f"{rng.choice(locals_)}@{rng.choice(['docomo.ne.jp', 'example.jp', 'テスト.jp'])}"
        text = rng.choice(_TEXTS + [None]) if rng.random() < 0.9 else None
        events.append((rng.choice(domains), rng.choice(relays),
                       rng.choice(["sent", "sent", "bounced", "deferred", "expired", "undeliverable"]),
                       None if text is None else text.replace("{a}", address),
                       rng.choice([None, "", "5.0.0", "4.0.0", "5.1.1", "4.7.0", "5.7.1", "2.0.0"]),
                       rng.choice([None, 421, 450, 550, 552, 250]),
                       rng.choice([None, "connect", "rcpt", "end_of_data"]), rng.choice(days)))
    return events


@pytest.mark.parametrize("mask", ["compiled", "pattern"])
@pytest.mark.parametrize("mta", ["postfix", "sendmail", "qmail"])
def test_annotate_gives_every_row_its_own_carrier_and_verdict(package_tables, monkeypatch, mta, mask):
    if mask == "pattern":
        monkeypatch.setattr(native, "SCANNER", None)   # the addresses masked by the RE2 pattern
    elif native.SCANNER is None:
        pytest.skip("no compiled scanner")
    rng = random.Random(len(mta))
    table = CarrierTable.from_config(None)
    buffer = EventBuffer(table)
    for size in (3_000, 1, 2_000, 2_500):   # blocks of one buffer: its carrier dict and the caches are kept
        events = _random_events(rng, size)
        assert _annotated(buffer, events, mta) == _expected(table, events, mta)


def test_annotate_takes_chunked_columns(package_tables):
    table = CarrierTable.from_config(None)
    events = _random_events(random.Random(9), 400)
    rows = {name: pa.chunked_array([column.slice(0, 150), column.slice(150)]) for name, column in _rows(events).items()}
    EventBuffer(table).annotate(rows, "postfix")
    got = list(zip(*(rows[name].to_pylist() for name in ("carrier", "reason", "scope", "hard"))))
    assert got == _expected(table, events, "postfix")


def test_annotate_rows_all_sent_or_none(package_tables):
    table = CarrierTable.from_config(None)
    events = [("docomo.ne.jp", "mfsmax.docomo.ne.jp[203.138.181.112]:25", "sent", "250 2.0.0 Ok", "2.0.0", 250,
               None, date(2026, 11, 3))] * 5
    assert _annotated(EventBuffer(table), events, "postfix") == [("docomo", "delivered", "none", None)] * 5
    assert _annotated(EventBuffer(table), [], "postfix") == []


_AFTER_DATA = "host mx.example.jp[192.0.2.1] said: 550 5.1.1 <{}>: User unknown (in reply to end of DATA command)"


def test_the_same_text_on_two_days_gets_each_days_verdict():
    # docomo's after-DATA "unknown user" read as a dead address from 2026-11-03 on (a config
    # period before the package's): the same row the day before is a reception filter
    configure({"providers": {"docomo": {"since": "2026-11-03", "unknown_user_after_data": "user_unknown"}}})
    try:
        table = CarrierTable.from_config(None)
        buffer = EventBuffer(table)
        day = [(("docomo.ne.jp", "mfsmax.docomo.ne.jp[203.138.181.112]:25", "bounced",
                 _AFTER_DATA.format(f"u{i}@docomo.ne.jp"), "5.1.1", 550, "end_of_data", d),)
               for i, d in enumerate([date(2026, 11, 2), date(2026, 11, 3)])]
        first = _annotated(buffer, day[0] * 3, "postfix")
        second = _annotated(buffer, day[1] * 3, "postfix")   # the next block: what the first one cached
        both = _annotated(buffer, day[0] + day[1], "postfix")  # one block, both days
        assert [r[1] for r in first] == ["filtered"] * 3
        assert [r[1] for r in second] == ["user_unknown"] * 3
        assert [r[1] for r in both] == ["filtered", "user_unknown"]
        assert first + second + both == _expected(table, day[0] * 3 + day[1] * 3 + day[0] + day[1], "postfix")
    finally:
        configure(None)


def test_the_same_row_under_two_carrier_tables_gets_each_tables_verdict(package_tables):
    # one event buffer per carriers table, one classifier cache for the process
    event = ("example.jp", "mx.example.jp[192.0.2.1]:25", "bounced", _AFTER_DATA.format("taro@example.jp"),
             None, 550, "end_of_data", date(2026, 11, 3))
    plain = CarrierTable.from_config(None)
    mapped = CarrierTable.from_config({"docomo": ["example.jp"]})
    for order in ((plain, mapped, plain), (mapped, plain, mapped)):
        got = [_annotated(EventBuffer(table), [event], "postfix")[0] for table in order]
        assert got == [_expected(table, [event], "postfix")[0] for table in order]
        carriers = {table: row for table, row in zip(order, got)}
        assert carriers[plain][0] == "other" and carriers[mapped][0] == "docomo"
        assert carriers[plain][1] != carriers[mapped][1]   # docomo's after-DATA reading is its own



def test_local_rows_of_a_column_batch_are_the_rows_is_local_recipient_names():
    """The sink's column-wise test for deliveries to no address (numpy over the buffers, the
    pattern only where the first byte may start a local prefix) is records.is_local_recipient,
    on sliced and chunked arrays and with nulls too."""
    import pyarrow as pa

    from pipeline.ingest.sink import _local_rows
    from pipeline.store.records import domain_of, is_local_recipient

    values = ["root", "\\root", "|/usr/bin/procmail", '"|/usr/bin/procmail -a x@y"', "/var/mail/x", ":include:/etc/l",
              "a@b.jp", "a@", '"a b"@c.jp', ":x@y.jp", "/a@b.jp", '"q"@d.jp', "", "postmaster", "山田@例え.jp"] * 3
    rec, dom = pa.array(values), pa.array([domain_of(v) for v in values])
    want = [is_local_recipient(v, domain_of(v)) for v in values]
    assert 0 < sum(want) < len(want)
    assert _local_rows(rec, dom).tolist() == want
    assert _local_rows(rec.slice(5), dom.slice(5)).tolist() == want[5:]
    assert _local_rows(pa.chunked_array([rec[:7], rec[7:]]), pa.chunked_array([dom])).tolist() == want
    with_null = pa.array(values + [None]), pa.array([domain_of(v) for v in values] + [None])
    assert _local_rows(*with_null).tolist() == want + [False]
