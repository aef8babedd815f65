"""Anyone can mail the bounce address: a bounce mail's failure counts against an address only when
it is bound to mail we sent (sql/bounce_mails.sql with sql/macros.sql binds_bounce, read by
sql/counted_errors.sql, sql/filtered_addresses.sql and sql/address_history.sql). Bound: its returned Message-ID was sent to that address (the daemon's
own attempt rows, an MTA log line), or we attempted the address within the rule's look-back. Unbound rows stay in the store; `bounces` and `suppression show` say so."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
from email.header import Header

import pytest

import pipeline
from pipeline.sender.bounces import process_bounces
from pipeline.sender.events import attempt_event, to_table
from pipeline.store.event_store import EventStore
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import show, suppressed_addresses

from fixtures import make_config, sender_toml

OURS = "news@mail.example.jp"
DAY = 86400.0


def _cfg(tmp_path):
    return make_config(tmp_path, sender_toml("127.0.0.1:9", OURS))


def forged_dsn(when: float, original: str, recipients=("gone@docomo.ne.jp", "full@au.com")) -> bytes:
    """A well-formed multipart/report from a 'mailer daemon', returning headers that look like
    ours (our From, a Message-ID the forger made up), dated as the forger likes."""
    date = email.utils.formatdate(when)
    blocks = "".join(f"Final-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\nAction: failed\n"
                     f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <{r}>: user unknown\n\n" for r in recipients)
    return f"""From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)
To: {OURS}
Date: {date}
Message-ID: <bounce-{original.strip('<>')}>
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp
Arrival-Date: {date}

{blocks}--B
Content-Type: text/rfc822-headers

From: {OURS}
Message-ID: {original}
Subject: hello

--B--
""".replace("\n", "\r\n").encode()


def carrier_bounce(to: str, when: float, n: int) -> bytes:
    """A carrier's own bounce: no delivery-status part, no returned headers; the VERP address says whose."""
    from pipeline.sender.daemon import verp_address

    subject = Header("返信メール", "iso-2022-jp").encode()
    return (f"From: MAILER-DAEMON@docomo.ne.jp\r\nTo: {verp_address(OURS, to)}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate(when)}\r\nMessage-ID: <c{n}@docomo.ne.jp>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n").encode() + \
        "送信したメールは届きませんでした。\r\n\r\n   550 5.1.1 Unknown user\r\n".encode("iso2022_jp")


def daemon_sent(cfg, recipient: str, when: float, message_id: str, row: int) -> None:
    """The send daemon's own event row: it handed `message_id` to `recipient` at `when`."""
    EventStore(cfg.data_dir).write(to_table([attempt_event(
        ts=when, host="mail.example.jp", job_id=1, row_id=row, attempt=1, message_id=message_id, sender=OURS,
        recipient=recipient, carrier="other", relay="127.0.0.1:25", status="sent", reply_code=250, reply="ok",
        smtp_phase=None, reason="delivered", scope="none", hard=None, queue_file="queue.sqlite3")]))


def _suppress(cfg):
    run_rule(cfg, cfg.rule, cfg.guard, None, tz=cfg.timezone_name)
    return suppressed_addresses(cfg)


def test_forged_dsns_for_addresses_we_never_mailed_are_kept_but_not_counted(tmp_path):
    """The probe's pair: two forged DSNs naming gone@docomo.ne.jp and full@au.com (5.1.1), with
    different Original-Message-IDs and dates, made the rule suppress both, never mailed."""
    cfg = _cfg(tmp_path)
    now = time.time()
    results = [process_bounces(cfg, raw=forged_dsn(now - 2 * DAY, "<x1@mail.example.jp>"))[0],
               process_bounces(cfg, raw=forged_dsn(now - DAY, "<x2@mail.example.jp>"))[0]]
    assert [r.status for r in results] == ["recorded", "recorded"]
    assert all("unbound (no mail of ours to this address; kept, not counted): gone@docomo.ne.jp, full@au.com"
               in r.line() for r in results), results[0].line()
    # nothing lost: the rows are in the store
    assert pipeline.connect(cfg.data_dir).execute("SELECT count(*) FROM events").fetchone() == (4,)
    assert _suppress(cfg) == set()
    info = show(cfg.data_dir, "gone@docomo.ne.jp", tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                window_days=cfg.rule.window_days)
    assert [(e["counted"], e["bound"]) for e in info["events"]] == [(False, False), (False, False)]
    out = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config", str(cfg.source),
                          "--data-dir", str(cfg.data_dir), "suppression", "show", "gone@docomo.ne.jp", "--lang", "en"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    attempts = [ln for ln in out.stdout.splitlines() if "user_unknown" in ln or "user unknown" in ln.lower()]
    assert len(attempts) == 2 and all(ln.lstrip().startswith("?") for ln in attempts), out.stdout
    assert "unbound, no mail of ours to this address; kept, not counted" in out.stdout


