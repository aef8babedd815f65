"""bench/ab_pairs.py times two whole commands in alternating pairs and prints each one's figures,
the pair-by-pair ratios A/B, and the exit codes of a command whose runs failed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
BUSY = "import time\nwhile time.process_time() < 0.2: sum(range(10_000))"   # at least 0.2 s of CPU, on any machine


def ab_pairs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "ab_pairs.py"), *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def cells(out: str, label: str) -> list[str]:
    """The cells of the row that starts with `label` (columns are 2+ spaces apart)."""
    rows = [line for line in out.splitlines() if re.match(rf"{re.escape(label)}\s{{2,}}", line)]
    assert len(rows) == 1, out
    return re.split(r"\s{2,}", rows[0].strip())[1:]


def spread(cell: str) -> list[float]:
    low, median, high = (float(x) for x in cell.split(" / "))
    assert low <= median <= high
    return [low, median, high]


def test_busy_command_against_a_quick_one():
    quick = shlex.join([sys.executable, "-c", "pass"])
    r = ab_pairs("-n", "2", "--warmup", "0", "--timeout", "50", "--vs", quick, "--", sys.executable, "-c", BUSY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cells(r.stdout, "min / median / max") == ["user s", "sys s", "cpu s", "wall s", "peak MiB"]
    a, b, ratio = cells(r.stdout, "A"), cells(r.stdout, "B"), cells(r.stdout, "A/B pair by pair")
    assert len(a) == len(b) == len(ratio) == 5
    assert spread(a[2])[0] >= 0.2                                  # A's cpu: the busy loop's
    assert spread(b[2])[2] < spread(a[2])[0]                       # B's is below it in every run
    assert all(spread(x)[0] > 0 for x in (a[4], b[4]))             # peak MiB
    assert spread(ratio[2])[0] > 1.5                               # A/B cpu, each pair
    assert spread(ratio[3])[0] > 0 and ratio[1] == ratio[4] == "-"
    assert "failed" not in r.stdout


def test_failing_command_exit_codes_are_reported():
    r = ab_pairs("-n", "2", "--warmup", "1", "--vs", "true", "--", "sh", "-c", "exit 3")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "A failed: exit codes 3 3 3 " in r.stdout               # the warm-up run and two counted
    assert "B failed" not in r.stdout
    assert len(cells(r.stdout, "A/B pair by pair")) == 5


def test_timeout_bounds_the_whole_call():
    r = ab_pairs("-n", "5", "--warmup", "0", "--timeout", "1", "--vs", "sleep 0.1", "--", "sleep", "30")
    assert r.returncode == 124, r.stdout + r.stderr
    assert "timed out after 1 s in A's run 1" in r.stdout
