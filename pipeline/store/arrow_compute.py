"""The Arrow compute functions ingest uses, called without importing pyarrow.compute.

`import pyarrow.compute` builds a Python wrapper, with its docstring and signature, for each of
Arrow's ~290 compute functions: ~26 ms of CPU on top of everything else ingest imports, 2-3 % of
a 1M-line Postfix ingest (BENCHMARKS.md). The functions themselves are in pyarrow._compute, the
Cython module that pyarrow.compute wraps (imported with pyarrow's arrays anyway): call_function()
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

try:
    from pyarrow._compute import (CastOptions, DictionaryEncodeOptions, ExtractRegexOptions, FilterOptions,
                                  MatchSubstringOptions, ReplaceSubstringOptions, SetLookupOptions, SliceOptions,
                                  TakeOptions, call_function)
except ImportError:  # another pyarrow's layout: the public module, slower to import, the same functions
    from pyarrow.compute import (CastOptions, DictionaryEncodeOptions, ExtractRegexOptions, FilterOptions,
                                 MatchSubstringOptions, ReplaceSubstringOptions, SetLookupOptions, SliceOptions,
                                 TakeOptions, call_function)


def take(data, indices, *, boundscheck: bool = True):
    return call_function("take", [data, indices], TakeOptions(boundscheck=boundscheck))


def filter(data, mask, null_selection_behavior: str = "drop"):  # noqa: A001 (pyarrow.compute's name)
    return call_function("filter", [data, mask], FilterOptions(null_selection_behavior))


def cast(arr, target_type):
    """A safe cast (pc.cast's default: an overflow or a bad value raises)."""
    return call_function("cast", [arr], CastOptions.safe(target_type))


def is_valid(values):
    return call_function("is_valid", [values])


def dictionary_encode(array, null_encoding: str = "mask"):
    return call_function("dictionary_encode", [array], DictionaryEncodeOptions(null_encoding))


def unique(array):
    return call_function("unique", [array])


def value_counts(array):
    return call_function("value_counts", [array])


def index_in(values, value_set, *, skip_nulls: bool = False):
    return call_function("index_in", [values], SetLookupOptions(value_set, skip_nulls=skip_nulls))


def is_in(values, value_set, *, skip_nulls: bool = False):
    return call_function("is_in", [values], SetLookupOptions(value_set, skip_nulls=skip_nulls))


def fill_null(values, fill_value):
    """`fill_value`: an Arrow scalar or array of the type of `values`."""
    return call_function("coalesce", [values, fill_value])


def equal(x, y):
    return call_function("equal", [x, y])


def not_equal(x, y):
    return call_function("not_equal", [x, y])


def and_(x, y):
    return call_function("and", [x, y])


def or_(x, y):
    return call_function("or", [x, y])


def binary_join_element_wise(*strings):
    """The strings of each row joined by the last argument (the separator: a scalar or array)."""
    return call_function("binary_join_element_wise", list(strings))


def invert(values):
    return call_function("invert", [values])


def if_else(cond, left, right):
    return call_function("if_else", [cond, left, right])


def string_is_ascii(strings):
    return call_function("string_is_ascii", [strings])


def utf8_lower(strings):
    return call_function("utf8_lower", [strings])


def utf8_slice_codeunits(strings, start: int, stop: int | None = None, step: int = 1):
    return call_function("utf8_slice_codeunits", [strings], SliceOptions(start, stop, step))


def match_substring_regex(strings, pattern: str, *, ignore_case: bool = False):
    return call_function("match_substring_regex", [strings], MatchSubstringOptions(pattern, ignore_case=ignore_case))


def count_substring_regex(strings, pattern: str, *, ignore_case: bool = False):
    return call_function("count_substring_regex", [strings], MatchSubstringOptions(pattern, ignore_case=ignore_case))


def extract_regex(strings, pattern: str):
    return call_function("extract_regex", [strings], ExtractRegexOptions(pattern))


def replace_substring_regex(strings, pattern: str, replacement: str, *, max_replacements: int | None = None):
    return call_function("replace_substring_regex", [strings],
                         ReplaceSubstringOptions(pattern, replacement, max_replacements=max_replacements))
