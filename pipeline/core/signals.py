"""The signal handlers of the moments when no command is running (the `mailhygiene` process).

The console script's entry point (pipeline.console.main, pyproject.toml [project.scripts]) installs the
start-up handlers before anything else of the program is imported (click, the CLI, a command's
module and the stages it loads: pyarrow, DuckDB), so that Ctrl-C (SIGINT), SIGTERM or SIGHUP there
end the process at once with one line and 128 + the signal (130, 143, 129) instead of a
KeyboardInterrupt traceback from the middle of an import (or a native library's abort inside its
initialisation). Nothing has been written before a command runs, and everything a command wrote
is committed when it has returned, so at those moments there is nothing to finish: the process
ends where it is.

The phases (pipeline/cli/__init__.py switches them, only in the `mailhygiene` process itself):
  start-up   pipeline.console.main() / cli.main() -> the group's callback: end_at_once(), "nothing was changed"
  command    the group's callback -> the command returned or raised: cli.install_signal_handlers()
             (Ctrl-C: KeyboardInterrupt, caught by the CLI: `Interrupted: …`, 130; SIGTERM/SIGHUP
             held during an import, then the same as Terminated)
  ending     after the command (its teardown, exit handlers): end_at_once(ENDED)
A signal the process was started ignoring (nohup, a background job of a script) stays ignored.

Test-only: with MAILHYGIENE_TEST_PAUSE=<point>[:<seconds>], test_pause(point) writes `paused at
<point>` to standard error and sleeps there (5 s unless said) (tests/test_signals.py sends its signal then).
With MAILHYGIENE_TEST_STACKS set, SIGUSR1 writes every thread's stack to standard error
(test_stacks(): a test whose process does not end tells where it hangs).
"""

from __future__ import annotations

import os
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TEST_PAUSE_ENV = "MAILHYGIENE_TEST_PAUSE"
TEST_STACKS_ENV = "MAILHYGIENE_TEST_STACKS"
NOT_STARTED = "the command had not started; nothing was changed."
ENDED = "what was stored before stays; run the command again to go on."


class _AtOnce:
    """A handler that writes one line and ends the process with 128 + the signal (os._exit: no
    exception, no teardown that a second signal could cut into)."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, signum, frame):
        word = "Interrupted" if signum == signal.SIGINT else "Terminated"
        try:
            os.write(2, f"\n{word}: {self.what}\n".encode())
        except OSError:
            pass
        os._exit(128 + signum)


def ours(handler) -> bool:
    """Whether `handler` is one end_at_once() installed."""
    return isinstance(handler, _AtOnce)


def end_at_once(what: str = NOT_STARTED) -> None:
    """SIGINT, SIGTERM and SIGHUP end the process at once, saying `what`; a signal the process
    was started ignoring stays ignored. Main thread only (elsewhere: nothing)."""
    for signum in SIGNALS:
        try:
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, _AtOnce(what))
        except ValueError:  # not the main thread: signals are not this caller's to set
            return


def test_pause(point: str) -> None:
    """Test-only: stop at `point` while MAILHYGIENE_TEST_PAUSE names it, `POINT` (5 s) or
    `POINT:SECONDS` (see the docstring)."""
    wanted = os.environ.get(TEST_PAUSE_ENV)
    if wanted and wanted.partition(":")[0] == point:
        import time

        os.write(2, f"paused at {point}\n".encode())
        time.sleep(float(wanted.partition(":")[2] or 5))


def test_stacks() -> None:
    """Test-only: while MAILHYGIENE_TEST_STACKS is set, SIGUSR1 writes the stack of every thread
    to standard error (faulthandler) and the process goes on."""
    if os.environ.get(TEST_STACKS_ENV):
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)
