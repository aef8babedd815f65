"""Two MTA nodes, one S3 bucket (moto on loopback), the rule centrally on DuckDB and on Spark.

Node mta01 ingests the rotated Postfix log and the sendmail log; node mta02 the current Postfix
log, the qmail log and the rotated Postfix log once more (a log shipped twice: its events must
count once). Both upload to s3://<bucket>/jp. A third, central config reads the bucket. A single
machine ingests the same logs into one local store. The rule (and every other sql/ query) must
return the same rows, every column, on DuckDB and on Spark local[2], and the rule the same as the
single machine: the eight addresses sample_logs/README.md says the samples suppress.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from fixtures import SAMPLES, make_config
from lakekit import ingest, ported_queries, require_extra, require_spark

require_extra("sqlglot", "pyspark")

# Spark starts once per test session (its JVM, then the lake read once): about 2 minutes with
# every query of sql/ on both engines; `make test` runs it, `make test-fast` leaves it out
pytestmark = pytest.mark.slow

from pipeline.lake.engines import DuckDBEngine, SparkEngine, normalise  # noqa: E402
from pipeline.lake.upload import upload_sealed  # noqa: E402
from pipeline.cli import cli  # noqa: E402
from pipeline.store.warehouse import read_sql  # noqa: E402
from pipeline.suppression.store import CURRENT_SCHEMA, HISTORY_SCHEMA  # noqa: E402

ROTATED = SAMPLES / "postfix" / "mail.log.1.gz"
CURRENT = SAMPLES / "postfix" / "mail.log"
SENDMAIL = SAMPLES / "sendmail" / "maillog"
QMAIL = SAMPLES / "qmail" / "current"
AS_OF = datetime(2026, 11, 30, 14, 59, 59, 999999, tzinfo=timezone.utc)  # end of 30 Nov in Tokyo
README_SUPPRESSED = {"taro.dead@docomo.ne.jp", "taro..yamada.@docomo.ne.jp", "jiro.old@au.com",
                     "full@docomo.ne.jp", "a@nohost.example.jp", "kenji.gone@ezweb.ne.jp",
                     "saburo@i.softbank.jp", "late@au.com"}


def _toml(url, endpoint, data_dir, node=None):
    lines = ['timezone = "Asia/Tokyo"', f'data_dir = "{data_dir}"', "[store]", f'url = "{url}"',
             f'endpoint_url = "{endpoint}"']
    if node:
        lines.append(f'node = "{node}"')
    lines += ["[spark]", 'master = "local[2]"', "shuffle_partitions = 4"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def setup(s3_server, tmp_path_factory):
    require_spark()
    root = tmp_path_factory.mktemp("lake-engines")
    s3_server.create_bucket("mail-lake")
    url = "s3://mail-lake/jp"
    configs = {}
    for node, logs in (("mta01", [ROTATED, SENDMAIL]), ("mta02", [CURRENT, QMAIL, ROTATED])):
        (root / node).mkdir()
        cfg = make_config(root / node, _toml(url, s3_server.endpoint_url, root / node / "data", node),
                          data_dir=root / node / "data")
        ingest(cfg.data_dir, *logs, extra_args=("--config", str(cfg.source)))  # uploads after the run
        configs[node] = cfg
    (root / "central").mkdir()
    central = make_config(root / "central", _toml(url, s3_server.endpoint_url, root / "central" / "data"),
                          data_dir=root / "central" / "data")
    single = make_config(root, f'timezone = "Asia/Tokyo"\ndata_dir = "{root / "single"}"\n', data_dir=root / "single")
    ingest(single.data_dir, ROTATED, CURRENT, SENDMAIL, QMAIL)
    engines = {"duckdb": DuckDBEngine.open(central), "spark": SparkEngine.open(central),
               "single": DuckDBEngine.open(single)}
    # the list's history: one address added and released again (its later errors count)
    at = datetime(2026, 11, 21, 3, tzinfo=timezone.utc)
    history = pa.Table.from_pylist([
        {"at": at, "action": "added", "address": "x@docomo.ne.jp", "source": "rule", "rule": "r"},
        {"at": at, "action": "released", "address": "x@docomo.ne.jp", "source": "manual", "note": "asked"},
    ], schema=HISTORY_SCHEMA)
    for e in engines.values():
        e.register("suppression_history", history)
        e.register("suppression", CURRENT_SCHEMA.empty_table())
        e.keep("bounce_mails", rule_params(central), table="bounce_mails")  # the rule's first steps
        e.keep("counted_errors", rule_params(central), table="counted_errors")
    # what the guard reads besides the events: the rule's new entries (here: all it marks) and
    # the periods it flagged (one carrier-day, one carrier-hour), the same table on every engine
    new_entries = engines["duckdb"].query("suppression_candidates", rule_params(central))
    flagged = pa.table({"kind": ["day", "hour"], "carrier": ["docomo", "au"],
                        "period_start": pa.array([datetime(2026, 11, 10), datetime(2026, 11, 14, 10)], pa.timestamp("us")),
                        "period_end": pa.array([datetime(2026, 11, 11), datetime(2026, 11, 14, 11)], pa.timestamp("us"))})
    for e in engines.values():
        e.register("new_entries", new_entries)
        e.register("flagged_periods", flagged)
    yield {"engines": engines, "central": central, "single": single, "nodes": configs}
    for e in engines.values():
        e.close()


def rule_params(cfg):
    """The rule's parameters as the product passes them (one definition: a parameter the SQL
    gains reaches these tests too)."""
    from pipeline.suppression.rule import rule_params as params

    return params(cfg.rule, cfg.timezone_name, AS_OF)


def rows(table, *, drop_zone=False):
    return normalise(table, drop_zone=drop_zone).to_pylist()


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """True when equal; else fails naming the first differing row and its differing columns."""
    assert len(a) == len(b), f"{len(a)} rows vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        diff = {k: (x.get(k), y.get(k)) for k in {*x, *y} if x.get(k) != y.get(k)}
        assert not diff, f"row {i} ({x.get('address') or ''}) differs: {diff}"
    return True


def test_the_lake_holds_both_nodes_and_counts_the_twice_shipped_log_once(setup):
    duck = setup["engines"]["duckdb"]
    per_node = dict(duck.con.execute("SELECT node, count(*) FROM lake_events GROUP BY node").fetchall())
    assert set(per_node) == {"mta01", "mta02"}
    total, unique = duck.con.execute("SELECT count(*), count(DISTINCT (date, event_id)) FROM lake_events").fetchone()
    assert total > unique  # the rotated log's events are in the lake twice ...
    single = setup["engines"]["single"].con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert duck.con.execute("SELECT count(*) FROM events").fetchone()[0] == unique == single  # ... and count once
    spark = setup["engines"]["spark"]
    assert spark.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [single]


def test_central_rule_is_the_same_on_duckdb_spark_and_a_single_machine(setup):
    params = rule_params(setup["central"])
    results = {name: rows(e.query("suppression_candidates", params)) for name, e in setup["engines"].items()}
    assert {r["address"] for r in results["single"]} == README_SUPPRESSED
    assert same_rows(results["duckdb"], results["single"])  # every column, in order
    assert same_rows(results["spark"], results["duckdb"])
    # the rule needed both nodes: taro.dead's errors are in mta01's and mta02's logs
    taro = next(r for r in results["spark"] if r["address"] == "taro.dead@docomo.ne.jp")
    assert taro["error_count"] == 2 and taro["distinct_days"] == 2


def test_guard_queries_are_the_same_on_both_engines_and_a_single_machine(setup):
    engines = setup["engines"]
    for name in ("guard_bursts", "active_addresses"):
        p = query_params(name, setup["central"])
        duck = rows(engines["duckdb"].query(name, p), drop_zone=True)  # period_start: a local time
        assert [r for r in duck if r.get("kind") != "summary"], f"{name} found nothing: the comparison would prove nothing"
        assert same_rows(rows(engines["spark"].query(name, p), drop_zone=True), duck)
        assert same_rows(rows(engines["single"].query(name, p), drop_zone=True), duck)


QUERIES = ported_queries()
# the rows that are no attempt of their own: in logs of direct sending (no bounce mails) only the
# null-sender ones (a DSN the MTA sent: sql/not_attempts.sql)
ONLY_NULL_SENDER_IN_DIRECT_MODE = {"not_attempts"}
# no bounce mail in these logs (the binding on both engines: tests/test_bounce_binding.py)
NO_ROWS_IN_DIRECT_MODE = {"bounce_mails"}
INSTANT_BOUNDS = {"active_addresses", "error_addresses", "guard_bursts", "guard_replies", "filtered_addresses"}


def query_params(name, cfg):
    p = {**rule_params(cfg), "block_rate": 0.3, "block_min_errors": 1, "grain": "day", "limit": 50,
         "edge_minutes": 5, "hour_min_errors": 1, "hour_rate": 0.3, "recent_hours": 48.0, "recent_rate": 0.01,
         "address": "taro.dead@docomo.ne.jp", "carriers": ["docomo", "au", "softbank", "ymobile", "rakuten", "other"]}
    if name in INSTANT_BOUNDS:
        p.update(since=datetime(2026, 11, 1, tzinfo=timezone.utc), until=datetime(2026, 11, 30, 15, tzinfo=timezone.utc))
    else:
        p.update(since=date(2026, 11, 1), until=date(2026, 11, 30))
    return p


@pytest.mark.parametrize("name", QUERIES)
def test_every_sql_query_returns_the_same_rows_on_both_engines(setup, name):
    from lakekit import used_params

    engines = setup["engines"]
    wanted = used_params(read_sql(name))
    params = {k: v for k, v in query_params(name, setup["central"]).items() if k in wanted}
    duck = rows(engines["duckdb"].query(name, params), drop_zone=True)
    spark = rows(engines["spark"].query(name, params), drop_zone=True)
    if name in ONLY_NULL_SENDER_IN_DIRECT_MODE:  # (the others: on a relay-mode store, tests/test_report_witnesses.py)
        assert {r["not_attempt"] for r in duck} == {"null_sender"}
    assert duck or name in NO_ROWS_IN_DIRECT_MODE, f"{name} returned no rows on these events: the comparison would prove nothing"
    key = repr
    assert sorted(spark, key=key) == sorted(duck, key=key)


# --------------------------------------------------------------------------- the commands
def run_cli(*args):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_nodes_uploaded_by_themselves_and_a_retry_uploads_nothing(setup):
    import json

    for node, cfg in setup["nodes"].items():
        assert upload_sealed(cfg).uploaded == 0  # `ingest` uploaded every sealed file already
    status = json.loads(run_cli("--config", setup["central"].source, "lake", "status", "--json"))
    assert set(status["nodes"]) == {"mta01", "mta02"}
    assert all(n["objects"] > 0 for n in status["nodes"].values())


def test_suppress_dry_run_json_is_the_same_on_both_engines_and_a_single_machine(setup):
    import json

    central, single = setup["central"], setup["single"]
    runs = {engine: json.loads(run_cli("--config", central.source, "suppress", "--dry-run", "--check-guard",
                                       "--json", "--as-of", "2026-11-30", "--engine", engine))
            for engine in ("duckdb", "spark")}
    alone = json.loads(run_cli("--config", single.source, "suppress", "--dry-run", "--check-guard", "--json",
                               "--as-of", "2026-11-30"))
    assert {r["address"] for r in alone["new"]} == README_SUPPRESSED
    assert runs["spark"]["engine"] == "spark" and runs["duckdb"]["engine"] == "duckdb"
    assert runs["spark"]["new"] == runs["duckdb"]["new"] == alone["new"]  # every field of every entry
    assert runs["spark"]["marked"] == runs["duckdb"]["marked"] == alone["marked"] == 8
    # the guard's verdict (its queries on Spark, where the rule kept counted_errors) is the same
    assert alone["guard"]["checked"] is True
    assert runs["spark"]["guard"] == runs["duckdb"]["guard"] == alone["guard"]


def test_central_suppress_on_spark_writes_the_list_and_reads_every_node(setup, tmp_path):
    """Done when: three configs on one bucket, ingest on two, the same list centrally on either
    engine. A second central config (its own data dir, the same bucket) applies on DuckDB."""
    import json

    import pipeline

    central = setup["central"]
    on_duckdb = make_config(tmp_path, central.source.read_text(encoding="utf-8").replace(
        str(central.data_dir), str(tmp_path / "central-duckdb")), data_dir=tmp_path / "central-duckdb")
    out = run_cli("--config", central.source, "suppress", "--as-of", "2026-11-30", "--engine", "spark", "--force")
    assert "new entries:      8  [applied]" in out
    run_cli("--config", on_duckdb.source, "suppress", "--as-of", "2026-11-30", "--engine", "duckdb", "--force")
    lists = {}
    for name, cfg in (("spark", central), ("duckdb", on_duckdb)):
        doc = json.loads(run_cli("--config", cfg.source, "suppression", "list", "--json"))
        lists[name] = [{k: v for k, v in e.items() if k != "added_at"} for e in doc["entries"]]
    assert {e["address"] for e in lists["spark"]} == README_SUPPRESSED
    assert lists["spark"] == lists["duckdb"]  # every field but the time of the run
    # pipeline.connect() on the central config: every node's events, each once, with `node`
    con = pipeline.connect(config=central)
    nodes = {n for (n,) in con.execute("SELECT DISTINCT node FROM events").fetchall()}
    single = setup["engines"]["single"].con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert nodes == {"mta01", "mta02"}
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == single
