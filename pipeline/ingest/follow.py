"""Live follower: the configured log sources -> classified events in the event store, continuously.

Reads the files named or globbed by cfg["sources"] (plain text, or `.gz` when a rotated file was
compressed before we finished it), feeds complete lines to one parser per source and MTA, and
hands events to the event store (the only Parquet writer) at least every
cfg["watch"]["flush_interval"] seconds. Writes <data_dir>/state/watch-state.json (positions and
parser state, one atomic file) and holds <data_dir>/state/watch.lock while it runs.
Called by `mailhygiene watch` (pipeline.cli.watch); `clean` asks watch_is_running().

How a file is followed (pygtail / Filebeat lessons, see docs/watch.md):
- A file's identity is the fingerprint of its first line (pipeline.ingest.tail): it survives rename,
  compression (`.1` -> `.1.gz`) and multilog's `current` -> `@<tai64n>.s`. Positions are keyed by
  it. While a file is open it is also known by (device, inode), so a renamed-away file is read to
  its end through the descriptor we hold, before (and while) the new file under the old name is read.
- copytruncate / a file rewritten in place: the open file shrinks or its first line changes. The
  rest of the old text is looked for in a rotated sibling with the old fingerprint (`mail.log.1`,
  `mail.log.1.gz`, `@….s`) and read from the saved offset; the truncated file is then new.
- Only complete lines are consumed: a partial last line waits for its newline.
- Every commit: (1) events durable in Parquet, (2) positions + parser state, snapshotted at the
  same line boundary, replaced atomically in one file. A kill between (1) and (2) re-reads lines
  whose events are stored; the store drops them by event_id, so nothing is lost or stored twice.
- watchdog (inotify) wake-ups make reads prompt; a poll timer (poll_interval) makes a missed
  wake-up a delay, never a loss.
"""

from __future__ import annotations

import fcntl
import fnmatch
import glob
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..jobs.clean import job_lock
from ..core.config import Config
from ..store.event_store import EventStore
from .engine import (DETECT_SAMPLE_LINES, MAX_LINE_BYTES, EventBuffer, IngestSummary, RejectLog, feed_raw_line,
                     _rotation_number)
from .parsers import ParseContext, Parser, detect_format, parser_class
from .tail import FINGERPRINT_BYTES, file_identity, fingerprint, fingerprint_of_head, open_log

log = logging.getLogger("mailhygiene.watch")

STATE_FILE = "watch-state.json"
LOCK_FILE = "watch.lock"
READ_CHUNK = 1 << 20             # bytes per read() call
READ_BUDGET = 16 << 20           # bytes per file per pass, so other files and signals get a turn
IDLE_CLOSE_S = 30.0              # a file that has not grown for this long is closed (reopened on growth)
COMPACT_FILES = 32               # a day partition with more files than this is compacted ...
COMPACT_SMALL_BYTES = 16 << 20   # ... merging only its files smaller than this
RETRY_MAX_S = 60.0
SIBLINGS_CHECKED = 8             # rotated candidates fingerprinted when looking for a lost file
POSITION_KEEP_S = 30 * 86400     # finished positions are forgotten after this long
REPORT_EVERY_S = 60.0


@dataclass
class Source:
    pattern: str
    fmt: str
    is_glob: bool
    mta: str | None = None  # detected once per source for format "auto"

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
        return sorted(glob.glob(pattern)) if self.is_glob else [pattern]


@dataclass
class Stream:
    """One open log file and how far it has been consumed."""

    fp: str
    source: Source
    path: str
    key: tuple[int, int]            # (st_dev, st_ino)
    fh: object                      # raw fd (int) for plain files, a GzipFile for .gz
    compressed: bool
    offset: int
    order: tuple                    # read order: older files first
    mta: str | None = None
    unrecognised: bool = False
    last_growth: float = field(default_factory=time.monotonic)
    eof: bool = False
    in_long_line: bool = False
    size: int = 0
    mtime_ns: int = 0

    def close(self) -> None:
        try:
            if isinstance(self.fh, int):
                os.close(self.fh)
            else:
                self.fh.close()
        except OSError:
            pass


