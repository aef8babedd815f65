"""The floor of the ingest benchmarks: a bare DuckDB one-regex scan of a log file.

Usage: python bench/duckdb_scan.py LOG [REGEX]

Reads every line of LOG (DuckDB's CSV reader, one VARCHAR column, no quoting, both cores) and
extracts one field per line with one regex (default: the recipient of a `to=` field), counting the
results: about the least work anything that reads a mail log line by line can do. Prints the
line count.
"""

from __future__ import annotations

import sys

import duckdb

REGEX = r" to=<?([^>, ]*)"


def main() -> None:
    path = sys.argv[1]
    regex = sys.argv[2] if len(sys.argv) > 2 else REGEX
    con = duckdb.connect()
    n, found = con.execute(
        "SELECT count(*), count(NULLIF(regexp_extract(line, ?, 1), '')) FROM read_csv(?, columns={'line': 'VARCHAR'}, "
        "delim=?, quote='', escape='', header=false, auto_detect=false, strict_mode=false)",
        [regex, path, "\x01"]).fetchone()
    print(f"{n} lines, {found} matched")


if __name__ == "__main__":
    main()