def mixed_store(tmp_path, now: float):
    """Bound and unbound bounce mails beside the daemon's own rows; the rule suppresses gone@
    (DSNs of the messages sent to it), taro@ (carrier bounces, mailed 3 days before) and hanako@
    (DSNs whose Message-IDs no row names, mailed 3 days before)."""
    cfg = _cfg(tmp_path)
    daemon_sent(cfg, "gone@docomo.ne.jp", now - 2 * DAY - 600, "<m1@mail.example.jp>", 1)
    daemon_sent(cfg, "gone@docomo.ne.jp", now - DAY - 600, "<m2@mail.example.jp>", 2)
    daemon_sent(cfg, "taro@docomo.ne.jp", now - 3 * DAY, "<m3@mail.example.jp>", 3)
    daemon_sent(cfg, "old@docomo.ne.jp", now - 60 * DAY, "<m4@mail.example.jp>", 4)
    # m1 and m2 were sent to gone@, not to full@ (a forger who received one of our mails knows its id)
    first = process_bounces(cfg, raw=forged_dsn(now - 2 * DAY, "<m1@mail.example.jp>"))[0]
    process_bounces(cfg, raw=forged_dsn(now - DAY, "<m2@mail.example.jp>"))
    assert "unbound (no mail of ours to this address; kept, not counted): full@au.com" in first.line()
    # carrier bounces naming no Message-ID: taro@ was mailed 3 days ago, old@ 60 days ago only
    for n, (to, when) in enumerate([("taro@docomo.ne.jp", now - 2 * DAY), ("taro@docomo.ne.jp", now - DAY),
                                    ("old@docomo.ne.jp", now - 2 * DAY), ("old@docomo.ne.jp", now - DAY)]):
        res = process_bounces(cfg, raw=carrier_bounce(to, when, n))[0]
        assert res.status == "recorded" and ("unbound" in res.line()) == to.startswith("old"), res.line()
    # a log that names no Message-ID (qmail): a DSN returning one binds by the look-back alone
    daemon_sent(cfg, "hanako@au.com", now - 3 * DAY, None, 5)
    for n, when in enumerate((now - 2 * DAY, now - DAY)):
        res = process_bounces(cfg, raw=forged_dsn(when, f"<q{n}@mail.example.jp>", recipients=("hanako@au.com",)))[0]
        assert res.status == "recorded" and "unbound" not in res.line(), res.line()
    return cfg


def test_bounces_of_mail_we_sent_still_count(tmp_path):
    """A DSN returning the Message-ID the daemon sent to the address counts (a bounce returning
    one of our Message-IDs sent to someone else, never mailed, does not); a bounce without
    returned headers, or whose Message-ID no row names, counts when we attempted the address
    within the rule's look-back (not when the last mail to it is older)."""
    cfg = mixed_store(tmp_path, time.time())
    assert _suppress(cfg) == {"gone@docomo.ne.jp", "taro@docomo.ne.jp", "hanako@au.com"}
    info = show(cfg.data_dir, "gone@docomo.ne.jp", tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                window_days=cfg.rule.window_days)
    assert [(e["status"], e["counted"], e["bound"]) for e in info["events"]] == [
        ("sent", False, None), ("bounced", True, True), ("sent", False, None), ("bounced", True, True)]


