"""The event store and how it is read.

  records      the event schema (EVENT_SCHEMA), stable event ids, address normalisation
  event_store  <data_dir>/events/date=YYYY-MM-DD/*.parquet: the only Parquet writer of events
  arrow_build  Arrow arrays built straight from buffers (no pandas on the ingest path)
  prune        delete whole day partitions older than a date (`mailhygiene prune`), outside the rule window
  warehouse    DuckDB over the data dir: the `events` and `suppression` views, sql/ files with $params
"""
