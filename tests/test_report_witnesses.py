"""One attempt, several witnesses: the reports count each delivery attempt once (sql/attempts.sql).

Relay mode: the daemon hands 100 messages to the local Postfix, which delivers 90 to docomo and
has 10 refused (550 Unknown user); each refusal is in Postfix's log (ingested) and comes back as
a DSN to the VERP address (`mailhygiene bounces`). Through a smarthost: the daemon's own `sent`
rows (a route that only queues) and the same 10 DSNs. The truth either way: 100 attempts, 90
delivered, 10 bounced, a bounce rate of 10 % (before: 110 attempts and 18.2 %, or 100 delivered
and 9.1 %). A direct-mode store (sample logs, the report fixture store) is unchanged.
"""

from __future__ import annotations

import dataclasses
import email.utils
from datetime import datetime, timezone

import pytest

import pipeline
from pipeline.ingest.engine import ingest
from pipeline.report import reports
from pipeline.sender.bounces import process_bounces
from pipeline.sender.events import attempt_event, to_table
from pipeline.store.event_store import EventStore
from pipeline.store.warehouse import bind_sql, read_sql, run_sql
from pipeline.suppression.counted import counted_params, keep_counted_errors
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import SuppressionStore, show

from fixtures import SAMPLES, fixture_events, make_config, sender_toml, store_events

OURS = "news@mail.example.jp"
START = datetime(2026, 11, 10, 0, 0, tzinfo=timezone.utc)   # 09:00 in Tokyo
COUNTED = ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"]


def verp(rcpt: str) -> str:
    return f"news+{rcpt.replace('@', '=')}@mail.example.jp"


def dsn(rcpt: str, message_id: str | None, when: float, action: str = "failed", tag: str = "") -> bytes:
    """Postfix's DSN for one recipient, with the returned headers (unless message_id is None)."""
    date = email.utils.formatdate(when)
    status, code = ("5.1.1", "550 5.1.1 Unknown user") if action == "failed" else ("4.2.2", "452 4.2.2 Mailbox full")
    returned = (f"--B\nContent-Type: text/rfc822-headers\n\nFrom: {OURS}\nMessage-ID: <{message_id}>\n"
                "Subject: hello\n\n") if message_id else ""
    return f"""From: MAILER-DAEMON@mail.example.jp (Mail Delivery System)
To: {verp(rcpt)}
Date: {date}
Message-ID: <dsn-{rcpt}-{action}{tag}@mail.example.jp>
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

<{rcpt}>: host mfsmax.docomo.ne.jp[203.138.181.112] said: {code} (in reply to RCPT TO command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.jp

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mfsmax.docomo.ne.jp
Diagnostic-Code: smtp; {code}
Last-Attempt-Date: {date}

{returned}--B--
""".replace("\n", "\r\n").encode()


def postfix_log(n: int = 100, refused: range = range(90, 100), *, start: datetime = START, mid: str = "m",
                qids: str = "4A", dsns: bool = False) -> str:
    """Postfix relaying our messages to docomo: message i (queue id <qids><i>, Message-ID <mid><i>)
    at start + i s.
    dsns: each refusal's DSN (`from=<>`) is delivered to its VERP address through the pipe to
    `mailhygiene bounces` (Postfix's own row of the bounce mail's transport: no attempt of ours)."""
    lines = []
    for i in range(n):
        qid, rcpt = f"{qids}{i:08X}", f"u{i}@docomo.ne.jp"
        stamp = datetime.fromtimestamp(start.timestamp() + i, timezone.utc).strftime("%b %e %H:%M:%S")
        lines += [f"{stamp} mail postfix/smtpd[9]: {qid}: client=localhost[127.0.0.1]",
                  f"{stamp} mail postfix/cleanup[9]: {qid}: message-id=<{mid}{i}@mail.example.jp>",
                  f"{stamp} mail postfix/qmgr[9]: {qid}: from=<{verp(rcpt)}>, size=900, nrcpt=1 (queue active)"]
        head = (f"{stamp} mail postfix/smtp[9]: {qid}: to=<{rcpt}>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, "
                "delay=1, delays=0.1/0/0.5/0.4, ")
        if i in refused:
            lines.append(head + "dsn=5.1.1, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: "
                                "550 5.1.1 Unknown user (in reply to RCPT TO command))")
        else:
            lines.append(head + "dsn=2.0.0, status=sent (250 ok)")
        lines.append(f"{stamp} mail postfix/qmgr[9]: {qid}: removed")
        if dsns and i in refused:
            dqid = f"D{qids}{i:07X}"
            lines += [f"{stamp} mail postfix/bounce[9]: {qid}: sender non-delivery notification: {dqid}",
                      f"{stamp} mail postfix/cleanup[9]: {dqid}: message-id=<{dqid}@mail.example.jp>",
                      f"{stamp} mail postfix/qmgr[9]: {dqid}: from=<>, size=3000, nrcpt=1 (queue active)",
                      f"{stamp} mail postfix/pipe[9]: {dqid}: to=<{verp(rcpt)}>, relay=mailhygiene-bounces, delay=0.1, "
                      "delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered via mailhygiene-bounces service)",
                      f"{stamp} mail postfix/qmgr[9]: {dqid}: removed"]
    return "\n".join(lines) + "\n"


