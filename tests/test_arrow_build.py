"""pipeline.store.arrow_build's builders give what pa.array gives, and EventStore.write stores
each new id once: a batch of one UTC day (whose key order is reused for the lookups) and a
batch over several days, with ids repeated inside the batch and ids stored already."""

from __future__ import annotations

from datetime import timezone

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store import arrow_build as ab
from pipeline.store.event_store import EventStore

from fixtures import at, event, make_config, store_events


def test_strings_are_pa_array_with_and_without_nulls():
    cases = [[], ["a"], ["", "b", "名前@例え.jp", "x" * 300], [None], ["a", None, "", None, "山田"],
             ("tuple", None), tuple(), [None, None]]
    for values in cases:
        built = ab.strings(values)
        assert built.equals(pa.array(list(values), pa.string())), values
        assert built.null_count == sum(v is None for v in values)
        assert (built.buffers()[0] is None) == (None not in values)   # a validity bitmap only for nulls
    assert ab.strings(iter(["a", None])).to_pylist() == ["a", None]     # any iterable, read once


def _stored(cfg) -> list[tuple]:
    rows = []
    for f in EventStore(cfg.data_dir).files():
        rows += pq.read_table(f, columns=["event_id", "recipient"]).to_pylist()
    return sorted((r["event_id"], r["recipient"]) for r in rows)


def test_write_stores_each_new_id_once_one_day_and_several(tmp_path):
    cfg = make_config(tmp_path)
    day = [event(f"u{i}@docomo.ne.jp", at(3, 10, i)) for i in range(40)]
    assert sum(store_events(cfg, day[:10]).values()) == 10
    # one day: ten stored already, one repeated inside the batch (the lower source offset kept)
    again = dict(day[25], source_offset=day[25]["source_offset"] + 10_000)
    assert sum(store_events(cfg, day[5:] + [again]).values()) == 30
    assert _stored(cfg) == sorted((r["event_id"], r["recipient"]) for r in day)
    # several UTC days in one batch, each with some ids stored already
    days = [event(f"v{d}-{i}@au.com", at(d, 3 + 8 * (i % 3), i)) for d in (4, 5, 6) for i in range(12)]
    assert len({r["ts"].astimezone(timezone.utc).date() for r in days}) > 3
    assert sum(store_events(cfg, days[::2]).values()) == len(days[::2])
    assert sum(store_events(cfg, days + days[:3]).values()) == len(days) - len(days[::2])
    assert _stored(cfg) == sorted((r["event_id"], r["recipient"]) for r in day + days)


def test_offsets_are_a_slices_own_into_the_buffer_it_shares():
    whole = pa.array(["a", "", "bcd", "例え", "ef"])
    for start in range(len(whole)):
        part = whole.slice(start, 3)
        off = ab.offsets(part)
        data = part.buffers()[2].to_pybytes()
        assert len(off) == len(part) + 1
        assert [data[off[k]:off[k + 1]].decode() for k in range(len(part))] == part.to_pylist()
