"""Suppression: the multi-day rule over the event store, its guard, the list and its exports.
DuckDB end to end (SQL in sql/); no pandas.

  store   the list (suppression/current.parquet) and its history (history.parquet): the lock,
          the DuckDB views, atomic writes by COPY, the check of the list against its history
          (fail closed: SuppressionUnavailable), repair, manual add/release, list/show, and
          suppressed_addresses() for the sender; add_many (all or nothing) and the `--json`
          shapes of list/show (list_json, show_json)
  counted keep_counted_errors (sql/bounce_mails.sql and sql/counted_errors.sql, kept as
          tables: THE counted errors, which the rule, the guard, the report and `show` read)
  rule    the counted errors (counted) and sql/suppression_candidates.sql: which addresses are dead (evaluate), and run_rule():
          new entries, guarded, written through the store; parse_as_of; rule_result_json (the
          `--json` shape of a run, whatever engine computed it)
  guard   sql/guard_bursts.sql (+ error_addresses.sql, active_addresses.sql, guard_replies.sql):
          refuses a run that looks like a carrier refusing us (carrier-hour and carrier-day
          bursts, refusals of addresses that took mail shortly before) or adds too large a
          share of the active addresses
  address_file  the addresses of a file an operator hands us (`suppression add --from-file`):
          one per line or a CSV with an address column, UTF-8 or Shift_JIS
  export  the list as CSV (formula-safe in SQL, address untouched) or Parquet, and the
          handset-filter list (sql/filtered_addresses.sql); file targets replaced atomically,
          `-` for standard output, nothing written when empty unless allowed

Dependencies: core, store (warehouse, records), classify.carriers (manual add). Used by the CLI,
jobs.clean, the sender (store.suppressed_addresses) and the report (store.HISTORY_SCHEMA).
"""
