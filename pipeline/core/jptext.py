"""Japanese text rules for mail to phones: what ISO-2022-JP can carry, and how to read what arrives.

Holds, in one place:
  * CP932_LOOKALIKES: Windows (CP932) code points -> the JIS ones ISO-2022-JP carries for the same
    glyph (U+FF5E ～ -> U+301C 〜 and friends); `map_lookalikes()` applies them to a text.
  * REPLACEMENTS: characters ISO-2022-JP cannot carry (NEC row 13 such as ① ㈱, IBM extension
    kanji such as 髙, unit and era squares) -> text it can; `replacement()` looks one up.
  * `encodable()`, `is_halfwidth_kana()`, `fullwidth_kana()` (half-width -> full-width katakana).
  * `suggestion()`: the best ISO-2022-JP stand-in for one character (look-alike, table, kana,
    then NFKC), or "" when there is none.
  * `decode_iso2022jp()`: the one ISO-2022-JP decoder, tolerant of what Microsoft's
    CP50220/50221/50222 (iPhone, au handsets) write: NEC/IBM extensions, half-width katakana,
    JIS X 0212.

Pure functions on text and bytes; reads and writes nothing. Used by pipeline.sender.compose (the
outgoing encoder), pipeline.sender.intake (request mail in) and pipeline.preflight.message_checks
(`doctor message`), so the sender and the doctor agree on one table.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# CP932 (Windows) code points -> the JIS code points ISO-2022-JP carries for the same glyph.
# Python's iso2022_jp codec refuses the left-hand side; text typed on Windows is full of them.
CP932_LOOKALIKES = {
    "\uff5e": "\u301c",  # ～ FULLWIDTH TILDE -> 〜 WAVE DASH
    "\u2225": "\u2016",  # ∥ PARALLEL TO -> ‖ DOUBLE VERTICAL LINE
    "\uff0d": "\u2212",  # － FULLWIDTH HYPHEN-MINUS -> − MINUS SIGN
    "\uffe0": "\u00a2",  # ￠ FULLWIDTH CENT SIGN -> ¢ CENT SIGN
    "\uffe1": "\u00a3",  # ￡ FULLWIDTH POUND SIGN -> £ POUND SIGN
    "\uffe2": "\u00ac",  # ￢ FULLWIDTH NOT SIGN -> ¬ NOT SIGN
    "\u2014": "\u2015",  # — EM DASH -> ― HORIZONTAL BAR (JIS 1-1-29; JIS-table converters give U+2014)
}

# Half-width (semi-)voiced sound marks: NFKC makes them *combining* marks (U+3099/U+309A), which
# ISO-2022-JP cannot carry when they follow no half-width kana; the spacing ゛ ゜ are in JIS X 0208.
_SOUND_MARKS = {"\uff9e": "\u309b", "\uff9f": "\u309c"}
_COMBINING_TO_SPACING = {0x3099: "\u309b", 0x309A: "\u309c"}

# Characters outside JIS X 0208 (NEC/IBM extensions of CP932 and a few others) -> text ISO-2022-JP
# can carry. Applied by the sender's encoder (unmappable = "replace") and suggested by the doctor.
REPLACEMENTS = {
    **{chr(0x2460 + i): f"({i + 1})" for i in range(20)},            # ①..⑳ -> (1)..(20)
    **{chr(0x2160 + i): r for i, r in enumerate("I II III IV V VI VII VIII IX X".split())},
    **{chr(0x2170 + i): r for i, r in enumerate("i ii iii iv v vi vii viii ix x".split())},
    "㈱": "(株)", "㈲": "(有)", "㈹": "(代)", "㏍": "K.K.", "№": "No.", "℡": "TEL",
    "㊤": "(上)", "㊥": "(中)", "㊦": "(下)", "㊧": "(左)", "㊨": "(右)",
    "㍾": "明治", "㍽": "大正", "㍼": "昭和", "㍻": "平成", "㋿": "令和",
    "㍉": "ミリ", "㌔": "キロ", "㌢": "センチ", "㍍": "メートル", "㌘": "グラム", "㌧": "トン",
    "㌃": "アール", "㌶": "ヘクタール", "㍑": "リットル", "㍗": "ワット", "㌍": "カロリー",
    "㌦": "ドル", "㌣": "セント", "㌫": "パーセント", "㍊": "ミリバール",
    "㎜": "mm", "㎝": "cm", "㎞": "km", "㎎": "mg", "㎏": "kg", "㏄": "cc", "㎡": "m2",
    "\u301d": "\u201c", "\u301f": "\u201d",                           # 〝 〟 -> “ ”
    # IBM extension kanji (and 𠮷, outside CP932 too) -> the JIS X 0208 form of the same name kanji
    "髙": "高", "﨑": "崎", "德": "徳", "\u6801": "柳", "\ufa12": "晴", "\uf9dc": "隆",
    "\U00020bb7": "吉",  # (纊 U+7E8A has no JIS stand-in: 継 is a different kanji, so none is given)
    "∥": "‖",
    **_SOUND_MARKS,                                                    # ﾞ ﾟ -> ゛ ゜
}


@lru_cache(maxsize=4096)
def encodable(ch: str) -> bool:
    """True when ISO-2022-JP (Python's strict iso2022_jp codec) can carry `ch`."""
    try:
        ch.encode("iso2022_jp")
        return True
    except UnicodeEncodeError:
        return False


def map_lookalikes(text: str) -> str:
    """`text` with every CP932 look-alike replaced by its JIS code point."""
    return "".join(CP932_LOOKALIKES.get(ch, ch) for ch in text)


def replacement(ch: str) -> str | None:
    """The REPLACEMENTS entry for `ch`, or None."""
    return REPLACEMENTS.get(ch)


def is_halfwidth_kana(ch: str) -> bool:
    return "\uff61" <= ch <= "\uff9f"


def fullwidth_kana(text: str) -> str:
    """Half-width katakana -> full-width (NFKC, so ｶﾞ -> ガ); a lone ﾞ/ﾟ becomes ゛/゜."""
    return unicodedata.normalize("NFKC", text).translate(_COMBINING_TO_SPACING)


def suggestion(ch: str) -> str:
    """A replacement ISO-2022-JP can carry, or "" when there is none (emoji, most foreign letters)."""
    if ch in CP932_LOOKALIKES:
        return CP932_LOOKALIKES[ch]
    if ch in REPLACEMENTS:
        return REPLACEMENTS[ch]
    if is_halfwidth_kana(ch):
        return fullwidth_kana(ch)
    nfkc = unicodedata.normalize("NFKC", ch)
    if nfkc != ch and all(encodable(c) for c in nfkc):
        return nfkc
    return ""


# ----------------------------------------------------------------------------- decoding
def _jis_to_sjis(j1: int, j2: int) -> bytes:
    """A JIS X 0208 pair (0x21..0x7E each) -> the Shift_JIS bytes of the same cell."""
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


@lru_cache(maxsize=None)
def _jis0208_pair(j1: int, j2: int) -> tuple[str | None, bool]:
    """(character or None, is a CP50220 extension) for one JIS pair.

    Standard JIS X 0208 cells decode as the iso2022_jp codec does (0x2141 -> 〜 U+301C, not the
    CP932 ～ U+FF5E), so a message decodes the same with or without extension characters in it.
    Cells the strict codec refuses (NEC row 13, IBM extensions) are read through CP932.
    """
    pair = bytes((j1, j2))
    try:
        return (b"\x1b$B" + pair + b"\x1b(B").decode("iso2022_jp"), False
    except UnicodeDecodeError:
        pass
    try:
        return _jis_to_sjis(j1, j2).decode("cp932"), True
    except UnicodeDecodeError:
        return None, False


def decode_iso2022jp(data: bytes, errors: str = "replace") -> tuple[str, list[str]]:
    """Decode ISO-2022-JP as phones' lenient decoders do (CP50220/50221/50222 superset).

    Returns (text, extension characters found). Extensions are the characters outside
    ISO-2022-JP proper that this decoder still reads: JIS X 0208 pairs the strict codec rejects
    (read as CP932: NEC row 13 such as ① ㈱, IBM extension kanji such as 髙) and JIS X 0212
    (`ESC $ ( D`). Half-width katakana (`ESC ( I`, SO..SI) are decoded but not listed: check them
    with is_halfwidth_kana(). `ESC & @ ESC $ B` (JIS X 0208-1990) is accepted.

    errors="replace" (default) puts U+FFFD for what cannot be read (unknown escapes, 8-bit bytes,
    broken pairs); errors="strict" raises UnicodeDecodeError instead.
    """
    out: list[str] = []
    extensions: list[str] = []
    mode = saved = "ascii"
    i, n = 0, len(data)

    def bad(start: int, end: int, reason: str) -> None:
        if errors == "strict":
            raise UnicodeDecodeError("cp50220", data, start, end, reason)
        out.append("\ufffd")

    while i < n:
        b = data[i]
        if b == 0x1B:
            seq = data[i + 1:i + 3]
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
            elif seq == b"(I":
                mode, i = "kana", i + 3
            elif seq in (b"$@", b"$B"):
                mode, i = "jis", i + 3
            elif data[i + 1:i + 6] == b"&@\x1b$B":
                mode, i = "jis", i + 6
            elif data[i + 1:i + 4] == b"$(D":
                mode, i = "jis212", i + 4
            else:
                bad(i, i + 1, "unknown escape sequence")
                i += 1
            continue
        if b == 0x0E:  # SO: half-width katakana until SI
            saved, mode, i = mode, "kana", i + 1
            continue
        if b == 0x0F:  # SI
            mode, i = saved if saved != "kana" else "ascii", i + 1
            continue
        if b >= 0x80:
            bad(i, i + 1, "8-bit byte in a 7-bit charset")
            i += 1
            continue
        if b in (0x0A, 0x0D) or mode == "ascii":
            out.append(chr(b))
            i += 1
            continue
        if mode == "kana":
            out.append(chr(0xFF61 + b - 0x21) if 0x21 <= b <= 0x5F else chr(b))
            i += 1
            continue
        j2 = data[i + 1] if i + 1 < n else 0
        if not (0x21 <= b <= 0x7E and 0x21 <= j2 <= 0x7E):
            bad(i, i + 2, "incomplete JIS pair")
            i += 1
            continue
        if mode == "jis212":
            try:
                ch, extension = bytes((0x8F, b | 0x80, j2 | 0x80)).decode("euc_jp"), True
            except UnicodeDecodeError:
                ch = None
        else:
            ch, extension = _jis0208_pair(b, j2)
        if ch is None:
            bad(i, i + 2, "no character at this JIS code")
        else:
            out.append(ch)
            if extension:
                extensions.append(ch)
        i += 2
    return "".join(out), extensions