def daemon_sent(i: int, relay: str = "[smarthost.isp.example]:587") -> dict:
    """The send daemon's `sent` row for message i through a route that only queues it."""
    return attempt_event(ts=START.timestamp() + i, host="mail", job_id=1, row_id=i, attempt=1,
                         message_id=f"<m{i}@mail.example.jp>", sender=verp(f"u{i}@docomo.ne.jp"),
                         recipient=f"u{i}@docomo.ne.jp", carrier="docomo", relay=relay, status="sent",
                         reply_code=250, reply="2.0.0 Ok: queued as 4Q", smtp_phase=None, reason="delivered",
                         scope="none", hard=None, queue_file="queue.sqlite")


def bounce(cfg, i: int, *, message_id: str | None = "default", action: str = "failed", after: float = 2.0,
           start: datetime = START, mid: str = "m") -> None:
    message = f"{mid}{i}@mail.example.jp" if message_id == "default" else message_id
    rcpt = f"u{i}@docomo.ne.jp"
    results = process_bounces(cfg, raw=dsn(rcpt, message, start.timestamp() + i + after, action, tag=mid),
                              envelope_recipient=verp(rcpt))
    assert [r.status for r in results] == ["recorded"], results


def config(tmp_path):
    return make_config(tmp_path, sender_toml("127.0.0.1:9", OURS) + f'envelope_from = "{OURS}"\nverp = true\n')


def docomo(cfg) -> dict:
    report = reports.build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name, None, None)
    row = report.tables["carrier_totals"].set_index("carrier").loc["docomo"]
    return {k: row[k] for k in ("attempts", "delivered", "bounced", "finished", "bounce_rate", "counted_errors",
                                "recipients")}


TRUTH = {"attempts": 100, "delivered": 90, "bounced": 10, "finished": 100, "bounce_rate": 0.1,
         "counted_errors": 10, "recipients": 100}


def everything(cfg) -> dict:
    """The report's `all` row over every carrier."""
    report = reports.build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name, None, None)
    row = report.tables["carrier_totals"].set_index("carrier").loc["all"]
    return {k: row[k] for k in ("attempts", "delivered", "bounced", "recipients")}


@pytest.fixture(scope="module")
def relay_store(tmp_path_factory):
    """Relay mode through Postfix: its log ingested (with each DSN's delivery into the bounce
    mailbox, `from=<>`), every refusal's DSN through `bounces`."""
    tmp = tmp_path_factory.mktemp("relay")
    cfg = config(tmp)
    log = tmp / "mail.log"
    log.write_text(postfix_log(dsns=True))
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    for i in range(90, 100):
        bounce(cfg, i)
    return cfg


def test_relay_mode_counts_a_refusal_logged_and_bounced_once(relay_store):
    con = pipeline.connect(relay_store.data_dir)
    stored = con.execute("SELECT mta, status, count(*) FROM events WHERE carrier = 'docomo' GROUP BY ALL ORDER BY ALL")
    assert stored.fetchall() == [("mailhygiene", "bounced", 10), ("postfix", "bounced", 10), ("postfix", "sent", 90)]
    assert docomo(relay_store) == TRUTH                       # was 110 attempts, bounce rate 18.2 %
    marked = con.execute("SELECT mta, not_attempt, count(*) FROM witnessed_events WHERE not_attempt IS NOT NULL "
                     "GROUP BY ALL ORDER BY ALL").fetchall()
    assert marked == [("mailhygiene", "restated", 10), ("postfix", "null_sender", 10)]  # the log line stands
    # for the attempt; Postfix's delivery of each DSN into the bounce mailbox (from=<>) is none


