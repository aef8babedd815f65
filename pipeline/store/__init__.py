"""The event store and how it is read.

  records      the event schema (EVENT_SCHEMA), stable event ids, address normalisation, the
               canonical address (IDN domains in A-label form) every stored recipient is given
  event_store  <data_dir>/events/date=YYYY-MM-DD/*.parquet: the only Parquet writer of events.
               The sink API (ingest, the sender's own delivery rows, uploads of sealed files):
               EventStore(data_dir).write(table: EVENT_SCHEMA) -> Counter of new rows per status
               (atomic files, dedupe by event_id across the partitions a line can move to);
               .files(day=None) -> sealed Parquet files; .partitions(); .check() -> StoreCorrupt
  layout       where the files are and whether they are whole (no numpy/pyarrow: readers' start-up)
  arrow_build  Arrow arrays built straight from buffers (no pandas on the ingest path)
  prune        delete whole day partitions older than a date (`mailhygiene prune`), outside the rule window
  warehouse    DuckDB over the data dir: the `events` and `suppression` views, sql/ files with $params;
               a damaged store file becomes StoreCorrupt (file named, how to recover), not a traceback
"""
