"""The event store's Parquet files written and read without importing pyarrow.parquet.

`import pyarrow.parquet` imports pyarrow.fs, which loads the S3, GCS and Azure filesystems and
OpenSSL (`import ssl`): ~15 ms of CPU, once per process, that `mailhygiene ingest` of a small log
paid for files it writes and reads on the local disk only (BENCHMARKS.md, "Start-up of a small
ingest"). pyarrow.parquet's write_table() and ParquetFile are Python wrappers of the Cython classes
pyarrow._parquet.ParquetWriter and ParquetReader; the two functions here call those with the
arguments the wrappers pass for a local path. tests/test_parquet_io.py holds them to the wrappers:
the same bytes written, the same table read, the same errors.

pyarrow._parquet is not a public interface: where an installed pyarrow (the project takes >= 15)
has other arguments or lacks the module, each function falls back to pyarrow.parquet, slower to
import but the same file and table.

Used by pipeline.store.event_store (its files); the lake (S3 and other filesystems) uses
pyarrow.parquet itself.
"""

from __future__ import annotations

import os

import pyarrow as pa

try:
    from pyarrow import _parquet
except ImportError:  # a pyarrow without it: pyarrow.parquet below
    _parquet = None


def write_table(table: pa.Table, path: str | os.PathLike, *, compression: str | dict[str, str], use_dictionary: list[str],
                write_statistics: list[str]) -> None:
    """pyarrow.parquet.write_table(table, path, compression=..., use_dictionary=...,
    write_statistics=...), its other arguments left at their defaults."""
    try:
        writer = _parquet.ParquetWriter(
            os.fspath(path), table.schema, compression=compression, use_dictionary=use_dictionary,
            write_statistics=write_statistics,
            # what pyarrow.parquet.ParquetWriter passes where the Cython class's defaults differ
            version="2.6", data_page_version="1.0", writer_engine_version="V2", use_deprecated_int96_timestamps=False)
    except (AttributeError, TypeError):  # another pyarrow's private signature (or no _parquet)
        import pyarrow.parquet as pq

        pq.write_table(table, path, compression=compression, use_dictionary=use_dictionary,
                       write_statistics=write_statistics)
        return
    try:
        writer.write_table(table)
    finally:
        writer.close()


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """pyarrow.parquet.ParquetFile(path).read(columns=columns) of a file of flat columns (the
    event store's): every column, or those named (each must be in the file)."""
    try:
        reader = _parquet.ParquetReader()
        reader.open(os.fspath(path), use_memory_map=False, buffer_size=0, pre_buffer=True)
    except (AttributeError, TypeError):  # another pyarrow's private signature (or no _parquet)
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).read(columns=columns)
    try:
        indices = None if columns is None else [reader.column_name_idx(name) for name in columns]
        return reader.read_all(column_indices=indices, use_threads=True)
    finally:
        reader.close()
