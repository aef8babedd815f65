"""Requests by mail: one request mail in -> one job in the queue (or a logged refusal).

Reads a raw mail (stdin from an alias `|mailhygiene intake` or a Postfix pipe transport, or the
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
import email.utils
import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import time
from dataclasses import asdict, dataclass, field
from email.header import decode_header
from email.message import Message
from pathlib import Path

from ..core.errors import MailHygieneError
from ..core.jptext import decode_iso2022jp
from ..store.records import domain_of, normalise_address
from .compose import MessageTemplate, charset_for
from .enqueue import decode_csv_bytes, enqueue, parse_recipient_csv
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
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a Japanese mail part -> text, trying what the label says, then what it means."""
    cs = (charset or "").strip().strip('"').lower()
    guesses = ["utf-8", "cp932", "euc_jp"]
    if b"\x1b" in data and not any(x >= 0x80 for x in data):
        guesses.insert(0, decode_cp50220)
    if cs in _ISO2022:
        order = ([] if any(x >= 0x80 for x in data) else
                 ["iso2022_jp", decode_cp50220, "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"])
    elif cs in _SJIS:
        order = ["cp932", "shift_jis_2004"]
    elif cs in _EUC:
        order = ["euc_jp", "euc_jis_2004", "cp932"]
    elif cs in ("", "us-ascii", "ascii", "utf-8", "utf8"):
        order = ["utf-8"]
    else:
        order = [cs]
    text = _try(data, order + guesses)
    if text is None:
        text = decode_cp50220(data, "replace") if b"\x1b" in data else data.decode("utf-8", "replace")
    return text


def decode_header_value(value) -> str:
    if value is None:
        return ""
    parts = []
    for chunk, cs in decode_header(str(value)):
        parts.append(decode_text(chunk, cs) if isinstance(chunk, bytes) else chunk)
    return "".join(parts)


# ----------------------------------------------------------------------------- parsing
_KEYS = {"secret": "secret", "合言葉": "secret", "subject": "subject", "件名": "subject",
         "name": "name", "ジョブ名": "name", "recipients": "recipients", "宛先": "recipients"}
_KEY_LINE = re.compile(r"^\s*([A-Za-z]+|合言葉|件名|ジョブ名|宛先)\s*[:：]\s?(.*?)\s*$")
_SEPARATOR = re.compile(r"^\s*-{3,}\s*$")


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


def _parts(msg: Message):
    text, csvs = None, []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = decode_header_value(part.get_filename()) if part.get_filename() else ""
        disposition = (part.get("Content-Disposition") or "").lower()
        payload = part.get_payload(decode=True) or b""
        if filename.lower().endswith(".csv") or ctype in ("text/csv", "application/csv") or (
                "attachment" in disposition and ctype == "text/plain" and filename.lower().endswith(".txt")):
            csvs.append((filename or "recipients.csv", payload))
        elif ctype == "text/plain" and text is None and "attachment" not in disposition:
            text = decode_text(payload, part.get_content_charset())
    return text, csvs


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
                req.addresses.extend(a for a in re.split(r"[\s,;、]+", value) if a)
            else:
                state = "keys"
                setattr(req, key, value)
            continue
        if not line.strip():
            continue
        if state == "recipients":
            req.addresses.extend(a for a in re.split(r"[\s,;、]+", line.strip()) if a)
        elif "@" in line and req.subject is None and not req.addresses:
            req.problems.append(f"line {no} looks like an address but comes before 'recipients:'")
        else:
            req.problems.append(f"line {no} is not 'key: value' (did you forget the '---' line before the text?)")
    if body_lines is None:
        req.problems.append("no '---' line: the text to send follows a line of three hyphens")
    else:
        while body_lines and not body_lines[-1].strip():
            body_lines.pop()
        while body_lines and not body_lines[0].strip():
            body_lines.pop(0)
        req.body = "\n".join(body_lines)


def parse_request(raw: bytes) -> tuple[Request, Message]:
    msg = email.message_from_bytes(raw)
    _, addr = email.utils.parseaddr(decode_header_value(msg.get("From")))
    mid = (msg.get("Message-ID") or "").strip()
    key = "mid:" + mid if mid else "sha256:" + hashlib.sha256(raw).hexdigest()
    req = Request(sender=normalise_address(addr), message_id=mid, request_key=key,
                  original_subject=decode_header_value(msg.get("Subject")))
    header_secret = msg.get("X-Mailhygiene-Secret")
    text, csvs = _parts(msg)
    if text is None:
        req.problems.append("no text/plain part: send the request as plain text")
    else:
        parse_body(text, req)
    if header_secret and not req.secret:
        req.secret = str(header_secret).strip()
    for filename, payload in csvs:
        try:
            req.addresses.extend(parse_recipient_csv(decode_csv_bytes(payload)))
        except MailHygieneError as exc:
            req.problems.append(f"{filename}: {exc}")
    return req, msg


# ----------------------------------------------------------------------------- authorisation
def _aligned(domain: str, from_domain: str) -> bool:
    domain = domain.lower().strip().rstrip(".")
    return bool(domain) and (from_domain == domain or from_domain.endswith("." + domain))


