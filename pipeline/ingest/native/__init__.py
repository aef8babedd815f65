"""The compiled Postfix block scanner (postfix_scan.c), called through ctypes.

hatch_build.py compiles postfix_scan.c into _postfix_scan.so when the package is installed and a
C compiler is there (`make venv` does that; so does `pip install .`). Without the library (no
compiler, or MAILHYGIENE_NATIVE=0 in the environment) `SCANNER` is None and
pipeline.ingest.parsers.postfix_block uses its numpy scanner, which defines what the compiled one must
find: tests/test_postfix_scan.py holds the two to the same output. join_block computes a
Postfix block's queue-id join as postfix_join.join_numpy does (tests/test_postfix_join.py).

ctypes releases the GIL for the length of each call, so the reader threads of pipeline.ingest.engine
scan blocks in parallel.
"""

from __future__ import annotations

import ctypes
import os
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

ABI = 24  # scanner_abi() of the postfix_scan.c this module is written for
LIBRARY = Path(__file__).with_name("_postfix_scan.so")

_P = ctypes.c_void_p
STOPPED = object()  # what Scanner.scan returns for a block with a line starting with a stop prefix
_I64 = ctypes.c_int64


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _check_slices(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    """The C trusts its slices: a wrong one would read outside the block, so none gets there."""
    if len(starts) and (int(starts.min()) < 0 or int(ends.max()) > len(data) or bool((ends < starts).any())):
        raise ValueError("slices outside the block")


class Scanner:
    """The library's functions, with numpy in and out."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.scan_block.restype = ctypes.c_int
        lib.scan_block.argtypes = [_P, _I64, _I64, _I64] + [_P] * 23 + [ctypes.c_char_p, ctypes.c_int, _P, _I64] + [_P] * 7
        lib.count_lines.restype = _I64
        lib.count_lines.argtypes = [ctypes.c_char_p, _I64]
        lib.gather.restype = None
        lib.gather.argtypes = [_P, _P, _P, _P, _I64, ctypes.c_int, _P, _P]
        lib.scan_sendmail.restype = ctypes.c_int
        lib.scan_sendmail.argtypes = [_P, _I64, _I64, _I64, _I64] + [_P] * 25
        lib.scan_qmail.restype = ctypes.c_int
        lib.scan_qmail.argtypes = [_P, _I64, _I64, _I64] + [_P] * 14
        lib.has_markers.restype = ctypes.c_int
        lib.has_markers.argtypes = [ctypes.c_char_p, _I64, ctypes.c_char_p, ctypes.c_int]
        lib.line_kinds.restype = _I64
        lib.line_kinds.argtypes = [_P, _I64, _I64, _I64, _P, _P]
        lib.high_slices.restype = None
        lib.high_slices.argtypes = [_P, _P, _P, _I64, _P]
        lib.odd_slices.restype = None
        lib.odd_slices.argtypes = [_P, _P, _P, _I64, _P]
        lib.text_facts.restype = None
        lib.text_facts.argtypes = [_P, _P, _P, _P, _I64, _P, _P]
        lib.sendmail_facts.restype = None
        lib.sendmail_facts.argtypes = [_P] * 7 + [_I64] + [_P] * 5
        lib.qmail_facts.restype = None
        lib.qmail_facts.argtypes = [_P, _P, _I64] + [_P] * 7
        lib.mask_addresses.restype = None
        lib.mask_addresses.argtypes = [_P, _P, _P, _P, _I64, _P, _P]
        lib.join_block.restype = ctypes.c_int
        lib.join_block.argtypes = ([_I64] + [_P] * 6 + [_I64, _P, _I64, _I64, _I64] + [_P] * 7 + [_I64, ctypes.c_int, _I64, _P,
                                   ctypes.c_int] + [_P] * 19)
        for ids in (lib.event_ids, lib.event_ids_avx2, lib.event_ids_scalar):
            ids.restype = ctypes.c_int
            ids.argtypes = [_P, _P, _P, _P, _P, _I64, ctypes.c_int, _P]

    SCAN_ARRAYS = (("cls", np.uint8), ("f_line", np.int64), ("f_kind", np.int8), ("f_qs", np.int64), ("f_qe", np.int64),
                   ("f_key", np.uint64), ("f_us", np.int64), ("f_vs", np.int64), ("f_ve", np.int64),
                   ("d_fast", np.int64), ("d_host_s", np.int64), ("d_host_end", np.int64), ("d_rcpt_end", np.int64),
                   ("d_dom_start", np.int64), ("d_relay_s", np.int64), ("d_relay_e", np.int64),
                   ("d_dsn_s", np.int64), ("d_status_pos", np.int64), ("d_status_end", np.int64),
                   ("d_status_code", np.int8), ("d_has_text", np.uint8))

    def scan(self, block: bytes, max_line: int, buffers: ScanBuffers | None = None,
             stops: tuple[bytes, ...] = ()) -> dict | None:
        """Per line, per fast line and per delivery line, what scan_block() finds (see the C);
        None when the block holds no newline; STOPPED when a line ending in a newline starts
        with one of `stops` (non-empty, without NUL or newline). With `buffers`, every array but
        line_starts is a view into them: valid until the next scan with the same buffers (fresh
        arrays cost a page fault per 4 KiB written); and the queue ids are coded as the lines go
        by (what dictionary_encode of the f_qs / f_qe slices makes): q_code per fast line
        (int32), q_names (the distinct ids, a string array); f_utf8: per fast line, does it
        hold non-ASCII characters (bool); d_code / d_phase: per delivery line, text_facts of
        its text (-1 / 0 without one)."""
        if any(not p or b"\0" in p or b"\n" in p for p in stops) or len(stops) > 8:
            raise ValueError("stop prefixes: 1 to 8, not empty, without NUL or newline")
        # the arrays' size: the lines of the block, counted (a pass over it), or with buffers
        # guessed from the blocks before (the scan refuses a block of more: then counted)
        cap = buffers.guess(len(block)) if buffers is not None else 0
        if cap:
            out = self._scan(block, max_line, buffers, stops, cap)
            if out is not None:
                return out
        cap = self.lib.count_lines(block, len(block))
        if cap == 0:
            return None
        return self._scan(block, max_line, buffers, stops, cap)

    def _scan(self, block: bytes, max_line: int, buffers: ScanBuffers | None, stops: tuple[bytes, ...],
              cap: int) -> dict | None:
        data = np.frombuffer(block, np.uint8)
        out = {"line_starts": np.empty(cap + 1, np.int64)}
        if buffers is None:
            out.update((name, np.empty(cap, dtype)) for name, dtype in self.SCAN_ARRAYS)
        else:
            out.update(buffers.arrays(cap))
        counts = np.zeros(4, np.int64)
        coding = [None, 0, None, None, None, None, None, None, None]
        if buffers is not None:
            size = 1024                                  # twice the last block's ids (grown in the C if need be)
            while size < 2 * buffers.queue_ids:
                size *= 2
            table, keys, code = buffers.coder(size, cap)
            q_offsets, q_chars = np.empty(cap + 1, np.int32), np.empty(20 * cap, np.uint8)
            utf8, d_code, d_phase = buffers.line_facts(cap)
            coding = [_ptr(table), size, _ptr(keys), _ptr(code), _ptr(q_offsets), _ptr(q_chars), _ptr(utf8), _ptr(d_code),
                      _ptr(d_phase)]
        rc = self.lib.scan_block(_ptr(data), len(block), max_line, cap, *(_ptr(a) for a in out.values()), _ptr(counts),
                                 b"\0".join(stops) + b"\0", len(stops), *coding)
        if rc == 1:
            return STOPPED
        if rc == -3:
            raise MemoryError("scan_block: queue-id table")
        if rc != 0:
            return None
        n, nf, nd, nq = counts.tolist()
        if buffers is not None:
            buffers.seen(len(block), n)
        sizes = {"line_starts": n + 1, "cls": n}  # then f_* per fast line, d_* per delivery line
        for name in out:
            out[name] = out[name][:sizes.get(name, nf if name.startswith("f_") else nd)]
        if buffers is not None:
            buffers.queue_ids = nq
            out["f_utf8"] = utf8[:nf].view(bool)
            out["d_code"], out["d_phase"] = d_code[:nd], d_phase[:nd]
            out["q_code"] = code[:nf]
            out["q_names"] = pa.Array.from_buffers(pa.string(), nq, [None, pa.py_buffer(q_offsets[:nq + 1]),
                                                                      pa.py_buffer(q_chars[:int(q_offsets[nq])])])
        return out

    def join_block(self, j) -> dict:
        """postfix_join.join_numpy(j) (a JoinInput), compiled: the same arrays (see join_block in
        the C; tests/test_postfix_join.py holds the two equal)."""
        n, n_codes = len(j.kinds), len(j.special)
        c64 = partial(np.ascontiguousarray, dtype=np.int64)
        c8 = partial(np.ascontiguousarray, dtype=np.uint8)
        kinds, fkinds = np.ascontiguousarray(j.kinds, np.int8), np.ascontiguousarray(j.fkinds, np.int8)
        codes, minutes, us, minute_us, fed_ts = c64(j.codes), c64(j.minutes), c64(j.us), c64(j.minute_us), c64(j.fed_ts)
        if not (len(fkinds) == len(codes) == len(minutes) == len(us) == n):
            raise ValueError("join_block: per-line arrays of different lengths")
        per_code = [c8(j.special), c8(j.has_carried), c64(j.carried_seen), c8(j.carried_left), c64(j.carried_sender),
                    c64(j.carried_mid), c8(j.carried_deferred)]
        if any(len(a) != n_codes for a in per_code):
            raise ValueError("join_block: per-code arrays of different lengths")
        status = np.ascontiguousarray(j.status_codes, np.int8)
        recipients = j.recipients
        n_deliv = len(status)
        if len(recipients) != n_deliv or recipients.null_count:
            raise ValueError("join_block: one recipient (not null) a delivery row")
        _, off_buf, chars_buf = recipients.buffers()
        r_off = np.frombuffer(off_buf, np.int32)[recipients.offset:recipients.offset + n_deliv + 1] if n_deliv \
            else np.zeros(1, np.int32)
        r_off = np.ascontiguousarray(r_off)
        r_chars = np.frombuffer(chars_buf, np.uint8) if chars_buf is not None and chars_buf.size else np.zeros(1, np.uint8)
        if n_deliv and (int(r_off[0]) < 0 or int(r_off[-1]) > len(r_chars)):
            raise ValueError("join_block: recipient offsets outside their characters")
        out = {"ts": np.empty(n, np.int64), "clock_run": np.empty(n, np.int64), "in_loop": np.empty(n, np.uint8),
               "aux": np.empty(n, np.int64), "d_ts": np.empty(n_deliv, np.int64), "d_code": np.empty(n_deliv, np.int64),
               "sender": np.empty(n_deliv, np.int64), "mid": np.empty(n_deliv, np.int64),
               "t_code": np.empty(n_codes, np.int64), "t_flags": np.empty(n_codes, np.uint8),
               "t_top": np.empty(n_codes, np.int64), "t_sender": np.empty(n_codes, np.int64),
               "t_mid": np.empty(n_codes, np.int64), "e_code": np.empty(n_deliv, np.int64),
               "e_first": np.empty(n_deliv, np.int64), "e_value": np.empty(n_deliv, np.int64)}
        counts = np.zeros(2, np.int64)
        rc = self.lib.join_block(n, _ptr(kinds), _ptr(fkinds), _ptr(codes), _ptr(minutes), _ptr(us), _ptr(minute_us),
                                 len(minute_us), _ptr(fed_ts), len(fed_ts), int(j.clock), n_codes,
                                 *(_ptr(a) for a in per_code), int(j.ttl), int(bool(j.crowded)), n_deliv, _ptr(status),
                                 int(j.deferred_code), _ptr(r_off), _ptr(r_chars), *(_ptr(a) for a in out.values()),
                                 _ptr(counts))
        if rc == -3:
            raise MemoryError("join_block")
        if rc != 0:
            raise ValueError("join_block: inputs that do not fit together (codes, minutes, rows or fed lines)")
        nt, ne = counts.tolist()
        for name in ("t_code", "t_flags", "t_top", "t_sender", "t_mid"):
            out[name] = out[name][:nt]
        for name in ("e_code", "e_first", "e_value"):
            out[name] = out[name][:ne]
        out["in_loop"] = out["in_loop"].view(bool)
        return out

    SENDMAIL_LINE = (("kind", np.int8), ("t_key", np.uint64), ("t_us", np.int64), ("host_s", np.int64), ("host_e", np.int64), ("qid_s", np.int64), ("qid_e", np.int64),
                     ("a_s", np.int64), ("a_e", np.int64), ("b_s", np.int64), ("b_e", np.int64),
                     ("c_s", np.int64), ("c_e", np.int64), ("r_s", np.int64), ("r_e", np.int64),
                     ("s_s", np.int64), ("nrcpts", np.int64))
    SENDMAIL_RCPT = (("rcpt_line", np.int64), ("rcpt_s", np.int64), ("rcpt_e", np.int64), ("rcpt_dom", np.int64),
                     ("rcpt_high", np.uint8))

    def scan_sendmail(self, block: bytes, max_line: int) -> dict | None:
        """Per line of a sendmail block: kind and field positions; per recipient of a delivery
        line: its line and positions (see scan_sendmail in the C). None: no newline."""
        cap = self.lib.count_lines(block, len(block))
        if cap == 0:
            return None
        return self._scan_sendmail(block, max_line, cap, 4 * cap) or self._scan_sendmail(block, max_line, cap, block.count(b",") + cap)

    def _scan_sendmail(self, block: bytes, max_line: int, cap: int, rcap: int) -> dict | None:
        data = np.frombuffer(block, np.uint8)
        out = {"line_starts": np.empty(cap + 1, np.int64)}
        for name, dtype in self.SENDMAIL_LINE:
            out[name] = np.empty(cap, dtype)
        for name, dtype in self.SENDMAIL_RCPT:
            out[name] = np.empty(rcap, dtype)
        out["sender_high"] = np.empty(cap, np.uint8)
        counts = np.zeros(2, np.int64)
        args = [out["line_starts"]] + [out[n] for n, _ in self.SENDMAIL_LINE] + [out[n] for n, _ in self.SENDMAIL_RCPT] \
            + [out["sender_high"], counts]
        rc = self.lib.scan_sendmail(_ptr(data), len(block), max_line, cap, rcap, *(_ptr(a) for a in args))
        if rc != 0:
            return None
        n, nr = counts.tolist()
        for name in out:
            size = n + 1 if name == "line_starts" else nr if name.startswith("rcpt_") else n
            out[name] = out[name][:size]
        return out

    def sendmail_facts(self, data: np.ndarray, at: dict) -> dict:
        """Per `to=` line (positions in `at`: dsn_s/dsn_e, stat_s/stat_e, reply_s/reply_e with
        reply_s < 0 for none): status (1 sent, 2 deferred, 3 bounced), code (-1: none),
        text_reply, phase (0 none, 1 rcpt, 2 end_of_data, 3 mail, 4 connect) and python (see
        sendmail_facts in the C)."""
        cols = [np.ascontiguousarray(at[k], np.int64) for k in ("dsn_s", "dsn_e", "stat_s", "stat_e", "reply_s", "reply_e")]
        n = len(cols[0])
        valid = cols[4] >= 0
        _check_slices(data, cols[0], cols[1])
        _check_slices(data, cols[2], cols[3])
        _check_slices(data, cols[4][valid], cols[5][valid])
        out = {"status": np.empty(n, np.int8), "code": np.empty(n, np.int16), "text_reply": np.empty(n, np.uint8),
               "phase": np.empty(n, np.int8), "python": np.empty(n, np.uint8)}
        if n:
            self.lib.sendmail_facts(_ptr(data), *(_ptr(c) for c in cols), n, *(_ptr(a) for a in out.values()))
        return out

    QMAIL_LINE = (("kind", np.int8), ("ts", np.int64), ("k_s", np.int64), ("k_e", np.int64), ("m_s", np.int64),
                  ("m_e", np.int64), ("v_s", np.int64), ("v_e", np.int64), ("w_s", np.int64), ("flag", np.int8),
                  ("host_s", np.int64), ("host_e", np.int64))

    def scan_qmail(self, block: bytes, max_line: int) -> dict | None:
        """Per line of a qmail block (multilog or splogger): kind, time, fields, host (host_s
        -1: none in the line) (see scan_qmail in the C)."""
        cap = self.lib.count_lines(block, len(block))
        if cap == 0:
            return None
        data = np.frombuffer(block, np.uint8)
        out = {"line_starts": np.empty(cap + 1, np.int64)}
        for name, dtype in self.QMAIL_LINE:
            out[name] = np.zeros(cap, dtype)
        counts = np.zeros(1, np.int64)
        rc = self.lib.scan_qmail(_ptr(data), len(block), max_line, cap,
                                 *(_ptr(out[name]) for name in ("line_starts", *(n for n, _ in self.QMAIL_LINE))), _ptr(counts))
        if rc != 0:
            return None
        n = int(counts[0])
        return {name: (a[:n + 1] if name == "line_starts" else a[:n]) for name, a in out.items()}

    def qmail_facts(self, texts: pa.StringArray) -> dict:
        """What qmail.py reads in each unescaped qmail text (printable ASCII and newlines; see
        qmail_facts in the C): code (-1: none), ip_s/ip_e and dsn_s/dsn_e (offsets into `chars`,
        the texts' character buffer as numpy; -1: none), phase (index into PHASE_MARKERS, -1:
        none), too_long."""
        n = len(texts)
        _, off_buf, chars_buf = texts.buffers()
        offsets = np.ascontiguousarray(np.frombuffer(off_buf, np.int32)[texts.offset:texts.offset + n + 1]) if n \
            else np.zeros(1, np.int32)
        chars = np.frombuffer(chars_buf, np.uint8) if chars_buf is not None and chars_buf.size else np.zeros(1, np.uint8)
        out = {"code": np.empty(n, np.int16), "ip_s": np.empty(n, np.int64), "ip_e": np.empty(n, np.int64),
               "dsn_s": np.empty(n, np.int64), "dsn_e": np.empty(n, np.int64), "phase": np.empty(n, np.int8),
               "too_long": np.empty(n, np.uint8)}
        if n:
            self.lib.qmail_facts(_ptr(chars), _ptr(offsets), n, *(_ptr(a) for a in out.values()))
        out["chars"] = chars
        return out

    def has_markers(self, block: bytes, markers: tuple[bytes, ...]) -> bool:
        """Any of the markers in the block (glibc memmem each)."""
        return bool(self.lib.has_markers(block, len(block), b"\0".join(markers) + b"\0", len(markers)))

    def line_kinds(self, block: bytes, max_line: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(line_starts (n + 1), kinds (n): 0 ASCII, 1 valid non-ASCII UTF-8, 2 raw) of a block;
        None when it holds no newline (blocks.line_kinds_numpy defines it)."""
        cap = self.lib.count_lines(block, len(block))
        if cap == 0:
            return None
        data = np.frombuffer(block, np.uint8)
        starts = np.empty(cap + 1, np.int64)
        kinds = np.empty(cap, np.uint8)
        n = self.lib.line_kinds(_ptr(data), len(block), max_line, cap, _ptr(starts), _ptr(kinds))
        if n < 0:
            return None
        return starts[:n + 1], kinds[:n]

    def gather(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               valid: np.ndarray | None = None, lower: bool = False) -> pa.StringArray:
        """A string array of data[starts[i]:ends[i]] (lower-cased ASCII when `lower`; null where
        not `valid`)."""
        n = len(starts)
        starts = np.ascontiguousarray(starts, np.int64)
        ends = np.ascontiguousarray(ends, np.int64)
        _check_slices(data, starts, ends)
        lens = ends - starts
        if valid is not None:
            valid = np.ascontiguousarray(valid, np.uint8)
            lens = lens * valid
        total = int(lens.sum()) if n else 0
        offsets = np.empty(n + 1, np.int32)
        chars = np.empty(max(total, 1), np.uint8)
        self.lib.gather(_ptr(data), _ptr(starts), _ptr(ends), None if valid is None else _ptr(valid),
                        n, int(lower), _ptr(offsets), _ptr(chars))
        validity = None if valid is None else pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))
        return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(chars[:total])])

    def high_slices(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Per slice data[starts[i]:ends[i]]: does it hold a non-ASCII byte? (bool)"""
        return self._slice_flags(self.lib.high_slices, data, starts, ends)

    def odd_slices(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Per slice data[starts[i]:ends[i]]: does it hold a non-ASCII character other than
        U+3001-U+9FFF (one that Python's lower(), \\d, \\s or IGNORECASE may read unlike
        the ASCII-only C)? (bool; see odd_slices in the C)"""
        return self._slice_flags(self.lib.odd_slices, data, starts, ends)

    @staticmethod
    def _slice_flags(function, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """A compiled per-slice test (`function(data, starts, ends, n, flags)`) of data[starts[i]:ends[i]]."""
        starts = np.ascontiguousarray(starts, np.int64)
        ends = np.ascontiguousarray(ends, np.int64)
        _check_slices(data, starts, ends)
        flags = np.empty(len(starts), np.uint8)
        function(_ptr(data), _ptr(starts), _ptr(ends), len(starts), _ptr(flags))
        return flags.view(bool)

    PHASES = (None, "connect", "helo", "mail", "rcpt", "data", "end_of_data", "quit")  # by text_facts' code
    PHASE_PYTHON = 255  # a command word only smtp_phase_of knows what to make of

    def text_facts(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per ASCII text data[starts[i]:ends[i]] (none where not `valid`): (reply code, -1 for
        none: common.reply_code_of; phase code: an index into PHASES, or PHASE_PYTHON:
        postfix.smtp_phase_of)."""
        n = len(starts)
        starts = np.ascontiguousarray(starts, np.int64)
        ends = np.ascontiguousarray(ends, np.int64)
        if valid is not None:
            valid = np.ascontiguousarray(valid, np.uint8)
            starts = np.where(valid, starts, 0)          # (a row without text may point past the block)
            ends = np.where(valid, ends, 0)
        _check_slices(data, starts, ends)
        codes = np.empty(n, np.int16)
        phases = np.empty(n, np.uint8)
        self.lib.text_facts(_ptr(data), _ptr(starts), _ptr(ends), None if valid is None else _ptr(valid), n,
                            _ptr(codes), _ptr(phases))
        return codes, phases

    def mask_addresses(self, texts: pa.StringArray, rows: np.ndarray | None = None) -> pa.StringArray:
        """classify.mask_addresses(texts) (of texts.take(rows) when rows are given), compiled: the
        same strings and nulls, without RE2's several passes over each text and without the take
        (tests/test_classify_fast.py holds the two together)."""
        n = len(texts) if rows is None else len(rows)
        if rows is not None:
            rows = np.ascontiguousarray(rows, np.int64)
            if n and (int(rows.min()) < 0 or int(rows.max()) >= len(texts)):
                raise ValueError("rows outside the texts")
        if n == 0:
            return pa.array([], pa.string())
        _, off_buf, chars_buf = texts.buffers()
        offsets = np.frombuffer(off_buf, np.int32)[texts.offset:texts.offset + len(texts) + 1]
        chars = np.frombuffer(chars_buf, np.uint8) if chars_buf is not None and chars_buf.size else np.zeros(1, np.uint8)
        valid = None
        if texts.null_count:   # (the validity bits as bytes; is_valid().to_numpy() would probe for pandas)
            bits = np.frombuffer(texts.buffers()[0], np.uint8)
            valid = np.unpackbits(bits, bitorder="little")[texts.offset:texts.offset + len(texts)]
        lens = np.diff(offsets) if rows is None else offsets[rows + 1] - offsets[rows]
        if valid is not None:
            lens = lens * (valid if rows is None else valid[rows])
        out_offsets = np.empty(n + 1, np.int32)
        out = np.empty(max(int(lens.sum()), 1), np.uint8)
        self.lib.mask_addresses(_ptr(chars), _ptr(np.ascontiguousarray(offsets)), None if rows is None else _ptr(rows),
                                None if valid is None else _ptr(valid), n, _ptr(out_offsets), _ptr(out))
        validity = None
        if valid is not None:
            picked = valid if rows is None else valid[rows]
            if not picked.all():
                validity = pa.py_buffer(np.packbits(picked, bitorder="little"))
        return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(out_offsets), pa.py_buffer(out[:out_offsets[-1]])])

    def event_ids(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  recipients: pa.StringArray, id_bytes: int, vector: str = "best") -> pa.StringArray:
        """records.event_id_for(line, recipient) of the lines data[starts[i]:ends[i]] (ASCII,
        without their newline) and the (non-null) recipients, as hex strings. Four rows at a time
        where the processor can (`vector`: "best", AVX-512VL or else AVX2; for the tests "avx2"
        alone, or "scalar", one by one)."""
        n = len(starts)
        starts = np.ascontiguousarray(starts, np.int64)
        ends = np.ascontiguousarray(ends, np.int64)
        _check_slices(data, starts, ends)
        if len(recipients) != n or recipients.null_count:
            raise ValueError("one recipient (not null) per line")
        _, off_buf, chars_buf = recipients.buffers()
        roff = np.frombuffer(off_buf, np.int32)[recipients.offset:recipients.offset + n + 1]
        roff = np.ascontiguousarray(roff)
        chars = np.frombuffer(chars_buf, np.uint8) if chars_buf is not None and chars_buf.size else np.zeros(1, np.uint8)
        width = 2 * id_bytes
        hex_chars = np.empty(max(width * n, 1), np.uint8)
        hash_rows = {"best": self.lib.event_ids, "avx2": self.lib.event_ids_avx2, "scalar": self.lib.event_ids_scalar}[vector]
        rc = hash_rows(_ptr(data), _ptr(starts), _ptr(ends), _ptr(chars), _ptr(roff), n, id_bytes, _ptr(hex_chars))
        if rc != 0:
            raise ValueError("event_ids: digest size out of range")
        offsets = np.arange(0, width * n + 1, width, dtype=np.int32)
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(hex_chars[:width * n])])


class ScanBuffers:
    """Scanner.scan's per-line arrays, kept for the next block (one set per reader thread:
    pipeline.ingest.parsers.postfix_block), grown when a block has more lines."""

    def __init__(self):
        self.cap = 0
        self.buffers: dict = {}
        self._table = np.empty(0, np.int32)
        self._keys = np.empty(0, np.uint64)
        self._code = np.empty(0, np.int32)
        self._utf8 = np.empty(0, np.uint8)
        self.line_bytes = 0.0  # the shortest mean line of the blocks so far (bytes)
        self.queue_ids = 0  # distinct queue ids of the last block (sizes the next one's table)

    def guess(self, size: int) -> int:
        """Lines to size a block of `size` bytes for (0: none seen yet): the shortest mean line of
        the blocks so far, with room to spare."""
        return int(size / self.line_bytes * 1.25) + 1024 if self.line_bytes else 0

    def seen(self, size: int, lines: int) -> None:
        if lines and size >= 1 << 16:
            self.line_bytes = min(self.line_bytes or size / lines, size / lines)

    def line_facts(self, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f_utf8, d_code, d_phase for `cap` lines."""
        if len(self._utf8) < cap:
            size = max(cap, len(self._utf8) * 5 // 4)
            self._utf8, self._code16, self._phase = np.empty(size, np.uint8), np.empty(size, np.int16), np.empty(size, np.uint8)
        return self._utf8, self._code16, self._phase

    def coder(self, size: int, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The queue-id coder's scratch (scan_block): a hash table of `size`, keys and codes
        for `cap` lines."""
        if len(self._table) < size:
            self._table = np.empty(size, np.int32)
        if len(self._code) < cap:
            self._code = np.empty(max(cap, len(self._code) * 5 // 4), np.int32)
            self._keys = np.empty(3 * len(self._code), np.uint64)
        return self._table[:size], self._keys, self._code

    def arrays(self, cap: int) -> dict:
        if cap > self.cap:
            self.cap = max(cap, self.cap + self.cap // 4)
            self.buffers = {name: np.empty(self.cap, dtype) for name, dtype in Scanner.SCAN_ARRAYS}
        return {name: a[:cap] for name, a in self.buffers.items()}


def load(path: Path = LIBRARY) -> Scanner | None:
    """The scanner in `path`, or None when there is none (or one built from another version)."""
    if not path.exists():
        return None
    try:
        lib = ctypes.CDLL(str(path))
        if lib.scanner_abi() != ABI:
            return None
    except (OSError, AttributeError):
        return None
    return Scanner(lib)


SCANNER = None if os.environ.get("MAILHYGIENE_NATIVE", "1") == "0" else load()
