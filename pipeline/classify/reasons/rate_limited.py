"""rate_limited: we send too fast (too many connections/messages, 421, greylisting). Slow down;
never the address's fault (carriers.md: "421 / 450 / too many connections / rate limit").

Phrases: own list plus Sisimai's TooManyConn/Speeding wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "rate_limited"
DESCRIPTION = "we are sending too fast or too many at once: slow down"
SCOPE = "sender"
PHRASES = [
    "receiving mail too quickly",            # Gmail / Yahoo 4.2.1 / 450: the recipient gets too much
    "receiving mail at a rate that prevents additional messages",  # Gmail 4.2.1 / 5.2.1
    "is receiving mail at a rate",
    "too many connections",
    "too many concurrent",
    "too many smtp sessions",
    "too many sessions",
    "too many simultaneous",
    "too many parallel",
    "connection rate limit",
    "connection limit",
    "rate limit",
    "rate-limit",
    "ratelimit",
    "throttl",
    R(r"\b(?:connection|connections|session|ip|rate|hourly|message rate|submission)\s+quota\b"),
    "submissionquotaexceeded",              # Exchange Online: our sending account's quota (5.2.2)
    R(r"\bquota (?:exceeded |reached )?for (?:this|your|the sending) (?:ip|host|network|server)\b"),
    "server busy. please try again later",  # Microsoft 4.7.500-699: throttled
    "too fast",
    "slow down",
    "slower",
    "sending rate",
    "exceeded the rate",
    "max emails per hour",
    "messages per hour",
    "messages per minute",
    "too many messages from",
    "too many messages in this connection",
    "too many mails",
    "too many emails",
    "daily message quota exceeded",
    "sending quota exceeded",
    R(r"\b(?:daily|hourly|user|account) sending limit"),  # Gmail 550 5.4.5 "Daily user sending limit exceeded"
    "maximum sending rate",
    "at maximum connection limit",
    "per-domain connection limit",
    "too many errors from your ip",
    "trop de connexions",
    "greylist",
    "graylist",
    "grey-list",
    "gray-list",
    "frequency limited",
    "frequency limit",
    "this hour",
    "per hour",
]
DSN: tuple[str, ...] = ()
REPLY_CODES = (421,)  # a banner-level "come back later": used as a fallback in classify

def veto(ctx) -> bool:
    # "rate limited due to IP reputation": the cause is reputation (blocked), not our pace
    return "reputation" in ctx.text
