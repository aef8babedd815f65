"""Delivery event -> (reason, scope, hard): why a delivery failed and whose problem it is.

Reads one event's status, diagnostic text, dsn, reply code, SMTP phase, MTA name and who answered
(recipient domain / relay / carrier, and the day, for provider behaviour that is data: see
providers.py); writes nothing. Called by ingest once per event (100k+ events/s), by the sender
daemon, by `mailhygiene classify` and by reports. The reasons and their phrases live in reasons/
(ORDER is the order of trial), Japanese phrases in data/phrases_ja.toml, provider behaviour in
data/providers.toml; the config's [classify] section extends both (configure()).

The precedence of evidence is written once, in decide() (docs/classifier.md, "Precedence"):
 1. status=sent -> delivered.
 2. A specific phrase, tried in ORDER (sender-side reasons first, then mailbox reasons, then the
    address, then generic wording).
 3. An explicit X.7.x / 4.7.x code vetoes a recipient reason unless explicit unknown-user words
    are there; a code outranks a *generic* phrase ("Recipient address rejected:", "policy"), and
    user_unknown's generic prefixes yield to whatever words follow them (_generic_hint).
 4. No phrase: the enhanced code (RFC 3463), trusting only codes the remote server sent; codes the
    MTA may have synthesised itself (Postfix X.0.0, all of sendmail's dsn=) count only for what
    they really carry (SYNTHESISED below), sendmail's only without the reply's words. Then the
    reply code / phase fallback.
 5. The SMTP phase: no recipient reason in a 421 (it closes the session, for every recipient in it)
    nor at connect, HELO or MAIL FROM; "unknown user" words after DATA or without a phase read as
    the provider's data says (filter, or a dead address); domain words after DATA are not the
    recipient's domain (it was accepted at RCPT TO).
 6. Expiry: keep the last deferral's reason when it says something specific.

Speed: classify() is two lru_caches deep. The first key is the text with addresses and bracketed
IPs replaced by cheap literal-anchored regexes (plus the small provider key, never the domain); on
a miss, a thorough normalisation (bare IPs, long numbers, ids) gives the second key, and only on a
miss there do the phrase tables run.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

from ..core.errors import ConfigError
from .carriers import CarrierTable
from .providers import DEFAULT_PERIOD, Period, ProviderTable
from .reasons import BY_NAME, ORDER, SCOPES, expired as _expired
from .reasons import AFTER_DATA, Context, Phrases

CACHE_SIZE = 65536

HARD_REASONS = frozenset({"user_unknown", "host_unknown", "mailbox_disabled", "syntax"})
# Reasons that blame the address (scope recipient): never at connect/HELO/MAIL FROM, and vetoed
# by an explicit X.7.x code unless unknown-user words are there.
RECIPIENT_REASONS = frozenset(name for name, scope in SCOPES.items() if scope == "recipient")
# The reasons the suppression rule counts by default: an explicit X.7.x code vetoes them unless
# unknown-user words are there (syntax, e.g. "554 5.7.1 Relay access denied", is not vetoed).
X7_VETOED = frozenset({"user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"})
_VAGUE = frozenset({"network", "system", "undefined"})  # may yield to "expired"
_PRE_RCPT = frozenset({"connect", "helo", "mail"})
_NO_MAIL_CODES = (521, 556)
_EXPLICIT_UNKNOWN_CODES = ("1.1", "1.10")
# A transcript showing the refusal came at RCPT TO (DATA then failed for want of recipients).
_REFUSED_AT_RCPT = ("no valid recipients", "rcpt command", "need rcpt", "rcpt first",
                    "rcpt commands were rejected")

# Codes an MTA writes itself rather than passing on the remote's (what each really carries).
# Postfix: X.0.0 when the remote reply had no enhanced code (log-formats.md): the class only.
# sendmail: dsn= is the remote's enhanced code when the remote advertised ENHANCEDSTATUSCODES and
# sent one, else sendmail's own mapping of the reply code and the command it answered (recorded
# from a real sendmail 8.17: tests/test_sendmail_real.py, tests/test_classify_sendmail_enhanced.py).
# The line does not say which: the mapping carries a reason only where the reply code does, and
# is used only when the line has no reply= (decide_explained).
SYNTHESISED: dict[str, dict[str, str | None]] = {
    "postfix": {"5.0.0": None, "4.0.0": None},
    "sendmail": {
        "5.1.1": "user_unknown",   # 550 at RCPT TO (stat=User unknown), whatever the remote said
        "5.1.3": "syntax",         # 553 at RCPT TO; at MAIL FROM stat=Data format error (phase gate)
        "5.1.6": "mailbox_disabled",  # 551 user not local (moved)
        "5.2.2": "mailbox_full",   # 552 exceeded storage allocation (RFC 5321), any phase
        "5.2.0": None,             # 550 after DATA: says nothing about why
        "5.0.0": None, "4.0.0": None,  # 554 / other 5xx, 421 and other 4xx
        "4.2.0": None, "4.3.0": None, "4.3.1": None,  # 450, 451, 452 (452 4.2.2 "Mailbox full" too)
        "5.5.0": None,             # refused greeting
        "5.5.1": None, "5.5.2": None, "5.5.4": None,  # 500-504 command errors
    },
    "qmail": {},  # qmail-remote passes the remote's text; its own (#X.Y.Z) are its real verdicts
}


# sendmail's own stat= words (no reply= logged): what sendmail calls every such refusal.
_SENDMAIL_OWN_WORDS = frozenset({"user unknown", "service unavailable", "data format error"})


class Classification(NamedTuple):
    reason: str
    scope: str          # recipient | sender | network | unknown | none (delivered)
    hard: bool | None   # permanent / temporary; None for delivered


class Decision(NamedTuple):
    """What decided a reason (for `mailhygiene classify --explain`)."""

    reason: str
    rule: str           # delivered | phrase | weak-phrase | code | synthesised-code | reply-code | phase | provider | expiry | none
    evidence: str       # the phrase, the code, or the phase rule that decided
    notes: tuple[str, ...] = ()


DELIVERED = Classification("delivered", "none", None)


# ----------------------------------------------------------------------------- tables (data + config)
_JA_FILE = Path(__file__).with_name("data") / "phrases_ja.toml"


class _Tables:
    """Phrase tables per reason (module phrases + Japanese data + config) and the provider table."""

    def __init__(self, extra_phrases=None, providers=None, carriers=None):
        with open(_JA_FILE, "rb") as fh:
            ja = tomllib.load(fh)
        extra = {name: list(v) for name, v in (extra_phrases or {}).items()}
        known = {m.NAME for m in ORDER} - {"delivered"}
        for name in list(ja) + list(extra):
            if name not in known:
                raise ConfigError(f"[classify.phrases]: {name!r} takes no phrases; use one of {', '.join(sorted(known))}")
        self.strong: dict[str, Phrases] = {}
        self.weak: dict[str, Phrases] = {}
        self.added: dict[str, tuple[str, ...]] = {}
        for m in ORDER:
            added = [_phrase(p) for p in ja.get(m.NAME, []) + extra.get(m.NAME, [])]
            added = [p for p in added if p]
            self.added[m.NAME] = tuple(added)
            self.strong[m.NAME] = Phrases(list(m.PHRASES) + added)
            self.weak[m.NAME] = Phrases(getattr(m, "WEAK", ()))
        table = CarrierTable.from_config(carriers) if carriers else None
        self.providers = ProviderTable.build(providers, table)


def _phrase(p) -> str:
    if not isinstance(p, str):
        raise ConfigError(f"[classify.phrases]: phrases must be strings, got {p!r}")
    return normalise(p)


_TABLES: _Tables | None = None


def tables() -> _Tables:
    global _TABLES
    if _TABLES is None:
        _TABLES = _Tables()
    return _TABLES


def configure(settings=None, carriers=None) -> None:
    """Install the config's `[classify]` phrases and providers (and `[carriers]` extra domains).

    `settings` is a ClassifySettings (cfg.classify) or a dict with `phrases` and `providers`;
    None restores the package tables. Clears the caches. The CLI calls this once per command.
    """
    global _TABLES
    if settings is None:
        phrases, providers = None, None
    elif isinstance(settings, dict):
        phrases, providers = settings.get("phrases"), settings.get("providers")
    else:
        phrases, providers = settings.phrases, settings.providers
    _TABLES = _Tables(phrases, providers, carriers)
    cache_clear()


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

    `recipient_domain`, `relay` (the MX that answered), `carrier` and `day` (the event's date, a
    datetime.date) pick the provider period whose behaviour applies (providers.py); they enter
    the caches only as that small key. Without them, a relay host named in the text ("host
    mx.example[ip] said:") is used.
    """
    if status == "sent":
        return DELIVERED
    key = None
    if recipient_domain or relay or carrier:
        key = (_TABLES or tables()).providers.key_for(recipient_domain, relay, carrier, day)
    return _classify_quick(status, _quick_normalise(diagnostic) if diagnostic else "",
                           dsn, reply_code, smtp_phase, mta, key)


