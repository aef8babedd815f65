"""The parser session: one parser per MTA, the state file, the front door for lines, commits.

Owns <data_dir>/state/ingest-state.json: the read positions (pipeline.ingest.source) and every
parser's state (Postfix/sendmail queue ids awaiting a final line, qmail deliveries under way) in
ONE file, replaced atomically with fsync (pipeline.core.fsutil) and only after the events it
covers are durable in the event store. Positions and parser state therefore always describe the
same line boundary: a kill at any moment re-reads at most the lines after the last saved state,
whose events the store drops by event id. The parsers keep only live entries, bounded in number,
so the file's size (and the cost of writing it) does not grow with the history read.

Holds <data_dir>/state/ingest.lock while a session runs (a batch run, or `watch` for as long as
it runs): one session at a time owns the state. A batch run that finds a live `watch` (which
holds <data_dir>/state/watch.lock) runs as a private session instead: it reads its files from
the start, marks nothing as read and saves no state; the store still keeps one copy of each line.

Samples of rejected lines go to <data_dir>/rejects/*.jsonl (RejectLog), which a run that starts
a file prunes (prune_rejects: ingest.reject_files, reject_files_mib, reject_files_days).

Called by pipeline.ingest.engine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from ..classify.carriers import CarrierTable
from ..core import fsutil
from ..core.config import IngestSettings
from ..core.errors import LockedError, StoreError
from ..store.event_store import EventStore
from .parsers import EVENT, SKIP, ParseContext, Parser, parser_class
from .parsers.common import NUL_RUN_RE, decode_line
from .sink import EventBuffer, Sink, written_count

log = logging.getLogger("mailhygiene.watch")

STATE_FILE = "ingest-state.json"
REJECTS_DIR = "rejects"
PRUNE_LOCK = ".prune.lock"
SAMPLE_BYTES = 4096       # of a rejected line, kept in its sample
SESSION_LOCK = "ingest.lock"
WATCH_LOCK = "watch.lock"
STATE_VERSION = 2
SESSION_LOCK_WAIT_S = 600.0


@dataclass
class IngestSummary:
    """What an ingest read and stored: the command's summary (and its --json)."""

    files: list[dict] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    events_parsed: int = 0
    events_written: int = 0
    written_by_status: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    recovered: int = 0
    other_lines: int = 0           # lines of no MTA in a file of several (--format auto)
    local_deliveries: int = 0      # deliveries to recipients that are no address (`root`, `|prog`): not events
    rejects_file: str | None = None
    seconds: float = 0.0
    private: bool = False          # a live watch owns the state: nothing was marked as read
    commits: int = 0
    compactions: int = 0
    unmatched: list[str] = field(default_factory=list)  # globs given that matched no file

    @property
    def duplicates(self) -> int:
        return self.events_parsed - self.events_written

    @property
    def refused(self) -> list[dict]:
        """Files not read: not recognised as any MTA's, or not of the --format given."""
        return [f for f in self.files if f.get("problem")]

    @property
    def damaged(self) -> list[dict]:
        """Files read up to a damage (a corrupt or cut .gz, an I/O error): the rest is unread."""
        return [f for f in self.files if f.get("damaged")]

    def as_dict(self) -> dict:
        return {
            "files": self.files, "lines": self.lines, "bytes": self.bytes,
            "events_parsed": self.events_parsed, "events_written": self.events_written,
            "already_stored": self.duplicates,
            "written_by_status": dict(self.written_by_status),
            "lines_rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected), "recovered_from_rejected": self.recovered,
            "other_lines": self.other_lines, "local_deliveries": self.local_deliveries,
            "rejects_file": self.rejects_file, "seconds": round(self.seconds, 3),
            "private_session": self.private,
            "unmatched_patterns": self.unmatched,
        }


WatchSummary = IngestSummary


def rejected_text(rejected: Counter) -> str:
    """`N lines rejected` with the count of each reason (`3 lines rejected (malformed 1,
    result_without_start 2)`): what `watch` logs as it goes and when it stops."""
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()) if v)
    return f"{sum(rejected.values())} lines rejected" + (f" ({reasons})" if reasons else "")


