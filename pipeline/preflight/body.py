"""What a reader sees in a message: the decoded text of every text part, HTML turned into lines.

Reads a parsed message (email.message.EmailMessage); writes nothing. Called by message_checks
(charset and Japanese-text checks), ad_law (特定電子メール法 display duties) and ja_spam (phrase
score). ISO-2022-JP parts are decoded leniently (CP50220/CP50221 extensions, as phones do) and
Shift_JIS parts as CP932 when they carry Windows extensions; HTML parts become visible text with
each link's target written after its text, `text <https://...>`, so a line can be read with the
address it points to.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.utils import parseaddr
from operator import itemgetter
from html.parser import HTMLParser

from ..core.jptext import decode_iso2022jp

ISO2022JP_NAMES = {"iso-2022-jp", "csiso2022jp", "iso-2022-jp-2", "iso-2022-jp-1", "iso-2022-jp-3",
                   "iso-2022-jp-ext", "cp50220", "cp50221", "cp50222"}
# Labels of Shift_JIS whose real content is usually CP932 (Windows' superset with ① ㈱ and such).
SHIFT_JIS_NAMES = {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j",
                   "cp932", "ms932"}


@dataclass
class Part:
    """One text part: where it is, its type, the raw decoded text and what a reader sees."""

    where: str
    content_type: str
    charset: str
    raw_text: str  # the decoded payload (HTML with its markup)
    visible: str  # what is shown: the text, or the HTML rendered to lines with link targets
    declared_jis: bool = False
    extensions: list[str] = field(default_factory=list)  # CP50220 extensions in an ISO-2022-JP part
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, link text) of HTML parts
    alternative: tuple[int, int] | None = None  # (id of the multipart/alternative, child index)


@dataclass
class MessageText:
    subject: str
    from_header: str
    from_name: str
    parts: list[Part]
    problems: list[str]  # charset problems (unknown charset, undecodable bytes)
    list_unsubscribe: str = ""  # the List-Unsubscribe header (not shown to the reader)
    # (where, decoded text, has an ISO-2022-JP word, CP50220 extensions) for Subject and From
    headers: list[tuple[str, str, bool, list[str]]] = field(default_factory=list)

    def views(self) -> list[tuple[str, list[Part]]]:
        """What one reader sees: with a multipart/alternative, each alternative (plus the parts
        outside it) is a separate view, since a client shows only one of them."""
        alternatives = sorted({p.alternative for p in self.parts if p.alternative is not None})
        if not alternatives:
            return [("message", list(self.parts))]
        first_group = alternatives[0][0]
        # the parts every view holds, and each alternative's own, sorted out in one pass (not a
        # pass over every part per alternative: 10,000 alternatives took 23 s)
        shared: list[tuple[int, Part]] = []
        own: dict[int, list[tuple[int, Part]]] = {}
        for position, p in enumerate(self.parts):
            if p.alternative is None or p.alternative[0] != first_group:
                shared.append((position, p))
            else:
                own.setdefault(p.alternative[1], []).append((position, p))
        views = []
        for group, index in alternatives:
            if group != first_group:
                continue
            chosen = [p for _, p in heapq.merge(shared, own[index], key=itemgetter(0))]  # in message order
            kinds = sorted({p.content_type for _, p in own[index]})
            views.append((" + ".join(kinds) or f"alternative {index}", chosen))
        return views

    def visible_text(self) -> str:
        return "\n".join(p.visible for p in self.parts)


def lines_left_in_jis(data: bytes) -> list[int]:
    """Numbers of the lines of ISO-2022-JP `data` that end outside ASCII/JIS-Roman: their last
    escape sequence selects JIS X 0208/0212 or kana (or an SO is not closed by SI)."""
    bad = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        esc = line.rfind(b"\x1b")
        if (esc >= 0 and line[esc:esc + 3] not in (b"\x1b(B", b"\x1b(J")) or line.rfind(b"\x0e") > line.rfind(b"\x0f"):
            bad.append(number)
    return bad


def decode_part(payload: bytes, charset: str, *, word: bool = False) -> tuple[str, list[str], str | None]:
    """(text, CP50220 extension characters, problem or None) for one part's payload (`word`: the
    payload of one RFC 2047 encoded word)."""
    charset = (charset or "us-ascii").lower()
    if charset in ISO2022JP_NAMES:
        text, extensions = decode_iso2022jp(payload)
        found = []
        if any(b >= 0x80 for b in payload):
            found.append(f"is labelled {charset} but has 8-bit bytes")
        left = lines_left_in_jis(payload)
        if left:
            shown = ", ".join(map(str, left[:5])) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            where = "an encoded word" if word else f"line {shown}"
            found.append(f"has ISO-2022-JP text that does not switch back to ASCII (ESC ( B) at the end of "
                         f"{where}: RFC 1468 requires it, and old phones show what follows as garbage")
        return text, extensions, "; ".join(found) or None
    codec = "cp932" if charset in ("windows-31j", "cp932", "ms932") else charset
    try:
        return payload.decode(codec), [], None
    except LookupError:
        return payload.decode("utf-8", "replace"), [], f"has an unknown charset {charset!r}"
    except UnicodeDecodeError as exc:
        if charset in SHIFT_JIS_NAMES:
            try:
                # what Japanese mail readers do with it; strict decoders show garbage
                return payload.decode("cp932"), [], (
                    f"is labelled {charset} but carries Windows (CP932) characters such as ① or ㈱")
            except UnicodeDecodeError:
                pass
        return payload.decode(codec, "replace"), [], f"is not valid {charset} (byte {exc.start})"


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_value(raw: str) -> tuple[str, bool, list[str], list[str]]:
    """(text, has an ISO-2022-JP word, CP50220 extensions, problems) of one raw header value.

    RFC 2047 words are decoded with decode_part, so an ISO-2022-JP word is read leniently as
    phones read it: Python's strict codec leaves a word holding ① ㈱ 髙 or half-width kana
    undecoded, and the whole Subject would then be checked (and scored) as `=?ISO-2022-JP?B?…?=`.
    """
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw)
    try:
        pieces = decode_header(raw)
    except Exception:  # noqa: BLE001 (a malformed word: keep the raw text, as mail readers do)
        return raw, False, [], []
    out, extensions, problems, jis = [], [], [], False
    for data, charset in pieces:
        if isinstance(data, str):
            out.append(data)
            continue
        if charset is None:
            out.append(data.decode("raw-unicode-escape"))
            continue
        jis = jis or charset.lower() in ISO2022JP_NAMES
        text, exts, problem = decode_part(data, charset, word=True)
        out.append(text)
        extensions.extend(exts)
        if problem:
            problems.append(problem)
    return "".join(out), jis, extensions, problems


def _header_text(msg, name: str, problems: list[str]) -> tuple[str, bool, list[str]]:
    """The header as Python's email package decodes it, unless that left an encoded word undecoded
    (a charset it reads strictly): then our own decoding, with what it found."""
    value = msg.get(name)
    if value is None:
        return "", False, []
    shown = str(value)
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if not isinstance(raw, str) or not _ENCODED_WORD.search(raw):
        return shown, False, []
    text, jis, extensions, found = decode_header_value(raw)
    problems.extend(f"{name} header {p}" for p in found)
    if not _ENCODED_WORD.search(shown):
        return shown, jis, extensions
    return text, jis, extensions


def extract(msg) -> MessageText:
    parts: list[Part] = []
    problems: list[str] = []
    counter = iter(range(1_000_000))
    _walk(msg, None, parts, problems, counter, [0])
    subject, subject_jis, subject_ext = _header_text(msg, "Subject", problems)
    from_header, from_jis, from_ext = _header_text(msg, "From", problems)
    from_name = ""
    try:
        if _ENCODED_WORD.search(str(msg.get("From", "") or "")):  # left undecoded: use our text
            from_name = parseaddr(from_header)[0]
        else:
            addresses = msg["From"].addresses if msg.get("From") is not None else ()
            from_name = addresses[0].display_name if addresses else ""
    except (AttributeError, IndexError, TypeError):
        from_name = ""
    headers = [(name, text, jis, ext) for name, text, jis, ext in (
        ("Subject", subject, subject_jis, subject_ext), ("From", from_header, from_jis, from_ext))
        if msg.get(name) is not None]
    return MessageText(subject, from_header, from_name, parts, problems,
                       str(msg.get("List-Unsubscribe", "") or ""), headers)


def _walk(part, alternative, parts, problems, counter, alt_ids) -> None:
    index = next(counter)
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        is_alt = part.get_content_subtype() == "alternative"
        if is_alt:
            alt_ids[0] += 1
            group = alt_ids[0]
        for n, child in enumerate(children):
            _walk(child, (group, n) if is_alt else alternative, parts, problems, counter, alt_ids)
        return
    if part.get_content_maintype() != "text" or part.is_attachment():
        return
    ctype = part.get_content_type()
    where = f"part {index} ({ctype})"
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception as exc:  # noqa: BLE001 - a broken transfer encoding is the sender's data
        problems.append(f"{where} cannot be decoded: {exc}")
        return
    charset = (part.get_content_charset() or "us-ascii").lower()
    text, extensions, problem = decode_part(payload, charset)
    if problem:
        problems.append(f"{where} {problem}")
    links: list[tuple[str, str]] = []
    visible = text
    if ctype == "text/html":
        visible, links = html_to_text(text)
    parts.append(Part(where, ctype, charset, text, visible, charset in ISO2022JP_NAMES, extensions, links,
                      alternative))


# ------------------------------------------------------------------ HTML
_BLOCK = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
          "hr", "section", "article", "header", "footer", "blockquote", "pre", "dd", "dt", "dl", "address",
          "center", "td", "th"}
_HIDDEN = {"script", "style", "head", "title", "template", "noscript"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"}
# Inline styles that keep text off the screen: such text is not "shown" to the reader.
_INVISIBLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])",
                        re.IGNORECASE)


class _Renderer(HTMLParser):
    """HTML -> the lines a reader sees, with each link's target after its text.

    In time linear in the HTML, whatever the markup (a message is anyone's text):
    - a link ends when its `a` element does: at `</a>`, at the end tag of an element around it,
      or at the next `<a>` (links do not nest, as browsers read them); a stray `</a>` is ignored.
      Link texts are therefore disjoint pieces of the text (nested or never-closed links each
      holding the texts of the others were quadratic in their number);
    - markup left open at the end of the input (an unclosed comment, tag or quote) hides the
      rest, as HTML5 says and Python's own html.parser does from 3.11.13 on (close()); the
      earlier parsers (3.11.7 here) re-read the rest for every '<' in it: quadratic;
    - an end tag looks the element up in a count of the open ones, not in the whole stack."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._hidden = 0
        # open elements: (tag, whether it hides its content, (href, start in out) for an `a`)
        self._open: list[tuple[str, bool, tuple[str | None, int] | None]] = []
        self._open_count: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and self._open_count.get("a"):
            self.handle_endtag("a")
        if tag not in _VOID:
            hides = tag in _HIDDEN or "hidden" in attributes or bool(_INVISIBLE.search(attributes.get("style") or ""))
            link = (attributes.get("href"), len(self.out)) if tag == "a" else None
            self._open.append((tag, hides, link))
            self._open_count[tag] = self._open_count.get(tag, 0) + 1
            self._hidden += hides
        if tag in _BLOCK:
            self.out.append("\n")
        if tag == "img":
            alt = attributes.get("alt")
            if alt and not self._hidden:
                self.out.append(alt)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if self._open_count.get(tag):
            while self._open:  # close what the markup left open inside this element
                open_tag, hides, link = self._open.pop()
                self._open_count[open_tag] -= 1
                self._hidden -= hides
                if link is not None:
                    self._end_link(*link)
                if open_tag == tag:
                    break
        if tag in _BLOCK:
            self.out.append("\n")

    def _end_link(self, href: str | None, start: int) -> None:
        if href and not self._hidden:
            href = href.strip()
            label = "".join(self.out[start:]).strip()
            self.links.append((href, label))
            if href.lower().startswith(("http://", "https://", "mailto:")) and href not in label:
                self.out.append(f" <{href}>")

    def handle_data(self, data):
        if not self._hidden:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))

    def close(self):
        """The end of the input: markup still open there (a comment, a tag, a quoted attribute
        value that never ends) takes the rest with it, unseen; a bare `<` or `</` is text."""
        if self.rawdata.startswith("<") and self.rawdata not in ("<", "</"):
            self.rawdata = ""
        super().close()


def html_to_text(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Visible text of an HTML part (one line per block) and its links as (href, link text)."""
    renderer = _Renderer()
    try:
        renderer.feed(html)
        renderer.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    lines = [line.strip() for line in "".join(renderer.out).split("\n")]
    return "\n".join(line for line in lines if line), renderer.links
