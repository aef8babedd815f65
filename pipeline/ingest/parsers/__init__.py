"""Explicit registry of MTA log parsers, and `--format auto` detection.

Every parser has the interface of pipeline.ingest.parsers.common.Parser. To add an MTA: write a module
with a Parser subclass and add it to REGISTRY below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ...core.errors import InputError
from .common import EVENT, MALFORMED, NO_START, SKIP, ParseContext, Parser
from .postfix import PostfixParser
from .qmail import QmailParser
from .sendmail import SendmailParser

REGISTRY: dict[str, type[Parser]] = {
    "postfix": PostfixParser,
    "sendmail": SendmailParser,
    "qmail": QmailParser,
}
FORMATS = ("auto", *REGISTRY)


class _BlockReaders(Mapping):
    """MTA -> its block reader module, imported when a log of that MTA is first read: an ingest of
    Postfix logs does not import (and compile the patterns of) sendmail's and qmail's (3.6 ms)."""

    _MODULES = {"postfix": "postfix_block", "sendmail": "sendmail_block", "qmail": "qmail_block"}

    def __getitem__(self, mta):
        return importlib.import_module(f"{__name__}.{self._MODULES[mta]}")

    def __iter__(self):
        return iter(self._MODULES)

    def __len__(self):
        return len(self._MODULES)


# Column-wise readers of whole blocks (extract() in reader threads, read_block() applies a block
# to the parser through its own state interface); each is held to its parser by a differential test.
BLOCK_READERS: Mapping = _BlockReaders()


def parser_class(fmt: str) -> type[Parser]:
    try:
        return REGISTRY[fmt]
    except KeyError:
        raise InputError(f"unknown log format {fmt!r}: choose one of {', '.join(FORMATS)}") from None


def detect_format(sample_lines: list[str]) -> str | None:
    """The MTA whose parser recognises most of these lines, or None when none does."""
    scores = {name: cls.detect(sample_lines) for name, cls in REGISTRY.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else None


__all__ = ["EVENT", "SKIP", "MALFORMED", "NO_START", "ParseContext", "Parser", "REGISTRY", "FORMATS", "BLOCK_READERS",
           "parser_class", "detect_format", "postfix_block", "sendmail_block", "qmail_block"]
