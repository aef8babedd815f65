"""What every MTA parser shares: the syslog prefix, timestamps (with year inference), and the
context and result types of the parser interface.

Read by pipeline/parsers/{postfix,sendmail,qmail}.py. Raw log text stops at the parsers: what
leaves them is a dict of event columns (see pipeline.store.records.PARSED_COLUMNS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

# Result of Parser.feed(): the line gave events / is known and irrelevant / looked like a
# delivery line of this MTA but could not be parsed (counted and kept aside as a reject).
EVENT, SKIP, MALFORMED = "event", "skip", "malformed"
# Another result of feed(), also a reject under its own reason: a qmail delivery result whose
# `starting delivery` line was never read (before the log's first line read: a first ingest of
# multilog's `current` without the older `@….s` files, a watch started mid-stream), so it has no
# recipient to be an event of. Any result other than EVENT and SKIP is a reject of that reason.
NO_START = "result_without_start"
# The same for Postfix's and sendmail's expiry line (`status=expired, returned to sender`, `DSN:
# Cannot send message for 5 days`): it names no recipient, only the queue id whose deferred
# recipients expire; of a queue id none of whose lines was read (QueueParser.live), it is a reject
# of this reason. (One whose deferrals were read and have all ended gives nothing, as before.)
NO_DEFERRALS = "expiry_without_deferrals"

# The front door's limit: a line this long (with its newline) or longer is rejected unread.
# NUL bytes are not counted (a line is as long as its text).
MAX_LINE_BYTES = 64 * 1024

# Where a log line starts: a syslog stamp (`Nov  3 16:04:31`, RFC 3339), a multilog label, an
# RFC 5424 `<PRI>1 `, qmail's own `secs.micros ` stamp. A run of NUL bytes followed by one is the
# hole a crash leaves in a log file (the file's size was saved, its last blocks were not): the
# line written after the crash starts there.
LINE_START_RE = re.compile(rb"(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d"
                           rb"|@[0-9a-f]{24} |<\d{1,3}>1 |\d{9,10}\.\d{6} )")
NUL_RUN_RE = re.compile(rb"\x00+")
# How the first line of a log's text starts when it is a whole line: LINE_START_RE's starts, and
# the other forms a parser reads or counts (journalctl's `-- Journal begins …`, short-full,
# short-unix, short-monotonic; a bare `qmail:`); an empty line or a NUL (a hole: the front door's).
# A first line that starts otherwise is the end of a line whose start is in another file: logrotate's
# copytruncate copied the start and truncated the log under its writer, which wrote the rest at
# the new file's start (or a file cut from the middle of a log). engine: a reject `starts_mid_line`
# unless its parser reads or rejects it.
TEXT_HEAD_RE = re.compile(rb"(?:" + LINE_START_RE.pattern + rb"|\d{9,10}\.\d{1,6} |@[0-9A-Fa-f]{24}\s|<\d{1,3}>"
                          rb"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d |-- |\[ *\d+\.\d+\] |qmail: |\r?\n|\x00)")
STARTS_MID_LINE = "starts_mid_line"
# Bytes after a NUL run that tell whether a line starts there (LINE_START_RE's longest match).
LINE_START_PEEK = 32


def after_hole(raw: bytes) -> bytes:
    """The line a raw line holds after its last hole, with one NUL of the hole kept (so the line
    is counted as nul_bytes): a hole is a NUL run at the line's start, or one followed by a log
    line's start (LINE_START_RE). The text before it is a line the crash cut short: it stays in
    the reject's sample, and is not read (joined to the line after it, it made one line of two,
    with a recipient of both). `raw` itself when it has no hole (its NULs are then removed)."""
    cut = -1
    for m in NUL_RUN_RE.finditer(raw):
        if m.start() == 0 or LINE_START_RE.match(raw, m.end()):
            cut = m.end()
    return raw if cut < 0 else raw[cut - 1:]


def decode_line(raw: bytes) -> tuple[str | None, str | None]:
    """The front door for one raw line (with or without its line end): (text, reject reason).

    Over-long (more than MAX_LINE_BYTES of text): (None, "too_long"), not read. Invalid UTF-8 is
    decoded with U+FFFD and NUL bytes are removed, so a delivery inside such a line is still
    read, with the reason ("invalid_utf8" / "nul_bytes") for the reject count. The line end
    (\n, \r\n) is cut off. A line with a hole (a NUL run a crash left, of any length: at its start,
    or followed by a log line's start) is the line after the hole ("nul_bytes"; after_hole)."""
    if b"\x00" in raw:
        raw = after_hole(raw)
        if len(raw) > MAX_LINE_BYTES and len(raw) - raw.count(b"\x00") > MAX_LINE_BYTES:
            return None, "too_long"
    elif len(raw) > MAX_LINE_BYTES:
        return None, "too_long"
    try:
        line = raw.decode("utf-8")
        bad = None
    except UnicodeDecodeError:
        line = raw.decode("utf-8", "replace")
        bad = "invalid_utf8"
    if "\x00" in line:
        line = line.replace("\x00", "")
        bad = bad or "nul_bytes"
    return line.rstrip("\r\n"), bad


MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# The stamp of a syslog line: `Nov  3 16:04:31` or `2024-08-26T01:33:38.572449+09:00`.
SYSLOG_STAMP = (
    r"(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
)
# `<stamp> host prog[pid]: msg`; the message is the rest of the line (lines hold no newline):
# sliced, not matched.
# Solaris' syslogd adds a message id after the tag (`sendmail[123]: [ID 801593 mail.info] QID: …`):
# part of the prefix.
SOLARIS_ID = r"(?:\[ID \d+ [a-z0-9]+\.[a-z]+\] )?"
# BusyBox syslogd (Alpine, OpenWrt, many containers; unless started with -S) writes the facility
# and priority between the host and the tag (`Nov 13 08:30:01 mx1 mail.info postfix/smtp[101]: …`;
# `<PRI>` for a pair it has no names for): part of the prefix.
FACILITY_PRIORITY = (r"(?:(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|security|mark|local[0-7])"
                     r"\.(?:emerg|panic|alert|crit|err|error|warn|warning|notice|info|debug|none) |<\d{1,3}> )?")
SYSLOG_RE = re.compile(SYSLOG_STAMP + r" (?P<host>\S+) " + FACILITY_PRIORITY + r"(?P<prog>[^\s\[:]+)(?:\[\d+\])?: "
                       + SOLARIS_ID)
STAMP_RE = re.compile(SYSLOG_STAMP + " ")
# A log line glued to one cut short (its writer died or the disk filled mid-line; a copy that ends
# mid-line with lines appended after it; `cat` of such files): a syslog prefix with a pid inside
# a line's message. The block readers hand every line whose message holds `]: ` to the parsers.
GLUED_RE = re.compile(SYSLOG_STAMP + r" \S+ " + FACILITY_PRIORITY + r"[^\s\[:]+\[\d+\]: ")


def glued_at(message: str) -> int:
    """Where the last log line glued into a line's message starts, or -1: `to=<u2@docomo.ne.jpNov
    3 16:04:33 mx1 postfix/smtp[123]: 5D6D1C0A3F: to=<u3@…>, … status=sent (…)` is two lines, the
    first cut short; read as one it made a recipient of both, and the second was lost."""
    if "]: " not in message:
        return -1
    at = -1
    for m in GLUED_RE.finditer(message):
        at = m.start()
    return at


def glued_in_line(line: str) -> str | None:
    """The log line glued to `line` when `line` was cut short before its own prefix could be read
    (within its stamp, host, program or pid: `Nov  3 16:04:31 mx1 postNov  3 16:04:33 mx1
    postfix/smtp[123]: …`; or within its queue id): the last syslog prefix with a pid after the
    line's start (GLUED_RE), or None. The parsers ask this of a line whose own prefix they cannot
    read and that holds what they read (a Postfix `to=`, a sendmail program)."""
    at = glued_at(line)
    return line[at:] if at > 0 else None


def feed_glued(feed, line: str, tail: str, offset: int) -> str:
    """Feed the log line glued to `line` (`tail`, its end: glued_at) at its own offset; the line
    it was glued to, cut short, is MALFORMED (a reject)."""
    feed(tail, offset + len(line.encode("utf-8", "surrogateescape")) - len(tail.encode("utf-8", "surrogateescape")))
    return MALFORMED
# An RFC 5424 line (rsyslog's RSYSLOG_SyslogProtocol23Format, syslog-ng's syslog-protocol):
# `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`; read as the RFC 3339 line
# `TIMESTAMP HOST APP[PROCID]: MSG` (rfc5424_as_rfc3339), which every parser reads.
RFC5424_RE = re.compile(r"<\d{1,3}>1 (\d{4}-\d\d-\d\dT\S+) (\S+) (\S+) (\S+) \S+ "
                        r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?|$)")

Emit = Callable[[dict], None]


@dataclass
class ParseContext:
    """Facts about the file being read that parsers need to turn lines into events."""

    tz: ZoneInfo
    source_file: str = ""
    mtime: float | None = None          # file's modification time (Unix seconds): year inference
    year: int | None = None             # forced year for syslog lines without one: the year of the
                                        # file's first line (a later month before `first_month` is in the next)
    first_month: int | None = None      # month of the file's first `Mon DD` line (with `year`)
    default_host: str | None = None     # for formats without a host field (qmail multilog)
    _year_cache: dict = field(default_factory=dict, repr=False)
    _hour_cache: dict = field(default_factory=dict, repr=False)
    _minute_cache: dict = field(default_factory=dict, repr=False)
    _fold_cache: dict = field(default_factory=dict, repr=False)

    def syslog_year(self, month: int, day: int) -> int:
        """Year of a `Mon DD` stamp: the latest year that does not put the line after the
        file's modification time (1 day of slack for zones); December lines in a January
        file therefore roll back a year. With a forced year (`--year`), that is the year of the
        file's first line: a month before that line's is in the next year (a log that runs from
        December into January), as a log covers less than a year."""
        key = (month, day)
        y = self._year_cache.get(key)
        if y is None:
            if self.year:
                y = self.year + (1 if self.first_month and month < self.first_month else 0)
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

    def fold_shift(self, us: int) -> int:
        """0, or, when `us` is the first occurrence of a local time that is there twice (the hour a
        fall-back repeats: local_us, syslog_us and iso_us read such a time as its first one), how
        much later its second occurrence is (microseconds). One look per UTC minute."""
        key = us // 60_000_000
        shift = self._fold_cache.get(key)
        if shift is None:
            if len(self._fold_cache) > 100_000:
                self._fold_cache.clear()
            shift = 0
            try:
                first = datetime.fromtimestamp(key * 60, self.tz)
            except (OverflowError, OSError, ValueError):
                first = None
            if first is not None and not first.fold:
                later = first.utcoffset() - first.replace(fold=1).utcoffset()
                if later > timedelta(0):
                    shift = int(later.total_seconds()) * 1_000_000
            self._fold_cache[key] = shift
        return shift

    def local_us(self, year: int, month: int, day: int, hms: str, frac: str | None) -> int:
        """Microseconds since the epoch (UTC) of a local wall-clock time in the context zone (a
        time that is there twice, in the hour a fall-back repeats, as its first occurrence:
        QueueParser.unfold tells the two apart by the log's clock)."""
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


FIRST_MONTH_RE = re.compile(rb"^([A-Z][a-z]{2}) +\d{1,2} \d\d:\d\d:\d\d ", re.M)


def first_month(text: bytes) -> int | None:
    """The month of the first `Mon DD hh:mm:ss` line in `text` (the start of a log), or None."""
    for m in FIRST_MONTH_RE.finditer(text[:1 << 16]):
        month = MONTHS.get(m.group(1).decode())
        if month is not None:
            return month
    return None


def rfc5424_as_rfc3339(line: str) -> str | None:
    """An RFC 5424 line as the RFC 3339 syslog line of the same message, or None when `line` is
    not one. (The event id hashes the line as read, so a line's id does not depend on this.)"""
    m = RFC5424_RE.match(line)
    if m is None:
        return None
    stamp, host, app, procid = m.groups()
    return f"{stamp} {host} {app}{'' if procid == '-' else f'[{procid}]'}: {line[m.end():]}"


# journalctl's other text forms with a whole time: `-o short-unix` (`1794526202.140891 host
# prog[pid]: msg`, seconds since the epoch) and `-o short-full` (`Fri 2026-11-13 08:30:02 JST host
# prog[pid]: msg`, local time and its zone's abbreviation); read as the RFC 3339 line of the same
# message (journal_as_rfc3339), as an RFC 5424 line is. A program of digits is refused in
# short-unix lines, so that qmail's own `<unix time> delivery 1: …` lines are not taken for them.
JOURNAL_UNIX_RE = re.compile(r"(\d{9,10})\.(\d{1,6}) (?=\S+ (?![0-9]+[\[:])[^\s\[:]+(?:\[\d+\])?: )")
JOURNAL_FULL_RE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?) "
                             r"([A-Za-z]{1,6}|[+-]\d\d(?:\d\d)?) (?=\S+ [^\s\[:]+(?:\[\d+\])?: )")
