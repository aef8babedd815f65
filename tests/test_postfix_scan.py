"""The compiled Postfix block scanner (pipeline/native/postfix_scan.c) against the numpy scanner
that defines it (postfix_block.scan_numpy: FAST_RE by RE2 and position arithmetic).

The two must return the same arrays for every block: real lines, odd lines, and lines mutated
at random where one character decides (a comma, a bracket, a letter of a field name). The
block reader's own tests (test_postfix_block.py) then hold either scanner to the per-line parser.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pyarrow.compute as pc
import pytest
from fixtures import REPO, SAMPLES, generated_log, optional_corpus_path, restamped
from fixtures import POSTFIX_ODD_LINES as ODD

from pipeline.store import arrow_build as ab
from pipeline.ingest import native
from pipeline.ingest.parsers import postfix, postfix_block
from pipeline.ingest.parsers.common import reply_code_of
from pipeline.ingest.parsers.postfix import smtp_phase_of
from pipeline.store.records import ID_BYTES, event_id_for, event_ids_for_plain

DISABLED = os.environ.get("MAILHYGIENE_NATIVE") == "0"
SCANNER = native.SCANNER
needs_scanner = pytest.mark.skipif(SCANNER is None, reason="compiled scanner not built or disabled")


@pytest.mark.skipif(DISABLED, reason="MAILHYGIENE_NATIVE=0")
def test_the_compiled_scanner_is_built():
    """`make venv` compiles it (hatch_build.py) wherever there is a C compiler (CI installs
    gcc); a missing library would only show as speed."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}): ingest uses the numpy scanner")
    assert native.LIBRARY.exists(), f"{native.LIBRARY} missing: reinstall with a C compiler (make venv)"
    assert SCANNER is not None, f"{native.LIBRARY} is from another version (ABI != {native.ABI}): reinstall"


def assert_same_scan(block: bytes, max_line: int = 65536) -> dict | None:
    want = postfix_block.scan_numpy(block, max_line)
    got = SCANNER.scan(block, max_line)
    if want is None or got is None:
        assert want is None and got is None, "one scanner refused the block, the other did not"
        return None
    assert want.keys() == got.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # with reused buffers: the same arrays, and the queue ids coded as dictionary_encode codes them
    again = SCANNER.scan(block, max_line, _BUFFERS)
    for name in want:
        np.testing.assert_array_equal(again[name], want[name], err_msg=name)
    data = np.frombuffer(block, np.uint8)
    encoded = SCANNER.gather(data, want["f_qs"], want["f_qe"]).dictionary_encode()
    assert again["q_code"].tolist() == encoded.indices.to_pylist()
    assert again["q_names"].equals(encoded.dictionary)
    starts, ends = want["line_starts"][want["f_line"]], want["line_starts"][want["f_line"] + 1]
    assert again["f_utf8"].tolist() == [not block[a:b].isascii() for a, b in zip(starts.tolist(), ends.tolist())]
    # and each delivery text's text_facts, as postfix_block cuts the text
    d_end = want["line_starts"][want["f_line"][want["d_fast"]] + 1] - 1
    codes, phases = SCANNER.text_facts(data, want["d_status_end"] + 2, d_end - 1, want["d_has_text"])
    np.testing.assert_array_equal(again["d_code"], codes)
    np.testing.assert_array_equal(again["d_phase"], phases)
    return got


_BUFFERS = native.ScanBuffers() if SCANNER else None


def lines_of(text: str) -> list[str]:
    return [ln + "\n" for ln in text.splitlines() if ln.isascii()]


def real_lines(tmp_path) -> list[str]:
    lines = lines_of(ODD)
    for path in sorted((SAMPLES / "postfix").iterdir()):
        lines += lines_of(path.read_text(errors="replace"))
    log = tmp_path / "gen.log"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_postfix_log.py"), str(log), "--lines", "3000",
                    "--seed", "11", "--days", "1"], check=True)
    lines += lines_of(log.read_text())
    # RFC 3339 stamps: rsyslog's default (generated traffic) and every odd shape (fixtures)
    lines += lines_of(generated_log(tmp_path, "postfix", lines=3000, seed=11, ascii_only=True, stamps="rfc3339").read_text())
    lines += lines_of(restamped(ODD) + restamped(log.read_text()[:200_000]))
    for name in ("crowdsec-hub/postfix-logs.log", "fail2ban/postfix"):
        path = optional_corpus_path(*name.split("/"))
        if path is not None:
            lines += lines_of(path.read_text(errors="replace"))
    return lines


