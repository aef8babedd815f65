"""Encoding of outgoing mail: ISO-2022-JP / UTF-8, replacement table, headers, line lengths."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import InputError

from fixtures import make_config, sender_toml
from pipeline.sender.compose import (
    LOOKALIKES, MAX_LINE_BYTES, HeaderInjectionError, MessageTemplate, compose, decode_message, prepare_texts,
)
from pipeline.sender.enqueue import enqueue, parse_recipient_csv
from pipeline.sender.recipients import address_problem, check_recipients, smtp_address

TEXT = "【ご案内】髙橋様 ～冬のセール～ 本日限り！"


def _msg(charset, subject=TEXT, body="本文です。\nよろしくお願いします。", name="配信センター", unmappable="replace"):
    return compose(subject=subject, body=body, from_address="news@example.jp", from_name=name,
                   to="taro..yamada.@docomo.ne.jp", charset=charset, unmappable=unmappable)


def test_plain_japanese_round_trips_in_both_charsets():
    for cs in ("iso-2022-jp", "utf-8"):
        m = compose(subject="冬のセールのご案内", body="本文です。\r\n二行目", from_address="news@example.jp",
                    from_name="配信センター", to="a@au.com", charset=cs)
        assert m.charset == cs and m.notes == []
        d = decode_message(m.data)
        assert d["subject"] == "冬のセールのご案内" and d["body"] == "本文です。\n二行目\n"
        assert d["from"] == "配信センター <news@example.jp>"


def test_iso2022jp_is_7bit_with_encoded_words_ending_in_ascii():
    m = _msg("iso-2022-jp")
    assert all(b < 128 for b in m.data)
    head, _, body = m.data.partition(b"\r\n\r\n")
    assert b"Content-Type: text/plain; charset=ISO-2022-JP" in head
    assert b"Content-Transfer-Encoding: 7bit" in head
    for line in head.split(b"\r\n"):
        if b"=?iso-2022-jp?b?" in line:
            import base64
            for word in line.split(b"=?iso-2022-jp?b?")[1:]:
                assert base64.b64decode(word.split(b"?=")[0]).endswith(b"\x1b(B")
    for line in body.split(b"\r\n"):
        assert b"\x1b$B" not in line or line.endswith(b"\x1b(B")  # every line returns to ASCII


def test_cp932_lookalikes_are_mapped_not_lost():
    m = _msg("iso-2022-jp", subject="価格～税込", body="A∥B －5 ￠￡￢")
    d = decode_message(m.data)
    assert d["subject"] == "価格〜税込" and d["body"] == "A‖B −5 ¢£¬\n"
    assert set(LOOKALIKES) >= {"\uff5e", "\u2225", "\uff0d", "\uffe0", "\uffe1", "\uffe2"}


def test_replacement_table_for_characters_iso2022jp_cannot_carry():
    m = _msg("iso-2022-jp", subject="①㈱髙 ｶﾞｲﾄﾞ №1", body="㍻ ⅲ ㌔")
    d = decode_message(m.data)
    assert m.charset == "iso-2022-jp"
    assert d["subject"] == "(1)(株)高 ガイド No.1" and d["body"] == "平成 iii キロ\n"
    assert any("① -> (1)" in n for n in m.notes) and any("half-width" in n for n in m.notes)


def test_emoji_falls_back_to_utf8_and_says_so():
    m = _msg("iso-2022-jp", subject="セール🎉①")
    assert m.charset == "utf-8" and "🎉" in m.notes[0]
    assert decode_message(m.data)["subject"] == "セール🎉①"  # nothing replaced in the UTF-8 message
    m2 = _msg("iso-2022-jp", subject="①です", unmappable="utf8")
    assert m2.charset == "utf-8" and decode_message(m2.data)["subject"] == "①です"


def test_utf8_is_base64():
    m = _msg("utf-8", subject=TEXT + "🎉")
    head = m.data.partition(b"\r\n\r\n")[0]
    assert b"charset=UTF-8" in head and b"Content-Transfer-Encoding: base64" in head
    assert decode_message(m.data)["subject"] == TEXT + "🎉"


@pytest.mark.parametrize("cs", ["iso-2022-jp", "utf-8"])
def test_required_headers_and_line_lengths(cs):
    long_line = "長い行" * 700 + "end"
    m = _msg(cs, body=long_line + "\n" + "x" * 3000)
    msg = email.message_from_bytes(m.data, policy=policy.default)
    for h in ("Date", "Message-ID", "MIME-Version", "From", "To", "Subject"):
        assert msg[h], h
    assert b'\r\nTo: "taro..yamada."@docomo.ne.jp\r\n' in m.data
    assert max(len(line) for line in m.data.split(b"\r\n")) <= MAX_LINE_BYTES
    assert decode_message(m.data)["body"].replace("\n", "") == long_line + "x" * 3000


@pytest.mark.parametrize("cs", ["iso-2022-jp", "utf-8"])
def test_a_long_ascii_subject_without_spaces_stays_under_the_line_limit(cs):
    """ASCII folds only at spaces: a subject of one long run (a URL, a coupon code) used to go out
    as one header line of over 1,200 bytes, which docomo refuses ("500 Line Too Long")."""
    subject = "https://example.jp/campaign?code=" + "A1" * 600
    m = _msg(cs, subject=subject)
    assert max(len(line) for line in m.data.split(b"\r\n")) <= MAX_LINE_BYTES
    assert decode_message(m.data)["subject"] == subject
    short = _msg(cs, subject="Winter sale: 50% off today only")
    assert b"\r\nSubject: Winter sale: 50% off today only\r\n" in short.data   # plain ASCII stays plain


@pytest.mark.parametrize("field", ["subject", "name"])
def test_header_injection_refused(field):
    kw = {"subject": "hello", "name": "Ops"}
    kw[field] = "hi\r\nBcc: victim@example.com"
    with pytest.raises(HeaderInjectionError):
        _msg("utf-8", **kw)
    with pytest.raises(HeaderInjectionError):
        MessageTemplate(subject="ok", body="b", from_address="a@b.jp").render("x@y.jp\nBcc: z@evil.example")


def test_enqueue_refuses_injection_and_empty_messages(tmp_path):
    cfg = make_config(tmp_path, '[sender]\nfrom_address = "news@example.jp"\n', data_dir=tmp_path / "d")
    with pytest.raises(InputError, match="line break"):
        enqueue(cfg, subject="a\nBcc: x@evil.example", body="b", addresses=["a@docomo.ne.jp"])
    with pytest.raises(InputError, match="no text"):
        enqueue(cfg, subject="a", body="  ", addresses=["a@docomo.ne.jp"])
    with pytest.raises(InputError, match="no valid recipient"):
        enqueue(cfg, subject="a", body="b", addresses=["nope", "x@y"])


@pytest.mark.parametrize("subject, body, what", [
    ("冬のご案内", "本文\n\x1b$Bhello\x1b(B world", "ESC U+001B (line 2)"),   # raw JIS escapes in the text
    ("冬のご案内", "abc\x0e123\x0fdef", "SO U+000E (line 1)"),
    ("冬の\x1b(Jご案内", "本文", "subject contains ESC"),
    ("冬のご案内", "a\x00b", "NUL U+0000"),
])
def test_enqueue_refuses_control_characters_that_garble_phones(tmp_path, subject, body, what):
    """A raw ESC $ B in the text went out as is: in ISO-2022-JP it switches the phone to kanji,
    so "hello" showed as garbage kanji (and in UTF-8 as "$Bhello(B")."""
    cfg = make_config(tmp_path, '[sender]\nfrom_address = "news@example.jp"\n', data_dir=tmp_path / "d")
    with pytest.raises(InputError, match=re.escape(what)):
        enqueue(cfg, subject=subject, body=body, addresses=["a@docomo.ne.jp"])
    report = enqueue(cfg, subject="冬のご案内", body="本文\tタブ\r\n二行目\n", addresses=["a@docomo.ne.jp"])
    assert report.queued == 1                            # TAB and line ends are text


def test_enqueue_refuses_a_message_larger_than_a_carrier_of_its_recipients_takes(tmp_path):
    """SoftBank takes 1 MB, au 3 MB (the carrier table): a 1.3 MB message went out to every
    SoftBank recipient, each refused with 552 after the whole message was sent."""
    cfg = make_config(tmp_path, '[sender]\nfrom_address = "news@example.jp"\n', data_dir=tmp_path / "d")
    body = ("冬のセールのご案内です。" * 4 + "\n") * 12_000          # ~1.25 MB in ISO-2022-JP
    with pytest.raises(InputError) as e:
        enqueue(cfg, subject="冬のご案内", body=body, addresses=["a@i.softbank.jp", "b@au.com", "c@ymobile.ne.jp"])
    msg = str(e.value)
    assert "softbank: 1,252," in msg and "over its 1,000,000" in msg and "ymobile" in msg and "au:" not in msg
    assert "nothing was queued" in msg
    # the same text is fine for au (3 MB) and docomo (10 MB) alone
    assert enqueue(cfg, subject="冬のご案内", body=body, addresses=["b@au.com", "d@docomo.ne.jp"]).queued == 2
    # UTF-8 is base64: 4/3 of the bytes, and 3 bytes a kanji: over au's 3 MB where ISO-2022-JP is not
    (tmp_path / "u").mkdir()
    cfg8 = make_config(tmp_path / "u", '[sender]\nfrom_address = "news@example.jp"\ncharset = "utf-8"\n',
                       data_dir=tmp_path / "d8")
    with pytest.raises(InputError, match=r"au: 4,\d{3},\d{3} bytes .* \(utf-8\), over its 3,000,000"):
        enqueue(cfg8, subject="冬のご案内", body=body * 2, addresses=["b@au.com"])
    assert enqueue(cfg, subject="冬のご案内", body=body * 2, addresses=["e@au.com"]).queued == 1


def test_prepare_rejects_unknown_charset():
    with pytest.raises(InputError):
        prepare_texts(["x"], "shift_jis")


def test_address_syntax():
    for ok in ["taro..yamada.@docomo.ne.jp", ".dot@ezweb.ne.jp", "a+b@au.com", "x_-@i.softbank.jp"]:
        assert address_problem(ok) is None, ok
    for bad in ["", "no-at", "a@b", "a@@b.jp", "a b@docomo.ne.jp", "a@-x.jp", "a@x.jp\nBcc", "a@x.123"]:
        assert address_problem(bad), bad
    assert smtp_address("taro..yamada.@docomo.ne.jp") == '"taro..yamada."@docomo.ne.jp'
    assert smtp_address("taro.yamada@docomo.ne.jp") == "taro.yamada@docomo.ne.jp"


def test_screening_counts():
    s = check_recipients(['"Taro..Yamada."@DoCoMo.ne.jp', "taro..yamada.@docomo.ne.jp", "bad", "z@au.com"],
                         frozenset({"z@au.com"}))
    assert s.accepted == ["taro..yamada.@docomo.ne.jp"] and s.suppressed == ["z@au.com"]
    assert s.duplicates == 1 and [r for _, r in s.invalid] == ["needs exactly one @"]


def test_the_report_names_suppressed_and_full_width_addresses(tmp_path):
    """An operator asking why a customer got nothing: the report said "1 suppressed" without
    which address, and a full-width ｈａｎａｋｏ＠ａｕ．ｃｏｍ (typed with the IME) was "needs exactly
    one @", though it has one. Now both are said with examples."""
    from pipeline.suppression import store as suppression

    cfg = make_config(tmp_path, sender_toml("127.0.0.1:9"))
    suppression.add(cfg, "dead@docomo.ne.jp")
    report = enqueue(cfg, subject="s", body="b", addresses=["DEAD@docomo.ne.jp", "ｈａｎａｋｏ＠ａｕ．ｃｏｍ", "ok@au.com"])
    lines = report.lines()
    assert "  suppressed (on the suppression list, not sent): 1, e.g. dead@docomo.ne.jp" in lines
    assert any(line.startswith("  invalid (full-width characters") and "ｈａｎａｋｏ＠ａｕ．ｃｏｍ" in line for line in lines)


