"""Arrow arrays and scalars from numpy arrays and Python values, built from buffers.

pa.array() and pa.scalar() ask, on first use in a process, whether pandas is installed and import
it to check whether a value is a pandas object: a quarter of a second before the first batch of an
ingest. Ingest builds its arrays here instead, so `mailhygiene ingest` never imports pandas
(tests/test_ingest.py checks that).

Used by pipeline.ingest.engine (EventBuffer), pipeline.ingest.parsers.postfix_block and pipeline.store.event_store.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from . import arrow_compute as pc


def _validity(valid: np.ndarray | None):
    if valid is None or bool(valid.all()):
        return None
    return pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))


_NUMPY = {pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64}


def numbers(values: np.ndarray, type: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A fixed-width array (integers; timestamps from int64) of a numpy array, null where not `valid`."""
    values = np.ascontiguousarray(values, dtype=np.int64 if pa.types.is_timestamp(type) else _NUMPY[type])
    return pa.Array.from_buffers(type, len(values), [_validity(valid), pa.py_buffer(values)])


def indices(values: np.ndarray) -> pa.Array:
    """Row numbers for take()."""
    return numbers(np.asarray(values, np.int64), pa.int64())


def booleans(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    values = np.asarray(values, bool)
    return pa.Array.from_buffers(pa.bool_(), len(values),
                                 [_validity(valid), pa.py_buffer(np.packbits(values, bitorder="little"))])


def strings(values: Sequence[str | None]) -> pa.StringArray:
    """A string array of Python strings (None is null)."""
    if not isinstance(values, (list, tuple)):
        values = list(values)
    validity = None
    if None in values:      # (most columns have none: no validity pass then)
        validity = _validity(np.fromiter((v is not None for v in values), bool, len(values)))
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    else:
        encoded = [v.encode("utf-8") for v in values]
    n = len(encoded)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.fromiter(map(len, encoded), np.int32, n), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def scatter_strings(n: int, positions: np.ndarray, values: Sequence[str | None]) -> pa.StringArray:
    """n strings, null but at `positions`, which hold `values` (a sparse column, few Python strings)."""
    index = np.full(n, -1, np.int64)
    index[positions] = np.arange(len(positions))
    return pc.take(strings(values), numbers(np.maximum(index, 0), pa.int64(), index >= 0))


def with_rows_replaced(arr: pa.Array | pa.ChunkedArray, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """`arr` with its rows `rows` (increasing) set to `values` (one a row, of its type): the
    values put after the array's own and every row taken once (a take: a few times faster than
    pc.replace_with_mask with a mask of the whole column)."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    n = len(arr)
    at = np.arange(n, dtype=np.int64)
    at[np.asarray(rows, np.int64)] = n + np.arange(len(rows), dtype=np.int64)
    return pc.take(pa.concat_arrays([*chunks, pc.cast(values, arr.type)]), indices(at))


def optional_ints(values: Sequence[int | None], type: pa.DataType) -> pa.Array:
    """An integer array of Python ints and None."""
    valid = np.fromiter((v is not None for v in values), bool, len(values))
    return numbers(np.fromiter((0 if v is None else v for v in values), np.int64, len(values)), type, valid)


def optional_bools(values: Sequence[bool | None]) -> pa.Array:
    valid = np.fromiter((v is not None for v in values), bool, len(values))
    return booleans(np.fromiter((bool(v) for v in values), bool, len(values)), valid)


def repeat(value: str, n: int) -> pa.Array:
    """`value` n times (the bytes repeated, offsets a range: no dictionary to decode)."""
    raw = value.encode("utf-8")
    offsets = np.arange(0, len(raw) * n + 1, len(raw), dtype=np.int32) if raw else np.zeros(n + 1, np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw * n)])


def scalar(value: str | bool | None, type: pa.DataType | None = None) -> pa.Scalar:
    """A scalar argument for pyarrow.compute (a Python value there would go through pa.scalar)."""
    if value is None:
        return pa.nulls(1, type or pa.string())[0]
    if isinstance(value, bool):
        return booleans(np.array([value]))[0]
    return strings([value])[0]


# --- and back: numpy views of Arrow arrays (to_numpy() goes through the same pandas probe) ------
def to_ints(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an integer (or timestamp) array without nulls, as numpy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError("to_ints: the array has nulls")
    width = arr.type.bit_width // 8
    dtype = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[width]
    return np.frombuffer(arr.buffers()[1], dtype, len(arr), arr.offset * width)


def to_bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean array as numpy; null counts as False."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    bits = np.unpackbits(np.frombuffer(arr.buffers()[1], np.uint8), bitorder="little")[arr.offset:arr.offset + n].astype(bool)
    if arr.null_count:
        bits &= np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")[arr.offset:arr.offset + n].astype(bool)
    return bits


def offsets(arr: pa.Array) -> np.ndarray:
    """The n + 1 int32 offsets of a string array (a slice's own: they index the whole buffer it
    shares, arr.buffers()[2]), as a numpy view."""
    return np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, 4 * arr.offset)


def to_objects(arr: pa.Array) -> np.ndarray:
    """A numpy object array of the Python values."""
    out = np.empty(len(arr), object)
    out[:] = arr.to_pylist()
    return out
