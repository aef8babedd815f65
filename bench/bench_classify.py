"""Classification on the ingest path: one classify() per distinct event key, as EventBuffer.annotate
keys them today, against keying by the address-masked text (pipeline.classify.mask_addresses) and
classifying the fewer keys with classify_many().

Usage: .venv/bin/python bench/bench_classify.py LOG --mta sendmail|postfix|qmail [--repeat 7]

Reads LOG once with `mailhygiene ingest` machinery (into a temporary data dir) and keeps the
failed rows each block hands to annotate; then, per block, times (CPU seconds of this process,
median of --repeat, caches cleared before each run):
  text-keyed    distinct (status, text, dsn, reply_code, phase, carrier, domain, relay, day) keys
                (joined and dictionary-encoded in Arrow), classify() for each (as annotate does);
  masked-keyed  the same key with the text address-masked (Arrow, RE2), classify_many() of the
                distinct keys.
Every row's verdict must be the same both ways (the script fails otherwise). Rows of the per-line
path (sendmail lines the block reader hands back) are not included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.classify import classifier
from pipeline.classify import classify, classify_many, mask_addresses

NAMES = ("status", "text", "dsn", "reply_code", "smtp_phase", "carrier", "recipient_domain", "relay", "day")


def capture(log: str, mta: str) -> list[dict]:
    """The failed rows of every annotate() call while ingesting `log`, as Python lists."""
    import pipeline.ingest.sink as sink
    from pipeline.cli import cli

    blocks: list[dict] = []
    original = sink.EventBuffer.annotate

    def annotate(self, rows, mta="postfix"):
        original(self, rows, mta)
        failed = pc.not_equal(rows["status"], "sent")
        cols = {name: rows[name].filter(failed) for name in NAMES}
        cols["day"] = [None if d is None else date(1970, 1, 1) + timedelta(days=d) for d in cols["day"].to_pylist()]
        blocks.append({"mta": mta, **cols})

    sink.EventBuffer.annotate = annotate
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            cli(["--data-dir", data_dir, "ingest", "--no-progress", "--format", mta, log], prog_name="mailhygiene",
                standalone_mode=False)
        finally:
            sink.EventBuffer.annotate = original
    return blocks


def _distinct(block: dict, text: pa.Array) -> tuple[np.ndarray, list[list]]:
    """annotate's de-duplication: each row's key number and the first row of each key, as lists."""
    parts = [pc.fill_null(pc.cast(block[n], pa.string()), "") for n in NAMES[2:5]]
    strings = [pc.fill_null(block[n], "") for n in NAMES[5:8]]
    days = pa.array([str(d) for d in block["day"]])
    keys = pc.binary_join_element_wise(pc.fill_null(block["status"], ""), pc.fill_null(text, ""), *parts, *strings,
                                       days, "\x00").dictionary_encode()
    key_of = keys.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(key_of, return_index=True)
    take = pa.array(first)
    picked = [block[n].take(take).to_pylist() for n in NAMES[:8]] + [[block["day"][i] for i in first]]
    return key_of, picked


def text_keyed(block: dict) -> list:
    key_of, picked = _distinct(block, block["text"])
    verdicts = [classify(s, t, dsn=d, reply_code=c, smtp_phase=p, carrier=ca, mta=block["mta"], recipient_domain=do,
                         relay=r, day=dy) for s, t, d, c, p, ca, do, r, dy in zip(*picked)]
    return [verdicts[k] for k in key_of]


def masked_keyed(block: dict) -> list:
    key_of, picked = _distinct(block, mask_addresses(block["text"]))
    verdicts = classify_many(*picked[:6], block["mta"], *picked[6:])
    return [verdicts[k] for k in key_of]


def timed(fn, blocks, repeat: int) -> tuple[float, list]:
    runs = []
    out = None
    for _ in range(repeat):
        classifier.cache_clear()
        classifier.configure(None)
        start = time.process_time()
        out = [fn(b) for b in blocks]
        runs.append(time.process_time() - start)
    return statistics.median(runs), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--mta", choices=("postfix", "sendmail", "qmail"), required=True)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    blocks = capture(args.log, args.mta)
    rows = sum(len(b["status"]) for b in blocks)
    plain_s, plain = timed(text_keyed, blocks, args.repeat)
    fast_s, fast = timed(masked_keyed, blocks, args.repeat)
    if plain != fast:
        print("verdicts differ between the two ways", file=sys.stderr)
        return 1
    keys_plain = sum(len(_distinct(b, b["text"])[1][0]) for b in blocks)
    keys_fast = sum(len(_distinct(b, mask_addresses(b["text"]))[1][0]) for b in blocks)
    print(f"{args.mta}: {len(blocks)} blocks, {rows} failed rows, distinct keys {keys_plain} -> {keys_fast}; "
          f"text-keyed {plain_s:.3f} s, masked-keyed {fast_s:.3f} s CPU (median of {args.repeat}); "
          f"verdicts identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
