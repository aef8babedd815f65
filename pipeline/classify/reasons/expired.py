"""expired: the MTA gave up after retrying for its queue lifetime (Postfix status=expired, qmail
"this message has been in the queue too long", sendmail "Cannot send message for 5 days").

classify() first looks for something specific in the (last deferral's) text; only when that is
absent or merely a network/system error does the event stay "expired". qmail's "Giving up on <ip>"
appears in every remote failure and is deliberately not an expiry phrase.

Phrases: own list plus Sisimai's Expired wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import Phrases, R

NAME = "expired"
DESCRIPTION = "the MTA gave up retrying after its queue lifetime"
SCOPE = "unknown"
PHRASES = [
    "in the queue too long",
    "queue too long",
    "too long in queue",
    "delivery time expired",
    "message expired",
    "expired after",
    "retry timeout exceeded",
    "retry time not reached for any host after a long failure period",
    "was not reachable within the allowed queue period",
    "could not be delivered for more than",
    "cannot send message for",
    "message timed out",
    "has not been collected after",
    "maximum time in queue",
    "queue lifetime",
    "envelope expired",
    "after multiple retries",
    "could not find a gateway for",
    "was not delivered within",
    "has been delayed",
    "did not accept our requests to connect",
    R(r"\b(?:failed|after) \d+ (?:attempts|tries)\b"),
    R(r"\bfailed to deliver to domain\b.{0,80}\bafter \d+ tries"),
]
DSN = ("4.4.7", "5.4.7")

_m = Phrases(PHRASES)


def phrase_match(text: str) -> bool:
    return _m(text)


def match(ctx) -> bool:
    return ctx.status == "expired" or _m(ctx.text)
