"""Batch ingest: log files (plain or .gz) -> classified event rows in the event store.

Reads the files given (or the configured sources), detects each file's MTA, feeds complete lines
to the MTA's parser, classifies the events in batches, and hands Arrow tables to the event store
(the only Parquet writer). Bad lines (invalid UTF-8, NUL bytes, overlong, malformed delivery
lines) are counted and sampled to <data_dir>/rejects/, never fatal. Positions are committed only
after the events they cover are stored, so an interrupted run loses nothing on the next run.

Called by the CLI (`ingest`, `clean`) and by pipeline.ingest.follow for live logs.
"""

from __future__ import annotations

import glob
import io
import json
import os
import time
from collections import Counter, deque
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..store import arrow_build as ab
from ..classify.carriers import CarrierTable
from ..classify.classifier import DELIVERED, classify
from ..core.config import Config
from ..core.errors import InputError, StoreError
from ..store.event_store import EventStore
from .parsers import EVENT, MALFORMED, ParseContext, Parser, detect_format, parser_class, postfix_block
from .parsers.postfix import PostfixParser
from ..store.records import EVENT_SCHEMA, PARSED_COLUMNS, event_ids_for
from .tail import Positions, fingerprint, is_compressed, open_log

MAX_LINE_BYTES = 64 * 1024
BLOCK_BYTES = 8 * 1024 * 1024  # files are read in blocks of whole lines (BENCHMARKS.md: 8 MiB over 4)
EXTRACT_AHEAD = 2  # Postfix blocks whose fields are being found while one is applied
DETECT_SAMPLE_LINES = 2000
# A last line without newline in a plain file modified this recently may still be being
# written: leave it for the next run. Older (or compressed) files: it is read as it is.
PARTIAL_LINE_GRACE_S = 60


@dataclass
class IngestSummary:
    files: list[dict] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    events_parsed: int = 0
    events_written: int = 0
    written_by_status: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    recovered: int = 0
    rejects_file: str | None = None
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return self.events_parsed - self.events_written

    def as_dict(self) -> dict:
        return {
            "files": self.files, "lines": self.lines, "bytes": self.bytes,
            "events_parsed": self.events_parsed, "events_written": self.events_written,
            "already_stored": self.duplicates,
            "written_by_status": dict(self.written_by_status),
            "lines_rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected), "recovered_from_rejected": self.recovered,
            "rejects_file": self.rejects_file, "seconds": round(self.seconds, 3),
        }


_EMPTY, _NUL, _SENT = ab.scalar(""), ab.scalar("\x00"), ab.scalar("sent")


def _column(values: list, type: pa.DataType) -> pa.Array:
    """One column of dict rows as Arrow (arrow_build: no pa.array, so no pandas import)."""
    if pa.types.is_string(type):
        return ab.strings(values)
    if pa.types.is_boolean(type):
        return ab.optional_bools(values)
    return ab.optional_ints(values, type)


