"""Per-carrier sending limits: a sliding window, rate reduction after rate-limit replies, pacing,
rate-limit pauses and quiet minutes.

Pure logic with an injectable clock; no I/O of its own. The daemon asks `try_acquire(carrier)`
before each SMTP send and calls `release(carrier, token)` when the send is over; it restores the
window from the queue's attempt log at start (`restore`) and saves pause/rate state through the
`on_state` callback, so limits hold across restarts.

The window is strict, measured the way a carrier would see it: a send occupies its carrier's
window from the moment it starts until `interval` seconds after it *finished*. At most `count`
sends occupy a window at any time, so however long each SMTP dialogue takes, no receiving server
can see more than `count` messages in any `interval`-second span. Over a long backlog the rate is
`count / (interval + time per send)`, i.e. within a few per mille of the configured rate.

Time: the windows, pauses and rate recovery run on `monotonic` (time.monotonic in the daemon),
so a step of the wall clock (NTP, a VM resumed, an operator's `date -s`) neither empties a window
(a step forward would let a second burst through at once) nor stalls it (a step back would hold
every slot for the length of the step). The wall clock (`clock`) serves the quiet minutes (local
time of day) and the values that outlive the process: the attempt log and the saved pause/rate
state are wall times, converted at `restore` and `on_state`. Without `monotonic`, `clock` is
used for both (tests with one fake clock).

Shared servers: a carrier whose mail goes to another carrier's servers (Y!mobile's MX is
SoftBank's ymx1.softbank.ne.jp, and Y!mobile uses SoftBank's 特定接続 relay when it has no route of
its own: routes.shared_windows) is a *member* of that carrier's window. A member's send must fit
its own window and the group's, and occupies both; a pause or rate reduction after its reply
applies to the group's servers too. So those servers never see more than the group carrier's
`count` in any `interval`, whichever of the carriers the mail is for.

Relays: a relay (a route's or default_relay's host:port) that cannot be used — the connection
refused, timed out or its host name unresolvable, dropped or refused at the greeting or EHLO, a
failed TLS handshake or certificate, our AUTH refused — pauses that relay, not the carrier
(`pause_relay`): every carrier routed through it waits, and a carrier's mail through its other
relays goes on. The pause doubles at each failure in a row (`relay_pause`, 2x, ... up to
`relay_pause_max`); when it ends one message probes the relay (`relay_taken`: the others wait
for its result), and a session that opens ends the run (`relay_ok`). Failures of sessions that
were started before the pause began are the same outage and do not lengthen it. The daemon checks
`relay_wait` for each message's route. The run's length is saved with the pause (`strikes`).

After a rate-limit reply (421, "too many", ...) the carrier's count is multiplied by
`reduce_factor` (down to one send per window at least), then grows back linearly to the full
count over `recovery` seconds. With `pacing`, sends of a carrier start at least interval/count
apart instead of in one burst at the start of each window.
"""

from __future__ import annotations

