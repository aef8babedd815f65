"""A central read of a lake of many small objects (what `watch` uploads: one per commit).

Usage: python bench/bench_lake_objects.py WORK_DIR [--objects 2500 10000] [--rows 50] [--days 10]

For each count, a fresh shared-directory lake under WORK_DIR holding that many objects of node
mta01 spread over --days days, each a copy of one --rows-event file written by the event store
(bench/gen_store.py rows); then pipeline.lake.read.connect_lake (listing, the `lake_events`
view, the repeated-ids table) and `SELECT count(*) FROM events`, each timed, in a child process
per count so the peak RSS is that count's. BENCHMARKS.md ("Large inputs") has the figures.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from pipeline.lake.read import connect_lake
from pipeline.lake.url import parse_url
t = time.perf_counter()
con = connect_lake(parse_url(sys.argv[1]))
t1 = time.perf_counter()
n = con.execute("SELECT count(*) FROM events").fetchone()[0]
t2 = time.perf_counter()
print(f"attach {{t1 - t:.1f}} s, count {{t2 - t1:.1f}} s ({{n}} events), peak RSS "
      f"{{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}} MB")
"""


def main(argv=None) -> int:
    import numpy as np

    from gen_store import day_table
    from pipeline.store.event_store import EventStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work_dir")
    ap.add_argument("--objects", type=int, nargs="+", default=[2500, 10000])
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--days", type=int, default=10)
    a = ap.parse_args(argv)
    work = Path(a.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    store = EventStore(work / "node")
    store.write(day_table(np.random.default_rng(1), date(2026, 11, 1), a.rows, 1000, 0))
    (one,) = store.files()
    child = work / "child.py"  # a file, not `python -c`: DuckDB draws no progress bar then
    child.write_text(CHILD.format(root=str(ROOT)))
    for n in a.objects:
        lake = work / f"lake{n}"
        for i in range(n):
            folder = lake / "events" / "node=mta01" / f"date=2026-11-{i % a.days + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(one, folder / f"part-{i:06d}.parquet")
        out = subprocess.run([sys.executable, str(child), str(lake)],
                             capture_output=True, text=True, check=True).stdout.strip()
        print(f"{n:7} objects: {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
