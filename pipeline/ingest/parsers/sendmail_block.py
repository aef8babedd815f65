"""sendmail log blocks read column-wise: the fast path of SendmailParser.

SendmailParser.feed (parsers/sendmail.py) defines what a line means; this module reads the usual
lines of a block with Arrow string kernels in a reader thread, and applies what they say to the
parser's state through SendmailParser.change(), the interface feed() uses.
tests/test_sendmail_block.py holds the two to the same stored rows and the same saved state.

The usual lines (ASCII, traditional stamp, `sendmail|sm-mta|sm-msp-queue[pid]: QID: `):
    to=<a>,<b>|a,b, [ctladdr=…,] delay=…, xdelay=…, mailer=…, pri=…, relay=…, dsn=…, [reply=…,] stat=…
    from=<s>|s, size=…, class=…, nrcpts=N, msgid=<…>[, …]
and any other line of a queue id (it only moves the log's clock). A `to=` line of the MSP's hop
to the local MTA forgets its queue id. Every other line that feed() would read (other shapes, an
expiry `DSN: Cannot send message`, RFC 3339 stamps, non-ASCII lines, lines with bad bytes) goes
to the engine's front door and so to feed(), in line order.

What a delivery row needs besides the queue-id join (recipients split and normalised; status,
diagnostic, reply code and SMTP phase: by the scanner's sendmail_facts, sendmail.py's functions
in C, or, for what it leaves to them (and without the scanner, beyond what Arrow's kernels read),
by those functions once per distinct dsn/stat/reply of the block; event ids; carrier and class)
is made in extract(), and so is what read_block() needs of the fed lines (their queue ids and
times) and which queue ids have an unusual story.

The join, in read_block(): queue ids whose lines are the plain story (one from= first, then
final deliveries of at most nrcpts recipients, or the MSP hop) with no entry from before the
block are joined with numpy, and only the entry each is left with (usually none: all its
recipients are done) is set through change(). All others (deferrals, a fed line, an entry from
before, anything unusual) go through change() line by line, in order; so does every queue id of
a block that spans more than the join window or could fill the table.

Called by pipeline.ingest.engine for sendmail chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...store import arrow_build as ab
from ...store.records import ID_BYTES, event_ids_for_plain, normalise_address
from .. import native
from . import blocks
from .blocks import distinct_codes
from .common import CLOCK, DELIVERY, ENTRY, REMOVED, decode_line
from .sendmail import (LOCAL_RELAYS, PHASE_STAT_PREFIXES, SendmailParser, diagnostic_of, head_as_fed, read_prefix,
                       smtp_phase_of,
                       status_of)

K_FEED, K_FROM, K_TO, K_MSP, K_CLOCK = 1, 2, 3, 4, 5

_STAMP = r"[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}"
PROGRAM_RE2 = r" (?:sendmail|sm-mta|sm-msp-queue)"
PREFIX_SHAPE = "^" + _STAMP + r" [!-~]+ (?:sendmail|sm-mta|sm-msp-queue)\[[0-9]+\]: "
LINE_SHAPE = PREFIX_SHAPE + r"[0-9A-Za-z]{8,20}: [^\n]*\n$"
# a `to=` / `from=` line of an impossible queue id (sendmail.LOOSE_QID_RE): feed() counts it
BAD_QID_SHAPE = PREFIX_SHAPE + r"[^\s:]+: (?:to=|from=)"
# an address: printable ASCII but space, '"', ',', '<', '>', or any non-ASCII character
# (normalise_address is then trim + lower; where Arrow's lower() and Python's differ, for a
# non-ASCII address, the line goes to feed(): _python_lower_differs)
_A = r'[!#-+\--;=?-~\x{80}-\x{10FFFF}]'
TO_SHAPE = (r"^to=(?:<" + _A + r"+>(?:,<" + _A + r"+>)*|" + _A + r"+(?:," + _A + r"+)*), "
            r"(?:ctladdr=[^,]*, )?delay=[^,]*, xdelay=[^,]*, mailer=[^,]*, pri=[^,]*, "
            r"relay=[ -+\--~\x{80}-\x{10FFFF}]*, dsn=[^,]*, (?:reply=.*, )?stat=.*$")
FROM_SHAPE = (r"^from=(?:<" + _A + r"*>|" + _A + r"+), size=[0-9]+, class=-?[0-9]+, "
              r"nrcpts=[0-9]+, msgid=[!-+\--~]*(?:, .*)?$")
# sendmail._STAT_CODE_RE in RE2's spelling (\b and \d as Python's for ASCII text; groups named)
_STAT_CODE = r"\b(?P<a>[245][0-9][0-9])[ -][0-9]\.[0-9]{1,3}\.[0-9]{1,3}\b|\b(?P<b>[45][0-9][0-9]) "
_EMPTY, _RELAY = ab.scalar(""), ab.scalar("relay")
_TRUE, _FALSE = ab.scalar(True), ab.scalar(False)
_NO_TIME = np.iinfo(np.int64).min


def _element(lists: pa.ListArray, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Element index[i] of list i (null where not valid)."""
    offsets = ab.to_ints(lists.offsets).astype(np.int64)
    at = offsets[:-1] + index
    if valid is not None:
        at = np.where(valid, at, 0)
    return pc.list_flatten(lists).take(ab.numbers(at, pa.int64(), valid))


def _python_lower_differs(raw: pa.Array, arrow_normalised: pa.Array) -> np.ndarray:
    """Per value: is it non-ASCII and does normalise_address() (Python's lower()) make
    something else of it than Arrow's trim and lower? (Final sigma, dotted capital I, …)"""
    out = np.zeros(len(raw), bool)
    if not len(raw):
        return out
    odd = np.flatnonzero(~ab.to_bools(pc.fill_null(pc.string_is_ascii(raw), _TRUE)))
    if len(odd):
        for k, a, b in zip(odd.tolist(), blocks.take(raw, odd).to_pylist(), blocks.take(arrow_normalised, odd).to_pylist()):
            out[k] = normalise_address(a) != b
    return out


def _count(strings: pa.Array, pattern: str) -> np.ndarray:
    return ab.to_ints(pc.count_substring(strings, pattern))


def _ranges(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """first[i], first[i] + 1, … first[i] + count[i] - 1, for every i, in order."""
    total = int(count.sum())
    if not total:
        return np.zeros(0, np.int64)
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(count)[:-1])), count)
    return starts + np.arange(total)


def _lengths(lists: pa.ListArray) -> np.ndarray:
    return ab.to_ints(pc.list_value_length(lists)).astype(np.int64)