# Zone abbreviations read as their offset; any other is taken as --timezone's own (the zone
# journalctl printed the time in is the machine's, as a traditional stamp's is)
JOURNAL_ZONES = {"UTC": "+00:00", "GMT": "+00:00", "UT": "+00:00", "Z": "+00:00", "JST": "+09:00"}


def journal_as_rfc3339(line: str) -> str | None:
    """A `journalctl -o short-unix` or `-o short-full` line as the RFC 3339 syslog line of the
    same message, or None when `line` is neither (the event id hashes the line as read)."""
    head = line[:1]
    if head.isdigit():
        m = JOURNAL_UNIX_RE.match(line)
        if m is None:
            return None
        stamp = datetime.fromtimestamp(int(m.group(1)), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{m.group(2)}+00:00 {line[m.end():]}"
    if head and head in "MTWFS":
        m = JOURNAL_FULL_RE.match(line)
        if m is None:
            return None
        day, clock, zone = m.groups()
        if zone[0] in "+-":
            offset = zone[:3] + ":" + (zone[3:] or "00")
        else:
            offset = JOURNAL_ZONES.get(zone.upper(), "")
        return f"{day}T{clock}{offset} {line[m.end():]}"
    return None


def as_rfc3339(line: str) -> str | None:
    """A line of another syslog form (RFC 5424, journalctl's short-unix and short-full) as the
    RFC 3339 line of the same message, or None: what a parser tries when its prefix pattern
    does not match."""
    return rfc5424_as_rfc3339(line) if line.startswith("<") else journal_as_rfc3339(line)


def stamp_is_local(line: str) -> bool:
    """Is the line's time stamp (as split_syslog reads it, also of an RFC 5424 or journalctl line)
    one without zone: traditional, or RFC 3339 without offset? (Its time is local time of the
    context's zone: QueueParser.unfold.)"""
    m = STAMP_RE.match(line)
    if m is None:
        converted = as_rfc3339(line)
        m = STAMP_RE.match(converted) if converted is not None else None
        if m is None:
            return False
    iso = m.group("iso")
    return iso is None or not any(c in iso[19:] for c in "Z+-")


def stamp_unreadable(line: str) -> bool:
    """The line does not start with a time stamp a parser can read (`Mon DD hh:mm:ss`, RFC 3339,
    RFC 5424), or its date does not exist (`Feb 30`): a parser counts such a line as malformed
    when the rest of it looks like one of its delivery lines, instead of skipping it unseen."""
    m = STAMP_RE.match(line)
    if m is None:
        return True
    mon, day, iso = m.group("mon", "day", "iso")
    try:
        if mon is not None:
            month = MONTHS.get(mon)
            if month is None or not 1 <= int(day) <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31):
                return True
        else:
            datetime.fromisoformat(iso)
    except ValueError:
        return True
    return False