def test_csv_parsing():
    assert parse_recipient_csv("name,email\nA,a@au.com\nB,b@au.com\n") == ["a@au.com", "b@au.com"]
    assert parse_recipient_csv("a@au.com\nb@au.com\n") == ["a@au.com", "b@au.com"]
    assert parse_recipient_csv("id,who\n1,a@au.com\n") == ["a@au.com"]


def test_a_list_with_two_address_columns_is_refused_not_guessed(tmp_path):
    """氏名,PCメール,携帯メール: no recognised header, two columns of addresses. The first was
    taken without a word, and a campaign meant for the phones went to the PC addresses; now the
    list is refused naming the columns, and nothing is queued."""
    from pipeline.sender.enqueue import read_recipient_file
    from pipeline.sender.queue import Queue

    two = "氏名,PCメール,携帯メール\n山田,yamada@example.co.jp,yamada.t@docomo.ne.jp\n佐藤,sato@example.co.jp,sato@au.com\n"
    with pytest.raises(InputError, match=r"several columns.*column 2 \(PCメール\), column 3 \(携帯メール\)"):
        parse_recipient_csv(two)
    with pytest.raises(InputError, match="several columns"):
        parse_recipient_csv("email,mail\na@au.com,b@au.com\n")
    with pytest.raises(InputError, match="several columns"):   # a second column filled in one row of three
        parse_recipient_csv("a@example.jp,\nb@example.jp,b@docomo.ne.jp\nc@example.jp,\n")
    # named, or one column of addresses among others (a note with an @ here and there is no address column)
    assert parse_recipient_csv("氏名,PCメール,メールアドレス\n山田,y@example.co.jp,y@docomo.ne.jp\n") == ["y@docomo.ne.jp"]
    notes = "a@au.com,\nb@au.com,転送 c@example.jp\nd@au.com,\ne@au.com,\n"
    assert parse_recipient_csv(notes) == ["a@au.com", "b@au.com", "d@au.com", "e@au.com"]
    cfg = make_config(tmp_path, sender_toml("127.0.0.1:9"))
    listed = tmp_path / "list.csv"
    listed.write_bytes(two.encode("cp932"))
    with pytest.raises(InputError):
        enqueue(cfg, subject="s", body="b", addresses=read_recipient_file(listed))
    assert Queue.for_config(cfg).jobs() == []