@dataclass
class SendmailFields:
    """What extract() found in a block (no parser state: it runs in a reader thread)."""

    n_lines: int
    line_starts: np.ndarray
    order: np.ndarray          # the lines that change the state or the clock, in order
    kinds: np.ndarray          # K_* of each
    codes: np.ndarray          # queue id of each, as an index into qid_names (-1: fed)
    qid_names: pa.Array
    ts: np.ndarray             # time of each (0 for K_FEED)
    from_at: np.ndarray        # per K_FROM line (in order): its position among the lines above
    senders: pa.Array          # … its sender, message-id (null: none), nrcpts
    message_ids: pa.Array
    nrcpts: np.ndarray
    to_at: np.ndarray          # per K_TO line: its position, first row, number of rows
    to_first: np.ndarray
    to_count: np.ndarray
    rows: dict | None          # the delivery rows (Arrow columns), in line order
    row_deferred: np.ndarray   # per row: deferred
    row_status: list           # per row: status word (rows of the exact loop only need it)
    deferred: "blocks.DeferredRows | dict"  # row j -> the deferred row the state keeps (made when asked)
    # (what read_block needs that does not depend on the parser's state, made here in the reader
    # thread: the fed lines' bytes, the time and queue id feed() reads of them, the unusual stories)
    fed_raw: list | None = None        # per K_FEED line (in order): its bytes
    fed_ts: np.ndarray | None = None   # … the time read_prefix() reads of it (_NO_TIME: none)
    fed_qids: list | None = None       # … the queue ids of those it reads
    fed_codes: np.ndarray | None = None   # those of them among qid_names, as codes
    unusual: np.ndarray | None = None  # queue-id codes whose story in the block is not a plain one


def extract(block: bytes, max_line: int, ctx, annotate=None) -> SendmailFields | None:
    """Find the usual lines and their fields, and make the delivery rows but their joins: by the
    compiled scanner (one pass, pipeline/ingest/native) or, without it, by Arrow's kernels."""
    scanner = native.SCANNER
    if scanner is not None:
        return _extract_compiled(block, max_line, ctx, annotate, scanner)
    return _extract_arrow(block, max_line, ctx, annotate)


@dataclass
class _Lines:
    """The usual lines of a block as found by either reader, before the rows are made."""

    n: int
    line_starts: np.ndarray
    kinds: np.ndarray          # per line: 0 (skip), K_*
    fast: np.ndarray           # the lines read here (K_FROM, K_TO, K_MSP, K_CLOCK), in order
    qids: pa.DictionaryArray   # per fast line
    fast_ts: np.ndarray
    fi: np.ndarray             # positions among `fast` of the from= lines
    senders: pa.Array          # … their sender (normalised), message-id (null: none), nrcpts
    message_ids: pa.Array
    nrcpts: np.ndarray
    ti: np.ndarray             # positions among `fast` of the delivery lines
    hosts: pa.Array            # … their host, relay (null: none), dsn, stat, reply (null: none)
    relay: pa.Array
    dsn: pa.Array
    stat: pa.Array
    reply: pa.Array
    parent: np.ndarray         # per row: its delivery line (index into ti)
    recipient: pa.Array        # per row (normalised), and its domain
    domain: pa.Array
    at: dict | None = None     # compiled reader: per delivery line, where its fields are (hosts … reply
                               # are then None: cut per row, and per line only where Python reads them)


def _finish(block: bytes, x: _Lines, ctx, annotate) -> SendmailFields:
    order = np.flatnonzero(x.kinds != 0)
    position = np.full(x.n, -1, np.int64)
    position[order] = np.arange(len(order))
    codes = np.full(x.n, -1, np.int64)
    codes[x.fast] = ab.to_ints(x.qids.indices)
    codes[x.kinds == K_FEED] = -1
    ts = np.zeros(x.n, np.int64)
    ts[x.fast] = x.fast_ts
    rows, row_deferred, row_status, deferred, counts = None, np.zeros(0, bool), [], {}, np.zeros(len(x.ti), np.int64)
    if len(x.ti):
        rows, row_deferred, row_status, deferred, counts = _delivery_rows(block, x, annotate)
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64) if len(x.ti) else np.zeros(0, np.int64)
    f = SendmailFields(
        x.n, x.line_starts, order, x.kinds[order], codes[order], x.qids.dictionary, ts[order],
        position[x.fast[x.fi]], x.senders, x.message_ids, x.nrcpts, position[x.fast[x.ti]], firsts, counts,
        rows, row_deferred, row_status, deferred)
    # the fed lines as feed() will read them (the queue id and time of each)
    fed_lines = f.order[f.kinds == K_FEED]
    line_starts = x.line_starts
    f.fed_raw = [block[a:b] for a, b in zip(line_starts[fed_lines].tolist(), line_starts[fed_lines + 1].tolist())]
    heads = [head_as_fed(ctx, text, read_prefix(ctx, text)) if text is not None else None
             for text, _ in map(decode_line, f.fed_raw)]
    heads = [h if isinstance(h, tuple) else None for h in heads]  # (a stamp that cannot be read: no time)
    f.fed_ts = np.array([_NO_TIME if h is None else h[0] for h in heads], np.int64)
    f.fed_qids = [h[2] for h in heads if h is not None]
    f.fed_codes = np.zeros(0, np.int64)
    if f.fed_qids:
        f.fed_codes = ab.to_ints(pc.index_in(ab.strings(f.fed_qids), value_set=f.qid_names).drop_null()).astype(np.int64)
    unusual = np.zeros(len(f.qid_names) + 1, bool)
    _unusual(f, f.kinds, f.codes, (f.kinds == K_FROM) | (f.kinds == K_TO) | (f.kinds == K_MSP), unusual)
    f.unusual = np.flatnonzero(unusual)
    return f


def _times(ctx, keys: pa.Array, secs: np.ndarray):
    """(time, dated) per fast line from its `Mon DD hh:mm` key and seconds."""
    minute = keys.dictionary_encode()
    minute_us, no_date = blocks.minute_times(ctx, minute.dictionary.to_pylist())
    minute_of = ab.to_ints(minute.indices).astype(np.int64) if len(keys) else np.zeros(0, np.int64)
    return minute_us[minute_of] + secs * 1_000_000, ~no_date[minute_of]


def _stamp_times(ctx, block: bytes, starts: np.ndarray, keys: np.ndarray, us: np.ndarray):
    """(time, dated) per fast line from the compiled scanner's minute key and microseconds
    (a traditional stamp's or an RFC 3339 one's: blocks.stamp_times)."""
    if not len(keys):
        return np.zeros(0, np.int64), np.ones(0, bool)
    minute_of, minute_us, no_date = blocks.block_minutes(ctx, block, starts, keys)
    return minute_us[minute_of] + us, ~no_date[minute_of]


