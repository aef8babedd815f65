"""Whole-process A/B timing of two commands, in alternating pairs.

Usage: python bench/ab_pairs.py [-n RUNS] [--warmup W] [--timeout SECONDS] [--vs "COMMAND_B"] -- COMMAND_A ...

Runs A, B, A, B, ... : first --warmup uncounted pairs (default 1), then -n counted pairs (default
7), so a machine whose speed drifts (other work starting or stopping, a warming cache) hits both
commands alike. COMMAND_B is one string split as a shell would (shlex, no shell runs it); A is the
argv after --. Without --vs only A runs. Each run is a child process of its own (stdin /dev/null,
output discarded), timed from outside: user and system CPU and peak RSS from wait4() (the child
and the descendants it waited for; peak is the largest single process), wall from a monotonic
clock around spawn and reap (a child's peak starts from the RSS of this process, about 13 MiB,
which it was spawned from). Prints each command's figures as min / median / max, then the
ratios A/B taken pair by pair (user, cpu = user + sys, wall) as min / median / max, and the exit
codes of a command if any of its runs failed. --timeout bounds the whole call: the running child
(its process group) is killed and what was counted so far is printed.
Exit status: 0; 1 if a run failed; 124 on timeout; 127 if a command cannot be started.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time

FIELDS = ("user s", "sys s", "cpu s", "wall s", "peak MiB")


class Deadline:
    """Kills the current child's process group when the whole call's time is up."""

    def __init__(self, seconds: float | None):
        self.at = None if seconds is None else time.monotonic() + seconds
        self.expired = False
        self.pid = 0
        signal.signal(signal.SIGALRM, self._fire)

    def _fire(self, signum, frame):
        self.expired = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def arm(self, pid: int) -> None:
        self.pid = pid
        if self.at is not None:
            signal.setitimer(signal.ITIMER_REAL, max(self.at - time.monotonic(), 1e-3))

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_measured(cmd: list[str], deadline: Deadline) -> tuple[int, tuple[float, ...]]:
    """(exit code, (user s, sys s, cpu s, wall s, peak MiB)) of one command in its own child."""
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline.arm(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
    except BaseException:                   # ^C: the child is in a session of its own
        os.killpg(child.pid, signal.SIGKILL)
        raise
    finally:
        deadline.disarm()
    wall = time.monotonic() - t0
    child.returncode = code = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
    user, sys_ = usage.ru_utime, usage.ru_stime
    return code, (user, sys_, user + sys_, wall, usage.ru_maxrss / 1024)


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def row(label: str, cells) -> None:
    print(f"{label:<18}" + "".join(f"  {c:>22}" for c in cells))


def report(names: dict[str, list[str]], runs: dict[str, list], codes: dict[str, list[int]]) -> None:
    for key, cmd in names.items():
        print(f"{key}: {shlex.join(cmd)}")
    print(f"{len(runs['A'])} counted run(s) each, {'alternating A B' if 'B' in names else 'A only'}; "
          f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    row("min / median / max", FIELDS)
    for key in names:
        row(key, (spread([r[i] for r in runs[key]], ".1f" if i == 4 else ".3f") for i in range(len(FIELDS))))
    if "B" in names:
        # ratio of each pair; a pair whose B figure is 0 (below the clock's grain) has none
        ratios = {i: [a[i] / b[i] for a, b in zip(runs["A"], runs["B"]) if b[i] > 0] for i in (0, 2, 3)}
        row("A/B pair by pair", (spread(ratios[i], ".3f") if i in ratios else "-" for i in range(len(FIELDS))))
    for key in names:
        if any(codes[key]):
            print(f"{key} failed: exit codes {' '.join(map(str, codes[key]))} (in run order, warm-up first)")


def main(argv: list[str]) -> int:
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 usage="%(prog)s [-n RUNS] [--warmup W] [--timeout S] [--vs COMMAND_B] -- COMMAND_A ...")
    ap.add_argument("-n", "--runs", type=int, default=7, help="counted runs of each command (7)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted runs of each first (1)")
    ap.add_argument("--timeout", type=float, help="bound on the whole call, seconds")
    ap.add_argument("--vs", metavar="COMMAND_B", help="the command A is compared with, one string")
    args = ap.parse_args(argv[:cut])
    names = {"A": argv[cut + 1:]}
    if not names["A"]:
        ap.error("no COMMAND_A after --")
    if args.vs is not None:
        names["B"] = shlex.split(args.vs)
    runs = {key: [] for key in names}
    codes = {key: [] for key in names}
    deadline = Deadline(args.timeout)
    for i in range(args.warmup + args.runs):
        for key, cmd in names.items():
            try:
                code, figures = run_measured(cmd, deadline)
            except OSError as e:
                ap.exit(127, f"ab_pairs.py: cannot run {key}: {e}\n")
            if deadline.expired:
                print(f"timed out after {args.timeout:g} s in {key}'s run {i + 1} of "
                      f"{args.warmup + args.runs} (warm-up included); the counted pairs so far:")
                break
            codes[key].append(code)
            if i >= args.warmup:
                runs[key].append(figures)
        if deadline.expired:
            break
    pairs = min(len(r) for r in runs.values())  # a pair cut by the timeout is not counted
    report(names, {key: r[:pairs] for key, r in runs.items()}, codes)
    return 124 if deadline.expired else 1 if any(any(c) for c in codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
