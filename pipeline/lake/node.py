"""What a node does with the lake, in one call per occasion (the hooks of ingest, clean, watch).

- after_commit(cfg): upload the node's new sealed files when `[store] url` is set. `ingest` and
  `clean` call it with strict=True (a failed upload ends the command with `Error:`, after the
  events are stored locally: the next run uploads what is missing); `watch` with strict=False
  (a warning, and the next commit tries again: the live follower never stops for the lake).
- watch_hook(cfg): the callable the ingest engine's follow() calls after its commits are
  stored (WatchUploads: after_commit with strict=False, at most every [store] upload_interval,
  merging a day's new files into one object), or None without a lake.
- nightly(cfg): after_commit, then the compaction of this node's closed days (`clean`).

Reads the config; writes through lake.upload and lake.compact. Returns None when no lake is
configured, so callers need no test of their own.
"""

from __future__ import annotations

import logging
import time

from ..core.config import Config
from ..core.errors import LakeError, MailHygieneError
from .upload import UploadSummary, upload_sealed
from .url import lake_of

log = logging.getLogger("mailhygiene.lake")


def after_commit(cfg: Config, *, strict: bool = True, merge: bool = False) -> UploadSummary | None:
    if not cfg.store.url:
        return None
    try:
        summary = upload_sealed(cfg, merge=merge)
    except MailHygieneError as exc:
        if strict:
            raise LakeError(f"the events are stored locally, but uploading them to the lake failed: {exc} "
                            "(the next run uploads what is missing)") from None
        log.warning("lake: upload failed, retried at the next commit: %s", exc)
        return None
    if summary is not None and (summary.uploaded or summary.already_there):
        log.info("lake: uploaded %d file(s), %d byte(s) (%d already there)",
                 summary.uploaded, summary.bytes, summary.already_there)
    return summary


class WatchUploads:
    """What `watch` runs after its commits are stored (the engine's on_stored): an upload that
    only warns on failure (the follower never stops for the lake; it tries again within 30 s), at
    most every [store] upload_interval seconds, the first and the last (final=True: the follower
    stops) at once. Each upload merges a day's new files into one object first, so a node that
    commits every 5 s adds 288 objects a day at the default 300 s, not 17,280, and a central read
    stays quick (BENCHMARKS.md, "Large inputs"). Returns True when the upload was left for a later
    call (the engine asks again at its next step)."""

    RETRY_S = 30.0  # a failed upload (warned) is tried again this soon, commits or not

    def __init__(self, cfg: Config, clock=time.monotonic):
        self.cfg = cfg
        self.every = cfg.store.upload_interval
        self.clock = clock
        self.last: float | None = None

    def __call__(self, final: bool = False) -> bool:
        now = self.clock()
        if not final and self.last is not None and now - self.last < self.every:
            return True
        if after_commit(self.cfg, strict=False, merge=True) is None:  # failed: warned
            self.last = now - self.every + self.RETRY_S
            return True
        self.last = now
        return False


def watch_hook(cfg: Config):
    """The on_stored hook of `watch` (WatchUploads), or None without a lake."""
    if not cfg.store.url:
        return None
    return WatchUploads(cfg)


def nightly(cfg: Config):
    """Upload, then merge this node's closed days in the lake; (upload, compaction) summaries."""
    uploaded = after_commit(cfg, strict=True)
    if uploaded is None or not cfg.store.compact_after_days:
        return uploaded, None
    from .compact import compact_closed_days

    lake = lake_of(cfg)
    return uploaded, compact_closed_days(lake, cfg.store.node, after_days=cfg.store.compact_after_days,
                                         work_dir=cfg.data_dir)
