"""`mailhygiene prune --before DATE`: whole UTC day partitions go, the rule window stays.

Real Parquet through the real store; DuckDB (pipeline.connect) counts what is left. The clock is
the only fake: plan_prune takes `now`, and the CLI tests place events relative to today.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

import pipeline
from pipeline.cli import cli
from pipeline.core.errors import InputError
from pipeline.store.event_store import EventStore
from pipeline.store.prune import PRUNING_PREFIX, check_plan, plan_prune, prune

from fixtures import event, store_events

UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo: the window (7 days) starts 2026-11-28 JST


def utc_noon(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 12, tzinfo=UTC)


def fill(cfg, days: dict[date, int]):
    rows = [event(f"u{i}@docomo.ne.jp", utc_noon(d) + timedelta(minutes=i)) for d, n in days.items() for i in range(n)]
    store_events(cfg, rows)


def stored_days(cfg) -> dict[str, int]:
    con = pipeline.connect(cfg.data_dir)
    return dict(con.sql("SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d'), count(*) FROM events GROUP BY 1").fetchall())


def test_plan_lists_whole_days_and_prune_removes_them(cfg):
    days = {date(2026, 10, 1): 3, date(2026, 10, 2): 5, date(2026, 11, 1): 2, date(2026, 12, 1): 4}
    fill(cfg, days)
    plan = plan_prune(cfg.data_dir, date(2026, 11, 1), window_days=7, tz=TOKYO, now=NOW)
    assert [(p.day, p.rows, p.files) for p in plan.doomed] == [(date(2026, 10, 1), 3, 1), (date(2026, 10, 2), 5, 1)]
    assert plan.rows == 8 and plan.bytes > 0 and not plan.in_window
    assert plan.kept_days == [date(2026, 11, 1), date(2026, 12, 1)]
    removed = prune(plan)
    assert [p.day for p in removed] == [date(2026, 10, 1), date(2026, 10, 2)]
    assert stored_days(cfg) == {"2026-11-01": 2, "2026-12-01": 4}
    assert [p.name for p in EventStore(cfg.data_dir).partitions()] == ["date=2026-11-01", "date=2026-12-01"]
    assert not list((cfg.data_dir / "events").glob(PRUNING_PREFIX + "*"))
    # nothing older is left: a second plan is empty
    assert plan_prune(cfg.data_dir, date(2026, 11, 1), window_days=7, tz=TOKYO, now=NOW).doomed == []


def test_an_interrupted_prune_is_finished_and_hidden_from_readers(cfg):
    fill(cfg, {date(2026, 10, 1): 2, date(2026, 11, 1): 1})
    events = cfg.data_dir / "events"
    (events / "date=2026-10-01").rename(events / (PRUNING_PREFIX + "date=2026-10-01"))  # a crash after the rename
    assert stored_days(cfg) == {"2026-11-01": 1}  # readers never see the half-deleted day
    prune(plan_prune(cfg.data_dir, date(2026, 10, 15), window_days=7, tz=TOKYO, now=NOW))
    assert not list(events.glob(PRUNING_PREFIX + "*"))


@pytest.mark.parametrize("zone, last_allowed", [
    ("Asia/Tokyo", date(2026, 11, 27)),          # window from 11-28 00:00 JST = 11-27 15:00 UTC
    ("America/Los_Angeles", date(2026, 11, 27)),  # 20:00 local on 12-03: window from 11-27 PST = 11-27 08:00 UTC
    ("UTC", date(2026, 11, 28)),
])
def test_the_rule_window_is_refused_to_the_hour(cfg, zone, last_allowed):
    fill(cfg, {date(2026, 11, 20): 1, date(2026, 11, 27): 1, date(2026, 11, 28): 1, date(2026, 12, 3): 1})
    tz = ZoneInfo(zone)
    check_plan(plan_prune(cfg.data_dir, last_allowed, window_days=7, tz=tz, now=NOW))
    too_late = plan_prune(cfg.data_dir, last_allowed + timedelta(days=1), window_days=7, tz=tz, now=NOW)
    with pytest.raises(InputError, match=f"current window .*Use --before {last_allowed} or earlier"):
        check_plan(too_late)
    with pytest.raises(InputError):
        prune(too_late)
    assert len(stored_days(cfg)) == 4  # refused: nothing deleted
    prune(too_late, force=True)
    assert min(stored_days(cfg)) >= (last_allowed + timedelta(days=1)).isoformat()
    assert len(stored_days(cfg)) < 4


# ----------------------------------------------------------------------------- the command
def invoke(cfg, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(cfg.data_dir), "--timezone", "Asia/Tokyo", "prune", *args])


@pytest.fixture
def aged(cfg):
    """Events 100, 99 and 98 days ago and 1 day ago (UTC days, relative to the real clock)."""
    today = datetime.now(UTC).date()
    days = {today - timedelta(days=n): n % 5 + 1 for n in (100, 99, 98, 1)}
    fill(cfg, days)
    return today


def test_cli_dry_run_lists_and_keeps(cfg, aged):
    cut = (aged - timedelta(days=98)).isoformat()
    r = invoke(cfg, "--before", cut, "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"event days before {cut} (UTC)" in r.output and "dry run: nothing deleted" in r.output
    assert "to delete: 2 days, 2 files, 6 events" in r.output  # 100 days ago: 1 event, 99 days ago: 5
    assert len(stored_days(cfg)) == 4


def test_cli_needs_yes_without_a_terminal_then_deletes(cfg, aged):
    cut = (aged - timedelta(days=50)).isoformat()
    r = invoke(cfg, "--before", cut)
    assert r.exit_code == 1 and "Error: prune asks before it deletes" in r.output and "--yes" in r.output
    assert len(stored_days(cfg)) == 4
    r = invoke(cfg, "--before", cut, "--yes")
    assert r.exit_code == 0, r.output
    assert "deleted 3 days" in r.output
    assert list(stored_days(cfg)) == [(aged - timedelta(days=1)).isoformat()]


def test_cli_quiet_yes_prints_nothing(cfg, aged):
    r = invoke(cfg, "--before", (aged - timedelta(days=50)).isoformat(), "--yes", "--quiet")
    assert r.exit_code == 0 and r.output == ""
    assert len(stored_days(cfg)) == 1


def test_cli_refuses_the_window_and_bad_dates(cfg, aged):
    r = invoke(cfg, "--before", aged.isoformat(), "--yes")
    assert r.exit_code == 1 and r.output.startswith("Error: --before") and "current window" in r.output
    assert len(stored_days(cfg)) == 4
    r = invoke(cfg, "--before", "last tuesday")
    assert r.exit_code == 2 and "Invalid value for '--before': 'last tuesday' is not a date" in r.output
    r = invoke(cfg, "--before", aged.isoformat(), "--yes", "--force")
    assert r.exit_code == 0 and "warning: --force" in r.output
    assert list(stored_days(cfg)) == []


def test_cli_nothing_to_delete(cfg):
    r = invoke(cfg, "--before", "2020-01-01")  # a data dir that does not exist: a typo, not "nothing"
    assert r.exit_code == 1 and f"data dir {cfg.data_dir} does not exist" in r.output
    assert not cfg.data_dir.exists()
    cfg.data_dir.mkdir()
    r = invoke(cfg, "--before", "2020-01-01")
    assert r.exit_code == 0 and "nothing to delete" in r.output


def test_cli_keep_days(cfg, aged):
    r = invoke(cfg, "--keep-days", "99", "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"event days before {aged - timedelta(days=99)} (UTC)" in r.output and "to delete: 1 days" in r.output
    r = invoke(cfg, "--keep-days", "50", "--yes", "--quiet")
    assert r.exit_code == 0 and r.output == ""
    assert list(stored_days(cfg)) == [(aged - timedelta(days=1)).isoformat()]
    r = invoke(cfg, "--keep-days", "3", "--before", "2020-01-01")
    assert r.exit_code == 1 and "Error: give --before DATE or --keep-days N" in r.output
    r = invoke(cfg, "--keep-days", "2", "--yes")  # inside the 7-day rule window
    assert r.exit_code == 1 and "current window" in r.output


@pytest.mark.slow
def test_cli_asks_on_a_terminal(cfg, aged):
    """On a terminal prune lists the days and asks; "n" keeps everything, "y" deletes."""
    import os
    import subprocess
    import sys

    cut = (aged - timedelta(days=50)).isoformat()
    args = [sys.executable, "-c", "from pipeline.cli import main; main()", "--data-dir", str(cfg.data_dir),
            "--timezone", "Asia/Tokyo", "prune", "--before", cut]
    for answer, left in (("n", 4), ("y", 1)):
        primary, secondary = os.openpty()
        try:
            proc = subprocess.Popen(args, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            os.write(primary, f"{answer}\n".encode())
            out, _ = proc.communicate(timeout=60)
        finally:
            os.close(primary)
            os.close(secondary)
        assert proc.returncode == 0, out
        assert "to delete: 3 days" in out and "Delete these 3 days of events? [y/N]" in out
        assert ("nothing deleted" in out) == (answer == "n")
        assert len(stored_days(cfg)) == left


def test_a_node_of_a_lake_keeps_the_days_it_has_not_uploaded(tmp_path):
    """On a node (`[store] url`), prune refuses days whose files the lake does not hold yet (the
    lake was down, an upload failed): the local store is their only copy. After `lake upload`
    the same prune goes through, and the lake keeps every event."""
    from pipeline.lake.read import connect_lake
    from pipeline.lake.url import lake_of

    from fixtures import make_config

    lake_dir = tmp_path / "lake"
    node = make_config(tmp_path, f'[store]\nurl = "{lake_dir}"\nnode = "mta01"\n')
    today = datetime.now(UTC).date()
    old, older = today - timedelta(days=99), today - timedelta(days=100)
    fill(node, {older: 2})
    r = CliRunner().invoke(cli, ["--config", str(node.source), "--data-dir", str(node.data_dir), "lake", "upload"])
    assert r.exit_code == 0 and "uploaded 1 file(s)" in r.output, r.output
    fill(node, {old: 3, older: 1})  # stored while the lake was unreachable: not uploaded

    def prune_cli(*extra):
        return CliRunner().invoke(cli, ["--config", str(node.source), "--data-dir", str(node.data_dir), "prune",
                                        "--before", (today - timedelta(days=50)).isoformat(), "--yes", *extra])

    for extra in ((), ("--dry-run",)):
        r = prune_cli(*extra)
        assert r.exit_code == 1, r.output
        assert r.output.startswith("Error: 2 of the days to delete hold events not uploaded to the lake yet: "
                                   f"{older} (1 file), {old} (1 file)") and "mailhygiene lake upload" in r.output
    import pyarrow.parquet as pq

    assert sum(pq.read_metadata(f).num_rows for f in EventStore(node.data_dir).files()) == 6  # kept here
    r = CliRunner().invoke(cli, ["--config", str(node.source), "--data-dir", str(node.data_dir), "lake", "upload"])
    assert r.exit_code == 0 and "uploaded 2 file(s)" in r.output, r.output
    r = prune_cli()
    assert r.exit_code == 0 and "deleted 2 days" in r.output, r.output
    con = connect_lake(lake_of(node), tmp_path / "central")
    assert con.sql("SELECT count(*) FROM events").fetchall() == [(6,)]  # every event is in the lake

    # a file stored after the plan was made is checked again under the store's lock
    from pipeline.lake.upload import not_uploaded

    fill(node, {older: 1})
    r = CliRunner().invoke(cli, ["--config", str(node.source), "--data-dir", str(node.data_dir), "lake", "upload"])
    plan = plan_prune(node.data_dir, today - timedelta(days=50), window_days=7, tz=TOKYO,
                      not_uploaded=lambda: not_uploaded(node))
    assert [p.day for p in plan.doomed] == [older] and not plan.not_uploaded
    fill(node, {older: 1})
    with pytest.raises(InputError, match=f"not uploaded to the lake yet: {older} \\(1 file\\)"):
        prune(plan)
    assert len(EventStore(node.data_dir).files(older.isoformat())) == 2
    assert prune(plan, force=True)  # --force: the operator's call
