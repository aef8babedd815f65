"""A rule benchmark store with bounce-mail rows: bench/bench_rule.py's synthetic events plus
1 % rows read from bounce mails (mta mailhygiene, no queue id: what sql/counted_errors.sql binds
to mail we sent), half returning a Message-ID that no row names, half none, over addresses in
the store (BENCHMARKS.md "Bounce-mail binding").

Usage: python bench/gen_bounce_rows.py DATA [--events 3000000] [--addresses 300000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rule import CARRIERS, DOMAINS, build  # noqa: E402


def main() -> None:
    import numpy as np
    import pyarrow as pa

    from pipeline.store.event_store import EventStore
    from pipeline.store.records import EVENT_SCHEMA

    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--addresses", type=int, default=300_000)
    a = ap.parse_args()
    data = Path(a.data)
    build(data, a.events, a.addresses)
    rng = np.random.default_rng(2)
    n = a.events // 100
    addr = rng.integers(0, a.addresses, n)
    dom = addr % len(DOMAINS)
    start = np.datetime64("2026-09-01T00:00:00", "us").astype(np.int64)
    ts = start + rng.integers(0, 60 * 86400 * 1_000_000, n)
    rows = {"event_id": [f"b{i}" for i in range(n)], "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "mta": ["mailhygiene"] * n, "host": [None] * n, "queue_id": [None] * n,
            "message_id": [f"m{i}@mail.example.jp" if i % 2 else None for i in range(n)], "sender": [None] * n,
            "recipient": [f"user{x}@{DOMAINS[d]}" for x, d in zip(addr, dom)],
            "recipient_domain": [DOMAINS[d] for d in dom], "carrier": [CARRIERS[d] for d in dom],
            "relay": [None] * n, "status": ["bounced"] * n, "dsn": ["5.1.1"] * n,
            "reply_code": pa.array([550] * n, pa.int16()), "smtp_phase": ["rcpt"] * n,
            "diagnostic": ["550 5.1.1 user unknown"] * n, "reason": ["user_unknown"] * n,
            "scope": ["recipient"] * n, "hard": [True] * n, "source_file": ["mailhygiene-bounces:stdin"] * n,
            "source_offset": pa.array([0] * n, pa.int64())}
    EventStore(data).write(pa.table(rows, schema=EVENT_SCHEMA))
    print(f"{a.events:,} events and {n:,} bounce-mail rows in {data}")


if __name__ == "__main__":
    main()
