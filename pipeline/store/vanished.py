"""A data dir that held data before and now looks new: its volume is not mounted, or it moved.

Unmounted, a data dir is an empty folder (or none: systemd's StateDirectory= and the store make
it again). Taken as new, the nightly `clean` started a fresh store there and, with the export
inside the data dir (the default), published a list of the last days' dead addresses only: every
opt-out was gone from the file the CRM imports. So a command that would write into a data dir that
looks new (datadir.MISSING or NEW) first asks two witnesses that do not live inside it:

  - the mounts: /etc/fstab (FSTAB) declares a mount point at the data dir or one of its parents
    that /proc/self/mountinfo (MOUNTINFO) does not show mounted now (no state needed);
  - the record of data dirs that held data (REGISTRY_NAME in the user's XDG state dir,
    $XDG_STATE_HOME or ~/.local/state, outside the data dir): every command that writes a data
    dir holding data records its path there once. Not used when that state dir lies inside the
    data dir itself (the service user, whose home is the data dir: the systemd units and the
    crontab example set XDG_STATE_HOME=/var/lib/mailhygiene-state).

Either one refuses the command (DataDirVanished: one `Error:` line, nothing written) unless the
operator says a new data dir is meant: `mailhygiene --init-data-dir …` (README "Data layout").
Reads two small system files and one state file; writes only that state file (best effort: a
state dir that cannot be written never stops a command).
Called by pipeline.store.datadir.claim() and mark().
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import ConfigError

FSTAB = "/etc/fstab"
MOUNTINFO = "/proc/self/mountinfo"
REGISTRY_NAME = "held-data-dirs"
REGISTRY_LIMIT = 1000  # paths kept (the most recent); a developer's many test dirs must not grow it forever
INIT_OPTION = "--init-data-dir"


class DataDirVanished(ConfigError):
    """The data dir held data before (or its volume is expected mounted) and now looks new."""


def key(path: str | os.PathLike) -> str:
    """The path as the record keeps it: absolute, symlinks resolved as far as they exist."""
    return str(Path(path).expanduser().resolve())


def registry_path(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The record's file, or None: no home to put it in, or (given `data_dir`) it would lie
    inside that data dir, where an unmount takes it away too."""
    base = os.environ.get("XDG_STATE_HOME", "")
    try:
        root = Path(base) if os.path.isabs(base) else Path("~/.local/state").expanduser()
    except RuntimeError:  # no home directory to expand ~ to
        return None
    if not root.is_absolute():
        return None
    path = Path(key(root)) / "mailhygiene" / REGISTRY_NAME
    if data_dir is not None and path.is_relative_to(key(data_dir)):
        return None
    return path


def remembered(data_dir: str | os.PathLike) -> list[str]:
    """The paths the record holds (empty when there is none or it cannot be read)."""
    path = registry_path(data_dir)
    if path is None:
        return []
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, UnicodeError):
        return []


def remember(data_dir: str | os.PathLike) -> None:
    """Record that `data_dir` holds data (once; quietly nothing when the record cannot be written)."""
    from ..core.errors import MailHygieneError
    from ..core.fsutil import atomic_write_text

    path = registry_path(data_dir)
    if path is None:
        return
    known = remembered(data_dir)
    this = key(data_dir)
    if this in known:
        return
    kept = known[-(REGISTRY_LIMIT - 1):] + [this]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(p + "\n" for p in kept))
    except (OSError, MailHygieneError):
        return


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """fstab and mountinfo write a space in a path as \\040 (octal escapes)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def declared_mounts(fstab: str | os.PathLike | None = None) -> list[str]:
    """The mount points /etc/fstab declares (swap and `none` left out)."""
    try:
        text = Path(fstab or FSTAB).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    points = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3 and fields[1].startswith("/") and fields[2] != "swap":
            points.append(os.path.normpath(_unescape(fields[1])))
    return points


def current_mounts(mountinfo: str | os.PathLike | None = None) -> set[str] | None:
    """The mount points of this process's view (None when mountinfo cannot be read: no check)."""
    try:
        text = Path(mountinfo or MOUNTINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return {os.path.normpath(_unescape(fields[4])) for fields in (line.split() for line in text.splitlines())
            if len(fields) > 4}


def missing_mount(data_dir: str | os.PathLike) -> str | None:
    """The mount point (the data dir or one of its parents) that /etc/fstab declares and that is
    not mounted now; None when every declared one is."""
    mounted = current_mounts()
    if mounted is None:
        return None
    where = Path(os.path.abspath(Path(data_dir).expanduser()))
    targets = {str(where), *(str(p) for p in where.parents), key(data_dir)}
    for point in declared_mounts():
        if point in targets and point not in mounted and point != "/":
            return point
    return None


def check(data_dir: str | os.PathLike, looks: str, where: str = "", command: str = "") -> None:
    """DataDirVanished when `data_dir`, which `looks` new ("does not exist" / "is empty"), held
    data before or lies under a declared mount that is absent; nothing when it is truly new.
    `command`: this run with --init-data-dir, for the message."""
    command = command or f"mailhygiene {INIT_OPTION} …"
    point = missing_mount(data_dir)
    if point is not None:
        raise DataDirVanished(
            f"data dir {data_dir}{where} {looks}, and {point} is not mounted although {FSTAB} mounts it there: "
            f"nothing was written, so no new empty store hides the real one. Mount it (mount {point}) and run "
            f"the command again; to start a new data dir there on purpose, run it once as: {command}")
    if key(data_dir) in remembered(data_dir):
        raise DataDirVanished(
            f"data dir {data_dir}{where} {looks}, but it held mailhygiene data before (recorded in "
            f"{registry_path(data_dir)}): its volume is not mounted, or it moved or was deleted. Nothing was "
            f"written, so no new empty store (and no export of a short list) replaces it. Mount or restore it and "
            f"run the command again; to start a new data dir there on purpose, run it once as: {command}")