@pytest.mark.slow
@needs_scanner
def test_same_arrays_on_real_and_odd_lines(tmp_path):
    lines = real_lines(tmp_path)
    got = assert_same_scan("".join(lines).encode())
    assert got is not None and len(got["d_fast"]) > 500  # the delivery lines were cut, not refused
    for i in range(0, len(lines), 7):  # and in small blocks: every line at a block's start or end
        assert_same_scan("".join(lines[i:i + 7]).encode())


# characters that decide a match or a field boundary somewhere
ALPHABET = ' :,;<>=()[]@"/._-#+!?~\t\x7f\x01aAeEfFzZsdtrmT05' + "0913"


def mutate(line: str, rng: random.Random) -> str:
    chars = list(line[:-1])
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op, at = rng.random(), rng.randrange(len(chars) + 1)
        if op < 0.35 and at < len(chars):
            chars[at] = rng.choice(ALPHABET)
        elif op < 0.6 and at < len(chars):
            del chars[at]
        elif op < 0.8:
            chars.insert(at, rng.choice(ALPHABET))
        elif at < len(chars):
            chars.insert(at, chars[at])  # a doubled character (", ," "::" "<<")
    return "".join(chars) + "\n"


@pytest.mark.slow
@needs_scanner
def test_same_arrays_on_mutated_lines(tmp_path):
    rng = random.Random(20261201)
    lines = [ln for ln in real_lines(tmp_path) if "postfix" in ln]
    mutants = [mutate(rng.choice(lines), rng) for _ in range(30_000)]
    fast = 0
    for i in range(0, len(mutants), 300):
        got = assert_same_scan("".join(mutants[i:i + 300]).encode())
        fast += int(np.count_nonzero(got["cls"] == postfix_block.C_FAST))
    # both ways round: many mutants still match, many do not
    assert 0.05 * len(mutants) < fast < 0.9 * len(mutants)


@needs_scanner
def test_both_decide_per_line_the_same_way():
    """Lines with bad bytes are C_RAW, valid UTF-8 lines are never fast, and both scanners say
    so of the same lines; a block is refused only when it holds no newline."""
    good = b"Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: removed\n"
    assert assert_same_scan(good) is not None
    for bad, cls in ((good.replace(b"mx1", "あ".encode()), postfix_block.C_FEED),
                     (good.replace(b"\n", b"\r\n"), postfix_block.C_RAW),
                     (good.replace(b"mx1", b"m\x00"), postfix_block.C_RAW),
                     (good.replace(b"mx1", b"m\xe3\x81"), postfix_block.C_RAW),      # cut UTF-8
                     (good.replace(b"mx1", b"\xed\xa0\x80"), postfix_block.C_RAW),  # a surrogate
                     (good.replace(b"mx1", b"\xc0\xaf"), postfix_block.C_RAW),      # overlong
                     (good.replace(b"mx1", b"\xf4\x90\x80\x80"), postfix_block.C_RAW),  # above U+10FFFF
                     (good.replace(b"mx1", "\U0001f4e7".encode()), postfix_block.C_FEED)):
        got = assert_same_scan(good + bad + good)
        assert got["cls"].tolist() == [postfix_block.C_FAST, cls, postfix_block.C_FAST], bad
    for empty in (b"", b"no newline at all"):
        assert assert_same_scan(empty) is None
    got = assert_same_scan(good * 2 + b"x" * 70000 + b"\n")
    assert got["cls"].tolist() == [postfix_block.C_FAST] * 2 + [postfix_block.C_RAW]
    line = b"x" * 99 + b"\n"
    assert assert_same_scan(line, max_line=100)["cls"].tolist() == [postfix_block.C_SKIP]  # 99 bytes: fits
    assert assert_same_scan(line, max_line=99)["cls"].tolist() == [postfix_block.C_RAW]    # max_line bytes do not
    assert assert_same_scan(good + b"trailing bytes without a newline") is not None


