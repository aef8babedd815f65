"""CPU of applying Postfix blocks to the parser state: postfix_block.read_block alone (the main
thread's part of the block path), replayed on the blocks of a real ingest.

One ingest of the log runs in this process (a temporary data dir) and records, for every
read_block call, the parser state before it, the block and its extract() fields. Then
`--passes` passes replay those calls on a fresh PostfixParser set to each recorded state (the
fed lines go through decode_line and PostfixParser.feed, as the front door does for clean
lines) and print the first pass (fresh memory) and the min and median of all, in seconds of
thread CPU, with a digest of every call's columns, emitted rows and parser state after it
(equal digests: the same output and state; compare two checkouts with it).

    .venv/bin/python bench/bench_read_block.py pf-1000000.log
    (a realistic log: .venv/bin/python bench/gen_logs.py pf-1000000.log --mta postfix --lines 1000000)
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import sys
import tempfile
import time
from zoneinfo import ZoneInfo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--year", type=int, default=2026)
    ap.add_argument("--timezone", default="Asia/Tokyo")
    a = ap.parse_args()
    from pipeline.core.config import load_config
    from pipeline.ingest.engine import ingest
    from pipeline.ingest.parsers import ParseContext, postfix_block
    from pipeline.ingest.parsers.common import decode_line
    from pipeline.ingest.parsers.postfix import PostfixParser

    calls = []
    read_block = postfix_block.read_block

    def recording(parser, block, offset, f, feed_line, annotate=None):
        calls.append((copy.deepcopy(parser.get_state()), parser.clock, block, offset, f))
        return read_block(parser, block, offset, f, feed_line, annotate)

    postfix_block.read_block = recording
    with tempfile.TemporaryDirectory() as data:
        ingest(load_config(None, data_dir=data, timezone=a.timezone), [a.log], fmt="postfix", year=a.year)
    postfix_block.read_block = read_block
    ctx = ParseContext(tz=ZoneInfo(a.timezone), year=a.year, source_file=a.log)

    def one_pass(digest=None) -> float:
        total = 0
        for state, clock, block, offset, f in calls:
            emitted: list = []
            parser = PostfixParser(ctx, emitted.append)
            parser.set_state(copy.deepcopy(state))
            parser.clock = clock

            def feed_line(raw, at, parser=parser):
                line, _ = decode_line(raw)
                if line is not None:
                    parser.feed(line, at)

            t = time.thread_time_ns()
            result = read_block(parser, block, offset, f, feed_line)
            total += time.thread_time_ns() - t
            if digest is not None:
                digest.update(json.dumps(parser.get_state(), sort_keys=True).encode())
                digest.update(repr([{k: v for k, v in row.items() if k != "_line"} for row in emitted]).encode())
                for name in sorted(result.columns or ()):
                    digest.update(name.encode() + repr(result.columns[name].to_pylist()).encode())
        return total / 1e9

    digest = hashlib.sha256()
    first = one_pass(digest)
    times = [first] + [one_pass() for _ in range(a.passes - 1)]
    print(f"{len(calls)} read_block calls; first pass {first:.4f} s, min {min(times):.4f} s, "
          f"median {statistics.median(times):.4f} s (thread CPU); digest {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    sys.exit(main())
