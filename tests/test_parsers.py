"""Parsers on real line shapes: sample_logs/, hand-written edge cases, and the public corpus."""

from __future__ import annotations

import csv
import gzip
import re
from datetime import datetime, timezone

import pytest

from pipeline.ingest.parsers import EVENT, MALFORMED, SKIP, ParseContext, REGISTRY, detect_format
from pipeline.ingest.parsers.common import split_syslog
from pipeline.ingest.parsers.postfix import parse_fields

from pipeline.store.records import EVENT_SCHEMA

from fixtures import SAMPLES, TOKYO, alarm, assert_same, corpus_path, generated_log, ingest_both, optional_corpus_path

UTC = timezone.utc


def run(mta, lines, tz=TOKYO, mtime=None, year=None):
    rows = []
    ctx = ParseContext(tz=tz, source_file="t", mtime=mtime or datetime(2026, 11, 28, tzinfo=UTC).timestamp(), year=year)
    parser = REGISTRY[mta](ctx, rows.append)
    results = [parser.feed(line, i) for i, line in enumerate(lines)]
    return rows, results


def ts(row):
    return datetime.fromtimestamp(row["ts"] / 1e6, UTC)


# --------------------------------------------------------------------------- syslog prefix
def test_traditional_and_rfc3339_prefixes():
    ctx = ParseContext(tz=TOKYO, mtime=datetime(2026, 11, 28, tzinfo=UTC).timestamp())
    t1, host, prog, msg = split_syslog("Nov  3 16:04:31 mx1 postfix/smtp[12]: hello", ctx)
    assert (host, prog, msg) == ("mx1", "postfix/smtp", "hello")
    assert datetime.fromtimestamp(t1 / 1e6, UTC) == datetime(2026, 11, 3, 7, 4, 31, tzinfo=UTC)
    t2, *_ = split_syslog("2024-08-26T01:33:38.572449+00:00 machine postfix/submission/smtpd[60203]: x", ctx)
    assert t2 == int(datetime(2024, 8, 26, 1, 33, 38, tzinfo=UTC).timestamp()) * 1_000_000 + 572449


def test_year_inferred_from_mtime_rolls_back_across_new_year():
    jan = datetime(2027, 1, 2, 3, 0, tzinfo=TOKYO).timestamp()
    ctx = ParseContext(tz=TOKYO, mtime=jan)
    dec, *_ = split_syslog("Dec 31 23:59:59 mx1 postfix/smtp[1]: x", ctx)
    new, *_ = split_syslog("Jan  1 00:00:01 mx1 postfix/smtp[1]: x", ctx)
    assert datetime.fromtimestamp(dec / 1e6, TOKYO).year == 2026
    assert datetime.fromtimestamp(new / 1e6, TOKYO).year == 2027
    forced = ParseContext(tz=TOKYO, mtime=jan, year=2020)
    t, *_ = split_syslog("Jan  1 00:00:01 mx1 postfix/smtp[1]: x", forced)
    assert datetime.fromtimestamp(t / 1e6, TOKYO).year == 2020


# --------------------------------------------------------------------------- Postfix
DOCOMO = ("Nov 10 09:00:02 mx1 postfix/smtp[2]: 3C6D1C0A1F: to=<\"taro..yamada.\"@docomo.ne.jp>, "
          "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1.2, delays=0.1/0/0.6/0.5, tls=may, dsn=5.0.0, "
          "status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user "
          "taro..yamada.@docomo.ne.jp (in reply to RCPT TO command))")


def test_postfix_delivery_line_with_joins_and_quoted_local_part():
    rows, res = run("postfix", [
        "Nov 10 09:00:00 mx1 postfix/cleanup[1]: 3C6D1C0A1F: message-id=<abc@mail.example.jp>",
        "Nov 10 09:00:00 mx1 postfix/qmgr[1]: 3C6D1C0A1F: from=<news@mail.example.jp>, size=10, nrcpt=1 (queue active)",
        DOCOMO,
    ])
    assert res == [SKIP, SKIP, EVENT]
    (r,) = rows
    assert r["recipient"] == "taro..yamada.@docomo.ne.jp" and r["recipient_domain"] == "docomo.ne.jp"
    assert (r["sender"], r["message_id"], r["queue_id"]) == ("news@mail.example.jp", "abc@mail.example.jp", "3C6D1C0A1F")
    assert (r["status"], r["dsn"], r["reply_code"], r["smtp_phase"]) == ("bounced", "5.0.0", 550, "rcpt")
    assert r["relay"] == "mfsmax.docomo.ne.jp[203.138.181.112]:25"
    assert r["diagnostic"].startswith("host mfsmax.docomo.ne.jp") and r["diagnostic"].endswith("command)")
    assert ts(r) == datetime(2026, 11, 10, 0, 0, 2, tzinfo=UTC)


def test_postfix_generic_fields_tolerate_new_keys():
    f = parse_fields("to=<a@b.jp>, orig_to=<x@y>, relay=r[1.2.3.4]:25, conn_use=2, delay=1, delays=1/2/3/4, "
                     "tls=dane/!requiretls:nocertmatch, newkey=whatever, dsn=2.0.0, status=sent (250 ok (queued))")
    assert f["to"] == "<a@b.jp>" and f["tls"] == "dane/!requiretls:nocertmatch" and f["newkey"] == "whatever"
    assert f["status"] == "sent" and f["_text"] == "250 ok (queued)" and f["dsn"] == "2.0.0"


