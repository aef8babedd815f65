"""The sender's own results feed the rule (no MTA log in between), and the sender fails closed.

Direct routes to aiosmtpd carrier look-alikes on loopback: every attempt becomes an event row in
the real Parquet store, `pipeline.connect()` shows it, the real suppression rule (DuckDB) reads
it. Two days are simulated with the daemon's clock (the only fake): the rule needs errors on two
different days.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipeline
from pipeline.core.errors import SuppressionUnavailable
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.testing import RecordingServer
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import suppressed_addresses

from fixtures import make_config, sender_toml

REPO = Path(__file__).resolve().parents[1]
LIVE = ["hanako@docomo.ne.jp", "taro..yamada.@docomo.ne.jp", "saburo@au.com", "rokuro@i.softbank.jp"]
DEAD = {"gone@docomo.ne.jp": "550 Unknown user gone@docomo.ne.jp",
        "nobody@au.com": "550 <nobody@au.com>: User unknown",
        "old@i.softbank.jp": "550 Invalid recipient: <old@i.softbank.jp>"}
FILTERED = "filtered@docomo.ne.jp"   # docomo's DATA-time refusal: the handset filters our domain


def _rcpt(addr):
    return DEAD.get(addr)


def _data(addr):
    return f"550 Unknown user {addr}" if addr == FILTERED else None


def _cfg(tmp_path, relay, extra="", flush=0.2):
    """Direct routes to the look-alike for every carrier (default_relay, a hand-off to the local
    MTA, is a closed port here: nothing may go there)."""
    from pipeline.sender.testing import free_port

    cfg = make_config(tmp_path, sender_toml(f"127.0.0.1:{free_port()}") + f"""default_rate = {{count = 1000, interval = 1.0}}