def _extract_compiled(block: bytes, max_line: int, ctx, annotate, scanner) -> SendmailFields | None:
    s = scanner.scan_sendmail(block, max_line)
    if s is None:
        return None
    data = np.frombuffer(block, np.uint8)
    cut = scanner.gather
    line_starts, kinds = s["line_starts"], s["kind"].copy()
    n = len(kinds)
    fast = np.flatnonzero(kinds >= K_FROM)
    fast_ts, dated = _stamp_times(ctx, block, line_starts[fast], s["t_key"][fast], s["t_us"][fast])
    if not dated.all():                                   # no date (Feb 30): feed() skips such a line
        kinds[fast[~dated]] = K_FEED
        fast, fast_ts = fast[dated], fast_ts[dated]
    fk = kinds[fast]
    # from= lines: a non-ASCII sender is normalised by normalise_address() itself
    fi = np.flatnonzero(fk == K_FROM)
    fl = fast[fi]
    senders = cut(data, s["a_s"][fl], s["a_e"][fl], lower=True)
    high = np.flatnonzero(s["sender_high"][fl])
    if len(high):
        odd = [normalise_address(block[a:b].decode("utf-8")) for a, b in zip(s["a_s"][fl[high]].tolist(), s["a_e"][fl[high]].tolist())]
        senders = _replace(senders, high, odd)
    mids = cut(data, s["b_s"][fl], s["b_e"][fl])
    mids = pc.if_else(pc.equal(mids, _EMPTY), ab.scalar(None), mids)
    # delivery lines and their recipients (non-ASCII ones normalised by normalise_address(); a
    # line with one that normalises to nothing is feed()'s)
    tl = fast[fk == K_TO]
    rl = s["rcpt_line"]
    high = np.flatnonzero(s["rcpt_high"].astype(bool) & np.isin(rl, tl))
    odd = {int(h): normalise_address(block[a:b].decode("utf-8"))
           for h, a, b in zip(high.tolist(), s["rcpt_s"][high].tolist(), s["rcpt_e"][high].tolist())}
    empty = [int(rl[h]) for h, v in odd.items() if not v]
    if empty:
        kinds[distinct_codes(np.asarray(empty, np.int64))] = K_FEED
        fk = kinds[fast]
    ti = np.flatnonzero(fk == K_TO)
    tl = fast[ti]
    keep = np.flatnonzero(np.isin(rl, tl))
    rl = rl[keep]
    rs, re_, rd = s["rcpt_s"][keep], s["rcpt_e"][keep], s["rcpt_dom"][keep]
    rec = cut(data, rs, re_, lower=True)
    dom = cut(data, rd, re_, lower=True)
    moved = np.flatnonzero(np.isin(keep, np.fromiter(odd, np.int64, len(odd)))) if odd else np.zeros(0, np.int64)
    if len(moved):
        values = [odd[j] for j in keep[moved].tolist()]
        rec = _replace(rec, moved, values)
        dom = _replace(dom, moved, [v[v.rfind("@") + 1:] if "@" in v else "" for v in values])
    at = {"host_s": s["host_s"][tl], "host_e": s["host_e"][tl], "relay_s": s["b_s"][tl], "relay_e": s["b_e"][tl],
          "dsn_s": s["c_s"][tl], "dsn_e": s["c_e"][tl], "stat_s": s["s_s"][tl], "stat_e": line_starts[tl + 1] - 1,
          "reply_s": s["r_s"][tl], "reply_e": s["r_e"][tl], "qid_s": s["qid_s"][tl], "qid_e": s["qid_e"][tl]}
    x = _Lines(n, line_starts, kinds, fast, cut(data, s["qid_s"][fast], s["qid_e"][fast]).dictionary_encode(), fast_ts,
               fi, senders, mids, s["nrcpts"][fl], ti, None, None, None, None, None, np.searchsorted(tl, rl), rec, dom, at)
    return _finish(block, x, ctx, annotate)


def _replace(array: pa.Array, positions: np.ndarray, values: list) -> pa.Array:
    """`array` with values[k] at positions[k]."""
    index = np.arange(len(array), dtype=np.int64)
    index[positions] = len(array) + np.arange(len(positions))
    return pa.concat_arrays([array, ab.strings(values)]).take(ab.indices(index))


def _nullable(relay: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(relay, _EMPTY), ab.scalar(None), relay)