def test_a_null_sender_row_is_no_attempt(relay_store):
    """Postfix's row of each DSN's delivery to our VERP address (`from=<>`, relay=mailhygiene-bounces)
    is the transport of a bounce, not a delivery of the operator's mail: the `all` row has 100
    attempts of 100 recipients (was 120 attempts, 110 recipients: 10 restated, 10 DSN deliveries)."""
    assert everything(relay_store) == {"attempts": 100, "delivered": 90, "bounced": 10, "recipients": 100}
    con = pipeline.connect(relay_store.data_dir)
    rows = con.execute("SELECT recipient, sender, relay, not_attempt FROM witnessed_events WHERE sender = ''").fetchall()
    assert len(rows) == 10 and {(r[1], r[2], r[3]) for r in rows} == {("", "mailhygiene-bounces", "null_sender")}
    period = {"since": START.replace(day=9), "as_of": START.replace(day=11)}
    assert run_sql(con, "active_addresses", period).fetchall() == [(100,)]           # was 110: our VERP addresses
    assert run_sql(con, "carrier_active_addresses", {**period, "carriers": ["docomo", "other"]}).fetchall() == [
        ("docomo", 100)]                                                               # was other 10 too


def test_the_rule_counts_no_null_sender_row(tmp_path):
    """A DSN of ours to someone else (`from=<>`) refused on two days is no campaign delivery: the
    rule lists nobody (before: the address, on two null-sender refusals)."""
    cfg = config(tmp_path)
    log = tmp_path / "mail.log"
    days = [postfix_log(1, refused=range(1), start=START.replace(day=d), mid=f"n{d}", qids=f"4{d - 10}")
            for d in (10, 11)]
    log.write_text("".join(days).replace(f"from=<{verp('u0@docomo.ne.jp')}>", "from=<>"))
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    con = pipeline.connect(cfg.data_dir)
    assert con.execute("SELECT sender, status, reason FROM events").fetchall() == [("", "bounced", "user_unknown")] * 2
    result = run_rule(cfg, cfg.rule, cfg.guard, as_of="2026-11-30", tz="Asia/Tokyo", dry_run=True)
    assert result.new == [] and result.marked == 0


def test_through_a_smarthost_the_queued_sent_is_no_delivery(tmp_path):
    cfg = config(tmp_path)
    EventStore(cfg.data_dir).write(to_table([daemon_sent(i) for i in range(100)]))
    for i in range(90, 100):
        bounce(cfg, i, after=600)
    assert docomo(cfg) == TRUTH                               # was 100 delivered, bounce rate 9.1 %
    marked = pipeline.connect(cfg.data_dir).execute(
        "SELECT mta, status, not_attempt, count(*) FROM witnessed_events WHERE not_attempt IS NOT NULL "
        "GROUP BY ALL").fetchall()
    assert marked == [("mailhygiene", "sent", "hand_off", 10)]  # the DSN is the only witness of the refusal


def test_what_is_not_the_same_attempt_stays(tmp_path):
    """A delay warning repeats the log's deferral (one attempt); a DSN without the returned headers
    cannot be matched (its own attempt); a DSN whose outcome the log did not see (the log says
    deferred, the DSN failed: the expiry was another attempt) stays; a `sent` after the deferral
    of its own message is a delivery."""
    cfg = config(tmp_path)
    log = tmp_path / "mail.log"
    text = postfix_log(4, refused=range(0))
    text = text.replace("dsn=2.0.0, status=sent (250 ok)", "dsn=4.2.2, status=deferred (452 4.2.2 Mailbox full)", 3)
    later = datetime.fromtimestamp(START.timestamp() + 60, timezone.utc).strftime("%b %e %H:%M:%S")
    text += (f"{later} mail postfix/smtp[9]: 4A00000002: to=<u2@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp"
             "[203.138.181.112]:25, delay=60, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)\n")
    log.write_text(text)
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    bounce(cfg, 0, action="delayed")                      # repeats u0's logged deferral
    bounce(cfg, 1, action="failed", after=3600)           # u1 expired later: an outcome the log lacks
    bounce(cfg, 3, message_id=None)                       # no returned headers: cannot be matched
    rows = pipeline.connect(cfg.data_dir).execute(
        "SELECT recipient, mta, status, not_attempt FROM witnessed_events ORDER BY recipient, ts, mta").fetchall()
    assert rows == [
        ("u0@docomo.ne.jp", "postfix", "deferred", None), ("u0@docomo.ne.jp", "mailhygiene", "deferred", "restated"),
        ("u1@docomo.ne.jp", "postfix", "deferred", None), ("u1@docomo.ne.jp", "mailhygiene", "bounced", None),
        ("u2@docomo.ne.jp", "postfix", "deferred", None), ("u2@docomo.ne.jp", "postfix", "sent", None),
        ("u3@docomo.ne.jp", "postfix", "sent", None), ("u3@docomo.ne.jp", "mailhygiene", "bounced", None)]


