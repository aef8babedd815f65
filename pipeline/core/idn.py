"""Internationalised domain names (IDN): the one canonical spelling of an address's domain.

A mailbox at an IDN domain can be written with the domain in Unicode (the U-label form,
`taro@例え.jp`) or in ASCII (the A-label form, `taro@xn--r8jz45g.jp`, what DNS and SMTP without
SMTPUTF8 carry). Both are the same mailbox, so everything that keys on an address (the queue's
duplicates and suppression check, the suppression list, the event store's recipient and
recipient_domain) keys on ONE form: the domain in A-label form, lower-case
(`canonical_address` in pipeline/store/records.py = normalise_address + `ascii_address`).
What an operator reads (the CSV export's `address_unicode` column) is `unicode_address`.

The conversion is Python's own `encodings.idna` (IDNA2003: nameprep, then punycode), with no
package of its own. IDNA2003 and IDNA2008 (what registries such as JPRS and current MTAs use)
give the same A-label for every name except those holding one of the four "deviation" characters
(ß, final sigma ς, ZWJ, ZWNJ), which IDNA2003 maps away and IDNA2008 keeps: such a domain is
refused (`IdnError`, the intake names it invalid) rather than keyed or mailed under a name that
may not be the owner's; its A-label form is accepted as it is. Japanese names (kanji, kana,
the ideographic full stop 。 as a dot) convert alike under both.

Pure functions, no I/O; ASCII domains (every carrier's) take a fast path and are only
lower-cased.
"""

from __future__ import annotations

import re
from functools import lru_cache

# the dots IDNA reads as label separators (UTS 46 / RFC 3490 3.1): . 。 ． ｡
_DOTS = re.compile("[.\u3002\uff0e\uff61]")
# the characters IDNA2003 maps away and IDNA2008 keeps: their A-labels differ between the two
DEVIATIONS = {"\u00df": "ß", "\u03c2": "ς", "\u200c": "ZWNJ", "\u200d": "ZWJ"}
ACE = "xn--"


class IdnError(ValueError):
    """The domain is not a valid internationalised name (the message says why)."""


def ascii_domain(domain: str) -> str:
    """`domain` in A-label form, lower-case: `例え.JP` -> `xn--r8jz45g.jp`. An ASCII domain is
    only lower-cased (its xn-- labels are kept as written). IdnError when it cannot be converted."""
    if domain.isascii():
        return domain.lower()
    return _converted(domain)


@lru_cache(maxsize=65536)   # a log repeats its few IDN domains: each is converted once
def _converted(domain: str) -> str:
    if any("\uff01" <= c <= "\uff5e" for c in domain):   # ｄｏｃｏｍｏ: typed with a Japanese input method
        raise IdnError("full-width characters: type the domain in half-width")
    bad = sorted({name for ch, name in DEVIATIONS.items() if ch in domain})
    if bad:
        raise IdnError(f"holds {', '.join(bad)}, whose A-label differs between IDNA2003 and IDNA2008: "
                       "write the domain in its xn-- form")
    labels = _DOTS.split(domain)
    if labels and labels[-1] == "":
        labels.pop()   # a root dot
    out = []
    for label in labels:
        if label.isascii():
            out.append(label.lower())
            continue
        try:
            out.append(label.encode("idna").decode("ascii").lower())
        except UnicodeError as exc:
            reason = str(exc).split(": ")[-1] if str(exc) else "not a valid IDN label"
            raise IdnError(f"label {label!r} is not a valid internationalised name ({reason})") from None
    return ".".join(out)


def unicode_domain(domain: str) -> str:
    """`domain` with its A-labels in Unicode, for reading: `xn--r8jz45g.jp` -> `例え.jp`. A label
    that does not decode is left as it is (never an error: this is only for display)."""
    if ACE not in domain.lower():
        return domain
    out = []
    for label in domain.split("."):
        if label.lower().startswith(ACE):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass
        out.append(label)
    return ".".join(out)


def ascii_address(address: str) -> str:
    """A normalised address with its domain in A-label form; unchanged when it is ASCII, has no
    @, or its domain cannot be converted (the recipient check then names the reason,
    `domain_problem`)."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except IdnError:
        return address


def readable_ascii_domain(domain: str) -> str:
    """`domain` in A-label form, or as it is when it is no valid IDN name (never an error: for
    reading rows already stored, as ascii_address does for an address)."""
    try:
        return ascii_domain(domain)
    except IdnError:
        return domain


def domain_problem(domain: str) -> str | None:
    """None when `domain` converts to an A-label form, else the reason it does not."""
    try:
        ascii_domain(domain)
    except IdnError as exc:
        return str(exc)
    return None


def unicode_address(address: str) -> str:
    """The address with its domain's A-labels shown in Unicode (for people, never as a key)."""
    local, at, domain = address.rpartition("@")
    return f"{local}@{unicode_domain(domain)}" if at else address