def _extract_arrow(block: bytes, max_line: int, ctx, annotate) -> SendmailFields | None:
    found = blocks.line_kinds(block, max_line)
    if found is None:
        return None
    line_starts, lkind = found
    n = len(lkind)
    lines = blocks.lines_array(block, line_starts)
    kinds = np.zeros(n, np.int8)
    kinds[lkind == blocks.RAW] = K_FEED
    readable = np.flatnonzero(lkind != blocks.RAW)
    cand = readable[ab.to_bools(pc.match_substring_regex(blocks.take(lines, readable), PROGRAM_RE2))]
    kinds[cand] = K_FEED                                   # unless found to be a usual line below
    cl = blocks.take(lines, cand)
    shaped = ab.to_bools(pc.match_substring_regex(cl, LINE_SHAPE))
    prefixed = ab.to_bools(pc.match_substring_regex(cl, PREFIX_SHAPE))
    bad_qid = ab.to_bools(pc.match_substring_regex(cl, BAD_QID_SHAPE))
    solaris = ab.to_bools(pc.match_substring_regex(cl, PREFIX_SHAPE + r"\[ID "))   # (common.SOLARIS_ID: feed()'s)
    # another `[pid]: ` after the prefix: maybe a line glued to this one, cut short within its queue id
    # (common.glued_in_line: feed()'s)
    glued = ab.to_ints(pc.count_substring_regex(cl, r"\[[0-9]+\]: ")) >= 2
    kinds[cand[prefixed & ~shaped & ~bad_qid & ~solaris & ~glued]] = 0   # no queue id: feed() skips it
    fast = cand[shaped]
    fl = cl.filter(ab.booleans(shaped))
    parts = pc.split_pattern(fl, ": ", max_splits=2)
    ones = np.ones(len(fast), np.int64)
    rest = pc.utf8_slice_codeunits(_element(parts, 2 * ones), 0, -1)
    secs = ab.to_ints(pc.cast(pc.utf8_slice_codeunits(fl, 13, 15), pa.int64())) if len(fast) else np.zeros(0, np.int64)
    fast_ts, dated = _times(ctx, pc.utf8_slice_codeunits(fl, 0, 12), secs)
    kind_fast = np.full(len(fast), K_CLOCK, np.int8)
    is_to = ab.to_bools(pc.starts_with(rest, "to="))
    is_from = ab.to_bools(pc.starts_with(rest, "from="))
    feed_it = ab.to_bools(pc.match_substring(rest, ": DSN: Cannot send message")) | ~dated
    # a `[pid]: ` after the queue id: maybe another log line glued to this one, cut short (common.glued_at)
    feed_it |= ab.to_bools(pc.match_substring_regex(rest, r"\[[0-9]+\]: "))
    kind_fast[feed_it] = K_FEED
    # from= of the usual shape (one nrcpts= and one msgid=: what feed() finds first is theirs)
    fi = np.flatnonzero(is_from & ~feed_it)
    fr = blocks.take(rest, fi)
    good = (ab.to_bools(pc.match_substring_regex(fr, FROM_SHAPE)) & (_count(fr, "msgid=") == 1)
            & (_count(fr, "nrcpts=") == 1)) if len(fi) else np.zeros(0, bool)
    fp = pc.split_pattern(fr.filter(ab.booleans(good)), ", ")
    raw_sender = pc.utf8_slice_codeunits(_element(fp, np.zeros(int(good.sum()), np.int64)), 5)
    senders = pc.utf8_lower(pc.utf8_trim(raw_sender, "<>"))
    differs = _python_lower_differs(raw_sender, senders)
    if differs.any():
        good[np.flatnonzero(good)[differs]] = False
        fp = pc.split_pattern(fr.filter(ab.booleans(good)), ", ")
        raw_sender = pc.utf8_slice_codeunits(_element(fp, np.zeros(int(good.sum()), np.int64)), 5)
        senders = pc.utf8_lower(pc.utf8_trim(raw_sender, "<>"))
    kind_fast[fi[~good]] = K_FEED
    fi = fi[good]
    kind_fast[fi] = K_FROM
    ones = np.ones(len(fi), np.int64)
    nrcpts = ab.to_ints(pc.cast(pc.utf8_slice_codeunits(_element(fp, 3 * ones), 7), pa.int64())) if len(fi) else np.zeros(0, np.int64)
    mids = _nullable(pc.utf8_trim(pc.utf8_slice_codeunits(_element(fp, 4 * ones), 6), "<>"))
    # to= of the usual shape (one ", stat=", at most one ", reply=" before it)
    ti = np.flatnonzero(is_to & ~feed_it)
    tr = blocks.take(rest, ti)
    stat_split = pc.split_pattern(tr, ", stat=")
    good = (ab.to_bools(pc.match_substring_regex(tr, TO_SHAPE)) & (_lengths(stat_split) == 2)) if len(ti) else np.zeros(0, bool)
    if len(ti):
        reply_split = pc.split_pattern(_element(stat_split, np.zeros(len(ti), np.int64)), ", reply=")
        good &= _lengths(reply_split) <= 2
        raw_relay = _element(pc.split_pattern(_element(reply_split, np.zeros(len(ti), np.int64)), ", "),
                             _lengths(pc.split_pattern(_element(reply_split, np.zeros(len(ti), np.int64)), ", ")) - 2)
        relay_all = pc.utf8_slice_codeunits(raw_relay, 6)
        trimmed = pc.utf8_trim(relay_all, " ")
        spaces_only = ab.to_bools(pc.and_(pc.not_equal(relay_all, _EMPTY), pc.equal(trimmed, _EMPTY)))
        good &= ~spaces_only                               # relay.strip() of spaces is "", not None: feed()'s
        # a non-ASCII character at either end might be one strip() removes: feed()'s
        good &= ~ab.to_bools(pc.match_substring_regex(trimmed, r"^[\x{80}-\x{10FFFF}]|[\x{80}-\x{10FFFF}]$"))
    if good.any():
        # a non-ASCII address whose lower case Arrow and Python disagree on: the line is feed()'s
        head = pc.split_pattern(tr.filter(ab.booleans(good)), ", ", max_splits=1)
        tokens = pc.split_pattern(pc.utf8_slice_codeunits(_element(head, np.zeros(int(good.sum()), np.int64)), 3), ",")
        flat = pc.list_flatten(tokens)
        normal = pc.utf8_lower(pc.utf8_trim(flat, "<>"))
        differs = _python_lower_differs(flat, normal) | ~ab.to_bools(pc.not_equal(normal, _EMPTY))
        if differs.any():
            parent = ab.to_ints(pc.list_parent_indices(tokens)).astype(np.int64)
            good[np.flatnonzero(good)[distinct_codes(parent[differs])]] = False
    kind_fast[ti[~good]] = K_FEED
    ti = ti[good]
    tr = tr.filter(ab.booleans(good))
    ones = np.ones(len(ti), np.int64)
    stat_split = stat_split.filter(ab.booleans(good))
    stat = _element(stat_split, ones)
    reply_split = pc.split_pattern(_element(stat_split, 0 * ones), ", reply=")
    reply = _element(reply_split, ones, _lengths(reply_split) == 2)
    keys = pc.split_pattern(_element(reply_split, 0 * ones), ", ")
    n_keys = _lengths(keys)
    to_field = pc.utf8_slice_codeunits(_element(keys, 0 * ones), 3)
    mailer = pc.utf8_slice_codeunits(_element(keys, n_keys - 4), 7)
    relay = pc.utf8_trim(pc.utf8_slice_codeunits(_element(keys, n_keys - 2), 6), " ")
    dsn = pc.utf8_slice_codeunits(_element(keys, n_keys - 1), 4)
    local = pc.starts_with(relay, LOCAL_RELAYS[0])
    for prefix in LOCAL_RELAYS[1:]:
        local = pc.or_(local, pc.starts_with(relay, prefix))
    msp = ab.to_bools(pc.and_(pc.equal(mailer, _RELAY), local)) if len(ti) else np.zeros(0, bool)
    kind_fast[ti[msp]] = K_MSP
    keep = ~msp
    kind_fast[ti[keep]] = K_TO
    kinds[fast] = kind_fast
    take = ab.booleans(keep)
    ti = ti[keep]
    split = pc.split_pattern(to_field.filter(take), ",")
    recipient = pc.utf8_lower(pc.utf8_trim(pc.list_flatten(split), "<>"))
    hosts = _element(pc.split_pattern(pc.utf8_slice_codeunits(blocks.take(fl, ti), 16), " ", max_splits=1),
                     np.zeros(len(ti), np.int64))
    x = _Lines(n, line_starts, kinds, fast, _element(parts, np.ones(len(fast), np.int64)).dictionary_encode(),
               fast_ts, fi, senders, mids, nrcpts,
               ti, hosts, _nullable(relay.filter(take)), dsn.filter(take), stat.filter(take), reply.filter(take),
               ab.to_ints(pc.list_parent_indices(split)).astype(np.int64) if len(ti) else np.zeros(0, np.int64),
               recipient, pc.fill_null(pc.extract_regex(recipient, "@(?P<d>[^@]*)$").field("d"), _EMPTY))
    return _finish(block, x, ctx, annotate)


