"""Preflight of one message (.eml) before it goes to Japanese carriers.

Reads the message file (or bytes), the Japanese spam-phrase file; runs the local `spamassassin`
when asked; writes nothing. Called by `check_message()` (pipeline.preflight), which
`mailhygiene doctor message` and notebooks use.

Checks: required headers, raw 8-bit headers, line length, text the phones cannot show
(ISO-2022-JP coverage, CP932 look-alikes), size against carrier limits, recipients per message,
the 特定電子メール法 display duties of advertising mail (ad_law), SpamAssassin's score and a
Japanese spam-phrase score (ja_spam) beside it.
"""

from __future__ import annotations

import os
import re
import stat
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_tz

from ..classify.carriers import size_limits
from ..core.config import DoctorSettings
from ..core.errors import InputError
from ..core.jptext import CP932_LOOKALIKES, encodable, is_halfwidth_kana, suggestion
from .ad_law import check_display_duties
from .body import extract
from .ja_spam import load_phrases, score_japanese
from .results import CheckResult
from .spamassassin import check_spamassassin

MB = 1_000_000  # decimal: the conservative reading of the carriers' "MB"
# Largest message (raw bytes, after base64) each carrier takes, and where the figure comes from:
# the carrier table (pipeline/classify/data/carriers.toml), which the sender checks campaigns
# against too; see docs/doctor.md. ymobile shares SoftBank's servers and rakuten publishes no
# figure: both get the strictest limit.
SIZE_LIMITS = size_limits()
CARRIERS = tuple(SIZE_LIMITS)
MAX_RECIPIENTS = 100  # au and SoftBank per message, docomo per session
MAX_LINE = 998  # RFC 5322 2.1.1: 998 octets + CRLF = 1000; docomo answers `500 Line Too Long`
REQUIRED_HEADERS = ("From", "Date", "Message-ID")
# Larger than any carrier takes (docomo: 10 MB) by far: refuse to read more than this.
MAX_READ = 64 * MB