@pytest.mark.slow
def test_the_binding_is_the_same_on_spark(tmp_path, monkeypatch):
    """The rule's first step (sql/counted_errors.sql, binding included) gives the same rows on
    Spark as on DuckDB (the lake runs the rule there: docs/scale-out.md); an IDN address stored
    in Unicode by an older version and in A-label form today is one address on both engines
    (sql/events.sql, lake.spark.canonical_events), also once the events are narrowed to an as_of."""
    from datetime import datetime, timezone

    from lakekit import require_spark

    require_spark()
    import pipeline.store.event_store as event_store
    from fixtures import event, store_events
    from pipeline.lake.engines import DuckDBEngine, SparkEngine, normalise
    from pipeline.suppression.rule import parse_as_of, rule_params

    now = time.time()
    cfg = mixed_store(tmp_path, now)
    with monkeypatch.context() as old_version:                     # the writer before the canonical form
        old_version.setattr(event_store, "canonical_recipients", lambda table: table)
        store_events(cfg, [event("ken@例え.jp", datetime.fromtimestamp(now - 2 * DAY, timezone.utc))])
    store_events(cfg, [event("ken@xn--r8jz45g.jp", datetime.fromtimestamp(now - DAY, timezone.utc))])
    params = rule_params(cfg.rule, cfg.timezone_name, parse_as_of(None, cfg.timezone_name))
    got = {}
    for name, engine in (("duckdb", DuckDBEngine.open(cfg)), ("spark", SparkEngine.open(cfg))):
        try:
            engine.events_up_to(params["as_of"])  # as an as-of run narrows: the rows stay canonical
            engine.keep("bounce_mails", params, table="bounce_mails")  # as the rule keeps it
            got[name] = sorted((r["address"], r["event_id"], r["message"])
                               for r in normalise(engine.query("counted_errors", params)).to_pylist())
            got[name + " binding"] = sorted((r["event_id"], r["bound"])
                                            for r in normalise(engine.query("bounce_mails", params)).to_pylist())
        finally:
            engine.close()
    assert got["spark"] == got["duckdb"]
    assert got["spark binding"] == got["duckdb binding"]
    assert {b for _, b in got["duckdb binding"]} == {True, False}
    assert sorted({a for a, _, _ in got["duckdb"]}) == ["gone@docomo.ne.jp", "hanako@au.com", "ken@xn--r8jz45g.jp",
                                                        "taro@docomo.ne.jp"]
    assert len([a for a, _, _ in got["spark"] if a == "ken@xn--r8jz45g.jp"]) == 2


def test_the_report_counts_the_errors_the_rule_counts(tmp_path):
    """The report's counted_errors (and so the notebook's) are the rule's: a bounce mail's row only
    when bound. The report counted every failure a bounce mail claimed: full@au.com's and old@'s
    unbound rows made au 4 and docomo 6, more than the rule counted, and more than `suppression
    show` marks."""
    from pipeline.report.figures import build_report

    cfg = mixed_store(tmp_path, time.time())
    totals = build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name).tables["carrier_totals"]
    reported = dict(zip(totals["carrier"], totals["counted_errors"]))
    # au: hanako@'s two bound DSNs (not full@'s two forged ones); docomo: gone@'s two and taro@'s
    # two (not old@'s two, mailed 60 days before)
    assert reported == {"au": 2, "docomo": 4, "other": 0, "all": 6}
    shown = {}
    for address in ("gone@docomo.ne.jp", "taro@docomo.ne.jp", "old@docomo.ne.jp", "hanako@au.com", "full@au.com"):
        info = show(cfg.data_dir, address, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                    window_days=cfg.rule.window_days)
        shown[address] = sum(e["counted"] for e in info["events"])
    assert shown == {"gone@docomo.ne.jp": 2, "taro@docomo.ne.jp": 2, "old@docomo.ne.jp": 0, "hanako@au.com": 2,
                     "full@au.com": 0}
    assert sum(shown.values()) == reported["all"]


FILTER_REPLY = "550 5.7.1 Rejected by the recipient's domain filter"


def test_the_filtered_export_takes_a_bounce_mails_refusal_only_when_bound(tmp_path):
    """export --filtered: a reception-filter refusal from a bounce mail names an address for the
    CRM to contact only when bound to mail we sent to it, as the rule counts; a forged DSN for an
    address we never mailed named it."""
    from pipeline.suppression.export import export_filtered

    cfg = _cfg(tmp_path)
    now = time.time()
    daemon_sent(cfg, "mailed@docomo.ne.jp", now - DAY - 600, "<f1@mail.example.jp>", 1)
    for to, original in (("mailed@docomo.ne.jp", "<f1@mail.example.jp>"), ("never@docomo.ne.jp", "<f2@mail.example.jp>")):
        raw = forged_dsn(now - DAY, original, recipients=(to,)).replace(b"550 5.1.1 <" + to.encode() + b">: user unknown",
                                                                       FILTER_REPLY.encode())
        assert [r.status for r in process_bounces(cfg, raw=raw)] == ["recorded"]
    reasons = pipeline.connect(cfg.data_dir).execute(
        "SELECT recipient, reason FROM events WHERE status = 'bounced' ORDER BY recipient").fetchall()
    assert reasons == [("mailed@docomo.ne.jp", "filtered"), ("never@docomo.ne.jp", "filtered")]
    out = tmp_path / "filtered.csv"
    n = export_filtered(cfg.data_dir, out, cfg.export, tz=cfg.timezone_name, window_days=cfg.rule.window_days)
    assert n == 1
    assert [ln.split(",")[0] for ln in out.read_text().splitlines()[1:]] == ["mailed@docomo.ne.jp"]
