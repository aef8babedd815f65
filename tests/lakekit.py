"""Helpers of the lake tests: the `.[spark]` extra and Java, a moto S3 server on loopback, and
ingest through the real CLI. Missing pieces skip a test (or a whole module) on a developer
machine, loudly; where they must run (MAILHYGIENE_REQUIRE_SPARK=1, which .ci/run sets after
installing Java 17 and the extra, or CI=true) they fail it instead, so these tests never silently
stop running."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


REQUIRE_SPARK_ENV = "MAILHYGIENE_REQUIRE_SPARK"


def _missing(why: str):
    if os.environ.get(REQUIRE_SPARK_ENV, "").strip() == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why} (.ci/run installs it: the lake tests must not skip there)", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {why}", allow_module_level=True)


def require_extra(*modules: str) -> None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        _missing(f"{', '.join(absent)} not installed: pip install -e '.[spark]'")


def require_spark() -> None:
    require_extra("pyspark", "sqlglot")
    from pipeline.lake.spark import spark_missing

    why = spark_missing()
    if why:
        _missing(why)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server (a child process on 127.0.0.1, free port), its credentials in the
    environment for the whole session (Spark's Python workers inherit them)."""
    require_extra("moto", "boto3", "flask")
    from pipeline.lake.testing import MotoS3Server
    from pipeline.sender.testing import free_port

    saved = {k: os.environ.get(k) for k in MotoS3Server.credentials}
    server = MotoS3Server(free_port()).start()
    os.environ.update(MotoS3Server.credentials)
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def bucket(s3_server, request):
    """A fresh bucket per test (name from the test's name)."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + os.urandom(3).hex()
    s3_server.create_bucket(name)
    return name


def ingest(data_dir, *paths, extra_args=()):
    """`mailhygiene ingest` through the CLI, as a node's cron would run it."""
    args = ["--data-dir", str(data_dir), "--timezone", "Asia/Tokyo", *extra_args,
            "ingest", "--year", "2026", *[str(p) for p in paths]]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def used_params(sql: str) -> set[str]:
    """The $parameters a SQL text uses (comments left out)."""
    body = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", body))


def ported_queries() -> list[str]:
    """Every file of sql/ that is one query (macros.sql and the list's DuckDB script
    suppression_list.sql are not), but events.sql: DuckDB's `events` over `stored_events`, whose
    Python functions Spark has not; Spark's `events` is made by pipeline.lake.spark.canonical_events
    (tests/test_bounce_binding.py, tests/test_idn_addresses.py)."""
    from pipeline.lake.port import is_query
    from pipeline.store.warehouse import sql_dir

    return sorted(p.stem for p in sql_dir().glob("*.sql")
                  if is_query(p.read_text(encoding="utf-8")) and p.stem != "events")
