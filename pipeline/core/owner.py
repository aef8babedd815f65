"""Who may write the data dir: its owner, and nobody else.

A file that `sudo mailhygiene suppression add …` leaves owned by root (a lock file, a new
Parquet file, the SQLite queue's journal) is one the service user cannot write: the next nightly
`clean` under systemd or cron then stops with a permission error. Group-writable files alone do
not prevent that (SQLite, DuckDB and Arrow create their files with their own modes), so every
command that writes the data dir runs as the user who owns it, or refuses before it writes:

    Error: run as mailhygiene (sudo -u mailhygiene mailhygiene suppression add …): …

The owner running a command is also told, before anything is written, when a file at the top of
the data dir is not writable for it (left by an older version run as root), with the chown that
fixes it. A data dir that does not exist yet is created by whoever runs first (systemd's
StateDirectory= and the README's tmpfiles.d line create it for the service user).

Reads only file metadata; called by the CLI (pipeline.cli.AppContext) for every command that is
not read-only, before the command touches the data dir.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from .errors import MailHygieneError

# Directories under the data dir whose entries are checked for writability (one level down; the
# event partitions' files are many and written only through the store, which the owner runs).
CHECKED_SUBDIRS = ("state", "suppression", "events", "exports", "reports", "sender", "rejects")


class WrongUserError(MailHygieneError):
    """The command would write the data dir as a user other than its owner."""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def require_owner(data_dir: str | os.PathLike, *, command: str = "mailhygiene ...") -> None:
    """Raise WrongUserError unless this process runs as the owner of `data_dir`, and when an
    entry near the top of it is not writable for that owner. A missing data dir passes."""
    root = Path(data_dir)
    try:
        st = root.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WrongUserError(f"cannot inspect the data directory {root}: {exc.strerror or exc}") from None
    me = os.geteuid()
    if st.st_uid != me:
        owner = user_name(st.st_uid)
        sudo_user = owner if owner != str(st.st_uid) else f"'#{st.st_uid}'"  # sudo's syntax for a bare uid
        suggestion = command if command.startswith("mailhygiene") else f"mailhygiene {command}"
        raise WrongUserError(
            f"run as {owner} (sudo -u {sudo_user} {suggestion}): the data directory {root} belongs to "
            f"{owner}, and files this command would create as {user_name(me)} could not be written by "
            f"{owner}'s next run; nothing was changed")
    for path in _entries_to_check(root):
        if not path.is_symlink() and not os.access(path, os.W_OK):
            try:
                holder = user_name(path.lstat().st_uid)
            except OSError:
                continue
            raise WrongUserError(
                f"{path} belongs to {holder} and is not writable for {user_name(me)}, the data directory's "
                f"owner (left by a run as another user); fix it with: chown -R {user_name(me)}: {root}")


def _entries_to_check(root: Path):
    yield root
    for name in CHECKED_SUBDIRS:
        sub = root / name
        if not sub.is_dir() or sub.is_symlink():
            continue
        yield sub
        try:
            with os.scandir(sub) as it:
                for entry in it:
                    yield Path(entry.path)
        except OSError:
            continue
