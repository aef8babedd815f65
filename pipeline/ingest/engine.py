"""The ingest engine: a line source -> a parser session -> the event sink, for batch and live.

Batch (`mailhygiene ingest`, the ingest step of `clean`) is a source read to its end; watch
(`mailhygiene watch`) is the same source followed. Both run every chunk of lines through the same
steps:

1. the stream's MTA is decided when it is opened (`--format auto`: by a sample of its first
   lines and windows further in, per line when a file mixes MTAs; an explicit format is checked
   against the sample, so a sendmail log given as `--format postfix` is refused, not read and not
   marked as read); standard input and pipes, and an `auto` file whose sample tells no MTA (a
   combined syslog with mail lines between the windows only), chunk by chunk, until their lines
   tell (until then, line by line; one in which no line tells is refused at its end);
2. Postfix and sendmail chunks go through their block readers (parsers/postfix_block.py,
   parsers/sendmail_block.py: the fields of the usual lines are found in reader threads ahead of
   the chunk being applied; every other line, and every line with bad bytes, goes to the
   parser's feed() through the front door, in order); other chunks (qmail, mixed files, chunks
   under BLOCK_MIN_BYTES such as a whole small log, the block readers turned off) are decoded
   at once when they are valid UTF-8 without NUL, CR or over-long lines, else line by line
   through the front door;
3. events collect in the session's sink buffer; every `ingest.batch_events` events (batch) or
   `watch.flush_interval` seconds (live) the session commits: events to the store first, then
   positions and parser state in one atomic file.

Called by the CLI (`ingest`, `watch`) and pipeline.jobs.clean.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

import numpy as np

from ..classify.carriers import CarrierTable
from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.config import Config, IngestSettings, SourceSettings, WatchSettings
from ..core.errors import ConfigError, InputError
from ..store.event_store import SMALL_FILE_BYTES
from . import native
from . import source as line_source
from .parsers import BLOCK_READERS, EVENT, REGISTRY, SKIP, parser_class
from .parsers import common as parsers_common
from .parsers.common import MAX_LINE_BYTES, STARTS_MID_LINE, TEXT_HEAD_RE
from .session import IngestSummary, Session, rejected_text, watch_is_running, watch_lock
from .source import (DAMAGED, HEAD, LINES, LONG, PARTIAL, READ_BUDGET, SKIPPED, Chunk, LogFiles, SourceSpec, Stream,
                     STDIN, blocked_directory, blocked_message, expand_paths, not_followed)

log = logging.getLogger("mailhygiene.watch")

# Chunks whose fields are being found (in reader threads) while one is applied, per MTA (else 1).
# One for every MTA: sendmail and qmail spend most of their time applying, and a second reader
# would only compete with it; Postfix's scanner now finds a chunk's fields in about the time the
# chunk takes to apply, and a second reader cost ~4 % more CPU (two threads in contention, one
# more 16 MiB chunk in flight) with no gain in wall time (BENCHMARKS.md, 2026-12-06 12:30).
EXTRACT_AHEAD: dict[str, int] = {}
# A batch run reads chunks of fewer bytes line by line (the parsers' feed(), the definition the
# block readers are held to: the same events), unless the engine is told `columnar=True`: a small
# log then neither imports nor starts a block reader (pyarrow.compute alone is ~25 ms, an eighth of
# a 20-line ingest; BENCHMARKS.md). A large log's chunks are 4 MiB+. The follower, which pays for
# the imports once, keeps every chunk on the block reader.
BLOCK_MIN_BYTES = 64 << 10
DETECT_SAMPLE_LINES = 2000
CONTEXT_REFRESH_S = 3600  # followed files: the year of `Mon DD` stamps is inferred from "now" this fresh
COMPACT_FILES = 32       # followed: a day partition with more files than this is compacted,
                         # merging only its files under event_store.SMALL_FILE_BYTES
REPORT_EVERY_S = 60.0
STORE_TIMES_KEPT = 8     # followed: the last commits' store times the flush starts that much early by
RETRY_MAX_S = 60.0
MIXED = "mixed"          # a stream whose lines come from several MTAs: routed line by line

# what another MTA's lines carry (a chunk of an `auto` stream with them is routed line by line)
_FOREIGN = {
    "postfix": (b" sendmail[", b" sm-m", b" qmail:", b"\n@4000"),
    "sendmail": (b" postfix/", b" postfix-", b" qmail:", b"\n@4000"),
    "qmail": (b" postfix/", b" postfix-", b" sendmail[", b" sm-m"),
}


class Engine:
    """Batch and live ingest into one data dir; see the module docstring."""

    def __init__(self, data_dir: Path, tz: ZoneInfo, settings: IngestSettings, carriers: CarrierTable, *,
                 watch: WatchSettings | None = None, year: int | None = None, columnar: bool | None = None,
                 progress: bool | None = None, clock: Clock = SYSTEM_CLOCK):
        self.data_dir = Path(data_dir)
        self.clock = clock  # every wait and interval of the follower (tests drive it: tests/fixtures.py)
        self.tz = tz
        self.settings = settings
        self.carriers = carriers
        self.watch_settings = watch or WatchSettings()
        self.year = year
        # chunks through their MTA's block reader: None, every one when following, those of
        # BLOCK_MIN_BYTES or more in a batch run; True, every one (the block readers' tests); False,
        # none (per line only; tests)
        self.columnar = columnar
        self.progress = progress
        self.session: Session | None = None
        self.files: LogFiles | None = None
        self._readers: ThreadPoolExecutor | None = None
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._untold_said: set[str] = set()  # followed files said to be read line by line (said once)

    @classmethod
    def from_config(cls, cfg: Config, **options) -> "Engine":
        return cls(cfg.data_dir, cfg.tz, cfg.ingest, CarrierTable.from_config(cfg.carriers), watch=cfg.watch, **options)

    # ================================================================== batch
    def ingest(self, paths: Iterable[str], *, fmt: str = "auto", use_positions: bool = True,
               olddir: str = "") -> IngestSummary:
        """Read files (plain or .gz; globs; `-` for standard input) to their end; `olddir`:
        where logrotate puts their rotated copies (a [[sources]] entry's olddir)."""
        if fmt != "auto":
            parser_class(fmt)  # validates the name
        specs = [SourceSpec(str(p), fmt, olddir) for p in paths]
        started = self.clock.monotonic()
        private = watch_is_running(self.data_dir)
        summary = IngestSummary()
        with Session(self.data_dir, self.tz, self.settings, self.carriers, year=self.year, private=private,
                     summary=summary) as session:
            self.session = session
            files = self.files = LogFiles(specs, session.positions, follow=False,
                                          use_positions=use_positions and not private)
            listed = files.batch_files()
            summary.unmatched = files.unmatched
            stdin = [spec for spec in specs if spec.is_stdin]
            if not listed and not stdin:
                raise InputError("no log files matched: check the paths or the [[sources]] in the config")
            # named pipes, /dev/stdin, process substitutions (<(zcat …)): read first, like standard input
            pipes = [(spec, path) for spec, path in listed if not _is_regular(path)]
            listed = [(spec, path) for spec, path in listed if (spec, path) not in pipes]
            sizes = [p.stat().st_size for _, p in listed]
            bar = self._progress_bar(sum(sizes))
            try:
                if use_positions and not private:
                    for s in files.resume_unfinished(batch=True):
                        self._read_to_end(s)
                for spec, path in pipes:
                    self._read_to_end(files.open_pipe(spec, str(path)))
                for (spec, path), size in zip(listed, sizes):
                    try:
                        s = files.open_path(spec, str(path))
                    except OSError as exc:
                        raise InputError(line_source.cannot_read(path, exc) + "; the files before it were read, "
                                         "the rest were not (this run stopped there)") from None
                    progress = FileProgress(bar, size)
                    if s is None:
                        summary.files.append({"path": str(path), "format": spec.fmt, "lines": 0, "events": 0})
                    else:
                        self._read_to_end(s, progress)
                    progress.finish()
                for spec in stdin:
                    self._read_to_end(files.open_stdin(spec))
                files.snapshot_positions()
                session.commit()
            finally:
                files.close()
                self._stop_readers()
                if bar is not None:
                    bar.close()
        summary.seconds = self.clock.monotonic() - started
        return summary

    def ingest_sources(self, sources: Iterable[SourceSettings], on_source=None) -> list[IngestSummary]:
        """The configured sources, each read to its end (the ingest step of `clean`)."""
        import os
        import stat

        out = []
        for src in sources:
            if not any(True for _ in _matching(src.path)):
                blocked = blocked_directory(src.path)
                if blocked is not None:  # there may be logs: this user cannot see them (not "no files match")
                    raise InputError(blocked_message(src.path, blocked))
                if on_source is not None:
                    on_source(src.path, None)
                continue
            try:  # a named pipe or a device in the config would be read until it ends: never, from cron
                st = os.stat(os.path.expanduser(src.path))
            except OSError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                why = not_followed(src.path, st).replace("watch follows", "clean reads")
                raise InputError(f"[[sources]] path {src.path} {why}")
            summary = self.ingest([src.path], fmt=src.format, olddir=src.olddir)
            out.append(summary)
            if on_source is not None:
                on_source(src.path, summary)
        return out

    def _read_to_end(self, s: Stream, progress: "FileProgress | None" = None) -> None:
        files, session = self.files, self.session
        ready = self._on_open(s, complete=True)
        info = s.info
        if not ready:
            files.drop(s)
            return
        events_before = session.summary.events_parsed + len(session.buffer)
        start, eof = s.offset, s.eof
        try:
            for chunk, fields in self._ahead(files.chunks(s)):
                self._apply(chunk, fields)
                if progress is not None and not s.compressed:  # (a plain file's offset is its bytes)
                    progress.advance(s.offset)
                chunk = fields = None  # (see _ahead: let the next read reuse this chunk's memory)
        except OSError as exc:
            # an I/O error of the log: keep what was read, report it (a damaged .gz is a DAMAGED chunk)
            self._damaged(s, s.offset, f"read failed: {exc.strerror or exc}")
        if s.by_lines and not s.judged:
            self._untold_at_end(s)
            if info.get("problem") and not s.piped:
                # no line of it told an MTA: refused, as a file whose sample tells none was before
                # it was read: its position (none, or where an earlier run stopped) stays as it was
                s.offset = s.read_at = start
                s.eof = eof
                files.drop(s)
                return
        info["events"] = session.summary.events_parsed + len(session.buffer) - events_before
        files.snapshot_positions()
        files.drop(s)
        session.commit()
        info["events"] = session.summary.events_parsed - events_before

    def _damaged(self, s: Stream, offset: int, why: str) -> None:
        """The rest of a file cannot be read (a damaged .gz, an I/O error): the lines before
        `offset` were read; the damage is counted as a reject (`unreadable_rest`, with its
        sample) and named in the file's summary (`damaged`: the CLI warns and exits 1). The
        file's position stays at `offset`, not finished: the next run reports it again."""
        self.session.rejects.add("unreadable_rest", s.path, offset, why.encode())
        if s.info is not None:
            where = f"unreadable after byte {offset:,} of its text" if offset else "unreadable from its start"
            then = ("the lines before it were read" if s.piped else
                    "the lines before it were read and the file stays marked as read up to there (restore it "
                    "from a backup and run again to read the rest, or move it away)")
            s.info["damaged"] = f"{where}: {why}; {then}"

    def _progress_bar(self, total: int):
        """A bar on a terminal (standard error) when asked, or by default for inputs over 20 MB;
        None otherwise, without importing tqdm (its import alone costs ~50 ms of CPU)."""
        show = self.progress is True or (self.progress is None and total > 20_000_000)
        if not show or not _stderr_is_terminal():
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="B", unit_scale=True, desc="ingest", leave=False)

    # ================================================================== opening a stream
    def _on_open(self, s: Stream, complete: bool = False) -> bool:
        """Decide the stream's MTA and its parse context; False when it is not to be read (yet).

        `complete`: the stream's first lines are all there will be to judge by (batch); a
        followed file with fewer than DETECT_SAMPLE_LINES lines may still be told later."""
        session = self.session
        if s.info is None:
            s.info = {"path": s.path, "format": s.source.fmt, "lines": 0, "events": 0}
            session.summary.files.append(s.info)
        if s.ctx is None:
            self._refresh_context(s)
        if s.compression == "zstd" and not s.info.get("checked"):
            s.info["checked"] = True
            s.refused = s.info["problem"] = line_source.ZSTD_REFUSED
            s.info["hint"] = line_source.ZSTD_HINT
            if self.files.follow:
                log.warning("watch: %s: %s: not read (%s)", s.path, s.refused, line_source.ZSTD_HINT)
            return False
        if s.info.get("checked"):
            return s.refused is None and (s.mta is not None or s.by_lines or (s.unrecognised and self.files.follow))
        if s.mta is not None or s.unrecognised:  # told before (a followed file's position keeps it)
            s.info["checked"] = True
            s.info["format"] = "unrecognised" if s.unrecognised else s.mta
            return True
        if s.piped:
            s.info["format"] = s.source.fmt
            s.info["checked"] = True
            return True  # told (an explicit --format: checked) by its lines, chunk by chunk (_mta_of_chunk)
        sample = self.files.read_head(s, DETECT_SAMPLE_LINES)
        self._note_first_month(s, "\n".join(sample[:200]).encode())
        complete = complete or len(sample) >= DETECT_SAMPLE_LINES or s.compressed or s.offset > 0
        wanted = [parser_class(s.source.fmt)] if s.source.fmt != "auto" else list(REGISTRY.values())
        if complete and sample and not any(cls.detect(sample) for cls in wanted):
            # none in its first lines: look further in (a combined syslog starts with boot lines)
            sample = sample + self.files.read_spread(s, DETECT_SAMPLE_LINES)
        return self._judge(s, sample, complete)

    def _judge(self, s: Stream, sample: list[str], complete: bool, lines: int | None = None,
               at_end: bool = False) -> bool:
        """Set the stream's MTA from a sample of its lines (see _on_open); `lines`: how many
        lines the verdict covers (the sample's when None). A file under --format auto whose
        sample tells no MTA is read as standard input is, its lines telling it (_untold_file);
        `at_end`: the verdict on a stream read so to its end, none of whose lines told."""
        fmt = s.source.fmt
        lines = len(sample) if lines is None else lines
        if fmt != "auto":
            if sample and parser_class(fmt).detect(sample) == 0:
                if not complete:
                    return False
                if not s.piped and not at_end:  # its lines may tell further in: read by its lines
                    return self._untold_file(s, sample)
                s.info["checked"] = True
                s.refused = f"{lines} lines, none looked like {fmt}"
                s.info["problem"] = s.refused
                _hint_for_shape(s, sample)
                if self.files.follow:  # (a batch run's summary names it: the CLI warns)
                    log.warning("watch: %s: %s: not read (check the format of this source)", s.path, s.refused)
                return False
            s.mta = fmt
            s.info["format"] = fmt
            s.info["checked"] = True
            return True
        scores = {name: cls.detect(sample) for name, cls in REGISTRY.items()}
        found = [name for name in REGISTRY if scores[name] > 0]
        if not found and s.head_damage is not None:
            # a .gz damaged before its first lines could be read: say so (not "no MTA")
            s.info["checked"] = True
            s.refused = s.head_damage
            self._damaged(s, 0, s.head_damage)
            if self.files.follow:
                log.warning("watch: %s is damaged at its start: %s; not read", s.path, s.head_damage)
            return False
        if not found and not sample and s.compressed and not self.files.follow:
            # a compressed file with no text (logrotate compresses an empty week's log too): as an
            # empty plain file, nothing to read, nothing wrong
            s.info["checked"] = True
            return False
        if not found:
            if not complete:
                return False
            if sample and not s.piped and not at_end:
                return self._untold_file(s, sample)
            s.info["checked"] = True
            s.unrecognised = True
            s.info["format"] = "unrecognised"
            s.info["problem"] = (f"{lines} lines, none looked like Postfix, sendmail or qmail"
                                 if sample else "empty or no complete line")
            _hint_for_shape(s, sample)
            if self.files.follow:
                log.warning("watch: %s is not recognised as Postfix, sendmail or qmail: skipped "
                            "(set format = \"postfix\" etc. for this source in the config)", s.path)
                return True  # followed: its lines are counted and passed over
            return False
        s.info["checked"] = True
        s.mta = MIXED if len(found) > 1 else found[0]
        s.info["format"] = "+".join(found) if len(found) > 1 else found[0]
        if self.files.follow:
            log.info("watch: %s looks like %s", s.path, s.info["format"])
        return True

    def _untold_file(self, s: Stream, sample: list[str]) -> bool:
        """A file whose sample (its first lines and windows further in) tells no MTA (under
        --format auto), or not the --format given: a combined syslog (/var/log/messages, a
        `journalctl` dump) may hold mail lines between the windows only. It is read as untold
        standard input is (_read_untold):
        chunk by chunk, a chunk that does not tell line by line, each line by the parser that
        recognises it; the first lines recognised tell its MTA and the chunks after them are read
        as a file's. A batch run refuses it at its end when none did (_untold_at_end: not marked
        as read). A file a run stopped in after its lines had told (its position keeps the MTA)
        is read on as that MTA's."""
        s.info["checked"] = True
        if s.told_before in (*REGISTRY, MIXED) and s.offset > 0:
            s.mta = s.told_before
            s.info["format"] = s.mta
            return True
        s.by_lines = True
        s.sample = sample
        if self.files.follow and s.path not in self._untold_said:  # (once: a quiet file is reopened as it grows)
            self._untold_said.add(s.path)
            fmt = s.source.fmt
            log.warning("watch: %s: none of %d lines looked at is %s: its lines are read one by one until one is "
                        "(check the path, or %s for this source)", s.path, len(sample),
                        "Postfix, sendmail or qmail" if fmt == "auto" else fmt,
                        "set format = \"postfix\" etc." if fmt == "auto" else "its format")
        return True

    def _refresh_context(self, s: Stream) -> None:
        """The parse context of a stream: its file's mtime for the year of `Mon DD` stamps (a
        followed file: now, renewed hourly, so a new year is seen)."""
        now = self.clock.time()
        mtime = now if (self.files.follow or s.piped) else s.mtime
        s.ctx = self.session.context(s.path if not s.source.is_stdin else "-", mtime)
        s.ctx.first_month = s.first_month or None
        s.ctx_made = now

    @staticmethod
    def _note_first_month(s: Stream, head: bytes) -> None:
        """The month of the stream's first `Mon DD` line, from its first lines (before any of its
        lines is read: a forced --year is that line's year, and a later January the next one's)."""
        if s.first_month is None:
            s.first_month = parsers_common.first_month(head) or 0
            if s.ctx is not None:
                s.ctx.first_month = s.first_month or None

    # ================================================================== chunks
    def _ahead(self, chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, object]]:
        """The chunks with their fields found (the MTA's block reader's extract()) by reader
        threads EXTRACT_AHEAD chunks ahead of the one being applied (outside the GIL, mostly)."""
        pending: deque = deque()
        it = iter(chunks)
        failed: list[OSError] = []  # a read error: raised once the chunks read before it are applied

        def pull() -> bool:
            try:
                return take()
            except OSError as exc:
                failed.append(exc)
                return False

        def take() -> bool:
            for chunk in it:
                fields = None
                s = chunk.stream
                if s.first_month is None and chunk.kind == LINES:  # standard input, a pipe: its first chunk
                    self._note_first_month(s, chunk.data[:1 << 16])
                if s.by_lines and not s.judged and chunk.kind == LINES:  # before its fields are looked for
                    self._mta_of_chunk(s, chunk)
                head = _cut_head(chunk)
                if head is not None:   # the end of a line whose start is elsewhere: read on its own
                    pending.append((head, None))
                    chunk = Chunk(s, chunk.data[len(head.data):], head.end, chunk.end, chunk.kind)
                    if not chunk.data:
                        return True
                reader = BLOCK_READERS.get(s.mta) if chunk.kind == LINES and self._by_block(chunk) else None
                if reader is not None and not s.unrecognised:
                    if self._readers is None:
                        self._readers = ThreadPoolExecutor(max_workers=max(EXTRACT_AHEAD.values(), default=1),
                                                           thread_name_prefix="block-reader")
                    check = s.mta if s.source.fmt == "auto" else None
                    fields = self._readers.submit(_extract, reader, chunk.data, s.ctx, self.session.buffer.annotate, check)
                pending.append((chunk, fields))
                return True
            return False

        try:
            pull()
            while pending:
                ahead = EXTRACT_AHEAD.get(pending[0][0].stream.mta, 1)
                while len(pending) < ahead and not failed and pull():
                    pass
                chunk, fields = pending.popleft()
                if not failed:
                    pull()
                yield chunk, (fields.result() if fields is not None else None)
            if failed:
                raise failed[0]
        finally:
            for _, fields in pending:  # a run that stops early: let the readers finish
                if fields is not None:
                    fields.cancel()
                    try:
                        fields.result()
                    except BaseException:
                        pass

    def _stop_readers(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None

    def _by_block(self, chunk: Chunk) -> bool:
        """Whether a chunk of lines goes through its MTA's block reader (see BLOCK_MIN_BYTES)."""
        if self.columnar is None:
            return self.files.follow or len(chunk.data) >= BLOCK_MIN_BYTES
        return self.columnar

    def _apply(self, chunk: Chunk, fields) -> None:
        """Read one chunk into the session; the stream's consumed offset moves to its end."""
        s = chunk.stream
        session = self.session
        if chunk.kind == SKIPPED:
            s.offset = chunk.end
            return
        if chunk.kind == DAMAGED:
            self._damaged(s, chunk.offset, chunk.data.decode())
            return
        data = chunk.data
        if s.by_lines and not s.judged:
            self._mta_of_chunk(s, chunk)
            if not s.judged:  # nothing in its lines so far told its MTA: each line read by its own
                self._read_untold(s, chunk)
                return
        if s.unrecognised or s.mta is None:
            s.offset = chunk.end
            self._count(s, 1 if chunk.kind == LONG else data.count(b"\n") + (chunk.kind == PARTIAL),
                        chunk.end - chunk.offset)
            return
        if self.files.follow and self.clock.time() - s.ctx_made > CONTEXT_REFRESH_S:
            self._refresh_context(s)
        if chunk.kind == HEAD:  # the end of a line whose start is in another file (copytruncate)
            feed = session.parser(s.mta, s.ctx).feed

            def head_feed(line: str, offset: int) -> str:
                result = feed(line, offset)
                return STARTS_MID_LINE if result == SKIP else result

            session.front_door(head_feed, data, chunk.offset, s.path)
            s.offset = chunk.end
            self._count(s, 1, chunk.end - chunk.offset)
            self._maybe_commit_batch(s)
            return
        if chunk.kind == LONG:  # one line with no newline within MAX_LINE_BYTES: what the front door reads of it
            session.front_door(self._feed_of(s, data), data, chunk.offset, s.path)
            s.offset = chunk.end
            self._count(s, 1, chunk.end - chunk.offset)
            self._maybe_commit_batch(s)
            return
        if fields is not None:
            parser = session.parser(s.mta, s.ctx)
            source, front_door, feed = s.path, session.front_door, parser.feed

            def feed_line(raw: bytes, at: int, known: str | None = None) -> None:
                """A line to the front door (`known`: what the block reader found it to be, a reject's reason)."""
                front_door(feed if known is None else (lambda line, offset: known), raw, at, source)

            result = BLOCK_READERS[s.mta].read_block(parser, data, chunk.offset, fields, feed_line,
                                                     annotate=session.buffer.annotate)
            if result.columns is not None:
                session.buffer.add_columns(result.columns)
            s.offset = chunk.end
            self._count(s, result.lines, len(data))
            self._maybe_commit_batch(s)
            self._maybe_commit_before_last_block(s)
            return
        self._feed_lines(s, self._feed_of(s, data), data, chunk.offset, chunk.kind == PARTIAL)

    def _mta_of_chunk(self, s: Stream, chunk: Chunk) -> None:
        """Standard input or a pipe: its MTA told by its lines, chunk by chunk until one tells it
        (it cannot be looked at before it is read, as a file's first lines and lines further in
        are): under --format auto the MTAs of the lines of a sample of the chunk, an explicit
        --format checked against them. A chunk that does not tell is read line by line
        (_read_untold); a stream that never tells is refused at its end (_untold_at_end), as a
        file is (a sendmail log piped in as postfix: a warning and exit status 1). A file whose
        sample told no MTA (_untold_file) is read the same way."""
        if s.judged or chunk.end <= s.looked_at:
            return
        s.looked_at = chunk.end
        data = chunk.data
        sample = _sample_of(data[:1 << 20].split(b"\n")[:DETECT_SAMPLE_LINES])
        wanted = [parser_class(s.source.fmt)] if s.source.fmt != "auto" else list(REGISTRY.values())
        if sample and not any(cls.detect(sample) for cls in wanted):
            # none in its first lines (`journalctl | ingest -` of every unit): the rest of the chunk
            rest = data[:data.rfind(b"\n") + 1].split(b"\n")[DETECT_SAMPLE_LINES:]
            step = max(1, -(-len(rest) // DETECT_SAMPLE_LINES))
            sample += _sample_of(rest[::step])
        if sample and any(cls.detect(sample) for cls in wanted):
            s.judged = True
            self._judge(s, sample, complete=True)
        elif s.sample is None and sample:
            s.sample = sample  # (what the verdict names if nothing ever tells)

    def _read_untold(self, s: Stream, chunk: Chunk) -> None:
        """A chunk of a stream whose MTA its lines have not told yet, read line by line:
        each line by the parser of the MTA that recognises it (--format auto; a line of none is
        counted as another program's, `other_lines`) or by the --format's parser. The first
        lines recognised tell the stream's MTA; the chunks after them are read as a file's."""
        session = self.session
        told = s.told_by = s.told_by or {}
        summary = session.summary
        if s.source.fmt != "auto":
            fmt = s.source.fmt
            recognises, parse = parser_class(fmt).recognises, session.parser(fmt, s.ctx).feed

            def feed(line: str, offset: int) -> str:
                if recognises(line):
                    told[fmt] = told.get(fmt, 0) + 1
                    if s.mta is None:
                        s.mta = fmt  # (for a commit before the chunk's end: the position keeps it)
                return parse(line, offset)
        else:
            parsers = [(name, cls.recognises, session.parser(name, s.ctx).feed) for name, cls in REGISTRY.items()]

            def feed(line: str, offset: int) -> str:
                for name, recognises, parse in parsers:
                    if recognises(line):
                        told[name] = told.get(name, 0) + 1
                        if s.mta is None:
                            s.mta = name  # (for a commit before the chunk's end: the position keeps it)
                        return parse(line, offset)
                summary.other_lines += 1
                return SKIP

        if chunk.kind == LONG:
            session.front_door(feed, chunk.data, chunk.offset, s.path)
            s.offset = chunk.end
            self._count(s, 1, chunk.end - chunk.offset)
            self._maybe_commit_batch(s)
        else:
            self._feed_lines(s, feed, chunk.data, chunk.offset, chunk.kind == PARTIAL)
        if told:
            found = [name for name in REGISTRY if name in told]
            s.judged = True
            s.mta = MIXED if len(found) > 1 else found[0]
            s.info["format"] = "+".join(found)
            s.sample = s.told_by = None
            if self.files.follow:
                log.info("watch: %s looks like %s (told by its lines)", s.path, s.info["format"])

    def _untold_at_end(self, s: Stream) -> None:
        """The end of a stream read by its lines none of which told its MTA: refused as a file
        of no MTA (or not of the --format given) is, naming how many lines were read. An empty
        one is nothing to read, as an empty file is."""
        s.judged = True
        if not s.info["lines"]:
            return
        self._judge(s, s.sample or [], complete=True, lines=s.info["lines"], at_end=True)
        if s.mta is None and not s.unrecognised and s.refused is None:
            s.unrecognised = True

    def _feed_of(self, s: Stream, data: bytes = b""):
        """The feed function for a stream's lines: its MTA's parser, or, for a stream (or a chunk
        of an `auto` stream) with several MTAs' lines, a router that gives each line to the
        parser that recognises it (a line of none is counted as another program's)."""
        session = self.session
        mta = s.mta
        if mta != MIXED and not (s.source.fmt == "auto" and data and _has_foreign(data, mta)):
            return session.parser(mta, s.ctx).feed
        parsers = [(cls.recognises, session.parser(name, s.ctx).feed) for name, cls in REGISTRY.items()]
        summary = session.summary

        def route(line: str, offset: int) -> str:
            for recognises, feed in parsers:
                if recognises(line):
                    return feed(line, offset)
            summary.other_lines += 1
            return SKIP

        return route

    def _feed_lines(self, s: Stream, feed, data: bytes, offset: int, partial: bool) -> None:
        """Per-line reading of a chunk (sendmail, qmail, mixed, Postfix without the block
        reader). The decision is per line: when the chunk is valid UTF-8 without NUL, CR or an
        over-long line (the common case, Japanese text included) it is decoded at once; else
        each line is checked by the front door."""
        session = self.session
        buffer, batch_limit = session.buffer, self.settings.batch_events
        source = s.path
        rejects = session.rejects
        if partial:
            session.front_door(feed, data, offset, source)
            s.offset = offset + len(data)
            self._count(s, 1, len(data))
            self._maybe_commit_batch(s)
            return
        text = None
        if b"\x00" not in data and b"\r" not in data:
            arr = np.frombuffer(data, np.uint8)
            ends = np.flatnonzero(arr == 10)
            longest = int(ends[0]) + 1 if len(ends) else 0
            if len(ends) > 1:
                longest = max(longest, int(np.diff(ends).max()))
            if longest <= MAX_LINE_BYTES:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
        if text is not None:
            lines = text.split("\n")
            lines.pop()  # the empty string after the last newline
            starts = (ends + (offset + 1)).tolist()      # where each next line starts
            starts.insert(0, offset)
            done = 0
            for i, line in enumerate(lines):
                at = starts[i]
                result = feed(line, at)
                if result != SKIP and result != EVENT:  # MALFORMED, NO_START: a reject of that reason
                    rejects.add(result, source, at, line.encode() + b"\n")
                if len(buffer) >= batch_limit:
                    s.offset = starts[i + 1]
                    self._count(s, i + 1 - done, starts[i + 1] - starts[done])
                    done = i + 1
                    self._commit_batch()
            self._count(s, len(lines) - done, starts[-1] - starts[done])
        else:
            at = offset
            done_at = offset
            n = 0
            for raw in io.BytesIO(data):  # split at \n only (a CR inside a line is the line's)
                session.front_door(feed, raw, at, source)
                at += len(raw)
                n += 1
                if len(buffer) >= batch_limit:
                    s.offset = at
                    self._count(s, n, at - done_at)
                    n, done_at = 0, at
                    self._commit_batch()
            self._count(s, n, at - done_at)
        s.offset = offset + len(data)

    def _count(self, s: Stream, lines: int, nbytes: int) -> None:
        self.session.summary.lines += lines
        self.session.summary.bytes += nbytes
        if s.info is not None:
            s.info["lines"] += lines

    def _maybe_commit_batch(self, s: Stream) -> None:
        if len(self.session.buffer) >= self.settings.batch_events:
            self._commit_batch()

    def _maybe_commit_before_last_block(self, s: Stream) -> None:
        """A batch read of a plain file with one block left (after a block read column-wise):
        what is buffered goes to the writer now, so its write overlaps the reading of that block
        and the write the run waits for at its end holds just the last block's events."""
        if (not self.files.follow and not s.sequential and 0 < s.size - s.offset <= line_source.BLOCK_BYTES
                and len(self.session.buffer) >= self.settings.batch_events // 8):
            self._commit_batch()

    def _commit_batch(self) -> None:
        """A commit once batch_events are buffered (batch: at once; followed: through the
        follower's commit, which retries a failing store)."""
        if self.files.follow:
            self._commit_or_hold()
        else:
            self.files.snapshot_positions()
            self.session.commit()

    # ================================================================== follow
    def follow(self, sources: Iterable[SourceSettings], stop_event: threading.Event | None = None, *,
               use_watchdog: bool = True, on_start=None, on_stored=None) -> IngestSummary:
        """Follow the sources until `stop_event` is set (or stop() is called); returns what was
        read and written. `on_start(engine)` is called once the engine runs (the CLI routes
        signals to engine.stop()); `on_stored(final=False)` after the events of one or more
        commits are durable and their state saved (lake.node.watch_hook: this node uploads its
        sealed files), in the loop (again at each step while it answers True: work left for
        later) and once more at the end with final=True; it must not raise."""
        if stop_event is not None:
            self.stop_event = stop_event
        with self.following(sources, use_watchdog=use_watchdog, on_start=on_start, on_stored=on_stored) as summary:
            while not self.stop_event.is_set():
                self.wake.clear()
                if self.step():
                    continue
                self.clock.wait(self.wake, self.wait_time())
        return summary

    @contextmanager
    def following(self, sources: Iterable[SourceSettings], *, use_watchdog: bool = True,
                  on_start=None, on_stored=None) -> Iterator[IngestSummary]:
        """The follower set up (watch lock, session, sources, file-system wake-ups) for step()
        to be called in a loop; on leaving, what was read is committed and the files closed.
        follow() is this loop with waits between the steps; tests call step() themselves and
        move the engine's clock instead of waiting."""
        specs = [SourceSpec(src.path, src.format, src.olddir) for src in sources]
        for spec in specs:
            if spec.fmt != "auto":
                parser_class(spec.fmt)
            if spec.is_stdin:  # (it was passed over: a watch that follows nothing looks like one that works)
                raise ConfigError("a [[sources]] path of \"-\" (standard input) cannot be followed by watch: give "
                                  "log files or globs (journald: let rsyslog write /var/log/mail.log), or pipe the "
                                  "stream into `mailhygiene ingest -`")
        w = self.watch_settings
        self.flush_interval = float(w.flush_interval)
        self.poll_interval = float(w.poll_interval)
        summary = IngestSummary()
        with watch_lock(self.data_dir), Session(self.data_dir, self.tz, self.settings, self.carriers,
                                                 year=self.year, summary=summary, followed=True) as session:
            self.session = session
            self.files = LogFiles(specs, session.positions, follow=True, on_open=self._on_open, clock=self.clock)
            self.pending_since: float | None = None
            self._store_times: deque = deque(maxlen=STORE_TIMES_KEPT)
            self._store_lead = 0.0     # the slowest of them (set by the writer thread's callback)
            self._store_times_lock = threading.Lock()
            self.woken_at: float | None = None  # the first change the file system told of since the last pass
            self.on_stored = on_stored
            self._unannounced = False  # commits stored since on_stored() was last called
            self.flush_failures = 0
            self.flush_retry_at = 0.0
            self.touched_days: set[str] = set()
            self._last_report = self.clock.monotonic()
            self._reported = (0, 0)
            self._observer = None
            self._watched_dirs: set[str] = set()
            if on_start is not None:
                on_start(self)
            started = self.clock.monotonic()
            log.info("watch: following %d source(s) into %s (flush every %.1f s)",
                     len(specs), self.data_dir, self.flush_interval)
            if use_watchdog:
                self._start_observer()
            try:
                self.files.scan()
                self.files.resume_unfinished()
                yield summary
            finally:
                self._stop_observer()
                try:
                    self.files.snapshot_positions()
                    self.session.commit()
                    self.session.finish_pending()
                    self._unannounced = True
                    self._announce_stored(final=True)
                finally:
                    self.files.close()
                    self._stop_readers()
                summary.seconds = self.clock.monotonic() - started
                log.info("watch: stopped after %d lines, %d events written", summary.lines, summary.events_written)

    def step(self) -> bool:
        """One pass of the follower: read what is new, commit when the flush interval has passed
        (or the buffer is full), finish a stored batch; when idle, compact and report. True when
        a file still has unread data (the next pass should come at once)."""
        busy = self._poll_once()
        self._maybe_commit()
        session = self.session
        if session.pending_done():
            try:
                session.finish_pending()
            except Exception as exc:
                self._store_failed(exc)
            else:
                self._announce_stored()
        if busy:
            return True
        self._maybe_compact()
        self._maybe_report()
        return False

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def wait_time(self) -> float:
        """How long follow() waits after an idle step: the poll interval, less when a flush, a
        stored batch or a retry is due sooner."""
        t = self.poll_interval
        if self.pending_since is not None:
            t = min(t, self.flush_due() - self.clock.monotonic())
        if not self.session.pending_done():
            t = min(t, 0.05)  # a batch is being stored: save its state soon after
        if self.flush_failures:
            t = min(t, max(0.0, self.flush_retry_at - self.clock.monotonic()))
        return max(0.01, t)

    def _poll_once(self) -> bool:
        """Scan the sources, read what is new; True when a file still has unread data."""
        files = self.files
        # the lines this pass reads were there by now, or when the file system told of a change
        seen, self.woken_at = min(self.clock.monotonic(), self.woken_at or float("inf")), None
        files.scan()
        busy = False
        limit = self.settings.batch_events
        for s in files.ready_streams():
            if self.stop_event.is_set():
                break
            if len(self.session.buffer) >= limit and not self._commit_or_hold():
                return False  # the store is failing: hold reading until it takes events again
            if s.refused is not None:
                continue
            start = s.read_at
            for chunk, fields in self._ahead(files.chunks(s, budget=READ_BUDGET)):
                self._apply(chunk, fields)
                self._dirty(seen)
                chunk = fields = None  # (see _ahead)
            busy |= s.read_at - start >= READ_BUDGET
        if files.close_idle():
            self._dirty()
        return busy

    def _dirty(self, since: float | None = None) -> None:
        if self.pending_since is None:
            self.pending_since = self.clock.monotonic() if since is None else since

    def flush_due(self) -> float:
        """When the events read since the last commit must be handed to the store: so that they
        are queryable `flush_interval` after the pass that found their first line, the commit
        starts as much earlier as the slowest of the last STORE_TIMES_KEPT commits took to be
        stored (at most half the interval)."""
        lead = min(self.flush_interval / 2, self._store_lead)
        return self.pending_since + self.flush_interval - lead

    def _timed(self, started: float):
        """A done-callback of a batch handed to the store: its store time, from the commit's start."""
        def done(future) -> None:
            if not future.cancelled() and future.exception() is None:
                with self._store_times_lock:  # (the writer thread, or this one when already done)
                    self._store_times.append(self.clock.monotonic() - started)
                    self._store_lead = max(self._store_times)
        return done

    def _maybe_commit(self) -> None:
        if self.pending_since is None:
            return
        now = self.clock.monotonic()
        if self.flush_failures and now < self.flush_retry_at:
            return
        if now >= self.flush_due() or len(self.session.buffer) >= self.settings.batch_events:
            self._commit_or_hold()

    def _commit_or_hold(self) -> bool:
        """Commit; when the store fails (disk full, ...), keep the events, retry with backoff."""
        started = self.clock.monotonic()
        try:
            self.touched_days |= _days_of(self.session)
            self.files.snapshot_positions()
            self.files.prune()
            stored = self.session.commit()
        except Exception as exc:  # the store or the disk failed: keep the events, retry later
            self._store_failed(exc)
            return False
        if stored is not None:
            stored.add_done_callback(self._timed(started))
        if self.flush_failures:
            log.info("watch: writing events works again")
            self.flush_failures = 0
        self.pending_since = None
        self._unannounced = True
        return True

    def _announce_stored(self, final: bool = False) -> None:
        """on_stored(final) once the commits since the last call are durable (not at every loop);
        a hook that answers True has left its work for later and is asked again at the next step
        (final: the follower stops, nothing may be left)."""
        if self._unannounced and self.on_stored is not None and self.session.pending_done():
            self._unannounced = False
            try:
                later = self.on_stored(final=final)
            except Exception as exc:  # the hook's own failure must never stop following
                log.warning("watch: after storing events: %s: %s", type(exc).__name__, exc)
            else:
                self._unannounced = bool(later) and not final

    def _store_failed(self, exc: Exception) -> None:
        from ..core.backoff import backoff_delay

        self.flush_failures += 1
        delay = backoff_delay(self.flush_failures, 2.0, RETRY_MAX_S)
        self.flush_retry_at = self.clock.monotonic() + delay
        if self.pending_since is None:
            self.pending_since = self.clock.monotonic()
        log.error("watch: writing events failed (%s: %s); retrying in %.0f s, nothing is lost",
                  type(exc).__name__, exc, delay)

    def _maybe_compact(self) -> None:
        """At a quiet moment, merge the small files of the days written to."""
        if not self.touched_days or self.pending_since is not None or not self.session.pending_done():
            return
        days, self.touched_days = self.touched_days, set()
        store = self.session.store
        for day in sorted(days):
            try:
                if len(store.files(day)) > COMPACT_FILES and store.compact(
                        day, min_files=COMPACT_FILES // 2, max_file_bytes=SMALL_FILE_BYTES):
                    self.session.summary.compactions += 1
                    log.info("watch: compacted the small files of %s", day)
            except Exception as exc:  # compaction is an optimisation: never stop following for it
                log.warning("watch: compacting %s failed: %s", day, exc)

    def _maybe_report(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_report < REPORT_EVERY_S:
            return
        self._last_report = now
        summary = self.session.summary
        cur = (summary.lines, summary.events_written)
        if cur != self._reported:
            log.info("watch: %d lines read, %d events written, %s so far", cur[0], cur[1],
                     rejected_text(summary.rejected))
            self._reported = cur

    # ------------------------------------------------------------------ wake-ups
    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        except Exception as exc:  # no inotify (limits, platform): the timer alone still works
            log.warning("watch: file-system notifications unavailable (%s): polling every %.1f s",
                        exc, self.poll_interval)
            self._observer = None
            return
        engine = self

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("modified", "closed", "opened", "closed_no_write") and \
                        not engine.files.interesting(str(event.src_path)):
                    return
                if engine.woken_at is None:
                    engine.woken_at = engine.clock.monotonic()
                engine.wake.set()

        for spec in self.files.specs:
            d = str(spec.watch_dir)
            if spec.is_stdin or d in self._watched_dirs:
                continue
            self._watched_dirs.add(d)
            try:
                self._observer.schedule(Wake(), d, recursive=spec.recursive)
            except Exception as exc:
                log.warning("watch: cannot watch %s for changes (%s): polling it every %.1f s", d, exc,
                            self.poll_interval)

    def _stop_observer(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                pass
            self._observer = None


def _hint_for_shape(s: Stream, sample: list[str]) -> None:
    """What to do about a refused file whose lines have a known shape that is not a log's."""
    lines = [ln for ln in sample[:50] if ln.strip()]
    if lines and sum(ln.lstrip().startswith("{") for ln in lines) * 2 > len(lines):
        s.info["hint"] = ("its lines are JSON (journalctl -o json?): give the text form instead, e.g. "
                          "journalctl -u postfix -o short-iso | mailhygiene ingest --format postfix -")


class FileProgress:
    """One file's share of the ingest bar: the bar moves with the bytes of a plain file as its
    chunks are read (a single 2 GB mail.log stood at 0 % until it was done), a compressed one's
    at its end; finish() makes the file's whole size count."""

    def __init__(self, bar, size: int):
        self.bar, self.size = bar, size
        self.done = 0

    def advance(self, offset: int) -> None:
        step = min(offset, self.size) - self.done
        if self.bar is not None and step > 0:
            self.bar.update(step)
            self.done += step

    def finish(self) -> None:
        self.advance(self.size)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _extract(reader, data: bytes, ctx, annotate, foreign_of: str | None):
    """A block reader's extract() (in a reader thread); None, so the chunk is read line by line
    with per-line routing, when a chunk of an `auto` stream holds another MTA's lines, or when it
    holds RFC 5424 lines (`<PRI>1 …`: the scanners know the RFC 3164/3339 prefixes only; the
    parsers read them, parsers.common.rfc5424_as_rfc3339)."""
    if getattr(reader, "STOPS_AT_LINE_STARTS", False):
        # the reader's scanner looks at every line start in its own pass: a marker that is a
        # line start ("\n@4000", RFC 5424's "<") is looked for there, the others in one pass here
        foreign = _FOREIGN.get(foreign_of, ()) if foreign_of is not None else ()
        anywhere = tuple(m for m in foreign if not m.startswith(b"\n"))
        if anywhere and _has_markers(data, anywhere):
            return None
        starts = (_RFC5424_START,) + tuple(m[1:] for m in foreign if m.startswith(b"\n"))
        return reader.extract(data, MAX_LINE_BYTES, ctx, annotate, stops=starts)
    if foreign_of is not None and _has_foreign(data, foreign_of):
        return None
    if _has_rfc5424(data):
        return None
    return reader.extract(data, MAX_LINE_BYTES, ctx, annotate)


def _cut_head(chunk: Chunk) -> Chunk | None:
    """The first line of a stream's text (LINES or PARTIAL) of one MTA as a HEAD chunk of its
    own when it does not start as a log line does (parsers.common.TEXT_HEAD_RE): the end of a
    line whose start is in another file (logrotate's copytruncate copied the start and truncated
    the log, its writer wrote the rest at the new start; a file cut from the middle of a log).
    The engine reads it by its parser, and a line the parser skips is a reject `starts_mid_line`:
    counted, never passed over unseen. None otherwise."""
    s = chunk.stream
    if (chunk.offset != s.text_start or chunk.kind not in (LINES, PARTIAL) or s.mta not in REGISTRY
            or s.unrecognised or not chunk.data or TEXT_HEAD_RE.match(chunk.data)):
        return None
    end = chunk.data.find(b"\n") + 1 or len(chunk.data)
    return Chunk(s, chunk.data[:end], chunk.offset, chunk.offset + end, HEAD)


def _sample_of(raws: list[bytes]) -> list[str]:
    """Lines of a chunk for telling its MTA, as the front door reads them (a hole's NUL bytes
    left out); empty ones left out."""
    out = []
    for raw in raws:
        if b"\x00" in raw:
            raw = parsers_common.after_hole(raw).replace(b"\x00", b"")
        if raw:
            out.append(raw.decode("utf-8", "replace"))
    return out


_RFC5424_START = b"<"  # what an RFC 5424 line starts with (its `<PRI>`)


def _has_rfc5424(data: bytes) -> bool:
    """Does a chunk hold a line starting with `<` (an RFC 5424 line's `<PRI>`)? One SIMD pass
    with the compiled scanner (about 1 ms for 16 MiB; Python's `in`: about 15)."""
    return data.startswith(_RFC5424_START) or _has_markers(data, (b"\n" + _RFC5424_START,))


def _has_foreign(data: bytes, mta: str) -> bool:
    """Does a chunk of an `auto` stream read as `mta` hold another MTA's lines? (A marker that
    only looks like one routes the chunk line by line: slower, never wrong.) A marker starting
    with a newline is a line start: the chunk's first line counts too."""
    markers = _FOREIGN.get(mta, ())
    if data.startswith(tuple(m[1:] for m in markers if m.startswith(b"\n"))):
        return True
    return _has_markers(data, markers)


def _has_markers(data: bytes, markers: tuple[bytes, ...]) -> bool:
    scanner = native.SCANNER
    if scanner is not None:
        return scanner.has_markers(data, markers)
    return any(marker in data for marker in markers)


def _days_of(session: Session) -> set[str]:
    """The UTC days of the events waiting in the session's buffer (days to compact later)."""
    from datetime import datetime, timezone

    buffer = session.buffer
    out = {datetime.fromtimestamp(r["ts"] / 1e6, timezone.utc).strftime("%Y-%m-%d") for r in buffer.rows[:100_000]}
    for part in buffer.column_parts:
        ts = part["ts"]
        if len(ts):
            lo, hi = int(ts[0].as_py()), int(ts[len(ts) - 1].as_py())
            for t in (lo, hi):
                out.add(datetime.fromtimestamp(t / 1e6, timezone.utc).strftime("%Y-%m-%d"))
    return out


def _is_regular(path) -> bool:
    import os
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # (opening it says what is wrong)


def _matching(pattern: str) -> list:
    import glob as _glob

    if pattern == STDIN:
        return [pattern]
    if _glob.has_magic(pattern):  # (regular files only, as expand_paths takes)
        return line_source.glob_files(pattern)
    return [pattern]


# ---------------------------------------------------------------------- library entry points
def ingest(cfg: Config, paths: Iterable[str], *, fmt: str = "auto", year: int | None = None,
           use_positions: bool = True, progress: bool | None = None, columnar: bool = True) -> IngestSummary:
    """Ingest log files (plain, .gz, globs, `-` for stdin) into cfg's data dir. `columnar`: as
    Engine's; True here (every chunk through its block reader), the commands' None otherwise."""
    engine = Engine.from_config(cfg, year=year, progress=progress, columnar=columnar)
    return engine.ingest([str(p) for p in paths], fmt=fmt, use_positions=use_positions)


def follow(cfg: Config, stop_event: threading.Event | None = None, *, use_watchdog: bool = True,
           on_start=None) -> IngestSummary:
    """Follow cfg's [[sources]] until `stop_event` is set (what `mailhygiene watch` runs); with
    `[store] url` each stored commit is uploaded to the lake (lake.node.watch_hook)."""
    from ..lake.node import watch_hook

    return Engine.from_config(cfg).follow(cfg.sources, stop_event, use_watchdog=use_watchdog, on_start=on_start,
                                          on_stored=watch_hook(cfg))


__all__ = ["Engine", "IngestSummary", "ingest", "follow", "expand_paths", "watch_is_running"]