@needs_scanner
def test_same_arrays_on_mutated_bytes(tmp_path):
    """Mutations with bytes that decide the per-line checks: high bytes (valid and invalid
    UTF-8), NUL, CR."""
    rng = random.Random(20261204)
    lines = [ln.encode() for ln in real_lines(tmp_path) if "postfix" in ln]
    pieces = ["あ".encode(), b"\xe3\x81", b"\xff", b"\x00", b"\r", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x9f\x93\xa7"]
    mutants = []
    for _ in range(6000):
        line = bytearray(rng.choice(lines)[:-1])
        at = rng.randrange(len(line) + 1)
        line[at:at] = rng.choice(pieces)
        mutants.append(bytes(line) + b"\n")
    kinds = set()
    for i in range(0, len(mutants), 300):
        got = assert_same_scan(b"".join(lines[i % 50:i % 50 + 20] + mutants[i:i + 300]))
        kinds |= set(got["cls"].tolist())
    assert kinds == {postfix_block.C_SKIP, postfix_block.C_FEED, postfix_block.C_FAST, postfix_block.C_RAW}


@needs_scanner
@pytest.mark.parametrize("lower", [False, True])
def test_gather_cuts_any_slices(lower):
    rng = np.random.default_rng(2)
    data = rng.integers(32, 127, 8000).astype(np.uint8)
    starts = rng.integers(0, 7900, 500)
    ends = starts + rng.integers(0, 90, 500)
    valid = rng.random(500) > 0.3
    for v in (valid, None):
        want = postfix_block.gather_strings(data, starts, ends, v)
        if lower:
            want = pc.utf8_lower(want)
        assert SCANNER.gather(data, starts, ends, v, lower=lower).equals(want)
    assert SCANNER.gather(data, starts[:0], ends[:0]).to_pylist() == []
    for bad_starts, bad_ends in ((starts - 8000, ends), (starts, ends + 8000), (ends, starts - 1)):
        with pytest.raises(ValueError):
            SCANNER.gather(data, bad_starts, bad_ends)  # never read outside the data


@needs_scanner
def test_event_ids_are_the_stable_ids():
    """BLAKE2b in C: the ids of records.event_id_for, at every length around the 128-byte block
    of the hash (the line, a NUL and the recipient)."""
    rng = random.Random(5)
    lines, rcpts = [], []
    for total in [*range(1, 300), 511, 512, 513, 4000]:
        rcpt = "".join(rng.choice("abc.@-0") for _ in range(rng.randrange(1, 40)))
        n = max(total - len(rcpt) - 1, 0)
        lines.append("".join(rng.choice("Nov 10: postfix/smtp[1]=<>,()") for _ in range(n)))
        rcpts.append(rcpt)
    # whole 128-byte blocks hashed straight from the line or from the recipient: every split of
    # a few lengths over line and recipient (the NUL between them at every place of a block)
    for total in (127, 128, 129, 255, 256, 257, 383, 384, 385, 700):
        for line_len in sorted({0, 1, 126, 127, 128, 129, 255, 256, 257, total - 1, total} & set(range(total + 1))):
            rcpt_len = max(total - line_len - 1, 1)
            lines.append("".join(rng.choice("Nov 10: postfix/smtp[1]=<>,()") for _ in range(line_len)))
            rcpts.append("".join(rng.choice("abc.@-0") for _ in range(rcpt_len)))
    block = "".join(ln + "\n" for ln in lines).encode()
    starts = np.cumsum([0] + [len(ln) + 1 for ln in lines[:-1]])
    ends = starts + np.array([len(ln) for ln in lines])
    got = SCANNER.event_ids(np.frombuffer(block, np.uint8), starts, ends, ab.strings(rcpts), ID_BYTES).to_pylist()
    assert got == [event_id_for(ln, r) for ln, r in zip(lines, rcpts)]
    assert got == event_ids_for_plain([ln.encode() for ln in lines], rcpts).to_pylist()
    assert SCANNER.event_ids(np.frombuffer(block, np.uint8), starts, ends, ab.strings(rcpts), ID_BYTES,
                             vector="scalar").to_pylist() == got
    assert SCANNER.event_ids(np.frombuffer(block, np.uint8), starts, ends, ab.strings(rcpts), ID_BYTES,
                             vector="avx2").to_pylist() == got


@needs_scanner
@pytest.mark.parametrize("id_bytes", [1, 10, 32, 64])
def test_event_ids_four_at_a_time_are_each_rows_own(id_bytes):
    """The vector paths (AVX-512VL where the processor has it, AVX2) hash four rows at once, one
    per lane: rows of very different lengths side by side (1 block next to 40), blocks read from
    the line in place next to blocks put together, counts that are not a multiple of four, UTF-8
    recipients, every digest size; each row gets the hash of its own bytes, as hashlib and the
    one-by-one path say."""
    rng = random.Random(id_bytes)
    lengths = [*range(0, 260), 383, 384, 385, 5000, 5119, 5120, 5121]
    for n in (1, 3, 4, 5, 7, 8, 270):
        lines, rcpts = [], []
        for _ in range(n):
            lines.append("".join(rng.choice("Nov 10: postfix/smtp[1]=<>,()") for _ in range(rng.choice(lengths))))
            rcpts.append("".join(rng.choice("abc.@-0太郎") for _ in range(rng.randrange(0, 60))))
        block = "".join(ln + "\n" for ln in lines).encode()
        starts = np.cumsum([0] + [len(ln) + 1 for ln in lines[:-1]])
        ends = starts + np.array([len(ln) for ln in lines])
        want = [hashlib.blake2b(b"%s\x00%s" % (ln.encode(), r.encode()), digest_size=id_bytes).hexdigest()
                for ln, r in zip(lines, rcpts)]
        for vector in ("best", "avx2", "scalar"):
            assert SCANNER.event_ids(np.frombuffer(block, np.uint8), starts, ends, ab.strings(rcpts), id_bytes,
                                     vector=vector).to_pylist() == want, (n, vector)


@needs_scanner
def test_has_markers_finds_what_python_finds():
    """has_markers (the foreign-MTA check of every chunk of an `auto` log: one SIMD pass with a
    first/second/last-byte filter, 32 bytes a step with AVX2, else 16; glibc memmem for the
    tail) says what `marker in block` says: markers at the start, the end, across every 16- and
    32-byte boundary, near misses, one-byte and
    repeated markers, no markers; and on a real log block."""
    from pipeline.ingest.engine import _FOREIGN

    rng = random.Random(13)
    markers = sorted({m for ms in _FOREIGN.values() for m in ms}) + [b"x", b"@@", b"abcdefghijklmnopqrstuvwxyz0123"]
    alphabet = b" \n@40sendmail[sm-qil:postfix/xyz"
    checked = found = 0
    for _ in range(20_000):
        n = rng.randrange(0, 90)
        data = bytearray(rng.choice(alphabet) for _ in range(n))
        if rng.random() < 0.4:
            m = rng.choice(markers)
            at = rng.randrange(0, n + 1)
            if rng.random() < 0.3 and len(m) > 2:      # a near miss: one byte changed
                m = m[:1] + bytes([m[1] ^ 1]) + m[2:] if rng.random() < 0.5 else m[:-1] + b"?"
            data[at:at] = m
        data = bytes(data)
        chosen = tuple(rng.sample(markers, rng.randrange(0, 6)))
        want = any(m in data for m in chosen)
        assert SCANNER.has_markers(data, chosen) == want, (data, chosen)
        checked += 1
        found += want
    assert 0.2 * checked < found < 0.8 * checked
    for at in range(0, 80):                            # every offset around the SIMD steps (16 and 32 bytes)
        for m in markers:
            data = b"a" * at + m + b"b" * (80 - at)
            assert SCANNER.has_markers(data, (m,)) and SCANNER.has_markers(data, (b"zz", m))
            assert not SCANNER.has_markers(data.replace(m, b"-" * len(m)), (m,))
    logs = [SAMPLES / "postfix" / "mail.log", SAMPLES / "sendmail" / "maillog", SAMPLES / "qmail" / "current"]
    mixed = b"".join(f.read_bytes() for f in logs)
    for block in [f.read_bytes() for f in logs] + [mixed]:
        for ms in _FOREIGN.values():
            assert SCANNER.has_markers(block, ms) == any(m in block for m in ms)
    assert all(SCANNER.has_markers(mixed, ms) for ms in _FOREIGN.values())


@needs_scanner
def test_high_slices_finds_what_python_finds():
    """high_slices (which field values of a non-ASCII block hold a non-ASCII byte) against
    Python, on a real log with UTF-8 lines, every slice from empty to whole lines; and the
    numpy look-up postfix_block uses without the compiled scanner agrees."""
    block = "\n".join(["Nov  3 12:00:00 mx postfix/smtp[1]: 4ABC: to=<太郎@例え.jp>, status=sent (250 ok)",
                       "plain ascii line", "ü", "", "\x7f\x80 end"]).encode() * 50
    data = np.frombuffer(block, np.uint8)
    rng = random.Random(5)
    starts = np.array([rng.randrange(0, len(block)) for _ in range(5000)] + [0, len(block)], np.int64)
    ends = np.minimum(starts + np.array([rng.randrange(0, 120) for _ in range(len(starts))]), len(block))
    want = np.array([not block[a:b].isascii() for a, b in zip(starts.tolist(), ends.tolist())])
    assert 0 < want.sum() < len(want)
    assert (SCANNER.high_slices(data, starts, ends) == want).all()
    assert (postfix_block._high_finder(data, None)(starts, ends) == want).all()
    # (with the compiled scanner postfix_block asks Python only about odd_slices' slices)
    assert (postfix_block._high_finder(data, SCANNER)(starts, ends) == SCANNER.odd_slices(data, starts, ends)).all()
    with pytest.raises(ValueError):
        SCANNER.high_slices(data, np.array([0]), np.array([len(block) + 1]))


@needs_scanner
def test_odd_slices_let_through_only_characters_python_reads_as_the_c_does():
    """odd_slices flags a slice unless its non-ASCII characters are ones Python's lower(), \\d,
    \\s and IGNORECASE leave alone (what gather's ASCII lower-casing and text_facts rely on):
    every code point is tried, and each one let through is checked against Python."""
    import re

    cps = [cp for cp in range(0x80, 0x110000) if not 0xD800 <= cp < 0xE000]
    raw = [("a" + chr(cp) + "Z").encode() for cp in cps]
    ends = np.cumsum([len(r) for r in raw]).astype(np.int64)
    starts = ends - np.array([len(r) for r in raw], np.int64)
    data = np.frombuffer(b"".join(raw), np.uint8)
    odd = SCANNER.odd_slices(data, starts, ends)
    passed = [cp for cp, o in zip(cps, odd.tolist()) if not o]
    assert passed and min(passed) == 0x3001 and max(passed) == 0x9FFF  # the CJK range; U+3000 is a space
    letters = re.compile(r"[a-z0-9 ]", re.IGNORECASE)
    for cp in passed:
        c = chr(cp)
        assert c.lower() == c and c.upper() == c and not c.isspace() and not c.isdecimal(), hex(cp)
        assert not re.match(r"[\d\s]", c) and not letters.match(c), hex(cp)
    # ASCII slices, empty ones, and slices cut inside a character
    block = "ab 例え.jp たろう　x".encode()
    data = np.frombuffer(block, np.uint8)
    at = block.index("え".encode())
    got = SCANNER.odd_slices(data, np.array([0, 0, 3, 3, at + 1, 0], np.int64),
                             np.array([2, 0, len("ab 例え.jp".encode()), at + 2, at + 3, len(block)], np.int64))
    assert got.tolist() == [False, False, False, True, True, True]


@needs_scanner
def test_queue_ids_coded_in_the_scan_are_dictionary_encode():
    """With buffers the scan codes each fast line's queue id by first appearance (a hash keyed by
    the first and last 8 bytes and the length): Arrow's dictionary_encode of the ids, for long
    ids that differ only inside, short ones, ids that repeat far apart, in one buffer set reused
    by blocks that grow and shrink. (assert_same_scan checks every test block the same way.)"""
    rng = random.Random(21)
    ids = ["4ABC1", "4ABC10", "0123456789ABCDEF012", "0123456780ABCDEF012", "0123456789BBCDEF012",
           "0123456789ABCDEF013", "1123456789ABCDEF012", "3gNqSz4kFwzBcDfGhJ", "3gNqSz4kFxzBcDfGhJ",
           "3gNqSz4kFwzBcDfGhK", "4ABC1D2E3F"]            # (some differ only in bytes 9 to 11)
    for n in (1, 5, 300, 3000, 40):
        lines = []
        for i in range(n):
            q = rng.choice(ids) if rng.random() < 0.7 else f"{rng.randrange(16 ** 10):010X}"
            lines.append(f"Nov 10 09:00:{i % 60:02d} mx1 postfix/qmgr[2]: {q}: removed\n")
        assert_same_scan("".join(lines).encode())
    # buffers that guess a block's lines from longer ones before: the scan refuses, then counts
    buffers = native.ScanBuffers()
    buffers.seen(1 << 20, 10)
    block = b"".join(f"Nov 10 09:00:00 mx1 postfix/qmgr[2]: {i:010X}: removed\n".encode() for i in range(3000))
    assert buffers.guess(len(block)) < 3000
    got, want = SCANNER.scan(block, 65536, buffers), SCANNER.scan(block, 65536)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert len(got["q_names"]) == 3000 and buffers.guess(len(block)) >= 3000


# texts where one character decides a reply code or a phase
TEXT_EDGES = [
    "", "250 ok", "550-5.1.1 x", "2000 x", "550\x1cx", "said: 550 x", "said:550 x", "said 550x", "said: 5501 x",
    "reply=421 x", "reply==421 x", "Remote host said: 554 y", "talk to me: 421 z", "greeting: 421-x", "host said: 600 x",
    "x (in reply to RCPT TO command)", "x (in reply to RCPT TO command))", "x (in reply to RCPT TO command)) \t",
    "x (in reply to RCPT TO command)\x1c", "x (in reply to FOO command)", "(in reply to  command)", "(in reply to command)",
    "a (in reply to end of DATA command) b", "a (in reply to MAIL FROM command)\t", "(in reply to (in reply to DATA command) command)",
    "(in reply to X command) (in reply to DATA command)", "x (in reply to BDAT command) (in reply to QUIT command)",
    "lost connection while sending RCPT TO", "WHILE SENDING message body x", "while sending end of data", "While Sending DATA",
    "while sending  DATA", "refused to talk to me: 554", "x while receiving the initial server greeting",
    "lost connection with x[1.2.3.4] while performing the EHLO handshake", "WHILE PERFORMING THE lhlo HANDSHAKE",
    "while performing the HELO  handshake", "while performing the STARTTLS handshake", "while performing the EHLO",
    "while performing the EHLO handshake then while sending DATA", "while sending DATA then while performing the HELO handshake",
    # the phrases together, in both orders: connect wins wherever it is; the leftmost "while sending" counts
    "while sending RCPT TO x refused to talk to me", "refused to talk to me while sending DATA",
    "while sending DATA, while receiving the initial server greeting", "while sending x while sending MAIL FROM",
    "while sending MAIL FROM then while sending DATA", "Refused to talk to me", "While receiving the initial server greeting",
    "said said: 550 x", "talk to said: 451 x", "Remote host said:reply=550 x", "greetingsaid 421 x", "rreply=421 x",
]


def delivery_texts(tmp_path) -> list[str]:
    """The texts of the delivery lines of the test logs and of realistic generated traffic."""
    out = []
    log = tmp_path / "realistic.log"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_logs.py"), str(log), "--mta", "postfix",
                    "--lines", "20000", "--seed", "5"], check=True)
    for line in real_lines(tmp_path) + log.read_text(encoding="utf-8").splitlines():
        at = line.find(" status=")
        if at > 0:
            m = postfix.STATUS_RE.search(line.rstrip("\n"), at + 1)
            if m and m.group(2) is not None:
                out.append(m.group(2))
    return out


