"""Durable files and locks: the one implementation every writer and every job uses.

- atomic_file / atomic_path / atomic_write_bytes / atomic_write_text / atomic_write_json: the new content goes
  to a dot-temp file in the same directory, is fsync'd, renamed over the target (os.replace) and
  the directory is fsync'd, so a reader sees the old file or the new one, never half of one, and a
  crash leaves the old one. A failed write removes its temp file and raises StoreError naming the
  path and the cause (a full disk, a read-only directory), never a traceback.
- engine_writes: DuckDB's I/O errors (a full disk under COPY ... TO) as the same StoreError.
- read_bounded: a file given as input (or a FIFO), read up to a bound, refused beyond it.
- file_lock: an flock on a lock file (exclusive or shared, waiting up to `wait` seconds), raising
  LockedError with a message that names the lock and what to do.
- job_lock: the exclusive <data_dir>/state/<name>.lock of one job (`clean`, `watch`), holding its pid.
- Files and directories are created with modes 0o664 / 0o2775 before the umask (setgid: new
  files take the directory's group), so members of the service group can read the data dir under
  the units' UMask=0027. Writing is the owner's alone: every writing command runs as the data
  dir's owner or stops first (pipeline.core.owner), because other writers (SQLite, DuckDB, Arrow)
  choose their own modes and a root-owned file would stop the service.

Reads and writes only the paths it is given; called by every stage that keeps state.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from .errors import InputError, LockedError, StoreError

FILE_MODE = 0o664
DIR_MODE = 0o2775  # setgid: new files take the directory's group (the service group)
LOCK_POLL_S = 0.05


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create `path` (and parents) group-writable; StoreError when that is impossible."""
    p = Path(path)
    try:
        p.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"cannot create directory {p}: a file of that name is in the way") from None
    except OSError as exc:
        raise StoreError(f"cannot create directory {p}: {describe_os_error(exc)}") from None
    return p


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_os_error(exc: OSError) -> str:
    """`No space left on device` / `Read-only file system` / `Permission denied` with a hint."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"{text} (free some space, then run the command again: it goes on from what was stored)"
    if exc.errno == errno.EROFS:
        return f"{text} (the data directory must be writable)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{text} (run as the data directory's owner, e.g. sudo -u mailhygiene …)"
    return text


def read_bounded(path: str | os.PathLike, limit: int, *, name: str, too_large: str) -> bytes:
    """The bytes of the file (or FIFO: `<(crm-export)`) at `path`, read up to `limit + 1` so
    that /dev/zero or a log given by mistake cannot exhaust memory: InputError naming `name` when
    it cannot be read, `too_large` when it holds more than `limit` bytes."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(too_large)
    return data


def engine_write_error(exc: BaseException) -> OSError | None:
    """An I/O error of DuckDB (its COPY ... TO a file) as the OSError it reports, so callers
    describe it as they do the OS's own (describe_os_error); None for anything else. DuckDB
    raises IOException with the cause in its text: `"errno":"28"` (a full disk), `Cannot open
    file ...: No such file or directory`, `Permission denied`, `Read-only file system`."""
    import re

    if type(exc).__name__ != "IOException" or type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
        return None
    text = str(exc)
    found = re.search(r'"errno"\s*:\s*"?(\d+)', text) or re.search(r"\[errno (\d+)\]", text, re.I)
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.ENOENT, errno.EISDIR, errno.EDQUOT):
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return OSError(errno.EIO, next((line.strip() for line in text.splitlines() if line.strip()), "I/O error"))


