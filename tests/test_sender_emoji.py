"""Emoji and other unmappable characters with ISO-2022-JP kept for feature phones
(unmappable = "substitute"), and `send preview` listing every substitution once with its count."""

from __future__ import annotations

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.sender.compose import GETA, compose, decode_message
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.testing import RecordingServer

from fixtures import make_config, sender_toml

BODY = ("本日限り🎉 ❤️ 😀😀😀\n" + "①" * 63 + "\n営業時間～20時 🦩\n" + "あ" * 600 + "\nｶﾀｶﾅ")


def test_substitute_keeps_iso2022jp_and_counts_each_substitution():
    m = compose(subject="新商品🎉のご案内", body=BODY, from_address="news@example.jp", to="a@docomo.ne.jp",
                charset="iso-2022-jp", unmappable="substitute")
    assert m.charset == "iso-2022-jp" and b"charset=ISO-2022-JP" in m.data
    assert all(b < 0x80 for b in m.data)                            # 7bit on the wire
    notes = m.notes
    assert "① -> (1) (63 times)" in notes and sum("①" in n for n in notes) == 1
    assert "🎉 -> (祝) (2 times)" in notes and "😀 -> (笑) (3 times)" in notes
    assert "❤ -> (ハート)" in notes and "U+FE0F dropped (invisible part of an emoji)" in notes
    assert f"🦩 -> {GETA}" in notes and "～ -> 〜" in notes
    assert any(n.startswith("half-width kana ｶﾀｶﾅ -> カタカナ") for n in notes)
    assert any(n.startswith("hard-wrapped at 998 bytes") and "line 4" in n for n in notes)
    d = decode_message(m.data)
    assert d["subject"] == "新商品(祝)のご案内"
    assert d["body"].startswith("本日限り(祝) (ハート) (笑)(笑)(笑)\n" + "(1)" * 63 + "\n")
    assert f"営業時間〜20時 {GETA}" in d["body"]
    # the default ("replace") still falls back to UTF-8 for emoji, and says how to keep ISO-2022-JP
    r = compose(subject="s", body=BODY, from_address="news@example.jp", to="a@docomo.ne.jp", charset="iso-2022-jp")
    assert r.charset == "utf-8" and "substitute" in r.notes[0]


def test_operator_substitutions_and_daemon_sends_substituted_text(tmp_path):
    with RecordingServer() as srv:
        cfg = make_config(tmp_path, sender_toml(srv.relay) + 'unmappable = "substitute"\n'
                          'substitutions = {"🦩" = "(フラミンゴ)"}\ncharsets = {au = "utf-8"}\n')
        report = enqueue(cfg, subject="冬🎉", body=BODY, addresses=["taro@docomo.ne.jp", "hanako@au.com"])
        assert report.charsets == {"docomo": "iso-2022-jp", "au": "utf-8"}
        assert "🦩 -> (フラミンゴ)" in report.notes["docomo"]
        run_daemon(cfg, exit_when_done=True, max_seconds=20)
        got = {r.rcpt_tos[0]: decode_message(r.data) for r in srv.received}
    assert got["taro@docomo.ne.jp"]["charset"] == "iso-2022-jp"
    assert "(フラミンゴ)" in got["taro@docomo.ne.jp"]["body"] and got["taro@docomo.ne.jp"]["subject"] == "冬(祝)"
    assert got["hanako@au.com"]["subject"] == "冬🎉" and "🦩" in got["hanako@au.com"]["body"]


def test_preview_lists_each_substitution_once(tmp_path):
    cfg_path = tmp_path / "mailhygiene.toml"
    cfg_path.write_text(sender_toml("127.0.0.1:25") + 'unmappable = "substitute"\n', encoding="utf-8")
    body = tmp_path / "body.txt"
    body.write_text(BODY, encoding="utf-8")
    r = CliRunner().invoke(cli, ["--config", str(cfg_path), "--data-dir", str(tmp_path / "d"), "send", "preview",
                                 "--carrier", "docomo", "--subject", "件名①", "--body-file", str(body)])
    assert r.exit_code == 0, r.output
    head = r.output.split("# ---- bytes on the wire ----")[0]
    assert "charset iso-2022-jp" in head
    assert head.count("① -> (1)") == 1 and "① -> (1) (64 times)" in head
    assert "～ -> 〜" in head and "hard-wrapped" in head and f"🦩 -> {GETA}" in head
    assert len(head.splitlines()) < 20
