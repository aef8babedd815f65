"""Requests by mail: one request mail in -> one job in the queue (or a logged refusal).

Reads a raw mail (stdin from a Postfix pipe transport running as the data dir's owner, or the
files waiting in a Maildir's new/), the [intake] and [sender] config; writes a job through
enqueue.enqueue, one JSON line per request to <data_dir>/sender/intake.log, and a reply mail to
the requester through `intake.reply_relay` (default: sender.default_relay). Called by
`mailhygiene intake`.

Request format (docs/sender.md has the full description):

    From: an address listed in intake.allowed_senders
    (body, text/plain, any of ISO-2022-JP / Shift_JIS / UTF-8)
    secret: <intake.shared_secret>          (or a header X-Mailhygiene-Secret)
    subject: 件名 of the campaign
    name: optional job name
    recipients:                             (optional when a CSV is attached)
    taro@docomo.ne.jp
    hanako@au.com
    ---
    The text to send, to the end of the body (or to a "-- " signature line).

Authorisation comes first and says nothing back: a sender not in allowed_senders, a missing or
wrong secret, or (with require_auth_results) no dkim=pass / spf=pass for the From domain means the
request is logged and dropped, and no mail at all goes back. Only a fully authorised requester
gets replies: what was queued and skipped, or what was wrong with the request.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from email.header import decode_header
from email.message import Message
from pathlib import Path

from ..core.errors import MailHygieneError, SuppressionUnavailable
from ..core.jptext import decode_iso2022jp
from ..store.records import canonical_address, domain_of
from .compose import MessageTemplate, charset_for
from .enqueue import decode_csv_bytes, enqueue, parse_recipient_csv
from .relaysession import RelayPolicies, RelaySessionError, open_session
from .routes import parse_relay

log = logging.getLogger("mailhygiene.intake")

# ----------------------------------------------------------------------------- decoding
_ISO2022 = {"iso-2022-jp", "iso2022-jp", "iso2022jp", "csiso2022jp", "iso-2022-jp-1", "iso-2022-jp-2",
            "iso-2022-jp-3", "iso-2022-jp-2004", "iso-2022-jp-ms", "cp50220", "cp50221", "cp50222",
            "jis", "x-jis"}
_SJIS = {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932",
         "x-ms-cp932", "ms932", "shift_jis-2004"}
_EUC = {"euc-jp", "eucjp", "x-euc-jp", "euc_jp", "cseucpkdfmtjapanese"}


def decode_cp50220(data: bytes, errors: str = "strict") -> str:
    """ISO-2022-JP as Microsoft's CP50220/50221/50222 writes it (iPhone and au mails too): ①, ㈱,
    髙 and half-width katakana come out right. Strict by default, so decode_text can try it as one
    codec among others. The decoder itself is jptext.decode_iso2022jp."""
    return decode_iso2022jp(data, errors)[0]


def _try(data: bytes, codecs) -> str | None:
    for codec in codecs:
        try:
            return codec(data) if callable(codec) else data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):  # a hostile label: try the next
            continue
    return None


_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@B(]|\([BJI])")   # ISO-2022-JP's designations (ESC $ B, ESC ( B ...)
_KANA = re.compile(r"[\u3041-\u30ff]")                    # hiragana or katakana: Japanese text


def _utf8_multibyte(data: bytes) -> bool:
    """Strict UTF-8 with at least one multi-byte sequence: Shift_JIS or Latin-1 text almost never is."""
    if not any(x >= 0x80 for x in data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a Japanese mail part -> text, trying what the label says, then what it means.

    Labels lie in both directions, and a wrong guess is mojibake on every phone of a campaign:
    7-bit data carrying ISO-2022-JP escape sequences is ISO-2022-JP whatever the label (as ASCII
    or UTF-8 it would keep the raw ESC $ B ... bytes as text); bytes that are valid multi-byte
    UTF-8 are UTF-8 even when labelled Shift_JIS or a Western charset; and Shift_JIS bytes
    labelled with a Western single-byte charset (ISO-8859-1, windows-1252: every byte "decodes")
    are read as CP932 when that gives Japanese kana."""
    cs = (charset or "").strip().strip('"').lower()
    guesses = ["utf-8", "cp932", "euc_jp"]
    seven_bit = not any(x >= 0x80 for x in data)
    if b"\x1b" in data and seven_bit:
        guesses.insert(0, decode_cp50220)
    if seven_bit and _JIS_ESCAPE.search(data):
        order = ["iso2022_jp", decode_cp50220, "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"]
    elif cs in _ISO2022:
        order = ([] if not seven_bit else
                 ["iso2022_jp", decode_cp50220, "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"])
    elif cs in _SJIS:
        order = (["utf-8"] if _utf8_multibyte(data) else []) + ["cp932", "shift_jis_2004"]
    elif cs in _EUC:
        order = (["utf-8"] if _utf8_multibyte(data) else []) + ["euc_jp", "euc_jis_2004", "cp932"]
    elif cs in ("", "us-ascii", "ascii", "utf-8", "utf8"):
        order = ["utf-8"]
    else:
        order = [cs]
        if not seven_bit:
            if _utf8_multibyte(data):
                order = ["utf-8"]
            else:
                sjis = _try(data, ["cp932"])
                if sjis is not None and _KANA.search(sjis):
                    order = ["cp932"]
    text = _try(data, order)
    if text is None:
        text = _try(data, guesses[:-2]) if guesses[0] is decode_cp50220 else None
    if text is None:
        text = _try(data, ["utf-8"]) or _shift_jis_or_euc(data)
    if text is None:
        text = decode_cp50220(data, "replace") if b"\x1b" in data else data.decode("utf-8", "replace")
    return text


