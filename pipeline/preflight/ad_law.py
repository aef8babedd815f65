"""The display duties of the 特定電子メール法 for advertising mail, looked for in what the reader sees.

特定電子メールの送信の適正化等に関する法律 (Act on Regulation of Transmission of Specified
Electronic Mail, 2002; amended 2008): 第4条 obliges the sender of advertising mail (特定電子メール,
第2条第2号) to show on the recipient's screen
  第1号  the name of the sender (or of the party responsible for sending)     -> `law-sender`
  第2号  the mail address or URL that takes opt-out notices (第3条第3項)        -> `law-optout`
  第3号  what the ordinance (施行規則 第9条) adds:
           第1号 a statement that the recipient can opt out, by that address  -> `law-optout`
           第2号 the sender's postal address                                   -> `law-address`
           第3号 a phone number, mail address or URL for complaints and
                 questions                                                     -> `law-contact`
The ordinance lets the address and the complaint contact be shown on a linked page, so a URL
announced as that page counts. docs/doctor.md has the details and sources.

Reads MessageText (body.py); writes nothing. Called by message_checks.check_message. These are
text heuristics: a PASS means the element was found, not that a lawyer has read the footer.
"""

from __future__ import annotations

import re
import unicodedata

from .body import MessageText
from .results import CheckResult

# ------------------------------------------------------------------ patterns (on NFKC text)
URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'()\[\]{}「」『』【】、。]+", re.IGNORECASE)
# An address starts where a run of its characters starts (the look-behind): tried from inside a run
# too, a long run without '@' (minified text, a base64 blob) costs time quadratic in its length.
EMAIL = re.compile(r"(?:mailto:)?(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
                   re.IGNORECASE)
PHONE = re.compile(r"(?<![\d.])(?:\+81[\s\-]?\(?0?\)?|0)\d{1,4}[\s\-()]{0,2}\d{1,4}[\s\-()]{0,2}\d{3,4}(?![\d.])")
POSTCODE = re.compile(r"〒\s*\d{3}\s*(?:-\s*)?\d{4}|(?<!\d)\d{3}-\d{4}(?![\d-])")
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)
STREET = re.compile("(?:" + "|".join(PREFECTURES) + r")\S{0,20}?[市区町村郡]\S{0,40}?\d"
                    r"|(?<!\S)\S{1,5}市\S{1,5}区\S{0,30}?\d")  # a designated city's ward: 大阪市北区梅田1-1
ENTITY = re.compile(
    r"株式会社|有限会社|合同会社|合資会社|合名会社|(?:一般|公益)(?:社団|財団)法人|特定非営利活動法人|NPO法人"
    r"|学校法人|医療法人|社会福祉法人|\((?:株|有|同)\)"
    r"|\b(?:Co\.,?\s*Ltd|Inc|K\.K|LLC|Corporation|Corp|Ltd|GmbH)\b\.?", re.IGNORECASE)
SENDER_LABEL = re.compile(
    r"(?:送信者|送信元|送信責任者|配信者|配信元|配信責任者|発行者|発行元|発信者|発信元|運営会社|運営者|運営元"
    r"|会社名|事業者名|販売業者|提供元|sender|published\s+by|publisher|operated\s+by)"
    r"(?:名|の氏名|の名称)?\s*(?:[:：]\s*)?(\S.{0,60})", re.IGNORECASE)
ADDRESS_LABEL = re.compile(r"住所|所在地|本社|本店|address", re.IGNORECASE)
ADDRESS_PAGE = re.compile(
    r"住所|所在地|会社概要|会社情報|企業情報|運営会社|運営者情報|特定商取引法|特商法|about\s*us|company",
    re.IGNORECASE)
CONTACT_LABEL = re.compile(
    r"お?問(?:い)?合(?:わ)?せ|苦情|ご意見|ご相談|連絡先|窓口|サポート|カスタマー|コールセンター|フリーダイヤル"
    r"|電話|TEL|contact|inquir|support|helpdesk|complain", re.IGNORECASE)
