"""The upload after each commit of a followed node (`watch` with `[store] url`), as history grows.

Usage: python bench/bench_lake_upload.py WORK_DIR [--commits 2000] [--rows 50] [--every 200]

A node's store and a shared-directory lake under WORK_DIR (both made fresh). Each commit writes
--rows events of one day through the event store (what `watch` does every flush_interval, 5 s
by default), then runs the upload (lake.upload.Uploader, what watch_hook runs after each commit);
when the day holds more than 32 files, the small ones are merged as `watch` merges them
(EventStore.compact(min_files=16, max_file_bytes=16 MiB), the values of ingest.engine). Every
--every commits it prints the mean upload time of the last --every commits, the ledger's size on
disk and the lake's object count, so a cost that grows with the node's history shows as a
growing column. BENCHMARKS.md ("Large inputs") has the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_store import day_table  # noqa: E402

from pipeline.lake.upload import Uploader  # noqa: E402
from pipeline.lake.url import parse_url  # noqa: E402
from pipeline.ingest.engine import COMPACT_FILES  # noqa: E402
from pipeline.store.event_store import SMALL_FILE_BYTES, EventStore  # noqa: E402


def main(argv=None) -> int:
    import numpy as np
    from datetime import date

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work_dir")
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--days", type=int, default=1, help="days the commits cycle through")
    a = ap.parse_args(argv)
    work = Path(a.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    data, lake = work / "node", parse_url(str(work / "lake"))
    store = EventStore(data)
    rng = np.random.default_rng(1)
    spent = 0.0
    print(f"{'commits':>8} {'upload ms':>10} {'ledger KB':>10} {'lake objects':>13}")
    for i in range(1, a.commits + 1):
        day = date(2026, 11, 1 + (i % a.days))
        store.write(day_table(rng, day, a.rows, 100_000, i * a.rows))
        t = time.perf_counter()
        Uploader(data, lake, "mta01").run()
        spent += time.perf_counter() - t
        if len(store.files(day.isoformat())) > COMPACT_FILES:
            store.compact(day.isoformat(), min_files=COMPACT_FILES // 2, max_file_bytes=SMALL_FILE_BYTES)
        if i % a.every == 0:
            ledger = sum(p.stat().st_size for p in (data / "lake").rglob("uploaded-*") if p.is_file())
            ledger += sum(p.stat().st_size for p in (data / "lake").rglob("uploaded-*/*") if p.is_file())
            objects = sum(1 for _ in Path(lake.root).rglob("*.parquet"))
            print(f"{i:8} {spent / a.every * 1000:10.1f} {ledger / 1024:10.1f} {objects:13}", flush=True)
            spent = 0.0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