GUARD_TOML = "[guard]\nhour_rate = 0.15\nhour_min_errors = 5\nblock_rate = 0.15\nblock_min_errors = 5\n"


@pytest.fixture(scope="module")
def two_day_relay_store(tmp_path_factory):
    """Relay mode on two days: each day 100 messages to docomo, the same 10 refused (logged,
    bounced, each DSN delivered into the bounce mailbox); a guard that trips at 15 % per hour or day."""
    tmp = tmp_path_factory.mktemp("relay2")
    cfg = make_config(tmp, sender_toml("127.0.0.1:9", OURS) + f'envelope_from = "{OURS}"\nverp = true\n' + GUARD_TOML)
    log = tmp / "mail.log"
    days = [(START, "m", "4A"), (START.replace(day=11), "n", "4B")]
    log.write_text("".join(postfix_log(start=start, mid=mid, qids=qids, dsns=True) for start, mid, qids in days))
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    for start, mid, _ in days:
        for i in range(90, 100):
            bounce(cfg, i, start=start, mid=mid)
    return cfg


def test_the_guard_counts_attempts_not_witness_rows(two_day_relay_store):
    """10 refusals of 100 attempts an hour are 10 %: the guard (15 %) stays quiet. Before, it read
    the witness rows: 20 counted errors (log + bounce mail) of 110 docomo rows, 18 %, and tripped."""
    cfg = two_day_relay_store
    refused = {f"u{i}@docomo.ne.jp" for i in range(90, 100)}
    result = run_rule(cfg, cfg.rule, cfg.guard, as_of="2026-11-30", tz="Asia/Tokyo", dry_run=True,
                      check_guard_in_dry_run=True)
    assert {e["address"] for e in result.new} == refused
    assert not result.guard.tripped, result.guard.reasons
    # the evidence: two failed deliveries, each its Postfix log row (the bounce mail restates it)
    con = pipeline.connect(cfg.data_dir)
    mta = dict(con.execute("SELECT event_id, mta FROM events").fetchall())
    assert {(e["error_count"], tuple(mta[x] for x in e["event_ids"].split(","))) for e in result.new} == {
        (2, ("postfix", "postfix"))}
    # what the guard read, per docomo hour: 10 of 100 (a 9 % threshold shows the figures)
    low = dataclasses.replace(cfg.guard, hour_rate=0.09)
    result = run_rule(cfg, cfg.rule, low, as_of="2026-11-30", tz="Asia/Tokyo", dry_run=True, check_guard_in_dry_run=True)
    assert [(b["kind"], b["carrier"], b["attempts"], b["counted_errors"]) for b in result.guard.bursts] == [
        ("hour", "docomo", 100, 10)] * 2                                    # was 110 and 20 (18.2 %)


