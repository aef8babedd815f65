"""The Postfix block reader (pipeline/parsers/postfix_block.py) against the per-line parser.

Every test ingests the same file twice, column-wise (the default) and per line only, and
requires the same stored events (every column), the same parser state and the same rejects:
on the sample logs, on generated traffic cut into blocks at many sizes, on lines chosen to leave
the fast path, and on the public corpus. Each runs with the compiled scanner
(pipeline/native) and with the numpy one.
"""

from __future__ import annotations

from functools import partial

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from fixtures import POSTFIX_ODD_LINES, REPO, SAMPLES, corpus_path

import pipeline
from pipeline.ingest import native
from pipeline.core.config import load_config
from pipeline.ingest.engine import ingest
from pipeline.ingest.parsers import ParseContext, postfix_block, postfix_join
from pipeline.ingest.parsers.common import QueueParser
from fixtures import ODD_STAMPS, TOKYO, assert_glued_lines_read, assert_same, generated_log, restamped
from fixtures import ingest_both as ingest_both_formats

CTX = ParseContext(tz=TOKYO, year=2026)


def read_blocks(fh, size):
    """(block, whole) pairs of about `size` bytes of whole lines (the tests' own cut)."""
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        chunk += fh.readline()
        yield chunk, chunk.endswith(b"\n")
from pipeline.store.records import event_id_for, event_ids_for_plain

GEN = REPO / "bench" / "gen_postfix_log.py"


# the numpy scanner (the fallback without a C compiler) in the whole suite, the compiled one in test-fast too
@pytest.fixture(autouse=True, params=["compiled", pytest.param("numpy", marks=pytest.mark.slow)])
def scanner(request, monkeypatch):
    """Every test twice: with the compiled scanner and with the numpy one."""
    if request.param == "numpy":
        monkeypatch.setattr(native, "SCANNER", None)
    elif native.SCANNER is None:
        pytest.skip("compiled scanner not built")
    return request.param


ingest_both = partial(ingest_both_formats, fmt="postfix")


def generated(tmp_path, lines=20_000, seed=3):
    log = tmp_path / f"gen-{lines}-{seed}.log"
    subprocess.run([sys.executable, str(GEN), str(log), "--lines", str(lines), "--seed", str(seed), "--days", "1"], check=True)
    return log


def realistic(tmp_path, lines=20_000, seed=3):
    """A Japanese sender's Postfix 3.7 log (bench/gen_logs.py): UTF-8 subject lines, SMTPUTF8
    recipients, display names, a quarter of the messages deferred, several relays."""
    return generated_log(tmp_path, "postfix", lines, seed)


ODD = POSTFIX_ODD_LINES


def write_log(tmp_path, text, name="mail.log"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_odd_lines_leave_the_fast_path_and_give_the_per_line_result(tmp_path, monkeypatch):
    log = write_log(tmp_path, ODD)
    for size in (100, 700, 4 * 1024 * 1024):  # one line per block (boundaries everywhere) to one block
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    events, rejected = fast[0], fast[2]
    assert rejected == {"malformed": 3}  # the truncated to=, the impossible queue id, the Feb 30 delivery
    cols = pipeline.connect(tmp_path / "data-True-4194304").sql(
        "SELECT recipient, sender, message_id, status FROM events ORDER BY source_offset").fetchall()
    by_rcpt = {r[0]: r for r in cols}
    assert by_rcpt["taro@docomo.ne.jp"][1:3] == ("news@example.jp", "a1@example.jp")       # joined, lower-cased
    assert by_rcpt["taro..yamada.@docomo.ne.jp"][3] == "bounced"                          # quoted local part
    assert by_rcpt["l@docomo.ne.jp"][1:3] == ("", None)                                    # from=<>, message-id=<>
    assert by_rcpt["n@docomo.ne.jp"][1:3] == ("again@example.jp", None)                    # queue id reused after removed
    assert by_rcpt["q@docomo.ne.jp"][1] is None                                            # the from= is 9 days old
    assert "m@docomo.ne.jp" not in by_rcpt and "f@example.com" not in by_rcpt               # Feb 30, probe
    codes = dict(pipeline.connect(tmp_path / "data-True-4194304").sql(
        "SELECT recipient, reply_code FROM events WHERE recipient LIKE 'r_@example.com'").fetchall())
    assert codes == {"r1@example.com": 554, "r2@example.com": 451, "r3@example.com": None, "r4@example.com": None}
    expired = [r for r in cols if r[3] == "expired"]
    assert sorted(r[0] for r in expired) == ["b@au.com", "o@docomo.ne.jp"]                 # p was delivered at last
    assert len(events) == len(cols) == 21 + 2  # 22 delivery lines, one to no address, 2 expiries
    # `to=<postmaster>`, no address (a local delivery: counted, not stored, also from a block of its
    # own); its line is read (a host named postfix…)
    assert not pipeline.connect(tmp_path / "data-True-100").sql(
        "SELECT * FROM events WHERE recipient = 'postmaster'").fetchall()
    rows = []
    from pipeline.ingest.parsers.postfix import PostfixParser
    PostfixParser(CTX, rows.append).feed(next(ln for ln in ODD.splitlines() if "to=<postmaster>" in ln), 0)
    assert [(r["host"], r["recipient"], r["recipient_domain"]) for r in rows] == [("postfix1", "postmaster", "")]


@pytest.mark.slow
@pytest.mark.parametrize("block_bytes", [2048, 64 * 1024, 4 * 1024 * 1024])
def test_generated_traffic_at_any_block_size(tmp_path, monkeypatch, block_bytes):
    """Messages cut by block boundaries, deferrals and expiries hours later, queue ids carried
    from block to block: the same events and the same state."""
    log = generated(tmp_path)
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    statuses = {row[11] for row in fast[0]}
    assert statuses == {"sent", "deferred", "bounced", "expired"}
    assert len(fast[0]) > 2500


@pytest.mark.slow
def test_a_full_queue_table_inside_a_block_is_the_parsers(tmp_path, monkeypatch):
    """At most MAX_QUEUE_IDS live entries: beyond, the least recently seen tenth is dropped. A
    block that could take the table past it goes through the exact loop, so the state and the
    joins match line for line."""
    monkeypatch.setattr(QueueParser, "MAX_QUEUE_IDS", 60)
    monkeypatch.setattr(QueueParser, "PRUNE_EVERY", 37)
    log = generated(tmp_path, lines=8000, seed=5)
    fast, slow = ingest_both(tmp_path, [log], 16 * 1024, monkeypatch)
    assert_same(fast, slow)
    assert len(fast[1]["postfix"]["queue"]) <= 60


@pytest.mark.slow
def test_a_short_join_window_inside_a_block_is_the_parsers(tmp_path, monkeypatch):
    """A join window of ten minutes: queue ids go stale inside blocks (the window is measured
    from the log's clock, the latest time read), and the block reader must agree."""
    monkeypatch.setattr(QueueParser, "STATE_TTL_US", 600 * 1_000_000)
    monkeypatch.setattr(QueueParser, "PRUNE_EVERY", 97)
    log = generated(tmp_path, lines=8000, seed=5)
    fast, slow = ingest_both(tmp_path, [log], 16 * 1024, monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize("old_in", ["block", "state before"])
def test_a_stale_queue_id_is_not_joined_and_not_saved(tmp_path, monkeypatch, old_in):
    """With a ten-minute window, the from= of 09:00 is stale at 09:30: a delivery of that queue
    id at 09:30 gets no sender, and the saved state does not carry it, whether it came in the
    same block or was carried from a run before."""
    monkeypatch.setattr(QueueParser, "STATE_TTL_US", 600 * 1_000_000)
    old = "Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D00: from=<old@example.jp>, size=1, nrcpt=1 (queue active)\n"
    late = "".join(f"Nov 10 09:{m:02d}:00 mx1 postfix/cleanup[1]: 1A2B3C4D{i:02d}: message-id=<m{i}@example.jp>\n"
                   for i, m in ((1, 30), (2, 30), (3, 30), (4, 31), (5, 31), (6, 32)))
    late += ("Nov 10 09:33:00 mx1 postfix/smtp[3]: 1A2B3C4D00: to=<x@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
             "delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)\n")
    results = []
    for columnar in (True, False):
        data = tmp_path / f"data-{columnar}"
        cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
        if old_in == "block":
            ingest(cfg, [write_log(tmp_path, old + late, f"a-{columnar}.log")], fmt="postfix", year=2026, columnar=columnar)
        else:
            ingest(cfg, [write_log(tmp_path, old, f"a-{columnar}.log")], fmt="postfix", year=2026, columnar=columnar)
            ingest(cfg, [write_log(tmp_path, late, f"b-{columnar}.log")], fmt="postfix", year=2026, columnar=columnar)
        state = json.loads((data / "state" / "ingest-state.json").read_text())["parsers"]["postfix"]
        sender = pipeline.connect(data).sql("SELECT sender FROM events").fetchall()
        results.append((state, sender))
    assert results[0] == results[1]
    state, sender = results[0]
    assert sender == [(None,)]
    assert state["queue"]["1A2B3C4D00"]["sender"] is None and "1A2B3C4D06" in state["queue"]


@pytest.mark.slow
@pytest.mark.parametrize("block_bytes", [4096, 256 * 1024, 4 * 1024 * 1024])
def test_realistic_japanese_traffic_at_any_block_size(tmp_path, monkeypatch, block_bytes):
    """UTF-8 in many blocks (subjects, display names, SMTPUTF8 addresses, Japanese replies): the
    decision is per line, and the result is the per-line parser's."""
    log = realistic(tmp_path)
    assert not log.read_bytes().isascii()
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} == {"sent", "deferred", "bounced", "expired"}
    assert any(not row[7].isascii() for row in fast[0])  # SMTPUTF8 recipients stored


def test_the_fast_path_takes_the_common_lines_of_japanese_logs(tmp_path):
    """Non-ASCII lines do not push their neighbours off the fast path, and delivery lines with a
    UTF-8 address or reply are read column-wise too: fed lines are the expiries, nothing else."""
    log = realistic(tmp_path)
    with open(log, "rb") as fh:
        blocks = [b for b, _ in read_blocks(fh, 1 << 20)]
    kinds = np.concatenate([postfix_block.extract(b, 65536, CTX).kinds for b in blocks])
    fed = int(np.count_nonzero(kinds == postfix_block.K_FEED))
    lines = log.read_bytes().splitlines()
    expected = sum(1 for ln in lines if b"status=expired" in ln)
    assert fed == expected and fed < 0.05 * len(kinds)


def fed_and_fast_stamps(log) -> tuple[int, int, int]:
    """(fed lines, expiry lines, fast lines with an RFC 3339 stamp) of a log read in 1 MiB blocks."""
    with open(log, "rb") as fh:
        blocks = [b for b, _ in read_blocks(fh, 1 << 20)]
    fields = [postfix_block.extract(b, 65536, CTX) for b in blocks]
    fed = sum(int(np.count_nonzero(f.kinds == postfix_block.K_FEED)) for f in fields)
    iso_fast = sum(sum(1 for i, k in zip(f.order.tolist(), f.kinds.tolist())
                       if k != postfix_block.K_FEED and b[f.line_starts[i]:f.line_starts[i] + 1].isdigit())
                   for b, f in zip(blocks, fields))
    expiries = sum(1 for ln in log.read_bytes().splitlines() if b"status=expired" in ln)
    return fed, expiries, iso_fast


@pytest.mark.parametrize("block_bytes", [4096, pytest.param(1 << 20, marks=pytest.mark.slow)])
def test_rfc3339_stamps_at_any_block_size(tmp_path, monkeypatch, block_bytes):
    """rsyslog's default stamps since Debian 12 (`2026-11-01T00:00:02.140891+09:00`) are read
    column-wise like traditional ones, with the per-line parser's result: the same rows, times to
    the microsecond, parser state and rejects."""
    log = generated_log(tmp_path, "postfix", lines=8000, stamps="rfc3339")
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} == {"sent", "deferred", "bounced", "expired"}
    assert sum(1 for row in fast[0] if row[1].microsecond) > 0.9 * len(fast[0])


