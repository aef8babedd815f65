"""Line sources: where ingest's bytes come from, as chunks of whole lines with their offsets.

Reads log files (plain or `.gz`, named or globbed) and standard input (`-`). A batch run reads
every file to its end once; a followed run (`watch`) reads what is appended, through rotation.
Both use the same streams, positions and rotation rules, so `ingest`, `clean` and `watch` read a
log the same way. Writes nothing: positions live in the session's state (pipeline.ingest.session),
which this module reads (where to start) and updates in memory (what was read, what is done).

File identity (pygtail / Filebeat lessons, see docs/watch.md):
- A file's identity is the fingerprint of its first line (at most FINGERPRINT_BYTES; of a text
  that starts with a hole of NUL bytes, the first line after the hole): it
  survives rename, compression (`.1` -> `.1.gz`) and multilog's `current` -> `@<tai64n>.s`.
  Positions are keyed by it, and keep a check of the first bytes read (HEAD_CHECK_BYTES): a log
  that starts with the same line as another (two vhosts' logs, a copy) has a position of its own
  (`fp~N`), and a file takes the position whose check its text passes. While a file is open it is also known by (device, inode), so a
  renamed-away file is read to its end through the descriptor held, before (and while) the new
  file under the old name is read.
- A file renamed away before it was opened (while nothing was running, or between two nightly
  runs) is found by its fingerprint among its siblings (`mail.log.1`, `mail.log.1.gz`,
  `mail.log-DATE`, multilog's `@….s`), also when the configured path is not a glob, and read on
  from the saved offset.
- copytruncate / a file rewritten in place: the open file shrinks or its first line changes. The
  rest of the old text is looked for in a sibling with the old fingerprint; the truncated file
  is then new.
- Only complete lines are consumed; a last line without newline is read only when the file is
  finished: compressed, standard input at its end, or not modified for PARTIAL_LINE_GRACE_S (and,
  followed, no longer the live log: its writer may still complete the line).
  A line with no newline within MAX_LINE_BYTES is looked through in bounded memory (LongLine):
  the hole a crash leaves (NUL bytes, any length) does not take the line after it along.
- A damaged `.gz` is read up to its damage (GzipSalvage), then a DAMAGED chunk says where its
  readable text ends and what is wrong; the position stays there, not finished.

Called by pipeline.ingest.engine (batch and follow).
"""

from __future__ import annotations

import bz2
import errno
import fnmatch
import glob
import gzip
import logging
import lzma
import os
import re
import select
import stat
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..core.backoff import backoff_delay
from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import InputError
from ..core.hashes import sha1  # not hashlib: it loads OpenSSL (2.5 ms)
from .parsers.common import LINE_START_PEEK, LINE_START_RE, MAX_LINE_BYTES

log = logging.getLogger("mailhygiene.watch")

FINGERPRINT_BYTES = 1024
# A log's read position keeps a check of its text's first bytes (up to this many, and no more
# than was read): two logs that start with the same line are told apart by it.
HEAD_CHECK_BYTES = 64 << 10
# Chunks of whole lines of up to this size. Fewer, larger blocks leave fewer queue ids open at
# block ends (each goes through the parser state one by one), and a dense log leaves many: 16 MiB
# with one block being found ahead beats 8 MiB with two (BENCHMARKS.md).
BLOCK_BYTES = 16 * 1024 * 1024
# The first chunk of a read is this big, then twice as big each time up to BLOCK_BYTES, and the
# last ones of a file shrink again: the first block is found before anything can be applied, and
# the last one is applied with no next one to find meanwhile; small ones keep both waits short.
FIRST_BLOCK_BYTES = 4 * 1024 * 1024
READ_BUDGET = 16 << 20           # followed: bytes per file per pass, so other files and signals get a turn
# A last line without newline in a plain file modified this recently may still be being
# written: it is left for later. Older (or compressed) files: it is read as it is.
PARTIAL_LINE_GRACE_S = 60
IDLE_CLOSE_S = 30.0              # followed: a file that has not grown for this long is closed
# Followed files held open at once: half the soft limit of open files, less what the rest of the
# process needs (the store, DuckDB, inotify, imports). A glob of more files is read in turns.
FILES_RESERVE = 64
SIBLINGS_CHECKED = 8             # rotated candidates fingerprinted when looking for a lost file
POSITION_KEEP_S = 30 * 86400     # positions of finished files are forgotten after this long
RETRY_MAX_S = 60.0
STDIN = "-"


# ------------------------------------------------------------------ identity
# Compressed logs are told by their first bytes, not their names (logrotate's compresscmd may be
# gzip, bzip2 or xz; a `.gz` name may hold plain text). zstd has no reader in Python's library:
# such a file is refused with how to read it.
MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
READABLE = ("gzip", "bzip2", "xz")
ZSTD_REFUSED = "zstd-compressed, which this installation cannot read"
ZSTD_HINT = "decompress it first (zstd -d FILE), or pipe it in: zstdcat FILE | mailhygiene ingest --format FORMAT -"


def compression_of(head: bytes) -> str | None:
    """gzip, bzip2, xz or zstd by a file's first bytes; None for anything else (plain text)."""
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), None)


def open_log(path: str | os.PathLike):
    """Binary file object over the log's text, transparently decompressing gzip, bzip2 and xz."""
    with open(path, "rb") as probe:
        kind = compression_of(probe.read(6))
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return Tolerant(bz2.open(path, "rb"))
    if kind == "xz":
        return Tolerant(lzma.open(path, "rb"))
    return open(path, "rb")


# A read of a pipe or terminal waits at most this long at a time for data. A signal can reach the
# process just before its read begins (Python acts on it between bytecodes) or in another of its
# threads: the read, already blocking in the kernel, is then not interrupted, and Ctrl-C on
# `ingest -` at a terminal would wait for the next typed line. Bounded waits let Python act on the
# signal within this long. (A narrow race; the whole-suite Ctrl-C test failures had another cause:
# SIGINT ignored by a test run started in the background, see tests/conftest.py.)
PIPE_WAIT_S = 0.2


class PipeReader:
    """A pipe or terminal read through its descriptor with bounded waits (PIPE_WAIT_S; see there):
    read(n) returns n bytes, or fewer at the end; peek(k) up to k bytes without consuming them (b""
    at the end). Replaces the buffered file object of standard input or a named pipe."""

    def __init__(self, raw):
        self.raw = raw              # (kept open and closed with this)
        self.fd = raw.fileno()
        self._ahead = b""           # bytes read by peek(), not yet returned
        self._ended = False

    def fileno(self) -> int:
        return self.fd

    def _read_some(self, n: int) -> bytes:
        """One read of up to n bytes, once there is data or the end (b"")."""
        while not select.select([self.fd], [], [], PIPE_WAIT_S)[0]:
            pass
        return os.read(self.fd, n)

    def peek(self, k: int) -> bytes:
        if len(self._ahead) < k and not self._ended:  # one read, as a buffered peek: no wait for more
            part = self._read_some(max(k - len(self._ahead), 1 << 16))
            self._ahead += part
            self._ended = not part
        return self._ahead[:k]

    def read(self, n: int = -1) -> bytes:
        parts, got = [], 0
        if self._ahead:
            cut = len(self._ahead) if n < 0 else n
            parts.append(self._ahead[:cut])
            self._ahead = self._ahead[cut:]
            got = len(parts[0])
        while (n < 0 or got < n) and not self._ended:
            part = self._read_some(1 << 20 if n < 0 else min(n - got, 1 << 20))
            if not part:
                self._ended = True
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self.raw.close()
        except OSError:
            pass


class Tolerant:
    """A bzip2 or xz file object read in steps of STEP bytes: at a damage (cut short, corrupt
    data) the text read before it is returned, then b"" with `damage` set (as GzipSalvage does for
    gzip; here the text of the step that fails, and of the block it is in, is lost with it)."""

    STEP = 64 << 10

    def __init__(self, inner):
        self.inner = inner
        self.damage: str | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.inner.close()

    def _failed(self, exc: BaseException) -> None:
        text = str(exc) or type(exc).__name__
        self.damage = ("cut short (the compressed file ends before its end-of-stream marker)"
                       if isinstance(exc, EOFError) else f"corrupt compressed data ({text})")

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else 1 << 62
        out = bytearray()
        while self.damage is None and len(out) < want:
            try:
                piece = self.inner.read(min(self.STEP, want - len(out)))
            except (EOFError, OSError, lzma.LZMAError) as exc:
                self._failed(exc)
                break
            if not piece:
                break
            out += piece
        return bytes(out)

    def readline(self, limit: int = -1) -> bytes:
        try:
            return self.inner.readline(limit)
        except (EOFError, OSError, lzma.LZMAError) as exc:
            self._failed(exc)
            return b""

    def seek(self, offset: int) -> None:
        """To text offset `offset`; at a damage before it, reads give nothing and `damage` says why."""
        left = offset
        while left > 0 and self.damage is None:
            got = len(self.read(min(left, 1 << 20)))
            if not got:
                break
            left -= got


TAIL_PROBE = 16 << 10


def _pread_whole_lines(fd: int, want: int, at: int) -> bytes | None:
    """The whole lines of os.pread(fd, want, at), read as they are: the last newline is found in
    the last TAIL_PROBE bytes first, so the chunk is not read whole and then copied up to it
    (16 MiB a chunk, and its memory touched twice). None when those bytes hold no newline or the
    file changed between the two reads (the caller reads as usual)."""
    if want <= TAIL_PROBE:
        return None
    tail = os.pread(fd, TAIL_PROBE, at + want - TAIL_PROBE)
    nl = tail.rfind(b"\n")
    if len(tail) != TAIL_PROBE or nl < 0:
        return None
    cut = want - TAIL_PROBE + nl + 1
    data = os.pread(fd, cut, at)
    return data if len(data) == cut and data.endswith(b"\n") else None


