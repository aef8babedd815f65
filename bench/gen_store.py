"""Build a large event store cheaply: rows written straight through the store's own writer.

Usage: python bench/gen_store.py DATA_DIR [--events 1000000] [--days 30] [--files-per-day 4]
       [--addresses 200000] [--seed 1] [--end 2026-12-01]

Writes --events rows spread evenly over --days UTC days ending the day before --end, each day in
--files-per-day write() calls (so that many Parquet files per day, as many ingest commits make),
through pipeline.store.event_store.EventStore.write (the one Parquet writer: its layout, its
dictionary and statistics columns). The rows are shaped like a bulk sender's: --addresses
recipients over the four carrier domains and a few others, about 85 % sent, 9 % bounced (user
unknown / filtered / mailbox full), 6 % deferred. The ids are random 20-hex-digit ids (the
shape of records.event_id_for). For the scale benchmarks of BENCHMARKS.md ("Large inputs"),
not for correctness tests (use tests/fixtures.py there).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.store.event_store import EventStore  # noqa: E402
from pipeline.store.records import EVENT_SCHEMA  # noqa: E402

DOMAINS = [("docomo.ne.jp", "docomo"), ("ezweb.ne.jp", "au"), ("au.com", "au"), ("softbank.ne.jp", "softbank"),
           ("i.softbank.jp", "softbank"), ("gmail.com", "other"), ("yahoo.co.jp", "other"), ("example.co.jp", "other")]
OUTCOMES = [  # status, reason, scope, hard, dsn, code, diagnostic, share
    ("sent", "delivered", "none", False, "2.0.0", 250, "250 2.0.0 OK", 0.85),
    ("bounced", "user_unknown", "recipient", True, "5.1.1", 550, "550 5.1.1 <x>: User unknown", 0.06),
    ("bounced", "filtered", "recipient", True, "5.7.1", 550, "550 5.7.1 rejected by recipient's filter", 0.02),
    ("bounced", "mailbox_full", "recipient", False, "5.2.2", 552, "552 5.2.2 Mailbox full", 0.01),
    ("deferred", "rate_limited", "sender", False, "4.7.0", 421, "421 4.7.0 too many connections", 0.06),
]


def _ids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = rng.integers(0, 256, size=n * 10, dtype=np.uint8).tobytes()
    data = raw.hex().encode()
    offsets = np.arange(0, 20 * n + 1, 20, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _pick(values: list, idx: np.ndarray, typ) -> pa.Array:
    return pc.take(pa.array(values, typ), pa.array(idx))


def day_table(rng: np.random.Generator, day: date, n: int, addresses: int, offset: int) -> pa.Table:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    us = np.sort(rng.integers(0, 86_400_000_000, size=n))
    ts = pa.array(np.datetime64(start.replace(tzinfo=None), "us") + us.astype("timedelta64[us]"),
                  pa.timestamp("us", tz="UTC"))
    who = rng.integers(0, addresses, size=n)
    dom = who % len(DOMAINS)
    local = pc.binary_join_element_wise(pa.array(np.full(n, "u")), pc.cast(pa.array(who), pa.string()), "")
    domain = _pick([d for d, _ in DOMAINS], dom, pa.string())
    shares = np.cumsum([o[-1] for o in OUTCOMES])
    out = np.minimum(np.searchsorted(shares, rng.random(n)), len(OUTCOMES) - 1)
    col = lambda k, typ: _pick([o[k] for o in OUTCOMES], out, typ)  # noqa: E731
    cols = {
        "event_id": _ids(rng, n), "ts": ts, "mta": pa.array(["postfix"] * n),
        "host": pa.array(["mx1"] * n),
        "queue_id": pc.cast(pa.array(rng.integers(1 << 40, 1 << 44, size=n)), pa.string()),
        "message_id": pa.nulls(n, pa.string()), "sender": pa.array(["news@mail.example.jp"] * n),
        "recipient": pc.binary_join_element_wise(local, domain, "@"), "recipient_domain": domain,
        "carrier": _pick([c for _, c in DOMAINS], dom, pa.string()), "relay": pa.nulls(n, pa.string()),
        "status": col(0, pa.string()), "dsn": col(4, pa.string()), "reply_code": col(5, pa.int16()),
        "smtp_phase": pa.array(["rcpt"] * n), "diagnostic": col(6, pa.string()), "reason": col(1, pa.string()),
        "scope": col(2, pa.string()), "hard": col(3, pa.bool_()), "source_file": pa.array(["/var/log/mail.log"] * n),
        "source_offset": pa.array(np.arange(offset, offset + n, dtype=np.int64)),
    }
    return pa.table(cols, schema=EVENT_SCHEMA)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--files-per-day", type=int, default=4)
    ap.add_argument("--addresses", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end", default="2026-12-01")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    store = EventStore(a.data_dir)
    end = date.fromisoformat(a.end)
    per_day = a.events // a.days
    t0 = time.monotonic()
    offset = 0
    for d in range(a.days):
        day = end - timedelta(days=a.days - d)
        n = per_day + (a.events - per_day * a.days if d == a.days - 1 else 0)
        table = day_table(rng, day, n, a.addresses, offset)
        offset += n
        step = -(-n // a.files_per_day)
        for i in range(0, n, step):
            store.write(table.slice(i, step))
    print(f"{a.events:,} events over {a.days} days, {a.files_per_day} files a day, in {a.data_dir} "
          f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
