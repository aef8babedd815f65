"""The C allocator tuned for one batch read (`mailhygiene ingest`): freed blocks kept for reuse.

A batch ingest reads its log in 16 MiB blocks and makes, per block, arrays of a few MiB (line
offsets, field positions, Arrow columns) that are freed when the block is stored. glibc's malloc
serves each such allocation with a fresh mmap() and hands it back to the kernel on free(), so
every block's memory is faulted in again page by page: 60,000-80,000 page faults and 0.2 s of
system CPU a 1M-line Postfix log. With the mmap threshold above those sizes and a trim threshold
of a few blocks, freed blocks stay in the heap and the next block reuses them (BENCHMARKS.md,
"Allocator"). The cost is that up to `trim_threshold` of freed memory stays with the process
until it exits, which a batch run does soon; `watch` (a daemon) does not call this.

Linux with glibc only: elsewhere (musl's mallopt does nothing, macOS has none) it is a no-op.
Called by pipeline.cli.start_up() in the `mailhygiene` process itself, never in a library user's.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1   # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
BATCH_MMAP_THRESHOLD = 64 << 20    # above a block (16 MiB) and the arrays made of it
BATCH_TRIM_THRESHOLD = 128 << 20   # freed memory beyond this at the heap's top goes back to the kernel


def tune_for_batch(mmap_threshold: int = BATCH_MMAP_THRESHOLD, trim_threshold: int = BATCH_TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds; True when both were taken."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