# What reading a damaged .gz raises: EOFError (cut short), gzip.BadGzipFile (an OSError: bad
# CRC, bad header) or zlib.error (bad deflate data).
GZIP_ERRORS = (EOFError, OSError, zlib.error)


class GzipSalvage:
    """The text of a damaged .gz from text offset `start` up to its damage, as a file object.

    read(n) returns the text that decompresses cleanly, then b"" with `damage` set to what is
    wrong ("CRC check failed", "cut short", ...; None when the file reads to its end after all).
    Where zlib refuses a piece of input, the piece is fed again byte by byte from a copy of the
    decompressor taken before it, so every byte of text before the damage is kept. After a bad
    CRC or length check all the text was decompressed: it is kept (it may hold the damage).
    Members (`cat a.gz b.gz`) are read one after the other, as gzip does.
    """

    PIECE = 64 << 10
    PIECE_TEXT = 1 << 20

    def __init__(self, path: str | os.PathLike, start: int = 0, *, fileobj=None):
        self.path = str(path)
        self.fh = fileobj if fileobj is not None else open(path, "rb")  # fileobj: a pipe, read once
        self.damage: str | None = None
        self._out = bytearray()
        self._skip = start            # text bytes still to drop before `start`
        self._done = False
        self._d = zlib.decompressobj(31)
        self._pending = b""           # compressed input not yet given to the decompressor
        self._member_has_data = False

    def close(self) -> None:
        self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _emit(self, data: bytes) -> None:
        if self._skip:
            drop = min(self._skip, len(data))
            self._skip -= drop
            data = data[drop:]
        self._out += data

    def _fail(self, why: str) -> None:
        self.damage = why
        self._done = True

    def _fill(self, want: int) -> None:
        while not self._done and len(self._out) < want:
            piece = self._pending or self.fh.read(self.PIECE)
            self._pending = b""
            if not piece:
                if self._member_has_data:
                    self._fail("cut short (the compressed file ends before its end-of-stream marker)")
                else:
                    self._done = True
                return
            if not self._member_has_data:
                piece = piece.lstrip(b"\0")  # zero padding between or after members, as gzip allows
                if not piece:
                    continue
            self._member_has_data = True
            saved = self._d.copy()
            try:
                # at most PIECE_TEXT of text a step: 64 KiB of a compressed hole (NUL bytes) is 64 MiB
                self._emit(self._d.decompress(piece, self.PIECE_TEXT))
            except zlib.error:
                self._d = saved
                self._byte_by_byte(piece)
                return
            if self._d.eof:  # a member ended: its CRC and length were right
                self._next_member(self._d.unused_data)
            else:
                self._pending = self._d.unconsumed_tail

    def _byte_by_byte(self, piece: bytes) -> None:
        """Feed `piece` one byte at a time: all text before the byte zlib refuses is kept."""
        for i in range(len(piece)):
            try:
                self._emit(self._d.decompress(piece[i:i + 1]))
            except zlib.error as exc:
                text = str(exc)
                if "incorrect data check" in text:
                    self._fail("CRC check failed (the text before it is kept, it may hold the damage)")
                elif "incorrect length check" in text:
                    self._fail("length check failed (the text before it is kept, it may hold the damage)")
                else:
                    self._fail(f"corrupt compressed data ({text.split(': ', 1)[-1]})")
                return
            if self._d.eof:  # a member ended inside the piece: the next one starts after this byte
                self._next_member(piece[i + 1:])
                return

    def _next_member(self, rest: bytes) -> None:
        self._d = zlib.decompressobj(31)
        self._member_has_data = False
        rest = rest.lstrip(b"\0")
        if rest and not rest.startswith(b"\x1f\x8b"):
            self._fail("trailing garbage after the last gzip member")
        self._pending = rest

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else 1 << 62
        self._fill(want)
        out = bytes(self._out[:want])
        del self._out[:want]
        return out


def is_compressed(path: str | os.PathLike) -> bool:
    with open(path, "rb") as probe:
        return compression_of(probe.read(6)) in READABLE


def fingerprint(path: str | os.PathLike) -> tuple[str, int]:
    """(hash of the first line, capped at FINGERPRINT_BYTES; how many bytes it covers).

    The first line does not change while a log grows, is carried over by rename, compression
    and copytruncate's copy, and differs between two logs (it has a time stamp). A file with no
    complete first line yet has no identity: (``""``, 0). A text that starts with a hole (a run
    of NUL bytes at least FINGERPRINT_BYTES long) is known by the first line after it
    (fingerprint_of_head).
    """
    with open_log(path) as fh:
        try:
            head = fh.readline(FINGERPRINT_BYTES)
        except GZIP_ERRORS:
            if not isinstance(fh, gzip.GzipFile):
                raise
            with GzipSalvage(path) as salvage:  # a .gz damaged in its first line: what is before it
                head = salvage.read(FINGERPRINT_BYTES)
    return fingerprint_of_head(head, lambda: _text_past_hole_of(path))


def fingerprint_of_head(head: bytes, past_hole: Callable[[], bytes] | None = None) -> tuple[str, int]:
    """The fingerprint rule applied to the file's first bytes (at least its first line or
    FINGERPRINT_BYTES of it): lets a follower check an open file without reopening its path.

    A text whose first FINGERPRINT_BYTES are NUL bytes starts with a hole (a copytruncate'd log
    whose writer went on at its old offset, a crash): every such text would have the same first
    "line", so two logs that start with a hole (of 64 KiB or more, as long as the check of their
    first bytes, HEAD_CHECK_BYTES: that tells shorter ones apart) took one read position. It is
    known instead by the first line after its hole: `past_hole()` gives the text from its first
    byte that is not NUL (FINGERPRINT_BYTES of it, or up to its end), and the fingerprint is that
    of a NUL byte and that line. While no complete line follows the hole it has no identity yet,
    as a file whose first line is not complete (a followed one is opened when it has one, and
    read from its start, the hole included)."""
    nl = head.find(b"\n", 0, FINGERPRINT_BYTES)
    head = head[: nl + 1] if nl >= 0 else head[:FINGERPRINT_BYTES]
    if not head or (len(head) < FINGERPRINT_BYTES and not head.endswith(b"\n")):
        return "", 0
    if past_hole is not None and nl < 0 and not head.strip(b"\0"):
        after = past_hole()
        nl = after.find(b"\n", 0, FINGERPRINT_BYTES)
        line = after[: nl + 1] if nl >= 0 else after[:FINGERPRINT_BYTES]
        if nl < 0 and len(line) < FINGERPRINT_BYTES:
            return "", 0
        return sha1(b"\0" + line).hexdigest(), len(line)
    return sha1(head).hexdigest(), len(head)


def _text_past_hole(read: Callable[[int], bytes]) -> bytes:
    """Up to FINGERPRINT_BYTES of a text from its first byte that is not NUL; `read(n)` reads
    the text on from its start (or from within its leading NUL run); b"" when it has none."""
    while True:
        piece = read(1 << 20)
        if not piece:
            return b""
        rest = piece.lstrip(b"\0")
        if rest:
            if len(rest) < FINGERPRINT_BYTES:
                rest += read(FINGERPRINT_BYTES - len(rest))
            return rest[:FINGERPRINT_BYTES]


def _text_past_hole_of(path: str | os.PathLike) -> bytes:
    """_text_past_hole of a log (decompressed; a damaged .gz: up to its damage). A plain file's
    hole is passed over with os.SEEK_DATA where it is sparse (_text_past_hole_fd)."""
    with open(path, "rb") as probe:
        plain = compression_of(probe.read(6)) is None
    if plain:
        fd = os.open(path, os.O_RDONLY)
        try:
            return _text_past_hole_fd(fd)[1]
        finally:
            os.close(fd)
    with open_log(path) as fh:
        try:
            return _text_past_hole(fh.read)
        except GZIP_ERRORS:
            if not isinstance(fh, gzip.GzipFile):
                raise
    with GzipSalvage(path) as salvage:
        return _text_past_hole(salvage.read)


def _text_past_hole_fd(fd: int, known: int = 0) -> tuple[int, bytes]:
    """(where the text of a plain file starts after its leading NUL run, FINGERPRINT_BYTES of
    it from there). `known`: where it was found before (a followed file, checked at each change:
    its hole is not looked through again while the bytes about that place are the same)."""
    if known and os.pread(fd, 1, known - 1) == b"\0":
        data = os.pread(fd, FINGERPRINT_BYTES, known)
        if data[:1] not in (b"", b"\0"):
            return known, data
    at = _after_leading_hole(fd)
    return at, os.pread(fd, FINGERPRINT_BYTES, at)


def file_identity(st: os.stat_result) -> tuple[int, int]:
    """(device, inode): tells a renamed-away file from the new one created under its name."""
    return st.st_dev, st.st_ino


def rotation_number(name: str) -> int:
    """mail.log.3.gz -> 3 (older than mail.log.2 ...); 0 for the live file."""
    for ext in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(ext)
    parts = name.rsplit(".", 1)
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else 0