def read_message(path_or_bytes) -> tuple[bytes, str]:
    """The raw bytes and a name to show. Raises InputError for a file that is missing, not a
    regular file, unreadable, empty, binary, too large, or does not start with a header."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        raw, name = bytes(path_or_bytes), "(message)"
    else:
        name = os.fspath(path_or_bytes)
        if not name:
            raise InputError("no message file given: mailhygiene doctor message FILE.eml")
        try:
            st = os.stat(name)
            if stat.S_ISDIR(st.st_mode):
                raise InputError(f"{name} is a directory: give one .eml file")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{name} is not a regular file (a FIFO, socket or device): save the "
                                 "message to a file first")
            if st.st_size > MAX_READ:
                raise InputError(f"{name} is {st.st_size:,} bytes, far over any carrier's limit "
                                 f"(docomo takes 10 MB): is it a mailbox or an archive, not one message?")
            with open(name, "rb") as fh:
                raw = fh.read(MAX_READ + 1)
        except FileNotFoundError:
            raise InputError(f"message file {name} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"{name} is a directory: give one .eml file") from None
        except NotADirectoryError:
            raise InputError(f"message file {name} does not exist (a part of the path is a file)") from None
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_READ:
        raise InputError(f"{name} is over {MAX_READ:,} bytes, far over any carrier's limit")
    if not raw.strip():
        raise InputError(f"{name} is empty: give a whole message (headers, blank line, body)")
    if b"\x00" in raw[:65536]:
        raise InputError(f"{name} is a binary file (it contains NUL bytes), not a message: give the .eml "
                         "file (RFC 5322 text: headers, blank line, body)")
    if not re.match(rb"[!-9;-~]+:", raw):
        if raw.startswith(b"\xef\xbb\xbf"):
            why = ("it starts with a UTF-8 byte order mark (written by a Windows editor), which no MTA "
                   "sends: save it without BOM")
        elif raw.startswith(b"From "):
            why = ("it starts with an mbox separator line ('From sender date'): it is a mailbox, not one "
                   "message; save the message as .eml, or remove that first line")
        else:
            why = "is it an .eml file?"
        raise InputError(f"{name} does not start with a header line (Name: value): {why}")
    return raw, name


def check_message(path_or_bytes, settings: DoctorSettings | None = None, *, carrier: str | None = None,
                  spamassassin: bool = True, advertising: bool = True) -> list[CheckResult]:
    """Run every message check; with `carrier`, size is judged against that carrier only.

    `settings` (cfg.doctor; defaults when None) names the SpamAssassin program and time limit and
    the phrase file. `advertising=False` (order confirmations and the like) skips the
    特定電子メール法 display checks, which apply to advertising mail only.
    """
    settings = settings or DoctorSettings()
    if carrier is not None:
        carrier = carrier.strip().lower()
        if carrier not in SIZE_LIMITS:
            raise InputError(f"unknown carrier {carrier!r}: use one of {', '.join(CARRIERS)}")
    phrases = load_phrases(settings.ja_spam_phrases or None)
    raw, name = read_message(path_or_bytes)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        results = [check_headers(msg), check_8bit_headers(raw), check_line_length(raw)]
        text = extract(msg)
        results.append(check_charsets(text.problems))
        results.extend(check_japanese_text(_texts(msg, text)))
        results.append(check_size(raw, [carrier] if carrier else CARRIERS))
        results.append(check_recipients(msg))
        if advertising:
            results.extend(check_display_duties(text))
            results.append(check_list_unsubscribe(msg))
    except RecursionError:  # Python's email package walks MIME trees recursively
        raise InputError(f"{name} nests MIME parts hundreds of levels deep: no mail client shows "
                         "such a message; rebuild it with the composer") from None
    sa_score = None
    if spamassassin:
        sa = check_spamassassin(raw, settings.spamassassin, settings.spamassassin_timeout)
        results.append(sa)
        sa_score = (sa.data or {}).get("score")
    results.append(score_japanese(text, phrases, sa_score))
    return results


# ------------------------------------------------------------------ headers and raw form
# RFC 5322 3.6: at most one of each (Resent-* blocks aside)
SINGLE_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version")
_MSG_ID = re.compile(r"^\s*<[^<>@\s]+@[^<>@\s]+>\s*$")


def _from_addresses(msg) -> list[str]:
    try:
        return [a.addr_spec for a in msg["From"].addresses if "@" in a.addr_spec]
    except (AttributeError, TypeError, ValueError, IndexError):
        return []


def check_headers(msg) -> CheckResult:
    missing = [h for h in REQUIRED_HEADERS if msg.get(h) is None]
    no_mime = msg.get("MIME-Version") is None
    if missing:
        return CheckResult(
            "headers", "fail", f"missing {', '.join(missing)}" + (" and MIME-Version" if no_mime else ""),
            "add them in the composer (Python: email.utils.formatdate(localtime=True), make_msgid()); "
            "SoftBank requires From and Message-ID, and receivers score mail without Date as spam",
        )
    repeated = [h for h in SINGLE_HEADERS if len(msg.get_all(h) or []) > 1]
    if repeated:
        return CheckResult(
            "headers", "fail", f"{', '.join(repeated)} appear{'s' if len(repeated) == 1 else ''} more than once "
            "(RFC 5322 3.6 allows one)",
            "write each of them once: receivers such as Gmail refuse mail that is not RFC 5322 compliant "
            "(550 5.7.1), and with two From headers DMARC cannot tell whose mail it is",
            {"repeated": repeated})
    if not _from_addresses(msg):
        return CheckResult(
            "headers", "fail", f"From {str(msg.get('From'))!r} holds no address (local@domain)",
            "write the sender's address in From, e.g. From: 株式会社エグザンプル <news@example.jp>: receivers "
            "(DMARC, the carriers' なりすまし filters) take the sending domain from it")
    bad = []
    date = str(msg.get("Date"))
    try:
        date_ok = parsedate_tz(date) is not None
    except (TypeError, ValueError, IndexError):
        date_ok = False
    if not date_ok:
        bad.append(f"Date {date!r} is not an RFC 5322 date")
    msg_id = str(msg.get("Message-ID"))
    if not _MSG_ID.match(msg_id):
        bad.append(f"Message-ID {msg_id!r} is not <unique@domain>")
    if bad:
        return CheckResult(
            "headers", "warn", "; ".join(bad) + (" (and no MIME-Version)" if no_mime else ""),
            "let the composer write them (Python: email.utils.formatdate(localtime=True), make_msgid(domain=...)): "
            "spam filters score malformed Date and Message-ID headers (SpamAssassin INVALID_DATE, INVALID_MSGID)",
            {"malformed": bad})
    if no_mime:
        return CheckResult("headers", "warn", "missing MIME-Version",
                           "add `MIME-Version: 1.0` (needed for charset and encoding headers to count)")
    return CheckResult("headers", "pass", "From, Date, Message-ID and MIME-Version present")


_UNSUBSCRIBE_URI = re.compile(r"<\s*([^<>\s]+)\s*>")


def check_list_unsubscribe(msg) -> CheckResult:
    """Advertising mail: a List-Unsubscribe header with an https URI and one-click unsubscribe
    (RFC 2369, RFC 8058), which Gmail and Yahoo require of bulk senders since February 2024.
    Not the law's opt-out (the reader must see that in the text: law-optout)."""
    header = re.sub(r"\s+", " ", str(msg.get("List-Unsubscribe", "") or "")).strip()
    post = re.sub(r"\s+", "", str(msg.get("List-Unsubscribe-Post", "") or ""))
    uris = _UNSUBSCRIBE_URI.findall(header)
    https = [u for u in uris if u.lower().startswith("https://")]
    mailto = [u for u in uris if u.lower().startswith("mailto:")]
    data = {"list_unsubscribe": header, "list_unsubscribe_post": post, "uris": uris}
    example = ("List-Unsubscribe: <https://example.jp/unsubscribe?u=TOKEN>, <mailto:unsubscribe@example.jp>\n"
               "List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if not header:
        return CheckResult(
            "list-unsubscribe", "warn", "no List-Unsubscribe header (bulk advertising mail)",
            "Gmail and Yahoo require one-click unsubscribe (RFC 8058) from bulk senders; add "
            f"the two headers, with a per-recipient URL: {example}", data)
    if not uris:
        return CheckResult(
            "list-unsubscribe", "warn", f"List-Unsubscribe {header!r} holds no <URI> (RFC 2369: each in angle brackets)",
            f"write each URI in angle brackets: {example}", data)
    if not https:
        return CheckResult(
            "list-unsubscribe", "warn", f"List-Unsubscribe has no https URI ({', '.join(uris)}): "
            "one-click unsubscribe needs one" + ("" if mailto else "; its URIs are neither https: nor mailto:"),
            f"add an https URL that unsubscribes on a POST, and the List-Unsubscribe-Post header: {example}", data)
    if post.lower() != "list-unsubscribe=one-click":
        return CheckResult(
            "list-unsubscribe", "warn",
            "List-Unsubscribe has an https URI but no `List-Unsubscribe-Post: List-Unsubscribe=One-Click`"
            + (f" (found {post!r})" if post else ""),
            "add `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) and make the URL "
            "unsubscribe on a POST without further steps: Gmail and Yahoo require it of bulk senders", data)
    return CheckResult("list-unsubscribe", "pass", f"one-click unsubscribe: {https[0]}", data=data)


def _header_block(raw: bytes) -> bytes:
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[:m.start()] if m else raw


def check_8bit_headers(raw: bytes) -> CheckResult:
    names = []
    current = None
    for line in _header_block(raw).splitlines():
        if line[:1] not in (b" ", b"\t"):
            current = line.split(b":", 1)[0].decode("ascii", "replace")
        if any(b >= 0x80 for b in line) and current not in names:
            names.append(current)
    if names:
        return CheckResult(
            "header-8bit", "fail", f"raw non-ASCII bytes in header {', '.join(names)}",
            "encode them as RFC 2047 words (=?ISO-2022-JP?B?...?= or =?UTF-8?B?...?=): raw 8-bit "
            "headers need SMTPUTF8, which the carriers' servers do not offer", {"headers": names},
        )
    return CheckResult("header-8bit", "pass", "headers are 7-bit ASCII")


def check_line_length(raw: bytes) -> CheckResult:
    long_lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        length = len(line.rstrip(b"\r"))
        if length > MAX_LINE:
            long_lines.append((number, length))
    if long_lines:
        shown = ", ".join(f"line {n} ({length} bytes)" for n, length in long_lines[:5])
        more = f" and {len(long_lines) - 5} more" if len(long_lines) > 5 else ""
        return CheckResult(
            "line-length", "fail", f"{len(long_lines)} line(s) over 1000 bytes: {shown}{more}",
            "wrap text (or use quoted-printable/base64 transfer encoding, which keeps lines short): "
            "docomo refuses with `500 Line Too Long`", {"lines": [n for n, _ in long_lines]},
        )
    return CheckResult("line-length", "pass", "no line over 1000 bytes")


def check_size(raw: bytes, carriers) -> CheckResult:
    """One `size` result: the raw size against each given carrier's limit."""
    size = len(raw)
    over = [c for c in carriers if size > SIZE_LIMITS[c][0]]
    data = {"bytes": size, "limits": {c: SIZE_LIMITS[c][0] for c in carriers}, "over": over}
    if over:
        notes = "; ".join(SIZE_LIMITS[c][1] for c in over)
        return CheckResult("size", "fail", f"{size:,} bytes: over the limit of {', '.join(over)} ({notes})",
                           "shrink images, or link to large files instead of attaching them", data)
    tightest = min(carriers, key=lambda c: SIZE_LIMITS[c][0])
    limit, note = SIZE_LIMITS[tightest]
    scope = f"{tightest}'s" if len(carriers) == 1 else f"every carrier's (tightest: {tightest})"
    return CheckResult("size", "pass", f"{size:,} bytes, within {scope} limit of {limit:,} ({note})", data=data)


def check_recipients(msg) -> CheckResult:
    fields = [str(v) for h in ("To", "Cc") for v in (msg.get_all(h) or [])]
    addresses = [a for _n, a in getaddresses(fields) if a]
    n = len(addresses)
    if n > MAX_RECIPIENTS:
        return CheckResult(
            "recipients", "fail", f"{n} recipients in To/Cc (limit {MAX_RECIPIENTS})",
            "send one message per recipient (or at most 100 per message and per SMTP session): au and "
            "SoftBank refuse more than 100 per message, docomo more than 100 per session",
            {"count": n},
        )
    return CheckResult("recipients", "pass", f"{n} recipient(s) in To/Cc", data={"count": n})


# ------------------------------------------------------------------ text the phones must show
def _texts(msg, text) -> list[tuple[str, str, bool, list[str]]]:
    """[(where, text, declared ISO-2022-JP, extension chars)] for Subject, From and text parts."""
    texts = list(text.headers)
    for part in text.parts:
        texts.append((part.where, part.raw_text, part.declared_jis, part.extensions))
    return texts


def check_charsets(problems: list[str]) -> CheckResult:
    if problems:
        return CheckResult("charset", "fail", "; ".join(problems),
                           "label each text part with the charset it is really written in "
                           "(ISO-2022-JP or UTF-8)", {"problems": problems})
    return CheckResult("charset", "pass", "text parts decode with their declared charsets")


def check_japanese_text(texts) -> list[CheckResult]:
    lookalikes: dict[str, set] = {}
    unencodable: dict[str, set] = {}
    in_jis_part: dict[str, set] = {}
    for where, text, declared_jis, extensions in texts:
        for ch in extensions:
            in_jis_part.setdefault(ch, set()).add(where)
        for ch in set(text):
            if ch in CP932_LOOKALIKES:
                lookalikes.setdefault(ch, set()).add(where)
            elif ch in "\r\n\t" or ch == "\ufffd" or encodable(ch):
                continue
            elif not declared_jis or is_halfwidth_kana(ch):
                # half-width kana in ISO-2022-JP (ESC ( I, SO/SI) are outside RFC 1468: lenient
                # decoders read them, strict ones and some phones do not
                unencodable.setdefault(ch, set()).add(where)
    results = []

    if in_jis_part:
        chars = sorted(in_jis_part)
        results.append(CheckResult(
            "iso-2022-jp", "fail",
            "text labelled ISO-2022-JP carries characters outside it (CP50220 extensions): "
            + "; ".join(f"{describe(c)} (in {', '.join(sorted(in_jis_part[c]))})" for c in chars),
            "replace them as shown, or send those messages as UTF-8: strict decoders and older "
            "phones show these as garbage or drop them",
            {"chars": [_char_data(c, in_jis_part[c]) for c in chars],
             "also": [_char_data(c, unencodable[c]) for c in sorted(unencodable)]},
        ))
    elif unencodable:
        chars = sorted(unencodable)
        kana = [c for c in chars if is_halfwidth_kana(c)]
        results.append(CheckResult(
            "iso-2022-jp", "warn",
            f"{len(chars)} character(s) ISO-2022-JP cannot carry: " + "; ".join(describe(c) for c in chars[:15])
            + ("; ..." if len(chars) > 15 else ""),
            "replace them as shown (half-width kana -> full-width) before encoding as ISO-2022-JP; "
            "as UTF-8 they are fine on smartphones but old feature phones cannot show them"
            + (f" ({len(kana)} half-width kana)" if kana else ""),
            {"chars": [_char_data(c, unencodable[c]) for c in chars]},
        ))
    else:
        results.append(CheckResult("iso-2022-jp", "pass", "all text fits ISO-2022-JP"))

    if lookalikes:
        chars = sorted(lookalikes)
        results.append(CheckResult(
            "cp932-lookalikes", "warn",
            "Windows (CP932) look-alikes: " + "; ".join(describe(c) for c in chars),
            "map them to the JIS characters shown before encoding as ISO-2022-JP (the iso2022_jp "
            "codec refuses them; careless converters turn them into ? or mojibake)",
            {"chars": [_char_data(c, lookalikes[c]) for c in chars]},
        ))
    else:
        results.append(CheckResult("cp932-lookalikes", "pass", "no CP932 look-alike characters"))
    return results


def describe(ch: str) -> str:
    """`① U+2460 -> (1)` (or `-> ?` when nothing fits)."""
    return f"{ch} U+{ord(ch):04X} -> {suggestion(ch) or '? (send as UTF-8 or remove)'}"


def _char_data(ch: str, where) -> dict:
    return {"char": ch, "codepoint": f"U+{ord(ch):04X}", "suggestion": suggestion(ch), "where": sorted(where)}
