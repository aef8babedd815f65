"""Ingest benchmark: `mailhygiene ingest` (parse, classify, write Parquet: the whole command) on
realistic logs of the three MTAs, side by side with its baselines on the same file, alternately.

Usage: python bench/bench_ingest.py [--mta postfix sendmail qmail] [--sizes 1000000 5000000]
       [--repeat 3] [--ascii] [--stamps traditional|rfc3339] [--splogger] [--only-ours] [--workdir bench/out]

The logs come from bench/gen_logs.py (a Japanese sender's traffic: Postfix 3.7 shapes with UTF-8
subject lines, SMTPUTF8 recipients and display names, a quarter of the messages deferred,
several relays; sendmail with multi-recipient lines, the MSP hop and reply=; qmail multilog).
--ascii writes the same traffic without any non-ASCII byte: the second row, never the headline.
--stamps rfc3339 writes it (postfix, sendmail) with the stamps rsyslog writes by default since
Debian 12 (`2026-11-01T00:00:02.140891+09:00`); --splogger writes qmail's lines through splogger
into syslog (qmail's own default rc) instead of multilog.

Each size is measured --repeat times; each time ours runs first, then each baseline, on the same
file, so a slow spell of a shared machine hits all of them. Baselines: `pflogsumm --detail 0`
(Postfix only; it only summarises) and a bare DuckDB one-regex scan (bench/duckdb_scan.py, the
floor). Every command runs in its own child process; wall time, CPU time (user + system of the
child) and peak RSS come from wait4(). Ratios are taken pair by pair; the table shows medians.
The package is byte-compiled first, as an installed one is. The fixed cost of a run (the same
command on a 20-line log) is measured first; "beyond start-up" is each run without it.
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS MB) of one command in its own child process."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} … failed (status {status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def count_lines(path: Path) -> tuple[int, int]:
    """(lines, lines with a non-ASCII byte), read in a stream: this process stays small, since a
    child's peak RSS as wait4() reports it starts from what was forked."""
    lines = non_ascii = 0
    with open(path, "rb") as fh:
        for line in fh:
            lines += 1
            non_ascii += not line.isascii()
    return lines, non_ascii


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mta", nargs="+", default=["postfix", "sendmail", "qmail"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ascii", action="store_true", help="ASCII-only logs (the second row)")
    ap.add_argument("--stamps", choices=("traditional", "rfc3339"), default="traditional",
                    help="syslog stamps of the generated logs (postfix, sendmail)")
    ap.add_argument("--splogger", action="store_true", help="qmail through splogger into syslog")
    ap.add_argument("--only-ours", action="store_true", help="no baselines (throughput and memory at large sizes)")
    ap.add_argument("--workdir", default=str(HERE / "out"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    pflogsumm = shutil.which("pflogsumm") or ("/usr/sbin/pflogsumm" if Path("/usr/sbin/pflogsumm").exists() else None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "pipeline")], check=True)
    kind = ("ascii" if args.ascii else "realistic") + ("-rfc3339" if args.stamps == "rfc3339" else "") \
        + ("-splogger" if args.splogger else "")
    gen_args = [*(["--ascii"] if args.ascii else []), "--stamps", args.stamps, *(["--splogger"] if args.splogger else [])]
    table = []
    startup = {}
    for mta in args.mta:
        # the fixed cost of a run (interpreter, imports, store and state set-up): the same
        # command on a 20-line log; "beyond start-up" in the table is the rest of each run
        head = work / f"{mta}-{kind}-20.log"
        if not head.exists():
            subprocess.run([sys.executable, str(HERE / "gen_logs.py"), str(head), "--mta", mta, "--lines", "20",
                            *gen_args], check=True)
        fixed = []
        for _ in range(max(args.repeat, 3)):
            shutil.rmtree(work / f"data-{mta}", ignore_errors=True)
            fixed.append(run_measured([str(VENV_BIN / "mailhygiene"), "--init-data-dir", "--data-dir", str(work / f"data-{mta}"),
                                       "--timezone", "Asia/Tokyo", "ingest", "--year", "2026", "--no-progress", str(head)]))
        startup[mta] = (statistics.median(w for w, _, _ in fixed), statistics.median(c for _, c, _ in fixed))
        print(f"{mta} start-up (a 20-line log, load {load()}): wall {startup[mta][0]:.2f} s, CPU {startup[mta][1]:.2f} s",
              flush=True)
        for n in args.sizes:
            log = work / f"{mta}-{kind}-{n}.log"
            if not log.exists():
                subprocess.run([sys.executable, str(HERE / "gen_logs.py"), str(log), "--mta", mta, "--lines", str(n),
                                *gen_args], check=True)
            lines, non_ascii = count_lines(log)
            data = work / f"data-{mta}"
            runs = []
            for _ in range(args.repeat):
                shutil.rmtree(data, ignore_errors=True)
                ours = run_measured([str(VENV_BIN / "mailhygiene"), "--init-data-dir", "--data-dir", str(data), "--timezone", "Asia/Tokyo",
                                     "ingest", "--year", "2026", "--no-progress", str(log)])
                base = {}
                if not args.only_ours:
                    base["duckdb"] = run_measured([sys.executable, str(HERE / "duckdb_scan.py"), str(log)])
                    if mta == "postfix" and pflogsumm:
                        base["pflogsumm"] = run_measured([pflogsumm, "--detail", "0", str(log)])
                runs.append((ours, base))
                text = f"{mta} {kind} {n:,} lines (load {load()}): ours {lines / ours[0]:,.0f} lines/s " \
                       f"(wall {ours[0]:.2f} s, CPU {ours[1]:.2f} s, peak {ours[2]} MB)"
                for name, (w, c, _) in base.items():
                    text += f"; {name} wall {w:.2f} s, CPU {c:.2f} s"
                    if name == "pflogsumm":
                        text += f" -> ours {w / ours[0]:.2f}x (CPU {c / ours[1]:.2f}x)"
                    else:
                        text += f" -> ours at {100 * w / ours[0]:.0f} % of its speed (CPU {100 * c / ours[1]:.0f} %)"
                print(text, flush=True)
            table.append((mta, n, lines, non_ascii, runs))
    print()
    print(f"| log ({kind}) | lines | non-ASCII lines | ours (median) | CPU | beyond start-up | peak RSS | "
          f"vs pflogsumm --detail 0: wall / CPU, each pair | ours as % of DuckDB scan speed: wall / CPU, each pair |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for mta, n, lines, non_ascii, runs in table:
        wall = statistics.median(r[0][0] for r in runs)
        cpu = statistics.median(r[0][1] for r in runs)
        rss = max(r[0][2] for r in runs)
        pf = [(r[1]["pflogsumm"][0] / r[0][0], r[1]["pflogsumm"][1] / r[0][1]) for r in runs if "pflogsumm" in r[1]]
        dk = [(100 * r[1]["duckdb"][0] / r[0][0], 100 * r[1]["duckdb"][1] / r[0][1]) for r in runs if "duckdb" in r[1]]
        pf_txt = (f"**{statistics.median(x for x, _ in pf):.2f}x** / {statistics.median(y for _, y in pf):.2f}x "
                  f"({', '.join(f'{x:.2f}/{y:.2f}' for x, y in pf)})") if pf else "–"
        dk_txt = (f"**{statistics.median(x for x, _ in dk):.0f} %** / {statistics.median(y for _, y in dk):.0f} % "
                  f"({', '.join(f'{x:.0f}/{y:.0f}' for x, y in dk)})") if dk else "–"
        fixed_wall, fixed_cpu = startup[mta]
        beyond = (f"{lines / (wall - fixed_wall):,.0f} lines/s (CPU {cpu - fixed_cpu:.2f} s)"
                  if wall > fixed_wall else "–")
        print(f"| {mta} | {n:,} | {100 * non_ascii / max(lines, 1):.1f} % | {lines / wall:,.0f} lines/s ({wall:.2f} s) | "
              f"{cpu:.2f} s | {beyond} | {rss} MB | {pf_txt} | {dk_txt} |")


if __name__ == "__main__":
    main()