def classify_many(statuses, diagnostics, dsns, reply_codes, smtp_phases, carriers, mta, recipient_domains,
                  relays, days) -> list[Classification]:
    """classify() of many events given as columns (equal-length sequences; `mta` is one name for
    all of them, or a column too).

    The same verdicts as [classify(...) for each event] (tests/test_classify_fast.py), without the
    per-event keyword call: the provider key is looked up once per distinct (domain, relay,
    carrier, day), and the cached tier is called directly."""
    providers = (_TABLES or tables()).providers
    key_for = providers.key_for
    quick_normalise = _quick_normalise
    classify_quick = _classify_quick
    keys: dict = {}
    out = []
    append = out.append
    mtas = repeat(mta) if mta is None or isinstance(mta, str) else mta
    for status, diagnostic, dsn, code, phase, carrier, mta, domain, relay, day in zip(
            statuses, diagnostics, dsns, reply_codes, smtp_phases, carriers, mtas, recipient_domains, relays, days):
        if status == "sent":
            append(DELIVERED)
            continue
        if domain or relay or carrier:
            where = (domain, relay, carrier, day)
            key = keys.get(where, _NO_KEY)
            if key is _NO_KEY:
                key = keys[where] = key_for(domain, relay, carrier, day)
        else:
            key = None
        append(classify_quick(status, quick_normalise(diagnostic) if diagnostic else "", dsn, code, phase, mta, key))
    return out


