"""The multi-day rule (sql/suppression_candidates.sql) on real Parquet through DuckDB."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipeline.core.errors import GuardTripped, InputError, NoDataError
from pipeline.suppression import store as suppression
from pipeline.suppression.rule import evaluate
from pipeline.suppression.rule import run_rule as _run_rule
from pipeline.suppression.store import SuppressionStore, suppressed_addresses

from fixtures import TOKYO, at, event, make_config, store_events

AS_OF = "2026-11-30"


def candidates(cfg, as_of=AS_OF):
    return evaluate(cfg.data_dir, cfg.rule, as_of, tz=cfg.timezone_name)


def marked(cfg, as_of=AS_OF):
    return {r["address"] for r in candidates(cfg, as_of)}


def run_rule(cfg, as_of=None, **kw):
    return _run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, as_of, tz=cfg.timezone_name, **kw)


def new_addresses(result):
    return [r["address"] for r in result.new]


def test_two_days_inside_a_week(cfg):
    store_events(cfg, [event("a@docomo.ne.jp", at(10)), event("a@docomo.ne.jp", at(14))])
    found = candidates(cfg)
    assert [r["address"] for r in found] == ["a@docomo.ne.jp"]
    row = found[0]
    assert row["error_count"] == 2 and row["distinct_days"] == 2
    assert str(row["window_start"])[:10] == "2026-11-10"


def test_many_errors_on_one_day_is_not_enough(cfg):
    store_events(cfg, [event("a@au.com", at(10, h)) for h in (8, 9, 10, 11, 12)])
    assert marked(cfg) == set()


def test_two_days_eight_days_apart(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(18))])
    assert marked(cfg) == set()


def test_seven_day_window_is_inclusive_of_day_seven(cfg):
    # 10th and 16th are inside one 7-day window (10..16); 10th and 17th are not
    store_events(cfg, [event("in@au.com", at(10)), event("in@au.com", at(16)),
                       event("out@au.com", at(10)), event("out@au.com", at(17))])
    assert marked(cfg) == {"in@au.com"}


def test_third_error_closes_a_window(cfg):
    store_events(cfg, [event("a@au.com", at(1)), event("a@au.com", at(9))])
    assert marked(cfg) == set()
    store_events(cfg, [event("a@au.com", at(12))])  # 9th and 12th: one window
    assert marked(cfg) == {"a@au.com"}


def test_recovery_by_later_delivery_and_relapse(cfg):
    store_events(cfg, [event("a@docomo.ne.jp", at(10)), event("a@docomo.ne.jp", at(11)),
                       event("a@docomo.ne.jp", at(12), status="sent")])
    assert marked(cfg) == set()
    store_events(cfg, [event("a@docomo.ne.jp", at(13))])
    assert marked(cfg) == set()  # only one error since the delivery
    store_events(cfg, [event("a@docomo.ne.jp", at(15))])
    assert marked(cfg) == {"a@docomo.ne.jp"}
    # evaluated as of before the relapse, the address had recovered
    assert marked(cfg, "2026-11-14") == set()
    # and as of the 11th, before the delivery, it was dead
    assert marked(cfg, "2026-11-11") == {"a@docomo.ne.jp"}


@pytest.mark.parametrize("reason,scope", [
    ("rate_limited", "sender"), ("blocked", "sender"), ("filtered", "sender"), ("policy", "sender"),
    ("spam", "sender"), ("network", "network"), ("system", "unknown"),
    ("user_unknown", "sender"),  # a counted reason with the wrong scope does not count either
])
def test_non_counted_reasons_never_suppress(cfg, reason, scope):
    store_events(cfg, [event("a@au.com", at(d), reason=reason, scope=scope) for d in (10, 11, 12, 13)])
    assert marked(cfg) == set()


def test_mixed_counted_and_non_counted(cfg):
    store_events(cfg, [
        event("a@au.com", at(10)), event("a@au.com", at(11), reason="rate_limited", scope="sender"),
        event("b@au.com", at(10)), event("b@au.com", at(12), reason="mailbox_full"),
        event("c@au.com", at(10), status="deferred", reason="host_unknown"),
        event("c@au.com", at(11), status="expired", reason="host_unknown"),
        event("d@au.com", at(10), status="undeliverable"), event("d@au.com", at(11), status="undeliverable"),
    ])
    assert marked(cfg) == {"b@au.com", "c@au.com"}


PF_DEFER = ("{stamp} mx1 postfix/smtp[2185]: {qid}: to=<{to}>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
            "delay=1.2, delays=0.1/0/0.6/0.5, dsn=4.2.2, status=deferred (host mfsmax.docomo.ne.jp[203.138.181.112] "
            "said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))")


def pf_message(qid, day, hh=9):
    return [f"Nov {day:2d} {hh:02d}:00:00 mx1 postfix/cleanup[2183]: {qid}: message-id=<{qid}@mail.example.jp>",
            f"Nov {day:2d} {hh:02d}:00:00 mx1 postfix/qmgr[2184]: {qid}: from=<news@mail.example.jp>, size=4210, nrcpt=1 (queue active)"]


def test_one_message_deferred_for_days_then_expired_is_one_error(tmp_path, cfg):
    # Postfix retries a "mailbox full" message every ~70 minutes for five days, then gives up:
    # one message that failed, not errors on six days (it was: 109 errors on 6 days, suppressed)
    from datetime import timedelta

    from pipeline.ingest.engine import ingest

    lines = pf_message("4ABC123DEF", 13, 8)
    t = datetime(2026, 11, 13, 8, 30)
    while t < datetime(2026, 11, 18, 8, 0):
        lines.append(PF_DEFER.format(stamp=f"{t:%b} {t.day:2d} {t:%H:%M:%S}", qid="4ABC123DEF", to="full@docomo.ne.jp"))
        t += timedelta(seconds=4000)
    lines.append(f"Nov 18 08:30:00 mx1 postfix/qmgr[2186]: 4ABC123DEF: from=<news@mail.example.jp>, status=expired, returned to sender")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], year=2026)
    assert marked(cfg) == set()

    # a second message, sent two days later, that fails too: two failed deliveries on two days
    more = pf_message("5DEF456ABC", 15) + [
        PF_DEFER.format(stamp="Nov 15 09:00:02", qid="5DEF456ABC", to="full@docomo.ne.jp"),
        PF_DEFER.format(stamp="Nov 15 10:06:42", qid="5DEF456ABC", to="full@docomo.ne.jp")]
    log2 = tmp_path / "mail.log.2"
    log2.write_text("\n".join(more) + "\n")
    ingest(cfg, [log2], year=2026)
    (row,) = candidates(cfg)
    assert row["address"] == "full@docomo.ne.jp"
    assert (row["error_count"], row["distinct_days"], str(row["window_start"])) == (2, 2, "2026-11-13")
    # every counted attempt behind the verdict stays evidence
    assert len(row["event_ids"].split(",")) == len(lines) - 2 + 2


def test_qmail_deferrals_of_one_message_are_one_error_and_a_reused_inode_is_a_new_message(tmp_path, cfg):
    from pipeline.ingest.engine import ingest

    def tai(dt):
        return f"@{int(dt.timestamp()) + 4611686018427387914:016x}00000000"

    lines, n = [], 0
    for day in (10, 11, 12):  # msg 77 deferred on three days: one message
        n += 1
        dt = datetime(2026, 11, day, 3, tzinfo=timezone.utc)
        lines += [f"{tai(dt)} starting delivery {n}: msg 77 to remote full@au.com",
                  f"{tai(dt)} delivery {n}: deferral: 111.86.141.160_does_not_like_recipient./"
                  "Remote_host_said:_452_4.2.2_<full@au.com>:_Mailbox_full/"]
    for day in (10, 12):  # inode 88 reused by a later message after the first one failed: two messages
        n += 1
        dt = datetime(2026, 11, day, 4, tzinfo=timezone.utc)
        lines += [f"{tai(dt)} new msg 88", f"{tai(dt)} info msg 88: bytes 1000 from <news@mail.example.jp> qp 1 uid 1",
                  f"{tai(dt)} starting delivery {n}: msg 88 to remote dead@au.com",
                  f"{tai(dt)} delivery {n}: failure: 111.86.141.160_does_not_like_recipient./"
                  "Remote_host_said:_550_<dead@au.com>:_User_unknown/Giving_up_on_111.86.141.160./",
                  f"{tai(dt)} end msg 88"]
    log = tmp_path / "current"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], fmt="qmail")
    assert marked(cfg) == {"dead@au.com"}


def amavis_message(n, day, to, delivered, hop="127.0.0.1[127.0.0.1]:10024"):
    """One message through a content filter: Postfix hands it to `hop` (127.0.0.1:10024:
    status=sent), the filter re-injects it under a new queue id, which is then delivered or refused."""
    a, b, mid = f"A{n:04d}AAAA", f"B{n:04d}BBBB", f"<{n}.{day}@mail.example.jp>"
    relay = "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1.2, delays=0.1/0/0.6/0.5"
    return [
        f"Nov {day} 09:00:00 mx1 postfix/cleanup[103]: {a}: message-id={mid}",
        f"Nov {day} 09:00:00 mx1 postfix/qmgr[100]: {a}: from=<news@mail.example.jp>, size=4210, nrcpt=1 (queue active)",
        f"Nov {day} 09:00:01 mx1 postfix/smtp[101]: {a}: to=<{to}>, relay={hop}, delay=0.5, "
        f"delays=0.1/0/0/0.4, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {b})",
        f"Nov {day} 09:00:01 mx1 postfix/qmgr[100]: {a}: removed",
        f"Nov {day} 09:00:01 mx1 postfix/cleanup[103]: {b}: message-id={mid}",
        f"Nov {day} 09:00:01 mx1 postfix/qmgr[100]: {b}: from=<news@mail.example.jp>, size=4500, nrcpt=1 (queue active)",
        f"Nov {day} 09:00:03 mx1 postfix/smtp[104]: {b}: to=<{to}>, {relay}, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)"
        if delivered else
        f"Nov {day} 09:00:03 mx1 postfix/smtp[104]: {b}: to=<{to}>, {relay}, dsn=5.0.0, status=bounced (host "
        f"mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user {to} (in reply to RCPT TO command))",
        f"Nov {day} 09:00:03 mx1 postfix/qmgr[100]: {b}: removed"]


def hand_offs(cfg, address):
    """Queue ids of the `sent` attempts `suppression show` marks as hand-offs."""
    from pipeline.suppression.store import show

    info = show(cfg.data_dir, address, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                window_days=cfg.rule.window_days)
    return [e["queue_id"] for e in info["events"] if e["hand_off"]]


@pytest.mark.parametrize("hop, stored", [
    # amavis on this host: the parser stores no event for the hop (postfix.is_filter_hop)
    ("127.0.0.1[127.0.0.1]:10024", False),
    # a relay inside the network that says "queued as": stored, and the rule tells it is a hop
    ("relay.internal.example.jp[10.0.0.25]:25", True),
])
def test_a_hand_off_to_a_content_filter_is_no_delivery(tmp_path, cfg, hop, stored):
    # every message is first `sent` on to a filter or relay: that hop cleared the address's
    # errors, so a dead address refused on two days was never suppressed
    from pipeline.ingest.engine import ingest

    lines = [line for n, day, to, ok in ((1, 13, "dead@docomo.ne.jp", False), (2, 13, "ok@docomo.ne.jp", True),
                                         (3, 15, "dead@docomo.ne.jp", False), (4, 15, "ok@docomo.ne.jp", True))
             for line in amavis_message(n, day, to, ok, hop)]
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], year=2026)
    (row,) = candidates(cfg)
    assert (row["address"], row["error_count"], row["last_sent"]) == ("dead@docomo.ne.jp", 2, None)
    # `suppression show` marks the stored hops (the same test as the rule's), so the evidence
    # explains why the "sent" lines between the errors cleared nothing
    assert hand_offs(cfg, "dead@docomo.ne.jp") == (["A0001AAAA", "A0003AAAA"] if stored else [])
    assert hand_offs(cfg, "ok@docomo.ne.jp") == []
    # a real delivery after them still clears them
    more = amavis_message(5, 16, "dead@docomo.ne.jp", True)
    (tmp_path / "mail.log.2").write_text("\n".join(more) + "\n")
    ingest(cfg, [tmp_path / "mail.log.2"], year=2026)
    assert marked(cfg) == set()


def test_only_a_delivery_attempt_clears_the_errors(cfg):
    """The latest delivery is a `sent` of `attempts`: a null-sender DSN delivered to the address
    (`from=<>`: a delivery notice, a bounce of ours) is no mail of ours and cleared its errors
    (the rule read every `sent` row of `events`). `suppression show` marks it, the rule counts
    through it; a real delivery after it still clears them."""
    a = "dead@docomo.ne.jp"
    store_events(cfg, [event(a, at(10)), event(a, at(11)),
                       event(a, at(12), status="sent", sender="", relay="mx.docomo.ne.jp")])
    (row,) = candidates(cfg)
    assert (row["address"], row["error_count"], row["last_sent"]) == (a, 2, None)
    info = suppression.show(cfg, a, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                            window_days=cfg.rule.window_days)
    assert [(e["status"], e["counted"], e["null_sender"]) for e in info["events"]] == [
        ("bounced", True, False), ("bounced", True, False), ("sent", False, True)]
    store_events(cfg, [event(a, at(13), status="sent")])
    assert marked(cfg) == set()


def test_a_retry_delivered_in_the_second_of_its_deferral_is_a_delivery(tmp_path, cfg):
    # syslog stamps have whole seconds: a deferral and the successful retry of the same message
    # often share one. The later line of the log is the delivery, which clears the error before it
    from pipeline.ingest.engine import ingest

    relay = "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1.2, delays=0.1/0/0.6/0.5"

    def refused(qid, day):
        return pf_message(qid, day) + [
            f"Nov {day} 09:00:02 mx1 postfix/smtp[104]: {qid}: to=<back@docomo.ne.jp>, {relay}, dsn=5.0.0, status=bounced "
            "(host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user back@docomo.ne.jp (in reply to RCPT TO command))"]

    lines = refused("4A0000000A", 10) + pf_message("4B0000000B", 11) + [
        f"Nov 11 09:00:02 mx1 postfix/smtp[104]: 4B0000000B: to=<back@docomo.ne.jp>, {relay}, dsn=4.3.0, status=deferred "
        "(host mfsmax.docomo.ne.jp[203.138.181.112] said: 451 4.3.0 Temporary failure (in reply to RCPT TO command))",
        f"Nov 11 09:00:02 mx1 postfix/smtp[105]: 4B0000000B: to=<back@docomo.ne.jp>, {relay}, dsn=2.0.0, status=sent "
        "(250 2.0.0 Ok: queued)"] + refused("4C0000000C", 12)
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], year=2026)
    assert marked(cfg) == set()  # one error since the delivery of the 11th
    assert hand_offs(cfg, "back@docomo.ne.jp") == []


def test_a_bounce_mail_repeating_the_log_is_the_same_error(tmp_path, cfg):
    # Postfix logs the refusal at 23:59:50 and returns a DSN, read by `mailhygiene bounces` at
    # 00:00:10: one failed message, not errors on two days (Postfix logs the Message-ID without
    # its angle brackets, the bounce mail's copy has them)
    import email.utils

    from pipeline.ingest.engine import ingest
    from pipeline.sender.bounces import process_bounces

    log = tmp_path / "mail.log"
    log.write_text("\n".join([
        "Nov 10 23:59:48 mx1 postfix/cleanup[103]: 4F00A1B2C3: message-id=<m1@mail.example.jp>",
        "Nov 10 23:59:48 mx1 postfix/qmgr[100]: 4F00A1B2C3: from=<news@mail.example.jp>, size=4210, nrcpt=1 (queue active)",
        "Nov 10 23:59:50 mx1 postfix/smtp[104]: 4F00A1B2C3: to=<once@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
        "delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.0.0, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] "
        "said: 550 Unknown user once@docomo.ne.jp (in reply to RCPT TO command))"]) + "\n")
    ingest(cfg, [log], year=2026)
    date = email.utils.format_datetime(datetime(2026, 11, 10, 15, 0, 10, tzinfo=timezone.utc))
    raw = (f"From: MAILER-DAEMON@mail.example.jp\r\nTo: news@mail.example.jp\r\nDate: {date}\r\n"
           "Message-ID: <dsn1@mail.example.jp>\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
           "--B\r\nContent-Type: text/plain\r\n\r\n<once@docomo.ne.jp>: host mfsmax.docomo.ne.jp[203.138.181.112] said: "
           "550 Unknown user once@docomo.ne.jp (in reply to RCPT TO command)\r\n\r\n"
           "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.jp\r\n\r\n"
           "Final-Recipient: rfc822; once@docomo.ne.jp\r\nAction: failed\r\nStatus: 5.0.0\r\n"
           "Diagnostic-Code: smtp; 550 Unknown user once@docomo.ne.jp\r\n\r\n"
           "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@mail.example.jp\r\n"
           "Message-ID: <m1@mail.example.jp>\r\n\r\n--B--\r\n").encode()
    (result,) = process_bounces(cfg, raw=raw)
    assert result.status == "recorded", result
    import pipeline

    days = pipeline.connect(cfg.data_dir).execute(
        "SELECT count(*), count(DISTINCT CAST(ts AT TIME ZONE 'Asia/Tokyo' AS DATE)) FROM events "
        "WHERE recipient = 'once@docomo.ne.jp' AND reason = 'user_unknown'").fetchone()
    assert days == (2, 2)  # the log's line and the bounce mail, on two local days
    assert marked(cfg) == set()


def test_the_senders_retries_of_one_recipient_are_one_error(cfg):
    # the send daemon retries a 452 "mailbox full" with backoff (each attempt a new rendering,
    # so a new Message-ID) and gives up after sender.max_attempts with status expired: the
    # attempts of its queue row (queue_id job.row) are one delivery, even across midnight
    import email.utils

    from pipeline.sender.events import attempt_event, to_table
    from pipeline.store.event_store import EventStore

    def attempt(n, when, status="deferred", row_id=7):
        return attempt_event(
            ts=when.replace(tzinfo=TOKYO).timestamp(), host="mail.example.jp", job_id=3, row_id=row_id, attempt=n,
            message_id=email.utils.make_msgid(domain="mail.example.jp"), sender="news@mail.example.jp",
            recipient="full@au.com", carrier="au", relay="msmx.au.com:25", status=status, reply_code=452,
            reply="4.2.2 <full@au.com>: Mailbox full", smtp_phase="rcpt", reason="mailbox_full", scope="recipient",
            hard=False, queue_file="/var/lib/mailhygiene/sender/queue.sqlite")

    tries = [at(10, 22, 0), at(10, 22, 30), at(10, 23, 30), at(11, 0, 30), at(11, 1, 30)]
    rows = [attempt(n, when) for n, when in enumerate(tries, 1)] + [attempt(6, at(11, 2, 30), "expired")]
    EventStore(cfg.data_dir).write(to_table(rows))
    assert marked(cfg) == set()
    # another job's message to the same address, failing two days later: two deliveries
    EventStore(cfg.data_dir).write(to_table([attempt(1, at(13, 9), "bounced", row_id=8)]))
    (row,) = candidates(cfg)
    assert (row["address"], row["error_count"], row["distinct_days"]) == ("full@au.com", 2, 2)


def test_local_midnight_in_tokyo(cfg):
    # 23:50 and 00:10 JST are two Tokyo calendar days (but the same UTC day)
    store_events(cfg, [event("a@au.com", at(10, 23, 50)), event("a@au.com", at(11, 0, 10))])
    assert marked(cfg) == {"a@au.com"}


def test_utc_midnight_is_not_a_tokyo_day_boundary(cfg):
    # 08:50 and 09:10 JST straddle UTC midnight but are one Tokyo day
    store_events(cfg, [event("a@au.com", at(10, 8, 50)), event("a@au.com", at(10, 9, 10))])
    assert marked(cfg) == set()


def test_days_follow_the_configured_zone(tmp_path):
    cfg_utc = make_config(tmp_path, timezone="UTC")
    store_events(cfg_utc, [event("a@au.com", at(10, 8, 50)), event("a@au.com", at(10, 9, 10))])
    assert marked(cfg_utc) == {"a@au.com"}  # two UTC days


def test_case_and_quoting_variants_are_one_address(tmp_path, cfg):
    from pipeline.ingest.engine import ingest

    log = tmp_path / "mail.log"
    lines = []
    for day, to in ((10, '"Taro..Yamada."@DoCoMo.ne.jp'), (12, '"taro..yamada."@docomo.ne.jp')):
        lines.append(f"Nov {day} 09:00:00 mx1 postfix/smtp[1]: 3C6D1C0A{day}: to=<{to}>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
                     "delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: "
                     f"550 Unknown user {to} (in reply to RCPT TO command))")
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], year=2026)
    assert marked(cfg) == {"taro..yamada.@docomo.ne.jp"}


def test_one_address_across_postfix_sendmail_and_qmail(cfg):
    store_events(cfg, [event("x@i.softbank.jp", at(10), mta="postfix"),
                       event("y@i.softbank.jp", at(11), mta="sendmail"),
                       event("y@i.softbank.jp", at(13), mta="qmail")])
    assert marked(cfg) == {"y@i.softbank.jp"}


def test_qmail_tai64n_utc_timestamps_count_in_local_days(tmp_path, cfg):
    from pipeline.ingest.engine import ingest

    def tai(dt):
        return f"@{int(dt.timestamp()) + 4611686018427387914:016x}00000000"

    # 14:55 UTC = 23:55 JST on the 10th; 15:05 UTC = 00:05 JST on the 11th
    lines = []
    for n, dt in ((1, datetime(2026, 11, 10, 14, 55, tzinfo=timezone.utc)), (2, datetime(2026, 11, 10, 15, 5, tzinfo=timezone.utc))):
        lines += [f"{tai(dt)} starting delivery {n}: msg 9{n} to remote late@au.com",
                  f"{tai(dt)} delivery {n}: failure: 111.86.141.160_does_not_like_recipient./Remote_host_said:_550_<late@au.com>:_User_unknown/Giving_up_on_111.86.141.160./"]
    log = tmp_path / "current"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], fmt="qmail")
    assert marked(cfg) == {"late@au.com"}
    utc_cfg = make_config(tmp_path, timezone="UTC", data_dir=cfg.data_dir)
    assert marked(utc_cfg) == set()  # one UTC day


def test_whole_history_is_evaluated_for_backfills(cfg):
    store_events(cfg, [event("old@au.com", at(3, month=2, year=2025)), event("old@au.com", at(5, month=2, year=2025))])
    assert marked(cfg) == {"old@au.com"}


def test_as_of_excludes_later_events(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12))])
    assert marked(cfg, "2026-11-11") == set()
    assert marked(cfg, "2026-11-12") == {"a@au.com"}


def test_run_rule_applies_once_and_is_idempotent(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12)), event("ok@au.com", at(12), status="sent")])
    first = run_rule(cfg, as_of=AS_OF)
    assert first.applied and new_addresses(first) == ["a@au.com"]
    second = run_rule(cfg, as_of=AS_OF)
    assert len(second.new) == 0 and second.already_listed == 1 and not second.applied
    assert suppressed_addresses(cfg) == {"a@au.com"}
    hist = suppression.show(cfg, "a@au.com", tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                            window_days=cfg.rule.window_days)["history"]
    assert [h["action"] for h in hist] == ["added"]


def test_dry_run_changes_nothing(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12))])
    res = run_rule(cfg, as_of=AS_OF, dry_run=True)
    assert new_addresses(res) == ["a@au.com"] and not res.applied
    assert suppressed_addresses(cfg) == frozenset()


def test_release_keeps_history_and_only_later_errors_count(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12))])
    run_rule(cfg, as_of=AS_OF)
    suppression.release(cfg, "A@au.com", "customer fixed the phone")
    assert suppressed_addresses(cfg) == frozenset()
    res = run_rule(cfg)  # old errors happened before the release: they no longer count
    assert len(res.new) == 0
    hist = suppression.show(cfg, "a@au.com", tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                            window_days=cfg.rule.window_days)["history"]
    assert [h["action"] for h in hist] == ["added", "released"]
    assert hist[1]["note"] == "customer fixed the phone"


def test_manual_add_and_errors(cfg):
    suppression.add(cfg, "Complainer@AU.com", "asked to stop")
    assert suppressed_addresses(cfg) == {"complainer@au.com"}
    with pytest.raises(InputError):
        suppression.add(cfg, "complainer@au.com", None)
    with pytest.raises(InputError):
        suppression.release(cfg, "nobody@au.com", None)
    with pytest.raises(InputError):
        suppression.add(cfg, "not-an-address", None)


def test_guard_fraction_trips_and_force_applies(tmp_path):
    cfg = make_config(tmp_path, "[guard]\nmax_new_fraction = 0.05\nmin_new = 3\n")
    rows = []
    for i in range(10):  # 10 dead of 40 active = 25 %
        rows += [event(f"dead{i}@au.com", at(10)), event(f"dead{i}@au.com", at(12))]
    rows += [event(f"ok{i}@au.com", at(12), status="sent") for i in range(30)]
    store_events(cfg, rows)
    with pytest.raises(GuardTripped) as exc:
        run_rule(cfg, as_of=AS_OF)
    assert "25.0%" in str(exc.value) and "max_new_fraction" in str(exc.value)
    assert suppressed_addresses(cfg) == frozenset()
    res = run_rule(cfg, as_of=AS_OF, force=True)
    assert res.applied and len(suppressed_addresses(cfg)) == 10


def test_guard_detects_a_carrier_blocking_us(tmp_path):
    # docomo answers "550 Unknown user" to everybody on one day: a block, not 30 dead addresses
    cfg = make_config(tmp_path, "[guard]\nmax_new_fraction = 1.0\nblock_rate = 0.5\nblock_min_errors = 20\n")
    rows = []
    for i in range(30):
        rows.append(event(f"u{i}@docomo.ne.jp", at(10, 9), status="sent"))
        rows.append(event(f"u{i}@docomo.ne.jp", at(14, 9), diagnostic=f"550 Unknown user u{i}@docomo.ne.jp"))
        rows.append(event(f"u{i}@docomo.ne.jp", at(15, 9), diagnostic=f"550 Unknown user u{i}@docomo.ne.jp"))
    store_events(cfg, rows)
    with pytest.raises(GuardTripped) as exc:
        run_rule(cfg, as_of=AS_OF)
    msg = str(exc.value)
    assert "docomo on 2026-11-14" in msg and "550 Unknown user <address>" in msg
    assert suppressed_addresses(cfg) == frozenset()
    assert run_rule(cfg, as_of=AS_OF, force=True).applied


def test_no_events_is_a_clear_error(cfg):
    with pytest.raises(NoDataError, match="ingest"):
        run_rule(cfg)


def test_bad_as_of(cfg):
    store_events(cfg, [event("a@au.com", at(10))])
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        run_rule(cfg, as_of="yesterday-ish")


# --------------------------------------------------------------------------- the SQL against a reference
COUNTED_STATUSES = ("deferred", "bounced", "expired")


def reference_rule(rows, releases, as_of, cfg):
    """The rule written plainly in Python, one address at a time (README "The rule")."""
    from collections import defaultdict
    from datetime import timedelta

    rule, tz = cfg.rule, cfg.tz
    by_address = defaultdict(list)
    for r in rows:
        by_address[r["recipient"]].append(r)
    out = {}
    for address, evs in by_address.items():
        evs = [e for e in evs if e["ts"] <= as_of]
        def message(e):
            return (e["message_id"] or "").strip("<> ")

        # a `sent` after which the same message to the address failed was a hop, no delivery
        sent = [e["ts"] for e in evs if e["status"] == "sent"
                and not any(f["status"] != "sent" and message(e) and message(f) == message(e)
                            and (f["ts"] > e["ts"] or (f["ts"] == e["ts"] and f["source_file"] == e["source_file"]
                                                      and f["source_offset"] > e["source_offset"]))
                            for f in evs)]
        last_sent = max(sent) if sent else None
        released = max(releases.get(address, []), default=None)
        counted = sorted((e for e in evs if e["status"] in COUNTED_STATUSES and e["scope"] == "recipient"
                          and e["reason"] in rule.counted_reasons), key=lambda e: (e["ts"], e["event_id"]))
        # one failed delivery (a message to the address) is one error: its first counted attempt
        first, seen, ended = set(), set(), defaultdict(int)
        for e in counted:
            key = ("m", message(e)) if message(e) else ("q", e["mta"], e["host"], e["queue_id"])
            chain = key + (ended[key],) if key[0] == "q" else key
            if chain not in seen:
                seen.add(chain)
                first.add(e["event_id"])
            if key[0] == "q" and e["status"] != "deferred":
                ended[key] += 1
        errors = [e for e in counted if (last_sent is None or e["ts"] > last_sent)
                  and (released is None or e["ts"] > released)]
        days = defaultdict(int)
        for e in errors:
            if e["event_id"] in first:
                days[e["ts"].astimezone(tz).date()] += 1
        window = None
        for start in sorted(days):
            inside = [d for d in days if start <= d <= start + timedelta(days=rule.window_days - 1)]
            if sum(days[d] for d in inside) >= rule.min_errors and len(inside) >= rule.min_days:
                window = (start, sum(days[d] for d in inside), len(inside))
                break
        if window is None:
            continue
        last = errors[-1]
        out[address] = {
            "address": address, "carrier": last["carrier"],
            "reasons": ",".join(sorted({e["reason"] for e in errors})),
            "first_error": errors[0]["ts"], "last_error": last["ts"], "error_count": sum(days.values()),
            "distinct_days": len(days), "window_start": window[0], "window_errors": window[1],
            "window_days_hit": window[2], "last_dsn": last["dsn"], "last_reply_code": last["reply_code"],
            "last_diagnostic": last["diagnostic"], "last_sent": last_sent,
            "event_ids": ",".join(e["event_id"] for e in errors), "error_times": [e["ts"] for e in errors]}
    return out


@pytest.mark.slow
def test_rule_sql_agrees_with_a_plain_reference(cfg):
    import random
    from datetime import timezone as tzmod

    from fixtures import TOKYO

    rng = random.Random(15)
    rows = []
    addresses = [f"u{i}@{rng.choice(['docomo.ne.jp', 'au.com', 'i.softbank.jp'])}" for i in range(150)]
    for a in addresses:
        for _ in range(rng.randint(1, 9)):
            # whole hours only: many errors of one address share a time stamp (ties)
            when = datetime(2026, 11, rng.randint(1, 28), rng.choice([0, 8, 8, 15, 23]), tzinfo=TOKYO)
            status = rng.choice(["bounced", "bounced", "deferred", "expired", "sent", "undeliverable"])
            reason = rng.choice(["user_unknown", "mailbox_full", "host_unknown", "filtered", "rate_limited"])
            scope = rng.choice(["recipient", "recipient", "sender"])
            # attempts of one message: a shared Message-ID, or (no Message-ID) a shared queue id
            same = rng.choice([{}, {}, {"message_id": "<{}>".format(f"m{rng.randint(0, 2)}.{a}").strip(rng.choice(["", "<>"]))},
                               {"queue_id": f"Q{rng.randint(0, 2)}"}])
            rows.append(event(a, when, status=status, reason=reason, scope=scope,
                              carrier=rng.choice(["docomo", "au"]), dsn=rng.choice(["5.1.1", "4.2.2", "5.0.0"]),
                              diagnostic=f"55{rng.randint(0, 9)} reply {rng.randint(0, 99)}", **same))
    store_events(cfg, rows)
    stored = [{**r, "ts": r["ts"].astimezone(tzmod.utc)} for r in rows]
    releases = {}
    for a in rng.sample(addresses, 20):
        when = datetime(2026, 11, rng.randint(5, 25), 12, tzinfo=tzmod.utc)
        suppression.add(cfg, a, now=when)
        suppression.release(cfg, a, now=when)
        releases[a] = [when]
    for as_of in ("2026-11-08", "2026-11-15", "2026-11-30"):
        want = reference_rule(stored, releases, suppression_as_of(as_of, cfg), cfg)
        got = {r["address"]: r for r in candidates(cfg, as_of)}
        assert set(got) == set(want), as_of
        for a in want:
            assert got[a] == want[a], (as_of, a)
    assert len(want) > 10  # the data exercises the rule (17 addresses marked by the 30th)


def suppression_as_of(value, cfg):
    from pipeline.suppression.rule import parse_as_of

    return parse_as_of(value, cfg.timezone_name)


def test_same_answer_whatever_the_file_order(tmp_path):
    # errors at the same instant: the evidence must not depend on the order DuckDB reads them
    pair = [event("a@au.com", at(10), dsn="5.1.1", diagnostic="first"),
            event("a@au.com", at(10), dsn="5.2.1", diagnostic="second")]
    later = [event("a@au.com", at(12, 9), dsn="5.1.1", diagnostic="third"),
             event("a@au.com", at(12, 9), dsn="5.1.1", diagnostic="fourth")]
    answers = set()
    for order in (0, 1):
        (tmp_path / str(order)).mkdir()
        cfg = make_config(tmp_path / str(order), data_dir=tmp_path / str(order) / "data")
        for r in (pair + later if order == 0 else (pair + later)[::-1]):  # one Parquet file each
            store_events(cfg, [r])
        (row,) = candidates(cfg)
        answers.add((row["event_ids"], row["last_diagnostic"], row["last_dsn"]))
    assert len(answers) == 1  # the same both times
    (event_ids, last, _), = answers
    ids = event_ids.split(",")
    assert ids == sorted(ids[:2]) + sorted(ids[2:])
    assert last == max(later, key=lambda r: r["event_id"])["diagnostic"]


def test_a_dead_address_behind_a_content_filter_is_marked(cfg, tmp_path):
    """A Postfix host with amavisd-new logs each message's hand-off to the filter (status=sent to
    127.0.0.1:10024, `queued as` the re-injected copy) a second before the carrier's refusal of the
    re-injected copy. Read as a delivery, that hop was the address's latest successful delivery
    before every refusal, so the rule counted one error at a time and never marked a dead address
    (here: 550 Unknown user on two days, 0 marked). The hop is no delivery (docs/ingest.md)."""
    from pipeline.ingest.engine import ingest

    lines = []
    for day, (first, again) in ((10, ("1A2B3C4D01", "5E6F7A8B02")), (12, ("1A2B3C4D11", "5E6F7A8B12"))):
        lines += [
            f"Nov {day} 09:00:00 mx1 postfix/qmgr[2]: {first}: from=<news@example.jp>, size=1200, nrcpt=1 (queue active)",
            f"Nov {day} 09:00:01 mx1 postfix/smtp[3]: {first}: to=<taro.dead@docomo.ne.jp>, relay=127.0.0.1[127.0.0.1]:10024,"
            f" delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok:"
            f" queued as {again})",
            f"Nov {day} 09:00:01 mx1 postfix/qmgr[2]: {first}: removed",
            f"Nov {day} 09:00:01 mx1 postfix/qmgr[2]: {again}: from=<news@example.jp>, size=1700, nrcpt=1 (queue active)",
            f"Nov {day} 09:00:02 mx1 postfix/smtp[4]: {again}: to=<taro.dead@docomo.ne.jp>,"
            " relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced"
            " (host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 5.1.1 Unknown user taro.dead@docomo.ne.jp"
            " (in reply to RCPT TO command))",
            f"Nov {day} 09:00:02 mx1 postfix/qmgr[2]: {again}: removed"]
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    found = candidates(cfg)
    assert [(r["address"], r["error_count"], r["distinct_days"]) for r in found] == [("taro.dead@docomo.ne.jp", 2, 2)]
    assert found[0]["last_sent"] is None
