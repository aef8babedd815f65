"""mailbox_disabled: the account exists but is suspended, disabled, inactive, or has moved.

Phrases: own list plus Sisimai's Suspend/HasMoved wording (BSD-2, sisimai/p5-sisimai).
Postfix's own "delivery temporarily suspended" is about our queue, not the account: excluded.
"""

from ._phrases import Phrases, R

NAME = "mailbox_disabled"
DESCRIPTION = "the account exists but is suspended, disabled or has moved"
SCOPE = "recipient"
PHRASES = [
    "invalid/inactive user",
    "is a deactivated mailbox",
    "deactivated account",
    "account that you tried to reach is disabled",
    "account has been disabled",
    "account is disabled",
    "account disabled",
    "account is inactive",
    "account inactive",
    "inactive account",
    "inactive user",
    "inactive mailbox",
    "mailbox is inactive",
    "mailbox disabled",
    "mailbox is disabled",
    "mailbox currently suspended",
    "mailbox unavailable or access denied",
    "account suspended",
    "account is suspended",
    "account has been suspended",
    "suspended account",
    "user suspended",
    "recipient suspend",
    "account is locked",
    "account has been locked",
    "account expired",
    "account closed",
    "account has been closed",
    "disabled or discontinued",
    "no longer active",
    "dd x@x is no longer valid",            # Yahoo Inc.: a closed account (Sisimai Rhost/YahooInc: suspend)
    "has been replaced by",
    "no longer on server",
    "has moved",
    "user not local; please try",           # RFC 5321's 551: the user has moved (Sisimai HasMoved)
    "user account disabled",
    "archived recipient",                   # Sisimai Suspend
    "boite du destinataire archivee",
    " is currently suspended",
    "user is terminated",
    "temporarily inactive",
    "extended inactivity",                  # AOL/Yahoo: "Due to extended inactivity new mail is not ... accepted"
    R(r"\b(?:account|mailbox|user|recipient)\b[^.;]{0,40}\b(?:suspended|disabled|deactivated|frozen|locked)\b"),
    R(r"\b(?:account|mailbox)\b[^.;]{0,20}\bis blocked\b"),
]
DSN = ("5.2.1", "4.2.1", "5.1.6", "5.7.13")

_m = Phrases(PHRASES)


def veto(ctx) -> bool:
    t = ctx.text
    return "delivery temporarily suspended" in t and not _m(t.replace("delivery temporarily suspended", ""))
