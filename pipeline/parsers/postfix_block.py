"""Postfix log blocks read column-wise: the fast path of PostfixParser for clean blocks.

A block of whole lines (ASCII, no NUL or CR, no over-long line: ingest checks that) is cut into
lines without copying (one Arrow string array over the block's bytes). One RE2 pattern, run by
Arrow outside the GIL, recognises the four line shapes that make up almost all of a Postfix log's
work, in their usual spelling:

    … postfix/smtp[pid]: QID: to=<a@b>, relay=…, delay=…, delays=…, dsn=…, status=sent (…)
    … postfix/qmgr[pid]: QID: from=<a@b>, size=…, nrcpt=… (queue active)
    … postfix/qmgr[pid]: QID: removed
    … postfix/cleanup[pid]: QID: message-id=<…>

For those lines the pattern guarantees where every field starts and ends, so the fields are cut
by position (numpy arithmetic on the line offsets, one gather per column). Every other line that
PostfixParser.feed would look at (any line with ` to=`, ` from=`, `message-id=` or ending in
`: removed`: odd spellings, ISO stamps, expiries, probes, …) is handed to PostfixParser.feed
itself, in line order, so the result is the per-line parser's by construction: the fast path only
ever takes lines whose meaning is unambiguous. tests/test_postfix_block.py holds the two to the
same events and state on the sample logs, the public corpus, generated traffic and odd lines.

The queue-id joins (sender, message-id, deferred recipients for the expiry line) stay in the
parser's own state (PostfixParser.queue), updated by one tight Python loop over the interesting
lines in order, exactly as PostfixParser._state / _record would.

Called by pipeline.ingest for every clean block of a Postfix file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .common import MALFORMED
from .postfix import PostfixParser, reply_code_of, smtp_phase_of

# --- the shapes the fast path takes (RE2 syntax; anything else goes to PostfixParser.feed) ------
# Fixed-width traditional stamp (`Nov  3 16:04:31` or `Nov 03 …`), so the minute and the
# seconds sit at known offsets.
_STAMP = r"[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} "
# A host without space, ':' or '>' (so the first ": " ends the program and the first '>' ends
# the address); a postfix program name without '[' or ':'.
_HOST = r"[0-9A-Za-z._-]+"
_PROG = r"postfix[0-9A-Za-z._/-]*"
_QID = r"(?:[0-9A-F]{5,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{11,20})"
_PID_QID = r"\[[0-9]+\]: " + _QID + ": "
# Address characters: printable ASCII except space, '"', ',', '<' and '>' (so normalise_address
# reduces to lower()).
_ADDR = r'[!#-+\--;=?-~]'
_VALUE = r'[^,=<>"]*'
_DELIVERY = (r"/(?:smtp|lmtp|local|virtual|pipe|error|retry|discard)" + _PID_QID
             + r"to=<" + _ADDR + r"+>(?:, orig_to=<[^<>\",]*>)?, relay=" + _VALUE
             + r"(?:, (?:conn_use|delay|delays)=" + _VALUE + r")*, dsn=" + _VALUE
             + r", status=(?:sent|deferred|bounced|expired|undeliverable)(?: \(|\n$)")
_QMGR = (r"/qmgr" + _PID_QID
         + r"(?:from=<" + _ADDR + r"*>, size=[0-9]+, nrcpt=[0-9]+ \(queue active\)\n$|removed\n$)")
_CLEANUP = r"/cleanup" + _PID_QID + r"message-id=<[!-;=?-~]*>\n$"
FAST_RE = "^" + _STAMP + _HOST + " " + _PROG + "(?:" + _DELIVERY + "|" + _QMGR + "|" + _CLEANUP + ")"
# Lines PostfixParser.feed does more than SKIP (its own cheap pre-test, as a pattern).
INTERESTING_RE = r" to=| from=|message-id=|: removed\n$"
# Where the queue id ends and what the line is.
_KIND_RE = r": (?:to=<|from=<|message-id=<|removed\n)"

# Kinds of interesting lines, in the order the state loop sees them.
K_FEED, K_DELIVERY, K_FROM, K_REMOVED, K_MSGID = 0, 1, 2, 3, 4
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
_PHASE_HINT_RE = r"in reply to |refused to talk to me|while receiving the initial server greeting|(?i:while sending)"
_LEADING_CODE_RE = r"^[2-5][0-9][0-9][ -]"


def gather_strings(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   valid: np.ndarray | None = None) -> pa.StringArray:
    """A string array of data[starts[i]:ends[i]] (one vectorised gather; null where not valid)."""
    n = len(starts)
    lens = (ends - starts).astype(np.int64)
    if valid is not None:
        lens = np.where(valid, lens, 0)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    idx = np.repeat(starts - offsets[:-1], lens)
    idx += np.arange(total, dtype=np.int64)
    buffers = [None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little")),
               pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data[idx])]
    return pa.Array.from_buffers(pa.string(), n, buffers)


def _find(arr: pa.Array, pattern: str) -> np.ndarray:
    return pc.find_substring(arr, pattern).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass
class BlockFields:
    """What the Arrow stage found in a block (computed without the GIL, no parser state)."""

    n_lines: int
    line_starts: np.ndarray      # byte offset of every line in the block (n_lines + 1: the end too)
    order: np.ndarray            # line numbers of the interesting lines, in order
    kinds: list                  # K_* per interesting line
    qids: list                   # queue id per interesting line (None for K_FEED)
    minutes: list                # index into minute_keys per interesting line
    seconds: np.ndarray          # seconds of the stamp per interesting line
    minute_keys: list            # distinct `Mon DD hh:mm` stamps
    values: list                 # sender (K_FROM) / message-id (K_MSGID) / None
    delivery: dict               # columns of the K_DELIVERY lines (Arrow arrays / numpy)


def extract(block: bytes, max_line: int) -> BlockFields | None:
    """Find and cut the fields of a block of whole lines (pure Arrow/numpy: runs in a thread).

    None when the block is not clean (non-ASCII, NUL, CR, a line of `max_line` bytes or more):
    such blocks need the per-line checks of pipeline.ingest.feed_raw_line.
    """
    if not block.isascii() or b"\x00" in block or b"\r" in block:
        return None
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    n = len(ends)
    if n == 0 or ends[0] >= max_line or (n > 1 and np.diff(ends).max() > max_line):
        return None
    line_starts = np.empty(n + 1, np.int64)
    line_starts[0] = 0
    line_starts[1:] = ends + 1
    lines = pa.StringArray.from_buffers(n, pa.py_buffer(line_starts.astype(np.int32)), pa.py_buffer(block))

    fast = pc.match_substring_regex(lines, FAST_RE).to_numpy(zero_copy_only=False)
    fast_idx = np.flatnonzero(fast)
    slow_idx = np.flatnonzero(~fast)
    others = lines.take(pa.array(slow_idx))
    feed_idx = slow_idx[pc.match_substring_regex(others, INTERESTING_RE).to_numpy(zero_copy_only=False)]
    order = np.concatenate([fast_idx, feed_idx])
    sort = np.argsort(order, kind="stable")
    order = order[sort]
    is_fast = np.concatenate([np.ones(len(fast_idx), bool), np.zeros(len(feed_idx), bool)])[sort]

    fl = lines.take(pa.array(fast_idx))
    starts = line_starts[fast_idx]
    line_ends = line_starts[fast_idx + 1] - 1          # the newline
    qid_start = starts + _find(fl, ": ") + 2
    qid_end = starts + pc.find_substring_regex(fl, _KIND_RE).to_numpy(zero_copy_only=False).astype(np.int64)
    kind = _KIND_OF_CHAR[data[qid_end + 2]]
    qids = gather_strings(data, qid_start, qid_end)

    # stamps: one key per minute (the parser turns each into time once), seconds by position
    minute_arr = gather_strings(data, starts, starts + 12).dictionary_encode()
    minute_keys = minute_arr.dictionary.to_pylist()
    secs = (data[starts + 13].astype(np.int64) - 48) * 10 + (data[starts + 14].astype(np.int64) - 48)

    # sender (from=<…>, lower-cased as normalise_address does) and message-id (<…>, as is)
    f = np.flatnonzero(kind == K_FROM)
    senders = pc.utf8_lower(gather_strings(data, qid_end[f] + 8, starts[f] + _find(fl.take(pa.array(f)), ">")))
    m = np.flatnonzero(kind == K_MSGID)
    msgids = gather_strings(data, qid_end[m] + 14, line_ends[m] - 1)
    msgids = pc.if_else(pc.equal(msgids, ""), pa.scalar(None, pa.string()), msgids)
    values = np.empty(len(fast_idx), object)
    values[f] = senders.to_numpy(zero_copy_only=False)
    values[m] = msgids.to_numpy(zero_copy_only=False)

    # delivery lines; those whose text does not end in ")" are left to the parser (MALFORMED there)
    d = np.flatnonzero(kind == K_DELIVERY)
    dl = fl.take(pa.array(d))
    ds = starts[d]
    d_end = line_ends[d]
    status_pos = ds + _find(dl, ", status=")
    status_char = data[status_pos + 9]
    status_end = status_pos + 9 + _STATUS_LEN[status_char]
    has_text = data[status_end] == 32
    bad = has_text & (data[d_end - 1] != 41)
    if bad.any():
        kind[d[bad]] = K_FEED
        keep = np.flatnonzero(~bad)
        d, dl, ds, d_end = d[keep], dl.take(pa.array(keep)), ds[keep], d_end[keep]
        status_pos, status_char, status_end, has_text = (status_pos[keep], status_char[keep],
                                                         status_end[keep], has_text[keep])
    rcpt_start = qid_end[d] + 6                              # after ": to=<"
    rcpt_end = ds + _find(dl, ">")
    relay_start = ds + _find(dl, ", relay=") + 8
    commas = np.flatnonzero(data == 44)
    relay_end = commas[np.searchsorted(commas, relay_start)]
    dsn_start = ds + _find(dl, ", dsn=") + 6
    relay = gather_strings(data, relay_start, relay_end)
    delivery = {
        "host": gather_strings(data, ds + 16, ds + _find(dl, " postfix")),
        "recipient": pc.utf8_lower(gather_strings(data, rcpt_start, rcpt_end)),
        "relay": pc.if_else(pc.equal(relay, "none"), pa.scalar(None, pa.string()), relay),
        "dsn": gather_strings(data, dsn_start, status_pos),
        "status_code": _STATUS_CODE[status_char],
        "text": gather_strings(data, status_end + 2, d_end - 1, has_text),
        "line_start": ds, "line_end": d_end,
    }

    kinds_all = np.zeros(len(order), np.int8)
    kinds_all[is_fast] = kind
    qids_all = np.empty(len(order), object)
    qids_all[is_fast] = qids.to_numpy(zero_copy_only=False)
    minutes_all = np.zeros(len(order), np.int64)
    minutes_all[is_fast] = minute_arr.indices.to_numpy(zero_copy_only=False)
    secs_all = np.zeros(len(order), np.int64)
    secs_all[is_fast] = secs
    values_all = np.empty(len(order), object)
    values_all[is_fast] = values
    return BlockFields(n, line_starts, order, kinds_all, qids_all, minutes_all,
                       secs_all, minute_keys, values_all, delivery)


@dataclass
class BlockResult:
    """What read_block made of a block: the fast delivery rows column-wise (rows of fed lines
    went to the parser's emit as usual) and the lines the parser called malformed."""

    columns: dict | None         # PARSED_COLUMNS (Arrow arrays) + "_line_bytes" (list of bytes)
    malformed: list              # (offset, line) of each malformed line
    lines: int


def read_block(parser: PostfixParser, block: bytes, offset: int, f: BlockFields) -> BlockResult:
    """Apply a clean block (starting at byte `offset` of the source; `f` is extract(block)) to
    the parser's state."""
    ctx = parser.ctx
    kinds = f.kinds
    # the time of each minute once (ctx.syslog_us caches it too); a stamp that is no date
    # (Feb 30) leaves its lines to the parser, which skips them
    minute_us = np.empty(len(f.minute_keys), np.int64)
    no_date = np.zeros(len(f.minute_keys), bool)
    for i, key in enumerate(f.minute_keys):
        try:
            minute_us[i] = ctx.syslog_us(key[:3], key[4:6].lstrip(), key[7:12] + ":00", None)
        except ValueError:
            minute_us[i] = 0
            no_date[i] = True
    fast = kinds != K_FEED
    dv = f.delivery
    if no_date.any():
        undated = fast & no_date[f.minutes]
        kinds = np.where(undated, K_FEED, kinds).astype(np.int8)
        fast = kinds != K_FEED
        keep = np.flatnonzero(~undated[f.kinds == K_DELIVERY])  # delivery columns follow the lines
        dv = {k: (v.take(pa.array(keep)) if isinstance(v, pa.Array) else v[keep]) for k, v in dv.items()}
    ts = np.where(fast, minute_us[f.minutes] + f.seconds * 1_000_000, 0) if len(minute_us) else np.zeros(len(kinds), np.int64)
    n_deliv = len(dv["line_start"])
    status_codes = dv["status_code"]
    recipients = dv["recipient"].to_pylist()
    line_starts = f.line_starts
    source_file = ctx.source_file

    # the deferred rows are kept whole in the parser state (for the expiry line and for restart)
    deferred_j = np.flatnonzero(status_codes == _DEFERRED_CODE)
    pending: dict[int, dict] = {}
    delivery_ts = ts[kinds == K_DELIVERY]
    if len(deferred_j):
        take = pa.array(deferred_j)
        texts = dv["text"].take(take).to_pylist()
        for j, host, relay, dsn, text in zip(deferred_j.tolist(), dv["host"].take(take).to_pylist(),
                                            dv["relay"].take(take).to_pylist(), dv["dsn"].take(take).to_pylist(), texts):
            s, e = int(dv["line_start"][j]), int(dv["line_end"][j])
            recipient = recipients[j]
            pending[j] = {
                "ts": int(delivery_ts[j]), "mta": parser.mta, "host": host, "queue_id": None,
                "message_id": None, "sender": None, "recipient": recipient,
                "recipient_domain": recipient[recipient.rfind("@") + 1:] if "@" in recipient else "",
                "relay": relay, "status": "deferred", "dsn": dsn, "reply_code": reply_code_of(text),
                "smtp_phase": smtp_phase_of(text), "diagnostic": text,
                "source_file": source_file, "source_offset": offset + s,
                "_line": block[s:e].decode("ascii"),
            }

    senders: list = []
    message_ids: list = []
    malformed: list = []
    queue = parser.queue
    ttl = parser.STATE_TTL_US
    every = parser.EVICT_EVERY
    calls = parser._lines
    j = 0
    for k, q, t, v, li in zip(kinds.tolist(), f.qids.tolist(), ts.tolist(), f.values.tolist(), f.order.tolist()):
        if k == K_FEED:
            s = int(line_starts[li])
            line = block[s:int(line_starts[li + 1]) - 1].decode("ascii")
            parser._lines = calls
            if parser.feed(line, offset + s) == MALFORMED:
                malformed.append((offset + s, line))
            calls = parser._lines
            queue = parser.queue
            continue
        if k == K_REMOVED:
            queue.pop(q, None)
            continue
        # PostfixParser._state, inline
        calls += 1
        if calls % every == 0:
            queue = parser.queue = {qq: st for qq, st in queue.items() if t - st["seen"] <= ttl}
        st = queue.get(q)
        if st is None or t - st["seen"] > ttl:
            st = {"sender": None, "message_id": None, "seen": t, "deferred": {}}
            queue[q] = st
        elif t > st["seen"]:
            st["seen"] = t
        if k == K_DELIVERY:
            senders.append(st["sender"])
            message_ids.append(st["message_id"])
            row = pending.get(j)
            if row is not None:  # PostfixParser._record
                row["queue_id"], row["message_id"], row["sender"] = q, st["message_id"], st["sender"]
                st["deferred"][row["recipient"]] = row
            elif st["deferred"]:
                st["deferred"].pop(recipients[j], None)
            j += 1
        elif k == K_FROM:
            st["sender"] = v
        else:
            st["message_id"] = v
    parser._lines = calls
    if not n_deliv:
        return BlockResult(None, malformed, f.n_lines)

    deliveries = kinds == K_DELIVERY
    texts = dv["text"]
    # reply code: the leading `250 ` of most texts by position, reply_code_of() for the rest
    leading = pc.fill_null(pc.match_substring_regex(texts, _LEADING_CODE_RE), False).to_numpy(zero_copy_only=False)
    codes = np.zeros(n_deliv, np.int64)
    code_valid = leading.copy()
    if leading.any():
        codes[leading] = pc.cast(pc.utf8_slice_codeunits(texts.filter(pa.array(leading)), 0, 3), pa.int64()).to_numpy()
    rest = np.flatnonzero(~leading & texts.is_valid().to_numpy(zero_copy_only=False))
    for j, text in zip(rest.tolist(), texts.take(pa.array(rest)).to_pylist()):
        c = reply_code_of(text)
        if c is not None:
            codes[j], code_valid[j] = c, True
    # SMTP phase: only texts naming one can have one
    phase = np.empty(n_deliv, object)
    hinted = np.flatnonzero(pc.fill_null(pc.match_substring_regex(texts, _PHASE_HINT_RE), False).to_numpy(zero_copy_only=False))
    for j, text in zip(hinted.tolist(), texts.take(pa.array(hinted)).to_pylist()):
        phase[j] = smtp_phase_of(text)
    recipient_domain = [r[r.rfind("@") + 1:] if "@" in r else "" for r in recipients]
    starts = dv["line_start"]
    ends = dv["line_end"]
    columns = {
        "ts": pa.array(ts[deliveries], pa.int64()),
        "mta": pa.array(np.full(n_deliv, parser.mta, object), pa.string()),
        "host": dv["host"],
        "queue_id": pa.array(f.qids[deliveries], pa.string()),
        "message_id": pa.array(message_ids, pa.string()),
        "sender": pa.array(senders, pa.string()),
        "recipient": dv["recipient"],
        "recipient_domain": pa.array(recipient_domain, pa.string()),
        "relay": dv["relay"],
        "status": pa.array(np.array(_STATUS_WORDS, object)[status_codes], pa.string()),
        "dsn": dv["dsn"],
        "reply_code": pa.array(codes, pa.int16(), mask=~code_valid),
        "smtp_phase": pa.array(phase, pa.string()),
        "diagnostic": texts,
        "source_file": pa.array(np.full(n_deliv, source_file, object), pa.string()),
        "source_offset": pa.array(starts + offset, pa.int64()),
        "_line_bytes": [block[s:e] for s, e in zip(starts.tolist(), ends.tolist())],
    }
    return BlockResult(columns, malformed, f.n_lines)
