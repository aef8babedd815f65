"""spam: the receiver judged our message's content to be spam, a virus or phishing.

Phrases: own list plus Sisimai's SpamDetected/VirusDetected wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "spam"
DESCRIPTION = "the receiver judged our message to be spam or malware"
SCOPE = "sender"
PHRASES = [
    "spam detected",
    "detected as spam",
    "detected your message as spam",
    "looks like spam",
    "looked like spam",
    "likely spam",
    "probable spam",
    "considered spam",
    "classified as spam",
    "identified as spam",
    "scored as spam",
    "appears to be spam",
    "as spam",
    "suspected spam",
    "spam content",
    "spam score",
    "spam message",
    "spam filter",
    "spam-like",
    "spamassassin",
    "spam rejected",
    "spam refused",
    "spam not accepted",
    "spam blocked",
    "spambouncer",
    "antispam",
    "anti-spam",
    "unsolicited",
    "bulk mail",
    "bulk email",
    "bulk.advertising",
    "content rejected",
    "content denied",
    "content filter",
    "unacceptable content",
    "banned content",
    "virus",
    "malware",
    "infected",
    "phishing",
    "blacklisted url",
    "uribl",
    "surbl",
    "illegal attachment",
    "dangerous attachment",
    "prohibited attachment",
    "mass mailer",
    "message rejected as spam",
    "rejected due to spam",
    "spam",
    R(r"\b\d\.\d\.\d+ spam\b"),
]
DSN = ("5.7.28",)  # Gmail: "unusual rate of unsolicited mail"

