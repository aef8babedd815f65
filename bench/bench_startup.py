"""Start-up of the `mailhygiene` command (issue 16 item 4): whole processes, wall and CPU.

Runs each command line --repeat times (default 15) in a fresh process, alternating with the bare
interpreter (`python -c pass`) so that a slow spell of a shared machine hits both, and prints
median / min / max of wall and CPU seconds (the child's user + sys from wait4), plus the median
overhead over the bare interpreter. The package is byte-compiled first, as an installed one is.
Targets: `mailhygiene --help` < 0.1 s, `suppression list` on an empty store < 0.15 s. The last
cases ingest a 20-line Postfix log (bench/gen_logs.py) into a fresh data dir each run (issue 13:
the fixed cost of an ingest), and import only click, numpy and pyarrow: the floor of any ingest.

Usage: python bench/bench_startup.py [--repeat N] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This run's own record of data dirs that held data (pipeline/store/vanished.py): the data dirs
# below are deleted and made again on purpose, which the developer's record would refuse.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="mh-bench-state-")

REPO = Path(__file__).resolve().parents[1]
ENTRY = "from pipeline.cli import main; main()"


# What every ingest imports, with the defaults pipeline.cli sets before numpy and pyarrow load.
FLOOR = ("import os; os.environ.setdefault('OPENBLAS_NUM_THREADS', '1'); "
         "os.environ.setdefault('ARROW_DEFAULT_MEMORY_POOL', 'system'); import click, numpy, pyarrow")
FRESH = "{fresh}"  # in a case's argv: a new, empty directory for each run (removed after it)


def run_once(argv: list[str]) -> tuple[float, float]:
    fresh = tempfile.mkdtemp(prefix="mh-startup-run-") if FRESH in "".join(argv) else None
    argv = [a.replace(FRESH, fresh) for a in argv] if fresh else argv
    try:
        return _run(argv)
    finally:
        if fresh:
            shutil.rmtree(fresh, ignore_errors=True)


def _run(argv: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: quiet, then exec
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="run only the cases whose name holds this")
    args = ap.parse_args()
    compileall.compile_dir(str(REPO / "pipeline"), quiet=1)
    empty = Path(tempfile.mkdtemp(prefix="mh-startup-"))
    py = sys.executable
    cases = {
        "mailhygiene --help": [py, "-c", ENTRY, "--help"],
        "mailhygiene --version": [py, "-c", ENTRY, "--version"],
        "mailhygiene config show": [py, "-c", ENTRY, "--data-dir", str(empty / "d"), "config", "show"],
        "mailhygiene suppression list (empty store)": [py, "-c", ENTRY, "--data-dir", str(empty / "d"),
                                                       "suppression", "list"],
        "mailhygiene ingest --help": [py, "-c", ENTRY, "ingest", "--help"],
        "mailhygiene ingest (20-line Postfix log)": [py, "-c", ENTRY, "--data-dir", FRESH + "/d", "--timezone",
                                                     "Asia/Tokyo", "ingest", "--year", "2026", "--no-progress",
                                                     str(small_log(empty))],
        "python: import click, numpy, pyarrow": [py, "-c", FLOOR],
    }
    cases = {name: argv for name, argv in cases.items() if args.only in name}
    floor_argv = [py, "-c", "pass"]
    try:
        measure(cases, floor_argv, args.repeat)
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def small_log(where: Path) -> Path:
    """20 lines of a Japanese sender's Postfix log (deliveries, deferrals, UTF-8 subjects)."""
    log = where / "postfix-20.log"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_logs.py"), str(log), "--lines", "20", "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    return log


def measure(cases: dict[str, list[str]], floor_argv: list[str], repeat: int) -> None:
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; {repeat} alternating pairs each")
    print(f"{'command':45} {'wall median':>11} {'min':>7} {'max':>7} {'cpu median':>10} {'over python -c pass':>20}")
    for name, argv in cases.items():
        run_once(argv)  # warm-up (page cache)
        ours, floor = [], []
        for _ in range(repeat):
            ours.append(run_once(argv))
            floor.append(run_once(floor_argv))
        walls = [w for w, _ in ours]
        over = statistics.median(w - f for (w, _), (f, _) in zip(ours, floor))
        print(f"{name:45} {statistics.median(walls):11.3f} {min(walls):7.3f} {max(walls):7.3f} "
              f"{statistics.median(c for _, c in ours):10.3f} {over:20.3f}")


if __name__ == "__main__":
    main()