_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def _shift_jis_or_euc(data: bytes) -> str | None:
    """Unlabelled 8-bit Japanese: CP932 and EUC-JP both "decode" most EUC-JP text, CP932 into
    half-width katakana (本日のご案内 -> ﾋﾜﾆ...): of the two readings, the one with fewer
    half-width kana is the text."""
    sjis, euc = _try(data, ["cp932"]), _try(data, ["euc_jp"])
    if sjis is None or euc is None:
        return sjis if sjis is not None else euc
    return euc if len(_HALFWIDTH_KANA.findall(euc)) < len(_HALFWIDTH_KANA.findall(sjis)) else sjis


def decode_header_value(value) -> str:
    if value is None:
        return ""
    text = str(value)
    try:
        chunks = decode_header(text)
    except (ValueError, LookupError, UnicodeError):   # broken base64/QP in an encoded word
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    parts = []
    for chunk, cs in chunks:
        parts.append(decode_text(chunk, cs) if isinstance(chunk, bytes) else chunk)
    return "".join(parts)


# ----------------------------------------------------------------------------- parsing
_KEYS = {"secret": "secret", "合言葉": "secret", "subject": "subject", "件名": "subject",
         "name": "name", "ジョブ名": "name", "recipients": "recipients", "宛先": "recipients"}
# The value ends at its last non-space character ((?:.*\S)? finds it once; a lazy (.*?)\s*$ tried
# the rest of the line at each character: a line of 200,000 spaces took two minutes)
_KEY_LINE = re.compile(r"^\s*([A-Za-z]+|合言葉|件名|ジョブ名|宛先)\s*[:：]\s?((?:.*\S)?)\s*$")
_SEPARATOR = re.compile(r"^\s*-{3,}\s*$")
# between the addresses of a recipients: line: spaces (the ideographic one too), commas and
# semicolons, also as a Japanese input method types them (、，；)
_ADDRESS_SEPARATORS = re.compile(r"[\s,;、，；]+")


@dataclass
class Request:
    sender: str
    message_id: str
    request_key: str
    original_subject: str = ""
    secret: str | None = None
    subject: str | None = None
    name: str | None = None
    body: str | None = None
    addresses: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    text_hash: str | None = None


# Spreadsheets the intake cannot read: an attached list.xlsx was passed over without a word, and
# only the addresses typed in the body were queued
_SPREADSHEET_NAMES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
_SPREADSHEET_TYPES = ("application/vnd.ms-excel", "application/vnd.oasis.opendocument.spreadsheet")