@pytest.mark.parametrize("store", ["samples", "fixture"])
def test_a_direct_mode_store_is_unchanged(tmp_path, store):
    """No bounce mail, no hand-off: `attempts` is `events` but for the null-sender rows (the
    sample logs' one bounce notice `from=<>`), so every report figure is as before otherwise; the
    rule's list and evidence (counted errors read from `attempts`) are the same as from `events`."""
    cfg = make_config(tmp_path)
    if store == "samples":
        ingest(cfg, sorted((SAMPLES / "postfix").glob("mail.log*")), fmt="postfix", year=2026, progress=False)
    else:
        store_events(cfg, fixture_events())
    con = pipeline.connect(cfg.data_dir)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] > 10
    left_out = con.execute("SELECT recipient, status, sender FROM events WHERE event_id IN "
                           "(SELECT event_id FROM events EXCEPT ALL SELECT event_id FROM attempts)").fetchall()
    assert left_out == ([("news@mail.example.jp", "sent", "")] if store == "samples" else [])  # 08:41 from=<>
    params = {"tz": cfg.timezone_name, "since": None, "until": None, "grain": "period", "counted_reasons": COUNTED,
              "as_of": datetime(2026, 12, 31, tzinfo=timezone.utc), "min_errors": 2, "min_days": 2,
              "window_days": 7, "sender_mta": "mailhygiene"}
    keep_counted_errors(con, params)
    figures = run_sql(con, "carrier_figures", params).fetchall()
    con.execute("CREATE OR REPLACE TABLE suppression_history AS SELECT CAST(NULL AS TIMESTAMPTZ) AS \"at\", "
                "'' AS action, '' AS address LIMIT 0")
    marked = run_sql(con, "suppression_candidates", params).fetchall()
    assert len(marked) >= 1
    con.execute("CREATE OR REPLACE VIEW attempts AS SELECT *, CAST(NULL AS VARCHAR) AS not_attempt FROM events "
                "WHERE sender IS DISTINCT FROM ''")
    assert run_sql(con, "carrier_figures", params).fetchall() == figures
    con.execute("CREATE OR REPLACE VIEW attempts AS SELECT *, CAST(NULL AS VARCHAR) AS not_attempt FROM events")
    for table in ("bounce_mails", "counted_errors"):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS " + read_sql(table), bind_sql(table, read_sql(table), params))
    assert run_sql(con, "suppression_candidates", params).fetchall() == marked  # the rule as it read `events`


def test_suppression_show_marks_the_bounce_mail_that_repeats_a_logged_refusal(relay_store):
    info = show(relay_store, "u95@docomo.ne.jp", tz="Asia/Tokyo", counted_reasons=COUNTED, window_days=7)
    assert [(e["mta"], e["status"], e["restated"], e["hand_off"]) for e in info["events"]] == [
        ("postfix", "bounced", False, False), ("mailhygiene", "bounced", True, False)]
    assert [e["counted"] for e in info["events"]] == [True, False]        # as the rule counts: the log row
    assert [e["bound"] for e in info["events"]] == [None, True]           # the log row binds its repeat
    mailbox = show(relay_store, verp("u95@docomo.ne.jp"), tz="Asia/Tokyo", counted_reasons=COUNTED,
                   window_days=7)["events"]
    assert [(e["status"], e["relay"], e["null_sender"]) for e in mailbox] == [("sent", "mailhygiene-bounces", True)]


def test_suppression_show_counts_the_attempt_once_and_marks_the_repeat(relay_store):
    from click.testing import CliRunner

    from pipeline.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(relay_store.source), "--data-dir", str(relay_store.data_dir),
                                      "suppression", "show", "u95@docomo.ne.jp"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "delivery attempts: 1" in lines                     # was 2: the log line and its bounce mail
    marks = [line.split()[0] for line in lines if "Unknown user" in line]
    assert marks == ["*", "="]
    assert "= = a bounce mail repeating a logged attempt" in result.output
    result = CliRunner().invoke(cli, ["--config", str(relay_store.source), "--data-dir", str(relay_store.data_dir),
                                      "suppression", "show", verp("u95@docomo.ne.jp")], catch_exceptions=False)
    assert "delivery attempts: 0" in result.output.splitlines()  # the DSN's delivery into the bounce mailbox


def test_the_filtered_export_takes_a_queued_sent_for_no_delivery(tmp_path):
    """A reception-filter refusal whose `sent` to a smarthost came first: the customer has not
    allowed us since (last_delivery stays empty); its DSN is the one refusal."""
    cfg = config(tmp_path)
    EventStore(cfg.data_dir).write(to_table([daemon_sent(7)]))
    raw = dsn("u7@docomo.ne.jp", "m7@mail.example.jp", START.timestamp() + 60).replace(
        b"550 5.1.1 Unknown user", b"550 5.7.1 Rejected by the recipient's domain filter")
    assert [r.status for r in process_bounces(cfg, raw=raw, envelope_recipient=verp("u7@docomo.ne.jp"))] == ["recorded"]
    con = pipeline.connect(cfg.data_dir)
    reason = con.execute("SELECT reason FROM events WHERE mta = 'mailhygiene' AND status = 'bounced'").fetchone()[0]
    if reason != "filtered":
        pytest.skip(f"this reply classifies as {reason}, not filtered")
    con = SuppressionStore(cfg.data_dir).connect(events=True)   # (an empty list: no list yet)
    keep_counted_errors(con, counted_params("Asia/Tokyo", COUNTED, 7))
    rows = run_sql(con, "filtered_addresses", {"since": START.replace(day=1), "as_of": START.replace(day=30)}).fetchall()
    assert [(r[0], r[2], r[-1]) for r in rows] == [("u7@docomo.ne.jp", 1, None)]


