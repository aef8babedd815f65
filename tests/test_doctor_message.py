"""`doctor message`: lint of real .eml samples (tests/fixtures/messages/) and the local SpamAssassin.

SpamAssassin runs with local tests only (-L), twice in this file: a clean message and GTUBE.
Those two tests skip (with the reason) when `spamassassin` is not installed; .ci/run installs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import DoctorSettings
from pipeline.core.errors import InputError
from pipeline.preflight import check_message, failed
from pipeline.preflight.jis import decode_iso2022jp, suggestion
from pipeline.preflight.spamassassin import parse_report

MESSAGES = Path(__file__).parent / "fixtures" / "messages"
CLEAN = MESSAGES / "clean_iso2022jp.eml"
BAD = MESSAGES / "bad_text.eml"
CP50220 = MESSAGES / "cp50220_in_iso2022jp.eml"
GTUBE = MESSAGES / "gtube.eml"
NEWSLETTER = MESSAGES / "newsletter_iso2022jp.eml"  # advertising, with the 特定電子メール法 footer
needs_spamassassin = pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="SpamAssassin is not installed: apt-get install spamassassin (.ci/run installs it)",
)


def by_name(results):
    return {r.name: r for r in results}


def lint(source, **kw):
    return by_name(check_message(source, spamassassin=False, **kw))


LINT = ["headers", "header-8bit", "line-length", "charset", "iso-2022-jp", "cp932-lookalikes", "size",
        "recipients"]
LAW = ["law-sender", "law-address", "law-contact", "law-optout"]


def message(headers: str, body: str = "hello\n") -> bytes:
    return (headers + "\n" + body).encode("ascii")


STD = ("From: news@good.doctor.test\nDate: Fri, 28 Nov 2025 10:00:00 +0900\n"
       "Message-ID: <m1@good.doctor.test>\nMIME-Version: 1.0\n")


# ------------------------------------------------------------------ lint
def test_clean_iso2022jp_message_passes_every_lint():
    results = check_message(CLEAN, spamassassin=False, advertising=False)
    assert [(r.name, r.status) for r in results] == [(name, "pass") for name in LINT + ["ja-spam"]]


def test_newsletter_with_the_legal_footer_passes_every_check():
    results = check_message(NEWSLETTER, spamassassin=False)
    assert [(r.name, r.status) for r in results] == [(name, "pass") for name in LINT + LAW + ["list-unsubscribe", "ja-spam"]]


def test_bad_message_findings():
    r = lint(BAD)
    assert r["headers"].status == "fail" and "Date" in r["headers"].detail and "Message-ID" in r["headers"].detail
    assert r["header-8bit"].status == "fail" and r["header-8bit"].data["headers"] == ["Subject"]
    assert r["line-length"].status == "fail" and r["line-length"].data["lines"] == [11]
    text = r["iso-2022-jp"]
    assert text.status == "warn"
    chars = {c["char"]: c for c in text.data["chars"]}
    assert chars["①"]["codepoint"] == "U+2460" and chars["①"]["suggestion"] == "(1)"
    assert chars["㈱"]["suggestion"] == "(株)"
    assert chars["ｶ"]["suggestion"] == "カ"
    assert "① U+2460 -> (1)" in text.detail
    look = r["cp932-lookalikes"]
    assert look.status == "warn" and "～ U+FF5E -> 〜" in look.detail
    assert failed(r.values())


def test_cp50220_characters_in_an_iso2022jp_part_fail():
    r = lint(CP50220)["iso-2022-jp"]
    assert r.status == "fail"
    assert {c["char"] for c in r.data["chars"]} == {"①", "髙"}
    assert "髙 U+9AD9 -> 高" in r.detail


def test_lenient_decoder_reads_cp50220_and_halfwidth_kana():
    text, ext = decode_iso2022jp(b"\x1b$B\x2d\x21\x1b(B abc \x1b(I\x31\x32\x1b(B")
    assert text == "① abc ｱｲ" and ext == ["①"]
    assert decode_iso2022jp("こんにちは〜".encode("iso2022_jp")) == ("こんにちは〜", [])


def test_suggestions_for_cp932_lookalikes_all_encode():
    for ch in "\uff5e\u2225\uff0d\uffe0\uffe1\uffe2":
        suggestion(ch).encode("iso2022_jp")


@pytest.mark.slow
def test_size_limits_per_carrier():
    big = message(STD + "To: a@example.test\n", ("y" * 75 + "\n") * 16_000)  # 1.2 MB, short lines
    assert lint(big)["line-length"].status == "pass"
    assert lint(big, carrier="softbank")["size"].status == "fail"
    assert lint(big, carrier="au")["size"].status == "pass"
    every = lint(big)["size"]
    assert every.status == "fail" and set(every.data["over"]) == {"softbank", "ymobile", "rakuten"}


def test_more_than_100_recipients():
    to = ", ".join(f"user{i}@example.test" for i in range(60))
    cc = ", ".join(f"other{i}@example.test" for i in range(41))
    r = lint(message(STD + f"To: {to}\nCc: {cc}\n"))["recipients"]
    assert r.status == "fail" and r.data["count"] == 101
    assert lint(message(STD + f"To: {to}\n"))["recipients"].status == "pass"


def test_missing_mime_version_is_a_warning():
    r = lint(message(STD.replace("MIME-Version: 1.0\n", "") + "To: a@example.test\n"))["headers"]
    assert r.status == "warn" and "MIME-Version" in r.detail


@pytest.mark.parametrize("source, message_text", [
    (MESSAGES / "no-such.eml", "does not exist"),
    (b"", "is empty"),
    (b"just some text\nwithout headers\n", "does not start with a header"),
    (b"\xef\xbb\xbf" + message(STD), "byte order mark"),
    (b"From news@good.doctor.test Fri Nov 28 10:00:00 2025\n" + message(STD), "mbox separator line"),
])
def test_unusable_input_is_an_input_error(source, message_text):
    with pytest.raises(InputError, match=message_text):
        check_message(source, spamassassin=False)


def test_unknown_carrier_is_an_input_error():
    with pytest.raises(InputError, match="unknown carrier"):
        check_message(CLEAN, carrier="vodafone", spamassassin=False)


# ------------------------------------------------------------------ SpamAssassin
def test_spamassassin_not_installed_is_a_clear_warning():
    settings = DoctorSettings(spamassassin="no-such-spamassassin-here")
    r = by_name(check_message(CLEAN, settings))["spamassassin"]
    assert r.status == "warn"
    assert "spamassassin not installed" in r.detail and "apt-get install spamassassin" in r.fix


def test_parse_report_with_wrapped_descriptions():
    out = """Content analysis details:   (6.1 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 3.5 SOME_RULE              BODY: a long description that SpamAssassin
                            wraps onto a second line
 2.6 OTHER_RULE             Other
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP

"""
    score, required, rules = parse_report(out)
    assert (score, required) == (6.1, 5.0)
    assert [r["rule"] for r in rules] == ["SOME_RULE", "OTHER_RULE", "NO_RELAYS"]
    assert rules[0]["description"].endswith("wraps onto a second line")
    assert parse_report("no report here") is None


@pytest.mark.slow
@needs_spamassassin
def test_gtube_is_spam():
    r = by_name(check_message(GTUBE))["spamassassin"]
    assert r.status == "fail"
    assert r.data["score"] >= 1000 and r.data["required"] == 5.0
    assert "GTUBE" in {rule["rule"] for rule in r.data["rules"]}
    assert "GTUBE" in r.detail and "GTUBE" in r.fix


# ------------------------------------------------------------------ the CLI
def doctor(*args):
    return CliRunner().invoke(cli, ["doctor", "message", *map(str, args)])


@pytest.mark.slow
@needs_spamassassin
def test_cli_newsletter_exits_0_with_a_low_score():
    res = doctor(NEWSLETTER, "--strict")
    assert res.exit_code == 0, res.output
    assert "PASS  spamassassin" in res.output and "PASS  law-optout" in res.output
    assert res.output.splitlines()[-1] == "15 passed, 0 warnings, 0 failed"


def test_cli_notice_without_footer_fails_unless_transactional():
    res = doctor(CLEAN, "--no-spamassassin")
    assert res.exit_code == 3 and "FAIL  law-optout" in res.output
    res = doctor(CLEAN, "--no-spamassassin", "--transactional")
    assert res.exit_code == 0 and "law-" not in res.output


def test_cli_bad_message_exits_3_with_fixes():
    res = doctor(BAD, "--no-spamassassin", "--carrier", "au")
    assert res.exit_code == 3
    assert "FAIL  line-length" in res.output and "500 Line Too Long" in res.output
    assert "WARN  iso-2022-jp" in res.output and "fix: replace them as shown" in res.output
    assert "au's limit of 3,000,000" in res.output


def test_cli_json():
    res = doctor(CP50220, "--no-spamassassin", "--json")
    assert res.exit_code == 3
    data = {d["name"]: d for d in json.loads(res.output)}
    assert data["iso-2022-jp"]["status"] == "fail"
    assert data["iso-2022-jp"]["data"]["chars"][0]["codepoint"].startswith("U+")


def test_cli_missing_file_is_an_error():
    res = doctor(MESSAGES / "no-such.eml")
    assert res.exit_code == 1 and res.output.startswith("Error: message file")


def test_cli_unknown_carrier_is_a_usage_error():
    res = doctor(CLEAN, "--carrier", "vodafone")
    assert res.exit_code == 2 and "vodafone" in res.output


# ------------------------------------------------------------------ List-Unsubscribe (advertising mail)
ONE_CLICK = ("List-Unsubscribe: <https://good.doctor.test/u?t=1>, <mailto:u@good.doctor.test>\n"
             "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n")


@pytest.mark.parametrize("extra, status, said", [
    ("", "warn", "no List-Unsubscribe header"),
    ("List-Unsubscribe: <mailto:u@good.doctor.test>\n", "warn", "no https URI"),
    ("List-Unsubscribe: https://good.doctor.test/u?t=1\n", "warn", "holds no <URI>"),
    ("List-Unsubscribe: <https://good.doctor.test/u?t=1>\n", "warn", "List-Unsubscribe=One-Click"),
    (ONE_CLICK, "pass", "one-click unsubscribe: https://good.doctor.test/u?t=1"),
    (ONE_CLICK.replace("List-Unsubscribe=One-Click", "One-Click"), "warn", "found 'One-Click'"),
])
def test_advertising_mail_needs_one_click_list_unsubscribe(extra, status, said):
    r = lint(message(STD + extra))["list-unsubscribe"]
    assert r.status == status and said in r.detail, r


def test_transactional_mail_is_not_asked_for_list_unsubscribe():
    assert "list-unsubscribe" not in lint(message(STD), advertising=False)


# ------------------------------------------------------------------ header form
@pytest.mark.parametrize("change, status, said", [
    (("From: news@good.doctor.test\n", "From: news@good.doctor.test\nFrom: other@example.test\n"),
     "fail", "From appears more than once"),
    (("MIME-Version: 1.0\n", "MIME-Version: 1.0\nSubject: a\nSubject: b\n"), "fail", "Subject appears more than once"),
    (("Message-ID: <m1@good.doctor.test>\n", "Message-ID: <m1@good.doctor.test>\nMessage-ID: <m2@good.doctor.test>\n"),
     "fail", "Message-ID appears more than once"),
    (("From: news@good.doctor.test", "From: Good Shop"), "fail", "holds no address"),
    (("Fri, 28 Nov 2025 10:00:00 +0900", "tomorrow morning"), "warn", "Date 'tomorrow morning' is not an RFC 5322 date"),
    (("<m1@good.doctor.test>", "m1-no-brackets"), "warn", "Message-ID 'm1-no-brackets' is not <unique@domain>"),
])
def test_malformed_or_repeated_headers(change, status, said):
    r = lint(message(STD.replace(*change)))["headers"]
    assert r.status == status and said in r.detail, r


def test_well_formed_headers_pass():
    assert lint(message(STD))["headers"].status == "pass"
