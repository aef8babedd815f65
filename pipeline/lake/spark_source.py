"""A Spark Python data source, `mailhygiene_lake`: the lake's objects read on the executors
with pyarrow's filesystem (S3FileSystem for s3://), as Arrow batches.

Reads the objects the driver listed (option `objects`: [[path, node, day, size], ...]) with the
filesystem described by option `lake` (LakeLocation.filesystem_options(): no secrets; each
executor takes AWS credentials from its own environment or instance role); writes nothing.
Objects are grouped into partitions of about PARTITION_BYTES. Each batch gets the `node` and
`date` folder values and the lake schema (dictionary columns decoded, missing columns null).

Why: Spark's own S3 reader (S3A) needs the hadoop-aws jar, which a plain `pip install pyspark`
lacks; managed Spark has it and lake.spark prefers it there. Registered by lake.spark.
"""

from __future__ import annotations

import json

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

PARTITION_BYTES = 128 << 20
BATCH_ROWS = 65_536


class LakePartition(InputPartition):
    def __init__(self, objects: list):
        super().__init__(objects)
        self.objects = objects


class LakeDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "mailhygiene_lake"

    def schema(self):
        from .read import LAKE_SCHEMA, ddl

        return ddl(LAKE_SCHEMA)

    def reader(self, schema):
        return LakeReader(self.options)


class LakeReader(DataSourceReader):
    def __init__(self, options):
        self.lake = json.loads(options["lake"])
        self.objects = json.loads(options["objects"])

    def partitions(self):
        parts, current, size = [], [], 0
        for obj in self.objects:
            current.append(obj)
            size += int(obj[3])
            if size >= PARTITION_BYTES:
                parts.append(LakePartition(current))
                current, size = [], 0
        if current or not parts:
            parts.append(LakePartition(current))
        return parts

    def read(self, partition):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .read import LAKE_SCHEMA
        from .url import LakeLocation

        filesystem = LakeLocation(**self.lake).filesystem()
        # Spark checks the batches against its own schema, where every column is nullable
        out_schema = pa.schema([f.with_nullable(True) for f in LAKE_SCHEMA])
        event_fields = [f for f in LAKE_SCHEMA if f.name not in ("node", "date")]
        for path, node, day, _size in partition.objects:
            with filesystem.open_input_file(path) as fh:
                pf = pq.ParquetFile(fh)
                present = set(pf.schema_arrow.names)
                wanted = [f.name for f in event_fields if f.name in present]
                for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                    n = batch.num_rows
                    cols = []
                    for f in event_fields:
                        if f.name in present:
                            col = batch.column(batch.schema.get_field_index(f.name))
                            if pa.types.is_dictionary(col.type):
                                col = col.dictionary_decode()
                            cols.append(col.cast(f.type))
                        else:
                            cols.append(pa.nulls(n, f.type))
                    cols.append(pa.array([node] * n, pa.string()))
                    cols.append(pa.array([day] * n, pa.string()))
                    yield pa.RecordBatch.from_arrays(cols, schema=out_schema)


def register_source(spark) -> None:
    spark.dataSource.register(LakeDataSource)