@pytest.mark.parametrize("text,phase", [
    ("host x[1.2.3.4] said: 550 Unknown user a@docomo.ne.jp (in reply to end of DATA command)", "end_of_data"),
    ("host x[1.2.3.4] said: 553 <our.example> does not exist (in reply to MAIL FROM command)", "mail"),
    ("host x[1.2.3.4] said: 554 go away (in reply to DATA command)", "data"),
    ("host x[1.2.3.4] refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections", "connect"),
    ("connect to x[1.2.3.4]:25: Connection timed out", None),
    ("lost connection with x[1.2.3.4] while performing the EHLO handshake", "helo"),
    ("conversation with x[1.2.3.4] timed out while performing the HELO handshake", "helo"),
    ("lost connection with x[1.2.3.4] while sending RCPT TO", "rcpt"),
])
def test_postfix_smtp_phase(text, phase):
    rows, _ = run("postfix", [f"Nov 10 09:00:02 mx1 postfix-out/smtp[2]: 4jc5zM4YDDzBvb1: to=<a@docomo.ne.jp>, relay=x, delay=1, dsn=5.0.0, status=bounced ({text})"])
    assert rows[0]["smtp_phase"] == phase
    assert rows[0]["queue_id"] == "4jc5zM4YDDzBvb1"


def test_postfix_expired_gets_last_deferral_reason_per_recipient():
    q = "5D2E1C0B31"
    lines = [
        f"Nov 10 09:00:00 mx1 postfix/qmgr[1]: {q}: from=<news@mail.example.jp>, size=10, nrcpt=2 (queue active)",
        f"Nov 10 09:00:01 mx1 postfix/smtp[2]: {q}: to=<a@x.jp>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to mx.x.jp[192.0.2.1]:25: Connection refused)",
        f"Nov 10 09:00:01 mx1 postfix/smtp[2]: {q}: to=<b@x.jp>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to mx.x.jp[192.0.2.1]:25: Connection refused)",
        f"Nov 11 09:00:01 mx1 postfix/smtp[2]: {q}: to=<b@x.jp>, relay=mx.x.jp[192.0.2.1]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
        f"Nov 15 09:00:01 mx1 postfix/smtp[2]: {q}: to=<a@x.jp>, relay=mx.x.jp[192.0.2.1]:25, delay=5, dsn=4.2.2, status=deferred (host mx.x.jp[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))",
        f"Nov 15 09:00:02 mx1 postfix/qmgr[1]: {q}: from=<news@mail.example.jp>, status=expired, returned to sender",
        f"Nov 15 09:00:02 mx1 postfix/qmgr[1]: {q}: removed",
    ]
    rows, res = run("postfix", lines)
    expired = [r for r in rows if r["status"] == "expired"]
    assert len(expired) == 1 and expired[0]["recipient"] == "a@x.jp"
    assert expired[0]["dsn"] == "4.2.2" and "Mailbox full" in expired[0]["diagnostic"]
    assert expired[0]["smtp_phase"] == "rcpt" and expired[0]["source_offset"] == 5
    assert res[5] == EVENT


def test_postfix_expired_state_survives_a_restart():
    q = "5D2E1C0B31"
    rows, _ = run("postfix", [])
    ctx = ParseContext(tz=TOKYO, mtime=datetime(2026, 11, 28, tzinfo=UTC).timestamp())
    first = REGISTRY["postfix"](ctx, rows.append)
    first.feed(f"Nov 10 09:00:01 mx1 postfix/smtp[2]: {q}: to=<a@x.jp>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to x: Connection refused)", 0)
    import json
    saved = json.loads(json.dumps(first.get_state()))
    second = REGISTRY["postfix"](ctx, rows.append)
    second.set_state(saved)
    second.feed(f"Nov 15 09:00:02 mx1 postfix/qmgr[1]: {q}: from=<n@m.jp>, status=expired, returned to sender", 99)
    assert [r["status"] for r in rows] == ["deferred", "expired"]


def test_postfix_inbound_probes_and_noise_are_skipped():
    rows, res = run("postfix", [
        "Nov 10 09:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <a@b>: Relay access denied; from=<x@y> to=<a@b> proto=SMTP helo=<h>",
        "Nov 10 09:00:00 mx1 postfix/verify[1]: 4B7A1C0A20: to=<probe@docomo.ne.jp>, relay=none, delay=0, dsn=5.1.1, status=undeliverable-but-not-cached (probe)",
        "Nov 10 09:00:00 mx1 postfix/smtp[1]: 4B7A1C0A20: to=<probe@docomo.ne.jp>, relay=x, delay=0, dsn=2.0.0, status=deliverable (250 ok)",
        "Nov 10 09:00:00 mx1 postfix/smtp[1]: 4B7A1C0A20: host mx[1.2.3.4] said: 450 busy (in reply to RCPT TO command)",
        "Nov 10 09:00:00 mx1 postfix/smtpd[1]: connect from unknown[198.51.100.7]",
        "Nov 10 09:00:00 mx1 dovecot: imap-login: Login: user=<x>",
    ])
    assert rows == [] and set(res) == {SKIP}


def test_postfix_malformed_delivery_line_is_reported():
    _, res = run("postfix", ["Nov 10 09:00:00 mx1 postfix/smtp[1]: 4B7A1C0A20: to=<a@docomo.ne.jp>, relay=x, del"])
    assert res == [MALFORMED]


# --------------------------------------------------------------------------- sendmail
def test_sendmail_multi_recipient_reply_and_msp_hop():
    lines = (SAMPLES / "sendmail" / "maillog").read_text().splitlines()
    rows, res = run("sendmail", lines)
    by = {(r["recipient"], r["status"]) for r in rows}
    assert ("member01@ezweb.ne.jp", "sent") in by and ("member02@ezweb.ne.jp", "sent") in by
    saburo = [r for r in rows if r["recipient"] == "saburo@i.softbank.jp"]
    assert len(saburo) == 1, "the MSP hop to 127.0.0.1 is not a delivery"
    assert saburo[0]["diagnostic"] == "550 Invalid recipient: <saburo@i.softbank.jp>" and saburo[0]["reply_code"] == 550
    assert saburo[0]["message_id"] == "202611110900.2ABB09f0003001@relay2.example.jp"
    busy = [r for r in rows if r["recipient"] == "busy2@au.com" and r["status"] == "deferred"][0]
    assert busy["reply_code"] == 421 and "Too many connections" in busy["diagnostic"]
    assert [r["status"] for r in rows if r["recipient"] == "slow@slow.example.jp"] == ["deferred", "deferred", "expired"]


