"""qmail-send (multilog) blocks read column-wise: the fast path of QmailParser.

QmailParser.feed (parsers/qmail.py) defines what a line means. The compiled scanner
(pipeline/ingest/native, scan_qmail) finds, in one pass and in a reader thread, the usual lines
(ASCII, `@<tai64n> `, `starting delivery D: msg M to remote|local R`, `delivery D:
success|deferral|failure: text`, `info msg M: bytes B from <S>`, `end msg M`) and their fields;
what a delivery row needs from its text (qmail's unescaping, status, reply code, relay, dsn, SMTP
phase) is made for all lines at once with Arrow's RE2, in qmail.py's spelling. The main thread then
applies the lines in order through QmailParser.change(), the interface feed() uses, and every
other line goes to the engine's front door (and feed()). Without the compiled scanner, qmail is
read line by line. tests/test_qmail_block.py holds the two ways to the same rows and state.

Called by pipeline.ingest.engine for qmail chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...store import arrow_build as ab
from ...store.records import ID_BYTES
from .. import native
from . import blocks
from .qmail import END, INFO, PHASE_MARKERS, RESULT, START, QmailParser

Q_SKIP, Q_FEED, Q_START, Q_RESULT, Q_INFO, Q_END = range(6)
_WORDS = ["", "sent", "deferred", "bounced"]
# qmail.py's patterns in RE2 spelling (the texts here are printable ASCII; a lookahead is matched
# as a consumed character: the same leftmost match, the same group)
_CODE = r"Remote host said: (?P<c>[2-5][0-9][0-9])[ -]"
_IP = r"(?:^|Connected to |\s)(?P<ip>[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:]+)[ ._]"
_DSN = r"(?:\(#|\b)(?P<d>[245]\.[0-9]{1,3}\.[0-9]{1,3})"
_EMPTY = ab.scalar("")
_ANY_PHASE = "|".join(re.escape(marker) for marker, _ in PHASE_MARKERS)


@dataclass
class QmailFields:
    n_lines: int
    line_starts: np.ndarray
    order: np.ndarray          # the lines to apply, in order
    kinds: np.ndarray
    keys: list                 # D (START, RESULT) or M (INFO, END) of each; None for fed lines
    values: list               # START: (M, local, recipient); INFO: sender
    result_at: np.ndarray      # per RESULT line: its position among the lines above
    ts: np.ndarray             # per RESULT line: time
    status: list               # … status word for a remote delivery, and for a local one
    local_status: list
    text: pa.Array             # … unescaped text, reply code (remote / local), relay (remote), dsn, phase
    code_remote: np.ndarray
    code_local: np.ndarray
    code_valid_remote: np.ndarray
    code_valid_local: np.ndarray
    relay: pa.Array
    dsn: pa.Array
    phase: pa.Array


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
    order = np.flatnonzero(kinds != Q_SKIP)
    k = kinds[order]
    keyed = order[(k != Q_FEED)]
    key_values = cut(data, s["k_s"][keyed], s["k_e"][keyed]).to_pylist()
    keys = [None] * len(order)
    pos = np.flatnonzero(k != Q_FEED)
    for i, v in zip(pos.tolist(), key_values):
        keys[i] = v
    values = [None] * len(order)
    st = np.flatnonzero(k == Q_START)
    if len(st):
        lines = order[st]
        ms = cut(data, s["m_s"][lines], s["m_e"][lines]).to_pylist()
        rs = cut(data, s["v_s"][lines], s["v_e"][lines], lower=True).to_pylist()
        for i, m, local, r in zip(st.tolist(), ms, (s["flag"][lines] == 1).tolist(), rs):
            values[i] = (m, local, r)
    info = np.flatnonzero(k == Q_INFO)
    if len(info):
        lines = order[info]
        for i, v in zip(info.tolist(), cut(data, s["v_s"][lines], s["v_e"][lines], lower=True).to_pylist()):
            values[i] = v
    # the texts of the result lines, as qmail.py reads them
    res = np.flatnonzero(k == Q_RESULT)
    lines = order[res]
    raw = cut(data, s["v_s"][lines], s["v_e"][lines])
    text = pc.utf8_rtrim(pc.replace_substring(pc.replace_substring(raw, "_", " "), "/", "\n"), "\n")
    words = s["flag"][lines].astype(np.int64)
    expired = ab.to_bools(pc.match_substring(text, "in the queue too long")) & (words == 3)
    status = [("expired" if e else _WORDS[w]) for w, e in zip(words.tolist(), expired.tolist())]
    code_m = pc.extract_regex(text, _CODE)
    code_valid = ab.to_bools(code_m.is_valid())
    code = np.zeros(len(lines), np.int64)
    if code_valid.any():
        code[code_valid] = ab.to_ints(pc.cast(code_m.field("c").filter(ab.booleans(code_valid)), pa.int64()))
    sent = words == 1
    code_remote = np.where(sent & ~code_valid, 250, code)
    valid_remote = code_valid | sent
    ip = pc.extract_regex(text, _IP)
    relay = pc.if_else(ip.is_valid(), ip.field("ip"), ab.scalar(None)) if len(lines) else ab.strings([])
    dsn_m = pc.extract_regex(text, _DSN)
    dsn = pc.if_else(dsn_m.is_valid(), dsn_m.field("d"), ab.scalar(None)) if len(lines) else ab.strings([])
    phase = np.full(len(lines), -1, np.int64)
    hinted = np.flatnonzero(ab.to_bools(pc.match_substring_regex(text, _ANY_PHASE)))  # one pass, then the few
    if len(hinted):
        texts = blocks.take(text, hinted)
        for p, (marker, _) in reversed(list(enumerate(PHASE_MARKERS))):  # the first marker found wins
            phase[hinted[ab.to_bools(pc.match_substring(texts, marker))]] = p
    phase_arr = ab.strings([name for _, name in PHASE_MARKERS]).take(ab.numbers(np.maximum(phase, 0), pa.int64(), phase >= 0))
    return QmailFields(len(kinds), s["line_starts"], order, k, keys, values, res, s["ts"][lines], status, status,
                       text, code_remote, code, valid_remote, code_valid, relay, dsn, phase_arr)


@dataclass
class BlockResult:
    columns: dict | None
    lines: int


def read_block(parser: QmailParser, block: bytes, offset: int, f: QmailFields, feed_line, annotate=None) -> BlockResult:
    """Apply a block's lines in order through QmailParser.change(); the delivery rows of its
    result lines come back as columns; other lines go to `feed_line(raw, offset)`."""
    change = parser.change
    senders = parser.senders
    line_starts = f.line_starts
    result_rank = np.full(len(f.kinds), -1, np.int64)
    result_rank[f.result_at] = np.arange(len(f.result_at))
    took, msgs, locals_, recipients, sender_of = [], [], [], [], []
    for i, (line, k, key, v) in enumerate(zip(f.order.tolist(), f.kinds.tolist(), f.keys, f.values)):
        if k == Q_RESULT:
            d = change(RESULT, key)
            if d is not None:
                took.append(int(result_rank[i]))
                msgs.append(d["msg"])
                locals_.append(d["local"])
                recipients.append(d["recipient"])
                sender_of.append(senders.get(d["msg"]))
        elif k == Q_START:
            change(START, key, v)
        elif k == Q_INFO:
            change(INFO, key, v)
            senders = parser.senders
        elif k == Q_END:
            change(END, key)
        else:
            start = int(line_starts[line])
            feed_line(block[start:int(line_starts[line + 1])], offset + start)
            senders = parser.senders
    if not took:
        return BlockResult(None, f.n_lines)
    rows_at = np.array(took, np.int64)
    local = np.array(locals_, bool)
    take = ab.indices(rows_at)
    recipient = ab.strings(recipients)
    lines = f.order[f.result_at[rows_at]]
    n = len(rows_at)
    code = np.where(local, f.code_local[rows_at], f.code_remote[rows_at])
    code_valid = np.where(local, f.code_valid_local[rows_at], f.code_valid_remote[rows_at])
    relay = pc.if_else(ab.booleans(local), ab.scalar("local"), f.relay.take(take))
    ts = f.ts[rows_at]
    columns = {
        "ts": ab.numbers(ts, pa.int64()),
        "mta": ab.repeat(parser.mta, n),
        "host": ab.strings([parser.ctx.default_host] * n) if parser.ctx.default_host else pa.nulls(n, pa.string()),
        "queue_id": ab.strings(msgs),
        "message_id": pa.nulls(n, pa.string()),
        "sender": ab.strings(sender_of),
        "recipient": recipient,
        "recipient_domain": pc.fill_null(pc.extract_regex(recipient, "@(?P<d>[^@]*)$").field("d"), _EMPTY),
        "relay": relay,
        "status": ab.strings(f.status).take(take),
        "dsn": f.dsn.take(take),
        "reply_code": ab.numbers(code, pa.int16(), code_valid),
        "smtp_phase": f.phase.take(take),
        "diagnostic": f.text.take(take),
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
    return BlockResult(columns, f.n_lines)