def _parts(msg: Message):
    text, csvs, unreadable = None, [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        try:
            filename = decode_header_value(part.get_filename()) if part.get_filename() else ""
        except (ValueError, LookupError, UnicodeError, TypeError):  # a mangled RFC 2231 name
            filename = "attachment"
        disposition = str(part.get("Content-Disposition") or "").lower()
        payload = part.get_payload(decode=True) or b""
        name = filename.lower()
        if name.endswith((".csv", ".tsv")) or ctype in ("text/csv", "application/csv", "text/tab-separated-values") or (
                "attachment" in disposition and ctype == "text/plain" and name.endswith(".txt")):
            csvs.append((filename or "recipients.csv", payload))
        elif name.endswith(_SPREADSHEET_NAMES) or ctype.startswith(_SPREADSHEET_TYPES) or "spreadsheetml" in ctype:
            unreadable.append(filename or ctype)
        elif ctype == "text/plain" and text is None and "attachment" not in disposition:
            text = decode_text(payload, part.get_content_charset())
            if str(part.get_param("format") or "").lower() == "flowed":
                text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text, csvs, unreadable


def unflow(text: str, delsp: bool = False) -> str:
    """RFC 3676 format=flowed text (Thunderbird's and many phones' default) as its writer typed it:
    a line ending in a space continues on the next (with delsp=yes that space was added by the
    wrap and goes; Japanese text is wrapped between characters that way), a leading space is
    stuffing. Read literally, a long `subject:` line came apart into a cut subject and a stray
    line, and the campaign text kept the mailer's wraps as hard line breaks."""
    out: list[str] = []
    joining = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" "):
            line = line[1:]
        flowed = line.endswith(" ") and line != "-- "
        if flowed and delsp:
            line = line[:-1]
        if joining:
            out[-1] += line
        else:
            out.append(line)
        joining = flowed
    return "\n".join(out)


def parse_body(text: str, req: Request) -> None:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    state = "keys"
    body_lines: list[str] | None = None
    for no, line in enumerate(lines, 1):
        if body_lines is not None:
            if line == "-- ":
                break
            body_lines.append(line)
            continue
        if _SEPARATOR.match(line):
            body_lines = []
            continue
        m = _KEY_LINE.match(line)
        key = _KEYS.get(m.group(1).lower() if m and m.group(1).isascii() else (m.group(1) if m else ""))
        if key:
            value = m.group(2)
            if key == "recipients":
                state = "recipients"
                req.addresses.extend(a for a in _ADDRESS_SEPARATORS.split(value) if a)
            else:
                state = "keys"
                setattr(req, key, value)
            continue
        if not line.strip():
            continue
        if state == "recipients":
            req.addresses.extend(a for a in _ADDRESS_SEPARATORS.split(line.strip()) if a)
        elif "@" in line and req.subject is None and not req.addresses:
            req.problems.append(f"line {no} looks like an address but comes before 'recipients:'")
        else:
            req.problems.append(f"line {no} is not 'key: value' (did you forget the '---' line before the text?)")
    if body_lines is None:
        req.problems.append("no '---' line: the text to send follows a line of three hyphens")
    else:
        while body_lines and not body_lines[-1].strip():
            body_lines.pop()
        first = next((i for i, line in enumerate(body_lines) if line.strip()), len(body_lines))
        req.body = "\n".join(body_lines[first:])  # (not pop(0) per blank line: quadratic in them)


