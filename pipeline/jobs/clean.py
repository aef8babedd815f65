"""The nightly job: ingest what is new in the configured sources, move the send daemon's results
into the event store, run the suppression rule, write the export and the report.

Takes <data_dir>/state/clean.lock (non-blocking): two runs never overlap; a second one fails
at once with a clear message. `watch` may run at the same time: while it holds
state/watch.lock it owns log ingestion and `clean` skips that step (step "watch_running");
both write through the event store, which deduplicates by event_id under its own lock, so a
line read by both is stored once. The ingest step is the ingest engine's
(pipeline.ingest.engine.Engine.ingest_sources); a source whose files are not of its format stops
the job before the rule (fail closed).

Before the rule, the event rows a send daemon left in the queue's outbox (a daemon that crashed or
was killed before its next flush) are moved into the event store (pipeline.sender.events
.flush_outbox), so the rule never misses the sender's own results. No queue database: nothing to
move. A queue that exists but cannot be used (damaged, locked for too long, read-only, ...) stops
the job before the rule with its QueueUnavailable error (fail closed: a rule run without those rows
could miss dead addresses, and would pass as a complete night); what was ingested stays stored.

The job is one of the two places (with the CLI) that read the whole config: each stage gets the
typed sections it uses (the rule: cfg.rule and cfg.guard; the export: cfg.export; the report:
cfg.report, cfg.rule and the sending domain of cfg.sender; the ingest engine: cfg.ingest,
cfg.watch, cfg.carriers and the data dir and zone, through Engine.from_config). clean_result_json() is the `clean --json` shape.
Called by the CLI (`mailhygiene clean`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import fsutil
from ..core.config import Config
from ..core.errors import ConfigError, EventFileVanished, GuardTripped, InputError
from ..ingest.engine import Engine
from ..ingest.session import IngestSummary, watch_is_running
from ..suppression.export import export
from ..suppression.publish import check_not_shrunk
from ..suppression.rule import RuleResult, rule_result_json, run_rule
from ..suppression.store import SuppressionStore


@dataclass
class CleanResult:
    ingest: list[tuple[str, IngestSummary]] = field(default_factory=list)  # (source path, summary)
    sources_without_files: list[str] = field(default_factory=list)
    watch_running: bool = False
    sender_events: int = 0                                                 # outbox rows moved before the rule
    rule: RuleResult | None = None
    export_path: Path | None = None
    exported_rows: int = 0
    report_path: Path | None = None
    lake_upload: object = None          # lake.upload.UploadSummary when [store] url is set
    lake_compaction: object = None      # lake.compact.CompactSummary


def job_lock(cfg: Config, name: str = "clean", *, wait: float = 0.0, busy: str | None = None):
    """The job lock of `cfg`'s data dir (pipeline.core.fsutil.job_lock, the one implementation).
    Kept for callers that import it from here; new code imports it from core."""
    return fsutil.job_lock(cfg.data_dir, name, wait=wait, busy=busy)


RULE_ATTEMPTS = 3  # a rule read that met a watch's compaction is run again (EventFileVanished)


def clean(cfg: Config, *, as_of=None, force: bool = False, progress: bool | None = None,
          report: bool = True, lang: str | None = None, on_step=None, allow_shrink: bool = False) -> CleanResult:
    """Run the whole batch pipeline once. `on_step(name, value)` reports progress to a caller;
    `lang` overrides report.lang for the report's language. The export is not replaced by a
    list that lost most of its rows unreleased (suppression.publish: ExportShrinkRefused, the
    report not written either) unless `allow_shrink`."""
    step = on_step or (lambda *a: None)
    sources = cfg.sources
    from ..sender.queue import queue_path

    # Without [[sources]], the send daemon's own results (direct mode with routes: the carriers
    # answer the daemon, no MTA log in between) are the events: the rule runs on them. In relay
    # mode, or without routes, the daemon only hands mail to the local MTA, whose log is needed.
    sender_only = (not sources and cfg.sender.mode == "direct" and bool(cfg.sender.routes)
                   and os.path.lexists(queue_path(cfg.data_dir)))
    if not sources and not sender_only:
        raise ConfigError("no log sources configured: add [[sources]] entries (path = \"/var/log/mail.log*\") "
                          "to the config file, or use `mailhygiene ingest PATH…`")
    data_dir, tz = cfg.data_dir, cfg.timezone_name
    result = CleanResult()
    with job_lock(cfg):
        # A live `mailhygiene watch` owns log ingestion (docs/watch.md): leave the sources to it.
        result.watch_running = watch_is_running(data_dir)
        if sender_only:
            step("no_sources", None)
        elif result.watch_running:
            step("watch_running", data_dir / "state" / "watch.lock")
        else:
            def on_source(path, summary):
                if summary is None:
                    result.sources_without_files.append(path)
                    step("source_empty", path)
                else:
                    result.ingest.append((path, summary))
                    step("ingested", (path, summary))

            Engine.from_config(cfg, progress=progress).ingest_sources(sources, on_source=on_source)
            refused = [f for _, s in result.ingest for f in s.refused]
            if refused:
                # fail closed: a rule run on logs that were not read would suppress too few
                raise InputError("not ingested: " + "; ".join(f"{f['path']}: {f['problem']}" for f in refused)
                                 + ": fix the format of that [[sources]] entry; the rule was not run")
        result.sender_events = flush_sender_events(cfg)
        step("sender_events", result.sender_events)
        if cfg.store.url:  # [store] url: upload this node's sealed files, merge its closed days
            from ..lake.node import nightly

            result.lake_upload, result.lake_compaction = nightly(cfg)
            step("lake", result.lake_upload)
        store = SuppressionStore(data_dir)
        engine = None
        if cfg.engine == "spark":  # the rule's SQL on Spark (docs/scale-out.md); the list stays here
            from ..lake.engines import SparkEngine

            engine = SparkEngine.open(cfg)
        try:
            for attempt in range(RULE_ATTEMPTS):
                try:
                    result.rule = run_rule(store, cfg.rule, cfg.guard, as_of, tz=tz, force=force, engine=engine)
                    break
                except GuardTripped as exc:
                    result.rule = exc.result
                    exc.clean_result = result  # what the night did before the refusal (`clean --json`)
                    raise
                except EventFileVanished:
                    # a running watch merged a day's files while the rule read them (nothing was
                    # written: run_rule changes the list only at its end): read again
                    if attempt == RULE_ATTEMPTS - 1:
                        raise
        finally:
            if engine is not None:
                engine.close()
        step("rule", result.rule)
        result.export_path = cfg.path_in_data_dir(cfg.export.path)
        if not allow_shrink:  # an unmounted or moved data dir must not publish its short list
            check_not_shrunk(store, result.export_path)
        fsutil.ensure_dir(result.export_path.parent)
        # the store was just read and the list checked against its history: an empty list is
        # the truth here (a new installation), not a mistyped data dir
        result.exported_rows = export(store, result.export_path, cfg.export, tz=tz, allow_empty=True)
        step("exported", result.export_path)
        if report:
            from ..report.reports import generate, sending_domain_of

            written = generate(data_dir, cfg.path_in_data_dir(cfg.report.dir), cfg.report, cfg.rule, tz,
                               lang=lang, excel=cfg.export.excel, sending_domain=sending_domain_of(cfg.sender))
            result.report_path = written.html
            step("report", result.report_path)
    return result


def flush_sender_events(cfg: Config) -> int:
    """Move the send queue's outbox rows into the event store; the number moved (0 without a queue).

    Raises the queue's QueueUnavailable (or the event store's StoreError) instead of skipping:
    the caller must not run the rule without the rows."""
    from ..sender.events import flush_outbox
    from ..sender.queue import Queue, QueueUnavailable, queue_path

    path = queue_path(cfg.data_dir)
    if not os.path.lexists(path):
        return 0
    try:
        reader = Queue(path, read_only=True)  # an empty outbox needs no write access to the queue
        try:
            if reader.outbox_size() == 0:
                return 0
        finally:
            reader.close()
        queue = Queue(path)
        try:
            return flush_outbox(queue, cfg.data_dir)
        finally:
            queue.close()
    except QueueUnavailable as exc:
        raise type(exc)(f"the suppression rule did not run: the send daemon's results could not be moved into the "
                        f"event store, and the rule would miss them. {exc}") from exc


def clean_result_json(result: CleanResult, cfg: Config) -> dict[str, Any]:
    """`clean --json` (README "Scripting"): the key figures of one run.

    {"lines": lines read, "events": events written, "already_stored", "rejects": lines rejected,
     "new_suppressions": entries the rule added, "sender_events": rows moved from the send queue's
     outbox before the rule, "export": {"path", "rows"}, "report": path or
     null, "ingest": {"watch_running": bool, "sources_without_files": [path], "sources": [{"path",
     "files", "lines", "events", "already_stored", "rejects", "rejects_file"}]}, "rule": the
     `suppress --json` document, "lake": this node's upload with [store] url, else null}"""
    from ..core.jsonout import jsonable

    sources = []
    for path, summary in result.ingest:
        d = summary.as_dict()
        sources.append({"path": path, "files": len(d["files"]), "lines": d["lines"],
                        "events": d["events_written"], "already_stored": d["already_stored"],
                        "rejects": d["lines_rejected"], "rejects_file": d["rejects_file"]})
    rule = result.rule
    return jsonable({
        "lines": sum(s["lines"] for s in sources),
        "events": sum(s["events"] for s in sources),
        "already_stored": sum(s["already_stored"] for s in sources),
        "rejects": sum(s["rejects"] for s in sources),
        "new_suppressions": len(rule.new) if rule is not None and rule.applied else 0,
        "sender_events": result.sender_events,
        "export": {"path": result.export_path, "rows": result.exported_rows},
        "report": result.report_path,
        "ingest": {"watch_running": result.watch_running, "sources_without_files": result.sources_without_files,
                   "sources": sources},
        "rule": rule_result_json(rule, cfg.rule, cfg.timezone_name) if rule is not None else None,
        "lake": result.lake_upload.as_dict() if result.lake_upload is not None else None,
    })
