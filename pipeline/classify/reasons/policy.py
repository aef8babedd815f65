"""policy: the receiver's local policy refused our mail (generic 5.7.x "delivery not authorized",
TLS required, closed lists, "rejected for policy reasons"). Ours to look at, never the address's.

Phrases: own list plus Sisimai's PolicyViolation wording (BSD-2, sisimai/p5-sisimai).
"""


NAME = "policy"
DESCRIPTION = "the receiver's local policy refused our mail"
SCOPE = "sender"
PHRASES: list = []
# All generic: any code that says more (X.7.26 auth, X.1.1 ...) wins over these words.
WEAK = [
    "policy",
    "protocol violation",
    "header error",
    "potential security issue",
    "closed mailing list",
    "not subscribed to this group",
    "delivery not authorized",
    "not authorized",
    "not permitted",
    "administrative prohibition",
    "prohibited",
    "must issue a starttls",
    "starttls is required",
    "tls required",
    "requires tls",
    "encryption required",
    "must use tls",
    "message refused",
    "high risk",
    "access denied",
    "mail from your region",
    "not accepted from your region",
    "拒否",                                 # Japanese "refused", without saying why (a code wins)
]
DSN = ("5.7.0", "5.7.1", "5.7.2", "5.7.3", "5.7.4", "5.7.5", "5.7.6", "5.7.9", "5.7.10",
       "5.7.11", "5.7.12", "5.7.14", "5.7.15", "5.7.16", "5.7.17", "5.7.18", "5.7.19",
       "4.7.0", "4.7.1", "4.7.2", "4.7.5", "4.7.6")

