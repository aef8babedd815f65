"""Ingest benchmark: our full ingest (parse, classify, write Parquet) vs pflogsumm --detail 0,
in the same run on the same generated Postfix log; peak memory at 1M and 5M lines.

Usage: python bench/bench_ingest.py [--sizes 1000000 5000000] [--workdir bench/out]
Prints a Markdown table (paste it into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS of the child in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
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
        shutil.rmtree(data, ignore_errors=True)
        # each measurement in its own child process so peak RSS is that command's own
        ours, ours_mb = run_measured([str(VENV_BIN / "mailhygiene"), "--data-dir", str(data), "--timezone", "Asia/Tokyo",
                                      "ingest", "--year", "2026", "--no-progress", str(log)])
        if pflogsumm:
            theirs, _ = run_measured([pflogsumm, "--detail", "0", str(log)])
        else:
            theirs = float("nan")
        rows.append((n, ours, ours_mb, theirs))
        print(f"{n:>9,} lines: ours {n / ours:,.0f} lines/s ({ours:.1f} s, peak {ours_mb} MB); "
              f"pflogsumm {n / theirs:,.0f} lines/s ({theirs:.1f} s); ratio {theirs / ours:.2f}x", flush=True)
    print()
    print("| lines | mailhygiene ingest | peak RSS | pflogsumm --detail 0 | ours / pflogsumm |")
    print("|---:|---:|---:|---:|---:|")
    for n, ours, mb, theirs in rows:
        print(f"| {n:,} | {n / ours:,.0f} lines/s ({ours:.1f} s) | {mb} MB | {n / theirs:,.0f} lines/s ({theirs:.1f} s) | {theirs / ours:.2f}x |")


if __name__ == "__main__":
    main()