OPTOUT_WORDS = re.compile(
    r"(?:配信|受信|送信|購読|登録|メールマガジン|メルマガ|ニュースレター|メール)(?:の|を)?"
    r"(?:停止|解除|中止|拒否|取り?消し|キャンセル)"
    r"|(?:配信|受信|送信)を(?:ご)?希望(?:され|し)ない|配信(?:が)?不要|オプトアウト"
    r"|unsubscribe|opt[\s\-]?out|stop\s+receiving", re.IGNORECASE)
OPTOUT_URL = re.compile(r"unsub|opt-?out|optout|teishi|kaijo|stop|remove|haishin", re.IGNORECASE)
WINDOW = (1, 2)  # an address or URL within 1 line before or 2 lines after the words belongs to them


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in _norm(text).splitlines() if line.strip()]


def _near(lines: list[str], i: int, before: int = WINDOW[0], after: int = WINDOW[1]) -> list[str]:
    return lines[max(0, i - before):i + after + 1]


def _targets(text: str) -> list[str]:
    return URL.findall(text) + EMAIL.findall(text)


def _phones(text: str) -> list[str]:
    found = []
    for m in PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if digits.startswith("81"):
            digits = "0" + digits[2:].lstrip("0")
        if 10 <= len(digits) <= 11:
            found.append(m.group(0).strip())
    return found


# ------------------------------------------------------------------ one duty, one view
def _find_sender(lines: list[str]) -> tuple[str, str] | None:
    for line in lines:
        m = SENDER_LABEL.search(line)
        if m and m.group(1).strip(" :：-"):
            return "label", line
    for line in lines:
        if ENTITY.search(line):
            return "entity", line
    return None


def _find_address(lines: list[str]) -> tuple[str, str] | None:
    for line in lines:
        if POSTCODE.search(line) and ("〒" in line or STREET.search(line) or ADDRESS_LABEL.search(line)):
            return "address", line
        if STREET.search(line):
            return "address", line
    for line in lines:
        # 住所：… with a house number (not a phone number, a mail address or a link)
        rest = EMAIL.sub("", URL.sub("", PHONE.sub("", line)))
        if ADDRESS_LABEL.search(rest) and re.search(r"\d", rest):
            return "address", line
    for i, line in enumerate(lines):
        if ADDRESS_PAGE.search(line):
            for near in _near(lines, i, 0, 1):
                if URL.search(near):
                    return "pointer", line if URL.search(line) else f"{line} {near}"
    return None


def _find_contact(lines: list[str], optout_targets: set[str]) -> tuple[str, str] | None:
    for i, line in enumerate(lines):
        if CONTACT_LABEL.search(line) and not _optout_words(line):
            for near in _near(lines, i, 0, 2):
                if _phones(near) or any(t not in optout_targets for t in _targets(near)):
                    return "labelled", line if (_phones(line) or _targets(line)) else f"{line} {near}"
    for line in lines:
        if _phones(line):
            return "phone", line
    for line in lines:
        others = [t for t in _targets(line) if t not in optout_targets]
        if others and EMAIL.search(" ".join(others)):
            return "unlabelled", line
    return None


def _optout_words(line: str) -> bool:
    """The words announcing the opt-out, looked for outside URLs and addresses (a URL such as
    /unsubscribe is not a statement) and with spaces removed (配 信 停 止)."""
    words = EMAIL.sub(" ", URL.sub(" ", line))
    return bool(OPTOUT_WORDS.search(words) or OPTOUT_WORDS.search(words.replace(" ", "")))


_BACK_REFERENCE = re.compile(r"上記|上の|以上の|above", re.IGNORECASE)


