"""The event sink: parsed rows -> classified Arrow batches -> the event store, one batch at a time.

Collects what the parsers produce (dict rows from PostfixParser/SendmailParser/QmailParser.feed,
column batches from the block readers), leaves out and counts the deliveries to a recipient that
is no address (local deliveries: `root`, `|procmail`; records.is_local_recipient), adds carrier,
reason, scope, hard (the
classifier, called with carrier, recipient domain, relay and UTC day at every call) and the
stable event id, and hands one Arrow table per commit to the event store
(pipeline.store.event_store.EventStore: atomic Parquet files, day partitions, dedupe by event
id), on a writer thread so that parsing goes on meanwhile.

Called by pipeline.ingest.session (one sink per ingest session); annotate() is also called by
the block readers (parsers/postfix_block.extract and sendmail_block.extract in the reader
threads, qmail_block.read_block).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from itertools import repeat
from operator import itemgetter

import numpy as np
import pyarrow as pa

from ..classify.carriers import CarrierTable
from ..classify.classifier import DELIVERED, classify_by_key, classify_many, mask_addresses, provider_key
from ..store import arrow_build as ab
from ..store import arrow_compute as pc
from ..store.event_store import EventStore
from ..store.records import EVENT_SCHEMA, LOCAL_PREFIX_RE2, PARSED_COLUMNS, event_ids_for, is_local_recipient
from . import native

_EMPTY, _SENT = ab.scalar(""), ab.scalar("sent")
_EPOCH = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000


def _column(values: list, type: pa.DataType) -> pa.Array:
    """One column of dict rows as Arrow (arrow_build: no pa.array, so no pandas import)."""
    if pa.types.is_string(type):
        return ab.strings(values)
    if pa.types.is_boolean(type):
        return ab.optional_bools(values)
    return ab.optional_ints(values, type)


def _codes(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Each value's index among the column's distinct values (a null is one of them), and those."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return ab.to_ints(encoded.indices), encoded.dictionary


def _masked_text_codes(texts: pa.Array, rows: np.ndarray, take: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """_codes of the rows' texts with their addresses masked: by the compiled mask over the rows
    (where the scanner is), else by the RE2 pattern over their distinct texts only."""
    if native.SCANNER:
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        return _codes(native.SCANNER.mask_addresses(texts, rows))
    text_code, distinct = _codes(pc.take(texts, take))
    masked_code, masked = _codes(mask_addresses(distinct))
    return masked_code[text_code], masked


def _codes_of(values: list) -> tuple[np.ndarray, list]:
    """_codes of a list."""
    number: dict = {}
    codes = np.fromiter((number.setdefault(v, len(number)) for v in values), np.int64, len(values))
    return codes, list(number)


def _distinct(n: int, *fields: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows given as codes of fields ((codes, how many distinct values) per field): each row's
    number among the distinct combinations, and a row of each combination."""
    key = np.zeros(n, np.int64)
    span = 1
    for codes, count in fields:
        if span * count >= 1 << 62:   # (never with real fields: renumbered to stay exact)
            distinct, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1)
            span = len(distinct)
        key = key * count + codes
        span *= count
    rows = np.arange(n)
    if span <= 4 * n + 4096:   # a dense table instead of a sort
        number = np.zeros(span, np.int64)
        number[key] = 1
        present = np.flatnonzero(number)
        number[present] = np.arange(len(present))
        of_row = number[key]
    else:   # a hash table (Arrow's)
        encoded = pc.dictionary_encode(ab.numbers(key, pa.int64()))
        present, of_row = encoded.dictionary, ab.to_ints(encoded.indices)
    at = np.empty(len(present), np.int64)
    at[of_row] = rows
    return of_row, at


_LOCAL_FIRST = np.zeros(256, bool)
_LOCAL_FIRST[np.frombuffer(b'|/\\":', np.uint8)] = True   # the first bytes of records.LOCAL_PREFIXES