@needs_scanner
def test_text_facts_are_reply_code_of_and_smtp_phase_of(tmp_path):
    """text_facts (the reply code and SMTP phase of each delivery text, in C) against
    common.reply_code_of and postfix.smtp_phase_of, the definitions: on the delivery texts of the
    test logs, on edge cases, and on 30,000 texts mutated where one character decides."""
    texts = sorted(set(delivery_texts(tmp_path))) + TEXT_EDGES
    assert len(texts) > 2000
    rng = random.Random(20261205)
    alphabet = " :=()-_25AZaz0\t"
    for _ in range(30_000):
        chars = list(rng.choice(texts))
        for _ in range(rng.choice((1, 2, 3))):
            at, op = rng.randrange(len(chars) + 1), rng.random()
            if op < 0.4 and at < len(chars):
                chars[at] = rng.choice(alphabet)
            elif op < 0.7 and at < len(chars):
                del chars[at]
            else:
                chars.insert(at, rng.choice(alphabet))
        texts.append("".join(chars))
    # CJK characters (which the C reads as Python does) where one character decides, and
    # characters it does not (a space, digits, letters that fold to ASCII under IGNORECASE)
    cjk = "例え。たろうテスト了解"
    for _ in range(20_000):
        chars = list(rng.choice(texts))
        for _ in range(rng.choice((1, 2, 3))):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(cjk + "\u3000５ſKİı" if rng.random() < 0.2 else cjk))
        texts.append("".join(chars))
    raw = [t.encode() for t in texts]
    ends = np.cumsum([len(r) for r in raw]).astype(np.int64)
    starts = ends - np.array([len(r) for r in raw], np.int64)
    data = np.frombuffer(b"".join(raw), np.uint8)
    odd = SCANNER.odd_slices(data, starts, ends)
    assert odd.sum() > 1000 and (~odd).sum() > 30_000
    keep = np.flatnonzero(~odd)                          # (the others are left to Python)
    texts, starts, ends = [texts[i] for i in keep.tolist()], starts[keep], ends[keep]
    assert sum(not t.isascii() for t in texts) > 15_000
    codes, phases = SCANNER.text_facts(data, starts, ends)
    seen_phases = set()
    for text, code, phase in zip(texts, codes.tolist(), phases.tolist()):
        assert (None if code < 0 else code) == reply_code_of(text), text
        want = smtp_phase_of(text)
        if phase == SCANNER.PHASE_PYTHON:
            assert want not in SCANNER.PHASES, text       # only a word PHASES does not name
        else:
            assert SCANNER.PHASES[phase] == want, text
        seen_phases.add(want)
    assert {"rcpt", "mail", "data", "end_of_data", "connect", None} <= seen_phases
    # rows without a text (valid 0) have none, wherever their slice points
    valid = np.zeros(len(texts), np.uint8)
    codes, phases = SCANNER.text_facts(data, starts + 10**9, ends + 10**9, valid)
    assert (codes == -1).all() and (phases == 0).all()