def _optout_targets(lines: list[str], i: int) -> list[str]:
    """The address/URL the opt-out words at line i announce: on the same line, else in the next
    two lines, else on the line before when it looks like one (…/unsubscribe) or the words point
    back to it (上記のURL). A contact address just above the words is not taken for it."""
    if _targets(lines[i]):
        return _targets(lines[i])
    for near in lines[i + 1:i + 1 + WINDOW[1]]:
        if _targets(near):
            return _targets(near)
    if i > 0:
        before = _targets(lines[i - 1])
        if _BACK_REFERENCE.search(lines[i]):
            return before
        return [t for t in before if OPTOUT_URL.search(t)]
    return []


def _find_optout(lines: list[str]) -> tuple[str, str, set[str]]:
    """('ok' | 'no-target' | 'no-words' | 'none', the line, the opt-out addresses/URLs)."""
    worded = [i for i, line in enumerate(lines) if _optout_words(line)]
    for i in worded:
        targets = _optout_targets(lines, i)
        if targets:
            return "ok", lines[i], set(targets)
    if worded:
        return "no-target", lines[worded[0]], set()
    for line in lines:
        urls = [u for u in _targets(line) if OPTOUT_URL.search(u)]
        if urls:
            return "no-words", line, set(urls)
    return "none", "", set()


# ------------------------------------------------------------------ the checks
ARTICLES = {
    "law-sender": "法第4条第1号",
    "law-optout": "法第4条第2号・施行規則第9条第1号",
    "law-address": "施行規則第9条第2号",
    "law-contact": "施行規則第9条第3号",
}


def _clip(line: str, n: int = 70) -> str:
    return line if len(line) <= n else line[:n - 1] + "…"


def _combine(name: str, per_view: list[tuple[str, tuple | None]], found_text, missing: tuple[str, str],
             fix: str, warn_of=None) -> CheckResult:
    """One result from the per-view findings: PASS when every view has it, WARN when only some
    do (or `warn_of` says the finding is weak), FAIL when none has it."""
    article = ARTICLES[name]
    hits = [(view, f) for view, f in per_view if f is not None]
    data = {"article": article, "found": {view: (f[1] if f else None) for view, f in per_view}}
    if not hits:
        ja, en = missing
        return CheckResult(name, "fail", f"{ja} / {en} ({article})", fix, data)
    missing_views = [view for view, f in per_view if f is None]
    weak = warn_of(hits[0][1]) if warn_of else None
    shown = found_text(hits[0][1])
    if missing_views:
        return CheckResult(
            name, "warn",
            f"{shown}, but not in {', '.join(missing_views)} / {missing_views[0]} に表示がありません ({article})",
            "a mail client shows only one alternative of a multipart/alternative message: put the same "
            "footer in the text and in the HTML part / テキスト版とHTML版の両方に同じ表示を入れてください", data)
    if weak:
        return CheckResult(name, "warn", f"{shown}; {weak[0]} ({article})", weak[1], data)
    return CheckResult(name, "pass", f"{shown} ({article})", data=data)


