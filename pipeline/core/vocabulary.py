"""The words every stage shares: the values of the event store's `reason`, `scope`, `carrier`,
`status` and `mta` columns, and the log formats.

Reads nothing, writes nothing. The config validates against these names (a misspelled
`counted_reasons` entry is an error, not a rule that counts nothing); the classifier's reason
modules, the carrier table and the parsers must agree with them (tests hold them to it).
"""

from __future__ import annotations

# Bounce reasons (pipeline/reasons: one module per reason).
REASONS: tuple[str, ...] = (
    "delivered", "content", "rate_limited", "mailbox_full", "mesg_too_big", "too_many_recipients",
    "mailbox_disabled", "auth", "blocked", "spam", "sender_domain", "syntax", "filtered",
    "user_unknown", "host_unknown", "policy", "network", "system", "expired", "undefined",
)
# Whose fault a failure is.
SCOPES: tuple[str, ...] = ("recipient", "sender", "network", "unknown", "none")
# Japanese mobile carriers with their own rules (pipeline/classify/data/carriers.toml); others are "other".
CARRIERS: tuple[str, ...] = ("docomo", "au", "softbank", "ymobile", "rakuten")
OTHER_CARRIER = "other"
# The carrier names the sender's per-carrier settings take (rates, charsets, routes ...).
SENDER_CARRIERS: tuple[str, ...] = CARRIERS + (OTHER_CARRIER,)
# STARTTLS towards a relay, as Postfix's smtp_tls_security_level: "may" (when offered, certificate
# not checked), "encrypt" (required, not checked), "verify" (required, checked against the host name).
TLS_LEVELS: tuple[str, ...] = ("may", "encrypt", "verify")
# Outcomes of a delivery attempt.
STATUSES: tuple[str, ...] = ("sent", "deferred", "bounced", "expired", "undeliverable")
# Log formats of the MTAs whose logs are read.
MTA_FORMATS: tuple[str, ...] = ("postfix", "sendmail", "qmail")
# The `mta` of the rows the sender writes itself (its SMTP attempts, the bounce mails it reads).
SENDER_MTA = "mailhygiene"
