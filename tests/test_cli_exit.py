"""The console script's quick exit (pipeline.cli.main -> _exit_now): the exit status and
everything printed are those of an ordinary exit, and atexit handlers still run; only the
interpreter's teardown is skipped, and only when no other thread is left running."""

from __future__ import annotations

import subprocess
import sys

from fixtures import SAMPLES

SCRIPT = """
import atexit, sys, threading
atexit.register(lambda: print("atexit ran", file=sys.stderr))
if sys.argv[1] == "thread":
    threading.Thread(target=__import__("time").sleep, args=(0.2,)).start()
sys.argv[1:2] = []
from pipeline.cli import main
main()
"""


def run(mode: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_ingest_exits_quickly_with_all_its_output(tmp_path):
    r = run("plain", "--data-dir", str(tmp_path / "d"), "--timezone", "Asia/Tokyo", "ingest", "--year", "2026",
            "--no-progress", str(SAMPLES / "qmail" / "current"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "events written:" in r.stdout and r.stdout.endswith("\n")
    assert "atexit ran" in r.stderr


def test_an_error_keeps_its_status_and_message(tmp_path):
    r = run("plain", "--data-dir", str(tmp_path / "d"), "ingest", str(tmp_path / "missing-*.log"), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ") and "atexit ran" in r.stderr


def test_usage_errors_keep_click_status(tmp_path):
    r = run("plain", "no-such-command", cwd=tmp_path)
    assert r.returncode == 2 and "No such command" in r.stderr


def test_a_thread_left_running_gets_the_ordinary_exit(tmp_path):
    r = run("thread", "--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip()
    assert "atexit ran" in r.stderr
