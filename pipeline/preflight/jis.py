"""What ISO-2022-JP can carry: CP932 look-alikes, replacements for the rest, a lenient decoder.

Pure functions on text and bytes; reads and writes nothing. Used by message_checks (and usable by
the sender's encoder, so both agree on one table).
"""

from __future__ import annotations

import unicodedata

# Windows (CP932) code points that look like JIS characters but are not the ones ISO-2022-JP maps.
CP932_LOOKALIKES = {
    "\uff5e": "\u301c",  # FULLWIDTH TILDE -> WAVE DASH
    "\u2225": "\u2016",  # PARALLEL TO -> DOUBLE VERTICAL LINE
    "\uff0d": "\u2212",  # FULLWIDTH HYPHEN-MINUS -> MINUS SIGN
    "\uffe0": "\u00a2",  # FULLWIDTH CENT SIGN -> CENT SIGN
    "\uffe1": "\u00a3",  # FULLWIDTH POUND SIGN -> POUND SIGN
    "\uffe2": "\u00ac",  # FULLWIDTH NOT SIGN -> NOT SIGN
}

# Suggestions where NFKC gives something worse (① -> "1") or nothing (IBM extension kanji).
_REPLACEMENTS = {
    **{chr(0x2460 + i): f"({i + 1})" for i in range(20)},  # ① .. ⑳
    "\uff9e": "\u309b", "\uff9f": "\u309c",  # half-width (semi-)voiced marks -> ゛ ゜
    "\u9ad9": "高", "\ufa11": "崎", "\u5fb7": "徳", "\u6801": "柳", "\U00020bb7": "吉",
    "\u7e8a": "継", "\ufa12": "晴", "\u9686": "隆",
    "\u2116": "No.", "\u2121": "TEL", "\u301d": "\u201c", "\u301f": "\u201d",
}


def encodable(ch: str) -> bool:
    try:
        ch.encode("iso2022_jp")
        return True
    except UnicodeEncodeError:
        return False


def suggestion(ch: str) -> str:
    """A replacement ISO-2022-JP can carry, or "" when there is none (emoji, most foreign letters)."""
    if ch in CP932_LOOKALIKES:
        return CP932_LOOKALIKES[ch]
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    nfkc = unicodedata.normalize("NFKC", ch)
    if nfkc != ch and all(encodable(c) for c in nfkc):
        return nfkc
    return ""


def is_halfwidth_kana(ch: str) -> bool:
    return "\uff61" <= ch <= "\uff9f"


def describe(ch: str) -> str:
    """`① U+2460 -> (1)` (or `-> ?` when nothing fits)."""
    return f"{ch} U+{ord(ch):04X} -> {suggestion(ch) or '? (send as UTF-8 or remove)'}"


def decode_iso2022jp(data: bytes) -> tuple[str, list[str]]:
    """Decode ISO-2022-JP like phones' lenient decoders (CP50220/50221/50222 superset).

    Returns (text, extension characters found): JIS X 0208 pairs the strict codec rejects are read
    as CP932 (NEC row 13 such as ① ㈱, IBM extension kanji such as 髙), and `ESC ( I` / SO..SI
    half-width katakana are decoded too. Strict decoders (and many phones) show those as garbage.
    """
    out: list[str] = []
    extensions: list[str] = []
    mode = "ascii"
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            seq = data[i + 1:i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
        if b == 0x0E:
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if b in (0x0A, 0x0D) or mode == "ascii":
            out.append(chr(b) if b < 0x80 else "\ufffd")
            i += 1
            continue
        if mode == "kana":
            out.append(chr(0xFF61 + b - 0x21) if 0x21 <= b <= 0x5F else "\ufffd")
            i += 1
            continue
        pair = data[i:i + 2]
        i += 2
        if len(pair) < 2:
            out.append("\ufffd")
            break
        try:
            out.append((b"\x1b$B" + pair + b"\x1b(B").decode("iso2022_jp"))
            continue
        except UnicodeDecodeError:
            pass
        try:
            ch = _jis_to_sjis(pair[0], pair[1]).decode("cp932")
            extensions.append(ch)
            out.append(ch)
        except UnicodeDecodeError:
            out.append("\ufffd")
    return "".join(out), extensions


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
    else:
        s2 = j2 + 0x7E
    return bytes([s1, s2])
