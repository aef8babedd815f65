"""syntax: the address (or a command) is malformed for the receiver, including au's
`554 <x>: Relay access denied` (a malformed address or not an au domain; carriers.md says it
must not count as an unknown user). Recipient scope, but not counted by the default rule.

Phrases: own list plus Sisimai's NoRelaying/SyntaxError wording (BSD-2, sisimai/p5-sisimai).
"""


NAME = "syntax"
DESCRIPTION = "the address is malformed or not served by that server (relay denied)"
SCOPE = "recipient"
PHRASES = [
    "relay access denied",
    "relaying denied",
    "relay denied",
    "relay not permitted",
    "relaying not permitted",
    "relaying not allowed",
    "relay not allowed",
    "unable to relay",
    "not allowed to relay",
    "we do not relay",
    "not configured to relay",
    "as a relay",
    "insecure mail relay",
    "not an open relay",
    "isn't in my list of allowed rcpthosts",
    "is not in my list of allowed rcpthosts",
    "bad address syntax",
    "address syntax",
    "syntax error in address",
    "syntax error in mailbox",
    "malformed address",
    "malformed recipient",
    "invalid address format",
    "illegal address",
    "domain missing or malformed",
    "syntax error",
    "syntax illegal",
    "bad recipient address syntax",
    "improper command",
    "bad sequence of commands",
    "command unrecognized",
    "command not recognized",
    "sequence of commands",
    "command parameter not implemented",
]
DSN = ("5.1.3", "4.1.3", "5.5.2", "5.5.4")

