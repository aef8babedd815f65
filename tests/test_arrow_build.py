"""pipeline.store.arrow_build's builders give what pa.array gives, and EventStore.write stores
each new id once: a batch of one UTC day (whose key order is reused for the lookups) and a
batch over several days, with ids repeated inside the batch and ids stored already."""

from __future__ import annotations

import random
from datetime import timezone

import numpy as np
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


def test_with_rows_replaced_sets_the_rows_and_keeps_the_rest():
    rng = random.Random(5)
    for _ in range(200):
        n = rng.randrange(0, 30)
        values = [rng.choice([None, "", "a", "例え", "bcd@x"]) for _ in range(n)]
        cuts = sorted(rng.sample(range(n + 1), min(rng.randrange(0, 4), n + 1)))
        bounds = [0, *cuts, n]
        whole = pa.array(values, pa.string())
        arr = pa.chunked_array([whole.slice(a, b - a) for a, b in zip(bounds, bounds[1:])], pa.string()) \
            if rng.random() < 0.5 else whole.slice(0, n)
        rows = sorted(rng.sample(range(n), rng.randrange(0, n + 1)))
        new = [rng.choice([None, "z", "新しい"]) for _ in rows]
        got = ab.with_rows_replaced(arr, np.array(rows, np.int64), ab.strings(new))
        want = list(values)
        for r, v in zip(rows, new):
            want[r] = v
        assert got.type == pa.string() and got.to_pylist() == want


def test_canonical_recipients_converts_each_idn_domain_and_nothing_else():
    """Every non-ASCII recipient (in any chunk) gets its domain's A-label form, and its
    recipient_domain that form; ASCII recipients, non-ASCII local parts and domains without an
    A-label form stay as written; a table without a domain to convert comes back as it is."""
    from pipeline.core.idn import IdnError, ascii_domain
    from pipeline.store.records import EVENT_SCHEMA, canonical_recipients

    def expected(r):
        local, at, domain = r.rpartition("@")
        if not at or r.isascii():
            return r, domain
        try:
            domain = ascii_domain(domain)
        except IdnError:
            pass
        return f"{local}@{domain}", domain

    rng = random.Random(7)
    pool = ["taro@docomo.ne.jp", "山田@docomo.ne.jp", "taro@例え.jp", "花子.x@テスト.co.jp", "a@b@例え.jp",
            "x@straße.de", "no-at-例え", "y@ドメイン名例.JP"]
    for _ in range(60):
        n = rng.randrange(1, 40)
        recipients = [rng.choice(pool) for _ in range(n)]
        table = pa.table({f.name: pa.nulls(n, f.type) for f in EVENT_SCHEMA})
        cuts = sorted(rng.sample(range(1, n + 1), min(rng.randrange(0, 3), n)))
        bounds = [0, *cuts, n] if cuts and cuts[-1] != n else [0, *cuts[:-1], n] if cuts else [0, n]
        for name, values in (("recipient", recipients),
                             ("recipient_domain", [r.rpartition("@")[2] for r in recipients])):
            column = pa.array(values, pa.string())
            chunks = [column.slice(a, b - a) for a, b in zip(bounds, bounds[1:]) if b > a]
            table = table.set_column(table.schema.get_field_index(name), name, pa.chunked_array(chunks, pa.string()))
        got = canonical_recipients(table)
        want = [expected(r) for r in recipients]
        assert got.column("recipient").to_pylist() == [w[0] for w in want]
        assert got.column("recipient_domain").to_pylist() == [w[1] for w in want]
        if all(w[0] == r for w, r in zip(want, recipients)):
            assert got is table


def test_a_day_index_merges_each_files_sorted_keys_and_keeps_their_owner():
    """_DayIndex.add merges a file's sorted keys into the day's (equal keys side by side, each
    with its own file), as a sort of them all would, and _part_order is the argsort of a day's
    part read off the batch's key order."""
    from pipeline.store.event_store import _DayIndex, _part_order

    rng = np.random.default_rng(3)
    index, everything = _DayIndex(), []
    for f in range(6):
        keys = np.sort(rng.integers(0, 50, rng.integers(0, 30)).astype(np.uint64))
        index.add(f"f{f}", (f,), keys)
        everything += [(int(k), f) for k in keys]
        assert index.keys.tolist() == sorted(k for k, _ in everything)
        assert sorted(zip(index.keys.tolist(), index.owner.tolist())) == sorted(everything)
    keys = rng.integers(0, 2**63, 200).astype(np.uint64)
    order = np.argsort(keys)
    for rows in ([(0, 50), (120, 200)], [(10, 11)], np.array([3, 9, 77, 150])):
        part = np.concatenate([keys[a:b] for a, b in rows]) if isinstance(rows, list) else keys[rows]
        assert part[_part_order(order, rows)].tolist() == sorted(part.tolist())