routes = {{docomo = "{relay}", au = "{relay}", softbank = "{relay}"}}
backoff_base = 0.2
backoff_max = 0.4
event_flush_interval = {flush}
{extra}""")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)  # (`suppression add` refuses a data dir that does not exist)
    return cfg


@pytest.mark.slow
def test_attempts_become_events_and_the_rule_suppresses_dead_addresses(tmp_path):
    addresses = LIVE + list(DEAD) + [FILTERED]
    with RecordingServer(rcpt_reply=_rcpt, data_reply=_data) as srv:
        cfg = _cfg(tmp_path, srv.relay)
        yesterday = time.time() - 86400
        enqueue(cfg, subject="1日目", body="本文", addresses=addresses)
        day1 = run_daemon(cfg, exit_when_done=True, max_seconds=30, clock=lambda: time.time() - 86400)
        assert day1.events == len(addresses)
        # no `clean`, no ingest: the rows are in the store as soon as the daemon stopped
        con = pipeline.connect(cfg.data_dir)
        rows = con.execute("SELECT recipient, status, smtp_phase, reply_code, reason, mta, source_file, "
                           "epoch(ts), event_id, queue_id, carrier, relay, sender, diagnostic FROM events "
                           "ORDER BY recipient").fetchall()
        assert len(rows) == len(addresses) == len({r[8] for r in rows})
        by = {r[0]: r for r in rows}
        assert {r[5] for r in rows} == {"mailhygiene"}
        assert all(r[6].startswith("mailhygiene-sender:") and r[6].endswith("queue.sqlite3") for r in rows)
        assert abs(by["hanako@docomo.ne.jp"][7] - yesterday) < 60
        assert by["gone@docomo.ne.jp"][1:5] == ("bounced", "rcpt", 550, "user_unknown")
        assert by["nobody@au.com"][4] == by["old@i.softbank.jp"][4] == "user_unknown"
        assert by["nobody@au.com"][10] == "au" and by["nobody@au.com"][11] == srv.relay
        assert by["nobody@au.com"][13] == "550 <nobody@au.com>: User unknown"
        assert by[FILTERED][2] == "end_of_data" and by[FILTERED][1] == "bounced"
        assert by["saburo@au.com"][1:4] == ("sent", "end_of_data", 250)

        enqueue(cfg, subject="2日目", body="本文", addresses=addresses)
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        result = run_rule(cfg, cfg.rule, cfg.guard, None, tz=cfg.timezone_name)
        assert result.applied
        assert suppressed_addresses(cfg) == set(DEAD)          # the filtered one is not the address's fault

        before = len(srv.rcpt_attempts)
        report = enqueue(cfg, subject="3日目", body="本文", addresses=addresses)
        assert report.suppressed == len(DEAD)
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        contacted = {a for _, a in srv.rcpt_attempts[before:]}
    assert not contacted & set(DEAD) and set(LIVE) <= contacted


@pytest.mark.slow
def test_events_survive_a_kill_and_are_written_by_the_next_start(tmp_path):
    def slow(addr):
        time.sleep(0.05)
        return None

    with RecordingServer(data_reply=slow) as srv:
        cfg = _cfg(tmp_path, srv.relay, "concurrency = 1\n", flush=600)
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(60)])
        proc = subprocess.Popen([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                                 str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "daemon"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(srv.received) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=10)
        q = Queue.for_config(cfg)
        waiting = q.outbox_size()
        assert waiting >= 10                         # written with the results, not yet in Parquet
        assert pipeline.connect(cfg.data_dir).execute("SELECT count(*) FROM events").fetchone()[0] == 0
        r = _mh(cfg, "send", "flush-events")          # what `clean` or cron can run after a crash
        assert r.returncode == 0 and r.stdout.startswith(f"{waiting} event rows"), r.stderr
        assert pipeline.connect(cfg.data_dir).execute("SELECT count(*) FROM events").fetchone()[0] == waiting
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
        n_events = pipeline.connect(cfg.data_dir).execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events WHERE mta = 'mailhygiene'").fetchone()
        sent = sum(1 for r in q.rows() if r["state"] == "sent")
    assert q.outbox_size() == 0
    assert sent == 60 and n_events[0] == n_events[1] >= 60


def _mh(cfg, *args, stdin=None):
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                           str(cfg.source), "--data-dir", str(cfg.data_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, input=stdin)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "unreadable", "older"])
def test_the_daemon_and_enqueue_refuse_to_send_without_a_trustworthy_list(tmp_path, damage):
    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay)
        recipients = tmp_path / "list.csv"
        recipients.write_text("email\nok@au.com\nblocked@au.com\n")
        body = tmp_path / "body.txt"
        body.write_text("本文", encoding="utf-8")
        r = _mh(cfg, "send", "enqueue", "--subject", "s", "--body-file", str(body), "--recipients", str(recipients))
        assert r.returncode == 0, r.stderr
        r = _mh(cfg, "suppression", "add", "blocked@au.com")
        assert r.returncode == 0, r.stderr
        r = _mh(cfg, "suppression", "add", "other@au.com")
        assert r.returncode == 0, r.stderr
        current = cfg.data_dir / "suppression" / "current.parquet"
        if damage == "missing":
            current.unlink()
        elif damage == "unreadable":
            current.write_bytes(b"PAR1 this is not a parquet file")
        else:  # a list restored from an old backup: the history knows an address it lacks
            import pyarrow.parquet as pq
            t = pq.read_table(current)
            pq.write_table(t.filter(__import__("pyarrow").compute.equal(t.column("address"), "other@au.com")),
                           current)
        with pytest.raises(SuppressionUnavailable):
            run_daemon(cfg, exit_when_done=True, max_seconds=10)
        r = _mh(cfg, "send", "daemon", "--exit-when-done", "--max-seconds", "10")
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith("Error: the suppression list cannot be trusted, so nothing is sent"), r.stderr
        r = _mh(cfg, "send", "enqueue", "--subject", "s", "--body-file", str(body), "--recipients", str(recipients))
        assert r.returncode == 1 and "Error: the suppression" in r.stderr
        assert srv.received == [] and srv.rcpt_attempts == []


@pytest.mark.slow
def test_a_list_that_breaks_while_the_daemon_runs_stops_it(tmp_path):
    def slow(addr):
        time.sleep(0.05)
        return None

    with RecordingServer(data_reply=slow) as srv:
        cfg = _cfg(tmp_path, srv.relay, "concurrency = 1\n")
        r = _mh(cfg, "suppression", "add", "blocked@au.com")
        assert r.returncode == 0, r.stderr
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(200)])
        proc = subprocess.Popen([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                                 str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "daemon"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(srv.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        (cfg.data_dir / "suppression" / "current.parquet").unlink()
        out, err = proc.communicate(timeout=30)
        n = len(srv.received)
    assert proc.returncode == 1 and b"Error: the suppression list" in err
    assert 5 <= n < 200
    rows = Queue.for_config(cfg).rows()
    assert sum(r["state"] == "sent" for r in rows) == n     # every message sent was recorded


def test_a_hand_off_to_the_local_mta_is_not_recorded_as_a_delivery(tmp_path):
    """default_relay (the local MTA) answers 250 for mail it will deliver later: the queue says
    sent, the event store does not (the MTA's log or its bounces will); its refusals are events."""
    with RecordingServer(rcpt_reply=_rcpt) as mta:
        cfg = make_config(tmp_path, sender_toml(mta.relay) + "event_flush_interval = 0.2\n")
        enqueue(cfg, subject="s", body="b", addresses=["hanako@docomo.ne.jp", "gone@docomo.ne.jp"])
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=20)
    assert (stats.sent, stats.failed) == (1, 1)
    rows = pipeline.connect(cfg.data_dir).execute("SELECT recipient, status FROM events").fetchall()
    assert rows == [("gone@docomo.ne.jp", "bounced")]


