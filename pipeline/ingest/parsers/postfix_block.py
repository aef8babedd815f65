"""Postfix log blocks read column-wise: the fast path of PostfixParser.

A block of whole lines is scanned, line by line, for the four line shapes that make up almost
all of a Postfix log's work, in their usual spelling (FAST_RE below); a line with invalid UTF-8,
a NUL, a CR or of MAX_LINE_BYTES goes to the front door on its own:

    … postfix/smtp[pid]: QID: to=<a@b>, relay=…, delay=…, delays=…, dsn=…, status=sent (…)
    … postfix/qmgr[pid]: QID: from=<a@b>, size=…, nrcpt=… (queue active)
    … postfix/qmgr[pid]: QID: removed
    … postfix/cleanup[pid]: QID: message-id=<…>

The compiled scanner (pipeline/ingest/native/postfix_scan.c, one pass, no GIL) does that when
it was built; scan_numpy() here, which runs FAST_RE by RE2 through Arrow and does the rest with
numpy, defines what it must find and stands in where no C compiler was available.

For those lines the pattern guarantees where every field starts and ends, so the fields are cut
by position (one gather per column). Every other line that PostfixParser.feed would look at
(any line with ` to=`, ` from=`, `message-id=` or ending in `: removed`: odd spellings, ISO stamps, expiries, probes, …) is handed to PostfixParser.feed
itself, in line order, so the result is the per-line parser's by construction: the fast path only
ever takes lines whose meaning is unambiguous. tests/test_postfix_block.py holds the two to the
same events and state on the sample logs, the public corpus, generated traffic and odd lines.

What a delivery row needs that no other line decides (reply code and SMTP phase: the compiled
text_facts for ASCII texts, reply_code_of / smtp_phase_of for the others; event id, carrier
and class) is made with the fields, in extract(), which ingest runs in reader threads ahead of
the block being applied.

The queue-id joins (sender, message-id, deferred recipients for the expiry line) live in the
parser's own state (PostfixParser.queue). Queue ids are independent of each other there, so they
are split in two: those with a fed line, a message-id after a delivery, or an entry from before
that may be stale go through one Python loop over their lines in order, each line through
PostfixParser.change (or feed); all others (a message received, delivered and removed, the bulk
of a log) are joined by postfix_join (the latest from= / message-id= of the same queue id since
its last `removed`: computed, compiled where the scanner was built, without touching the state),
and only their entry at the end of the block is set, through PostfixParser.change.

Called by pipeline.ingest.engine for every clean block of a Postfix file.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Callable

import numpy as np
import pyarrow as pa
from ...store import arrow_build as ab
from ...store import arrow_compute as pc
from .. import native
from ..native import Scanner
from ...store.records import EVENT_COLUMNS, ID_BYTES, PARSED_COLUMNS, event_ids_for_plain
from .common import CLOCK, DELIVERY, MESSAGE_ID, REMOVED, SENDER, TOUCH, decode_line
from . import blocks
from .blocks import STAMP_ISO, STAMP_UTC, DeferredRows, distinct_codes
from .common import reply_code_of
from . import postfix_join
from .postfix_join import NO_TIME as _NO_TIME, T_REMOVED, T_REUSED
from .postfix import FILTER_HOP_RELAY, FILTER_HOP_REPLY, PostfixParser, head_as_fed, read_prefix, smtp_phase_of

# --- the shapes the fast path takes (RE2 syntax; anything else goes to PostfixParser.feed) ------
# A fixed-width traditional stamp (`Nov  3 16:04:31` or `Nov 03 …`: the minute and the seconds
# sit at known offsets; with a fraction too, as journalctl -o short-precise writes it), or an RFC
# 3339 one as rsyslog writes it by default and journalctl -o short-iso
# (`2024-08-26T01:33:38.572449+09:00`, `…T01:33:38+0900`); _other_stamp() reads a stamp of other
# than 15 characters (an RFC 3339 date or time that is none, such as Feb 30, leaves the fast path).
_ISO_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
_STAMP = r"(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?|" + _ISO_STAMP + ") "
# A host without space, ':' or '>' (so the first ": " ends the program and the first '>' ends
# the address); a postfix program name without '[' or ':'.
_HOST = r"[0-9A-Za-z._-]+"
_PROG = r"postfix[0-9A-Za-z._/-]*"
_QID = r"(?:[0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{11,20})"
_PID_QID = r"\[[0-9]+\]: " + _QID + ": "
# Address characters: printable ASCII except space, '"', ',', '<' and '>' (so normalise_address
# reduces to lower()).
_ADDR = r'[!#-+\--;=?-~\x{80}-\x{10FFFF}]'
# … of which an address may neither begin nor end with a character normalise_address()'s strip()
# removes (the non-ASCII spaces: U+0085 U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000)
_ADDR_END = (r'[!#-+\--;=?-~\x{80}-\x{84}\x{86}-\x{9F}\x{A1}-\x{167F}\x{1681}-\x{1FFF}\x{200B}-\x{2027}'
             r'\x{202A}-\x{202E}\x{2030}-\x{205E}\x{2060}-\x{2FFF}\x{3001}-\x{10FFFF}]')
_ADDR_PLUS = "(?:" + _ADDR_END + "(?:" + _ADDR + "*" + _ADDR_END + ")?)"
_VALUE = r'[^,=<>"]*'
_DELIVERY = (r"/(?:smtp|lmtp|local|virtual|pipe|error|retry|discard)" + _PID_QID
             + r"to=<" + _ADDR_PLUS + r">(?:, orig_to=<[^<>\",]*>)?, relay=" + _VALUE
             + r"(?:, (?:conn_use|delay|delays)=" + _VALUE + r")*, dsn=" + _VALUE
             + r", status=(?:sent|deferred|bounced|expired|undeliverable)(?: \(|\n$)")
_QMGR = (r"/qmgr" + _PID_QID
         + r"(?:from=<" + _ADDR_PLUS + r"?>, size=[0-9]+, nrcpt=[0-9]+ \(queue active\)\n$|removed\n$)")
_CLEANUP = r"/cleanup" + _PID_QID + r"message-id=<[!-;=?-~]*>\n$"
FAST_RE = "^" + _STAMP + _HOST + " " + _PROG + "(?:" + _DELIVERY + "|" + _QMGR + "|" + _CLEANUP + ")"
# Lines PostfixParser.feed does more than SKIP (its own cheap pre-test, as a pattern).
INTERESTING_RE = r" to=| from=|message-id=|: removed\n$"
# A program's pid and colon (a line with two: maybe another log line glued to it, common.glued_at)
PID_TAG_RE2 = r"\[[0-9]+\]: "

# What an interesting line is (K_FEED: one for PostfixParser.feed).
K_FEED, K_DELIVERY, K_FROM, K_REMOVED, K_MSGID = 0, 1, 2, 3, 4
# What a line is to the block reader: skipped (feed() would skip it), fed (to PostfixParser.feed),
# on the fast path, or raw (invalid UTF-8, NUL, CR, over-long: through the front door's checks).
C_SKIP, C_FEED, C_FAST, C_RAW = 0, 1, 2, 3
_KIND_OF_CHAR = np.zeros(256, np.int8)
_KIND_OF_CHAR[ord("t")], _KIND_OF_CHAR[ord("f")] = K_DELIVERY, K_FROM
_KIND_OF_CHAR[ord("r")], _KIND_OF_CHAR[ord("m")] = K_REMOVED, K_MSGID
# status=… by its first letter (the pattern allows only these five words)
_STATUS_BY_CHAR = {ord("s"): "sent", ord("d"): "deferred", ord("b"): "bounced",
                   ord("e"): "expired", ord("u"): "undeliverable"}
_STATUS_LEN = np.zeros(256, np.int64)
for _c, _w in _STATUS_BY_CHAR.items():
    _STATUS_LEN[_c] = len(_w)
_STATUS_CODE = np.zeros(256, np.int8)
_STATUS_WORDS = ["", *_STATUS_BY_CHAR.values()]
for _i, _c in enumerate(_STATUS_BY_CHAR, 1):
    _STATUS_CODE[_c] = _i
_DEFERRED_CODE = _STATUS_WORDS.index("deferred")
# fields of a delivery line up to status= (to, orig_to, relay, conn_use, delay, delays, dsn, status)
_MAX_FIELDS = 8
_TAG_RELAY, _TAG_DSN, _TAG_STATUS = (ord(a) << 8 | ord(b) for a, b in ("re", "ds", "st"))
_STATUS_ARRAY = ab.strings(_STATUS_WORDS)
_EMPTY = ab.scalar("")
_PHASE_HINT_RE = (r"in reply to |refused to talk to me|while receiving the initial server greeting"
                  r"|(?i:while sending)|(?i:while performing the)")
_LEADING_CODE_RE = r"^[2-5][0-9][0-9][ -]"
# common.REPLY_CODE_RE in RE2 spelling (a clean block's digits are ASCII); leftmost-first, as re
_REPLY_CODE_RE2 = (r"(?:said|talk to me|greeting|reply=|Remote host said)[:=]? ?(?P<said>[2-5][0-9][0-9])[ -]"
                   r"|^(?P<lead>[2-5][0-9][0-9])[ -]")


def gather_strings(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   valid: np.ndarray | None = None) -> pa.StringArray:
    """A string array of data[starts[i]:ends[i]] (null where not valid), by one vectorised
    gather: the byte indexes are a cumulative sum of steps (1 inside a slice, a jump between)."""
    n = len(starts)
    lens = (ends - starts).astype(np.int64)
    if valid is not None:
        lens = np.where(valid, lens, 0)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        some = lens > 0
        s, o, e = starts[some], offsets[:-1][some], (starts + lens)[some]
        step = np.ones(total, np.int64)
        step[o[0]] = s[0]
        step[o[1:]] = s[1:] - e[:-1] + 1
        chars = data[np.cumsum(step)]
    else:
        chars = np.empty(0, np.uint8)
    buffers = [None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little")),
               pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(chars)]
    return pa.Array.from_buffers(pa.string(), n, buffers)


@dataclass
class BlockFields:
    """What the Arrow stage found in a block (computed without parser state: runs in a thread)."""

    n_lines: int
    line_starts: np.ndarray      # byte offset of every line in the block, and of its end
    order: np.ndarray            # line numbers of the interesting lines, in order
    kinds: np.ndarray            # K_* per interesting line
    codes: np.ndarray            # queue id per interesting line, as an index into qid_names (-1: fed)
    qid_names: pa.Array          # the distinct queue ids of the block
    minutes: np.ndarray          # index into minute_us per interesting line
    us: np.ndarray               # microseconds of the stamp within its minute per interesting line
    senders: tuple               # (positions among the interesting lines, sender of each K_FROM line)
    message_ids: tuple           # (positions, message-id of each K_MSGID line)
    delivery: dict               # columns of the K_DELIVERY lines (Arrow arrays / numpy)
    minute_us: np.ndarray        # the time of each minute key (by the file's ParseContext)
    no_date: np.ndarray          # minute keys that are no date (Feb 30): their lines go to feed()


def scan_numpy(block: bytes, max_line: int) -> dict | None:
    """What a block's lines are and where their fields sit, by FAST_RE (RE2, through Arrow) and
    numpy arithmetic; None when the block holds no newline. This defines the fast path: the
    compiled scanner (pipeline/ingest/native/postfix_scan.c) must return the same arrays.

    The decision is per line: a line with invalid UTF-8, a NUL or a CR, or of `max_line` bytes
    or more is C_RAW (the front door's checks, line by line); a line with valid non-ASCII UTF-8
    (a Japanese subject, an SMTPUTF8 address) is never fast but is read like any other (C_FEED
    when PostfixParser.feed would look at it, else C_SKIP); only ASCII lines can be fast.

    line_starts (n + 1), cls (per line: C_SKIP, C_FEED for PostfixParser.feed, C_FAST, C_RAW);
    per fast line: f_line, f_kind (K_*; K_FEED for a delivery line the positions cannot cut),
    f_qs / f_qe (queue id), f_key (the stamp's minute, packed as blocks.stamp_times reads it),
    f_us (the microseconds within it), f_vs / f_ve (the
    from= / message-id= value, 0 for other kinds);
    per delivery line cut here: d_fast (its number among the fast lines), d_host_s, d_host_end,
    d_rcpt_end, d_dom_start, d_relay_s, d_relay_e, d_dsn_s, d_status_pos, d_status_end,
    d_status_code, d_has_text.
    """
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    n = len(ends)
    if n == 0:
        return None
    line_starts = np.empty(n + 1, np.int64)
    line_starts[0] = 0
    line_starts[1:] = ends + 1
    # per line: raw (the front door's checks) or non-ASCII (valid UTF-8: read, never fast)
    raw = (ends - line_starts[:-1]) >= max_line
    raw[np.unique(np.searchsorted(ends, np.flatnonzero((data == 0) | (data == 13))))] = True
    non_ascii = np.zeros(n, bool)
    for i in np.unique(np.searchsorted(ends, np.flatnonzero(data >= 128))).tolist():
        if not raw[i]:
            try:
                block[line_starts[i]:ends[i]].decode("utf-8")
                non_ascii[i] = True
            except UnicodeDecodeError:
                raw[i] = True
    lines = pa.StringArray.from_buffers(n, pa.py_buffer(line_starts.astype(np.int32)), pa.py_buffer(block))

    # The second ": " of a line ends a queue id when the line has one; the letter after it says
    # what the line can be (to=, from=, message-id=, removed). Only those lines are matched.
    colons = np.flatnonzero(data == 58)
    colon_space = colons[data[colons + 1] == 32]  # a block ends with a newline: colons + 1 is inside
    first = np.searchsorted(colon_space, line_starts[:-1])
    second = np.minimum(first + 1, max(len(colon_space) - 1, 0))
    candidate = np.zeros(n, bool)
    if len(colon_space):
        after = colon_space[second]
        candidate = (first + 1 < len(colon_space)) & (after < ends) & (_KIND_OF_CHAR[data[np.minimum(after + 2, len(data) - 1)]] > 0)
        # or two `]: `: maybe a line cut short within its queue id or message with another glued
        # to it (postfix.glued_tail: feed() reads the glued one)
        tags = colon_space[(colon_space > 0) & (data[np.maximum(colon_space - 1, 0)] == 93)]
        candidate |= np.bincount(np.searchsorted(line_starts, tags, "right") - 1, minlength=n)[:n] >= 2
    candidate &= ~raw
    cand_idx = np.flatnonzero(candidate)
    fast = np.zeros(n, bool)
    cand_lines = pc.take(lines, ab.indices(cand_idx))
    # (a second `[pid]: `: maybe another log line glued to this one, cut short: common.glued_at, feed()'s)
    fast[cand_idx] = ab.to_bools(pc.match_substring_regex(cand_lines, FAST_RE)) & \
        (ab.to_ints(pc.count_substring_regex(cand_lines, PID_TAG_RE2)) < 2)
    # RFC 3339 stamps (a digit first) and fractions: their minute key, microseconds and end, or
    # off the fast path
    iso = {}
    heads = line_starts[:-1]
    for i in np.flatnonzero(fast & ((data[heads] <= 57) | (data[np.minimum(heads + 15, len(data) - 1)] == 46))).tolist():
        iso[i] = _other_stamp(block, int(line_starts[i]))
        if iso[i] is None:
            fast[i] = False
            del iso[i]
    fast_idx = np.flatnonzero(fast)
    # A line that is no candidate is one PostfixParser.feed skips: its syslog prefix, when it has
    # one, ends in "program[pid]: queue-id: " (no earlier ": " is possible), and what follows is
    # none of to=, from=, message-id=, removed, and it holds no second `]: ` (a glued line).
    # Candidates that are not fast go to feed().
    missed = np.flatnonzero(candidate & ~fast)
    feed_idx = missed[ab.to_bools(pc.match_substring_regex(pc.take(lines, ab.indices(missed)), INTERESTING_RE))]
    cls = np.full(n, C_SKIP, np.uint8)
    cls[feed_idx] = C_FEED
    cls[fast_idx] = C_FAST
    cls[raw] = C_RAW

    starts = line_starts[fast_idx]
    line_ends = ends[fast_idx]                          # the newline
    qid_start = colon_space[first[fast_idx]] + 2
    qid_end = colon_space[second[fast_idx]]
    kind = _KIND_OF_CHAR[data[qid_end + 2]]

    # `Mon DD hh:mm` packed into one integer (9 ASCII characters, 7 bits each); the seconds;
    # where the host starts (then the RFC 3339 stamps' own)
    key = np.zeros(len(starts), np.uint64)
    for pos in (0, 1, 2, 4, 5, 7, 8, 10, 11):
        key = key << np.uint64(7) | data[starts + pos].astype(np.uint64)
    us = ((data[starts + 13].astype(np.int64) - 48) * 10 + (data[starts + 14].astype(np.int64) - 48)) * 1_000_000
    host_s = starts + 16
    if iso:
        rows = np.searchsorted(fast_idx, np.fromiter(iso, np.int64, len(iso)))
        key[rows] = np.array([k for k, _, _ in iso.values()], np.uint64)
        us[rows] = [u for _, u, _ in iso.values()]
        host_s[rows] = starts[rows] + [h for _, _, h in iso.values()]

    # sender: from=<…> ends before the first comma; message-id: <…> up to the line end
    commas = np.flatnonzero(data == 44)
    value_start = np.zeros(len(starts), np.int64)
    value_end = np.zeros(len(starts), np.int64)
    f = np.flatnonzero(kind == K_FROM)
    value_start[f] = qid_end[f] + 8
    value_end[f] = commas[np.searchsorted(commas, qid_end[f])] - 1
    m = np.flatnonzero(kind == K_MSGID)
    value_start[m] = qid_end[m] + 14
    value_end[m] = line_ends[m] - 1

    # delivery lines: each field before status= follows ", " and no value holds a comma, so the
    # line's first commas, told apart by the two letters after them, locate relay=, dsn=, status=
    d = np.flatnonzero(kind == K_DELIVERY)
    ds = starts[d]
    d_end = line_ends[d]
    c = commas[np.minimum(np.searchsorted(commas, ds)[:, None] + np.arange(_MAX_FIELDS), len(commas) - 1)]
    tags = data[c + 2].astype(np.uint16) << 8 | data[np.minimum(c + 3, len(data) - 1)]
    is_relay, is_dsn, is_status = tags == _TAG_RELAY, tags == _TAG_DSN, tags == _TAG_STATUS
    relay_i, dsn_i, status_i = is_relay.argmax(1), is_dsn.argmax(1), is_status.argmax(1)
    rows = np.arange(len(d))
    status_pos = c[rows, status_i]
    status_char = data[status_pos + 9]
    status_end = status_pos + 9 + _STATUS_LEN[status_char]
    has_text = data[status_end] == 32
    # too many fields to see (repeated delay=…) or a text that does not end in ")": the parser's
    bad = ~(is_status.any(1) & is_relay.any(1) & is_dsn.any(1)) | (has_text & (data[d_end - 1] != 41))
    kind[d[bad]] = K_FEED
    keep = np.flatnonzero(~bad)
    d, ds, c, relay_i, dsn_i = d[keep], ds[keep], c[keep], relay_i[keep], dsn_i[keep]
    status_pos, status_char, status_end, has_text = status_pos[keep], status_char[keep], status_end[keep], has_text[keep]
    rows = np.arange(len(d))
    rcpt_start = qid_end[d] + 6                          # ": to=<" … ">,"
    rcpt_end = c[:, 0] - 1
    # the domain: after the address's last '@' (none: empty, at the address's end)
    ats = np.flatnonzero(data == 64)
    last_at = ats[np.maximum(np.searchsorted(ats, rcpt_end) - 1, 0)] if len(ats) else np.full(len(d), -1)
    has_at = (last_at >= rcpt_start) & (last_at < rcpt_end)
    # the host: from the stamp's end to the next space
    spaces = np.flatnonzero(data == 32)
    return {
        "line_starts": line_starts, "cls": cls,
        "f_line": fast_idx, "f_kind": kind.astype(np.int8), "f_qs": qid_start, "f_qe": qid_end,
        "f_key": key, "f_us": us, "f_vs": value_start, "f_ve": value_end,
        "d_fast": d, "d_host_s": host_s[d], "d_host_end": spaces[np.searchsorted(spaces, host_s[d])],
        "d_rcpt_end": rcpt_end, "d_dom_start": np.where(has_at, last_at + 1, rcpt_end),
        "d_relay_s": c[rows, relay_i] + 8, "d_relay_e": c[rows, relay_i + 1],
        "d_dsn_s": c[rows, dsn_i] + 6, "d_status_pos": status_pos, "d_status_end": status_end,
        "d_status_code": _STATUS_CODE[status_char], "d_has_text": has_text.astype(np.uint8),
    }


_EPOCH_DAY = date(1970, 1, 1)
_FRACTION_STAMP_RE = re.compile(rb"[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:([0-9]{2})\.([0-9]+) ")
_ISO_STAMP_RE = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([+-])(\d\d):?(\d\d))? ")


def _other_stamp(block: bytes, at: int) -> tuple[int, int, int] | None:
    """(minute key, microseconds within the minute, where the host starts, from `at`) of the
    RFC 3339 stamp or traditional one with a fraction at `at`, as the compiled scanner's
    stamp_at() reads it; None for one it leaves to the per-line parser (no date or time: Feb 30,
    a leap second; a year before 1971)."""
    m = _FRACTION_STAMP_RE.match(block, at)
    if m is not None:
        key = 0
        for pos in (0, 1, 2, 4, 5, 7, 8, 10, 11):
            key = key << 7 | block[at + pos]
        return key, int(m.group(1)) * 1_000_000 + int(m.group(2)[:6].ljust(6, b"0")), m.end() - at
    m = _ISO_STAMP_RE.match(block, at)
    if m is None:
        return None
    y, mo, d, hh, mi, ss = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        day = date(y, mo, d)
    except ValueError:
        return None
    if not (1971 <= y <= 9998 and hh <= 23 and mi <= 59 and ss <= 59):
        return None
    frac = int((m.group(7) or b"0")[:6].ljust(6, b"0"))
    if m.group(8) or m.group(9):
        oh, om = (int(m.group(10)), int(m.group(11))) if m.group(9) else (0, 0)
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * (-1 if m.group(9) == b"-" else 1)
        minute = (day - _EPOCH_DAY).days * 1440 + hh * 60 + mi - offset
        key = STAMP_ISO | STAMP_UTC | minute
    else:
        key = STAMP_ISO | y << 20 | mo << 16 | d << 11 | hh << 6 | mi
    return key, ss * 1_000_000 + frac, m.end() - at


def _numpy_gather(data, starts, ends, valid=None, lower=False) -> pa.StringArray:
    out = gather_strings(data, starts, ends, valid)
    return pc.utf8_lower(out) if lower else out


_THREAD = threading.local()  # the scanner's buffers of each reader thread
# extract() takes `stops` (line starts that send a block to per-line reading: pipeline.ingest.engine)
STOPS_AT_LINE_STARTS = True


def extract(block: bytes, max_line: int, ctx, annotate: Annotate | None = None,
            stops: tuple[bytes, ...] = ()) -> BlockFields | None:
    """Find and cut the fields of a block of whole lines, and all that the delivery rows need
    but the parser state (reply code, phase, status, event id, and `annotate`'s columns: carrier
    and class): the scan (native.SCANNER, or scan_numpy where none was built), Arrow work, and
    what Python the rows alone need. Runs in a thread; `ctx` is the ParseContext of the file the
    block comes from (its stamps are turned into times here: the classifier is given the day).

    None for a block without a newline, and for one with a line that starts with one of `stops`
    (the engine's reasons to read a block line by line, looked for here: the scanner sees every
    line start in its own pass). Lines that cannot be fast (non-ASCII, odd shapes) are marked
    for PostfixParser.feed, lines with bad bytes (C_RAW) for the front door's checks.
    """
    scanner = native.SCANNER
    if stops and block[block.rfind(b"\n") + 1:].startswith(stops):
        return None                                     # (a last line without newline: the scanner's are whole)
    if scanner:
        buffers = getattr(_THREAD, "scan_buffers", None)
        if buffers is None:
            buffers = _THREAD.scan_buffers = native.ScanBuffers()
        s = scanner.scan(block, max_line, buffers, stops)  # (arrays reused by the thread's next block: copied where kept)
    elif stops and (block.startswith(stops) or any(b"\n" + p in block for p in stops)):
        return None
    else:
        s = scan_numpy(block, max_line)
    if s is None or s is native.STOPPED:
        return None
    cut = scanner.gather if scanner else _numpy_gather
    data = np.frombuffer(block, np.uint8)
    line_starts, cls = s["line_starts"], s["cls"]
    n = len(cls)
    fast_idx = s["f_line"]
    kind = s["f_kind"]
    starts = line_starts[fast_idx]
    qid_end = s["f_qe"]
    if scanner:  # the queue ids coded by the scanner's pass (as dictionary_encode codes them)
        qid_codes, qid_names = s["q_code"], s["q_names"]
    else:
        qids = pc.dictionary_encode(cut(data, s["f_qs"], qid_end))
        qid_codes, qid_names = ab.to_ints(qids.indices), qids.dictionary

    # stamps: one key per minute (turned into time once), microseconds within it per line
    minutes, minute_us, no_date = blocks.block_minutes(ctx, block, starts, s["f_key"])
    us = s["f_us"]

    # sender (lower-cased as normalise_address does) and message-id (as it is)
    f = np.flatnonzero(kind == K_FROM)
    senders = cut(data, s["f_vs"][f], s["f_ve"][f], lower=True)
    # non-ASCII (valid UTF-8) lines: what Python's lower() makes of their addresses, and of their
    # texts what reply_code_of / smtp_phase_of read (Python's \d and case rules), in Python
    has_high = None
    if not block.isascii():
        has_high = _high_finder(data, scanner)
        utf8 = s.get("f_utf8")                          # (the scanner's: which fast lines can hold any)
        senders = _python_lower(block, senders, s["f_vs"][f], s["f_ve"][f], has_high, None if utf8 is None else utf8[f])
    m = np.flatnonzero(kind == K_MSGID)
    m_vs, m_ve = s["f_vs"][m], s["f_ve"][m]
    msgids = cut(data, m_vs, m_ve, m_ve > m_vs)          # an empty message-id is none

    d = s["d_fast"]
    ds = starts[d]
    d_end = line_starts[fast_idx[d] + 1] - 1
    rcpt_end = s["d_rcpt_end"]
    relay_s, relay_e = s["d_relay_s"], s["d_relay_e"]
    relay = cut(data, relay_s, relay_e, ~_is_none(data, relay_s, relay_e))   # relay=none is none
    has_text = s["d_has_text"].astype(bool)
    delivery = {
        "host": cut(data, s["d_host_s"], s["d_host_end"]),
        "recipient": cut(data, qid_end[d] + 6, rcpt_end, lower=True),
        "recipient_domain": cut(data, s["d_dom_start"], rcpt_end, lower=True),
        "relay": relay,
        "dsn": cut(data, s["d_dsn_s"], s["d_status_pos"]),
        "status_code": s["d_status_code"].copy(),
        "text": cut(data, s["d_status_end"] + 2, d_end - 1, has_text),
        "line_start": ds, "line_end": d_end,
        "text_start": s["d_status_end"] + 2, "text_end": d_end - 1, "has_text": has_text,  # (_row_columns)
    }
    if "d_code" in s:                                   # (the scanner's text_facts, made in its pass)
        delivery["text_facts"] = s["d_code"], s["d_phase"]
    d_minute = minutes[d]
    delivery["day"] = ab.numbers((minute_us[d_minute] + us[d]) // 86_400_000_000, pa.int32(),
                                 ~no_date[d_minute])
    if has_high is not None:
        rs, re_ = qid_end[d] + 6, rcpt_end
        d_utf8 = None if utf8 is None else utf8[d]
        delivery["recipient"] = _python_lower(block, delivery["recipient"], rs, re_, has_high, d_utf8)
        delivery["recipient_domain"] = _python_lower(block, delivery["recipient_domain"], s["d_dom_start"], re_, has_high,
                                                     d_utf8)
        if scanner:  # the texts text_facts cannot read (see odd_slices); the numpy reader: every non-ASCII line's
            text_s, text_e = np.where(has_text, delivery["text_start"], 0), np.where(has_text, delivery["text_end"], 0)
            delivery["high"] = np.flatnonzero(has_high(text_s, text_e, d_utf8))
        else:
            delivery["high"] = np.flatnonzero(has_high(ds, d_end))
    _row_columns(block, delivery, scanner)
    if annotate is not None:
        annotate(delivery)

    # all interesting lines in order: fast ones with their fields, fed ones (K_FEED) without
    order = np.flatnonzero(cls != C_SKIP)
    is_fast = cls[order] == C_FAST
    fast_pos = np.flatnonzero(is_fast)                  # where each fast line is among them

    def spread(values, fill, dtype):
        out = np.full(len(order), fill, dtype)
        out[is_fast] = values
        return out

    return BlockFields(
        n, line_starts, order, spread(kind, K_FEED, np.int8),
        spread(qid_codes, -1, np.int64), qid_names,
        spread(minutes, 0, np.int64), spread(us, 0, np.int64),
        (fast_pos[f], senders), (fast_pos[m], msgids), delivery, minute_us, no_date)


def _is_none(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per slice data[starts[i]:ends[i]]: is it `none`?"""
    out = (ends - starts) == 4
    at = starts[out]
    out[out] = (data[at] == 110) & (data[at + 1] == 111) & (data[at + 2] == 110) & (data[at + 3] == 101)
    return out


# the event columns no parser fills: event_id (made by _row_columns) and what the `annotate`
# callback of extract() adds (pipeline.ingest.engine: EventBuffer.annotate): carrier and class
NOT_PARSED = tuple(c for c in EVENT_COLUMNS if c not in PARSED_COLUMNS)
Annotate = Callable[[dict], None]


def _row_columns(block: bytes, dv: dict, scanner: Scanner | None) -> None:
    """What each delivery row needs that no other line decides: reply code, SMTP phase, status
    word, event id."""
    texts = dv["text"]
    n = len(texts)
    text_at = dv.pop("text_start"), dv.pop("text_end"), dv.pop("has_text")
    high = dv.pop("high", None)
    facts = dv.pop("text_facts", None)
    if scanner:
        codes, phase_code, phase_words = _text_facts_native(block, texts, text_at, high, scanner, facts)
        code_valid = codes >= 0
    else:
        codes, code_valid, phase_code, phase_words = _text_facts_arrow(texts, high)
    dv["reply_code"] = ab.numbers(codes, pa.int16(), code_valid)
    dv["smtp_phase"] = (pc.take(ab.strings(phase_words), ab.numbers(np.maximum(phase_code, 0), pa.int32(), phase_code >= 0))
                        if phase_words else pa.nulls(n, pa.string()))
    dv["status"] = pc.cast(pa.DictionaryArray.from_arrays(ab.numbers(dv["status_code"], pa.int32()), _STATUS_ARRAY), pa.string())
    if scanner:
        dv["event_id"] = scanner.event_ids(np.frombuffer(block, np.uint8), dv["line_start"], dv["line_end"],
                                           dv["recipient"], ID_BYTES)
    else:
        starts, ends = dv["line_start"].tolist(), dv["line_end"].tolist()
        dv["event_id"] = event_ids_for_plain([block[s:e] for s, e in zip(starts, ends)], dv["recipient"].to_pylist())


def _text_facts_native(block: bytes, texts: pa.Array, text_at: tuple, high, scanner: Scanner, facts=None):
    """(reply codes, -1 for none; phase codes into the phase words, -1 for none; phase words) of
    the delivery texts by the compiled text_facts (reply_code_of and smtp_phase_of for ASCII
    texts, and for texts whose other characters are CJK ones: Scanner.odd_slices); the texts
    `high` (other non-ASCII characters), and a command word only smtp_phase_of knows, by Python."""
    starts, ends, valid = text_at
    # (`facts`: the same, made by the scanner's pass while each line was in cache)
    codes, phases = facts if facts is not None else scanner.text_facts(np.frombuffer(block, np.uint8), starts, ends, valid)
    codes = codes.astype(np.int64)
    phase_code = phases.astype(np.int32) - 1            # PHASES[1:] are the words; -1 is none
    phase_words = list(scanner.PHASES[1:])
    ask = phases == scanner.PHASE_PYTHON
    if high is not None and len(high):
        ask[high] = True
        for j, text in zip(high.tolist(), pc.take(texts, ab.indices(high)).to_pylist()):
            code = reply_code_of(text)
            codes[j] = -1 if code is None else code
    asked = np.flatnonzero(ask)
    if len(asked):
        word_code = {w: i for i, w in enumerate(phase_words)}
        phase_code[asked] = [-1 if phase is None else word_code.setdefault(phase, len(word_code))
                             for phase in map(smtp_phase_of, pc.take(texts, ab.indices(asked)).to_pylist())]
        phase_words = list(word_code)
    return codes, phase_code, phase_words


def _text_facts_arrow(texts: pa.Array, high):
    """_text_facts_native's answers without the compiled scanner: RE2 through Arrow, and
    smtp_phase_of once per distinct text that names a phase."""
    n = len(texts)
    # reply code: the leading `250 ` of most texts by position, REPLY_CODE_RE (by RE2) for the rest
    leading = ab.to_bools(pc.match_substring_regex(texts, _LEADING_CODE_RE))
    codes = np.zeros(n, np.int64)
    code_valid = leading.copy()
    if leading.any():
        codes[leading] = ab.to_ints(pc.cast(pc.utf8_slice_codeunits(pc.filter(texts, ab.booleans(leading)), 0, 3), pa.int64()))
    others = np.flatnonzero(~leading & ab.to_bools(pc.is_valid(texts)))
    if len(others):
        found = pc.extract_regex(pc.take(texts, ab.indices(others)), _REPLY_CODE_RE2)
        said, lead = found.field("said"), found.field("lead")
        code_text = pc.if_else(pc.equal(said, _EMPTY), lead, said)
        hit = ab.to_bools(pc.and_(pc.is_valid(found), pc.not_equal(code_text, _EMPTY)))
        codes[others[hit]] = ab.to_ints(pc.cast(pc.filter(code_text, ab.booleans(hit)), pa.int64()))
        code_valid[others[hit]] = True
    # SMTP phase: only texts naming one can have one; smtp_phase_of is asked once per distinct
    # text of the block (a text names its phase; many rows share a reply)
    hint = ab.to_bools(pc.match_substring_regex(texts, _PHASE_HINT_RE))
    if high is not None and len(high):
        # a non-ASCII line's text is read by reply_code_of / smtp_phase_of themselves
        hint[high] = True
        for j, text in zip(high.tolist(), pc.take(texts, ab.indices(high)).to_pylist()):
            code = reply_code_of(text)
            codes[j], code_valid[j] = (code, True) if code is not None else (0, False)
    hinted = np.flatnonzero(hint)
    phase_code = np.full(n, -1, np.int32)              # into phase_words; -1 is null
    phase_words: list[str] = []
    if len(hinted):
        encoded = pc.dictionary_encode(pc.take(texts, ab.indices(hinted)), null_encoding="encode")
        word_code: dict[str, int] = {}
        distinct = [-1 if phase is None else word_code.setdefault(phase, len(word_code))
                    for phase in map(smtp_phase_of, encoded.dictionary.to_pylist())]
        phase_code[hinted] = np.array(distinct, np.int32)[ab.to_ints(encoded.indices)]
        phase_words = list(word_code)
    return codes, code_valid, phase_code, phase_words


def _pylist(values: pa.Array) -> list:
    """values.to_pylist() of a column with many repeats (hosts, domains, relays, dsn): each
    distinct value made into a Python string once."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return list(map(encoded.dictionary.to_pylist().__getitem__, ab.to_ints(encoded.indices).tolist()))


def _high_finder(data: np.ndarray, scanner: Scanner | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """has_high(starts, ends, maybe=None): per slice data[starts[i]:ends[i]] (of a line with
    non-ASCII characters where `maybe`, when given), must Python read it? With the
    compiled scanner, when it holds a non-ASCII character other than the CJK ones the C reads as
    Python does (Scanner.odd_slices: most Japanese values and texts stay in C); without it, when
    it holds a non-ASCII byte (numpy finds every one of the block once, a pass over all of it,
    and looks the slices up among them)."""
    if scanner is not None:
        def odd(starts, ends, maybe=None):
            if maybe is None:
                return scanner.odd_slices(data, starts, ends)
            out = np.zeros(len(starts), bool)          # only slices of lines with non-ASCII characters
            at = np.flatnonzero(maybe)
            out[at] = scanner.odd_slices(data, starts[at], ends[at])
            return out
        return odd
    high_at = np.flatnonzero(data >= 128)
    return lambda starts, ends, maybe=None: np.searchsorted(high_at, ends) > np.searchsorted(high_at, starts)


def _python_lower(block: bytes, values: pa.Array, starts: np.ndarray, ends: np.ndarray, has_high,
                  maybe: np.ndarray | None = None) -> pa.Array:
    """`values` (block[starts:ends] lower-cased in ASCII) with Python's lower() where a value
    holds non-ASCII characters that lower() may change (`has_high`: _high_finder's; `maybe`:
    which values' lines have non-ASCII characters, when known)."""
    high = np.flatnonzero(has_high(starts, ends, maybe))
    if not len(high):
        return values
    fixed = [block[a:b].decode("utf-8").lower() for a, b in zip(starts[high].tolist(), ends[high].tolist())]
    # most non-ASCII values have no case beyond ASCII (Japanese): the column is rebuilt only
    # for the values whose Python lower() differs from what is there
    differ = [i for i, (want, have) in enumerate(zip(fixed, pc.take(values, ab.indices(high)).to_pylist())) if want != have]
    if not differ:
        return values
    index = np.arange(len(values), dtype=np.int64)
    index[high[differ]] = len(values) + np.arange(len(differ))
    return pc.take(pa.concat_arrays([values, ab.strings([fixed[i] for i in differ])]), ab.indices(index))


class _Names:
    """The block's distinct queue ids (Arrow), as Python strings one by one when asked."""

    def __init__(self, array: pa.Array):
        self.array = array
        self.cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.array)

    def preload(self, codes: np.ndarray) -> None:
        """Convert these (in one call: one by one costs a microsecond each)."""
        codes = distinct_codes(codes)
        self.cache.update(zip(codes.tolist(), pc.take(self.array, ab.indices(codes)).to_pylist()))

    def get(self, code) -> str:
        code = int(code)
        q = self.cache.get(code)
        if q is None:
            q = self.cache[code] = self.array[code].as_py()
        return q


class _JoinedColumn:
    """Sender or message-id per delivery row, as an index into the block's own values (the
    from= / message-id= lines, in Arrow) or into Python values from the parser state; -1 is null."""

    def __init__(self, block_values: pa.Array, rows: int):
        self.block_values = block_values
        self.base = len(block_values)
        self.extra: list = []
        self.extra_index: dict = {}  # each Python value once (a sender repeats on every row)
        self.index = np.full(rows, -1, np.int64)

    def python_index(self, value) -> int:
        if value is None:
            return -1
        i = self.extra_index.get(value)
        if i is None:
            self.extra.append(value)
            i = self.extra_index[value] = self.base + len(self.extra) - 1
        return i

    def array(self) -> pa.Array:
        values = pa.concat_arrays([self.block_values, ab.strings(self.extra)])
        return pc.take(values, ab.numbers(np.maximum(self.index, 0), pa.int64(), self.index >= 0))


def _carried_entries(parser: PostfixParser, f: BlockFields, names: _Names, fed_qids: list, senders: _JoinedColumn,
                     message_ids: _JoinedColumn) -> dict:
    """What the parser state says of the block's queue ids, per code (JoinInput's `special` and
    `carried_*`): the queue ids of the fed lines (their lines all go through the exact loop),
    and the entries from before the block (most queue ids of a block are new), looked up once."""
    queue = parser.queue
    n_codes = len(names)
    special = np.zeros(n_codes, bool)
    has = np.zeros(n_codes, bool)
    seen = np.zeros(n_codes, np.int64)
    left = np.zeros(n_codes, bool)
    sender = np.full(n_codes, -1, np.int64)
    mid = np.full(n_codes, -1, np.int64)
    deferred = np.zeros(n_codes, bool)
    # (an entry of a fed queue id is not needed: its lines all go through the exact loop)
    fed_set = dict.fromkeys(fed_qids)
    known = list(fed_set) + [q for q in queue if q not in fed_set]
    if known:
        at = pc.index_in(f.qid_names, value_set=ab.strings(known))
        index = np.frombuffer(at.buffers()[1], np.int32, len(at), at.offset * 4)  # (int32; null: not found)
        if at.null_count:                                 # (pc.fill_null would import pandas: pa.scalar)
            index = np.where(ab.to_bools(pc.is_valid(at)), index, -1)
        special[:] = (index >= 0) & (index < len(fed_set))
        present = np.flatnonzero(index >= len(fed_set))
        names.preload(present)
        name_of = names.cache
        sender_index, mid_index = senders.python_index, message_ids.python_index
        for i in present.tolist():
            st = queue[name_of[i]]
            seen[i] = st["seen"]
            left[i] = "left" in st
            sender[i] = sender_index(st["sender"])
            mid[i] = mid_index(st["message_id"])
            deferred[i] = bool(st["deferred"])
        has[present] = True
    return {"special": special, "has_carried": has, "carried_seen": seen, "carried_left": left,
            "carried_sender": sender, "carried_mid": mid, "carried_deferred": deferred}


@dataclass
class _Applied:
    """A block being applied to the parser state: per interesting line its kind, queue-id code,
    time and the log's clock there, and `aux` (a delivery's row, a from= / message-id= line's
    rank among the block's values); the sender and message-id columns being joined."""

    kinds: np.ndarray
    codes: np.ndarray
    ts: np.ndarray
    clock_run: np.ndarray
    names: _Names
    aux: np.ndarray
    senders: _JoinedColumn
    message_ids: _JoinedColumn


def _exact_loop(parser: PostfixParser, b: _Applied, loop: np.ndarray, fed, pending: DeferredRows,
                recipients: pa.Array, status_codes: np.ndarray, feed_line) -> None:
    """The lines of the queue ids that need it, in order: the column-wise ones through
    PostfixParser.change (what feed() would do with them), the fed ones through the front door
    `feed_line(raw, offset)` and so PostfixParser.feed."""
    if not len(loop):
        return
    kinds, codes, ts, names = b.kinds, b.codes, b.ts, b.names
    senders, message_ids = b.senders, b.message_ids
    change = parser.change
    loop_kinds, loop_aux = kinds[loop], b.aux[loop]
    names.preload(np.where(loop_kinds != K_FEED, codes[loop], -1))
    name_of = names.cache                              # every queue id of the loop, preloaded
    loop_j = loop_aux[loop_kinds == K_DELIVERY]
    # recipient and status of the rows that are no deferral; the deferrals as the state keeps them
    loop_rows = dict(zip(loop_j.tolist(), zip(pc.take(recipients, ab.indices(loop_j)).to_pylist(),
                                              map(_STATUS_WORDS.__getitem__, status_codes[loop_j].tolist()))))
    pending.preload(loop_j)
    deferral = pending.rows.get
    previous_clock = b.clock_run[np.maximum(loop - 1, 0)]  # the clock just before each line
    previous_clock[loop == 0] = _NO_TIME
    row_at, sender_at, mid_at = [], [], []               # the sender / message-id each row is joined to
    sender_index, mid_index = senders.python_index, message_ids.python_index
    fed_iter = iter(fed)
    for k, code, t, v, j, before, clock in zip(loop_kinds.tolist(), codes[loop].tolist(), ts[loop].tolist(),
                                               _loop_values(loop_kinds, loop_aux, senders, message_ids),
                                               loop_aux.tolist(), previous_clock.tolist(),
                                               b.clock_run[loop].tolist()):
        if k == K_FEED:
            raw, at = next(fed_iter)
            if before > parser.clock:
                change(CLOCK, None, before)            # lines read column-wise came before it
            feed_line(raw, at)
            continue
        q = name_of[code]
        if k == K_REMOVED:
            change(REMOVED, q, t, clock=clock)
        elif k == K_DELIVERY:
            row = deferral(j)
            if row is None:
                recipient, status = loop_rows[j]
                row = {"recipient": recipient, "status": status}
            else:
                row["queue_id"] = q
            st = change(DELIVERY, q, t, row, clock=clock)
            row_at.append(j)
            sender_at.append(sender_index(st["sender"]))
            mid_at.append(mid_index(st["message_id"]))
        elif k == K_FROM:
            change(SENDER, q, t, v, clock=clock)
        else:
            change(MESSAGE_ID, q, t, v, clock=clock)
    if row_at:
        senders.index[row_at] = sender_at
        message_ids.index[row_at] = mid_at


def _apply_rest(parser: PostfixParser, plan: dict, names: _Names, pending: DeferredRows, recipients: pa.Array,
                senders: _JoinedColumn, message_ids: _JoinedColumn) -> None:
    """The other queue ids (joined by the plan, postfix_join): the entry each is left with, set
    through PostfixParser.change: its sender, message-id, time, and its deferred recipients
    (those of the entry from before, when its epoch goes on, updated by each recipient's last
    delivery row in the block). No entry of them can be stale or pushed out in the block:
    postfix_join sends such blocks through the exact loop."""
    t_code = plan["t_code"]
    if not len(t_code):
        return
    change = parser.change
    names.preload(t_code)
    e_code, e_value = plan["e_code"], plan["e_value"]
    deferrals: dict = {}
    for code, recipient, j in zip(e_code.tolist(), pc.take(recipients, ab.indices(plan["e_first"])).to_pylist(),
                                  e_value.tolist()):
        deferrals.setdefault(code, []).append((recipient, j))
    pending.preload(e_value[e_value >= 0])
    t_sender, t_mid = plan["t_sender"], plan["t_mid"]
    sender_values = iter(_block_values(senders, t_sender[t_sender >= 0]))
    mid_values = iter(_block_values(message_ids, t_mid[t_mid >= 0]))
    name_of = names.cache
    deferral = pending.rows.get                         # (every deferral kept, preloaded above)
    for code, flags, top, sender, mid in zip(t_code.tolist(), plan["t_flags"].tolist(), plan["t_top"].tolist(),
                                             t_sender.tolist(), t_mid.tolist()):
        q = name_of[code]
        if flags & T_REMOVED:
            change(REMOVED, q, top)
            continue
        if flags & T_REUSED:
            change(REMOVED, q, top)                     # removed inside the block, then reused
        if sender >= 0:
            change(SENDER, q, top, next(sender_values))
        else:
            change(TOUCH, q, top)
        if mid >= 0:
            change(MESSAGE_ID, q, top, next(mid_values))
        for recipient, j in deferrals.get(code, ()):
            row = deferral(j) if j >= 0 else None
            if row is None:
                change(DELIVERY, q, top, {"recipient": recipient, "status": "sent"})  # a final status
            else:
                row["queue_id"] = q
                change(DELIVERY, q, top, row)


def _block_values(column: _JoinedColumn, at: np.ndarray) -> list:
    """The values of the block's own from= / message-id= lines at `at` (in one take)."""
    return pc.take(column.block_values, ab.indices(at)).to_pylist() if len(at) else []


def _loop_values(kinds: np.ndarray, aux: np.ndarray, senders: _JoinedColumn, message_ids: _JoinedColumn) -> list:
    """The from= / message-id= value of each line of the exact loop (None for other lines)."""
    out = np.empty(len(kinds), object)
    for kind_, column in ((K_FROM, senders), (K_MSGID, message_ids)):
        picked = np.flatnonzero(kinds == kind_)
        if len(picked):
            out[picked] = ab.to_objects(pc.take(column.block_values, ab.indices(aux[picked])))
    return out.tolist()


@dataclass
class BlockResult:
    """What read_block made of a block: the fast delivery rows column-wise (rows of fed lines
    went to the parser's emit as usual, bad lines to the front door's reject count)."""

    columns: dict | None         # every event column (Arrow arrays)
    lines: int


FeedLine = Callable[[bytes, int], None]


def read_block(parser: PostfixParser, block: bytes, offset: int, f: BlockFields, feed_line: FeedLine,
               annotate=None) -> BlockResult:
    """Apply a block of whole lines (starting at byte `offset` of the source; `f` is
    extract(block)) to the parser's state; the delivery rows of its fast lines come back as
    columns. Lines the fast path does not take go, in line order, to `feed_line(raw, offset)`:
    the engine's front door (checks of the bytes, then PostfixParser.feed, rejects counted)."""
    ctx = parser.ctx
    kinds = f.kinds
    # a stamp that is no date (Feb 30) leaves its lines to the parser, which skips them
    minute_us, no_date = f.minute_us, f.no_date
    dv = f.delivery
    if no_date.any():
        undated = (kinds != K_FEED) & no_date[f.minutes]
        keep = np.flatnonzero(~undated[kinds == K_DELIVERY])  # delivery columns follow the lines
        dv = {k: (pc.take(v, ab.indices(keep)) if isinstance(v, pa.Array) else v[keep]) for k, v in dv.items()}
        kinds = np.where(undated, K_FEED, kinds).astype(np.int8)
    fast = kinds != K_FEED
    # queue ids become Python strings only where the parser state is touched (names.get)
    names = _Names(f.qid_names)
    n_deliv = len(dv["line_start"])
    status_codes = dv["status_code"]
    recipients = dv["recipient"]
    recipient_domains = dv["recipient_domain"]
    line_starts = f.line_starts
    source_file = ctx.source_file

    # --- the fed lines: their bytes, and the queue id and time PostfixParser.feed reads of them
    fed = np.flatnonzero(~fast)
    fed_starts = line_starts[f.order[fed]].tolist()
    fed_raw = [block[s:e] for s, e in zip(fed_starts, line_starts[f.order[fed] + 1].tolist())]
    fed_text = [text for text, _ in map(decode_line, fed_raw)]
    read_heads = {text: read_prefix(ctx, text) for text in fed_text if text is not None}
    fed_heads = [None if text is None else head_as_fed(ctx, text, read_heads[text]) for text in fed_text]
    fed_heads = [h if isinstance(h, tuple) else None for h in fed_heads]  # (an impossible queue id: no time)
    fed_qids = [h[0].group("qid") for h in fed_heads if h is not None]
    fed_ts = np.array([_NO_TIME if h is None else h[1] for h in fed_heads], np.int64)

    # sender and message-id of each delivery row: indexes into the block's from= / message-id=
    # values (kept in Arrow) or into Python values from the parser state
    senders = _JoinedColumn(f.senders[1], n_deliv)
    message_ids = _JoinedColumn(f.message_ids[1], n_deliv)
    # --- the join, computed (postfix_join: which lines go through the exact loop, and what the
    # others join); every state change below goes through PostfixParser.change / feed
    crowded = len(parser.queue) + len(names) + len(fed_qids) > parser.MAX_QUEUE_IDS
    plan = postfix_join.join(postfix_join.JoinInput(
        kinds, f.kinds, f.codes, f.minutes, f.us, minute_us, fed_ts, parser.clock,
        **_carried_entries(parser, f, names, fed_qids, senders, message_ids), ttl=parser.STATE_TTL_US,
        crowded=crowded, status_codes=status_codes, deferred_code=_DEFERRED_CODE, recipients=recipients))
    senders.index, message_ids.index = plan["sender"], plan["mid"]  # (the rest's rows; the loop joins its own)
    in_loop, clock_run = plan["in_loop"], plan["clock_run"]

    # the deferred rows as the parser keeps them, made where they reach its state
    pending = DeferredRows(PostfixParser.mta, dv, status_codes == _DEFERRED_CODE)
    b = _Applied(kinds, f.codes, plan["ts"], clock_run, names, plan["aux"], senders, message_ids)
    parser.read_heads = read_heads                       # feed() takes the heads read above
    try:
        _exact_loop(parser, b, np.flatnonzero(in_loop), zip(fed_raw, (offset + s for s in fed_starts)), pending,
                    recipients, status_codes, feed_line)
    finally:
        parser.read_heads = {}
    _apply_rest(parser, plan, names, pending, recipients, senders, message_ids)
    if len(clock_run):
        parser.change(CLOCK, None, int(clock_run[-1]))

    if not n_deliv:
        return BlockResult(None, f.n_lines)
    columns = {
        "ts": ab.numbers(plan["d_ts"], pa.int64()),
        "mta": ab.repeat(parser.mta, n_deliv),
        "host": dv["host"],
        "queue_id": pc.take(f.qid_names, ab.indices(plan["d_code"])),
        "message_id": message_ids.array(),
        "sender": senders.array(),
        "recipient": recipients,
        "recipient_domain": recipient_domains,
        "relay": dv["relay"],
        "status": dv["status"],
        "dsn": dv["dsn"],
        "reply_code": dv["reply_code"],
        "smtp_phase": dv["smtp_phase"],
        "diagnostic": dv["text"],
        "source_file": ab.repeat(source_file, n_deliv),
        "source_offset": ab.numbers(dv["line_start"] + offset, pa.int64()),
    }
    columns.update({name: dv[name] for name in NOT_PARSED})  # extract() was given annotate
    hops = filter_hops(dv["status"], dv["relay"], dv["text"])
    if hops is not None:  # applied to the state as deliveries above, as PostfixParser.feed does; no rows
        keep = ~hops
        if not keep.any():
            return BlockResult(None, f.n_lines)
        kept = ab.booleans(keep)
        columns = {k: (pc.filter(v, kept) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v[keep])
                   for k, v in columns.items()}
    return BlockResult(columns, f.n_lines)


def filter_hops(status: pa.Array, relay: pa.Array, text: pa.Array) -> np.ndarray | None:
    """postfix.is_filter_hop of each delivery row (a hand-off to a content filter on this host,
    which PostfixParser.feed applies to the queue-id state but does not emit), by the same two
    patterns in RE2, as numpy; None when no row is one (the usual log: one pass over the distinct
    relays, a few hundred a block: the relay pattern runs on the dictionary of the column).
    (No Python value reaches pyarrow.compute: pa.scalar() would import pandas, see arrow_build.)"""
    if isinstance(relay, pa.ChunkedArray):
        relay = relay.combine_chunks()
    encoded = pc.dictionary_encode(relay)
    local = pc.match_substring_regex(encoded.dictionary, FILTER_HOP_RELAY)
    if not ab.to_bools(local).any():
        return None
    hops = ab.to_bools(pc.take(local, encoded.indices))     # (relay=none: a null index, False)
    hops &= ab.to_bools(pc.equal(status, ab.scalar("sent")))
    hops &= ab.to_bools(pc.match_substring_regex(text, FILTER_HOP_REPLY))
    return hops if hops.any() else None