def auth_results_pass(msg: Message, from_domain: str, auth_serv_id: str = "") -> bool:
    """dkim=pass (header.d aligned with From) or spf=pass (smtp.mailfrom aligned) in a trusted
    Authentication-Results header (only those from auth_serv_id when it is set)."""
    for value in msg.get_all("Authentication-Results") or []:
        text = " ".join(str(value).split())
        serv_id = text.split(";", 1)[0].strip().split()[0] if text.strip() else ""
        if auth_serv_id and serv_id.lower() != auth_serv_id.lower():
            continue
        for clause in text.split(";")[1:]:
            c = clause.strip()
            m = re.match(r"(dkim|spf)\s*=\s*pass\b(.*)", c, re.IGNORECASE)
            if not m:
                continue
            kind, rest = m.group(1).lower(), m.group(2)
            prop = re.search(r"header\.[di]\s*=\s*@?([^\s;]+)" if kind == "dkim" else
                             r"smtp\.mailfrom\s*=\s*([^\s;]+)", rest, re.IGNORECASE)
            if prop is None or _aligned(prop.group(1).rpartition("@")[2], from_domain):
                return True
    return False


def authorise(cfg, req: Request, msg: Message) -> str | None:
    """None when the request may be acted on, else the reason (logged, never sent back)."""
    ic = cfg["intake"]
    allowed = {normalise_address(a) for a in ic["allowed_senders"]}
    if not ic["shared_secret"]:
        return "intake.shared_secret is not set: every request is refused"
    if not req.sender or req.sender not in allowed:
        return f"sender {req.sender or '(none)'} is not in intake.allowed_senders"
    if ic["require_auth_results"] and not auth_results_pass(msg, domain_of(req.sender), ic["auth_serv_id"]):
        return "no Authentication-Results with dkim=pass or spf=pass for the From domain"
    if not req.secret:
        return "no shared secret in the request"
    if not hmac.compare_digest(req.secret.encode("utf-8"), str(ic["shared_secret"]).encode("utf-8")):
        return "wrong shared secret"
    return None


def _is_automatic(msg: Message, sender: str, cfg) -> str | None:
    auto = (msg.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    if (msg.get("Precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return "Precedence: bulk/list/junk"
    if sender and sender == normalise_address(cfg["sender"]["from_address"]):
        return "mail from our own sender address (loop)"
    return None


# ----------------------------------------------------------------------------- processing
@dataclass
class IntakeResult:
    status: str                 # queued | malformed | unauthorised | ignored
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
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    (log.info if res.status == "queued" else log.warning)("intake %s from %s: %s", res.status, res.sender,
                                                          res.reason)


def send_reply(cfg, req: Request, text: str) -> bool:
    """A plain reply to an authorised requester, from sender.from_address with a null envelope
    sender (RFC 3834), marked Auto-Submitted so it cannot start a loop."""
    s, ic = cfg["sender"], cfg["intake"]
    relay = parse_relay(ic["reply_relay"] or s["default_relay"], where="intake.reply_relay")
    subject = "Re: " + " ".join(req.original_subject.split()) if req.original_subject else "mailhygiene request"
    extra = {"Auto-Submitted": "auto-replied"}
    if req.message_id and "\n" not in req.message_id and "\r" not in req.message_id:
        extra["In-Reply-To"] = req.message_id
    try:
        tpl = MessageTemplate(subject=subject[:200], body=text, from_address=s["from_address"],
                              from_name=s["from_name"], charset=charset_for(s, "other"),
                              unmappable=s["unmappable"], extra_headers=extra)
        data = tpl.render(req.sender).data
        with smtplib.SMTP(relay.host, relay.port, timeout=float(s["timeout"])) as smtp:
            smtp.sendmail("", [req.sender], data)
        return True
    except (MailHygieneError, smtplib.SMTPException, OSError) as exc:
        log.error("could not send the reply to %s via %s: %s", req.sender, relay, exc)
        return False


def process_request(cfg, raw: bytes, *, reply: bool = True) -> IntakeResult:
    """One request mail -> a job or a logged refusal. Never raises for a bad request."""
    req, msg = parse_request(raw)
    res = IntakeResult("ignored", "", req.sender, req.message_id)
    automatic = _is_automatic(msg, req.sender, cfg)
    if automatic:
        res.reason = f"automatic mail ignored ({automatic})"
        _log_result(cfg, res)
        return res
    refusal = authorise(cfg, req, msg)
    if refusal:
        res.status, res.reason = "unauthorised", refusal
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
            problems.append(str(exc))
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


def process_maildir(cfg, maildir: str | os.PathLike, *, reply: bool = True) -> list[IntakeResult]:
    """Every mail in <maildir>/new, oldest first; each moves to cur/ (flag S) once handled.

    A mail whose handling fails unexpectedly stays in new/ for the next run. Re-processing a
    mail that was enqueued but not yet moved adds nothing (jobs are keyed by Message-ID).
    """
    root = Path(maildir)
    new, cur = root / "new", root / "cur"
    if not new.is_dir():
        from ..core.errors import InputError

        raise InputError(f"{root} is not a Maildir (no new/ directory)")
    cur.mkdir(exist_ok=True)
    results = []
    for name in sorted(os.listdir(new), key=lambda n: ((new / n).stat().st_mtime, n)):
        path = new / name
        try:
            results.append(process_request(cfg, path.read_bytes(), reply=reply))
        except Exception:  # one bad mail must not block the others; it stays in new/
            log.exception("could not process %s; left in new/", path)
            continue
        os.replace(path, cur / (name.split(":")[0] + ":2,S"))
    return results
