"""Intake: request mails (real .eml samples) -> jobs, refusals and replies on a loopback server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.sender.compose import decode_message
from pipeline.sender.intake import auth_results_pass, decode_cp50220, decode_text, process_maildir, process_request
from pipeline.sender.queue import Queue
from pipeline.sender.testing import RecordingServer

from fixtures import make_config, sender_toml

FIX = Path(__file__).parent / "fixtures" / "requests"
SECRET = "hunter2-例"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def replies():
    with RecordingServer() as srv:
        yield srv


def _cfg(tmp_path, relay, extra=""):
    return make_config(tmp_path, sender_toml(relay) + f"""[intake]
allowed_senders = ["OPS@example.jp"]
shared_secret = "{SECRET}"
{extra}
""")


def _raw(name):
    """A fixture as a request sent just now: its Date header is today's (replay protection
    refuses old copies), everything else as committed."""
    import email.utils
    import re

    raw = re.sub(rb"(?im)^Date:[^\r\n]*\r?\n", b"", (FIX / name).read_bytes())
    return f"Date: {email.utils.formatdate(localtime=True)}\r\n".encode() + raw


def _replies_to(srv, addr):
    return [r for r in srv.received if addr in r.rcpt_tos]


def _queued(cfg, job_id):
    return {r["address"]: r for r in Queue.for_config(cfg).rows(job_id)}


def test_iso2022jp_cp50220_request_decodes_and_queues(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    before = len(replies.received)
    res = process_request(cfg, _raw("request_iso2022jp_cp50220.eml"))
    assert res.status == "queued", res
    job = Queue.for_config(cfg).job(res.job_id)
    assert job.subject == "【セール】①本日限り ㈱テスト"
    assert job.body.startswith("髙橋様\n\n")
    assert "①番の商品" in job.body and job.name == "iso-sample"
    assert set(_queued(cfg, res.job_id)) == {"taro..yamada.@docomo.ne.jp", "hanako@au.com", "jiro@i.softbank.jp"}
    # the requester is told what happened, in a mail that decodes cleanly
    new = replies.received[before:]
    assert len(new) == 1 and new[0].rcpt_tos == ["ops@example.jp"] and new[0].mail_from == "<>"
    text = decode_message(new[0].data)
    assert "3 queued" in text["body"] and text["subject"] == "Re: (1)配信依頼"


def test_shift_jis_request(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    res = process_request(cfg, _raw("request_shift_jis.eml"))
    assert res.status == "queued", res
    job = Queue.for_config(cfg).job(res.job_id)
    assert job.subject == "年末のお知らせ～営業時間①"
    assert job.body == "年末年始の営業時間のお知らせです～\n①12月28日まで通常営業"
    assert set(_queued(cfg, res.job_id)) == {"ichiro@ezweb.ne.jp", "saburo@docomo.ne.jp"}


def test_utf8_request_with_cp932_csv_attachment(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    before = len(replies.received)
    res = process_request(cfg, _raw("request_utf8_csv.eml"))
    assert res.status == "queued", res
    job = Queue.for_config(cfg).job(res.job_id)
    assert job.subject == "新商品のご案内 🎉"
    assert job.body.endswith("ご覧ください。")  # the "-- " signature is not part of the text
    assert set(_queued(cfg, res.job_id)) == {"shiro@docomo.ne.jp", "goro@au.com"}
    assert (res.queued, res.skipped) == (2, 2)  # one duplicate, one invalid
    body = decode_message(replies.received[before].data)["body"]
    assert "1 duplicates, 1 invalid" in body and "not-an-address" in body


@pytest.mark.parametrize("name, why", [
    ("request_unknown_sender.eml", "not in intake.allowed_senders"),
    ("request_wrong_secret.eml", "wrong shared secret"),
])
def test_unauthorised_requests_enqueue_nothing_and_get_no_reply(tmp_path, replies, name, why):
    cfg = _cfg(tmp_path, replies.relay)
    before = len(replies.received)
    res = process_request(cfg, _raw(name))
    assert res.status == "unauthorised" and why in res.reason
    assert len(replies.received) == before  # nothing at all goes back
    assert Queue.for_config(cfg).counts() == []
    logged = [json.loads(x) for x in (cfg.data_dir / "sender" / "intake.log").read_text().splitlines()]
    assert logged[-1]["status"] == "unauthorised" and why in logged[-1]["reason"]


def test_malformed_request_gets_a_reply_and_enqueues_nothing(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    before = len(replies.received)
    res = process_request(cfg, _raw("request_malformed.eml"))
    assert res.status == "malformed" and "'---'" in res.reason
    assert Queue.for_config(cfg).counts() == []
    new = replies.received[before:]
    assert [r.rcpt_tos for r in new] == [["ops@example.jp"]]
    assert "nothing was queued" in decode_message(new[0].data)["body"]


def test_require_auth_results(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay, 'require_auth_results = true\nauth_serv_id = "mx.mail.example.jp"')
    assert process_request(cfg, _raw("request_wrong_secret.eml")).status == "unauthorised"
    res = process_request(cfg, _raw("request_unknown_sender.eml"))
    assert res.status == "unauthorised"
    no_ar = process_request(cfg, _raw("request_shift_jis.eml"))
    assert no_ar.status == "unauthorised" and "Authentication-Results" in no_ar.reason
    assert process_request(cfg, _raw("request_auth_results.eml")).status == "queued"


def test_auth_results_alignment_and_serv_id():
    import email

    def msg(ar):
        return email.message_from_string(f"Authentication-Results: {ar}\n\nx")

    assert auth_results_pass(msg("mx; dkim=pass header.d=example.jp"), "example.jp")
    assert not auth_results_pass(msg("mx; dkim=pass header.d=evil.example"), "example.jp")
    assert not auth_results_pass(msg("mx; spf=fail smtp.mailfrom=a@example.jp"), "example.jp")
    assert not auth_results_pass(msg("forged.example; spf=pass smtp.mailfrom=a@example.jp"), "example.jp", "mx")


def test_line_breaks_cannot_smuggle_headers(tmp_path, replies):
    """A CR inside a request line splits it; the pieces are refused as addresses, never headers."""
    cfg = _cfg(tmp_path, replies.relay)
    raw = (f"From: ops@example.jp\r\nDate: {__import__('email.utils').utils.formatdate()}\r\nMessage-ID: <inj@example.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
           f"secret: {SECRET}\r\nsubject: s\rBcc: x@evil.example\r\nrecipients: a@docomo.ne.jp\r\n---\r\nhi\r\n").encode()
    res = process_request(cfg, raw, reply=False)
    assert res.status == "malformed" and "line 3" in res.reason
    assert Queue.for_config(cfg).counts() == []


def test_same_request_twice_adds_one_job(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    a = process_request(cfg, _raw("request_shift_jis.eml"), reply=False)
    b = process_request(cfg, _raw("request_shift_jis.eml"), reply=False)
    assert a.status == "queued" and (b.status, b.job_id) == ("refused", None) and "replay" in b.reason
    assert sum(n for *_, n in Queue.for_config(cfg).counts()) == 2


def test_auto_submitted_mail_is_ignored(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    before = len(replies.received)
    raw = b"Auto-Submitted: auto-replied\r\n" + _raw("request_shift_jis.eml")
    assert process_request(cfg, raw).status == "ignored"
    assert len(replies.received) == before


def test_maildir(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    md = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (md / d).mkdir(parents=True)
    for i, name in enumerate(["request_shift_jis.eml", "request_unknown_sender.eml", "request_utf8_csv.eml"]):
        (md / "new" / f"17000000{i}.M1P1.host").write_bytes(_raw(name))
    results = process_maildir(cfg, md, reply=False)
    assert [r.status for r in results] == ["queued", "unauthorised", "queued"]
    assert not list((md / "new").iterdir()) and len(list((md / "cur").iterdir())) == 3


def _maildir_with(tmp_path, names):
    md = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (md / d).mkdir(parents=True)
    for i, name in enumerate(names):
        (md / "new" / f"17000000{i}.M1P1.host").write_bytes(_raw(name))
    return md


@pytest.mark.slow
def test_a_maildir_run_stops_on_an_unusable_suppression_list_with_an_error(tmp_path, replies):
    """`intake --maildir` from cron with the suppression list damaged: every mail used to print a
    traceback and the run ended with exit 0, as if all were well (the mails stayed in new/, but
    nobody was told). Now the first such mail stops the run with one `Error:` line and exit 75;
    every mail stays in new/ for the run after the repair."""
    from pipeline.suppression import store as suppression

    cfg = _cfg(tmp_path, replies.relay)
    suppression.add(cfg, "dead@docomo.ne.jp")
    current = cfg.data_dir / "suppression" / "current.parquet"
    current.write_bytes(current.read_bytes()[:100])
    md = _maildir_with(tmp_path, ["request_shift_jis.eml", "request_utf8_csv.eml"])
    p = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config", str(cfg.source),
                        "--data-dir", str(cfg.data_dir), "intake", "--maildir", str(md), "--no-reply"],
                       capture_output=True, cwd=REPO, timeout=120)
    err = p.stderr.decode()
    assert p.returncode == 75, err
    assert err.startswith("Error: the suppression list cannot be trusted") and "Traceback" not in err, err
    assert "stay in" in err and len(err.strip().splitlines()) == 1
    assert len(list((md / "new").iterdir())) == 2 and not list((md / "cur").iterdir())
    assert Queue.for_config(cfg).jobs() == []


def test_a_maildir_mail_that_fails_unexpectedly_is_said_at_the_end(tmp_path, replies, monkeypatch):
    """A mail whose handling fails for a reason that is neither the mail's nor a known fault of
    this host (a bug) stays in new/ while the others are handled; the run then raises (Error:,
    exit 1) instead of ending as a success with a traceback in the middle."""
    from pipeline.sender import intake

    cfg = _cfg(tmp_path, replies.relay)
    md = _maildir_with(tmp_path, ["request_shift_jis.eml", "request_unknown_sender.eml"])
    real = intake.process_request

    def buggy(cfg, raw, **kw):
        if b"charset=Shift_JIS" in raw:
            raise RuntimeError("a bug")
        return real(cfg, raw, **kw)

    monkeypatch.setattr(intake, "process_request", buggy)
    seen = []
    with pytest.raises(intake.MaildirIncomplete, match=r"1 mail\(s\) could not be processed.*RuntimeError: a bug"):
        for res in process_maildir(cfg, md, reply=False):
            seen.append(res.status)
    assert seen == ["unauthorised"]
    assert [p.name for p in (md / "new").iterdir()] == ["170000000.M1P1.host"]


def test_a_mail_another_run_took_meanwhile_is_skipped(tmp_path, replies, monkeypatch):
    """Two `intake --maildir` runs at once (cron overlapping a slow run): a mail listed in new/
    that the other run moved to cur/ before this one looked at it crashed this run
    (FileNotFoundError in the sort by age), leaving the rest of new/ unhandled. Now it is skipped.
    `bounces --maildir` walks a Maildir through the same code."""
    import os

    cfg = _cfg(tmp_path, replies.relay)
    md = _maildir_with(tmp_path, ["request_shift_jis.eml"])
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda d: real(d) + (["169999999.M9P9.host"] if str(d).endswith("new") else []))
    assert [r.status for r in process_maildir(cfg, md, reply=False)] == ["queued"]
    assert not real(md / "new") and len(real(md / "cur")) == 1


@pytest.mark.slow
def test_cli_intake_from_stdin_exits_zero_for_refusals(tmp_path, replies):
    cfg = _cfg(tmp_path, replies.relay)
    for name, expect in [("request_unknown_sender.eml", "unauthorised"), ("request_shift_jis.eml", "queued")]:
        p = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()",
                            "--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "intake"],
                           input=_raw(name), capture_output=True, cwd=REPO, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().startswith(expect)


def test_recipients_separated_as_a_japanese_input_method_types_them():
    """"a@au.com，b@au.com；c@au.com" (full-width comma and semicolon): one token, both invalid."""
    from pipeline.sender.intake import Request, parse_body

    req = Request(sender="ops@example.jp", message_id="", request_key="k")
    parse_body("subject: s\nrecipients: a@au.com，b@au.com；c@au.com、d@au.com\u3000e@au.com\n---\nx\n", req)
    assert req.addresses == ["a@au.com", "b@au.com", "c@au.com", "d@au.com", "e@au.com"] and not req.problems


def test_decoders():
    # ① ㈱ 髙 inside ESC $ B (CP50220) - Python's iso2022_jp refuses them
    data = b"\x1b$B-!-j|b\x1b(B"
    with pytest.raises(UnicodeDecodeError):
        data.decode("iso2022_jp")
    assert decode_cp50220(data) == "①㈱髙"
    assert decode_text(data, "ISO-2022-JP") == "①㈱髙"
    assert decode_text(b"\x1b(I6\x1b(B", "iso-2022-jp") == "ｶ"          # CP50221 half-width kana
    assert decode_text("～①".encode("cp932"), "Shift_JIS") == "～①"
    assert decode_text("～①".encode("cp932"), "iso-2022-jp") == "～①"  # mislabelled 8-bit
    assert decode_text("テスト".encode("euc_jp"), "EUC-JP") == "テスト"
    assert decode_text("テスト".encode(), None) == "テスト"


@pytest.mark.parametrize("label", [None, "us-ascii", "utf-8", "ISO-2022-JP"])
def test_iso2022jp_text_is_read_as_such_whatever_its_label_says(label):
    # 7-bit ISO-2022-JP labelled as ASCII or UTF-8 (or not labelled: us-ascii by default) decodes
    # without error as those too, keeping ESC $ B ... as text: mojibake on every phone
    data = "冬のご案内です。".encode("iso2022_jp")
    assert decode_text(data, label) == "冬のご案内です。"
    assert decode_text(b"\x1b$B-!-j|b\x1b(B", label) == "①㈱髙"


@pytest.mark.parametrize("data, label", [
    ("冬のご案内".encode("utf-8"), "Shift_JIS"),       # UTF-8 labelled Shift_JIS
    ("冬のご案内".encode("utf-8"), "iso-8859-1"),      # UTF-8 labelled Latin-1
    ("冬のご案内".encode("cp932"), "iso-8859-1"),      # Shift_JIS labelled Latin-1
    ("冬のご案内".encode("cp932"), "windows-1252"),
    ("冬のご案内".encode("utf-8"), "EUC-JP"),
    ("冬のご案内".encode("cp932"), None),
])
def test_japanese_text_under_a_wrong_label_is_not_mojibake(data, label):
    assert decode_text(data, label) == "冬のご案内"


@pytest.mark.parametrize("label", [None, "us-ascii"])
def test_unlabelled_euc_jp_is_not_read_as_half_width_kana(label):
    # 8-bit EUC-JP without a charset (us-ascii by MIME): CP932 "decodes" most of it too, into
    # half-width katakana: 冬のご案内です。 came out as ﾅﾟ､ﾎ､ｴｰﾆﾆ筅ﾇ､ｹ｡｣
    text = "冬のご案内です。いつもありがとうございます。"
    assert decode_text(text.encode("euc_jp"), label) == text
    assert decode_text(text.encode("cp932"), label) == text


def test_western_text_under_its_own_label_stays_as_it_is():
    assert decode_text("café Müller".encode("latin-1"), "iso-8859-1") == "café Müller"
    assert decode_text("～①髙".encode("cp932"), "Shift_JIS") == "～①髙"
    assert decode_text("ｾｰﾙ開催中".encode("cp932"), None) == "ｾｰﾙ開催中"     # half-width kana of its own


def test_a_request_in_unlabelled_iso2022jp_queues_the_japanese_text(tmp_path, replies):
    import email.utils

    cfg = _cfg(tmp_path, replies.relay)
    text = (f"secret: {SECRET}\r\n件名: 冬のご案内\r\nrecipients:\r\nhanako@au.com\r\n---\r\n"
            "いつもありがとうございます。\r\n")
    raw = (f"From: ops@example.jp\r\nTo: requests@mail.example.jp\r\nSubject: request\r\n"
           f"Date: {email.utils.formatdate(localtime=True)}\r\nMessage-ID: <unlabelled-jis@example.jp>\r\n"
           "MIME-Version: 1.0\r\n\r\n").encode() + text.encode("iso2022_jp")   # no Content-Type: us-ascii
    res = process_request(cfg, raw, reply=False)
    assert res.status == "queued", res
    job = Queue.for_config(cfg).job(res.job_id)
    assert job.subject == "冬のご案内" and job.body == "いつもありがとうございます。"
    assert "\x1b" not in job.subject + job.body


@pytest.mark.parametrize("delsp", [True, False])
def test_a_format_flowed_request_is_read_as_typed(tmp_path, replies, delsp):
    """Thunderbird (and many phones) send plain text as format=flowed: long lines wrapped, each
    wrap marked by a trailing space. Read literally, the long subject line came apart (a cut
    subject and a stray line: refused as malformed) and the text kept the mailer's wraps."""
    import email.utils

    cfg = _cfg(tmp_path, replies.relay)
    # delsp=yes: the wrap added the trailing space (Japanese, wrapped between characters);
    # otherwise the wrap came after a typed space, which stays
    subject = "【冬のセール】本日限りの特別なご案内です" if delsp else "Winter sale: today only, a special offer"
    cut = 10 if delsp else 19                # subject[:19] == "Winter sale: today "
    text = (f"secret: {SECRET}\r\n件名: {subject[:cut]}{' ' if delsp else ''}\r\n{subject[cut:]}\r\n"
            "recipients:\r\nhanako@au.com\r\n"
            "---\r\nいつもありがとうございます。 \r\n今年もよろしくお願いします。\r\n\r\n次の段落\r\n"
            " From here on, a stuffed line\r\n-- \r\nsignature\r\n")
    params = "; delsp=yes" if delsp else ""
    raw = (f"From: ops@example.jp\r\nSubject: request\r\nDate: {email.utils.formatdate(localtime=True)}\r\n"
           f"Message-ID: <flowed-{delsp}@example.jp>\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=UTF-8; format=flowed{params}\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + text.encode()
    res = process_request(cfg, raw, reply=False)
    assert res.status == "queued", res
    job = Queue.for_config(cfg).job(res.job_id)
    assert job.subject == subject
    joined = "いつもありがとうございます。" + ("" if delsp else " ") + "今年もよろしくお願いします。"
    assert job.body == joined + "\n\n次の段落\nFrom here on, a stuffed line"
