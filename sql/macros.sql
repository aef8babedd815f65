-- macros.sql
-- What it defines: table macros shared by the report SQL files (run once per connection by
-- pipeline/warehouse.py attach_views()).
-- Reads:   events
-- events_in_period(tz, since, until): every event column plus `day` (the local calendar day in
--   zone tz) for the events whose local day lies in [since, until] (either bound may be NULL =
--   open). Partitions are UTC days, so the `date` test (a day either side of the local bounds)
--   only prunes files; the `day` test decides.

CREATE OR REPLACE MACRO events_in_period(tz, since, until) AS TABLE
    SELECT *
    FROM (
        SELECT *, CAST(timezone(tz, ts) AS DATE) AS day
        FROM events
        WHERE (since IS NULL OR date >= strftime(CAST(since AS DATE) - 1, '%Y-%m-%d'))
          AND (until IS NULL OR date <= strftime(CAST(until AS DATE) + 1, '%Y-%m-%d'))
    )
    WHERE (since IS NULL OR day >= CAST(since AS DATE))
      AND (until IS NULL OR day <= CAST(until AS DATE));
