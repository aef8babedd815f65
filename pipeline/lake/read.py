"""Read every node's events from the lake, each event once.

Reads <root>/events/node=*/date=*/*.parquet through pyarrow's filesystem (S3FileSystem for s3://,
so no DuckDB extension has to be downloaded); writes nothing. The DuckDB view `events` is the
view of pipeline.store.warehouse plus a `node` column, with duplicate event ids removed (a log shipped to two nodes, an object and its compacted copy seen by one listing): of
the copies, the one of the first node (then source file, then offset) is kept, so every engine
keeps the same row. REPEATED_IDS_SQL and DEDUPED_EVENTS_SQL are that one definition; lake.spark
runs their port. A connection reads the lake as listed when it was opened (its file list and its
repeated ids agree); reopen it to see newer objects.

Called by pipeline.connect() / warehouse when `[store] url` is set, by the suppression rule and
the reports on the central machine, and by lake.spark (the object listing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..core.errors import LakeError
from ..store.records import EVENT_SCHEMA
from .url import DATE_PREFIX, EVENTS_DIR, NODE_PREFIX, LakeLocation

LAKE_SCHEMA = EVENT_SCHEMA.append(pa.field("node", pa.string())).append(pa.field("date", pa.string()))
_LAYOUT_RE = re.compile(r"/" + EVENTS_DIR + r"/" + NODE_PREFIX + r"([^/]+)/" + DATE_PREFIX
                        + r"(\d{4}-\d{2}-\d{2})/([^/.][^/]*\.parquet)$")

# The one definition of "each event once" (DuckDB dialect; lake.spark runs its sqlglot port), in
# two steps, by event id across days, as one machine's store keeps it (it checks a line against
# the days it could have gone to under other parse settings): the same line read by two nodes in
# other zones, or with clocks a year apart at New Year, lands on two UTC days, and was counted
# twice when copies were looked for within a day. REPEATED_IDS_SQL: the event ids that occur more than once, computed once
# per connection (or Spark session) into table `lake_repeated`: the one aggregation over every
# row, and small (the copies only). DEDUPED_EVENTS_SQL reads `lake_events` (every object, with the
# node and date folder values) and `lake_repeated`: only the repeated ids go through the ranking
# window; the rest pass by an anti-join against the small table, so each read of `events` keeps
# its column pruning and costs a hash join, not an aggregation (10M events, DuckDB: a filtered
# read 0.4 s instead of 2.4 s, BENCHMARKS.md). The column list is the lake schema's names
# (identifiers, never data).
REPEATED_IDS_SQL = "SELECT event_id FROM lake_events GROUP BY event_id HAVING count(*) > 1"

DEDUPED_EVENTS_SQL = """
WITH copies AS (
    SELECT *,
           row_number() OVER (PARTITION BY event_id
                              ORDER BY node NULLS LAST, source_file NULLS LAST,
                                       source_offset NULLS LAST, date NULLS LAST) AS copy_rank
    FROM lake_events e
    WHERE EXISTS (SELECT 1 FROM lake_repeated r WHERE r.event_id = e.event_id)
)