def _outcomes_compiled(block: bytes, x: _Lines):
    """_outcomes_arrow's answers from the scanner's sendmail_facts (sendmail.py's status_of,
    diagnostic_of and smtp_phase_of in C); the lines it leaves to Python go to _outcomes_python."""
    at, scanner = x.at, native.SCANNER
    data = np.frombuffer(block, np.uint8)
    n_lines = len(x.ti)
    f = scanner.sendmail_facts(data, at)
    words = {"sent": 0, "deferred": 1, "bounced": 2}
    status_code = f["status"].astype(np.int64) - 1
    line_code = np.maximum(f["code"].astype(np.int64), 0)
    line_code_valid = f["code"] >= 0
    phases = {"rcpt": 0, "end_of_data": 1, "mail": 2, "connect": 3}
    phase_code = f["phase"].astype(np.int64) - 1
    by_reply = f["text_reply"].astype(bool)
    at["text_s"] = np.where(by_reply, at["reply_s"], at["stat_s"])
    at["text_e"] = np.where(by_reply, at["reply_e"], at["stat_e"])
    text_parts: list = []                                 # none: each row's text is cut from its line
    text_index = np.arange(n_lines, dtype=np.int64)
    slow = np.flatnonzero(f["python"])
    if len(slow):
        cut = scanner.gather
        has_reply = at["reply_s"][slow] >= 0
        dsn = cut(data, at["dsn_s"][slow], at["dsn_e"][slow])
        stat = cut(data, at["stat_s"][slow], at["stat_e"][slow])
        reply = cut(data, np.maximum(at["reply_s"][slow], 0), np.maximum(at["reply_e"][slow], 0), has_reply)
        # (per slow line, then written back to their lines)
        st, ph, lc, lv, ti = (np.zeros(len(slow), np.int64), np.full(len(slow), -1, np.int64),
                              np.zeros(len(slow), np.int64), np.zeros(len(slow), bool), np.zeros(len(slow), np.int64))
        python_texts: list = []
        _outcomes_python(np.arange(len(slow)), dsn, stat, reply, words, phases, st, ph, lc, lv, python_texts, ti, 0)
        status_code[slow], phase_code[slow], line_code[slow], line_code_valid[slow] = st, ph, lc, lv
        # diagnostic_of's text is the reply or stat=: cut per row like the others
        text = python_texts[0].take(ab.indices(ti))
        is_reply = ab.to_bools(pc.fill_null(pc.equal(text, reply), _FALSE))
        is_stat = ab.to_bools(pc.equal(text, stat))
        if (is_reply | is_stat).all():
            at["text_s"][slow] = np.where(is_reply, at["reply_s"][slow], at["stat_s"][slow])
            at["text_e"][slow] = np.where(is_reply, at["reply_e"][slow], at["stat_e"][slow])
        else:  # (diagnostic_of's text is one of the two today; should it ever make another, its text is kept)
            text_parts.extend([cut(data, at["text_s"], at["text_e"]), text])
            text_index[slow] = n_lines + np.arange(len(slow))
    return words, status_code, line_code, line_code_valid, phase_code, phases, text_parts, text_index


def _outcomes_arrow(x: _Lines):
    """Per delivery line: status (code into `words`), reply code (and valid), phase (code into
    `phases`, -1 none) and diagnostic (text_index into the concatenated text_parts), by Arrow's
    kernels (no compiled scanner)."""
    dsn, stat, reply = x.dsn, x.stat, x.reply
    n_lines = len(stat)
    # per line: status and phase as codes into small vocabularies, the text as an index into
    # Arrow values, the reply code in numpy
    words: dict = {}
    status_code = np.zeros(n_lines, np.int64)
    phase_code = np.full(n_lines, -1, np.int64)
    text_index = np.zeros(n_lines, np.int64)
    line_code = np.zeros(n_lines, np.int64)
    line_code_valid = np.zeros(n_lines, bool)
    phases: dict = {}
    text_parts: list = []
    base = 0
    # the bulk of a log, read with Arrow's kernels (status_of and diagnostic_of reduce to this
    # for them), the phase by smtp_phase_of itself: delivered lines whose reply (if any) starts
    # with its code; refusals (dsn= 4.x.x or 5.x.x) whose reply starts with a code of 400 or
    # more (their text is the reply, their code its code: stat= is not read); and refusals
    # without a reply whose stat= is ASCII (their text is stat=, their code the one
    # _code_in_stat finds in it: _STAT_CODE is its pattern in RE2's spelling, the same for
    # ASCII text)
    dsn_first = pc.utf8_slice_codeunits(pc.fill_null(dsn, _EMPTY), 0, 1)
    by_dsn = ab.to_bools(pc.is_in(dsn_first, value_set=ab.strings(["2", "4", "5"])))
    sent = ab.to_bools(pc.equal(dsn_first, ab.scalar("2"))) | (~by_dsn & ab.to_bools(pc.starts_with(stat, "Sent")))
    has_reply = ab.to_bools(pc.fill_null(pc.not_equal(reply, _EMPTY), _FALSE))
    leading = ab.to_bools(pc.fill_null(pc.match_substring_regex(reply, r"^[2-5][0-9][0-9][ -]"), _FALSE))
    code = np.zeros(n_lines, np.int64)                    # diagnostic_of's code (before sent's 250)
    code_valid = leading.copy()
    led = np.flatnonzero(leading)
    if len(led):
        code[led] = ab.to_ints(pc.cast(pc.utf8_slice_codeunits(blocks.take(reply, led), 0, 3), pa.int64()))
    refused = by_dsn & ~sent & leading & (code >= 400)
    stat_only = np.flatnonzero(by_dsn & ~sent & ~has_reply)
    if len(stat_only):
        stat_only = stat_only[ab.to_bools(pc.string_is_ascii(blocks.take(stat, stat_only)))]
    if len(stat_only):
        found = pc.extract_regex(blocks.take(stat, stat_only), _STAT_CODE)
        hit = ab.to_bools(pc.fill_null(found.is_valid(), _FALSE)) if found.null_count else np.ones(len(stat_only), bool)
        if hit.any():
            first, second = (pc.fill_null(found.field(g), _EMPTY).filter(ab.booleans(hit)) for g in ("a", "b"))
            digits = pc.if_else(pc.not_equal(first, _EMPTY), first, second)
            code[stat_only[hit]] = ab.to_ints(pc.cast(digits, pa.int64()))
            code_valid[stat_only[hit]] = True
    plain = (sent & (~has_reply | leading)) | refused
    plain[stat_only] = True
    fast = np.flatnonzero(plain)
    if len(fast):
        fr = blocks.take(reply, fast)
        fhas = has_reply[fast]
        text_parts.append(pc.if_else(ab.booleans(fhas), fr, blocks.take(stat, fast)))
        text_index[fast] = np.arange(len(fast))
        base = len(fast)
        fsent, fcode, fvalid = sent[fast], code[fast], code_valid[fast]
        deferred = ab.to_bools(pc.equal(dsn_first, ab.scalar("4")))[fast]
        status_code[fast] = np.where(fsent, words.setdefault("sent", len(words)),
                                     np.where(deferred, words.setdefault("deferred", len(words)),
                                              words.setdefault("bounced", len(words))))
        line_code[fast] = np.where(fsent & ~fvalid, 250, fcode)     # (code or 250 when sent)
        line_code_valid[fast] = fvalid | fsent
        # smtp_phase_of itself, on the few whose stat= it can give a phase for (None for the rest)
        fstat = blocks.take(stat, fast)
        asks = np.zeros(len(fast), bool)
        for prefix in PHASE_STAT_PREFIXES:
            asks |= ab.to_bools(pc.starts_with(fstat, prefix))
        ask = np.flatnonzero(asks)
        if len(ask):
            phase_code[fast[ask]] = [-1 if ph is None else phases.setdefault(ph, len(phases)) for ph in
                                     (smtp_phase_of(st, d, c if v else None) for st, d, c, v in
                                      zip(blocks.take(fstat, ask).to_pylist(), blocks.take(dsn, fast[ask]).to_pylist(),
                                          fcode[ask].tolist(), fvalid[ask].tolist()))]
    slow = np.flatnonzero(~plain)
    if len(slow):
        _outcomes_python(slow, blocks.take(dsn, slow), blocks.take(stat, slow), blocks.take(reply, slow), words, phases,
                         status_code, phase_code, line_code, line_code_valid, text_parts, text_index, base)
    return words, status_code, line_code, line_code_valid, phase_code, phases, text_parts, text_index


