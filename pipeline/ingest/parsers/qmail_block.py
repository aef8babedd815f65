"""qmail-send blocks (multilog or splogger) read column-wise: the fast path of QmailParser.

QmailParser.feed (parsers/qmail.py) defines what a line means. The compiled scanner
(pipeline/ingest/native, scan_qmail) finds, in one pass and in a reader thread, the usual lines
(ASCII, or for a start valid UTF-8; `@<tai64n> ` or splogger's `<syslog stamp> host qmail:
<unix time> `, `starting delivery D: msg M to remote|local R`, `delivery D:
success|deferral|failure: text`, `info msg M: bytes B from <S>`, `end msg M`) and their fields;
what a delivery row needs from its text (qmail's unescaping, byte-wise; status, reply code, relay,
dsn, SMTP phase) is made for all lines at once by the scanner's qmail_facts (qmail.py's regexes
and phase_of, in C). The main thread then applies the lines in order through QmailParser.change(), the interface feed() uses, and every
other line goes to the engine's front door (and feed()). Without the compiled scanner, qmail is
read line by line. tests/test_qmail_block.py holds the two ways to the same rows and state.

Called by pipeline.ingest.engine for qmail chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...store import arrow_build as ab
from ...store.records import ID_BYTES, domain_of, normalise_address
from .. import native
from . import blocks
from .common import decode_line
from .common import NO_START
from .qmail import END, INFO, PHASE_MARKERS, RESULT, START, QmailParser, glued_tail

Q_SKIP, Q_FEED, Q_START, Q_RESULT, Q_INFO, Q_END = range(6)
_WORDS = ["", "sent", "deferred", "bounced"]
_EXPIRED = len(_WORDS)
_STATUS = ab.strings([*_WORDS, "expired"])   # a result's status word by its flag, or expired
_EMPTY = ab.scalar("")
_PHASE_NAMES = ab.strings([name for _, name in PHASE_MARKERS])


@dataclass
class QmailFields:
    n_lines: int
    line_starts: np.ndarray
    order: np.ndarray          # the lines to apply, in order
    kinds: np.ndarray          # Q_* of each
    dcode: np.ndarray          # D of each START / RESULT line, as an index into d_names (-1: none)
    d_names: list
    mcode: np.ndarray          # M of each START / INFO / END line, as an index into m_names (-1: none)
    m_names: list
    local: np.ndarray          # START: local delivery
    start_rank: np.ndarray     # START: index into recipients (-1: not a start)
    recipients: pa.Array       # the START lines' recipients (normalised)
    info_rank: np.ndarray      # INFO: index into senders
    senders: pa.Array
    result_at: np.ndarray      # per RESULT line: its position among the lines above
    ts: np.ndarray             # per RESULT line: time
    status: pa.Array           # … status word, unescaped text, reply code (remote / local), relay (remote), dsn, phase
    text: pa.Array
    code_remote: np.ndarray
    code_local: np.ndarray
    code_valid_remote: np.ndarray
    code_valid_local: np.ndarray
    relay: pa.Array
    dsn: pa.Array
    phase: pa.Array
    m_array: pa.Array | None = None   # m_names as Arrow
    host: pa.Array | None = None      # per RESULT line: a splogger line's host (null: multilog; None: none in the block)
    domains: pa.Array | None = None   # the START lines' recipients' domains (records.domain_of)


def _encode(values: pa.Array, at: np.ndarray, n: int) -> tuple[np.ndarray, list, pa.Array]:
    """Codes (per line, -1 elsewhere) and the distinct values of `values` found at lines `at`
    (as Python strings, and as Arrow)."""
    codes = np.full(n, -1, np.int64)
    if not len(at):
        return codes, [], pa.nulls(0, pa.string())
    enc = values.dictionary_encode()
    codes[at] = ab.to_ints(enc.indices)
    return codes, enc.dictionary.to_pylist(), enc.dictionary


def extract(block: bytes, max_line: int, ctx, annotate=None) -> QmailFields | None:
    """The usual lines and their fields; None without the compiled scanner (then the engine
    reads the chunk line by line through QmailParser.feed)."""
    scanner = native.SCANNER
    if scanner is None:
        return None
    s = scanner.scan_qmail(block, max_line)
    if s is None:
        return None
    data = np.frombuffer(block, np.uint8)
    cut = scanner.gather
    kinds = s["kind"]
    kinds[glue_suspects(data, s["line_starts"])] = Q_FEED   # (feed() reads the line glued in, if one is)
    order = np.flatnonzero(kinds != Q_SKIP)
    k = kinds[order]
    n = len(order)
    d_at = np.flatnonzero((k == Q_START) | (k == Q_RESULT))
    dcode, d_names, _ = _encode(cut(data, s["k_s"][order[d_at]], s["k_e"][order[d_at]]), d_at, n)
    st = np.flatnonzero(k == Q_START)
    ie = np.flatnonzero((k == Q_INFO) | (k == Q_END))
    m_at = np.concatenate((st, ie))
    m_values = pa.concat_arrays([cut(data, s["m_s"][order[st]], s["m_e"][order[st]]),
                                 cut(data, s["k_s"][order[ie]], s["k_e"][order[ie]])])
    mcode, m_names, m_array = _encode(m_values, m_at, n)
    local = np.zeros(n, bool)
    local[st] = s["flag"][order[st]] == 1
    start_rank = np.full(n, -1, np.int64)
    start_rank[st] = np.arange(len(st))
    rs, re_ = s["v_s"][order[st]], s["v_e"][order[st]]
    recipients = cut(data, rs, re_, lower=True)
    domains = cut(data, s["w_s"][order[st]], re_, lower=True)
    high = np.flatnonzero(scanner.high_slices(data, rs, re_))
    if len(high):                                  # a non-ASCII recipient: normalise_address() itself
        odd = [normalise_address(block[a:b].decode("utf-8")) for a, b in zip(rs[high].tolist(), re_[high].tolist())]
        index = np.arange(len(recipients), dtype=np.int64)
        index[high] = len(recipients) + np.arange(len(high))
        index = ab.indices(index)
        recipients = pa.concat_arrays([recipients, ab.strings(odd)]).take(index)
        domains = pa.concat_arrays([domains, ab.strings([domain_of(v) for v in odd])]).take(index)
    info = np.flatnonzero(k == Q_INFO)
    info_rank = np.full(n, -1, np.int64)
    info_rank[info] = np.arange(len(info))
    senders = cut(data, s["v_s"][order[info]], s["v_e"][order[info]], lower=True)
    # the texts of the result lines, as qmail.py reads them
    res = np.flatnonzero(k == Q_RESULT)
    lines = order[res]
    text = _unescaped(data, s["v_s"][lines], s["v_e"][lines], cut)
    words = s["flag"][lines].astype(np.int64)
    facts = scanner.qmail_facts(text)              # qmail.py's regexes and phase_of, in C
    expired = (words == 3) & (facts["too_long"] == 1)
    status = _STATUS.take(ab.numbers(np.where(expired, _EXPIRED, words), pa.int64()))
    code = facts["code"].astype(np.int64)
    code_valid = code >= 0
    code = np.maximum(code, 0)
    sent = words == 1
    code_remote = np.where(sent & ~code_valid, 250, code)
    valid_remote = code_valid | sent
    chars = facts["chars"]
    relay = cut(chars, np.maximum(facts["ip_s"], 0), np.maximum(facts["ip_e"], 0), facts["ip_s"] >= 0)
    dsn = cut(chars, np.maximum(facts["dsn_s"], 0), np.maximum(facts["dsn_e"], 0), facts["dsn_s"] >= 0)
    phase = facts["phase"].astype(np.int64)
    phase_arr = _PHASE_NAMES.take(ab.numbers(np.maximum(phase, 0), pa.int64(), phase >= 0))
    host_s = s["host_s"][lines]
    logged = host_s >= 0                           # splogger lines name their host
    host = cut(data, np.maximum(host_s, 0), s["host_e"][lines], logged) if logged.any() else None
    return QmailFields(len(kinds), s["line_starts"], order, k, dcode, d_names, mcode, m_names, local, start_rank,
                       recipients, info_rank, senders, res, s["ts"][lines], status, text, code_remote, code,
                       valid_remote, code_valid, relay, dsn, phase_arr, m_array=m_array, domains=domains, host=host)


_HEX = np.zeros(256, bool)
_HEX[np.frombuffer(b"0123456789abcdefABCDEF", np.uint8)] = True
_DIGIT = np.zeros(256, bool)
_DIGIT[np.frombuffer(b"0123456789", np.uint8)] = True
_UPPER, _LOWER = np.zeros(256, bool), np.zeros(256, bool)
_UPPER[np.frombuffer(bytes(range(65, 91)), np.uint8)] = True
_LOWER[np.frombuffer(bytes(range(97, 123)), np.uint8)] = True


def glue_suspects(data: np.ndarray, line_starts: np.ndarray) -> np.ndarray:
    """The lines that may hold a qmail line glued to them (qmail.glued_tail: GLUED_LABEL_RE or
    GLUED_SPLOGGER_RE after the line's start),
    by numpy: a multilog label (`@`, 24 hex digits, a space) not at a line's start; or a syslog
    time `hh:mm:ss` that is not the line's own stamp's (the only one, at its place after a line
    start of `Mon D`, `Mon DD` or an RFC 3339 date). A superset: feed() decides."""
    n = len(line_starts) - 1
    size = len(data)
    suspect = np.zeros(n, bool)
    at = np.flatnonzero(data == 64)
    at = at[(at > 0) & (at + 25 < size)]
    at = at[(data[at - 1] != 10) & (data[at + 25] == 32)]
    for k in range(1, 25):       # (one digit at a time: the candidates are few after the first)
        if not len(at):
            break
        at = at[_HEX[data[at + k]]]
    if len(at):
        suspect[np.searchsorted(line_starts, at, "right") - 1] = True
    co = np.flatnonzero(data == 58)
    co = co[(co >= 2) & (co + 6 < size)]
    co = co[data[co + 3] == 58]
    co = co[_DIGIT[data[co - 2]] & _DIGIT[data[co - 1]] & _DIGIT[data[co + 1]] & _DIGIT[data[co + 2]]
            & _DIGIT[data[co + 4]] & _DIGIT[data[co + 5]]]
    if len(co):
        line = np.searchsorted(line_starts, co, "right") - 1
        ls = line_starts[line]
        off = co - 2 - ls
        head = np.minimum(ls[:, None] + np.arange(11), size - 1)
        h = data[head]
        own = (((off == 6) | (off == 7)) & _UPPER[h[:, 0]] & _LOWER[h[:, 1]] & _LOWER[h[:, 2]] & (h[:, 3] == 32)) | (
            (off == 11) & _DIGIT[h[:, 0]] & (h[:, 4] == 45) & (h[:, 7] == 45) & ((h[:, 10] == 84) | (h[:, 10] == 32)))
        suspect[line[~own]] = True
        suspect[np.bincount(line, minlength=n)[:n] >= 2] = True
    return suspect


_UNESCAPE = bytes.maketrans(b"_/", b" \n")
_SLASH = ord("/")


def _unescaped(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, cut) -> pa.Array:
    """qmail.unescape() of each data[starts[i]:ends[i]] (ASCII): `_` -> space, `/` -> newline,
    trailing newlines dropped. Byte-wise: the trailing `/`s are cut off first, then the bytes
    are translated in one go (Arrow's replace_substring, twice, cost ten times as much)."""
    ends = np.array(ends, np.int64)
    trail = np.flatnonzero(ends > starts)
    while len(trail):
        trail = trail[data[ends[trail] - 1] == _SLASH]
        ends[trail] -= 1
        trail = trail[ends[trail] > starts[trail]]
    raw = cut(data, starts, ends)
    validity, offsets, chars = raw.buffers()
    if chars is not None and chars.size:
        chars = pa.py_buffer(chars.to_pybytes().translate(_UNESCAPE))
    return pa.Array.from_buffers(pa.string(), len(raw), [validity, offsets, chars], offset=raw.offset)


@dataclass
class BlockResult:
    columns: dict | None
    lines: int


def _codes_for(names: list, index: dict, value: str) -> int:
    code = index.get(value)
    if code is None:
        code = index[value] = len(names)
        names.append(value)
    return code


def read_block(parser: QmailParser, block: bytes, offset: int, f: QmailFields, feed_line, annotate=None) -> BlockResult:
    """Apply a block to the parser's state and return its delivery rows as columns.

    Each result line takes the delivery its number D started last before it (in the block, or
    from before the block when the block has no earlier line of D), and the sender its message
    M had then (the latest `info msg` of M before it, none after an `end msg`, else the state
    from before the block): joined with numpy. Then, in line order, through
    QmailParser.change(): the fed lines (feed()), every line of a D or M that a fed line
    touches, and for every other D and M only its last line (the state it is left in). A result
    whose start was never read is handed to `feed_line(raw, offset, NO_START)`: a reject, as
    feed() makes it."""
    deliveries, senders_before = parser.deliveries, parser.senders
    n = len(f.kinds)
    kinds = f.kinds.copy()
    dcode, mcode = f.dcode.copy(), f.mcode.copy()
    d_names, m_names = list(f.d_names), list(f.m_names)
    d_index = {v: i for i, v in enumerate(d_names)}
    m_index = {v: i for i, v in enumerate(m_names)}
    line_starts = f.line_starts
    # --- fed lines: what they say (feed() will do it), so their D and M are applied exactly
    fed = np.flatnonzero(kinds == Q_FEED)
    fed_raw = {}
    fed_kind = np.full(n, -1, np.int64)
    fed_value = {}
    fed_change = {}
    # (numpy values made Python ones up front: one element at a time they cost more than the work)
    fed_lines = f.order[fed]
    fed_kinds: list = []
    fed_d: list = []
    fed_m: list = []
    read_line = parser.read_line
    for i, a, b in zip(fed.tolist(), line_starts[fed_lines].tolist(), line_starts[fed_lines + 1].tolist()):
        raw = block[a:b]
        fed_raw[i] = raw
        text, bad = decode_line(raw)
        tail = glued_tail(text) if text is not None else None
        head = read_line(text if tail is None else tail) if text is not None else None
        if isinstance(head, tuple):
            _, _, kind, key, value = head
            fed_value[i] = value
            if kind != RESULT and not bad and tail is None:
                # what the front door and feed() would do with this clean line (a start with a
                # non-ASCII recipient, mostly): the one change() of what read_line read
                fed_change[i] = (kind, key, value)
            d = m = -2                                         # -2: left as it is
            if kind in (START, RESULT):
                d = _codes_for(d_names, d_index, key)
                if kind == START:
                    m = _codes_for(m_names, m_index, value[0])
            else:
                m = _codes_for(m_names, m_index, key)
            fed_kinds.append((i, kind))
            fed_d.append(d)
            fed_m.append(m)
    if fed_kinds:
        at = np.fromiter((i for i, _ in fed_kinds), np.int64, len(fed_kinds))
        fed_kind[at] = [k for _, k in fed_kinds]
        d, m = np.array(fed_d, np.int64), np.array(fed_m, np.int64)
        dcode[at[d != -2]] = d[d != -2]
        mcode[at[m != -2]] = m[m != -2]
    n_starts = int(np.count_nonzero((kinds == Q_START) | (fed_kind == START)))
    n_infos = int(np.count_nonzero((kinds == Q_INFO) | (fed_kind == INFO)))
    if (len(deliveries) + n_starts > parser.MAX_ENTRIES or len(senders_before) + n_infos > parser.MAX_ENTRIES):
        return _read_exactly(parser, block, offset, f, feed_line, annotate, fed_raw)
    is_start = (kinds == Q_START) | (fed_kind == START)
    is_result = (kinds == Q_RESULT) | (fed_kind == RESULT)
    is_info = (kinds == Q_INFO) | (fed_kind == INFO)
    is_end = (kinds == Q_END) | (fed_kind == END)
    pos = np.arange(n)
    # --- each result's delivery: the previous line of its D, if a start; none if a result; the
    # state from before the block if it has no earlier line
    d_lines = np.flatnonzero(is_start | is_result)
    by_d = d_lines[np.argsort(dcode[d_lines], kind="stable")]
    prev = np.full(n, -1, np.int64)
    same = dcode[by_d[1:]] == dcode[by_d[:-1]]
    prev[by_d[1:][same]] = by_d[:-1][same]
    first_of_d = np.ones(n, bool)
    first_of_d[by_d[1:][same]] = False
    results = np.flatnonzero(is_result)
    matched = prev[results]
    from_start = (matched >= 0) & is_start[np.maximum(matched, 0)]
    carried_d = {}
    for r in results[(matched < 0)].tolist():
        d = deliveries.get(d_names[dcode[r]])
        if d is not None:
            carried_d[r] = d
    # per result with a delivery: its M, local, recipient
    row_m = np.full(n, -1, np.int64)
    row_m[results[from_start]] = mcode[matched[from_start]]
    for r, d in carried_d.items():
        row_m[r] = _codes_for(m_names, m_index, d["msg"])
    has_delivery = np.zeros(n, bool)
    has_delivery[results[from_start]] = True
    has_delivery[list(carried_d)] = True
    # --- which D and M are applied line by line: those a fed line touches
    special_d = np.zeros(len(d_names) + 1, bool)
    special_m = np.zeros(len(m_names) + 1, bool)
    touched = fed[fed_kind[fed] >= 0]
    special_d[dcode[touched][dcode[touched] >= 0]] = True
    special_m[mcode[touched][mcode[touched] >= 0]] = True
    fed_results = touched[fed_kind[touched] == RESULT]
    special_m[row_m[fed_results][row_m[fed_results] >= 0]] = True
    # --- the sender each row's message has at its line
    events = np.flatnonzero(is_info | is_end)
    rows_at = np.flatnonzero(has_delivery & (kinds == Q_RESULT))
    sender_of = _senders_at(f, rows_at, row_m, events, is_info, mcode, fed_value, m_names, senders_before)
    # --- in line order: fed lines, the lines of special D and M, the last line of the others
    last_d = np.full(len(d_names) + 1, -1, np.int64)
    np.maximum.at(last_d, dcode[d_lines], d_lines)
    last_m = np.full(len(m_names) + 1, -1, np.int64)
    np.maximum.at(last_m, mcode[events], events)
    apply = np.zeros(n, bool)
    apply[fed] = True
    # results whose delivery's start was never read (before the log began): rejects, as feed()
    # makes them (their change() forgets nothing that is not already gone)
    orphans = np.flatnonzero(is_result & ~has_delivery & (kinds == Q_RESULT))
    apply[orphans] = True
    orphan = set(orphans.tolist())
    apply[d_lines[special_d[dcode[d_lines]]]] = True
    apply[events[special_m[mcode[events]]]] = True
    # (a last line that forgets its key matters only for a key held before the block)
    plain_d_last = last_d[:len(d_names)][~special_d[:len(d_names)]]
    plain_d_last = plain_d_last[plain_d_last >= 0]
    held = _held(deliveries, d_index, len(d_names))[dcode[plain_d_last]]
    apply[plain_d_last[is_start[plain_d_last] | held]] = True
    plain_m_last = last_m[:len(m_names)][~special_m[:len(m_names)]]
    plain_m_last = plain_m_last[plain_m_last >= 0]
    held = _held(senders_before, m_index, len(m_names))[mcode[plain_m_last]]
    apply[plain_m_last[is_info[plain_m_last] | held]] = True
    change = parser.change
    recipients_py = {}
    st_lines = np.flatnonzero(apply & (kinds == Q_START))
    if len(st_lines):
        recipients_py = dict(zip(st_lines.tolist(), blocks.take(f.recipients, f.start_rank[st_lines]).to_pylist()))
    in_lines = np.flatnonzero(apply & (kinds == Q_INFO))
    senders_py = dict(zip(in_lines.tolist(), blocks.take(f.senders, f.info_rank[in_lines]).to_pylist())) if len(in_lines) else {}
    applied = np.flatnonzero(apply)
    for i, k, dc, mc, is_local, at in zip(applied.tolist(), kinds[applied].tolist(), dcode[applied].tolist(),
                                          mcode[applied].tolist(), f.local[applied].tolist(),
                                          line_starts[f.order[applied]].tolist()):
        if k == Q_FEED:
            clean = fed_change.get(i)
            if clean is not None:
                change(*clean)
                continue
            feed_line(fed_raw[i], offset + at)
        elif k == Q_START:
            change(START, d_names[dc], (m_names[mc], is_local, recipients_py[i]))
        elif k == Q_RESULT:
            change(RESULT, d_names[dc])
            if i in orphan:
                line = int(f.order[i])
                feed_line(block[at:int(line_starts[line + 1])], offset + at, NO_START)
        elif k == Q_INFO:
            change(INFO, m_names[mc], senders_py[i])
        else:
            change(END, m_names[mc])
    if not len(rows_at):
        return BlockResult(None, f.n_lines)
    # --- the rows of the result lines read here
    result_rank = np.full(n, -1, np.int64)
    result_rank[f.result_at] = np.arange(len(f.result_at))
    rr = result_rank[rows_at]
    local = np.zeros(len(rows_at), bool)
    index = np.full(len(rows_at), -1, np.int64)       # into f.recipients, then extra values
    extra: list = []
    base = len(f.recipients)
    starts = prev[rows_at]
    here = (starts >= 0) & (f.start_rank[np.maximum(starts, 0)] >= 0)
    index[here] = f.start_rank[starts[here]]
    local[here] = f.local[starts[here]]
    for k in np.flatnonzero(~here).tolist():
        r = int(rows_at[k])
        d = carried_d.get(r)
        if d is not None:
            local[k], value = d["local"], d["recipient"]
        else:
            _, local[k], value = fed_value[int(starts[k])]    # a fed start line: its values from read_line
        extra.append(value)
        index[k] = base + len(extra) - 1
    recipients = pa.concat_arrays([f.recipients, ab.strings(extra)]) if extra else f.recipients
    domains = pa.concat_arrays([f.domains, ab.strings([domain_of(v) for v in extra])]) if extra else f.domains
    known = len(f.m_names)                      # f.m_array holds those; the fed lines added the rest
    msgs = pa.concat_arrays([f.m_array, ab.strings(m_names[known:])]).take(ab.indices(row_m[rows_at]))
    take = ab.indices(index)
    return BlockResult(_columns(parser, block, offset, f, rows_at, rr, local, recipients.take(take),
                                msgs, sender_of, annotate, domains.take(take)), f.n_lines)


def _held(table: dict, index: dict, n: int) -> np.ndarray:
    """Per code of the block's names (index: name -> code): is it a key of the parser's table?
    (Looked up from the table's side: the table holds a few thousand keys, a block tens of
    thousands of names.)"""
    held = np.zeros(n, bool)
    codes = [c for c in map(index.get, table) if c is not None]
    if codes:
        held[codes] = True
    return held


def _senders_at(f: QmailFields, rows_at, row_m, events, is_info, mcode, fed_value, m_names, senders_before) -> pa.Array:
    """Per row: the sender of its message at its line (latest info/end of M before it, else the
    state from before the block)."""
    if not len(rows_at):
        return ab.strings([])
    width = len(row_m) + 1
    ev_key = mcode[events] * width + events
    order = np.argsort(ev_key)
    ev_key, ev = ev_key[order], events[order]
    q_key = row_m[rows_at] * width + rows_at
    at = np.searchsorted(ev_key, q_key) - 1            # the latest event before (never equal)
    ok = at >= 0
    hit = np.zeros(len(rows_at), bool)
    hit[ok] = mcode[ev[at[ok]]] == row_m[rows_at][ok]
    line = np.where(hit, ev[np.maximum(at, 0)], -1) if len(ev) else np.full(len(rows_at), -1, np.int64)
    index = np.full(len(rows_at), -1, np.int64)       # into f.senders, then extra values; -1 null
    fast = hit & is_info[np.maximum(line, 0)] & (f.info_rank[np.maximum(line, 0)] >= 0)
    index[fast] = f.info_rank[line[fast]]
    extra: list = []
    base = len(f.senders)
    for k in np.flatnonzero(hit & ~fast & is_info[np.maximum(line, 0)]).tolist():   # a fed info line
        extra.append(fed_value[int(line[k])])
        index[k] = base + len(extra) - 1
    for k in np.flatnonzero(~hit).tolist():                                        # from before the block
        value = senders_before.get(m_names[row_m[rows_at[k]]])
        if value is not None:
            extra.append(value)
            index[k] = base + len(extra) - 1
    values = pa.concat_arrays([f.senders, ab.strings(extra)]) if extra else f.senders
    return values.take(ab.numbers(np.maximum(index, 0), pa.int64(), index >= 0))


def _read_exactly(parser, block, offset, f, feed_line, annotate, fed_raw) -> BlockResult:
    """Every line in order through change() (a block that could fill the state's tables)."""
    change = parser.change
    line_starts = f.line_starts
    result_rank = np.full(len(f.kinds), -1, np.int64)
    result_rank[f.result_at] = np.arange(len(f.result_at))
    recipients = f.recipients.to_pylist()
    senders_l = f.senders.to_pylist()
    rows_at, local, recipient, msgs, sender_of = [], [], [], [], []
    for i, k in enumerate(f.kinds.tolist()):
        if k == Q_RESULT:
            d = change(RESULT, f.d_names[f.dcode[i]])
            if d is not None:
                rows_at.append(i)
                local.append(d["local"])
                recipient.append(d["recipient"])
                msgs.append(d["msg"])
                sender_of.append(parser.senders.get(d["msg"]))
            else:  # its start was never read: a reject, as feed() makes it
                line = int(f.order[i])
                feed_line(block[int(line_starts[line]):int(line_starts[line + 1])], offset + int(line_starts[line]),
                          NO_START)
        elif k == Q_START:
            change(START, f.d_names[f.dcode[i]], (f.m_names[f.mcode[i]], bool(f.local[i]), recipients[f.start_rank[i]]))
        elif k == Q_INFO:
            change(INFO, f.m_names[f.mcode[i]], senders_l[f.info_rank[i]])
        elif k == Q_END:
            change(END, f.m_names[f.mcode[i]])
        else:
            line = int(f.order[i])
            feed_line(fed_raw[i], offset + int(line_starts[line]))
    if not rows_at:
        return BlockResult(None, f.n_lines)
    rows_at = np.array(rows_at, np.int64)
    return BlockResult(_columns(parser, block, offset, f, rows_at, result_rank[rows_at], np.array(local, bool), recipient,
                                msgs, sender_of, annotate), f.n_lines)


def _hosts(logged: pa.Array | None, default: str | None, n: int) -> pa.Array:
    """The rows' hosts: a splogger line's own, else the file's (ParseContext.default_host)."""
    if logged is None:
        return ab.strings([default] * n) if default else pa.nulls(n, pa.string())
    return pc.fill_null(logged, ab.scalar(default)) if default else logged


def _columns(parser, block, offset, f, rows_at, rr, local, recipients, msgs, sender_of, annotate, domains=None) -> dict:
    take = ab.indices(rr)
    every = len(rr) == len(f.result_at) and bool((rr == np.arange(len(rr))).all())

    def pick(column: pa.Array) -> pa.Array:               # (a row for every result line: as they are)
        return column if every else column.take(take)

    recipient = recipients if isinstance(recipients, pa.Array) else ab.strings(recipients)
    lines = f.order[rows_at]
    line_starts = f.line_starts
    n = len(rows_at)
    code = np.where(local, f.code_local[rr], f.code_remote[rr])
    code_valid = np.where(local, f.code_valid_local[rr], f.code_valid_remote[rr])
    relay = pc.if_else(ab.booleans(local), ab.scalar("local"), pick(f.relay))
    ts = f.ts[rr]
    columns = {
        "ts": ab.numbers(ts, pa.int64()),
        "mta": ab.repeat(parser.mta, n),
        "host": _hosts(pick(f.host) if f.host is not None else None, parser.ctx.default_host, n),
        "queue_id": msgs if isinstance(msgs, pa.Array) else ab.strings(msgs),
        "message_id": pa.nulls(n, pa.string()),
        "sender": sender_of if isinstance(sender_of, pa.Array) else ab.strings(sender_of),
        "recipient": recipient,
        "recipient_domain": domains if domains is not None else
        pc.fill_null(pc.extract_regex(recipient, "@(?P<d>[^@]*)$").field("d"), _EMPTY),
        "relay": relay,
        "status": pick(f.status),
        "dsn": pick(f.dsn),
        "reply_code": ab.numbers(code, pa.int16(), code_valid),
        "smtp_phase": pick(f.phase),
        "diagnostic": pick(f.text),
        "source_file": ab.repeat(parser.ctx.source_file, n),
        "source_offset": ab.numbers(line_starts[lines] + offset, pa.int64()),
    }
    data = np.frombuffer(block, np.uint8)
    columns["event_id"] = native.SCANNER.event_ids(data, line_starts[lines], line_starts[lines + 1] - 1, recipient, ID_BYTES)
    if annotate is not None:
        rows = {"recipient_domain": columns["recipient_domain"], "relay": relay, "status": columns["status"],
                "text": columns["diagnostic"], "dsn": columns["dsn"], "reply_code": columns["reply_code"],
                "smtp_phase": columns["smtp_phase"], "day": ab.numbers(ts // 86_400_000_000, pa.int32())}
        annotate(rows, "qmail")
        columns.update({name: rows[name] for name in ("carrier", "reason", "scope", "hard")})
    return columns
