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

from ..core.config import Config
from ..core.errors import ConfigError, InputError
from ..core.fsutil import file_lock
from ..ingest.engine import Engine
from ..ingest.session import IngestSummary, watch_is_running
from ..suppression.store import RuleResult, export, run_rule


@dataclass
class CleanResult:
    ingest: list[IngestSummary] = field(default_factory=list)
    rule: RuleResult | None = None
    export_path: Path | None = None
    exported_rows: int = 0
    report_path: Path | None = None


def job_lock(cfg: Config, name: str = "clean", *, wait: float = 0.0, busy: str | None = None):
    """Exclusive <data_dir>/state/<name>.lock for one job, holding our pid (core.fsutil.file_lock)."""
    path = cfg.data_dir / "state" / f"{name}.lock"
    return file_lock(path, wait=wait, write_pid=True,
                     busy=busy or f"another `mailhygiene {name}` is running on {cfg.data_dir} (lock {path}); "
                                  "this run did nothing")


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
        result.rule = run_rule(cfg, as_of=as_of, force=force)
        step("rule", result.rule)
        exp = cfg["export"]
        result.export_path = cfg.path_in_data_dir(exp["path"])
        result.export_path.parent.mkdir(parents=True, exist_ok=True)
        result.exported_rows = export(cfg, result.export_path, "csv", bool(exp["excel"]))
        step("exported", result.export_path)
        if report:
            try:
                from ..report.reports import write_report
            except ImportError:
                write_report = None
            if write_report is not None:
                out = cfg.path_in_data_dir(cfg["report"]["dir"])
                result.report_path = write_report(cfg, out_dir=out)
                step("report", result.report_path)
    return result
