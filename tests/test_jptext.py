"""pipeline.core.jptext: the one home of the Japanese text rules (tables, kana, the lenient decoder)."""

from __future__ import annotations

import pytest

from pipeline.core.jptext import (
    CP932_LOOKALIKES, REPLACEMENTS, decode_iso2022jp, encodable, fullwidth_kana, is_halfwidth_kana,
    map_lookalikes, replacement, suggestion,
)
from pipeline.preflight.message_checks import check_japanese_text
from pipeline.sender.compose import compose, decode_message, prepare_texts


# ------------------------------------------------------------------ tables
@pytest.mark.parametrize("table", [CP932_LOOKALIKES, REPLACEMENTS], ids=["lookalikes", "replacements"])
def test_every_table_entry_is_needed_and_round_trips(table):
    for src, dst in table.items():
        assert not encodable(src), f"{src!r} U+{ord(src):04X} is already ISO-2022-JP: a no-op entry"
        data = dst.encode("iso2022_jp")
        assert data.decode("iso2022_jp") == dst
        assert decode_iso2022jp(data) == (dst, [])


def test_lookalikes_map_to_jis():
    assert map_lookalikes("価格～税込 A∥B －5 ￠￡￢ a—b") == "価格〜税込 A‖B −5 ¢£¬ a―b"
    assert set(CP932_LOOKALIKES) >= {"\uff5e", "\u2225", "\uff0d", "\uffe0", "\uffe1", "\uffe2", "\u2014"}
    for ch, jis in CP932_LOOKALIKES.items():
        assert suggestion(ch) == jis


def test_replacements_documented_by_the_sender():
    assert replacement("①") == "(1)" and replacement("⑳") == "(20)"
    assert replacement("㈱") == "(株)" and replacement("㊤") == "(上)"  # not NFKC's bare 上
    assert replacement("髙") == "高" and replacement("№") == "No." and replacement("ⅲ") == "iii"
    assert replacement("あ") is None and replacement("🎉") is None


def test_the_sender_applies_what_the_doctor_suggests():
    for ch in REPLACEMENTS:
        if ch in CP932_LOOKALIKES or is_halfwidth_kana(ch):
            continue
        prepared = prepare_texts([ch], "iso-2022-jp")
        assert prepared.charset == "iso-2022-jp" and prepared.texts == [suggestion(ch)], ch


# ------------------------------------------------------------------ half-width kana
def test_halfwidth_kana():
    assert is_halfwidth_kana("ｶ") and is_halfwidth_kana("ﾟ") and is_halfwidth_kana("｡")
    assert not is_halfwidth_kana("カ") and not is_halfwidth_kana("a")
    assert fullwidth_kana("ｶﾞｲﾄﾞ ﾊﾟｰﾃｨｰ｡") == "ガイド パーティー。"
    assert fullwidth_kana("ﾞ") == "゛" and fullwidth_kana("ﾟ") == "゜"  # not combining U+3099/U+309A
    assert suggestion("ｶ") == "カ" and suggestion("ﾞ") == "゛"


def test_a_lone_halfwidth_sound_mark_is_sent_not_crashed_on():
    m = compose(subject="カﾞ", body="ﾟ", from_address="news@example.jp", to="a@docomo.ne.jp")
    assert m.charset == "iso-2022-jp"
    d = decode_message(m.data)
    assert d["subject"] == "カ゛" and d["body"] == "゜\n"


# ------------------------------------------------------------------ decoder
def test_cp50220_extensions_in_iso2022jp_bytes_decode():
    data = b"\x1b$B-!-j|b\x1b(B"  # ① ㈱ 髙, refused by Python's iso2022_jp
    with pytest.raises(UnicodeDecodeError):
        data.decode("iso2022_jp")
    assert decode_iso2022jp(data) == ("①㈱髙", ["①", "㈱", "髙"])
    assert decode_iso2022jp(data, "strict") == ("①㈱髙", ["①", "㈱", "髙"])


def test_standard_cells_decode_the_same_with_or_without_extensions():
    plain = "〜‖−¢£¬―".encode("iso2022_jp")
    assert decode_iso2022jp(plain) == ("〜‖−¢£¬―", [])
    with_ext = plain[:-3] + b"-!" + plain[-3:]
    assert decode_iso2022jp(with_ext) == ("〜‖−¢£¬―①", ["①"])


def test_kana_escapes_and_other_designations():
    assert decode_iso2022jp(b"\x1b(I1236\x1b(B") == ("ｱｲｳｶ", [])          # CP50221
    assert decode_iso2022jp(b"a\x0e12\x0fb") == ("aｱｲb", [])               # CP50222 SO/SI
    assert decode_iso2022jp(b"\x1b&@\x1b$B$\"\x1b(B") == ("あ", [])         # JIS X 0208-1990
    text, ext = decode_iso2022jp(b"\x1b$(D\x30\x21\x1b(B")                  # JIS X 0212
    assert text == ext[0] == b"\x8f\xb0\xa1".decode("euc_jp")


def test_errors_replace_or_raise():
    for bad in (b"ab\x1b%Gc", b"ab\x80c", b"\x1b$B$", b"\x1b$B)!\x1b(B"):
        text, _ = decode_iso2022jp(bad)
        assert "\ufffd" in text
        with pytest.raises(UnicodeDecodeError):
            decode_iso2022jp(bad, "strict")


def test_doctor_fails_extensions_in_a_jis_part():
    text, ext = decode_iso2022jp(b"\x1b$B-!|b\x1b(B")
    (jis, _look) = check_japanese_text([("part 1", text, True, ext)])
    assert jis.status == "fail" and {c["char"] for c in jis.data["chars"]} == {"①", "髙"}
