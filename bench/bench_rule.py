"""Suppression rule benchmark: evaluate sql/suppression_candidates.sql over N events.

Usage: python bench/bench_rule.py [--events 10000000] [--addresses 1000000] [--workdir bench/out]
Builds a synthetic event store (vectorised, through pipeline.store.event_store.EventStore.write) once,
then times pipeline.suppression.store.evaluate() (DuckDB over the Parquet files) three times.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import load_config
from pipeline.store.event_store import EventStore
from pipeline.store.records import EVENT_SCHEMA
from pipeline.suppression.store import evaluate, parse_as_of

HERE = Path(__file__).resolve().parent
DOMAINS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "i.softbank.jp", "gmail.com", "example.com"]
CARRIERS = ["docomo", "au", "au", "softbank", "other", "other"]


def build(data_dir: Path, n_events: int, n_addr: int, days: int = 60, chunk: int = 2_000_000) -> None:
    rng = np.random.default_rng(1)
    store = EventStore(data_dir)
    start = np.datetime64("2026-09-01T00:00:00", "us").astype(np.int64)
    done = 0
    while done < n_events:
        n = min(chunk, n_events - done)
        addr = rng.integers(0, n_addr, n)
        dom = addr % len(DOMAINS)
        ts = start + rng.integers(0, days * 86400 * 1_000_000, n)
        r = rng.random(n)
        status = np.where(r < 0.9, "sent", np.where(r < 0.95, "deferred", "bounced"))
        reason = np.where(status == "sent", "delivered",
                          np.where(r < 0.93, "rate_limited", np.where(r < 0.985, "user_unknown", "filtered")))
        scope = np.where(status == "sent", "none", np.where(reason == "user_unknown", "recipient", "sender"))
        recipient = pc.binary_join_element_wise(
            "user", pc.cast(pa.array(addr), pa.string()), "@", pa.array(np.array(DOMAINS)[dom]), "")
        ids = pc.cast(pa.array(np.arange(done, done + n)), pa.string())
        cols = {
            "event_id": ids, "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "mta": pa.array(["postfix"] * n),
            "host": pa.nulls(n, pa.string()), "queue_id": pa.nulls(n, pa.string()), "message_id": pa.nulls(n, pa.string()),
            "sender": pa.nulls(n, pa.string()), "recipient": recipient,
            "recipient_domain": pa.array(np.array(DOMAINS)[dom]), "carrier": pa.array(np.array(CARRIERS)[dom]),
            "relay": pa.nulls(n, pa.string()), "status": pa.array(status), "dsn": pa.nulls(n, pa.string()),
            "reply_code": pa.nulls(n, pa.int16()), "smtp_phase": pa.nulls(n, pa.string()),
            "diagnostic": pa.array(np.where(status == "sent", "250 ok", "550 Unknown user")),
            "reason": pa.array(reason), "scope": pa.array(scope), "hard": pa.array(status == "bounced"),
            "source_file": pa.nulls(n, pa.string()), "source_offset": pa.array(np.arange(n), pa.int64()),
        }
        store.write(pa.table(cols, schema=EVENT_SCHEMA))
        done += n
        print(f"  built {done:,} events", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--addresses", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=str(HERE / "out"))
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    data = Path(args.workdir) / f"rule-{args.events}"
    if args.rebuild:
        shutil.rmtree(data, ignore_errors=True)
    if not (data / "events").is_dir():
        build(data, args.events, args.addresses)
    cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
    as_of = parse_as_of("2026-12-31", cfg)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        df = evaluate(cfg, as_of)
        times.append(time.perf_counter() - t0)
    print(f"{args.events:,} events, {args.addresses:,} addresses: {len(df):,} addresses marked; "
          f"evaluate() best {min(times):.2f} s, runs {', '.join(f'{t:.2f}' for t in times)} s")


if __name__ == "__main__":
    main()