def expand_paths(patterns: list[str], unmatched: list[str] | None = None) -> list[Path]:
    """Files named or matched by globs, oldest first (rotated logs before the current one).
    A named file that does not exist, or a directory, is an InputError; a glob takes regular
    files only (a directory or a named pipe it matches is passed over: `/var/log/mail*` may match
    a `mailman/` folder), and one that matches none is appended to `unmatched` (when given)."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        matches = glob_files(pattern) if glob.has_magic(pattern) else [pattern]
        blocked = blocked_directory(pattern) if not matches or not glob.has_magic(pattern) else None
        if blocked is not None:  # not "does not exist" nor a PermissionError from stat(): say why
            raise InputError(blocked_message(pattern, blocked))
        if not matches and unmatched is not None:
            unmatched.append(pattern)
        for m in matches:
            p = Path(m)
            if p.is_dir():
                raise InputError(f"{p} is a directory: give log files (globs like {p}/mail.log* work)")
            if not p.exists():
                if glob.has_magic(pattern):
                    continue
                raise InputError(f"{p} does not exist")
            if not utf8_name(m):
                raise InputError(f"{pattern} matches {shown_name(m)}, whose name is not UTF-8 (Shift_JIS?): the "
                                 "store keeps each event's file name as UTF-8. Rename it (e.g. `convmv -f sjis -t "
                                 "utf8 --notest FILE`), or give it on standard input (`mailhygiene ingest - < FILE`)")
            found[str(p.resolve())] = p
    return sorted(found.values(), key=_age_key)


def utf8_name(path: str) -> bool:
    """Whether the file name is UTF-8 (Python hands other bytes on as lone surrogates, which no
    Parquet column, JSON state or DuckDB query can carry)."""
    return not any(0xDC80 <= ord(ch) <= 0xDCFF for ch in path)


def shown_name(path: str) -> str:
    """The name with its bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def glob_files(pattern: str) -> list[str]:
    """The regular files a glob matches; a file whose own name has glob characters in it
    (`mail[1].log`) is matched by that name too."""
    pattern = os.path.expanduser(pattern)
    found = [m for m in glob.glob(pattern) if os.path.isfile(m)]
    if os.path.isfile(pattern) and pattern not in found:
        found.append(pattern)
    return found


def _age_key(p: Path):
    st = p.stat()
    return (st.st_mtime, -rotation_number(p.name))


# ------------------------------------------------------------------ streams and chunks
@dataclass
class SourceSpec:
    """One source: a path, a glob, or `-` (standard input), with its format (auto or an MTA)."""

    pattern: str
    fmt: str = "auto"
    olddir: str = ""                # logrotate's olddir (relative to the log's directory): rotated copies go there

    @property
    def is_glob(self) -> bool:
        return glob.has_magic(self.pattern)

    @property
    def is_stdin(self) -> bool:
        return self.pattern == STDIN

    @property
    def watch_dir(self) -> Path:
        """The deepest directory of the pattern without glob characters."""
        parts = Path(os.path.expanduser(self.pattern)).parts
        fixed: list[str] = []
        for part in parts[:-1]:
            if glob.has_magic(part):
                break
            fixed.append(part)
        return Path(*fixed) if fixed else Path(".")

    @property
    def recursive(self) -> bool:
        return any(glob.has_magic(p) for p in Path(self.pattern).parts[:-1])

    def matches(self) -> list[str]:
        pattern = os.path.expanduser(self.pattern)
        if not self.is_glob:
            return [pattern]
        found = glob.glob(pattern)
        return sorted(found + [pattern] if os.path.isfile(pattern) and pattern not in found else found)


@dataclass
class Stream:
    """One log being read: its identity, where it is, and how far it has been consumed."""

    fp: str                         # fingerprint of its first line; "" for stdin or no first line yet
    source: SourceSpec
    path: str
    key: tuple[int, int]            # (st_dev, st_ino); (0, 0) for stdin
    fh: object                      # raw fd (int) for plain files, a file object for .gz / stdin
    compressed: bool
    offset: int                     # bytes of the text consumed (the position saved at a commit)
    order: tuple                    # read order: older files first
    mtime: float = 0.0
    mta: str | None = None          # set by the engine when the stream is opened
    unrecognised: bool = False
    refused: str | None = None      # why the engine will not read it (wrong --format)
    head_damage: str | None = None  # a .gz whose first lines cannot be read: what is wrong (read_head)
    piped: bool = False             # standard input or a named pipe: read once, in order, no position
    by_lines: bool = False          # its MTA is told by its lines as they are read: piped, or a file under
                                    # --format auto whose sample told none (engine._read_untold)
    judged: bool = False            # by_lines: its lines have told (or checked) its MTA
    looked_at: int = -1             # by_lines: where the last chunk judged for its MTA ends
    sample: list | None = None      # by_lines, not told yet: its first sample (for the verdict)
    told_by: dict | None = None     # by_lines, not told yet: lines recognised per MTA
    told_before: str | None = None  # the MTA its position keeps (a run that stopped part way through it)
    compression: str | None = None  # gzip, bzip2, xz (read), zstd (refused), None (plain)
    first_month: int | None = None  # month of its first `Mon DD` line (0: none): --year is that line's year
    last_growth: float = field(default_factory=time.monotonic)
    eof: bool = False
    size: int = 0
    mtime_ns: int = 0
    read_at: int = 0                # where the next chunk starts (ahead of offset while chunks are in flight)
    carry: bytes = b""              # sequential streams: the start of a line not yet complete
    long: "LongLine | None" = None  # a line with no newline within MAX_LINE_BYTES, being looked through
    finished: bool = False          # sequential streams: at their end
    prepared: bool = False          # the engine has decided its MTA (on_open returned True)
    ctx: object = None              # the engine's ParseContext for this stream
    ctx_made: float = 0.0
    info: dict | None = None        # the per-file summary the engine reports
    pkey: str = ""                  # its position's key: its fingerprint, `fp~N` for another log with that first line
    head: bytes = b""               # the first HEAD_CHECK_BYTES of its text (as read when opened)
    head_check: tuple | None = None  # (n, sha1 of its first n bytes): what its position keeps
    hole_end: int = 0               # a plain file that starts with a hole: where the text after it starts
    text_start: int = 0             # where its first line starts (after a byte-order mark)

    @property
    def sequential(self) -> bool:
        return not isinstance(self.fh, int)

    def close(self) -> None:
        try:
            if isinstance(self.fh, int):
                os.close(self.fh)
            elif self.fh is not None and not self.source.is_stdin:
                self.fh.close()
        except OSError:
            pass


LINES, PARTIAL, LONG, SKIPPED, DAMAGED = "lines", "partial", "long", "skipped", "damaged"
HEAD = "head"   # the first line of a text that does not start as a log line does (the engine splits it off)
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark: a log saved by a Windows tool may start with one
LONG_LINE_READ = 4 << 20    # a long line is looked through this many bytes at a time
SAMPLE_BYTES = 4096         # of the text before a long line's hole, kept for its reject's sample
_TEXT_END = re.compile(rb"[\n\x00]")
_NOT_NUL = re.compile(rb"[^\x00]")


class LongLine:
    """A line with no newline within MAX_LINE_BYTES of its start, looked through piece by piece
    in bounded memory, and given to the front door as `line()`: what decode_line reads of the
    whole line, at most about two MAX_LINE_BYTES long.

    Such a line is mostly the hole a crash leaves in a log file: a run of NUL bytes (the file's
    size was saved, its last blocks were not), KiB to hundreds of MiB long, glued to the line
    written after the crash and often after the first part of a line the crash cut. Every NUL
    run is kept as one NUL; a run that is a hole (at the line's start, or followed by a log
    line's start: parsers.common.after_hole) starts the line anew, the text before it being kept
    for the sample only. Text beyond MAX_LINE_BYTES is not kept: decode_line then says too_long.
    A sparse file's hole is passed over without reading it (nuls(), SEEK_DATA)."""

    def __init__(self, start: int):
        self.start = start          # where the line starts in the stream's text
        self.seen = 0               # bytes of it looked through
        self.end = -1               # where it ends (past its newline, or where the text ends)
        self.before = bytearray()   # the text before its last hole (its first SAMPLE_BYTES)
        self.tail = bytearray()     # from its last hole (one NUL) or its start, NUL runs as one NUL
        self.text = 0               # bytes of text in `tail` (NULs not counted)
        self.in_run = False         # the last byte looked at is a NUL
        self.run_first = False      # that run started the line (no text before it)
        self.undecided = b""        # text right after a run: too little yet to tell whether a line starts

    def _keep(self, piece: bytes) -> None:
        room = MAX_LINE_BYTES + 2 - self.text  # (just past the limit: decode_line says too_long)
        if room > 0:
            self.tail += piece[:room]
        self.text += len(piece)

    def _run_ends(self, buf: bytes, at: int) -> None:
        if self.run_first or LINE_START_RE.match(buf, at):  # a hole: the line starts anew after it
            self.before = (self.before + self.tail)[:SAMPLE_BYTES]
            self.tail = bytearray(b"\0")
            self.text = 0
        elif self.text <= MAX_LINE_BYTES:
            self.tail += b"\0"
        self.in_run = self.run_first = False

    def nuls(self, n: int) -> None:
        """`n` more NUL bytes of the run being looked through (a sparse file's hole)."""
        self.seen += n

    def feed(self, data: bytes, final: bool = False) -> bool:
        """The next bytes of the line (`final`: the stream ends after them); True when the line
        ends in them (`end` is then set)."""
        base = self.start + self.seen - len(self.undecided)  # where buf starts in the text
        buf = self.undecided + data if self.undecided else data
        self.undecided = b""
        self.seen += len(data)
        i, n = 0, len(buf)
        while i < n:
            if self.in_run:
                m = _NOT_NUL.search(buf, i)
                if m is None:
                    break
                j = m.start()
                if not final and n - j < LINE_START_PEEK and _TEXT_END.search(buf, j) is None:
                    self.undecided = buf[j:]  # (a stamp may go on in the next bytes)
                    return False
                self._run_ends(buf, j)
                i = j
                continue
            m = _TEXT_END.search(buf, i)
            k = m.start() if m is not None else n
            self._keep(buf[i:min(k, i + MAX_LINE_BYTES + 2)])
            if m is None:
                break
            if buf[k] == 10:
                self._keep(b"\n")
                self.end = base + k + 1
                return True
            self.in_run = True
            self.run_first = self.text == 0 and not self.before and not self.tail
            i = k
        if final:
            if self.in_run:
                self._run_ends(b"", 0)
            self.end = base + n
            return True
        return False

    def finish(self) -> None:
        """The stream ends here: so does the line."""
        self.feed(b"", final=True)

    def line(self) -> bytes:
        return bytes(self.before) + bytes(self.tail)


