"""Per-carrier sending limits: a sliding window, rate-limit pauses and quiet minutes.

Pure logic with an injectable clock; no I/O. The daemon asks `acquire(carrier)` before each SMTP
send and calls `release(token)` when the send is over.

The window is strict, measured the way a carrier would see it: a send occupies its carrier's
window from the moment it starts until `interval` seconds after it *finished*. At most `count`
sends occupy a window at any time, so however long each SMTP dialogue takes, no receiving server
can see more than `count` messages in any `interval`-second span. Over a long backlog the rate is
`count / (interval + time per send)`, i.e. within a few per mille of the configured rate.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Rate:
    count: int
    interval: float

    @classmethod
    def parse(cls, value: dict, where: str) -> "Rate":
        from ..core.errors import ConfigError

        try:
            r = cls(int(value["count"]), float(value["interval"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where} must be {{count = N, interval = SECONDS}} (got {value!r})") from None
        if r.count < 1 or r.interval <= 0:
            raise ConfigError(f"{where}: count must be >= 1 and interval > 0 (got {value!r})")
        return r


class Throttle:
    """Thread-safe; every method takes the current time from `clock` (time.time by default)."""

    def __init__(
        self,
        rates: dict[str, Rate],
        default: Rate,
        *,
        quiet_minutes: float = 0,
        quiet_carriers: list[str] | None = None,
        tz: ZoneInfo | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.rates = dict(rates)
        self.default = default
        self.quiet_minutes = float(quiet_minutes or 0)
        self.quiet_carriers = set(quiet_carriers or [])
        self.tz = tz or ZoneInfo("UTC")
        self.clock = clock
        self._lock = threading.Lock()
        # carrier -> deque of [token, end_time or None]; ends ascending once finished
        self._windows: dict[str, deque] = {}
        self._paused_until: dict[str, float] = {}
        self._tokens = itertools.count(1)

    @classmethod
    def from_config(cls, sender_cfg: dict, tz: ZoneInfo | None = None, clock=time.time) -> "Throttle":
        rates = {c: Rate.parse(v, f"sender.rates.{c}") for c, v in sender_cfg.get("rates", {}).items()}
        return cls(
            rates,
            Rate.parse(sender_cfg["default_rate"], "sender.default_rate"),
            quiet_minutes=sender_cfg.get("quiet_minutes", 0),
            quiet_carriers=sender_cfg.get("quiet_carriers", []),
            tz=tz,
            clock=clock,
        )

    def rate_for(self, carrier: str) -> Rate:
        return self.rates.get(carrier, self.default)

    # ------------------------------------------------------------------ queries
    def _active(self, carrier: str, now: float) -> deque:
        win = self._windows.setdefault(carrier, deque())
        interval = self.rate_for(carrier).interval
        # Drop finished entries whose hold has expired (they are not necessarily at the left end).
        if win:
            keep = deque(e for e in win if e[1] is None or e[1] + interval > now)
            if len(keep) != len(win):
                self._windows[carrier] = win = keep
        return win

    def in_quiet_period(self, carrier: str, now: float | None = None) -> float:
        """Seconds until the quiet period around the full hour ends (0 when not quiet)."""
        if self.quiet_minutes <= 0 or (self.quiet_carriers and carrier not in self.quiet_carriers):
            return 0.0
        now = self.clock() if now is None else now
        local = datetime.fromtimestamp(now, self.tz)
        into_hour = local.minute * 60 + local.second + local.microsecond / 1e6
        q = self.quiet_minutes * 60
        if into_hour < q:
            return q - into_hour
        if into_hour >= 3600 - q:
            return 3600 - into_hour + q
        return 0.0

    def wait_time(self, carrier: str, now: float | None = None) -> float | None:
        """0 when a send may start now; seconds to wait when known; None = wait for a release."""
        with self._lock:
            now = self.clock() if now is None else now
            return self._wait_locked(carrier, now)

    def _wait_locked(self, carrier: str, now: float) -> float | None:
        waits = [self._paused_until.get(carrier, 0.0) - now, self.in_quiet_period(carrier, now)]
        rate = self.rate_for(carrier)
        win = self._active(carrier, now)
        if len(win) >= rate.count:
            finished = sorted(e[1] for e in win if e[1] is not None)
            need = len(win) - rate.count + 1  # entries that must expire
            if len(finished) < need:
                return None  # only a release can free a slot
            waits.append(finished[need - 1] + rate.interval - now)
        w = max(waits)
        return w if w > 0 else 0.0

    # ------------------------------------------------------------------ updates
    def try_acquire(self, carrier: str) -> int | None:
        """A token when a send may start now (the slot is taken), else None."""
        with self._lock:
            now = self.clock()
            if self._wait_locked(carrier, now) != 0.0:
                return None
            token = next(self._tokens)
            self._windows[carrier].append([token, None])
            return token

    def release(self, carrier: str, token: int) -> None:
        """The send with this token is over (whatever its result): its hold starts now."""
        with self._lock:
            now = self.clock()
            for entry in self._windows.get(carrier, ()):
                if entry[0] == token:
                    entry[1] = now
                    return

    def cancel(self, carrier: str, token: int) -> None:
        """The slot was taken but nothing was sent: give it back without a hold."""
        with self._lock:
            win = self._windows.get(carrier, deque())
            self._windows[carrier] = deque(e for e in win if e[0] != token)

    def pause(self, carrier: str, seconds: float) -> None:
        """Rate-limit reply from this carrier: start nothing for it for `seconds`."""
        with self._lock:
            until = self.clock() + seconds
            self._paused_until[carrier] = max(self._paused_until.get(carrier, 0.0), until)

    def paused_until(self, carrier: str) -> float:
        return self._paused_until.get(carrier, 0.0)

    def recent_count(self, carrier: str) -> int:
        with self._lock:
            return len(self._active(carrier, self.clock()))
