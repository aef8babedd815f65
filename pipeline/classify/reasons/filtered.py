"""filtered: the receiver (usually the handset's own settings) refuses mail from our domain after
accepting the address. On Japanese carriers this is the reply to end of DATA:
docomo `550 Unknown user x@docomo.ne.jp` and au `550 : User unknown` (empty address) after DATA
mean "filtered by the handset", not "no such user" (carriers.md). The address is alive: sender scope.
"Unknown user" words after DATA become `filtered` by the phase rule (classifier._phase_rule, with
the provider's data); this module holds the wording that says "filter" by itself.

Phrases: own list plus Sisimai's Filtered wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

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
    R(r"\b(?:do|does|will) not accept (?:any )?(?:mail|e-?mails?|messages) from\b"),  # "... from example.jp" (from our IP: blocked)
    "resolver.rst.notauthorized",           # Exchange: the recipient accepts mail only from some senders
    "restrictedtorecipientspermission",
    "address filter",
    # au: the handset filter answers with an empty address in place of the recipient
    R(r"(?:^|\s):\s*user unknown"),  # "550 : User unknown", "-> : User unknown"
]
DSN: tuple[str, ...] = ()
