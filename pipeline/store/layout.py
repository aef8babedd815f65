"""Where the event store's files are and whether they are whole, without numpy or pyarrow.

`events/date=YYYY-MM-DD/part-*.parquet` under the data dir (one directory per UTC day, written by
event_store.EventStore). Readers that only list and check the files (the DuckDB views of
warehouse.attach_views: `suppress`, `report`, `suppression list`, pipeline.connect()) use this
module, so their start-up does not import the writer's numpy and pyarrow.
"""

from __future__ import annotations

from pathlib import Path

PARTITION_PREFIX = "date="
# The data dir's folders of state that only the program writes (the events, the list and its
# history, read positions, the send queue, reject samples): never an output's place. exports/
# and reports/ are outputs.
STATE_SUBDIRS = ("events", "suppression", "state", "sender", "rejects")


def inside_state(data_dir: str | Path, path: str | Path) -> Path | None:
    """The state folder of `data_dir` (STATE_SUBDIRS) that `path` would be written into, or None."""
    import os

    real = Path(os.path.realpath(path))
    for name in STATE_SUBDIRS:
        folder = Path(os.path.realpath(Path(data_dir) / name))
        if real == folder or folder in real.parents:
            return folder
    return None


def events_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "events"


def partitions(data_dir: str | Path) -> list[Path]:
    root = events_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PARTITION_PREFIX))


def stored_files(data_dir: str | Path, day: str | None = None) -> list[Path]:
    """The stored Parquet files (of one UTC day), in name order."""
    dirs = [events_root(data_dir) / f"{PARTITION_PREFIX}{day}"] if day else partitions(data_dir)
    out: list[Path] = []
    for d in dirs:
        if d.is_dir():
            out.extend(sorted(d.glob("*.parquet")))
    return out


def files_glob(data_dir: str | Path) -> str:
    return str(events_root(data_dir) / f"{PARTITION_PREFIX}*" / "*.parquet")


def check_files(data_dir: str | Path, files: list[Path] | None = None) -> None:
    """Every stored file is a whole Parquet file, else StoreCorrupt naming it and how to recover.

    A listed file that is gone by the time it is checked is not damage: a running `watch` or
    `ingest` compacted it into a new file (which a fresh listing shows), so it is passed over."""
    for f in stored_files(data_dir) if files is None else files:
        problem = damage(f)
        if problem and f.exists():
            raise corrupt(f, problem, Path(data_dir))


def damage(path: Path) -> str | None:
    """Why a file is not a whole Parquet file (magic bytes at both ends, a footer that fits), or
    None. Cheap: 12 bytes read."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
            if size < 12:
                return f"{size} bytes: truncated"
            fh.seek(size - 8)
            tail = fh.read(8)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if head != b"PAR1" or tail[4:] != b"PAR1":
        return "truncated or not a Parquet file"
    footer = int.from_bytes(tail[:4], "little")
    if footer <= 0 or footer > size - 12:
        return "its footer does not fit in the file: truncated"
    return None


def corrupt(path: Path, problem: str, data_dir: Path):
    """The error for a damaged store file: which file, and how to recover."""
    from ..core.errors import StoreCorrupt

    quarantine = Path(data_dir) / "quarantine"
    return StoreCorrupt(
        f"the event store file {path} is damaged ({problem}). To recover: move it out of the store "
        f"(mkdir -p {quarantine} && mv {path} {quarantine}/), then read the logs it came from again "
        f"with `mailhygiene ingest --reread LOGS` (its source_file column named them; rows still "
        f"stored are not stored twice)")
