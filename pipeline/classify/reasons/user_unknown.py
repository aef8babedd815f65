"""user_unknown: the address's mailbox does not exist (docomo `550 Unknown user x@docomo.ne.jp`,
au `550 <x@au.com>: User unknown`, SoftBank `550 Invalid recipient: <x>` at RCPT TO).

Only a refusal before DATA (or with an explicit X.1.1 code) means "no such user": the same words
after DATA are a filter (see filtered.py, tried first).

Phrases: own list plus Sisimai's UserUnknown wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import Phrases, R

NAME = "user_unknown"
DESCRIPTION = "the mailbox does not exist"
SCOPE = "recipient"
PHRASES = [
    "user unknown",
    "unknown user",
    "unknown recipient",
    "unknown mailbox",
    "unknown address",
    "unknown e-mail address",
    "unknown email address",
    "unknown local part",
    "unknown local-part",
    "invalid recipient",
    "invalid mailbox",
    "invalid user",
    "invalid address",
    "invalid e-mail address",
    "invalid email address",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no such address",
    "no such person",
    "no such account",
    "no mailbox here",
    "no mailbox found",
    "no mailbox by that name",
    "no mail box available",
    "no account by that name",
    "no valid recipients",
    "not a valid mailbox",
    "not a valid user",
    "not a known user",
    "not a local address",
    "not an active address",
    "not our customer",
    "user not found",
    "user not known",
    "user not active",
    "user not exist",
    "user doesn't exist",
    "user does not exist",
    "user doesn't have a",
    "user missing home directory",
    "recipient not found",
    "recipient unknown",
    "recipient does not exist",
    "recipient not exist",
    "recipient is not local",
    "recipient rejected",
    "recipient address rejected",
    "recipientnotfound",
    "recipnotfound",
    "mailbox not found",
    "mailbox not present",
    "mailbox does not exist",
    "mailbox unavailable",
    "mailbox is unavailable",
    "mailbox invalid",
    "address does not exist",
    "address unknown",
    "address not found",
    "address couldn't be found",
    "address could not be found",
    "account does not exist",
    "account that you tried to reach does not exist",
    "email account does not exist",
    "bad destination mailbox",
    "bad recipient",
    "bad-recipient",
    "badrcptto",
    "non-existent user",
    "nonexistent user",
    "non existent user",
    "there is no one at this address",
    "this address no longer accepts mail",
    "no longer valid",
    "archived recipient",
    "destination addresses were unknown",
    "destination server rejected recipients",
    "can't accept user",
    "cannot accept user",
    "no existe",
    "was not found in",
    "requested action not taken: mailbox unavailable",
    R(r"\brcpt <[^>]*> does not exist"),
    R(r"<[^>]*> not found"),
    R(r"\bnot listed in\b.{0,40}\b(?:directory|address book)"),
    R(r"\buser\b[^.;]{0,60}\b(?:does not exist|was not found|not found)\b"),
    R(r"\bmailbox\b[^.;]{0,60}\bdoes not exist\b"),
]
DSN = ("5.1.1", "4.1.1", "5.1.10")  # 5.1.10: Microsoft "RecipientNotFound"; null MX says so in words

_m = Phrases(PHRASES)


def phrase_match(text: str) -> bool:
    return _m(text)


def match(ctx) -> bool:
    return _m(ctx.text)
