"""Whether a directory is a mailhygiene data dir, and claiming a new one.

The rule (README "The data dir"):
  - ours: it holds the marker file MARKER, written by the first command that writes there; or,
    made by a version before the marker, our layout (LAYOUT_SIGNS: an event partition, the
    suppression list, the ingest state, the send queue ...), or nothing but our own folders;
  - new: it does not exist, or is empty (a `lost+found` aside: a freshly made file system, or
    the empty directory systemd's StateDirectory= and tmpfiles.d create; the config file that
    names it, when kept inside it, aside too);
  - foreign: anything else (another project's directory, a home directory, /etc).
A command that writes claims the data dir before it writes (claim(): creates a new one, writes
the marker, refuses a foreign one with ForeignDataDir naming the directory and how to go on, and
one that looks new but held data before, its volume unmounted or moved: vanished.py);
a command that only reads says a foreign dir holds no data (NoDataError) and creates nothing.

Reads directory listings only, except claim(), which creates the directory and the marker.
Called by the CLI (pipeline.cli.AppContext) before a command touches the data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import ConfigError, NoDataError

MARKER = ".mailhygiene-data-dir"
MARKER_TEXT = ("This directory is a mailhygiene data dir (events, suppression list, state).\n"
               "mailhygiene writes only into directories holding this file, new ones, or empty ones.\n")

# The folders the program makes at the top of a data dir (store/layout.STATE_SUBDIRS, the outputs
# exports/ and reports/, the quarantine of a damaged file, the lake's node state).
OUR_NAMES = frozenset({MARKER, "events", "suppression", "state", "sender", "rejects",
                       "exports", "reports", "quarantine", "lake"})
# Left by the file system, never by a project: a directory holding only these is empty.
IGNORED = frozenset({"lost+found"})
# Files only this program writes (names from the stages that write them: ingest.session,
# suppression.store, sender.queue, lake.upload). One of them marks a data dir made before MARKER,
# whatever else the operator keeps beside it.
LAYOUT_SIGNS = ("events/date=*", "suppression/current.parquet", "suppression/history.parquet",
                "state/ingest-state.json", "state/*.lock", "sender/queue.sqlite3", "lake/node-id")

MISSING, NEW, OURS, FOREIGN = "missing", "new", "ours", "foreign"


def _ours(name: str) -> bool:
    """One of our top-level names, or the temporary file of one being written (fsutil's atomic
    writes: `.NAME.PID.tmp`): another command claiming the same new directory at this moment is
    writing the marker, and its temporary file must not make the directory look foreign."""
    if name in OUR_NAMES:
        return True
    if name.startswith(".") and name.endswith(".tmp"):
        base, _, pid = name[1:-len(".tmp")].rpartition(".")
        return base in OUR_NAMES and pid.isdigit()
    return False


class ForeignDataDir(ConfigError):
    """The data dir names a directory that holds other files and no mailhygiene data."""


def status(path: str | os.PathLike, also: frozenset[str] = frozenset()) -> str:
    """MISSING, NEW (empty), OURS (marker or our layout) or FOREIGN. `also`: names at its top
    that count as ours too (the config file naming this directory, kept inside it)."""
    root = Path(path)
    try:
        names = set(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        # (a file where a parent should be: creating it fails later, with the store's own error;
        # a file at the path itself is refused by the CLI's check_data_dir first)
        return MISSING
    except OSError:
        return OURS  # unreadable: the owner check and the store say what is wrong, in their words
    names -= IGNORED | also
    if not names:
        return NEW
    if MARKER in names or all(_ours(name) for name in names):
        return OURS
    if any(next(root.glob(sign), None) is not None for sign in LAYOUT_SIGNS):
        return OURS
    return FOREIGN


def strangers(path: str | os.PathLike, shown: int = 3, also: frozenset[str] = frozenset()) -> str:
    """Some of the entries that are not ours, for a message: `a, b, c and 12 more`."""
    try:
        names = sorted(n for n in set(os.listdir(path)) - IGNORED - also if not _ours(n))
    except OSError as exc:
        return exc.strerror or str(exc)
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def foreign_error(path: Path, where: str = "", also: frozenset[str] = frozenset()) -> ForeignDataDir:
    """The refusal of a writing command: which directory, why, and the two ways on."""
    return ForeignDataDir(
        f"data dir {path}{where} is not a mailhygiene data dir: it holds other files "
        f"({strangers(path, also=also)}) and no {MARKER} marker, so nothing was written there. Point --data-dir "
        f"(or data_dir in the config) at a new or empty directory, e.g. {path / 'mailhygiene-data'} "
        f"(created on first use); or, if this directory is meant to hold mailhygiene's data beside "
        f"those files, mark it once: touch {path / MARKER}")


def no_data_error(path: Path, where: str = "", also: frozenset[str] = frozenset()) -> NoDataError:
    """The answer of a reading command: the directory holds no mailhygiene data."""
    return NoDataError(
        f"data dir {path}{where} holds no mailhygiene data (other files: {strangers(path, also=also)}; no "
        f"{MARKER} marker): check --data-dir or data_dir in the config")


def check_readable(path: str | os.PathLike, where: str = "", also: frozenset[str] = frozenset()) -> None:
    """NoDataError when `path` is a foreign directory (a reading command then creates nothing)."""
    if status(path, also) == FOREIGN:
        raise no_data_error(Path(path), where, also)


def refuse_foreign(path: str | os.PathLike, where: str = "", also: frozenset[str] = frozenset()) -> None:
    """ForeignDataDir when `path` is a foreign directory; nothing is written."""
    if status(path, also) == FOREIGN:
        raise foreign_error(Path(path), where, also)


def claim(path: str | os.PathLike, where: str = "", also: frozenset[str] = frozenset(), *,
          init: bool = False, command: str = "") -> Path:
    """Before a command writes into `path`: ForeignDataDir for a foreign directory;
    vanished.DataDirVanished for one that looks new (missing or empty) but held data before or
    lies under a declared mount that is absent, unless `init` (--init-data-dir: a new data dir
    meant); the marker written into an empty one or one of an earlier version's layout, and a
    data dir holding data recorded outside it (vanished.remember). A missing one is left to the
    command (the store creates it as it writes; a command that needs stored data says it does
    not exist) and marked by mark() when the command ends."""
    from . import vanished

    root = Path(path)
    state = status(root, also)
    if state == FOREIGN:
        raise foreign_error(root, where, also)
    if state in (MISSING, NEW) and not init:
        try:
            vanished.check(root, "does not exist" if state == MISSING else "is empty", where, command)
        except vanished.DataDirVanished:
            # another command may have claimed it since it was looked at (marker, then record:
            # mark()); only a directory that still looks new is one whose data vanished
            state = status(root, also)
            if state != OURS:
                raise
    if state != MISSING:
        mark(root, also)
    if state == OURS:
        vanished.remember(root)
    return root


def mark(path: str | os.PathLike, also: frozenset[str] = frozenset()) -> None:
    """Write the marker into `path` when it exists, is ours or new, and has none yet (at the end of
    a writing command that created the data dir). Quietly nothing when that cannot be done: the
    layout still tells the directory is ours."""
    from ..core.errors import MailHygieneError
    from ..core.fsutil import atomic_write_text

    root = Path(path)
    if (root / MARKER).exists() or status(root, also) in (MISSING, FOREIGN):
        return
    try:
        atomic_write_text(root / MARKER, MARKER_TEXT)
    except MailHygieneError:  # a read-only or full disk: the command's own writes say so, in their words
        return
    from .vanished import remember

    remember(root)  # from now on, this directory looking new again is its volume gone (vanished.py)