SELECT {columns} FROM lake_events e
WHERE NOT EXISTS (SELECT 1 FROM lake_repeated r WHERE r.event_id = e.event_id)
UNION ALL
SELECT {columns} FROM copies WHERE copy_rank = 1
""".format(columns=", ".join(LAKE_SCHEMA.names))


def spark_type(t: pa.DataType) -> str:
    """The Spark SQL type of an Arrow type of the event and suppression tables."""
    simple = {pa.string(): "STRING", pa.large_string(): "STRING", pa.int16(): "SMALLINT", pa.int32(): "INT",
              pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE", pa.date32(): "DATE"}
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"ARRAY<{spark_type(t.value_type)}>"
    if t in simple:
        return simple[t]
    raise TypeError(f"no Spark type for {t}")


def ddl(schema: pa.Schema) -> str:
    """A Spark DDL schema string for an Arrow schema (lake.spark, lake.engines)."""
    return ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in schema)


@dataclass(frozen=True)
class LakeObject:
    node: str
    day: str
    path: str      # a path of lake.filesystem()
    size: int


def list_objects(lake: LakeLocation, filesystem=None) -> list[LakeObject]:
    """Every event object under the lake, in (node, day, path) order. Names starting with '.'
    (a shared directory's temp files) and anything outside the layout are ignored."""
    from pyarrow import fs as pafs

    filesystem = filesystem or lake.filesystem()
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(lake.events_root, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise LakeError(f"cannot list the lake {lake.url}: {exc}. Check store.url, store.endpoint_url and "
                        "the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE ...)") from None
    out = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        m = _LAYOUT_RE.search("/" + info.path)
        if m:
            out.append(LakeObject(m.group(1), m.group(2), info.path, int(info.size or 0)))
    return sorted(out, key=lambda o: (o.node, o.day, o.path))


def nodes(lake: LakeLocation) -> list[str]:
    return sorted({o.node for o in list_objects(lake)})


def lake_dataset(lake: LakeLocation, objects: list[LakeObject] | None = None, filesystem=None):
    """A pyarrow dataset of the objects, with `node` and `date` from their folders (strings).

    The schema is the event schema: a file missing a newer column reads it as null.
    """
    import pyarrow.dataset as ds

    filesystem = filesystem or lake.filesystem()
    objects = list_objects(lake, filesystem) if objects is None else objects
    partitioning = ds.partitioning(pa.schema([("node", pa.string()), ("date", pa.string())]), flavor="hive")
    return ds.dataset([o.path for o in objects], schema=LAKE_SCHEMA, format="parquet", filesystem=filesystem,
                      partitioning=partitioning, partition_base_dir=lake.events_root)


def attach_lake_events(con, lake: LakeLocation) -> int:
    """Create the DuckDB view `events` over the lake (each event once); returns the object count."""
    objects = list_objects(lake)
    if not objects:
        con.register("_empty_lake_events", LAKE_SCHEMA.empty_table())
        con.execute("CREATE OR REPLACE VIEW lake_events AS SELECT * FROM _empty_lake_events")
    elif lake.scheme == "file":
        # a shared directory: DuckDB's own parallel Parquet reader over the objects listed (not
        # a glob: the files must stay those lake_repeated was computed from)
        files = ", ".join("'" + o.path.replace("'", "''") + "'" for o in objects)
        con.execute(
            f"CREATE OR REPLACE VIEW lake_events AS SELECT * FROM read_parquet([{files}], hive_partitioning = true, "
            "hive_types = {'node': VARCHAR, 'date': VARCHAR}, union_by_name = true)")
    else:
        con.register("_lake_dataset", lake_dataset(lake, objects))
        con.execute("CREATE OR REPLACE VIEW lake_events AS SELECT * FROM _lake_dataset")
    con.execute(f"CREATE OR REPLACE TEMP TABLE lake_repeated AS {REPEATED_IDS_SQL}")
    con.execute(f"CREATE OR REPLACE VIEW events AS {DEDUPED_EVENTS_SQL}")
    return len(objects)


def connect_lake(lake: LakeLocation, data_dir: str | Path | None = None):
    """A DuckDB connection whose `events` view reads the whole lake; the `suppression` views (and
    the SQL macros) come from the local data dir, as pipeline.connect() makes them."""
    import duckdb

    from ..store.warehouse import attach_views, canonical_events

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if data_dir is not None:
        attach_views(con, Path(data_dir))
    attach_lake_events(con, lake)
    canonical_events(con)  # (attach_views made the local store's; this is the lake's)
    return con


class LakeEventSource:
    """The lake as the `events` of a data dir (store.warehouse.EVENT_SOURCES)."""

    def __init__(self, lake: LakeLocation):
        self.lake = lake

    def attach(self, con) -> None:
        attach_lake_events(con, self.lake)

    def has_events(self) -> bool:
        return bool(list_objects(self.lake))


def use_lake(cfg) -> LakeLocation | None:
    """When `[store] url` is set, every `events` view of cfg.data_dir (pipeline.connect(),
    `suppress`, `report`, `clean`, the exports) reads the whole lake instead of the local store.
    Called once the config is loaded (the CLI, pipeline.connect()); returns the lake or None."""
    from ..store.warehouse import use_event_source
    from .url import lake_of

    lake = lake_of(cfg)
    use_event_source(cfg.data_dir, LakeEventSource(lake) if lake is not None else None)
    return lake
