"""Recipient addresses: syntax check, normalisation and the enqueue-time screening.

Reads nothing and writes nothing itself; `check_recipients` is called by `queue.enqueue_job`
(via `send enqueue` and intake) with the current suppression set.

Syntax is deliberately permissive in the local part: docomo and au handed out addresses such as
`taro..yamada.@docomo.ne.jp` until 2009. They are not RFC 5322 dot-atoms, but they are live
mailboxes, so they are valid here; on the wire the local part is quoted (`smtp_address`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..core.idn import domain_problem
from ..store.records import canonical_address

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_LOCAL_LOOSE = re.compile(rf"^[{_ATEXT}.]+$")
_DOT_ATOM = re.compile(rf"^[{_ATEXT}]+(\.[{_ATEXT}]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def address_problem(address: str) -> str | None:
    """None when `address` (already canonical: records.canonical_address) is a usable recipient,
    else a short reason."""
    if not address:
        return "empty"
    if any(c in address for c in "\r\n\t ") or any(ord(c) < 32 or ord(c) == 127 for c in address):
        return "contains spaces or control characters"
    if any("\uff01" <= c <= "\uff5e" for c in address):   # ｔａｒｏ＠ｄｏｃｏｍｏ: typed with a Japanese input method
        return "full-width characters (no carrier delivers to them: type the address in half-width)"
    if address.count("@") != 1 and not address.startswith('"'):
        return "needs exactly one @"
    local, _, domain = address.rpartition("@")
    if not local:
        return "no local part"
    if len(local) > 64 or len(address) > 254:
        return "too long"
    if not _LOCAL_LOOSE.match(local):
        return "invalid characters in local part"
    if not domain.isascii():   # canonical_address could not give it an A-label form
        return f"invalid internationalised domain: {domain_problem(domain) or 'not convertible to A-labels'}"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(lbl) for lbl in labels) or not labels[-1].isalpha():
        return "invalid domain"
    return None


def smtp_address(address: str) -> str:
    """The address as RFC 5321 wants it: `"taro..yamada."@docomo.ne.jp` when not a dot-atom."""
    local, _, domain = address.rpartition("@")
    if _DOT_ATOM.match(local):
        return address
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"@' + domain


@dataclass
class Screened:
    """The outcome of screening one recipient list."""

    accepted: list[str] = field(default_factory=list)   # canonical, unique, not suppressed
    suppressed: list[str] = field(default_factory=list)
    duplicates: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (raw, reason)

    def summary(self) -> dict[str, int]:
        return {
            "accepted": len(self.accepted),
            "suppressed": len(self.suppressed),
            "duplicates": self.duplicates,
            "invalid": len(self.invalid),
        }

    def invalid_reasons(self) -> Counter:
        return Counter(reason for _, reason in self.invalid)


def check_recipients(raw_addresses, suppressed: frozenset[str] | set[str]) -> Screened:
    """Syntax, duplicates (after normalisation to the canonical form: `taro@例え.jp` and
    `taro@xn--r8jz45g.jp` are one address), then the suppression list, in input order."""
    out = Screened()
    seen: set[str] = set()
    for raw in raw_addresses:
        addr = canonical_address(raw)
        problem = address_problem(addr)
        if problem:
            out.invalid.append((raw, problem))
            continue
        if addr in seen:
            out.duplicates += 1
            continue
        seen.add(addr)
        if addr in suppressed:
            out.suppressed.append(addr)
        else:
            out.accepted.append(addr)
    return out