class RejectLog:
    """Counts bad lines and keeps up to `reject_samples` samples (file, offset, reason, text) as
    JSONL in a file of its own under <data_dir>/rejects/ (a followed session: a file a day, so a
    watch of weeks keeps recent samples too). Starting a file prunes the folder (prune_rejects)
    to the newest `reject_files` files, `reject_files_mib` MiB and `reject_files_days` days,
    never removing a file this process writes or has named (`named`: a summary printed it) or
    one another process is writing (it holds a shared flock on it while open)."""

    named: set[str] = set()   # this process's sample files (a followed session: its current one)
    _files = 0                # files this process has started (a part of their names)

    def __init__(self, data_dir: Path, settings: IngestSettings, summary: IngestSummary, *, daily: bool = False):
        self.dir = data_dir / REJECTS_DIR
        self.settings = settings
        self.limit = settings.reject_samples
        self.daily = daily
        self.kept = 0
        self.summary = summary
        self._fh = None
        self._path: str | None = None
        self._day: str | None = None

    def add(self, reason: str, source: str, offset: int, raw: bytes) -> None:
        self.summary.rejected[reason] += 1
        if self.daily and self._fh is not None and _today() != self._day:
            self._roll()
        if self.kept >= self.limit:
            return
        if self._fh is None:
            self._start()
        nbytes = len(raw)
        if b"\x00" in raw:  # a hole's NUL run as one NUL: the line after it shows
            raw = NUL_RUN_RE.sub(b"\x00", raw)
        sample = raw[:SAMPLE_BYTES].decode("utf-8", "backslashreplace")
        self._fh.write(json.dumps({"file": source, "offset": offset, "reason": reason,
                                   "bytes": nbytes, "line": sample}, ensure_ascii=False) + "\n")
        self.kept += 1

    def _start(self) -> None:
        """A new sample file, locked (shared) before it has its name: no prune removes it."""
        fsutil.ensure_dir(self.dir)
        RejectLog._files += 1
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{RejectLog._files}.jsonl"
        path, part = self.dir / name, self.dir / f".{name}.part"
        try:
            fh = open(part, "a", encoding="utf-8", buffering=1)  # (line by line: a watch's samples show at once)
            fcntl.flock(fh, fcntl.LOCK_SH)
            os.replace(part, path)
        except OSError as exc:
            raise StoreError(f"cannot write reject samples to {path}: {fsutil.describe_os_error(exc)}") from None
        self._fh, self._path, self._day = fh, str(path), _today()
        RejectLog.named.add(self._path)
        self.summary.rejects_file = self._path
        s = self.settings
        removed = prune_rejects(self.dir, files=s.reject_files, total_bytes=s.reject_files_mib << 20,
                                days=s.reject_files_days, keep=RejectLog.named)
        if removed:
            log.info("ingest: removed %d old reject sample file(s) from %s (ingest.reject_files = %d, "
                     "reject_files_mib = %d, reject_files_days = %d)", len(removed), self.dir, s.reject_files,
                     s.reject_files_mib, s.reject_files_days)

    def _roll(self) -> None:
        """A new day of a followed session: the day's file is closed (no longer this process's to
        keep), the next sample starts the next one."""
        self.close()
        RejectLog.named.discard(self._path)
        self.kept = 0

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None


def _today() -> str:
    return time.strftime("%Y%m%d")


def prune_rejects(directory: Path, *, files: int, total_bytes: int, days: int, keep: set[str],
                  now: float | None = None) -> list[Path]:
    """Remove the reject sample files (`*.jsonl`) of `directory` beyond the newest `files`, beyond
    `total_bytes` in all (newest first), and older than `days` (0: any age), except those in
    `keep` and those another process is writing (it holds a lock on them). Each removal is one
    unlink of a whole file; a prune running elsewhere (its lock held) leaves this one undone.
    Returns the files removed."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        with fsutil.file_lock(directory / PRUNE_LOCK, wait=0):
            found = []
            for path in directory.glob("*.jsonl"):
                try:
                    st = path.stat()
                except OSError:
                    continue
                found.append((st.st_mtime, path.name, path, st.st_size))
            found.sort(reverse=True)
            count = size = 0  # of the files kept
            for mtime, _, path, nbytes in found:
                beyond = count >= files or size + nbytes > total_bytes or (days and now - mtime > days * 86400)
                if not beyond or str(path) in keep or _being_written(path):
                    count += 1
                    size += nbytes
                    continue
                try:
                    path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("ingest: cannot remove the old reject samples %s: %s", path,
                                fsutil.describe_os_error(exc))
                    break
    except (LockedError, StoreError):
        return removed  # another process is pruning (or the folder cannot take a lock): next time
    return removed


def _being_written(path: Path) -> bool:
    """Does another process hold the file's lock (a RejectLog still writing it)?"""
    try:
        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def _checked_state(data) -> dict:
    """The state file's content when it has the shape this version writes; ValueError (naming
    what is wrong) for another version, or JSON of another shape (a file written by something
    else, edited by hand): the caller then reads the sources from their start."""
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(data), "null")
        raise ValueError(f"a JSON {kind}, not this program's state")
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"state version {data.get('version')}")
    positions = data.get("positions", {})
    parsers = data.get("parsers", {})
    if not isinstance(positions, dict) or not isinstance(parsers, dict):
        raise ValueError("'positions' and 'parsers' must be JSON objects")
    for fp, pos in positions.items():
        if not isinstance(pos, dict) or not isinstance(pos.get("offset", 0), int) or \
                not isinstance(pos.get("path", ""), str):
            raise ValueError(f"position {fp!r} is not an object with an integer offset and a path")
    for mta, st in parsers.items():
        if not isinstance(st, dict):
            raise ValueError(f"the {mta!r} parser state is not an object")
    return data


