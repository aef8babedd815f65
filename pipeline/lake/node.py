"""What a node does with the lake, in one call per occasion (the hooks of ingest, clean, watch).

- after_commit(cfg): upload the node's new sealed files when `[store] url` is set. `ingest` and
  `clean` call it with strict=True (a failed upload ends the command with `Error:`, after the
  events are stored locally: the next run uploads what is missing); `watch` with strict=False
  (a warning, and the next commit tries again: the live follower never stops for the lake).
- watch_hook(cfg): the callable the ingest engine's follow() calls after its commits are
  stored (after_commit with strict=False), or None without a lake.
- nightly(cfg): after_commit, then the compaction of this node's closed days (`clean`).

Reads the config; writes through lake.upload and lake.compact. Returns None when no lake is
configured, so callers need no test of their own.
"""

from __future__ import annotations

import logging

from ..core.config import Config
from ..core.errors import LakeError, MailHygieneError
from .upload import UploadSummary, upload_sealed
from .url import lake_of

log = logging.getLogger("mailhygiene.lake")


def after_commit(cfg: Config, *, strict: bool = True) -> UploadSummary | None:
    if not cfg.store.url:
        return None
    try:
        summary = upload_sealed(cfg)
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


def watch_hook(cfg: Config):
    """What `watch` runs after its commits are stored: an upload that only warns on failure
    (the follower never stops for the lake; the next commit tries again). None without a lake."""
    if not cfg.store.url:
        return None
    return lambda: after_commit(cfg, strict=False)


def nightly(cfg: Config):
    """Upload, then merge this node's closed days in the lake; (upload, compaction) summaries."""
    uploaded = after_commit(cfg, strict=True)
    if uploaded is None or not cfg.store.compact_after_days:
        return uploaded, None
    from .compact import compact_closed_days

    lake = lake_of(cfg)
    return uploaded, compact_closed_days(lake, cfg.store.node, after_days=cfg.store.compact_after_days,
                                         work_dir=cfg.data_dir)
