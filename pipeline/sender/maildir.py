"""The mails waiting in a Maildir, for `intake --maildir` and `bounces --maildir` (one walk for both).

Reads <maildir>/new (oldest first, at most `limit` bytes of each mail); moves each handled mail to
<maildir>/cur with the flag S, as a mail reader would. Two runs at once (cron overlapping a slow
run) may list the same mail: the one that finds it gone (the other read or moved it first) skips
it instead of crashing on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import InputError


def waiting(maildir: str | os.PathLike) -> Iterator[Path]:
    """Every mail in new/, oldest first (InputError when there is no new/); creates cur/."""
    root = Path(maildir)
    new, cur = root / "new", root / "cur"
    if not new.is_dir():
        raise InputError(f"{root} is not a Maildir (no new/ directory)")
    cur.mkdir(exist_ok=True)
    stamped = []
    for name in os.listdir(new):
        try:
            stamped.append(((new / name).stat().st_mtime, name))
        except FileNotFoundError:   # taken by another run since the listing
            continue
    for _, name in sorted(stamped):
        yield new / name


def read(path: Path, limit: int) -> bytes | None:
    """At most `limit` bytes of the mail; None when another run took it meanwhile."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except FileNotFoundError:
        return None


def seen_path(path: Path) -> Path:
    """Where the handled mail goes: cur/, with the Maildir info ":2,S" (seen)."""
    return path.parent.parent / "cur" / (path.name.split(":")[0] + ":2,S")


def mark_seen(path: Path) -> None:
    try:
        os.replace(path, seen_path(path))
    except FileNotFoundError:       # another run moved it first
        pass
