"""Bounce mails -> event rows: the results an operator never sees in a log when the mail went
through a smarthost or relay, or when a carrier answers later by mail.

Reads one raw mail (stdin from a Postfix pipe transport, or the files in a Maildir's new/);
writes one event row per failed or delayed recipient through the queue's outbox into the event
store (events.py), and one JSON line per mail to <data_dir>/sender/bounces.log. Called by
`mailhygiene bounces`.

Who bounced, in this order of trust:
  1. an RFC 3464 delivery-status part: per recipient `Original-Recipient` (what we sent to), else
     `Final-Recipient`, with `Action`, `Status`, `Diagnostic-Code`, `Remote-MTA`;
  2. Mailman's flufl.bounce detectors for the non-standard formats (qmail, Exim, Yahoo, Microsoft,
     ...): they find the addresses and whether the failure is temporary or permanent, not the
     reply text, which is then looked for next to the address in the mail's text;
  3. the VERP envelope recipient (`bounce+taro=docomo.ne.jp@mail.example.jp`, written by the
     daemon with `sender.verp = true`), from --recipient, $ORIGINAL_RECIPIENT/$RECIPIENT (set by
     Postfix's local and pipe delivery), Delivered-To or X-Original-To: the recipient even when
     the bounce names none (Japanese carriers' own formats), the reply text then taken from the
     first SMTP reply in the mail's text.
2 and 3 only for a mail with no delivery-status part, from a mailer daemon/postmaster, and not an
auto-reply: vacation replies and challenges reach the VERP address too and are no failures.
The diagnostic is classified with pipeline.classify.classifier, like every log line. The SMTP
phase comes from the text next to each recipient's address (Postfix's "(in reply to RCPT TO
command)", Exim's "after end of data", sendmail's ">>> DATA" transcript), else from the whole
text when it names one phase only.

Anyone can mail the bounce address: a row counts for the rule only when bound to mail we sent to
that address (sql/macros.sql binds_bounce); `bounces` names the recipients whose rows are not
(mark_unbound), which stay in the store uncounted.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import email.utils
import functools
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..store.records import domain_of, normalise_address
from .events import bounce_event, dsn_in, flush_outbox

log = logging.getLogger("mailhygiene.bounces")

_CODE = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")
_SMTP_LINE = re.compile(r"(?<![\d.])([45]\d\d)[ -](?:([45]\.\d{1,3}\.\d{1,3})\s)?.{3,}")
_SENDMAIL_SENT = re.compile(r"^\s*>>> (RCPT|DATA|\.|MAIL|EHLO|HELO)(?![A-Za-z])(?=.*\n\s*<<< [45]\d\d)", re.IGNORECASE | re.MULTILINE)
_SENDMAIL_PHASES = {"rcpt": "rcpt", "data": "data", ".": "end_of_data", "mail": "mail", "ehlo": "helo", "helo": "helo"}


@dataclass
class BouncedRecipient:
    recipient: str
    status: str                 # bounced | deferred
    dsn: str | None = None
    reply_code: int | None = None
    diagnostic: str = ""
    remote_mta: str | None = None
    smtp_phase: str | None = None
    found_by: str = "dsn"       # dsn | flufl | verp


@dataclass
class BounceResult:
    status: str                 # recorded | ignored | refused
    reason: str
    bounce_id: str = ""
    recipients: list[dict] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # recipients with no mail of ours (mark_unbound)

    def line(self) -> str:
        if self.status != "recorded":
            return f"{self.status}: {self.reason}"
        what = ", ".join(f"{r['recipient']} {r['status']} {r['reason']}" for r in self.recipients)
        line = f"recorded: {len(self.recipients)} recipient(s): {what}"
        if self.unbound:
            line += f"; unbound (no mail of ours to this address; kept, not counted): {', '.join(self.unbound)}"
        return line


def verp_recipient(address: str, envelope_from: str) -> str | None:
    """`bounce+taro=docomo.ne.jp@mail.example.jp` -> `taro@docomo.ne.jp` when `bounce@mail.example.jp`
    is our envelope sender (the daemon's VERP form, daemon.verp_address)."""
    a = normalise_address(address)
    ours = normalise_address(envelope_from)
    if not a or not ours or "@" not in ours:
        return None
    local, _, domain = a.rpartition("@")
    prefix, _, our_domain = ours.rpartition("@")
    if domain != our_domain or not local.startswith(prefix + "+"):
        return None
    rest = local[len(prefix) + 1:]
    r_local, eq, r_domain = rest.rpartition("=")
    if not eq or not r_local or "." not in r_domain:
        return None
    return normalise_address(f"{r_local}@{r_domain}")


def _text(part) -> str:
    from .intake import decode_text

    payload = part.get_payload(decode=True) or b""
    return decode_text(payload, part.get_content_charset())


def _address_field(value) -> str | None:
    """`rfc822; taro@docomo.ne.jp` -> `taro@docomo.ne.jp`."""
    if not value:
        return None
    text = " ".join(str(value).split())
    _, _, addr = text.partition(";") if ";" in text else ("", "", text)
    addr = normalise_address(addr.strip())
    return addr if "@" in addr else None


def _phases(text: str) -> set[str]:
    """The SMTP phases a text names: Postfix's "(in reply to RCPT TO command)", Exim's "SMTP error
    from remote mail server after end of data", qmail's "does not like recipient" (the
    classifier's phase hints, as for log lines), and sendmail's transcript (">>> RCPT To:<...>",
    ">>> DATA", ">>> ." before its "<<< 550 ..." reply)."""
    from ..classify.classifier import PHASE_HINTS

    low = " ".join((text or "").lower().split())
    found = {phase for hint, phase in PHASE_HINTS if hint in low}
    for m in _SENDMAIL_SENT.finditer(text or ""):
        found.add(_SENDMAIL_PHASES[m.group(1).lower()])
    return found


def _phase(text: str) -> str | None:
    """The one SMTP phase a text names; None for none, or for several (a bounce of recipients
    refused at different steps: which is whose is found next to each address, _Replies.phases)."""
    found = _phases(text)
    return found.pop() if len(found) == 1 else None


def _dsn_blocks(msg) -> list:
    """The per-recipient field blocks of the first delivery-status part, read from its bytes.

    The email package parses message/delivery-status into header blocks but keeps non-ASCII
    bytes (an 8-bit UTF-8 or Shift_JIS Diagnostic-Code, as Japanese MTAs write them) as
    surrogates, and parses RFC 6533's message/global-delivery-status like message/rfc822 (one
    "message" whose body holds the recipients' blocks): both are re-read from the part's bytes,
    decoded like a Japanese text part."""
    from .intake import decode_text

    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list):
                data = b"\n".join(p.as_bytes() if hasattr(p, "as_bytes") else str(p).encode("utf-8", "replace")
                                  for p in payload)
            else:
                data = (payload if isinstance(payload, str) else "").encode("ascii", "surrogateescape")
            cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
            if cte in ("base64", "quoted-printable"):
                import base64
                import quopri

                try:
                    data = base64.b64decode(data) if cte == "base64" else quopri.decodestring(data)
                except (ValueError, TypeError):
                    pass
            text = decode_text(data, part.get_content_charset() or "utf-8")
            blocks = [email.message_from_string(b.strip()) for b in re.split(r"\r?\n[ \t]*\r?\n", text.strip()) if b.strip()]
            # the per-message block first (Reporting-MTA, ...), then one per recipient: a block is a
            # recipient's by its recipient fields, not its place (some reports omit the first)
            return [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient")]
    return []


def _human_text(msg) -> str:
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            if part.get("Content-Disposition", "").lower().startswith("attachment"):
                continue
            return _text(part)
    return ""


def _original_headers(msg):
    """The returned message's header block (message/rfc822 or text/rfc822-headers part), or None."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if hasattr(inner, "get") and len(inner.keys()):
                return inner
        if ctype == "text/rfc822-headers":
            head = email.message_from_string(_text(part))
            if len(head.keys()):
                return head
    return None


def _original_message_id(msg) -> str | None:
    head = _original_headers(msg)
    return str(head.get("Message-ID")).strip() if head is not None and head.get("Message-ID") else None


def _sent_by_others(msg, ours) -> bool:
    """The bounce returns the headers of a message that is not ours: its From and Return-Path
    name none of our domains (a DSN for mail someone else sent with our address as envelope
    sender: backscatter), so its recipients are no failures of ours."""
    head = _original_headers(msg)
    domains = {domain_of(normalise_address(addr)) for _, addr in email.utils.getaddresses([a for a in ours if a])}
    domains.discard("")
    if head is None:
        return False
    # a bounce of a bounce: the returned mail was itself a report from a mail system
    if "report-type=delivery-status" in " ".join(str(head.get("Content-Type") or "").lower().split()):
        return True
    if _from_mailer_daemon(head):
        return True
    if not domains:
        return False
    named = [normalise_address(addr) for name in ("From", "Return-Path", "Sender")
             for _, addr in email.utils.getaddresses([str(v) for v in (head.get_all(name) or [])])]
    named = [domain_of(a) for a in named if "@" in a]
    if not named:
        return False
    return not any(d == o or d.endswith("." + o) or o.endswith("." + d) for d in named for o in domains)


class _Replies:
    """The SMTP replies in a bounce's text, by the addresses next to them.

    near(addresses) gives, for each address, the reply after it: the first line holding the
    address (case ignored) with an SMTP reply in it or in the five lines after it, else the first
    reply anywhere in the text. The lines are split and lower-cased once and each is searched for a
    reply at most once; the addresses are found in one pass over the text, at its '@' signs (a
    bounce naming 10,000 recipients took minutes when every address re-read the whole text)."""

    def __init__(self, text: str):
        self.lines = [ln.strip() for ln in text.splitlines()]
        self._lower: list[str] | None = None
        self._reply: dict[int, str] = {}  # line index -> the reply starting in it ("" for none)
        self._first: str | None = None

    def _reply_in(self, i: int) -> str:
        reply = self._reply.get(i)
        if reply is None:
            m = _SMTP_LINE.search(self.lines[i])
            reply = self._reply[i] = self.lines[i][m.start():] if m else ""
        return reply

    def _from(self, i: int) -> str:
        """The first reply in line i or the five after it ("" for none)."""
        for j in range(i, min(i + 6, len(self.lines))):
            if self._reply_in(j):
                return self._reply_in(j)
        return ""

    def first(self) -> str:
        if self._first is None:
            self._first = next((r for r in map(self._reply_in, range(len(self.lines))) if r), "")
        return self._first

    def near(self, addresses) -> dict[str, str]:
        out = self._scan(addresses, self._from)
        for address in set(addresses) - out.keys():
            out[address] = self.first()
        return out

    def phases(self, addresses) -> dict[str, str]:
        """address -> the SMTP phase named in the lines from one holding the address to the next
        blank line (at most six): Postfix's "<b@x>: host ... said: 550 ... (in reply to end of DATA
        command)", Exim's address then "SMTP error ... after RCPT TO:", sendmail's ">>> RCPT
        To:<b@x>" then "<<< 550 ..."; addresses with none named near them are left out."""
        return self._scan(addresses, self._phase_at)

    def paragraphs(self, addresses) -> dict[str, str]:
        """address -> the lines from the first one holding it to the next blank line (at most
        six), joined: qmail's "<b@x>:" + "Sorry, no mailbox here by that name. (#5.1.1)"."""
        return self._scan(addresses, lambda i: "\n".join(self.lines[i:self._paragraph_end(i)]))

    def _paragraph_end(self, i: int) -> int:
        end = i + 1
        while end < min(i + 6, len(self.lines)) and self.lines[end]:
            end += 1
        return end

    def _phase_at(self, i: int) -> str:
        return _phase("\n".join(self.lines[i:self._paragraph_end(i)])) or ""

    def _scan(self, addresses, pick) -> dict[str, str]:
        """address -> pick(i) for the first line i holding the address where that is not ""."""
        # an address is found where its last '@' is: (length, text) of its local part -> its domains
        wanted: dict[tuple[int, str], list[tuple[str, str]]] = {}
        for address in addresses:
            local, _, domain = address.lower().rpartition("@")
            wanted.setdefault((len(local), local), []).append((domain, address))
        lengths = sorted({n for n, _ in wanted})
        pending = {address for group in wanted.values() for _, address in group}
        out: dict[str, str] = {}
        if self._lower is None:
            self._lower = [line.lower() for line in self.lines]
        for i, line in enumerate(self._lower):
            if not pending:
                break
            at = line.find("@")
            while at >= 0:
                for n in lengths:
                    if n > at:
                        break
                    for domain, address in wanted.get((n, line[at - n:at]), ()):
                        if address in pending and line.startswith(domain, at + 1):
                            value = pick(i)
                            if value:
                                out[address] = value
                                pending.discard(address)
                at = line.find("@", at + 1)
        return out


