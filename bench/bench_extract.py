"""CPU of the Postfix block path's reader-thread work without annotate: engine._extract (the
foreign / RFC 5424 checks, then postfix_block.extract) over a log's blocks.

The log is cut into blocks as ingest cuts it (16 MiB, at a newline), then `--passes` passes run
_extract over all of them in this thread, each with a new ParseContext (as one ingest process
pays: every minute of the log worked out again). Prints the first pass (fresh memory, as in a
real run) and the min and median of all, seconds of thread CPU. `--native 0` uses the numpy
scanner (MAILHYGIENE_NATIVE=0).

    .venv/bin/python bench/bench_extract.py pf-1000000.log
    (a realistic log: .venv/bin/python bench/gen_logs.py pf-1000000.log --mta postfix --lines 1000000)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from zoneinfo import ZoneInfo


def log_blocks(path: str) -> list[bytes]:
    """The log at `path` cut as ingest cuts it: blocks of up to source.BLOCK_BYTES (16 MiB) that
    end at a newline (also bench/bench_scan.py)."""
    from pipeline.ingest import source

    with open(path, "rb") as f:
        text = f.read()
    blocks, at = [], 0
    while at < len(text):
        end = text.rfind(b"\n", at, at + source.BLOCK_BYTES) + 1 if at + source.BLOCK_BYTES < len(text) else len(text)
        blocks.append(text[at:end])
        at = end
    return blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--year", type=int, default=2026)
    ap.add_argument("--timezone", default="Asia/Tokyo")
    ap.add_argument("--format", default="auto", help="auto: the foreign-MTA check too (as ingest --format auto)")
    ap.add_argument("--native", default="1")
    a = ap.parse_args()
    os.environ["MAILHYGIENE_NATIVE"] = a.native
    from pipeline.ingest import engine
    from pipeline.ingest.parsers import postfix_block
    from pipeline.ingest.parsers.common import ParseContext

    blocks = log_blocks(a.log)
    check = "postfix" if a.format == "auto" else None
    times = []
    for _ in range(a.passes):
        ctx = ParseContext(tz=ZoneInfo(a.timezone), year=a.year, source_file=a.log)
        start = time.thread_time()
        for block in blocks:
            if engine._extract(postfix_block, block, ctx, None, check) is None:
                sys.exit(f"a block of {a.log} is not read column-wise (another MTA's or RFC 5424 lines)")
        times.append(time.thread_time() - start)
    first = times[0]
    times.sort()
    print(f"{a.log}: {len(blocks)} blocks; _extract CPU per pass (no annotate, {a.passes} passes): "
          f"first {first:.4f} s, min {times[0]:.4f} s, median {times[len(times) // 2]:.4f} s")


if __name__ == "__main__":
    main()
