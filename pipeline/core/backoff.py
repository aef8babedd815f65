"""Exponential backoff with a cap: how long to wait before retry number `attempt`.

Pure functions; called by the log follower (unreadable files, failed store writes) and the
sender (deferred recipients).
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, *, jitter: float = 0.0,
                  rng: random.Random | None = None) -> float:
    """`base * 2**(attempt-1)`, at most `cap`; `jitter` (0..1) spreads it by up to that fraction.

    attempt 1 -> base, 2 -> 2*base, ... A jitter of 0.1 returns a value in [0.9 d, d] so that many
    retries scheduled together do not all fire at the same instant.
    """
    if attempt < 1:
        return 0.0
    delay = min(cap, base * (2.0 ** min(attempt - 1, 62)))
    if jitter:
        delay *= 1.0 - jitter * (rng or random).random()
    return max(0.0, delay)
