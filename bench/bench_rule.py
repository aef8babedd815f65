"""Suppression benchmark: `mailhygiene suppress` end to end against the bare rule SQL run by
plain DuckDB over the same files (issue 16: at most 1.2x, start-up included; peak < 600 MB).

Usage: python bench/bench_rule.py [--events 10000000] [--addresses 1000000] [--repeat 5]
                                  [--workdir bench/out] [--rebuild]

Builds a synthetic event store once (vectorised, through EventStore.write: 60 days, 90 % sent,
the rest deferred/bounced with rate limiting, user unknown and filtered reasons). Then, --repeat
times and in turn, whole processes (the list is put in place before each run, outside the timing):
  plain backfill     python bench/rule_plain_duckdb.py DATA  (duckdb only: the rule's two SQL steps,
                     sql/counted_errors.sql then sql/suppression_candidates.sql, rows fetched)
  suppress backfill  mailhygiene suppress, no list yet: every marked address is new (the worst
                     case: the guard judges entries whose errors span the whole store)
  dry-run backfill   the same with --dry-run (the rule only, nothing written), and with
                     --check-guard (rule and guard)
  plain nightly      the rule SQL as of the last day
  suppress nightly   the list as the run of the day before left it; tonight's run adds the
                     addresses whose windows closed on the last day (the daily case)
Each child's wall time, CPU time and peak RSS come from os.wait4; ratios are taken run by run
against the plain run of the same round. Prints every run and the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
DOMAINS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "i.softbank.jp", "gmail.com", "example.com"]
CARRIERS = ["docomo", "au", "au", "softbank", "other", "other"]
AS_OF = "2026-12-31"          # after every event: the first run over a store (a backfill)
NIGHTLY_BEFORE = "2026-10-29"  # the list as a nightly job left it the day before ...
NIGHTLY = "2026-10-30"         # ... and tonight's run (the events end on 2026-10-31 JST)


def build(data_dir: Path, n_events: int, n_addr: int, days: int = 60, chunk: int = 2_000_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.store.event_store import EventStore
    from pipeline.store.records import EVENT_SCHEMA

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


def measured(cmd: list[str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of one command in its own child process."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = child.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (status {status}):\n{out}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--addresses", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", default=str(HERE / "out"))
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    data = Path(args.workdir) / f"rule-{args.events}"
    if args.rebuild:
        shutil.rmtree(data, ignore_errors=True)
    if not (data / "events").is_dir():
        build(data, args.events, args.addresses)
    # byte-compiled as an installed package is (this machine sets PYTHONDONTWRITEBYTECODE)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "pipeline")], check=True)
    mh = [str(VENV_BIN / "mailhygiene"), "--data-dir", str(data), "--timezone", "Asia/Tokyo"]
    plain = [sys.executable, str(HERE / "rule_plain_duckdb.py"), str(data)]
    # the nightly case: the list holds what the rule found up to the day before the last day
    nightly_state = Path(args.workdir) / f"rule-{args.events}-nightly-list"
    if not nightly_state.is_dir():
        shutil.rmtree(data / "suppression", ignore_errors=True)
        subprocess.run(mh + ["suppress", "--force", "--as-of", NIGHTLY_BEFORE], check=True, stdout=subprocess.DEVNULL)
        shutil.copytree(data / "suppression", nightly_state)
    cases = {  # name: (command, list state before each run: None = no list)
        "plain backfill": (plain + ["--as-of", f"{AS_OF}T23:59:59.999999+09:00"], None),
        "suppress backfill": (mh + ["suppress", "--as-of", AS_OF], None),
        "dry-run backfill": (mh + ["suppress", "--dry-run", "--as-of", AS_OF], None),
        "dry-run+guard backfill": (mh + ["suppress", "--dry-run", "--check-guard", "--as-of", AS_OF], None),
        "plain nightly": (plain + ["--as-of", f"{NIGHTLY}T23:59:59.999999+09:00"], None),
        "suppress nightly": (mh + ["suppress", "--as-of", NIGHTLY], nightly_state),
    }
    runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cases}
    print(f"load before: {os.getloadavg()[0]:.2f}")
    for i in range(args.repeat):
        for name, (cmd, state) in cases.items():
            shutil.rmtree(data / "suppression", ignore_errors=True)  # outside the timing
            if state is not None:
                shutil.copytree(state, data / "suppression")
            wall, cpu, mb, out = measured(cmd)
            runs[name].append((wall, cpu, mb))
            marked = next((ln for ln in out.splitlines() if "new entries" in ln or "marked" in ln), "").strip()
            print(f"  run {i + 1} {name:22} wall {wall:5.2f} s  cpu {cpu:5.2f} s  peak {mb:4d} MB  {marked}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    for name, base in (("suppress backfill", "plain backfill"), ("dry-run backfill", "plain backfill"),
                       ("dry-run+guard backfill", "plain backfill"),
                       ("suppress nightly", "plain nightly")):
        ours, theirs = runs[name], runs[base]
        wall_ratios = [r[0] / b[0] for r, b in zip(ours, theirs)]
        cpu_ratios = [r[1] / b[1] for r, b in zip(ours, theirs)]
        print(f"{name}: median wall {statistics.median(r[0] for r in ours):.2f} s vs {base} "
              f"{statistics.median(b[0] for b in theirs):.2f} s; wall ratio per pair "
              f"{', '.join(f'{x:.2f}' for x in wall_ratios)} (median {statistics.median(wall_ratios):.2f}); "
              f"CPU ratio per pair {', '.join(f'{x:.2f}' for x in cpu_ratios)} (median {statistics.median(cpu_ratios):.2f}); "
              f"peak {max(r[2] for r in ours)} MB ({base} {max(b[2] for b in theirs)} MB)")


if __name__ == "__main__":
    main()