_NO_KEY = object()


@lru_cache(maxsize=CACHE_SIZE)
def classify_by_key(status: str, diagnostic: str | None, dsn: str | None, reply_code: int | None,
                    smtp_phase: str | None, mta: str | None, key: str | None) -> Classification:
    """classify() of an event given its provider key (provider_key() of its recipient domain,
    relay, carrier and day) in place of those four: the same verdict, since classify() reads
    them only through that key (tests/test_classify_fast.py). For callers that de-duplicate
    events by the key (ingest's annotate); cached, so that an event seen in an earlier batch
    costs one look-up (the key holds the day's period and the provider: no stale verdict
    across days or carrier tables; configure() clears it)."""
    if status == "sent":
        return DELIVERED
    return _classify_quick(status, _quick_normalise(diagnostic) if diagnostic else "", dsn, reply_code,
                           smtp_phase, mta, key)


def provider_key(recipient_domain: str | None = None, relay: str | None = None, carrier: str | None = None,
                 day=None) -> str | None:
    """The small key classify() caches by for these fields ("docomo#1", or None): callers that
    de-duplicate events before classifying (ingest's batches) add it to their key."""
    if not (recipient_domain or relay or carrier):
        return None
    return (_TABLES or tables()).providers.key_for(recipient_domain, relay, carrier, day)


def explain(status: str, diagnostic: str | None, dsn: str | None = None, reply_code: int | None = None,
            smtp_phase: str | None = None, carrier: str | None = None, mta: str | None = None,
            recipient_domain: str | None = None, relay: str | None = None, day=None) -> tuple[Classification, Decision, Context]:
    """classify() with the decision spelled out (uncached): which rule decided, on what evidence."""
    if status == "sent":
        return DELIVERED, Decision("delivered", "delivered", "status=sent"), make_context("sent", "")
    t = tables()
    key = t.providers.key_for(recipient_domain, relay, carrier, day) if (recipient_domain or relay or carrier) else None
    text = normalise(diagnostic)
    ctx = make_context(status, text, dsn or None, reply_code or None, smtp_phase or None, mta or None, key)
    decision = decide_explained(ctx)
    hard = is_hard(decision.reason, status, ctx.reply_code, _dsn_for_class(ctx, dsn))
    return Classification(decision.reason, SCOPES[decision.reason], hard), decision, ctx


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
# The reply after a phrase: `said: 550 5.1.1`, `reply=550`, `error from remote mail server after
# RCPT TO:<a@b>: 550 ...`. `\s*(?::\s*)?`, not `\s*:?\s*`: two runs of spaces side by side are
# tried at every split of a long run (quadratic); the phrase's own `[^:]*` takes the spaces before
# a colon. The two kinds of phrase are two patterns (see _reply_said): `[^:]*` read from every
# "error from remote mail server" to the same colon was quadratic in a text that repeats it.
_REPLY_TAIL = r"(?::\s*)?['\"(]?" + _CODE + r"(?=[\s\-'\"]|$)(?:[\s\-'\"]+#?" + _ENH + ")?"
_REPLY_SAID = re.compile(r"(?:said|says|replied|response was|reply=|returned)\s*" + _REPLY_TAIL, re.I)
_ERROR_FROM = re.compile(r"error from remote mail server", re.I)
_REPLY_ERROR_FROM = re.compile(_ERROR_FROM.pattern + r"[^:]*" + _REPLY_TAIL, re.I)
_REPLY_ANY = re.compile(r"(?:^|[\s:;(\"'=])" + _CODE + r"(?=[\s\-]|$)(?:[\s\-]+#?" + _ENH + ")?")
_ENH_ANY = re.compile(r"(?<![\d.])" + _ENH)
# Amazon SES and others prefix the remote reply with their own rendering of a DSN code:
# "5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'": the remote's code is the one inside.
_RELAYED_REPLY = re.compile(r"^\s*[245]\.\d{1,3}\.\d{1,3} - [^0-9']{3,60}?\s(?=[245]\d\d[\s\-])")


def _reply_said(text: str) -> re.Match | None:
    """The leftmost reply after a phrase: what one search of `_REPLY_SAID|_REPLY_ERROR_FROM` finds
    (their phrases start with different letters, so at most one matches at a place), in one pass.
    "error from remote mail server" is matched once per colon-free stretch: a later one before
    the same colon can only look at a part of the same stretch, so when the first fails it fails."""
    said = _REPLY_SAID.search(text)
    before = said.start() if said else len(text)
    pos = 0
    while (phrase := _ERROR_FROM.search(text, pos)) is not None and phrase.start() < before:
        m = _REPLY_ERROR_FROM.match(text, phrase.start())
        if m:
            return m
        colon = text.find(":", phrase.end())
        if colon < 0:
            break
        pos = colon + 1
    return said


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
    relayed = _RELAYED_REPLY.match(text)
    if relayed:
        text = text[relayed.end():]
    m = _reply_said(text) or _REPLY_ANY.search(text)
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


