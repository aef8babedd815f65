"""CPU of the compiled Postfix scanner alone (native.SCANNER.scan: scan_block with the thread's
reused buffers, the stops ingest passes) over a log's blocks, cut as ingest cuts them (16 MiB, at
a newline). Prints the min and median of `--passes` passes, seconds of thread CPU; `--gather`
also times gather() of two columns of the delivery lines (host and text, as postfix_block cuts
them) once all blocks are scanned (their lines out of cache, as in an ingest); `--lib`
times another build of the C (A/B: alternate runs with and without it).

    .venv/bin/python bench/bench_scan.py pf-1000000.log
    (a realistic log: .venv/bin/python bench/gen_logs.py pf-1000000.log --mta postfix --lines 1000000)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--passes", type=int, default=9)
    ap.add_argument("--gather", action="store_true")
    ap.add_argument("--lib", help="another build of postfix_scan.c to time (same ABI), e.g. main's")
    a = ap.parse_args()
    from bench_extract import log_blocks
    from pipeline.ingest import engine, native
    from pipeline.ingest.parsers.common import MAX_LINE_BYTES

    from pathlib import Path

    scanner = native.load(Path(a.lib)) if a.lib else native.SCANNER
    if scanner is None:
        sys.exit("no compiled scanner (make venv)")
    blocks = log_blocks(a.log)
    stops = (engine._RFC5424_START,)
    buffers = native.ScanBuffers()
    times, gathers = [], []
    for _ in range(a.passes):
        spent = gathered = 0.0
        slices = []
        for block in blocks:
            start = time.thread_time()
            s = scanner.scan(block, MAX_LINE_BYTES, buffers, stops)
            spent += time.thread_time() - start
            if a.gather:  # two columns of the delivery lines, as postfix_block cuts them
                slices.append(((s["d_host_s"].copy(), s["d_host_end"].copy()),
                               (s["d_status_end"] + 2, s["line_starts"][s["f_line"][s["d_fast"]] + 1] - 2)))
        if a.gather:  # once every block is scanned: the blocks' lines are out of cache, as in ingest
            for block, columns in zip(blocks, slices):
                data = np.frombuffer(block, np.uint8)
                start = time.thread_time()
                for starts, ends in columns:
                    scanner.gather(data, starts, ends)
                gathered += time.thread_time() - start
        times.append(spent)
        gathers.append(gathered)
    times.sort()
    gathers.sort()
    line = (f"{a.log}: {len(blocks)} blocks; scan CPU per pass ({a.passes} passes): "
            f"min {times[0]:.4f} s, median {times[len(times) // 2]:.4f} s")
    if a.gather:
        line += f"; gather of 2 delivery columns: min {gathers[0]:.4f} s, median {gathers[len(gathers) // 2]:.4f} s"
    print(line)


if __name__ == "__main__":
    main()
