"""pipeline.store.parquet_io against pyarrow.parquet, whose import it saves the event store: the
same bytes written, the same tables read, the same errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures import SAMPLES

import pipeline
from pipeline.core.config import load_config
from pipeline.ingest.engine import ingest
from pipeline.store import parquet_io
from pipeline.store.event_store import WRITE_OPTIONS, EventStore
from pipeline.store.records import EVENT_SCHEMA

OPTIONS = WRITE_OPTIONS  # the store's own: zstd per column, dictionaries, statistics


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> pa.Table:
    """The sample logs' events as the store holds them (UTF-8 texts, nulls, every column)."""
    data = tmp_path_factory.mktemp("store")
    cfg = load_config(None, data_dir=data, timezone="Asia/Tokyo")
    ingest(cfg, sorted((SAMPLES / "postfix").iterdir()) + [SAMPLES / "sendmail" / "maillog"], year=2026)
    table = pa.concat_tables(pq.ParquetFile(f).read() for f in EventStore(data).files())
    assert table.num_rows > 50 and table.schema.equals(EVENT_SCHEMA)
    return table


def test_a_written_file_is_the_one_pyarrow_parquet_writes(events, tmp_path):
    for rows in (events, events.slice(0, 1), events.slice(0, 0)):
        parquet_io.write_table(rows, tmp_path / "ours.parquet", **OPTIONS)
        pq.write_table(rows, tmp_path / "theirs.parquet", **OPTIONS)
        assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "theirs.parquet").read_bytes()
        meta = pq.ParquetFile(tmp_path / "ours.parquet").metadata
        if rows.num_rows:  # dictionary, statistics and compression where asked
            column = meta.row_group(0).column(EVENT_SCHEMA.names.index("status"))
            assert column.compression == "UNCOMPRESSED" and column.is_stats_set and column.has_dictionary_page
            column = meta.row_group(0).column(EVENT_SCHEMA.names.index("carrier"))
            assert column.compression == "UNCOMPRESSED" and column.is_stats_set and column.has_dictionary_page
            assert meta.row_group(0).column(EVENT_SCHEMA.names.index("diagnostic")).compression == "ZSTD"
            assert not meta.row_group(0).column(EVENT_SCHEMA.names.index("event_id")).is_stats_set


