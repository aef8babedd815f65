"""host_unknown: the recipient's domain does not exist or accepts no mail (no MX/A, null MX,
NXDOMAIN). A temporary DNS failure ("try again") is network, not this.

Phrases: own list plus Sisimai's HostUnknown/NotAccept wording (BSD-2, sisimai/p5-sisimai).
"""

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
    R(r"\bdomain\b[^.;]{0,60}\b(?:does not exist|not exist|is not valid)\b"),
]
DSN = ("5.1.2", "5.4.4")

_m = Phrases(PHRASES)
_TEMPORARY = ("not found, try again", "temporary failure", "timed out", "timeout", "servfail")


def phrase_match(text: str) -> bool:
    return _m(text)


def match(ctx) -> bool:
    t = ctx.text
    if not _m(t):
        return False
    # "Host not found, try again" / SERVFAIL: the DNS did not answer, the domain may well exist.
    return not any(w in t for w in _TEMPORARY)
