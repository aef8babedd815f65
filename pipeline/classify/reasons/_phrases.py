"""Shared pieces of the reason modules: the match context and the phrase matcher.

A reason module holds its phrases as data: PHRASES (specific wording: lower-case substrings, or
compiled regexes for the few that need one) and WEAK (generic wording that yields to a code), and
optionally `veto(ctx) -> bool` (a phrase hit that must not count) and `also(ctx) -> str | None`
(a match that needs more than a phrase). `Phrases(PHRASES)` turns a list into one callable. Matching only ever runs on a cache miss in pipeline.classify.classifier, so clarity beats speed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Pattern

# Phases before DATA: a refusal there cannot be about the message content.
BEFORE_DATA = frozenset({"connect", "helo", "mail", "rcpt"})
AFTER_DATA = frozenset({"data", "end_of_data"})


@dataclass(frozen=True, slots=True)
class Context:
    """What a reason module may look at. `text` is normalised and lower-case (see classify)."""

    text: str
    status: str                # sent | deferred | bounced | expired | undeliverable
    phase: str | None          # connect | helo | mail | rcpt | data | end_of_data | quit | None
    reply_code: int | None     # remote SMTP reply code (argument, else parsed from the text)
    dsn: str | None            # an enhanced code we trust (from the text, or a non-synthesised dsn=)
    dsn_class: str | None      # "2" / "4" / "5" from any source, sendmail's mapping included
    mta: str | None
    synthesised: str | None = None  # a code the MTA wrote itself (Postfix X.0.0, sendmail dsn=)
    provider: object = None    # providers.Period that applies (None: no provider rule)
    remote_reply: bool = False  # the text carries the remote's SMTP reply (a code and its words)

    @property
    def dsn_subject(self) -> str:
        """`5.1.1` -> `1.1` (class-independent part), '' when unknown."""
        return self.dsn[2:] if self.dsn else ""


def R(pattern: str) -> Pattern[str]:
    """A regex phrase (phrases are lower-case; the text is lower-cased before matching)."""
    return re.compile(pattern)


class Phrases:
    """`Phrases([...])(text)` -> True when any substring is in `text` or any regex matches."""

    __slots__ = ("subs", "regexes")

    def __init__(self, phrases):
        self.subs = tuple(p for p in phrases if isinstance(p, str))
        self.regexes = tuple(p for p in phrases if not isinstance(p, str))
        for p in self.subs:
            if p != p.lower():
                raise ValueError(f"phrase must be lower-case: {p!r}")

    def __call__(self, text: str) -> bool:
        for p in self.subs:
            if p in text:
                return True
        for r in self.regexes:
            if r.search(text):
                return True
        return False

    def which(self, text: str) -> str | None:
        """The first phrase that matches (for explanations and debugging)."""
        for p in self.subs:
            if p in text:
                return p
        for r in self.regexes:
            if r.search(text):
                return r.pattern
        return None