def watch_is_running(data_dir: Path) -> bool:
    """True while a `mailhygiene watch` process holds <data_dir>/state/watch.lock."""
    return fsutil.is_locked(Path(data_dir) / "state" / WATCH_LOCK)


def watch_lock(data_dir: Path):
    """The lock a running watch holds (`clean` and `ingest` probe it; a second watch is refused)."""
    path = Path(data_dir) / "state" / WATCH_LOCK
    return fsutil.job_lock(data_dir, WATCH_LOCK.removesuffix(".lock"), wait=2.0,  # `clean` may be probing it a moment
                           busy=f"another `mailhygiene watch` is already following logs into {data_dir} "
                                f"(lock {path}); stop it first")


class Session:
    """One ingest session; see the module docstring. Use as a context manager."""

    def __init__(self, data_dir: Path, tz: ZoneInfo, settings: IngestSettings, carriers: CarrierTable, *,
                 year: int | None = None, private: bool = False, summary: IngestSummary | None = None,
                 followed: bool = False):
        self.data_dir = Path(data_dir)
        self.tz = tz
        self.settings = settings
        self.year = year or settings.year or None
        self.private = private
        self.summary = summary or IngestSummary()
        self.summary.private = private
        self.state_path = self.data_dir / "state" / STATE_FILE
        self.store = EventStore(self.data_dir)
        self.buffer = EventBuffer(carriers)
        self.sink = Sink(self.store)
        self.rejects = RejectLog(self.data_dir, settings, self.summary, daily=followed)
        self.parsers: dict[str, Parser] = {}
        self.positions: dict[str, dict] = {}
        self._parser_states: dict[str, dict] = {}
        self._pending = None   # (future, state text, table) of the batch the writer is storing
        self._failed = None    # (table, state text) of a batch the store refused: stored before anything else
        self._lock = None
        self._saved_state: str | None = None  # the state file's text as last read or written

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> "Session":
        if not self.private:
            lock = self.data_dir / "state" / SESSION_LOCK

            def waiting(holder: str) -> None:  # said at once: a silent wait of minutes looks like a hang
                log.warning("ingest: another ingest of %s is running (%slock %s): waiting up to %.0f s for it "
                            "to finish", self.data_dir, f"pid {holder}, " if holder.isdigit() else "", lock,
                            SESSION_LOCK_WAIT_S)

            self._lock = fsutil.file_lock(
                lock, wait=SESSION_LOCK_WAIT_S, write_pid=True, on_wait=waiting,
                busy=f"another ingest of {self.data_dir} has been running for {SESSION_LOCK_WAIT_S:.0f} s "
                     f"(lock {lock}); try again when it has finished")
            self._lock.__enter__()
            self._load()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.finish_pending()
        finally:
            self.sink.close()  # after an error the last batch is stored, its state not: re-read, deduped
            self.rejects.close()
            if self._lock is not None:
                self._lock.__exit__(exc_type, exc, tb)
                self._lock = None

    def _load(self) -> None:
        try:
            text = self.state_path.read_text()
            data = _checked_state(json.loads(text))
            self._saved_state = text
        except FileNotFoundError:
            data = self._legacy_state()
        except (OSError, ValueError) as exc:
            log.warning("ingest: %s is unreadable (%s): reading the sources from their start "
                        "(events already stored are not stored again)", self.state_path, exc)
            data = {}
        self.positions = data.get("positions", {})
        self._parser_states = data.get("parsers", {})

    def _legacy_state(self) -> dict:
        """The state of the two engines before this one (positions.json + ingest-parsers.json
        of batch ingest; watch-state.json of the follower): where the first run takes over."""
        d = self.state_path.parent
        out: dict = {"positions": {}, "parsers": {}}
        for name in ("positions.json", "ingest-parsers.json", "watch-state.json"):
            try:
                data = json.loads((d / name).read_text())
                if name == "positions.json":
                    out["positions"].update(_checked_state({"version": STATE_VERSION, "positions": data})["positions"])
                elif name == "ingest-parsers.json":
                    out["parsers"].update(_checked_state({"version": STATE_VERSION, "parsers": data})["parsers"])
                else:
                    data = _checked_state({**data, "version": STATE_VERSION} if isinstance(data, dict) else data)
                    out["positions"].update(data.get("positions", {}))
                    for key, st in data.get("parsers", {}).items():
                        out["parsers"].setdefault(key.rsplit("\t", 1)[-1], st)
            except (OSError, ValueError) as exc:
                if not isinstance(exc, FileNotFoundError):
                    log.warning("ingest: %s is unreadable (%s): not taken over", d / name, exc)
                continue
        return out

    # ------------------------------------------------------------------ parsers
    def parser(self, mta: str, ctx: ParseContext) -> Parser:
        """The session's parser of `mta` (one per MTA; its state spans files), reading in `ctx`."""
        p = self.parsers.get(mta)
        if p is None:
            p = parser_class(mta)(ctx, self.buffer.add)
            if mta in self._parser_states:
                try:
                    p.set_state(self._parser_states[mta])
                except (TypeError, ValueError, KeyError, AttributeError) as exc:
                    # a state file edited or written by something else: start this MTA's table
                    # afresh (deferrals saved in it will not get their expiry joined)
                    log.warning("ingest: the saved %s parser state in %s is unusable (%s: %s): starting "
                                "without it", mta, self.state_path, type(exc).__name__, exc)
                    p = parser_class(mta)(ctx, self.buffer.add)
            self.parsers[mta] = p
        else:
            p.ctx = ctx
        return p

    def context(self, source_file: str, mtime: float | None) -> ParseContext:
        return ParseContext(tz=self.tz, source_file=source_file, mtime=mtime, year=self.year)

    def front_door(self, feed, raw: bytes, offset: int, source: str) -> None:
        """The one front door for a raw line (every path of the engine, and the block reader's
        lines that are not clean): over-long lines are rejected unread; invalid UTF-8 and NUL
        bytes are rejected but still parsed with replacement, so a delivery inside them is
        recovered; malformed delivery lines are rejected."""
        line, bad = decode_line(raw)
        if line is None:
            self.rejects.add(bad, source, offset, raw)
            return
        result = feed(line, offset)
        if bad:
            self.rejects.add(bad, source, offset, raw)
            if result == EVENT:
                self.summary.recovered += 1
        elif result != SKIP and result != EVENT:  # MALFORMED, NO_START: a reject of that reason
            self.rejects.add(result, source, offset, raw if raw.endswith(b"\n") else raw + b"\n")

    # ------------------------------------------------------------------ commits
    def commit(self) -> Future | None:
        """Hand the buffered events to the store's writer and snapshot the state at this line
        boundary; the snapshot is saved once those events are durable (at the latest when the
        next commit starts, or at finish_pending()). A StoreError leaves the buffer as it was.
        Returns the writer's future of the events (None when there were none)."""
        self.finish_pending()
        table = self.buffer.take()
        if table is not None:
            self.summary.events_parsed += table.num_rows
        self.summary.local_deliveries += self.buffer.local_deliveries
        self.buffer.local_deliveries = 0
        state = None
        if not self.private:
            state = json.dumps({"version": STATE_VERSION, "positions": self.positions,
                                "parsers": {**self._parser_states,
                                            **{m: p.get_state() for m, p in self.parsers.items()}}},
                               separators=(",", ":"), ensure_ascii=False)
        future = self.sink.submit(table) if table is not None else None
        self._pending = (future, state, table)
        self.summary.commits += 1
        return future

    def pending_done(self) -> bool:
        return self._failed is None and (self._pending is None or self._pending[0] is None or self._pending[0].done())

    def wait_stored(self, timeout: float | None = None) -> bool:
        """Block until the batch handed to the writer is written or has failed; True when none
        is in flight. (The follower polls pending_done(); a caller stepping it itself, as the
        tests do, waits here.)"""
        pending = self._pending
        if pending is None or pending[0] is None:
            return True
        wait_futures([pending[0]], timeout=timeout)
        return pending[0].done()

    def finish_pending(self) -> None:
        """Wait for the batch handed to the writer, then save its state. A batch the store
        refused is kept and stored first (before any later state is saved) by the next call."""
        if self._failed is not None:
            table, state = self._failed
            self._save(self.sink.submit(table), state, table)  # raises again while the store fails
            self._failed = None
        if self._pending is None:
            return
        future, state, table = self._pending
        self._pending = None
        self._save(future, state, table)

    def _save(self, future, state, table) -> None:
        if future is not None:
            try:
                by_status = future.result()
            except OSError as exc:
                # not a read error of the log: this commit's state is not saved; a batch run
                # stops here and the next run re-reads from the last saved state
                self._failed = (table, state)
                raise StoreError(f"cannot write events to {self.store.root}: {fsutil.describe_os_error(exc)}; "
                                 "nothing after the last stored batch is marked as read, so a re-run "
                                 "resumes there") from exc
            except Exception:
                self._failed = (table, state)
                raise
            self.summary.events_written += written_count(by_status)
            self.summary.written_by_status.update(by_status)
        if state is not None and state != self._saved_state:  # (a batch run's last commit often changes nothing)
            fsutil.ensure_dir(self.state_path.parent)
            fsutil.atomic_write_text(self.state_path, state)
            self._saved_state = state