@pytest.mark.slow
def test_a_suppression_directory_moved_away_while_the_daemon_runs_stops_it(tmp_path):
    """Once the daemon has read a list with its history, a directory that vanishes (moved aside,
    deleted, unmounted) is a list that cannot be trusted: read as a new install's empty list it
    let the daemon send to every suppressed address still queued."""
    def slow(addr):
        time.sleep(0.05)
        return None

    with RecordingServer(data_reply=slow) as srv:
        cfg = _cfg(tmp_path, srv.relay, "concurrency = 1\n")
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@au.com" for i in range(60)] + ["late@au.com"])
        r = _mh(cfg, "suppression", "add", "late@au.com")      # suppressed since enqueue
        assert r.returncode == 0, r.stderr
        proc = subprocess.Popen([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                                 str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "daemon",
                                 "--exit-when-done"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(srv.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        (cfg.data_dir / "suppression").rename(tmp_path / "suppression.aside")
        out, err = proc.communicate(timeout=60)
        sent = srv.addresses()
    assert "late@au.com" not in sent
    assert proc.returncode == 1 and b"Error: the suppression list cannot be trusted" in err, err
    assert 5 <= len(sent) < 60


@pytest.mark.slow
@pytest.mark.parametrize("reply, code", [("ERR: user unknown, try later", None),
                                         ("421 4.2.2 Mailbox full, try again later", 421)])
def test_no_smtp_reply_and_421_are_never_counted_against_the_address(tmp_path, reply, code):
    """A line that is no SMTP reply (a broken middlebox, a server gone mad) is temporary and
    never the address's fault (docs/sender.md), and a 421 means slow down, never remove this
    customer (README); their words used to be classified like a reply about the address: "user
    unknown" in garbage, "Mailbox full" in a 421, became deferred user_unknown / mailbox_full of
    scope recipient, a counted error, and two such days suppressed a live customer."""
    def rcpt(addr):
        return reply if addr == "hanako@docomo.ne.jp" else None

    with RecordingServer(rcpt_reply=rcpt) as srv:
        cfg = _cfg(tmp_path, srv.relay, "max_attempts = 2\nrate_limit_pause = 0\n")
        enqueue(cfg, subject="s", body="b", addresses=["hanako@docomo.ne.jp", "taro@docomo.ne.jp"])
        run_daemon(cfg, exit_when_done=True, max_seconds=30)
    rows = pipeline.connect(cfg.data_dir).execute(
        "SELECT status, reason, scope, reply_code, diagnostic FROM events WHERE recipient = 'hanako@docomo.ne.jp' "
        "ORDER BY ts").fetchall()
    assert [r[0] for r in rows] == ["deferred", "expired"]
    assert all(r[2] != "recipient" and r[1] not in cfg.rule.counted_reasons and r[3] == code for r in rows), rows
    assert code == 421 or "unintelligible reply" in rows[0][4]


@pytest.mark.slow
def test_a_lost_suppression_directory_is_not_a_new_install(tmp_path):
    """No list and no history reads as a new install's empty list; but when the queue has skipped
    addresses as suppressed, the list existed and is lost (deleted, left out of a restore): the
    daemon and enqueue used to send to every address on it."""
    import shutil

    with RecordingServer() as srv:
        cfg = _cfg(tmp_path, srv.relay)
        assert enqueue(cfg, subject="s", body="b", addresses=["ok@au.com"]).queued == 1   # a new install
        r = _mh(cfg, "suppression", "add", "blocked@au.com")
        assert r.returncode == 0, r.stderr
        report = enqueue(cfg, subject="s", body="b", addresses=["blocked@au.com", "other@au.com"])
        assert (report.queued, report.suppressed) == (1, 1)
        shutil.rmtree(cfg.data_dir / "suppression")
        with pytest.raises(SuppressionUnavailable, match="the list was lost"):
            run_daemon(cfg, exit_when_done=True, max_seconds=10)
        recipients = tmp_path / "list.csv"
        recipients.write_text("email\nblocked@au.com\n")
        body = tmp_path / "body.txt"
        body.write_text("本文", encoding="utf-8")
        r = _mh(cfg, "send", "enqueue", "--subject", "s", "--body-file", str(body), "--recipients", str(recipients))
        assert r.returncode == 1 and r.stderr.startswith("Error: the suppression list cannot be trusted"), r.stderr
        assert srv.received == []
        r = _mh(cfg, "suppression", "add", "blocked@au.com")                 # rebuilt: a new history
        assert r.returncode == 0, r.stderr
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=20)
    assert stats.sent == 2 and sorted(srv.addresses()) == ["ok@au.com", "other@au.com"]


@pytest.mark.slow
def test_suppress_counts_the_results_still_in_the_outbox(tmp_path):
    """A daemon killed before its next flush leaves its last results in the queue's outbox. `clean`
    moves them before the rule; `mailhygiene suppress` ran the rule without them, so a dead
    address whose second day's 550 waited there was not suppressed."""
    from pipeline.sender.events import attempt_event

    dead = "gone@docomo.ne.jp"
    with RecordingServer(rcpt_reply=_rcpt) as srv:
        cfg = _cfg(tmp_path, srv.relay)
        enqueue(cfg, subject="1日目", body="本文", addresses=[dead, "hanako@docomo.ne.jp"])
        run_daemon(cfg, exit_when_done=True, max_seconds=30, clock=lambda: time.time() - 86400)
    q = Queue.for_config(cfg)
    q.add_events([attempt_event(                      # day two's refusal, not yet flushed
        ts=time.time(), host="mx", job_id=9, row_id=1, attempt=1, message_id=None, sender="news@mail.example.jp",
        recipient=dead, carrier="docomo", relay=srv.relay, status="bounced", reply_code=550,
        reply=DEAD[dead], smtp_phase="rcpt", reason="user_unknown", scope="recipient", hard=True,
        queue_file=str(q.path))])
    r = _mh(cfg, "suppress")
    assert r.returncode == 0, r.stderr
    assert suppressed_addresses(cfg) == {dead} and q.outbox_size() == 0


@pytest.mark.slow
def test_nightly_clean_runs_the_rule_on_the_sender_s_results_without_log_sources(tmp_path):
    """Direct mode needs no MTA log: the daemon's attempts are the events. The nightly `clean`
    (docs/sender.md: it moves the daemon's results and runs the rule) stopped with "no log
    sources configured", so such an installation's dead addresses never reached the list
    through it. With a send queue it now runs the rule on them; without one it is still an error."""
    with RecordingServer(rcpt_reply=_rcpt) as srv:
        cfg = _cfg(tmp_path, srv.relay)
        assert not cfg.sources
        for clock in (lambda: time.time() - 86400, time.time):
            enqueue(cfg, subject="s", body="本文", addresses=LIVE + list(DEAD), name=str(clock()))
            run_daemon(cfg, exit_when_done=True, max_seconds=30, clock=clock)
    r = _mh(cfg, "clean")
    assert r.returncode == 0, r.stderr
    assert "no [[sources]]" in r.stdout and suppressed_addresses(cfg) == set(DEAD)


def test_clean_without_sources_still_needs_them_in_relay_mode(tmp_path):
    """Relay mode hands every message to the local MTA: its log holds the results, so a missing
    [[sources]] stays an error there even with a send queue."""
    from pipeline.sender.testing import free_port

    cfg = make_config(tmp_path, sender_toml(f"127.0.0.1:{free_port()}") + 'mode = "relay"\n')
    enqueue(cfg, subject="s", body="b", addresses=["a@au.com"])
    r = _mh(cfg, "clean")
    assert r.returncode == 1 and "no log sources configured" in r.stderr
