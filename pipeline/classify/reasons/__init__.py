"""Bounce reasons: one module per reason, each with its phrases and codes as data.

Every module has NAME, SCOPE (recipient | sender | network | unknown | none), PHRASES (lower-case
substrings or compiled regexes), DSN (enhanced status codes that default to this reason when no
phrase matched) and `match(ctx) -> bool`. pipeline.classify.classifier tries ORDER top to bottom on the
normalised diagnostic; the first match wins. ORDER is the only place the order of trial lives.

Why this order (the rest of the precedence, codes and phases, is in classifier.decide_explained):
- delivered first (status decides), then our own faults whose wording overlaps address errors
  (content, rate limits and Gmail's "receiving mail too quickly", sizes, recipient counts);
- sender-side refusals (auth, blocked, spam, sender_domain) before any mailbox or address reason,
  so an RBL, a 5.7.x reputation text or "Sender mailbox quota exceeded" never blames the address;
- mailbox state (full, disabled) before "unknown user", as Sisimai does;
- syntax (au "Relay access denied") and filtered (the receiver's own filter) before user_unknown;
- system's specific wording (disk space, mailer errors) before user_unknown;
- generic wording (WEAK lists: policy, "Recipient address rejected:", "delivery temporarily
  suspended") yields to a code; network last.
`expired` and `undefined` are decided in classify() (status and fallbacks), not by ORDER.
"""

from __future__ import annotations

from . import (
    auth,
    blocked,
    content,
    delivered,
    expired,
    filtered,
    host_unknown,
    mailbox_disabled,
    mailbox_full,
    mesg_too_big,
    network,
    policy,
    rate_limited,
    sender_domain,
    spam,
    syntax,
    system,
    too_many_recipients,
    undefined,
    user_unknown,
)
from ._phrases import AFTER_DATA, Context, Phrases  # the classifier's public names of the phrase tables

ORDER = (
    delivered,
    content,
    rate_limited,
    mesg_too_big,
    too_many_recipients,
    auth,
    blocked,
    spam,
    sender_domain,
    mailbox_full,
    mailbox_disabled,
    syntax,
    filtered,
    system,
    user_unknown,
    host_unknown,
    policy,
    network,
)

# Every reason, including the two decided outside ORDER.
ALL = ORDER + (expired, undefined)
BY_NAME = {m.NAME: m for m in ALL}
SCOPES = {m.NAME: m.SCOPE for m in ALL}
REASONS = tuple(m.NAME for m in ALL)

__all__ = ["AFTER_DATA", "ALL", "BY_NAME", "Context", "ORDER", "Phrases", "REASONS", "SCOPES"]
