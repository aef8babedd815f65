"""bench/stage_profile.py profiles the program as the `mailhygiene` console script runs it.

It once called pipeline.cli.cli() itself, which leaves out what main() sets up for the console
(gc.freeze of the start-up's objects, the batch allocator tuning of pipeline/core/allocator.py):
its figures were those of another process (more page faults and collector work). Now it runs
main() and reports at exit, with each thread's own CPU.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fixtures import SAMPLES

REPO = Path(__file__).parents[1]


def test_stage_profile_runs_the_console_program_and_reports_per_thread(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "bench" / "stage_profile.py"), "--data-dir", str(tmp_path / "data"),
                        "--timezone", "Asia/Tokyo", "ingest", "--year", "2026", "--no-progress",
                        str(SAMPLES / "postfix" / "mail.log")],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    frozen = re.search(r"objects frozen at start-up: (\d+)", r.stderr)
    assert frozen is not None, r.stderr
    assert int(frozen.group(1)) > 0              # main()'s start-up ran (cli() alone freezes nothing)
    assert re.search(r"^\s+\d+\.\d+ s\s+\d+\s+thread:store-writer$", r.stderr, re.M), r.stderr
    assert re.search(r"^\s+\d+\.\d+ s\s+1\s+engine\.Engine\.ingest$", r.stderr, re.M), r.stderr
    assert (tmp_path / "data" / "events").is_dir()  # the ingest itself did its work