def test_a_stray_quote_cannot_swallow_recipients():
    """`a@au.com,"Taro` (a quote typed by hand): the lenient reader ran the cell on over every
    later row, and their recipients were silently not queued ("1 queued, 0 skipped"); a cell over
    the csv module's limit was an internal error (exit 70). Now each is an InputError with the line."""
    with pytest.raises(InputError, match=r"line 3: unexpected end of data.*stray double quote"):
        parse_recipient_csv('email\na@au.com,"unterminated\nb@au.com\n')
    with pytest.raises(InputError, match=r"rows of addresses \(b@au.com,Hanako …\)"):
        parse_recipient_csv('email,name\na@au.com,"Taro\nb@au.com,Hanako\nc@au.com,Jiro"\nd@au.com,x\n')
    with pytest.raises(InputError, match="field limit"):
        parse_recipient_csv('email\na@au.com,"' + "x" * 200_000 + '"\n')
    # a quoted cell over several lines (a note, an address) and a quote inside a cell stay fine
    assert parse_recipient_csv('email,note\na@au.com,"1行目\n2行目"\nb@au.com,山田 "太郎"\n') == ["a@au.com", "b@au.com"]


def test_a_tab_separated_list_is_read():
    """Excel's テキスト (タブ区切り): every row was one cell "a@au.com<TAB>山田" (invalid: spaces),
    and the whole list was refused as holding no valid recipient."""
    assert parse_recipient_csv("email\tname\na@au.com\t山田\nb@au.com\t佐藤\n") == ["a@au.com", "b@au.com"]
    assert parse_recipient_csv("a@au.com\t山田\n") == ["a@au.com"]


def test_an_excel_unicode_text_list_is_read(tmp_path):
    """Excel's "Unicode テキスト" is UTF-16 with its BOM, tab-separated: `suppression add
    --from-file` read it, `send enqueue` refused it as "neither UTF-8 nor Shift_JIS"."""
    from pipeline.sender.enqueue import read_recipient_file

    f = tmp_path / "list.txt"
    f.write_bytes("メールアドレス\t名前\r\nu16@au.com\t山田\r\n".encode("utf-16"))
    assert read_recipient_file(f) == ["u16@au.com"]
