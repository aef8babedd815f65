"""Two stores for measuring the reading of attempts (sql/not_attempts.sql) against `report`.

Usage:
  python bench/bench_engines.py build --events 1000000 --out /tmp/bench/1m
  python bench/gen_witness_stores.py /tmp/bench/1m /tmp/bench

writes, from the build's store (<src>/store, which has no Message-IDs):
  <out>/1m_mid/store     the same rows, each with a Message-ID of its own (a direct-mode store as
                         Postfix logs it: nothing is marked, but every row's id is read)
  <out>/1m_relay/store   1m_mid plus, for each bounced or expired row, the row a bounce mail read by
                         `mailhygiene bounces` would add (mta 'mailhygiene', source_file
                         'mailhygiene-bounces:stdin', 2 s later, a new event id): relay mode, where
                         each such row is 'restated'
and a bench-store.toml next to each (timezone Asia/Tokyo). BENCHMARKS.md has the bench/ab_pairs.py
commands. DuckDB writes the Parquet files (the store's layout: events/date=YYYY-MM-DD/*.parquet).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def derive(src: Path, out: Path) -> None:
    con = duckdb.connect()
    rows = (f"read_parquet('{src / 'store' / 'events' / 'date=*' / '*.parquet'}', hive_partitioning = true, "
            "hive_types = {'date': VARCHAR})")
    with_ids = f"SELECT * REPLACE (substr(event_id, 1, 12) || '@mail.example.jp' AS message_id) FROM {rows}"
    bounce_mails = (f"SELECT * REPLACE (substr(md5(event_id), 1, 20) AS event_id, 'mailhygiene' AS mta, "
                    "'mailhygiene-bounces:stdin' AS source_file, ts + INTERVAL 2 SECOND AS ts, NULL AS queue_id) "
                    f"FROM ({with_ids}) WHERE status IN ('bounced', 'expired')")
    for name, query in (("1m_mid", with_ids), ("1m_relay", f"{with_ids} UNION ALL {bounce_mails}")):
        events = out / name / "store" / "events"
        events.mkdir(parents=True, exist_ok=False)
        con.execute(f"COPY ({query}) TO '{events}' (FORMAT parquet, PARTITION_BY (date), "
                    "FILENAME_PATTERN 'bench_{i}')")
        (out / name / "bench-store.toml").write_text(
            f'timezone = "Asia/Tokyo"\ndata_dir = "{out / name / "store"}"\n', encoding="utf-8")
        print(out / name / "bench-store.toml")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    derive(Path(sys.argv[1]), Path(sys.argv[2]))
