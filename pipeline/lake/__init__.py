"""The event lake: many MTA nodes write one object store (or shared directory); the central
machine reads every node, on DuckDB or on Apache Spark (docs/scale-out.md).

  url      `[store] url` -> LakeLocation: pyarrow filesystem, root, object keys
           (<root>/events/node=<node>/date=YYYY-MM-DD/<file>.parquet)
  objects  create-only writes (S3 If-None-Match through botocore; link() on a directory)
  upload   a node uploads its sealed local event files (ledger; local compaction handled)
  compact  merges a node's objects of closed days into one (create-only, then delete)
  node     the hooks of ingest, clean and watch: upload after a commit, nightly compaction
  read     the object listing, a pyarrow dataset, the DuckDB `events` view (each event once)
  port     sql/*.sql (DuckDB dialect) -> Spark SQL with sqlglot: $params bound as literals,
           DuckDB macros of sql/macros.sql expanded
  engines  one interface over both engines: run a named sql/ query, keep a query's rows as a
           table for later queries (the rule's counted_errors), register a table
  spark    a SparkSession from [spark] (stopped at exit, errors-only logging from
           data/log4j2.properties), the events (local store, directory or s3://) as a view,
           checkpoint() for rows computed once
  spark_source  the Python data source `mailhygiene_lake` (executors read s3:// with pyarrow)
  testing  a moto S3 server on loopback for tests

Dependencies: core, store (records, event_store, warehouse). Optional: boto3 (uploads to s3://,
the `.[s3]` extra), pyspark and sqlglot (the `.[spark]` extra). Used by the CLI, jobs.clean,
the ingest engine (after a commit), suppression (the engine of the rule) and pipeline.connect().
"""
