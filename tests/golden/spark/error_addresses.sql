/* error_addresses.sql */
/* What it returns: how many distinct addresses had a counted error in a period. Each had a */
/* delivery attempt in it, so this is a lower bound of sql/active_addresses.sql that costs no */
/* pass over the events (the suppression guard's share test tries it first). */
/* Reads:   counted_errors (the rows of sql/counted_errors.sql, kept by the rule's run) */
/* Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive) */
/* Columns: error_addresses */
WITH period AS (
  SELECT
    address
  FROM counted_errors
  WHERE
    ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), final AS (
  SELECT
    CAST(COUNT(DISTINCT address) AS BIGINT) AS error_addresses
  FROM period
)
SELECT
  *
FROM final
