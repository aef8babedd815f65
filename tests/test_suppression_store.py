"""The suppression list's files (pipeline/suppression/store.py): written by DuckDB, checked
against the history, failing closed for the sender, repaired, and shown without pandas noise."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core import fsutil
from pipeline.core.errors import SuppressionUnavailable
from pipeline.suppression import store as suppression
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import SuppressionStore, suppressed_addresses

from fixtures import at, event, store_events

AS_OF = "2026-11-30"


def invoke(cfg, *args, ok=True):
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_dir), "--timezone", "Asia/Tokyo", *map(str, args)])
    if ok:
        assert r.exit_code == 0, r.output
    return r


def apply_rule(cfg, as_of=AS_OF):
    return run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, as_of, tz=cfg.timezone_name)


def two_dead(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12)),
                       event("b@docomo.ne.jp", at(11)), event("b@docomo.ne.jp", at(13))])
    assert apply_rule(cfg).applied


def test_no_list_and_no_history_is_an_empty_list(cfg):
    assert suppressed_addresses(cfg) == frozenset()
    assert suppressed_addresses(cfg.data_dir) == frozenset()  # a data dir works as well as a Config


def test_files_are_written_by_duckdb_and_read_back(cfg):
    two_dead(cfg)
    store = SuppressionStore(cfg.data_dir)
    assert store.current_path.read_bytes()[:4] == b"PAR1" and store.history_path.is_file()
    assert suppressed_addresses(cfg) == {"a@au.com", "b@docomo.ne.jp"}
    import pyarrow.parquet as pq   # the schemas the report and the notebook rely on
    assert pq.read_schema(store.history_path).names == suppression.HISTORY_SCHEMA.names
    assert pq.read_schema(store.current_path) .names == suppression.CURRENT_SCHEMA.names
    assert oct(store.current_path.stat().st_mode & 0o060) == oct(0o060 & ~fsutil._umask())  # group rw


def test_missing_list_with_history_fails_closed(cfg):
    two_dead(cfg)
    before = suppression.entries(cfg)
    SuppressionStore(cfg.data_dir).current_path.unlink()
    with pytest.raises(SuppressionUnavailable, match="missing while its history"):
        suppressed_addresses(cfg)
    r = invoke(cfg, "suppression", "list", ok=False)
    assert r.exit_code == 1 and r.output.startswith("Error:") and "suppression repair" in r.output
    assert "2 entr(ies) restored" in invoke(cfg, "suppression", "repair").output
    assert suppressed_addresses(cfg) == {"a@au.com", "b@docomo.ne.jp"}
    assert suppression.entries(cfg) == before  # every column rebuilt from the history's evidence


def test_unreadable_list_fails_closed_and_is_rebuilt(cfg):
    two_dead(cfg)
    SuppressionStore(cfg.data_dir).current_path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(SuppressionUnavailable, match="cannot read .*current.parquet"):
        suppressed_addresses(cfg)
    suppression.repair(cfg)
    assert suppressed_addresses(cfg) == {"a@au.com", "b@docomo.ne.jp"}


def test_unreadable_history_fails_closed(cfg):
    two_dead(cfg)
    SuppressionStore(cfg.data_dir).history_path.write_bytes(b"garbage")
    with pytest.raises(SuppressionUnavailable, match="history.parquet"):
        suppressed_addresses(cfg)


def test_a_crash_between_history_and_list_leaves_the_list_refused_until_repaired(cfg, monkeypatch):
    two_dead(cfg)
    real = fsutil.atomic_path

    def crash_on_the_list(path):
        if str(path).endswith("current.parquet"):
            raise KeyboardInterrupt("killed before the list was written")
        return real(path)

    monkeypatch.setattr(suppression, "atomic_path", crash_on_the_list)
    with pytest.raises(KeyboardInterrupt):
        suppression.add(cfg, "late@au.com", "asked to stop")
    monkeypatch.setattr(suppression, "atomic_path", real)
    # the history says late@au.com is suppressed; the list does not have it: the sender must stop
    with pytest.raises(SuppressionUnavailable, match=r"older than its history: 1 address.*late@au.com"):
        suppressed_addresses(cfg)
    # any change repairs first
    suppression.add(cfg, "other@au.com")
    assert suppressed_addresses(cfg) == {"a@au.com", "b@docomo.ne.jp", "late@au.com", "other@au.com"}


def test_no_temp_files_left_after_a_failed_write(cfg, monkeypatch):
    two_dead(cfg)
    store = SuppressionStore(cfg.data_dir)
    before = sorted(os.listdir(store.dir))
    monkeypatch.setattr(suppression, "run_block", _failing_on("write_list", suppression.run_block))
    with pytest.raises(RuntimeError):
        suppression.add(cfg, "x@au.com")
    assert sorted(os.listdir(store.dir)) == before


def _failing_on(name, real):
    def run(con, block, params=None, **kw):
        if block == name:
            real(con, block, params, **kw)
            raise RuntimeError("disk went away")
        return real(con, block, params, **kw)
    return run


def test_release_holds_for_any_later_run_until_new_errors(cfg):
    two_dead(cfg)
    suppression.release(cfg, "a@au.com", "customer fixed the phone",
                        now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    # a later run evaluated as of an earlier day must not undo the release (issue 14)
    for as_of in ("2026-11-12", "2026-11-20", AS_OF, None):
        apply_rule(cfg, as_of)
        assert "a@au.com" not in suppressed_addresses(cfg), as_of
    # one new counted error after the release is not enough; a second day is
    store_events(cfg, [event("a@au.com", at(2, month=12))])
    apply_rule(cfg, "2026-12-05")
    assert "a@au.com" not in suppressed_addresses(cfg)
    store_events(cfg, [event("a@au.com", at(4, month=12))])
    result = apply_rule(cfg, "2026-12-05")
    assert [e["address"] for e in result.new] == ["a@au.com"]
    assert result.new[0]["first_error"].day == 2 and result.new[0]["error_count"] == 2


def test_list_and_show_print_whole_numbers_and_no_nan(cfg):
    two_dead(cfg)
    suppression.add(cfg, "manual@au.com")  # no note, no reasons: must not print nan or None
    listed = invoke(cfg, "suppression", "list").output
    assert listed.startswith("3 suppressed") and "nan" not in listed and "None" not in listed
    assert "manual@au.com" in listed and "note:" not in listed
    shown = invoke(cfg, "suppression", "show", "a@au.com").output
    assert "2 counted errors on 2 days" in shown and ".0" not in shown and "nan" not in shown
    assert shown.count(" * 2026-11-1") == 2   # counted_error() decided, in SQL
    manual = invoke(cfg, "suppression", "show", "manual@au.com").output
    assert "SUPPRESSED (manual)" in manual and "nan" not in manual and "None" not in manual


def test_the_stage_runs_without_pandas(cfg):
    import subprocess

    two_dead(cfg)
    suppression.release(cfg, "b@docomo.ne.jp")
    code = ("import sys\n"
            "from pipeline.cli import cli\n"
            "for args in (['suppress', '--dry-run'], ['suppress'], ['suppression', 'list'],\n"
            "             ['suppression', 'show', 'a@au.com'], ['export', '-'], ['export', '--filtered', '-', '--allow-empty']):\n"
            "    try:\n"
            f"        cli.main(['--data-dir', {str(cfg.data_dir)!r}, '--timezone', 'Asia/Tokyo', *args])\n"
            "    except SystemExit as e:\n"
            "        assert e.code in (0, None), (args, e.code)\n"
            "print('PANDAS', 'pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "PANDAS False" in out.stdout and "a@au.com" in out.stdout
