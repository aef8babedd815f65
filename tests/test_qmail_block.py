"""The qmail block reader (pipeline/ingest/parsers/qmail_block.py) against the per-line parser:
the same stored events (every column), the same saved state and the same rejects, on the sample
log, on realistic generated multilog traffic cut into blocks of many sizes (deliveries retried,
numbers reused, SMTPUTF8 recipients), and on odd lines."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pytest
from fixtures import SAMPLES

import pipeline

from pipeline.ingest import native
from pipeline.ingest.parsers import ParseContext, qmail_block
from pipeline.ingest.parsers.qmail import PHASE_MARKERS, QmailParser, phase_of, unescape
from fixtures import TOKYO, assert_same, generated_log, mutated
from fixtures import ingest_both as ingest_both_formats

pytestmark = pytest.mark.skipif(native.SCANNER is None, reason="compiled scanner not built: qmail is read line by line")


ingest_both = partial(ingest_both_formats, fmt="qmail")


def generated(tmp_path, lines=20_000, seed=3, ascii_only=False):
    return generated_log(tmp_path, "qmail", lines, seed, ascii_only)


L = 0x400000006565_9a1b


def q(sec: int, msg: str) -> str:
    return f"@{L + sec:016x}0a3b1c2c {msg}\n"


ODD = "".join([
    q(0, "new msg 101"), q(0, "info msg 101: bytes 900 from <News@Example.JP> qp 1 uid 1"),
    q(1, "starting delivery 1: msg 101 to remote A@DoCoMo.ne.jp"),
    q(1, "starting delivery 2: msg 101 to local b@mx.example.jp trailing words"),
    q(2, "delivery 1: success: 203.138.181.112_accepted_message./Remote_host_said:_250_ok/"),
    q(2, "delivery 2: success: did_0+0+1/"),
    q(3, "delivery 2: failure: no_start_any_more/"),
    q(3, "starting delivery 3: msg 101 to remote <c@ezweb.ne.jp>"),
    q(4, "delivery 3: failure: 111.87.0.1_does_not_like_recipient./Remote_host_said:_550_5.1.1_<c@ezweb.ne.jp>:_User_unknown/Giving_up_on_111.87.0.1./"),
    q(5, "starting delivery 4: msg 101 to remote d@au.com"),
    q(5, "delivery 4: deferral: Connected_to_111.86.141.160_but_greeting_failed./Remote_host_said:_421_4.7.0_busy/"),
    q(6, "starting delivery 4: msg 102 to remote e@au.com"),
    q(6, "delivery 4: failure: Sorry,_I_couldn't_find_any_host_named_nx.example._(#5.1.2)/"),
    q(7, "starting delivery 5: msg 101 to remote \"quoted\"@au.com"),
    q(7, "delivery 5: failure: I'm_not_going_to_try_again;_this_message_has_been_in_the_queue_too_long./"),
    q(8, "starting delivery 6: msg 101 to remote 山田@例え.jp"),
    q(8, "delivery 6: success: 192.0.2.1_accepted_message./Remote_host_said:_250_ok/"),
    q(9, "delivery 7 garbage"),
    q(9, "starting delivery x: msg 1 to remote f@g"),
    q(9, "end msg 101"),
    q(10, "starting delivery 8: msg 101 to remote h@au.com"),
    q(10, "delivery 8: success: 111.86.141.160_accepted_message./Remote_host_said:_250_ok/"),
    "Sep  6 07:33:33 host qmail: 1157520813.485077 starting delivery 9: msg 103 to remote s@splog.jp\n",
    "Sep  6 07:33:34 host qmail: 1157520814.485077 delivery 9: success: 192.0.2.9_accepted_message./Remote_host_said:_250_ok/\n",
    "@zzzz not a stamp delivery 1: success: x\n",
    q(11, "delivery 10: success:\tcontrol_in_text/"),
    q(12, "info msg 104: bytes 1 from <Ｓｅｎｄｅｒ@例え.jp> qp 1 uid 1"),
    q(12, "starting delivery 11: msg 104 to remote i@au.com"),
    q(13, "delivery 11: success: 111.86.141.160_accepted_message./Remote_host_said:_250_ok/"),
    q(13, "info msg 104: bytes 1 from <plain@example.jp> qp 1 uid 1"),
    q(13, "starting delivery 11: msg 104 to remote j@au.com"),
    q(14, "delivery 11: deferral: 111.86.141.160_does_not_like_recipient./Remote_host_said:_450_later/"),
    # texts that are all or mostly slashes (the trailing ones are newlines the text loses)
    q(15, "starting delivery 12: msg 104 to remote k@au.com"),
    q(15, "delivery 12: deferral: ///"),
    q(16, "starting delivery 13: msg 104 to remote l@au.com"),
    q(16, "delivery 13: failure: a/_/b__//_//"),
    q(17, "starting delivery 14: msg 104 to remote m@au.com"),
    q(17, "delivery 14: success: "),
    # non-ASCII recipients (read column-wise, normalised by normalise_address): Python's lower()
    # (final sigma, dotted capital I) and a Unicode space that ends \S+ inside the address
    q(18, "starting delivery 15: msg 104 to remote ΣΟΦΙΑΣ@例え.jp"),
    q(18, "delivery 15: success: 192.0.2.1_accepted_message./Remote_host_said:_250_ok/"),
    q(19, "starting delivery 16: msg 104 to remote <İnfo@Ｅｘ.jp>"),
    q(19, "delivery 16: deferral: 192.0.2.1_does_not_like_recipient./Remote_host_said:_450_later/"),
    q(20, "starting delivery 17: msg 104 to remote ab\u3000cd@例え.jp tail"),
    q(20, "delivery 17: failure: 192.0.2.1_does_not_like_recipient./Remote_host_said:_550_no/"),
    q(21, "starting delivery 18: msg 104 to local 山田\u00a0@例え.jp"),
    q(21, "delivery 18: success: did_0+0+1/"),
    # domains: none, and after the last @
    q(22, "starting delivery 19: msg 104 to local PostMaster"),
    q(22, "delivery 19: success: did_0+0+1/"),
    q(23, "starting delivery 20: msg 104 to remote <A@B@C.Example.JP>"),
    q(23, "delivery 20: success: 192.0.2.1_accepted_message./Remote_host_said:_250_ok/"),
    # message numbers that are none (malformed: the sender join would be lost unseen), and
    # lines of a number that stay as the parser reads them
    q(24, "info msg 10x5: bytes 1 from <lost@example.jp> qp 1 uid 1"),
    q(24, "info msg abc: bytes 1 from <lost@example.jp> qp 1 uid 1"),
    q(24, "end msg zz9"),
    q(24, "info msg 105: something else"),
    q(24, "info msg : bytes 1 from <x@y> qp 1 uid 1"),
    q(24, "end msg 104tail"),
])


@pytest.mark.slow
def test_odd_lines_give_the_per_line_result(tmp_path, monkeypatch):
    log = tmp_path / "current"
    log.write_text(ODD)
    for size in (100, 700, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    # with the result after "@zzzz", a stamp that is none, and the three message numbers that are none;
    # delivery 2's second result and delivery 10's have no start to be of
    assert fast[2] == {"malformed": 6, "result_without_start": 2}
    assert len(fast[0]) >= 8


def test_sample_log_gives_the_same_events(tmp_path):
    fast, slow = ingest_both(tmp_path, [SAMPLES / "qmail" / "current"])
    assert_same(fast, slow)
    assert len(fast[0]) > 5


@pytest.mark.slow
@pytest.mark.parametrize("block_bytes", [4096, 256 * 1024, 4 * 1024 * 1024])
def test_realistic_traffic_at_any_block_size(tmp_path, monkeypatch, block_bytes):
    log = generated(tmp_path)
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} >= {"sent", "deferred", "bounced"}


def test_a_small_table(tmp_path, monkeypatch):
    monkeypatch.setattr(QmailParser, "MAX_ENTRIES", 40)
    log = generated(tmp_path, lines=8000, seed=5)
    fast, slow = ingest_both(tmp_path, [log], 64 * 1024, monkeypatch)
    assert_same(fast, slow)


def first_mib_read(log):
    """(block, fields, lines applied) of a log's first MiB as extract() reads it, after checking
    that the only lines fed one by one are results whose text is not ASCII (the reply quoting an
    SMTPUTF8 address)."""
    block = log.read_bytes()[: 1 << 20]
    block = block[: block.rfind(b"\n") + 1]
    f = qmail_block.extract(block, 65536, ParseContext(tz=TOKYO, year=2026))
    lines = [block[a:b] for a, b in zip(f.line_starts[f.order].tolist(), f.line_starts[f.order + 1].tolist())]
    fed = [ln for ln, k in zip(lines, f.kinds.tolist()) if k == qmail_block.Q_FEED]
    assert all(not ln.isascii() and b" delivery " in ln and b"starting" not in ln for ln in fed)
    assert len(fed) < len(lines) / 500 and len(f.kinds) > 3000
    return block, f, lines


@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_fast_path_takes_the_common_lines(tmp_path, ascii_only):
    """Also starts with SMTPUTF8 recipients are read column-wise."""
    block, f, lines = first_mib_read(generated(tmp_path, ascii_only=ascii_only))
    starts = [ln for ln, k in zip(lines, f.kinds.tolist()) if k == qmail_block.Q_START]
    assert ascii_only == block.isascii() == all(ln.isascii() for ln in starts)


def test_a_delivery_line_whose_stamp_cannot_be_read_is_malformed(tmp_path, monkeypatch):
    """A start or a result after a stamp no parser reads (a multilog label that is none, a
    syslog day that is none, journalctl's short-full of a day that is none) is a malformed reject, not a bounce lost
    unseen; other lines with such a stamp are skipped, as before."""
    log = tmp_path / "current"
    log.write_text("".join([
        q(0, "starting delivery 1: msg 1 to remote a@au.com"),
        "@4000zzzz0000000000000000 delivery 1: success: 1.2.3.4_accepted_message./Remote_host_said:_250_ok/\n",
        "Feb 30 09:00:00 mx1 qmail: 1778774400.1 delivery 2: failure: 1.2.3.4_does_not_like_recipient./\n",
        "Mon 2026-02-30 09:00:00 JST mx1 qmail: 1778774400.1 starting delivery 3: msg 1 to remote b@au.com\n",
        q(1, "new msg 2"), "@bad new msg 3\n", "@bad info msg 3: bytes 1 from <x@y> qp 1 uid 1\n",
    ]))
    for size in (100, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    assert fast[2] == {"malformed": 3}
    assert fast[0] == []


# splogger prefixes (`qmail-start ./Mailbox splogger qmail`): the usual ones, and every shape
# next to them that the parser reads otherwise or not at all (no day every year has: Feb 29,
# Feb 30; hour 24; a month it does not know; no Unix time, or one of 11 digits or a 7-digit
# fraction; a program that is not qmail's; a pid; an RFC 3339 stamp; a tab after the time;
# Solaris' message id after the tag)
SPLOGGER_PREFIXES = (
    "Nov 10 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.485077 ", "Nov  9 23:59:{s:02d} other-host qmail: 17787744{s:02d}.5 ",
    "Feb 29 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1 ", "Feb 30 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1 ",
    "Nov 10 24:00:{s:02d} mx1 qmail: 17787744{s:02d}.1 ", "Nox 10 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1 ",
    "Nov 10 09:00:{s:02d} mx1 qmail: ", "Nov 10 09:00:{s:02d} mx1 qmail: 177877440{s:02d}.1 ",
    "Nov 10 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1234567 ", "Nov 10 09:00:{s:02d} mx1 postfix: 17787744{s:02d}.1 ",
    "Nov 10 09:00:{s:02d} mx1 qmail-send[42]: 17787744{s:02d}.000001 ", "Nov 10 09:00:{s:02d} mx1 qmail[x]: 17787744{s:02d}.1 ",
    "2026-11-10T09:00:{s:02d}.123+09:00 mx1 qmail: 17787744{s:02d}.25 ", "Nov 10 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1\t",
    "Nov 10 09:00:{s:02d} mx1 qmail:  17787744{s:02d}.1 ", "Nov 10 09:00:{s:02d} mx1 qmail: 17787744{s:02d}.1  ",
    "Nov 10 09:00:{s:02d} mx1 qmail: [ID 748625 mail.info] 17787744{s:02d}.485077 ",   # Solaris' syslogd
)


def splogged(text: str, prefixes=SPLOGGER_PREFIXES) -> str:
    """Multilog lines (`@<tai64n> msg`) as splogger would have logged them, each with the next of
    `prefixes` (its seconds: the line's number)."""
    out = []
    for i, line in enumerate(text.splitlines(keepends=True)):
        msg = line.split(" ", 1)[1] if line.startswith("@") and " " in line else line
        out.append(prefixes[i % len(prefixes)].format(s=i % 60) + msg)
    return "".join(out)


@pytest.mark.parametrize("stamps", ["traditional", "rfc3339"])
@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_splogger_traffic_at_any_block_size(tmp_path, monkeypatch, stamps, block_bytes):
    """qmail logged through splogger into syslog (qmail's own default rc) is read column-wise,
    with the per-line parser's result: times from splogger's Unix time, hosts from syslog."""
    log = generated_log(tmp_path, "qmail", stamps=stamps, splogger=True)
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert {row[11] for row in fast[0]} >= {"sent", "deferred", "bounced"}
    assert {row[3] for row in fast[0]} == {"mx1"}


def test_odd_splogger_lines_give_the_per_line_result(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    traffic = generated(tmp_path, lines=3000, ascii_only=True).read_text()
    log.write_text(splogged(ODD) + splogged(traffic))
    for size in (300, 1 << 20):
        fast, slow = ingest_both(tmp_path, [log], size, monkeypatch)
        assert_same(fast, slow)
    # (ODD's own splogger lines, behind a second prefix, are lines glued to a cut one: read, host `host`)
    assert {row[3] for row in fast[0]} == {"mx1", "other-host", "host"}


def test_the_fast_path_takes_splogger_lines(tmp_path):
    """As with multilog, only results with a non-ASCII text go to feed()."""
    _, f, _ = first_mib_read(generated_log(tmp_path, "qmail", splogger=True))
    assert f.host is not None and set(f.host.to_pylist()) == {"mx1"}


def test_texts_are_unescaped_as_the_parser_does():
    texts = ["", "/", "///", "_", "a_b/c", "a/_/b__//_//", "x/y/", "/leading", "no_slash", "__//__"]
    body = "".join(t + "\n" for t in texts).encode()
    data = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    got = qmail_block._unescaped(data, starts, ends, native.SCANNER.gather).to_pylist()
    assert got == [unescape(t) for t in texts]


FACT_TEXTS = [
    "", "nothing here", "Connected to 1.2.3.4 but greeting failed.",
    "1.2.3.4 does not like recipient.\nRemote host said: 550 5.1.1 <a@b>: User unknown",
    # two markers: the one listed first in PHASE_MARKERS wins, wherever it stands
    "but my name was rejected, then 1.2.3.4 failed on DATA command",
    "failed after I sent the message; does not like recipient",
    "does not like recipient does not like recipient",
    "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)",
    "I'm not going to try again; this message has been in the queue too long.",
    # addresses: IPv4 runs of more than three digits, a missing lookahead, IPv6, ^ and \s
    "1234.1.1.1 x 10.0.0.1_y", "10.0.0.1", "10.0.0.1x 10.0.0.2.", "a\n10.0.0.3 ok",
    "Connected to 2001:db8::1 but sender was rejected.", "fe80::1x ::1 :: a:b.", "Connected to 1.2.3.4x",
    "Connected to abc:def but greeting failed.", "x 1.2.3.4.5.6 y", "x 999.999.999.9999 1.1.1.1 ",
    # reply codes: the first `Remote host said: ` may not be followed by one
    "Remote host said: 6xx\nRemote host said: 451-4.7.1 later", "Remote host said: 25", "Remote host said: 250",
    "Remote host said:_550 x", "Remote host said: 550-5.1.1 x",
    # dsn: `(#` or a word boundary; runs of digits; no word character before
    "(#5.1.2)", "x5.1.2 4.2.0", "_5.1.1 (#4.4.1)", "5.1234.1 2.0.0", "3.1.1 5.1", "4.4.7000", "a 5.7.1: no",
    "(#2.0.0", "((#5.5.5)", "9.1.1 4.1.99999", "#5.1.1",
    # not the first numbers of a relay's IPv4 address
    "5.9.100.20 does not like recipient.\nRemote host said: 550 5.2.2 full", "1.2.3.4 accepted message.",
    "Connected to 4.4.1.20 but greeting failed.", "x 5.1.1. y", "5.1.1.", "2.0.0.x", "5.1.12.3",
]


def _mutations(texts, seed=11, rounds=3000):
    import random

    rng = random.Random(seed)
    alphabet = "0123456789.:_ -#()abcdefABCDEFxyzR\n"
    return list(texts) + [mutated(rng.choice(texts), rng, alphabet, 4) for _ in range(rounds)]


def test_text_facts_are_read_as_the_parser_does():
    """The scanner's qmail_facts (reply code, relay address, dsn, phase, queue-too-long) give
    what qmail.py's own functions give, on odd texts and on thousands of mutations of them."""
    from pipeline.ingest.parsers.qmail import _dsn_in, outcome, phase_of

    texts = _mutations(FACT_TEXTS)
    arr = pa.array(texts).slice(1)               # (an array with an offset, as blocks give)
    texts = texts[1:]
    facts = native.SCANNER.qmail_facts(arr)
    chars = facts["chars"].tobytes()

    def cut(s, e):
        return None if s < 0 else chars[s:e].decode()

    for i, text in enumerate(texts):
        status, code, relay = outcome("failure", text, False)
        assert (facts["code"][i] if facts["code"][i] >= 0 else None) == code, text
        assert cut(facts["ip_s"][i], facts["ip_e"][i]) == relay, text
        assert cut(facts["dsn_s"][i], facts["dsn_e"][i]) == _dsn_in(text), text
        phase = facts["phase"][i]
        assert (None if phase < 0 else PHASE_MARKERS[phase][1]) == phase_of(text), text
        assert bool(facts["too_long"][i]) == (status == "expired"), text
    found = {k: int((facts[k] >= 0).sum()) for k in ("code", "ip_s", "dsn_s", "phase")}
    assert min(found.values()) > 50 and int(facts["too_long"].sum()) > 10, found


def test_the_numbers_of_a_relay_address_are_no_dsn(tmp_path, monkeypatch):
    """A remote host in 2/8, 4/8 or 5/8 (`5.1.1.20_does_not_like_recipient./…`) once gave its
    address's first three numbers as the dsn: a policy refusal stored as 5.1.1, user_unknown and
    hard (a live address suppressed), a success with dsn 2.3.4. Column-wise and per line alike."""
    log = tmp_path / "current"
    log.write_text(
        "@4000000069155d1a0a3b1c2e starting delivery 1: msg 1234 to remote a@docomo.ne.jp\n"
        "@4000000069155d1b0a3b1c31 delivery 1: failure: 5.1.1.20_does_not_like_recipient./"
        "Remote_host_said:_550_Rejected_by_policy/Giving_up_on_5.1.1.20./\n"
        "@4000000069155d1a0a3b1c32 starting delivery 2: msg 1234 to remote b@docomo.ne.jp\n"
        "@4000000069155d1b0a3b1c33 delivery 2: failure: 5.9.100.20_does_not_like_recipient./"
        "Remote_host_said:_550_5.2.2_mailbox_full/Giving_up_on_5.9.100.20./\n"
        "@4000000069155d1a0a3b1c34 starting delivery 3: msg 1235 to remote c@docomo.ne.jp\n"
        "@4000000069155d1b0a3b1c35 delivery 3: success: 2.3.4.5_accepted_message./Remote_host_said:_250_ok/\n")
    fast, slow = ingest_both(tmp_path, [log])
    assert_same(fast, slow)
    con = pipeline.connect(tmp_path / "data-True-None")
    got = con.sql("SELECT recipient, status, dsn, reason, hard FROM events ORDER BY recipient").fetchall()
    assert got == [("a@docomo.ne.jp", "bounced", None, "policy", False),
                   ("b@docomo.ne.jp", "bounced", "5.2.2", "mailbox_full", False),
                   ("c@docomo.ne.jp", "sent", None, "delivered", None)]


def _results_without_start(text: str) -> int:
    """The results of `text` (multilog lines) whose delivery number has no start before them
    since its last result: what neither a per-line nor a column-wise read can attribute."""
    import re

    open_, count = set(), 0
    for m in re.finditer(r"^@\S+ (starting )?delivery (\d+): ", text, re.M):
        if m.group(1):
            open_.add(m.group(2))
        elif m.group(2) in open_:
            open_.discard(m.group(2))
        else:
            count += 1
    return count


@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_results_whose_start_was_not_read_are_counted(tmp_path, monkeypatch, block_bytes):
    """A log read from the middle (a first ingest of multilog's `current` without the older
    `@….s` files): the results of the deliveries started before its first line are rejects
    `result_without_start`, counted and sampled alike by both ways of reading, never dropped
    unseen."""
    text = generated(tmp_path, lines=6000, seed=9).read_text()
    lines = text.splitlines(keepends=True)
    cut = next(i for i in range(400, len(lines)) if " delivery " in lines[i] and "starting" not in lines[i])
    # read from a result on (its start before the first line), and one in 40 starts missing (lost
    # lines, the older files not given)
    starts = [i for i in range(cut, len(lines)) if " starting delivery " in lines[i]]
    mid = "".join(ln for i, ln in enumerate(lines[cut:], cut) if i not in set(starts[::40]))
    log = tmp_path / "current"
    log.write_text(mid)
    wanted = _results_without_start(mid)
    assert wanted >= 3
    fast, slow = ingest_both(tmp_path, [log], block_bytes, monkeypatch)
    assert_same(fast, slow)
    assert fast[2].get("result_without_start") == wanted
    assert sum(1 for reason, _ in fast[3] if reason == "result_without_start") == wanted


@pytest.mark.parametrize("splogger", [False, True])
def test_a_line_cut_short_with_the_next_glued_to_it(tmp_path, splogger):
    """A qmail line (multilog or splogger) cut short anywhere after its first byte, with the next
    line glued to it: the cut line is a `malformed` reject and the glued one is read, by both ways
    of reading (before, a result's text took the glued line in, or the line was malformed and the
    glued one lost)."""
    from fixtures import assert_glued_lines_read

    assert_glued_lines_read(tmp_path, "qmail", None, anywhere=True, splogger=splogger)