def test_sendmail_program_names():
    base = "u31FFPtp032300: to=<a@au.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=1, relay=msmx.au.com. [1.2.3.4], dsn=2.0.0, stat=Sent (ok)"
    rows, _ = run("sendmail", [f"Apr  2 00:15:25 h {p}[1]: {base}" for p in ("sendmail", "sm-mta", "sm-msp-queue", "postfix/smtp")])
    assert len(rows) == 3


def test_sendmail_to_list_with_display_names_gives_each_address():
    """Mail submitted with `sendmail -t` logs the To: header's form: a display name may hold a
    comma and a space (`"Yamada, Taro" <t@x>`) and ends before the angle address. Each recipient
    is its address: the list does not end at the name's `, `, and no `"yamada` or
    `taro yamada <t@x` is stored (a bounce to one would suppress an address nobody has)."""
    tail = ("delay=00:00:33, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.softbank.ne.jp. [1.2.3.6], "
            "dsn=5.1.1, stat=User unknown")
    lines = [f'Nov 13 08:30:33 mx1 sm-mta[202]: 4ADNU0aB000201: to="Yamada, Taro" <c@softbank.ne.jp>, {tail}',
             f'Nov 13 08:30:34 mx1 sm-mta[202]: 4ADNU0aB000202: to=Taro Yamada <D@softbank.ne.jp>,'
             f'"Sato, \\"Jiro\\"" <e@softbank.ne.jp>,<f@softbank.ne.jp>, ctladdr=<news@example.jp> (1000/1000), {tail}',
             f'Nov 13 08:30:35 mx1 sm-mta[202]: 4ADNU0aB000203: to=<"g, h"@softbank.ne.jp>, {tail}']
    rows, res = run("sendmail", lines)
    assert res == [EVENT] * 3
    # a quote never closed: the fields after it are still read
    unclosed, _ = run("sendmail", [f'Nov 13 08:30:36 mx1 sm-mta[202]: 4ADNU0aB000204: to="x@softbank.ne.jp, {tail}'])
    assert [(r["status"], r["dsn"], r["relay"]) for r in unclosed] == [("bounced", "5.1.1", "mx.softbank.ne.jp. [1.2.3.6]")]
    assert [(r["recipient"], r["status"], r["relay"]) for r in rows] == [
        (a, "bounced", "mx.softbank.ne.jp. [1.2.3.6]")
        for a in ("c@softbank.ne.jp", "d@softbank.ne.jp", "e@softbank.ne.jp", "f@softbank.ne.jp", "g, h@softbank.ne.jp")]


# --------------------------------------------------------------------------- qmail
def test_qmail_multilog_join_and_phases():
    lines = (SAMPLES / "qmail" / "current").read_text().splitlines()
    rows, _ = run("qmail", lines)
    phases = {(r["recipient"], r["smtp_phase"], r["status"]) for r in rows}
    assert ("saburo@i.softbank.jp", "rcpt", "bounced") in phases
    assert ("filtered@docomo.ne.jp", "end_of_data", "bounced") in phases
    assert ("far@slow.example.jp", "connect", "deferred") in phases
    assert ("member04@docomo.ne.jp", None, "expired") in phases
    saburo = [r for r in rows if r["recipient"] == "saburo@i.softbank.jp"][0]
    assert saburo["diagnostic"].splitlines()[1] == "Remote host said: 550 Invalid recipient: <Saburo@I.SoftBank.jp>"
    assert saburo["relay"] == "210.146.60.90" and saburo["sender"] == "news@mail.example.jp"
    assert ts(saburo) == datetime(2026, 11, 15, 9, 0, 2, tzinfo=UTC)  # TAI64N is UTC (18:00:02 JST)


def test_qmail_splogger_and_data_phase():
    lines = [
        "Sep  6 07:33:33 sd6 qmail: 1157520813.485077 starting delivery 2: msg 53 to remote me@wherever.jp",
        "Sep  6 07:33:34 sd6 qmail: 1157520814.000001 delivery 2: failure: 1.2.3.4_failed_on_DATA_command./Remote_host_said:_554_no/",
    ]
    rows, _ = run("qmail", lines)
    assert rows[0]["smtp_phase"] == "data" and rows[0]["reply_code"] == 554
    assert ts(rows[0]) == datetime.fromtimestamp(1157520814.000001, UTC)


def test_qmail_remote_text_with_a_long_hex_and_colon_run_is_read_in_linear_time():
    # a remote server's reply is free text: a run of tens of KiB of hex digits and colons once
    # made the relay pattern backtrack quadratically (minutes for this one line); the alarm only
    # stops a hang, the work itself takes milliseconds
    run_of = "a:" * 30_000
    texts = [f"Remote_host_said:_451_{run_of}b/"] * 9 + [
        f"Connected_to_2001:db8::25_but_sender_was_rejected./Remote_host_said:_451_{run_of}b/"]
    lines = []
    for n, text in enumerate(texts):
        lines += [f"Sep  6 07:33:33 sd6 qmail: 1157520813.{n:06d} starting delivery {n}: msg 53 to remote me@wherever.jp",
                  f"Sep  6 07:33:34 sd6 qmail: 1157520814.{n:06d} delivery {n}: deferral: {text}"]
    with alarm(60):  # (about 12 s a line before)
        rows, _ = run("qmail", lines)
    assert [(r["relay"], r["reply_code"]) for r in rows] == [(None, 451)] * 9 + [("2001:db8::25", 451)]


def test_tai64n_label():
    from pipeline.ingest.parsers.qmail import tai64n_us

    # lnav's sample label: 2005-09-22 03:31:05.997 UTC (checked with daemontools' tai64nlocal)
    us = tai64n_us("40000000433225833b6e1a8c"[:16], "40000000433225833b6e1a8c"[16:])
    assert datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:23] == "2005-09-22 03:31:05.997"