def split_syslog(line: str, ctx: ParseContext):
    """(ts_us, host, prog, msg) of a syslog line (RFC 3164 or 3339 stamp; RFC 5424), or None
    when it has no syslog prefix."""
    m = SYSLOG_RE.match(line)
    if m is None:
        converted = as_rfc3339(line)
        if converted is not None:
            return split_syslog(converted, ctx)
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
    or MALFORMED. State that spans lines (queue ids, delivery numbers) lives in the parser, is
    bounded, and is saved with get_state() / restored with set_state() (the ingest session keeps
    it in its state file with the read positions, so a run or a follower resumes exactly).
    """

    mta = ""

    def __init__(self, ctx: ParseContext, emit: Emit):
        self.ctx = ctx
        self.emit = emit

    @staticmethod
    def recognises(line: str) -> bool:
        """Does this line look like one of this MTA's (its program, its line shape)? For
        --format auto, per line in a file of several MTAs, and to refuse a wrong --format."""
        raise NotImplementedError

    @classmethod
    def detect(cls, lines: list[str]) -> int:
        """How many of these sample lines look like this MTA's (for --format auto)."""
        return sum(1 for ln in lines if cls.recognises(ln))

    def feed(self, line: str, offset: int) -> str:
        raise NotImplementedError

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        pass


