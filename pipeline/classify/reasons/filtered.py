"""filtered: the receiver (usually the handset's own settings) refuses mail from our domain after
accepting the address. On Japanese carriers this is the reply to end of DATA:
docomo `550 Unknown user x@docomo.ne.jp` and au `550 : User unknown` (empty address) after DATA
mean "filtered by the handset", not "no such user" (carriers.md). The address is alive: sender scope.

Phrases: own list plus Sisimai's Filtered wording (BSD-2, sisimai/p5-sisimai).
"""

from . import user_unknown
from ._phrases import AFTER_DATA, Phrases, R

NAME = "filtered"
DESCRIPTION = "the recipient's own filter refuses our domain; the address itself may be fine"
SCOPE = "sender"
PHRASES = [
    "message filtered",
    "user reject",
    "user refuses to receive",
    "refuse to receive mail",
    "refused due to recipient preferences",
    "is only accepting mail from specific",
    "has restricted sms e-mail",
    "you have been blocked by the recipient",
    "blocked by the recipient",
    "is not accepting any mail",
    "message rejected due to user rules",
    "account is protected by",
    "receiver refuses mail from your domain",
    "refuses mail from your domain",
    "recipient has blocked",
    "domain filter",
    "address filter",
    # au: the handset filter answers with an empty address in place of the recipient
    R(r"(?:^|\s):\s*user unknown"),  # "550 : User unknown", "-> : User unknown"
]
DSN: tuple[str, ...] = ()

_m = Phrases(PHRASES)

# Enhanced codes that explicitly say "no such mailbox": they win over the phase rule.
_EXPLICIT_UNKNOWN = ("1.1", "1.10")
# A transcript showing the refusal came at RCPT TO (DATA then failed for want of recipients).
_REFUSED_AT_RCPT = ("no valid recipients", "rcpt command", "need rcpt", "rcpt first", "rcpt commands were rejected")


def match(ctx) -> bool:
    if _m(ctx.text):
        return True
    # "Unknown user" after DATA: the address was accepted at RCPT TO, so the refusal is a filter.
    return (
        ctx.phase in AFTER_DATA
        and ctx.dsn_subject not in _EXPLICIT_UNKNOWN
        and user_unknown.phrase_match(ctx.text)
        and not any(m in ctx.text for m in _REFUSED_AT_RCPT)
    )