class RejectLog:
    """Counts bad lines and keeps up to `limit` samples (file, offset, reason, text) as JSONL."""

    def __init__(self, data_dir: Path, limit: int, summary: IngestSummary):
        self.dir = data_dir / "rejects"
        self.limit = limit
        self.kept = 0
        self.summary = summary
        self._fh = None

    def add(self, reason: str, source: str, offset: int, raw: bytes) -> None:
        self.summary.rejected[reason] += 1
        if self.kept >= self.limit:
            return
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
            self._fh = open(path, "a", encoding="utf-8")
            self.summary.rejects_file = str(path)
        sample = raw[:4096].decode("utf-8", "backslashreplace")
        self._fh.write(json.dumps({"file": source, "offset": offset, "reason": reason,
                                   "bytes": len(raw), "line": sample}, ensure_ascii=False) + "\n")
        self.kept += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class EventBuffer:
    """Collects parsed rows (dicts from the per-line parsers, column batches from the Postfix
    block reader); at flush classifies them and writes one Arrow batch to the store."""

    def __init__(self, cfg: Config, store: EventStore, summary: IngestSummary):
        self.rows: list[dict] = []
        self.column_parts: list[dict] = []
        self._column_rows = 0
        self.store = store
        self.summary = summary
        self.carriers = CarrierTable.from_config(cfg["carriers"])

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def add_columns(self, columns: dict) -> None:
        """A batch of rows as columns: PARSED_COLUMNS as Arrow arrays (and those of annotate)."""
        self.column_parts.append(columns)
        self._column_rows += len(columns["ts"])

    def __len__(self) -> int:
        return len(self.rows) + self._column_rows

    def to_table(self) -> pa.Table:
        """The buffered rows as one classified Arrow table."""
        tables = [self._rows_table()] if self.rows else []
        tables.extend(self._columns_table(part) for part in self.column_parts)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def _rows_table(self) -> pa.Table:
        """The dict rows, built column by column (the rows themselves are left as they are:
        parsers keep deferred rows in their state)."""
        rows = self.rows
        cols: dict[str, list] = {name: list(map(itemgetter(name), rows)) for name in PARSED_COLUMNS}
        cols["carrier"] = self._carriers(cols["recipient_domain"], cols["relay"])
        cols["reason"], cols["scope"], cols["hard"] = self._classes(
            cols["status"], cols["diagnostic"], cols["dsn"], cols["reply_code"], cols["smtp_phase"], cols["mta"])
        cols["event_id"] = event_ids_for(list(map(itemgetter("_line"), rows)), cols["recipient"])
        return pa.Table.from_arrays([_column(cols[f.name], f.type) for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)

    @staticmethod
    def _columns_table(part: dict) -> pa.Table:
        """A column batch of the block reader (classified in its threads, see annotate)."""
        cols = dict(part, ts=part["ts"].cast(pa.timestamp("us", tz="UTC")))
        return pa.Table.from_arrays([cols[name] for name in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)

    def annotate(self, rows: dict, mta: str = "postfix") -> None:
        """Add carrier, reason, scope and hard to column-wise rows (from `recipient_domain`,
        `relay`, `status`, `text`, `dsn`, `reply_code`, `smtp_phase`). Called by
        postfix_block.extract in the reader threads: the carrier table and the classifier are
        pure functions with thread-safe caches."""
        n = len(rows["status"])
        # carrier per distinct (domain, relay): a batch holds few
        pairs = pc.binary_join_element_wise(rows["recipient_domain"], pc.fill_null(rows["relay"], _EMPTY), _NUL).dictionary_encode()
        distinct = [pair.split("\x00", 1) for pair in pairs.dictionary.to_pylist()]
        rows["carrier"] = ab.strings(self._carriers([d for d, _ in distinct], [r for _, r in distinct])).take(pairs.indices)
        # classes as codes into the few distinct ones; 0 is "delivered" (every sent row)
        class_code = np.zeros(n, np.int32)
        distinct_classes = {DELIVERED: 0}
        failed = np.flatnonzero(ab.to_bools(pc.not_equal(rows["status"], _SENT)))
        if len(failed):
            # classified once per distinct (status, text, dsn, reply code, phase) of the batch
            # (a null and an empty field are the same to classify()); the block is ASCII
            # without NUL, so NUL separates the parts of the key
            take = ab.indices(failed)
            parts = [pc.fill_null(rows[c].take(take), _EMPTY) for c in ("status", "text", "dsn", "smtp_phase")]
            parts.insert(3, pc.fill_null(pc.cast(rows["reply_code"].take(take), pa.string()), _EMPTY))
            keys = pc.binary_join_element_wise(*parts, _NUL).dictionary_encode()
            key_of = ab.to_ints(keys.indices)
            _, first = np.unique(key_of, return_index=True)
            take = ab.indices(failed[first])
            picked = [rows[c].take(take).to_pylist() for c in ("status", "text", "dsn", "reply_code", "smtp_phase")]
            classes = self._classify_rows(*picked, [mta] * len(first))
            codes_of_key = np.array([distinct_classes.setdefault(c, len(distinct_classes)) for c in classes], np.int32)
            class_code[failed] = codes_of_key[key_of]
        codes = ab.numbers(class_code, pa.int32())
        for name, values in zip(("reason", "scope", "hard"), zip(*distinct_classes)):
            dictionary = ab.optional_bools(values) if name == "hard" else ab.strings(values)
            rows[name] = dictionary.take(codes)

    def _carriers(self, domains: list, relays: list) -> list[str]:
        carrier_for = self.carriers.carrier_for
        return [carrier_for(d or "", relay) for d, relay in zip(domains, relays)]

    @staticmethod
    def _classify_rows(statuses, diagnostics, dsns, codes, phases, mtas) -> list:
        return [DELIVERED if status == "sent" else
                classify(status=status, diagnostic=diag, dsn=dsn, reply_code=code, smtp_phase=phase, mta=mta)
                for status, diag, dsn, code, phase, mta in zip(statuses, diagnostics, dsns, codes, phases, mtas)]

    @classmethod
    def _classes(cls, *columns) -> tuple[list, list, list]:
        classes = cls._classify_rows(*columns)
        return [c.reason for c in classes], [c.scope for c in classes], [c.hard for c in classes]

    def flush(self) -> int:
        table = self.take()
        return self.count_written(self.store.write(table)) if table is not None else 0

    def take(self) -> pa.Table | None:
        """The buffered rows as a classified table (counted as parsed); the buffer is emptied."""
        if not len(self):
            return None
        table = self.to_table()
        self.summary.events_parsed += len(self)
        self.rows = []
        self.column_parts = []
        self._column_rows = 0
        return table

    def count_written(self, by_status: Counter) -> int:
        written = sum(by_status.values())
        self.summary.events_written += written
        self.summary.written_by_status.update(by_status)
        return written


def feed_raw_line(feed, raw: bytes, offset: int, source: str, rejects: RejectLog,
                  summary: IngestSummary) -> None:
    """The one front door for a raw log line (batch ingest and the live follower): overlong
    lines are rejected unread; invalid UTF-8 and NUL bytes are rejected but still parsed with
    replacement, so a delivery inside them is recovered; malformed delivery lines are rejected."""
    if len(raw) > MAX_LINE_BYTES:
        rejects.add("too_long", source, offset, raw)
        return
    try:
        line = raw.decode("utf-8")
        bad = None
    except UnicodeDecodeError:
        line = raw.decode("utf-8", "replace")
        bad = "invalid_utf8"
    if "\x00" in line:
        line = line.replace("\x00", "")
        bad = bad or "nul_bytes"
    result = feed(line.rstrip("\r\n"), offset)
    if bad:
        rejects.add(bad, source, offset, raw)
        if result == EVENT:
            summary.recovered += 1
    elif result == MALFORMED:
        rejects.add("malformed", source, offset, raw)


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named or matched by globs, oldest first (rotated logs before the current one)."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        matches = glob.glob(os.path.expanduser(pattern)) if glob.has_magic(pattern) else [pattern]
        for m in matches:
            p = Path(m)
            if p.is_dir():
                raise InputError(f"{p} is a directory: give log files (globs like {p}/mail.log* work)")
            if not p.exists():
                if glob.has_magic(pattern):
                    continue
                raise InputError(f"{p} does not exist")
            found[str(p.resolve())] = p
    return sorted(found.values(), key=_age_key)


def _age_key(p: Path):
    # mail.log.3.gz is older than mail.log.2 ... older than mail.log; fall back to mtime
    st = p.stat()
    return (st.st_mtime, -_rotation_number(p.name))


def _rotation_number(name: str) -> int:
    parts = name.replace(".gz", "").rsplit(".", 1)
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else 0


class Ingestor:
    """One ingest run: shared parsers (state spans files), one buffer, one reject log."""

    def __init__(self, cfg: Config, *, fmt: str = "auto", year: int | None = None,
                 use_positions: bool = True, progress: bool | None = None, columnar: bool = True):
        self.cfg = cfg
        self.columnar = columnar  # Postfix clean blocks through postfix_block (False: per line only)
        self.fmt = fmt
        if fmt != "auto":
            parser_class(fmt)  # validates the name
        self.year = year or cfg["ingest"]["year"] or None
        self.use_positions = use_positions
        self.progress = progress
        self.summary = IngestSummary()
        self.store = EventStore(cfg.data_dir)
        self.buffer = EventBuffer(cfg, self.store, self.summary)
        self.rejects = RejectLog(cfg.data_dir, cfg["ingest"]["reject_samples"], self.summary)
        self.positions = Positions(cfg.data_dir)
        self.parsers: dict[str, Parser] = {}
        self._writer: ThreadPoolExecutor | None = None  # stores batches while parsing goes on (run)
        self._reader: ThreadPoolExecutor | None = None  # finds the fields of the next blocks (_blocks)
        self._pending: tuple | None = None  # the commit whose batch the writer is storing
        self.state_path = cfg.data_dir / "state" / "ingest-parsers.json"
        self._saved_state = self._load_state()

    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _parser(self, mta: str, ctx: ParseContext) -> Parser:
        p = self.parsers.get(mta)
        if p is None:
            p = parser_class(mta)(ctx, self.buffer.add)
            if mta in self._saved_state:
                p.set_state(self._saved_state[mta])
            self.parsers[mta] = p
        else:
            p.ctx = ctx
        return p

    def run(self, paths: Iterable[str | os.PathLike]) -> IngestSummary:
        started = time.monotonic()
        files = expand_paths([str(p) for p in paths])
        if not files:
            raise InputError("no log files matched: check the paths or the [[sources]] in the config")
        total = sum(f.stat().st_size for f in files)
        bar = None
        if self.progress is not False:
            from tqdm import tqdm

            show = self.progress is True or total > 20_000_000
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="ingest",
                       disable=None if show else True, leave=False)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        try:
            for f in files:
                self._ingest_file(f, bar)
            self._finish_commit()
        finally:
            self._writer.shutdown(wait=True)  # after an error the last batch is stored, its position not: re-read, deduped
            if self._reader is not None:
                self._reader.shutdown(wait=True)
            if bar is not None:
                bar.close()
            self.rejects.close()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _ingest_file(self, path: Path, bar) -> None:
        try:
            fp, fp_len = fingerprint(path)
            compressed = is_compressed(path)
            st = path.stat()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        except EOFError:
            raise InputError(f"{path} is a truncated gzip file") from None
        fmt = self.fmt
        if fmt == "auto":
            fmt = self._detect(path)
        info = {"path": str(path), "format": fmt, "lines": 0, "events": 0}
        self.summary.files.append(info)
        if fmt is None:
            info["format"] = "unrecognised"
            if bar is not None:
                bar.update(st.st_size)
            return
        ctx = ParseContext(tz=self.cfg.tz, source_file=str(path), mtime=st.st_mtime, year=self.year)
        parser = self._parser(fmt, ctx)
        start = self.positions.offset(fp) if (self.use_positions and fp) else 0
        grace = not compressed and (time.time() - st.st_mtime) < PARTIAL_LINE_GRACE_S
        batch_limit = self.cfg["ingest"]["batch_events"]
        feed = parser.feed
        columnar = isinstance(parser, PostfixParser) and self.columnar
        source = str(path)
        offset = start
        events_before = self.summary.events_parsed + len(self.buffer)
        summary, buffer = self.summary, self.buffer
        try:
            with open_log(path) as fh:
                if start:
                    fh.seek(start)
                try:
                    with closing(self._blocks(fh, columnar)) as blocks:
                        for block, whole, fields in blocks:
                            if not whole and grace:
                                break  # partial last line of a live file: next run reads it whole
                            lines = _plain_lines(block) if whole and not columnar else None
                            if fields is not None:
                                # Postfix, clean block: read column-wise (pipeline/parsers/postfix_block.py)
                                result = postfix_block.read_block(parser, block, offset, fields)
                                for off, line in result.malformed:
                                    self.rejects.add("malformed", source, off, line.encode() + b"\n")
                                if result.columns is not None:
                                    buffer.add_columns(result.columns)
                                offset += len(block)
                                summary.lines += result.lines
                                info["lines"] += result.lines
                                if len(buffer) >= batch_limit:
                                    self._commit(fp, offset, path)
                            elif lines is not None:
                                # the common case, decoded once: every line is valid, short, NUL-free
                                for line in lines:
                                    if feed(line, offset) == MALFORMED:
                                        self.rejects.add("malformed", source, offset, line.encode() + b"\n")
                                    offset += len(line) + 1
                                    if len(buffer) >= batch_limit:
                                        self._commit(fp, offset, path)
                                summary.lines += len(lines)
                                info["lines"] += len(lines)
                            else:
                                offset = self._feed_raw_lines(feed, block, offset, source, info, fp, path)
                            if bar is not None and not compressed:
                                bar.update(len(block))
                except EOFError:
                    # a truncated .gz: a block read loses what it had decompressed, so read
                    # again from the last whole block, line by line, up to the damage
                    with open_log(path) as again:
                        again.seek(offset)
                        for raw in again:
                            offset = self._feed_raw_lines(feed, raw, offset, source, info, fp, path)
        except (OSError, EOFError) as exc:
            # a truncated .gz or an I/O error: keep what was read, report it
            self.rejects.add("unreadable_rest", str(path), offset, str(exc).encode())
        if bar is not None and compressed:
            bar.update(st.st_size)
        info["events"] = self.summary.events_parsed + len(self.buffer) - events_before
        self._commit(fp, offset, path)

    def _blocks(self, fh, columnar: bool):
        """read_blocks() as (block, whole, fields): with `columnar`, the fields of the next
        EXTRACT_AHEAD blocks are found (postfix_block.extract: Arrow and numpy work, mostly
        outside the GIL) by reader threads while this thread applies the current block."""
        blocks = read_blocks(fh, BLOCK_BYTES)
        if not columnar:
            for block, whole in blocks:
                yield block, whole, None
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=EXTRACT_AHEAD, thread_name_prefix="block-reader")
        pending: deque = deque()

        def read_ahead() -> None:
            for block, whole in blocks:
                fields = self._reader.submit(postfix_block.extract, block, MAX_LINE_BYTES, self.buffer.annotate) if whole else None
                pending.append((block, whole, fields))
                return

        try:
            for _ in range(EXTRACT_AHEAD):
                read_ahead()
            while pending:
                block, whole, fields = pending.popleft()
                read_ahead()
                yield block, whole, fields.result() if fields is not None else None
        finally:
            for _, _, fields in pending:  # a run that stops early: let the readers finish
                if fields is not None:
                    fields.cancel()
                    try:
                        fields.result()
                    except BaseException:
                        pass

    def _feed_raw_lines(self, feed, data: bytes, offset: int, source: str, info: dict, fp: str, path: Path) -> int:
        """Lines that need checking one by one (non-ASCII, NUL, CR, over-long); the offset after them."""
        batch_limit = self.cfg["ingest"]["batch_events"]
        for raw in io.BytesIO(data):
            self.summary.lines += 1
            info["lines"] += 1
            feed_raw_line(feed, raw, offset, source, self.rejects, self.summary)
            offset += len(raw)
            if len(self.buffer) >= batch_limit:
                self._commit(fp, offset, path)
        return offset

    def _commit(self, fp: str, offset: int, path: Path) -> None:
        """Events first, then parser state, then the position: a crash in between re-reads.

        The batch is written to the store by a writer thread while parsing goes on (Parquet
        and Arrow work outside the GIL); the state and position of this commit are saved when
        its batch is durable, at the latest before the next batch is handed over.
        """
        table = self.buffer.take()
        state = json.dumps({m: p.get_state() for m, p in self.parsers.items()})
        self._finish_commit()
        future = self._writer.submit(self.store.write, table) if table is not None else None
        self._pending = (future, state, fp, offset, path)

    def _finish_commit(self) -> None:
        """Wait for the last batch handed to the writer, then save its state and position."""
        if self._pending is None:
            return
        future, state, fp, offset, path = self._pending
        self._pending = None
        if future is not None:
            try:
                by_status = future.result()
            except OSError as exc:
                # not a read error of the log (the reader's OSError handler must not see it):
                # the run stops here, this commit's position is not saved, the next run re-reads
                raise StoreError(f"cannot write events to {self.store.root}: {exc}; nothing after "
                                 f"the last stored batch is marked as read, so a re-run resumes there") from exc
            self.buffer.count_written(by_status)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(state)
        os.replace(tmp, self.state_path)
        if self.use_positions and fp:
            self.positions.set(fp, offset, str(path))
            self.positions.save()

    def _detect(self, path: Path) -> str | None:
        sample: list[str] = []
        with open_log(path) as fh:
            try:
                for i, raw in enumerate(fh):
                    if i >= DETECT_SAMPLE_LINES:
                        break
                    sample.append(raw.decode("utf-8", "replace"))
            except (OSError, EOFError):
                pass  # a truncated .gz: judge by what could be read
        return detect_format(sample)


