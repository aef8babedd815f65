"""host_unknown: the recipient's domain does not exist or accepts no mail (no MX/A, null MX,
NXDOMAIN). A temporary DNS failure ("try again") is network, not this.

Phrases: own list plus Sisimai's HostUnknown/NotAccept wording (BSD-2, sisimai/p5-sisimai).
"""

import re

from ._phrases import Phrases, R

NAME = "host_unknown"
DESCRIPTION = "the recipient's domain does not exist or accepts no mail"
SCOPE = "recipient"
PHRASES = [
    "host or domain name not found",
    "domain name not found",
    "domain not found",
    "domain does not exist",
    "domain doesn't exist",
    "domain is not reachable",
    "domain must exist",
    "no such domain",
    "unknown domain",
    "unknown host",
    "host unknown",
    "host not found",
    "couldn't find any host named",
    "could not find any host named",
    "unrouteable address",
    "unroutable address",
    "name or service not known",
    "mail domain mentioned in email address is unknown",
    "the account or domain may not exist",
    "null mx",
    "nullmx",
    "does not accept mail",
    "accepts no mail",
    "smtp protocol returned a permanent error",
    "no mx record",
    "no mx found",
    "indicated no smtp service",
    "no mx or a record",
    "no mail exchanger",
    "nxdomain",
    "invalid domain",
    "illegal host/domain name",
    "couldn't find a mail exchanger or ip address",   # qmail (#5.4.4); with (#4.4.1) it is temporary
    R(r"\bdomain\b[^.;]{0,60}\b(?:does not exist|not exist|is not valid)\b"),
]
# 5.4.4 ("unable to route") is not here: Postfix uses it for every DNS failure, malformed answers
# included; the words decide (RFC 3463 X.4.x -> network).
# 4.1.2 is not here either: a *transient* bad destination is a DNS lookup that failed for now
# (qmail-remote's temp_dns "Sorry, I couldn't find any host by that name. (#4.1.2)" on DNS_SOFT,
# NXDOMAIN being "... any host named X. (#5.1.2)"; Postfix smtpd's reject_unknown_recipient_domain
# answers "450 4.1.2 ... Domain not found" when the lookup failed temporarily, 550 5.1.2 when it
# got NXDOMAIN): network.py carries it, the same rule as veto() below for the words.
DSN = ("5.1.2",)

_m = Phrases(PHRASES)
# "Host not found, try again" / SERVFAIL / a malformed answer: the DNS did not answer properly,
# the domain may well exist (our resolver's or their name server's trouble: network).
_TEMPORARY = ("not found, try again", "temporary failure", "timed out", "timeout", "servfail",
              "malformed", "unexpected name server reply", "no data record of requested type")


def phrase_match(text: str) -> bool:
    return _m(text)


# "does not accept mail from your IP / from example.jp": a refusal of us, not a domain without mail
_FROM_US = re.compile(r"\baccept(?:s|ing)? (?:any )?(?:mail|e-?mails?|messages?) from\b")


# Postfix's native (getaddrinfo) lookup of a next hop, "unable to look up host relay.example.jp:
# Name or service not known" (5.4.4): with smtp_host_lookup=native it names our relayhost or
# transport next hop as often as the recipient's domain, and a broken relayhost name bounces every
# recipient with it. The text cannot say whose name it is: never counted (network).
_NATIVE_LOOKUP = "unable to look up host"


def veto(ctx) -> bool:
    t = ctx.text
    if any(w in t for w in _TEMPORARY) or _NATIVE_LOOKUP in t:
        return True
    if _FROM_US.search(t):
        return True
    # a temporary verdict (Gmail's "DNS Error ... NXDOMAIN" with 4.0.0, qmail's (#4.4.1)): it will be
    # retried; only a permanent one proves the domain is gone. A null MX is the domain's own word.
    return ctx.dsn_class == "4" and "null mx" not in t
