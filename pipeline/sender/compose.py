"""Subject and text -> the exact bytes sent to one recipient, in the carrier's charset.

Reads nothing; writes nothing. Called by the daemon (per message), by `send preview`, and by the
enqueue check (to report substitutions and UTF-8 fallbacks before a campaign starts).

Two charsets, chosen per carrier (`sender.charset`, `sender.charsets`):
  * ISO-2022-JP, Content-Transfer-Encoding 7bit: safest for old feature phones.
    1. CP932 look-alikes are mapped first (jptext.CP932_LOOKALIKES: U+FF5E -> U+301C and friends),
       because text typed on Windows carries them and the ISO-2022-JP codec refuses them.
    2. Characters ISO-2022-JP cannot carry (①, ㈱, 髙, half-width kana, emoji):
       `unmappable = "replace"` applies jptext.REPLACEMENTS (①->(1), ㈱->(株)...) and half-width ->
       full-width kana (jptext.fullwidth_kana); if anything is still left (emoji, rare kanji) the
       message falls back to UTF-8. `unmappable = "utf8"` falls back to UTF-8 at the first such
       character.
       Never a silent "?": every substitution and fallback is reported in `Composed.notes`.
  * UTF-8, Content-Transfer-Encoding base64: carries everything.

Headers: Subject and the From display name are RFC 2047 encoded words (`email.header.Header`,
which ends each ISO-2022-JP word with ESC ( B). Date, Message-ID, MIME-Version are always there.
A CR or LF inside a header value is refused (HeaderInjectionError), never folded in.
Body lines are kept under 1000 bytes (docomo refuses longer ones): over-long ISO-2022-JP lines are
hard-wrapped; base64 lines are 76 characters.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import Header

from ..core.errors import ConfigError, InputError
from ..core.jptext import CP932_LOOKALIKES, encodable, fullwidth_kana, is_halfwidth_kana, map_lookalikes, replacement

ISO2022JP = "iso-2022-jp"
UTF8 = "utf-8"
CHARSETS = (ISO2022JP, UTF8)
MAX_LINE_BYTES = 998  # RFC 5322 limit without CRLF; docomo answers "500 Line Too Long" above it

# Re-exported: tests/test_sender_compose.py checks the table here.
LOOKALIKES = CP932_LOOKALIKES


class HeaderInjectionError(InputError):
    """A header value (subject, display name, address) contains CR or LF."""


def check_header_value(name: str, value: str) -> None:
    if value and ("\r" in value or "\n" in value):
        raise HeaderInjectionError(
            f"the {name} contains a line break (CR/LF); header values must be one line"
        )


@dataclass
class Prepared:
    """Text ready to encode in `charset`, with what was changed on the way."""

    charset: str
    texts: list[str]
    notes: list[str] = field(default_factory=list)


GETA = "\u3013"   # 〓: the customary stand-in for a character that cannot be shown
# invisible parts of emoji sequences: variation selectors, zero-width joiner, skin-tone modifiers
_DROPPED = frozenset(["\ufe0e", "\ufe0f", "\u200d", *(chr(c) for c in range(0x1F3FB, 0x1F400))])


def substitution_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The packaged emoji/symbol table (data/substitutions.toml) with the operator's entries over it."""
    global _TABLE
    if _TABLE is None:
        import tomllib
        from importlib import resources

        data = tomllib.loads(resources.files(__package__).joinpath("data/substitutions.toml").read_text("utf-8"))
        _TABLE = dict(data["emoji"])
    return {**_TABLE, **(extra or {})}


_TABLE: dict[str, str] | None = None


def _notes(counts: Counter) -> list[str]:
    """One line per distinct substitution, with its count: `① -> (1) (63 times)`."""
    out = []
    for (src, dst), n in counts.items():
        shown = src if src.isprintable() and src not in _DROPPED else f"U+{ord(src[0]):04X}"
        line = f"{shown} -> {dst}" if dst else f"{shown} dropped (invisible part of an emoji)"
        out.append(line + (f" ({n} times)" if n > 1 else ""))
    return out