def test_the_fast_path_takes_rfc3339_lines(tmp_path):
    """With RFC 3339 stamps, as with traditional ones, the only lines fed one by one are the
    expiries: every other line of interest is on the fast path."""
    log = generated_log(tmp_path, "postfix", stamps="rfc3339")
    fed, expiries, iso_fast = fed_and_fast_stamps(log)
    assert fed == expiries
    assert iso_fast > 10_000


def test_traditional_stamps_with_a_fraction_take_the_fast_path(tmp_path, monkeypatch):
    """journalctl -o short-precise (`Nov 10 09:00:00.123456 host …`): read column-wise, with the
    per-line parser's result; the only lines fed one by one are the expiries."""
    text = generated_log(tmp_path, "postfix", lines=6000).read_text()
    log = write_log(tmp_path, "".join(ln[:15] + f".{i % 1000:03d}" + ln[15:]
                                      for i, ln in enumerate(text.splitlines(keepends=True))))
    fast, slow = ingest_both(tmp_path, [log], 64 * 1024, monkeypatch)
    assert_same(fast, slow)
    assert sum(1 for row in fast[0] if row[1].microsecond) > 0.9 * len(fast[0])
    fed, expiries, _ = fed_and_fast_stamps(log)
    assert fed == expiries


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/New_York"])
def test_odd_stamps_give_the_per_line_result(tmp_path, monkeypatch, timezone):
    """Every shape of RFC 3339 stamp (zones, no zone: local time, also where it does not exist or
    is there twice; long and short fractions; no date or time: Feb 30, a leap second, hour 24,
    zone +24:00; a space for T) in odd lines and in joined traffic: the block reader's result is
    the per-line parser's, and the stamps it can read take the fast path."""
    traffic = generated_log(tmp_path, "postfix", lines=1500, ascii_only=True).read_text()
    log = write_log(tmp_path, restamped(ODD) + restamped(traffic))
    for size in (300, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch, timezone=timezone)
        assert_same(fast, slow)
    stamps = {row[1] for row in fast[0]}
    assert len(stamps) >= 12
    fed, _, iso_fast = fed_and_fast_stamps(log)
    assert iso_fast > 400 and fed > 50  # the stamps that are no date or time are fed


UTF8_ODD = """\
Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: from=<Ｎｅｗｓ@例え.jp>, size=100, nrcpt=3 (queue active)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<ΣΟΦΙΑΣ@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 了解)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<İnfo@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (host mx.例え.jp[192.0.2.1] said: 5５０ ユーザーがいません (in reply to RCPT TO command))
Nov 10 09:00:02 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<山田　@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.2.0, status=deferred (host mx.例え.jp[192.0.2.1] said: 450 一時的なエラー (in reply to end of DATA command))
Nov 10 09:00:02 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<　山田@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:03 mx1 postfix/smtp[3]: 1A2B3C4D02: to=<たろう@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect to mfsmax.docomo.ne.jp[203.138.181.112]:25: Connection timed out)
Nov 10 09:00:04 mx1 postfix/smtp[3]: 1A2B3C4D02: to=<たろう@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (host x said: 550 ＵＳＥＲ　ＵＮＫＮＯＷＮ WHİLE SENDİNG RCPT TO)
Nov 10 09:00:05 mx1 postfix/qmgr[2]: 1A2B3C4D02: from=<news@example.jp>, status=expired, returned to sender
Nov 10 09:00:06 mx1 postfix/qmgr[2]: 1A2B3C4D03: from=<INFO.お知らせ@例え.JP>, size=100, nrcpt=3 (queue active)
Nov 10 09:00:07 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<TARO.やまだ@例え.JP>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.例え.jp[192.0.2.1] said: 550 5.1.1 <TARO.やまだ@例え.JP>: ユーザー不明です (in reply to RCPT TO command))
Nov 10 09:00:07 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<Hanako@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (例え said:451 一時エラー while sending end of data)
Nov 10 09:00:08 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<jiro@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (例え said: 4５1 x (in reply to DATA command)　)
Nov 10 09:00:08 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<saburo@例え.jp>, relay=mx.例え.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (421 了解 (in reply to 例え command))
Nov 10 09:00:09 mx1 postfix/cleanup[4]: 1A2B3C4D03: message-id=<x@例え.jp>
Nov 10 09:00:09 mx1 postfix/qmgr[2]: 1A2B3C4D03: removed
"""


