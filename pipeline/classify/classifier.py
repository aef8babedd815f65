"""Delivery event -> (reason, scope, hard): why a delivery failed and whose problem it is.

Reads one event's status, diagnostic text, dsn, reply code, SMTP phase and MTA name; writes nothing.
Called by ingest once per event (100k+ events/s), by the `mailhygiene classify` command and by
reports. The reasons and their phrases live in pipeline/reasons/ (ORDER is the order of trial).

How a reason is decided (docs/classifier.md has the full table):
1. status=sent -> delivered.
2. The diagnostic is normalised (addresses, IPs, long numbers and ids replaced, lower-cased,
   qmail's `_` unescaped) and the SMTP reply code, enhanced code and phase are read from it.
3. The reason modules are tried in ORDER; the first whose phrases (and phase rules) match wins.
   A merely generic match (policy/network/system) yields to a trusted enhanced code.
4. No phrase: a trusted enhanced status code gives the reason (5.1.1 user_unknown, ...). Postfix's
   synthesised X.0.0 and sendmail's own dsn= mapping are not trusted: only their class (4/5) is used.
5. Still nothing: 421/450 -> rate_limited; a refusal at connect/HELO -> blocked; at MAIL FROM ->
   sender_domain.
6. status=expired (or an expiry phrase): keep what the last deferral said when it is specific,
   otherwise "expired". Anything left is "undefined".

Speed: classify() is two lru_caches deep. The first key is the text with addresses and bracketed
IPs replaced by cheap literal-anchored regexes; on a miss, a thorough normalisation (bare IPs, long
numbers, ids) gives the second key, and only on a miss there do the phrase tables run.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .reasons import BY_NAME, ORDER, SCOPES, expired as _expired
from .reasons._phrases import Context

CACHE_SIZE = 65536

HARD_REASONS = frozenset({"user_unknown", "host_unknown", "mailbox_disabled", "syntax"})
_WEAK = frozenset({"policy", "network", "system"})  # generic wording: a trusted dsn= is better
_VAGUE = frozenset({"network", "system", "undefined"})  # may yield to "expired"


class Classification(NamedTuple):
    reason: str
    scope: str          # recipient | sender | network | unknown | none (delivered)
    hard: bool | None   # permanent / temporary; None for delivered


DELIVERED = Classification("delivered", "none", None)


# ----------------------------------------------------------------------------- public API
def classify(
    status: str,
    diagnostic: str | None,
    dsn: str | None = None,
    reply_code: int | None = None,
    smtp_phase: str | None = None,
    carrier: str | None = None,
    mta: str | None = None,
    recipient_domain: str | None = None,
    relay: str | None = None,
    day=None,
) -> Classification:
    """Reason, scope and hard/soft for one delivery event.

    `carrier`, `recipient_domain`, `relay` (the MX that answered) and `day` (the event's date, a
    datetime.date) identify whose server answered and when, for provider behaviour that differs
    by carrier and by date; callers pass what they know. (Today they decide nothing yet: text,
    phase and codes decide.)
    """
    if status == "sent":
        return DELIVERED
    return _classify_quick(status, _quick_normalise(diagnostic) if diagnostic else "",
                           dsn, reply_code, smtp_phase, mta)


def is_hard(reason: str, status: str, reply_code: int | None = None, dsn: str | None = None) -> bool | None:
    """Permanent (True) or temporary (False) failure; None for a delivery. Pure function.

    In Sisimai's SMTP/Failure spirit: only reasons that say the address itself cannot receive
    mail are hard, and only when the refusal was permanent (5xx reply, else X.*.* class 5, else a
    bounce without codes). A deferral is never hard.
    """
    if status == "sent" or reason == "delivered":
        return None
    if status == "deferred" or reason not in HARD_REASONS:
        return False
    if reply_code and 400 <= reply_code < 600:
        return reply_code >= 500
    if dsn and dsn[0] in "45":
        return dsn[0] == "5"
    return status in ("bounced", "undeliverable")


def describe(c: Classification) -> str:
    """One line for people: `user_unknown (recipient, permanent): the mailbox does not exist`."""
    module = BY_NAME.get(c.reason)
    text = module.DESCRIPTION if module else "unknown reason"
    if c.hard is None:
        kind = c.scope
    else:
        kind = f"{c.scope}, {'hard' if c.hard else 'soft'}"
    counted = {"recipient": "the address's problem", "sender": "our problem, not the address's",
               "network": "a connectivity problem", "unknown": "cause unclear"}.get(c.scope)
    tail = f" ({counted})" if counted and c.reason != "delivered" else ""
    return f"{c.reason} ({kind}): {text}{tail}"


_CODE = r"([245]\d\d)"
_ENH = r"([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)"
_REPLY_SAID = re.compile(
    r"(?:said|says|replied|response was|reply=|error from remote mail server[^:]*|returned)"
    r"\s*:?\s*['\"(]?" + _CODE + r"(?=[\s\-'\"]|$)(?:[\s\-'\"]+#?" + _ENH + ")?",
    re.I,
)
_REPLY_ANY = re.compile(r"(?:^|[\s:;(\"'=])" + _CODE + r"(?=[\s\-]|$)(?:[\s\-]+#?" + _ENH + ")?")
_ENH_ANY = re.compile(r"(?<![\d.])" + _ENH)


def parse_reply(text: str | None) -> tuple[int | None, str | None]:
    """The remote SMTP reply code and enhanced status code found in a diagnostic.

    `host x[1.2.3.4] said: 550 5.1.1 <a@b>: ...` -> (550, "5.1.1"); qmail's decoded
    `... Remote host said: 553 sorry ...` -> (553, None); `... (#5.1.2)` -> (None, "5.1.2").
    qmail text still in its `_` escaping is unescaped first.
    """
    if not text:
        return None, None
    if " " not in text and "_" in text:
        text = text.replace("_", " ")
    m = _REPLY_SAID.search(text) or _REPLY_ANY.search(text)
    code = int(m.group(1)) if m else None
    enh = m.group(2) if m and m.group(2) else None
    if enh is None:
        e = _ENH_ANY.search(text)
        enh = e.group(1) if e else None
    return code, enh


# ----------------------------------------------------------------------------- normalisation
# Tier 1: string methods and anchored matches only; this runs for every event.
_SEP = r"\s<>()\[\]\"',;:/"
_AT_DOMAIN = re.compile(r"@[^" + _SEP + r"]+")
_AT_LOCAL_REVERSED = re.compile(r"@(?:\"[^\"]*\"|[^" + _SEP + r"]+)")  # run on the reversed text
_DOMAIN_SPAN = re.compile(r"[^" + _SEP + r"]*")
_LOCAL_SPAN_REVERSED = re.compile(r"\"[^\"]*\"|[^" + _SEP + r"]*")
_IP_CHARS = "0123456789abcdefABCDEF.:"


def _quick_normalise(text: str) -> str:
    at = text.find("@")
    if at >= 0:
        if text.find("@", at + 1) < 0:  # one address (the common case): two anchored matches
            local = _LOCAL_SPAN_REVERSED.match(text[at - 1::-1]).end() if at else 0
            domain = _DOMAIN_SPAN.match(text, at + 1).end()
            text = f"{text[:at - local]}x@x{text[domain:]}"
        else:
            text = _AT_DOMAIN.sub("@x", text)
            text = _AT_LOCAL_REVERSED.sub("@x", text[::-1])[::-1]
    lb = text.find("[")
    while lb >= 0:  # "mx[192.0.2.1]" -> "mx[ip]"; other bracketed ids -> "#"
        rb = text.find("]", lb)
        if rb < 0:
            break
        inner = text[lb + 1:rb]
        if inner and not inner.strip(_IP_CHARS) and ("." in inner or ":" in inner):
            text = f"{text[:lb]}[ip]{text[rb + 1:]}"
            rb = lb + 3
        elif len(inner) >= 8:
            text = text[:lb] + _bracket_text(text[lb:rb + 1]) + text[rb + 1:]
            rb = text.find("]", lb)
        lb = text.find("[", rb)
    gsmtp = text.find(" - gsmtp")
    if gsmtp > 0:  # Google appends a per-message id: "... e22-n7GpZmsf093195.222 - gsmtp"
        start = text.rfind(" ", 0, gsmtp) + 1
        text = text[:start] + "#" + text[gsmtp:]
    return text


def _bracket_text(s: str) -> str:
    if s[1:8].lower() == "ipv6:" or s[1:6].lower() == "ipv6:":
        return "[ip]"
    return _LONG_NUMBER.sub("#", _TOKEN.sub(_id_to_hash, s))


# Tier 2: everything else that varies between otherwise identical replies.
_BARE_IP = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])")
_LONG_NUMBER = re.compile(r"\d{5,}")
_TOKEN = re.compile(r"[A-Za-z0-9][\w.\-]{7,}")
_NAMED_DOMAIN = re.compile(r"(name=|host named |name server: |lookup of )[^\s:;,()]+")


def _id_to_hash(m: re.Match) -> str:
    """Message/queue ids and server names with serial numbers: 8+ characters, 3+ digits and a
    letter (so reply codes such as `552-5.7.0` survive)."""
    s = m.group()
    return "#" if sum(c.isdigit() for c in s) >= 3 and not s.strip("0123456789.-_") == "" else s


def normalise(text: str | None) -> str:
    """The text the phrase tables see: placeholders for variable parts, lower case, one space."""
    if not text:
        return ""
    text = _quick_normalise(text)
    if " " not in text and "_" in text:  # qmail escaping: space and unprintables -> '_'
        text = text.replace("_", " ")
    text = text.lower()
    text = _BARE_IP.sub("ip", text)
    text = _IPV6.sub("ip", text)
    text = _NAMED_DOMAIN.sub(r"\1x", text)  # the looked-up (recipient's) domain
    text = _TOKEN.sub(_id_to_hash, text)
    text = _LONG_NUMBER.sub("#", text)
    return " ".join(text.split())


_PHASE_HINTS = (
    ("in reply to rcpt to command", "rcpt"),
    ("in reply to end of data command", "end_of_data"),
    ("in reply to data command", "data"),
    ("in reply to mail from command", "mail"),
    ("in reply to ehlo command", "helo"),
    ("in reply to helo command", "helo"),
    ("in reply to quit command", "quit"),
    ("refused to talk to me", "connect"),
    ("while receiving the initial server greeting", "connect"),
    ("but greeting failed", "connect"),
    ("but my name was rejected", "helo"),
    ("but sender was rejected", "mail"),
    ("does not like recipient", "rcpt"),
    ("failed on data command", "data"),
    ("failed after i sent the message", "end_of_data"),
    ("while sending rcpt to", "rcpt"),
    ("while sending mail from", "mail"),
    ("while sending end of data", "end_of_data"),
    ("while sending message body", "end_of_data"),
    ("while sending data", "data"),
    ("after end of data", "end_of_data"),
    ("after rcpt to", "rcpt"),
    ("after mail from", "mail"),
    ("after initial connection", "connect"),
)


def phase_from_text(text: str) -> str | None:
    """The SMTP phase a normalised diagnostic names (Postfix, qmail and Exim wordings)."""
    for hint, phase in _PHASE_HINTS:
        if hint in text:
            return phase
    return None


# ----------------------------------------------------------------------------- the decision
@lru_cache(maxsize=CACHE_SIZE)
def _classify_quick(status, quick_text, dsn, reply_code, phase, mta) -> Classification:
    return _classify_normalised(status, normalise(quick_text), dsn or None, reply_code or None,
                                phase or None, mta or None)


@lru_cache(maxsize=CACHE_SIZE)
def _classify_normalised(status, text, dsn, reply_code, phase, mta) -> Classification:
    ctx = make_context(status, text, dsn, reply_code, phase, mta)
    reason = decide(ctx)
    hard = is_hard(reason, status, ctx.reply_code, _dsn_for_class(ctx, dsn))
    return Classification(reason, SCOPES[reason], hard)


def _dsn_for_class(ctx: Context, dsn: str | None) -> str | None:
    return ctx.dsn or (dsn if dsn and dsn[:1] in "45" else None)


def make_context(status, text, dsn=None, reply_code=None, phase=None, mta=None) -> Context:
    """Context for the reason modules from a normalised text and the event's other fields."""
    code, enhanced = parse_reply(text)
    if reply_code is None:
        reply_code = code
    if reply_code is not None and not 400 <= reply_code < 600:
        reply_code = None  # e.g. sendmail's reply=221 Bye after a 421: not the refusal
    trusted = enhanced
    if trusted is None and dsn and mta != "sendmail" and not dsn.endswith(".0.0") and dsn[:1] in "45":
        trusted = dsn  # Postfix/qmail dsn= carries the remote's code unless synthesised (X.0.0)
    dsn_class = (trusted or dsn or "")[:1] or (str(reply_code)[0] if reply_code else None)
    return Context(
        text=text,
        status=status,
        phase=phase or phase_from_text(text),
        reply_code=reply_code,
        dsn=trusted,
        dsn_class=dsn_class,
        mta=mta,
    )


