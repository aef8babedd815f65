"""What every MTA parser shares: the syslog prefix, timestamps (with year inference), and the
context and result types of the parser interface.

Read by pipeline/parsers/{postfix,sendmail,qmail}.py. Raw log text stops at the parsers: what
leaves them is a dict of event columns (see pipeline.store.records.PARSED_COLUMNS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

# Result of Parser.feed(): the line gave events / is known and irrelevant / looked like a
# delivery line of this MTA but could not be parsed (counted and kept aside as a reject).
EVENT, SKIP, MALFORMED = "event", "skip", "malformed"

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# The stamp of a syslog line: `Nov  3 16:04:31` or `2024-08-26T01:33:38.572449+09:00`.
SYSLOG_STAMP = (
    r"(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
)
# `<stamp> host prog[pid]: msg`; the message is the rest of the line (lines hold no newline):
# sliced, not matched.
SYSLOG_RE = re.compile(SYSLOG_STAMP + r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[\d+\])?: ")

Emit = Callable[[dict], None]


@dataclass
class ParseContext:
    """Facts about the file being read that parsers need to turn lines into events."""

    tz: ZoneInfo
    source_file: str = ""
    mtime: float | None = None          # file's modification time (Unix seconds): year inference
    year: int | None = None             # forced year for syslog lines without one
    default_host: str | None = None     # for formats without a host field (qmail multilog)
    _year_cache: dict = field(default_factory=dict, repr=False)
    _hour_cache: dict = field(default_factory=dict, repr=False)
    _minute_cache: dict = field(default_factory=dict, repr=False)

    def syslog_year(self, month: int, day: int) -> int:
        """Year of a `Mon DD` stamp: the latest year that does not put the line after the
        file's modification time (1 day of slack for zones); December lines in a January
        file therefore roll back a year."""
        key = (month, day)
        y = self._year_cache.get(key)
        if y is None:
            if self.year:
                y = self.year
            else:
                ref = datetime.fromtimestamp(self.mtime, self.tz) if self.mtime else datetime.now(self.tz)
                y = ref.year
                limit = ref.date() + timedelta(days=1)
                for _ in range(9):  # Feb 29 can be up to 8 years back; Feb 30 is never
                    try:
                        if datetime(y, month, day).date() <= limit:
                            break
                    except ValueError:  # Feb 29 in a non-leap year
                        pass
                    y -= 1
                else:
                    raise ValueError(f"no year has {month}/{day}")
            self._year_cache[key] = y
        return y

    def local_us(self, year: int, month: int, day: int, hms: str, frac: str | None) -> int:
        """Microseconds since the epoch (UTC) of a local wall-clock time in the context zone."""
        hour = int(hms[0:2])
        key = (year, month, day, hour)
        base = self._hour_cache.get(key)
        if base is None:
            base = int(datetime(year, month, day, hour, tzinfo=self.tz).timestamp())
            self._hour_cache[key] = base
        secs = base + int(hms[3:5]) * 60 + int(hms[6:8])
        us = secs * 1_000_000
        if frac:
            us += int((frac[1:] + "000000")[:6])
        return us

    def syslog_us(self, mon: str, day: str, hms: str, frac: str | None) -> int:
        """local_us() of a `Mon DD hh:mm:ss` stamp's parts, with the year inferred; one cached
        lookup per minute (the hot path of every parser). ValueError when it is no date."""
        key = (mon, day, hms[:5])
        base = self._minute_cache.get(key)
        if base is None:
            if len(self._minute_cache) > 200_000:
                self._minute_cache.clear()
            month = MONTHS.get(mon)
            if month is None:
                raise ValueError(f"no month {mon!r}")
            d = int(day)
            base = self.local_us(self.syslog_year(month, d), month, d, hms[:5] + ":00", None)
            self._minute_cache[key] = base
        us = base + int(hms[6:8]) * 1_000_000
        if frac:
            us += int((frac[1:] + "000000")[:6])
        return us


def iso_us(text: str, tz: ZoneInfo) -> int:
    """Microseconds since the epoch of an RFC 3339 stamp (a stamp without zone is local)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def split_syslog(line: str, ctx: ParseContext):
    """(ts_us, host, prog, msg) of a syslog line, or None when it has no syslog prefix."""
    m = SYSLOG_RE.match(line)
    if m is None:
        return None
    mon, day, hms, frac, iso, host, prog = m.groups()  # one call: group() by name is slow
    msg = line[m.end():]
    if mon is not None:
        try:
            ts = ctx.syslog_us(mon, day, hms, frac)
        except ValueError:
            return None
    else:
        try:
            ts = iso_us(iso, ctx.tz)
        except ValueError:
            return None
    return ts, host, prog, msg


