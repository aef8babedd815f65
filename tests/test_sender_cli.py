"""`mailhygiene send enqueue|status|preview|daemon` through click's CliRunner on real files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.sender.testing import RecordingServer

from fixtures import sender_toml


def _setup(tmp_path, relay="127.0.0.1:25", from_address="news@mail.example.jp"):
    cfg = tmp_path / "mailhygiene.toml"
    cfg.write_text(sender_toml(relay, from_address) + """default_rate = {count = 1000, interval = 1.0}
charsets = {au = "utf-8"}
""", encoding="utf-8")
    body = tmp_path / "body.txt"
    body.write_bytes("いつもありがとうございます～\n①本日限り\n".encode("cp932"))  # Shift_JIS file
    csv = tmp_path / "list.csv"
    csv.write_text("email,name\ntaro..yamada.@docomo.ne.jp,Taro\nx@au.com,X\nX@AU.COM,dup\nbroken@,B\n",
                   encoding="utf-8")
    return ["--config", str(cfg), "--data-dir", str(tmp_path / "data")], body, csv


def run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_enqueue_reports_queued_and_skipped_then_status_and_daemon(tmp_path):
    with RecordingServer() as srv:
        base, body, csv = _setup(tmp_path, srv.relay)
        r = run(base + ["send", "enqueue", "--subject", "冬のご案内", "--body-file", str(body),
                        "--recipients", str(csv), "--name", "winter"])
        assert r.exit_code == 0, r.output
        assert "job 1: 2 queued, 2 skipped (0 suppressed, 1 duplicates, 1 invalid)" in r.output
        assert "invalid (invalid domain): 1, e.g. broken@" in r.output
        assert "docomo (iso-2022-jp): ① -> (1)" in r.output
        st = run(base + ["send", "status"])
        assert "winter" in st.output and "docomo" in st.output and "limit" in st.output
        d = run(base + ["send", "daemon", "--exit-when-done", "--max-seconds", "20"])
        assert d.exit_code == 0 and "sent 2" in d.output
        js = json.loads(run(base + ["send", "status", "--json"]).output)
        assert {(c["carrier"], c["state"], c["count"]) for c in js["counts"]} == {("docomo", "sent", 1), ("au", "sent", 1)}
        assert js["rates"]["au"]["attempts_last_window"] == 1
        assert sorted(srv.addresses()) == ["taro..yamada.@docomo.ne.jp", "x@au.com"]


def test_preview_shows_bytes_and_decodes_back(tmp_path):
    base, body, _ = _setup(tmp_path)
    r = run(base + ["send", "preview", "--carrier", "docomo", "--subject", "冬～のご案内", "--body-file", str(body)])
    assert r.exit_code == 0, r.output
    assert "charset iso-2022-jp" in r.output and "Content-Transfer-Encoding: 7bit" in r.output
    assert "=?iso-2022-jp?b?" in r.output and "<ESC>$B" in r.output
    assert "Subject: 冬〜のご案内" in r.output and "(1)本日限り" in r.output
    au = run(base + ["send", "preview", "--carrier", "au", "--subject", "冬～のご案内", "--body-file", str(body)])
    assert "charset utf-8" in au.output and "base64" in au.output and "round trip: identical" in au.output


def test_errors_are_one_line(tmp_path):
    base, body, csv = _setup(tmp_path, from_address="")
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "s", "--body-file", str(body),
                                        "--recipients", str(csv)])
    assert r.exit_code == 1 and r.output.startswith("Error: sender.from_address is not set")
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "a\nBcc: x@evil.example",
                                        "--body-file", str(body), "--recipients", str(csv)])
    assert r.exit_code == 1 and "line break" in r.output


def test_an_iso2022jp_body_file_is_queued_as_japanese_text(tmp_path):
    """The body file may be ISO-2022-JP (docs/sender.md): read as UTF-8 it would keep its raw
    ESC $ B sequences as text, and every phone of the campaign would show them."""
    from pipeline.core.config import load_config
    from pipeline.sender.queue import Queue

    base, body, csv = _setup(tmp_path)
    body.write_bytes("いつもありがとうございます。\n本日限り\n".encode("iso2022_jp"))
    r = run(base + ["send", "enqueue", "--subject", "冬のご案内", "--body-file", str(body), "--recipients", str(csv)])
    assert r.exit_code == 0, r.output
    cfg = load_config(tmp_path / "mailhygiene.toml", data_dir=tmp_path / "data")
    job = Queue.for_config(cfg, read_only=True).job(1)
    assert job.body == "いつもありがとうございます。\n本日限り\n"


def test_what_the_terminal_shows_carries_no_control_characters(tmp_path):
    """A job name with ESC (`--name`, or an authorised requester's `name:` line) reached the
    terminal as is through `send list` / `send status`, and so did the carrier server's reply text
    in `send status --job N` (ESC ]0;… retitles the terminal, ESC [2J clears it). Names are now
    refused like a subject's control characters; what others wrote is shown escaped."""
    import time

    from pipeline.core.config import load_config
    from pipeline.sender.queue import Queue

    base, body, csv = _setup(tmp_path)
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "s", "--body-file", str(body),
                                        "--recipients", str(csv), "--name", "evil\x1b]0;pwned\x07"])
    assert r.exit_code == 1 and "job name contains ESC" in r.output
    assert run(base + ["send", "enqueue", "--subject", "s", "--body-file", str(body), "--recipients", str(csv),
                       "--name", "winter"]).exit_code == 0
    cfg = load_config(base[1], data_dir=base[3], timezone="Asia/Tokyo")
    q = Queue.for_config(cfg)
    row = q.rows(1)[0]
    q.finish(row["id"], "failed", now=time.time(), reply_code=550, reply="Unknown user \x1b[2J\x1b]0;x\x07",
             smtp_phase="rcpt", reason="user_unknown")
    out = run(base + ["send", "status", "--job", "1"]).output
    assert "\x1b" not in out and "\x07" not in out and "Unknown user \\x1b[2J" in out


def test_enqueue_reads_the_list_or_the_text_from_standard_input(tmp_path):
    """`crm-export | mailhygiene send enqueue ... --recipients -` was a usage error ("File '-' does
    not exist"); now either file may be `-`, not both."""
    base, body, csv = _setup(tmp_path)
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "s", "--body-file", str(body),
                                        "--recipients", "-"], input=csv.read_bytes())
    assert r.exit_code == 0 and "job 1: 2 queued" in r.output, r.output
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "t", "--body-file", "-",
                                        "--recipients", str(csv)], input=body.read_bytes())   # Shift_JIS text
    assert r.exit_code == 0 and "job 2: 2 queued" in r.output, r.output
    from pipeline.core.config import load_config
    from pipeline.sender.queue import Queue

    cfg = load_config(base[1], data_dir=base[3], timezone="Asia/Tokyo")
    assert Queue.for_config(cfg).job(2).body.startswith("いつもありがとうございます")
    r = CliRunner().invoke(cli, base + ["send", "enqueue", "--subject", "u", "--body-file", "-", "--recipients", "-"],
                           input=b"x")
    assert r.exit_code == 1 and "cannot both be -" in r.output
