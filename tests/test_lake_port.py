"""The Spark port of every sql/ query (pipeline/lake/port.py, sqlglot pinned in `.[spark]`).

Golden files: tests/golden/spark/<name>.sql is the port of sql/<name>.sql with GOLDEN_PARAMS.
A change of a query, of the port or of sqlglot shows here as a diff to read; when it is right,
regenerate with `MAILHYGIENE_UPDATE_GOLDEN=1 pytest tests/test_lake_port.py` and commit the files.
Whether the port returns the same rows as DuckDB is tests/test_lake_engines.py's question.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from lakekit import ported_queries, require_extra, used_params

require_extra("sqlglot")

from pipeline.core.errors import InputError  # noqa: E402
from pipeline.lake.port import port  # noqa: E402
from pipeline.store.warehouse import read_sql  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "spark"
UPDATE = os.environ.get("MAILHYGIENE_UPDATE_GOLDEN") == "1"
# the queries whose $since/$until are instants (the rule's guard); the report files take days
INSTANT_BOUNDS = {"active_addresses", "error_addresses", "guard_bursts", "guard_replies", "filtered_addresses",
                  "carrier_active_addresses", "carrier_error_addresses"}
QUERIES = ported_queries()


def golden_params(name: str) -> dict:
    params = {"tz": "Asia/Tokyo", "as_of": datetime(2026, 11, 30, 14, 59, 59, 999999, tzinfo=timezone.utc),
              "min_errors": 2, "min_days": 2, "window_days": 7,
              "counted_reasons": ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"],
              "block_rate": 0.5, "block_min_errors": 20, "grain": "week", "limit": 20, "edge_minutes": 5,
              "hour_min_errors": 20, "hour_rate": 0.5, "recent_hours": 48.0, "recent_rate": 0.02,
              "address": "taro.dead@docomo.ne.jp", "carriers": ["au", "docomo"],
              "sender_mta": "mailhygiene"}
    if name in INSTANT_BOUNDS:
        params.update(since=datetime(2026, 11, 1, 15, 0, tzinfo=timezone.utc),
                      until=datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc))
    else:
        params.update(since=date(2026, 11, 1), until=date(2026, 11, 30))
    return params


@pytest.mark.parametrize("name", QUERIES)
def test_port_matches_its_golden_file(name):
    sql = read_sql(name)
    params = {k: v for k, v in golden_params(name).items() if k in used_params(sql)}
    ported = port(sql, params, macros=read_sql("macros"))
    golden = GOLDEN / f"{name}.sql"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(ported + "\n", encoding="utf-8")
    assert golden.is_file(), f"no golden port for sql/{name}.sql: run MAILHYGIENE_UPDATE_GOLDEN=1 pytest {__file__}"
    assert ported + "\n" == golden.read_text(encoding="utf-8"), (
        f"the Spark port of sql/{name}.sql changed: diff it against {golden}; if right, regenerate (see the module doc)")


@pytest.mark.parametrize("name", QUERIES)
def test_port_keeps_the_rewrites(name):
    """What every port must show, whatever the query: the rewrites that make it Spark SQL."""
    sql = read_sql(name)
    params = {k: v for k, v in golden_params(name).items() if k in used_params(sql)}
    ported = port(sql, params, macros=read_sql("macros"))
    code = "\n".join(line for line in ported.splitlines() if not line.lstrip().startswith("/*"))
    assert "$" not in code and not re.search(r":[a-z_]+\b", code), "a parameter was left unbound"
    assert not re.search(r"\bTIMEZONE\(|AT TIME ZONE", code), "DuckDB time zone syntax left"
    assert "LISTAGG(DISTINCT" not in code  # Spark's optimizer fails on it beside another DISTINCT
    assert not re.search(r"INTERVAL \(", code), "an interval Spark cannot parse"
    assert "events_in_period(" not in code.lower()
    if "tz" in params:
        assert "FROM_UTC_TIMESTAMP(" in code  # the local calendar day in the configured zone
    if re.search(r"\bstring_agg\(", sql, re.I):
        assert "LISTAGG(" in code or "ARRAY_JOIN(" in code


def test_port_binds_each_kind_of_value():
    out = port("SELECT $s AS s, $n AS n, $f AS f, $b AS b, $l AS l, $t AS t, $d AS d, $none AS x",
               {"s": "it's", "n": 3, "f": 0.5, "b": True, "l": ["a", "b"],
                "t": datetime(2026, 11, 20, 23, 59, tzinfo=timezone.utc), "d": date(2026, 11, 20), "none": None},
               pretty=False)
    assert out == ("SELECT 'it\\'s' AS s, 3 AS n, 0.5 AS f, TRUE AS b, ARRAY('a', 'b') AS l, "
                   "CAST('2026-11-20 23:59:00.000000' AS TIMESTAMP) AS t, CAST('2026-11-20' AS DATE) AS d, NULL AS x")


def test_port_expands_scalar_and_table_macros():
    macros = ("CREATE MACRO counted(status, reason, reasons) AS status IN ('bounced') AND list_contains(reasons, reason);\n"
              "CREATE MACRO recent(since) AS TABLE SELECT * FROM events WHERE ts >= since;")
    out = port("SELECT count(*) FILTER (WHERE counted(e.status, e.reason, $r)) FROM recent($since) AS e",
               {"r": ["user_unknown"], "since": datetime(2026, 11, 1, tzinfo=timezone.utc)}, macros=macros, pretty=False)
    assert "ARRAY_CONTAINS(ARRAY('user_unknown'), e.reason)" in out
    assert "e.status IN ('bounced')" in out
    assert "FROM (SELECT * FROM events WHERE ts >= CAST('2026-11-01 00:00:00.000000' AS TIMESTAMP)) AS e" in out


def test_port_folds_interval_arithmetic_and_rewrites_distinct_string_agg():
    out = port("SELECT string_agg(DISTINCT r, ',' ORDER BY r), sum(n) OVER (ORDER BY d RANGE BETWEEN CURRENT ROW "
               "AND INTERVAL ($w - 1) DAY FOLLOWING) FROM t", {"w": 7}, pretty=False)
    assert "INTERVAL '6' DAY FOLLOWING" in out
    assert ("CASE WHEN SIZE(COLLECT_SET(r)) = 0 THEN NULL ELSE ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(r)), ',') END"
            in out)


def test_a_missing_parameter_or_a_query_that_cannot_port_is_an_error():
    with pytest.raises(InputError, match="needs parameters: as_of"):
        port("SELECT * FROM events WHERE ts <= $as_of", {})
    with pytest.raises(InputError, match="ORDER BY y"):
        port("SELECT string_agg(DISTINCT r, ',' ORDER BY q) FROM t", {})
    with pytest.raises(InputError, match="not a constant"):
        port("SELECT sum(n) OVER (ORDER BY d RANGE BETWEEN CURRENT ROW AND INTERVAL (w - 1) DAY FOLLOWING) FROM t", {})


def test_port_inlines_a_select_alias_used_in_a_window_but_not_a_column_name():
    out = port("SELECT day, regexp_replace(diagnostic, 'x', 'y', 'g') AS reply, "
               "row_number() OVER (PARTITION BY day ORDER BY count(*) DESC, reply) AS rank "
               "FROM t GROUP BY day, reply", {}, pretty=False)
    assert "ORDER BY COUNT(*) DESC, REGEXP_REPLACE(diagnostic, 'x', 'y') NULLS LAST" in out
    kept = port("SELECT coalesce(carrier, 'u') AS carrier, row_number() OVER (ORDER BY carrier) FROM t", {}, pretty=False)
    assert "OVER (ORDER BY carrier NULLS LAST)" in kept  # the column, as DuckDB reads it


def test_port_stages_split_the_named_steps_and_mark_the_reused_ones():
    from pipeline.lake.port import port_stages

    stages, final = port_stages(
        "WITH a AS (SELECT x FROM events WHERE ts <= $t), b AS (SELECT x FROM a), "
        "c AS (SELECT a.x FROM a JOIN b USING (x)) SELECT * FROM c ORDER BY x",
        {"t": datetime(2026, 11, 1, tzinfo=timezone.utc)}, prefix="q1")
    assert [(s.view, s.reuse) for s in stages] == [("q1_a", True), ("q1_b", False), ("q1_c", False)]
    assert stages[0].sql == "SELECT x FROM events WHERE ts <= CAST('2026-11-01 00:00:00.000000' AS TIMESTAMP)"
    assert stages[2].sql == "SELECT a.x FROM q1_a AS a JOIN q1_b AS b USING (x)"
    assert final == "SELECT * FROM q1_c AS c ORDER BY x NULLS LAST"


def test_every_golden_file_belongs_to_a_query():
    stale = sorted(p.stem for p in GOLDEN.glob("*.sql") if p.stem not in QUERIES)
    assert not stale, f"golden ports of queries that are gone: {stale} (delete them)"


def test_port_keeps_list_order_and_nulls_and_exact_epochs():
    out = port("SELECT list(ts ORDER BY ts, event_id) AS l, list(x) AS m, epoch(a) - epoch(b) AS d, "
               "epoch_us(ts) // 900 AS q, to_timestamp(s) AS t FROM t", {}, pretty=False)
    assert ("TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(ts IS NULL AS n0, ts AS k0, event_id IS NULL AS n1, "
            "event_id AS k1, ts AS v))), e -> e.v) AS l") in out
    assert "TRANSFORM(COLLECT_LIST(STRUCT(x AS v)), e -> e.v) AS m" in out
    assert "UNIX_MICROS(a) / 1000000 - UNIX_MICROS(b) / 1000000 AS d" in out
    assert "UNIX_MICROS(ts) DIV 900 AS q" in out
    assert "TIMESTAMP_MICROS(CAST(ROUND(s * 1000000) AS BIGINT)) AS t" in out
    with pytest.raises(InputError, match="ascending"):
        port("SELECT list(x ORDER BY k DESC) FROM t", {})