class Parser:
    """Interface of an MTA parser (one subclass per MTA, registered in parsers/__init__.py).

    feed(line, offset) reads one decoded line (without its newline) at byte `offset` of the
    source and calls `emit(row)` for every delivery attempt it completes. It returns EVENT, SKIP
    or MALFORMED. State that spans lines (queue ids, delivery numbers) lives in the parser and
    can be saved with get_state() / restored with set_state(), so a follower can restart.
    """

    mta = ""

    def __init__(self, ctx: ParseContext, emit: Emit):
        self.ctx = ctx
        self.emit = emit

    @staticmethod
    def detect(lines: list[str]) -> int:
        """How many of these sample lines look like this MTA's (for --format auto)."""
        raise NotImplementedError

    def feed(self, line: str, offset: int) -> str:
        raise NotImplementedError

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        pass


class QueueParser(Parser):
    """A parser whose lines are joined by queue id (Postfix, sendmail).

    Per queue id it remembers the sender, the message-id and the recipients still deferred (for
    the expiry line). An entry is forgotten on the MTA's `removed`, or STATE_TTL_US after its
    last line: short queue ids are reused, so joins hold only within that window.
    """

    STATE_TTL_US = 7 * 86400 * 1_000_000
    EVICT_EVERY = 200_000

    def __init__(self, ctx: ParseContext, emit: Emit):
        super().__init__(ctx, emit)
        # qid -> {"sender", "message_id", "seen", "deferred": {recipient: row}}
        self.queue: dict[str, dict] = {}
        self._lines = 0

    def _state(self, qid: str, ts: int) -> dict:
        self._lines += 1
        if self._lines % self.EVICT_EVERY == 0:
            self.queue = {q: st for q, st in self.queue.items() if ts - st["seen"] <= self.STATE_TTL_US}
        st = self.queue.get(qid)
        if st is None or ts - st["seen"] > self.STATE_TTL_US:
            st = {"sender": None, "message_id": None, "seen": ts, "deferred": {}}
            self.queue[qid] = st
        else:
            st["seen"] = max(st["seen"], ts)
        return st

    def _record(self, st: dict, row: dict) -> None:
        """Emit a delivery row and keep the queue id's deferred recipients up to date for _expire."""
        if row["status"] == "deferred":
            st["deferred"][row["recipient"]] = row
        else:
            st["deferred"].pop(row["recipient"], None)
        self.emit(row)

    def _expire(self, st: dict, ts: int, host: str, line: str, offset: int) -> str:
        """One `expired` row per recipient still deferred, with its last deferral's reason."""
        emitted = False
        for last in st["deferred"].values():
            row = dict(last)
            row.update(ts=ts, host=host, status="expired", sender=st["sender"],
                       message_id=st["message_id"] or last["message_id"],
                       source_file=self.ctx.source_file, source_offset=offset, _line=line)
            self.emit(row)
            emitted = True
        st["deferred"] = {}
        return EVENT if emitted else SKIP

    def get_state(self) -> dict:
        return {"queue": self.queue}

    def set_state(self, state: dict) -> None:
        self.queue = {q: dict(st) for q, st in state.get("queue", {}).items()}


def addr_list(value: str) -> list[str]:
    """`<a@x>,<b@y>` or `a@x,b@y` -> ['<a@x>', '<b@y>'] (commas inside quotes are kept)."""
    out, cur, quoted, depth = [], [], False, 0
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted:
            depth -= 1
        if ch == "," and not quoted and depth <= 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return [a.strip() for a in out if a.strip()]


REPLY_CODE_RE = re.compile(r"(?:said|talk to me|greeting|reply=|Remote host said)[:=]? ?([2-5]\d\d)[ -]|^([2-5]\d\d)[ -]")


_DIGITS = frozenset("0123456789")


def reply_code_of(text: str | None) -> int | None:
    if not text:
        return None
    if text[0] in "2345" and text[1:2] in _DIGITS and text[2:3] in _DIGITS and text[3:4] in (" ", "-"):
        return int(text[:3])  # `250 2.0.0 Ok`: the leading code (the other branch needs a word first)
    m = REPLY_CODE_RE.search(text)
    if m is None:
        return None
    return int(m.group(1) or m.group(2))