# who sends bounces: RFC 5321's postmaster and the MTAs' MAILER-DAEMON / Mail Delivery Subsystem
_DAEMON = re.compile(r"^(mailer-?daemon|mail-?daemon|postmaster|mdaemon|mail\.delivery\.subsystem)$", re.IGNORECASE)
# RFC 3834 auto-responders' own marks, and the vacation subjects mail clients write
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Vacation", "X-Mail-Autoreply",
                 "X-Challenge", "X-Cr-Hashedpuzzle", "X-Boxtrapper", "X-Spamarrest-Noauth")
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|vacation|"
                           r"自動応答|自動返信|自動送信|不在|please confirm|confirm your (message|e-?mail))", re.IGNORECASE)


def _from_mailer_daemon(msg) -> bool:
    """The bounce comes from a mail system, not a person: its From (or Sender) is a mailer daemon
    or postmaster. A person's mail to the VERP address (a vacation reply, a challenge, a reply to
    the envelope sender) names our recipient too, and is no failure."""
    for name in ("From", "Sender"):
        for _, addr in email.utils.getaddresses([str(v) for v in (msg.get_all(name) or [])]):
            local = normalise_address(addr).rpartition("@")[0] or normalise_address(addr)
            if _DAEMON.match(local):
                return True
    return False