def prepare_texts(texts: list[str], charset: str, unmappable: str = "replace",
                  substitutions: dict[str, str] | None = None) -> Prepared:
    """Map look-alikes / replacements / substitutions for ISO-2022-JP, or decide to fall back to UTF-8.

    unmappable: "replace" (JIS replacement table; anything left sends the message as UTF-8),
    "substitute" (also the emoji table and 〓, so the message stays ISO-2022-JP) or "utf8".
    """
    if charset == UTF8:
        return Prepared(UTF8, list(texts))
    if charset != ISO2022JP:
        raise InputError(f"unknown charset {charset!r}: use {' or '.join(CHARSETS)}")
    if unmappable not in ("replace", "utf8", "substitute"):
        raise InputError(f"sender.unmappable must be 'replace', 'substitute' or 'utf8' (got {unmappable!r})")
    table = substitution_table(substitutions) if unmappable == "substitute" else {}
    counts: Counter = Counter()
    out: list[str] = []
    leftovers: list[str] = []
    for text in texts:
        buf: list[str] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ord(ch) < 128:
                buf.append(ch)
                i += 1
                continue
            if ch in LOOKALIKES:
                counts[(ch, LOOKALIKES[ch])] += 1
                buf.append(LOOKALIKES[ch])
                i += 1
                continue
            if encodable(ch):
                buf.append(ch)
                i += 1
                continue
            if unmappable == "utf8":
                return Prepared(UTF8, list(texts), [f"UTF-8 instead of ISO-2022-JP because of {ch}"])
            if is_halfwidth_kana(ch):
                j = i
                while j < n and is_halfwidth_kana(text[j]):
                    j += 1
                full = fullwidth_kana(text[i:j])
                counts[(f"half-width kana {text[i:j]}", full)] += 1
                buf.append(full)
                i = j
                continue
            repl = replacement(ch)
            if repl is None and table:
                repl = "" if ch in _DROPPED else table.get(ch, GETA)
            if repl is None:
                leftovers.append(ch)
                buf.append(ch)
            else:
                counts[(ch, repl)] += 1
                buf.append(repl)
            i += 1
        out.append("".join(buf))
    if leftovers:
        chars = "".join(sorted(set(leftovers)))
        return Prepared(UTF8, list(texts), [f"UTF-8 instead of ISO-2022-JP because of {chars} (no replacement; "
                                            "unmappable = \"substitute\" keeps ISO-2022-JP)"])
    return Prepared(ISO2022JP, out, _notes(counts))


def _header(value: str, charset: str) -> str:
    if all(ord(c) < 128 for c in value):
        plain = Header(value, "us-ascii", header_name="Subject").encode(linesep="\r\n")
        # ASCII folds only at spaces: a longer run (a URL, a code) would stay one line over the
        # 998 bytes docomo refuses ("500 Line Too Long"); encoded words can be split anywhere
        if all(len(line) <= MAX_LINE_BYTES - len("Subject: ") for line in plain.split("\r\n")):
            return plain
    return Header(value, charset, header_name="Subject").encode(linesep="\r\n")


def _wrap_iso_line(line: str) -> list[bytes]:
    enc = line.encode("iso2022_jp")
    if len(enc) <= MAX_LINE_BYTES:
        return [enc]
    out: list[bytes] = []
    rest = line
    while rest:
        n = min(len(rest), 300)
        chunk = rest[:n].encode("iso2022_jp")
        while len(chunk) > MAX_LINE_BYTES:
            n = n * 3 // 4
            chunk = rest[:n].encode("iso2022_jp")
        out.append(chunk)
        rest = rest[n:]
    return out


def _body_bytes(text: str, charset: str, notes: list[str] | None = None) -> bytes:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if charset == ISO2022JP:
        out: list[bytes] = []
        wrapped = []
        for no, line in enumerate(lines, 1):
            pieces = _wrap_iso_line(line)
            if len(pieces) > 1:
                wrapped.append(f"{no} (into {len(pieces)})")
            out.extend(pieces)
        if wrapped and notes is not None:
            notes.append(f"hard-wrapped at {MAX_LINE_BYTES} bytes (carriers refuse longer lines): line "
                         + ", ".join(wrapped[:10]) + (f" and {len(wrapped) - 10} more" if len(wrapped) > 10 else ""))
        return b"\r\n".join(out) + b"\r\n"
    raw = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return b64


@dataclass
class Composed:
    data: bytes
    charset: str
    message_id: str
    notes: list[str]