class Refused(Exception):
    """A request refused before its body was looked at (logged, never answered)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def parse_headers(raw: bytes) -> Message:
    """The header block only (the body is not parsed): what authorisation looks at."""
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)


def _header_str(value) -> str:
    text = str(value if value is not None else "")
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in text):  # 8-bit bytes (surrogateescape): not a header
        raise Refused("refused", "8-bit bytes in a header")
    return text


def from_address(head: Message) -> str:
    """The one address of the From header, parsed from the raw header: an encoded-word display
    name can never spell the address (it is decoded only for display, after this)."""
    values = head.get_all("From") or []
    if len(values) != 1:
        raise Refused("unauthorised", f"{len(values)} From headers (exactly one is needed)")
    raw = _header_str(values[0])
    if any(ord(c) < 32 and c not in "\t\r\n" for c in raw):
        raise Refused("unauthorised", "control characters in From")
    pairs = [(n, a) for n, a in email.utils.getaddresses([raw]) if a]
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise Refused("unauthorised", f"From must name exactly one address (got {len(pairs)})")
    addr = pairs[0][1]
    if "=?" in addr or any(c in addr for c in "<>\"()"):
        raise Refused("unauthorised", "the From address is not a plain address")
    return canonical_address(addr)   # an IDN domain in A-label form, as allowed_senders below


def parse_request(raw: bytes, head: Message | None = None) -> tuple[Request, Message]:
    msg = email.message_from_bytes(raw)
    head = head or msg
    addr = from_address(head)
    mid = _header_str(head.get("Message-ID") or "").strip()
    key = "mid:" + mid if mid else "sha256:" + hashlib.sha256(raw).hexdigest()
    req = Request(sender=addr, message_id=mid, request_key=key,
                  original_subject=decode_header_value(head.get("Subject")))
    header_secret = head.get("X-Mailhygiene-Secret")
    text, csvs, unreadable = _parts(msg)
    for name in unreadable:
        req.problems.append(f"{name}: a spreadsheet cannot be read; save the list as CSV (CSV UTF-8 in Excel) and "
                            "attach that")
    if text is None:
        req.problems.append("no text/plain part: send the request as plain text")
    else:
        req.text_hash = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        parse_body(text, req)
    if header_secret and not req.secret:
        req.secret = decode_header_value(header_secret).strip()
    for filename, payload in csvs:
        try:
            req.addresses.extend(parse_recipient_csv(decode_csv_bytes(payload)))
        except MailHygieneError as exc:
            req.problems.append(f"{filename}: {exc}")
    return req, msg


# ----------------------------------------------------------------------------- authorisation
def _psl():
    global _PSL
    if _PSL is None:
        # publicsuffixlist ships a dated snapshot of the Public Suffix List and reads only that
        # (no network at run time); upgrading the package upgrades the list.
        from publicsuffixlist import PublicSuffixList

        _PSL = PublicSuffixList()
    return _PSL


_PSL = None


def organisational_domain(domain: str) -> str | None:
    """`mail.example.co.jp` -> `example.co.jp`; None for a public suffix itself (`jp`, `ne.jp`)."""
    d = (domain or "").strip().strip(".").lower()
    if not d or "." not in d and not d.isalnum():
        return None
    try:
        return _psl().privatesuffix(d)
    except Exception:  # noqa: BLE001 - an odd label is simply not aligned
        return None


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed DMARC alignment: both under the same organisational domain (never a bare suffix)."""
    org = organisational_domain(domain)
    return org is not None and org == organisational_domain(from_domain)


def auth_results_pass(msg: Message, from_domain: str, auth_serv_id: str = "") -> bool:
    """dkim=pass with header.d (or header.i) aligned with the From domain, or spf=pass with
    smtp.mailfrom aligned, in a trusted Authentication-Results header (only those from
    auth_serv_id when it is set). SPF checked only for HELO, DKIM without header.d and a bare
    public suffix never count."""
    for value in msg.get_all("Authentication-Results") or []:
        text = " ".join(_header_str(value).split())
        serv_id = text.split(";", 1)[0].strip().split()[0] if text.strip() else ""
        if auth_serv_id and serv_id.lower() != auth_serv_id.lower():
            continue
        for clause in text.split(";")[1:]:
            c = re.sub(r"\([^()]*\)", " ", clause).strip()   # comments are not properties
            m = re.match(r"(dkim|spf)\s*=\s*pass\b(.*)", c, re.IGNORECASE)
            if not m:
                continue
            kind, rest = m.group(1).lower(), m.group(2)
            prop = re.search(r"\bheader\.[di]\s*=\s*\"?([^\s;\"]+)" if kind == "dkim" else
                             r"\bsmtp\.mailfrom\s*=\s*\"?([^\s;\"]+)", rest, re.IGNORECASE)
            if prop is not None and _aligned(prop.group(1).rpartition("@")[2], from_domain):
                return True
    return False