# ISO-2022-JP in a reply: JIS X 0208 byte pairs (all printable ASCII) between ESC $ B (or ESC $ @)
# and ESC ( B / ESC ( J. Japanese servers that answer in Japanese often answer in it; the log
# shows the ESC as Postfix's '?' (smtp_chat's printable()), sendmail's octal '\\033', rsyslog's
# '#033', or as is. Undecoded, the pairs are noise ("?$B08@h%\"%I%l%9?(B"), and their '@' looks
# like an address: they are decoded first, before any address is masked.
_JIS_ESC = r"(?:\x1b|\?|#033|\\033)"
_JIS_RUN = re.compile(_JIS_ESC + r"\$[@B]((?:[\x21-\x7e]{2})+?)(?:" + _JIS_ESC + r"\([BJ]|(?=[^\x21-\x7e]|$))")


def _jis_to_text(m: re.Match) -> str:
    return (b"\x1b$B" + m.group(1).encode("ascii") + b"\x1b(B").decode("iso2022_jp", "replace")


def decode_iso2022jp(text: str) -> str:
    """`550 ?$B08@hITL@?(B` (Postfix's rendering of an ISO-2022-JP reply) -> `550 宛先不明`."""
    if "$B" not in text and "$@" not in text:
        return text
    return _JIS_RUN.sub(_jis_to_text, text)


def _quick_normalise(text: str) -> str:
    text = decode_iso2022jp(text)
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
    if lb >= 0:  # "mx[192.0.2.1]" -> "mx[ip]"; other bracketed ids -> "#"
        parts, kept = [], 0  # (the text is put together once: a copy per bracket is quadratic)
        while lb >= 0:
            rb = text.find("]", lb)
            if rb < 0:
                break
            inner = text[lb + 1:rb]
            if inner and not inner.strip(_IP_CHARS) and ("." in inner or ":" in inner):
                parts += (text[kept:lb], "[ip]")
                kept = rb + 1
            elif len(inner) >= 8:
                parts += (text[kept:lb], _bracket_text(text[lb:rb + 1]))
                kept = rb + 1
            lb = text.find("[", rb)
        if parts:
            parts.append(text[kept:])
            text = "".join(parts)
    gsmtp = text.find(" - gsmtp")
    if gsmtp > 0:  # Google appends a per-message id: "... e22-n7GpZmsf093195.222 - gsmtp"
        start = text.rfind(" ", 0, gsmtp) + 1
        text = text[:start] + "#" + text[gsmtp:]
    return text


# Tier 0, for callers that de-duplicate a column before classifying (ingest's annotate): the
# same address placeholder, written as an RE2 pattern Arrow runs over a whole column in C++. It
# masks only an address it can prove _quick_normalise masks the same way: a local part and a
# domain of characters that are neither separators (_SEP) nor '@' nor '"', with a separator (or
# the text's start/end) on both sides. Such a token is exactly the span _quick_normalise replaces
# (one '@': the runs of non-separators around it; several: each '@x' / 'x@' substitution stops at
# the separators around the token, and a quoted local part elsewhere spans it whole or not at all),
# and the '@' count is kept, so _quick_normalise(masked) == _quick_normalise(text) for every text
# (tests/test_classify_fast.py holds it on real and generated texts). Non-ASCII characters (an
# SMTPUTF8 address: 山田@docomo.ne.jp) are in both runs but for Python's non-ASCII \s (_WIDE_SPACES,
# separators there; never one of _MASK_SEP, so an address next to one is left). A token it cannot
# prove (an address right after another one's separator, a quoted local part) is left as it is:
# that costs only a distinct key, never a verdict. So is every text that may hold an ISO-2022-JP
# run (JIS_MARK: what decode_iso2022jp looks for): its byte pairs are printable ASCII, '@' and the
# separators among them, and _quick_normalise decodes them before it masks anything, so a token
# masked inside a run would change the decoded text ("?$B(ab@cd)?(B" is no address).
_MASK_SEP = r"""[\x09-\x0d <>()\[\]"',;:/]"""
_WIDE_SPACES = r"\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_WIDE = r"[^\x00-\x7f" + _WIDE_SPACES + "]"
ADDRESS_MASK = (r"(^|" + _MASK_SEP + r")(?:[A-Za-z0-9.!#$%&*+=?^_{|}~\-]|" + _WIDE + r")+@(?:[A-Za-z0-9._\-]|"
                + _WIDE + r")+($|" + _MASK_SEP + ")")
