"""Exports (pipeline/suppression/export.py): the CSV written by DuckDB with csv_safe() in SQL,
held to pipeline.core.csvsafe.neutralise; fail-closed targets; the handset-filter list."""

from __future__ import annotations

import csv
import io
import os
import random
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.csvsafe import FORMULA_PREFIXES, neutralise
from pipeline.store.warehouse import read_sql
from pipeline.suppression import store as suppression
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import SuppressionStore

from fixtures import at, event, make_config, store_events


def invoke(data, *args, ok=True, toml=None):
    base = ["--data-dir", str(data), "--timezone", "Asia/Tokyo"]
    if toml is not None:
        base = ["--config", str(toml)] + base
    r = CliRunner().invoke(cli, [*base, *map(str, args)])
    if ok:
        assert r.exit_code == 0, r.output
    return r


@pytest.fixture
def listed(cfg):
    store_events(cfg, [event("a@au.com", at(10)), event("a@au.com", at(12)),
                       event("+81-90@docomo.ne.jp", at(11)), event("+81-90@docomo.ne.jp", at(13),
                                                                    diagnostic="=HYPERLINK(\"http://x\")")])
    run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, "2026-11-30", tz=cfg.timezone_name)
    suppression.add(cfg, "-taro@au.com", "@SUM(1+1)")
    return cfg


def macros():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(read_sql("macros"))
    return con


# --------------------------------------------------------------------------- one rule, two places
def corpus() -> list[str]:
    rng = random.Random(14)
    alphabet = list("=+-@\t\r\n '\"abcXYZ019,;:|()!ー＝＋－あ日本\u3000\x00\ufeff") + ["\U0001F600"]
    values = ["", "=", "+", "-", "@", "\t", "\r", " =1", "'=1", "=1+2", "+81@docomo.ne.jp", "-1", "@SUM(A1)",
              "\t=cmd", "\r=cmd", "＝全角", "－", "\n=x", "normal text", "日本語", "😀=", "=😀"]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    return values


def test_csv_safe_in_sql_agrees_with_neutralise():
    con = macros()
    values = corpus()
    con.execute("CREATE TABLE v (i INTEGER, value VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", list(enumerate(values)))
    got = dict(con.execute("SELECT i, csv_safe(value) FROM v").fetchall())
    assert all(got[i] == neutralise(v) for i, v in enumerate(values))
    assert con.execute("SELECT csv_safe(NULL)").fetchone()[0] is None
    assert sum(1 for v in values if v.startswith(FORMULA_PREFIXES)) > 400  # the corpus tests both ways


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Berlin"])
def test_iso_local_in_sql_agrees_with_python(zone):
    con = macros()
    instants = [datetime(2026, m, d, h, mi, 7, tzinfo=timezone.utc)
                for m, d in ((1, 15), (3, 29), (7, 1), (10, 25), (11, 1)) for h, mi in ((0, 0), (1, 30), (23, 59))]
    for t in instants:
        want = t.astimezone(ZoneInfo(zone)).isoformat()
        assert con.execute("SELECT iso_local($t, $tz)", {"t": t, "tz": zone}).fetchone()[0] == want


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Asia/Kolkata", "America/St_Johns"])
def test_iso_local_offset_is_exact_for_times_with_microseconds(zone):
    """The list's added_at carries microseconds: the two epochs then differ by 32399.99999976
    seconds in Asia/Tokyo, and a floored offset printed 12:46:10+08:59, a minute off."""
    con = macros()
    instants = [datetime(2026, 12, 6, 3, 46, 10, us, tzinfo=timezone.utc)
                for us in (1, 209473, 500000, 999999)]
    for t in instants:
        want = t.astimezone(ZoneInfo(zone)).replace(microsecond=0).isoformat()
        assert con.execute("SELECT iso_local($t, $tz)", {"t": t, "tz": zone}).fetchone()[0] == want