@needs_scanner
def test_next_odd_byte_search_agrees_with_the_scalar_loop():
    """scan_block looks at a line with kind_of only when it holds the next odd byte (non-ASCII,
    NUL, CR) that next_odd finds: the SSE2 search and the portable loop must both find the first
    one, at every offset and every position within a 16-byte step, and `len` when none."""
    lib = SCANNER.lib
    lib.odd_at.restype = ctypes.c_int64
    lib.odd_at.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    rng = random.Random(13)
    for odd in (0x80, 0xE3, 0xFF, 0x00, 0x0D):
        for size in (0, 1, 15, 16, 17, 47, 100):
            for at in range(size):
                data = bytearray(b"x" * size)
                data[at] = odd
                for start in {0, max(0, at - 17), at, min(size, at + 1)}:
                    want = at if start <= at else size
                    got = [lib.odd_at(bytes(data), size, start, scalar) for scalar in (0, 1)]
                    assert got == [want, want], (odd, size, at, start)
    for _ in range(300):  # lines of a log: ASCII with odd bytes here and there
        data = bytes(rng.choice(b"ab: \n\x7f" + bytes([0x80, 0xC3, 0x0D, 0x00])) for _ in range(rng.randrange(80)))
        start = rng.randrange(len(data) + 1)
        want = next((i for i in range(start, len(data)) if data[i] >= 0x80 or data[i] in (0, 13)), len(data))
        assert [lib.odd_at(data, len(data), start, s) for s in (0, 1)] == [want, want]


@needs_scanner
def test_scan_reads_the_kind_of_each_line_around_odd_bytes():
    """A block whose odd bytes sit at line starts, line ends and next to newlines: each line's
    class is the one it has alone (a line is raw, fed or fast by its own bytes only)."""
    fast = (b"Aug 26 01:33:38 mx postfix/qmgr[12]: 4BcDfGhJkLmNp: from=<a@b.example>, size=1, nrcpt=1 "
            b"(queue active)")
    lines = [fast, b"\xc3\xa9" + fast[2:], fast[:-1] + b"\r", b"\x00" + fast[1:], b"\xff" + fast[1:], fast,
             fast[:40] + b"\xff" + fast[41:], fast]
    alone = [int(SCANNER.scan(line + b"\n", 1 << 16)["cls"][0]) for line in lines]
    together = SCANNER.scan(b"\n".join(lines) + b"\n", 1 << 16)["cls"].tolist()
    assert together == alone
    assert alone[0] == alone[5] == alone[7] != alone[3] == alone[4] == alone[2]