def _local_rows(recipient: pa.Array, domain: pa.Array) -> np.ndarray:
    """records.is_local_recipient of each row, by numpy over the strings' buffers: an empty domain,
    or a recipient that starts with one of LOCAL_PREFIXES (only the rows whose first byte could
    start one are looked at by the pattern)."""
    if isinstance(recipient, pa.ChunkedArray):
        recipient = recipient.combine_chunks()
    if isinstance(domain, pa.ChunkedArray):
        domain = domain.combine_chunks()
    n = len(recipient)
    if recipient.null_count or domain.null_count or recipient.type != pa.string() or domain.type != pa.string():
        return ab.to_bools(pc.fill_null(pc.or_(pc.equal(domain, _EMPTY),
                                               pc.match_substring_regex(recipient, LOCAL_PREFIX_RE2)), ab.scalar(False)))
    d_off = ab.offsets(domain)
    local = d_off[1:] == d_off[:-1]
    r_off = ab.offsets(recipient)
    chars = recipient.buffers()[2]
    if chars is not None and chars.size:
        data = np.frombuffer(chars, np.uint8)
        starts = r_off[:-1]
        some = np.flatnonzero((r_off[1:] > starts) & ~local)
        maybe = some[_LOCAL_FIRST[data[starts[some]]]]
        if len(maybe):
            local[maybe] = ab.to_bools(pc.match_substring_regex(pc.take(recipient, ab.indices(maybe)), LOCAL_PREFIX_RE2))
    return local