def test_detect_format_on_samples():
    for mta, path in (("postfix", SAMPLES / "postfix" / "mail.log"), ("sendmail", SAMPLES / "sendmail" / "maillog"),
                      ("qmail", SAMPLES / "qmail" / "current")):
        assert detect_format(path.read_text().splitlines()) == mta
    with gzip.open(SAMPLES / "postfix" / "mail.log.1.gz", "rt") as fh:
        assert detect_format(fh.read().splitlines()) == "postfix"
    assert detect_format(["hello world", "nothing to see"]) is None


# --------------------------------------------------------------------------- public corpus
def test_corpus_postfix_grok_lines_parse():
    """Every smtp/lmtp/local/virtual/error/pipe/qmgr line of postfix-grok-patterns parses without error.
    (A `QID: to=… status=` line is a delivery whatever the program: the tls_features lines are smtp's;
    but not the hand-off to a content filter on 127.0.0.1:2525 that queued it again, twice there.)"""
    with open(corpus_path("postfix-grok-patterns", "lines.tsv"), newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    lines, expected_events, filter_hops = [], 0, 0
    for r in rows:
        comp = r["component"]
        data = r["message"]
        lines.append(f"Nov 10 09:00:00 mx1 postfix/{comp}[1]: {data}")
        if (comp in ("smtp", "lmtp", "local", "virtual", "error", "pipe", "discard") or (comp or "").startswith("tls_features")) \
                and ": to=" in data and "status=" in data \
                and "status=deliverable" not in data and "undeliverable-but-not-cached" not in data:
            if "relay=127.0.0.1[127.0.0.1]:2525" in data and "status=sent (250 2.0.0 Ok: queued as " in data:
                filter_hops += 1
            else:
                expected_events += 1
    events, results = run("postfix", lines)
    assert expected_events >= 14 and filter_hops == 2
    assert len(events) == expected_events
    assert MALFORMED not in results
    statuses = {e["status"] for e in events}
    assert {"sent", "deferred", "bounced"} <= statuses
    assert all("@" in e["recipient"] and e["recipient"] == e["recipient"].lower() for e in events)


def test_corpus_mixed_timestamp_formats_and_inbound_only():
    lines = (corpus_path("crowdsec-hub", "postfix-logs.log")).read_text().splitlines()
    events, results = run("postfix", lines)
    assert events == [] and MALFORMED not in results  # inbound smtpd lines: not our deliveries
    ctx = ParseContext(tz=TOKYO, mtime=datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert all(split_syslog(ln, ctx) is not None for ln in lines if ln.strip())


def test_corpus_fail2ban_postfix_has_no_deliveries_and_no_crash():
    lines = (corpus_path("fail2ban", "postfix")).read_text(errors="replace").splitlines()
    events, results = run("postfix", [ln for ln in lines if not ln.startswith("#")])
    assert MALFORMED not in results


def test_corpus_fluent_sendmail():
    lines = (corpus_path("fluent-plugin-sendmail", "data1")).read_text().splitlines()
    events, _ = run("sendmail", lines)
    recips = sorted((e["recipient"], e["status"]) for e in events)
    assert ("sent1@example.com", "sent") in recips and ("sent2@example.com", "sent") in recips
    assert ("deferred1@example.com", "deferred") in recips and ("deferred1@example.com", "sent") in recips
    assert ("root@localhost.localdomain", "sent") in recips
    deferred = [e for e in events if e["status"] == "deferred"][0]
    assert deferred["dsn"] == "4.3.5" and deferred["reply_code"] == 451
    assert len(events) == 8  # 2 + 1 + 1 + 2 + 1 + 1 (local)


def test_corpus_notqmail_example_lines():
    # the doc omits splogger's numeric stamp: add one so the lines have a time, as in a real log
    raw = (corpus_path("notqmail", "TEST.deliver.example-lines.log")).read_text().splitlines()
    lines = [f"Sep  6 07:33:33 h qmail: 1157520813.{i:06d} {ln[len('qmail: '):]}" for i, ln in enumerate(raw) if ln.startswith("qmail: ")]
    events, _ = run("qmail", lines)
    got = [(e["recipient"], e["status"], e["relay"]) for e in events]
    assert got == [("me@domain", "sent", "local"), ("nonexistent@domain", "bounced", "local"),
                   ("me@domain", "sent", "local"), ("me@wherever", "sent", "1.2.3.4")]
    assert events[1]["dsn"] == "5.1.1" and events[2]["sender"] == ""


def test_corpus_tai64n_lines_from_lnav_parse_without_deliveries():
    lines = (corpus_path("lnav", "logfile_tai64n.0")).read_text().splitlines()
    events, results = run("qmail", lines)
    assert events == [] and MALFORMED not in results


def test_impossible_syslog_dates_are_skipped_not_looped_on():
    """`Feb 30` has no year: it used to send the year inference into an endless loop."""
    ctx = ParseContext(tz=TOKYO, mtime=datetime(2026, 11, 28, tzinfo=UTC).timestamp())
    assert split_syslog("Feb 30 00:00:00 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<a@b>, status=sent", ctx) is None
    assert split_syslog("Feb 29 00:00:00 mx1 postfix/smtp[4]: x", ctx) is not None  # 2024 is a leap year
    rows, results = run("postfix", ["Apr 31 10:00:00 mx1 postfix/smtp[4]: 8E8E8E8E8E: to=<a@b.example>, relay=x, dsn=2.0.0, status=sent (250 ok)"])
    assert rows == [] and results == [MALFORMED]  # a delivery line with no real time: counted, not skipped unseen


def test_common_fields_regex_agrees_with_the_generic_field_parser():
    """PostfixParser reads the usual delivery fields with one regex; wherever it matches it must
    give what parse_fields() gives, and it must leave every odd shape to parse_fields()."""
    from pipeline.ingest.parsers.postfix import COMMON_FIELDS_RE

    rests = [
        "to=<a@b.jp>, relay=mx[1.2.3.4]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)",
        "to=<a@b.jp>, orig_to=<alias@b.jp>, relay=none, delay=3, delays=0/0/3/0, dsn=4.4.1, status=deferred (connect to x: timed out)",
        "to=<A@B.JP>, relay=local, delay=0, dsn=2.0.0, status=sent",
        "to=<a@b.jp>, relay=mx[1.2.3.4]:25, conn_use=2, delay=1, tls=yes, dsn=5.1.1, status=bounced (550 x (in reply to RCPT TO command))",
        "to=< spaced@b.jp >, relay=x, dsn=2.0.0, status=sent ()",
        "to=<>, relay=x, dsn=2.0.0, status=sent (250 ok)",
        # left to parse_fields:
        'to=<"a, b"@b.jp>, relay=x, dsn=2.0.0, status=sent (250 ok)',
        "to=<a@b.jp>, relay=first, relay=second, dsn=2.0.0, status=sent (250 ok)",
        "to=<a@b.jp>, relay=x, dsn=2.0.0, dsn=2.1.0, status=sent (250 ok)",
        "to=<a@b.jp>, relay=x, dsn=2.0.0, extra=1, status=sent (250 ok)",
        "to=<a@b.jp>, dsn=2.0.0, status=sent (250 ok)",
        "to=<a@b.jp>, relay=x, dsn=2.0.0, status=sent (250 ok) trailing",
        "to=<a@b.jp>, relay=x, dsn=2.0.0, status=Sent (250 ok)",
        "to=<a@b.jp>, relay=a,b, dsn=2.0.0, status=sent (250 ok)",
    ]
    matched = 0
    for rest in rests:
        m = COMMON_FIELDS_RE.match(rest)
        if m is None:
            continue
        matched += 1
        f = parse_fields(rest)
        assert m.groups() == (f["to"], f.get("relay"), f.get("dsn"), f["status"], f["_text"]), rest
    assert matched == 6


def test_postfix_line_regex_agrees_with_split_syslog_and_qid():
    """PostfixParser matches prefix, program and queue id with one regex (LINE_RE); for every
    line it must find what split_syslog() + the postfix program check + a queue-id match find."""
    import re

    from pipeline.ingest.parsers.postfix import LINE_RE, QUEUE_ID

    qid_re = re.compile(f"({QUEUE_ID}): ")

    lines = []
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and path.suffix not in (".md", ".py", ".toml"):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", errors="replace") as fh:
                lines += fh.read().splitlines()
    crowdsec = optional_corpus_path("crowdsec-hub", "postfix-logs.log")
    if crowdsec is not None:
        lines += crowdsec.read_text().splitlines()
    lines += [
        "Nov  1 00:00:02 mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<a@b>, status=sent (250 ok)",
        "Nov 1 00:00:02.123 mx1 postfix-out/smtp: 4BcX2M1z9Kz: to=<a@b>, status=sent",
        "2026-11-02T00:00:02.5+09:00 mx2 postfix/submission/smtp[4]: 8E8E8E8E8E: removed",
        "2026-11-02 00:00:03Z mx2 postfix/qmgr[3]: 8E8E8E8E8E: from=<>, size=1",
        "Nov  1 00:00:02 mx1 postfix/smtp[abc]: 4A1B2C3D4E: to=<a@b>, status=sent",
        "Nov  1 00:00:02 mx1 postfix/smtp[4]: zz: to=<a@b>, status=sent",
        "Nov  1 00:00:02 mx1 postfix/smtp[4]: 4A1B2C3D4E:to=<a@b>",
        "Nov  1 00:00:02 mx1 sendmail[4]: 4A1B2C3D4E: to=<a@b>, stat=Sent",
        "Nov  1 00:00:02  mx1 postfix/smtp[4]: 4A1B2C3D4E: to=<a@b>",
        "Nov  1 00:00:02 mx1 postfix/smtp[4]: NOQUEUE: reject: RCPT from x",
        "Nov  1 00:00:02 mx1 postfix:smtp[4]: 4A1B2C3D4E: removed",
    ]
    ctx = ParseContext(tz=TOKYO, mtime=datetime(2026, 11, 28, tzinfo=UTC).timestamp())
    agreed = 0
    for line in lines:
        parts = split_syslog(line, ctx)
        expected = None
        if parts is not None and parts[2].startswith("postfix"):
            q = qid_re.match(parts[3])
            if q is not None:
                expected = (parts[1], parts[2], q.group(1), parts[3][q.end():])
        m = LINE_RE.match(line)
        got = None if m is None else (m.group("host"), m.group("prog"), m.group("qid"), line[m.end():])
        assert got == expected, line
        agreed += expected is not None
    assert agreed >= 50


# --------------------------------------------------------------------------- Postfix: other programs' status lines
def test_postfix_status_lines_of_qmgr_oqmgr_and_renamed_agents_are_deliveries():
    """qmgr logs some deliveries itself (`unknown mail transport error`, `delivery temporarily
    suspended` before 2.4); the old queue manager logs as `postfix/oqmgr`; a delivery agent may run
    under another program name (`postfix/smtp-out`). Each `to=… status=` line is one event, and
    oqmgr's from=/expiry/removed lines do what qmgr's do: none is skipped unseen."""
    q, r = "3C6D1C0D01", "3C6D1C0D02"
    rows, res = run("postfix", [
        f"Nov 10 09:00:00 mx1 postfix/oqmgr[2]: {q}: from=<news@example.jp>, size=10, nrcpt=2 (queue active)",
        f"Nov 10 09:00:01 mx1 postfix/qmgr[2]: {q}: to=<a@example.com>, relay=none, delay=10, delays=10/0/0/0, dsn=4.3.0, status=deferred (unknown mail transport error)",
        f"Nov 10 09:00:01 mx1 postfix/smtp-out[9]: {q}: to=<b@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.3] said: 550 5.1.1 no such user (in reply to RCPT TO command))",
        f"Nov 15 09:00:02 mx1 postfix/oqmgr[2]: {q}: from=<news@example.jp>, status=expired, returned to sender",
        f"Nov 15 09:00:02 mx1 postfix/oqmgr[2]: {q}: removed",
        f"Nov 15 09:00:03 mx1 postfix/smtp[7]: {q}: to=<c@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
        f"Nov 15 09:00:04 mx1 postfix/qmgr[2]: {r}: to=<d@example.com>, relay=x, del",
    ])
    assert res == [SKIP, EVENT, EVENT, EVENT, SKIP, EVENT, MALFORMED]
    got = [(x["recipient"], x["status"], x["sender"], x["dsn"]) for x in rows]
    assert got == [("a@example.com", "deferred", "news@example.jp", "4.3.0"),
                   ("b@example.com", "bounced", "news@example.jp", "5.1.1"),
                   ("a@example.com", "expired", "news@example.jp", "4.3.0"),
                   ("c@example.com", "sent", None, "2.0.0")]          # oqmgr's `removed` forgot the sender
    assert rows[1]["smtp_phase"] == "rcpt" and rows[1]["reply_code"] == 550


def test_postfix_softbounce_is_a_deferral_and_expires():
    """soft_bounce=yes: Postfix logs a refusal as `dsn=4.x.x, status=SOFTBOUNCE (…)` and keeps the
    message queued. It is a deferral (not a malformed line, not a bounce), and its recipient is
    returned at expiry like any other deferred one."""
    q = "4B6D11E01729"
    rows, res = run("postfix", [
        f"Oct 14 07:34:03 mx1 postfix/smtp[10837]: {q}: to=<viviane@example.com.br>, relay=mail.example.com.br[186.232.248.4]:25, delay=39993, delays=35133/4859/0.58/0.71, dsn=4.7.1, status=SOFTBOUNCE (host mail.example.com.br[186.232.248.4] said: 501 5.7.1 <news@example.jp>... Sender refused by the DNSBL b.barracudacentral.org (in reply to RCPT TO command))",
        f"Oct 14 07:35:00 mx1 postfix/local[2]: {q}: to=<login@example.net>, relay=local, delay=2, status=SOFTBOUNCE (mail forwarding loop for login@example.net)",
        f"Oct 19 07:35:00 mx1 postfix/qmgr[2]: {q}: from=<news@example.jp>, status=expired, returned to sender",
    ])
    assert res == [EVENT, EVENT, EVENT]
    got = [(r["recipient"], r["status"], r["dsn"], r["reply_code"], r["smtp_phase"]) for r in rows]
    assert got == [("viviane@example.com.br", "deferred", "4.7.1", 501, "rcpt"),
                   ("login@example.net", "deferred", None, None, None),
                   ("viviane@example.com.br", "expired", "4.7.1", 501, "rcpt"),
                   ("login@example.net", "expired", None, None, None)]


def test_sendmail_stat_queued_is_a_deferral_not_a_bounce():
    """`stat=queued` (DeliveryMode=queue, `-odq`, a load limit; the MSP that could not reach the
    MTA logs it with dsn=4.4.3) means the recipient waits in the queue: a deferral, never a bounce
    (before, a line without dsn= was counted as a hard bounce)."""
    rows, res = run("sendmail", [
        "Nov 11 09:00:22 relay2 sm-mta[3021]: 2ABB0A1u003021: from=<news@example.jp>, size=1, class=0, nrcpts=1, msgid=<qd@y>, proto=ESMTP",
        "Nov 11 09:00:22 relay2 sm-mta[3021]: 2ABB0A1u003021: to=<qd1@v.jp>, delay=00:00:00, mailer=esmtp, pri=30000, stat=queued",
        "Nov  7 16:24:04 xxx sendmail[2537]: pA7FN4rM002537: to=xxx.xxx@example.com, delay=00:01:00, mailer=esmtp, pri=30055, dsn=4.4.3, stat=queued",
        "Nov 11 09:00:23 relay2 sm-mta[3021]: 2ABB0A1u003021: to=<qd1@v.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.v.jp. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)",
    ])
    assert res == [SKIP, EVENT, EVENT, EVENT]
    assert [(r["recipient"], r["status"]) for r in rows] == [
        ("qd1@v.jp", "deferred"), ("xxx.xxx@example.com", "deferred"), ("qd1@v.jp", "sent")]


# --------------------------------------------------------------------------- time: the hour a fall-back repeats
def test_the_repeated_hour_of_a_fall_back_is_told_apart_by_the_log_s_order():
    """In New York 2026-11-01 01:00-01:59 is there twice (EDT, then EST). A traditional stamp (or
    an RFC 3339 one without offset) in that hour is its first occurrence until the log has gone
    past it; once the log has reached 01:59 EDT, 01:00 again is EST: the lines of the second
    pass neither take the times of the first (a deferral and its retry an hour later at one
    time) nor go back in time. A stamp with an offset is never moved."""
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    q = "3C6D1C0B01"
    tail = "relay=mx.example.com[192.0.2.3]:25, delay=1, delays=0.1/0/0.5/0.4"
    rows, res = run("postfix", [
        f"Nov  1 01:30:00 mx1 postfix/qmgr[2]: {q}: from=<news@example.jp>, size=100, nrcpt=1 (queue active)",
        f"Nov  1 01:30:01 mx1 postfix/smtp[7]: {q}: to=<a@example.com>, {tail}, dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.3]:25: Connection timed out)",
        f"Nov  1 01:59:59 mx1 postfix/smtp[7]: 3C6D1C0B02: to=<b@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
        f"Nov  1 01:00:00 mx1 postfix/smtp[7]: 3C6D1C0B03: to=<c@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
        f"Nov  1 01:30:01 mx1 postfix/smtp[7]: {q}: to=<a@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
        f"2026-11-01T01:40:00 mx1 postfix/smtp[7]: 3C6D1C0B04: to=<d@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
        f"2026-11-01T01:41:00-04:00 mx1 postfix/smtp[7]: 3C6D1C0B05: to=<e@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
        f"Nov  1 02:00:00 mx1 postfix/smtp[7]: 3C6D1C0B06: to=<f@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)",
    ], tz=ny, year=2026)
    assert set(res) == {SKIP, EVENT}
    got = [(r["recipient"], r["status"], ts(r).strftime("%H:%M:%S")) for r in rows]
    assert got == [("a@example.com", "deferred", "05:30:01"), ("b@example.com", "sent", "05:59:59"),
                   ("c@example.com", "sent", "06:00:00"), ("a@example.com", "sent", "06:30:01"),
                   ("d@example.com", "sent", "06:40:00"), ("e@example.com", "sent", "05:41:00"),
                   ("f@example.com", "sent", "07:00:00")]
    # sendmail's lines the same way
    rows, _ = run("sendmail", [
        "Nov  1 01:59:00 mx1 sm-mta[1]: 5AA9000000123F: to=<l@example.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=1, relay=mx.example.com. [192.0.2.3], dsn=4.4.7, stat=Deferred: Connection timed out with mx.example.com.",
        "Nov  1 01:05:00 mx1 sm-mta[1]: 5AA9000000123F: to=<l@example.com>, delay=00:06:00, xdelay=00:00:00, mailer=esmtp, pri=1, relay=mx.example.com. [192.0.2.3], dsn=2.0.0, stat=Sent (ok)",
    ], tz=ny, year=2026)
    assert [ts(r).strftime("%H:%M:%S") for r in rows] == ["05:59:00", "06:05:00"]
    # a clock far past both (an older log read after a newer one) tells nothing: the first
    ctx = ParseContext(tz=ny, source_file="t", year=2026)
    later = []
    parser = REGISTRY["postfix"](ctx, later.append)
    parser.set_state({"queue": {}, "clock": int(datetime(2026, 11, 8, tzinfo=UTC).timestamp()) * 1_000_000})
    parser.feed(f"Nov  1 01:30:01 mx1 postfix/smtp[7]: {q}: to=<a@example.com>, {tail}, dsn=2.0.0, status=sent (250 ok)", 0)
    assert ts(later[0]).strftime("%H:%M:%S") == "05:30:01"


def test_postfix_postsuper_removed_forgets_the_queue_id():
    """`postsuper -d` deletes a deferred message (`postfix/postsuper[…]: QID: removed`). Its
    short queue id (an inode number) is soon reused: the next message of that id must not inherit
    the deleted one's deferred recipients (before, its expiry returned them too, and its
    deliveries got the deleted message's sender when it logged no from= of its own)."""
    q = "3C6D1C0F01"
    rows, res = run("postfix", [
        f"Nov 10 09:00:00 mx1 postfix/qmgr[2]: {q}: from=<old@example.jp>, size=10, nrcpt=1 (queue active)",
        f"Nov 10 09:00:01 mx1 postfix/smtp[7]: {q}: to=<a@example.com>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.3]:25: Connection timed out)",
        f"Nov 10 10:00:00 mx1 postfix/postsuper[9]: {q}: removed",
        f"Nov 10 11:00:00 mx1 postfix/qmgr[2]: {q}: from=<new@example.jp>, size=10, nrcpt=1 (queue active)",
        f"Nov 10 11:00:01 mx1 postfix/smtp[7]: {q}: to=<b@example.com>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.3]:25: Connection timed out)",
        f"Nov 15 11:00:02 mx1 postfix/qmgr[2]: {q}: from=<new@example.jp>, status=expired, returned to sender",
    ])
    assert [(r["recipient"], r["status"], r["sender"]) for r in rows] == [
        ("a@example.com", "deferred", "old@example.jp"), ("b@example.com", "deferred", "new@example.jp"),
        ("b@example.com", "expired", "new@example.jp")]


def test_a_line_cut_short_with_another_glued_to_it_is_a_reject_and_the_glued_line_is_read():
    """A writer that died (or a disk that filled) mid-line, then the next line written after it:
    one line of two. Read as one it gave recipient `u2@docomo.ne.jpnov  3 16:04:33 mx1 …: to=<u3@…`
    (u3's delivery lost), or u2 with u4's status (u4's lost)."""
    tail = ", relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (550 5.1.1 unknown)"
    line = "Nov  3 16:04:3{s} mx1 postfix/smtp[123]: {q}: to=<u{n}@docomo.ne.jp>" + tail
    u2, u3, u4 = (line.format(s=n, q=f"{n}D6D1C0A1F", n=n) for n in (2, 3, 4))
    rows, res = run("postfix", [u2[:70] + u3, u2[:150] + u4])
    assert res == [MALFORMED, MALFORMED]
    assert [(r["recipient"], r["status"], r["queue_id"], r["_line"]) for r in rows] == [
        ("u3@docomo.ne.jp", "bounced", "3D6D1C0A1F", u3), ("u4@docomo.ne.jp", "bounced", "4D6D1C0A1F", u4)]
    assert [r["source_offset"] for r in rows] == [0 + 70, 1 + 150]  # (run() feeds line i at offset i)
    sm = ("Nov  3 16:04:3{n} mx1 sm-mta[1]: 4ADNU0aB00020{n}: to=<s{n}@docomo.ne.jp>, delay=00:00:01, xdelay=00:00:01, "
          "mailer=esmtp, pri=120000, relay=mx.docomo.ne.jp. [1.2.3.4], dsn=5.1.1, stat=User unknown")
    s2, s3 = (sm.format(n=n) for n in (2, 3))
    rows, res = run("sendmail", [s2[:60] + s3, s2[:200] + s3])
    assert res == [MALFORMED, MALFORMED] and [r["recipient"] for r in rows] == ["s3@docomo.ne.jp"] * 2


def test_busybox_syslogd_facility_and_priority_are_part_of_the_prefix():
    """BusyBox syslogd (Alpine, OpenWrt, containers) writes `facility.priority` between host and
    tag. Every delivery line of such a log was a malformed reject: no event at all."""
    rows, res = run("postfix", [
        "Nov 10 09:00:00 mx1 mail.info postfix/qmgr[2]: 3C6D1C0F11: from=<bb@example.jp>, size=10, nrcpt=1 (queue active)",
        "Nov 10 09:00:01 mx1 mail.info postfix/smtp[7]: 3C6D1C0F11: to=<a@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.3] said: 550 5.1.1 no (in reply to RCPT TO command))",
        "Nov 10 09:00:02 mx1 <22> postfix/smtp[7]: 3C6D1C0F12: to=<b@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
    ])
    assert res == [SKIP, EVENT, EVENT]
    assert [(r["recipient"], r["sender"], r["host"], r["status"]) for r in rows] == [
        ("a@example.com", "bb@example.jp", "mx1", "bounced"), ("b@example.com", None, "mx1", "sent")]
    rows, res = run("sendmail", [
        "Nov 10 09:00:01 mx1 mail.info sm-mta[101]: 5AA90000002234: to=<a@docomo.ne.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.jp. [192.0.2.1], dsn=5.1.1, stat=User unknown"])
    assert res == [EVENT] and [(r["recipient"], r["status"]) for r in rows] == [("a@docomo.ne.jp", "bounced")]
    rows, _ = run("qmail", [
        "Sep  6 07:33:31 sd6 mail.info qmail: 1157520811.485077 starting delivery 2: msg 2001 to remote a@example.com",
        "Sep  6 07:33:33 sd6 mail.info qmail: 1157520813.485077 delivery 2: failure: 192.0.2.1_does_not_like_recipient./Remote_host_said:_550_5.1.1_no/Giving_up_on_192.0.2.1./",
    ])
    assert [(r["recipient"], r["status"], r["host"]) for r in rows] == [("a@example.com", "bounced", "sd6")]


@pytest.mark.parametrize("mta", ["postfix", "sendmail", "qmail"])
def test_a_busybox_syslogd_log_is_read_alike_column_wise_and_per_line(tmp_path, mta):
    """A generated log with BusyBox's `mail.info` after the host: the block readers hand its
    lines to the parsers (their usual shapes do not match), and it gives what the plain log does."""
    plain = generated_log(tmp_path, mta, lines=4000, splogger=mta == "qmail")
    busybox = tmp_path / "busybox.log"
    busybox.write_text(re.sub(r"(?m)^(\S+ +\S+ \S+ \S+) ", r"\1 mail.info ", plain.read_text()))
    fast, slow = ingest_both(tmp_path, [busybox], fmt=mta)
    assert_same(fast, slow)
    as_plain, _ = ingest_both(tmp_path / "plain", [plain], fmt=mta)
    assert fast[2] == {} and len(fast[0]) == len(as_plain[0]) > 100
    strip = {"event_id", "source_file", "source_offset"}
    cols = [i for i, name in enumerate(EVENT_SCHEMA.names) if name not in strip]
    assert sorted(tuple(e[i] for i in cols) for e in fast[0]) == sorted(tuple(e[i] for i in cols) for e in as_plain[0])


def test_solaris_message_ids_are_read_and_lines_without_host_are_counted():
    """Solaris' syslogd writes `[ID <n> <facility>.<level>] ` after the tag; the line is read as
    any other (before, every such delivery line was skipped unseen). A delivery line whose prefix
    has no host cannot be read: a malformed reject, not skipped unseen."""
    rows, res = run("postfix", [
        "Nov 10 09:00:00 mx1 postfix/qmgr[2]: [ID 197553 mail.info] 3C6D1C0F11: from=<sol@example.jp>, size=10, nrcpt=1 (queue active)",
        "Nov 10 09:00:01 mx1 postfix/smtp[7]: [ID 197553 mail.info] 3C6D1C0F11: to=<a@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.3] said: 550 5.1.1 no (in reply to RCPT TO command))",
        "Nov 10 09:00:02 postfix/smtp[7]: 3C6D1C0F12: to=<b@example.com>, relay=mx.example.com[192.0.2.3]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
    ])
    assert res == [SKIP, EVENT, MALFORMED]
    assert [(r["recipient"], r["sender"], r["host"], r["smtp_phase"]) for r in rows] == [
        ("a@example.com", "sol@example.jp", "mx1", "rcpt")]
    rows, res = run("sendmail", [
        "Nov 10 09:00:00 mx1 sendmail[100]: [ID 801593 mail.info] 5AA90000002234: from=<news@example.jp>, size=1000, class=0, nrcpts=1, msgid=<s1@example.jp>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
        "Nov 10 09:00:01 mx1 sendmail[101]: [ID 801593 mail.info] 5AA90000002234: to=<a@docomo.ne.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.jp. [192.0.2.1], dsn=2.0.0, stat=Sent (OK id=1)",
        "Nov 10 09:00:02 sendmail[101]: 5AA90000002235: to=<b@docomo.ne.jp>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.jp. [192.0.2.1], dsn=2.0.0, stat=Sent (OK id=1)",
    ])
    assert res == [SKIP, EVENT, MALFORMED]
    assert [(r["recipient"], r["sender"], r["message_id"]) for r in rows] == [("a@docomo.ne.jp", "news@example.jp", "s1@example.jp")]
    rows, res = run("qmail", [
        "Sep  6 07:33:31 sd6 qmail: [ID 748625 mail.info] 1157520811.485077 starting delivery 2: msg 2001 to remote a@example.com",
        "Sep  6 07:33:33 sd6 qmail: [ID 748625 mail.info] 1157520813.485077 delivery 2: failure: 192.0.2.1_does_not_like_recipient./Remote_host_said:_550_5.1.1_no/Giving_up_on_192.0.2.1./",
    ])
    assert [(r["recipient"], r["status"], r["host"]) for r in rows] == [("a@example.com", "bounced", "sd6")]
