"""The suppression rule on DuckDB and on Spark (local mode) over the same events.

Usage:
  python bench/bench_engines.py build --events 10000000 --out bench/out/engines/10m
  python bench/bench_engines.py config --data bench/out/engines/10m [--lake] [--master local[2]]
  python bench/bench_engines.py run --engine duckdb|spark --data bench/out/engines/10m [--lake]
                                    [--repeat 3] [--master local[2]]

`build` writes a synthetic event store through pipeline.store.event_store.EventStore (60 days,
one address per 10 events, 7 % of attempts failed, ~4.7 % counted errors; Japanese carrier replies with UTF-8
text, 20-hex event ids, many equal time stamps), then the same files as node mta01 of a lake
directory <out>/lake plus a copy of one day as node mta02 (a log shipped twice, so the lake's
each-event-once view has work to do).
`config` writes (and prints the path of) the config the console command reads for that data:
<data>/bench-store.toml (the single store) or <data>/bench-lake.toml (the lake, read centrally),
so the whole-process measure is the command itself, on either engine (BENCHMARKS.md):
  mailhygiene --config bench/out/engines/10m/bench-store.toml suppress --dry-run --json \
      --as-of 2026-11-30 --engine spark
`run` opens the engine in this process on the store (or the lake with --lake), runs the rule's
two steps (sql/counted_errors.sql kept on the engine, then sql/suppression_candidates.sql)
`--repeat` times and prints one JSON line: the start-up seconds, each run's seconds, the row
count and a digest of the rows (normalised, every column), which must be the same on both
engines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline.core.config import load_config  # noqa: E402
from pipeline.store.event_store import EventStore  # noqa: E402
from pipeline.store.records import EVENT_SCHEMA  # noqa: E402

DOMAINS = np.array(["docomo.ne.jp", "ezweb.ne.jp", "au.com", "i.softbank.jp", "softbank.ne.jp", "gmail.com",
                    "yahoo.co.jp", "example.co.jp"])
CARRIERS = np.array(["docomo", "au", "au", "softbank", "softbank", "other", "other", "other"])
REPLIES = np.array([
    "550 Unknown user {r}",
    "550 5.1.1 <{r}>: Recipient address rejected: User unknown in local recipient table",
    "552 5.2.2 メールボックスの容量を超えています (mailbox full)",
    "550 Invalid recipient: <{r}>",
    "421 4.7.0 [TSS04] Messages temporarily deferred due to user complaints 一時的に受信を制限しています",
    "550 5.7.1 Message rejected as spam by Content Filtering. 迷惑メールと判定されました",
])
REASON_OF_REPLY = np.array(["user_unknown", "user_unknown", "mailbox_full", "user_unknown", "rate_limited", "filtered"])
SCOPE_OF_REPLY = np.array(["recipient", "recipient", "recipient", "recipient", "sender", "sender"])
AS_OF = datetime(2026, 11, 30, 14, 59, 59, 999999, tzinfo=timezone.utc)


def build(out: Path, n_events: int, days: int = 60, chunk: int = 2_000_000) -> None:
    rng = np.random.default_rng(20261130)
    if out.exists():
        shutil.rmtree(out)
    store = EventStore(out / "store")
    n_addr = max(1000, n_events // 10)
    start = np.datetime64("2026-10-01T00:00:00", "s").astype(np.int64)
    done = 0
    while done < n_events:
        n = min(chunk, n_events - done)
        addr = rng.integers(0, n_addr, n)
        dom = addr % len(DOMAINS)
        # whole seconds, campaigns at the top of the hour: many equal time stamps, as in real logs
        ts = (start + rng.integers(0, days * 24, n) * 3600 + rng.integers(0, 60, n) * (rng.random(n) < 0.5)) * 1_000_000
        r = rng.random(n)
        failed = r >= 0.93
        reply = rng.integers(0, len(REPLIES), n)
        status = np.where(~failed, "sent", np.where(r < 0.97, "deferred", "bounced"))
        local = pc.binary_join_element_wise("u", pc.cast(pa.array(addr), pa.string()), "")
        recipient = pc.binary_join_element_wise(local, pa.array(DOMAINS[dom]), "@")
        diag_template = pa.array(np.where(failed, REPLIES[reply], "250 2.0.0 Ok: queued as 4XyZ1k0bQz"))
        diagnostic = _fill(diag_template, recipient)
        ids = pc.utf8_slice_codeunits(pc.binary_join_element_wise(
            pa.array(np.char.mod("%016x", rng.integers(0, 2**62, n))), pa.array(np.char.mod("%04x", np.arange(done, done + n) % 65536)), ""), 0, 20)
        cols = {
            "event_id": ids, "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "mta": pa.array(np.where(rng.random(n) < 0.8, "postfix", "sendmail")),
            "host": pa.array(np.char.mod("mx%02d", rng.integers(1, 9, n))), "queue_id": pa.nulls(n, pa.string()),
            "message_id": pa.nulls(n, pa.string()), "sender": pa.array(["news@mail.example.jp"] * n),
            "recipient": recipient, "recipient_domain": pa.array(DOMAINS[dom]), "carrier": pa.array(CARRIERS[dom]),
            "relay": pa.nulls(n, pa.string()), "status": pa.array(status),
            "dsn": pa.array(np.where(failed, np.where(reply == 4, "4.7.0", "5.1.1"), "2.0.0")),
            "reply_code": pa.array(np.where(failed, np.where(reply == 4, 421, 550), 250).astype(np.int16)),
            "smtp_phase": pa.array(np.where(failed, "rcpt", "end_of_data")),
            "diagnostic": diagnostic,
            "reason": pa.array(np.where(failed, REASON_OF_REPLY[reply], "delivered")),
            "scope": pa.array(np.where(failed, SCOPE_OF_REPLY[reply], "none")),
            "hard": pa.array(status == "bounced"), "source_file": pa.array(["/var/log/mail.log"] * n),
            "source_offset": pa.array(np.arange(done, done + n) * 180, pa.int64()),
        }
        order = np.argsort(ts, kind="stable")  # a log is in time order
        store.write(pa.table(cols, schema=EVENT_SCHEMA).take(pa.array(order)))
        done += n
        print(f"  built {done:,} events", flush=True)
    # the lake: every file as node mta01, the first day's files again as node mta02
    lake = out / "lake" / "events"
    for f in store.files():
        day_dir = lake / "node=mta01" / f.parent.name
        day_dir.mkdir(parents=True, exist_ok=True)
        os.link(f, day_dir / f.name)
    first_day = store.partitions()[0]
    for f in sorted(first_day.glob("*.parquet")):
        d = lake / "node=mta02" / first_day.name
        d.mkdir(parents=True, exist_ok=True)
        os.link(f, d / f.name)


def _fill(templates: pa.Array, recipients: pa.Array) -> pa.Array:
    parts = pc.split_pattern(templates, "{r}")
    heads = pc.list_element(parts, 0)
    has = pc.greater(pc.list_value_length(parts), 1)
    tails = pc.if_else(has, pc.list_element(pc.if_else(has, parts, pa.array([["", ""]] * len(parts))), 1), "")
    return pc.if_else(has, pc.binary_join_element_wise(heads, recipients, tails, ""), templates)


def write_config(data: Path, lake: bool, master: str) -> Path:
    """The config of the bench data: the store (a single machine) or the lake read centrally."""
    toml = data / ("bench-lake.toml" if lake else "bench-store.toml")
    lines = ['timezone = "Asia/Tokyo"', f'data_dir = "{data / "central"}"' if lake else f'data_dir = "{data / "store"}"']
    if lake:
        lines += ["[store]", f'url = "{data / "lake"}"']
    lines += ["[spark]", f'master = "{master}"', "shuffle_partitions = 8", 'driver_memory = "4g"']
    toml.write_text("\n".join(lines) + "\n")
    return toml


def run(data: Path, engine_name: str, lake: bool, repeat: int, master: str) -> dict:
    from pipeline.lake.engines import normalise, open_engine

    cfg = load_config(write_config(data, lake, master))
    r = cfg.rule
    params = {"tz": cfg.timezone_name, "as_of": AS_OF, "min_errors": r.min_errors, "min_days": r.min_days,
              "window_days": r.window_days, "counted_reasons": list(r.counted_reasons)}
    t0 = time.perf_counter()
    engine = open_engine(cfg, engine_name)
    empty_releases = pa.table({"address": pa.array([], pa.string()),
                               "released_at": pa.array([], pa.timestamp("us", tz="UTC"))})
    engine.register("releases", empty_releases)
    from pipeline.suppression.store import HISTORY_SCHEMA

    engine.register("suppression_history", HISTORY_SCHEMA.empty_table())
    opened = time.perf_counter() - t0
    times, table = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        engine.keep("bounce_mails", params, table="bounce_mails")  # the rule's first steps
        engine.keep("counted_errors", params, table="counted_errors")
        table = engine.query("suppression_candidates", params)
        times.append(round(time.perf_counter() - t, 3))
    rows = normalise(table).to_pylist()
    digest = hashlib.sha256(json.dumps(rows, default=str, ensure_ascii=False).encode()).hexdigest()[:16]
    events = engine.sql("SELECT count(*) AS n FROM events").column("n").to_pylist()[0]
    return {"engine": engine_name, "source": "lake" if lake else "store", "events": events, "open_s": round(opened, 3),
            "runs_s": times, "rows": len(rows), "digest": digest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--events", type=int, required=True)
    b.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("config")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--lake", action="store_true")
    c.add_argument("--master", default="local[2]")
    r = sub.add_parser("run")
    r.add_argument("--engine", choices=("duckdb", "spark"), required=True)
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--lake", action="store_true")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--master", default="local[2]")
    a = ap.parse_args()
    if a.cmd == "build":
        build(a.out, a.events)
    elif a.cmd == "config":
        print(write_config(a.data.resolve(), a.lake, a.master))
    else:
        print(json.dumps(run(a.data.resolve(), a.engine, a.lake, a.repeat, a.master)), flush=True)


if __name__ == "__main__":
    main()