def _outcomes_python(slow, sd, ss, sr, words, phases, status_code, phase_code, line_code, line_code_valid,
                     text_parts, text_index, base) -> None:
    """The delivery lines `slow` (sd, ss, sr: their dsn, stat and reply) by sendmail.py's
    functions, once per distinct outcome."""
    key = pc.binary_join_element_wise(pc.fill_null(sd, _EMPTY), ss, pc.fill_null(sr, ab.scalar("\x00")),
                                      ab.scalar("\x01")).dictionary_encode()
    key_of = ab.to_ints(key.indices).astype(np.int64)
    distinct, first = np.unique(key_of, return_index=True)
    outcome_of = np.zeros(len(key.dictionary), np.int64)
    outcome_of[distinct] = np.arange(len(distinct))
    o_status, o_text, o_code, o_valid, o_phase = [], [], [], [], []
    for d, st, rep in zip(*(blocks.take(c, first).to_pylist() for c in (sd, ss, sr))):
        fields = {"stat": st, "dsn": d}
        if rep is not None:
            fields["reply"] = rep
        status = status_of(d, st)
        text, code = diagnostic_of(fields, status)
        c = code if status != "sent" else (code or 250)
        ph = smtp_phase_of(st, d, code)
        o_status.append(words.setdefault(status, len(words)))
        o_text.append(text)
        o_code.append(c or 0)
        o_valid.append(c is not None)
        o_phase.append(-1 if ph is None else phases.setdefault(ph, len(phases)))
    which = outcome_of[key_of]
    status_code[slow] = np.array(o_status, np.int64)[which]
    phase_code[slow] = np.array(o_phase, np.int64)[which]
    line_code[slow] = np.array(o_code, np.int64)[which]
    line_code_valid[slow] = np.array(o_valid, bool)[which]
    text_parts.append(ab.strings(o_text))
    text_index[slow] = base + which