def check_sender(cfg, sender: str, head: Message) -> None:
    """Allowed sender and Authentication-Results, from the headers alone; raises Refused."""
    ic = cfg.intake
    allowed = {canonical_address(a) for a in ic.allowed_senders}
    if ic.require_auth_results and not ic.auth_serv_id.strip():
        # Every Authentication-Results header would count, the one the requester wrote himself too
        # ("x; dkim=pass header.d=<the allowed domain>"): the check would stop no forged From
        from ..core.errors import ConfigError

        raise ConfigError("intake.require_auth_results = true needs intake.auth_serv_id, the authserv-id your "
                          "receiving MTA writes first in its Authentication-Results headers (e.g. "
                          "\"mx.example.jp\"): without it a header the sender of the request wrote himself would "
                          "count, and a forged From would pass. Set it (and have the MTA remove foreign headers "
                          "with that id), or set require_auth_results = false")
    if not ic.shared_secret:
        raise Refused("unauthorised", "intake.shared_secret is not set: every request is refused")
    if not sender or sender not in allowed:
        raise Refused("unauthorised", f"sender {sender or '(none)'} is not in intake.allowed_senders")
    if ic.require_auth_results and not auth_results_pass(head, domain_of(sender), ic.auth_serv_id):
        raise Refused("unauthorised", "no Authentication-Results with dkim=pass (header.d) or spf=pass "
                                      "(smtp.mailfrom) aligned with the From domain")


def check_date(cfg, head: Message, now: float) -> None:
    """Replay protection, part one: the Date header must be recent (intake.max_age_hours) and not
    too far ahead (intake.max_future_minutes)."""
    ic = cfg.intake
    value = _header_str(head.get("Date") or "").strip()
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is None:
        raise Refused("refused", "no valid Date header")
    if now - when > ic.max_age_hours * 3600:
        raise Refused("refused", f"Date {value} is older than intake.max_age_hours ({ic.max_age_hours:g} h): "
                                 "an old copy is not acted on")
    if when - now > ic.max_future_minutes * 60:
        raise Refused("refused", f"Date {value} is in the future")


def authorise(cfg, req: Request, msg: Message) -> str | None:
    """None when the request may be acted on, else the reason (logged, never sent back)."""
    try:
        check_sender(cfg, req.sender, msg)
    except Refused as exc:
        return exc.reason
    if not req.secret:
        return "no shared secret in the request"
    if not hmac.compare_digest(req.secret.encode("utf-8", "surrogatepass"),
                               str(cfg.intake.shared_secret).encode("utf-8")):
        return "wrong shared secret"
    return None


