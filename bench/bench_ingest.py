"""Ingest benchmark: our full ingest (parse, classify, write Parquet) vs pflogsumm --detail 0,
in the same run on the same generated Postfix log; peak memory at 1M and 5M lines.

Usage: python bench/bench_ingest.py [--sizes 1000000 5000000] [--repeat 3] [--workdir bench/out]

Each size is measured --repeat times, ours and pflogsumm one after the other each time (so a
slow spell of a shared machine hits both), and the ratio is taken per pair. Prints every run
and a Markdown table of the medians (paste it into BENCHMARKS.md).
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


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one command, in its own child process."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed (status {status})")
    return wall, usage.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=str(HERE / "out"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    pflogsumm = shutil.which("pflogsumm")
    # byte-compile the package first, as `pip install` does for an installed one (an editable
    # install with PYTHONDONTWRITEBYTECODE set would compile every module on every run)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "pipeline")], check=True)
    rows = []
    for n in args.sizes:
        log = work / f"postfix-{n}.log"
        if not log.exists():
            subprocess.run([sys.executable, str(HERE / "gen_postfix_log.py"), str(log), "--lines", str(n)], check=True)
        data = work / f"data-{n}"
        runs = []
        for _ in range(args.repeat):
            shutil.rmtree(data, ignore_errors=True)
            ours, ours_mb = run_measured([str(VENV_BIN / "mailhygiene"), "--data-dir", str(data), "--timezone", "Asia/Tokyo",
                                          "ingest", "--year", "2026", "--no-progress", str(log)])
            theirs = run_measured([pflogsumm, "--detail", "0", str(log)])[0] if pflogsumm else float("nan")
            runs.append((ours, ours_mb, theirs))
            print(f"{n:>9,} lines: ours {n / ours:,.0f} lines/s ({ours:.2f} s, peak {ours_mb} MB); "
                  f"pflogsumm {n / theirs:,.0f} lines/s ({theirs:.2f} s); ratio {theirs / ours:.2f}x", flush=True)
        rows.append((n, runs))
    print()
    print(f"| lines | mailhygiene ingest (median of {args.repeat}) | peak RSS | pflogsumm --detail 0 (median) | ours / pflogsumm, each run |")
    print("|---:|---:|---:|---:|---:|")
    for n, runs in rows:
        ours = statistics.median(r[0] for r in runs)
        theirs = statistics.median(r[2] for r in runs)
        ratios = ", ".join(f"{t / o:.2f}x" for o, _, t in runs)
        print(f"| {n:,} | {n / ours:,.0f} lines/s ({ours:.2f} s) | {max(r[1] for r in runs)} MB "
              f"| {n / theirs:,.0f} lines/s ({theirs:.1f} s) | {ratios} |")

if __name__ == "__main__":
    main()
