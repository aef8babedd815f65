"""Log file identity and read positions.

A position is (fingerprint, byte offset in the decompressed text). The fingerprint is a hash of
the file's first line (at most FINGERPRINT_BYTES), so `mail.log` renamed to `mail.log.1` and later
compressed to `mail.log.1.gz` is still recognised as the same log and is read on from where it
was left, not again. Positions are saved atomically (temp file + os.replace) and only after the
events they cover are durable in the event store.

Owner of <data_dir>/state/positions.json. Called by pipeline.ingest.engine and pipeline.ingest.follow.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from pathlib import Path

FINGERPRINT_BYTES = 1024


def open_log(path: str | os.PathLike):
    """Binary file object over the log's text, transparently gunzipping `.gz` files."""
    path = Path(path)
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def is_compressed(path: str | os.PathLike) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def fingerprint(path: str | os.PathLike) -> tuple[str, int]:
    """(hash of the first line, capped at FINGERPRINT_BYTES; how many bytes it covers).

    The first line does not change while a log grows, is carried over by rename, compression
    and copytruncate's copy, and differs between two logs (it has a time stamp). A file with no
    complete first line yet has no identity: (``""``, 0), and is read from the start.
    """
    with open_log(path) as fh:
        try:
            head = fh.readline(FINGERPRINT_BYTES)
        except EOFError:
            head = b""
    return fingerprint_of_head(head)


def fingerprint_of_head(head: bytes) -> tuple[str, int]:
    """The fingerprint rule applied to the file's first bytes (at least its first line or
    FINGERPRINT_BYTES of it): lets a follower check an open file without reopening its path."""
    nl = head.find(b"\n", 0, FINGERPRINT_BYTES)
    head = head[: nl + 1] if nl >= 0 else head[:FINGERPRINT_BYTES]
    if not head or (len(head) < FINGERPRINT_BYTES and not head.endswith(b"\n")):
        return "", 0
    return hashlib.sha1(head).hexdigest(), len(head)


def file_identity(st: os.stat_result) -> tuple[int, int]:
    """(device, inode): tells a renamed-away file from the new one created under its name."""
    return st.st_dev, st.st_ino


class Positions:
    """Durable map fingerprint -> {offset, path, updated}."""

    def __init__(self, data_dir: str | os.PathLike):
        self.path = Path(data_dir) / "state" / "positions.json"
        self.data: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.data = {}

    def offset(self, fp: str) -> int:
        return int(self.data.get(fp, {}).get("offset", 0))

    def set(self, fp: str, offset: int, path: str) -> None:
        self.data[fp] = {"offset": offset, "path": path, "updated": time.time()}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
