"""Ctrl-C (SIGINT), SIGTERM or SIGHUP at any moment of a real `mailhygiene` process ends it with
128 + the signal (130, 143, 129) and one short line, never a Python traceback
(pipeline/core/signals.py: the start-up, command and ending phases).

Before, the CLI installed its handlers only in pipeline.cli.main(), after click and the CLI were
imported: a Ctrl-C during those imports printed a KeyboardInterrupt traceback (exit by SIGINT), and
one after the command (its teardown) was click's `Aborted!` with exit 1. The process is the
console script's own code path (pipeline.console.main, as the installed script runs it); it stops where
MAILHYGIENE_TEST_PAUSE says (test-only) and says so, then the signal is sent.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what the installed script runs (pip writes `from pipeline.console import main; sys.exit(main())`)
SCRIPT = "import sys; from pipeline.console import main; sys.exit(main())"


def test_the_console_script_is_the_entry_point_that_guards_start_up():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mailhygiene"] == "pipeline.console:main"


def run_until_paused(tmp_path, point, args, sig, preexec_fn=None):
    env = {**os.environ, "MAILHYGIENE_TEST_PAUSE": point}
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, "--data-dir", str(tmp_path / "data"), *args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=tmp_path, preexec_fn=preexec_fn)
    try:
        ready = select.select([p.stderr], [], [], 10)[0]   # bounded
        said = p.stderr.readline().decode() if ready else "(nothing said in 10 s)"
        assert said == f"paused at {point.partition(':')[0]}\n", said
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err.decode()


@pytest.mark.parametrize("point,args,sig,status,line", [
    # while the CLI itself is being imported (click loaded, the rest not yet)
    ("cli-import", ["suppression", "list"], signal.SIGINT, 130, "Interrupted: the command had not started"),
    ("cli-import", ["suppression", "list"], signal.SIGTERM, 143, "Terminated: the command had not started"),
    # before the command's module (and the stages it loads) is imported
    ("command-import", ["clean"], signal.SIGINT, 130, "Interrupted: the command had not started"),
    ("command-import", ["clean"], signal.SIGHUP, 129, "Terminated: the command had not started"),
    # the command runs: its own handlers
    ("command", ["suppression", "list"], signal.SIGINT, 130, "Interrupted: what was stored before stays"),
    ("command", ["suppression", "list"], signal.SIGTERM, 143, "Terminated: what was stored before stays"),
    # the command has ended (its teardown): click said `Aborted!` and exit 1
    ("ending", ["config", "show"], signal.SIGINT, 130, "Interrupted: what was stored before stays"),
])
def test_a_signal_at_each_moment_is_one_line_and_its_status(tmp_path, point, args, sig, status, line):
    rc, err = run_until_paused(tmp_path, point, args, sig)
    assert rc == status, (rc, err)
    assert "Traceback" not in err and "Aborted" not in err and "internal error" not in err, err
    lines = [ln for ln in err.splitlines() if ln and not ln.startswith("paused at")]
    assert len(lines) == 1 and lines[0].startswith(line), err


@pytest.mark.parametrize("point,sig,word", [("cli-import:0.3", signal.SIGHUP, "Terminated"),
                                            ("command:0.3", signal.SIGINT, "Interrupted")])
def test_a_signal_the_process_was_started_ignoring_stays_ignored(tmp_path, point, sig, word):
    """`nohup mailhygiene …` (SIGHUP ignored), a background job of a script (SIGINT ignored): the
    start-up and command handlers leave such a signal ignored, and the command runs to its end."""
    def ignore():
        signal.signal(sig, signal.SIG_IGN)

    rc, err = run_until_paused(tmp_path, point, ["config", "show"], sig, preexec_fn=ignore)
    assert rc == 0 and word not in err, (point, rc, err)


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (/proc/PID/status SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            mask = next(int(ln.split()[1], 16) for ln in fh if ln.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (signum - 1) & 1)


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_ctrl_c_at_a_real_moment_of_start_up(tmp_path, delay):
    """No pause: the signal lands wherever the process is then (the imports of click, the CLI,
    DuckDB for `suppression list`, the command, its end). Sent `delay` after the program's first
    line installed its handlers (Python's own SIGTERM is the default: a caught SIGTERM is ours);
    before that line only the interpreter's own start-up runs (a few ms: site, the script)."""
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, "--data-dir", str(tmp_path / "data"), "suppression", "list"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    started = time.monotonic()
    while not catches(p.pid, signal.SIGTERM) and p.poll() is None and time.monotonic() - started < 10:
        time.sleep(0.001)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    err = err.decode()
    assert "Traceback" not in err and "Aborted" not in err, (delay, err)
    assert p.returncode in (130, 1), (delay, p.returncode, err)   # 1: the data dir does not exist (it ended first)
    if p.returncode == 130:
        assert len(err.strip().splitlines()) == 1 and err.strip().startswith("Interrupted: "), err