import itertools
import math
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
    def parse(cls, value, where: str) -> "Rate":
        from ..core.errors import ConfigError

        if hasattr(value, "count") and hasattr(value, "interval"):
            value = {"count": value.count, "interval": value.interval}
        try:
            r = cls(int(value["count"]), float(value["interval"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where} must be {{count = N, interval = SECONDS}} (got {value!r})") from None
        if r.count < 1 or r.interval <= 0:
            raise ConfigError(f"{where}: count must be >= 1 and interval > 0 (got {value!r})")
        return r


RELAY_PREFIX = "relay:"


def relay_key(relay) -> str:
    """The key of a relay's pause among the carriers' (throttle_state's `carrier` column)."""
    return f"{RELAY_PREFIX}{relay}"


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
        monotonic: Callable[[], float] | None = None,
        pacing: bool = False,
        reduce_factor: float = 0.5,
        recovery: float = 600.0,
        on_state: Callable[[str, float, float, float], None] | None = None,
        shared: dict[str, str] | None = None,
    ):
        self.rates = dict(rates)
        # member carrier -> the carrier whose servers (and window) it shares
        self.shared = {m: g for m, g in (shared or {}).items() if m != g}
        self.default = default
        self.quiet_minutes = float(quiet_minutes or 0)
        self.quiet_carriers = set(quiet_carriers or [])
        self.tz = tz or ZoneInfo("UTC")
        self.clock = clock
        self.monotonic = monotonic or clock
        self.pacing = pacing
        self.reduce_factor = float(reduce_factor)
        self.recovery = float(recovery)
        self.on_state = on_state
        self._lock = threading.Lock()
        # per carrier: tokens of sends under way, and end times of finished sends still holding
        # their slot (ascending: a window is a queue, expired ends leave at the left)
        self._running: dict[str, set[int]] = {}
        self._ended: dict[str, deque] = {}
        self._paused_until: dict[str, float] = {}
        self._factor: dict[str, tuple[float, float]] = {}   # carrier -> (factor, since when)
        self._last_start: dict[str, float] = {}
        self._tokens = itertools.count(1)
        # sends a crashed daemon may have made without recording them: (how many, ended when)
        self._unrecorded: tuple[int, float] | None = None
        self._seeded: set[str] = set()
        self._strikes: dict[str, int] = {}       # relay key -> failures in a row
        self._probing: set[str] = set()          # relay keys with a probe under way after a pause
        self.probe_wait = 0.05                   # seconds others wait for a probe's result
        # (every time above is on the monotonic clock)

    def _offset(self) -> float:
        """wall - monotonic, now: converts between the two at the edges (restore, saved state)."""
        return self.clock() - self.monotonic()

    def _mono(self, wall: float | None) -> float:
        """A wall time (or now, for None) on the monotonic clock."""
        return self.monotonic() if wall is None else float(wall) - self._offset()

    @classmethod
    def from_config(cls, sender, tz: ZoneInfo | None = None, clock=time.time, on_state=None,
                    monotonic=None) -> "Throttle":
        from .routes import shared_windows

        get = sender.get if isinstance(sender, dict) else (lambda k, d=None: getattr(sender, k, d))
        rates = {c: Rate.parse(v, f"sender.rates.{c}") for c, v in (get("rates", {}) or {}).items()}
        return cls(
            rates,
            Rate.parse(get("default_rate"), "sender.default_rate"),
            quiet_minutes=get("quiet_minutes", 0),
            quiet_carriers=list(get("quiet_carriers", []) or []),
            tz=tz,
            clock=clock,
            monotonic=monotonic,
            pacing=bool(get("pacing", False)),
            reduce_factor=float(get("rate_limit_factor", 0.5)),
            recovery=float(get("rate_recovery", 600.0)),
            on_state=on_state,
            shared=shared_windows(get("routes", {}) or {}),
        )

    def rate_for(self, carrier: str) -> Rate:
        return self.rates.get(carrier, self.default)

    def _windows(self, carrier: str) -> tuple[str, ...]:
        """The windows a send of `carrier` occupies: its own, and its group's when it shares it."""
        group = self.shared.get(carrier)
        return (carrier,) if group is None else (carrier, group)

    # ------------------------------------------------------------------ restart
    def restore(self, attempts, states: dict[str, tuple[float, float, float]],
                strikes: dict[str, int] | None = None) -> None:
        """Re-create the windows from the attempt log ((carrier, started, ended) rows) and the
        saved pause/rate state (and relays' runs of failures, `strikes`), so a restarted daemon
        honours what the last one sent and how long a failing relay has been failing."""
        with self._lock:
            offset = self._offset()
            for carrier, started, ended in sorted(attempts, key=lambda a: a[2]):
                for key in self._windows(carrier):
                    self._ended.setdefault(key, deque()).append(float(ended) - offset)
                    self._last_start[key] = max(self._last_start.get(key, float("-inf")),
                                                float(started) - offset)
            for carrier, (paused_until, factor, factor_at) in states.items():
                self._paused_until[carrier] = float(paused_until) - offset
                if factor < 1.0:
                    self._factor[carrier] = (float(factor), float(factor_at) - offset)
            for key, n in (strikes or {}).items():
                if n > 0:
                    self._strikes[key] = int(n)

    def assume_unrecorded(self, n: int) -> None:
        """The last daemon stopped without recording its last results (kill -9, power loss): up to
        `n` sends of any carrier may have reached a server without a row in the attempt log. Count
        `n` sends, ended now, in every carrier's window, so its first window after the restart
        holds them too (at-least-once re-sends them, and the server already counted them)."""
        with self._lock:
            self._unrecorded = (max(0, int(n)), self.monotonic())
            self._seeded.clear()

    # ------------------------------------------------------------------ queries
    def factor(self, carrier: str, now: float | None = None) -> float:
        """The fraction of the configured count allowed at wall time `now` (default: now; 1.0
        unless recently rate-limited)."""
        return self._factor_at(carrier, self._mono(now))

    def _factor_at(self, carrier: str, now: float) -> float:
        f = self._factor.get(carrier)
        if f is None:
            return 1.0
        if self.recovery <= 0:
            return 1.0
        return min(1.0, f[0] + max(0.0, now - f[1]) / self.recovery)

    def effective_count(self, carrier: str, now: float | None = None) -> int:
        """The count allowed per interval at wall time `now` (default: now)."""
        return self._count_at(carrier, self._mono(now))

    def _count_at(self, carrier: str, mono_now: float) -> int:
        rate = self.rate_for(carrier)
        return max(1, math.floor(rate.count * self._factor_at(carrier, mono_now) + 1e-9))

    def _ended_holding(self, carrier: str, now: float) -> deque:
        ended = self._ended.get(carrier)
        if ended is None:
            ended = self._ended[carrier] = deque()
        if self._unrecorded is not None and carrier not in self._seeded:
            self._seeded.add(carrier)
            n, at = self._unrecorded
            ended = self._ended[carrier] = deque(sorted([*ended, *[at] * n]))
        expiry = now - self.rate_for(carrier).interval
        while ended and ended[0] <= expiry:
            ended.popleft()
        return ended

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
        """0 when a send may start now; seconds to wait when known; None = wait for a release.
        `now`: the wall time (default: now)."""
        with self._lock:
            return self._wait_locked(carrier, self.clock() if now is None else now, self._mono(now))

    def _wait_locked(self, carrier: str, wall: float, now: float) -> float | None:
        """`wall` for the quiet minutes, `now` (monotonic) for everything else: the longest wait
        of the carrier's quiet minutes and of each window it occupies (None: a release first)."""
        waits = [self.in_quiet_period(carrier, wall)]
        for key in self._windows(carrier):
            w = self._window_wait(key, now)
            if w is None:
                return None
            waits.append(w)
        w = max(waits)
        return w if w > 0 else 0.0

    def _window_wait(self, carrier: str, now: float) -> float | None:
        """Seconds until `carrier`'s window (its pause, pacing and count) lets a send start."""
        waits = [self._paused_until.get(carrier, float("-inf")) - now]
        rate = self.rate_for(carrier)
        count = self._count_at(carrier, now)
        if self.pacing:
            waits.append(self._last_start.get(carrier, float("-inf")) + rate.interval / count - now)
        ended = self._ended_holding(carrier, now)
        running = len(self._running.get(carrier, ()))
        if running + len(ended) >= count:
            need = running + len(ended) - count + 1  # finished sends that must expire
            if len(ended) < need:
                return None  # only a release can free a slot
            waits.append(ended[need - 1] + rate.interval - now)
        return max(waits)

    # ------------------------------------------------------------------ updates
    def try_acquire(self, carrier: str) -> int | None:
        """A token when a send may start now (the slot is taken), else None."""
        with self._lock:
            now = self.monotonic()
            if self._wait_locked(carrier, self.clock(), now) != 0.0:
                return None
            token = next(self._tokens)
            for key in self._windows(carrier):
                self._running.setdefault(key, set()).add(token)
                self._last_start[key] = now
            return token

    def release(self, carrier: str, token: int) -> None:
        """The send with this token is over (whatever its result): its hold starts now."""
        with self._lock:
            now = self.monotonic()
            for key in self._windows(carrier):
                running = self._running.get(key, set())
                if token in running:
                    running.discard(token)
                    ended = self._ended.setdefault(key, deque())
                    if ended and ended[-1] > now:  # (a restored end ahead of now): keep the deque sorted
                        ended.append(ended[-1])
                    else:
                        ended.append(now)

    def cancel(self, carrier: str, token: int) -> None:
        """The slot was taken but nothing was sent: give it back without a hold."""
        with self._lock:
            for key in self._windows(carrier):
                self._running.get(key, set()).discard(token)

    def pause(self, carrier: str, seconds: float) -> None:
        """Start nothing for this carrier (and the group whose servers it shares) for `seconds`
        (no rate reduction)."""
        with self._lock:
            until = self.monotonic() + seconds
            for key in self._windows(carrier):
                self._paused_until[key] = max(self._paused_until.get(key, float("-inf")), until)
                self._save(key)

    def rate_limited(self, carrier: str, pause_seconds: float) -> tuple[float, int]:
        """A rate-limit reply from this carrier: pause it and reduce its count (and those of the
        group whose servers it shares: they sent the reply). Returns (paused until as a wall
        time, new effective count of the carrier)."""
        with self._lock:
            now = self.monotonic()
            for key in self._windows(carrier):
                self._paused_until[key] = max(self._paused_until.get(key, float("-inf")), now + pause_seconds)
                new = max(self._factor_at(key, now) * self.reduce_factor, 1.0 / self.rate_for(key).count)
                self._factor[key] = (min(new, 1.0), now)
                self._save(key)
            return self._paused_until[carrier] + self._offset(), self._count_at(carrier, now)

    def _save(self, carrier: str) -> None:
        if self.on_state is not None:   # saved as wall times: they outlive this process's monotonic clock
            offset = self._offset()
            paused = self._paused_until.get(carrier)
            f = self._factor.get(carrier)
            values = (carrier, 0.0 if paused is None else paused + offset,
                      1.0 if f is None else f[0], 0.0 if f is None else f[1] + offset)
            if carrier.startswith(RELAY_PREFIX):
                self.on_state(*values, strikes=self._strikes.get(carrier, 0))
            else:
                self.on_state(*values)

    # ------------------------------------------------------------------ relay pauses
    def pause_relay(self, relay: str, first: float, longest: float | None = None) -> tuple[float, int]:
        """`relay` ("host:port") cannot be used: start nothing through it, whatever the carrier,
        for `first` seconds after its first failure in a row, twice that after the second, ...,
        `longest` at most. No other carrier's mail would get through it either, and another relay
        of the same carrier does not share its fault. A failure while the relay is paused already
        (a session started before the pause) is the same outage: the pause stays as it is. Kept
        with the carriers' pauses under the key `relay:host:port` (saved and restored alike).
        Returns (the wall time the pause ends, failures in a row)."""
        key = relay_key(relay)
        longest = first if longest is None else max(first, longest)
        with self._lock:
            now = self.monotonic()
            self._probing.discard(key)
            current = self._paused_until.get(key, float("-inf"))
            if current > now:
                return current + self._offset(), self._strikes.get(key, 1)
            n = self._strikes.get(key, 0) + 1
            self._strikes[key] = n
            self._paused_until[key] = now + min(first * 2.0 ** min(n - 1, 60), longest)
            self._save(key)
            return self._paused_until[key] + self._offset(), n

    def relay_ok(self, relay: str) -> None:
        """A session with `relay` opened: its run of failures (if any) is over."""
        key = relay_key(relay)
        if not self._strikes.get(key):
            return
        with self._lock:
            self._probing.discard(key)
            if self._strikes.pop(key, 0):
                self._save(key)

    def relay_strikes(self, relay: str) -> int:
        """Failures in a row of `relay` (0: none since its last session that opened)."""
        return self._strikes.get(relay_key(relay), 0)

    def relay_wait(self, relay: str) -> float:
        """Seconds until a message may go through `relay` (0.0: now): its pause, or, after one,
        the probe of another message under way."""
        key = relay_key(relay)
        paused = self._paused_until.get(key)
        rest = 0.0 if paused is None else max(0.0, paused - self.monotonic())
        if rest == 0.0 and key in self._probing:
            return self.probe_wait
        return rest

    def relay_taken(self, relay: str) -> None:
        """A message goes through `relay` now: after failures, it is the probe (the next waits)."""
        key = relay_key(relay)
        if self._strikes.get(key):
            with self._lock:
                self._probing.add(key)

    def relay_done(self, relay: str) -> None:
        """The message that went through `relay` is over (whatever its result)."""
        key = relay_key(relay)
        if key in self._probing:
            with self._lock:
                self._probing.discard(key)

    def paused_until(self, carrier: str) -> float:
        """The wall time the carrier's pause ends (0.0: never paused)."""
        paused = self._paused_until.get(carrier)
        return 0.0 if paused is None else paused + self._offset()

    def recent_count(self, carrier: str) -> int:
        with self._lock:
            return len(self._running.get(carrier, ())) + len(self._ended_holding(carrier, self.monotonic()))

    def longest_interval(self) -> float:
        return max([self.default.interval, *(r.interval for r in self.rates.values())])
