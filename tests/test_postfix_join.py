"""The queue-id join of a Postfix block (pipeline/ingest/parsers/postfix_join.py): the compiled
join_block (pipeline/ingest/native/postfix_scan.c) returns what join_numpy, its definition,
returns: on random blocks (queue ids reused after `removed`, entries from before that are
stale, count recipients or keep deferrals, lines fed to the parser, undated lines, times going
back) and on every block of real ingests. (That the plan applied gives the per-line parser's
events and state: tests/test_postfix_block.py, with either join.)"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fixtures import generated_log

from pipeline.ingest import native
from pipeline.ingest.parsers import postfix_join
from pipeline.ingest.parsers.postfix_join import K_DELIVERY, K_FEED, K_FROM, K_MSGID, K_REMOVED, NO_TIME, JoinInput

pytestmark = pytest.mark.skipif(native.SCANNER is None, reason="compiled scanner not built")

DEFERRED = 2
TTL = 1_000_000


def assert_same_plan(j: JoinInput) -> None:
    want = postfix_join.join_numpy(j)
    got = native.SCANNER.join_block(j)
    assert set(got) == set(want)
    for name in want:
        assert got[name].tolist() == np.asarray(want[name]).tolist(), name


def random_input(rng: np.random.Generator) -> JoinInput:
    n = int(rng.integers(0, 400))
    n_codes = int(rng.integers(1, 40))
    fkinds = rng.choice([K_FEED, K_DELIVERY, K_FROM, K_REMOVED, K_MSGID], n, p=[0.1, 0.4, 0.15, 0.2, 0.15]).astype(np.int8)
    undated = (fkinds != K_FEED) & (rng.random(n) < 0.03)
    kinds = np.where(undated, K_FEED, fkinds).astype(np.int8)
    codes = np.where(fkinds == K_FEED, -1, rng.integers(0, n_codes, n))
    n_minutes = int(rng.integers(1, 5))
    minute_us = np.sort(rng.integers(0, 3 * TTL, n_minutes)) if rng.random() < 0.7 else rng.integers(0, 3 * TTL, n_minutes)
    minutes = rng.integers(0, n_minutes, n)
    us = rng.integers(0, TTL // 10, n)
    n_fed = int((kinds == K_FEED).sum())
    fed_ts = np.where(rng.random(n_fed) < 0.3, NO_TIME, rng.integers(0, 3 * TTL, n_fed))
    has = rng.random(n_codes) < 0.4
    n_deliv = int((kinds == K_DELIVERY).sum())
    pool = ["a@x.jp", "b@x.jp", "A@y.jp", "", "c@docomo.ne.jp", "日本@例え.jp"]
    return JoinInput(
        kinds=kinds, fkinds=fkinds, codes=codes, minutes=minutes, us=us, minute_us=minute_us, fed_ts=fed_ts,
        clock=int(rng.integers(0, 3 * TTL)), special=rng.random(n_codes) < 0.1, has_carried=has,
        carried_seen=rng.integers(0, 3 * TTL, n_codes), carried_left=rng.random(n_codes) < 0.1,
        carried_sender=np.where(rng.random(n_codes) < 0.8, rng.integers(0, 50, n_codes), -1),
        carried_mid=np.where(rng.random(n_codes) < 0.8, rng.integers(0, 50, n_codes), -1),
        carried_deferred=rng.random(n_codes) < 0.5, ttl=int(rng.choice([TTL, 10 * TTL])), crowded=rng.random() < 0.05,
        status_codes=rng.choice([1, 2, 3, 4, 5], n_deliv, p=[0.4, 0.4, 0.1, 0.05, 0.05]).astype(np.int8),
        deferred_code=DEFERRED, recipients=pa.array([pool[i] for i in rng.integers(0, len(pool), n_deliv)], pa.string()))


def test_join_block_is_join_numpy_on_random_blocks():
    rng = np.random.default_rng(13)
    touched = entries = 0
    for _ in range(3000):
        j = random_input(rng)
        assert_same_plan(j)
        plan = postfix_join.join_numpy(j)
        touched += len(plan["t_code"])
        entries += len(plan["e_code"])
    assert touched > 1000 and entries > 1000           # (the inputs reach every part of the join)


def test_join_block_reads_sliced_recipients():
    rng = np.random.default_rng(2)
    for _ in range(200):
        j = random_input(rng)
        n = len(j.recipients)
        j.recipients = pa.array(["pad"] * 3 + j.recipients.to_pylist(), pa.string()).slice(3, n)
        assert_same_plan(j)


def test_join_block_refuses_inputs_that_do_not_fit():
    rng = np.random.default_rng(4)
    j = random_input(rng)
    while not (j.kinds == K_DELIVERY).any():
        j = random_input(rng)
    bad_code = JoinInput(**{**j.__dict__, "codes": np.where(j.kinds != K_FEED, len(j.special), -1)})
    with pytest.raises(ValueError):
        native.SCANNER.join_block(bad_code)
    bad_minute = JoinInput(**{**j.__dict__, "minutes": j.minutes + len(j.minute_us)})
    with pytest.raises(ValueError):
        native.SCANNER.join_block(bad_minute)
    short_rows = JoinInput(**{**j.__dict__, "status_codes": j.status_codes[1:], "recipients": j.recipients[1:]})
    with pytest.raises(ValueError):
        native.SCANNER.join_block(short_rows)


@pytest.mark.parametrize("block_bytes", [16 * 1024, 1 << 20])
def test_join_block_is_join_numpy_on_real_blocks(tmp_path, monkeypatch, block_bytes):
    """Every block of a realistic log's ingest (entries carried from block to block) planned by
    both; the ingest itself goes on with the compiled plan."""
    import pipeline.ingest.source as source_mod
    from pipeline.core.config import load_config
    from pipeline.ingest.engine import ingest

    monkeypatch.setattr(source_mod, "BLOCK_BYTES", block_bytes)
    seen = []
    real = postfix_join.join

    def both(j):
        assert_same_plan(j)
        seen.append((len(j.kinds), int(j.has_carried.sum()), len(postfix_join.join_numpy(j)["e_code"])))
        return real(j)

    monkeypatch.setattr(postfix_join, "join", both)
    log = generated_log(tmp_path, "postfix", 20_000, seed=5)
    ingest(load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo"), [log], fmt="postfix", year=2026)
    assert len(seen) > 1 and sum(c for _, c, _ in seen) > 0 and sum(e for _, _, e in seen) > 0
