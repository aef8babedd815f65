"""Suppression: the multi-day rule over the event store, its guard, the list and its export.

  store   runs sql/suppression_candidates.sql, guards it, keeps current.parquet and
          history.parquet, exports the CSV, answers "is this address suppressed?"
"""
