"""Apache Spark for the rule and the reports: the session, and the events as the view `events`.

Reads `[spark]` settings and the events (a local data dir, a lake directory, or an s3:// lake);
writes nothing. Needs the `.[spark]` extra (pyspark) and Java 17 (Debian:
openjdk-17-jre-headless); without either, SparkUnavailable says what to install.

Where the events come from:
- a local data dir or a lake directory: Spark's own Parquet reader (partition folders `date=`
  and `node=` read as strings);
- an s3:// lake: Spark's S3A reader when hadoop-aws is on the classpath (managed Spark,
  or `spark.jars.packages`), else the Python data source `mailhygiene_lake`
  (lake.spark_source), which reads the objects listed by the driver on the executors with
  pyarrow's S3FileSystem: no jar to download.
A lake's `events` view is the port of lake.read.DEDUPED_EVENTS_SQL (each event once, the same
row as DuckDB keeps), over `lake_repeated` (REPEATED_IDS_SQL, computed once per session).
canonical_events() then reads every recipient in canonical form (as sql/events.sql in DuckDB).
Over `events`, register_attempt_views() makes the ports of the views warehouse makes in DuckDB
(`not_attempts`, kept once, `witnessed_events`, `attempts`: each delivery attempt once). The session runs in UTC (the port binds times in UTC). checkpoint(df)
keeps rows computed once for the steps that read them (lake.engines).

Called by lake.engines.SparkEngine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow as pa

from ..core.config import SparkSettings
from ..core.errors import LakeError
from ..store.event_store import EventStore
from ..store.records import EVENT_SCHEMA
from .read import DEDUPED_EVENTS_SQL, LAKE_SCHEMA, REPEATED_IDS_SQL, ddl, list_objects
from .url import LakeLocation


class SparkUnavailable(LakeError):
    """pyspark or Java is missing."""


def spark_missing() -> str | None:
    """Why Spark cannot run here (None when it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'mailhygiene[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and not shutil.which("java"):
        return "Java is not installed: Spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
    return None


def session(settings: SparkSettings | None = None, app_name: str = "mailhygiene"):
    """A SparkSession (created once per process; its master is fixed from then on)."""
    why = spark_missing()
    if why:
        raise SparkUnavailable(f"cannot use the Spark engine: {why}")
    settings = settings or SparkSettings()
    import warnings

    # pyspark's notice that it "does not yet fully support pandas >= 3": the engine hands
    # Arrow tables to and from Spark, never pandas frames
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    # executors run the Python of this process (the lake data source imports pipeline)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(settings.master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
               .config("spark.driver.memory", settings.driver_memory)
               .config("spark.ui.enabled", "false")
               # no tables are ever saved: keep Spark's empty spark-warehouse/ out of the
               # operator's working directory
               .config("spark.sql.warehouse.dir", os.path.join(tempfile.gettempdir(), f"mailhygiene-spark-{os.getuid()}"))
               .config("spark.ui.showConsoleProgress", "false")
               # folder values (date=2026-11-20) stay strings, as in DuckDB's views
               .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               # plans are printed for the listeners at every step: a long one cost seconds and
               # once exhausted the driver's heap in the thread that sends rows to Python
               # (which then waits forever); a bounded string is enough for any log
               .config("spark.sql.maxPlanStringLength", "100000")
               # errors only (pipeline/lake/data/log4j2.properties): no start-up chatter on stderr
               .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}")
               .config("spark.executor.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up failures: say it in one line
        raise SparkUnavailable(f"Spark did not start ({settings.master}): {str(exc).splitlines()[0][:300]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    global _STOP_REGISTERED
    if not _STOP_REGISTERED:
        atexit.register(stop_session, spark)
        _STOP_REGISTERED = True
    return spark


_STOP_REGISTERED = False
LOG4J_CONFIG = Path(__file__).resolve().parent / "data" / "log4j2.properties"
STOP_TIMEOUT_S = 30.0


def stop_session(spark) -> None:
    """Stop Spark and wait (bounded) for its JVM to end, so that it ends with this process and
    is accounted to it (pyspark alone lets the JVM notice the closed pipe after Python has
    gone). Registered at exit by session(); never raises."""
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 (a JVM already gone: nothing to stop)
        pass
    if proc is None:
        return
    try:
        if proc.stdin is not None:
            proc.stdin.close()  # the gateway's exit signal
        proc.wait(timeout=STOP_TIMEOUT_S)
    except Exception:  # noqa: BLE001 (a JVM that does not end in time is killed)
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


LOCAL_SCHEMA = EVENT_SCHEMA.append(pa.field("date", pa.string()))


def register_local_events(spark, data_dir: str | os.PathLike) -> None:
    """`events` over a local data dir (the single-machine store), as warehouse's view."""
    store = EventStore(data_dir)
    if store.is_empty():
        _events_view(spark.createDataFrame([], ddl(LOCAL_SCHEMA)))
        return
    df = spark.read.schema(ddl(LOCAL_SCHEMA)).option("basePath", str(store.root)).parquet(str(store.root))
    _events_view(df)


def canonical_events(spark) -> None:
    """`events` with every recipient in canonical form, as DuckDB's view (sql/events.sql): rows an
    older version stored with an IDN domain in Unicode (`taro@例え.jp`) read as `taro@xn--r8jz45g.jp`,
    the address today's rows have. Spark hands a Python function every row of the plan it is in,
    whatever a CASE around it says, so the rows whose recipient is ASCII (all but a few) are read
    apart from the others and only those others go through Python."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    from ..core.idn import ascii_address, readable_ascii_domain

    address = F.udf(lambda a: None if a is None else ascii_address(a), StringType())
    domain = F.udf(lambda d: None if d is None else readable_ascii_domain(d), StringType())
    events = spark.table("events")
    plain = F.expr("coalesce(octet_length(recipient) = char_length(recipient), true) AND "
                   "coalesce(octet_length(recipient_domain) = char_length(recipient_domain), true)")
    other = (events.where(~plain).withColumn("recipient", address("recipient"))
             .withColumn("recipient_domain", domain("recipient_domain")))
    events.where(plain).unionByName(other).createOrReplaceTempView("events")


def register_lake_events(spark, lake: LakeLocation) -> list:
    """`lake_events` (every object), `lake_repeated` (the ids with copies, computed once) and
    `events` (each event once) over a lake. Returns the DataFrames of rows kept (checkpoints)
    for the caller to release."""
    from .port import port

    objects = list_objects(lake)
    kept = []
    if not objects:
        spark.createDataFrame([], ddl(LAKE_SCHEMA)).createOrReplaceTempView("lake_events")
    elif lake.scheme == "file":
        (spark.read.schema(ddl(LAKE_SCHEMA)).option("basePath", lake.events_root)
         .parquet(*[o.path for o in objects]).createOrReplaceTempView("lake_events"))
    elif _has_s3a(spark):
        _configure_s3a(spark, lake)
        base = f"s3a://{lake.bucket}/{lake.prefix}/events".replace("//events", "/events")
        (spark.read.schema(ddl(LAKE_SCHEMA)).option("basePath", base)
         .parquet(*[f"s3a://{o.path}" for o in objects]).createOrReplaceTempView("lake_events"))
    else:
        from pyspark import StorageLevel

        from .spark_source import register_source

        register_source(spark)
        # This source has no column pruning, and every query reads the events several times:
        # the objects are read once, each event kept once (a checkpoint: later plans scan it),
        # and the raw rows let go (`lake_events` reads the objects again if asked).
        source = (spark.read.format("mailhygiene_lake").schema(ddl(LAKE_SCHEMA))
                  .option("lake", _json(lake.filesystem_options()))
                  .option("objects", _json([[o.path, o.node, o.day, o.size] for o in objects])).load())
        source.persist(StorageLevel.MEMORY_AND_DISK).createOrReplaceTempView("lake_events")
        try:
            repeated = checkpoint(spark.sql(port(REPEATED_IDS_SQL)))
            _small_table_view(repeated, "lake_repeated")
            events = checkpoint(spark.sql(port(DEDUPED_EVENTS_SQL)))
        finally:
            source.unpersist()
        _events_view(events)
        return [repeated, events]
    repeated = checkpoint(spark.sql(port(REPEATED_IDS_SQL)))  # the one aggregation over every row
    _small_table_view(repeated, "lake_repeated")
    _events_view(spark.sql(port(DEDUPED_EVENTS_SQL)))
    return [repeated]


def register_attempt_views(spark, marks: str = "not_attempts"):
    """`not_attempts`, `witnessed_events` and `attempts` over the session's `events`: the ports of
    the same sql/ files as DuckDB's views (store.warehouse.ATTEMPT_VIEWS), each reading the one
    before. The marks (`not_attempts`: few rows, the rows of sql/<marks>.sql: sql/not_attempts.sql,
    or sql/bound_marks.sql, which reads the marks so far and the kept `bounce_mails`) are computed
    once and kept, as the lake's repeated ids are; returns their DataFrame for the caller to
    release (the marks it replaces are the caller's to release, after this)."""
    from ..store.warehouse import ATTEMPT_VIEWS, read_sql
    from .port import port

    kept = checkpoint(spark.sql(port(read_sql(marks), {}, macros=read_sql("macros"))))
    _small_table_view(kept, "not_attempts")
    for name in ATTEMPT_VIEWS:
        if name != "not_attempts":
            spark.sql(port(read_sql(name), {}, macros=read_sql("macros"))).createOrReplaceTempView(name)
    return kept


def _events_view(df) -> None:
    """`df` as `events`, and as `stored_events`: what events_up_to narrows (a view made from a
    plan that reads a view of its own name would be a cycle to Spark)."""
    df.createOrReplaceTempView("stored_events")
    df.createOrReplaceTempView("events")


def events_up_to(spark, as_of) -> None:
    """`events` holds only the rows up to `as_of` (an aware datetime) from now on, as
    store.warehouse.events_up_to does in DuckDB: narrowed from `stored_events` (every row as
    registered), so a second call narrows from those again, and read in canonical form again
    (canonical_events). The attempt views are the caller's to make again (SparkEngine.events_up_to)."""
    from pyspark.sql.functions import col, lit

    spark.table("stored_events").where(col("ts") <= lit(as_of)).createOrReplaceTempView("events")
    canonical_events(spark)


# A checkpoint has no size estimate Spark's planner trusts, so a join with it is a sort-merge
# join that shuffles every event; the repeated ids are usually few (a log shipped twice), and
# then every executor gets a copy instead (a broadcast). Above this many rows, the shuffle.
BROADCAST_MAX_ROWS = 2_000_000


def _small_table_view(df, name: str) -> None:
    from pyspark.sql.functions import broadcast

    (broadcast(df) if df.count() <= BROADCAST_MAX_ROWS else df).createOrReplaceTempView(name)


def checkpoint(df):
    """The rows of `df` computed now and stored on the executors (memory, then disk); the plan
    of whatever reads them is a scan. Not persist(): persist keeps the whole plan under the
    cache, so each later step's plan nests every earlier one (plans of megabytes, seconds of
    planning per step even on 81 events, and once a driver heap exhausted while printing a
    plan, which left the Python side waiting forever for the rows). The price: rows lost with
    an executor are not recomputed, the query fails (run it again)."""
    from pyspark import StorageLevel

    return df.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)


def _json(value) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _has_s3a(spark) -> bool:
    try:
        spark.sparkContext._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
        return True
    except Exception:
        return False


def _configure_s3a(spark, lake: LakeLocation) -> None:
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    if lake.endpoint_url:
        conf.set("fs.s3a.endpoint", lake.endpoint_url)
        conf.set("fs.s3a.path.style.access", "true")
        conf.set("fs.s3a.connection.ssl.enabled", str(lake.endpoint_url.startswith("https")).lower())
    conf.set("fs.s3a.endpoint.region", lake.effective_region)
