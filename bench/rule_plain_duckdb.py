"""The bare rule SQL run by plain DuckDB: the yardstick of `mailhygiene suppress` (issue 16).

Usage: python bench/rule_plain_duckdb.py DATA_DIR [--as-of 2026-12-31T23:59:59+09:00] [--tz Asia/Tokyo]

Imports nothing but duckdb. Defines what the rule reads, the same way the stage does (the
`events` view over DATA_DIR/events/**/*.parquet, the scalar macros of sql/macros.sql, the view
`attempts` with its marks kept once, an empty suppression_history), runs the rule's two steps with the default rule settings, as the stage
does: sql/counted_errors.sql into table counted_errors, then sql/suppression_candidates.sql,
fetching every row. Prints the number of marked addresses.
"""

import argparse
import re
from datetime import datetime
from pathlib import Path

import duckdb

SQL = Path(__file__).resolve().parents[1] / "sql"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--as-of", default="2026-12-31T23:59:59.999999+09:00")
    ap.add_argument("--tz", default="Asia/Tokyo")
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = str(Path(args.data_dir) / "events" / "**" / "*.parquet").replace("'", "''")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
                "hive_types = {'date': VARCHAR}, union_by_name = true)")
    con.execute('CREATE TABLE suppression_history ("at" TIMESTAMPTZ, action VARCHAR, address VARCHAR)')
    con.execute((SQL / "macros.sql").read_text())
    # the view `attempts` the rule reads, its marks kept once (store.warehouse.keep_attempt_marks)
    con.execute("CREATE TEMP TABLE attempt_marks AS " + (SQL / "not_attempts.sql").read_text())
    con.execute("CREATE VIEW not_attempts AS SELECT event_id, not_attempt FROM attempt_marks")
    for name in ("witnessed_events", "attempts"):
        con.execute(f"CREATE VIEW {name} AS " + (SQL / f"{name}.sql").read_text())
    params = {"tz": args.tz, "as_of": datetime.fromisoformat(args.as_of), "min_errors": 2, "min_days": 2,
              "window_days": 7,
              "counted_reasons": ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"],
              "sender_mta": "mailhygiene"}
    counted = (SQL / "counted_errors.sql").read_text()
    con.execute("CREATE TABLE counted_errors AS " + counted, used(counted, params))
    rule = (SQL / "suppression_candidates.sql").read_text()
    rows = con.execute(rule, used(rule, params)).fetchall()
    print(f"{len(rows)} addresses marked")


def used(sql: str, params: dict) -> dict:
    names = set(re.findall(r"\$(\w+)", "\n".join(line.split("--")[0] for line in sql.splitlines())))
    return {k: v for k, v in params.items() if k in names}


if __name__ == "__main__":
    main()