class MessageTemplate:
    """One job's message in one charset; `render(to)` adds the per-recipient headers.

    The expensive part (charset decision, encoded Subject/From, body bytes) is done once.
    """

    def __init__(self, *, subject: str, body: str, from_address: str, from_name: str = "",
                 charset: str = ISO2022JP, unmappable: str = "replace", extra_headers=None,
                 substitutions: dict[str, str] | None = None):
        check_header_value("subject", subject)
        check_header_value("From display name", from_name)
        check_header_value("From address", from_address)
        if not from_address or "@" not in from_address:   # the config's fault (intake: exit 75, retried)
            raise ConfigError("sender.from_address is not set: put from_address = \"news@example.jp\" under [sender]")
        prepared = prepare_texts([subject, from_name, body], charset, unmappable, substitutions)
        self.charset = prepared.charset
        self.notes = prepared.notes
        p_subject, p_name, p_body = prepared.texts
        self.from_address = from_address
        self.domain = from_address.rpartition("@")[2]
        from_hdr = from_address if not p_name else f"{_display_name(p_name, self.charset)} <{from_address}>"
        if self.charset == ISO2022JP:
            ctype = "text/plain; charset=ISO-2022-JP"
            cte = "7bit"
        else:
            ctype = "text/plain; charset=UTF-8"
            cte = "base64"
        self._head = (
            f"From: {from_hdr}\r\n"
            f"Subject: {_header(p_subject, self.charset)}\r\n"
            "MIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n"
        ).encode("ascii")
        for name, value in (extra_headers or {}).items():
            check_header_value(name, value)
            self._head += f"{name}: {_header(value, self.charset)}\r\n".encode("ascii")
        self._body = _body_bytes(p_body, self.charset, self.notes)

    def render(self, to: str, *, now: float | None = None, message_id: str | None = None) -> Composed:
        check_header_value("recipient", to)
        from .recipients import smtp_address

        mid = message_id or email.utils.make_msgid(domain=self.domain)
        date = _date_header(int(now if now is not None else time.time()))
        head = (
            f"Date: {date}\r\nMessage-ID: {mid}\r\nTo: {smtp_address(to)}\r\n".encode("ascii")
            + self._head
        )
        return Composed(head + b"\r\n" + self._body, self.charset, mid, list(self.notes))


@lru_cache(maxsize=4)
def _date_header(second: int) -> str:
    """The Date header for one second (formatted once per second, not once per message)."""
    return email.utils.formatdate(second, localtime=True)


def _display_name(name: str, charset: str) -> str:
    if all(ord(c) < 128 for c in name):
        if any(c in name for c in '()<>[]:;@\\,."'):
            return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return name
    return Header(name, charset).encode(linesep="\r\n")


def compose(*, subject: str, body: str, from_address: str, to: str, from_name: str = "",
            charset: str = ISO2022JP, unmappable: str = "replace", now: float | None = None) -> Composed:
    """One message, start to finish (see MessageTemplate for the reusable form)."""
    tpl = MessageTemplate(subject=subject, body=body, from_address=from_address, from_name=from_name,
                          charset=charset, unmappable=unmappable)
    return tpl.render(to, now=now)


def decode_message(data: bytes) -> dict[str, str]:
    """Read our own bytes back (what a phone would show): headers decoded, body as text."""
    msg = message_from_bytes(data, policy=policy.default)
    body = msg.get_content() if not msg.is_multipart() else ""
    return {
        "subject": str(msg["subject"] or ""),
        "from": str(msg["from"] or ""),
        "to": str(msg["to"] or ""),
        "charset": msg.get_content_charset() or "",
        "body": body.replace("\r\n", "\n"),
    }


def charset_for(sender_cfg, carrier: str) -> str:
    """The charset for a carrier from the [sender] settings (typed section or plain dict)."""
    if isinstance(sender_cfg, dict):
        charsets, default = sender_cfg.get("charsets", {}), sender_cfg.get("charset", ISO2022JP)
    else:
        charsets, default = sender_cfg.charsets, sender_cfg.charset
    cs = str(charsets.get(carrier, default)).lower()
    cs = {"utf8": UTF8, "iso2022jp": ISO2022JP, "jis": ISO2022JP}.get(cs.replace("_", "-"), cs.replace("_", "-"))
    if cs not in CHARSETS:
        from ..core.errors import ConfigError

        raise ConfigError(f"sender charset for {carrier} is {cs!r}: use iso-2022-jp or utf-8")
    return cs