def _is_automatic(msg: Message, sender: str, cfg) -> str | None:
    auto = _header_str(msg.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    if _header_str(msg.get("Precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return "Precedence: bulk/list/junk"
    if sender and sender == canonical_address(cfg.sender.from_address):
        return "mail from our own sender address (loop)"
    return None


# ----------------------------------------------------------------------------- processing
@dataclass
class IntakeResult:
    status: str                 # queued | malformed | unauthorised | refused | ignored
    reason: str
    sender: str
    message_id: str
    job_id: int | None = None
    queued: int = 0
    skipped: int = 0
    replied: bool = False
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = f" job {self.job_id}: {self.queued} queued, {self.skipped} skipped" if self.job_id else ""
        return f"{self.status}: {self.reason}{extra}"


def _log_result(cfg, res: IntakeResult) -> None:
    path = Path(cfg.data_dir) / "sender" / "intake.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **asdict(res)}
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:  # hostile bytes stay readable
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    (log.info if res.status == "queued" else log.warning)("intake %s from %s: %s", res.status, res.sender,
                                                          res.reason)


def send_reply(cfg, req: Request, text: str) -> bool:
    """A plain reply to an authorised requester, from sender.from_address with a null envelope
    sender (RFC 3834), marked Auto-Submitted so it cannot start a loop."""
    s, ic = cfg.sender, cfg.intake
    relay = parse_relay(ic.reply_relay or s.default_relay, where="intake.reply_relay")
    subject = "Re: " + " ".join(req.original_subject.split()) if req.original_subject else "mailhygiene request"
    extra = {"Auto-Submitted": "auto-replied"}
    if req.message_id and "\n" not in req.message_id and "\r" not in req.message_id:
        extra["In-Reply-To"] = req.message_id
    try:
        tpl = MessageTemplate(subject=subject[:200], body=text, from_address=s.from_address,
                              from_name=s.from_name, charset=charset_for(s, "other"),
                              unmappable=s.unmappable, extra_headers=extra,
                              substitutions=s.substitutions)
        data = tpl.render(req.sender).data
        policy = RelayPolicies.for_config(cfg).for_relay(relay)   # sender.tls and sender.relays, as the daemon
        with open_session(relay, policy, s.helo, float(s.timeout)) as smtp:
            smtp.sendmail("", [req.sender], data)
        return True
    except (MailHygieneError, RelaySessionError, smtplib.SMTPException, OSError) as exc:
        log.error("could not send the reply to %s via %s: %s", req.sender, relay, exc)
        return False


def host_fault(exc: BaseException) -> bool:
    """Faults of this host (the queue locked or unwritable, the disk full, a config we cannot send
    with), not of the mail: the MTA should keep the mail and retry (exit 75)."""
    import sqlite3

    from ..core.errors import ConfigError, LockedError, StoreError

    return isinstance(exc, (OSError, sqlite3.Error, LockedError, StoreError, MemoryError, ConfigError))


def process_request(cfg, raw: bytes, *, reply: bool = True, now: float | None = None) -> IntakeResult:
    """One request mail -> a job or a logged refusal. Never raises for anything in the mail:
    only faults of this host (see host_fault) escape, so the MTA retries those alone.

    Order (the security model, docs/sender.md): size limit; then the header block only (From
    parsed from the raw header, automatic mail, allowed sender, Authentication-Results, Date
    window); only then the body (secret, request lines, CSV), the replay check (Message-ID and
    text hash remembered) and the enqueue.
    """
    now = time.time() if now is None else now
    ic = cfg.intake
    res = IntakeResult("refused", "", "", "")
    try:
        if len(raw) > ic.max_bytes:
            raise Refused("refused", f"{len(raw)} bytes is over intake.max_bytes ({ic.max_bytes}); not parsed")
        head = parse_headers(raw)
        res.message_id = _header_str(head.get("Message-ID") or "").strip()[:300]
        sender = from_address(head)
        res.sender = sender
        automatic = _is_automatic(head, sender, cfg)
        if automatic:
            raise Refused("ignored", f"automatic mail ignored ({automatic})")
        check_sender(cfg, sender, head)
        check_date(cfg, head, now)
        req, msg = parse_request(raw, head)
        refusal = authorise(cfg, req, head)
        if refusal:
            raise Refused("unauthorised", refusal)
        keys = [f"text:{req.text_hash}"] if req.text_hash else []
        if req.message_id:
            keys.insert(0, f"mid:{req.message_id}")
        from .queue import Queue

        queue = Queue.for_config(cfg, durable=True)
        seen = queue.seen_before(keys, now, now - ic.max_age_hours * 3600, remember=False)
        if seen:
            raise Refused("refused", "replay: a request with the same "
                          + ("Message-ID" if seen.startswith("mid:") else "text") + " was handled already")
    except Refused as exc:
        res.status, res.reason = exc.status, exc.reason
        _log_result(cfg, res)
        return res
    except Exception as exc:  # noqa: BLE001 - anything in the mail that breaks a parser is a refusal
        if host_fault(exc):
            raise
        res.status, res.reason = "refused", f"unreadable request ({exc.__class__.__name__}: {str(exc)[:200]})"
        log.debug("intake: %s", res.reason, exc_info=True)
        _log_result(cfg, res)
        return res

    problems = list(req.problems)
    if not problems:
        if not req.subject:
            problems.append("no 'subject:' line")
        if not req.addresses:
            problems.append("no recipients: list them after 'recipients:' or attach a CSV")
    report = None
    if not problems:
        try:
            report = enqueue(cfg, subject=req.subject, body=req.body or "", addresses=req.addresses,
                             name=req.name, source="mail", requester=req.sender,
                             request_key=req.request_key)
        except MailHygieneError as exc:
            if host_fault(exc) or isinstance(exc, SuppressionUnavailable):
                raise
            problems.append(str(exc))
    queue.seen_before(keys, now, now - ic.max_age_hours * 3600, remember=True)
    if problems:
        res.status, res.reason, res.details = "malformed", "; ".join(problems), problems
        text = ("Your request was not accepted; nothing was queued.\n\n"
                + "\n".join(f"- {p}" for p in problems)
                + "\n\nSee the request format in docs/sender.md (secret:, subject:, recipients:, ---, text).\n")
    else:
        res.status, res.reason = "queued", "accepted"
        res.job_id, res.queued, res.skipped, res.details = report.job_id, report.queued, report.skipped, report.lines()
        text = "Your request was accepted.\n\n" + "\n".join(report.lines()) + "\n"
    if reply:
        res.replied = send_reply(cfg, req, text)
    _log_result(cfg, res)
    return res


class MaildirStopped(MailHygieneError):
    """`intake --maildir` met a fault of this host (host_fault, or the suppression list
    unavailable) and stopped: the mail it was on and those after it wait in new/ (exit 75,
    EX_TEMPFAIL: run again once it is fixed)."""

    exit_code = 75


class MaildirIncomplete(MailHygieneError):
    """`intake --maildir` handled the other mails, but these failed for a reason that is neither
    the mail's nor a known fault of this host (a bug): they stay in new/, and the run says so."""


def process_maildir(cfg, maildir: str | os.PathLike, *, reply: bool = True) -> Iterator[IntakeResult]:
    """Every mail in <maildir>/new, oldest first, each result as it is made; each mail moves to
    cur/ (flag S) once handled.

    A fault of this host (see host_fault; the suppression list unavailable too) stops the run at
    once and is raised: every mail after it would meet the same fault, and each stays in new/ for
    the next run. A mail whose handling fails for any other reason stays in new/, the others are
    handled, and MaildirIncomplete is raised at the end (so neither ends as exit 0 with tracebacks).
    Anything wrong with a mail itself is a logged refusal and the mail moves on. Re-processing a
    mail that was enqueued but not yet moved adds nothing (replay check, and jobs are keyed by
    Message-ID). At most intake.max_bytes + 1 bytes of a mail are read.
    """
    from . import maildir as md

    failed: list[str] = []
    for path in md.waiting(maildir):
        raw = md.read(path, cfg.intake.max_bytes + 1)
        if raw is None:
            continue
        try:
            result = process_request(cfg, raw, reply=reply)
        except Exception as exc:
            if host_fault(exc) or isinstance(exc, SuppressionUnavailable):
                from ..core.fsutil import describe_os_error

                what = (f"{exc.filename + ': ' if exc.filename else ''}{describe_os_error(exc)}"
                        if isinstance(exc, OSError) else str(exc) or exc.__class__.__name__)
                raise MaildirStopped(f"{what} (intake stopped: {path.name} and the mails after it stay in "
                                     f"{path.parent} for the next run)") from exc
            log.error("could not process %s (%s: %s); left in new/", path, exc.__class__.__name__, exc)
            log.debug("intake: %s", path, exc_info=True)
            failed.append(f"{path.name} ({exc.__class__.__name__}: {exc})")
            continue
        md.mark_seen(path)
        yield result
    if failed:
        raise MaildirIncomplete(f"{len(failed)} mail(s) could not be processed and stay in {Path(maildir) / 'new'}: "
                                + "; ".join(failed[:3]))