def _reason_from_dsn(dsn: str | None) -> str | None:
    if not dsn:
        return None
    hit = _DSN_TABLE.get(dsn)
    if hit:
        return hit
    subject = dsn[2:]
    if subject.startswith("6."):
        return "content"
    if subject.startswith("7."):
        return "policy"
    if subject.startswith("4."):
        return "network"
    return None


def decide(ctx: Context) -> str:
    """The reason for a context (uncached; classify() is the cached entry point)."""
    if ctx.status == "sent":
        return "delivered"
    reason = None
    for module in ORDER:
        if module.match(ctx):
            reason = module.NAME
            break
    from_text = reason is not None
    # carriers.md: a bare 421 means "come back slower" whatever its X.7.0 says (see _fallback)
    by_dsn = None if reason is None and ctx.reply_code == 421 else _reason_from_dsn(ctx.dsn)
    if by_dsn and (reason is None or (reason in _WEAK and by_dsn != reason)):
        reason, from_text = by_dsn, False
    if _expired.match(ctx) and _expiry_wins(ctx, reason, from_text):
        return "expired"
    return reason or _fallback(ctx) or "undefined"


def _expiry_wins(ctx: Context, reason: str | None, from_text: bool) -> bool:
    """At expiry, keep the last deferral's reason only when its text says something specific.

    Nothing, a bare code, or a timeout ("it never answered", "retry timeout exceeded") is not more
    specific than "expired"; another network or system error (no route, LDAP down) is kept.
    A permanent refusal at a known phase (HELO, MAIL FROM) is specific even without phrases.
    """
    if reason is None:
        return _fallback(ctx, phase_only=True) is None
    if reason not in _VAGUE:
        return False
    if not from_text:
        return True
    return "timed out" in ctx.text or "timeout" in ctx.text


def _fallback(ctx: Context, phase_only: bool = False) -> str | None:
    """No phrase and no trusted code: what the SMTP phase (and the reply code) alone imply."""
    permanent = ctx.dsn_class == "5" or (ctx.reply_code or 0) >= 500
    if ctx.phase in ("connect", "helo") and permanent:
        return "blocked"
    if ctx.phase == "mail" and permanent:
        return "sender_domain"
    if not phase_only and (ctx.reply_code == 421 or (ctx.reply_code == 450 and ctx.dsn is None)):
        return "rate_limited"
    return None


def _build_dsn_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for module in ORDER + (_expired,):
        for code in getattr(module, "DSN", ()):
            table.setdefault(code, module.NAME)
    return table


_DSN_TABLE = _build_dsn_table()


def cache_info() -> dict[str, object]:
    """Hit/miss counters of both cache tiers (for benchmarks and `--verbose` output)."""
    return {"quick": _classify_quick.cache_info(), "normalised": _classify_normalised.cache_info()}


def cache_clear() -> None:
    _classify_quick.cache_clear()
    _classify_normalised.cache_clear()
