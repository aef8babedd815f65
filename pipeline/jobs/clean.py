"""The nightly job: ingest what is new in the configured sources, run the suppression rule,
write the export (and the report when the reports module is present).

Takes <data_dir>/state/clean.lock (non-blocking): two runs never overlap; a second one fails
at once with a clear message. `watch` may run at the same time: while it holds
state/watch.lock it owns log ingestion and `clean` skips that step (step "watch_running");
both write through the event store, which deduplicates by event_id under its own lock, so a
line read by both is stored once. The ingest step is the ingest engine's
(pipeline.ingest.engine.Engine.ingest_sources); a source whose files are not of its format stops
the job before the rule (fail closed).
Called by the CLI (`mailhygiene clean`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core import fsutil
from ..core.config import Config
from ..core.errors import ConfigError, InputError
from ..ingest.engine import Engine
from ..ingest.session import IngestSummary, watch_is_running
from ..suppression.export import export
from ..suppression.rule import RuleResult, run_rule
from ..suppression.store import SuppressionStore


@dataclass
class CleanResult:
    ingest: list[IngestSummary] = field(default_factory=list)
    rule: RuleResult | None = None
    export_path: Path | None = None
    exported_rows: int = 0
    report_path: Path | None = None


def job_lock(cfg: Config, name: str = "clean", *, wait: float = 0.0, busy: str | None = None):
    """The job lock of `cfg`'s data dir (pipeline.core.fsutil.job_lock, the one implementation).
    Kept for callers that import it from here; new code imports it from core."""
    return fsutil.job_lock(cfg.data_dir, name, wait=wait, busy=busy)


def clean(cfg: Config, *, as_of=None, force: bool = False, progress: bool | None = None,
          report: bool = True, on_step=None) -> CleanResult:
    """Run the whole batch pipeline once. `on_step(name, value)` reports progress to a caller."""
    step = on_step or (lambda *a: None)
    sources = cfg.sources
    if not sources:
        raise ConfigError("no log sources configured: add [[sources]] entries (path = \"/var/log/mail.log*\") "
                          "to the config file, or use `mailhygiene ingest PATH…`")
    result = CleanResult()
    with job_lock(cfg):
        # A live `mailhygiene watch` owns log ingestion (docs/watch.md): leave the sources to it.
        watching = watch_is_running(cfg.data_dir)
        if watching:
            step("watch_running", cfg.data_dir / "state" / "watch.lock")
        else:
            def on_source(path, summary):
                if summary is None:
                    step("source_empty", path)
                else:
                    result.ingest.append(summary)
                    step("ingested", (path, summary))

            Engine.from_config(cfg, progress=progress).ingest_sources(sources, on_source=on_source)
            refused = [f for s in result.ingest for f in s.refused]
            if refused:
                # fail closed: a rule run on logs that were not read would suppress too few
                raise InputError("not ingested: " + "; ".join(f"{f['path']}: {f['problem']}" for f in refused)
                                 + ": fix the format of that [[sources]] entry; the rule was not run")
        store = SuppressionStore(cfg.data_dir)
        result.rule = run_rule(store, cfg.rule, cfg.guard, as_of, tz=cfg.timezone_name, force=force)
        step("rule", result.rule)
        result.export_path = cfg.path_in_data_dir(cfg.export.path)
        fsutil.ensure_dir(result.export_path.parent)
        # the store was just read and the list checked against its history: an empty list is
        # the truth here (a new installation), not a mistyped data dir
        result.exported_rows = export(store, result.export_path, cfg.export, tz=cfg.timezone_name,
                                      allow_empty=True)
        step("exported", result.export_path)
        if report:
            try:
                from ..report.reports import write_report
            except ImportError:
                write_report = None
            if write_report is not None:
                out = cfg.path_in_data_dir(cfg.report.dir)
                result.report_path = write_report(cfg, out_dir=out)
                step("report", result.report_path)
    return result