@dataclass
class WatchSummary(IngestSummary):
    commits: int = 0
    compactions: int = 0


def watch_is_running(cfg: Config) -> bool:
    """True while a `mailhygiene watch` process holds <data_dir>/state/watch.lock."""
    path = cfg.data_dir / "state" / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def watch_lock(cfg: Config):
    """The lock a running watch holds (`clean` probes it; a second watch is refused)."""
    path = cfg.data_dir / "state" / LOCK_FILE
    return job_lock(cfg, LOCK_FILE.removesuffix(".lock"), wait=2.0,  # `clean` may be probing it a moment
                    busy=f"another `mailhygiene watch` is already following logs into {cfg.data_dir} "
                         f"(lock {path}); stop it first")


class WatchState:
    """Positions (fingerprint -> offset, path, …) and parser state, saved together atomically.

    One file, so the offsets and the cross-line parser state always describe the same moment.
    """

    def __init__(self, data_dir: Path):
        self.path = data_dir / "state" / STATE_FILE
        self.batch_positions_path = data_dir / "state" / "positions.json"
        self.batch_parsers_path = data_dir / "state" / "ingest-parsers.json"
        self.positions: dict[str, dict] = {}
        self.parsers: dict[str, dict] = {}
        self.fresh = True
        try:
            data = json.loads(self.path.read_text())
            self.positions = data.get("positions", {})
            self.parsers = data.get("parsers", {})
            self.fresh = False
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("watch: %s is unreadable (%s): starting from the batch positions", self.path, exc)

    def batch_seed(self) -> tuple[dict, dict]:
        """`clean`/`ingest` positions and parser state: where a first watch run takes over."""
        out = []
        for p in (self.batch_positions_path, self.batch_parsers_path):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                out.append({})
        return out[0], out[1]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump({"version": 1, "positions": self.positions, "parsers": self.parsers}, fh,
                      separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.fresh = False

    def prune(self, now: float) -> None:
        old = [fp for fp, p in self.positions.items()
               if p.get("done") and now - p.get("updated", now) > POSITION_KEEP_S]
        for fp in old:
            del self.positions[fp]


class Follower:
    """Follows every configured source until `stop_event` is set; see the module docstring."""

    def __init__(self, cfg: Config, *, stop_event: threading.Event | None = None,
                 use_watchdog: bool = True):
        self.cfg = cfg
        w = cfg["watch"]
        self.flush_interval = float(w.get("flush_interval", 5.0))
        self.poll_interval = float(w.get("poll_interval", 1.0))
        self.batch_limit = int(cfg["ingest"]["batch_events"])
        self.year = cfg["ingest"]["year"] or None
        self.stop_event = stop_event or threading.Event()
        self.wake = threading.Event()
        self.use_watchdog = use_watchdog
        self.sources = [Source(s["path"], s.get("format", "auto"), glob.has_magic(s["path"]))
                        for s in cfg["sources"]]
        for src in self.sources:
            if src.fmt != "auto":
                parser_class(src.fmt)  # validates the name
                src.mta = src.fmt
        self.summary = WatchSummary()
        self.store = EventStore(cfg.data_dir)
        self.buffer = EventBuffer(cfg, self.store, self.summary)
        self.rejects = RejectLog(cfg.data_dir, cfg["ingest"]["reject_samples"], self.summary)
        self.state = WatchState(cfg.data_dir)
        self.seed_positions: dict = {}
        if self.state.fresh:
            self.seed_positions, seed_parsers = self.state.batch_seed()
            for src in self.sources:
                for mta, st in seed_parsers.items():
                    self.state.parsers.setdefault(self._parser_key(src, mta), st)
        self.streams: dict[str, Stream] = {}             # fingerprint -> open stream
        self.by_key: dict[tuple[int, int], str] = {}     # (dev, ino) -> fingerprint of an open stream
        self.skipped: dict[tuple[int, int], tuple] = {}  # files known to hold nothing new: (size, mtime_ns)
        self.parsers: dict[str, Parser] = {}
        self.problems: dict[str, dict] = {}               # path -> {"msg", "retry_at", "delay"}
        self.pending_since: float | None = None          # first uncommitted read
        self.last_commit = time.monotonic()
        self.flush_failures = 0
        self.flush_retry_at = 0.0
        self.touched_days: set[str] = set()
        self._observer = None
        self._watched_dirs: set[str] = set()
        self._last_report = time.monotonic()
        self._reported = (0, 0)

    # ------------------------------------------------------------------ main loop
    def run(self) -> WatchSummary:
        with watch_lock(self.cfg):
            started = time.monotonic()
            log.info("watch: following %d source(s) into %s (flush every %.1f s)",
                     len(self.sources), self.cfg.data_dir, self.flush_interval)
            self._start_observer()
            try:
                self._resume_unfinished()
                while not self.stop_event.is_set():
                    self.wake.clear()
                    busy = self.poll_once()
                    self._maybe_commit()
                    if busy:
                        continue
                    self._maybe_compact()
                    self._maybe_report()
                    self.wake.wait(self._wait_time())
            finally:
                self._stop_observer()
                try:
                    self.commit()
                finally:
                    for s in list(self.streams.values()):
                        s.close()
                    self.rejects.close()
                self.summary.seconds = time.monotonic() - started
                log.info("watch: stopped after %d lines, %d events written", self.summary.lines,
                         self.summary.events_written)
        return self.summary

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def _wait_time(self) -> float:
        t = self.poll_interval
        if self.pending_since is not None:
            t = min(t, self.pending_since + self.flush_interval - time.monotonic())
        if self.flush_failures:
            t = min(t, max(0.0, self.flush_retry_at - time.monotonic()))
        return max(0.01, t)

    def poll_once(self) -> bool:
        """Scan the sources, read what is new; True when a file still has unread data."""
        self._scan()
        busy = False
        for s in sorted(self.streams.values(), key=lambda s: s.order):
            if self.stop_event.is_set():
                break
            if len(self.buffer) >= self.batch_limit and not self._commit_or_hold():
                return False  # the store is failing: hold reading until it takes events again
            busy |= self._read(s)
        self._close_idle()
        return busy

    # ------------------------------------------------------------------ finding files
    def _scan(self) -> None:
        now = time.monotonic()
        seen: set[tuple[int, int]] = set()
        for src in self.sources:
            if self.use_watchdog and self._observer is not None:
                self._watch_dir(src)
            matches = src.matches()
            if not src.is_glob and not os.path.lexists(matches[0]):
                if any(s.path == matches[0] for s in self.streams.values()):
                    self._problem(matches[0], "was renamed or deleted: reading the rest of the open file, "
                                  "waiting for a new one", backoff=False, level=logging.INFO)
                else:
                    self._problem(matches[0], "does not exist (yet): waiting for it to appear", backoff=False)
            for path in matches:
                p = self.problems.get(path)
                if p is not None and now < p["retry_at"]:
                    continue
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self._problem(path, f"cannot be examined: {exc.strerror}")
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if not src.is_glob:
                        self._problem(path, "is not a regular file")
                    continue
                key = file_identity(st)
                seen.add(key)
                fp = self.by_key.get(key)
                if fp is not None:
                    self.streams[fp].path = path  # renamed within the glob (mail.log -> mail.log.1)
                    self._solved(path)
                    continue
                if self.skipped.get(key) == (st.st_size, st.st_mtime_ns):
                    continue
                self._open(src, path, st)
        for key in [k for k in self.skipped if k not in seen]:
            del self.skipped[key]

    def _open(self, src: Source, path: str, st: os.stat_result, fp_wanted: str | None = None,
              offset: int | None = None) -> Stream | None:
        """Start following `path` (from its saved position); None when there is nothing to read."""
        key = file_identity(st)
        if st.st_size == 0:
            return None
        try:
            with open(path, "rb") as probe:
                compressed = probe.read(2) == b"\x1f\x8b"
            if compressed:
                fp, _ = fingerprint(path)
            else:
                fd = os.open(path, os.O_RDONLY)
                try:
                    fp, _ = fingerprint_of_head(os.pread(fd, FINGERPRINT_BYTES, 0))
                except OSError:
                    os.close(fd)
                    raise
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._problem(path, f"cannot be read: {exc.strerror}")
            return None
        except EOFError:
            return None  # a .gz still being written: look again later
        self._solved(path)
        if not fp or (fp_wanted is not None and fp != fp_wanted) or fp in self.streams:
            # no complete first line yet / not the file looked for / a copy of a file being read
            if not compressed:
                os.close(fd)
            if fp and fp_wanted is None:
                self.skipped[key] = (st.st_size, st.st_mtime_ns)
            return None
        pos = self.state.positions.get(fp)
        if offset is None:
            if pos is not None:
                offset = int(pos.get("offset", 0))
            elif fp in self.seed_positions:
                offset = int(self.seed_positions[fp].get("offset", 0))
                log.info("watch: %s: taking over from the batch ingest at offset %d", path, offset)
            else:
                offset = 0
        if not compressed and offset >= st.st_size and (pos or {}).get("done"):
            os.close(fd)
            self.skipped[key] = (st.st_size, st.st_mtime_ns)
            return None
        if compressed and offset and pos is not None and _gzip_isize(path) == offset % (1 << 32):
            self.skipped[key] = (st.st_size, st.st_mtime_ns)  # read to its end before: skip decompressing
            return None
        if compressed:
            try:
                fh = open_log(path)
                fh.seek(offset)
            except (OSError, EOFError) as exc:
                self._problem(path, f"cannot be read: {exc}")
                return None
        else:
            fh = fd
        s = Stream(fp=fp, source=src, path=path, key=key, fh=fh, compressed=compressed, offset=offset,
                   order=(st.st_mtime, -_rotation_number(os.path.basename(path))),
                   mta=(pos or {}).get("mta") or src.mta, size=st.st_size)
        s.unrecognised = (pos or {}).get("mta") == "unrecognised"
        self.streams[fp] = s
        self.by_key[key] = fp
        self.skipped.pop(key, None)
        self.state.positions[fp] = {**(pos or {}), "offset": offset, "path": path, "updated": time.time(),
                                    "done": False}
        log.debug("watch: opened %s at offset %d", path, offset)
        return s

    def _candidates(self, path: str) -> list[str]:
        """Where a log's old text may be now: `mail.log.1`, `mail.log.1.gz`, `mail.log-2024…`,
        multilog's `@<tai64n>.s`; newest first."""
        d, base = os.path.split(path)
        try:
            names = os.listdir(d or ".")
        except OSError:
            return []
        picked = [n for n in names if (n.startswith(base) and n != base)
                  or (base == "current" and n.startswith("@"))]
        paths = [os.path.join(d, n) for n in picked]
        try:
            paths.sort(key=lambda p: os.stat(p).st_mtime, reverse=True)
        except OSError:
            pass
        return paths[:SIBLINGS_CHECKED] + ([path] if os.path.exists(path) else [])

    def _find_moved(self, src: Source, fp: str, last_path: str, offset: int,
                    exclude: tuple[int, int] | None = None) -> Stream | None:
        for cand in self._candidates(last_path):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            key = file_identity(st)
            if key == exclude or key in self.by_key or not stat.S_ISREG(st.st_mode):
                continue
            s = self._open(src, cand, st, fp_wanted=fp, offset=offset)
            if s is not None:
                log.info("watch: reading the rest of %s from %s (offset %d)", last_path, cand, offset)
                return s
        return None

    def _resume_unfinished(self) -> None:
        """After a restart: files left unfinished that no longer sit under a source's pattern
        (rotated away, copied by copytruncate) are found by fingerprint and read to their end."""
        self._scan()
        for fp, pos in list(self.state.positions.items()):
            if pos.get("done") or fp in self.streams:
                continue
            src = self._source_of(pos.get("path", ""))
            found = None
            if src is not None:
                found = self._find_moved(src, fp, pos["path"], int(pos.get("offset", 0)))
            if found is None:
                pos["done"] = True
                if src is not None and not pos.get("eof", True):
                    log.warning("watch: %s (read up to offset %d of %d) was rotated away and is gone: "
                                "its unread end cannot be ingested", pos.get("path"), pos.get("offset", 0),
                                pos.get("size", 0))

    def _source_of(self, path: str) -> Source | None:
        for src in self.sources:
            pat = os.path.expanduser(src.pattern)
            if fnmatch.fnmatch(path, pat) or os.path.dirname(path) == os.path.dirname(pat):
                return src
        return None

    # ------------------------------------------------------------------ reading
    def _read(self, s: Stream) -> bool:
        """Consume the complete lines appended to `s`; True when more is waiting."""
        if s.compressed:
            return self._read_gz(s)
        try:
            st = os.fstat(s.fh)
            size = st.st_size
            if size < s.offset:
                self._identity_lost(s, f"shrank from {s.offset} to {size} bytes (truncated)")
                return True
            if size == s.offset and st.st_mtime_ns == s.mtime_ns:
                s.eof = True
                return False
            s.mtime_ns = st.st_mtime_ns  # changed: check that it still holds the same text
            head_fp, _ = fingerprint_of_head(os.pread(s.fh, FINGERPRINT_BYTES, 0))
            if head_fp != s.fp:
                self._identity_lost(s, "was rewritten in place (its first line changed)")
                return True
            budget = READ_BUDGET
            while budget > 0 and not self.stop_event.is_set():
                data = os.pread(s.fh, min(READ_CHUNK, size - s.offset), s.offset)
                if not data:
                    break
                used = self._consume(s, data, final=False)
                if used == 0:
                    break
                budget -= used
                if s.offset >= size:
                    break
                if len(self.buffer) >= self.batch_limit and not self._commit_or_hold():
                    return False
            s.size = size
            if s.offset == size and s.eof:
                return False  # touched or rewritten to the same size with the same first line
        except OSError as exc:
            self._problem(s.path, f"read failed: {exc.strerror}; retrying")
            return False
        s.last_growth = time.monotonic()
        s.eof = s.offset >= size
        return budget <= 0

    def _read_gz(self, s: Stream) -> bool:
        budget = READ_BUDGET
        try:
            while budget > 0 and not self.stop_event.is_set():
                data = s.fh.read(READ_CHUNK)
                if not data:
                    s.eof = True  # a compressed file is complete: nothing will be appended
                    last = getattr(s, "_carry", b"")
                    if last:  # its last line has no newline: read it as it is
                        s._carry = b""
                        if self._feed(s, last + b"\n", len(last) + 1):
                            s.offset -= 1
                    return False
                self._consume(s, data, final=False, gz_pending=True)
                budget -= len(data)
                if len(self.buffer) >= self.batch_limit and not self._commit_or_hold():
                    return False
        except EOFError:
            # the .gz is being written right now (or was cut short): read it again from our offset later
            self._drop(s)
            return False
        except OSError as exc:
            self._problem(s.path, f"read failed: {exc}")
            self._drop(s)
            return False
        s.last_growth = time.monotonic()
        return True

    def _consume(self, s: Stream, data: bytes, final: bool, gz_pending: bool = False) -> int:
        """Feed the complete lines at the start of `data` (read at s.offset); returns bytes used."""
        if gz_pending and getattr(s, "_carry", b""):
            data = s._carry + data
            s._carry = b""
        end = data.rfind(b"\n") + 1
        if s.in_long_line:
            nl = data.find(b"\n")
            if nl < 0:
                s.offset += len(data)
                return len(data)
            s.in_long_line = False
            s.offset += nl + 1
            rest = data[nl + 1:]
            return nl + 1 + (self._consume(s, rest, final, gz_pending) if rest else 0)
        if end == 0:
            if len(data) >= READ_CHUNK and len(data) > MAX_LINE_BYTES:
                # a line longer than we hold in memory: reject it and skip to its newline
                self.rejects.add("too_long", s.path, s.offset, data[:4096])
                self.summary.lines += 1
                s.in_long_line = True
                s.offset += len(data)
                return len(data)
            if gz_pending:
                s._carry = data
            return 0
        if not self._feed(s, data, end):
            if gz_pending:
                s._carry = data
            return 0
        if gz_pending and end < len(data):
            s._carry = data[end:]
        return end

    def _feed(self, s: Stream, data: bytes, end: int) -> bool:
        """Parse data[:end] (complete lines starting at s.offset) into the event buffer; False
        when the file's MTA cannot be told yet (nothing consumed: wait for more lines)."""
        if s.mta is None and not s.unrecognised:
            s.mta = self._detect(s, data[:end])
            if s.mta is None and not s.unrecognised:
                return False
        self._dirty()
        offset = s.offset
        source = s.path
        if s.unrecognised:
            n = data.count(b"\n", 0, end)
            self.summary.lines += n
            s.offset += end
            self.summary.bytes += end
            return True
        parser = self._parser(s)
        feed = parser.feed
        rejects = self.rejects
        lines = data[:end].split(b"\n")
        lines.pop()  # after the last newline
        summary = self.summary
        for raw in lines:
            feed_raw_line(feed, raw, offset, source, rejects, summary)
            offset += len(raw) + 1
        self.summary.lines += len(lines)
        self.summary.bytes += end
        s.offset = offset
        return True

    def _detect(self, s: Stream, data: bytes) -> str | None:
        if s.source.mta:
            return s.source.mta
        sample = data.decode("utf-8", "replace").split("\n")[:DETECT_SAMPLE_LINES]
        mta = detect_format(sample)
        if mta is not None:
            s.source.mta = mta
            log.info("watch: %s looks like %s", s.path, mta)
            return mta
        if len(sample) >= DETECT_SAMPLE_LINES or s.compressed or s.offset > 0:
            s.unrecognised = True
            self.state.positions[s.fp]["mta"] = "unrecognised"
            log.warning("watch: %s is not recognised as Postfix, sendmail or qmail: skipped "
                        "(set format = \"postfix\" etc. for this source in the config)", s.path)
        return None

    def _parser_key(self, src: Source, mta: str) -> str:
        return f"{src.pattern}\t{mta}"

    def _parser(self, s: Stream) -> Parser:
        key = self._parser_key(s.source, s.mta)
        p = self.parsers.get(key)
        mtime = time.time()
        ctx = ParseContext(tz=self.cfg.tz, source_file=s.path, mtime=mtime, year=self.year)
        if p is None:
            p = parser_class(s.mta)(ctx, self.buffer.add)
            saved = self.state.parsers.get(key)
            if saved:
                p.set_state(saved)
            self.parsers[key] = p
        else:
            p.ctx = ctx
        self.state.positions[s.fp]["mta"] = s.mta
        return p

    # ------------------------------------------------------------------ rotation
    def _identity_lost(self, s: Stream, why: str) -> None:
        """The open file no longer holds the text we were reading (copytruncate, rewritten):
        finish the old text from a copy with the same fingerprint, then read the file as new."""
        log.info("watch: %s %s", s.path, why)
        self._drop(s)
        fp, offset = s.fp, s.offset
        moved = self._find_moved(s.source, fp, s.path, offset, exclude=s.key)
        if moved is not None:
            moved.order = (0, 0)  # before the (now new) file under the old name
            return
        pos = self.state.positions.pop(fp, None) or {}
        if not s.eof:
            log.warning("watch: %s: the end of its previous content (after offset %d) was not read before it was "
                        "truncated and no rotated copy was found: those lines are lost", s.path, offset)
        elif pos:
            log.info("watch: %s: previous content had been read completely", s.path)

    def _drop(self, s: Stream) -> None:
        s.close()
        pos = self.state.positions.get(s.fp)
        if pos is not None:  # in memory only: saved with the next commit, after the events
            pos.update(offset=s.offset, path=s.path, eof=s.eof)
        self.streams.pop(s.fp, None)
        if self.by_key.get(s.key) == s.fp:
            del self.by_key[s.key]

    def _close_idle(self) -> None:
        """Close files quiet for IDLE_CLOSE_S. One still under a source pattern is reopened when
        it grows; one rotated away (no longer matched) or deleted is finished."""
        now = time.monotonic()
        for s in list(self.streams.values()):
            if not s.eof or now - s.last_growth < IDLE_CLOSE_S:
                continue
            pos = self.state.positions.get(s.fp)
            still_there = False
            try:
                st = os.stat(s.path)
                still_there = file_identity(st) == s.key and self._source_of(s.path) is not None and any(
                    s.path in src.matches() for src in self.sources)
            except OSError:
                pass
            self._drop(s)
            if still_there:
                self.skipped[s.key] = (st.st_size, st.st_mtime_ns)
            elif pos is not None:
                pos["done"] = True
                pos["updated"] = time.time()
                self._dirty()
            log.debug("watch: closed idle %s (%s)", s.path, "kept" if still_there else "finished")

    # ------------------------------------------------------------------ committing
    def _dirty(self) -> None:
        if self.pending_since is None:
            self.pending_since = time.monotonic()

    def _maybe_commit(self) -> None:
        if self.pending_since is None:
            return
        now = time.monotonic()
        if self.flush_failures and now < self.flush_retry_at:
            return
        if now - self.pending_since >= self.flush_interval or len(self.buffer) >= self.batch_limit:
            self._commit_or_hold()

    def _commit_or_hold(self) -> bool:
        try:
            self.commit()
        except Exception as exc:  # the store or the disk failed: keep the events, retry later
            self.flush_failures += 1
            delay = min(RETRY_MAX_S, 2.0 ** self.flush_failures)
            self.flush_retry_at = time.monotonic() + delay
            log.error("watch: writing events failed (%s: %s); retrying in %.0f s, nothing is lost",
                      type(exc).__name__, exc, delay)
            return False
        if self.flush_failures:
            log.info("watch: writing events works again")
            self.flush_failures = 0
        if self.cfg.store.url:  # [store] url: upload the sealed files (a failure only warns)
            from ..lake.node import after_commit

            after_commit(self.cfg, strict=False)
        return True

    def commit(self) -> None:
        """(1) events durable in Parquet, then (2) positions + parser state in one atomic file."""
        days = {datetime.fromtimestamp(r["ts"] / 1e6, timezone.utc).strftime("%Y-%m-%d")
                for r in self.buffer.rows} if len(self.buffer) < 100_000 else set()
        self.buffer.flush()
        self.touched_days |= days
        now = time.time()
        for s in self.streams.values():
            pos = self.state.positions.setdefault(s.fp, {})
            pos.update(offset=s.offset, path=s.path, updated=now, size=s.size, eof=s.eof, done=False)
        self.state.parsers.update({k: p.get_state() for k, p in self.parsers.items()})
        self.state.prune(now)
        self.state.save()
        self.summary.commits += 1
        self.pending_since = None
        self.last_commit = time.monotonic()

    def _maybe_compact(self) -> None:
        """At a quiet moment, merge the small files of the days written to."""
        if not self.touched_days or self.pending_since is not None:
            return
        days, self.touched_days = self.touched_days, set()
        for day in sorted(days):
            try:
                if len(self.store.files(day)) > COMPACT_FILES and self.store.compact(
                        day, min_files=COMPACT_FILES // 2, max_file_bytes=COMPACT_SMALL_BYTES):
                    self.summary.compactions += 1
                    log.info("watch: compacted the small files of %s", day)
            except Exception as exc:  # compaction is an optimisation: never stop following for it
                log.warning("watch: compacting %s failed: %s", day, exc)

    # ------------------------------------------------------------------ problems
    def _problem(self, path: str, msg: str, *, backoff: bool = True, level: int = logging.WARNING) -> None:
        """Report a file problem once (again only when it changes); retry with backoff."""
        p = self.problems.get(path)
        now = time.monotonic()
        if p is None or p["msg"] != msg:
            if backoff:
                log.log(level, "watch: %s %s (retrying with backoff; other sources keep going)", path, msg)
            else:
                log.log(level, "watch: %s %s", path, msg)
            p = {"msg": msg, "delay": 1.0}
        else:
            p["delay"] = min(RETRY_MAX_S, p["delay"] * 2)
        p["retry_at"] = now + (p["delay"] if backoff else 0.0)
        self.problems[path] = p

    def _solved(self, path: str) -> None:
        if self.problems.pop(path, None) is not None:
            log.info("watch: %s is back and readable", path)

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < REPORT_EVERY_S:
            return
        self._last_report = now
        cur = (self.summary.lines, self.summary.events_written)
        if cur != self._reported:
            log.info("watch: %d lines read, %d events written, %d lines rejected so far",
                     cur[0], cur[1], sum(self.summary.rejected.values()))
            self._reported = cur

    # ------------------------------------------------------------------ wake-ups
    def _start_observer(self) -> None:
        if not self.use_watchdog:
            return
        try:
            from watchdog.observers import Observer

            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        except Exception as exc:  # no inotify (limits, platform): the timer alone still works
            log.warning("watch: file-system notifications unavailable (%s): polling every %.1f s",
                        exc, self.poll_interval)
            self._observer = None

    def _watch_dir(self, src: Source) -> None:
        d = str(src.watch_dir)
        if d in self._watched_dirs or not os.path.isdir(d):
            return
        from watchdog.events import FileSystemEventHandler

        follower = self

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("modified", "closed", "opened", "closed_no_write") and \
                        not follower._interesting(os.fsdecode(event.src_path)):
                    return
                follower.wake.set()

        try:
            self._observer.schedule(Wake(), d, recursive=src.recursive)
            self._watched_dirs.add(d)
        except Exception as exc:
            self._watched_dirs.add(d)  # do not retry every pass; the timer covers it
            log.warning("watch: cannot watch %s for changes (%s): polling it every %.1f s", d, exc,
                        self.poll_interval)

    def _interesting(self, path: str) -> bool:
        try:
            if any(s.path == path for s in list(self.streams.values())):
                return True
        except RuntimeError:  # the main thread changed the streams meanwhile: just wake up
            return True
        return any(fnmatch.fnmatch(path, os.path.expanduser(src.pattern)) for src in self.sources)

    def _stop_observer(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                pass
            self._observer = None


def _gzip_isize(path: str) -> int | None:
    """The uncompressed size (mod 2**32) from a gzip trailer, or None."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError:
        return None


def follow(cfg: Config, stop_event: threading.Event | None = None, *, use_watchdog: bool = True,
           on_start=None) -> WatchSummary:
    """Follow cfg["sources"] until `stop_event` is set; returns what was read and written.

    `on_start(follower)` is called once the follower exists (the CLI uses it to route signals
    to follower.stop()).
    """
    f = Follower(cfg, stop_event=stop_event, use_watchdog=use_watchdog)
    if on_start is not None:
        on_start(f)
    return f.run()
