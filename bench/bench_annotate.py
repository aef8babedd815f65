"""CPU of EventBuffer.annotate (carrier and classification of the block readers' rows) on a real log.

Runs `mailhygiene ingest` of LOG in this process once, keeping the rows every block reader hands
to annotate (Postfix, sendmail, qmail), then times annotate over those blocks again, in this
thread: `--passes` passes, each with a new EventBuffer and, unless --warm, cleared classifier
caches (what one ingest process pays). Prints min and median seconds per pass.

    .venv/bin/python bench/bench_annotate.py pf-1000000.log
    .venv/bin/python bench/bench_annotate.py --warm sm-1000000.log
    (a realistic log: .venv/bin/python bench/gen_logs.py pf-1000000.log --mta postfix --lines 1000000)
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

from pipeline.classify import classifier
from pipeline.classify.carriers import CarrierTable
from pipeline.ingest import sink

INPUTS = ("recipient_domain", "relay", "status", "text", "dsn", "reply_code", "smtp_phase", "day")


def captured_blocks(log: str, year: int, timezone: str) -> list[tuple[str, dict]]:
    blocks: list[tuple[str, dict]] = []
    lock = threading.Lock()
    annotate = sink.EventBuffer.annotate

    def keeping(self, rows: dict, mta: str = "postfix") -> None:
        with lock:
            blocks.append((mta, {name: rows[name] for name in INPUTS}))
        annotate(self, rows, mta)

    sink.EventBuffer.annotate = keeping
    try:
        from pipeline.cli import cli
        with tempfile.TemporaryDirectory() as data:
            cli(["--data-dir", data, "--timezone", timezone, "ingest", "--year", str(year), "--no-progress", log],
                prog_name="mailhygiene", standalone_mode=False)
    finally:
        sink.EventBuffer.annotate = annotate
    return blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--warm", action="store_true", help="keep the classifier caches between passes")
    ap.add_argument("--year", type=int, default=2026)
    ap.add_argument("--timezone", default="Asia/Tokyo")
    a = ap.parse_args()
    blocks = captured_blocks(a.log, a.year, a.timezone)
    times = []
    for _ in range(a.passes):
        if not a.warm:
            classifier.cache_clear()
        buffer = sink.EventBuffer(CarrierTable.from_config(None))
        start = time.thread_time()
        for mta, rows in blocks:
            buffer.annotate(dict(rows), mta)
        times.append(time.thread_time() - start)
    times.sort()
    rows = sum(len(r["status"]) for _, r in blocks)
    print(f"{a.log}: {len(blocks)} blocks, {rows} rows; annotate CPU per pass ({'warm' if a.warm else 'cold'} "
          f"classifier, {a.passes} passes): min {times[0]:.4f} s, median {times[len(times) // 2]:.4f} s")


if __name__ == "__main__":
    main()
