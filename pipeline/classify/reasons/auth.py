"""auth: our mail failed an authentication check: SPF, DKIM, DMARC, PTR/reverse DNS, or the
receiver wants SMTP AUTH. Our fault (fix DNS or the sending host), never the address's.

Phrases: own list plus Sisimai's AuthFailure/RequirePTR/SecurityError wording
(BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "auth"
DESCRIPTION = "our mail failed SPF, DKIM, DMARC, PTR or SMTP AUTH checks"
SCOPE = "sender"
PHRASES = [
    # SPF / DKIM / DMARC
    "spf check",
    "spf record",
    "spf validation",
    "spf fail",
    "spf=fail",
    "spf softfail",
    "spf: ",
    "sender policy framework",
    "//spf.pobox.com",
    "per it's spf record",
    "per its spf record",
    "dkim",
    "dmarc",
    "domainkeys",
    "sender is unauthenticated",
    "unauthenticated email",
    "unauthenticated mail",
    "authentication results",
    "does not pass authentication",
    "fails to pass spf",
    "fails to pass authentication",         # Gmail 5.7.1/4.7.0 "... or fails to pass authentication checks"
    "does not have authentication information",
    # PTR / reverse DNS
    "ptr record",
    "ptr resource record",
    "missing ptr",
    "no ptr",
    "reverse dns",
    "reverse lookup",
    "reverse-dns",
    "rdns",
    "cannot find your hostname",
    "cannot find your reverse hostname",    # Postfix reject_unknown_reverse_client_hostname
    "pointer (ptr) record",                 # Gmail 5.7.1 / 5.7.25
    "can't find your hostname",
    "ip name lookup failed",
    "unresolvable relay host name",
    "forward dns entry does not point",
    "generic dns ptr",
    "mismatches client ip",
    "unverifyable sending ips",
    "cannot resolve your address",
    "hostname does not resolve",
    "client host name",
    "helo command rejected",                # Postfix reject_*_helo_hostname (delayed to RCPT TO): our HELO name
    # SMTP AUTH required / failed
    "authentication required",
    "authentication is required",
    "authentication failure",
    "authentication failed",
    "authentication credentials invalid",
    "unauthenticated senders not allowed",
    "not authorized to perform ses",
    "account not subscribed to ses",
    "smtp auth",
    R(r"\bspf\b"),
]
DSN = ("5.7.8", "4.7.8", "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.25", "5.7.26",
       "4.7.20", "4.7.21", "4.7.22", "4.7.23", "4.7.24", "4.7.25", "4.7.26", "5.7.509")