def _grow_head(s: Stream, start: int, data: bytes) -> None:
    """The first bytes of a plain file's text kept with its stream (for its position's check),
    grown by the bytes read at `start` (a file opened while short)."""
    have = len(s.head)
    if have < HEAD_CHECK_BYTES and start <= have < start + len(data):
        s.head += data[have - start:HEAD_CHECK_BYTES - start]


def _after_leading_hole(fd: int) -> int:
    """Where the text of a plain file that starts with NUL bytes starts (its size: none)."""
    at, size = 0, os.fstat(fd).st_size
    while at < size:
        at = max(at, _next_data(fd, at, size))
        piece = os.pread(fd, LONG_LINE_READ, at)
        found = _NOT_NUL.search(piece)
        if found is not None:
            return at + found.start()
        if not piece:
            break
        at += len(piece)
    return size


def _next_data(fd: int, at: int, size: int) -> int:
    """Where the file's data goes on after `at` (a sparse file's hole is NUL bytes that are not
    stored: os.SEEK_DATA finds its end without reading it); `at` when it cannot tell."""
    seek_data = getattr(os, "SEEK_DATA", None)
    if seek_data is None:
        return at
    try:
        return min(os.lseek(fd, at, seek_data), size)
    except OSError as exc:
        return size if exc.errno == errno.ENXIO else at  # ENXIO: a hole up to the file's end


@dataclass
class Chunk:
    """Bytes [offset, end) of a stream's text: whole lines (LINES, ending with a newline); the
    last line of a finished file, without newline (PARTIAL); one line with no newline within
    MAX_LINE_BYTES of its start (LONG: `data` is what the front door reads of it, LongLine.line());
    bytes passed over (SKIPPED, no data: a byte-order mark); where the readable text of a
    damaged .gz ends (DAMAGED, at `offset`: `data` says what is wrong; the rest cannot be read);
    or a text's first line that does not start as a log line does (HEAD: split off a LINES or
    PARTIAL chunk by the engine)."""

    stream: Stream
    data: bytes
    offset: int
    end: int
    kind: str = LINES