def _auto_reply(msg) -> bool:
    if any(msg.get(h) is not None for h in _AUTO_HEADERS):
        return True
    if str(msg.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    subject = str(msg.get("Subject") or "")
    try:
        subject = str(email.header.make_header(email.header.decode_header(subject)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        pass
    return bool(_AUTO_SUBJECT.match(subject))


def _own_reply(paragraph: str) -> str:
    """The reply in an address's paragraph (_Replies.paragraphs): its first SMTP reply, else its
    lines when there is more than the address's own ("" for none)."""
    lines = paragraph.split("\n") if paragraph else []
    own = next((ln[m.start():] for ln in lines for m in [_SMTP_LINE.search(ln)] if m), "")
    return own or (" ".join(lines) if len(lines) > 1 else "")


def _code(text: str) -> int | None:
    m = _CODE.search(text or "")
    return int(m.group(1)) if m else None


def parse_bounce(raw: bytes, *, envelope_from: str, envelope_recipient: str | None = None,
                 from_address: str | None = None) -> tuple[list[BouncedRecipient], object]:
    """The recipients a bounce mail reports, and the parsed message (none for the bounce of a
    message that is not ours: _sent_by_others)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if _sent_by_others(msg, (envelope_from, from_address)):
        return [], msg
    human = _human_text(msg)
    # what every recipient without its own evidence shares: looked at once, not once per recipient
    human_phase = functools.cache(lambda: _phase(human))
    human_start = functools.cache(lambda: human.strip()[:500])
    replies = _Replies(human)
    found: dict[str, BouncedRecipient] = {}
    reported = False
    blocks = _dsn_blocks(msg)
    named = ([a for a in (_address_field(b.get("Final-Recipient")) for b in blocks) if a] +
             [a for a in (_address_field(b.get("Original-Recipient")) for b in blocks) if a])
    near_phase = replies.phases(named)
    # a block without Diagnostic-Code: the human text's paragraph of its own address, not the
    # start of the text (another recipient's reply when the report names several)
    near_text = functools.cache(lambda: replies.paragraphs(named))
    for block in blocks:
        reported = True
        rcpt = _address_field(block.get("Original-Recipient")) or _address_field(block.get("Final-Recipient"))
        action = str(block.get("Action") or "").strip().lower()
        if not rcpt or action not in ("failed", "delayed"):
            continue
        diag = " ".join(str(block.get("Diagnostic-Code") or "").split())
        kind, _, rest = diag.partition(";")
        diagnostic = rest.strip() if rest else diag
        # `Status: 5.2.2 (mailbox full)`: the code without its comment, as the classifier reads a dsn
        status = dsn_in(str(block.get("Status") or "")) or str(block.get("Status") or "").strip() or None
        final = _address_field(block.get("Final-Recipient")) or ""
        if not diagnostic:
            diagnostic = (_own_reply(near_text().get(rcpt) or near_text().get(final) or "")
                          or (human_start() if len(blocks) == 1 else ""))
        phase = _phase(diagnostic) or near_phase.get(rcpt) or near_phase.get(final) or human_phase()
        found[rcpt] = BouncedRecipient(
            rcpt, "deferred" if action == "delayed" else "bounced", status, _code(diagnostic),
            diagnostic, _address_field_host(block.get("Remote-MTA")), phase, "dsn")
    # a delivery-status part is the report: when it names no failed or delayed recipient (a
    # success DSN, action=relayed/delivered/expanded) the mail is no failure, whatever the text
    # or the VERP address say; without one, only a mail from a mailer daemon that is not an
    # auto-reply (vacation, challenge-response: sent to the envelope sender, i.e. the VERP address)
    fallback = not reported and _from_mailer_daemon(msg) and not _auto_reply(msg)
    if not found and fallback:
        try:
            from flufl.bounce import all_failures

            temporary, permanent = all_failures(msg)
        except Exception:  # noqa: BLE001 - a detector tripping over a hostile mail finds nothing
            log.debug("flufl.bounce failed on this mail", exc_info=True)
            temporary, permanent = set(), set()
        picked: dict[str, str] = {}  # address -> status, the permanent failures first
        for addrs, status in ((permanent, "bounced"), (temporary, "deferred")):
            for a in addrs:
                a = normalise_address(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a))
                if "@" in a and a not in picked:
                    picked[a] = status
        near = replies.near(picked)
        phases = replies.phases(picked)
        paragraphs = replies.paragraphs(picked)
        for a, status in picked.items():
            # the address's own paragraph: its SMTP reply, else its text when it says more than the
            # address (qmail's own "Sorry, no mailbox here by that name. (#5.1.1)"); only else the
            # reply after it or the first in the mail (which may be another recipient's)
            reply = _own_reply(paragraphs.get(a, "")) or near[a]
            found[a] = BouncedRecipient(a, status, dsn_in(reply), _code(reply), reply or human_start(),
                                        None, phases.get(a) or (human_phase() if len(picked) == 1 else None),
                                        "flufl")
    verp = None
    for candidate in filter(None, [envelope_recipient, *(msg.get_all("Delivered-To") or []),
                                   *(msg.get_all("X-Original-To") or []), msg.get("To")]):
        for _, addr in email.utils.getaddresses([str(candidate)]):
            verp = verp_recipient(addr, envelope_from)
            if verp:
                break
        if verp:
            break
    if verp and not found and fallback:
        reply = replies.near([verp])[verp]
        code = _code(reply)
        found[verp] = BouncedRecipient(verp, "deferred" if code and 400 <= code < 500 else "bounced",
                                       dsn_in(reply), code, reply or human_start(), None, human_phase(), "verp")
    return list(found.values()), msg


def _address_field_host(value) -> str | None:
    if not value:
        return None
    text = " ".join(str(value).split())
    return text.partition(";")[2].strip() or text


def _when(msg) -> float:
    for block in _dsn_blocks(msg):
        for name in ("Last-Attempt-Date", "Arrival-Date"):
            if block.get(name):
                try:
                    return email.utils.parsedate_to_datetime(str(block.get(name))).timestamp()
                except (TypeError, ValueError, IndexError, OverflowError):
                    pass
    try:
        return email.utils.parsedate_to_datetime(str(msg.get("Date"))).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return time.time()


def record_bounce(cfg, raw: bytes, *, source: str = "stdin", envelope_recipient: str | None = None,
                  queue=None) -> BounceResult:
    """One bounce mail -> event rows in the outbox (moved to the event store by flush). Anything
    wrong with the mail is a logged `refused`/`ignored`, never an exception; faults of this host
    (queue, disk) raise."""
    from ..classify.carriers import CarrierTable
    from ..classify.classifier import classify
    from .intake import host_fault
    from .queue import Queue

    s = cfg.sender
    envelope_from = s.envelope_from or s.from_address
    bounce_id = ""
    try:
        if len(raw) > cfg.intake.max_bytes:
            res = BounceResult("refused", f"{len(raw)} bytes is over intake.max_bytes ({cfg.intake.max_bytes})")
            _log(cfg, res)
            return res
        recipients, msg = parse_bounce(raw, envelope_from=envelope_from, envelope_recipient=envelope_recipient,
                                       from_address=s.from_address)
        bounce_id = str(msg.get("Message-ID") or "").strip() or "sha256:" + hashlib.sha256(raw).hexdigest()
        if not recipients:
            why = ("the bounce of a message we did not send (the returned headers name none of our domains, "
                   "or are a bounce's)" if _sent_by_others(msg, (envelope_from, s.from_address))
                   else "not a bounce: no failed or delayed recipient found")
            res = BounceResult("ignored", why, bounce_id)
            _log(cfg, res)
            return res
        when = _when(msg)
        original_mid = _original_message_id(msg)
        carrier_for = CarrierTable.from_config(cfg.carriers).carrier_for
        day = datetime.fromtimestamp(when, cfg.tz).date()
        rows, summary = [], []
        for pos, r in enumerate(recipients):
            carrier = carrier_for(domain_of(r.recipient))
            c = classify(status=r.status, diagnostic=r.diagnostic, dsn=r.dsn, reply_code=r.reply_code,
                         smtp_phase=r.smtp_phase, carrier=carrier, mta="mailhygiene",
                         recipient_domain=domain_of(r.recipient), relay=r.remote_mta, day=day)
            rows.append(bounce_event(
                ts=when, host=str(msg.get("Reporting-MTA") or "") or None, bounce_id=bounce_id, position=pos,
                message_id=original_mid, sender=envelope_from, recipient=r.recipient, carrier=carrier,
                relay=r.remote_mta, status=r.status, dsn=r.dsn, reply_code=r.reply_code,
                smtp_phase=r.smtp_phase, diagnostic=r.diagnostic, reason=c.reason, scope=c.scope,
                hard=c.hard if r.status == "bounced" else False, source=source))
            summary.append({**asdict(r), "reason": c.reason, "scope": c.scope, "event_id": rows[-1]["event_id"]})
    except Exception as exc:  # noqa: BLE001 - the mail is data: refuse it, log it, go on
        if host_fault(exc):
            raise
        res = BounceResult("refused", f"unreadable mail ({exc.__class__.__name__}: {str(exc)[:200]})", bounce_id)
        log.debug("bounce refused", exc_info=True)
        _log(cfg, res)
        return res
    q = queue or Queue.for_config(cfg)
    q.add_events(rows)
    res = BounceResult("recorded", "ok", bounce_id, summary)
    _log(cfg, res)
    return res


def _log(cfg, res: BounceResult) -> None:
    path = Path(cfg.data_dir) / "sender" / "bounces.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **asdict(res)}
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def process_bounces(cfg, *, raw: bytes | None = None, maildir: str | os.PathLike | None = None,
                    envelope_recipient: str | None = None) -> list[BounceResult]:
    """Bounce mails from stdin bytes or a Maildir's new/ (each moved to cur/ once recorded), then
    their events into the event store."""
    from .queue import Queue

    q = Queue.for_config(cfg)
    results = []
    if maildir is None:
        results.append(record_bounce(cfg, raw or b"", envelope_recipient=envelope_recipient, queue=q))
    else:
        from . import maildir as md

        for path in md.waiting(maildir):
            data = md.read(path, cfg.intake.max_bytes + 1)
            if data is None:
                continue
            results.append(record_bounce(cfg, data, source=str(md.seen_path(path)), queue=q))
            md.mark_seen(path)
    flush_outbox(q, cfg.data_dir)
    mark_unbound(cfg, results)
    return results


# the recipients whose binding `bounces` looks up and reports (one query each); the rule checks all
MAX_BINDING_CHECKS = 100


def mark_unbound(cfg, results: list[BounceResult]) -> None:
    """Name, in each recorded result, the recipients whose rows are bound to no mail of ours
    (sql/bounce_mails.sql, as the rule and `suppression show` judge them, over the store
    as it is now: the send daemon's rows are in it, this run's flush moved them; an MTA log
    ingested later can still bind a row, the rule looks again at every run). Anyone can mail the
    bounce address: such a row is kept, not counted. At most MAX_BINDING_CHECKS addresses."""
    from ..store.warehouse import connect
    from ..suppression.store import address_attempts, keep_counted

    wanted = [r for res in results if res.status == "recorded" for r in res.recipients]
    addresses = list(dict.fromkeys(r["recipient"] for r in wanted))[:MAX_BINDING_CHECKS]
    if not addresses:
        return
    unbound: set[str] = set()
    try:
        con = connect(config=cfg)
        try:
            keep_counted(con, tz=cfg.timezone_name, counted_reasons=cfg.rule.counted_reasons,
                         window_days=cfg.rule.window_days)
            for address in addresses:
                unbound.update(e["event_id"] for e in address_attempts(con, address, tz=cfg.timezone_name)
                               if e["bound"] is False)
        finally:
            con.close()
    except Exception:  # noqa: BLE001 - the rows are stored already: a note we cannot make is no reason
        # for the MTA to deliver the bounce again (the rule judges the binding at its run anyway)
        log.warning("could not look up whether the bounced recipients were mailed by us", exc_info=True)
        return
    for res in results:
        res.unbound = [r["recipient"] for r in res.recipients if r.get("event_id") in unbound]