def check_display_duties(text: MessageText) -> list[CheckResult]:
    """`law-sender`, `law-address`, `law-contact`, `law-optout`: each duty of 第4条, per view."""
    views = [(label, _lines("\n".join(p.visible for p in parts))) for label, parts in text.views()]
    single = len(views) == 1
    view_name = (lambda label: "the message") if single else (lambda label: label)

    optout = [(view_name(label), _find_optout(lines)) for label, lines in views]
    optout_targets = set().union(*(o[2] for _v, o in optout)) if optout else set()

    sender_hits = [(view_name(label), _find_sender(lines)) for label, lines in views]
    from_name = _norm(text.from_name or "").strip()
    if not any(f for _v, f in sender_hits) and from_name:
        sender = CheckResult(
            "law-sender", "warn",
            f"送信者名が本文にありません (From の表示名「{_clip(from_name, 30)}」のみ) / the sender's name is "
            f"only in the From header's display name, not in the body ({ARTICLES['law-sender']})",
            "state the sender's (or the responsible party's) full name or company name in the body, "
            "e.g. 「送信者：株式会社エグザンプル」: some clients show only the address / "
            "本文に送信者（送信責任者）の氏名または名称を表示してください",
            {"article": ARTICLES["law-sender"], "from_name": from_name})
    else:
        sender = _combine(
            "law-sender", sender_hits,
            lambda f: f"送信者名あり / sender named: 「{_clip(f[1], 50)}」",
            ("送信者の氏名・名称が見つかりません", "no sender name (person or company) found"),
            "add the sender's (or responsible party's) name to the footer, e.g. 「送信者：株式会社エグザンプル」 / "
            "送信者（送信責任者）の氏名または名称を表示してください")

    address = _combine(
        "law-address", [(view_name(label), _find_address(lines)) for label, lines in views],
        lambda f: (f"住所あり / postal address shown: 「{_clip(f[1], 50)}」" if f[0] == "address" else
                   f"住所の掲載先あり / a link to the page with the address: 「{_clip(f[1], 50)}」"),
        ("送信者の住所が見つかりません（住所を載せたページへのURLも）",
         "no postal address of the sender, nor a link announced as the page that shows it"),
        "add the postal address (〒100-0005 東京都千代田区丸の内1-2-3), or a URL introduced as the page "
        "that shows it (「会社概要・所在地: https://example.jp/company」) / 住所、または住所を掲載した"
        "ページのURLを表示してください")

    contact = _combine(
        "law-contact", [(view_name(label), _find_contact(lines, optout_targets)) for label, lines in views],
        lambda f: f"問い合わせ先あり / contact for questions and complaints: 「{_clip(f[1], 50)}」",
        ("苦情・問い合わせ先（電話番号・メールアドレス・URL）が見つかりません",
         "no phone number, mail address or URL for questions and complaints"),
        "add a contact for complaints and questions, e.g. 「お問い合わせ: support@example.jp / "
        "TEL 03-1234-5678」 / 苦情・問い合わせを受け付ける電話番号、メールアドレスまたはURLを表示してください",
        warn_of=lambda f: ("only an unlabelled address; nothing says it takes questions / 問い合わせ先である"
                           "旨の記載がありません",
                           "label it, e.g. 「お問い合わせ: support@example.jp」 / 「お問い合わせ先」などと"
                           "明記してください") if f[0] == "unlabelled" else None)

    optout_view = [(v, (o[0], o[1]) if o[0] != "none" else None) for v, o in optout]
    list_unsub = text.list_unsubscribe

    def optout_weak(f):
        if f[0] == "no-target":
            return ("配信停止の案内はあるが、受付アドレス/URLが近くにありません / the opt-out words have no "
                    "address or URL next to them",
                    "put the opt-out address or URL right next to the words, e.g. 「配信停止はこちら: "
                    "https://example.jp/unsubscribe」 / 配信停止の文言の直前・直後に受付アドレスかURLを"
                    "表示してください")
        if f[0] == "no-words":
            return ("URLはあるが、配信停止できる旨の記載がありません / a URL that looks like an opt-out link, "
                    "but no words say the reader can opt out there",
                    "announce it, e.g. 「配信停止をご希望の方はこちら」 / 受信拒否（配信停止）ができる旨を"
                    "URLの直前か直後に記載してください")
        return None

    fix = ("add the opt-out notice and where to send it, e.g. 「配信停止をご希望の方は次のURLから: "
           "https://example.jp/unsubscribe」 / 受信拒否ができる旨と、その通知を受けるアドレスまたはURLを"
           "表示してください")
    if list_unsub:
        fix += ("; the List-Unsubscribe header helps Gmail/Yahoo but is not shown to the reader, so it "
                "does not meet the display duty")
    optout_result = _combine(
        "law-optout", optout_view,
        lambda f: f"配信停止の案内あり / opt-out notice: 「{_clip(f[1], 50)}」",
        ("配信停止（受信拒否）の案内と受付先が見つかりません",
         "no opt-out notice with the address or URL that takes it"),
        fix, warn_of=optout_weak)
    return [sender, address, contact, optout_result]