class EventBuffer:
    """Parsed rows waiting for the next commit (dict rows and column batches); to_table()
    classifies them into one EVENT_SCHEMA table."""

    def __init__(self, carriers: CarrierTable):
        self.rows: list[dict] = []
        self.column_parts: list[dict] = []
        self._column_rows = 0
        self.local_deliveries = 0   # rows left out: recipients that are no address (add)
        self.carriers = carriers
        self._days: dict[int, date] = {}
        self._carrier_of_pair: dict[tuple, str] = {}   # (domain, relay) -> carrier (annotate)

    def add(self, row: dict) -> None:
        """A parser's row (its emit). A local delivery (a recipient that is no address: `root`,
        `|/usr/bin/procmail`, `/var/mail/x`; records.is_local_recipient) is counted, not kept."""
        if is_local_recipient(row["recipient"], row["recipient_domain"]):
            self.local_deliveries += 1
            return
        self.rows.append(row)

    def add_columns(self, columns: dict) -> None:
        """A batch of rows as columns: PARSED_COLUMNS as Arrow arrays (and those of annotate);
        its local deliveries are counted and left out, as add() does."""
        local = _local_rows(columns["recipient"], columns["recipient_domain"])
        n_local = int(np.count_nonzero(local))
        if n_local:
            keep = ab.booleans(~local)
            columns = {name: pc.filter(column, keep) for name, column in columns.items()}
            self.local_deliveries += n_local
        n = len(columns["ts"])
        if n:
            self.column_parts.append(columns)
            self._column_rows += n

    def __len__(self) -> int:
        return len(self.rows) + self._column_rows

    def take(self) -> pa.Table | None:
        """The buffered rows as one classified table; the buffer is emptied."""
        if not len(self):
            return None
        tables = [self._rows_table()] if self.rows else []
        tables.extend(self._columns_table(part) for part in self.column_parts)
        self.rows = []
        self.column_parts = []
        self._column_rows = 0
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def day(self, ts_us: int) -> date:
        """The UTC date of a time stamp (what classify() is given as `day`)."""
        n = ts_us // US_PER_DAY
        d = self._days.get(n)
        if d is None:
            d = self._days[n] = _EPOCH + timedelta(days=n)
        return d

    def _rows_table(self) -> pa.Table:
        """The dict rows, built column by column (the rows themselves are left as they are)."""
        rows = self.rows
        cols: dict[str, list] = {name: list(map(itemgetter(name), rows)) for name in PARSED_COLUMNS}
        cols["carrier"] = self._carriers(cols["recipient_domain"], cols["relay"])
        classes = classify_many(cols["status"], cols["diagnostic"], cols["dsn"], cols["reply_code"], cols["smtp_phase"],
                                cols["carrier"], cols["mta"], cols["recipient_domain"], cols["relay"],
                                [self.day(t) for t in cols["ts"]])
        cols["reason"], cols["scope"], cols["hard"] = ([c[i] for c in classes] for i in range(3))
        cols["event_id"] = event_ids_for(list(map(itemgetter("_line"), rows)), cols["recipient"])
        return pa.Table.from_arrays([_column(cols[f.name], f.type) for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)

    @staticmethod
    def _columns_table(part: dict) -> pa.Table:
        """A column batch of the block reader (classified in its threads, see annotate)."""
        cols = dict(part, ts=pc.cast(part["ts"], pa.timestamp("us", tz="UTC")))
        return pa.Table.from_arrays([cols[name] for name in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)

    def annotate(self, rows: dict, mta: str = "postfix") -> None:
        """Add carrier, reason, scope and hard to column-wise rows (from `recipient_domain`,
        `relay`, `status`, `text`, `dsn`, `reply_code`, `smtp_phase` and `day`, the UTC day
        number). Called by the block readers (postfix_block.extract and sendmail_block in the
        reader threads, qmail_block.read_block): the carrier table and the classifier are pure
        functions with thread-safe caches.

        Fields are turned into codes (a value's index among the block's distinct values), and
        each distinct combination is classified once, by classify_by_key: of the recipient
        domain, relay, carrier and day classify() reads only their provider key, and of the
        text only what mask_addresses leaves, so those two stand in the combination."""
        n = len(rows["status"])
        # carrier per distinct (domain, relay): a batch holds few
        relay = rows["relay"]
        domain_code, domains = _codes(rows["recipient_domain"])
        relay_code, relays = _codes(pc.fill_null(relay, _EMPTY) if relay.null_count else relay)
        pair_of_row, pair_at = _distinct(n, (domain_code, len(domains)), (relay_code, len(relays)))
        pair_domain = pc.take(domains, ab.indices(domain_code[pair_at])).to_pylist()
        pair_relay = pc.take(relays, ab.indices(relay_code[pair_at])).to_pylist()
        pair_carrier = self._pair_carriers(pair_domain, pair_relay)
        rows["carrier"] = pc.take(ab.strings(pair_carrier), ab.indices(pair_of_row))
        # classes as codes into the few distinct ones; 0 is "delivered" (every sent row)
        class_code = np.zeros(n, np.int32)
        distinct_classes = {DELIVERED: 0}
        failed = np.flatnonzero(ab.to_bools(pc.not_equal(rows["status"], _SENT)))
        if len(failed):
            m = len(failed)
            take = ab.indices(failed)
            # the provider key per distinct (pair, day)
            day_code, days = _codes(pc.take(rows["day"], take))
            days = [None if d is None else self.day(d * US_PER_DAY) for d in days.to_pylist()]
            where_of_row, where_at = _distinct(m, (pair_of_row[failed], len(pair_carrier)), (day_code, len(days)))
            key_code, keys = _codes_of([provider_key(pair_domain[p], pair_relay[p], pair_carrier[p], days[d])
                                        for p, d in zip(pair_of_row[failed[where_at]].tolist(), day_code[where_at].tolist())])
            fields = [_codes(pc.take(rows[name], take)) for name in ("status", "dsn", "reply_code", "smtp_phase")]
            fields.append(_masked_text_codes(rows["text"], failed, take))
            event_of_row, event_at = _distinct(m, *((codes, len(values)) for codes, values in fields),
                                               (key_code[where_of_row], len(keys)))
            status, dsn, reply_code, smtp_phase, text = (pc.take(values, ab.indices(codes[event_at])).to_pylist()
                                                        for codes, values in fields)
            key = [keys[k] for k in key_code[where_of_row[event_at]].tolist()]
            classes = list(map(classify_by_key, status, text, dsn, reply_code, smtp_phase, repeat(mta), key))
            class_of_event = np.fromiter((distinct_classes.setdefault(c, len(distinct_classes)) for c in classes),
                                         np.int32, len(classes))
            class_code[failed] = class_of_event[event_of_row]
        codes = ab.numbers(class_code, pa.int32())
        for name, values in zip(("reason", "scope", "hard"), zip(*distinct_classes)):
            dictionary = ab.optional_bools(values) if name == "hard" else ab.strings(values)
            rows[name] = pc.take(dictionary, codes)

    def _pair_carriers(self, domains: list, relays: list) -> list:
        """The carrier of each (recipient domain, relay) pair (None for a null domain, as a null
        domain's row has no carrier); kept across batches: a log has a few hundred pairs, and
        the reader threads share the dict."""
        known = self._carrier_of_pair
        carrier = [known.get(pair) for pair in zip(domains, relays)]
        new = [k for k, c in enumerate(carrier) if c is None and domains[k] is not None]
        if new:
            found = self._carriers([domains[k] for k in new], [relays[k] for k in new])
            for k, c in zip(new, found):
                carrier[k] = c
            if len(known) > 100_000:
                known.clear()
            known.update(zip(((domains[k], relays[k]) for k in new), found))
        return carrier

    def _carriers(self, domains: list, relays: list) -> list[str]:
        carrier_for = self.carriers.carrier_for
        return [carrier_for(d or "", relay) for d, relay in zip(domains, relays)]


class Sink:
    """Writes classified tables to the event store on one writer thread, one at a time."""

    def __init__(self, store: EventStore):
        self.store = store
        self._writer: ThreadPoolExecutor | None = None

    def submit(self, table: pa.Table) -> Future:
        """Start storing `table`; the future's result is the count of new rows per status."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        return self._writer.submit(self.store.write, table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None


def written_count(by_status: Counter) -> int:
    return sum(by_status.values())
