"""Time for the code that waits: the wall clock, a monotonic clock and a wait, in one object.

The long-running loops take a `clock` (default SYSTEM_CLOCK) instead of calling time.time(),
time.monotonic() and Event.wait() themselves, so a test drives their time (tests/fixtures.py's
ManualClock) instead of sleeping past poll intervals, flush intervals, idle timeouts, the
partial-line grace or a retry's backoff. The sender's throttle takes a plain `clock()` function
for the same reason. Who uses it: pipeline.ingest (engine, source).
"""

from __future__ import annotations

import threading
import time


class Clock:
    """The real clock."""

    def time(self) -> float:
        """Wall-clock seconds (compared with file mtimes and saved in the state file)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds for intervals (never jumps with the wall clock)."""
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` seconds have passed; True when it is set."""
        return event.wait(timeout)


SYSTEM_CLOCK = Clock()
