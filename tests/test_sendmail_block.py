"""The sendmail block reader (pipeline/ingest/parsers/sendmail_block.py) against the per-line
parser: the same stored events (every column), the same saved state and the same rejects, on the
sample log, on realistic generated traffic (multi-recipient lines, the MSP hop, reply=, deferrals
retried later, expiries, SMTPUTF8 recipients, Japanese replies) cut into blocks of many sizes, and
on odd lines. Each runs with the compiled helpers and without them."""

from __future__ import annotations

from functools import partial

import json
import re

import pytest
from fixtures import SAMPLES

import pipeline
from pipeline.core.config import load_config
from pipeline.ingest import native
from pipeline.ingest.engine import ingest
from pipeline.ingest.parsers import ParseContext, sendmail_block
from pipeline.ingest.parsers.common import QueueParser
from fixtures import TOKYO, assert_glued_lines_read, assert_same, generated_log, mutated, restamped
from fixtures import ingest_both as ingest_both_formats



# the numpy scanner (the fallback without a C compiler) in the whole suite, the compiled one in test-fast too
@pytest.fixture(autouse=True, params=["compiled", pytest.param("numpy", marks=pytest.mark.slow)])
def scanner(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setattr(native, "SCANNER", None)
    elif native.SCANNER is None:
        pytest.skip("compiled scanner not built")
    return request.param


ingest_both = partial(ingest_both_formats, fmt="sendmail")


def generated(tmp_path, lines=20_000, seed=3, ascii_only=False):
    return generated_log(tmp_path, "sendmail", lines, seed, ascii_only)


ODD = """\
Nov 11 09:00:00 relay2 sendmail[3001]: 2ABB09f0003001: from=news, size=812, class=0, nrcpts=3, msgid=<a@b>, relay=news@localhost
Nov 11 09:00:01 relay2 sendmail[3001]: 2ABB09f0003001: to=saburo@i.softbank.jp,member01@ezweb.ne.jp,member02@ezweb.ne.jp, ctladdr=news (1001/1001), delay=00:00:01, xdelay=00:00:01, mailer=relay, pri=122812, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2ABB0A1u003002 Message accepted for delivery)
Nov 11 09:00:01 relay2 sm-mta[3002]: 2ABB0A1u003002: from=<News@Mail.Example.JP>, size=1012, class=0, nrcpts=3, msgid=<m1@x>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]
Nov 11 09:00:03 relay2 sm-mta[3003]: 2ABB0A1u003002: to=<Saburo@I.Softbank.jp>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=122812, relay=mx.softbank.jp. [210.146.60.90], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:04 relay2 sm-mta[3003]: 2ABB0A1u003002: to=<member01@ezweb.ne.jp>,<member02@ezweb.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=122812, relay=lsean.ezweb.ne.jp. [111.86.141.161], dsn=5.1.1, reply=550 5.1.1 <member01@ezweb.ne.jp>: User unknown, stat=User unknown
Nov 11 09:00:05 relay2 sm-mta[3003]: 2ABB0A1u003002: 2ABB0A1u003003: DSN: User unknown
Nov 11 09:00:05 relay2 sm-mta[3003]: 2ABB0A1u003002: to=<late@docomo.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=122812, relay=mfsmax.docomo.ne.jp. [203.138.181.112], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:06 relay2 sm-mta[3004]: 2ABB0A1u003004: to=<orphan@docomo.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mfsmax.docomo.ne.jp. [203.138.181.112], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:07 relay2 sm-mta[3005]: 2ABB0A1u003005: from=<a@b.jp>, size=1, class=0, nrcpts=2, msgid=<x@y>, proto=ESMTP
Nov 11 09:00:07 relay2 sm-mta[3005]: 2ABB0A1u003005: to=<p@q.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.q.jp. [192.0.2.1], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:08 relay2 sm-mta[3006]: 2ABB0A1u003006: from=<c@d.jp>, size=1, class=0, nrcpts=1, msgid=<z@y>, proto=ESMTP
Nov 11 09:00:08 relay2 sm-mta[3006]: 2ABB0A1u003006: from=<again@d.jp>, size=1, class=0, nrcpts=1, msgid=<z2@y>, proto=ESMTP
Nov 11 09:00:09 relay2 sm-mta[3006]: 2ABB0A1u003006: to=<r@s.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.s.jp. [192.0.2.2], dsn=4.0.0, stat=Deferred: 421 4.7.0 busy, stat=again
Nov 11 09:00:10 relay2 sm-mta[3007]: 2ABB0A1u003007: to=<"odd user"@s.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.s.jp. [192.0.2.2], dsn=5.1.1, stat=User unknown
Nov 11 09:00:10 relay2 sm-mta[3007]: 2ABB0A1u003007: to=<t@s.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.s.jp. [192.0.2.2], dsn=4.0.0, reply=221 2.0.0 Bye, stat=Deferred: 421 4.7.0 Too many connections
Nov 11 09:00:11 relay2 sm-mta[3008]: STARTTLS=client, relay=mx.s.jp., version=TLSv1.3, verify=FAIL, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 11 09:00:11 relay2 sm-mta[3008]: 2ABB0A1u003009: to=, delay=00:00:01, mailer=esmtp, stat=Sent
Nov 11 09:00:12 relay2 sm-mta[3008]: 2ABB0A1u003009: to=<u@v.jp>, delay=00:00:01
2026-11-11T09:00:13+09:00 relay2 sm-mta[3010]: 2ABB0A1u003010: to=<iso@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)
Feb 30 09:00:14 relay2 sm-mta[3011]: 2ABB0A1u003011: to=<feb@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:15 relay2 sm-mta[3012]: 2ABB0A1u003006: to=<r@s.jp>, delay=5+00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.s.jp. [192.0.2.2], dsn=4.0.0, stat=Deferred: Connection timed out
Nov 11 09:00:16 relay2 sm-mta[3012]: 2ABB0A1u003006: 2ABB0A1u003099: DSN: Cannot send message for 5 days
Nov 11 09:00:16 relay2 sm-mta[3014]: 2ABB0A1u003014: from=<İnfo@例え.jp>, size=1, class=0, nrcpts=3, msgid=<q@r>, proto=ESMTP
Nov 11 09:00:16 relay2 sm-mta[3014]: 2ABB0A1u003014: to=<ΣΟΦΙΑΣ@例え.jp>,<山田@例え.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.例え.jp. [192.0.2.4], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:16 relay2 sm-mta[3014]: 2ABB0A1u003014: to=<Ｔａｒｏ@例え.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.例え.jp. [192.0.2.4], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:17 relay2 sm-mta[3015]: 2ABB0A1u003015: to=<odd-sent@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=User unknown (but delivered)
Nov 11 09:00:17 relay2 sm-mta[3015]: 2ABB0A1u003016: to=<odd-sent2@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, reply=250 2.0.0 ok, stat=User unknown
Nov 11 09:00:17 relay2 sm-mta[3013]: 2ABB0A1u003013: to=<ｆｕｌｌ@docomo.ne.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.0.0, reply=550 このアドレスには配信できません, stat=Service unavailable
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=4.2.0, reply=450 4.2.0 <g1@v.jp>: greylisted, stat=Deferred: 450 4.2.0 <g1@v.jp>: greylisted
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g2@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.2.0, reply=550-5.2.0 over quota, stat=Service unavailable
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g3@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.5.0, reply=554 5.5.0 no, stat=Service unavailable
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g4@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.1.3, reply=553 5.1.3 bad sender, stat=Data format error
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g5@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=4.0.0, reply=354 go ahead, stat=Deferred: 451 4.3.0 local problem
Nov 11 09:00:18 relay2 sm-mta[3017]: 2ABB0A1u003017: to=<g6@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.0.0, reply=421 4.4.2 timeout, stat=Service unavailable
Nov 11 09:00:19 relay2 sm-mta[3018]: 2ABB0A1u003018: to=<h1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=4.3.0, stat=Deferred: 451 4.3.0 Temporary local problem
Nov 11 09:00:19 relay2 sm-mta[3018]: 2ABB0A1u003018: to=<h2@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=4.3.0, stat=Deferred: 451 一時的なエラー 4.3.0
Nov 11 09:00:19 relay2 sm-mta[3018]: 2ABB0A1u003018: to=<h3@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.5.0, stat=Service unavailable
Nov 11 09:00:19 relay2 sm-mta[3018]: 2ABB0A1u003018: to=<h4@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.1.3, stat=Data format error (553 5.1.3 bad)
Nov 11 09:00:20 relay2 sm-mta[3019]: 2ABB0A1u003019: to=<p1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=4.0.0, reply=Remote host said: 451 4.3.0 later, stat=Deferred: 451 4.3.0 local problem
Nov 11 09:00:20 relay2 sm-mta[3019]: 2ABB0A1u003019: to=<p2@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.0.0, reply=221x closing, stat=Service unavailable (554 5.0.0 x)
Nov 11 09:00:21 relay2 sm-mta[3020]: 2ABB-0A1u3020: to=<bad1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.1.1, stat=User unknown
Nov 11 09:00:21 relay2 sm-mta[3020]: SHORT7x: from=<a@b.jp>, size=1, class=0, nrcpts=1, msgid=<bad@y>, proto=ESMTP
Nov 11 09:00:21 relay2 sm-mta[3020]: 2ABB0A1u0030201234567890: to=<bad2@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:21 relay2 sm-mta[3020]: NOQUEUE: connect from [192.0.2.9]
Nov 11 09:00:21 relay2 sm-mta[3020]: 2ABB0A1u0030201234567890: Milter: to=<bad3@v.jp>, reject=550 no
Nov 11 09:00:22 relay2 sm-mta[3021]: 2ABB0A1u003021: from=<news@example.jp>, size=1, class=0, nrcpts=2, msgid=<qd@y>, proto=ESMTP
Nov 11 09:00:22 relay2 sm-mta[3021]: 2ABB0A1u003021: to=<qd1@v.jp>, delay=00:00:00, mailer=esmtp, pri=30000, stat=queued
Nov 11 09:00:22 relay2 sendmail[3022]: 2ABB0A1u003022: to=qd2@v.jp, delay=00:01:00, mailer=esmtp, pri=30055, dsn=4.4.3, stat=queued
Nov 11 09:00:23 relay2 sm-mta[3021]: 2ABB0A1u003021: to=<qd1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)
Nov 11 09:00:24 relay2 sendmail[3023]: [ID 801593 mail.info] 2ABB0A1u003023: from=<sol@example.jp>, size=1, class=0, nrcpts=1, msgid=<sol@y>, proto=ESMTP
Nov 11 09:00:24 relay2 sendmail[3023]: [ID 801593 mail.info] 2ABB0A1u003023: to=<sol1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=5.1.1, stat=User unknown
Nov 11 09:00:25 sm-mta[3024]: 2ABB0A1u003024: to=<nohost@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)
"""


def test_odd_lines_give_the_per_line_result(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text(ODD)
    for size in (100, 700, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    # with the Feb 30 delivery (a stamp no parser reads), the three lines of impossible queue
    # ids (a hyphen, 7 and 24 characters) and the line without host: counted, not skipped unseen
    assert fast[2] == {"malformed": 7}
    rows = pipeline.connect(tmp_path / f"data-True-{1 << 20}").sql(
        "SELECT recipient, status, sender FROM events WHERE recipient = 'sol1@v.jp'").fetchall()
    assert rows == [("sol1@v.jp", "bounced", "sol@example.jp")]   # Solaris' [ID n mail.info] tag
    assert len(fast[0]) >= 12


def test_sample_log_gives_the_same_events(tmp_path):
    fast, slow = ingest_both(tmp_path, [SAMPLES / "sendmail" / "maillog"])
    assert_same(fast, slow)
    assert len(fast[0]) > 5


@pytest.mark.slow
@pytest.mark.parametrize("block_bytes", [4096, 256 * 1024, 4 * 1024 * 1024])
def test_realistic_traffic_at_any_block_size(tmp_path, monkeypatch, block_bytes):
    log = generated(tmp_path)
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} == {"sent", "deferred", "bounced", "expired"}


def test_a_short_window_and_a_small_table(tmp_path, monkeypatch):
    monkeypatch.setattr(QueueParser, "STATE_TTL_US", 1200 * 1_000_000)
    monkeypatch.setattr(QueueParser, "MAX_QUEUE_IDS", 50)
    monkeypatch.setattr(QueueParser, "PRUNE_EVERY", 31)
    log = generated(tmp_path, lines=8000, seed=5)
    fast, slow = ingest_both(tmp_path, [log], 64 * 1024, monkeypatch)
    assert_same(fast, slow)


def test_state_carries_over_between_runs(tmp_path):
    log = generated(tmp_path, lines=6000, seed=7)
    lines = log.read_bytes().splitlines(keepends=True)
    results = []
    for columnar in (True, False):
        data = tmp_path / f"runs-{columnar}"
        cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
        part = tmp_path / f"growing-{columnar}.log"
        part.write_bytes(b"".join(lines[:2501]))
        ingest(cfg, [part], fmt="sendmail", year=2026, columnar=columnar)
        with open(part, "ab") as fh:
            fh.write(b"".join(lines[2501:]))
        ingest(cfg, [part], fmt="sendmail", year=2026, columnar=columnar)
        events = pipeline.connect(data).sql("SELECT * EXCLUDE (source_file) FROM events ORDER BY event_id").fetchall()
        results.append((events, json.loads((data / "state" / "ingest-state.json").read_text())["parsers"]))
    assert results[0] == results[1]


@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_fast_path_takes_the_common_lines(tmp_path, ascii_only):
    """Also lines with UTF-8 (SMTPUTF8 recipients, Japanese replies) are read column-wise."""
    log = generated(tmp_path, ascii_only=ascii_only)
    block = log.read_bytes()[: 1 << 20]
    block = block[: block.rfind(b"\n") + 1]
    f = sendmail_block.extract(block, 65536, ParseContext(tz=TOKYO, year=2026))
    fed = int((f.kinds == sendmail_block.K_FEED).sum())
    expiries = block.count(b"DSN: Cannot send message")
    assert fed == expiries and len(f.kinds) > 3000
    assert ascii_only == block.isascii()


@pytest.mark.parametrize("block_bytes", [4096, pytest.param(1 << 20, marks=pytest.mark.slow)])
def test_rfc3339_stamps_at_any_block_size(tmp_path, monkeypatch, block_bytes, scanner):
    """rsyslog's default stamps since Debian 12 (`2026-11-01T00:00:02.140891+09:00`): the block
    reader's result is the per-line parser's (times to the microsecond). (Compiled only: the
    Arrow reading hands such lines to the parser.)"""
    if scanner != "compiled":
        pytest.skip("the Arrow reading feeds RFC 3339 lines: per-line against per-line")
    log = generated_log(tmp_path, "sendmail", lines=8000, stamps="rfc3339")
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} == {"sent", "deferred", "bounced", "expired"}
    assert sum(1 for row in fast[0] if row[1].microsecond) > 0.9 * len(fast[0])


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/New_York"])
def test_odd_stamps_give_the_per_line_result(tmp_path, monkeypatch, timezone, scanner):
    """Every shape of stamp (fixtures.ODD_STAMPS: RFC 3339 zones, local time where it does not
    exist or is there twice, fractions, what is no date or time; traditional with a fraction)
    in odd lines and in joined traffic: the block reader's result is the per-line parser's."""
    if scanner != "compiled":
        pytest.skip("the Arrow reading feeds these lines: per-line against per-line")
    traffic = generated(tmp_path, lines=1500, ascii_only=True).read_text()
    log = tmp_path / "maillog"
    log.write_text(restamped(ODD) + restamped(traffic))
    for size in (300, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch, timezone=timezone)
        assert_same(fast, slow)
    assert len({row[1] for row in fast[0]}) >= 12


def test_the_fast_path_takes_rfc3339_lines(tmp_path, scanner):
    """The compiled scanner reads RFC 3339 stamps as it reads traditional ones: the only lines
    fed one by one are the expiries. (The Arrow reading, without a C compiler, feeds them all.)"""
    if scanner != "compiled":
        pytest.skip("the compiled scanner's own reading")
    log = generated_log(tmp_path, "sendmail", stamps="rfc3339")
    block = log.read_bytes()[: 1 << 20]
    block = block[: block.rfind(b"\n") + 1]
    assert block[:4].isdigit()
    f = sendmail_block.extract(block, 65536, ParseContext(tz=TOKYO, year=2026))
    fed = int((f.kinds == sendmail_block.K_FEED).sum())
    assert fed == block.count(b"DSN: Cannot send message") and len(f.kinds) > 3000


def test_stat_codes_are_read_as_the_parser_does():
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.ingest.parsers.sendmail import _code_in_stat

    stats = ["Deferred: 451 4.3.0 Temporary local problem", "Deferred: 421 4.7.0 Too many connections",
             "User unknown", "Deferred: Connection timed out with mx.example.jp.", "Service unavailable",
             "Deferred: 450-4.2.0 mailbox busy", "x550 5.1.1 glued", "550 5.1.1", "Deferred: 4500 4.2.0 no",
             "a 452 later 550 5.1.1 first by position", "Deferred: 554 ", "250 2.0.0 ok but deferred",
             "code 550_5.1.1 underscore", "5.1.1 550 ", "Deferred: 421 4.7.0_x", "ends 451"]
    found = pc.extract_regex(pa.array(stats), sendmail_block._STAT_CODE)
    got = [None if m is None else int(m["a"] or m["b"]) for m in found.to_pylist()]
    assert got == [_code_in_stat(s) for s in stats]
    assert got[0] == 451 and got[3] is None


OUTCOMES = [  # (dsn, stat, reply or None)
    ("2.0.0", "Sent (ok)", None), ("2.0.0", "Sent (ok)", "250 2.0.0 ok"), ("2.0.0", "User unknown", "250 2.0.0 ok"),
    ("", "Sent (no dsn)", None), ("", "Deferred: 451 4.3.0 later", None), ("", "odd words", None), ("6.0.0", "Sent", None),
    ("", "queued", None), ("6.0.0", "queued", None), ("4.4.3", "queued", None),
    ("5.1.1", "User unknown", "550 5.1.1 <a@b>: User unknown"), ("5.1.1", "User unknown", None),
    ("4.0.0", "Deferred: 421 4.7.0 Too many connections", "221 2.0.0 Bye"),
    ("4.0.0", "Deferred: 451 4.3.0 local problem", "354 go ahead"), ("5.0.0", "Service unavailable", "421 4.4.2 timeout"),
    ("5.2.0", "Service unavailable", "550-5.2.0 over quota"), ("5.2.0", "Service unavailable", None),
    ("5.2.0", "Service unavailable", "552 5.2.2 full"), ("5.5.0", "Service unavailable", "554 5.5.0 no"),
    ("5.5.0", "Service unavailable", None), ("5.1.3", "Data format error", "553 5.1.3 bad sender"),
    ("5.1.3", "Data format error (553 5.1.3 bad)", None), ("4.3.0", "Deferred: 451 一時的なエラー 4.3.0", None),
    ("5.0.0", "Service unavailable", "550 このアドレスには配信できません"), ("4.2.0", "Deferred: 450 4.2.0 <g@v.jp>: greylisted",
                                                                "450 4.2.0 <g@v.jp>: greylisted"),
    ("5.1.1", "x550 5.1.1 glued", None), ("5.1.1", "a 452 later 550 5.1.1 first by position", None),
    ("4.0.0", "Deferred: 4500 4.2.0 no", None), ("4.0.0", "code 550_5.1.1 underscore", None),
    ("4.0.0", "5.1.1 550 ", None), ("4.0.0", "ends 451", None), ("4.0.0", "Deferred: 421 4.7.0_x", None),
    ("4.0.0", "Deferred: 421-4.7.0 x", "said 421 no"), ("4.0.0", "Deferred", "221"), ("4.0.0", "Deferred", ""),
    ("2.0.0", "Sent", "2500 ok"), ("5.1.1", "User unknown", "550"), ("4.4.1", "Deferred: 451 4.4.1 a.b.c", "221-x"),
]


def _mutated_outcomes(seed=5, rounds=4000):
    import random

    rng = random.Random(seed)
    alphabet = ["0", "1", "2", "4", "5", "9", ".", " ", "-", "_", "a", "Z", ":", "(", "ä", "221 ", "550 ", "4.2.0"]
    out = list(OUTCOMES)

    def mutate(text):
        return mutated(text, rng, alphabet, 3, inserts=0.45, deletes=0.3)

    for _ in range(rounds):
        dsn, stat, reply = rng.choice(OUTCOMES)
        which = rng.randrange(3)
        if which == 0:
            dsn = mutate(dsn)
        elif which == 1:
            stat = mutate(stat)
        elif reply is not None:
            reply = mutate(reply)
        out.append((dsn, stat, reply))
    return out


def test_outcomes_are_read_as_the_parser_does(scanner):
    """The scanner's sendmail_facts (status, reply code, diagnostic, SMTP phase of a to= line)
    give what sendmail.py's status_of, diagnostic_of and smtp_phase_of give, on odd lines and
    thousands of mutations of them; the few it leaves to Python are the documented ones."""
    import re

    import numpy as np

    from pipeline.ingest.parsers.sendmail import diagnostic_of, smtp_phase_of, status_of

    if scanner != "compiled":
        pytest.skip("the compiled scanner's own function")
    cases = _mutated_outcomes()
    body, at = bytearray(), {k: [] for k in ("dsn_s", "dsn_e", "stat_s", "stat_e", "reply_s", "reply_e")}
    for dsn, stat, reply in cases:
        for name, value in (("dsn", dsn), ("stat", stat), ("reply", reply)):
            if value is None:
                at["reply_s"].append(-1)
                at["reply_e"].append(-1)
                continue
            raw = value.encode()
            at[name + "_s"].append(len(body))
            body += raw
            at[name + "_e"].append(len(body))
            body += b","
    data = np.frombuffer(bytes(body), np.uint8)
    f = native.SCANNER.sendmail_facts(data, {k: np.array(v, np.int64) for k, v in at.items()})
    phases = {0: None, 1: "rcpt", 2: "end_of_data", 3: "mail", 4: "connect"}
    read = 0
    for i, (dsn, stat, reply) in enumerate(cases):
        status = status_of(dsn, stat)
        assert ["sent", "deferred", "bounced"][f["status"][i] - 1] == status, (dsn, stat, reply)
        if f["python"][i]:
            # only a reply that does not start with its code, or a non-ASCII stat= to be searched
            assert (reply and not re.match(r"[2-5][0-9][0-9][ -]", reply)) or not stat.isascii(), (dsn, stat, reply)
            continue
        read += 1
        fields = {"stat": stat, "dsn": dsn, **({"reply": reply} if reply is not None else {})}
        text, code = diagnostic_of(fields, status)
        row_code = code if status != "sent" else (code or 250)
        assert (None if f["code"][i] < 0 else int(f["code"][i])) == row_code, (dsn, stat, reply)
        assert (reply if f["text_reply"][i] else stat) == text, (dsn, stat, reply)
        assert phases[int(f["phase"][i])] == smtp_phase_of(stat, dsn, code), (dsn, stat, reply)
    assert read > 0.8 * len(cases)


def test_the_hour_a_fall_back_repeats_gives_true_times(tmp_path, monkeypatch):
    """Three hours of traffic across the end of summer time in New York, stamped in local time
    (01:00-01:59 twice): every event's time is the true one, column-wise and per line alike."""
    from fixtures import assert_true_times, fall_back_log

    log, truth = fall_back_log(tmp_path, "sendmail")
    for size in (4096, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch, timezone="America/New_York")
        assert_same(fast, slow)
    assert_true_times(tmp_path / f"data-True-{1 << 20}", truth)


@pytest.mark.parametrize("anywhere", [False, True])
def test_a_line_cut_short_with_the_next_glued_to_it(tmp_path, monkeypatch, anywhere):
    """A line cut short (its writer died or the disk filled mid-line) with the next one glued to
    it: the cut line is a reject and the glued one is read. Read as one line it gave a
    recipient of both (`u2@docomo.ne.jpnov  3 16:04:33 mx1 …: to=<u3@docomo.ne.jp`) or the cut
    line's recipient with the glued one's status, and the glued line's delivery was lost.
    `anywhere`: cut within its own prefix too (its stamp, host, program, pid, queue id)."""
    assert_glued_lines_read(tmp_path, "sendmail", _deliveries_of, anywhere)


_deliveries_of = lambda ln: {(a.lower(), "sent" if "dsn=2" in ln else "deferred" if "dsn=4" in ln else "bounced") for a in re.findall(r"<?([^<>,\s]+@[^<>,\s]+)>?", ln.split(" to=", 1)[1].split(", ", 1)[0])} if " to=" in ln and "mailer=esmtp" in ln else set()


LOCAL = """\
Nov 11 10:00:00 h1 sendmail[4001]: 2ABB0B00004001: from=<news@mail.example.jp>, size=900, class=0, nrcpts=8, msgid=<l1@x>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to=root, ctladdr=<postmaster@mail.example.jp> (0/0), delay=00:00:01, xdelay=00:00:00, mailer=local, pri=30900, dsn=2.0.0, stat=Sent
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to=<root>, delay=00:00:01, xdelay=00:00:00, mailer=local, pri=30900, dsn=2.0.0, stat=Sent
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to=\\root, delay=00:00:01, xdelay=00:00:00, mailer=local, pri=30900, dsn=2.0.0, stat=Sent
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to="|/usr/bin/procmail", ctladdr=<taro@mail.example.jp> (1000/1000), delay=00:00:01, xdelay=00:00:00, mailer=prog, pri=30900, dsn=2.0.0, stat=Sent
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to=/var/mail/archive, ctladdr=<taro@mail.example.jp> (1000/1000), delay=00:00:01, xdelay=00:00:00, mailer=*file*, pri=30900, dsn=2.0.0, stat=Sent
Nov 11 10:00:01 h1 sendmail[4002]: 2ABB0B00004001: to=root@localhost.localdomain, ctladdr=root@localhost.localdomain (0/0), delay=00:00:00, xdelay=00:00:00, mailer=local, pri=245938, dsn=2.0.0, stat=Sent
Nov 11 10:00:02 h1 sendmail[4002]: 2ABB0B00004001: to=<a@docomo.ne.jp>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri=30900, relay=mfsmax.docomo.ne.jp. [203.138.181.112], dsn=2.0.0, stat=Sent (ok)
Nov 11 10:00:03 h1 sendmail[4002]: 2ABB0B00004001: to=operator, delay=00:00:03, xdelay=00:00:00, mailer=local, pri=30900, dsn=4.0.0, stat=Deferred: local mailer (/usr/bin/procmail) exited with EX_TEMPFAIL
Nov 16 10:00:04 h1 sendmail[4003]: 2ABB0B00004001: 2ABB0B00004099: DSN: Cannot send message for 5 days
Nov 11 10:00:05 h1 sendmail[4004]: 2ABB0B00004005: to=<orphan@ezweb.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=1, relay=lsean.ezweb.ne.jp. [111.86.141.161], dsn=5.1.1, stat=User unknown
"""


def test_local_deliveries_are_counted_not_stored(tmp_path, monkeypatch):
    """Deliveries to a local user, program or file (`to=root`, `to=<root>`, `to=\\root`,
    `to="|/usr/bin/procmail"`, `to=/var/mail/x`, a local deferral and its expiry) have no address
    a suppression could hold: counted as local deliveries, not stored, by both ways of reading. A
    local delivery to an address (`root@localhost.localdomain`) is an event, as Postfix's
    `relay=local` ones are; so is a delivery of a queue id whose `from=` was never read (its
    sender unknown)."""
    log = tmp_path / "maillog"
    log.write_text(LOCAL * 3 + generated(tmp_path, lines=3000).read_text())
    fast, slow = ingest_both(tmp_path, [log], 4096, monkeypatch)
    assert_same(fast, slow)
    recipients = {row[7] for row in fast[0]}   # (event columns: recipient is the 8th)
    assert {"root@localhost.localdomain", "a@docomo.ne.jp", "orphan@ezweb.ne.jp"} <= recipients
    assert all("@" in r and not r.startswith(("|", "/", "\\", '"')) for r in recipients)
    for columnar in (True, False):
        data = tmp_path / f"again-{columnar}"
        s = ingest(load_config(None, data_dir=data, timezone="Asia/Tokyo"), [log], fmt="sendmail", year=2026,
                   columnar=columnar)
        assert s.local_deliveries == 7 * 3 and s.as_dict()["local_deliveries"] == 7 * 3
    rows = pipeline.connect(tmp_path / "again-True").sql(
        "SELECT sender FROM events WHERE recipient = 'orphan@ezweb.ne.jp'").fetchall()
    assert rows == [(None,)]


def test_an_expiry_whose_deferrals_were_not_read_is_counted(tmp_path, monkeypatch):
    """`DSN: Cannot send message for 5 days` of a queue id none of whose lines was read (before
    the log began) is a reject `expiry_without_deferrals`, not skipped unseen, by both ways of
    reading; one after its deferrals gives their events."""
    log = tmp_path / "maillog"
    log.write_text("""\
Nov 11 09:00:09 relay2 sm-mta[3006]: 2ABB0A1u003006: from=<c@d.jp>, size=1, class=0, nrcpts=1, msgid=<z@y>, proto=ESMTP
Nov 11 09:00:10 relay2 sm-mta[3006]: 2ABB0A1u003006: to=<r@s.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.s.jp. [192.0.2.2], dsn=4.0.0, stat=Deferred: Connection timed out
Nov 16 09:00:16 relay2 sm-mta[3012]: 2ABB0A1u003006: 2ABB0A1u003099: DSN: Cannot send message for 5 days
Nov 16 09:00:17 relay2 sm-mta[3012]: 2ABB0A1u003007: 2ABB0A1u003098: DSN: Cannot send message for 5 days
""")
    fast, slow = ingest_both(tmp_path, [log], 1 << 20, monkeypatch)
    assert_same(fast, slow)
    assert fast[2] == {"expiry_without_deferrals": 1}
    assert sorted(row[11] for row in fast[0]) == ["deferred", "expired"]