@pytest.mark.slow
def test_duckdb_and_spark_count_the_same_attempts(tmp_path):
    """The relay store (with its DSNs' deliveries, `from=<>`), the smarthost rows and the unmatched
    DSNs in one store: both engines mark the same rows and give the same report figures and the
    same counted errors of the rule (Spark runs the port of the same sql/ files)."""
    from lakekit import require_spark

    require_spark()
    from pipeline.lake.engines import DuckDBEngine, SparkEngine, normalise

    cfg = make_config(tmp_path, sender_toml("127.0.0.1:9", OURS) + f'envelope_from = "{OURS}"\nverp = true\n'
                      + '[spark]\nmaster = "local[2]"\nshuffle_partitions = 4\n')
    log = tmp_path / "mail.log"
    log.write_text(postfix_log(50, refused=range(40, 50), dsns=True))
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    EventStore(cfg.data_dir).write(to_table([daemon_sent(i) for i in range(50, 100)]))
    for i in [*range(40, 50), *range(90, 100)]:
        bounce(cfg, i, after=600)
    bounce(cfg, 3, message_id=None)
    params = {"tz": "Asia/Tokyo", "since": None, "until": None, "grain": "day", "counted_reasons": COUNTED,
              "as_of": datetime(2026, 12, 31, tzinfo=timezone.utc), "sender_mta": "mailhygiene", "window_days": 7}
    results = {}
    for engine in (DuckDBEngine.open(cfg), SparkEngine.open(cfg)):
        try:
            for table in ("bounce_mails", "counted_errors"):  # as the rule keeps them
                engine.keep(table, params, table=table)
            results[engine.name] = {
                name: sorted(normalise(engine.query(name, params), drop_zone=True).to_pylist(), key=repr)
                for name in ("witnessed_events", "attempts", "carrier_figures", "reasons_by_carrier",
                             "bounce_mails", "counted_errors")}
        finally:
            engine.close()
    duck = results["duckdb"]
    assert sum(r["not_attempt"] == "restated" for r in duck["witnessed_events"]) == 10
    assert sum(r["not_attempt"] == "hand_off" for r in duck["witnessed_events"]) == 10
    assert sum(r["not_attempt"] == "null_sender" for r in duck["witnessed_events"]) == 10
    assert sorted(r["event_id"] for r in duck["counted_errors"]) == sorted(
        r["event_id"] for r in duck["attempts"] if r["status"] == "bounced")   # 21: no restated row
    docomo_rows = [r for r in duck["carrier_figures"] if r["carrier"] == "docomo"]
    assert [(r["attempts"], r["delivered"], r["bounced"]) for r in docomo_rows] == [(101, 80, 21)]
    assert results["spark"] == duck


def test_message_key_is_the_trimmed_message_id():
    """message_key() (sql/macros.sql) trims only an id that needs it: the same as
    nullif(trim(id, '<> '), ''), the rule's spelling, on every shape (rows stored before every
    source wrote the bare id kept `<...>`)."""
    import duckdb

    from pipeline.store.warehouse import read_sql

    con = duckdb.connect()
    con.execute(read_sql("macros"))
    ids = [None, "", " ", "<>", "<", ">", "m1@x.jp", "<m1@x.jp>", " <m1@x.jp> ", "<m1@x.jp", "m1@x.jp>",
           "<<m1@x.jp>>", "m<1>@x.jp", "> m1@x.jp <", "\u30e1\u30fc\u30eb@x.jp", "<\u30e1@x.jp>"]
    rows = con.execute("SELECT id, message_key(id), nullif(trim(id, '<> '), '') FROM unnest($ids) t(id)",
                       {"ids": ids}).fetchall()
    assert len(rows) == len(ids)
    assert [(i, k) for i, k, t in rows if k != t and not (k is None and t is None)] == []