JIS_MARK = r"\$[@B]"
# The bracketed IP of "host mx.example.jp[192.0.2.1] said: ..." as _quick_normalise's bracket loop
# writes it ("[ip]"), for the brackets that loop is sure to reach: the loop takes the first '['
# after the last bracket it closed, so a '[' with no '[' since the last ']' (or the start) is one
# it reaches, and it closes it at the first ']' after; "[ip]" it leaves as it is. Where the text
# holds a '"' (a quoted local part, which the address masking removes whole, may hold brackets)
# or a JIS_MARK, brackets are left. After a match the next one needs another ']' (RE2 goes on
# after the match): a second IP right after the first keeps its digits, again only a distinct key.
# An inner part of one character ("[.]") is left too: the masked text is never longer.
BRACKET_IP_MASK = r"(^|\])([^\[\]]*)\[(?:[0-9A-Fa-f.:]+[.:][0-9A-Fa-f.:]*|[.:][0-9A-Fa-f.:]+)\]"
BRACKET_IP_KEEP = r'"|' + JIS_MARK


def mask_addresses(texts):
    """An Arrow string column with the provable addresses replaced by `x@x` and the provable
    bracketed IPs by `[ip]` (BRACKET_IP_MASK; nulls stay null).

    classify() gives the masked text the same verdict as the text (see ADDRESS_MASK), so a caller
    may key its distinct-event de-duplication by it: texts that differ only in the recipient's
    address then share one classify() call."""
    import pyarrow.compute as pc

    masked = pc.replace_substring_regex(texts, ADDRESS_MASK, r"\1x@x\2")
    masked = pc.if_else(pc.match_substring_regex(texts, JIS_MARK), texts, masked)
    ips = pc.replace_substring_regex(masked, BRACKET_IP_MASK, r"\1\2[ip]")
    return pc.if_else(pc.match_substring_regex(texts, BRACKET_IP_KEEP), masked, ips)


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
_OCTAL_RUN = re.compile(r"(?:\\[0-3][0-7]{2})+")
_QMAIL_GIVING_UP = re.compile(r"giving up on (?:ip|[a-z0-9.\-]+)\.?/?")


def _id_to_hash(m: re.Match) -> str:
    """Message/queue ids and server names with serial numbers: 8+ characters, 3+ digits and a
    letter (so reply codes such as `552-5.7.0` survive)."""
    s = m.group()
    return "#" if sum(c.isdigit() for c in s) >= 3 and not s.strip("0123456789.-_") == "" else s


def _octal_to_text(m: re.Match) -> str:
    raw = bytes(int(m.group()[i + 1:i + 4], 8) for i in range(0, len(m.group()), 4))
    return raw.decode("utf-8", "replace")


