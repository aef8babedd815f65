"""The columnar Postfix reader (pipeline/parsers/postfix_block.py) against the per-line parser.

The per-line PostfixParser is the reference. Every test ingests the same files twice through the
real Ingestor into two data dirs, line by line (block_bytes=0) and in blocks, and asserts that the
stores hold identical events (every column), that the same lines were rejected, and that the
parser state saved for the next run is the same. Tiny blocks put a block boundary between almost
every pair of lines, so the state carried across blocks (sender, message-id, deferred recipients,
expiry) is exercised everywhere.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import connect
from pipeline.config import load_config
from pipeline.ingest import Ingestor
from pipeline.parsers import postfix_block
from pipeline.parsers.common import QueueParser
from pipeline.records import PARSED_COLUMNS

from conftest import CORPUS, REPO, SAMPLES

EDGE_CASES = """\
Nov  1 00:00:01 mx1 postfix/smtpd[1]: connect from localhost[127.0.0.1]
Nov  1 00:00:01 mx1 postfix/cleanup[2]: 4A1B2C3D4E: message-id=<m1@example.jp>
Nov  1 00:00:01 mx1 postfix/qmgr[3]: 4A1B2C3D4E: from=<News@Example.JP>, size=100, nrcpt=4 (queue active)
Nov  1 00:00:02 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<Taro@DoCoMo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.180.112]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)
Nov  1 00:00:02 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<"taro..yamada."@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.180.112]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mfsmax.docomo.ne.jp[203.138.180.112] said: 550 Unknown user taro..yamada.@docomo.ne.jp (in reply to RCPT TO command))
Nov  1 00:00:03 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<hanako@ezweb.ne.jp>, orig_to=<alias@example.jp>, relay=lsean.ezweb.ne.jp[111.86.141.161]:25, delay=2, delays=0/0/1/1, dsn=4.0.0, status=deferred (host lsean.ezweb.ne.jp[111.86.141.161] said: 421 4.7.0 too many connections (in reply to end of DATA command))
Nov  1 00:00:04 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<jiro@softbank.ne.jp>, relay=none, delay=3, delays=0/0/3/0, dsn=4.4.1, status=deferred (connect to mx.softbank.ne.jp[1.2.3.4]:25: Connection timed out)
Nov  1 00:00:05 mx1 postfix/qmgr[3]: 4A1B2C3D4E: from=<news@example.jp>, status=expired, returned to sender
Nov  1 00:00:05 mx1 postfix/qmgr[3]: 4A1B2C3D4E: removed
Nov  1 00:10:00 mx1 postfix/smtp[5]: 4A1B2C3D4E: to=<x@example.com>, relay=mx.example.com[5.6.7.8]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:11:00 mx1 postfix/cleanup[2]: 5B5B5B5B5B: message-id=<m2@example.jp>
Nov  1 00:11:00 mx1 postfix/cleanup[2]: 5B5B5B5B5B: message-id=
Nov  1 00:11:00 mx1 postfix/qmgr[3]: 5B5B5B5B5B: from=<>, size=1, nrcpt=1 (queue active)
Nov  1 00:11:01 mx1 postfix/smtp[4]: 5B5B5B5B5B: to=<a@b.example>, relay=mx[1.1.1.1]:25, dsn=5.7.1, status=bounced (host mx[1.1.1.1] said: 554 5.7.1 Service unavailable; Client host [1.2.3.4] blocked using zen.spamhaus.org (in reply to MAIL FROM command))
Nov  1 00:12:00 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<d@dup.example>, relay=first[1.1.1.1]:25, relay=second[2.2.2.2]:25, dsn=2.0.0, dsn=2.1.0, status=sent (250 ok)
Nov  1 00:12:01 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<"a, b"@quoted.example>, relay=q[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:01 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=< spaced@quoted.example >, relay=q[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:02 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<v@verify.example>, relay=v[1.1.1.1]:25, dsn=2.0.0, status=deliverable (250 ok)
Nov  1 00:12:03 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<m@malformed.example>, relay=m[1.1.1.1]:25, dsn=2.0.0, status=weird (250 ok)
Nov  1 00:12:04 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<n@nostatus.example>, relay=m[1.1.1.1]:25, dsn=2.0.0
Nov  1 00:12:05 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<>, relay=m[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:05 mx1 postfix/smtp[4]: 6C6C6C6C6C: to=<t@trailing.example>, relay=m[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok) trailing
Nov  1 00:12:06 mx1 postfix/local[6]: 6C6C6C6C6C: to=<root@localhost>, relay=local, delay=0, dsn=2.0.0, status=sent
Nov  1 00:12:06 mx1 postfix/local[6]: 6C6C6C6C6C: to=<root2@localhost>, relay=local, delay=0, dsn=2.0.0, status=sent ()
Nov  1 00:12:07 mx1 postfix/smtp[4]: 6C6C6C6C6C: host mx.example.com[1.2.3.4] said: 450 try later (in reply to RCPT TO command)
Nov  1 00:12:08 mx1 postfix-out/smtp: 7D7D7D7D7D: to=<p@nopid.example>, relay=x[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:09 mx1 postfix/error[7]: 7D7D7D7D7D: to=<e@error.example>, relay=none, delay=0, dsn=5.0.0, status=bounced (user unknown)
Nov  1 00:12:09 mx1 postfix/lmtp[7]: 7D7D7D7D7D: to=<l@lmtp.example>, relay=lmtp[127.0.0.1]:24, dsn=2.0.0, status=sent (250 2.0.0 <l@lmtp.example> Ok)
Nov  1 00:12:10 mx1 postfix/smtp[4]: 4BcX2M1z9Kz: to=<long@qid.example>, relay=l[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:10 mx1 postfix/smtp[4]: zz: to=<shortqid@qid.example>, relay=l[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  1 00:12:10 mx1 postfix/bounce[9]: 4BcX2M1z9Kz: sender non-delivery notification: 4BcX2M1z9K0
Nov  1 00:12:11 mx1 postfix/smtpd[8]: NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>
Nov  1 00:12:12 mx1 sendmail[9]: 7D7D7D7D7D: to=<not@postfix.example>, status=sent
Nov 2 00:00:01.123 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<frac@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  2 00:00:01.5 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<frac2@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02T00:00:02.5+09:00 mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<iso@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02 00:00:03Z mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<isoz@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02T00:00:04 mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<isolocal@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02T00:00:04.1234567-0500 mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<isolong@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02T00:61:04+09:00 mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<badminute@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
2026-11-02T00:00:60+09:00 mx2 postfix/smtp[4]: 8E8E8E8E8E: to=<badsecond@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Feb 30 00:00:00 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<feb30@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Foo  3 00:00:00 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<foo@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  2 25:00:00 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<hour25@ts.example>, relay=f[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov  3 00:00:00 mx1 postfix/qmgr[3]: 9F9F9F9F9F: from=<old@example.jp>, size=1, nrcpt=1 (queue active)
Nov  3 00:00:01 mx1 postfix/cleanup[2]: 9F9F9F9F9F: message-id=<old@example.jp>
Nov 12 00:00:00 mx1 postfix/smtp[4]: 9F9F9F9F9F: to=<ttl@example.com>, relay=t[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov 12 00:01:00 mx1 postfix/cleanup[2]: AAAAAAAAAA: message-id=<m3@example.jp>
Nov 12 00:01:00 mx1 postfix/qmgr[3]: AAAAAAAAAA: from=<bulk@example.jp>, size=1, nrcpt=3 (queue active)
Nov 12 00:01:01 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r1@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.180.112]:25, dsn=4.7.0, status=deferred (host mfsmax.docomo.ne.jp[203.138.180.112] said: 421 4.7.0 try again later (in reply to RCPT TO command))
Nov 12 00:01:01 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r2@au.com>, relay=msmx.au.com[1.1.1.1]:25, dsn=4.2.2, status=deferred (host msmx.au.com[1.1.1.1] said: 450 4.2.2 mailbox full (in reply to RCPT TO command))
Nov 12 00:01:01 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r3@softbank.ne.jp>, relay=mx.softbank.ne.jp[1.1.1.1]:25, dsn=4.0.0, status=deferred (host mx.softbank.ne.jp[1.1.1.1] said: 451 temporary failure (in reply to DATA command))
Nov 12 00:30:00 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r3@softbank.ne.jp>, relay=mx.softbank.ne.jp[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
Nov 12 00:31:00 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r1@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.180.112]:25, dsn=4.0.0, status=deferred (host mfsmax.docomo.ne.jp[203.138.180.112] said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command))
Nov 13 00:01:00 mx1 postfix/qmgr[3]: AAAAAAAAAA: from=<bulk@example.jp>, status=expired, returned to sender
Nov 13 00:01:30 mx1 postfix/cleanup[2]: AAAAAAAAAA: message-id=
Nov 13 00:02:00 mx1 postfix/smtp[4]: AAAAAAAAAA: to=<r1@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.180.112]:25, dsn=4.4.2, status=deferred (lost connection with mfsmax.docomo.ne.jp[203.138.180.112] while sending end of data -- message may be sent more than once)
Nov 13 00:03:00 mx1 postfix/qmgr[3]: AAAAAAAAAA: from=<Bulk2@example.jp>, status=expired, returned to sender
Nov 13 00:04:00 mx1 postfix/cleanup[2]: BBBBBBBBBB: message-id=<m4@example.jp>
Nov 13 00:04:00 mx1 postfix/qmgr[3]: BBBBBBBBBB: from=<open@example.jp>, size=1, nrcpt=2 (queue active)
Nov 13 00:04:01 mx1 postfix/smtp[4]: BBBBBBBBBB: to=<Open@Example.COM>, relay=o[1.1.1.1]:25, dsn=4.2.0, status=deferred (host o[1.1.1.1] said: 452 4.2.2 Over quota (in reply to RCPT TO command))
Nov 13 00:04:02 mx1 postfix/smtp[4]: BBBBBBBBBB: to=<"quoted deferred"@example.com>, relay=o[1.1.1.1]:25, dsn=4.2.0, status=deferred (host o[1.1.1.1] said: 450 busy (in reply to RCPT TO command))
Nov 13 00:05:00 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<g@greet.example>, relay=none, delay=1, dsn=4.3.0, status=deferred (host g[1.1.1.1] refused to talk to me: 554 5.7.1 blocked)
Nov 13 00:05:01 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<w@while.example>, relay=none, delay=1, dsn=4.4.2, status=deferred (lost connection with w[1.1.1.1] while sending RCPT TO)
Nov 13 00:05:02 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<lead@code.example>, relay=l[1.1.1.1]:25, dsn=5.0.0, status=bounced (550-5.1.1 The email account does not exist)
Nov 13 00:05:03 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<odd@phase.example>, relay=l[1.1.1.1]:25, dsn=5.0.0, status=bounced (host l said: 550 no (in reply to MAIL FROM command) and more (in reply to RCPT TO command))
Nov 13 00:05:04 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<lmtp@phase.example>, relay=l[1.1.1.1]:25, dsn=4.0.0, status=deferred (host l said: 451 wait (in reply to LHLO command))
Nov 13 00:05:05 mx1 postfix/smtp[4]: CCCCCCCCCC: to=<unk@phase.example>, relay=l[1.1.1.1]:25, dsn=4.0.0, status=deferred (host l said: 451 wait (in reply to FOO BAR command))
Nov 13 00:05:06 mx1 postfix/virtual[4]: CCCCCCCCCC: to=<Mixed.Case@Virtual.Example>, relay=virtual, delay=0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 31 23:59:59 mx1 postfix/smtp[4]: DDDDDDDDDD: to=<newyear@example.com>, relay=n[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)
"""


def _ingest(tmp_path: Path, name: str, files, block_bytes: int, year=None, calls=None):
    cfg = load_config(None, data_dir=tmp_path / name, timezone="Asia/Tokyo")
    summary = Ingestor(cfg, fmt="postfix", block_bytes=block_bytes, year=year, progress=False).run(files)
    con = connect(config=cfg)
    events = con.sql("SELECT * EXCLUDE (date) FROM events ORDER BY event_id").to_arrow_table()
    con.close()
    rejects = []
    for f in sorted((tmp_path / name / "rejects").glob("*.jsonl")):
        rejects += [(r["file"], r["offset"], r["reason"]) for r in map(json.loads, f.read_text().splitlines())]
    state = json.loads((tmp_path / name / "state" / "ingest-parsers.json").read_text())
    return summary, events, sorted(rejects), state


def _live(state: dict) -> dict:
    """Queue ids the next run can still join (the per-line parser forgets stale ones lazily),
    with the parser's own columns of each deferred row (the line path's rows also carry the
    classification the buffer added to them: not state)."""
    queue = state.get("postfix", {}).get("queue", {})
    if not queue:
        return {}
    last = max(st["seen"] for st in queue.values())
    keep = set(PARSED_COLUMNS) | {"_line"}
    return {q: {**st, "deferred": {r: {k: v for k, v in row.items() if k in keep} for r, row in st["deferred"].items()}}
            for q, st in queue.items() if last - st["seen"] <= QueueParser.STATE_TTL_US}


@pytest.fixture
def block_calls(monkeypatch):
    """Counts blocks the columnar reader took and declined."""
    calls = {"taken": 0, "declined": 0}
    real = postfix_block.PostfixBlockReader.read

    def counting(self, block, start):
        result = real(self, block, start)
        calls["taken" if result is not None else "declined"] += 1
        return result

    monkeypatch.setattr(postfix_block.PostfixBlockReader, "read", counting)
    return calls


def assert_same(tmp_path, files, block_bytes, year=None):
    s_line, e_line, r_line, st_line = _ingest(tmp_path, f"lines-{block_bytes}", files, 0, year)
    s_block, e_block, r_block, st_block = _ingest(tmp_path, f"blocks-{block_bytes}", files, block_bytes, year)
    assert e_block.num_rows == e_line.num_rows
    for name in e_line.column_names:
        assert e_block.column(name).to_pylist() == e_line.column(name).to_pylist(), name
    assert r_block == r_line
    assert (s_block.lines, s_block.events_parsed, s_block.events_written, dict(s_block.rejected)) == \
        (s_line.lines, s_line.events_parsed, s_line.events_written, dict(s_line.rejected))
    assert _live(st_block) == _live(st_line)
    return s_block, e_block


@pytest.mark.parametrize("block_bytes", [200, 4096, 1 << 20])
def test_edge_cases_identical_at_every_block_size(tmp_path, block_calls, block_bytes):
    log = tmp_path / "mail.log"
    log.write_text(EDGE_CASES)
    os.utime(log, (time.time() - 3600, time.time() - 3600))
    summary, events = assert_same(tmp_path, [log], block_bytes)
    assert block_calls["taken"] >= 1 and block_calls["declined"] == 0
    by_rcpt = {}
    for row in sorted(events.to_pylist(), key=lambda r: (r["ts"], r["source_offset"])):
        by_rcpt.setdefault(row["recipient"], []).append(row)
    # the things this file is about, so that "identical" is not "identically empty"
    assert [r["status"] for r in by_rcpt["hanako@ezweb.ne.jp"]] == ["deferred", "expired"]
    assert by_rcpt["taro..yamada.@docomo.ne.jp"][0]["smtp_phase"] == "rcpt"
    assert by_rcpt["x@example.com"][0]["sender"] is None            # qid reused after `removed`
    assert by_rcpt["a@b.example"][0]["message_id"] is None          # empty message-id clears it
    assert by_rcpt["a@b.example"][0]["sender"] == ""                # null sender from=<>
    assert by_rcpt["ttl@example.com"][0]["sender"] is None          # 9 days later: forgotten
    assert by_rcpt["d@dup.example"][0]["relay"] == "second[2.2.2.2]:25"
    assert by_rcpt["a, b@quoted.example"][0]["status"] == "sent"
    assert sorted(r["status"] for r in by_rcpt["r1@docomo.ne.jp"]) == ["deferred", "deferred", "deferred", "expired", "expired"]
    expired_r1 = [r for r in by_rcpt["r1@docomo.ne.jp"] if r["status"] == "expired"]
    assert {r["sender"] for r in expired_r1} == {"bulk@example.jp", "bulk2@example.jp"}
    # the first expiry keeps m3; the second copies a deferral logged after `message-id=` cleared it
    assert sorted(expired_r1, key=lambda r: r["ts"])[0]["message_id"] == "m3@example.jp"
    assert sorted(expired_r1, key=lambda r: r["ts"])[1]["message_id"] is None
    assert [r["status"] for r in by_rcpt["r3@softbank.ne.jp"]] == ["deferred", "sent"]
    assert "feb30@ts.example" not in by_rcpt and "badminute@ts.example" not in by_rcpt
    assert "not@postfix.example" not in by_rcpt and "v@verify.example" not in by_rcpt
    assert {"iso@ts.example", "isoz@ts.example", "isolocal@ts.example", "isolong@ts.example", "frac@ts.example"} <= set(by_rcpt)
    assert by_rcpt["newyear@example.com"][0]["ts"].year == 2025       # December in a November file
    assert summary.rejected["malformed"] == 4


def test_state_carries_into_the_next_run(tmp_path, block_calls):
    """A deferral read in one run (by blocks) expires in the next run: the saved state joins them."""
    lines = EDGE_CASES.splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(lines) if "AAAAAAAAAA: from=<bulk@example.jp>, status=expired" in ln)
    first, second = tmp_path / "mail.log.1", tmp_path / "mail.log"
    first.write_text("".join(lines[:cut]))
    second.write_text("".join(lines[cut:]))
    old = time.time() - 7200
    os.utime(first, (old, old))
    os.utime(second, (old + 60, old + 60))
    for name, block_bytes in (("lines", 0), ("blocks", 4096)):
        cfg = load_config(None, data_dir=tmp_path / name, timezone="Asia/Tokyo")
        Ingestor(cfg, fmt="postfix", block_bytes=block_bytes, progress=False).run([first])
        Ingestor(cfg, fmt="postfix", block_bytes=block_bytes, progress=False).run([second])
    got = {}
    for name in ("lines", "blocks"):
        con = connect(load_config(None, data_dir=tmp_path / name, timezone="Asia/Tokyo").data_dir)
        got[name] = con.execute("SELECT * EXCLUDE (date) FROM events ORDER BY event_id").fetchall()
        con.close()
    assert got["blocks"] == got["lines"]
    expired = [r for r in got["blocks"] if r[11] == "expired" and r[7] == "r1@docomo.ne.jp"]
    assert len(expired) == 2 and all(r[6] for r in expired)  # sender joined across runs


def test_non_ascii_crlf_and_bad_bytes_go_line_by_line(tmp_path, block_calls):
    """Blocks holding UTF-8 text, Shift_JIS bytes, NUL or CRLF are declined and read by the
    per-line path (which rejects and recovers); the blocks around them are still columnar."""
    body = EDGE_CASES.encode()
    extra = (
        "Nov 13 00:06:00 mx1 postfix/smtp[4]: EEEEEEEEEE: to=<jp@docomo.ne.jp>, relay=m[1.1.1.1]:25, dsn=5.0.0, "
        "status=bounced (host m said: 550 宛先不明 (in reply to RCPT TO command))\n").encode()
    sjis = ("Nov 13 00:06:01 mx1 postfix/smtp[4]: EEEEEEEEEE: to=<sjis@docomo.ne.jp>, relay=m[1.1.1.1]:25, dsn=5.0.0, "
            "status=bounced (550 ").encode() + "宛先不明".encode("shift_jis") + b")\n"
    nul = b"Nov 13 00:06:02 mx1 postfix/smtp[4]: EEEEEEEEEE: to=<nul@docomo.ne.jp>, relay=m[1.1.1.1]:25, dsn=2.0.0, status=sent (250\x00 ok)\n"
    crlf = b"Nov 13 00:06:03 mx1 postfix/smtp[4]: EEEEEEEEEE: to=<crlf@docomo.ne.jp>, relay=m[1.1.1.1]:25, dsn=2.0.0, status=sent (250 ok)\r\n"
    log = tmp_path / "mail.log"
    log.write_bytes(body + extra + sjis + nul + crlf + body)
    os.utime(log, (time.time() - 3600, time.time() - 3600))
    summary, events = assert_same(tmp_path, [log], 2048)
    assert block_calls["declined"] >= 1 and block_calls["taken"] >= 2
    rcpts = set(events.column("recipient").to_pylist())
    assert {"jp@docomo.ne.jp", "sjis@docomo.ne.jp", "nul@docomo.ne.jp", "crlf@docomo.ne.jp"} <= rcpts
    assert summary.rejected["invalid_utf8"] == 1 and summary.rejected["nul_bytes"] == 1


def test_sample_logs_identical(tmp_path, block_calls):
    files = [SAMPLES / "postfix" / "mail.log.1.gz", SAMPLES / "postfix" / "mail.log"]
    summary, events = assert_same(tmp_path, files, 1024, year=2026)
    assert events.num_rows == summary.events_written > 40


def test_generated_traffic_identical_across_many_blocks(tmp_path, block_calls):
    """Realistic bulk traffic (bench generator): ~5k messages, deferrals expiring across blocks."""
    log = tmp_path / "gen.log"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_postfix_log.py"), str(log), "--lines", "40000",
                    "--days", "2", "--seed", "7"], check=True, capture_output=True)
    summary, events = assert_same(tmp_path, [log], 256 * 1024, year=2026)
    statuses = set(events.column("status").to_pylist())
    assert {"sent", "deferred", "bounced", "expired"} <= statuses
    assert block_calls["taken"] >= 15 and block_calls["declined"] == 0


def test_truncated_gzip_keeps_what_was_readable(tmp_path, block_calls):
    log = tmp_path / "gen.log"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_postfix_log.py"), str(log), "--lines", "20000",
                    "--days", "1", "--seed", "3"], check=True, capture_output=True)
    gz = tmp_path / "mail.log.2.gz"
    data = gzip.compress(log.read_bytes())
    gz.write_bytes(data[: len(data) * 2 // 3])
    summary, events = assert_same(tmp_path, [gz], 1 << 20, year=2026)
    assert summary.rejected["unreadable_rest"] == 1
    assert events.num_rows > 1000


corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"public corpus not found at {CORPUS}")


@corpus
def test_public_corpus_identical(tmp_path, block_calls):
    with open(CORPUS / "postfix-grok-patterns" / "lines.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    grok = tmp_path / "grok.log"
    grok.write_text("".join(f"Nov 10 09:00:{i % 60:02d} mx1 postfix/{r['component']}[1]: {r['message']}\n"
                            for i, r in enumerate(rows)))
    files = [grok, CORPUS / "crowdsec-hub" / "postfix-logs.log", CORPUS / "fail2ban" / "postfix"]
    summary, events = assert_same(tmp_path, files, 4096, year=2026)
    assert events.num_rows >= 14


def test_reader_declines_what_it_must_not_read(tmp_path):
    from pipeline.carriers import default_table
    from pipeline.parsers.common import ParseContext
    from pipeline.parsers.postfix import PostfixParser
    from conftest import TOKYO

    reader = postfix_block.PostfixBlockReader(PostfixParser(ParseContext(tz=TOKYO), None), default_table(), 64 * 1024)
    try:
        line = b"Nov  1 00:00:02 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<a@b.example>, relay=x, dsn=2.0.0, status=sent (250 ok)\n"
        assert reader.read(line, 0).table.num_rows == 1
        assert reader.read(line.replace(b"250 ok", "了解".encode()), 0) is None       # not ASCII
        assert reader.read(line[:-1] + b"\r\n", 0) is None                            # CRLF
        assert reader.read(line.replace(b"ok", b"o\x00k"), 0) is None                 # NUL
        assert reader.read(b"x" * 70_000 + b"\n" + line, 0) is None                  # over-long line
        assert reader.read(b"", 0) is None
    finally:
        reader.close()
