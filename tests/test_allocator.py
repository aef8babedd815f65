"""pipeline/core/allocator.py: a batch ingest keeps the blocks it frees for reuse (glibc's malloc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# A 16 MiB block made, freed, and made again (as ingest does block after block): the page faults
# of the second one. glibc serves it from a fresh mmap (a fault per page) unless tuned.
REUSE = """
import resource, sys
from pipeline.core.allocator import tune_for_batch
if sys.argv[1] == "tuned":
    assert tune_for_batch()
block = b"x" * (16 << 20)  # every page written
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = b"x" * (16 << 20)  # every page written
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    r = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])})
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_tuned_process_reuses_a_freed_block_without_faulting_it_in_again():
    untuned = faults("plain")
    if untuned < 2000:
        pytest.skip(f"this system maps a fresh 16 MiB block in {untuned} faults: nothing to save")
    assert faults("tuned") < untuned // 10


def test_ingest_tunes_the_allocator_only_in_its_own_process(tmp_path, monkeypatch):
    # the `mailhygiene` process (main()) tunes it; a library user's (CliRunner, notebooks) is left alone
    from click.testing import CliRunner

    from fixtures import SAMPLES
    from pipeline import cli as cli_module
    from pipeline.core import allocator

    calls = []
    monkeypatch.setattr(allocator, "tune_for_batch", lambda: calls.append(1) or True)
    args = ["--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", "ingest", "--no-progress",
            str(SAMPLES / "postfix" / "mail.log")]
    assert CliRunner().invoke(cli_module.cli, args).exit_code == 0
    assert calls == []
    monkeypatch.setattr(cli_module, "_CONSOLE", True)
    monkeypatch.setattr(cli_module.gc, "freeze", lambda: None)  # (this test process's objects stay unfrozen)
    assert CliRunner().invoke(cli_module.cli, [*args[:4], "ingest", "--reread", *args[5:]]).exit_code == 0
    assert calls == [1]
