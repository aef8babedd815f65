"""content: the receiving server refused our message's form (SMTPUTF8 needed, 8-bit headers,
lines over 1000 bytes, broken MIME, not RFC 5322 compliant). Our fault, never the address's.

Phrases: own list, with a few from Sisimai's ContentError/NotCompliantRFC (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "content"
DESCRIPTION = "the receiver refused the form of our message (SMTPUTF8, 8-bit headers, long lines, MIME)"
SCOPE = "sender"
PHRASES = [
    "smtputf8 is required",                  # Postfix, dsn 5.6.7
    "smtputf8 required",
    "message has 8-bit",
    "8-bit data in message header",
    "8bit data in header",
    "non-ascii characters in header",
    "line too long",                          # docomo 500 Line Too Long
    "line length exceeded",
    "line limit exceeded",
    "lines longer than",
    "invalid mime",
    "mime complexity exceeds",
    "improperly-formatted binary content",
    "unnecessary base64 encoding",
    "too many received: headers",
    "not rfc # compliant",                    # (digits of 5+ are normalised; see classify)
    "not rfc 5322 compliant",
    "not rfc5322 compliant",
    "rfcmessagenoncompliant",
    "duplicate header",
    "missing a valid message-id",           # Gmail 5.7.1 (RFC 5322)
    "multiple addresses in from",
    "malformed header",
    "bare lf",
    "bare <lf>",
    R(r"multiple (?:from|to|subject|date|message-id|sender|cc|reply-to) headers"),
    R(r"there are multiple \w+ headers"),
]
DSN = ("5.6.0", "5.6.1", "5.6.2", "5.6.3", "5.6.5", "5.6.6", "5.6.7", "5.6.8", "5.6.9")

