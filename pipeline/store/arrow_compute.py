"""The Arrow compute functions ingest uses, called without importing pyarrow.compute.

`import pyarrow.compute` builds a Python wrapper, with its docstring and signature, for each of
Arrow's ~290 compute functions: ~26 ms of CPU on top of everything else ingest imports, 2-3 % of
a 1M-line Postfix ingest (BENCHMARKS.md). The functions themselves are in pyarrow._compute, the
Cython module that pyarrow.compute wraps (~6 ms to import, on the first call here: _lib()): call_function()
runs one by its name with its options object, which is all each wrapper does. The functions here
are those wrappers for the arguments ingest passes, with the same names, so a module uses them as
`from pipeline.store import arrow_compute as pc`. An Arrow array's methods that compute (take,
filter, cast, is_valid, dictionary_encode, unique) import pyarrow.compute on first use: the block
readers, the event buffer and the store call the functions here instead.

pyarrow._compute is not a public interface: where an installed pyarrow (the project takes >= 15)
lacks it or the names used here, pyarrow.compute is imported instead, and gives the same results.
tests/test_arrow_compute.py holds each function to pyarrow.compute's, and a whole block-path
ingest to never importing it.

Arguments are Arrow arrays and scalars (ab.scalar()): a Python value would be made a scalar by
pa.scalar(), which imports pandas (see arrow_build).
"""

from __future__ import annotations

_LIB = None


def _lib():
    """pyarrow._compute, imported on first use (~6 ms: an ingest of a small log, read line by
    line, never calls a function here and does not pay for it); where an installed pyarrow lacks
    it or the names used here, pyarrow.compute (slower to import, the same functions)."""
    global _LIB
    if _LIB is None:
        try:
            from pyarrow import _compute as lib

            for name in ("call_function", "CastOptions", "DictionaryEncodeOptions", "ExtractRegexOptions",
                         "FilterOptions", "MatchSubstringOptions", "ReplaceSubstringOptions", "SetLookupOptions",
                         "SliceOptions", "TakeOptions"):
                getattr(lib, name)
        except (ImportError, AttributeError):  # another pyarrow's layout
            import pyarrow.compute as lib
        _LIB = lib
    return _LIB


def take(data, indices, *, boundscheck: bool = True):
    c = _lib()
    return c.call_function("take", [data, indices], c.TakeOptions(boundscheck=boundscheck))


def filter(data, mask, null_selection_behavior: str = "drop"):  # noqa: A001 (pyarrow.compute's name)
    c = _lib()
    return c.call_function("filter", [data, mask], c.FilterOptions(null_selection_behavior))


def cast(arr, target_type):
    """A safe cast (pc.cast's default: an overflow or a bad value raises)."""
    c = _lib()
    return c.call_function("cast", [arr], c.CastOptions.safe(target_type))


def is_valid(values):
    c = _lib()
    return c.call_function("is_valid", [values])


def dictionary_encode(array, null_encoding: str = "mask"):
    c = _lib()
    return c.call_function("dictionary_encode", [array], c.DictionaryEncodeOptions(null_encoding))


def unique(array):
    c = _lib()
    return c.call_function("unique", [array])


def value_counts(array):
    c = _lib()
    return c.call_function("value_counts", [array])


def index_in(values, value_set, *, skip_nulls: bool = False):
    c = _lib()
    return c.call_function("index_in", [values], c.SetLookupOptions(value_set, skip_nulls=skip_nulls))


def is_in(values, value_set, *, skip_nulls: bool = False):
    c = _lib()
    return c.call_function("is_in", [values], c.SetLookupOptions(value_set, skip_nulls=skip_nulls))


def fill_null(values, fill_value):
    """`fill_value`: an Arrow scalar or array of the type of `values`."""
    c = _lib()
    return c.call_function("coalesce", [values, fill_value])


def equal(x, y):
    c = _lib()
    return c.call_function("equal", [x, y])


def not_equal(x, y):
    c = _lib()
    return c.call_function("not_equal", [x, y])


def and_(x, y):
    c = _lib()
    return c.call_function("and", [x, y])


def or_(x, y):
    c = _lib()
    return c.call_function("or", [x, y])


def binary_join_element_wise(*strings):
    """The strings of each row joined by the last argument (the separator: a scalar or array)."""
    c = _lib()
    return c.call_function("binary_join_element_wise", list(strings))


def invert(values):
    c = _lib()
    return c.call_function("invert", [values])


def if_else(cond, left, right):
    c = _lib()
    return c.call_function("if_else", [cond, left, right])


def string_is_ascii(strings):
    c = _lib()
    return c.call_function("string_is_ascii", [strings])


def utf8_lower(strings):
    c = _lib()
    return c.call_function("utf8_lower", [strings])


def utf8_slice_codeunits(strings, start: int, stop: int | None = None, step: int = 1):
    c = _lib()
    return c.call_function("utf8_slice_codeunits", [strings], c.SliceOptions(start, stop, step))


def match_substring_regex(strings, pattern: str, *, ignore_case: bool = False):
    c = _lib()
    return c.call_function("match_substring_regex", [strings], c.MatchSubstringOptions(pattern, ignore_case=ignore_case))


def count_substring_regex(strings, pattern: str, *, ignore_case: bool = False):
    c = _lib()
    return c.call_function("count_substring_regex", [strings], c.MatchSubstringOptions(pattern, ignore_case=ignore_case))


def extract_regex(strings, pattern: str):
    c = _lib()
    return c.call_function("extract_regex", [strings], c.ExtractRegexOptions(pattern))


def replace_substring_regex(strings, pattern: str, replacement: str, *, max_replacements: int | None = None):
    c = _lib()
    return c.call_function("replace_substring_regex", [strings],
                         c.ReplaceSubstringOptions(pattern, replacement, max_replacements=max_replacements))