def _delivery_rows(block: bytes, x: _Lines, annotate):
    """The rows of the usual `to=` lines: one per recipient, in line order."""
    parent = x.parent
    counts = np.bincount(parent, minlength=len(x.ti)).astype(np.int64)
    if x.at is not None:
        words, status_code, line_code, line_code_valid, phase_code, phases, text_parts, text_index = _outcomes_compiled(block, x)
    else:
        words, status_code, line_code, line_code_valid, phase_code, phases, text_parts, text_index = _outcomes_arrow(x)
    take_lines = ab.indices(parent)
    word_list = list(words)
    status_col = ab.strings(word_list).take(ab.indices(status_code[parent]))
    data = np.frombuffer(block, np.uint8)
    at, cut = x.at, native.SCANNER.gather if x.at is not None else None
    if not text_parts:                                    # every text is a slice of its line: cut per row
        text_col = cut(data, at["text_s"][parent], at["text_e"][parent])
    else:
        texts_all = pa.concat_arrays(text_parts) if len(text_parts) > 1 else text_parts[0]
        text_col = texts_all.take(ab.indices(text_index[parent]))
    code_col = ab.numbers(line_code, pa.int16(), line_code_valid).take(take_lines)
    pc_row = phase_code[parent]
    phase_col = ab.strings(list(phases)).take(ab.numbers(np.maximum(pc_row, 0), pa.int64(), pc_row >= 0)) \
        if phases else pa.nulls(len(parent), pa.string())
    status_words = np.array(word_list, object)[status_code[parent]] if len(parent) else np.zeros(0, object)
    lines_to = x.fast[x.ti]
    line_of_row = lines_to[parent]
    row_ts = x.fast_ts[x.ti][parent]
    line_starts = x.line_starts
    recipient = x.recipient
    if at is not None:                                     # the line's fields, cut per row
        def per_row(name, valid=None):
            return cut(data, at[name + "_s"][parent], at[name + "_e"][parent], valid)

        relay_s, relay_e = at["relay_s"][parent], at["relay_e"][parent]
        host, queue_id, dsn_col = per_row("host"), per_row("qid"), per_row("dsn")
        relay = cut(data, relay_s, relay_e, relay_e > relay_s)    # (none for an empty relay=)
    else:
        take_rows = ab.indices(parent)
        qids = x.qids.dictionary.take(x.qids.indices)
        host, queue_id = x.hosts.take(take_rows), blocks.take(qids, x.ti).take(take_rows)
        relay, dsn_col = x.relay.take(take_rows), x.dsn.take(take_rows)
    rows = {
        "ts": ab.numbers(row_ts, pa.int64()),
        "mta": ab.repeat(SendmailParser.mta, len(parent)),
        "host": host,
        "queue_id": queue_id,
        "recipient": recipient,
        "recipient_domain": x.domain,
        "relay": relay,
        "status": status_col,
        "dsn": dsn_col,
        "reply_code": code_col,
        "smtp_phase": phase_col,
        "text": text_col,
        "day": ab.numbers(row_ts // 86_400_000_000, pa.int32()),
        "line_start": line_starts[line_of_row],
    }
    starts, ends = line_starts[line_of_row], line_starts[line_of_row + 1] - 1
    scanner = native.SCANNER
    if scanner:
        rows["event_id"] = scanner.event_ids(data, starts, ends, recipient, ID_BYTES)
    else:
        rows["event_id"] = event_ids_for_plain([block[s:e] for s, e in zip(starts.tolist(), ends.tolist())],
                                               recipient.to_pylist())
    if annotate is not None:
        annotate(rows, "sendmail")
    row_deferred = status_code[parent] == words["deferred"] if "deferred" in words else np.zeros(len(parent), bool)
    deferred = blocks.DeferredRows("sendmail", rows, row_deferred)
    return rows, row_deferred, status_words.tolist(), deferred, counts


@dataclass
class BlockResult:
    columns: dict | None
    lines: int


class _Names:
    def __init__(self, array: pa.Array):
        self.array = array
        self.cache: dict[int, str] = {}

    def preload(self, codes: np.ndarray) -> None:
        codes = distinct_codes(codes)
        self.cache.update(zip(codes.tolist(), self.array.take(ab.indices(codes)).to_pylist()))


def read_block(parser: SendmailParser, block: bytes, offset: int, f: SendmailFields, feed_line,
               annotate=None) -> BlockResult:
    """Apply a block (at byte `offset` of its source; `f` is extract(block)) to the parser's
    state through SendmailParser.change(); the usual lines' delivery rows come back as columns,
    the other lines go to `feed_line(raw, offset)` (the front door), all in line order."""
    ctx = parser.ctx
    kinds, codes, ts = f.kinds, f.codes, f.ts
    nq = len(f.qid_names)
    line_starts = f.line_starts
    names = _Names(f.qid_names)
    # --- fed lines: their bytes, and the queue id and time feed() reads of them (extract found them)
    fed = np.flatnonzero(kinds == K_FEED)
    fed_lines = f.order[fed]
    fed_raw, fed_qids = f.fed_raw, f.fed_qids
    line_ts = np.where(kinds == K_FEED, _NO_TIME, ts)
    line_ts[fed] = f.fed_ts
    clock_run = np.maximum.accumulate(np.maximum(line_ts, parser.clock)) if len(line_ts) else line_ts
    # --- per queue id: is its story the plain one?
    special = np.zeros(nq + 1, bool)                      # by code; the last one is "fed" (-1)
    special[f.fed_codes] = True
    queue = parser.queue
    if queue and nq:
        carried = np.flatnonzero(ab.to_bools(pc.is_in(f.qid_names, value_set=ab.strings(list(queue)))))
        special[carried] = True
    n_rows = len(f.row_deferred)
    valid = line_ts > _NO_TIME
    block_max = int(clock_run[-1]) if len(clock_run) else parser.clock
    block_min = int(line_ts[valid].min()) if valid.any() else block_max
    if block_max - block_min > parser.STATE_TTL_US or len(queue) + nq + len(fed_qids) > parser.MAX_QUEUE_IDS:
        special[:] = True
    changing = (kinds == K_FROM) | (kinds == K_TO) | (kinds == K_MSP)
    special[f.unusual] = True
    special[-1] = True
    in_loop = special[codes] & (kinds != K_CLOCK) | (kinds == K_FEED)

    senders = blocks.JoinedColumn(n_rows, f.senders)
    message_ids = blocks.JoinedColumn(n_rows, f.message_ids)
    # --- the exact loop: special queue ids' lines and the fed lines, in order
    loop = np.flatnonzero(in_loop)
    names.preload(codes[loop])
    name_of = names.cache
    from_rank = np.full(len(kinds), -1, np.int64)
    from_rank[f.from_at] = np.arange(len(f.from_at))
    to_rank = np.full(len(kinds), -1, np.int64)
    to_rank[f.to_at] = np.arange(len(f.to_at))
    loop_from = from_rank[loop]
    picked = loop_from[loop_from >= 0]
    from_values = dict(zip(picked.tolist(), zip(blocks.take(f.senders, picked).to_pylist(),
                                                blocks.take(f.message_ids, picked).to_pylist(), f.nrcpts[picked].tolist())))
    loop_to = to_rank[loop]
    loop_r = loop_to[loop_to >= 0]
    loop_rows = _ranges(f.to_first[loop_r], f.to_count[loop_r])
    row_recipient = dict(zip(loop_rows.tolist(), blocks.take(f.rows["recipient"], loop_rows).to_pylist())) if len(loop_rows) else {}
    if isinstance(f.deferred, blocks.DeferredRows):
        f.deferred.preload(loop_rows)
    change = parser.change
    fed_iter = iter(zip(fed_raw, (offset + s for s in line_starts[fed_lines].tolist())))
    # (numpy values made Python ones up front: one element at a time, they cost more than change())
    to_first, to_count, row_status = f.to_first.tolist(), f.to_count.tolist(), f.row_status
    deferred_row = f.deferred.get
    row_js: list = []
    row_senders: list = []
    row_mids: list = []
    for i, k, code, t, clock, fr, tr in zip(loop.tolist(), kinds[loop].tolist(), codes[loop].tolist(), ts[loop].tolist(),
                                            clock_run[loop].tolist(), loop_from.tolist(), loop_to.tolist()):
        if k == K_FEED:
            raw, at = next(fed_iter)
            before = int(clock_run[i - 1]) if i else _NO_TIME
            if before > parser.clock:
                change(CLOCK, None, before)
            feed_line(raw, at)
            continue
        q = name_of[code]
        if k == K_TO:
            first = to_first[tr]
            for j in range(first, first + to_count[tr]):
                row = deferred_row(j)
                if row is None:
                    row = {"recipient": row_recipient[j], "status": row_status[j]}
                else:
                    row["queue_id"] = q
                st = change(DELIVERY, q, t, row, clock=clock)
                row_js.append(j)
                row_senders.append(senders.code(st["sender"]))
                row_mids.append(message_ids.code(st["message_id"]))
        elif k == K_FROM:
            sender, message_id, count = from_values[fr]
            change(ENTRY, q, t, (sender, message_id, count if count > 0 else None, ()), clock=clock)
        else:  # K_MSP
            change(REMOVED, q, t, clock=clock)
    if row_js:
        senders.index[row_js] = row_senders
        message_ids.index[row_js] = row_mids
    # --- the plain queue ids: joined with numpy, then the entry each is left with
    _join_plain(parser, f, names, ~special[codes] & changing, senders, message_ids)
    if len(clock_run):
        change(CLOCK, None, int(clock_run[-1]))
    if f.rows is None or not n_rows:
        return BlockResult(None, f.n_lines)
    rows = f.rows
    columns = {name: rows[name] for name in ("ts", "mta", "host", "queue_id", "recipient", "recipient_domain",
                                              "relay", "status", "dsn", "reply_code", "smtp_phase", "event_id",
                                              "carrier", "reason", "scope", "hard")}
    columns.update(message_id=message_ids.array(), sender=senders.array(), diagnostic=rows["text"],
                   source_file=ab.repeat(ctx.source_file, n_rows),
                   source_offset=ab.numbers(rows["line_start"] + offset, pa.int64()))
    return BlockResult(columns, f.n_lines)


def _row_qids(f: SendmailFields, codes: np.ndarray) -> np.ndarray:
    """The queue-id code of each delivery row."""
    per_line = codes[f.to_at]
    return np.repeat(per_line, f.to_count) if len(per_line) else np.zeros(0, np.int64)


def _unusual(f: SendmailFields, kinds, codes, changing, special) -> None:
    """Mark queue ids whose story in the block is not a plain one: more than one from=, a from=
    that is not their first line, a line after the MSP hop, more final recipients than nrcpts,
    or the last announced recipient done before their last delivery row (the entry would be
    forgotten there and the rows after it joined to nothing)."""
    at = np.flatnonzero(changing & (codes >= 0))
    if not len(at):
        return
    by_qid = at[np.argsort(codes[at], kind="stable")]
    c, k = codes[by_qid], kinds[by_qid]
    start = np.ones(len(by_qid), bool)
    start[1:] = c[1:] != c[:-1]
    group = np.cumsum(start) - 1
    n_groups = int(group[-1]) + 1
    froms = np.bincount(group, weights=(k == K_FROM), minlength=n_groups)
    msps = np.bincount(group, weights=(k == K_MSP), minlength=n_groups)
    tos = np.bincount(group, weights=(k == K_TO), minlength=n_groups)
    first_kind = k[start]
    bad = (froms > 1) | ((froms == 1) & (first_kind != K_FROM)) | (msps > 1) | ((msps == 1) & (tos > 0))
    last = np.append(start[1:], True)
    bad |= (msps == 1) & (k[last] != K_MSP)
    group_code = c[start]
    # announced recipients, and the final rows of each queue id
    from_rank = np.full(len(kinds), -1, np.int64)
    from_rank[f.from_at] = np.arange(len(f.from_at))
    announced = np.zeros(n_groups, np.int64)
    fr = from_rank[by_qid]
    has = fr >= 0
    announced[group[has]] = f.nrcpts[fr[has]]
    group_of_code = np.full(int(codes.max()) + 2, -1, np.int64)
    group_of_code[group_code] = np.arange(n_groups)
    row_group = group_of_code[_row_qids(f, codes)]
    final = ~f.row_deferred
    finals = np.bincount(row_group[row_group >= 0], weights=final[row_group >= 0], minlength=n_groups)
    bad |= (announced > 0) & (finals > announced)
    # where all announced are final, the last of them must be the queue id's last row
    full = np.flatnonzero((announced > 0) & (finals == announced) & (tos > 0))
    if len(full):
        rows = np.flatnonzero(np.isin(row_group, full))
        last_row = np.full(n_groups, -1, np.int64)
        np.maximum.at(last_row, row_group[rows], rows)
        bad[full] |= ~final[last_row[full]]
    special[group_code[bad]] = True


def _join_plain(parser: SendmailParser, f: SendmailFields, names: _Names, plain: np.ndarray,
                senders: blocks.JoinedColumn, message_ids: blocks.JoinedColumn) -> None:
    """The plain queue ids: each row's sender and message-id are those of its queue id's from=
    (its first line) or none; then the entry each is left with, through change(): none after
    the MSP hop or once every announced recipient is final with no deferral left; else its from=
    values, the recipients still to do, the last deferral of each recipient whose last row was
    one, and the latest time of its lines."""
    at = np.flatnonzero(plain)
    if not len(at):
        return
    kinds, codes, ts = f.kinds, f.codes, f.ts
    by_qid = at[np.argsort(codes[at], kind="stable")]
    c, k, t = codes[by_qid], kinds[by_qid], ts[by_qid]
    start = np.ones(len(by_qid), bool)
    start[1:] = c[1:] != c[:-1]
    group = np.cumsum(start) - 1
    n_groups = int(group[-1]) + 1
    group_code = c[start]
    from_rank = np.full(len(kinds), -1, np.int64)
    from_rank[f.from_at] = np.arange(len(f.from_at))
    group_from = np.full(n_groups, -1, np.int64)          # the from= of each queue id (its first line)
    fr = from_rank[by_qid]
    has = fr >= 0
    group_from[group[has]] = fr[has]
    # the rows of the plain queue ids take their queue id's from=
    group_of_code = np.full(int(codes.max()) + 2, -1, np.int64)
    group_of_code[group_code] = np.arange(n_groups)
    row_group = group_of_code[_row_qids(f, codes)] if len(f.row_deferred) else np.zeros(0, np.int64)
    rows = np.flatnonzero(row_group >= 0)
    if len(rows):
        src = group_from[row_group[rows]]                 # (-1: no from= line: null)
        senders.index[rows] = src
        if len(f.message_ids):
            null_mid = ~ab.to_bools(f.message_ids.is_valid())
            message_ids.index[rows] = np.where((src >= 0) & ~null_mid[np.maximum(src, 0)], src, -1)
    finals = np.bincount(row_group[rows], weights=~f.row_deferred[rows], minlength=n_groups).astype(np.int64)
    # each recipient's last row, where it was a deferral
    deferred_end: dict[int, list] = {}
    deferred_rows = rows[f.row_deferred[rows]]
    if len(deferred_rows):
        mine = np.flatnonzero(np.isin(row_group[rows], distinct_codes(row_group[deferred_rows])))
        cand = rows[mine]
        rcpt = f.rows["recipient"].take(ab.indices(cand)).dictionary_encode()
        key = row_group[cand] * (len(rcpt.dictionary) + 1) + ab.to_ints(rcpt.indices).astype(np.int64)
        order = np.lexsort((cand, key))
        last = np.append(key[order][1:] != key[order][:-1], True)
        last_rows = cand[order][last]
        ends = last_rows[f.row_deferred[last_rows]]
        for g, j in zip(row_group[ends].tolist(), ends.tolist()):
            deferred_end.setdefault(g, []).append(j)
        if isinstance(f.deferred, blocks.DeferredRows):
            f.deferred.preload(last_rows[f.row_deferred[last_rows]])
    msp = np.bincount(group, weights=(k == K_MSP), minlength=n_groups) > 0
    announced = np.zeros(n_groups, np.int64)
    announced[group_from >= 0] = f.nrcpts[group_from[group_from >= 0]]
    keeps_deferral = np.zeros(n_groups, bool)
    keeps_deferral[list(deferred_end)] = True
    done = msp | ((announced > 0) & (finals == announced) & ~keeps_deferral)
    top = np.full(n_groups, np.iinfo(np.int64).min)
    np.maximum.at(top, group, np.where(k == K_MSP, np.iinfo(np.int64).min, t))
    left = np.flatnonzero(~done)
    if not len(left):
        return
    names.preload(group_code[left])
    srcs = group_from[left]
    srcs = distinct_codes(srcs)
    senders_py = dict(zip(srcs.tolist(), blocks.take(f.senders, srcs).to_pylist()))
    mids_py = dict(zip(srcs.tolist(), blocks.take(f.message_ids, srcs).to_pylist()))
    change = parser.change
    name_of = names.cache
    deferred_row = f.deferred.get
    for g, code, when, src, count, final in zip(left.tolist(), group_code[left].tolist(), top[left].tolist(),
                                                 group_from[left].tolist(), announced[left].tolist(), finals[left].tolist()):
        q = name_of[code]
        rows = [deferred_row(j) for j in deferred_end.get(g, ())]
        for row in rows:
            row["queue_id"] = q
        # (no from= line, src < 0: no sender, message-id or count, as a new entry has none)
        sender, message_id = (senders_py[src], mids_py[src]) if src >= 0 else (None, None)
        change(ENTRY, q, when, (sender, message_id, count - final if count > 0 else None, rows))