@contextmanager
def engine_writes(target: str | os.PathLike) -> Iterator[None]:
    """A block in which DuckDB writes `target` (or its temp file): its I/O errors become
    StoreError naming `target`, as atomic_file's own do."""
    try:
        yield
    except Exception as exc:
        cause = engine_write_error(exc)
        if cause is None:
            raise
        raise StoreError(f"cannot write {target}: {describe_os_error(cause)}") from None


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO[Any]]:
    """Write `path` atomically: yields a file object on a temp file that replaces `path` on exit.

    On an exception inside the block (or a failed write, fsync or rename) the temp file is
    removed and `path` is left as it was; OSErrors become StoreError.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise StoreError(f"cannot write {target}: {describe_os_error(exc)}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """As atomic_file, for writers that want a path (DuckDB's COPY ... TO): yields the temp
    path; on exit it is fsync'd and renamed over `path`, on an exception removed."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with engine_writes(target):
            yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, FILE_MODE & ~_umask())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise StoreError(f"cannot write {target}: {describe_os_error(exc)}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _umask() -> int:
    """The process umask, read without changing it (os.umask() would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    with atomic_file(path, "w", encoding=encoding) as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike, value: Any, *, indent: int | None = None) -> None:
    with atomic_file(path, "w") as fh:
        json.dump(value, fh, ensure_ascii=False, indent=indent)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


@contextmanager
def file_lock(path: str | os.PathLike, *, shared: bool = False, wait: float = 0.0,
              busy: str | None = None, write_pid: bool = False,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an flock on `path` (created group-writable) for the block.

    Waits up to `wait` seconds (0 = try once; None = forever), then raises LockedError with
    `busy` or a default message. `write_pid` records our pid in the file (for operators).
    `on_wait(holder)` is called once when the lock is busy and the wait begins, with what the
    file says of its holder (its pid, when it wrote one; else ""), so a caller can say why it waits.
    """
    p = Path(path)
    ensure_dir(p.parent)
    try:
        fd = os.open(p, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except IsADirectoryError:
        raise StoreError(f"lock file {p} is a directory: a lock file holds no data; remove that directory "
                         "(rmdir, when it is empty) and run the command again") from None
    except OSError as exc:
        raise StoreError(f"cannot open lock file {p}: {describe_os_error(exc)}") from None
    fh = os.fdopen(fd, "r+")
    try:
        flags = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, flags | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockedError(busy or f"{p} is locked by another mailhygiene process; "
                                      "this run did nothing") from None
                if on_wait is not None:
                    fh.seek(0)
                    on_wait(fh.read(32).strip())
                    on_wait = None
                time.sleep(LOCK_POLL_S)
        if write_pid and not shared:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


@contextmanager
def job_lock(data_dir: str | os.PathLike, name: str = "clean", *, wait: float = 0.0,
             busy: str | None = None) -> Iterator[None]:
    """Exclusive <data_dir>/state/<name>.lock for one job (clean, watch), holding our pid.

    Waits up to `wait` seconds for it, then raises LockedError with `busy` (or a default text).
    """
    path = Path(data_dir) / "state" / f"{name}.lock"
    with file_lock(path, wait=wait, write_pid=True,
                   busy=busy or f"another `mailhygiene {name}` is running on {data_dir} (lock {path}); "
                                "this run did nothing"):
        yield


def is_locked(path: str | os.PathLike) -> bool:
    """True while some process holds an exclusive lock on `path` (a probe; takes nothing)."""
    p = Path(path)
    try:
        fh = open(p, "r")
    except FileNotFoundError:
        return False
    except PermissionError:
        return True  # cannot even look: assume busy (fail closed)
    except OSError as exc:
        # a file where the lock's directory should be, a directory named like the lock: the
        # data dir is broken, and "busy" would send the caller down the wrong road
        if exc.errno == errno.ENOTDIR:
            raise StoreError(f"cannot check the lock {p}: a file is in the way of the directory {p.parent} "
                             "(move it away; the directory is created on the next run)") from None
        if exc.errno == errno.EISDIR:
            raise StoreError(f"cannot check the lock {p}: it is a directory (remove it; the lock file is "
                             "created on the next run)") from None
        raise StoreError(f"cannot check the lock {p}: {describe_os_error(exc)}") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False
