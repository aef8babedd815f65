"""Internationalised domains: one mailbox written with its domain in Unicode (U-label) or in
ASCII (A-label, xn--) is ONE address everywhere an address is a key: the recipient check
(intake, `send enqueue`, lists), the suppression list (add, check, export), the daemon's skip
check, and the event store's recipient/recipient_domain (a bounce logged in one form suppresses
sends in the other). pipeline/core/idn.py."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import datetime

import pytest

import pipeline
from pipeline.suppression import store as suppression
from pipeline.core.errors import InputError
from pipeline.core.idn import IdnError, ascii_domain, unicode_address
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.recipients import check_recipients
from pipeline.sender.testing import RecordingServer
from pipeline.store.records import canonical_address

from fixtures import event, make_config, sender_toml, store_events

U = "taro@例え.jp"
A = "taro@xn--r8jz45g.jp"


def test_the_canonical_form_is_the_a_label_domain_lower_case():
    assert canonical_address(U) == A
    assert canonical_address("<Taro@例え.JP>") == A
    assert canonical_address("taro@XN--R8JZ45G.jp") == A
    assert canonical_address("taro@例え。jp") == A            # the ideographic full stop is a dot
    assert canonical_address("Taro@DoCoMo.ne.jp") == "taro@docomo.ne.jp"   # ASCII: only lower-cased
    assert unicode_address(A) == U
    with pytest.raises(IdnError, match="IDNA2003 and IDNA2008"):
        ascii_domain("straße.de")                            # the A-labels of the two differ: refused


def test_the_recipient_check_accepts_idn_and_counts_both_forms_as_one_address():
    long_label = "y@" + "".join(chr(0x4E00 + 37 * i) for i in range(40)) + ".jp"                     # its A-label would be over 63 characters
    screened = check_recipients([U, A, "Taro@例え.JP", "x@straße.de", long_label, "z@a..例え.jp"], frozenset())
    assert screened.accepted == [A] and screened.duplicates == 2
    reasons = dict(screened.invalid)
    assert "IDNA2003 and IDNA2008" in reasons["x@straße.de"]
    assert reasons[long_label].startswith("invalid internationalised domain")
    assert reasons["z@a..例え.jp"] == "invalid domain"
    # suppressed in one form, refused in the other
    assert check_recipients([U], frozenset({A})).suppressed == [A]


def make_cfg(tmp_path, relay="127.0.0.1:9"):
    return make_config(tmp_path, sender_toml(relay) + "default_rate = {count = 1000, interval = 1.0}\nconcurrency = 1\n"
                       "backoff_base = 60\ntimeout = 5\n")


def test_the_suppression_list_keys_on_the_a_label_and_exports_both_forms(tmp_path):
    cfg = make_cfg(tmp_path)
    suppression.add(cfg, U, "bounced")
    assert suppression.is_suppressed(cfg, A) and suppression.is_suppressed(cfg, U)
    with pytest.raises(InputError, match="already on the suppression list"):
        suppression.add(cfg, A)
    assert [e["address"] for e in suppression.entries(cfg)] == [A]
    with pytest.raises(InputError, match="not a valid internationalised name"):
        suppression.add(cfg, "x@straße.de")
    suppression.add(cfg, "ok@docomo.ne.jp")
    from pipeline.suppression.export import export

    out = tmp_path / "list.csv"
    export(cfg, out, tz="Asia/Tokyo")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["address"], r["address_unicode"]) for r in rows] == [("ok@docomo.ne.jp", "ok@docomo.ne.jp"), (A, U)]


def test_a_bounce_stored_in_one_form_is_found_under_the_other(tmp_path):
    cfg = make_cfg(tmp_path)
    store_events(cfg, [event(U, datetime(2026, 11, 3, 12)), event("b@docomo.ne.jp", datetime(2026, 11, 3, 12))])
    con = pipeline.connect(cfg.data_dir)
    got = con.execute("SELECT recipient, recipient_domain FROM events ORDER BY recipient").fetchall()
    assert got == [("b@docomo.ne.jp", "docomo.ne.jp"), (A, "xn--r8jz45g.jp")]


def test_ingested_postfix_bounce_to_a_u_label_is_keyed_in_a_label(tmp_path):
    from pipeline.ingest.engine import ingest

    log = tmp_path / "maillog"
    log.write_text("Nov  3 16:04:31 mx1 postfix/smtp[123]: 3C6D1C0A1F: to=<Taro@例え.jp>, "
                   "relay=mx.example.jp[192.0.2.1]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, "
                   "status=bounced (host mx.example.jp[192.0.2.1] said: 550 5.1.1 unknown user "
                   "(in reply to RCPT TO command))\n", encoding="utf-8")
    for columnar in (True, False):
        (tmp_path / f"c{columnar}").mkdir()
        cfg = make_config(tmp_path / f"c{columnar}")
        ingest(cfg, [str(log)], fmt="postfix", year=2026, columnar=columnar)
        got = pipeline.connect(cfg.data_dir).execute("SELECT recipient, recipient_domain, status FROM events").fetchall()
        assert got == [(A, "xn--r8jz45g.jp", "bounced")], columnar


def test_the_daemon_skips_a_row_whose_other_form_was_suppressed_after_enqueue(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay)
        report = enqueue(cfg, subject="s", body="b", addresses=[U, "ok@docomo.ne.jp"])
        assert report.queued == 2
        assert {r["address"] for r in Queue.for_config(cfg).rows()} == {A, "ok@docomo.ne.jp"}
        # a row queued before this version kept the U-label form
        q = Queue.for_config(cfg)
        with sqlite3.connect(q.path) as db:
            db.execute("UPDATE recipients SET address = ? WHERE address = ?", (U, A))
        suppression.add(cfg, A, "bounced elsewhere")
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=10)
        contacted = {a for _, a in srv.rcpt_attempts}
    assert contacted == {"ok@docomo.ne.jp"} and stats.skipped == 1


def test_a_route_written_with_a_unicode_domain_matches_the_canonical_recipient():
    from pipeline.sender.routes import Router

    r = Router({"例え.jp": "relay.example.jp:587", ".例え.jp": "relay2.example.jp:25"}, "127.0.0.1:25")
    assert str(r.route("xn--r8jz45g.jp")) == "relay.example.jp:587"
    assert str(r.route("mail.xn--r8jz45g.jp")) == "relay2.example.jp:25"
    assert str(r.route("例え.jp")) == "relay.example.jp:587"


def test_intake_allowed_senders_match_either_form_of_an_idn_sender(tmp_path):
    from email.message import Message

    from pipeline.sender.intake import Refused, check_sender, from_address

    cfg = make_config(tmp_path, sender_toml("127.0.0.1:9") + '[intake]\nallowed_senders = ["ops@例え.jp"]\n'
                      'shared_secret = "s"\nrequire_auth_results = false\n')
    head = Message()
    head["From"] = "Ops <OPS@XN--R8JZ45G.JP>"
    sender = from_address(head)
    assert sender == "ops@xn--r8jz45g.jp"
    check_sender(cfg, sender, head)                      # allowed: the same mailbox
    head.replace_header("From", "ops@例え.com")
    with pytest.raises(Refused):
        check_sender(cfg, from_address(head), head)


def test_an_entry_listed_in_u_label_form_before_suppresses_and_releases_under_either_form(tmp_path):
    from datetime import timezone

    cfg = make_cfg(tmp_path)
    # as an older version listed it: its domain in Unicode
    with suppression.changing(cfg) as (store, con):
        suppression.run_block(con, "stage_manual_add", {"address": U, "carrier": None, "note": "old",
                                                        "now": datetime.now(timezone.utc)})
        store.commit(con)
    assert A in suppression.suppressed_addresses(cfg)
    assert check_recipients([U], suppression.suppressed_addresses(cfg)).suppressed == [A]
    suppression.release(cfg, A)
    assert suppression.entries(cfg) == []


def test_rows_an_older_version_stored_in_u_label_form_are_one_address_with_todays(tmp_path, monkeypatch):
    """A store written by a version before the canonical form holds `taro@例え.jp`; today's rows
    say `taro@xn--r8jz45g.jp`. Read as stored they were two addresses with one error each: the
    rule found nothing, the report counted two recipients. `events` reads every row in canonical
    form (sql/events.sql), so every reader sees one address with both errors."""
    import json

    from click.testing import CliRunner

    import pipeline.store.event_store as event_store
    from pipeline.cli import cli

    cfg = make_cfg(tmp_path)
    with monkeypatch.context() as old_version:                     # the writer of before: as the log wrote it
        old_version.setattr(event_store, "canonical_recipients", lambda table: table)
        store_events(cfg, [event(U, datetime(2026, 11, 3, 12)), event("b@docomo.ne.jp", datetime(2026, 11, 3, 12))])
    assert {r for r, in pipeline.connect(cfg.data_dir).execute("SELECT recipient FROM stored_events").fetchall()} \
        == {U, "b@docomo.ne.jp"}                                   # the old file is as it was: nothing rewritten
    store_events(cfg, [event(A, datetime(2026, 11, 5, 12))])          # today's version
    con = pipeline.connect(cfg.data_dir)
    assert con.execute("SELECT DISTINCT recipient, recipient_domain FROM events WHERE recipient <> 'b@docomo.ne.jp'"
                       ).fetchall() == [(A, "xn--r8jz45g.jp")]
    run = CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "--timezone",
                                   "Asia/Tokyo", "suppress", "--as-of", "2026-11-06", "--dry-run", "--json"])
    assert run.exit_code == 0, run.output
    new = json.loads(run.stdout)["new"]
    assert [(n["address"], n["error_count"], n["distinct_days"]) for n in new] == [(A, 2, 2)]
    # the report's figures (sql/carrier_figures.sql reads `attempts`) and `suppression show`
    assert con.execute("SELECT count(DISTINCT recipient) FROM attempts").fetchone() == (2,)
    run = CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "--timezone",
                                   "Asia/Tokyo", "suppression", "show", U, "--json"])
    assert run.exit_code == 0, run.output
    assert [(e["status"], e["counted"]) for e in json.loads(run.stdout)["events"]] == [("bounced", True)] * 2