class LogFiles:
    """The streams of a set of sources; reads chunks; in `follow` mode handles rotation.

    `positions` is the session's map fingerprint -> {offset, path, mta, done, eof, size, updated}:
    read for where to start, updated in memory (the session saves it with the parser state at
    each commit). `on_open(stream)` (the engine) decides a new stream's MTA: False means "not
    yet" (too few lines to tell): the stream is kept and asked again when it grows.
    """

    def __init__(self, specs: list[SourceSpec], positions: dict[str, dict], *, follow: bool,
                 use_positions: bool = True, on_open: Callable[[Stream], bool] | None = None,
                 clock: Clock = SYSTEM_CLOCK):
        self.specs = specs
        self.clock = clock              # idle closing, retries, the partial-line grace (tests drive it)
        self.positions = positions
        self.follow = follow
        self.use_positions = use_positions
        self.on_open = on_open or (lambda s: True)
        self.streams: dict[str, Stream] = {}             # key (fingerprint or path) -> open stream
        self.by_key: dict[tuple[int, int], str] = {}     # (dev, ino) -> key of an open stream
        self.skipped: dict[tuple[int, int], tuple] = {}  # files known to hold nothing new: (size, mtime_ns)
        self.waiting: dict[str, Stream] = {}             # open, MTA not told yet (followed)
        self.problems: dict[str, dict] = {}               # path -> {"msg", "retry_at", "attempt"}
        self.unmatched: list[str] = []                    # batch: globs that matched no file
        self.max_open = open_files_budget()               # followed: streams held open at once
        self._turns_said = False

    # ------------------------------------------------------------------ batch
    def batch_files(self) -> list[tuple[SourceSpec, Path]]:
        """Every file of the sources, oldest first (globs expanded; a named file that is missing
        or a directory is an InputError)."""
        out: list[tuple[SourceSpec, Path]] = []
        seen: set[str] = set()
        for spec in self.specs:
            if spec.is_stdin:
                continue
            for p in expand_paths([spec.pattern], self.unmatched):
                if str(p.resolve()) not in seen:
                    seen.add(str(p.resolve()))
                    out.append((spec, p))
        out.sort(key=lambda sp: _age_key(sp[1]))
        return out

    def open_stdin(self, spec: SourceSpec) -> Stream:
        return self._piped(spec, "<stdin>", sys.stdin.buffer)

    def open_pipe(self, spec: SourceSpec, path: str) -> Stream:
        """A path that is no regular file: a named pipe, `/dev/stdin`, a process substitution
        (`ingest <(zcat old.gz)`): read once, in order, like standard input (its bytes cannot be
        read again, so no position is kept). InputError when it cannot be opened."""
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise InputError(cannot_read(path, exc)) from None
        return self._piped(spec, path, fh)

    def _piped(self, spec: SourceSpec, path: str, raw) -> Stream:
        """A stream over a pipe; gzip data in it (`cat x.gz | mailhygiene ingest -`) is gunzipped.
        A pipe or terminal is read through PipeReader (a signal is acted on while it waits)."""
        try:
            if stat.S_ISFIFO(os.fstat(raw.fileno()).st_mode) or os.isatty(raw.fileno()):
                raw = PipeReader(raw)
        except (AttributeError, OSError, ValueError):
            pass   # no descriptor (a test's BytesIO): read as it is
        peeked = None
        try:
            peeked = raw.peek(6) if hasattr(raw, "peek") else None
        except (OSError, ValueError):
            pass
        head = (peeked or b"")[:6]
        kind = compression_of(head)
        fh = raw
        if kind == "gzip":
            fh = GzipSalvage(path, fileobj=raw)  # (damage: what is before it is kept)
        elif kind == "bzip2":
            fh = Tolerant(bz2.BZ2File(raw))
        elif kind == "xz":
            fh = Tolerant(lzma.LZMAFile(raw))
        s = Stream(fp="", source=spec, path=path, key=(0, 0), fh=fh, compressed=kind in READABLE, offset=0,
                   order=(0, 0), mtime=self.clock.time(), last_growth=self.clock.monotonic(), piped=True,
                   by_lines=True, compression=kind)
        if peeked == b"":
            s.finished = s.eof = True  # the end already (a terminal's Ctrl-D is not seen twice)
        return s

    def open_path(self, spec: SourceSpec, path: str) -> Stream | None:
        """Open a named file for a batch read (from its saved position); None when it holds
        nothing new. OSError / EOFError for an unreadable or broken file."""
        st = os.stat(path)
        key = file_identity(st)
        if key in self.by_key:
            return None  # already read in this run (as a moved file)
        return self._open(spec, path, st, batch=True)

    # ------------------------------------------------------------------ opening
    def _open(self, spec: SourceSpec, path: str, st: os.stat_result, fp_wanted: str | None = None,
              offset: int | None = None, batch: bool = False, pkey: str | None = None) -> Stream | None:
        """Start reading `path` (from its saved position); None when there is nothing to read.
        `fp_wanted`, `pkey`, `offset`: only the rest of that log from there (a moved file)."""
        key = file_identity(st)
        if st.st_size == 0 and not batch:
            return None
        with open(path, "rb") as probe:
            kind = compression_of(probe.read(6))
        compressed = kind in READABLE
        fd = None
        if compressed:
            try:
                fp, _ = fingerprint(path)
                head = text_head(path)
            except EOFError:
                if batch:
                    fp, head = "", b""
                else:
                    return None  # a .gz still being written: look again later
        else:
            fd = os.open(path, os.O_RDONLY)
            hole = [0]

            def past_hole() -> bytes:
                hole[0], data = _text_past_hole_fd(fd)
                return data

            try:
                head = os.pread(fd, HEAD_CHECK_BYTES, 0)
                fp, _ = fingerprint_of_head(head, past_hole)
            except OSError:
                os.close(fd)
                raise
        self._solved(path)
        pos = None
        if pkey is not None:  # the rest of that log: this file must hold its text
            pos = self.positions.get(pkey)
            wanted = fp == fp_wanted and (pos is None or _holds(pos, head, path, fp)) and (
                compressed or offset is None or st.st_size >= offset)
        else:
            wanted = fp_wanted is None or fp == fp_wanted
            if fp:
                pkey, pos = self._log_of(fp, path, head)
            else:
                pkey = f"path:{path}"
        if (not fp and not batch) or not wanted or pkey in self.streams:
            # no complete first line yet / not the file looked for
            if fd is not None:
                os.close(fd)
            if fp and fp_wanted is None:
                self.skipped[key] = (st.st_size, st.st_mtime_ns)
            return None
        if offset is None:
            offset = int(pos.get("offset", 0)) if (pos is not None and self.use_positions) else 0
        if pos is not None:
            pos["updated"] = self.clock.time()  # still there: keep its position
        size = st.st_size
        if not compressed and offset >= size and (batch or (pos or {}).get("done")):
            os.close(fd)
            self.skipped[key] = (st.st_size, st.st_mtime_ns)
            return None
        if kind == "gzip" and offset and pos is not None and _gzip_isize(path) == offset % (1 << 32):
            self.skipped[key] = (st.st_size, st.st_mtime_ns)  # read to its end before: skip decompressing
            return None
        if compressed:
            fh = open_log(path)
            if offset:
                try:
                    fh.seek(offset)
                except GZIP_ERRORS as exc:
                    fh.close()
                    if isinstance(exc, EOFError) and self.follow and not self._finished_writing(st.st_mtime):
                        raise  # a .gz still being written: the caller looks again later
                    fh = GzipSalvage(path, offset)  # damaged: read up to the damage, then report it
                # (bzip2 and xz: Tolerant, whose seek stops at a damage and whose reads then report it)
        else:
            fh = fd
        # a followed file's MTA, once told, is kept with its position; a batch run tells it anew
        # (by its sample; when that tells none, by what its position keeps: engine._judge). A file
        # once passed over as of no MTA is told anew: its lines may tell now (engine._read_untold).
        saved = (pos or {}).get("mta")
        saved = saved if saved != "unrecognised" else None
        s = Stream(fp=fp, source=spec, path=path, key=key, fh=fh, compressed=compressed, offset=offset,
                   order=(st.st_mtime, -rotation_number(os.path.basename(path))), mtime=st.st_mtime,
                   mta=saved if self.follow else None, size=size, read_at=offset,
                   last_growth=self.clock.monotonic(), compression=kind)
        s.told_before = saved if offset else None
        s.pkey, s.head = pkey, head
        if not compressed:
            s.hole_end = hole[0]
        self.streams[pkey] = s
        self.by_key[key] = pkey
        self.skipped.pop(key, None)
        log.debug("watch: opened %s at offset %d", path, offset)
        return s

    def stream_key(self, s: Stream) -> str:
        return s.pkey or f"path:{s.path}"

    def _log_of(self, fp: str, path: str, head: bytes) -> tuple[str, dict | None]:
        """The position (key, entry) of the log a file holds, by its first line's fingerprint
        `fp` and its text's first bytes `head`: a position of that first line whose check its
        text passes (its own path's first) and that no open file is reading; else a new key
        (`fp`, or `fp~N` when another log starts with the same line: two vhosts' logs of one
        rsyslog both starting with its restart line, a copy beside a log, journal exports)."""
        keys = [k for k in self.positions if k == fp or k.startswith(fp + "~")]
        keys.sort(key=lambda k: self.positions[k].get("path") != path)
        for k in keys:
            if k not in self.streams and _holds(self.positions[k], head, path, fp):
                return k, self.positions[k]
        k, n = fp, 1
        while k in self.positions or k in self.streams:
            k, n = f"{fp}~{n}", n + 1
        return k, None

    @staticmethod
    def _head_check(s: Stream) -> list:
        """[n, sha1 of the first n bytes of the stream's text]: n what was read of it, at most
        HEAD_CHECK_BYTES; what its position keeps to tell its log from another with its first
        line. Of the bytes seen when it was opened or read since (never read again: the file may
        have been truncated meanwhile)."""
        n = min(s.offset, len(s.head))
        if s.head_check is None or s.head_check[0] != n:
            s.head_check = (n, sha1(s.head[:n]).hexdigest())
        return list(s.head_check)

    def candidates(self, path: str, olddir: str = "") -> list[str]:
        """Where a log's old text may be now: `mail.log.1`, `mail.log.1.gz`, `mail.log-2024…`,
        logrotate's `extension .log` names (`mail.1.log`, `mail-20261206.log.gz`), multilog's
        `@<tai64n>.s`; beside the log and in its `olddir` (relative to the log's directory, as
        logrotate reads it); newest first."""
        d, base = os.path.split(path)
        paths = []
        for folder in dict.fromkeys([d or "."] + ([os.path.join(d or ".", os.path.expanduser(olddir))]
                                                  if olddir else [])):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            paths += [os.path.join(folder, n) for n in names
                      if rotated_name_of(n, base) and os.path.join(folder, n) != path]
        try:
            paths.sort(key=lambda p: os.stat(p).st_mtime, reverse=True)
        except OSError:
            pass
        return paths[:SIBLINGS_CHECKED] + ([path] if os.path.exists(path) else [])

    def find_moved(self, spec: SourceSpec, fp: str, last_path: str, offset: int,
                   exclude: tuple[int, int] | None = None, batch: bool = False, pkey: str | None = None,
                   read_before: list[str] | None = None) -> Stream | None:
        """The rest of the log of position `pkey` (first line `fp`, read up to `offset` at
        `last_path`) in a sibling of that path (opened), or None. A sibling that holds that log
        with nothing after `offset` (rotated and compressed after it was read to its end) is
        added to `read_before`."""
        pkey = pkey or fp
        for cand in self.candidates(last_path, spec.olddir):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            key = file_identity(st)
            if key == exclude or key in self.by_key or not stat.S_ISREG(st.st_mode):
                continue
            self.skipped.pop(key, None)  # (set again by _open when the log is there, read to its end)
            try:
                s = self._open(spec, cand, st, fp_wanted=fp, offset=offset, batch=batch, pkey=pkey)
            except (OSError, EOFError):
                continue
            if s is not None:
                log.info("watch: reading the rest of %s from %s (offset %d)", last_path, cand, offset)
                return s
            if key in self.skipped and read_before is not None:
                read_before.append(cand)
        return None

    def resume_unfinished(self, batch: bool = False) -> list[Stream]:
        """Positions left unfinished whose file no longer sits under its name (rotated away,
        copied by copytruncate): found by fingerprint among the siblings of the path they were
        read at, also when the source is not a glob, and opened to be read to their end."""
        found_streams = []
        for pkey, pos in list(self.positions.items()):
            if pos.get("done") or pkey in self.streams or not pos.get("path"):
                continue
            spec = self.source_of(pos["path"])
            if spec is None:
                continue
            fp = pkey.split("~", 1)[0]
            try:
                here = os.stat(pos["path"])
                head = text_head(pos["path"])
                path = pos["path"]
                if fingerprint_of_head(head, lambda: _text_past_hole_of(path))[0] == fp and \
                        _holds(pos, head, pos["path"], fp):
                    continue  # still where it was (a .gz too): read in the ordinary way
            except (OSError, EOFError):
                here = None
            read_before: list[str] = []
            found = self.find_moved(spec, fp, pos["path"], int(pos.get("offset", 0)),
                                    exclude=file_identity(here) if here else None, batch=batch, pkey=pkey,
                                    read_before=read_before)
            if found is not None:
                found.order = (0, 0)  # before the (now new) file under the old name
                found_streams.append(found)
                found_streams += self._rotated_since(spec, pos["path"], found, batch)
            elif read_before:  # rotated (and compressed) after it was read to its end: nothing lost
                log.info("%s: %s was rotated to %s after it was read to its end", "watch" if self.follow else "ingest",
                         pos["path"], read_before[0])
                pos["done"] = True
                pos["updated"] = self.clock.time()
            elif not self.follow or not os.path.exists(pos["path"]) or here is not None:
                if not pos.get("eof", True) and pos.get("size", 0) > pos.get("offset", 0):
                    log.warning("%s: %s (read up to offset %d of %d) was rotated away and is gone: "
                                "its unread end cannot be ingested", "watch" if self.follow else "ingest",
                                pos.get("path"), pos.get("offset", 0), pos.get("size", 0))
                elif os.path.abspath(pos["path"]) == os.path.abspath(os.path.expanduser(spec.pattern)):
                    # read to its end when last seen, but it may have grown before its rotation
                    where = f" or in olddir {spec.olddir}" if spec.olddir else ""
                    log.warning("%s: %s was rotated while not followed, and no rotated copy holding its text was "
                                "found beside it%s: lines written to it after offset %d, if any, are not read. If "
                                "logrotate moves rotated logs to another directory (olddir), set olddir in its "
                                "[[sources]] entry", "watch" if self.follow else "ingest", pos["path"], where,
                                pos.get("offset", 0))
                pos["done"] = True
                pos["updated"] = self.clock.time()
        return found_streams

    def _rotated_since(self, spec: SourceSpec, live: str, found: Stream, batch: bool) -> list[Stream]:
        """The logs rotated away from `live` after the one whose rest was found (`found`), never
        seen (no position knows their first line): a follower stopped over two rotations finds
        its log in mail.log.2.gz, and mail.log.1 was written and rotated while it was down. A
        source that names the live file (not a glob) matched neither; that whole log was lost.
        Opened from their start (their own read order: by time, before the live file)."""
        out = []
        for cand in self.candidates(live, spec.olddir):
            if os.path.abspath(cand) == os.path.abspath(live):
                continue
            try:
                st = os.stat(cand)
                if not stat.S_ISREG(st.st_mode) or file_identity(st) in self.by_key or st.st_mtime <= found.mtime:
                    continue
                fp, _ = fingerprint(cand)
                if not fp or any(k == fp or k.startswith(fp + "~") for k in self.positions):
                    continue  # no first line yet, or a log read before (its position decides)
                s = self._open(spec, cand, st, batch=batch)
            except (OSError, EOFError):
                continue
            if s is not None:
                log.info("%s: reading %s, rotated away from %s while it was not followed",
                         "watch" if self.follow else "ingest", cand, live)
                out.append(s)
        return out

    def source_of(self, path: str) -> SourceSpec | None:
        """The source a file belongs to: matched by its pattern, or a rotated sibling of it
        (`mail.log.1`, `mail.log-DATE.gz` of `mail.log`; `@….s` of multilog's `current`), also
        in the source's olddir."""
        for spec in self.specs:
            if spec.is_stdin:
                continue
            pat = os.path.abspath(os.path.expanduser(spec.pattern))
            full = os.path.abspath(path)
            if fnmatch.fnmatch(full, pat):
                return spec
            folder = os.path.dirname(pat)
            olddir = os.path.normpath(os.path.join(folder, os.path.expanduser(spec.olddir))) if spec.olddir else None
            if os.path.dirname(full) not in (folder, olddir):
                continue
            name, base = os.path.basename(full), os.path.basename(pat)
            if (spec.is_glob and (os.path.dirname(full) == folder or fnmatch.fnmatch(name, base))) \
                    or rotated_name_of(name, base):
                return spec
        return None

    # ------------------------------------------------------------------ followed: finding files
    def scan(self) -> None:
        """Open what is new under the sources (followed)."""
        now = self.clock.monotonic()
        seen: set[tuple[int, int]] = set()
        for spec in self.specs:
            if spec.is_stdin:
                continue
            matches = spec.matches()
            if not matches or not os.path.lexists(matches[0]):
                blocked = blocked_directory(spec.pattern)
                if blocked is not None:  # not "does not exist (yet)", and not silence for a glob
                    self.problem(spec.pattern, blocked_message(None, blocked), backoff=False)
                    continue
            if not spec.is_glob and not os.path.lexists(matches[0]):
                if any(s.path == matches[0] for s in self.streams.values()):
                    self.problem(matches[0], "was renamed or deleted: reading the rest of the open file, "
                                 "waiting for a new one", backoff=False, level=logging.INFO)
                else:
                    self.problem(matches[0], "does not exist (yet): waiting for it to appear", backoff=False)
            for path in matches:
                p = self.problems.get(path)
                if p is not None and now < p["retry_at"]:
                    continue
                if not utf8_name(path):  # one odd file must not stop the follower at its first commit
                    self.problem(path, f"({shown_name(path)}) has a name that is not UTF-8 (Shift_JIS?): not "
                                 "followed; rename it (convmv -f sjis -t utf8 --notest FILE)", backoff=False)
                    continue
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self.problem(path, f"cannot be examined: {exc.strerror}", hint=permission_hint(exc))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if not spec.is_glob:
                        self.problem(path, not_followed(path, st))
                    continue
                key = file_identity(st)
                seen.add(key)
                sk = self.by_key.get(key)
                if sk is not None:
                    self.streams[sk].path = path  # renamed within the glob (mail.log -> mail.log.1)
                    self._solved(path)
                    continue
                if self.skipped.get(key) == (st.st_size, st.st_mtime_ns):
                    continue
                if len(self.streams) >= self.max_open and not self._make_room():
                    self._in_turns()
                    continue  # opened at a later scan, when a file read to its end makes room
                try:
                    self._open(spec, path, st)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self.problem(path, f"cannot be read: {exc.strerror}", hint=permission_hint(exc))
                except EOFError:
                    continue
        for key in [k for k in self.skipped if k not in seen]:
            del self.skipped[key]

    def _make_room(self) -> bool:
        """Close the followed file that has waited longest at its end and still sits under its
        name (it is opened again when it grows, from its position, as an idle one is); False
        when every open file still has something to read."""
        idle = [s for s in self.streams.values() if s.eof and s.read_at == s.offset and not s.piped]
        for s in sorted(idle, key=lambda s: s.last_growth):
            try:
                st = os.stat(s.path)
            except OSError:
                continue
            if file_identity(st) != s.key:
                continue
            self.drop(s)
            self.skipped[s.key] = (st.st_size, st.st_mtime_ns)
            return True
        return False

    def _in_turns(self) -> None:
        if not self._turns_said:
            self._turns_said = True
            log.warning("watch: the sources match more files than can be held open at once (%d, from the limit "
                        "of open files, ulimit -n / LimitNOFILE): they are read in turns, a file read to its "
                        "end making room for the next", self.max_open)

    def ready_streams(self) -> list[Stream]:
        """Open streams in read order whose MTA the engine has decided (asking again those it
        could not tell yet)."""
        out = []
        for s in sorted(self.streams.values(), key=lambda s: s.order):
            if not s.prepared:
                if not self.on_open(s):
                    continue
                s.prepared = True
            out.append(s)
        return out

    # ------------------------------------------------------------------ reading
    def chunks(self, s: Stream, *, budget: int | None = None, block: int | None = None) -> Iterator[Chunk]:
        """The next chunks of whole lines of `s` (up to `budget` bytes; None: to its end).
        Followed files are checked first for truncation or rewriting (identity lost)."""
        block = block or BLOCK_BYTES
        if s.sequential:
            yield from self._chunks_sequential(s, budget, block)
            return
        try:
            st = os.fstat(s.fh)
        except OSError as exc:
            if not self.follow:
                raise  # a batch run reports it as the end of what could be read (engine._damaged)
            self.problem(s.path, f"read failed: {exc.strerror}; retrying")
            return
        size = st.st_size
        if self.follow:
            if size < s.offset:
                self.identity_lost(s, f"shrank from {s.offset} to {size} bytes (truncated)")
                return
            if size == s.offset and st.st_mtime_ns == s.mtime_ns:
                s.eof = True
                return
            s.mtime_ns = st.st_mtime_ns  # changed: check that it still holds the same text

            def past_hole() -> bytes:
                s.hole_end, data = _text_past_hole_fd(s.fh, s.hole_end)
                return data

            try:
                head_fp, _ = fingerprint_of_head(os.pread(s.fh, FINGERPRINT_BYTES, 0), past_hole)
            except OSError as exc:
                self.problem(s.path, f"read failed: {exc.strerror}; retrying")
                return
            if s.fp and head_fp != s.fp:
                self.identity_lost(s, "was rewritten in place (its first line changed)")
                return
        s.size = size
        old_enough = self.clock.time() - st.st_mtime >= PARTIAL_LINE_GRACE_S
        if old_enough and self.follow and s.read_at < size and self._live(s):
            old_enough = False  # its writer may go on: a line completed later was lost as two halves
        if s.read_at == 0 and size >= len(BOM) and os.pread(s.fh, len(BOM), 0) == BOM:
            s.read_at = s.text_start = len(BOM)
            yield Chunk(s, b"", 0, len(BOM), SKIPPED)  # a byte-order mark before the first line
        left = budget
        step = min(FIRST_BLOCK_BYTES, block)  # doubled after each chunk, up to `block`
        while s.read_at < size and (left is None or left > 0):
            if s.long is not None:
                try:
                    chunk = self._long_line(s, size, old_enough)
                except OSError as exc:
                    if not self.follow:
                        raise  # a batch run reports it as the end of what could be read (engine._damaged)
                    self.problem(s.path, f"read failed: {exc.strerror}; retrying")
                    return
                if chunk is None:
                    break  # its end is not written yet
                yield chunk
                continue
            want = min(step, max(FIRST_BLOCK_BYTES, (size - s.read_at + 1) // 2), size - s.read_at)
            if left is not None:
                want = min(want, max(left, FIRST_BLOCK_BYTES))  # a pass reads about `budget`
            try:
                data = _pread_whole_lines(s.fh, want, s.read_at) if want < size - s.read_at else None
                if data is None:
                    data = os.pread(s.fh, want, s.read_at)
            except OSError as exc:
                if not self.follow:
                    raise  # a batch run reports it as the end of what could be read (engine._damaged)
                self.problem(s.path, f"read failed: {exc.strerror}; retrying")
                return
            if not data:
                break
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                start = s.read_at
                if start + len(data) < size:
                    # the line goes on past this read: read on to its newline (up to the longest
                    # line the front door takes), else look through it in bounded memory (LongLine)
                    probe = data if len(data) > MAX_LINE_BYTES else os.pread(s.fh, MAX_LINE_BYTES + 1, start)
                    nl = probe.find(b"\n")
                    if nl >= 0:
                        s.read_at += nl + 1
                        _grow_head(s, start, probe)
                        yield Chunk(s, probe[:nl + 1], start, s.read_at)
                        continue
                    data = probe
                if len(data) > MAX_LINE_BYTES:
                    s.long = LongLine(start)
                    continue
                if old_enough:  # the last line of a finished file
                    s.read_at += len(data)
                    _grow_head(s, start, data)
                    yield Chunk(s, data, start, s.read_at, PARTIAL)
                break
            start = s.read_at
            s.read_at += cut
            if left is not None:
                left -= cut
            step = min(2 * step, block)
            _grow_head(s, start, data)
            yield Chunk(s, data[:cut] if cut < len(data) else data, start, s.read_at)
        s.last_growth = self.clock.monotonic()
        s.eof = s.read_at >= size

    def _live(self, s: Stream) -> bool:
        """Is a followed file still the live log of its source, whose writer may complete its last
        line (the file under its name, and not a rotated name of another file the sources match:
        `mail.log`, not `mail.log.1` or `mail.log-20261206`)? Its unfinished last line is then
        not read after PARTIAL_LINE_GRACE_S: a writer that paused mid-line (buffered rsyslog, a
        full disk, SIGSTOP) and went on later had the line read as two halves, both rejected."""
        try:
            if file_identity(os.stat(s.path)) != s.key:
                return False  # renamed away or replaced: finished
        except OSError:
            return False
        name = os.path.basename(s.path)
        for spec in self.specs:
            if spec.is_stdin:
                continue
            for m in spec.matches():
                if m != s.path and rotated_name_of(name, os.path.basename(m)):
                    return False  # a rotated copy beside the live log
        return True

    @staticmethod
    def _long_line(s: Stream, size: int, finished: bool) -> Chunk | None:
        """A plain file's long line (s.long) looked through on from where it was left, up to
        its end: its LONG chunk, or None while its end is not in the file yet (when `finished`,
        the file's end is the line's)."""
        line = s.long
        while line.end < 0:
            at = line.start + line.seen
            if at > size:  # the file shrank under it: look through it again when it is there
                s.long = None
                return None
            if at == size:
                if not finished:
                    return None
                line.finish()
                break
            if line.in_run and not line.undecided:
                ahead = _next_data(s.fh, at, size)
                if ahead > at:
                    line.nuls(ahead - at)
                    continue
            data = os.pread(s.fh, min(LONG_LINE_READ, size - at), at)
            if not data:
                return None
            line.feed(data)
        s.long = None
        s.read_at = line.end
        return Chunk(s, line.line(), line.start, line.end, LONG)

    @staticmethod
    def _long_line_ends(s: Stream, data: bytes) -> tuple[Chunk | None, bytes]:
        """A sequential stream's long line (s.long) looked through `data`, the stream's next
        bytes: its LONG chunk when it ends in them (else None), and the bytes after it."""
        line = s.long
        if not line.feed(data):
            return None, b""
        s.long = None
        s.read_at = line.end
        rest = data[len(data) - (line.start + line.seen - line.end):]
        return Chunk(s, line.line(), line.start, line.end, LONG), rest

    def _chunks_sequential(self, s: Stream, budget: int | None, block: int) -> Iterator[Chunk]:
        """A .gz file or standard input: read on from where the last read stopped."""
        left = budget
        step = min(FIRST_BLOCK_BYTES, block)  # doubled after each chunk, up to `block`
        while not s.finished and (left is None or left > 0):
            try:
                data = s.fh.read(step)
            except GZIP_ERRORS as exc:
                if not s.compressed or isinstance(s.fh, GzipSalvage):
                    raise  # an I/O error of a plain stream: the engine's to report
                if isinstance(exc, EOFError) and self.follow and not self._finished_writing(s.mtime):
                    self.drop(s)  # a .gz still being written: read it again from the offset later
                    return
                # a damaged .gz: read on from the same text offset up to the damage (what the
                # failed read had decompressed is lost with it), then report the damage
                s.fh.close()
                s.fh = GzipSalvage(s.path, s.long.start + s.long.seen if s.long else s.read_at + len(s.carry))
                continue
            if not data:
                damage = getattr(s.fh, "damage", None)
                being_written = damage is not None and not s.piped and not self._finished_writing(s.mtime)
                if being_written and self.follow:
                    self.drop(s)  # a compressed file still being written: read it again from the offset later
                    return
                if damage is not None:
                    # the readable text ends here: the line cut by the damage and the rest of the
                    # file are not read, and the file is not finished (s.eof stays False)
                    s.finished = True
                    s.carry = b""
                    s.long = None
                    if being_written and damage.startswith("cut short"):
                        # a batch run meeting a file logrotate is compressing right now: read up to
                        # here, the rest by the next run (its position stays here), not a damage
                        log.info("ingest: %s ends early but was modified in the last %d s: read up to byte %d, "
                                 "the rest next time", s.path, PARTIAL_LINE_GRACE_S, s.read_at)
                        return
                    if self.follow:  # a batch run's summary names it (the CLI warns)
                        log.warning("watch: %s is damaged after %d bytes of its text: %s; the lines before "
                                    "were read, the rest cannot be", s.path, s.read_at, damage)
                    yield Chunk(s, damage.encode(), s.read_at, s.read_at, DAMAGED)
                    return
                s.finished = s.eof = True
                if s.carry and len(s.carry) > MAX_LINE_BYTES:
                    s.long = LongLine(s.read_at)
                    s.long.feed(s.carry)
                    s.carry = b""
                if s.long is not None:  # its last line has no newline and is long
                    line, s.long = s.long, None
                    line.finish()
                    s.read_at = line.end
                    yield Chunk(s, line.line(), line.start, line.end, LONG)
                elif s.carry:  # its last line has no newline: read it as it is
                    last, s.carry = s.carry, b""
                    start = s.read_at
                    s.read_at += len(last)
                    yield Chunk(s, last, start, s.read_at, PARTIAL)
                return
            if s.long is not None:
                long_chunk, data = self._long_line_ends(s, data)
                if long_chunk is None:
                    continue
                yield long_chunk
            data = s.carry + data if s.carry else data
            if s.read_at == 0 and data[:len(BOM)] == BOM:
                s.read_at = s.text_start = len(BOM)
                yield Chunk(s, b"", 0, len(BOM), SKIPPED)  # a byte-order mark before the first line
                data = data[len(BOM):]
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                s.carry = b""
                if len(data) > MAX_LINE_BYTES:  # looked through in bounded memory, not carried
                    s.long = LongLine(s.read_at)
                    s.long.feed(data)
                else:
                    s.carry = data
                continue
            s.carry = data[cut:]
            start = s.read_at
            s.read_at += cut
            if left is not None:
                left -= cut
            step = min(2 * step, block)
            yield Chunk(s, data[:cut] if cut < len(data) else data, start, s.read_at)
        s.last_growth = self.clock.monotonic()

    def _finished_writing(self, mtime: float) -> bool:
        """A .gz not modified for PARTIAL_LINE_GRACE_S is complete: one that ends early is damaged."""
        return self.clock.time() - mtime >= PARTIAL_LINE_GRACE_S

    def read_head(self, s: Stream, max_lines: int) -> list[str]:
        """Up to `max_lines` lines from the start of the stream's text (for telling its MTA);
        the last one only if complete. A hole at its start (NUL bytes a crash left, of any
        length) is passed over: the lines after it tell. Standard input: the lines of its first
        chunks are used by the engine instead."""
        out: list[bytes] = []
        window = 1 << 20
        try:
            if s.compressed:  # a damaged one: judged by what can be read
                with (GzipSalvage(s.path) if s.compression == "gzip" else open_log(s.path)) as fh:
                    data = fh.read(window)
                    while data[:1] == b"\0":
                        rest = data.lstrip(b"\0")
                        data = rest + fh.read(window - len(rest)) if rest else fh.read(window)
                    s.head_damage = fh.damage
                out = data.splitlines(keepends=True)[:max_lines]
            else:
                at = _after_leading_hole(s.fh) if os.pread(s.fh, 1, 0) == b"\0" else 0
                data = os.pread(s.fh, window, at)
                out = data.splitlines(keepends=True)[:max_lines]
        except OSError:
            pass
        return [raw.decode("utf-8", "replace").rstrip("\r\n") for raw in out if raw.endswith(b"\n") or s.compressed]

    SPREAD_WINDOW = 1 << 20

    def read_spread(self, s: Stream, max_lines: int) -> list[str]:
        """Up to `max_lines` whole lines from further into the stream's text than read_head's
        first `max_lines`, spread over it: the rest of its first MiB, and windows at a third, two
        thirds and the end of a plain file (the rest of the first 16 MiB of a compressed one). A
        combined syslog (Debian's /var/log/syslog) may hold thousands of boot lines before its
        first mail line: its MTA is told by these."""
        lines: list[bytes] = []
        try:
            if s.compressed:
                with (GzipSalvage(s.path) if s.compression == "gzip" else open_log(s.path)) as fh:
                    data = fh.read(16 * self.SPREAD_WINDOW)
                lines = data[:data.rfind(b"\n") + 1].splitlines()[max_lines:]
            else:
                size = os.fstat(s.fh).st_size
                data = os.pread(s.fh, self.SPREAD_WINDOW, 0)
                lines = data[:data.rfind(b"\n") + 1].splitlines()[max_lines:]
                for at in (size // 3, 2 * size // 3, size - self.SPREAD_WINDOW):
                    if at > self.SPREAD_WINDOW:  # (beyond the first MiB)
                        data = os.pread(s.fh, self.SPREAD_WINDOW, at)
                        lines += data[data.find(b"\n") + 1:data.rfind(b"\n") + 1].splitlines()
        except OSError:
            pass
        step = max(1, -(-len(lines) // max(1, max_lines)))  # (rounded up: the picks reach the end)
        return [raw.decode("utf-8", "replace").rstrip("\r") for raw in lines[::step]]

    # ------------------------------------------------------------------ rotation
    def identity_lost(self, s: Stream, why: str) -> None:
        """The open file no longer holds the text being read (copytruncate, rewritten): finish
        the old text from a copy with the same fingerprint, then read the file as new."""
        log.info("watch: %s %s", s.path, why)
        self.drop(s)
        moved = self.find_moved(s.source, s.fp, s.path, s.offset, exclude=s.key, pkey=s.pkey)
        if moved is not None:
            moved.order = (0, 0)  # before the (now new) file under the old name
            moved.mta = s.mta
            return
        pos = self.positions.pop(s.pkey, None) or {}
        if not s.eof:
            log.warning("watch: %s: the end of its previous content (after offset %d) was not read before it was "
                        "truncated and no rotated copy was found: those lines are lost", s.path, s.offset)
        elif pos:
            log.info("watch: %s: previous content had been read completely", s.path)

    def drop(self, s: Stream, done: bool = False) -> None:
        """Close a stream; its position (in memory, saved with the next commit) keeps where it was."""
        pos = self.positions.get(s.pkey) if s.fp else None
        if pos is not None:
            pos["head"] = self._head_check(s)
        s.close()
        if s.fp:
            if pos is not None:
                pos.update(offset=s.offset, path=s.path, eof=s.eof, size=max(s.size, s.offset), updated=self.clock.time())
                if s.mta:
                    pos["mta"] = "unrecognised" if s.unrecognised else s.mta
                if done:
                    pos["done"] = True
        sk = self.stream_key(s)
        if self.streams.get(sk) is s:
            del self.streams[sk]
        if self.by_key.get(s.key) == sk:
            del self.by_key[s.key]

    def close_idle(self) -> bool:
        """Close files quiet for IDLE_CLOSE_S. One still under a source pattern is reopened when
        it grows; one rotated away (no longer matched) or deleted is finished. True when a
        position changed."""
        now = self.clock.monotonic()
        changed = False
        for s in list(self.streams.values()):
            if not s.eof or now - s.last_growth < IDLE_CLOSE_S or s.read_at != s.offset:
                continue
            still_there = False
            try:
                st = os.stat(s.path)
                still_there = file_identity(st) == s.key and self.source_of(s.path) is not None and any(
                    s.path in spec.matches() for spec in self.specs if not spec.is_stdin)
            except OSError:
                pass
            self.drop(s, done=not still_there)
            if still_there:
                self.skipped[s.key] = (st.st_size, st.st_mtime_ns)
            changed = True
            log.debug("watch: closed idle %s (%s)", s.path, "kept" if still_there else "finished")
        return changed

    def snapshot_positions(self) -> None:
        """Copy the open streams' consumed offsets into the positions (before a commit)."""
        now = self.clock.time()
        for s in self.streams.values():
            if not s.fp:
                continue
            pos = self.positions.setdefault(s.pkey, {})
            pos.update(offset=s.offset, path=s.path, updated=now, size=max(s.size, s.offset),
                       eof=s.eof and s.read_at == s.offset, done=False, head=self._head_check(s))
            if s.mta:
                pos["mta"] = "unrecognised" if s.unrecognised else s.mta

    def prune(self) -> None:
        now = self.clock.time()
        for fp in [fp for fp, p in self.positions.items()
                   if p.get("done") and now - p.get("updated", now) > POSITION_KEEP_S]:
            del self.positions[fp]

    def close(self) -> None:
        for s in list(self.streams.values()):
            s.close()
        self.streams.clear()
        self.by_key.clear()

    # ------------------------------------------------------------------ problems
    def problem(self, path: str, msg: str, *, backoff: bool = True, level: int = logging.WARNING,
                hint: str = "") -> None:
        """Report a file problem once (again only when it changes); retry with backoff. `hint`:
        what to do about it, said after the problem."""
        p = self.problems.get(path)
        now = self.clock.monotonic()
        if p is None or p["msg"] != msg:
            if backoff:
                log.log(level, "watch: %s %s (retrying with backoff; other sources keep going)%s", path, msg,
                        f": {hint}" if hint else "")
            else:
                log.log(level, "watch: %s %s", path, msg)
            p = {"msg": msg, "attempt": 1}
        else:
            p["attempt"] += 1
        p["retry_at"] = now + (backoff_delay(p["attempt"], 1.0, RETRY_MAX_S) if backoff else 0.0)
        self.problems[path] = p

    def _solved(self, path: str) -> None:
        if self.problems.pop(path, None) is not None:
            log.info("watch: %s is back and readable", path)

    def interesting(self, path: str) -> bool:
        """A file-system event on `path` concerns a source (for the follower's wake-ups)."""
        try:
            if any(s.path == path for s in list(self.streams.values())):
                return True
        except RuntimeError:  # the main thread changed the streams meanwhile: just wake up
            return True
        return any(fnmatch.fnmatch(path, os.path.expanduser(spec.pattern)) for spec in self.specs)


_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def rotated_name_of(name: str, base: str) -> bool:
    """Is `name` a rotated name of the log `base` (the live file's name)? `base` + anything
    (`mail.log.1`, `mail.log-20261206.gz`); with logrotate's `extension .log`, the stem, one
    more part, then the extension (`mail.1.log`, `mail-20261206.log`, either compressed);
    multilog's `@<tai64n>.s` of `current`. (A wrong guess costs one fingerprint read.)"""
    if name == base:
        return False
    if name.startswith(base) or (base == "current" and name.startswith("@")):
        return True
    stem, ext = os.path.splitext(base)
    if not stem or not ext:
        return False
    for suffix in _COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    middle = name[len(stem):-len(ext)] if name.startswith(stem) and name.endswith(ext) else ""
    return len(middle) > 1 and middle[0] in ".-_" and "/" not in middle


def open_files_budget() -> int:
    """How many followed files may be held open at once (FILES_RESERVE kept for the rest)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1 << 20
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 1 << 20
    return max(8, soft // 2 - FILES_RESERVE)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one (systemd's LimitNOFILE default is
    1024:524288, the soft one kept low for select(), which this process does not use); returns
    the soft limit in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):
            pass
    return soft


def not_followed(path: str, st: os.stat_result) -> str:
    """Why a source path that is no regular file is not followed, and what to give instead."""
    if stat.S_ISDIR(st.st_mode):
        return (f"is a directory: give a log file or a glob in the config, e.g. path = "
                f"\"{os.path.join(path, 'mail.log*')}\"")
    if stat.S_ISFIFO(st.st_mode):
        return "is a named pipe: watch follows regular files (pipe the stream into `mailhygiene ingest -` instead)"
    return "is not a regular file (a device or socket): give a log file"


def text_head(path: str | os.PathLike) -> bytes:
    """The first HEAD_CHECK_BYTES of a log's text (decompressed; a damaged .gz: up to its damage)."""
    with open_log(path) as fh:
        try:
            return fh.read(HEAD_CHECK_BYTES)
        except GZIP_ERRORS:
            if not isinstance(fh, gzip.GzipFile):
                raise
    with GzipSalvage(path) as salvage:
        return salvage.read(HEAD_CHECK_BYTES)


def _holds(pos: dict, head: bytes, path: str, fp: str) -> bool:
    """Does a file whose text starts with `head` hold the log of position `pos` (whose first
    line's fingerprint is `fp`)? Yes when its first bytes are those the position's check covers
    (what was read of that log: reading on from its offset loses nothing). A position saved
    before checks were kept: when it was read at `path`, or its file there is gone or holds the
    same text before its offset."""
    check = pos.get("head")
    if isinstance(check, list) and len(check) == 2 and isinstance(check[0], int):
        n, digest = check
        return len(head) >= n and sha1(head[:n]).hexdigest() == digest
    offset = pos.get("offset", 0)
    return not offset or pos.get("path") in (None, path) or not _other_text(path, pos["path"], fp, offset)


def _other_text(path: str, other: str, fp: str, offset: int) -> bool:
    """Is `path` another log than `other`, where the position of their shared fingerprint `fp`
    was read? Only when `other` still starts with that line (else it is a new log under a
    rotated name, and `path` the old one moved: its position holds) and their texts differ
    before `offset` (at most the first 64 KiB compared). False when `other` is gone or unreadable."""
    n = min(offset, 64 << 10)
    try:
        if os.path.samefile(path, other) or fingerprint(other)[0] != fp:
            return False
        heads = []
        for p in (path, other):
            with open_log(p) as fh:
                heads.append(fh.read(n))
    except (OSError, EOFError, zlib.error):
        return False
    a, b = heads
    m = min(len(a), len(b))
    return a[:m] != b[:m]


def cannot_read(path, exc: OSError) -> str:
    """`cannot read PATH: <why>` with what to do about it."""
    text = f"cannot read {path}: {exc.strerror or exc}"
    hint = permission_hint(exc)
    return f"{text} ({hint})" if hint else text


def permission_hint(exc: OSError) -> str:
    """What to do when a log may not be read (batch runs and `watch` say the same), else ""."""
    import errno

    if exc.errno not in (errno.EACCES, errno.EPERM):
        return ""
    return (f"this user, uid {os.geteuid()}, may not read it: give the service user read access to the "
            "logs, e.g. on Debian add it to the adm group: adduser mailhygiene adm")


def blocked_directory(pattern: str) -> str | None:
    """The first directory on the way to `pattern` (a path or a glob) that this user may not enter
    (or, for the directory a glob lists, read): nothing under it can be seen, so "does not exist"
    or "matches no file" would be wrong (/var/log/exim4 is 2750 root:adm on Debian). None when
    every one may be, or when one of them does not exist."""
    parts = Path(os.path.abspath(os.path.expanduser(pattern))).parts
    d = Path(parts[0])
    for part in parts[1:]:
        if not d.is_dir():
            return None
        listed = glob.has_magic(part)
        if not os.access(d, os.X_OK | (os.R_OK if listed else 0)):
            return str(d)
        if listed:
            return None
        d = d / part
    return None


def blocked_message(path: str | None, directory: str) -> str:
    """`cannot reach PATH: ...` (without PATH: `cannot be reached: ...`) with what to do."""
    return (f"{f'cannot reach {path}' if path else 'cannot be reached'}: this user, uid {os.geteuid()}, may not "
            f"enter the directory {directory}: "
            "give the service user access to the logs, e.g. on Debian add it to the adm group: "
            "adduser mailhygiene adm")


def _gzip_isize(path: str) -> int | None:
    """The uncompressed size (mod 2**32) from a gzip trailer, or None."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError:
        return None
