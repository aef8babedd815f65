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
import threading
import time

from ..core.config import Config
from ..core.errors import LakeError, MailHygieneError
from .upload import UploadSummary, upload_sealed
from .url import lake_of, masked

log = logging.getLogger("mailhygiene.lake")


def after_commit(cfg: Config, *, strict: bool = True, merge: bool = False,
                 take_over: bool = False) -> UploadSummary | None:
    if not cfg.store.url:
        return None
    try:
        summary = upload_sealed(cfg, merge=merge, take_over=take_over)
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
    call (the engine asks again at its next step).

    The upload runs on a thread of its own (`background`): a lake that is slow or does not answer
    (botocore waits up to 120 s a try, 5 tries) held the follower's loop for minutes, so no line
    was stored meanwhile. The follower only looks whether it has ended. At the stop it waits at
    most FINAL_WAIT_S for the uploads (within systemd's TimeoutStopSec), then leaves the rest to
    the next start or `lake upload` (create-only objects and the ledger make a cut-off upload
    harmless)."""

    RETRY_S = 30.0       # a failed upload (warned) is tried again this soon, commits or not
    FINAL_WAIT_S = 30.0  # at the stop: the longest the uploads may take

    def __init__(self, cfg: Config, clock=time.monotonic, *, background: bool = True):
        self.cfg = cfg
        self.every = cfg.store.upload_interval
        self.clock = clock
        self.background = background
        self.last: float | None = None
        self._worker: threading.Thread | None = None
        self._outcome: list = []

    def _upload(self) -> None:
        try:
            self._outcome.append(after_commit(self.cfg, strict=False, merge=True))
        except Exception as exc:  # on a thread: said here, or it would only reach stderr
            log.warning("lake: upload failed, retried at the next commit: %s: %s", type(exc).__name__, exc)
            self._outcome.append(None)

    def _start(self, now: float) -> None:
        self.last = now
        self._outcome = []
        self._worker = threading.Thread(target=self._upload, name="lake-upload", daemon=True)
        self._worker.start()
        if not self.background:
            self._worker.join()

    def _ended(self) -> bool | None:
        """The outcome of the upload that has ended (True: something was uploaded, and commits
        stored while it ran may want the next one; False: nothing was; None: it failed)."""
        self._worker = None
        summary = self._outcome[0] if self._outcome else None
        if summary is None:  # failed: warned
            self.last = self.last - self.every + self.RETRY_S
            return None
        return self.background and bool(summary.uploaded)

    def __call__(self, final: bool = False) -> bool:
        if final:
            return self._final()
        if self._worker is not None:
            if self._worker.is_alive():
                return True  # still uploading: asked again at the next step
            # failed (retried within RETRY_S), or it uploaded and commits may have come meanwhile
            # (the next interval's upload takes them; one that finds nothing ends the asking)
            return self._ended() is not False
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return True
        self._start(now)
        if self._worker.is_alive():
            return True
        return self._ended() is not False

    def _final(self) -> bool:
        deadline = time.monotonic() + self.FINAL_WAIT_S
        if self._worker is not None:
            self._worker.join(max(0.0, deadline - time.monotonic()))
            if self._worker.is_alive():
                self._gave_up()
                return False
            self._ended()
        self._start(self.clock())
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            self._gave_up()
        else:
            self._ended()  # (a follower started again with this hook begins afresh)
        return False

    def _gave_up(self) -> None:
        log.warning("lake: the upload to %s did not end within %.0f s of the stop: what it has not uploaded "
                    "goes at the next start (or with `mailhygiene lake upload`); nothing is lost",
                    masked(self.cfg.store.url), self.FINAL_WAIT_S)


def watch_hook(cfg: Config, *, background: bool = True):
    """The on_stored hook of `watch` (WatchUploads), or None without a lake. `background=False`:
    each upload is waited for (tests that step the follower on a manual clock)."""
    if not cfg.store.url:
        return None
    return WatchUploads(cfg, background=background)


def nightly(cfg: Config):
    """Upload, then merge this node's closed days in the lake; (upload, compaction) summaries."""
    uploaded = after_commit(cfg, strict=True)
    if uploaded is None or not cfg.store.compact_after_days:
        return uploaded, None
    return uploaded, compact_node(cfg)


def compact_node(cfg: Config):
    """Merge this node's closed days in the lake (`clean`, `lake compact`): only once this data
    dir is known to hold the node name (a second host given the same name merged and deleted
    the first one's objects), and under the lock of this node's uploads (an upload reading the
    ids of a day's objects found one deleted under it)."""
    from .compact import compact_closed_days
    from .upload import Uploader

    lake = lake_of(cfg)
    uploader = Uploader(cfg.data_dir, lake, cfg.store.node, timezone=cfg.timezone_name)
    uploader.claim()
    with uploader.lock():
        return compact_closed_days(lake, cfg.store.node, after_days=cfg.store.compact_after_days,
                                   work_dir=cfg.data_dir)