def test_utf8_lines_read_column_wise_give_the_per_line_result(tmp_path, monkeypatch):
    """Addresses whose lower case Python makes differently (final sigma, dotted I, fullwidth
    letters), a non-ASCII space at an address's end, full-width digits in a reply, case rules in
    a text; CJK characters (read in C) beside upper-case ASCII in addresses and around the
    words a reply code or phase is found by: the block reader's result is the per-line parser's."""
    log = write_log(tmp_path, UTF8_ODD)
    for size in (200, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    assert len(fast[0]) >= 6


def test_state_carries_over_between_runs_and_files(tmp_path, monkeypatch):
    """A file read in two runs (the second after more lines were appended) and a rotated pair:
    queue ids open at the end of one run are joined in the next."""
    log = generated(tmp_path, lines=6000, seed=7)
    lines = log.read_bytes().splitlines(keepends=True)
    results = []
    for columnar in (True, False):
        data = tmp_path / f"runs-{columnar}"
        cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
        part = tmp_path / f"growing-{columnar}.log"
        part.write_bytes(b"".join(lines[:2501]))
        ingest(cfg, [part], fmt="postfix", year=2026, columnar=columnar)
        with open(part, "ab") as fh:
            fh.write(b"".join(lines[2501:]))
        ingest(cfg, [part], fmt="postfix", year=2026, columnar=columnar)
        events = pipeline.connect(data).sql(
            "SELECT * EXCLUDE (source_file) FROM events ORDER BY event_id").fetchall()
        results.append((events, json.loads((data / "state" / "ingest-state.json").read_text())["parsers"]["postfix"]["queue"]))
    assert results[0] == results[1]
    assert any(row[5] for row in results[0][0])  # message ids joined


def test_sample_logs_give_the_same_events(tmp_path):
    fast, slow = ingest_both(tmp_path, sorted((SAMPLES / "postfix").iterdir()))
    assert_same(fast, slow)
    assert len(fast[0]) > 20


def test_public_corpus_gives_the_same_events(tmp_path):
    with open(corpus_path("postfix-grok-patterns", "lines.tsv"), newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    grok = write_log(tmp_path, "".join(f"Nov 10 09:00:{i % 60:02d} mx1 postfix/{r['component']}[1]: {r['message']}\n"
                                       for i, r in enumerate(rows)), "grok.log")
    files = [grok, corpus_path("crowdsec-hub", "postfix-logs.log"), corpus_path("fail2ban", "postfix")]
    fast, slow = ingest_both(tmp_path, files)
    assert_same(fast, slow)
    assert len(fast[0]) >= 14


def test_sisimai_diagnostics_as_delivery_texts_give_the_same_events(tmp_path):
    """562 real remote replies as the texts of bounces and deferrals: the reply codes, phases and
    classes the block reader derives from them are the per-line parser's."""
    with open(corpus_path("sisimai-diagnostics", "diagnostics.tsv"), newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    lines = []
    for i, r in enumerate(rows):
        text = r["diagnostic"].replace("\n", " ")
        if not text.isascii():
            continue  # a block with non-ASCII bytes is read line by line anyway
        status = "deferred" if i % 3 == 0 else "bounced"
        lines.append(f"Nov 10 09:{i // 60 % 60:02d}:{i % 60:02d} mx1 postfix/smtp[1]: {0x10000 + i:X}A: to=<u{i}@{r['recipient_domain']}>, "
                     f"relay={r['rhost'] or 'none'}[192.0.2.1]:25, delay=1, delays=1/0/0/0, dsn={r['status'] or '5.0.0'}, "
                     f"status={status} ({text})\n")
    log = write_log(tmp_path, "".join(lines))
    assert postfix_block.extract(log.read_bytes(), 65536, CTX) is not None  # the block reader reads it
    fast, slow = ingest_both(tmp_path, [log])
    assert_same(fast, slow)
    assert len(fast[0]) > 450


# replies where one character decides the reply code or the SMTP phase (the compiled
# text_facts reads them; tests/test_postfix_scan.py holds it to the definitions text by text)
REPLY_EDGES = [
    "250 ok", "550-5.1.1 x", "2000 x", "said: 550 x", "said:550 x", "said 550x", "said: 5501 x", "reply=421 x",
    "Remote host said: 554 y", "talk to me: 421 z", "greeting: 421-x", "x (in reply to RCPT TO command))",
    "x (in reply to RCPT TO command)) \t", "host said: 450 busy (in reply to FOO command)", "(in reply to  command)",
    "a (in reply to end of DATA command) b", "(in reply to (in reply to DATA command) command)",
    "x (in reply to BDAT command) (in reply to QUIT command)", "lost connection while sending RCPT TO",
    "WHILE SENDING message body x", "While Sending DATA", "refused to talk to me: 554", "",
    "x while receiving the initial server greeting", "said: ５５０ 全角の数字", "said: 550 利用者なし (in reply to RCPT TO command)",
    "ſaid: 550 x while ſending DATA", "x (in reply to XYZZY command)",
]


def test_reply_edges_give_the_same_codes_and_phases(tmp_path):
    """Reply codes and phases of odd replies, ASCII and UTF-8 (with SMTPUTF8 recipients too, some
    with letters only Python lower-cases), deferred, bounced and sent: the block reader's are the
    per-line parser's."""
    lines = []
    for i, text in enumerate(REPLY_EDGES * 3):
        status = ("deferred", "bounced", "sent")[i % 3]
        # ASCII, Japanese (no case), and letters whose Python lower() is not ASCII lower-casing
        rcpt = (f"U{i}@Example.JP", f"利用者{i}@例え.jp", f"ÄＵser{i}@ＥＸ.jp")[i % 3 if i % 2 else (i + 1) % 3]
        lines.append(f"Nov 10 09:{i // 60 % 60:02d}:{i % 60:02d} mx1 postfix/smtp[1]: {0x10000 + i:X}A: to=<{rcpt}>, "
                     f"relay=mx.example.jp[192.0.2.1]:25, delay=1, delays=1/0/0/0, dsn=5.0.0, status={status} ({text})\n")
    log = write_log(tmp_path, "".join(lines))
    fast, slow = ingest_both(tmp_path, [log])
    assert_same(fast, slow)
    assert len(fast[0]) == len(lines)


def test_minutes_are_read_per_file_and_repeat_across_blocks(tmp_path, monkeypatch):
    """The block reader works out each minute stamp of a file once and reuses it in later blocks:
    two files with the same stamps but modification times a year apart (so `Dec 31` is another
    year in each), read in one run without --year and in blocks of a few lines, with a minute
    that is no date (Feb 30) in several blocks, give the per-line parser's events."""
    import os
    from datetime import datetime

    import pipeline.ingest.source as source_mod

    lines = []
    for i in range(40):
        stamp = "Feb 30 09:00:10" if i % 10 == 3 else f"Dec 31 23:{58 + i % 2}:{i:02d}"
        lines.append(f"{stamp} mx1 postfix/qmgr[2]: {0x20000 + i:X}B: from=<s{i}@example.jp>, size=1, nrcpt=1 (queue active)\n")
        lines.append(f"{stamp} mx1 postfix/smtp[1]: {0x20000 + i:X}B: to=<u{i}@example.jp>, relay=mx.example.jp[192.0.2.1]:25, "
                     f"delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)\n")
    paths = []
    for name, when in (("jan.log", datetime(2026, 1, 2, tzinfo=TOKYO)), ("dec.log", datetime(2026, 12, 31, 23, 59, 59, tzinfo=TOKYO))):
        # (another host per file: the same line in two files is one event, stored once)
        path = write_log(tmp_path, "".join(lines).replace(" mx1 ", f" {name[:3]} "), name)
        os.utime(path, (when.timestamp(), when.timestamp()))
        paths.append(path)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 600)
    out = []
    for columnar in (True, False):
        data = tmp_path / f"data-{columnar}"
        ingest(load_config(None, data_dir=data, timezone="Asia/Tokyo"), paths, fmt="postfix", columnar=columnar)
        out.append(pipeline.connect(data).sql(
            "SELECT source_file, year(ts AT TIME ZONE 'Asia/Tokyo') AS y, count(*) FROM events GROUP BY ALL ORDER BY ALL").fetchall())
    assert out[0] == out[1]
    years = {(p.rsplit("/", 1)[-1], y) for p, y, _ in out[0]}
    assert years == {("jan.log", 2025), ("dec.log", 2026)}
    assert sum(n for _, _, n in out[0]) == 2 * 36  # the Feb 30 lines are no date: skipped


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York", "Asia/Kathmandu"])
def test_minute_times_are_syslog_us_of_each_minute(zone):
    """blocks.minute_times asks the context once per hour and adds the minutes: the same time
    and no-date flag as ParseContext.syslog_us of each minute, across DST changes (a local
    hour that is not there, one that is there twice), zones off the hour, no dates (Feb 30,
    hour 25, no such month), with a forced year and with the year from the modification time.
    An hour with a local time that is there twice (in reach of its stamps: up to `hh:99:99`) is
    flagged as a no-date's: its lines go to the parser, which tells the two apart (unfold)."""
    from zoneinfo import ZoneInfo

    from pipeline.ingest.parsers import blocks

    keys = [f"{mon} {day:>2} {hh:02d}:{mm:02d}" for mon in ("Mar", "Nov", "Feb", "Dec", "Foo")
            for day in (1, 8, 29, 30) for hh in (0, 1, 2, 3, 23, 25) for mm in (0, 1, 30, 59, 75)]
    keys += ["Mar 8 02:30", "Nov 01 01:3x", "Mar  8 0２:30"]   # odd texts: each minute on its own
    for year, mtime in ((2026, None), (None, 1_780_000_000.0)):
        ctx = ParseContext(tz=ZoneInfo(zone), year=year, mtime=mtime)
        want_us, want_no = [], []
        for key in keys:
            own = ParseContext(tz=ZoneInfo(zone), year=year, mtime=mtime)
            try:
                t = own.syslog_us(key[:3], key[4:6].lstrip(), key[7:12] + ":00", None)
                by_hour = len(key) == 12 and key[10:12].isascii() and key[10:12].isdigit()
                first = own.syslog_us(key[:3], key[4:6].lstrip(), key[7:10] + "00:00", None) if by_hour else t
                twice = any(own.fold_shift(first + k * 60_000_000) for k in range(101 if by_hour else 3))
                want_us.append(0 if twice and by_hour else t)
                want_no.append(twice)
            except ValueError:
                want_us.append(0)
                want_no.append(True)
        us, no_date = blocks.minute_times(ctx, keys)
        assert us.tolist() == want_us and no_date.tolist() == want_no
        assert 0 < sum(want_no) < len(keys)


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_block_minutes_are_minute_times_of_each_line(zone):
    """blocks.block_minutes (traditional keys by hour, the minutes added with numpy; RFC 3339
    keys one by one) gives each fast line of a block the time minute_times gives its stamp's
    `Mon DD hh:mm`, with the scanner's keys and scan_numpy's, in two blocks of one context."""
    from zoneinfo import ZoneInfo

    from pipeline.ingest.parsers import blocks

    stamps = [f"{mon} {day:>2} {hh:02d}:{mm:02d}:{ss:02d}" for mon in ("Mar", "Nov", "Feb", "Foo")
              for day in (1, 8, 30) for hh in (1, 2, 25) for mm in (0, 30, 59, 75) for ss in (0, 7)]
    stamps += ["2026-03-08T02:30:00", "2026-11-10T09:00:01Z", "2026-02-30T09:00:07+09:00"]
    block = "".join(f"{st} mx1 postfix/qmgr[2]: 1A2B3C4D{i:02X}: removed\n" for i, st in enumerate(stamps)).encode()
    scanners = [postfix_block.scan_numpy] + ([native.SCANNER.scan] if native.SCANNER else [])
    for scan in scanners:
        ctx = ParseContext(tz=ZoneInfo(zone), year=2026)
        for half in (block[:len(block) // 2 + 1 + block[len(block) // 2:].index(b"\n")], block):
            s = scan(half, 1 << 20)
            starts = s["line_starts"][s["f_line"]]
            minutes, minute_us, no_date = blocks.block_minutes(ctx, half, starts, s["f_key"])
            texts = [half[x:x + 12].decode() for x in starts.tolist()]
            want_us, want_no = blocks.stamp_times(ParseContext(tz=ZoneInfo(zone), year=2026), s["f_key"].tolist(), texts)
            assert minute_us[minutes].tolist() == want_us.tolist()
            assert no_date[minutes].tolist() == want_no.tolist()
        assert 0 < no_date.sum() < len(no_date) and len(starts) == len(stamps) - 1  # (Feb 30 in RFC 3339 is fed)


def test_the_fast_path_takes_the_common_lines(tmp_path):
    """On ordinary traffic nearly every interesting line is read column-wise (else the block
    reader would be correct but no faster): fed lines are the expiries and little else."""
    log = generated(tmp_path, lines=20_000)
    with open(log, "rb") as fh:
        blocks = [b for b, _ in read_blocks(fh, 1 << 20)]
    kinds = np.concatenate([postfix_block.extract(b, 65536, CTX).kinds for b in blocks])
    fed = int(np.count_nonzero(kinds == postfix_block.K_FEED))
    expiries = log.read_text().count("status=expired")
    assert len(kinds) > 10_000
    assert fed == expiries


def test_fields_of_a_block_stay_as_they_were_when_the_thread_reads_the_next(tmp_path):
    """extract() reuses the scanner's arrays in the next block of the same thread: what it
    returned for a block (every array, every column) is the same after the thread has read
    other blocks, and the same as what a fresh thread makes of it."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    text = generated_log(tmp_path, "postfix", lines=6000).read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 1
    first, second = text[:cut], text[cut:]                 # (the second fits the first's arrays)

    def snapshot(fields):
        out = []
        for value in vars(fields).values():
            for v in (value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else [value]):
                out.append(v.to_pylist() if hasattr(v, "to_pylist") else v.tolist() if hasattr(v, "tolist") else v)
        return pickle.dumps(out)

    ctx = ParseContext(tz=TOKYO, year=2026)
    with ThreadPoolExecutor(1) as one:
        fields = one.submit(postfix_block.extract, first, 1 << 20, ctx).result()
        before = snapshot(fields)
        assert fields.delivery["status_code"].size > 100
        one.submit(postfix_block.extract, second, 1 << 20, ctx).result()
    assert snapshot(fields) == before
    with ThreadPoolExecutor(1) as fresh:
        assert snapshot(fresh.submit(postfix_block.extract, first, 1 << 20, ParseContext(tz=TOKYO, year=2026)).result()) == before


def test_a_block_with_a_stop_line_start_is_left_to_the_engine():
    """extract(block, stops=…) is None exactly when a line of the block starts with one of the
    stops (the engine's old test: the block starts with one, or holds newline + one), whatever
    the line is (fast, fed, raw, empty, the last one without a newline), and else the same
    fields as without stops; the compiled scanner looks at line starts in its own pass."""
    import random

    rng = random.Random(8)
    plain = ("Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: removed\n"
             "Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<a@b.jp>, relay=none, delay=1, delays=0/0/0/1, "
             "dsn=4.4.1, status=deferred (connect to b.jp: Connection timed out)\n").encode()
    pieces = [plain, b"\n", b"x\x00y\n", "たろう\n".encode(), b"<34>1 2026-11-10T09:00:00Z mx1 postfix 1 - - x\n",
              b"@4000000063b2c3d40000 new msg 1\n", b"@400\n", b"@\n", b"<\n", b" <x\n", b"x@4000 y\n", b"4000\n"]
    stops_sets = [(b"<",), (b"<", b"@4000"), (b"@4000",)]
    ctx = ParseContext(tz=TOKYO, year=2026)
    checked = stopped = 0
    for _ in range(1500):
        block = b"".join(rng.choice(pieces[:1] * 6 + pieces) for _ in range(rng.randrange(1, 8)))
        if rng.random() < 0.2:
            block += rng.choice([b"<x", b"@4000", b"@40", b"tail"])     # a last line without a newline
        stops = rng.choice(stops_sets)
        want = block.startswith(stops) or any(b"\n" + p in block for p in stops)
        got = postfix_block.extract(block, 1 << 20, ctx, stops=stops)
        if b"\n" not in block:
            continue
        assert (got is None) == want, (block, stops)
        if got is not None:
            again = postfix_block.extract(block, 1 << 20, ctx)
            assert got.kinds.tolist() == again.kinds.tolist() and got.delivery["relay"].equals(again.delivery["relay"])
        checked += 1
        stopped += want
    assert 0.2 * checked < stopped < 0.8 * checked


def test_blocks_with_other_mtas_or_rfc5424_lines_are_read_line_by_line(tmp_path, monkeypatch):
    """An `auto` Postfix log with qmail multilog lines (`@4000…` at a line start, looked for by
    the scanner), sendmail lines (` sendmail[`, looked for in the block) and an RFC 5424 line
    (`<22>1 …`) in some blocks: those blocks are routed line by line, and the events are the
    per-line reader's, qmail's and sendmail's included."""
    traffic = generated_log(tmp_path, "postfix", lines=4000, ascii_only=True).read_text().splitlines(keepends=True)
    qmail = (SAMPLES / "qmail" / "current").read_text().splitlines(keepends=True)
    sendmail = (SAMPLES / "sendmail" / "maillog").read_text().splitlines(keepends=True)
    rfc5424 = "<22>1 2026-11-10T09:00:00+09:00 mx1 postfix/qmgr 2 - - 1A2B3C4D01: removed\n"
    # (after the 2,000 lines the engine tells the file's MTA by: a Postfix file)
    lines = traffic[:2300] + qmail + traffic[2300:2800] + [rfc5424] + traffic[2800:3300] + sendmail + traffic[3300:]
    log = write_log(tmp_path, "".join(lines))
    for size in (4000, 1 << 20):
        fast, slow = ingest_both_formats(tmp_path, [log], size, monkeypatch, fmt="auto")
        assert_same(fast, slow)
    mtas = {row[2] for row in fast[0]}
    assert {"postfix", "qmail", "sendmail"} <= mtas, mtas


def test_the_decision_is_per_line_not_per_block():
    """A line with bad bytes (invalid UTF-8, NUL, CR, over-long) goes through the front door;
    a line with valid UTF-8 (a Japanese subject, an SMTPUTF8 address) is read like any other;
    the clean lines around them stay on the fast path."""
    good = b"Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: removed\n"
    subject = ("Nov 10 09:00:00 mx1 postfix/cleanup[1]: 1A2B3C4D01: info: header Subject: 配信のお知らせ "
               "from localhost[127.0.0.1]; from=<news@example.jp> to=<taro@docomo.ne.jp> proto=ESMTP helo=<x>\n").encode()
    utf8_rcpt = ("Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<太郎@例え.jp>, relay=mx.example.jp[192.0.2.1]:25, "
                 "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n").encode()
    bad = [good.replace(b"mx1", b"m\xff"), good.replace(b"\n", b"\r\n"), good.replace(b"mx1", b"m\x00"),
           b"x" * 70000 + b"\n"]
    block = good + subject + utf8_rcpt + b"".join(bad) + good
    f = postfix_block.extract(block, 65536, CTX)
    assert f is not None and f.n_lines == 8
    cls = (native.SCANNER.scan(block, 65536) if native.SCANNER else postfix_block.scan_numpy(block, 65536))["cls"]
    # (the subject line is one PostfixParser.feed skips: no to=/from= field after its queue id)
    assert cls.tolist() == [postfix_block.C_FAST, postfix_block.C_SKIP, postfix_block.C_FAST,
                            *[postfix_block.C_RAW] * 4, postfix_block.C_FAST]


def test_gather_strings_cuts_any_slices():
    rng = np.random.default_rng(1)
    data = rng.integers(97, 123, 5000).astype(np.uint8)
    starts = np.sort(rng.integers(0, 4900, 300))
    ends = starts + rng.integers(0, 60, 300)
    valid = rng.random(300) > 0.2
    got = postfix_block.gather_strings(data, starts, ends, valid).to_pylist()
    text = data.tobytes().decode()
    assert got == [text[s:e] if v else None for s, e, v in zip(starts, ends, valid)]
    assert postfix_block.gather_strings(data, starts[:0], ends[:0]).to_pylist() == []


def test_event_ids_of_the_block_reader_are_the_stable_ids():
    lines = [b"Nov 10 09:00:00 mx1 postfix/smtp[3]: 1A: to=<a@b>, status=sent", b"x" * 3000, b"y"]
    rcpts = ["a@b", "c@d", "e@f"]
    assert event_ids_for_plain(lines, rcpts).to_pylist() == [event_id_for(line, r) for line, r in zip(lines, rcpts)]


# Queue ids joined column-wise (no line of theirs is fed, no message-id after a delivery) whose
# recipients are deferred in turns: 1A2B3C4E01 has a, b, a again (a's last deferral is kept),
# then c sent; 1A2B3C4E02 one recipient deferred twice; 1A2B3C4E03 two recipients, one
# delivered at last; 1A2B3C4E04 one recipient deferred then sent (nothing kept).
MANY_RECIPIENTS = "".join(
    f"Nov 10 09:{i // 60:02d}:{i % 60:02d} mx1 postfix/{line}\n" for i, line in enumerate([
        "cleanup[4]: 1A2B3C4E01: message-id=<m1@example.jp>",
        "qmgr[2]: 1A2B3C4E01: from=<news@example.jp>, size=100, nrcpt=3 (queue active)",
        "cleanup[4]: 1A2B3C4E02: message-id=<m2@example.jp>",
        "qmgr[2]: 1A2B3C4E02: from=<info@example.jp>, size=100, nrcpt=1 (queue active)",
        "qmgr[2]: 1A2B3C4E03: from=<info@example.jp>, size=100, nrcpt=2 (queue active)",
        "qmgr[2]: 1A2B3C4E04: from=<info@example.jp>, size=100, nrcpt=1 (queue active)",
        "smtp[3]: 1A2B3C4E01: to=<a@docomo.ne.jp>, relay=mx1.docomo.ne.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (450 first a)",
        "smtp[3]: 1A2B3C4E02: to=<z@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (450 first z)",
        "smtp[3]: 1A2B3C4E01: to=<b@docomo.ne.jp>, relay=mx1.docomo.ne.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (451 b)",
        "smtp[3]: 1A2B3C4E03: to=<p@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (450 p)",
        "smtp[3]: 1A2B3C4E03: to=<q@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (450 q)",
        "smtp[3]: 1A2B3C4E01: to=<a@docomo.ne.jp>, relay=mx2.docomo.ne.jp[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (452 last a)",
        "smtp[3]: 1A2B3C4E04: to=<y@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (450 y)",
        "smtp[3]: 1A2B3C4E01: to=<c@docomo.ne.jp>, relay=mx1.docomo.ne.jp[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        "smtp[3]: 1A2B3C4E02: to=<z@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=4.0.0, status=deferred (451 last z)",
        "smtp[3]: 1A2B3C4E03: to=<p@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        "smtp[3]: 1A2B3C4E04: to=<y@au.com>, relay=mx.au.com[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
    ]))


def test_recipients_deferred_in_turns_keep_each_ones_last_deferral(tmp_path, monkeypatch):
    """Several recipients of one queue id deferred in turns (a, b, a), read column-wise in one
    block: each recipient's last deferral is kept, in the order the recipients first came, as
    the per-line parser keeps them."""
    log = write_log(tmp_path, MANY_RECIPIENTS)
    fast, slow = ingest_both(tmp_path, [log], 1 << 20, monkeypatch)
    assert_same(fast, slow)
    queue = fast[1]["postfix"]["queue"]
    kept = {q: [(r, row["diagnostic"]) for r, row in st["deferred"].items()] for q, st in queue.items()}
    assert kept == {"1A2B3C4E01": [("a@docomo.ne.jp", "452 last a"), ("b@docomo.ne.jp", "451 b")],
                    "1A2B3C4E02": [("z@au.com", "451 last z")], "1A2B3C4E03": [("q@au.com", "450 q")],
                    "1A2B3C4E04": []}


def test_codes_within_groups_tell_equal_values_of_a_group():
    values = pa.array(["a", "b", "a", "c", "c", None, None, "x", "x", "y", None, "a"])
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4])
    codes = postfix_join._codes_within_groups(values, groups)
    py = values.to_pylist()
    for i in range(len(py)):
        for j in range(len(py)):
            if groups[i] == groups[j]:
                assert (codes[i] == codes[j]) == (py[i] == py[j]), (i, j)
    assert postfix_join._codes_within_groups(pa.array(["a", "a"]), np.array([0, 1])).tolist() == [0, 0]


def test_a_fed_line_is_read_once(tmp_path, monkeypatch):
    """The block reader reads the prefix (queue id, time) of the lines it feeds; feed() takes
    that reading instead of making it again, and nothing of it is left on the parser after."""
    from pipeline.ingest.parsers import postfix
    seen = []
    real = postfix.read_prefix

    def counting(ctx, line):
        seen.append(line)
        return real(ctx, line)

    monkeypatch.setattr(postfix, "read_prefix", counting)
    monkeypatch.setattr(postfix_block, "read_prefix", counting)
    log = write_log(tmp_path, UTF8_ODD)
    fast, slow = ingest_both(tmp_path, [log], 1 << 20, monkeypatch)
    assert_same(fast, slow)
    expired = [line for line in seen if "status=expired" in line]
    assert len(expired) == 2  # once column-wise, once per line
    # read_block itself: the readings are the parser's only while its lines are fed
    from pipeline.ingest.parsers.common import decode_line
    rows = []
    parser = postfix.PostfixParser(CTX, rows.append)
    during = []

    def feed_line(raw, at):
        during.append(len(parser.read_heads))
        parser.feed(decode_line(raw)[0], at)

    block = UTF8_ODD.encode()
    monkeypatch.setattr(postfix_block, "NOT_PARSED", ())  # (no annotate here)
    postfix_block.read_block(parser, block, 0, postfix_block.extract(block, 65536, CTX), feed_line)
    assert during and min(during) > 0 and parser.read_heads == {}


def test_latest_is_the_accumulate():
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 50, 1000):
        flags = rng.random(n) < 0.3
        i = np.arange(n)
        at = np.sort(rng.choice(n, min(n, 20), replace=False)) if n else np.zeros(0, np.int64)
        want = np.maximum.accumulate(np.where(flags, i, -1))[at] if n else at
        assert postfix_join._Latest(flags).at(at).tolist() == want.tolist()


def test_running_max_is_the_accumulate():
    for x in ([], [5], [1, 2, 2, 3], [3, 1, 2, 5, 4, 4, 9], [7, 7, 7], [2, 1]):
        x = np.array(x, np.int64)
        assert postfix_join.running_max(x).tolist() == np.maximum.accumulate(x).tolist()


# Real-world shapes the tests above do not carry: deliveries logged by the queue manager (qmgr,
# the old oqmgr) or by an agent under another program name, soft_bounce=yes's SOFTBOUNCE, a queue
# id reused after `postsuper -d`, Solaris' `[ID n mail.info]` after the tag, a line without host,
# among usual lines of the same queue ids (which the fast path takes)
REAL_VARIANTS = """\
Nov 10 09:00:00 mx1 postfix/cleanup[1]: 3C6D1C0D01: message-id=<v1@example.jp>
Nov 10 09:00:00 mx1 postfix/oqmgr[2]: 3C6D1C0D01: from=<news@example.jp>, size=10, nrcpt=3 (queue active)
Nov 10 09:00:01 mx1 postfix/qmgr[2]: 3C6D1C0D01: to=<a@example.com>, relay=none, delay=10, delays=10/0/0/0, dsn=4.3.0, status=deferred (unknown mail transport error)
Nov 10 09:00:01 mx1 postfix/smtp-out[9]: 3C6D1C0D01: to=<b@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.3] said: 550 5.1.1 no such user (in reply to RCPT TO command))
Nov 10 09:00:01 mx1 postfix/smtp[7]: 3C6D1C0D01: to=<c@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:02 mx1 postfix/cleanup[1]: 3C6D1C0D02: message-id=<v2@example.jp>
Nov 10 09:00:02 mx1 postfix/qmgr[2]: 3C6D1C0D02: from=<news@example.jp>, size=10, nrcpt=1 (queue active)
Nov 10 09:00:03 mx1 postfix/smtp[7]: 3C6D1C0D02: to=<d@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:03 mx1 postfix/qmgr[2]: 3C6D1C0D02: removed
Nov 10 09:00:04 mx1 postfix/qmgr[2]: 3C6D1C0D03: from=<news@example.jp>, size=10, nrcpt=1 (queue active)
Nov 10 09:00:05 mx1 postfix/smtp[7]: 3C6D1C0D03: to=<e@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=4.1.1, status=SOFTBOUNCE (host mx.example.com[192.0.2.3] said: 550 5.1.1 <e@example.com>: User unknown (in reply to RCPT TO command))
Nov 10 09:00:06 mx1 postfix/qmgr[2]: 3C6D1C0D04: from=<old@example.jp>, size=10, nrcpt=1 (queue active)
Nov 10 09:00:07 mx1 postfix/smtp[7]: 3C6D1C0D04: to=<f@example.com>, relay=none, delay=1, delays=0.1/0/0.5/0.4, dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.3]:25: Connection timed out)
Nov 10 10:00:00 mx1 postfix/postsuper[9]: 3C6D1C0D04: removed
Nov 10 11:00:00 mx1 postfix/qmgr[2]: 3C6D1C0D04: from=<new@example.jp>, size=10, nrcpt=1 (queue active)
Nov 10 11:00:01 mx1 postfix/smtp[7]: 3C6D1C0D04: to=<g@example.com>, relay=none, delay=1, delays=0.1/0/0.5/0.4, dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.3]:25: Connection timed out)
Nov 15 09:00:02 mx1 postfix/oqmgr[2]: 3C6D1C0D01: from=<news@example.jp>, status=expired, returned to sender
Nov 15 09:00:02 mx1 postfix/oqmgr[2]: 3C6D1C0D01: removed
Nov 15 09:00:05 mx1 postfix/qmgr[2]: 3C6D1C0D03: from=<news@example.jp>, status=expired, returned to sender
Nov 15 11:00:02 mx1 postfix/qmgr[2]: 3C6D1C0D04: from=<new@example.jp>, status=expired, returned to sender
Nov 15 11:00:03 mx1 postfix/qmgr[2]: [ID 197553 mail.info] 3C6D1C0D05: from=<sol@example.jp>, size=10, nrcpt=1 (queue active)
Nov 15 11:00:04 mx1 postfix/smtp[7]: [ID 197553 mail.info] 3C6D1C0D05: to=<h@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)
Nov 15 11:00:05 postfix/smtp[7]: 3C6D1C0D06: to=<i@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)
Nov 15 11:00:06 mx1 postfix/smtp[7]: 3C6D1C0D07: to=<j@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=4.4.2, status=deferred (lost connection with mx.example.com[192.0.2.3] while performing the EHLO handshake)
"""


def test_real_world_variants_give_the_per_line_result(tmp_path, monkeypatch):
    log = write_log(tmp_path, REAL_VARIANTS)
    for size in (100, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
        assert fast[2] == {"malformed": 1}        # the line without host: counted, not skipped unseen
    got = pipeline.connect(tmp_path / f"data-True-{1 << 20}").sql(
        "SELECT recipient, status, sender, message_id FROM events ORDER BY source_offset, recipient").fetchall()
    assert got == [("a@example.com", "deferred", "news@example.jp", "v1@example.jp"),
                   ("b@example.com", "bounced", "news@example.jp", "v1@example.jp"),
                   ("c@example.com", "sent", "news@example.jp", "v1@example.jp"),
                   ("d@example.com", "sent", "news@example.jp", "v2@example.jp"),
                   ("e@example.com", "deferred", "news@example.jp", None),           # soft_bounce=yes
                   ("f@example.com", "deferred", "old@example.jp", None),
                   ("g@example.com", "deferred", "new@example.jp", None),            # after postsuper -d
                   ("a@example.com", "expired", "news@example.jp", "v1@example.jp"),
                   ("e@example.com", "expired", "news@example.jp", None),
                   ("g@example.com", "expired", "new@example.jp", None),
                   ("h@example.com", "sent", "sol@example.jp", None),              # Solaris' [ID n mail.info]
                   ("j@example.com", "deferred", None, None)]
    phase = pipeline.connect(tmp_path / f"data-True-{1 << 20}").sql(
        "SELECT smtp_phase FROM events WHERE recipient = 'j@example.com'").fetchall()
    assert phase == [("helo",)]                          # while performing the EHLO handshake


def test_the_hour_a_fall_back_repeats_gives_true_times(tmp_path, monkeypatch):
    """Three hours of traffic across the end of summer time in New York, stamped in local time
    (01:00-01:59 twice): every event's time is the true one, column-wise and per line alike (the
    block reader leaves the repeated hour's lines to the parser, which tells the two passes
    apart by the log's clock)."""
    from fixtures import assert_true_times, fall_back_log

    log, truth = fall_back_log(tmp_path, "postfix")
    for size in (4096, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch, timezone="America/New_York")
        assert_same(fast, slow)
    assert_true_times(tmp_path / f"data-True-{1 << 20}", truth)


# A content filter (amavisd-new on 127.0.0.1:10024, re-injecting on :10025): each message is
# handed to it first, then delivered under the new queue id its reply names.
CONTENT_FILTER = """\
Nov 10 09:00:00 mx1 postfix/cleanup[1]: 1A2B3C4D01: message-id=<m1@example.jp>
Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: from=<news@example.jp>, size=1200, nrcpt=2 (queue active)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<taro@docomo.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B02)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<hanako@ezweb.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B02)
Nov 10 09:00:01 mx1 postfix/qmgr[2]: 1A2B3C4D01: removed
Nov 10 09:00:01 mx1 postfix/cleanup[1]: 5E6F7A8B02: message-id=<m1@example.jp>
Nov 10 09:00:01 mx1 postfix/qmgr[2]: 5E6F7A8B02: from=<news@example.jp>, size=1700, nrcpt=2 (queue active)
Nov 10 09:00:02 mx1 postfix/smtp[4]: 5E6F7A8B02: to=<taro@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 5.1.1 Unknown user taro@docomo.ne.jp (in reply to RCPT TO command))
Nov 10 09:00:02 mx1 postfix/smtp[4]: 5E6F7A8B02: to=<hanako@ezweb.ne.jp>, relay=lsean.ezweb.ne.jp[27.86.32.16]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ1k0bQz)
Nov 10 09:00:02 mx1 postfix/qmgr[2]: 5E6F7A8B02: removed
Nov 10 09:10:00 mx1 postfix/qmgr[2]: 1A2B3C4D03: from=<news@example.jp>, size=1200, nrcpt=4 (queue active)
Nov 10 09:10:01 mx1 postfix/lmtp[5]: 1A2B3C4D03: to=<a@docomo.ne.jp>, relay=localhost[::1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[::1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B04)
Nov 10 09:10:01 mx1 postfix/lmtp[5]: 1A2B3C4D03: to=<b@docomo.ne.jp>, relay=localhost[private/amavis]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5E6F7A8B04)
Nov 10 09:10:01 mx1 postfix/lmtp[5]: 1A2B3C4D03: to=<c@example.jp>, relay=mail.example.jp[private/dovecot-lmtp], delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 <c@example.jp> 8Q0pIqyHM2fPAQAAfMr2rw Saved)
Nov 10 09:10:01 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<d@softbank.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=4.5.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 451 4.5.0 Error in processing, id=12345-01 (in reply to end of DATA command))
Nov 10 09:20:01 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<d@softbank.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B05)
Nov 10 09:20:02 mx1 postfix/smtp[6]: 1A2B3C4D06: to=<e@docomo.ne.jp>, relay=127.0.0.2[127.0.0.2]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 Message accepted)
Nov 10 09:20:03 mx1 postfix/smtp[6]: 1A2B3C4D06: to=<f@docomo.ne.jp>, relay=mx.example.net[198.51.100.127]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ1k0bQz)
Nov 10 09:30:00 mx1 postfix/qmgr[2]: 1A2B3C4D07: from=<ニュース@example.jp>, size=1200, nrcpt=1 (queue active)
Nov 10 09:30:01 mx1 postfix/smtp[3]: 1A2B3C4D07: to=<山田@docomo.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B08)
Nov 10 09:30:02 mx1 postfix/smtp[4]: 5E6F7A8B08: to=<山田@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 受け付けました queued as 4XyZ)
Nov 15 09:10:02 mx1 postfix/qmgr[2]: 1A2B3C4D03: from=<news@example.jp>, status=expired, returned to sender
"""


def test_a_hand_off_to_a_content_filter_is_no_delivery(tmp_path, monkeypatch):
    """`status=sent` to a server on this host (loopback or a local socket) that queued the message
    again is the content filter's hop, not an attempt to reach the recipient: only the
    re-injected copy's delivery is an event (the hop doubled the carrier's deliveries and halved
    its bounce rate). The hop still ends that recipient's deferral (no expiry follows), and the
    fast path agrees with the per-line parser, line by line and in blocks."""
    log = write_log(tmp_path, CONTENT_FILTER)
    for size in (100, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
        assert fast[2] == {}
    got = pipeline.connect(tmp_path / f"data-True-{1 << 20}").sql(
        "SELECT queue_id, recipient, status, sender, message_id FROM events ORDER BY source_offset").fetchall()
    assert got == [("5E6F7A8B02", "taro@docomo.ne.jp", "bounced", "news@example.jp", "m1@example.jp"),
                   ("5E6F7A8B02", "hanako@ezweb.ne.jp", "sent", "news@example.jp", "m1@example.jp"),
                   ("1A2B3C4D03", "c@example.jp", "sent", "news@example.jp", None),      # a local mailbox: delivered
                   ("1A2B3C4D03", "d@softbank.ne.jp", "deferred", "news@example.jp", None),  # the filter failed: a try
                   ("1A2B3C4D06", "e@docomo.ne.jp", "sent", None, None),               # loopback, not re-queued
                   ("1A2B3C4D06", "f@docomo.ne.jp", "sent", None, None),               # queued as, not loopback
                   ("5E6F7A8B08", "山田@docomo.ne.jp", "sent", None, None)]            # UTF-8 lines alike


def test_filter_hops_column_wise_are_is_filter_hop():
    """postfix_block.filter_hops (RE2, column-wise) is postfix.is_filter_hop row by row."""
    from pipeline.ingest.parsers.postfix import is_filter_hop
    relays = ["127.0.0.1[127.0.0.1]:10024", "localhost[127.0.0.1]:10024", "localhost[::1]:10024", "x[ipv6:::1]:25",
              "localhost[private/amavis]", "h[/var/run/amavis.sock]", "127.0.0.1[127.0.0.1]", "127.0.0.1[127.0.0.1]:x",
              "mx[198.51.100.127]:25", "mx[1127.0.0.1]:25", "127.0.0.1", None, "mx[127.0.0.1]:25 [2]", "ｍｘ[127.0.0.1]:25",
              "mx[127.0.0.1000]:25", "[127.0.0.1]:25", "mx[::1]x"]
    texts = ["250 2.0.0 Ok: queued as 5E6F", "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as A",
             "250 Saved", "queued as X", "250 queued as ", "250 requeued as X", "250 queued as\u3000X", None,
             "250 queued as 山", "250\tqueued as X"]
    rows = [(s, r, t) for s in ("sent", "deferred", "bounced") for r in relays for t in texts]
    status, relay, text = (pa.array(list(c), pa.string()) for c in zip(*rows))
    hops = postfix_block.filter_hops(status, relay, text)
    assert hops is not None
    assert hops.tolist() == [is_filter_hop(*row) for row in rows]
    assert hops.sum() == 9 * 3    # 9 local relays x 3 "queued as" texts, status sent
    assert postfix_block.filter_hops(pa.array(["sent"]), pa.array(["mx[1.2.3.4]:25"]), pa.array(["250 queued as X"])) is None


def test_the_commands_default_reads_small_chunks_by_lines_between_block_chunks(tmp_path, monkeypatch):
    # Engine(columnar=None), what the commands run: chunks under BLOCK_MIN_BYTES go line by line
    # (a small log, a large log's last chunk), the others through the block reader; chunks of 64 KiB
    # here, so one run takes both paths, parser state carried from one to the other
    import pipeline.ingest.engine as engine_mod
    import pipeline.ingest.source as source_mod

    monkeypatch.setattr(source_mod, "FIRST_BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(source_mod, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(engine_mod, "BLOCK_MIN_BYTES", 60 << 10)
    log = generated(tmp_path, lines=3000, seed=11)
    read_by_block = []
    real = engine_mod._extract
    monkeypatch.setattr(engine_mod, "_extract", lambda reader, data, *a: read_by_block.append(len(data)) or real(reader, data, *a))
    results = []
    for columnar in (None, False):
        data = tmp_path / f"data-{columnar}"
        cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
        ingest(cfg, [log], fmt="postfix", year=2026, columnar=columnar)
        events = pipeline.connect(data).sql("SELECT * FROM events ORDER BY event_id").fetchall()
        results.append((events, json.loads((data / "state" / "ingest-state.json").read_text())["parsers"]))
    assert results[0] == results[1]
    assert len(read_by_block) > 2 and sum(read_by_block) < log.stat().st_size  # both paths taken


@pytest.mark.parametrize("anywhere", [False, True])
def test_a_line_cut_short_with_the_next_glued_to_it(tmp_path, monkeypatch, anywhere):
    """A line cut short (its writer died or the disk filled mid-line) with the next one glued to
    it: the cut line is a reject and the glued one is read. Read as one line it gave a
    recipient of both (`u2@docomo.ne.jpnov  3 16:04:33 mx1 …: to=<u3@docomo.ne.jp`) or the cut
    line's recipient with the glued one's status, and the glued line's delivery was lost.
    `anywhere`: cut within its own prefix too (its stamp, host, program, pid, queue id)."""
    assert_glued_lines_read(tmp_path, "postfix", _deliveries_of, anywhere)


_deliveries_of = lambda ln: {(m.group(1).lower(), m.group(2)) for m in re.finditer(r" to=<([^>]+)>, .* status=(sent|deferred|bounced)", ln)}


POSTFIX_LOCAL = """\
Nov 11 10:00:00 mx1 postfix/qmgr[300]: 4A1B2C3D4E: from=<news@mail.example.jp>, size=900, nrcpt=4 (queue active)
Nov 11 10:00:01 mx1 postfix/local[301]: 4A1B2C3D4E: to=<root>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 11 10:00:01 mx1 postfix/local[301]: 4A1B2C3D4E: to=<root@mx1.example.jp>, orig_to=<postmaster>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 11 10:00:01 mx1 postfix/pipe[302]: 4A1B2C3D4E: to=<taro@mail.example.jp>, relay=dovecot, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered via dovecot service)
Nov 11 10:00:01 mx1 postfix/local[301]: 4A1B2C3D4E: to=<operator>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=5.1.1, status=bounced (unknown user: "operator")
Nov 11 10:00:02 mx1 postfix/qmgr[300]: 4A1B2C3D4E: removed
Nov 11 10:00:03 mx1 postfix/smtp[303]: 5B2C3D4E5F: to=<orphan@ezweb.ne.jp>, relay=lsean.ezweb.ne.jp[111.86.141.161]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host lsean.ezweb.ne.jp[111.86.141.161] said: 550 5.1.1 unknown (in reply to RCPT TO command))
"""


def test_local_deliveries_are_counted_not_stored(tmp_path, monkeypatch):
    """A Postfix delivery to a recipient that is no address (`to=<root>`, append_at_myorigin=no)
    is a local delivery, counted and not stored, on the fast path (column-wise) and per line; one
    to an address (`relay=local` to root@host, a pipe to dovecot) is an event, as is a delivery of
    a queue id whose `from=` was never read (its sender unknown)."""
    log = tmp_path / "mail.log"
    log.write_text(POSTFIX_LOCAL * 3)
    fast, slow = ingest_both(tmp_path, [log])
    assert_same(fast, slow)
    block = POSTFIX_LOCAL.encode()
    f = postfix_block.extract(block, 65536, CTX)
    assert "root" in f.delivery["recipient"].to_pylist()   # the fast path takes `to=<root>` lines
    for columnar in (True, False):
        data = tmp_path / f"again-{columnar}"
        s = ingest(load_config(None, data_dir=data, timezone="Asia/Tokyo"), [log], fmt="postfix", year=2026,
                   columnar=columnar)
        assert s.local_deliveries == 2 * 3
        got = pipeline.connect(data).sql("SELECT recipient, sender FROM events ORDER BY 1").fetchall()
        assert got == [("orphan@ezweb.ne.jp", None)] + [("root@mx1.example.jp", "news@mail.example.jp"),
                                                        ("taro@mail.example.jp", "news@mail.example.jp")]


def test_an_expiry_whose_deferrals_were_not_read_is_counted(tmp_path, monkeypatch):
    """`status=expired, returned to sender` names no recipient, only its queue id: of a queue id
    none of whose lines was read (before the log began) it is a reject
    `expiry_without_deferrals`, not skipped unseen; one after its deferrals gives their events."""
    log = write_log(tmp_path, """\
Nov 10 11:59:00 mx1 postfix/smtp[3]: 1A2B3C4D0A: to=<d@docomo.ne.jp>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to mx.docomo.ne.jp[192.0.2.1]:25: Connection timed out)
Nov 10 12:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D0B: from=<news@example.jp>, status=expired, returned to sender
Nov 10 12:00:01 mx1 postfix/qmgr[2]: 1A2B3C4D0A: from=<news@example.jp>, status=expired, returned to sender
""")
    fast, slow = ingest_both(tmp_path, [log], 1 << 20, monkeypatch)
    assert_same(fast, slow)
    assert fast[2] == {"expiry_without_deferrals": 1}
    assert sorted(row[11] for row in fast[0]) == ["deferred", "expired"]