# --------------------------------------------------------------------------- the list export
def test_csv_keeps_addresses_and_neutralises_text(listed, tmp_path):
    out = tmp_path / "s.csv"
    assert "wrote 3 entries" in invoke(listed.data_dir, "export", out).output
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = {r["address"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8")))}
    assert set(rows) == {"+81-90@docomo.ne.jp", "-taro@au.com", "a@au.com"}  # keys untouched
    assert rows["-taro@au.com"]["note"] == "'@SUM(1+1)"
    assert rows["+81-90@docomo.ne.jp"]["last_diagnostic"] == "'=HYPERLINK(\"http://x\")"
    assert rows["a@au.com"]["error_count"] == "2" and rows["a@au.com"]["distinct_days"] == "2"
    assert rows["a@au.com"]["first_error"] == "2026-11-10T12:00:00+09:00"
    assert rows["a@au.com"]["window_start"] == "2026-11-10" and rows["a@au.com"]["last_reply_code"] == "550"
    assert rows["-taro@au.com"]["error_count"] == "" and rows["-taro@au.com"]["source"] == "manual"


def test_config_excel_applies_to_export_and_dash_is_stdout(listed, tmp_path):
    toml = tmp_path / "mailhygiene.toml"
    toml.write_text("[export]\nexcel = true\n", encoding="utf-8")
    out = tmp_path / "x.csv"
    invoke(listed.data_dir, "export", out, toml=toml)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    invoke(listed.data_dir, "export", out, "--no-excel", toml=toml)
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    r = invoke(listed.data_dir, "export", "-")
    assert not (tmp_path / "-").exists() and not os.path.exists("-")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["address"] for x in rows] == ["+81-90@docomo.ne.jp", "-taro@au.com", "a@au.com"]
    pq_out = tmp_path / "s.parquet"
    invoke(listed.data_dir, "export", pq_out, "--format", "parquet")
    import pyarrow.parquet as pq
    table = pq.read_table(pq_out)
    assert table.num_rows == 3 and table.column("note").to_pylist()[1] == "@SUM(1+1)"  # typed data, raw


def test_nothing_to_export_writes_nothing(tmp_path):
    target = tmp_path / "s.csv"
    r = invoke(tmp_path / "no-such-dir", "export", target, ok=False)
    assert r.exit_code == 1 and r.output.startswith("Error:") and "does not exist" in r.output
    assert not target.exists()
    cfg = make_config(tmp_path)
    store_events(cfg, [event("a@au.com", at(10))])  # events, but nothing suppressed
    target.write_text("address\nkept@au.com\n")
    r = invoke(cfg.data_dir, "export", target, ok=False)
    assert r.exit_code == 1 and "empty" in r.output and "--allow-empty" in r.output
    assert target.read_text() == "address\nkept@au.com\n"  # the previous export is untouched
    invoke(cfg.data_dir, "export", target, "--allow-empty")
    assert target.read_text().splitlines()[0].startswith("address,carrier,")
    assert len(target.read_text().splitlines()) == 1


def test_only_regular_files_are_replaced(listed, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, words in ((fifo, "not a regular file"), ("/dev/null", "not a regular file"),
                          (tmp_path, "is a directory"), (tmp_path / "no" / "dir.csv", "does not exist")):
        r = invoke(listed.data_dir, "export", target, ok=False)
        assert r.exit_code != 0 and words in r.output, (target, r.output)
    assert fifo.exists() and not fifo.is_file()
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    invoke(listed.data_dir, "export", link)
    assert link.is_symlink() and real.read_text().startswith("address,")  # the link kept, its file replaced


# --------------------------------------------------------------------------- the handset-filter list
def filtered(a, day, carrier="docomo", month=11):
    return event(a, at(day, month=month), reason="filtered", scope="sender", carrier=carrier,
                 diagnostic=f"550 Unknown user {a}", smtp_phase="end_of_data")


def test_filtered_export_lists_reception_filter_refusals(cfg, tmp_path):
    store_events(cfg, [
        filtered("hana@docomo.ne.jp", 20), filtered("hana@docomo.ne.jp", 22), filtered("hana@docomo.ne.jp", 25),
        filtered("ken@ezweb.ne.jp", 24, carrier="au"),
        filtered("fixed@docomo.ne.jp", 20), event("fixed@docomo.ne.jp", at(23), status="sent"),  # allowed us since
        filtered("old@docomo.ne.jp", 1, month=9),                                                  # not recent
        filtered("gone@au.com", 21, carrier="au"),
    ])
    suppression.add(cfg, "gone@au.com", "asked to stop")     # suppressed: no point asking
    out = tmp_path / "filtered.csv"
    r = invoke(cfg.data_dir, "export", "--filtered", out, "--days", "30")
    assert "wrote 2 filtered address(es)" in r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(x["address"], x["carrier"], x["refusals"]) for x in rows] == [
        ("ken@ezweb.ne.jp", "au", "1"), ("hana@docomo.ne.jp", "docomo", "3")]   # by carrier, address
    by = {x["address"]: x for x in rows}
    assert by["hana@docomo.ne.jp"]["last_refusal"] == "2026-11-25T12:00:00+09:00"
    assert by["hana@docomo.ne.jp"]["last_reply"] == "550 Unknown user hana@docomo.ne.jp"
    # never suppressed by the rule, however often refused
    result = run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, "2026-11-30", tz=cfg.timezone_name)
    assert result.marked == 0


def test_filtered_export_empty_needs_allow_empty(cfg, tmp_path):
    store_events(cfg, [event("a@au.com", at(10), status="sent")])
    out = tmp_path / "f.csv"
    r = invoke(cfg.data_dir, "export", "--filtered", out, ok=False)
    assert r.exit_code == 1 and "--allow-empty" in r.output and not out.exists()
    invoke(cfg.data_dir, "export", "--filtered", out, "--allow-empty")
    assert out.read_text().startswith("address,carrier,refusals,first_refusal,last_refusal,last_reply")


def test_address_whose_quotes_were_normalised_away_is_quoted_again(cfg, tmp_path):
    """A bounce log's `to=<"=1+2 x"@docomo.ne.jp>` is stored normalised as `=1+2 x@docomo.ne.jp`:
    written as it is stored, the key cell was a formula to a spreadsheet and an address no CRM
    holds. The export spells it as RFC 5322 does; ordinary keys stay exactly as stored."""
    odd = ['=1+2 x@docomo.ne.jp', '=hyperlink("http://evil.example/","x")@au.com', 'a@b@au.com']
    plain = ["+81-90@docomo.ne.jp", "taro..yamada.@docomo.ne.jp", "-taro@au.com"]
    rows = [e for a in odd + plain for e in (event(a, at(10)), event(a, at(12)))]
    rows += [filtered('hana (home)@docomo.ne.jp', 20)]
    store_events(cfg, rows)
    run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, "2026-11-30", tz=cfg.timezone_name)
    out = tmp_path / "s.csv"
    invoke(cfg.data_dir, "export", out)
    keys = sorted(r["address"] for r in csv.DictReader(io.StringIO(out.read_text())))
    assert keys == sorted(['"=1+2 x"@docomo.ne.jp', '"=hyperlink(\\"http://evil.example/\\",\\"x\\")"@au.com',
                           '"a@b"@au.com', *plain])
    invoke(cfg.data_dir, "export", "--filtered", out, "--days", "30")
    assert [r["address"] for r in csv.DictReader(io.StringIO(out.read_text()))] == ['"hana (home)"@docomo.ne.jp']
