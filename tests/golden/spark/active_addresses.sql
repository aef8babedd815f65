/* active_addresses.sql */
/* What it returns: how many distinct addresses had any delivery attempt in a period (the */
/* denominator of the suppression guard's "at most max_new_fraction new entries" test). */
/* Reads:   events */
/* Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive) */
/* Columns: active_addresses */
WITH period AS (
  SELECT
    recipient
  FROM events
  WHERE
    ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), final AS (
  SELECT
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS active_addresses
  FROM period
)
SELECT
  *
FROM final
