"""The event sink: parsed rows -> classified Arrow batches -> the event store, one batch at a time.

Collects what the parsers produce (dict rows from PostfixParser/SendmailParser/QmailParser.feed,
column batches from the Postfix block reader), adds carrier, reason, scope, hard (the
classifier, called with carrier, recipient domain, relay and UTC day at every call) and the
stable event id, and hands one Arrow table per commit to the event store
(pipeline.store.event_store.EventStore: atomic Parquet files, day partitions, dedupe by event
id), on a writer thread so that parsing goes on meanwhile.

Called by pipeline.ingest.session (one sink per ingest session); annotate() is also called by
the block reader's threads (parsers/postfix_block.extract).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..classify.carriers import CarrierTable
from ..classify.classifier import DELIVERED, classify_many, mask_addresses
from ..store import arrow_build as ab
from ..store.event_store import EventStore
from ..store.records import EVENT_SCHEMA, PARSED_COLUMNS, event_ids_for

_EMPTY, _NUL, _SENT = ab.scalar(""), ab.scalar("\x00"), ab.scalar("sent")
_EPOCH = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000


def _column(values: list, type: pa.DataType) -> pa.Array:
    """One column of dict rows as Arrow (arrow_build: no pa.array, so no pandas import)."""
    if pa.types.is_string(type):
        return ab.strings(values)
    if pa.types.is_boolean(type):
        return ab.optional_bools(values)
    return ab.optional_ints(values, type)


class EventBuffer:
    """Parsed rows waiting for the next commit (dict rows and column batches); to_table()
    classifies them into one EVENT_SCHEMA table."""

    def __init__(self, carriers: CarrierTable):
        self.rows: list[dict] = []
        self.column_parts: list[dict] = []
        self._column_rows = 0
        self.carriers = carriers
        self._days: dict[int, date] = {}
        self._carrier_of_pair: dict[str, str] = {}   # "domain\0relay" -> carrier (annotate)

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def add_columns(self, columns: dict) -> None:
        """A batch of rows as columns: PARSED_COLUMNS as Arrow arrays (and those of annotate)."""
        self.column_parts.append(columns)
        self._column_rows += len(columns["ts"])

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
        cols = dict(part, ts=part["ts"].cast(pa.timestamp("us", tz="UTC")))
        return pa.Table.from_arrays([cols[name] for name in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)

    def annotate(self, rows: dict, mta: str = "postfix") -> None:
        """Add carrier, reason, scope and hard to column-wise rows (from `recipient_domain`,
        `relay`, `status`, `text`, `dsn`, `reply_code`, `smtp_phase` and `day`, the UTC day
        number). Called by postfix_block.extract in the reader threads: the carrier table and
        the classifier are pure functions with thread-safe caches."""
        n = len(rows["status"])
        # carrier per distinct (domain, relay): a batch holds few
        # (kept across batches: a log has a few hundred pairs; the reader threads share the dict)
        pairs = pc.binary_join_element_wise(rows["recipient_domain"], pc.fill_null(rows["relay"], _EMPTY), _NUL).dictionary_encode()
        known = self._carrier_of_pair
        distinct = pairs.dictionary.to_pylist()
        carrier = [known.get(pair) for pair in distinct]
        new = [k for k, c in enumerate(carrier) if c is None]
        if new:
            split = [distinct[k].split("\x00", 1) for k in new]
            found = self._carriers([d for d, _ in split], [r for _, r in split])
            for k, c in zip(new, found):
                carrier[k] = c
            if len(known) > 100_000:
                known.clear()
            known.update(zip((distinct[k] for k in new), found))
        rows["carrier"] = ab.strings(carrier).take(pairs.indices)
        # classes as codes into the few distinct ones; 0 is "delivered" (every sent row)
        class_code = np.zeros(n, np.int32)
        distinct_classes = {DELIVERED: 0}
        failed = np.flatnonzero(ab.to_bools(pc.not_equal(rows["status"], _SENT)))
        if len(failed):
            # classified once per distinct value of everything classify() is given, the text's
            # addresses masked (a null and an empty field are the same to it); the key's parts are
            # NUL-separated (a line with a NUL never reaches the column-wise path)
            take = ab.indices(failed)
            names = ("status", "text", "dsn", "reply_code", "smtp_phase", "carrier", "recipient_domain", "relay", "day")
            parts = [pc.fill_null(rows[c].take(take) if pa.types.is_string(rows[c].type) else
                                  pc.cast(rows[c].take(take), pa.string()), _EMPTY) for c in names]
            # the text with its addresses masked: no verdict depends on them (classify.mask_addresses
            # masks only what classify() itself masks), and most failures differ only there
            parts[1] = mask_addresses(parts[1])
            keys = pc.binary_join_element_wise(*parts, _NUL).dictionary_encode()
            key_of = ab.to_ints(keys.indices)
            _, first = np.unique(key_of, return_index=True)
            take = ab.indices(failed[first])
            picked = [rows[c].take(take).to_pylist() for c in names]
            day_of = {d: None if d is None else self.day(d * US_PER_DAY) for d in set(picked[-1])}
            picked[-1] = list(map(day_of.__getitem__, picked[-1]))
            classes = classify_many(*picked[:5], picked[5], mta, *picked[6:])
            codes_of_key = np.array([distinct_classes.setdefault(c, len(distinct_classes)) for c in classes], np.int32)
            class_code[failed] = codes_of_key[key_of]
        codes = ab.numbers(class_code, pa.int32())
        for name, values in zip(("reason", "scope", "hard"), zip(*distinct_classes)):
            dictionary = ab.optional_bools(values) if name == "hard" else ab.strings(values)
            rows[name] = dictionary.take(codes)

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