def test_a_file_reads_as_pyarrow_parquet_reads_it(events, tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events, path, **OPTIONS)
    for columns in (None, ["event_id"], ["status", "ts"]):
        ours = parquet_io.read_table(path, columns)
        theirs = pq.ParquetFile(path).read(columns=columns)
        assert ours.equals(theirs, check_metadata=True) and ours.schema.equals(theirs.schema, check_metadata=True)
    assert parquet_io.read_table(str(path)).num_rows == events.num_rows  # a str as well as a Path


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "not parquet"])
def test_a_missing_or_damaged_file_raises_what_pyarrow_parquet_raises(events, tmp_path, damage):
    path = tmp_path / "events.parquet"
    if damage != "missing":
        pq.write_table(events, path, **OPTIONS)
        whole = path.read_bytes()
        path.write_bytes({"empty": b"", "truncated": whole[:len(whole) // 2], "not parquet": b"PAR1" + b"x" * 100}[damage])
    with pytest.raises(Exception) as ours:
        parquet_io.read_table(path, ["event_id"])
    with pytest.raises(Exception) as theirs:
        pq.ParquetFile(path).read(columns=["event_id"])
    assert type(ours.value) is type(theirs.value)
    if damage == "missing":
        assert isinstance(ours.value, FileNotFoundError)


def test_the_event_store_does_not_import_pyarrow_parquet(tmp_path):
    # pyarrow.parquet imports pyarrow.fs (S3, GCS, Azure) and OpenSSL: ~15 ms of each small ingest
    code = ("import sys\nfrom pipeline.cli import cli\n"
            "for _ in range(2):\n"
            "    cli.main(sys.argv[1:], prog_name='mailhygiene', standalone_mode=False)\n"
            "print(sorted(m for m in ('pyarrow.parquet', 'pyarrow.fs', 'ssl') if m in sys.modules))\n")
    args = ["--data-dir", str(tmp_path / "data"), "--timezone", "Asia/Tokyo", "ingest", "--reread", "--no-progress",
            str(SAMPLES / "postfix" / "mail.log")]
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1]), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "already stored" in r.stdout  # the second run read the ids the first stored
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
    assert pipeline.connect(tmp_path / "data").sql("SELECT count(*) FROM events").fetchall()[0][0] > 20
    assert json.loads((tmp_path / "data" / "state" / "ingest-state.json").read_text())["positions"]


class _OtherPyarrow:
    """A pyarrow whose private Cython classes take other arguments than today's."""

    class ParquetWriter:
        def __init__(self, *args, **kwargs):
            raise TypeError("__init__() got an unexpected keyword argument 'writer_engine_version'")

    class ParquetReader:
        def open(self, *args, **kwargs):
            raise TypeError("open() got an unexpected keyword argument 'pre_buffer'")


@pytest.mark.parametrize("private", [_OtherPyarrow, None])
def test_another_pyarrows_private_classes_fall_back_to_pyarrow_parquet(events, tmp_path, monkeypatch, private):
    """pyarrow._parquet is private: a pyarrow (>= 15, as pyproject takes) where its arguments
    differ or it is missing writes and reads the same files through pyarrow.parquet."""
    monkeypatch.setattr(parquet_io, "_parquet", private)
    parquet_io.write_table(events, tmp_path / "ours.parquet", **OPTIONS)
    pq.write_table(events, tmp_path / "theirs.parquet", **OPTIONS)
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "theirs.parquet").read_bytes()
    assert parquet_io.read_table(tmp_path / "ours.parquet").equals(events)
    assert parquet_io.read_table(tmp_path / "ours.parquet", ["status"]).column(0).equals(events.column("status"))


def test_the_store_compresses_every_column_whose_values_are_not_a_closed_vocabulary(events, tmp_path):
    """A VERP sender per message is too many values for a dictionary page: Parquet writes those
    strings plain, and they must still be compressed. The classifier's labels, SMTP codes and the
    MTA are a few values a file and are left uncompressed (compressing them only costs time)."""
    import numpy as np

    n = 60_000
    rows = events.take(pa.array(np.arange(n) % events.num_rows))
    rows = rows.set_column(rows.schema.get_field_index("event_id"), "event_id",
                           pa.array([f"{i:020x}" for i in range(n)]))
    rows = rows.set_column(rows.schema.get_field_index("sender"), "sender",
                           pa.array([f"bounce+u{i}=d.example.jp@mail.example.com" for i in range(n)]))
    rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", pa.repeat(events.column("ts")[0], n))
    store = EventStore(tmp_path / "data")
    assert store.write(rows.cast(EVENT_SCHEMA)).total() == n
    (f,) = store.files()
    meta = pq.ParquetFile(f).metadata
    chunks = {meta.row_group(0).column(k).path_in_schema: meta.row_group(0).column(k) for k in range(meta.num_columns)}
    sender = chunks["sender"]
    assert "PLAIN" in sender.encodings                       # the dictionary overflowed
    assert sender.compression == "ZSTD"
    assert sender.total_compressed_size * 3 < sender.total_uncompressed_size
    for name in ("status", "reason", "scope", "carrier", "mta", "hard", "dsn", "reply_code", "smtp_phase"):
        assert chunks[name].compression == "UNCOMPRESSED", name
    for name in ("event_id", "ts", "queue_id", "message_id", "recipient", "recipient_domain", "relay", "host",
                 "diagnostic", "source_file", "source_offset"):
        assert chunks[name].compression == "ZSTD", name
