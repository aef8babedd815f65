"""What the block readers of every MTA share: the lines of a block and what each is to the front
door, per-row joins, and stamps turned into times once per minute (traditional and RFC 3339
stamps, by the minute keys the compiled scanners make: stamp_times).

A block is whole lines (ending with a newline). Each line is ASCII (can be read column-wise), valid
non-ASCII UTF-8 (read by the MTA's per-line parser, never column-wise: Python's lower() and \\d
and Arrow's differ outside ASCII), or raw: invalid UTF-8, a NUL, a CR, or MAX_LINE_BYTES long
(through the engine's front door, which counts it as a reject). line_kinds_numpy() defines this;
the compiled scanner's line_kinds() (pipeline/ingest/native) must agree (tests/test_postfix_scan.py).

Used by parsers/sendmail_block.py and parsers/qmail_block.py (the Postfix reader's scanner makes
the same per-line decision in its own pass). DeferredRows (the rows a deferral leaves in the
parser state, made only where they reach it) serves the Postfix and sendmail readers.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from ...store import arrow_build as ab
from ...store import arrow_compute as pc
from .. import native
from .common import iso_us

ASCII, UTF8, RAW = 0, 1, 2


def distinct_codes(codes: np.ndarray) -> np.ndarray:
    """The distinct non-negative values of an integer array, sorted (np.unique(codes[codes >= 0])
    for codes that index something of about a block's size). By counting, not np.unique: its
    first plain call in a process imports numpy.ma (~8 ms of every run's start)."""
    codes = codes[codes >= 0]
    return np.flatnonzero(np.bincount(codes)) if len(codes) else codes.astype(np.int64)


def line_kinds_numpy(block: bytes, max_line: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(line_starts (n + 1), kinds (n)) of a block; None when it holds no newline."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    n = len(ends)
    if n == 0:
        return None
    line_starts = np.empty(n + 1, np.int64)
    line_starts[0] = 0
    line_starts[1:] = ends + 1
    kinds = np.zeros(n, np.uint8)
    kinds[(ends - line_starts[:-1]) >= max_line] = RAW
    kinds[np.unique(np.searchsorted(ends, np.flatnonzero((data == 0) | (data == 13))))] = RAW
    for i in np.unique(np.searchsorted(ends, np.flatnonzero(data >= 128))).tolist():
        if kinds[i] != RAW:
            try:
                block[line_starts[i]:ends[i]].decode("utf-8")
                kinds[i] = UTF8
            except UnicodeDecodeError:
                kinds[i] = RAW
    return line_starts, kinds


def line_kinds(block: bytes, max_line: int) -> tuple[np.ndarray, np.ndarray] | None:
    scanner = native.SCANNER
    return scanner.line_kinds(block, max_line) if scanner else line_kinds_numpy(block, max_line)


def lines_array(block: bytes, line_starts: np.ndarray) -> pa.StringArray:
    """The lines of a block as strings (with their newline; only ASCII lines may be handed to
    Arrow's string functions: the others are never taken on the column-wise path)."""
    n = len(line_starts) - 1
    return pa.StringArray.from_buffers(n, pa.py_buffer(line_starts.astype(np.int32)), pa.py_buffer(block))


def minute_times(ctx, minute_keys: list) -> tuple[np.ndarray, np.ndarray]:
    """(time in us, no-date flag) of each `Mon DD hh:mm` key, as the per-line parsers read it.
    A key with two ASCII digits for its minutes is its hour's time (hour_us) plus the minutes."""
    minute_us = np.zeros(len(minute_keys), np.int64)
    no_date = np.zeros(len(minute_keys), bool)
    hours: dict = {}
    for i, key in enumerate(minute_keys):
        mm = key[10:12]
        if len(key) == 12 and mm.isascii() and mm.isdigit():
            hour = key[:10]
            base = hours[hour] if hour in hours else hours.setdefault(hour, hour_us(ctx, hour))
            if base is None:
                no_date[i] = True
            else:
                minute_us[i] = base + int(mm) * 60_000_000
            continue
        try:
            minute_us[i] = ctx.syslog_us(key[:3], key[4:6].lstrip(), key[7:12] + ":00", None)
        except ValueError:
            no_date[i] = True
            continue
        no_date[i] = twice(ctx, int(minute_us[i]), 2)   # there twice: the parser's (hour_us)
    return minute_us, no_date


def hour_us(ctx, hour: str) -> int | None:
    """The time of minute 00 of a `Mon DD hh:` hour (ctx.syslog_us), None when it is no date.
    ParseContext.local_us counts a time from its hour, so minute mm of it is this plus mm
    minutes, and a minute is no date exactly when its hour is none (tests/test_postfix_block.py
    holds minute_times to syslog_us of each minute). An hour with a local time that is there
    twice (the hour a fall-back repeats) is None too: which of the two a line's time is depends
    on the log's clock (QueueParser.unfold), so its lines are left to the parser, as a no-date's."""
    try:
        us = ctx.syslog_us(hour[:3], hour[4:6].lstrip(), hour[7:9] + ":00:00", None)
    except ValueError:
        return None
    return None if twice(ctx, us, 100) else us


def twice(ctx, us: int, minutes: int) -> bool:
    """Is a local time of the `minutes` minutes from `us` (a stamp's first occurrence, as
    ParseContext reads it) there twice? A stamp's minutes and seconds may be up to 99 (`00:75:99`),
    so an hour's stamps reach 100 minutes past it; a repeated span is 30 minutes or more, so a
    look every 10 minutes (and at the end) finds it."""
    return any(ctx.fold_shift(us + k * 60_000_000) for k in (*range(0, minutes, 10), minutes))


class JoinedColumn:
    """A joined value (sender, message-id) per row, as an index into the block's own values (an
    Arrow array, `base`) or into Python values from the parser state (code()); -1 is null."""

    def __init__(self, rows: int, base: pa.Array | None = None):
        self.base = base if base is not None else ab.strings([])
        self.values: list = []
        self.position: dict = {}
        self.index = np.full(rows, -1, np.int64)

    def code(self, value) -> int:
        if value is None:
            return -1
        i = self.position.get(value)
        if i is None:
            i = self.position[value] = len(self.base) + len(self.values)
            self.values.append(value)
        return i

    def array(self) -> pa.Array:
        values = pa.concat_arrays([pc.cast(self.base, pa.string()), ab.strings(self.values)]) if self.values else self.base
        return pc.take(values, ab.numbers(np.maximum(self.index, 0), pa.int64(), self.index >= 0))


def take(array: pa.Array, positions: np.ndarray) -> pa.Array:
    return pc.take(array, ab.indices(positions))


class DeferredRows:
    """The deferred delivery rows of a block as the parser keeps them for a later expiry or
    bounce (common.DEFERRED_FIELDS, less the queue-id join), made into dicts only for the rows
    that reach the parser state: most deferrals of a block are followed by a later delivery to
    the same recipient, and only a recipient's last delivery is kept. `columns` are the block's
    row columns (recipient, recipient_domain, relay, dsn, reply_code, smtp_phase, text);
    get(j) is the row of delivery j (None when it is not a deferral); preload() makes many in
    one go (a row is made once: the parser state keeps the dict it was given)."""

    FIELDS = ("recipient", "recipient_domain", "relay", "dsn", "reply_code", "smtp_phase", "text")

    def __init__(self, mta: str, columns: dict, deferred: np.ndarray):
        self.mta = mta
        self.columns = columns
        self.deferred = deferred
        self.rows: dict[int, dict] = {}

    def preload(self, js) -> None:
        js = distinct_codes(np.asarray(js, np.int64))
        rows = self.rows
        js = [j for j in js[self.deferred[js]].tolist() if j not in rows]
        if not js:
            return
        at = np.array(js, np.int64)
        values = (take(self.columns[c], at).to_pylist() for c in self.FIELDS)
        mta = self.mta
        for j, rcpt, domain, relay, dsn, code, phase, text in zip(js, *values):
            self.rows[j] = {
                "mta": mta, "queue_id": None, "message_id": None, "recipient": rcpt,
                "recipient_domain": domain, "relay": relay, "status": "deferred", "dsn": dsn,
                "reply_code": code, "smtp_phase": phase, "diagnostic": text,
            }

    def get(self, j: int) -> dict | None:
        if not self.deferred[j]:
            return None
        if j not in self.rows:
            self.preload([j])
        return self.rows[j]

    __getitem__ = get


# The minute key of an RFC 3339 stamp has the top bit set; with a zone, bit 62 too and the
# low bits are the minute since the epoch (UTC); without one, the local minute packed as
# year << 20 | month << 16 | day << 11 | hour << 6 | minute (stamp_at in the C scanner).
STAMP_ISO, STAMP_UTC = 1 << 63, 1 << 62


def stamp_times(ctx, keys: list, minute_texts: list) -> tuple[np.ndarray, np.ndarray]:
    """(time in us, no-date flag) of each minute key of the compiled scanners: a traditional
    stamp's by its `Mon DD hh:mm` text (minute_texts[i], as minute_times), an RFC 3339 one's by
    the key itself, as datetime.fromisoformat (common.iso_us) reads the stamp's minute."""
    us = np.zeros(len(keys), np.int64)
    no_date = np.zeros(len(keys), bool)
    plain = [i for i, k in enumerate(keys) if not k & STAMP_ISO]
    if plain:
        us[plain], no_date[plain] = minute_times(ctx, [minute_texts[i] for i in plain])
    for i, k in enumerate(keys):
        if not k & STAMP_ISO:
            continue
        if k & STAMP_UTC:
            us[i] = (k & (STAMP_UTC - 1)) * 60_000_000
        else:
            y, mo, d, h, mi = k >> 20 & 0x3FFF, k >> 16 & 15, k >> 11 & 31, k >> 6 & 31, k & 63
            us[i] = iso_us(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00", ctx.tz)
            no_date[i] = twice(ctx, int(us[i]), 1)   # local time there twice: the parser's (hour_us)
    return us, no_date


_MINUTES: dict[int, tuple] = {}  # id(ctx) -> (ctx, {minute key: (us, no date)}, {hour key: us or None}), a few contexts
_MINUTES_KEPT = 16
_UNSEEN = object()
_MINUTES_LOCK = threading.Lock()


def block_minutes(ctx, block: bytes, starts: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(minute of each line: an index into the two arrays that follow; time in us and no-date
    flag of each distinct minute) of lines starting at `starts` with the compiled scanners' minute
    keys `keys` (stamp_times; a traditional key's text is its first line's first 12 bytes). Each
    minute of a file's context is worked out once (a block repeats the minutes of the one before);
    the reader threads share the dicts: a minute made twice is the same. Traditional stamps are
    worked out per hour (hour_us), the minutes added with numpy."""
    # np.unique over the runs of equal keys (a log's lines come in minutes), not every line
    run_starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1 if len(keys) else np.zeros(0, np.int64)
    run_starts = np.concatenate((np.zeros(min(len(keys), 1), np.int64), run_starts))
    packed, first_run, run_minute = np.unique(keys[run_starts], return_index=True, return_inverse=True)
    first = run_starts[first_run]
    minute_of = np.repeat(run_minute.ravel(), np.diff(np.append(run_starts, len(keys))))
    with _MINUTES_LOCK:
        entry = _MINUTES.get(id(ctx))
        if entry is None or entry[0] is not ctx:
            if len(_MINUTES) >= _MINUTES_KEPT:
                del _MINUTES[next(iter(_MINUTES))]
            entry = _MINUTES[id(ctx)] = (ctx, {}, {})
    _, known, known_hours = entry
    minute_us = np.zeros(len(packed), np.int64)
    no_date = np.zeros(len(packed), bool)
    # traditional keys (9 characters of `Mon DD hh:mm`, 7 bits each): by hour, as minute_times
    p10, p11 = (packed >> np.uint64(7) & np.uint64(0x7F)).astype(np.int64), (packed & np.uint64(0x7F)).astype(np.int64)
    by_hour = np.flatnonzero(((packed >> np.uint64(63)) == 0) & (p10 >= 48) & (p10 <= 57) & (p11 >= 48) & (p11 <= 57))
    if len(by_hour):
        hours, hour_first, hour_of = np.unique(packed[by_hour] >> np.uint64(14), return_index=True, return_inverse=True)
        hour_of = hour_of.ravel()
        at = starts[first[by_hour[hour_first]]].tolist()
        base = []
        for h, x in zip(hours.tolist(), at):
            v = known_hours.get(h, _UNSEEN)
            if v is _UNSEEN:
                if len(known_hours) > 100_000:
                    known_hours.clear()
                v = known_hours[h] = hour_us(ctx, block[x:x + 10].decode("ascii"))
            base.append(v)
        none = np.fromiter((v is None for v in base), bool, len(base))
        base_us = np.fromiter((0 if v is None else v for v in base), np.int64, len(base))
        minute_us[by_hour] = np.where(none[hour_of], 0, base_us[hour_of] + ((p10[by_hour] - 48) * 10 + p11[by_hour] - 48) * 60_000_000)
        no_date[by_hour] = none[hour_of]
    # the others (RFC 3339 keys) one by one
    other = np.ones(len(packed), bool)
    other[by_hour] = False
    other = np.flatnonzero(other)
    if len(other):
        distinct = packed[other].tolist()
        values = [known.get(k) for k in distinct]
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            at = starts[first[other[missing]]].tolist()
            us, no = stamp_times(ctx, [distinct[i] for i in missing], [block[x:x + 12].decode("ascii") for x in at])
            made = list(zip(us.tolist(), no.tolist()))
            for i, v in zip(missing, made):
                values[i] = v
            if len(known) > 100_000:
                known.clear()
            known.update(zip((distinct[i] for i in missing), made))
        minute_us[other] = [v[0] for v in values]
        no_date[other] = [v[1] for v in values]
    return minute_of, minute_us, no_date