# The changes of a queue-id table (QueueParser.change): what one log line does to it.
SENDER, MESSAGE_ID, DELIVERY, REMOVED, TOUCH, EXPIRED, CLOCK, RECIPIENTS, ENTRY = range(9)
# What a deferral keeps for the expiry event that may follow it (the rest comes from the expiry line).
DEFERRED_FIELDS = ("mta", "queue_id", "message_id", "recipient", "recipient_domain", "relay", "dsn",
                   "reply_code", "smtp_phase", "diagnostic")


class QueueParser(Parser):
    """A parser whose lines are joined by queue id (Postfix, sendmail).

    Per queue id it remembers the sender, the message-id and the recipients still deferred (for
    the expiry line). `change()` is the one way this table changes: feed() calls it for every
    line it reads, and so does the Postfix block reader (parsers/postfix_block.py) for the lines
    it reads column-wise, so both give the same state.

    The join window: an entry not seen for STATE_TTL_US of the log's clock (the latest time of
    any line read so far) is stale and a line of its queue id starts a new one, because short
    queue ids are reused. Stale entries are forgotten whenever convenient (they can never be
    joined again, so when does not matter) and are never saved. An entry is also forgotten on
    the MTA's `removed`, or, where the MTA logs no such line (sendmail), once every recipient
    announced by its `nrcpts=` has a final status. At most MAX_QUEUE_IDS live entries are kept:
    a log whose queue ids never see a final line cannot grow the state (or the state file)
    without bound; beyond it the least recently seen tenth is dropped (ties by queue id).
    """

    STATE_TTL_US = 7 * 86400 * 1_000_000
    MAX_QUEUE_IDS = 200_000
    PRUNE_EVERY = 50_000  # new entries between two sweeps of the stale ones
    FOLD_BACK_US = 10 * 60 * 1_000_000  # a local time this far before the clock, in a repeated hour, is its second (unfold)

    def __init__(self, ctx: ParseContext, emit: Emit):
        super().__init__(ctx, emit)
        # qid -> {"sender", "message_id", "seen", "deferred": {recipient: DEFERRED_FIELDS}, ["left"]}
        self.queue: dict[str, dict] = {}
        self.clock = 0  # the latest time (us) of the lines read: the join window is measured from it
        self._new_entries = 0

    def change(self, kind: int, qid: str | None, ts: int, value=None, clock: int | None = None):
        """Apply what one line says about queue id `qid` at time `ts` (in line order):

        SENDER value=address, MESSAGE_ID value=id, TOUCH (only the time), RECIPIENTS value=n
        (where the MTA logs no `removed`: the entry is forgotten once n recipients have a final
        status): the entry is created (or renewed when stale) and updated; returns it.
        DELIVERY value=row (needs at least recipient and status): the row's sender and
        message_id are set from the entry; a deferral is kept for the expiry line, any other
        status forgets that recipient's deferral and counts towards `left`; returns the entry.
        EXPIRED value=(host, line, offset): returns one `expired` row per recipient still
        deferred (with its last deferral's reason) and forgets them.
        ENTRY value=(sender, message_id, left, rows): what SENDER sender, MESSAGE_ID message_id,
        RECIPIENTS left (unless None) and a DELIVERY of each row would do, in one step (a block
        reader leaving the entry a run of lines makes); returns the entry.
        REMOVED: the entry is forgotten. CLOCK: only the log's clock moves (qid is ignored).
        `clock`: the log's clock at this line when the caller knows it to be later than `ts`
        (the block reader, which applies some lines column-wise).
        """
        if clock is not None and clock > self.clock:
            self.clock = clock
        if ts > self.clock:
            self.clock = ts
        if kind == CLOCK:
            return None
        queue = self.queue
        if kind == REMOVED:
            queue.pop(qid, None)
            return None
        st = queue.get(qid)
        if st is None or self.clock - st["seen"] > self.STATE_TTL_US:
            st = {"sender": None, "message_id": None, "seen": ts, "deferred": {}}
            queue[qid] = st
            self._new_entries += 1
            if len(queue) > self.MAX_QUEUE_IDS or self._new_entries >= self.PRUNE_EVERY:
                self._shrink()
        elif ts > st["seen"]:
            st["seen"] = ts
        if kind == DELIVERY:
            self._delivered(qid, st, value)
        elif kind == ENTRY:
            st["sender"], st["message_id"], left, rows = value
            if left is not None:
                st["left"] = left
            for i, row in enumerate(rows):
                if self.queue.get(qid) is not st:      # forgotten by the row before: the rest
                    for rest in rows[i:]:              # as lines of their own (a new entry)
                        self.change(DELIVERY, qid, ts, rest)
                    break
                self._delivered(qid, st, row)
        elif kind == SENDER:
            st["sender"] = value
        elif kind == MESSAGE_ID:
            st["message_id"] = value
        elif kind == RECIPIENTS:
            st["left"] = value
        elif kind == EXPIRED:
            host, line, offset = value
            rows = []
            for last in st["deferred"].values():
                row = dict(last)
                row.update(ts=ts, host=host, status="expired", sender=st["sender"],
                           message_id=st["message_id"] or last["message_id"],
                           source_file=self.ctx.source_file, source_offset=offset, _line=line)
                rows.append(row)
            st["deferred"] = {}
            return rows
        return st

    def live(self, qid: str, ts: int) -> bool:
        """Has `qid` an entry that a line of it at `ts` joins (change() would not start a new one)?"""
        st = self.queue.get(qid)
        return st is not None and max(self.clock, ts) - st["seen"] <= self.STATE_TTL_US

    def unfold(self, ts: int, local) -> int:
        """The time of a line whose stamp read `ts` (`local`: a stamp without zone, traditional or
        RFC 3339; a callable, asked only when it matters). A local time that is there twice (the
        hour repeated when summer time ends: `Nov  1 01:30:00` in New York is 05:30 and 06:30
        UTC) is read as its first occurrence, unless that is more than FOLD_BACK_US (or half the
        shift) before the log's clock (the latest time read before it) and the second is not
        more than FOLD_BACK_US after it: a log's lines are in order within seconds, so a log
        that reached 01:59 EDT and goes on at 01:00 has gone on in EST, and its lines neither
        share their times with the hour before nor go back in time. (A clock far past both, an
        older log read after a newer one, tells nothing: the first.) The block readers leave
        such minutes' lines to feed() (blocks.hour_us)."""
        shift = self.ctx.fold_shift(ts)
        if shift:
            back = self.clock - ts
            if min(shift // 2, self.FOLD_BACK_US) < back <= shift + self.FOLD_BACK_US and (
                    local() if callable(local) else local):
                return ts + shift
        return ts

    def _delivered(self, qid: str, st: dict, row: dict) -> None:
        """A delivery row of queue id `qid` (its entry `st`): see change(DELIVERY)."""
        row["sender"], row["message_id"] = st["sender"], st["message_id"]
        if row["status"] == "deferred":
            st["deferred"][row["recipient"]] = {k: row[k] for k in DEFERRED_FIELDS}
        else:
            st["deferred"].pop(row["recipient"], None)
            left = st.get("left")
            if left is not None:
                st["left"] = left = left - 1
                if left <= 0 and not st["deferred"]:
                    self.queue.pop(qid, None)  # every announced recipient has its final status

    def _shrink(self) -> None:
        """Forget the stale entries; if more than MAX_QUEUE_IDS are still live, the least recently
        seen tenth of them too."""
        self._new_entries = 0
        horizon = self.clock - self.STATE_TTL_US
        queue = {q: st for q, st in self.queue.items() if st["seen"] >= horizon}
        if len(queue) > self.MAX_QUEUE_IDS:
            keep = sorted(queue, key=lambda q: (queue[q]["seen"], q))[len(queue) - self.MAX_QUEUE_IDS * 9 // 10:]
            queue = {q: queue[q] for q in keep}
        self.queue = queue

    def live_entries(self) -> int:
        horizon = self.clock - self.STATE_TTL_US
        return sum(1 for st in self.queue.values() if st["seen"] >= horizon)

    def get_state(self) -> dict:
        """The live entries (stale ones can never be joined again) and the clock."""
        horizon = self.clock - self.STATE_TTL_US
        return {"queue": {q: st for q, st in self.queue.items() if st["seen"] >= horizon}, "clock": self.clock}

    def set_state(self, state: dict) -> None:
        """Restore get_state(); ValueError for a state of another shape (nothing is changed)."""
        queue = {}
        for q, st in state.get("queue", {}).items():
            if not (isinstance(st, dict) and isinstance(st.get("seen"), int) and isinstance(st.get("deferred"), dict)
                    and "sender" in st and "message_id" in st):
                raise ValueError(f"queue id {q!r} is not an entry this parser saved")
            queue[q] = dict(st)
        clock = state.get("clock")
        if clock is not None and not isinstance(clock, int):
            raise ValueError(f"clock {clock!r} is not a time")
        self.queue = queue
        self.clock = int(clock or max((st["seen"] for st in self.queue.values()), default=0))


def split_outside_quotes(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """text split at each `sep` that is outside double quotes (a backslash escapes the next
    character inside them) and outside angle brackets: `"Yamada, Taro" <t@x>,<h@y>` split at
    "," is `"Yamada, Taro" <t@x>` and `<h@y>`. With a quote never closed, split as str.split."""
    out, start, quoted, depth, i, n = [], 0, False, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(depth - 1, 0)
        elif depth == 0 and text.startswith(sep, i) and maxsplit != len(out):
            out.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    if quoted:  # a quote never closed: no quoting to go by
        return text.split(sep, maxsplit)
    out.append(text[start:])
    return out


def mailbox_address(item: str) -> str:
    """The address of one recipient as sendmail logs it: `<a@x>` or `a@x` as it is, the angle
    address of a name-addr (`"Yamada, Taro" <t@x>`, `Taro Yamada <t@x>`: mail submitted with
    `sendmail -t` logs the To: header's form) -> `<t@x>`."""
    item = item.strip()
    if item.endswith(">") and not item.startswith("<"):
        quoted, i = False, 0
        while i < len(item):
            ch = item[i]
            if quoted and ch == "\\":
                i += 1
            elif ch == '"':
                quoted = not quoted
            elif ch == "<" and not quoted:
                return item[i:]
            i += 1
    return item


def addr_list(value: str) -> list[str]:
    """`<a@x>,<b@y>` or `a@x,b@y` -> ['<a@x>', '<b@y>'] (commas inside quotes and angle brackets
    are kept; a name-addr gives its angle address: mailbox_address)."""
    return [mailbox_address(a) for a in split_outside_quotes(value, ",") if a.strip()]


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