def normalise(text: str | None) -> str:
    """The text the phrase tables see: placeholders for variable parts, lower case, one space.

    Also undoes the MTAs' escapes: qmail's `_` for spaces, sendmail's `\\ooo` octal for non-ASCII
    bytes of a reply (a Japanese reply arrives as `\\346\\214\\207...`), and NFKC-normalises
    non-ASCII text (half-width katakana, full-width digits).
    """
    if not text:
        return ""
    text = _quick_normalise(text)
    if " " not in text and "_" in text:  # qmail escaping: space and unprintables -> '_'
        text = text.replace("_", " ")
    if "\\" in text:
        text = _OCTAL_RUN.sub(_octal_to_text, text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    text = _BARE_IP.sub("ip", text)
    text = _IPV6.sub("ip", text)
    text = _NAMED_DOMAIN.sub(r"\1x", text)  # the looked-up (recipient's) domain
    text = _TOKEN.sub(_id_to_hash, text)
    text = _LONG_NUMBER.sub("#", text)
    if "giving up on " in text:  # qmail's framing after every remote failure: no evidence
        text = _QMAIL_GIVING_UP.sub(" ", text)
    return " ".join(text.split())


# (text lower-cased, white space folded) -> the SMTP phase it names: log lines and bounce mails
# (pipeline.sender.bounces) read the phase with the same words
PHASE_HINTS = (
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
    for hint, phase in PHASE_HINTS:
        if hint in text:
            return phase
    return None


_HOST_SAID = re.compile(r"\bhost ([a-z0-9][a-z0-9.\-]*[a-z])\[ip\]")


# ----------------------------------------------------------------------------- the decision
@lru_cache(maxsize=CACHE_SIZE)
def _classify_quick(status, quick_text, dsn, reply_code, phase, mta, key) -> Classification:
    return _classify_normalised(status, normalise(quick_text), dsn or None, reply_code or None,
                                phase or None, mta or None, key)


@lru_cache(maxsize=CACHE_SIZE)
def _classify_normalised(status, text, dsn, reply_code, phase, mta, key) -> Classification:
    ctx = make_context(status, text, dsn, reply_code, phase, mta, key)
    reason = decide_explained(ctx).reason
    hard = is_hard(reason, status, ctx.reply_code, _dsn_for_class(ctx, dsn))
    return Classification(reason, SCOPES[reason], hard)


def _dsn_for_class(ctx: Context, dsn: str | None) -> str | None:
    return ctx.dsn or (dsn if dsn and dsn[:1] in "45" else None)


def make_context(status, text, dsn=None, reply_code=None, phase=None, mta=None, key=None) -> Context:
    """Context for the reason modules from a normalised text and the event's other fields."""
    code, enhanced = parse_reply(text)
    if reply_code is None:
        reply_code = code
    if reply_code is not None and not 400 <= reply_code < 600:
        reply_code = None  # e.g. sendmail's reply=221 Bye after a 421: not the refusal
    if mta == "sendmail" and text in _SENDMAIL_OWN_WORDS:
        text = ""  # sendmail's stat= for any 550/551/553 at RCPT, any other 5xx: its dsn= decides
    relayed = _RELAYED_REPLY.match(text)
    if relayed:  # "5.1.0 - Unknown address error 550-'...'": the relaying service's label is no evidence
        text = text[relayed.end():]
    trusted, synthesised = enhanced, None
    if dsn and dsn[:1] in "45" and trusted is None:
        table = SYNTHESISED.get(mta or "", {})
        if mta == "sendmail" or dsn in table or dsn.endswith(".0.0"):
            synthesised = dsn  # the MTA's own mapping: only what SYNTHESISED says it carries
        else:
            trusted = dsn  # Postfix/qmail dsn= carries the remote's (or the MTA's real) code
    dsn_class = (trusted or dsn or "")[:1] or (str(reply_code)[0] if reply_code else None)
    t = _TABLES or tables()
    if key is None and "host " in text:
        host = _HOST_SAID.search(text)
        if host:
            key = t.providers.relay_provider_key(host.group(1))
    return Context(
        remote_reply=code is not None,
        text=text,
        status=status,
        phase=phase or phase_from_text(text),
        reply_code=reply_code,
        dsn=trusted,
        dsn_class=dsn_class,
        mta=mta,
        synthesised=synthesised,
        provider=t.providers.period(key),
    )


def _reason_from_code(dsn: str | None) -> str | None:
    """RFC 3463 (and RFC 7505/7372/8098 additions): the reason an enhanced code alone gives."""
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
    if subject.startswith("3."):
        return "system"
    return None


def _reason_from_synthesised(ctx: Context) -> str | None:
    code = ctx.synthesised
    if not code:
        return None
    table = SYNTHESISED.get(ctx.mta or "", {})
    if code in table:
        return table[code]
    if code.endswith(".0.0"):
        return None
    return _reason_from_code(code)


def decide(ctx: Context) -> str:
    """The reason for a context (uncached; classify() is the cached entry point)."""
    return decide_explained(ctx).reason


def decide_explained(ctx: Context) -> Decision:
    """The precedence of evidence, in one place (docs/classifier.md, "Precedence")."""
    if ctx.status == "sent":
        return Decision("delivered", "delivered", "status=sent")
    t = _TABLES or tables()
    notes: list[str] = []
    text = ctx.text

    # 2. phrases in ORDER: the first specific one; remember the generic ones
    said = said_phrase = None
    weak_hits: list[tuple[str, str]] = []
    for module in ORDER[1:]:
        name = module.NAME
        hit = t.strong[name].which(text)
        if hit is None:
            extra = getattr(module, "also", None)
            hit = extra(ctx) if extra else None
        if hit is not None and not _vetoed(module, ctx):
            said, said_phrase = name, hit
            break
        weak = t.weak[name].which(text)
        if weak is not None and not _vetoed(module, ctx):
            weak_hits.append((name, weak))
    hinted, hinted_phrase = _generic_hint(weak_hits, text, notes, ctx)

    code_reason = _reason_from_code(ctx.dsn)
    x7 = ctx.dsn is not None and ctx.dsn[2:4] == "7."
    decision: Decision | None = None
    if said == "user_unknown" and ctx.dsn_subject == "1.3" and said_phrase in _INVALID_WORDS:
        # "553 5.1.3 <x..y@example.jp>... Invalid address": the server's own code says malformed
        notes.append(f"{said_phrase!r} read with the server's code {ctx.dsn}: a malformed address")
        said, said_phrase = "syntax", ctx.dsn
    if said == "mailbox_disabled" and ctx.dsn_class == "4" and (temporary := _temporary_words(text)):
        # "450 4.2.0 … Mailbox is temporarily locked", "… temporarily disabled, please retry later": a
        # temporary refusal that itself says the mailbox will take mail again (a 5xx "temporarily
        # inactive" is a permanent refusal and still counts)
        notes.append(f"{said_phrase!r} in a temporary refusal with {temporary!r}: the mailbox is alive")
        said = said_phrase = None
    if said is not None:
        decision = Decision(said, "phrase", said_phrase)
        # 3. an explicit X.7.x / 4.7.x code vetoes a recipient reason unless the words say unknown user
        if said in X7_VETOED and x7 and said != "user_unknown":
            notes.append(f"{said!r} words vetoed by the policy code {ctx.dsn}")
            decision = Decision(code_reason or "policy", "code", ctx.dsn)
    elif ctx.reply_code == 421 and hinted is None:
        pass  # carriers.md: a bare 421 means "come back slower" whatever its X.7.0 says (_fallback)
    elif code_reason in _TRANSIENT_CODE_VETOED and ctx.dsn[:1] == "4" and hinted in (None, code_reason) \
            and (temporary := _temporary_words(text)):
        # "450 4.2.1 Mailbox temporarily unavailable, try again later": RFC 3463's transient X.2.1 /
        # X.1.1 and the server's own "try again": the mailbox will take mail again; nothing is known
        # about the address (the reply-code fallback decides)
        notes.append(f"the transient code {ctx.dsn} with {temporary!r}: not evidence about the address")
    elif code_reason is not None:
        if hinted is not None and hinted != code_reason:
            notes.append(f"generic words {hinted_phrase!r} ({hinted}) yield to the code {ctx.dsn}")
        decision = Decision(code_reason, "code", ctx.dsn)
    elif hinted is not None:
        decision = Decision(hinted, "weak-phrase", hinted_phrase)
    elif ctx.mta == "sendmail" and ctx.remote_reply:
        # sendmail's dsn= may be its mapping of the reply code and command: evidence only where the
        # line has no words of the remote (no reply=); with the reply's words it adds nothing that
        # a Postfix line of the same reply would not show
        if ctx.synthesised and _reason_from_synthesised(ctx):
            notes.append(f"sendmail's dsn={ctx.synthesised} may be its own mapping of the reply code: "
                         "the reply's words decide")
    else:
        synth = _reason_from_synthesised(ctx)
        if synth is not None:
            decision = Decision(synth, "synthesised-code", f"{ctx.mta} dsn={ctx.synthesised}")
    if decision is not None and decision.reason in X7_VETOED and x7 and decision.rule != "phrase" \
            and decision.reason != code_reason:
        decision = Decision(code_reason or "policy", "code", ctx.dsn)

    # a 421 closes the session (RFC 5321: "service not available, closing transmission channel", a
    # reply to any command): the MTA defers every recipient still in the session with it, so its
    # words ("user unknown, too many errors, closing connection") are no evidence about one address
    if decision is not None and decision.reason in RECIPIENT_REASONS and ctx.reply_code == 421:
        notes.append(f"{decision.reason!r} ({decision.evidence}) in a 421: the session's end, not the address's")
        decision = Decision("rate_limited", "reply-code", "421 closes the session")

    # 5. the SMTP phase
    if decision is not None and decision.reason in RECIPIENT_REASONS:
        decision = _phase_rule(ctx, decision, notes)
    elif decision is not None and decision.reason in ("policy", "filtered") and ctx.phase in ("connect", "helo"):
        # before we named any sender or recipient, a policy or filter refusal can only be about our host
        notes.append(f"{decision.reason} refusal at {ctx.phase}: our IP or host")
        decision = Decision("blocked", "phase", f"refused at {ctx.phase}")

    # 6. expiry
    reason = decision.reason if decision else None
    from_text = decision is not None and decision.rule in ("phrase", "weak-phrase")
    if _expired.match(ctx) and _expiry_wins(ctx, reason, from_text):
        return Decision("expired", "expiry", "status=expired" if ctx.status == "expired" else "expiry words",
                        tuple(notes))
    if decision is None:
        fb = _fallback(ctx)
        if fb is not None:
            return Decision(fb[0], fb[1], fb[2], tuple(notes))
        return Decision("undefined", "none", "no phrase, code or phase rule applies", tuple(notes))
    return decision._replace(notes=tuple(notes)) if notes else decision


# user_unknown's generic wording ("Recipient address rejected:", "mailbox unavailable") is a prefix:
# what follows it says why. It decides only when nothing else in the text speaks.
_TEMPORARY_WORDS = ("try again later", "try later", "please try again", "retry later", "temporarily",
                    "try again in")
# Unknown-user phrases that also describe a malformed address: the server's X.1.3 decides.
_INVALID_WORDS = frozenset({"invalid address", "invalid recipient", "invalid mailbox", "illegal address",
                            "invalid e-mail address", "invalid email address", "bad recipient",
                            "bad-recipient", "invalid user"})


_PREFIX_DETAIL = re.compile(r"recipient (?:address )?rejected ?: (.*?)(?: \(in reply to |$)")
_WORD = re.compile(r"[^\W\d_]{2,}")


# Codes whose transient form with temporary words says nothing about the address (decide_explained).
_TRANSIENT_CODE_VETOED = frozenset({"user_unknown", "mailbox_disabled"})


def _temporary_words(text: str) -> str | None:
    return next((w for w in _TEMPORARY_WORDS if w in text), None)


def _generic_hint(weak_hits: list[tuple[str, str]], text: str, notes: list[str],
                  ctx: Context | None = None) -> tuple[str | None, str | None]:
    """The generic reason to fall back on (or None), from the generic phrases found in ORDER."""
    if not weak_hits:
        return None, None
    name, phrase = weak_hits[0]
    if name != "user_unknown":
        return name, phrase
    others = [h for h in weak_hits[1:] if h[0] != "user_unknown"]
    if others:
        notes.append(f"the prefix {phrase!r} yields to the words that follow it: {others[0][1]!r} ({others[0][0]})")
        return others[0]
    temporary = _temporary_words(text)
    if temporary:
        notes.append(f"the prefix {phrase!r} with {temporary!r}: a temporary refusal, not a missing mailbox")
        return None, None
    if ctx is not None and ctx.dsn_class == "4":
        # "450 Requested mail action not taken: mailbox unavailable" is RFC 5321's own text for 450
        # ("e.g., mailbox busy or temporarily blocked for policy reasons"): the prefix alone counts
        # only in a permanent refusal
        notes.append(f"the prefix {phrase!r} in a temporary ({ctx.dsn_class}xx) refusal: not a missing mailbox")
        return None, None
    detail = _PREFIX_DETAIL.search(text)
    if detail and _WORD.search(detail.group(1)):
        # "Recipient address rejected: only internal senders are permitted": the server said why, in
        # words we do not know; the built-in dead-address details all name themselves ("User unknown
        # in local recipient table", "undeliverable address: ...")
        notes.append(f"the prefix {phrase!r} gives a reason we do not know: {detail.group(1)[:60]!r}")
        return None, None
    return name, phrase


def _vetoed(module, ctx: Context) -> bool:
    veto = getattr(module, "veto", None)
    return bool(veto and veto(ctx))


def _phase_rule(ctx: Context, decision: Decision, notes: list[str]) -> Decision:
    """Recipient reasons need a phase that can be about the recipient (cause: phase ignored)."""
    phase = ctx.phase
    if any(m in ctx.text for m in _REFUSED_AT_RCPT) and "rcpt" not in (phase or "") and decision.reason == "user_unknown":
        notes.append(f"the transcript shows the recipient was refused at RCPT TO (phase given: {phase})")
        return decision
    if phase in ("connect", "helo") and decision.reason == "host_unknown" and ctx.reply_code in _NO_MAIL_CODES:
        # RFC 7504 521 / RFC 7505 556 at the greeting: the destination takes no mail at all
        notes.append(f"{ctx.reply_code} at {phase}: the host accepts no mail (RFC 7504/7505), for every address of the domain")
        return decision
    if phase in _PRE_RCPT:
        fb = _fallback(ctx, phase_only=True) or ("sender_domain" if phase == "mail" else "blocked", "phase", phase)
        notes.append(f"{decision.reason!r} ({decision.evidence}) refused at {phase}: about us, not the address")
        return Decision(fb[0], "phase", f"refused at {phase}")
    if decision.reason == "host_unknown" and phase in AFTER_DATA and ctx.dsn_subject != "1.2":
        # the recipient was accepted at RCPT TO, so its domain exists and takes mail: a domain said
        # not to exist after DATA is another one (our header From: "550 Header From domain does not
        # exist", "553 <example.jp> does not exist"); only the server's own X.1.2 still says so
        notes.append(f"{decision.evidence!r} after DATA: the recipient's domain was accepted at RCPT TO")
        return Decision("undefined", "phase", "a domain refused after DATA is not the recipient's")
    if decision.reason != "user_unknown":
        return decision
    p: Period = ctx.provider or DEFAULT_PERIOD
    if phase in AFTER_DATA:
        rule = p.unknown_user_after_data
        if rule == "user_unknown":
            return Decision("user_unknown", "provider", f"{p.label()}: unknown user after DATA is a dead address",
                            (p.note,) if p.note else ())
        if rule == "by_code" and ctx.dsn_subject in _EXPLICIT_UNKNOWN_CODES:
            notes.append(f"after DATA, but the server's own code {ctx.dsn} says no such mailbox")
            return decision
        why = (f"{p.label()}: unknown user after DATA is a reception filter" if rule == "filtered"
               else "unknown user after DATA without an X.1.1 code: a filter, not proof of a dead address")
        return Decision("filtered", "provider" if rule == "filtered" else "phase", why, (p.note,) if p.note else ())
    if phase is None and p.unknown_user_without_phase == "filtered" and ctx.dsn_subject not in _EXPLICIT_UNKNOWN_CODES:
        return Decision("filtered", "provider", f"{p.label()}: unknown user without the SMTP phase is not proof",
                        (p.note,) if p.note else ())
    return decision


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


def _fallback(ctx: Context, phase_only: bool = False) -> tuple[str, str, str] | None:
    """No phrase and no code: what the SMTP phase (and the reply code) alone imply."""
    permanent = ctx.dsn_class == "5" or (ctx.reply_code or 0) >= 500
    if ctx.phase in ("connect", "helo") and permanent:
        return "blocked", "phase", f"permanent refusal at {ctx.phase}"
    if ctx.phase == "mail" and permanent:
        return "sender_domain", "phase", "permanent refusal at MAIL FROM"
    if not phase_only and (ctx.reply_code == 421 or (ctx.reply_code == 450 and ctx.dsn is None)):
        return "rate_limited", "reply-code", str(ctx.reply_code)
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
    classify_by_key.cache_clear()
    _classify_quick.cache_clear()
    _classify_normalised.cache_clear()