def read_blocks(fh, size: int):
    """(block, whole) pairs: `block` holds whole lines (about `size` bytes, ending with a newline:
    whole=True), except a last line without newline at the end of the file (whole=False)."""
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        if not chunk.endswith(b"\n"):
            chunk += fh.readline()  # on to the end of the line (one copy of the block)
        if chunk.endswith(b"\n"):
            yield chunk, True
            continue
        cut = chunk.rfind(b"\n") + 1  # the file ends inside a line
        if cut:
            yield chunk[:cut], True
        yield chunk[cut:], False
        return


def _plain_lines(block: bytes) -> list[str] | None:
    """The lines of a block of whole lines when it is ASCII with no NUL, CR or over-long line
    (so no line needs feed_raw_line's checks); else None."""
    if not block.isascii() or b"\x00" in block or b"\r" in block:
        return None
    lines = block.decode("ascii").split("\n")
    lines.pop()  # the empty string after the last newline
    if len(block) >= MAX_LINE_BYTES and max(map(len, lines)) >= MAX_LINE_BYTES:
        return None
    return lines


def ingest(cfg: Config, paths: Iterable[str | os.PathLike], **options) -> IngestSummary:
    """Ingest log files into the event store; see Ingestor for options."""
    return Ingestor(cfg, **options).run(paths)


def configured_sources(cfg: Config) -> list[tuple[str, str]]:
    return [(s["path"], s.get("format", "auto")) for s in cfg["sources"]]
